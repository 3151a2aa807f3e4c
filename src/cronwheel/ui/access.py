"""The console's seam (`ui/session.Access`) over the app service: the same tokens as the API,
and the same `domain.access` checks, so the console refuses exactly what the API refuses."""

from __future__ import annotations

from cronwheel.apps_service import AppService
from cronwheel.domain import access
from cronwheel.ui.session import Principal


def _real(principal: Principal) -> access.Principal:
    """The seam's protocol narrowed to the principal the app service made."""
    if not isinstance(principal, access.Principal):
        raise TypeError(f"not a principal of the app service: {principal!r}")
    return principal


class AppAccess:
    """Logs in with a token the app service knows; `domain.access` decides the rest."""

    needs_login = True

    def __init__(self, apps: AppService) -> None:
        self.apps = apps

    @property
    def directory(self) -> AppService:
        return self.apps

    async def authenticate(self, raw_token: str, address: str | None) -> Principal | None:
        return await self.apps.authenticate(raw_token, address)

    def can_read(self, principal: Principal, namespace: str) -> bool:
        return access.can_read(_real(principal), namespace)

    def can_write(self, principal: Principal, namespace: str) -> bool:
        return access.can_write(_real(principal), namespace)

    def can_admin(self, principal: Principal) -> bool:
        return access.can_admin(_real(principal))
