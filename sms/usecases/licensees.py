"""A licensee's own settings: its quiet hours and its time zone, set by an operator (python -m sms
licensees set) and read by every dispatch, cached: a change reaches every process within
`cache_seconds`. A change of quiet hours or zone wakes the jobs the old hours held (sms/usecases/held.py),
due once those caches have lapsed."""
from __future__ import annotations

import math
import time as monotonic
from dataclasses import replace

from cachetools import TLRUCache

from ..domain.errors import FieldError, ValidationFailed
from ..domain.model import utcnow
from ..domain.quiet import QuietHours, checked_zone
from ..storage import LicenseeSettings, LicenseeSettingsStore
from .held import HeldMessages

CACHE_SECONDS = 30.0


class Licensees:
    def __init__(self, store: LicenseeSettingsStore, held: HeldMessages, cache_seconds: float = CACHE_SECONDS,
                 max_cached: int = 10_000):
        self._store = store
        self._held = held
        self._ttl = cache_seconds
        self._cache: TLRUCache[str, tuple[float, QuietHours | None]] = TLRUCache(
            maxsize=max_cached, ttu=lambda _licensee, entry, _now: entry[0] + self._ttl, timer=monotonic.monotonic)

    async def settings(self, licensee_id: str) -> LicenseeSettings:
        return await self._store.get(licensee_id) or LicenseeSettings(licensee_id)

    async def quiet_hours(self, licensee_id: str) -> QuietHours | None:
        """The licensee's quiet hours, or None when it has none."""
        cached = self._cache.get(licensee_id)
        if cached is not None:
            return cached[1]
        started = monotonic.monotonic()
        settings = await self._store.get(licensee_id)
        hours = QuietHours.parse(settings.quiet_hours, settings.time_zone) if settings and settings.quiet_hours else None
        self._cache[licensee_id] = (started, hours)
        return hours

    async def set(self, licensee_id: str, *, quiet_hours: str | None = None, no_quiet_hours: bool = False,
                  time_zone: str | None = None) -> LicenseeSettings:
        """Change what is given, keep the rest; ValidationFailed naming a window or a zone that is wrong."""
        current = await self.settings(licensee_id)
        errors = []
        zone = current.time_zone
        if time_zone is not None:
            try:
                zone = checked_zone(time_zone.strip())
            except ValueError as exc:
                errors.append(FieldError("TimeZone", "InvalidValue", f"TimeZone: {exc}"))
        window = None if no_quiet_hours else current.quiet_hours
        if quiet_hours is not None and not no_quiet_hours:
            try:
                window = QuietHours.parse(quiet_hours, "UTC").window
            except ValueError as exc:
                errors.append(FieldError("QuietHours", "InvalidValue", f"QuietHours: {exc}"))
        if errors:
            raise ValidationFailed(errors)
        updated = replace(current, quiet_hours=window, time_zone=zone, updated_at=utcnow())
        await self._store.put(updated)
        self._cache.pop(licensee_id, None)
        # Every process sees the change once its cached copy lapses: the woken jobs are due then. Woken on
        # every set, a change or not: a set repeated after its wake failed still wakes them.
        await self._held.wake(licensee_id, math.ceil(self._ttl) + 1)
        return updated
