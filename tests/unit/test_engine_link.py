"""What the API process hands its engine process: every setting, and one metrics page."""

from __future__ import annotations

import sys

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cronwheel.enginelink import settings_env
from cronwheel.metrics import MergedPages, merge_pages
from cronwheel.runtime import use_switch_interval
from cronwheel.settings import Settings


def test_settings_come_back_whole_from_the_environment_written_for_the_engine(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    given = Settings(worker_lease_seconds=2.0, target_allow=["10.0.0.0/8"], engine_process=True,
                     admin_token="cw_abcdefgh_" + "x" * 32, allowed_hosts=None,
                     qschedule_apps=[{"id": 1, "name": "a", "token": "12345678"}])
    for name, value in settings_env(given).items():
        monkeypatch.setenv(name, value)
    assert Settings() == given


def _page(fired: float, lateness: list[float], platform: float) -> str:
    registry = CollectorRegistry()
    Counter("cronwheel_runs_fired", "fired", ["kind"], registry=registry) \
        .labels("schedule").inc(fired)
    histogram = Histogram("cronwheel_fire_lateness_seconds", "late", buckets=(0.01, 1),
                          registry=registry)
    for value in lateness:
        histogram.observe(value)
    Counter("process_cpu_seconds", "cpu", registry=registry).inc(platform)
    return generate_latest(registry).decode()


def test_one_metrics_page_adds_both_processes_and_keeps_the_engines_own_apart() -> None:
    api = _page(0, [], 1.5)
    engine = _page(7, [0.005, 0.5], 4.0)
    merged = {s.name if not s.labels else (s.name, tuple(s.labels.items())): s.value
              for f in text_string_to_metric_families(merge_pages(api, engine).decode())
              for s in f.samples}
    assert merged[("cronwheel_runs_fired_total", (("kind", "schedule"),))] == 7
    assert merged[("cronwheel_fire_lateness_seconds_bucket", (("le", "0.01"),))] == 1
    assert merged["cronwheel_fire_lateness_seconds_count"] == 2
    assert merged["process_cpu_seconds_total"] == 1.5
    assert merged["cronwheel_engine_process_cpu_seconds_total"] == 4.0


def test_the_merged_page_is_made_again_only_for_a_new_engine_page() -> None:
    pages = MergedPages()
    engine = _page(7, [], 4.0)
    first = pages.page(engine)
    assert b"cronwheel_engine_process_cpu_seconds_total 4.0" in first
    assert pages.page(engine) is first  # the engine's page reused: so is the merge
    newer = pages.page(_page(9, [], 5.0))
    assert newer is not first and b"cronwheel_engine_process_cpu_seconds_total 5.0" in newer
    alone = pages.page(None)  # no answer from the engine: this process's page
    assert b"cronwheel_engine_" not in alone


def test_a_server_process_takes_its_switch_interval_from_the_settings() -> None:
    before = sys.getswitchinterval()
    try:
        use_switch_interval(Settings(switch_interval_ms=2.0))
        assert sys.getswitchinterval() == pytest.approx(0.002)
        with pytest.raises(ValueError, match="switch_interval_ms"):  # 0 would spin threads
            Settings(switch_interval_ms=0)
    finally:
        sys.setswitchinterval(before)
