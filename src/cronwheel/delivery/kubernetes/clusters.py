"""The clusters a node may run Jobs on, by id, and their health."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cronwheel.delivery.kubernetes.gateway import KubeError, KubeGateway
from cronwheel.domain.errors import InvalidField

CHECK_TIMEOUT_S = 5.0


class ClusterConfig(Protocol):
    """One configured cluster (`Settings.kubernetes_clusters`)."""

    @property
    def id(self) -> str: ...

    @property
    def kubeconfig(self) -> str | None: ...

    @property
    def context(self) -> str | None: ...

    @property
    def in_cluster(self) -> bool: ...

    @property
    def namespace(self) -> str: ...


def clusters_from_config(configs: Sequence[ClusterConfig]) -> Clusters:
    """Gateways for the configured clusters; lightkube is imported only when one is."""
    if not configs:
        return Clusters()
    from cronwheel.delivery.kubernetes.lightkube_gateway import LightkubeGateway

    gateways: dict[str, KubeGateway] = {}
    for config in configs:
        if config.in_cluster:
            gateways[config.id] = LightkubeGateway.in_cluster(config.namespace)
        else:
            assert config.kubeconfig is not None
            gateways[config.id] = LightkubeGateway.from_kubeconfig(
                config.kubeconfig, config.context, config.namespace)
    return Clusters(gateways)


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
        """Every cluster checked at once, each within CHECK_TIMEOUT_S."""
        return list(await asyncio.gather(*(self._check(c) for c in self.ids())))

    async def _check(self, cluster: str) -> ClusterHealth:
        try:
            version = await asyncio.wait_for(self._gateways[cluster].version(),
                                             CHECK_TIMEOUT_S)
        except (KubeError, OSError, TimeoutError) as exc:
            return ClusterHealth(cluster, False, error=f"{type(exc).__name__}: {exc}")
        return ClusterHealth(cluster, True, version)

    async def aclose(self) -> None:
        for gateway in self._gateways.values():
            with contextlib.suppress(Exception):
                await gateway.aclose()
