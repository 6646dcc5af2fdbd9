"""A licensee's own routing table (issue 26), kept with its settings: set, read back (cached, as dispatch
reads it), cleared back to the deployment's default; checked against the deployment's providers; one
licensee's never another's; and a change of routes never losing a change of quiet hours made meanwhile."""
import pytest

from sms.domain.errors import RecordChanged, StillChanging, ValidationFailed
from sms.domain.routing import RoutingTable, Rule, parse_rules
from sms.storage import LicenseeSettings
from sms.usecases.held import HeldMessages
from sms.usecases.ledger import Ledger
from sms.usecases.licensees import CACHE_SECONDS, Licensees
from tests.fakes import (
    LICENSEE,
    OTHER,
    InMemoryJobQueue,
    InMemoryLedgerStore,
    InMemoryLicenseeSettingsStore,
    InMemoryMessageStore,
    RecordingProvider,
    assembled,
)

DEFAULT = RoutingTable((Rule("AU", ("acs-au",)), Rule("*", ("twilio",))))
PROVIDERS = ("twilio", "acs-au")
OWN = RoutingTable((Rule("+1", ("twilio",), "Clinic"), Rule("*", ("acs-au", "twilio"))))


@pytest.fixture
def store():
    return InMemoryLicenseeSettingsStore()


@pytest.fixture
def licensees(store):
    held = HeldMessages(Ledger(InMemoryLedgerStore()), InMemoryMessageStore(), InMemoryJobQueue())
    return Licensees(store, held, default_routes=DEFAULT, provider_names=PROVIDERS)


async def test_a_licensee_without_its_own_table_has_the_default(licensees):
    assert await licensees.routes(LICENSEE) is None
    assert await licensees.routes_for(LICENSEE) == DEFAULT == licensees.default_routes
    assert licensees.provider_names == PROVIDERS


async def test_its_own_table_replaces_the_default_until_cleared(licensees, store):
    assert await licensees.set_routes(LICENSEE, OWN) == OWN
    assert await licensees.routes(LICENSEE) == OWN == await licensees.routes_for(LICENSEE)
    saved = store.settings[LICENSEE]
    assert saved.routes == '[{"match":"+1","providers":["twilio"],"sender":"Clinic"},{"match":"*","providers":["acs-au","twilio"]}]'
    assert saved.updated_at is not None
    assert await licensees.set_routes(LICENSEE, None) is None
    assert store.settings[LICENSEE].routes is None
    assert await licensees.routes(LICENSEE) is None and await licensees.routes_for(LICENSEE) == DEFAULT


async def test_one_licensee_s_table_is_never_another_s(licensees):
    await licensees.set_routes(LICENSEE, OWN)
    assert await licensees.routes(OTHER) is None and await licensees.routes_for(OTHER) == DEFAULT
    await licensees.set_routes(OTHER, RoutingTable.through("twilio"))
    assert await licensees.routes(LICENSEE) == OWN
    await licensees.set_routes(OTHER, None)
    assert await licensees.routes(LICENSEE) == OWN


async def test_a_table_naming_a_provider_the_deployment_lacks_is_refused_and_nothing_is_saved(licensees, store):
    with pytest.raises(ValidationFailed) as refused:
        await licensees.set_routes(LICENSEE, RoutingTable((Rule("*", ("twilio", "vonage")),)))
    assert [(e.field_name, e.error_code) for e in refused.value.field_errors] == [("Rules[0].Providers[1]", "UnknownProvider")]
    assert store.settings == {}
    with pytest.raises(ValidationFailed):  # parse_routes reads plain data (a request's rules) against the same providers
        licensees.parse_routes([{"match": "*", "providers": ["vonage"]}])
    assert licensees.parse_routes({"rules": [{"match": "*", "providers": ["acs-au"]}]}) == RoutingTable.through("acs-au")


