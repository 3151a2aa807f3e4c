"""Reading a receiver's business answer: the delay-job contract's `{"code": "ok"}`.

Under that contract a callback is delivered only when the receiver answers `code` "ok" (any
letter case); any other code asks for a retry. A 2xx whose body is not such a JSON object
(empty, plain text, cut short) still counts as success, so plain receivers keep working.
"""

from __future__ import annotations

import orjson


def refused_code(body: str) -> str | None:
    """The receiver's code when it is present and not "ok"; None when the answer is a success."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(answer, dict) or not isinstance(answer.get("code"), str):
        return None
    code: str = answer["code"]
    return None if is_ok(code) else code


def is_ok(code: str) -> bool:
    return code.lower() == "ok"
