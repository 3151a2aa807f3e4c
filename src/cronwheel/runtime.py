"""Assembles one node: store, transports, dispatcher, scheduler and services."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import sys
from pathlib import Path

from prometheus_client import generate_latest

from cronwheel import __version__, secretbox, tokenfile
from cronwheel.apps_service import AppService, system_claims
from cronwheel.clock import DatabaseClock, SystemClock
from cronwheel.contracts import Clock, KubeRunStore, NodeInfo, NodeStore, WorkerTimings
from cronwheel.delivery import Transports
from cronwheel.delivery.kubernetes.clusters import Clusters, clusters_from_config
from cronwheel.delivery.kubernetes.transport import KubernetesTransport
from cronwheel.delivery.worker import WorkerTransport
from cronwheel.domain.admission import KUBERNETES_NAMESPACE
from cronwheel.domain.jobs import DEFAULT_NAMESPACE
from cronwheel.domain.time import US_PER_MS, US_PER_S
from cronwheel.engine import Dispatcher, EngineConfig, Scheduler
from cronwheel.engine.alerts import Alerter
from cronwheel.engine.dispatcher import DispatchConfig
from cronwheel.engine.duties import Duties, DutyConfig
from cronwheel.engine.failover import Failover
from cronwheel.engine.kubefollow import FollowConfig, KubeFollower, admit_clusters
from cronwheel.engine.resolver import Resolver, ResolverConfig, attach
from cronwheel.enginelink import READY, EngineProcess, Link, LinkChannel, die_with_parent
from cronwheel.ids import new_id
from cronwheel.quotas import Quotas
from cronwheel.service import Limits, Service
from cronwheel.settings import Settings
from cronwheel.store import SqlStore, make_store
from cronwheel.store.pg import PgChannel
from cronwheel.worker_service import WorkerHub, WorkerService


class Node:
    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        transports: Transports | None = None,
        run_engine: bool = True,
        clusters: Clusters | None = None,
        store: NodeStore | None = None,
        owner: str | None = None,
        link: LinkChannel | None = None,
        engine_child: bool = False,
    ) -> None:
        """`clock`, `transports` and `store` are for tests (cronwheel.testing); a server
        builds its own from the settings. With `engine_child` (`serve`, as
        `settings.engine_process` says) an API-only node (`run_engine=False`) starts its
        engine as a child process; that engine's node is built with the `owner` and the
        `link` its parent gave it (`engine_main`). Other API-only nodes run no engine."""
        self.settings = settings
        self.db_clock = DatabaseClock(SystemClock(settings.clock_offset_ms * US_PER_MS))
        self.clock: Clock = clock or self.db_clock
        # A fresh owner per start: a restarted node never mistakes old leases for its own.
        self.owner = owner or f"{settings.node_name}:{new_id()[-12:]}"
        self.store: NodeStore = store or make_store(settings.database_url,
                                                    node=settings.node_name)
        self.run_engine = run_engine
        policy = settings.target_policy()
        self.transports = transports or Transports(
            policy=policy, kafka_bootstrap=settings.kafka_brokers,
            delayjob_unit=settings.delayjob_callback_time_unit,
        )
        self.hub = WorkerHub()
        timings = WorkerTimings(heartbeat_s=settings.worker_heartbeat_seconds,
                                lease_s=settings.worker_lease_seconds,
                                recheck_s=settings.worker_poll_seconds)
        self.transports.add("worker", WorkerTransport(self.store.workers, self.clock, self.hub,
                                                      self.owner, timings))
        lease = round(settings.lease_seconds * US_PER_S)
        self.clusters = clusters or clusters_from_config(settings.kubernetes_clusters)
        self.kube_runs, self.kube_follower = self._kubernetes(settings, max(lease, 30 * US_PER_S))
        self.dispatcher = Dispatcher(
            self.store,
            self.transports,
            self.clock,
            self.owner,
            settings.node_name,
            DispatchConfig(
                concurrency=settings.delivery_concurrency,
                per_target=settings.delivery_per_target,
                per_namespace=settings.delivery_per_namespace,
                capacity=settings.delivery_capacity,
                lease_us=lease,
            ),
            on_retry=self._run_due,
        )
        self.scheduler = Scheduler(
            self.store,
            self.dispatcher,
            self.clock,
            self.owner,
            EngineConfig(
                window_us=settings.window_ms * US_PER_MS,
                claim_limit=settings.claim_limit,
                claim_batch=settings.claim_batch,
                fire_batch=settings.fire_batch,
                fire_pass_us=round(settings.fire_pass_ms * US_PER_MS),
                job_lease_us=lease,
                fire_lead_us=round(settings.fire_lead_ms * US_PER_MS),
                fire_gather_us=round(settings.fire_gather_ms * US_PER_MS),
            ),
        )
        sweep = round(settings.dependency_sweep_seconds * US_PER_S)
        self.resolver = Resolver(self.store, self.clock, self._run_due, ResolverConfig(sweep))
        attach(self.resolver, self.scheduler, self.dispatcher)
        # per-app limits, per node, in memory (docs/security.md, "Limits")
        self.quotas = Quotas(self.store.apps, self.store, settings.app_limit_defaults(),
                             settings.app_limits_system)
        self.scheduler.quotas = self.quotas
        self.service = Service(self.store, self.clock, self.scheduler if run_engine else None,
                               Limits(settings.max_batch, settings.max_payload_bytes,
                                      settings.max_backfill), policy, self.quotas)
        self.service.admit = admit_clusters(self.clusters)
        self.workers = WorkerService(self.store, self.clock,
                                     self.scheduler if run_engine else None, self.hub, timings)
        self.alerter = Alerter(self.store.alerts, self.clock, policy)
        self.apps = AppService(self.store.apps, self.clock, self.store.admission,
                               single_node=self.store.single_node)
        self.apps.on_change = self.quotas.invalidate
        self.engine_process = (EngineProcess(settings)
                               if engine_child and not run_engine else None)
        if self.engine_process is not None:
            link = self.engine_process.channel
        # an API-only node's scheduler never runs: wake-ups for it would only pile up
        job_due, run_due = ((self.scheduler.job_due, self.scheduler.run_due) if run_engine
                            else (_unheard, _unheard))
        self.channel: PgChannel | LinkChannel | None = None
        if not self.store.single_node:
            self.channel = PgChannel(settings.database_url, job_due, run_due, self.hub.notify)
        elif link is not None and isinstance(self.store, SqlStore):
            # SQLite's wake-ups cross the link; the API process holds the file lock
            self.store.split_server(link.send_notes, holds_lock=not run_engine)
            if self.engine_process is not None:
                self.engine_process.keep_priority = self.store.writer_threads
            self.channel = link
        if link is not None:
            link.listen(job_due, run_due, self.hub.notify)
        # runs ended on workers release their dependents at once, across the link if need be
        if run_engine:
            self.workers.on_settled = self.resolver.settled
            if link is not None:
                link.on_settled = self.resolver.settled
        elif self.engine_process is not None:
            self.workers.on_settled = self.engine_process.channel.send_settled
        self.failover = self._failover(lease) if run_engine else None
        self.info = NodeInfo(
            owner=self.owner,
            name=settings.node_name,
            address=settings.advertised_address or
            f"{'https' if settings.tls_cert else 'http'}://{settings.host}:{settings.port}",
            version=__version__,
            started_at=self.db_clock.now(),
        )
        self.duties = Duties(
            self.store, self.db_clock, self.info, self._lead,
            DutyConfig(heartbeat_s=settings.heartbeat_seconds,
                       upkeep_s=settings.upkeep_seconds,
                       retention_us=round(settings.retention_days * 86_400 * US_PER_S),
                       log_retention_us=round(settings.log_retention_days * 86_400 * US_PER_S),
                       audit_retention_us=round(
                           settings.audit_retention_days * 86_400 * US_PER_S)),
            reconnect=self._listen,  # API-only nodes too: workers long-poll them
            every_beat=[self.workers.reap, self.alerter.send_due] if run_engine else [],
            purge_audit=self.store.audit.purge,
        )

    def _kubernetes(
        self, settings: Settings, lease_us: int
    ) -> tuple[KubeRunStore | None, KubeFollower | None]:
        """The follower and the kubernetes transport, on the SQL store's Kubernetes runs. A
        store without them (the memory store) serves a node with no cluster configured."""
        if not isinstance(self.store, SqlStore):
            if self.clusters.ids():
                raise ValueError("Kubernetes clusters need a SQL store (SQLite or PostgreSQL)")
            return None, None
        kube = self.store.kube
        follower = KubeFollower(
            kube, self.clusters, self.clock, self.owner, lambda: self.transports.get("http"),
            FollowConfig(lease_us=lease_us, poll_s=settings.kubernetes_poll_seconds,
                         retention_us=round(settings.retention_days * 86_400 * US_PER_S)))
        self.transports.add("kubernetes", KubernetesTransport(
            kube, self.clusters, self.clock, self.owner, lease_us, follower.wake))
        return kube, follower

    def _failover(self, lease_us: int) -> Failover | None:
        """On PostgreSQL: this node's session lock, the fast release of dead nodes' claims, and
        each live node's share of the claims."""
        liveness = self.store.liveness(self.owner) if isinstance(self.store, SqlStore) else None
        if liveness is None:
            return None
        failover = Failover(liveness, lambda: self.store.release(self.owner), self.db_clock,
                            self.owner, lease_us)
        failover.on_lost += [self.scheduler.drop]
        failover.on_released += [lambda: self.scheduler.job_due(0),
                                 lambda: self.scheduler.run_due(0)]
        self.scheduler.gate = self.dispatcher.gate = failover
        return failover

    async def _lead(self) -> bool:
        return True if self.channel is None else await self.channel.lead()

    async def _listen(self) -> None:
        """Keep the wake-up channel connected; a gap costs only latency, never a fire."""
        if self.channel is not None and not self.channel.connected:
            await self.channel.connect()

    def _run_due(self, due_at: int) -> None:
        self.scheduler.run_due(due_at)

    @property
    def engine_owner(self) -> str | None:
        """The owner id the engine firing for this server claims under, if it runs."""
        if self.engine_process is not None:
            return self.engine_process.owner
        return self.owner if self.run_engine else None

    async def start(self) -> None:
        await self.store.start()
        await self._first_start()
        if self.run_engine:
            await self.workers.start()
        if self.failover is not None:  # the lock first: a node listed alive holds it
            await self.failover.start()
        await self.duties.start()
        if self.run_engine:
            if self.store.single_node:  # one node per file: every old lease is a dead process's
                await self.store.release(None)
            await self.transports.warm("http")
            self.dispatcher.start()
            self.scheduler.start()
            self.resolver.start()
            if self.kube_follower is not None:
                await self.kube_follower.begin()
        if self.engine_process is not None:  # once the API's node is set up: no first-start race
            await self.engine_process.start()

    async def _first_start(self) -> None:
        """Make sure an admin token exists (see AppService.first_start)."""
        settings = self.settings
        claims = system_claims(DEFAULT_NAMESPACE, settings.delayjob_namespace,
                               settings.dispatch_namespace_prefix,
                               [app.name for app in settings.qschedule_apps],
                               KUBERNETES_NAMESPACE)
        path = tokenfile.token_path(settings.host, settings.port, settings.admin_token_file)
        provisioned = settings.admin_token.get_secret_value() if settings.admin_token else None
        await self.apps.first_start(claims, path, provisioned)
        self.apps.box = server_box(settings, path)
        await self.apps.reseal_secrets()
        # CRONWHEEL_QSCHEDULE_APPS becomes app data (idempotent; the tokens kept as hashes)
        await self.apps.import_qschedule(
            (app.id, app.name, app.token) for app in settings.qschedule_apps)
        await self.apps.warm()

    async def stop(self) -> None:
        if self.engine_process is not None:  # first: it hands its claims back
            await self.engine_process.stop(self.settings.shutdown_grace_seconds)
        if self.kube_follower is not None:
            await self.kube_follower.stop()
        await self.clusters.aclose()
        if self.run_engine:
            await self.resolver.stop()
            await self.scheduler.stop()
            await self.dispatcher.close(self.settings.shutdown_grace_seconds)
            await self.scheduler.release()
        if self.failover is not None:  # after handing back: a free lock means nothing held
            await self.failover.stop()
        await self.duties.stop()
        await self.alerter.aclose()
        if self.channel is not None:
            await self.channel.close()
        await self.store.close()