async def test_routes_are_read_once_per_cache_period_with_the_quiet_hours(store, monkeypatch):
    """Dispatch reads both for every job: one read of the licensee's row serves both, for CACHE_SECONDS."""
    now = [1000.0]
    monkeypatch.setattr("time.monotonic", lambda: now[0])  # before the cache is made: its timer too
    licensees = Licensees(store, None, default_routes=DEFAULT, provider_names=PROVIDERS)
    await licensees.set_routes(LICENSEE, OWN)
    store.gets = 0
    assert await licensees.routes_for(LICENSEE) == OWN and await licensees.quiet_hours(LICENSEE) is None
    assert await licensees.routes(LICENSEE) == OWN and store.gets == 1
    # Another process changes it: this one sees the change once its copy lapses.
    store.settings[LICENSEE] = LicenseeSettings(LICENSEE, routes='[{"match":"*","providers":["twilio"]}]', etag="changed")
    assert await licensees.routes(LICENSEE) == OWN
    assert await licensees.routes(LICENSEE, cached=False) == RoutingTable.through("twilio")  # what show and GET read
    now[0] += CACHE_SECONDS + 0.1
    assert await licensees.routes(LICENSEE) == RoutingTable.through("twilio")


async def test_a_table_saved_when_the_deployment_had_other_providers_is_still_read(licensees, store):
    """The deployment's providers may change after a licensee saved its table: it reads back as saved
    (dispatch treats a provider it no longer has as refusing)."""
    store.settings[LICENSEE] = LicenseeSettings(LICENSEE, routes='[{"match":"*","providers":["retired"]}]')
    assert await licensees.routes(LICENSEE) == RoutingTable.through("retired")


async def test_routes_and_quiet_hours_set_at_once_both_stay(licensees, store):
    """An operator's `licensees set` and the licensee's PUT /api/routes write the same row: each write is
    ETag-checked, so the one that loses the race reads the other's change and writes both."""
    await licensees.set(LICENSEE, quiet_hours="21:00-08:00")
    put = store.put
    raced = []

    async def another_writer_first(settings):
        if not raced:  # just before this write lands, an operator changes the time zone
            raced.append(True)
            current = store.settings[LICENSEE]
            await put(LicenseeSettings(LICENSEE, current.quiet_hours, "Australia/Perth", current.updated_at, current.routes,
                                       etag=current.etag))
        return await put(settings)

    store.put = another_writer_first
    await licensees.set_routes(LICENSEE, OWN)
    saved = store.settings[LICENSEE]
    assert (saved.quiet_hours, saved.time_zone, saved.routes is not None) == ("21:00-08:00", "Australia/Perth", True)
    raced.clear()
    await licensees.set(LICENSEE, time_zone="Europe/London")
    saved = store.settings[LICENSEE]
    assert (saved.time_zone, parse_rules_of(saved)) == ("Europe/London", OWN)


async def test_a_write_that_keeps_losing_races_is_a_conflict_to_retry(licensees, store):
    async def always_changed(settings):
        raise RecordChanged("changed")

    store.put = always_changed
    with pytest.raises(StillChanging, match="kept changing"):
        await licensees.set_routes(LICENSEE, OWN)


async def test_the_fake_store_refuses_stale_writes_as_table_storage_does(store):
    first = await store.put(LicenseeSettings(LICENSEE, "21:00-08:00"))
    with pytest.raises(RecordChanged):
        await store.put(LicenseeSettings(LICENSEE))  # created meanwhile
    second = await store.put(LicenseeSettings(LICENSEE, None, etag=first.etag))
    with pytest.raises(RecordChanged):
        await store.put(LicenseeSettings(LICENSEE, "22:00-07:00", etag=first.etag))
    assert (await store.get(LICENSEE)).etag == second.etag


async def test_assembled_the_default_table_is_the_tuning_s_or_everything_through_the_provider():
    use = assembled(provider=RecordingProvider())
    assert use.licensees.default_routes == RoutingTable.through("recording") and use.licensees.provider_names == ("recording",)
    given = RoutingTable((Rule("AU", ("recording",)),))
    assert assembled(provider=RecordingProvider(), default_routes=given).licensees.default_routes == given


def parse_rules_of(settings: LicenseeSettings) -> RoutingTable:
    import json

    return parse_rules(json.loads(settings.routes), None)
