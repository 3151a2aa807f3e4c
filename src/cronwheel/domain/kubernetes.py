"""Kubernetes targets: a run becomes one `batch/v1` Job on a configured cluster.

The target is a value checked at submit time; `job_manifest` turns it and a run into the
Job to create. Everything here is pure: which clusters exist is checked by the service
(the configuration is not the domain's), and talking to an API server is `delivery/`'s.

One run is one Job. Its name derives from the run id alone, so a create repeated after a
lost answer, a crash or a take-over finds the Job it made (AlreadyExists is adopted).
Kubernetes retries pods (`backoff_limit`); cronwheel retries only failures to create.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

import orjson

from cronwheel.domain.errors import InvalidField

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_CLUSTER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|Pi|Ei|M|G|T|P|E)?$")
NAME_LIMIT = 63
JOB_PREFIX = "cw-"
MAX_SECONDS = 30 * 86_400
MAX_PODS = 10_000

# Labels on every Job and its pods: what the Job is for, and who made it.
LABEL_MANAGED = "app.kubernetes.io/managed-by"
LABEL_JOB = "cronwheel.io/job"
LABEL_RUN = "cronwheel.io/run"
LABEL_ORIGIN = "cronwheel.io/origin"
MANAGER = "cronwheel"
ANNOTATION_KEY = "cronwheel.io/key"
ANNOTATION_KEEP_SUCCEEDED = "cronwheel.io/keep-succeeded"
ANNOTATION_KEEP_FAILED = "cronwheel.io/keep-failed"
MAX_HISTORY = 1_000
KUBE_OWNER = "kubernetes"
"""The lease owner of a run handed to a cluster: its follower, not a node's rescue, ends it."""
ANNOTATION_NAMESPACE = "cronwheel.io/namespace"


class RestartPolicy(StrEnum):
    NEVER = "Never"
    ON_FAILURE = "OnFailure"


class LogCollect(StrEnum):
    """Whose pod logs are kept: a failed run's always; a successful run's when asked."""

    FAILURE = "failure"
    ALWAYS = "always"


@dataclass(frozen=True, slots=True)
class KubernetesTarget:
    cluster: str
    namespace: str
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    resources_json: str = "{}"  # {"requests": {...}, "limits": {...}}, canonical JSON
    parallelism: int = 1
    completions: int = 1
    backoff_limit: int = 0
    active_deadline: int | None = None  # seconds
    ttl_after_finished: int | None = 300  # seconds; the pods go with the Job
    restart_policy: RestartPolicy = RestartPolicy.NEVER
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    service_account: str | None = None
    image_pull_secrets: tuple[str, ...] = ()
    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations_json: str = "[]"
    logs: LogCollect = LogCollect.FAILURE
    callback_url: str | None = None
    # finished Jobs of this cronwheel job kept in the cluster (None: the TTL decides alone)
    keep_succeeded: int | None = None
    keep_failed: int | None = None
    kind: ClassVar[str] = "kubernetes"
    timeout: ClassVar[float] = 30.0  # for creating the Job; the Job's own is active_deadline

    @property
    def slot(self) -> str:
        return f"kubernetes:{self.cluster}"

    @property
    def resources(self) -> dict[str, Any]:
        value: dict[str, Any] = orjson.loads(self.resources_json)
        return value

    @property
    def tolerations(self) -> list[dict[str, Any]]:
        value: list[dict[str, Any]] = orjson.loads(self.tolerations_json)
        return value

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind, "cluster": self.cluster, "namespace": self.namespace,
            "image": self.image, "command": list(self.command), "args": list(self.args),
            "env": dict(self.env), "resources": self.resources,
            "parallelism": self.parallelism, "completions": self.completions,
            "backoff_limit": self.backoff_limit, "active_deadline": self.active_deadline,
            "ttl_after_finished": self.ttl_after_finished,
            "restart_policy": self.restart_policy.value, "labels": dict(self.labels),
            "annotations": dict(self.annotations), "service_account": self.service_account,
            "image_pull_secrets": list(self.image_pull_secrets),
            "node_selector": dict(self.node_selector), "tolerations": self.tolerations,
            "logs": self.logs.value, "callback_url": self.callback_url,
            "keep_succeeded": self.keep_succeeded, "keep_failed": self.keep_failed,
        }
        return data


