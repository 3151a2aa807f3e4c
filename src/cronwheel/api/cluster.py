"""GET /v1/cluster: the nodes sharing this database, their heartbeats and what they hold."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from cronwheel.api.auth import AUTHENTICATED, RESPONSES, Reader
from cronwheel.domain.time import US_PER_S, to_iso

router = APIRouter(prefix="/v1", tags=["cluster"], dependencies=AUTHENTICATED,
                   responses=RESPONSES)


class NodeOut(BaseModel):
    owner: str = Field(description="this process's id; a restarted node gets a new one")
    name: str
    address: str
    version: str
    started_at: str
    heartbeat_at: str
    stopped_at: str | None
    alive: bool = Field(description="heartbeat within the lease: its work is its own")
    jobs_held: int = Field(description="jobs claimed into its look-ahead window")
    runs_held: int = Field(description="runs it is delivering")


class ClusterOut(BaseModel):
    now: str = Field(description="the database's clock")
    node: str = Field(description="the owner id of the node that answered")
    leader: bool = Field(description="whether the answering node holds the singleton duties")
    nodes: list[NodeOut]


@router.get("/cluster", response_model=ClusterOut)
async def cluster(request: Request, caller: Reader) -> ClusterOut:
    node = request.app.state.node
    now = node.db_clock.now()
    stale = round(node.settings.lease_seconds * US_PER_S)
    listed = await node.store.list_nodes()
    return ClusterOut(
        now=to_iso(now),
        node=node.owner,
        leader=node.duties.leader,
        nodes=[
            NodeOut(
                owner=s.info.owner, name=s.info.name, address=s.info.address,
                version=s.info.version, started_at=to_iso(s.info.started_at),
                heartbeat_at=to_iso(s.heartbeat_at),
                stopped_at=None if s.stopped_at is None else to_iso(s.stopped_at),
                alive=s.stopped_at is None and now - s.heartbeat_at <= stale,
                jobs_held=s.jobs_held, runs_held=s.runs_held,
            )
            for s in listed
        ],
    )
