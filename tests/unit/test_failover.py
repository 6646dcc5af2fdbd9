"""Several providers and failover (issue 26): a recipient goes to the next provider of its route only when
the one before refused it before accepting it; an ambiguous answer never goes elsewhere and is never sent
blind; a crash's trace asks the provider the claim names."""
import itertools
import random
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from sms.domain.model import SendJob, Status
from sms.domain.routing import NO_ROUTE, RoutingTable, Rule
from sms.domain.transitions import OUTCOME_UNKNOWN
from sms.providers import Failure, Found, OutgoingSms, ProviderSet, SendOutcome, SmsProvider, Trace
from sms.storage import LedgerQuery
from tests.fakes import EVERY_COUNTRY, LICENSEE, Clock, InMemoryJobQueue, InMemoryMessageStore, assembled, command

T0 = datetime(2026, 12, 6, 10, 0, tzinfo=timezone.utc)
LEASE = timedelta(seconds=60)
AU, US = "+61412300001", "+12025550123"


class Vendor(SmsProvider):
    """A provider that answers each call as its script says (by number, one outcome a call; the last
    repeats), and keeps what it took, as a vendor's own record, for `find`.

    Outcomes: "ok" (taken), "not_taken", "refused", "ambiguous_taken" (it took it, the answer was lost),
    "ambiguous_lost" (it never got it, the answer was lost all the same), "crash_taken" / "crash_lost"
    (the worker dies during the call, after or before the vendor took it: Crash ends the dispatch)."""

    def __init__(self, name: str, script: dict[str, list[str]] | None = None, *, find_sends: bool = False, default: str = "ok",
                 log: list[tuple[str, str, str]] | None = None):
        self.name, self.script, self.find_sends, self.default = name, script or {}, find_sends, default
        self.taken: dict[str, str] = {}  # recipient id -> provider message id
        self.calls: list[str] = []
        self.finds: list[str] = []
        self.log = log if log is not None else []  # (number, provider, what it answered or "find"), across vendors

    def _next(self, to: str) -> str:
        steps = self.script.get(to, [self.default])
        return steps.pop(0) if len(steps) > 1 else steps[0]

    def _take(self, sms: OutgoingSms) -> str:
        self.taken.setdefault(sms.recipient_id, f"{self.name}-{len(self.taken) + 1}")
        return self.taken[sms.recipient_id]

    async def send(self, sms: OutgoingSms) -> SendOutcome:
        self.calls.append(sms.to)
        step = self._next(sms.to)
        self.log.append((sms.to, self.name, step))
        if step == "ok":
            return SendOutcome(provider_message_id=self._take(sms))
        if step == "not_taken":
            return SendOutcome(error=f"{self.name}: connection refused", transient=True, failure=Failure.NOT_TAKEN)
        if step == "refused":
            return SendOutcome(error=f"{self.name}: invalid destination", failure=Failure.REFUSED, code="21211")
        if step in ("ambiguous_taken", "crash_taken"):
            self._take(sms)
        if step.startswith("crash"):
            raise Crash()
        return SendOutcome(error=f"{self.name}: timed out after writing", transient=True, failure=Failure.AMBIGUOUS)

    async def find(self, sms: OutgoingSms) -> Trace:
        self.finds.append(sms.to)
        self.log.append((sms.to, self.name, "find"))
        if self.find_sends:  # a repeat under the vendor's own idempotency key: sent now if it never had it
            return Trace(Found.SENT, self._take(sms))
        if sms.recipient_id in self.taken:
            return Trace(Found.SENT, self.taken[sms.recipient_id])
        return Trace(Found.NOT_SENT)


class Crash(BaseException):
    """The worker process dies (kill -9) mid-call: nothing after this point of the dispatch runs."""


