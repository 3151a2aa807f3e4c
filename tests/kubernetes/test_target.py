"""The Kubernetes target: what is accepted at submit, and the Job manifest it becomes.

Every manifest is checked against the official Kubernetes schemas (kubernetes-validate,
strict: an unknown field fails too), as the API server would check it."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cronwheel.domain.errors import InvalidField
from cronwheel.domain.kubernetes import (
    DNS_LABEL,
    LABEL_JOB,
    LABEL_ORIGIN,
    LABEL_RUN,
    JobPhase,
    KubernetesTarget,
    RunRef,
    job_manifest,
    job_name_for,
    job_verdict,
)
from cronwheel.domain.targets import target_from_dict
from cronwheel.domain.worker_target import NO_JOB_TYPES
from cronwheel.ids import new_id

K8S_VERSION = kubernetes_validate.latest_version()
FULL: dict[str, Any] = {
    "kind": "kubernetes", "cluster": "prod-1", "namespace": "batch", "image": "busybox:1.36",
    "command": ["sh", "-c"], "args": ["echo hi"], "env": {"GREETING": "hi", "A_B": ""},
    "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"cpu": 1}},
    "parallelism": 2, "completions": 4, "backoff_limit": 3, "active_deadline": 600,
    "ttl_after_finished": 120, "restart_policy": "OnFailure",
    "labels": {"team": "data", "example.com/tier": "low"},
    "annotations": {"example.com/why": "nightly export, see wiki/Export"},
    "service_account": "exporter", "image_pull_secrets": ["registry-cred"],
    "node_selector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
    "logs": "always", "callback_url": "http://127.0.0.1:9/done",
}
REF = RunRef("0194a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "0194a1b2-0000-7000-8000-000000000001",
             "team:reports", "nightly/export")


def _target(**changes: Any) -> KubernetesTarget:
    target = target_from_dict(FULL | changes, job_types=NO_JOB_TYPES)
    assert isinstance(target, KubernetesTarget)
    return target


def _valid(manifest: dict[str, Any]) -> None:
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def test_every_option_reaches_the_job_and_the_manifest_is_valid() -> None:
    manifest = job_manifest(_target(), REF)
    _valid(manifest)
    spec = manifest["spec"]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert (spec["parallelism"], spec["completions"], spec["backoffLimit"]) == (2, 4, 3)
    assert (spec["activeDeadlineSeconds"], spec["ttlSecondsAfterFinished"]) == (600, 120)
    assert container["command"] == ["sh", "-c"] and container["args"] == ["echo hi"]
    assert {"name": "GREETING", "value": "hi"} in container["env"]
    assert container["resources"] == {"limits": {"cpu": "1"},
                                      "requests": {"cpu": "250m", "memory": "64Mi"}}
    assert pod["restartPolicy"] == "OnFailure" and pod["serviceAccountName"] == "exporter"
    assert pod["imagePullSecrets"] == [{"name": "registry-cred"}]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"][0]["key"] == "batch"
    assert manifest["metadata"]["annotations"]["example.com/why"].startswith("nightly")


def test_labels_name_the_job_run_and_origin_on_the_job_and_its_pods() -> None:
    manifest = job_manifest(_target(), REF)
    for labels in (manifest["metadata"]["labels"], manifest["spec"]["template"]["metadata"]
                   ["labels"]):
        assert labels[LABEL_RUN] == REF.run_id and labels[LABEL_JOB] == REF.job_id
        assert labels[LABEL_ORIGIN] == "team_reports"  # ':' is not allowed in a label value
        assert labels["team"] == "data"
    assert manifest["metadata"]["annotations"]["cronwheel.io/key"] == "nightly/export"


def test_a_minimal_target_makes_a_valid_job_with_the_documented_defaults() -> None:
    target = target_from_dict({"kind": "kubernetes", "cluster": "c", "namespace": "default",
                               "image": "busybox"}, job_types=NO_JOB_TYPES)
    assert isinstance(target, KubernetesTarget)
    manifest = job_manifest(target, REF)
    _valid(manifest)
    assert manifest["spec"]["backoffLimit"] == 0
    assert manifest["spec"]["ttlSecondsAfterFinished"] == 300
    assert manifest["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert target.logs.value == "failure"


def test_the_target_round_trips_through_its_stored_form() -> None:
    target = _target()
    assert target_from_dict(target.to_dict(), job_types=NO_JOB_TYPES) == target


def test_job_names_are_stable_dns_labels_for_any_run_id() -> None:
    run_id = new_id()
    assert job_name_for(run_id) == job_name_for(run_id) == f"cw-{run_id}"
    odd = job_name_for("Run:With/Odd_Chars" * 10)
    assert DNS_LABEL.match(odd) and len(odd) <= 52
    assert job_name_for("a") != job_name_for("b")


@given(st.text(min_size=1, max_size=200))
def test_any_run_id_gives_a_valid_job_name(run_id: str) -> None:
    name = job_name_for(run_id)
    assert DNS_LABEL.match(name) and len(name) <= 52  # + "-xxxxx" for pods stays <= 63


@pytest.mark.parametrize(("change", "field"), [
    ({"cluster": ""}, "target.cluster"),
    ({"cluster": "bad id"}, "target.cluster"),
    ({"namespace": "Not_A_Label"}, "target.namespace"),
    ({"image": 5}, "target.image"),
    ({"command": "echo hi"}, "target.command"),
    ({"env": {"1BAD": "x"}}, "target.env"),
    ({"resources": {"requests": {"cpu": "lots"}}}, "target.resources"),
    ({"resources": {"claims": []}}, "target.resources"),
    ({"parallelism": -1}, "target.parallelism"),
    ({"completions": 0}, "target.completions"),
    ({"backoff_limit": True}, "target.backoff_limit"),
    ({"active_deadline": 0}, "target.active_deadline"),
    ({"ttl_after_finished": -5}, "target.ttl_after_finished"),
    ({"restart_policy": "Always"}, "target.restart_policy"),
    ({"labels": {"team": "has space"}}, "target.labels"),
    ({"labels": {"cronwheel.io/run": "x"}}, "target.labels"),
    ({"annotations": {"bad key!": "x"}}, "target.annotations"),
    ({"service_account": "Not Valid"}, "target.service_account"),
    ({"image_pull_secrets": ["UPPER"]}, "target.image_pull_secrets"),
    ({"tolerations": [{"operator": "Sometimes"}]}, "target.tolerations"),
    ({"logs": "never"}, "target.logs"),
    ({"callback_url": "ftp://x"}, "target.callback_url"),
])
def test_bad_options_are_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidField) as caught:
        target_from_dict(FULL | change, job_types=NO_JOB_TYPES)
    assert caught.value.field == field


def test_job_conditions_map_to_run_outcomes() -> None:
    assert job_verdict({}).phase is JobPhase.ACTIVE
    assert job_verdict({"conditions": [{"type": "Complete", "status": "True"}]}).phase is \
        JobPhase.SUCCEEDED
    failed = job_verdict({"conditions": [
        {"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "late"}]})
    assert (failed.phase, failed.reason, failed.message) == (JobPhase.FAILED,
                                                             "DeadlineExceeded", "late")
    # a condition that is not (yet) true says nothing
    assert job_verdict({"conditions": [{"type": "Failed", "status": "False"}]}).phase is \
        JobPhase.ACTIVE
