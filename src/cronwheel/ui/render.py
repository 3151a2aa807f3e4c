"""Templates and the few filters they use: times in UTC (or a job's zone), durations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from cronwheel import __version__
from cronwheel.domain.time import US_PER_S
from cronwheel.ui.session import Caller

env = Environment(
    loader=PackageLoader("cronwheel.ui", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


# Pages load only the package's own files and may not be framed (no click-jacking of the
# action buttons); nothing inline runs.
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def when(micros: int | None, zone: str | None = None) -> str:
    """An instant to the millisecond: a run fired 100 ms before its time must not read as
    fired before it was scheduled."""
    if micros is None:
        return "—"
    at = datetime.fromtimestamp(micros / US_PER_S, UTC)
    if zone:
        at = at.astimezone(ZoneInfo(zone))
    return at.strftime("%Y-%m-%d %H:%M:%S.") + f"{at.microsecond // 1000:03d} {at.tzname()}"


def took(start: int | None, end: int | None) -> str:
    if start is None or end is None:
        return "—"
    seconds = (end - start) / US_PER_S
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def millis(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.1f} ms"


env.filters["when"] = when
env.filters["millis"] = millis
env.globals["took"] = took
env.globals["version"] = __version__


def page(request: Request, caller: Caller | None, template: str, status: int = 200,
         **context: Any) -> HTMLResponse:
    notice, problem = _messages(request, caller)
    html = env.get_template(template).render(
        request=request, user=caller, notice=notice, problem=problem,
        path=request.url.path, **context)
    return HTMLResponse(html, status, headers=HEADERS)


def _messages(request: Request, caller: Caller | None) -> tuple[str, str]:
    """What the last action said: kept in the session, so no link can put words on a
    page; in the query only on an open server, which has no sessions."""
    if caller is not None and caller.session is not None:
        said = dict(caller.session.notices)
        caller.session.notices.clear()
        return said.get("notice", ""), said.get("problem", "")
    if caller is not None:
        return (request.query_params.get("notice", "")[:300],
                request.query_params.get("problem", "")[:300])
    return "", ""


def back(caller: Caller, url: str, notice: str = "", problem: str = "") -> RedirectResponse:
    """After a POST: see the result with a GET (the browser's back button stays harmless)."""
    extra = {k: v for k, v in (("notice", notice), ("problem", problem)) if v}
    if extra and caller.session is not None:
        caller.session.notices[:] = list(extra.items())
    elif extra:
        url, _hash, fragment = url.partition("#")
        url += ("&" if "?" in url else "?") + urlencode(extra)
        url += f"#{fragment}" if fragment else ""
    return RedirectResponse(url, 303)