class World:
    def __init__(self, *vendors: Vendor, rules: tuple[Rule, ...] | None = None, **tuning):
        self.clock, self.store, self.queue = Clock(T0), InMemoryMessageStore(), InMemoryJobQueue()
        self.vendors = {v.name: v for v in vendors}
        table = RoutingTable(rules or (Rule("*", tuple(self.vendors)),))
        self.use = assembled(self.store, self.queue, providers=ProviderSet(list(vendors)), default_routes=table, clock=self.clock,
                             sending_lease=LEASE, default_guard=EVERY_COUNTRY, **tuning)

    async def send(self, *numbers: str) -> str:
        return (await self.use.accept.queue(command(*numbers), LICENSEE)).comm_id

    async def run(self, comm_id: str) -> None:
        try:
            await self.use.dispatch.dispatch(SendJob(comm_id, 0, 99))
        except Crash:
            pass  # the next run is another worker, after the claims' lease

    async def rows(self, comm_id: str):
        return (await self.store.load(comm_id))[1]

    def taken(self, recipient_id: str) -> list[str]:
        return [name for name, v in self.vendors.items() if recipient_id in v.taken]


async def test_a_send_not_taken_goes_to_the_next_provider_of_its_route_and_the_timeline_says_so():
    world = World(Vendor("acs-au", default="not_taken"), Vendor("twilio-au"))
    comm_id = await world.send(AU)
    await world.run(comm_id)

    [row] = await world.rows(comm_id)
    assert row.status is Status.SENT and row.provider == "twilio-au" and world.taken(row.recipient_id) == ["twilio-au"]
    claim, passed, sent = row.timeline[1:]
    assert (claim.status, claim.provider, claim.attempt) == (Status.SENDING, "acs-au", 1)
    assert (passed.status, passed.provider, passed.attempt) == (Status.SENDING, "twilio-au", 1)
    assert passed.error == "Not taken by acs-au: acs-au: connection refused; passed to twilio-au"
    assert passed.outcome == "not_taken"  # the timeline says what the failure meant, with the provider's code
    assert sent.status is Status.SENT and sent.provider_message_id == "twilio-au-1"


async def test_a_refusal_after_the_provider_took_the_request_goes_nowhere_else():
    world = World(Vendor("acs-au", default="refused"), Vendor("twilio-au"))
    comm_id = await world.send(AU)
    await world.run(comm_id)

    [row] = await world.rows(comm_id)
    assert row.status is Status.FAILED and row.last_error == "acs-au: invalid destination"
    assert (row.timeline[-1].outcome, row.timeline[-1].code, row.timeline[-1].provider) == ("refused", "21211", None)
    assert row.timeline[-2].provider == "acs-au"  # the claim's step names who was called
    assert world.vendors["twilio-au"].calls == []


async def test_an_ambiguous_answer_is_never_sent_elsewhere_and_is_traced_on_its_own_provider_after_the_lease():
    world = World(Vendor("twilio-au", default="ambiguous_taken"), Vendor("acs-au"))
    comm_id = await world.send(AU)
    await world.run(comm_id)

    [row] = await world.rows(comm_id)
    assert row.status is Status.SENDING and row.provider == "twilio-au"  # what happened is not known yet: not a guess
    assert world.vendors["acs-au"].calls == []
    [(job, delay)] = [(j, d) for j, d in world.queue.jobs if d > 0]
    assert delay == LEASE.total_seconds() + 1  # back once the claim's lease has run out

    world.clock.at += timedelta(seconds=delay)
    await world.use.dispatch.dispatch(job)
    [row] = await world.rows(comm_id)
    assert row.status is Status.SENT and row.provider_message_id == "twilio-au-1"
    assert world.vendors["twilio-au"].calls == [AU] and world.vendors["twilio-au"].finds == [AU]  # asked, not sent again


async def test_an_ambiguous_answer_the_provider_never_had_is_sent_again_on_the_same_provider_once_traced():
    world = World(Vendor("twilio-au", script={AU: ["ambiguous_lost", "ok"]}), Vendor("acs-au"))
    comm_id = await world.send(AU)
    await world.run(comm_id)
    world.clock.at += LEASE + timedelta(seconds=1)
    await world.run(comm_id)

    [row] = await world.rows(comm_id)
    assert row.status is Status.SENT and world.taken(row.recipient_id) == ["twilio-au"]
    assert world.vendors["twilio-au"].calls == [AU, AU] and world.vendors["acs-au"].calls == []


