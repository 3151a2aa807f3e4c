"""A stand-in for a data platform's client (beeline, presto, spark-sql): what a command type
runs in the end-to-end tests. It prints, as one JSON line, the arguments it was given and,
for `-f PATH`, the file's path, mode and content; then the content itself. It exits with the
status after `--exit` (default 0)."""

from __future__ import annotations

import json
import os
import stat
import sys


def main(args: list[str]) -> int:
    seen: dict[str, object] = {"args": args}
    if "-f" in args:
        path = args[args.index("-f") + 1]
        with open(path, encoding="utf-8") as given:
            content = given.read()
        seen |= {"path": path, "mode": oct(stat.S_IMODE(os.stat(path).st_mode)),
                 "content": content}
    print(json.dumps(seen), flush=True)
    if "content" in seen:
        print(seen["content"], flush=True)
    print("stand-in: done", file=sys.stderr)
    return int(args[args.index("--exit") + 1]) if "--exit" in args else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
