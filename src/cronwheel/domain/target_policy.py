"""Submit-time half of the target guard: a target whose host is a literal refused address is
refused with a 422 naming its field; a DNS name is judged when connecting (delivery/guard.py).

A worker's `http` job type runs on the worker, inside the worker's network and under the
worker's own policy; here it is held only to the always-denied set, which no policy allows.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from cronwheel.domain.errors import InvalidField
from cronwheel.domain.jobs import JobSpec
from cronwheel.domain.kubernetes import KubernetesTarget
from cronwheel.domain.netpolicy import UNRESTRICTED, NetPolicy
from cronwheel.domain.targets import GrpcTarget, HttpTarget, KafkaTarget, Target
from cronwheel.domain.tcp_target import TcpTarget
from cronwheel.domain.worker_target import WorkerTarget


def _host_of(host_port: str) -> str:
    host, _, _port = host_port.rpartition(":")
    return host


def check_url(url: str, policy: NetPolicy, fieldname: str) -> None:
    parts = urlsplit(url)  # already validated by the target's parser
    if parts.scheme not in policy.schemes:
        raise InvalidField(
            f"the server only calls {'/'.join(sorted(policy.schemes))} URLs, got {url!r}",
            fieldname,
        )
    _check_host(parts.hostname or "", policy, fieldname)


def _check_host(host: str, policy: NetPolicy, fieldname: str) -> None:
    reason = policy.host_refusal(host)
    if reason is not None:
        raise InvalidField(f"target refused: {reason}", fieldname)


def check_target(target: Target, policy: NetPolicy, prefix: str = "target") -> None:
    """Raise InvalidField when the policy refuses a literal address the target names."""
    if isinstance(target, HttpTarget):
        check_url(target.url, policy, f"{prefix}.url")
    elif isinstance(target, GrpcTarget):
        _check_host(_host_of(target.address), policy, f"{prefix}.address")
    elif isinstance(target, KafkaTarget):
        for server in target.bootstrap:
            _check_host(_host_of(server), policy, f"{prefix}.bootstrap")
    elif isinstance(target, TcpTarget):
        _check_host(target.host, policy, f"{prefix}.host")
    elif isinstance(target, KubernetesTarget) and target.callback_url is not None:
        check_url(target.callback_url, policy, f"{prefix}.callback_url")  # the node calls it
    elif isinstance(target, WorkerTarget) and target.job_type == "http":
        check_url(str(target.spec.get("url", "")), UNRESTRICTED, f"{prefix}.spec.url")


def check_spec(spec: JobSpec, policy: NetPolicy, prefix: str = "target") -> None:
    """The job's target and its alert webhook: every place the server will connect to."""
    check_target(spec.target, policy, prefix)
    if spec.alert is not None:
        check_url(spec.alert.webhook, policy, "alert.webhook")