async def test_an_ambiguous_answer_from_a_provider_that_repeats_under_its_key_is_asked_at_once():
    world = World(Vendor("acs-au", default="ambiguous_lost", find_sends=True), Vendor("twilio-au"))
    comm_id = await world.send(AU)
    await world.run(comm_id)

    [row] = await world.rows(comm_id)
    assert row.status is Status.SENT and row.provider_message_id == "acs-au-1"
    assert world.vendors["acs-au"].finds == [AU] and world.vendors["twilio-au"].calls == []


async def test_a_number_no_rule_matches_fails_no_route_and_reaches_no_provider():
    world = World(Vendor("acs-au"), rules=(Rule("AU", ("acs-au",)),))
    comm_id = await world.send(AU, US)
    await world.run(comm_id)

    au, us = await world.rows(comm_id)
    assert au.status is Status.SENT
    assert (us.status, us.last_error, us.attempts) == (Status.FAILED, NO_ROUTE, 0)
    assert world.vendors["acs-au"].calls == [AU]


async def test_each_country_goes_through_its_own_provider_from_its_pinned_sender():
    world = World(Vendor("acs-au"), Vendor("twilio-us"),
                  rules=(Rule("AU", ("acs-au",), sender="+61480000000"), Rule("+1", ("twilio-us",))))
    seen: list[OutgoingSms] = []
    for vendor in world.vendors.values():
        send = vendor.send

        async def recorded(sms, send=send):
            seen.append(sms)
            return await send(sms)

        vendor.send = recorded
    comm_id = await world.send(AU, US)
    await world.run(comm_id)

    au, us = await world.rows(comm_id)
    assert (au.provider, us.provider) == ("acs-au", "twilio-us")
    assert {s.to: s.sender for s in seen} == {AU: "+61480000000", US: None}
    assert au.sent_from == "+61480000000"


async def test_a_crash_claim_is_traced_on_the_provider_it_was_passed_to_not_the_first():
    world = World(Vendor("acs-au", default="not_taken"), Vendor("twilio-au"))
    comm_id = await world.send(AU)
    [row] = await world.rows(comm_id)
    # A worker claimed it for acs-au, passed it to twilio-au (which took it) and stopped before recording.
    from sms.domain import transitions
    claimed = transitions.claimed(row, "dead", at=T0, provider="acs-au")
    passed = transitions.passed_on(claimed, "dead", "twilio-au", "Not taken by acs-au", at=T0)
    world.store.recipients[comm_id][0] = replace(passed, etag=row.etag)
    world.vendors["twilio-au"].taken[row.recipient_id] = "twilio-au-9"

    world.clock.at = T0 + LEASE + timedelta(seconds=1)
    await world.run(comm_id)
    [row] = await world.rows(comm_id)
    assert (row.status, row.provider_message_id) == (Status.SENT, "twilio-au-9")
    assert world.vendors["twilio-au"].finds == [AU] and world.vendors["acs-au"].finds == []
    assert world.vendors["acs-au"].calls == world.vendors["twilio-au"].calls == []


