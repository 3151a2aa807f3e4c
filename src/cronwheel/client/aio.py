"""The asyncio client: `async with AsyncClient() as cw: await cw.get_job("invoice-42")`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from cronwheel.api.schemas import (
    AuditEntryOut,
    AuditPage,
    BatchOut,
    ClusterOut,
    DeletedOut,
    DependenciesOut,
    HostRuns,
    JobAlerts,
    JobIn,
    JobOut,
    JobPage,
    JobWorkers,
    KillOut,
    LogPageOut,
    PreviewOut,
    RerunOut,
    RunDetail,
    RunOut,
    RunPage,
    RunTasks,
    ScheduleChanged,
    ScheduleList,
    SwitchOut,
    WorkerList,
)
from cronwheel.client import calls
from cronwheel.client.calls import DEFAULT_NAMESPACE, NO_BODY, Call, Created, JsonObject
from cronwheel.client.wire import (
    DEFAULT_SERVER,
    DEFAULT_TIMEOUT,
    Event,
    EventReader,
    Retry,
    base_url,
    decode,
    headers,
    should_retry,
    unreachable,
)

T = TypeVar("T")


class AsyncClient:
    """A cronwheel node's native API. The token is `token`, else CRONWHEEL_TOKEN, else the
    file the server wrote for its address (see `cronwheel.client.credentials`)."""

    def __init__(
        self,
        server: str = DEFAULT_SERVER,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: Retry | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.server = base_url(server)
        self.retry = retry or Retry()
        try:
            self._http = httpx.AsyncClient(base_url=self.server, timeout=timeout,
                                      transport=transport, headers=headers(self.server, token))
        except (httpx.InvalidURL, ValueError) as exc:
            raise unreachable(self.server, exc) from None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- sending -------------------------------------------------------------------------------

    async def send(self, call: Call[T]) -> T:
        """Send one call, retrying it as its kind allows; its answer read into a value."""
        for attempt in range(1, self.retry.attempts + 1):
            last = attempt == self.retry.attempts
            try:
                response = await self._http.request(
                    call.method, call.path, params=call.params,
                    json=None if call.json is NO_BODY else call.json, content=call.content)
            except httpx.RequestError as exc:
                if last or not should_retry(exc, None, call.retriable):
                    raise unreachable(self.server, exc) from None
            except httpx.InvalidURL as exc:
                raise unreachable(self.server, exc) from None
            else:
                if last or not should_retry(None, response.status_code, call.retriable):
                    return call.read(response.status_code, decode(response))
            await asyncio.sleep(self.retry.delay(attempt))
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def request(self, method: str, path: str, params: calls.Params | None = None,
                json: Any = NO_BODY) -> Any:
        """Any call by its path, answered as plain JSON (for what has no method here)."""
        return await self.send(Call(method.upper(), path, lambda _s, answer: answer, params or {},
                              json))

    # -- jobs ----------------------------------------------------------------------------------

    async def create_job(self, job: JobIn | Mapping[str, Any], replace: bool = False) -> Created:
        """201 created or 200 the same definition was there: `.created` tells which. A
        different job under the key raises Conflict (its `details["existing"]`)."""
        return await self.send(calls.create_job(job, replace))

    async def create_jobs(self, jobs: Sequence[JobIn | Mapping[str, Any]]) -> BatchOut:
        """All or nothing."""
        return await self.send(calls.create_jobs(jobs))

    async def list_jobs(self, namespace: str | None = None, state: str | None = None,
                  key_prefix: str | None = None, limit: int = 100,
                  cursor: str | None = None) -> JobPage:
        return await self.send(calls.list_jobs(namespace, state, key_prefix, limit, cursor))

    async def iter_jobs(self, namespace: str | None = None, state: str | None = None,
                  key_prefix: str | None = None, page_size: int = 100) -> AsyncIterator[JobOut]:
        """Every matching job, oldest first, a page at a time."""
        cursor: str | None = None
        while True:
            page = await self.list_jobs(namespace, state, key_prefix, page_size, cursor)
            for job in page.jobs:
                yield job
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def get_job(self, key: str, namespace: str = DEFAULT_NAMESPACE) -> JobOut:
        return await self.send(calls.get_job(key, namespace))

    async def pause_job(self, key: str, namespace: str = DEFAULT_NAMESPACE) -> JobOut:
        return await self.send(calls.change_job(key, "pause", namespace))

    async def resume_job(self, key: str, namespace: str = DEFAULT_NAMESPACE) -> JobOut:
        return await self.send(calls.change_job(key, "resume", namespace))

    async def cancel_job(self, key: str, namespace: str = DEFAULT_NAMESPACE) -> JobOut:
        return await self.send(calls.change_job(key, "cancel", namespace))

    async def disable_job(self, key: str, namespace: str = DEFAULT_NAMESPACE) -> JobOut:
        return await self.send(calls.change_job(key, "disable", namespace))

    async def enable_job(self, key: str, namespace: str = DEFAULT_NAMESPACE) -> JobOut:
        return await self.send(calls.change_job(key, "enable", namespace))

    async def trigger_job(self, key: str, namespace: str = DEFAULT_NAMESPACE,
                    payload: Any = NO_BODY) -> RunDetail:
        """A run now; `payload`, when given, replaces the job's for this run only."""
        return await self.send(calls.trigger_job(key, namespace, payload))

    async def delete_job(self, key: str, namespace: str = DEFAULT_NAMESPACE,
                   delete_runs: bool = False) -> DeletedOut:
        return await self.send(calls.delete_job(key, namespace, delete_runs))

    async def job_runs(self, key: str, namespace: str = DEFAULT_NAMESPACE, limit: int = 100,
                 cursor: str | None = None) -> RunPage:
        return await self.send(calls.job_runs(key, namespace, limit, cursor))

    async def iter_runs(self, key: str, namespace: str = DEFAULT_NAMESPACE,
                  page_size: int = 100) -> AsyncIterator[RunOut]:
        """Every run of the job, newest first, a page at a time."""
        cursor: str | None = None
        while True:
            page = await self.job_runs(key, namespace, page_size, cursor)
            for run in page.runs:
                yield run
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def job_workers(self, key: str, namespace: str = DEFAULT_NAMESPACE) -> JobWorkers:
        return await self.send(calls.job_workers(key, namespace))

    async def switch_job_workers(self, key: str, switches: Mapping[str, bool],
                           namespace: str = DEFAULT_NAMESPACE) -> JobWorkers:
        return await self.send(calls.switch_job_workers(key, switches, namespace))

    async def job_alerts(self, key: str, namespace: str = DEFAULT_NAMESPACE) -> JobAlerts:
        return await self.send(calls.job_alerts(key, namespace))

    # -- a job's time expressions by id, and backfills -----------------------------------------

    async def job_dependencies(self, key: str, namespace: str = DEFAULT_NAMESPACE,
                         window: str | None = None) -> DependenciesOut:
        """The jobs this one waits for and those waiting for it, as trees, with their runs
        in the window."""
        return await self.send(calls.job_dependencies(key, namespace, window))

    async def job_schedules(self, key: str, namespace: str = DEFAULT_NAMESPACE) -> ScheduleList:
        """The job's expressions, each with its id (a single schedule is "1")."""
        return await self.send(calls.job_schedules(key, namespace))

    async def add_schedule(self, key: str, schedule: Mapping[str, Any],
                     namespace: str = DEFAULT_NAMESPACE) -> ScheduleChanged:
        """The job then fires at the union of its expressions' instants."""
        return await self.send(calls.add_schedule(key, schedule, namespace))

    async def edit_schedule(self, key: str, schedule_id: str, schedule: Mapping[str, Any],
                      namespace: str = DEFAULT_NAMESPACE) -> ScheduleChanged:
        return await self.send(calls.edit_schedule(key, schedule_id, schedule, namespace))

    async def remove_schedule(self, key: str, schedule_id: str,
                        namespace: str = DEFAULT_NAMESPACE) -> JobOut:
        """Refused (Conflict, field `schedules`) for the job's last expression."""
        return await self.send(calls.remove_schedule(key, schedule_id, namespace))

    async def change_schedules(self, key: str, changes: Sequence[Mapping[str, Any]],
                         namespace: str = DEFAULT_NAMESPACE) -> JobOut:
        return await self.send(calls.change_schedules(key, changes, namespace))

    async def rerun_job(self, key: str, start: str, end: str, downstream: bool = False,
                  namespace: str = DEFAULT_NAMESPACE) -> RerunOut:
        """Backfill [start, end]: a run, or a new attempt of an ended one, per instant."""
        return await self.send(calls.rerun_job(key, start, end, downstream, namespace))

    # -- runs ----------------------------------------------------------------------------------

    async def get_run(self, run_id: str) -> RunDetail:
        return await self.send(calls.get_run(run_id))

    async def remove_run(self, run_id: str) -> RunDetail:
        return await self.send(calls.remove_run(run_id))

    async def kill_run(self, run_id: str) -> KillOut:
        return await self.send(calls.kill_run(run_id))

    async def run_tasks(self, run_id: str) -> RunTasks:
        return await self.send(calls.run_tasks(run_id))

    async def run_log(self, run_id: str, offset: int = 0, limit: int = 65_536, stream: str = "log",
                attempt: int | None = None, worker: str | None = None) -> LogPageOut:
        return await self.send(calls.run_log(run_id, offset, limit, stream, attempt, worker))

    async def follow_log(self, run_id: str, offset: int = 0, stream: str = "log",
                   attempt: int | None = None, worker: str | None = None) -> AsyncIterator[Event]:
        """The run's output as it comes: `output` events, then one `end`."""
        call = calls.follow_log(run_id, offset, stream, attempt, worker)
        reader = EventReader()
        try:
            async with self._http.stream("GET", call.path, params=call.params,
                                   timeout=httpx.Timeout(10.0, read=None)) as response:
                if not response.is_success:
                    await response.aread()
                    decode(response)
                async for line in response.aiter_lines():
                    for event in reader.feed([line]):
                        yield event
        except httpx.RequestError as exc:
            raise unreachable(self.server, exc) from None

    # -- workers, cluster, schedules -----------------------------------------------------------

    async def workers(self, include_stopped: bool = False) -> WorkerList:
        return await self.send(calls.workers(include_stopped))

    async def switch_workers(self, switches: Mapping[str, bool]) -> SwitchOut:
        return await self.send(calls.switch_workers(switches))

    async def runs_on_host(self, host: str) -> HostRuns:
        return await self.send(calls.runs_on_host(host))

    async def cluster(self, include_stopped: bool = False) -> ClusterOut:
        return await self.send(calls.cluster(include_stopped))

    async def preview(self, expr: str, tz: str | None = None, after: str | None = None, n: int = 10,
                kind: str | None = None) -> PreviewOut:
        return await self.send(calls.preview(expr, tz, after, n, kind))

    # -- the audit trail (admins) ----------------------------------------------------------

    async def audit(self, app: str | None = None, namespace: str | None = None,
              action: str | None = None, outcome: str | None = None,
              token_prefix: str | None = None, since: str | None = None,
              until: str | None = None, limit: int = 100,
              cursor: str | None = None) -> AuditPage:
        return await self.send(calls.audit(app, namespace, action, outcome, token_prefix, since,
                                     until, limit, cursor))

    async def iter_audit(self, app: str | None = None, namespace: str | None = None,
                   action: str | None = None, outcome: str | None = None,
                   token_prefix: str | None = None, since: str | None = None,
                   until: str | None = None, page_size: int = 100) -> AsyncIterator[AuditEntryOut]:
        """Every matching entry, newest first, a page at a time."""
        cursor: str | None = None
        while True:
            page = await self.audit(app, namespace, action, outcome, token_prefix, since, until,
                                    page_size, cursor)
            for entry in page.entries:
                yield entry
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # -- apps, namespaces, tokens -----------------------------------------------------------------

    async def whoami(self) -> JsonObject:
        return await self.send(calls.whoami())

    async def apps(self) -> JsonObject:
        return await self.send(calls.apps())

    async def create_app(self, body: Mapping[str, Any]) -> JsonObject:
        return await self.send(calls.create_app(body))

    async def get_app(self, name: str) -> JsonObject:
        return await self.send(calls.get_app(name))

    async def update_app(self, name: str, body: Mapping[str, Any]) -> JsonObject:
        return await self.send(calls.update_app(name, body))

    async def remove_app(self, name: str) -> None:
        return await self.send(calls.remove_app(name))

    async def namespaces(self, app: str) -> JsonObject:
        return await self.send(calls.namespaces(app))

    async def add_namespace(self, app: str, claim: str) -> JsonObject:
        return await self.send(calls.add_namespace(app, claim))

    async def remove_namespace(self, app: str, claim: str) -> JsonObject:
        return await self.send(calls.remove_namespace(app, claim))

    async def tokens(self, app: str) -> JsonObject:
        return await self.send(calls.tokens(app))

    async def create_token(self, app: str, body: Mapping[str, Any]) -> JsonObject:
        return await self.send(calls.create_token(app, body))

    async def revoke_token(self, app: str, token_id: str) -> JsonObject:
        return await self.send(calls.revoke_token(app, token_id))

    async def admission_rules(self, app: str) -> JsonObject:
        return await self.send(calls.admission_rules(app))

    async def add_admission_rule(self, app: str, body: Mapping[str, Any]) -> JsonObject:
        return await self.send(calls.add_admission_rule(app, body))

    async def remove_admission_rule(self, app: str, dialect: str, network: str) -> None:
        return await self.send(calls.remove_admission_rule(app, dialect, network))

    async def qschedule_apps(self, app: str) -> JsonObject:
        return await self.send(calls.qschedule_apps(app))

    async def add_qschedule_app(self, app: str, body: Mapping[str, Any]) -> JsonObject:
        return await self.send(calls.add_qschedule_app(app, body))

    async def remove_qschedule_app(self, app: str, qid: int) -> None:
        return await self.send(calls.remove_qschedule_app(app, qid))

    async def set_sentinel_key(self, app: str, app_key: str | None = None) -> JsonObject:
        return await self.send(calls.set_sentinel_key(app, app_key))

    async def sentinel_key(self, app: str) -> JsonObject:
        return await self.send(calls.sentinel_key(app))

    async def remove_sentinel_key(self, app: str) -> None:
        return await self.send(calls.remove_sentinel_key(app))

    # -- the workers' protocol -----------------------------------------------------------------

    async def register_worker(self, name: str, groups: Sequence[str] = ("default",),
                        capacity: int = 4, host: str | None = None,
                        version: str = "", types: Sequence[str] | None = None) -> JsonObject:
        return await self.send(calls.register_worker(name, groups, capacity, host, version,
                                                     types))

    async def worker_heartbeat(self, worker_id: str, running: Sequence[str] = ()) -> JsonObject:
        return await self.send(calls.worker_heartbeat(worker_id, running))

    async def lease_tasks(self, worker_id: str, most: int = 1, wait: float = 0.0) -> JsonObject:
        return await self.send(calls.lease_tasks(worker_id, most, wait))

    async def task_output(self, worker_id: str, task_id: str, data: bytes, offset: int,
                    stream: str = "log") -> JsonObject:
        return await self.send(calls.task_output(worker_id, task_id, data, offset, stream))

    async def finish_task(self, worker_id: str, task_id: str, outcome: str,
                    exit_code: int | None = None, error: str | None = None,
                    result: bytes | None = None) -> JsonObject:
        return await self.send(calls.finish_task(worker_id, task_id, outcome, exit_code, error,
                                           result))

    async def stop_worker(self, worker_id: str) -> JsonObject:
        return await self.send(calls.stop_worker(worker_id))
