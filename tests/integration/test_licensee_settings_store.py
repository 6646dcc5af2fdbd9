"""Licensee settings on Azurite (issue 26): a routing table kept as its text beside the quiet hours, every
write ETag-checked so an operator's `licensees set` and a licensee's PUT /api/routes never undo each other,
and a table's text held to Azure's 64 KiB string property before anything is sent."""
import asyncio
import uuid

import pytest

from sms.domain.errors import RecordChanged
from sms.domain.routing import MAX_TABLE_CHARS, RoutingTable, Rule
from sms.storage import LicenseeSettings
from sms.storage.limits import StorageLimitExceeded

TABLE = RoutingTable((Rule("AU", ("console",), "+61400000000"), Rule("*", ("console",))))


async def test_a_routing_table_round_trips_with_the_other_settings(adapters):
    licensee = uuid.uuid4().hex
    written = await adapters.licensees.put(LicenseeSettings(licensee, "21:00-08:00", "Australia/Sydney", routes='[{"match":"*"}]'))
    assert written.etag
    read = await adapters.licensees.get(licensee)
    assert read == written and read.etag == written.etag and read.routes == '[{"match":"*"}]'
    cleared = await adapters.licensees.put(LicenseeSettings(licensee, "21:00-08:00", "Australia/Sydney", etag=read.etag))
    assert (await adapters.licensees.get(licensee)).routes is None and cleared.etag != read.etag


async def test_a_stale_write_is_refused_and_changes_nothing(adapters):
    licensee = uuid.uuid4().hex
    first = await adapters.licensees.put(LicenseeSettings(licensee, "21:00-08:00"))
    with pytest.raises(RecordChanged):
        await adapters.licensees.put(LicenseeSettings(licensee, "22:00-07:00"))  # a create: someone created it first
    second = await adapters.licensees.put(LicenseeSettings(licensee, "23:00-06:00", etag=first.etag))
    with pytest.raises(RecordChanged):
        await adapters.licensees.put(LicenseeSettings(licensee, "20:00-09:00", etag=first.etag))  # changed since read
    assert (await adapters.licensees.get(licensee)) == second


async def test_the_longest_table_text_is_stored_and_a_longer_one_refused_before_it_is_sent(adapters):
    """MAX_TABLE_CHARS ASCII characters are 64 KiB as UTF-16, Azure's limit for a string property; Azurite
    takes more, so the adapter checks (sms/storage/limits.py)."""
    licensee = uuid.uuid4().hex
    longest = "x" * MAX_TABLE_CHARS
    await adapters.licensees.put(LicenseeSettings(licensee, routes=longest))
    assert (await adapters.licensees.get(licensee)).routes == longest
    other = uuid.uuid4().hex
    with pytest.raises(StorageLimitExceeded) as refused:
        await adapters.licensees.put(LicenseeSettings(other, routes=longest + "x"))
    assert refused.value.limit == "StringSize"
    assert await adapters.licensees.get(other) is None


async def test_routes_and_quiet_hours_changed_at_once_both_stay(adapters):
    """Real ETags: ten rounds of an operator changing the time zone while the licensee sets and clears its
    table; every change lands, none undone by the other's write."""
    use = adapters.gateway().use
    licensee = uuid.uuid4().hex
    zones = ["Australia/Perth", "Australia/Sydney", "Europe/London", "UTC", "Asia/Tokyo"] * 2
    for i, zone in enumerate(zones):
        table = TABLE if i % 2 == 0 else None
        await asyncio.gather(use.licensees.set(licensee, time_zone=zone), use.licensees.set_routes(licensee, table))
        stored = await adapters.licensees.get(licensee)
        assert stored.time_zone == zone and (await use.licensees.routes(licensee, cached=False)) == table, i


async def test_every_licensees_settings_are_listed_for_the_admins_licensee_list(adapters):
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    await adapters.licensees.put(LicenseeSettings(first, "21:00-08:00", "Australia/Sydney", routes='[{"match":"*"}]'))
    await adapters.licensees.put(LicenseeSettings(second, guard='{"pumping":"off"}'))
    listed = {s.licensee_id: s for s in await adapters.licensees.every()}
    assert listed[first] == await adapters.licensees.get(first) and listed[first].routes == '[{"match":"*"}]'
    assert (listed[second].quiet_hours, listed[second].time_zone, listed[second].guard) == (None, "UTC", '{"pumping":"off"}')
