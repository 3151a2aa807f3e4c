"""A fake Kubernetes API server on loopback, over the in-memory cluster.

It speaks the parts of the REST API the lightkube gateway uses: batch/v1 Jobs (create,
get, list, watch, delete), core/v1 Pods (list) and pod logs (whole or followed), with the
API server's status objects for errors. It stands in for a real API server, which cannot
run on the build machines; faults are injected per request: `fail` answers the next
requests with the given statuses, `drop` closes the next connections without an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from cronwheel.delivery.kubernetes.fake import FakeCluster
from cronwheel.delivery.kubernetes.gateway import Gone, JobInfo, PodInfo, Unavailable
from tests.support import free_port

JOBS = "/apis/batch/v1/namespaces/{ns}/jobs"
STAMP = "2026-12-01T00:00:00Z"


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def _json(value: Any, status: int = 200) -> web.Response:
    """As the API server answers: `application/json` with no charset parameter."""
    return web.Response(body=orjson.dumps(value), status=status,
                        content_type="application/json")


def _answer(code: int, reason: str, message: str) -> web.Response:
    return _json(_status(code, reason, message), code)


def job_object(info: JobInfo) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": info.name, "namespace": info.namespace, "uid": info.uid,
                         "resourceVersion": info.resource_version, "labels": info.labels,
                         "creationTimestamp": STAMP},
            "status": info.status}


def pod_object(namespace: str, pod: PodInfo) -> dict[str, Any]:
    state: dict[str, Any] = {"running": {"startedAt": STAMP}}
    if pod.exit_code is not None and pod.phase != "Running":
        state = {"terminated": {"exitCode": pod.exit_code, "reason": pod.reason or "Error"}}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod.name, "namespace": namespace, "creationTimestamp": STAMP},
            "spec": {"nodeName": pod.node, "containers": [{"name": "job", "image": "x"}]},
            "status": {"phase": pod.phase, "reason": pod.reason if pod.phase == "Failed"
                       and pod.exit_code is None else None,
                       "containerStatuses": [{
                           "name": "job", "image": "x", "imageID": "", "ready": False,
                           "restartCount": pod.restarts, "state": state}]}}


@dataclass
class FakeApiServer:
    cluster: FakeCluster
    fail: list[int] = field(default_factory=list)
    drop: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)
    deletes: list[dict[str, Any]] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @web.middleware
    async def _faults(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        self.tokens.add(request.headers.get("Authorization", ""))
        if self.drop:
            self.drop -= 1
            assert request.transport is not None
            request.transport.close()  # no answer at all: the connection just ends
            raise ConnectionResetError("dropped")
        if self.fail:
            code = self.fail.pop(0)
            return _answer(code, "InternalError" if code >= 500 else "TooManyRequests",
                           "injected failure")
        try:
            response: web.StreamResponse = await handler(request)
        except Unavailable as exc:
            return _answer(503, "ServiceUnavailable", str(exc))
        return response

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._faults])
        app.router.add_post(JOBS, self._create)
        app.router.add_get(JOBS, self._jobs)
        app.router.add_get(JOBS + "/{name}", self._get)
        app.router.add_delete(JOBS + "/{name}", self._delete)
        app.router.add_get("/api/v1/namespaces/{ns}/pods", self._pods)
        app.router.add_get("/api/v1/namespaces/{ns}/pods/{name}/log", self._log)
        return app

    async def start(self) -> FakeApiServer:
        self._runner = web.AppRunner(self._app(), access_log=None)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        self.cluster.drop_watches()  # open watches end, so the server can stop
        if self._runner is not None:
            await self._runner.cleanup()

    # -- handlers ---------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        manifest = orjson.loads(await request.read())
        meta = manifest.get("metadata", {})
        if meta.get("namespace", request.match_info["ns"]) != request.match_info["ns"]:
            return _answer(400, "BadRequest", "the namespace of the object does not match")
        if self.cluster.manifest_of(request.match_info["ns"], meta.get("name", "")):
            return _answer(409, "AlreadyExists", f'jobs.batch "{meta.get("name")}" already '
                           "exists")
        info = await self.cluster.create_job(manifest)
        return _json(job_object(info), status=201)

    async def _get(self, request: web.Request) -> web.Response:
        info = await self.cluster.get_job(request.match_info["ns"], request.match_info["name"])
        if info is None:
            return _answer(404, "NotFound", f'jobs.batch "{request.match_info["name"]}" not '
                           "found")
        return _json(job_object(info))

    async def _delete(self, request: web.Request) -> web.Response:
        body = await request.read()
        # the policy may come as a DeleteOptions body or as a query parameter
        self.deletes.append((orjson.loads(body) if body else {}) | dict(request.query))
        name = request.match_info["name"]
        if not await self.cluster.delete_job(request.match_info["ns"], name):
            return _answer(404, "NotFound", f'jobs.batch "{name}" not found')
        return _json(_status(200, "", "") | {"status": "Success"})

    async def _jobs(self, request: web.Request) -> web.StreamResponse:
        ns, selector = request.match_info["ns"], request.query.get("labelSelector", "")
        if request.query.get("watch") in ("true", "1"):
            return await self._watch(request, ns, selector)
        found, version = await self.cluster.list_jobs(ns, selector)
        return _json({"apiVersion": "batch/v1", "kind": "JobList",
                                  "metadata": {"resourceVersion": version},
                                  "items": [job_object(i) for i in found]})

    async def _watch(self, request: web.Request, ns: str, selector: str) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        events = self.cluster.watch_jobs(ns, selector, request.query.get("resourceVersion", ""))
        try:
            async for event in events:
                line = {"type": event.type, "object": job_object(event.job)}
                await response.write(orjson.dumps(line) + b"\n")
        except Gone as exc:  # as the API server does: a 200 stream ending in an ERROR event
            error = {"type": "ERROR", "object": _status(410, "Expired", str(exc))}
            await response.write(orjson.dumps(error) + b"\n")
        except Unavailable:
            assert request.transport is not None
            request.transport.close()
            return response
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    async def _pods(self, request: web.Request) -> web.Response:
        ns = request.match_info["ns"]
        found = await self.cluster.list_pods(ns, request.query.get("labelSelector", ""))
        return _json({"apiVersion": "v1", "kind": "PodList",
                                  "metadata": {"resourceVersion": "1"},
                                  "items": [pod_object(ns, p) for p in found]})

    async def _log(self, request: web.Request) -> web.StreamResponse:
        ns, name = request.match_info["ns"], request.match_info["name"]
        if not any(p.name == name for p in await self.cluster.list_pods(ns, "")):
            return _answer(404, "NotFound", f'pods "{name}" not found')
        if request.query.get("follow") not in ("true", "1"):
            return web.Response(body=await self.cluster.read_log(ns, name),
                                content_type="text/plain")
        response = web.StreamResponse()
        await response.prepare(request)
        async for piece in self.cluster.stream_log(ns, name):
            await response.write(piece)
            await asyncio.sleep(0)
        await response.write_eof()
        return response


def kubeconfig(path: Path, server: str) -> Path:
    """A kubeconfig with two contexts; cronwheel is told which one to use."""
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "other",
        "clusters": [{"name": "fake", "cluster": {"server": server}},
                     {"name": "elsewhere", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "cronwheel", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "test", "context": {"cluster": "fake", "user": "cronwheel"}},
                     {"name": "other", "context": {"cluster": "elsewhere",
                                                   "user": "cronwheel"}}],
    }
    path.write_bytes(orjson.dumps(config))
    return path
