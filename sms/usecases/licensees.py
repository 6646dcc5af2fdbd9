"""A licensee's own settings: its quiet hours and its time zone, set by an operator (python -m sms
licensees set), its own routing table, set by an operator (python -m sms routes set) or by the
licensee (PUT /api/routes), and its guard (sms/domain/guard.py), set by an operator (python -m sms guard
set) or tightened by the licensee (PUT /api/guard: loosening it takes the operator, so a stolen key
cannot open the way to premium numbers or lift a cap). Read by every dispatch, cached: a change reaches every process within
`cache_seconds`. A change of quiet hours or zone wakes the jobs the old hours held (sms/usecases/held.py),
due once those caches have lapsed.

The settings are one row per licensee, written by both: each write is ETag-checked and, on a lost race,
decided again from the row as it then stands (sms/usecases/optimistic.py), so neither undoes the other."""
from __future__ import annotations

import math
import time as monotonic
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Callable, Sequence

from cachetools import TLRUCache

from ..domain.errors import Conflict, FieldError, Forbidden, RecordChanged, StillChanging, ValidationFailed
from ..domain.guard import Guard, guard_text, parse_guard, parse_guard_text
from ..domain.model import utcnow
from ..domain.quiet import QuietHours, checked_zone
from ..domain.routing import RoutingTable, parse_rules, parse_table, table_data, table_text
from ..storage import ApiKeyRecord, LicenseeSettings, LicenseeSettingsStore
from .held import HeldMessages
from .optimistic import update_optimistically

CACHE_SECONDS = 30.0
WRITE_ATTEMPTS = 5  # ETag-checked writes of one licensee's row before a conflict is answered (409: try again)
_KEEP = object()


@dataclass(frozen=True)
class _Read:
    """What dispatch reads of a licensee's row, parsed once a read."""

    quiet_hours: QuietHours | None
    routes: RoutingTable | None
    guard: Guard | None
    time_zone: str = "UTC"


@dataclass(frozen=True)
class LicenseeSummary:
    """One licensee, as the admin's list shows it (GET /api/licensees)."""

    licensee_id: str
    active_keys: int
    has_own_routes: bool
    has_own_guard: bool
    quiet_hours: str | None
    time_zone: str


