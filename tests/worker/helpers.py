"""Functions the python job type calls in its child process (importable as tests.worker.helpers)."""

from __future__ import annotations

import asyncio
import datetime
import os
from typing import Any


def add(a: int, b: int) -> int:
    print(f"adding {a} and {b}")
    return a + b


async def greet(name: str, delay: float = 0.01) -> dict[str, Any]:
    await asyncio.sleep(delay)
    return {"hello": name}


def when() -> datetime.date:
    return datetime.date(2024, 2, 29)  # not JSON: encoded as its str()


def context() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("CRONWHEEL_")}


def boom() -> None:
    raise RuntimeError("this job is meant to fail")


def big(size: int) -> str:
    return "x" * size
