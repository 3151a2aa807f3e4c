"""The clusters a node may run Jobs on, by id, and their health."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from cronwheel.delivery.kubernetes.gateway import KubeError, KubeGateway
from cronwheel.domain.errors import InvalidField


@dataclass(frozen=True, slots=True)
class ClusterHealth:
    id: str
    ok: bool
    version: str | None = None
    error: str | None = None


class Clusters:
    """Gateways by cluster id. Ids are checked at submit (`admit`); health at start-up and
    on each `GET /v1/cluster`."""

    def __init__(self, gateways: dict[str, KubeGateway] | None = None) -> None:
        self._gateways = dict(gateways or {})

    def ids(self) -> list[str]:
        return sorted(self._gateways)

    def get(self, cluster: str) -> KubeGateway | None:
        return self._gateways.get(cluster)

    def admit(self, cluster: str, fieldname: str = "target.cluster") -> None:
        """Refuse a job routed to a cluster this node does not know."""
        if cluster not in self._gateways:
            known = ", ".join(self.ids()) or "none is configured"
            raise InvalidField(f"no cluster {cluster!r} (known: {known})", fieldname)

    async def health(self) -> list[ClusterHealth]:
        found = []
        for cluster in self.ids():
            try:
                version = await self._gateways[cluster].version()
            except KubeError as exc:
                found.append(ClusterHealth(cluster, False, error=str(exc)))
            except OSError as exc:
                found.append(ClusterHealth(cluster, False, error=f"{type(exc).__name__}: {exc}"))
            else:
                found.append(ClusterHealth(cluster, True, version))
        return found

    async def aclose(self) -> None:
        for gateway in self._gateways.values():
            with contextlib.suppress(Exception):
                await gateway.aclose()
