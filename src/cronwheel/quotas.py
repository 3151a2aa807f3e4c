"""Per-app limits as one node enforces them: buckets, held-job counts and the app of a
namespace, all in memory.

The API asks it before writing (submits per second, jobs held) and the engine before firing
(fires per second). Nothing here costs a query per request: apps and claims are read at most
once a second (and again after a change made on this node), jobs held per namespace at most
once a second and only for an app that has a `max_jobs` limit and is near it. Buckets are per
node: N nodes behind a balancer let an app through up to N times its rate (docs/security.md).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from cronwheel.contracts import AppDirectory, JobCounter
from cronwheel.domain.access import SYSTEM_APP, App, AppLimits, owner_of
from cronwheel.domain.limits import (
    Bucket,
    LimitExceeded,
    Quota,
    RateLimited,
    quota_for,
    retry_after_seconds,
)
from cronwheel.domain.time import US_PER_S, Micros

DIRECTORY_TTL_US = US_PER_S  # apps and claims are re-read this often
COUNT_TTL_US = US_PER_S  # jobs held are re-counted at most this often...
COUNT_STALE_US = 30 * US_PER_S  # ...and at least this often while far from the limit
NEAR = 0.9  # "near the limit": a count above this share of it is re-read before trusting it


@dataclass(frozen=True, slots=True)
class _Directory:
    read_at: Micros
    apps: dict[str, App]
    claims: dict[str, str]


@dataclass(slots=True)
class _Counts:
    read_at: Micros
    held: Counter[str]  # per namespace, as read plus what this node added since


class Quotas:
    def __init__(
        self, apps: AppDirectory, jobs: JobCounter, defaults: AppLimits,
        system_limited: bool = False,
    ) -> None:
        self._apps = apps
        self._jobs = jobs
        self.defaults = defaults
        self.system_limited = system_limited
        self._directory: _Directory | None = None
        self._owners: dict[str, str] = {}
        self._quotas: dict[str, Quota] = {}  # per app, as last read (the engine's per fire)
        self._counts: _Counts | None = None
        self._submits: dict[str, Bucket] = {}
        self._fires: dict[str, Bucket] = {}
        self._fire_limits = True  # some app may have a fires-per-second limit (as last read)
        self._reading = asyncio.Lock()  # one read for every caller that found them stale
        self._generation = 0  # invalidations: a read that raced one is not kept

    # -- apps ------------------------------------------------------------------------------

    def invalidate(self) -> None:
        """An app or claim changed on this node: read them again on next use."""
        self._directory = None
        self._quotas = {}
        self._generation += 1

    def _stale(self, now: Micros) -> bool:
        found = self._directory
        return found is None or not 0 <= now - found.read_at < DIRECTORY_TTL_US

    async def fresh(self, now: Micros) -> None:
        """Re-read apps and claims when older than a second (or invalidated)."""
        if not self._stale(now):
            return
        async with self._reading:
            while self._stale(now):  # again if an invalidation landed while reading
                generation = self._generation
                apps = {app.name: app for app in await self._apps.list_apps()}
                directory = _Directory(now, apps, await self._apps.claims())
                if generation == self._generation:
                    self._directory = directory
                    self._owners = {}
                    self._quotas = {}
                    self._fire_limits = self.defaults.fires_per_second is not None or any(
                        app.limits.fires_per_second is not None for app in apps.values())

    def app_of(self, namespace: str) -> str:
        """The app owning the namespace (as last read); unclaimed ones are the system app's."""
        owner = self._owners.get(namespace)
        if owner is None:
            claims = self._directory.claims if self._directory is not None else {}
            owner = owner_of(namespace, claims) or SYSTEM_APP
            if len(self._owners) > 100_000:
                self._owners.clear()
            self._owners[namespace] = owner
        return owner

    def quota(self, app: str, overrides: AppLimits | None = None) -> Quota:
        """The app's limits: `overrides` as the caller's credential carried them, else the
        app's as last read."""
        if overrides is not None:
            return quota_for(app, overrides, self.defaults, self.system_limited)
        quota = self._quotas.get(app)
        if quota is None:
            found = self._directory.apps.get(app) if self._directory is not None else None
            limits = found.limits if found is not None else AppLimits()
            quota = self._quotas[app] = quota_for(app, limits, self.defaults,
                                                   self.system_limited)
        return quota

    async def quota_of_owner(self, namespace: str, now: Micros) -> Quota:
        await self.fresh(now)
        return self.quota(self.app_of(namespace))

    # -- submits per second ------------------------------------------------------------------

    def take_submits(self, quota: Quota, count: int, now: Micros) -> None:
        """Take `count` submits from the app's bucket, or raise RateLimited (nothing taken)."""
        rate = quota.submits_per_second
        if rate is None:
            return
        bucket = self._bucket(self._submits, quota.app, rate, quota.burst)
        wait = bucket.take(count, now)
        if wait:
            raise RateLimited(
                f"app {quota.app!r} is over its limit of {rate:g} submits per second "
                f"(burst {quota.burst}); retry after {retry_after_seconds(wait)} s",
                retry_after_seconds(wait), "submits_per_second")

    @staticmethod
    def _bucket(buckets: dict[str, Bucket], app: str, rate: float, burst: int) -> Bucket:
        found = buckets.get(app)
        bucket = Bucket(rate, burst) if found is None else found.retuned(rate, burst)
        buckets[app] = bucket
        return bucket

    # -- fires per second ----------------------------------------------------------------------

    @property
    def fire_limits(self) -> bool:
        """Whether any app may have a fires-per-second limit (as last read): when none has,
        the engine fires a batch without asking per job."""
        return self._fire_limits

    def fires_limited(self, namespace: str) -> bool:
        """Whether the app owning `namespace` has a fires-per-second limit."""
        return self.quota(self.app_of(namespace)).fires_per_second is not None

    def fire_at(self, namespace: str, now: Micros) -> Micros:
        """When a fire of a job in `namespace` due `now` may happen: `now`, or later when its
        app is over its fires per second (the fire waits; it is never dropped). Call `fresh`
        first, once per batch."""
        app = self.app_of(namespace)
        rate = self.quota(app).fires_per_second
        if rate is None:
            return now
        return self._bucket(self._fires, app, rate, max(1, round(rate))).reserve(now)

    # -- jobs held ------------------------------------------------------------------------------

    async def check_held(self, adding: Mapping[str, int], now: Micros) -> None:
        """Raise LimitExceeded if adding these jobs (per namespace) would take an app past its
        `max_jobs`. Counts what is stored (re-read at most once a second) plus what this node
        added since; another node's adds show at the next read."""
        await self.fresh(now)
        per_app: Counter[str] = Counter()
        for namespace, count in adding.items():
            per_app[self.app_of(namespace)] += count
        limited = {app: most for app in per_app
                   if (most := self.quota(app).max_jobs) is not None}
        if not limited:
            return
        held = await self._held(now, limited, per_app)
        for app, most in sorted(limited.items()):
            if held[app] + per_app[app] > most:
                raise LimitExceeded(
                    f"app {app!r} holds {held[app]} active or paused jobs; its limit max_jobs "
                    f"is {most}: delete or cancel jobs, or ask an admin to raise the limit",
                    "max_jobs")

    def added(self, created: Mapping[str, int]) -> None:
        """Jobs this node just created, counted until the next read."""
        if self._counts is not None:
            self._counts.held.update(created)

    async def _held(self, now: Micros, limited: Mapping[str, int],
                    adding: Mapping[str, int]) -> Counter[str]:
        counts = self._counts
        age = None if counts is None else now - counts.read_at
        if counts is not None and age is not None and 0 <= age < COUNT_STALE_US:
            held = self._per_app(counts.held)
            near = any(held[app] + adding[app] > NEAR * most for app, most in limited.items())
            if not near or age < COUNT_TTL_US:
                return held
        self._counts = _Counts(now, Counter(await self._jobs.count_held_jobs()))
        return self._per_app(self._counts.held)

    def _per_app(self, per_namespace: Mapping[str, int]) -> Counter[str]:
        held: Counter[str] = Counter()
        for namespace, count in per_namespace.items():
            held[self.app_of(namespace)] += count
        return held
