"""What every client command shares: the server and token options, the connection whose
failures end the command with one line, and printing a page or a job."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.table import Table

from cronwheel.cli import render
from cronwheel.client import ApiError, Client, Unreachable
from cronwheel.client.calls import JsonObject

Server = Annotated[str, typer.Option(
    "--server", envvar="CRONWHEEL_SERVER", show_envvar=True, metavar="URL",
    help="base URL of a cronwheel node",
)]
Token = Annotated[str | None, typer.Option(
    "--token", metavar="TOKEN",
    help="API token; default CRONWHEEL_TOKEN, then the file the server wrote for this "
         "address under ~/.config/cronwheel/tokens/",
)]
Namespace = Annotated[str, typer.Option(
    "--namespace", "-n", envvar="CRONWHEEL_NAMESPACE", show_envvar=True,
    help="namespace of the job",
)]
AsJson = Annotated[bool, typer.Option("--json", help="print the server's JSON instead of a table")]
Key = Annotated[str, typer.Argument(metavar="KEY", help="the job's key, unique in its namespace")]
PayloadOption = Annotated[str | None, typer.Option(
    "--payload", metavar="JSON", help='any JSON value, e.g. \'{"invoice": 42}\'',
)]


@contextmanager
def connect(server: str, token: str | None = None) -> Iterator[Client]:
    """A client whose failures end the command with a one-line message, never a traceback:
    exit 1 when the server refused, 2 when it could not be reached."""
    try:
        with Client(server, token=token) as client:
            yield client
    except ApiError as exc:
        typer.echo(render.api_error(exc), err=True)
        raise typer.Exit(1) from None
    except Unreachable as exc:
        typer.echo(render.unreachable(exc), err=True)
        raise typer.Exit(2) from None


def plain(value: BaseModel) -> JsonObject:
    """A model as the JSON the server sent."""
    return value.model_dump(mode="json")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(text: str, option: str) -> Any:
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}", param_hint=option) from None


def print_page(
    page: JsonObject, as_json: bool, field: str,
    table: Callable[[Iterable[JsonObject]], Table], empty: str, more: Callable[[str], str],
) -> None:
    """A page of a list: as JSON, or a table (or `empty`), and on stderr how to see more."""
    if as_json:
        render.print_json(page)
        return
    items = page.get(field) or []
    if items:
        render.show(table(items))
    else:
        typer.echo(empty)
    if page.get("next_cursor"):
        typer.echo(more(str(page["next_cursor"])), err=True)


def print_job(job: JsonObject, as_json: bool, headline: str) -> None:
    """The job as JSON on stdout (and the headline on stderr), or one readable line."""
    if as_json:
        typer.echo(headline, err=True)
        render.print_json(job)
    else:
        render.show(render.job_line(headline, job))
