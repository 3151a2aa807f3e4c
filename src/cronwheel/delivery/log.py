"""Log targets: one line in the server's log per firing (the delay-job `LOG` callback)."""

from __future__ import annotations

import logging

from cronwheel.contracts import Delivery, DeliveryResult
from cronwheel.domain.log_target import LogTarget
from cronwheel.domain.runs import AttemptOutcome
from cronwheel.domain.time import to_iso

log = logging.getLogger("cronwheel.delivery.log")
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


class LogTransport:
    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        target = delivery.target
        assert isinstance(target, LogTarget)
        log.log(
            LEVELS[target.level],
            "job %s/%s fired: run %s, attempt %d, due %s, fired %s, payload %r",
            delivery.namespace, delivery.key, delivery.run_id, delivery.attempt,
            to_iso(delivery.scheduled_at), to_iso(delivery.fired_at), delivery.payload,
            extra={"run_id": delivery.run_id, "job_key": delivery.key},
        )
        return DeliveryResult(AttemptOutcome.SUCCESS, False, response="logged")

    async def aclose(self) -> None:
        return None
