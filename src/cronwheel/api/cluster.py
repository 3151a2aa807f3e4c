"""GET /v1/cluster: the nodes sharing this database, their heartbeats and what they hold.

A node that stopped cleanly is shown as `stopped` for a while (a rolling restart reads as
one), then left out of the list; one that went silent without saying so stays, `lost`, until
retention: that is the one an operator must look at."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from cronwheel.api.auth import AUTHENTICATED, RESPONSES, Reader
from cronwheel.api.schemas import ClusterOut, KubernetesOut, NodeOut
from cronwheel.domain.time import US_PER_S, to_iso

router = APIRouter(prefix="/v1", tags=["cluster"], dependencies=AUTHENTICATED,
                   responses=RESPONSES)
STOPPED_SHOWN_S = 600  # a cleanly stopped node is listed this long after it stopped


@router.get("/cluster", response_model=ClusterOut)
async def get_cluster(
    request: Request,
    caller: Reader,
    include_stopped: Annotated[bool, Query(
        description="also nodes stopped cleanly more than ten minutes ago")] = False,
) -> ClusterOut:
    return await cluster(request, include_stopped)


async def cluster(request: Request, include_stopped: bool = False) -> ClusterOut:
    """The cluster as this node sees it (also the console's cluster page, on its session)."""
    node = request.app.state.node
    now = node.db_clock.now()
    stale = round(node.settings.lease_seconds * US_PER_S)
    kubernetes = [KubernetesOut(id=h.id, ok=h.ok, detail=h.version, error=h.error)
                  for h in await node.clusters.health()]
    shown_after = now - STOPPED_SHOWN_S * US_PER_S
    listed = [s for s in await node.store.list_nodes()
              if include_stopped or s.stopped_at is None or s.stopped_at >= shown_after]
    return ClusterOut(
        now=to_iso(now),
        node=node.owner,
        leader=node.duties.leader,
        engine=node.engine_owner,
        nodes=[
            NodeOut(
                owner=s.info.owner, name=s.info.name, address=s.info.address,
                version=s.info.version, started_at=to_iso(s.info.started_at),
                heartbeat_at=to_iso(s.heartbeat_at),
                stopped_at=None if s.stopped_at is None else to_iso(s.stopped_at),
                alive=s.stopped_at is None and now - s.heartbeat_at <= stale,
                state=_state(s.stopped_at, now - s.heartbeat_at <= stale),
                jobs_held=s.jobs_held, runs_held=s.runs_held,
            )
            for s in listed
        ],
        kubernetes=kubernetes,
    )


def _state(stopped_at: int | None, heard_lately: bool) -> str:
    if stopped_at is not None:
        return "stopped"
    return "alive" if heard_lately else "lost"