@pytest.mark.parametrize("seed", range(60))
async def test_random_outcomes_and_crashes_never_text_anyone_twice_or_report_failed_what_a_provider_took(seed):
    """The property, over random outcome scripts for three providers, workers killed mid-call and late
    failure receipts: each recipient is taken by at most one provider; a send not taken reaches the next;
    an ambiguous one, or one whose worker died, never does before its provider is asked; a recipient with
    a failure receipt is never sent again; and nothing a provider took ends failed (unless its provider
    cannot tell: outcome unknown). Breakers stay shut here (their own tests are below)."""
    rng = random.Random(seed)
    outcomes = ["ok", "not_taken", "refused", "ambiguous_taken", "ambiguous_lost", "crash_taken", "crash_lost"]
    numbers = [f"+614123{i:05d}" for i in range(6)]
    log: list[tuple[str, str, str]] = []
    names = ["p1", "p2", "p3"]
    vendors = [Vendor(name, {n: [rng.choice(outcomes) for _ in range(4)] for n in numbers}, log=log) for name in names]
    world = World(*vendors, breaker_failures=1000)
    comm_id = await world.send(*numbers)
    for _ in range(8):
        await world.run(comm_id)
        world.clock.at += LEASE + timedelta(seconds=rng.choice([1, 30, 400]))
        for row in await world.rows(comm_id):  # now and then a carrier's late failure for what was sent
            if row.status is Status.SENT and rng.random() < 0.3:
                await world.use.inbound.apply_receipt(f"{comm_id}:{row.seq}", Status.UNDELIVERED, None, "carrier gave up")
                log.append((row.phone_number, "carrier", "undelivered"))

    rows = await world.rows(comm_id)
    for row in rows:
        taken_by = world.taken(row.recipient_id)
        assert len(taken_by) <= 1, (row, taken_by)
        accepted = (Status.SENT, Status.DELIVERED, Status.UNDELIVERED)  # a provider took it (a carrier may fail it later)
        if row.status in accepted:
            assert taken_by == [row.provider]
        if taken_by:
            assert row.status in (*accepted, Status.SENDING) or row.last_error == OUTCOME_UNKNOWN, row
        steps = [(provider, what) for number, provider, what in log if number == row.phone_number]
        for (provider, what), (after, then) in itertools.pairwise(steps):
            if what.startswith(("ambiguous", "crash")):  # the same provider is asked before anything else happens
                assert (after, then) == (provider, "find"), steps
            if what == "not_taken" and provider != names[-1]:  # the next provider is tried at once
                assert after == names[names.index(provider) + 1] and then != "find", steps
        if ("carrier", "undelivered") in steps:  # accepted, then failed: never sent again
            assert all(then in ("find", "undelivered") for _, then in steps[steps.index(("carrier", "undelivered")):]), steps


# -- provider health: the circuit breaker -----------------------------------------------------------------


def test_a_breaker_opens_on_a_run_of_failures_routes_around_then_probes_and_closes():
    from sms.domain.breaker import Breakers, State

    clock = Clock(T0)
    breakers = Breakers(clock, failures_to_open=3, cool_off=timedelta(seconds=30))
    assert breakers.called("acs-au", False, "refused at the door") is None
    breakers.called("acs-au", True)  # an answer in between: the run starts again
    for _ in range(2):
        assert breakers.called("acs-au", False, "x") is None
    assert breakers.called("acs-au", False, "connection refused") == \
        "provider acs-au: closed -> open (3 calls in a row failed, the last: connection refused)"
    assert not breakers.allows("acs-au")
    clock.at += timedelta(seconds=30)
    assert breakers.allows("acs-au") and not breakers.allows("acs-au")  # half-open: one probe, no more
    assert breakers.called("acs-au", False, "still down") == "provider acs-au: half_open -> open (its probe failed: still down)"
    clock.at += timedelta(seconds=30)
    assert breakers.allows("acs-au")
    assert breakers.called("acs-au", True) == "provider acs-au: half_open -> closed"
    assert breakers.allows("acs-au") and breakers.circuits()["acs-au"].state is State.CLOSED


def test_a_probe_that_never_reports_back_does_not_shut_a_provider_out_for_good():
    from sms.domain.breaker import Breakers

    clock = Clock(T0)
    breakers = Breakers(clock, failures_to_open=1, cool_off=timedelta(seconds=30))
    breakers.called("p", False, "x")
    clock.at += timedelta(seconds=30)
    assert breakers.allows("p") and not breakers.allows("p")
    clock.at += timedelta(seconds=30)  # its probe's outcome never came
    assert breakers.allows("p")


def test_a_collapse_of_deliveries_to_a_country_opens_that_countrys_circuit_alone():
    from sms.domain.breaker import DELIVERY_WINDOW, Breakers, delivery_key

    breakers = Breakers(Clock(T0))
    au, us = delivery_key("twilio", "AU"), delivery_key("twilio", "US")
    changes = [breakers.delivered(au, i % 10 == 0) for i in range(DELIVERY_WINDOW)]  # 10% delivered
    for _ in range(DELIVERY_WINDOW):
        breakers.delivered(us, True)
    assert [c for c in changes if c] == ["provider twilio|AU: closed -> open (10% of its last 50 receipts were delivered)"]
    assert not breakers.allows(au) and breakers.allows(us) and breakers.allows("twilio")


