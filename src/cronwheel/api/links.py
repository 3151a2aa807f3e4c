"""OpenAPI links: what a created job, run, worker or app can be called with next.

A client generator (and schemathesis' stateful phase) reads them to chain calls: create a
job, then read, edit, trigger and delete it by the key and namespace the creation answered.
They are derived from the paths, so a route added under `/v1/jobs/{key}` is linked without
an entry here.
"""

from __future__ import annotations

from typing import Any

# (method, path, status) of a creating call -> (the path prefix of the calls its answer
# feeds, {path or query parameter: where in the answer its value is})
PRODUCERS: dict[tuple[str, str, str], tuple[str, dict[str, str]]] = {
    ("post", "/v1/jobs", "201"): (
        "/v1/jobs/{key}", {"key": "$response.body#/key", "namespace": "$response.body#/namespace"}),
    ("post", "/v1/jobs/{key}/trigger", "202"): (
        "/v1/runs/{run_id}", {"run_id": "$response.body#/id"}),
    ("post", "/v1/workers", "201"): (
        "/v1/workers/{worker_id}", {"worker_id": "$response.body#/id"}),
    ("post", "/v1/apps", "201"): ("/v1/apps/{app}", {"app": "$response.body#/name"}),
}


def _name(method: str, path: str) -> str:
    """`post /v1/runs/{run_id}/kill` -> `PostRunsRunIdKill`."""
    words = path.replace("_", "/").replace("{", "").replace("}", "").split("/")
    return method.capitalize() + "".join(w[:1].upper() + w[1:] for w in words if w != "v1")


def _parameters(operation: dict[str, Any]) -> set[str]:
    return {p["name"] for p in operation.get("parameters", []) if p.get("in") in ("path", "query")}


def add_links(schema: dict[str, Any]) -> None:
    """Link each producer's answer to every operation under its prefix, with the values of
    the parameters that operation takes (the prefix's path parameter at least)."""
    paths: dict[str, dict[str, Any]] = schema.get("paths", {})
    for (method, path, status), (prefix, values) in PRODUCERS.items():
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            continue
        links: dict[str, Any] = response.setdefault("links", {})
        for target, operations in paths.items():
            if not (target == prefix or target.startswith(prefix + "/")):
                continue
            for target_method, operation in operations.items():
                taken = _parameters(operation)
                parameters = {name: where for name, where in values.items() if name in taken}
                ref = "#/paths/" + target.replace("~", "~0").replace("/", "~1")
                links[_name(target_method, target)] = {
                    "operationRef": f"{ref}/{target_method}", "parameters": parameters}
