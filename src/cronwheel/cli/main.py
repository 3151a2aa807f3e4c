"""`cronwheel serve`, `cronwheel migrate`, and the client commands that talk to a server."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from cronwheel.cli import job_schedules
from cronwheel.cli.apps import apps_app, tokens_app
from cronwheel.cli.audit import audit
from cronwheel.cli.common import Server
from cronwheel.cli.config import load_settings, log_options
from cronwheel.cli.deps import add_deps_command
from cronwheel.cli.jobs import cluster, jobs_app, runs_app
from cronwheel.cli.schedule import schedule_app
from cronwheel.cli.workers import workers_app

DATABASE_HELP = "sqlite:///file.db or postgresql://host/db [CRONWHEEL_DATABASE_URL]"
app = typer.Typer(help="cronwheel: a self-hosted job scheduling service.", no_args_is_help=True)
add_deps_command(jobs_app)
job_schedules.register(jobs_app)
app.add_typer(jobs_app, name="jobs")
app.add_typer(runs_app, name="runs")
app.add_typer(schedule_app, name="schedule")
app.add_typer(workers_app, name="workers")
app.add_typer(apps_app, name="apps")
app.add_typer(tokens_app, name="tokens")
app.command("cluster")(cluster)
app.command("audit")(audit)


@app.callback()
def _root(
    token: Annotated[str | None, typer.Option(
        "--token", metavar="TOKEN",
        help="the token every command sends (the same as CRONWHEEL_TOKEN; a command's own "
             "--token wins); default: CRONWHEEL_TOKEN, else the file a server at --server "
             "wrote on this machine at first start")] = None,
) -> None:
    """cronwheel: a self-hosted job scheduling service."""
    if token:
        os.environ["CRONWHEEL_TOKEN"] = token  # read by every client this process makes


WorkerToken = Annotated[str | None, typer.Option(
    "--token", envvar="CRONWHEEL_TOKEN", show_envvar=False, metavar="TOKEN",
    help="a worker token serving the worker's groups [CRONWHEEL_TOKEN; default: the token "
         "file a server at SERVER wrote on this machine]")]


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address [CRONWHEEL_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="port [CRONWHEEL_PORT]")] = None,
    database_url: Annotated[str | None, typer.Option(help=DATABASE_HELP)] = None,
    tls_cert: Annotated[str | None, typer.Option(
        metavar="PEM", help="serve HTTPS with this certificate (chain) [CRONWHEEL_TLS_CERT]")
    ] = None,
    tls_key: Annotated[str | None, typer.Option(
        metavar="PEM", help="the certificate's private key [CRONWHEEL_TLS_KEY]")] = None,
    engine_process: Annotated[bool | None, typer.Option(
        "--engine-process/--no-engine-process",
        help="fire and deliver in a child process of their own, so API load never slows "
             "firing [CRONWHEEL_ENGINE_PROCESS; default: on]")] = None,
) -> None:
    """Run a node: the API on HOST:PORT and the scheduler over DATABASE_URL."""
    import uvicorn

    from cronwheel import logs
    from cronwheel.runtime import Node, use_switch_interval
    from cronwheel.ui.app import create_app  # the API with the console at /ui

    settings = load_settings(host=host, port=port, database_url=database_url,
                             tls_cert=tls_cert, tls_key=tls_key, engine_process=engine_process)
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise typer.BadParameter("TLS needs both --tls-cert and --tls-key")
    logs.configure(settings.log_level, settings.log_format, settings.access_log)
    use_switch_interval(settings)
    node = Node(settings, run_engine=not settings.engine_process,
                engine_child=settings.engine_process)
    uvicorn.run(
        create_app(settings, node),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level,
        log_config=logs.uvicorn_log_config(),
        access_log=settings.access_log,
        timeout_graceful_shutdown=10,
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
    )


@app.command(hidden=True)
def engine(
    link_fd: Annotated[int, typer.Option(help="the socket to the API process")],
    owner: Annotated[str, typer.Option(help="the owner id to claim under")],
    parent: Annotated[int, typer.Option(help="the API process's pid")],
) -> None:
    """A server's engine process, started by `serve` with the engine process on."""
    import uvloop

    from cronwheel import logs
    from cronwheel.runtime import engine_main

    settings = load_settings()
    logs.configure(settings.log_level, settings.log_format, settings.access_log)
    uvloop.run(engine_main(settings, link_fd, owner, parent))


@app.command()
def migrate(
    database_url: Annotated[str | None, typer.Option(help="[CRONWHEEL_DATABASE_URL]")] = None,
) -> None:
    """Bring the database schema up to date (the server also does this when it starts)."""
    import asyncio

    from cronwheel.store import migrate_schema

    settings = load_settings(database_url=database_url)
    asyncio.run(migrate_schema(settings.database_url))
    typer.echo(f"schema is up to date: {settings.database_url}")


@app.command()
def worker(
    server: Server = "http://127.0.0.1:1989",
    group: Annotated[list[str] | None, typer.Option(
        "--group", metavar="NAME",
        help="a group whose tasks to run; repeatable (default: default)")] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="tasks run at once")] = 4,
    name: Annotated[str | None, typer.Option(
        help="stable name across restarts (default: <host>:<pid>)")] = None,
    host: Annotated[str | None, typer.Option(
        help="the address to report (default: the one the server sees)")] = None,
    database: Annotated[list[str] | None, typer.Option(
        "--database", metavar="NAME=URL",
        help="a database the sql job type may use; repeatable (also "
             "CRONWHEEL_WORKER_DATABASES, a JSON object of NAME: URL)")] = None,
    grace: Annotated[float, typer.Option(
        min=0, help="on SIGTERM, seconds running tasks may go on before being killed")] = 30.0,
    token: WorkerToken = None,
    types: Annotated[list[str] | None, typer.Option(
        "--types", metavar="TYPE,...",
        help="the only job types to accept, e.g. shell,http (default: every type this worker "
             "can run: built-in, plugin and command types)")] = None,
    command_type: Annotated[list[str] | None, typer.Option(
        "--command-type", metavar="NAME=COMMAND",
        help="run jobs of type NAME with COMMAND, {script} being a file holding the job's "
             "content, e.g. hive='beeline -f {script}'; repeatable (also "
             "CRONWHEEL_WORKER_COMMAND_TYPES, a JSON object of NAME: COMMAND)")] = None,
) -> None:
    """Run a worker: execute the tasks of worker jobs of its groups, pulled from SERVER."""
    from cronwheel import logs
    from cronwheel.client.credentials import find_token
    from cronwheel.worker import WorkerSettings, parse_databases
    from cronwheel.worker import main as run_worker
    from cronwheel.worker.settings import default_name, parse_command_types, parse_types

    try:
        settings = WorkerSettings(
            server=server, groups=tuple(group or ["default"]), concurrency=concurrency,
            name=name or default_name(), host=host, databases=parse_databases(database or []),
            grace_s=grace, token=find_token(server, token), types=parse_types(types or []),
            command_types=parse_command_types(command_type or []),
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    level, fmt = log_options()  # as `serve` logs: events, text or JSON lines on stderr
    logs.configure(level, fmt, access_log=False)
    run_worker(settings)


def main() -> None:
    app()
