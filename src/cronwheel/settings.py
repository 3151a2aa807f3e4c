"""One settings object; every field can be set as CRONWHEEL_<NAME> in the environment."""

from __future__ import annotations

import os
import socket
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from cronwheel.domain.access import AppLimits
from cronwheel.domain.netpolicy import LOOPBACK, NetPolicy, PolicyError

# A list setting from the environment: comma-separated, or a JSON array.
TextList = Annotated[list[str], NoDecode]


def _default_node() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class QscheduleApp(BaseModel):
    id: int
    name: str = Field(min_length=1, max_length=255)
    token: str = Field(min_length=8)


class KubeCluster(BaseModel):
    """A Kubernetes cluster Jobs may run on: a kubeconfig file (and context), or the
    service account of the pod cronwheel runs in. `namespace` is where the start-up and
    health checks list Jobs (so they prove the RBAC role too)."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    namespace: str = "default"

    @model_validator(mode="after")
    def _one_source(self) -> KubeCluster:
        if (self.kubeconfig is None) == (not self.in_cluster):
            raise ValueError(f"cluster {self.id!r} needs a kubeconfig or in_cluster, not both")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRONWHEEL_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(1989, ge=1, le=65535)
    database_url: str = "sqlite:///cronwheel.db"
    node_name: str = Field(default_factory=_default_node)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    log_format: Literal["text", "json"] = "text"  # json: one object per line, for collectors
    access_log: bool = True  # one http.request event per API request

    # engine
    # `serve` runs the engine (firing, delivery) in a child process of its own, so API load
    # never takes its CPU (docs/design.md, "Processes"); False keeps one process
    engine_process: bool = True
    # ... and the API process then lowers its own priority this many nice steps, so under CPU
    # contention the engine's process is served first (Linux; 0 keeps them equal)
    api_nice: int = Field(5, ge=0, le=19)
    # how often a server's threads take turns at the interpreter lock (Python's default: 5)
    switch_interval_ms: float = Field(0.5, ge=0.05, le=100.0)
    window_ms: int = Field(2_000, ge=50, le=60_000)
    claim_limit: int = Field(5_000, ge=10, le=100_000)
    fire_lead_ms: float = Field(100.0, ge=0, le=1_000)
    fire_gather_ms: float = Field(20.0, ge=0, le=1_000)
    claim_batch: int = Field(500, ge=10, le=10_000)
    fire_batch: int = Field(2_000, ge=10, le=100_000)
    # how long a fire pass should take while several namespaces hold jobs in the window
    fire_pass_ms: float = Field(30.0, ge=0.001, le=10_000)
    delivery_concurrency: int = Field(512, ge=1, le=10_000)
    delivery_per_target: int = Field(128, ge=1, le=10_000)
    delivery_per_namespace: int = Field(256, ge=1, le=10_000)
    delivery_capacity: int = Field(20_000, ge=10, le=1_000_000)
    # How long a claim or a delivery is held; a dead node's work moves after this.
    lease_seconds: float = Field(8.0, ge=1, le=3_600)
    heartbeat_seconds: float = Field(1.0, ge=0.05, le=60)
    upkeep_seconds: float = Field(60.0, ge=0.1, le=86_400)
    # how often waiting runs are judged again without an event, and expired (dependencies)
    dependency_sweep_seconds: float = Field(5.0, ge=0.05, le=3_600)
    retention_days: float = Field(30.0, gt=0, le=36_500)  # finished runs kept this long
    # output (logs and results) of runs on workers is kept this long, at most as long as runs
    log_retention_days: float = Field(7.0, gt=0, le=36_500)
    audit_retention_days: float = Field(90.0, gt=0, le=36_500)  # audit entries kept this long
    advertised_address: str | None = None  # shown in /v1/cluster; default http://host:port
    clock_offset_ms: int = 0  # skews this node's own clock: for testing clock skew only
    shutdown_grace_seconds: float = Field(10.0, ge=0, le=600)  # for deliveries under way

    # workers: a worker silent for worker_lease_seconds is offline and its tasks are retried
    worker_heartbeat_seconds: float = Field(1.0, ge=0.05, le=60)
    worker_lease_seconds: float = Field(5.0, ge=0.5, le=3_600)
    # a waiting lease re-reads the database this often; hand-offs on the same node (and on
    # PostgreSQL, on any node) wake it at once
    worker_poll_seconds: float = Field(0.5, ge=0.05, le=60)
    # qschedule dialect, as earlier versions configured it: the applications and their
    # Q-Server-Token, as JSON: [{"id": 163, "name": "qschedule.demo", "token": "..."}]; each
    # is imported into app data at start-up (docs/auth.md), where the dialect reads them
    qschedule_apps: list[QscheduleApp] = Field(default_factory=list)

    # target guard (docs/security.md): internal networks jobs may reach (loopback by default,
    # for the quick start's receivers), networks they may not, URL schemes, redirects. The
    # always-denied set (link-local, cloud metadata, multicast) cannot be allowed.
    target_allow: TextList = Field(default_factory=lambda: list(LOOPBACK))
    target_deny: TextList = Field(default_factory=list)
    target_schemes: TextList = Field(default_factory=lambda: ["http", "https"])
    target_follow_redirects: bool = False
    # request hardening: the largest request body read, and the Host names answered (DNS
    # rebinding); None means loopback names and the bound host, "*" means any
    max_body_bytes: int = Field(16 * 1_048_576, ge=1_024)  # a 10,000-job batch: 6-9 MiB
    # GET/HEAD requests worked on at once; the rest wait their turn, so reads cannot crowd
    # out writes on the API's loop (api/lanes.py)
    read_concurrency: int = Field(2, ge=1, le=10_000)
    allowed_hosts: TextList | None = None

    @field_validator("target_allow", "target_deny", "target_schemes", "allowed_hosts",
                     mode="before")
    @classmethod
    def _text_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return orjson.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _policy_valid(self) -> Settings:
        try:
            self.target_policy()
        except PolicyError as exc:
            raise ValueError(str(exc)) from None
        return self

    def target_policy(self) -> NetPolicy:
        """The server's policy; apps may later carry their own (issue 10's app work)."""
        return NetPolicy.from_settings(self.target_allow, self.target_deny,
                                       self.target_schemes, self.target_follow_redirects)

    def app_limit_defaults(self) -> AppLimits:
        """The server's default per-app limits (None: unlimited)."""
        return AppLimits(
            max_jobs=self.app_max_jobs or None,
            submits_per_second=self.app_submits_per_second or None,
            submit_burst=self.app_submit_burst or None,
            max_batch=self.max_batch, max_payload_bytes=self.max_payload_bytes,
            min_interval_seconds=self.app_min_interval_seconds or None,
            fires_per_second=self.app_fires_per_second or None,
        )

    @property
    def kafka_brokers(self) -> tuple[str, ...]:
        return tuple(b.strip() for b in self.kafka_bootstrap.split(",") if b.strip())

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("qschedule_apps")
    @classmethod
    def _apps_distinct(cls, apps: list[QscheduleApp]) -> list[QscheduleApp]:
        """A token names one application: two apps sharing one would see each other's jobs."""
        for attribute in ("id", "name", "token"):
            values = [getattr(app, attribute) for app in apps]
            if len(set(values)) != len(values):
                raise ValueError(f"each qschedule app needs its own {attribute}")
        return apps

    # API limits
    max_batch: int = Field(10_000, ge=1, le=100_000)
    max_payload_bytes: int = Field(1_048_576, ge=1_024)
    max_backfill: int = Field(1_000, ge=1, le=100_000)  # planned instants per rerun request
    # per-app limits (docs/security.md, "Limits"): the defaults for every app but `system`
    # (unlimited unless app_limits_system); an app's own limits (`cronwheel apps limits`)
    # win; 0 means unlimited. max_batch and max_payload_bytes above apply to every app.
    app_max_jobs: int = Field(1_000_000, ge=0)  # active or paused jobs an app holds
    app_submits_per_second: float = Field(1_000.0, ge=0, le=1e9)  # per node (token bucket)
    app_submit_burst: int = Field(10_000, ge=0, le=1_000_000_000)  # the bucket's size
    app_min_interval_seconds: float = Field(1.0, ge=0, le=1e9)  # shortest repeat of a schedule
    app_fires_per_second: float = Field(1_000.0, ge=0, le=1e9)  # per node; more fires wait
    app_limits_system: bool = False  # the system app (quick start, bench) gets the defaults too
    delayjob_namespace: str = "delayjob"
    # delay-job callbacks' triggerTime: "ms" as the service's code sends it, or "s" as its
    # document says (for receivers written from the document); see docs/dialects/delayjob.md
    delayjob_callback_time_unit: Literal["ms", "s"] = "ms"
    # the server's Kafka brokers ("host:port,host:port"), for kafka targets that name none
    # (the delay-job dialect's bare topics)
    kafka_bootstrap: str = ""
    # delay-job dialect: its gRPC management API (delay.job.Job); port 0 turns it off.
    # Loopback by default: the address is the network policy until issue 10's model exists.
    delayjob_grpc_host: str = "127.0.0.1"
    delayjob_grpc_port: int = Field(1990, ge=0, le=65535)
    # dispatchserver dialect: each groupCode becomes the namespace "<prefix><groupCode>"
    dispatch_namespace_prefix: str = "dispatch:"
    # Quartz clients' cron expressions and "yyyy-MM-dd HH:mm:ss" dates are in the JVM's zone;
    # the in-house deployments this dialect serves ran on China Standard Time.
    dispatch_timezone: str = "Asia/Shanghai"
    # Sentinel dialect: the zone of its cron expressions and 'yyyy-MM-dd HH:mm:ss' rate starts
    # (Jarvis ran on China Standard Time)
    sentinel_timezone: str = "Asia/Shanghai"

    # apps and tokens: the first admin token, provisioned by the operator (stored hashed,
    # never logged); without it the first start makes one and writes it to admin_token_file
    # (default: $XDG_CONFIG_HOME or ~/.config, /cronwheel/tokens/<host>_<port>)
    admin_token: SecretStr | None = None
    admin_token_file: str | None = None
    # the server key sealing secrets it must read back (Sentinel appKeys): base64 of 32
    # bytes, the same on every node; unset: a key file made beside admin_token_file (0600).
    # Keys being rotated out stay in previous_secret_keys (comma-separated) until re-sealed.
    secret_key: SecretStr | None = None
    previous_secret_keys: SecretStr | None = None
    metrics_public: bool = False  # serve /metrics without a token
    # TLS terminated by the server itself: PEM certificate (chain) and private key files
    tls_cert: str | None = None
    tls_key: str | None = None
    # Kubernetes clusters, as JSON: [{"id": "prod", "kubeconfig": "/etc/k/config",
    # "context": "prod"}, {"id": "here", "in_cluster": true}]; see docs/kubernetes.md
    kubernetes_clusters: list[KubeCluster] = Field(default_factory=list)
    # a Kubernetes run's follower steps this often without a watch event
    kubernetes_poll_seconds: float = Field(5.0, ge=0.05, le=300)
