"""`cronwheel jobs deps KEY`: the jobs one waits for and the jobs waiting for it, as a tree."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text
from rich.tree import Tree

from cronwheel.cli import render
from cronwheel.cli.common import AsJson, Key, Namespace, Server, Token, connect, plain
from cronwheel.client import DEFAULT_SERVER

MAX_RUNS_SHOWN = 6  # the latest runs of each job in the window; the count says the rest

Window = Annotated[str | None, typer.Option(
    "--window", "-w", metavar="EXPR",
    help="which runs to show: cd (today, the default), ch, d(1), w(1,2)... in the job's zone",
)]


def _runs(runs: list[dict[str, Any]]) -> Text:
    if not runs:
        return Text("no runs in the window", style="dim")
    shown = runs[-MAX_RUNS_SHOWN:]
    line = Text()
    if len(runs) > len(shown):
        line.append(f"{len(runs) - len(shown)} earlier, ", style="dim")
    for index, run in enumerate(shown):
        if index:
            line.append("  ")
        line.append(f"{str(run.get('scheduled_at', ''))[11:16]} ")
        line.append_text(render.state(run.get("state")))
    return line


def _label(node: dict[str, Any]) -> Text:
    name = Text(f"{node.get('namespace')}/{node.get('key')}", style="bold")
    edge = f" [{node.get('strategy')} {node.get('window')}]" if node.get("strategy") else ""
    label = name.append(edge, style="dim").append(" ").append_text(render.state(node.get("state")))
    if node.get("repeated"):
        label.append(" (shown above)", style="dim")
    return label.append("  ").append_text(_runs(node.get("runs") or []))


def _grow(tree: Tree, nodes: list[dict[str, Any]]) -> None:
    for node in nodes:
        _grow(tree.add(_label(node)), node.get("children") or [])


def dependency_tree(graph: dict[str, Any]) -> Tree:
    """Upstream jobs (what the job waits for) and downstream jobs (what waits for it)."""
    head = Text(f"{graph.get('namespace')}/{graph.get('key')}", style="bold")
    head.append(" ").append_text(render.state(graph.get("state")))
    head.append(f"  window {graph.get('window')}: {graph.get('start')} to {graph.get('end')}",
                style="dim")
    tree = Tree(head)
    tree.add(_runs(graph.get("runs") or []))
    upstream = tree.add(Text("waits for (upstream)", style="cyan"))
    _grow(upstream, graph.get("upstream") or [])
    if not graph.get("upstream"):
        upstream.add(Text("nothing", style="dim"))
    downstream = tree.add(Text("waited for by (downstream)", style="cyan"))
    _grow(downstream, graph.get("downstream") or [])
    if not graph.get("downstream"):
        downstream.add(Text("nothing", style="dim"))
    return tree


def add_deps_command(jobs_app: typer.Typer) -> None:
    @jobs_app.command("deps")
    def deps(
        key: Key,
        namespace: Namespace = "default",
        window: Window = None,
        server: Server = DEFAULT_SERVER,
        token: Token = None,
        as_json: AsJson = False,
    ) -> None:
        """Draw a job's dependencies as a tree, each job with its runs in a window."""
        with connect(server, token) as client:
            graph = plain(client.job_dependencies(key, namespace, window))
        render.output(graph, as_json, dependency_tree)