async def test_once_a_providers_breaker_opens_its_recipients_go_straight_to_the_next_and_it_is_probed_later():
    from sms.domain.breaker import FAILURES_TO_OPEN

    down, up = Vendor("acs-au", default="not_taken"), Vendor("twilio-au")
    world = World(down, up, send_concurrency=1)  # one call at a time: each starts after the one before answered
    numbers = [f"+614123{i:05d}" for i in range(12)]
    comm_id = await world.send(*numbers)
    await world.run(comm_id)
    assert all(r.status is Status.SENT and r.provider == "twilio-au" for r in await world.rows(comm_id))
    assert len(down.calls) == FAILURES_TO_OPEN  # then it was routed around: no call of its own for the rest
    assert len(up.calls) == 12

    down.default = "ok"  # it recovers; after the cool-off one recipient probes it, and closes its breaker
    world.clock.at += timedelta(seconds=30)
    later = await world.send(*numbers[:4])
    await world.run(later)
    assert [r.provider for r in await world.rows(later)] == ["acs-au"] * 4
    assert world.use.breakers.circuits()["acs-au"].state.value == "closed"


async def test_a_delivery_receipt_feeds_the_providers_country_circuit():
    world = World(Vendor("twilio-au"))
    comm_id = await world.send(AU)
    await world.run(comm_id)
    await world.use.inbound.apply_receipt(f"{comm_id}:0", Status.UNDELIVERED, None, "carrier rejected", provider="twilio")
    circuit = world.use.breakers.circuits()["twilio-au|AU"]
    assert list(circuit.deliveries) == [False]


async def test_a_licensees_own_routing_table_replaces_the_default_for_its_messages_only():
    from tests.fakes import OTHER

    world = World(Vendor("acs-au"), Vendor("twilio-au"))  # default: acs-au, then twilio-au
    await world.use.licensees.set_routes(LICENSEE, RoutingTable((Rule("*", ("twilio-au",)),)))
    mine = await world.send(AU)
    theirs = (await world.use.accept.queue(command(AU), OTHER)).comm_id
    await world.run(mine)
    await world.run(theirs)
    assert [r.provider for r in await world.rows(mine)] == ["twilio-au"]
    assert [r.provider for r in await world.rows(theirs)] == ["acs-au"]


# -- the simulator numbers (SMS_SIMULATOR) -----------------------------------------------------------------


async def test_a_simulator_number_goes_to_the_simulator_whatever_the_routing_table_says():
    from sms.providers.simulator import SimulatorProvider

    simulator = SimulatorProvider(receipt_delay=3600)
    world = World(Vendor("twilio-au"))
    world.use = assembled(world.store, world.queue, providers=ProviderSet([world.vendors["twilio-au"], simulator]), clock=world.clock,
                          default_routes=RoutingTable((Rule("*", ("twilio-au",)),)), sending_lease=LEASE, default_guard=EVERY_COUNTRY)
    fiction = "+61491570006"  # ACMA's first number for drama (sms/domain/simulated.py)
    comm_id = await world.send(AU, fiction)
    await world.run(comm_id)
    real, simulated_row = await world.rows(comm_id)
    assert (real.provider, simulated_row.provider) == ("twilio-au", "simulator")
    assert world.vendors["twilio-au"].calls == [AU]
    await simulator.close()


def test_the_simulator_is_added_last_unless_turned_off_and_its_name_is_its_own():
    from sms.bootstrap import create_providers
    from sms.config import ConfigError, Settings

    base = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    assert create_providers(Settings.from_env(base)).names == ["console", "simulator"]
    assert create_providers(Settings.from_env({**base, "SMS_SIMULATOR": "off"})).names == ["console"]
    with pytest.raises(ConfigError, match="'simulator' is the simulator's own name"):
        create_providers(Settings.from_env({**base, "SMS_PROVIDERS": "simulator", "SMS_PROVIDER_SIMULATOR_KIND": "console"}))


