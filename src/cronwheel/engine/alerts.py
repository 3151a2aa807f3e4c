"""Sends the alerts the store raised (N failed runs in a row) to each job's webhook."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from cronwheel.contracts import Alert, AlertStore, Clock
from cronwheel.delivery import USER_AGENT
from cronwheel.domain.netpolicy import NetPolicy
from cronwheel.domain.time import US_PER_S, to_iso

log = logging.getLogger("cronwheel.alerts")
TIMEOUT_S = 10.0
RETRY_AFTER_US = 30 * US_PER_S  # a send that failed, or whose node died, goes again then


class Alerter:
    def __init__(self, alerts: AlertStore, clock: Clock, policy: NetPolicy | None = None) -> None:
        self._alerts = alerts
        self._clock = clock
        self._policy = policy or NetPolicy()  # the target guard's, as for deliveries
        self._session: Any = None

    async def send_due(self) -> None:
        now = self._clock.now()
        claimed = await self._alerts.claim(now, now + RETRY_AFTER_US)
        if claimed:
            await asyncio.gather(*(self._send(alert) for alert in claimed))

    async def _send(self, alert: Alert) -> None:
        import aiohttp

        if self._session is None:
            from cronwheel.delivery.guard import guarded_connector

            self._session = aiohttp.ClientSession(connector=guarded_connector(self._policy),
                                                  timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
                                                  headers={"User-Agent": USER_AGENT})
        body = {
            "alert": "consecutive_failures",
            "namespace": alert.namespace,
            "key": alert.key,
            "job_id": alert.job_id,
            "run_id": alert.run_id,
            "failures": alert.failures,
            "raised_at": to_iso(alert.created_at),
        }
        error: str | None = None
        try:
            async with self._session.post(
                alert.webhook, json=body, headers={"Idempotency-Key": alert.id},
                allow_redirects=self._policy.follow_redirects,
            ) as response:
                if response.status >= 300:
                    error = f"webhook answered {response.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            log.warning("alert.failed", extra={"alert_id": alert.id, "error": error})
        await self._alerts.settle(alert, error, self._clock.now())

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