def _unheard(_due_at: int | None) -> None:
    return None


def server_box(settings: Settings, admin_token_path: Path) -> secretbox.SecretBox:
    """The server key: the setting, or the key file beside the admin token file (made now,
    0600, if missing); the previous keys of a rotation open what they sealed."""
    if settings.secret_key is not None:
        key = secretbox.parse_key(settings.secret_key.get_secret_value())
    else:
        key = secretbox.load_or_create(secretbox.key_path(admin_token_path))
    previous = settings.previous_secret_keys
    old = [] if previous is None else [
        secretbox.parse_key(text, "CRONWHEEL_PREVIOUS_SECRET_KEYS")
        for text in previous.get_secret_value().split(",") if text.strip()]
    return secretbox.SecretBox(key, old)


def use_switch_interval(settings: Settings) -> None:
    """A server's processes hand the interpreter lock between threads every
    `switch_interval_ms` rather than Python's 5 ms: a thread that finished a SQLite call
    (aiosqlite's, the API process's writer holding the file's write lock) waits that long for
    the lock while the event loop's thread runs Python. Measured in bench/README.md, session
    11 (an API writer's transactions held for 100-170 ms at 5 ms)."""
    sys.setswitchinterval(settings.switch_interval_ms / 1000)


async def engine_main(settings: Settings, link_fd: int, owner: str, parent: int) -> None:
    """The engine process of a server (`cronwheel engine`, started by `serve`): a node that
    fires and delivers and serves no API, until SIGTERM; gone at once with its parent."""
    die_with_parent(parent)
    use_switch_interval(settings)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the parent's to act on
    channel = LinkChannel(leader=True)
    channel.metrics_page = generate_latest
    link = Link(socket.socket(fileno=link_fd), channel.message)
    await link.open()
    channel.attach(link)
    node = Node(settings, owner=owner, link=channel)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await node.start()
    gc.collect()
    gc.freeze()  # as the API process does: keep start-up's objects out of full collections
    link.send(READY, node.owner)
    ended = [asyncio.create_task(stop.wait()), asyncio.create_task(link.closed.wait())]
    await asyncio.wait(ended, return_when=asyncio.FIRST_COMPLETED)
    if not stop.is_set():  # the parent is gone without stopping us: a crash, not a stop
        os._exit(70)
    await node.stop()
    await link.close()
