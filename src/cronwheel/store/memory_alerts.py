"""The alert store of `MemoryStore`: alerts raised by runs of failures, kept until sent.

Same questions and answers as the SQL `AlertStore`, so the `Alerter` runs over either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from cronwheel.contracts import Alert
from cronwheel.domain.time import Micros
from cronwheel.ids import new_id
from cronwheel.store.alerts import MAX_TRIES, UNSENT

ERROR_LIMIT = 2_000  # characters of a failed send's error kept


class MemoryAlertStore:
    def __init__(
        self,
        name_of: Callable[[str], tuple[str, str] | None],
        failures_of: Callable[[str], int],
    ) -> None:
        self._name_of = name_of  # a job's (namespace, key), None once it is gone
        self._failures_of = failures_of
        self._alerts: dict[str, Alert] = {}

    def raise_alert(
        self, job_id: str, run_id: str, failures: int, webhook: str, now: Micros
    ) -> None:
        """Keep an alert to send; called in the same step that counts the failing run."""
        alert = Alert(new_id(), job_id, run_id, failures, webhook, now, "pending", 0, None, None)
        self._alerts[alert.id] = alert

    async def claim(self, now: Micros, retry_after: Micros, limit: int = 50) -> list[Alert]:
        """Alerts to send now, marked as being sent and due again at `retry_after` in case
        this send never reports."""
        due = sorted((a for a in self._alerts.values()
                      if a.state in UNSENT and a.created_at <= now),
                     key=lambda a: (a.created_at, a.id))[:limit]
        claimed: list[Alert] = []
        for alert in due:
            taken = replace(alert, state="sending", tries=alert.tries + 1, created_at=retry_after)
            self._alerts[alert.id] = taken
            namespace, key = self._name_of(alert.job_id) or ("", "")
            claimed.append(replace(taken, namespace=namespace, key=key))
        return claimed

    async def settle(self, alert: Alert, error: str | None, now: Micros) -> None:
        stored = self._alerts.get(alert.id)
        if stored is None:
            return
        if error is None:
            changes: dict[str, Any] = {"state": "sent", "sent_at": now, "error": None}
        elif alert.tries >= MAX_TRIES:
            changes = {"state": "failed", "error": error[:ERROR_LIMIT]}
        else:
            changes = {"state": "pending", "error": error[:ERROR_LIMIT]}
        self._alerts[alert.id] = replace(stored, **changes)

    async def of_job(self, job_id: str, limit: int = 100) -> list[Alert]:
        """The job's alerts, newest first (without names, as the SQL store answers)."""
        mine = sorted((a for a in self._alerts.values() if a.job_id == job_id),
                      key=lambda a: a.id, reverse=True)
        return mine[:limit]

    async def failures(self, job_id: str) -> int:
        return self._failures_of(job_id)

    def purge(self, before: Micros) -> None:
        """Forget alerts settled (sent or given up) before the instant."""
        for alert in [a for a in self._alerts.values()
                      if a.created_at < before and a.state in ("sent", "failed")]:
            del self._alerts[alert.id]

    def forget_job(self, job_id: str) -> None:
        """Drop every alert of a job deleted with its history."""
        for alert in [a for a in self._alerts.values() if a.job_id == job_id]:
            del self._alerts[alert.id]