class Licensees:
    def __init__(self, store: LicenseeSettingsStore, held: HeldMessages, cache_seconds: float = CACHE_SECONDS,
                 max_cached: int = 10_000, *, default_routes: RoutingTable, provider_names: Sequence[str],
                 default_guard: Guard = Guard()):
        """`default_routes`: the deployment's table, for a licensee without its own; `provider_names`: the
        deployment's providers, the only names a table set here may use; `default_guard`: the guard of a
        licensee without its own (its home countries from SMS_GUARD_HOME_COUNTRIES)."""
        self._store = store
        self._held = held
        self._ttl = cache_seconds
        self._cache: TLRUCache[str, tuple[float, _Read]] = TLRUCache(
            maxsize=max_cached, ttu=lambda _licensee, entry, _now: entry[0] + self._ttl, timer=monotonic.monotonic)
        self.default_routes = default_routes
        self.provider_names = tuple(provider_names)
        self.default_guard = default_guard

    async def directory(self, keys: Sequence[ApiKeyRecord], now: datetime) -> list[LicenseeSummary]:
        """Every licensee, by id: there is no registry of licensees, so a licensee is one that has an API key (`keys`, all
        of them, active or not) or a settings row (a scan of one small row a licensee)."""
        rows = {s.licensee_id: s for s in await self._store.every()}
        active: dict[str, int] = dict.fromkeys(rows, 0)
        for key in keys:
            active[key.licensee_id] = active.get(key.licensee_id, 0) + key.active(now)
        return [LicenseeSummary(licensee, active[licensee], row.routes is not None, row.guard is not None, row.quiet_hours,
                                row.time_zone)
                for licensee in sorted(active) for row in (rows.get(licensee) or LicenseeSettings(licensee),)]

    async def settings(self, licensee_id: str) -> LicenseeSettings:
        return await self._store.get(licensee_id) or LicenseeSettings(licensee_id)

    async def quiet_hours(self, licensee_id: str) -> QuietHours | None:
        """The licensee's quiet hours, or None when it has none."""
        return (await self._read(licensee_id)).quiet_hours

    async def routes(self, licensee_id: str, *, cached: bool = True) -> RoutingTable | None:
        """The licensee's own routing table, or None when it has none (the default applies). `cached=False`
        reads what is stored now (what `routes show` and GET /api/routes answer)."""
        if not cached:
            return _routes_of(await self.settings(licensee_id))
        return (await self._read(licensee_id)).routes

    async def routes_for(self, licensee_id: str) -> RoutingTable:
        """The table the licensee's messages go by: its own, or the deployment's default."""
        return await self.routes(licensee_id) or self.default_routes

    async def guard(self, licensee_id: str, *, cached: bool = True) -> Guard:
        """The guard the licensee's messages go by: its own, or the deployment's default. `cached=False`
        reads what is stored now (what `guard show` and GET /api/guard answer)."""
        if not cached:
            return (await self.stored_guard(licensee_id))[0]
        return (await self._read(licensee_id)).guard or self.default_guard

    async def stored_guard(self, licensee_id: str) -> tuple[Guard, bool]:
        """The guard as stored now (one read, not a process's cached copy), and whether it is the licensee's
        own (False: the deployment's default applies)."""
        own = _guard_of(await self.settings(licensee_id))
        return own or self.default_guard, own is not None

    async def time_zone(self, licensee_id: str) -> str:
        """The licensee's zone (UTC until it sets one), cached: its days are the days its usage and caps count."""
        return (await self._read(licensee_id)).time_zone

    async def guard_and_routes(self, licensee_id: str) -> tuple[Guard, RoutingTable]:
        """`guard` and `routes_for` (cached) in one read of the cache: what every accept asks."""
        read = await self._read(licensee_id)
        return read.guard or self.default_guard, read.routes or self.default_routes

    async def set_guard(self, licensee_id: str, data: Any, *, may_loosen: bool, clear: bool = False) -> Guard:
        """Change the licensee's guard by `data` (sms.domain.guard.parse_guard: the fields given replace or
        merge into the guard it has now), or with `clear` go back to the deployment's default. Without
        `may_loosen` (the licensee's own key), a change that permits anything the guard now refuses is
        Forbidden, naming each such field; nothing is saved. ValidationFailed naming each bad field."""

        def change(current: LicenseeSettings) -> LicenseeSettings:
            now = _guard_of(current) or self.default_guard
            wanted = self.default_guard if clear else parse_guard(data, now)
            if not may_loosen and (loosened := now.loosened_by(wanted)):
                raise Forbidden("Loosening a guard takes the operator (python -m sms guard set, or an admin API key); a licensee's key may "
                                "only tighten it. This change would loosen: " + "; ".join(loosened))
            return replace(current, guard=None if clear else guard_text(wanted), updated_at=utcnow())

        if not clear:
            parse_guard(data, self.default_guard)  # refused before any read when the data itself is wrong
        updated = await self._update(licensee_id, change)
        return _guard_of(updated) or self.default_guard

    def parse_routes(self, data: Any) -> RoutingTable:
        """A table from plain data (a request's rules), its providers this deployment's: ValidationFailed
        naming each problem (sms.domain.routing.parse_rules)."""
        return parse_rules(data, self.provider_names)

    async def set_routes(self, licensee_id: str, table: RoutingTable | None) -> RoutingTable | None:
        """Give the licensee its own table, or none (None: the default applies again). A table naming a
        provider the deployment does not have is refused (ValidationFailed), nothing saved. Every process
        uses the change once its cached copy lapses."""
        text = None
        if table is not None:
            # Read back as any text is read: the same rules, a provider this deployment has, and it fits.
            text = table_text(parse_rules(table_data(table), self.provider_names))
        await self._update(licensee_id, lambda current: replace(current, routes=text, updated_at=utcnow()))
        return table

    async def set(self, licensee_id: str, *, quiet_hours: str | None = None, no_quiet_hours: bool = False,
                  time_zone: str | None = None) -> LicenseeSettings:
        """Change what is given, keep the rest; ValidationFailed naming a window or a zone that is wrong, quiet
        hours given with `no_quiet_hours` (which of the two was meant is not for the gateway to guess), or nothing
        given (a request whose names were misspelt would otherwise change nothing and say it had worked; the CLI
        says so in its options' names before it connects)."""
        if quiet_hours is None and not no_quiet_hours and time_zone is None:
            raise ValidationFailed([FieldError("", "NotEmpty", "Nothing to change: give QuietHours, NoQuietHours (true) or TimeZone")])
        errors = []
        zone = None
        if time_zone is not None:
            try:
                zone = checked_zone(time_zone.strip())
            except ValueError as exc:
                errors.append(FieldError("TimeZone", "InvalidValue", f"TimeZone: {exc}"))
        window: object = None if no_quiet_hours else _KEEP
        if quiet_hours is not None and not no_quiet_hours:
            try:
                window = QuietHours.parse(quiet_hours, "UTC").window
            except ValueError as exc:
                errors.append(FieldError("QuietHours", "InvalidValue", f"QuietHours: {exc}"))
        if quiet_hours is not None and no_quiet_hours:
            errors.append(FieldError("NoQuietHours", "InvalidValue", "NoQuietHours: give QuietHours (a window) or NoQuietHours "
                                                                      "(none), not both"))
        if errors:
            raise ValidationFailed(errors)

        def change(current: LicenseeSettings) -> LicenseeSettings:
            return replace(current, quiet_hours=current.quiet_hours if window is _KEEP else window,  # type: ignore[arg-type]
                           time_zone=zone or current.time_zone, updated_at=utcnow())

        updated = await self._update(licensee_id, change)
        # Every process sees the change once its cached copy lapses: the woken jobs are due then. Woken on
        # every set, a change or not: a set repeated after its wake failed still wakes them.
        await self._held.wake(licensee_id, math.ceil(self._ttl) + 1)
        return updated

    async def _read(self, licensee_id: str) -> _Read:
        cached = self._cache.get(licensee_id)
        if cached is not None:
            return cached[1]
        started = monotonic.monotonic()
        settings = await self._store.get(licensee_id)
        read = _Read(QuietHours.parse(settings.quiet_hours, settings.time_zone) if settings and settings.quiet_hours else None,
                     _routes_of(settings) if settings else None, _guard_of(settings) if settings else None,
                     settings.time_zone if settings else "UTC")
        self._cache[licensee_id] = (started, read)
        return read

    async def _update(self, licensee_id: str, change: Callable[[LicenseeSettings], LicenseeSettings]) -> LicenseeSettings:
        try:
            updated = await update_optimistically(lambda: self.settings(licensee_id), change, self._store.put,
                                                  attempts=WRITE_ATTEMPTS, what=f"licensee {licensee_id}'s settings")
        except RecordChanged:
            raise StillChanging(f"Licensee {licensee_id}'s settings kept changing while this change was saved: "
                                "make it again") from None
        self._cache.pop(licensee_id, None)
        assert updated is not None  # every change writes
        return updated