# -- parsing --------------------------------------------------------------------------------


def _text(data: dict[str, Any], name: str, prefix: str, limit: int = 1024) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InvalidField(f"{name} is required: a string of at most {limit} characters",
                           f"{prefix}.{name}")
    return value.strip()


def _count(data: dict[str, Any], name: str, prefix: str, default: int | None, low: int,
           high: int) -> int | None:
    value = data.get(name, default)
    if value is None and default is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidField(f"{name} must be a whole number from {low} to {high}",
                           f"{prefix}.{name}")
    return value


def _strings(data: dict[str, Any], name: str, prefix: str) -> tuple[str, ...]:
    value = data.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidField(f"{name} must be a list of strings", f"{prefix}.{name}")
    return tuple(value)


def _mapping(data: dict[str, Any], name: str, prefix: str) -> dict[str, str]:
    value = data.get(name, {})
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InvalidField(f"{name} must map names to strings", f"{prefix}.{name}")
    return value


def _label_key(key: str) -> bool:
    """`[prefix/]name`: a DNS subdomain prefix of at most 253, a name of at most 63."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return False
    return len(name) <= NAME_LIMIT and bool(_LABEL_NAME.match(name))


def _labels(data: dict[str, Any], name: str, prefix: str, values: bool) -> dict[str, str]:
    found = _mapping(data, name, prefix)
    for key, value in found.items():
        if not _label_key(key) or key.startswith("cronwheel.io/"):
            raise InvalidField(f"{key!r} is not a label key cronwheel may set",
                               f"{prefix}.{name}")
        if values and (len(value) > NAME_LIMIT or not _LABEL_VALUE.match(value)):
            raise InvalidField(f"{value!r} is not a valid label value", f"{prefix}.{name}")
    return found


def _resources(data: dict[str, Any], prefix: str) -> dict[str, dict[str, str]]:
    value = data.get("resources", {})
    field = f"{prefix}.resources"
    if not isinstance(value, dict) or set(value) - {"requests", "limits"}:
        raise InvalidField("resources may hold only 'requests' and 'limits'", field)
    out: dict[str, dict[str, str]] = {}
    for part, amounts in value.items():
        if not isinstance(amounts, dict):
            raise InvalidField(f"{part} must map resource names to quantities", field)
        for name, amount in amounts.items():
            if not isinstance(amount, str | int) or isinstance(amount, bool) or \
                    not _QUANTITY.match(str(amount)) or not _label_key(str(name)):
                raise InvalidField(f"{part}.{name} must be a quantity like '250m' or '64Mi'",
                                   field)
        out[part] = {str(k): str(v) for k, v in sorted(amounts.items())}
    return out


_TOLERATION_KEYS = {"key", "operator", "value", "effect", "tolerationSeconds"}


def _tolerations(data: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    value = data.get("tolerations", [])
    field = f"{prefix}.tolerations"
    if not isinstance(value, list):
        raise InvalidField("tolerations must be a list of objects", field)
    for item in value:
        if not isinstance(item, dict) or set(item) - _TOLERATION_KEYS:
            raise InvalidField(f"each toleration may hold only {sorted(_TOLERATION_KEYS)}",
                               field)
        if item.get("operator", "Equal") not in ("Equal", "Exists"):
            raise InvalidField("a toleration's operator is Equal or Exists", field)
        if item.get("effect", "NoSchedule") not in ("NoSchedule", "PreferNoSchedule",
                                                    "NoExecute"):
            raise InvalidField("a toleration's effect is NoSchedule, PreferNoSchedule or "
                               "NoExecute", field)
    return value


def _enum(data: dict[str, Any], name: str, prefix: str, kind: type[StrEnum],
          default: StrEnum) -> Any:
    raw = data.get(name, default.value)
    for member in kind:
        if isinstance(raw, str) and raw.lower() == member.value.lower():
            return member
    raise InvalidField(f"{name} must be one of {[m.value for m in kind]}", f"{prefix}.{name}")


def _callback(data: dict[str, Any], prefix: str) -> str | None:
    value = data.get("callback_url")
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not re.match(r"^https?://[^/\s]+", value):
        raise InvalidField("callback_url must be an http(s) URL", f"{prefix}.callback_url")
    return value


def _names(data: dict[str, Any], prefix: str) -> tuple[str, str, str]:
    cluster = _text(data, "cluster", prefix, 63)
    if not _CLUSTER_ID.match(cluster):
        raise InvalidField("cluster must be a configured cluster id", f"{prefix}.cluster")
    namespace = _text(data, "namespace", prefix, NAME_LIMIT)
    if not DNS_LABEL.match(namespace):
        raise InvalidField("namespace must be a DNS-1123 label (a-z, 0-9, '-')",
                           f"{prefix}.namespace")
    account = data.get("service_account")
    if account is not None and (not isinstance(account, str) or len(account) > 253
                                or not _DNS_SUBDOMAIN.match(account)):
        raise InvalidField("service_account must be a DNS-1123 name",
                           f"{prefix}.service_account")
    return cluster, namespace, _text(data, "image", prefix)


def _env(data: dict[str, Any], prefix: str) -> dict[str, str]:
    env = _mapping(data, "env", prefix)
    for name in env:
        if not _ENV_NAME.match(name):
            raise InvalidField(f"{name!r} is not a valid environment variable name",
                               f"{prefix}.env")
    return env


def parse_kubernetes_target(data: dict[str, Any], prefix: str) -> KubernetesTarget:
    cluster, namespace, image = _names(data, prefix)
    secrets = _strings(data, "image_pull_secrets", prefix)
    if not all(_DNS_SUBDOMAIN.match(s) for s in secrets):
        raise InvalidField("image_pull_secrets must name secrets", f"{prefix}.image_pull_secrets")
    restart = _enum(data, "restart_policy", prefix, RestartPolicy, RestartPolicy.NEVER)
    completions = _count(data, "completions", prefix, 1, 1, MAX_PODS)
    parallelism = _count(data, "parallelism", prefix, 1, 0, MAX_PODS)
    backoff = _count(data, "backoff_limit", prefix, 0, 0, 1_000)
    assert completions is not None and parallelism is not None and backoff is not None
    account = data.get("service_account")
    return KubernetesTarget(
        cluster=cluster, namespace=namespace, image=image,
        command=_strings(data, "command", prefix), args=_strings(data, "args", prefix),
        env=tuple(sorted(_env(data, prefix).items())),
        resources_json=_canonical(_resources(data, prefix)),
        parallelism=parallelism, completions=completions, backoff_limit=backoff,
        active_deadline=_count(data, "active_deadline", prefix, None, 1, MAX_SECONDS),
        ttl_after_finished=_count(data, "ttl_after_finished", prefix, 300, 0, MAX_SECONDS),
        restart_policy=restart,
        labels=tuple(sorted(_labels(data, "labels", prefix, True).items())),
        annotations=tuple(sorted(_labels(data, "annotations", prefix, False).items())),
        service_account=account if isinstance(account, str) else None,
        image_pull_secrets=secrets,
        node_selector=tuple(sorted(_labels(data, "node_selector", prefix, True).items())),
        tolerations_json=_canonical(_tolerations(data, prefix)),
        logs=_enum(data, "logs", prefix, LogCollect, LogCollect.FAILURE),
        callback_url=_callback(data, prefix),
        keep_succeeded=_count(data, "keep_succeeded", prefix, None, 0, MAX_HISTORY),
        keep_failed=_count(data, "keep_failed", prefix, None, 0, MAX_HISTORY),
    )


def _canonical(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


# -- the Job --------------------------------------------------------------------------------


def job_name_for(run_id: str) -> str:
    """A DNS-1123 label of at most 63 characters, the same for every delivery of the run.
    Pods add six characters, so the name stays short enough for theirs too."""
    plain = re.sub(r"[^a-z0-9-]", "-", run_id.lower()).strip("-")
    if plain and len(JOB_PREFIX + plain) <= 52 and plain == run_id.lower():
        return JOB_PREFIX + plain
    return JOB_PREFIX + hashlib.sha256(run_id.encode()).hexdigest()[:40]


def label_value(text: str) -> str:
    """Any text as a valid label value (the origin namespace may hold ':' or '/')."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:NAME_LIMIT].strip("_.-")
    return cleaned