async def test_usage_and_the_ledger_count_each_recipient_under_the_provider_that_sent_it():
    world = World(Vendor("acs-au", script={"+61412300002": ["not_taken"]}), Vendor("twilio-us"),
                  rules=(Rule("AU", ("acs-au", "twilio-us")), Rule("+1", ("twilio-us",))))
    comm_id = await world.send(AU, US, "+61412300002")  # the last: not taken by acs-au, sent by twilio-us
    await world.run(comm_id)
    assert [r.provider for r in await world.rows(comm_id)] == ["acs-au", "twilio-us", "twilio-us"]

    calendar = await world.use.usage.calendar(LICENSEE)
    [day] = await world.use.usage.days(calendar, calendar.today, calendar.today)
    assert day.by_provider == {"acs-au": 1, "twilio-us": 2}
    entry = (await world.use.ledger.page(LedgerQuery(LICENSEE)))[0][0]
    assert entry.provider == "acs-au" and entry.sent_by == "acs-au,twilio-us|011"


def test_a_message_sent_by_one_provider_keeps_no_letters_and_a_second_marks_the_ones_before_as_the_first():
    from sms.domain.model import Recipient
    from sms.storage import LedgerEntry
    from sms.usecases.ledger import billed_by_provider, sent_by_of

    def row(seq, status, provider):
        return Recipient("c" * 32, seq, f"r{seq}", f"+6141230000{seq}", status=status, provider=provider)

    first, sent_by = sent_by_of(None, [row(0, Status.SENT, "a"), row(1, Status.SENT, "a")], None, "SSQ")
    assert (first, sent_by) == ("a", "")
    entry = LedgerEntry(LICENSEE, "c" * 32, T0, 3, 1, "GSM-7", "Hi", "SSS", provider="a")
    first, sent_by = sent_by_of(entry, [row(2, Status.SENT, "b")], None, "SSS")
    assert (first, sent_by) == ("a", "a,b|001")
    assert billed_by_provider(LedgerEntry(LICENSEE, "c" * 32, T0, 3, 1, "GSM-7", "Hi", "SSS", provider="a", sent_by=sent_by)) == \
        {"a": 2, "b": 1}


async def test_a_stored_table_naming_a_provider_since_removed_skips_it_and_a_rule_left_with_none_is_no_route():
    """A licensee's table is read as stored, and the deployment's providers may have changed since."""
    from sms.domain.routing import NO_ROUTE, table_text
    from sms.storage import LicenseeSettings

    world = World(Vendor("acs-au"))
    table = RoutingTable((Rule("AU", ("gone", "acs-au")), Rule("+1", ("gone",))))
    await world.use.licensees._store.put(LicenseeSettings(LICENSEE, routes=table_text(table)))  # written when "gone" was there
    comm_id = await world.send(AU, US)
    await world.run(comm_id)
    au, us = await world.rows(comm_id)
    assert (au.status, au.provider) == (Status.SENT, "acs-au")
    assert (us.status, us.last_error, us.attempts) == (Status.FAILED, NO_ROUTE, 0)


def test_a_country_circuit_opened_by_receipts_closes_on_a_delivery_and_reopens_on_a_failed_probe():
    from sms.domain.breaker import DELIVERY_WINDOW, Breakers, State, delivery_key

    clock = Clock(T0)
    breakers = Breakers(clock, cool_off=timedelta(seconds=30))
    au = delivery_key("twilio", "AU")
    for _ in range(DELIVERY_WINDOW):
        breakers.delivered(au, False)
    assert not breakers.allows(au)
    clock.at += timedelta(seconds=30)
    assert breakers.allows(au)  # half-open: one probe
    assert breakers.delivered(au, False) == "provider twilio|AU: half_open -> open (a receipt after it opened was not delivered either)"
    clock.at += timedelta(seconds=30)
    assert breakers.allows(au)
    assert breakers.delivered(au, True) == "provider twilio|AU: half_open -> closed"
    assert breakers.circuits()[au].state is State.CLOSED and breakers.allows(au)
