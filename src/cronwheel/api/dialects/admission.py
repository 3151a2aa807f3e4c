"""The network policy every credential-less dialect request passes first (docs/auth.md).

`admit` judges the client's address (and its token, where the rule asks for one) and, when
the client is admitted, puts its Principal (the rule's app, role operator) in
`request.state.principal`, as the /v1 authentication does. Each dialect turns `NotAdmitted`
into its own envelope. Rules come from the app service's one-second cache.
"""

from __future__ import annotations

from functools import lru_cache

from fastapi import Request

from cronwheel.api.auth import bearer_token
from cronwheel.apps_service import Admitted, AppService
from cronwheel.domain.admission import (
    DELAYJOB,
    DELAYJOB_GRPC,
    DISPATCHSERVER,
    KUBERNETES,
    KUBERNETES_NAMESPACE,
    AdmissionRule,
    NotAdmitted,
    default_rules,
)
from cronwheel.settings import Settings

__all__ = ["KUBERNETES_NAMESPACE", "Admitted", "NotAdmitted", "admit", "defaults_for"]



@lru_cache(maxsize=64)
def _defaults(dialect: str, namespace: str) -> tuple[AdmissionRule, ...]:
    return default_rules(dialect, namespace)


def defaults_for(dialect: str, settings: Settings) -> tuple[AdmissionRule, ...]:
    """The built-in rules: loopback clients are `system`, in today's namespaces."""
    namespace = {
        DELAYJOB: settings.delayjob_namespace,
        DELAYJOB_GRPC: settings.delayjob_namespace,
        DISPATCHSERVER: settings.dispatch_namespace_prefix,
        KUBERNETES: KUBERNETES_NAMESPACE,
    }[dialect]
    return _defaults(dialect, namespace)


async def admit(request: Request, dialect: str, user: str | None = None) -> Admitted:
    """Admit the request or raise NotAdmitted; the principal goes to request.state."""
    apps: AppService = request.app.state.node.apps
    settings: Settings = request.app.state.node.settings
    host = request.client.host if request.client else None
    admitted = await apps.admit(dialect, host, defaults_for(dialect, settings),
                                bearer_token(request.scope), user)
    request.state.principal = admitted.principal
    return admitted