@dataclass(frozen=True, slots=True)
class RunRef:
    """What the Job says about where it came from."""

    run_id: str
    job_id: str
    namespace: str  # cronwheel's namespace of the job
    key: str


def job_labels(ref: RunRef) -> dict[str, str]:
    return {LABEL_MANAGED: MANAGER, LABEL_JOB: label_value(ref.job_id),
            LABEL_RUN: label_value(ref.run_id), LABEL_ORIGIN: label_value(ref.namespace)}


def run_selector(run_id: str) -> str:
    return f"{LABEL_RUN}={label_value(run_id)}"


def _container(target: KubernetesTarget) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "job", "image": target.image}
    if target.command:
        container["command"] = list(target.command)
    if target.args:
        container["args"] = list(target.args)
    if target.env:
        container["env"] = [{"name": k, "value": v} for k, v in target.env]
    if target.resources:
        container["resources"] = target.resources
    return container


def _pod_spec(target: KubernetesTarget) -> dict[str, Any]:
    spec: dict[str, Any] = {"restartPolicy": target.restart_policy.value,
                            "containers": [_container(target)]}
    if target.service_account:
        spec["serviceAccountName"] = target.service_account
    if target.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": s} for s in target.image_pull_secrets]
    if target.node_selector:
        spec["nodeSelector"] = dict(target.node_selector)
    if target.tolerations:
        spec["tolerations"] = target.tolerations
    return spec