def _guard_of(settings: LicenseeSettings) -> Guard | None:
    """The stored guard (None: the default applies). Stored only as guard_text wrote it, so it always reads."""
    if settings.guard is None:
        return None
    try:
        return parse_guard_text(settings.guard)
    except (ValueError, ValidationFailed) as exc:
        detail = "; ".join(e.message for e in exc.field_errors) if isinstance(exc, ValidationFailed) else str(exc)
        raise Conflict(f"Licensee {settings.licensee_id}'s stored guard cannot be read: {detail}. Set it again "
                       "(python -m sms guard set) or clear it (guard set --clear)") from None


def _routes_of(settings: LicenseeSettings) -> RoutingTable | None:
    """The stored table, read as saved: its providers were the deployment's then, and may not be now
    (dispatch skips one it does not have). Stored only as table_text wrote it, so it always reads."""
    if settings.routes is None:
        return None
    try:
        return parse_table(settings.routes, None)
    except ValidationFailed as exc:  # written by hand, or by a version with other rules: say whose, why and what to do
        raise Conflict(f"Licensee {settings.licensee_id}'s stored routing table cannot be read: "
                       + "; ".join(e.message for e in exc.field_errors)
                       + ". Set it again (PUT /api/routes, routes set) or clear it (DELETE /api/routes, routes set --clear)") from None