def job_manifest(target: KubernetesTarget, ref: RunRef) -> dict[str, Any]:
    """The `batch/v1` Job of one run: the caller's labels and annotations, then cronwheel's
    (which win, so a Job can always be traced back to its run)."""
    labels = dict(target.labels) | job_labels(ref)
    annotations = dict(target.annotations) | {ANNOTATION_NAMESPACE: ref.namespace,
                                               ANNOTATION_KEY: ref.key}
    for name, keep in ((ANNOTATION_KEEP_SUCCEEDED, target.keep_succeeded),
                       (ANNOTATION_KEEP_FAILED, target.keep_failed)):
        if keep is not None:  # the follower reads them from the Job it made
            annotations[name] = str(keep)
    spec: dict[str, Any] = {
        "parallelism": target.parallelism,
        "completions": target.completions,
        "backoffLimit": target.backoff_limit,
        "template": {"metadata": {"labels": labels}, "spec": _pod_spec(target)},
    }
    if target.active_deadline is not None:
        spec["activeDeadlineSeconds"] = target.active_deadline
    if target.ttl_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = target.ttl_after_finished
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name_for(ref.run_id), "namespace": target.namespace,
                     "labels": labels, "annotations": annotations},
        "spec": spec,
    }


# -- what a Job's status means --------------------------------------------------------------


class JobPhase(StrEnum):
    ACTIVE = "active"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class JobVerdict:
    phase: JobPhase
    reason: str | None = None  # BackoffLimitExceeded, DeadlineExceeded, ...
    message: str | None = None


def job_verdict(status: dict[str, Any] | None) -> JobVerdict:
    """A Job's conditions as a run's state: `Complete` succeeded; `Failed` failed with its
    reason; anything else (no conditions, `Suspended`, `FailureTarget` not yet final) active."""
    for condition in (status or {}).get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return JobVerdict(JobPhase.SUCCEEDED, condition.get("reason"),
                              condition.get("message"))
        if condition.get("type") == "Failed":
            return JobVerdict(JobPhase.FAILED, condition.get("reason") or "Failed",
                              condition.get("message"))
    return JobVerdict(JobPhase.ACTIVE)
