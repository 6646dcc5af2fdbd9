"""The licensee's guard (issue 27): which destinations its messages may reach, judged per recipient; a
refused recipient ends `blocked` with its reason, in status, ledger, usage and a message.blocked webhook,
and the rest of its message goes. A licensee's key may tighten its guard; loosening it takes the operator."""
import json
from datetime import datetime, timedelta, timezone

import pytest

from sms.domain.errors import Forbidden, ValidationFailed
from sms.domain.guard import (
    Action,
    Caps,
    Guard,
    PumpingMode,
    default_guard,
    guard_data,
    kind_of,
    money_micros,
    money_text,
    parse_guard,
    parse_guard_text,
)
from sms.domain.model import Status
from sms.domain.prices import PriceTable
from sms.domain.routing import RoutingTable, Rule
from sms.storage import LedgerQuery
from tests.fakes import LICENSEE, OTHER, World, command

AU_MOBILE, AU_PREMIUM, AU_SHARED, AU_TOLL_FREE = "+61412345678", "+611900123456", "+611300123456", "+611800123456"
GB_MOBILE, GB_PREMIUM, US_LINE, US_PREMIUM = "+447400123456", "+449012345678", "+12015550123", "+19002345678"


def test_numbers_are_read_for_their_country_and_type_by_libphonenumber():
    assert kind_of(AU_MOBILE) == ("AU", "mobile")
    assert kind_of(AU_PREMIUM) == ("AU", "premium_rate")
    assert kind_of(AU_SHARED) == ("AU", "shared_cost")
    assert kind_of(AU_TOLL_FREE) == ("AU", "toll_free")
    assert kind_of(GB_PREMIUM) == ("GB", "premium_rate")
    assert kind_of(US_PREMIUM) == ("US", "premium_rate")


HOME = default_guard(("AU",))
# (guard, number, action, words the reason holds)
RULES = [
    (HOME, AU_MOBILE, Action.ALLOW, None),
    (HOME, GB_MOBILE, Action.BLOCK, "country GB is blocked by this licensee's guard (otherCountries)"),
    (HOME, US_LINE, Action.BLOCK, "country US is blocked"),
    (HOME, AU_PREMIUM, Action.BLOCK, "premium-rate numbers are blocked by this licensee's guard (numberTypes)"),
    (HOME, AU_SHARED, Action.BLOCK, "shared-cost numbers are blocked"),
    (HOME, AU_TOLL_FREE, Action.ALLOW, None),
    # A country listed: its own action, not otherCountries.
    (parse_guard({"countries": {"GB": "allow"}}, HOME), GB_MOBILE, Action.ALLOW, None),
    (parse_guard({"countries": {"GB": "monitor"}}, HOME), GB_MOBILE, Action.MONITOR, "country GB is monitored by this licensee's guard"),
    (parse_guard({"countries": {"AU": "block"}}, HOME), AU_MOBILE, Action.BLOCK, "country AU is blocked by this licensee's guard"),
    (parse_guard({"otherCountries": "monitor"}, HOME), GB_MOBILE, Action.MONITOR, "(otherCountries)"),
    # An allowed country does not let a premium number through: the stricter of the two wins.
    (parse_guard({"countries": {"GB": "allow"}}, HOME), GB_PREMIUM, Action.BLOCK, "premium-rate numbers are blocked"),
    (parse_guard({"otherCountries": "allow"}, HOME), US_PREMIUM, Action.BLOCK, "premium-rate"),
    # Allowed explicitly, a premium number goes; a type may be monitored or blocked too.
    (parse_guard({"numberTypes": {"premium_rate": "allow"}}, HOME), AU_PREMIUM, Action.ALLOW, None),
    (parse_guard({"numberTypes": {"premium_rate": None}}, HOME), AU_PREMIUM, Action.ALLOW, None),
    (parse_guard({"numberTypes": {"toll-free": "monitor"}}, HOME), AU_TOLL_FREE, Action.MONITOR, "toll-free numbers are monitored"),
    (parse_guard({"numberTypes": {"mobile": "block"}}, HOME), AU_MOBILE, Action.BLOCK, "mobile numbers are blocked"),
    # Both block: both reasons said.
    (HOME, US_PREMIUM, Action.BLOCK, "country US is blocked by this licensee's guard (otherCountries); premium-rate numbers"),
    # Every country allowed ("*"): risky types still refused.
    (default_guard(("*",)), GB_MOBILE, Action.ALLOW, None),
    (default_guard(("*",)), GB_PREMIUM, Action.BLOCK, "premium-rate"),
    # A monitored country and a blocked type: block.
    (parse_guard({"countries": {"US": "monitor"}}, HOME), US_PREMIUM, Action.BLOCK, "premium-rate numbers are blocked"),
]


@pytest.mark.parametrize("guard, number, action, reason", RULES)
def test_each_rule_and_number_type(guard: Guard, number: str, action: Action, reason: str | None):
    verdict = guard.judge(number)
    assert verdict.action is action
    if reason is None:
        assert verdict.reason is None
    else:
        assert reason in verdict.reason


@pytest.mark.parametrize("data, field", [
    ({"countries": {"XX": "allow"}}, "Countries.XX"),
    ({"countries": {"GB": "permit"}}, "Countries.GB"),
    ({"countries": ["GB"]}, "Countries"),
    ({"otherCountries": "maybe"}, "OtherCountries"),
    ({"otherCountries": 1}, "OtherCountries"),
    ({"numberTypes": {"premium": "allow"}}, "NumberTypes.premium"),
    ({"pumping": "on"}, "Pumping"),
    ({"safeList": ["0412 345 678"]}, "SafeList[0]"),
    ({"safeList": "+614"}, "SafeList"),
    ({"safeList": ["+614"] * 201}, "SafeList"),
    ({"caps": {"dailySegments": -1}}, "Caps.dailySegments"),
    ({"caps": {"dailySegments": True}}, "Caps.dailySegments"),
    ({"caps": {"dailySegments": "ten"}}, "Caps.dailySegments"),
    ({"caps": {"dailySegments": 1.5}}, "Caps.dailySegments"),
    ({"caps": {"dailyCost": "1.0000001"}}, "Caps.dailyCost"),
    ({"caps": {"monthlyCost": "-5"}}, "Caps.monthlyCost"),
    ({"caps": {"monthlyCost": "NaN"}}, "Caps.monthlyCost"),
    ({"caps": {"monthlyCost": "1e400"}}, "Caps.monthlyCost"),
    ({"caps": {"weekly": 5}}, "Caps.weekly"),
    ({"caps": 5}, "Caps"),
    ({"colour": "red"}, "colour"),
])
def test_a_guard_that_is_wrong_is_refused_naming_the_field(data, field):
    with pytest.raises(ValidationFailed) as refused:
        parse_guard(data, HOME)
    assert field in [e.field_name for e in refused.value.field_errors]


def test_a_change_merges_into_the_guard_and_reads_back_as_stored():
    guard = parse_guard({"Countries": {"gb": "monitor", "NZ": "allow"}, "caps": {"dailySegments": 1000, "monthlyCost": "250.5"},
                         "safeList": ["+61 412", "+61412"], "pumping": "Monitor"}, HOME)
    assert guard.countries == (("AU", Action.ALLOW), ("GB", Action.MONITOR), ("NZ", Action.ALLOW))
    assert guard.caps == Caps(daily_segments=1000, monthly_cost=250_500_000)
    assert guard.safe_list == ("+61412",) and guard.pumping is PumpingMode.MONITOR
    assert guard_data(guard)["caps"] == {"dailySegments": 1000, "monthlySegments": None, "dailyCost": None, "monthlyCost": "250.50"}
    assert parse_guard_text(json.dumps(guard_data(guard))) == guard
    # A null removes an entry (a country goes back to otherCountries; a cap goes).
    cleared = parse_guard({"countries": {"NZ": None}, "caps": {"dailySegments": None}}, guard)
    assert dict(cleared.countries) == {"AU": Action.ALLOW, "GB": Action.MONITOR} and cleared.caps.daily_segments is None


def test_money_is_exact_millionths():
    assert money_micros("0.05") == 50_000 and money_micros(12) == 12_000_000 and money_micros("0.000001") == 1
    assert money_micros("0.0000001") is None and money_micros(-1) is None and money_micros(True) is None
    assert money_text(50_000) == "0.05" and money_text(52_500) == "0.0525" and money_text(0) == "0.00" and money_text(None) is None


@pytest.mark.parametrize("text", ["1e999999999", "1e-999999999", "1.0000000000000000000000000001", "0.0000000000000000000000000001"])
def test_an_amount_beyond_what_decimal_arithmetic_holds_exactly_is_no_amount(text):
    # Decimal's default context (28 digits, exponents to 999999) overflowed on the first (a 500 where a cap or a
    # MaxPrice was read), took the second for 0 and rounded the others into whole millionths: none has at most 6 decimals.
    assert money_micros(text) is None


@pytest.mark.parametrize("change, loosened", [
    ({"countries": {"GB": "monitor"}}, ["Countries.GB: block -> monitor"]),
    ({"otherCountries": "allow"}, ["OtherCountries: block -> allow"]),
    ({"numberTypes": {"premium_rate": "allow"}}, ["NumberTypes.premium_rate: block -> allow"]),
    ({"pumping": "off"}, ["Pumping: enforce -> off"]),
    ({"safeList": ["+614"]}, ["SafeList: adds +614"]),
    ({"caps": {"dailySegments": None}}, ["Caps.DailySegments: 100 -> none"]),
    ({"caps": {"dailySegments": 101}}, ["Caps.DailySegments: 100 -> 101"]),
    ({"caps": {"dailySegments": 99, "monthlySegments": 5000}, "countries": {"AU": "monitor"}, "pumping": "enforce"}, []),
])
def test_what_a_change_would_loosen(change, loosened):
    capped = parse_guard({"caps": {"dailySegments": 100}}, HOME)
    assert capped.loosened_by(parse_guard(change, capped)) == loosened


# -- the guard applied: at accept, at dispatch, and what the licensee then sees -------------------------

async def test_refusals_are_per_recipient_and_the_rest_of_the_message_goes():
    world = World()
    await world.use.webhooks.add(LICENSEE, "https://crm.example.org/sms-events")
    comm_id = await world.send(AU_MOBILE, GB_MOBILE, AU_PREMIUM, "+61412345679")
    report = await world.sms.status(comm_id, LICENSEE)
    by_number = {r.phone_number: r for r in report.recipients}
    assert by_number[AU_MOBILE].status is Status.SENT and by_number["+61412345679"].status is Status.SENT
    assert by_number[GB_MOBILE].status is Status.BLOCKED and "country GB is blocked" in by_number[GB_MOBILE].last_error
    assert by_number[AU_PREMIUM].status is Status.BLOCKED and "premium-rate" in by_number[AU_PREMIUM].last_error
    assert sorted(sms.to for sms in world.provider.sent) == [AU_MOBILE, "+61412345679"]
    assert report.status == "partially_sent"
    # Its timeline says when and why.
    [step] = [e for e in by_number[GB_MOBILE].timeline if e.status is Status.BLOCKED]
    assert "country GB" in step.error
    # The ledger, and so usage, count it blocked.
    [entry], _ = await world.ledger.page(LedgerQuery(LICENSEE, datetime.now(timezone.utc) - timedelta(hours=1),
                                                     datetime.now(timezone.utc) + timedelta(hours=1)), 10)
    assert sorted(entry.statuses) == sorted("SSbb")
    # And the licensee is told, once for each.
    events = [json.loads(e.body) for batch in world.ledger.event_batches.values() for e in batch]
    blocked = [e for e in events if e["type"] == "message.blocked"]
    assert sorted(e["data"]["phoneNumber"] for e in blocked) == sorted([GB_MOBILE, AU_PREMIUM])
    assert all(e["data"]["status"] == "blocked" and "blocked by this licensee's guard" in e["data"]["error"] for e in blocked)
    assert all(e["id"].endswith("b") for e in blocked)


async def test_a_message_whose_every_recipient_is_blocked_is_accepted_and_ends_blocked():
    world = World()
    comm_id = await world.send(GB_MOBILE, US_LINE)
    report = await world.sms.status(comm_id, LICENSEE)
    assert report.status == "blocked" and {r.status for r in report.recipients} == {Status.BLOCKED}
    assert world.provider.sent == []


async def test_a_monitored_country_is_sent_and_flagged_on_its_claim():
    world = World()
    await world.use.licensees.set_guard(LICENSEE, {"countries": {"GB": "monitor"}}, may_loosen=True)
    comm_id = await world.send(GB_MOBILE, AU_MOBILE)
    report = await world.sms.status(comm_id, LICENSEE)
    gb, au = report.recipients
    assert gb.status is Status.SENT and au.status is Status.SENT
    [claim] = [e for e in gb.timeline if e.status is Status.SENDING]
    assert claim.guard == "country GB is monitored by this licensee's guard"
    assert all(e.guard is None for e in au.timeline)


async def test_the_guard_as_it_stands_at_dispatch_decides_a_scheduled_message():
    world = World()
    await world.use.licensees.set_guard(LICENSEE, {"countries": {"GB": "allow"}}, may_loosen=True)
    response = await world.sms.accept(command(GB_MOBILE, AU_MOBILE), LICENSEE)
    [(job, _)] = [j for j in world.queue.jobs if j[0].comm_id == response.comm_id]
    # Allowed when accepted; the operator blocks GB before the job runs (and this process's cache is fresh).
    await world.use.licensees.set_guard(LICENSEE, {"countries": {"GB": "block"}}, may_loosen=True)
    await world.sms.dispatch(job)
    gb, au = (await world.sms.status(response.comm_id, LICENSEE)).recipients
    assert gb.status is Status.BLOCKED and "country GB is blocked" in gb.last_error
    assert au.status is Status.SENT and [s.to for s in world.provider.sent] == [AU_MOBILE]


async def test_a_licensee_may_tighten_its_guard_but_loosening_takes_the_operator():
    world = World()
    licensees = world.use.licensees
    tightened = await licensees.set_guard(LICENSEE, {"countries": {"AU": "monitor"}, "caps": {"dailySegments": 500}}, may_loosen=False)
    assert tightened.country_action("AU") is Action.MONITOR and tightened.caps.daily_segments == 500
    with pytest.raises(Forbidden) as refused:
        await licensees.set_guard(LICENSEE, {"countries": {"GB": "allow"}, "caps": {"dailySegments": 501}}, may_loosen=False)
    assert "Countries.GB: block -> allow" in refused.value.message and "Caps.DailySegments: 500 -> 501" in refused.value.message
    assert await licensees.guard(LICENSEE, cached=False) == tightened  # nothing saved
    loosened = await licensees.set_guard(LICENSEE, {"countries": {"GB": "allow"}}, may_loosen=True)
    assert loosened.country_action("GB") is Action.ALLOW
    # Another licensee's guard is its own: still the deployment's default.
    assert await licensees.guard(OTHER) == HOME
    # Cleared, the default applies again.
    assert await licensees.set_guard(LICENSEE, None, may_loosen=True, clear=True) == HOME
    assert (await licensees.stored_guard(LICENSEE))[1] is False


async def test_a_wrong_guard_is_refused_before_anything_is_read_or_saved():
    world = World()
    with pytest.raises(ValidationFailed):
        await world.use.licensees.set_guard(LICENSEE, {"countries": {"ZZ": "allow"}}, may_loosen=True)
    assert (await world.use.licensees.stored_guard(LICENSEE))[1] is False


# -- prices: what a recipient costs, MaxPrice, and a cost cap that needs a price ----------------------

PRICES = PriceTable("AUD", (("AU", "*", 50_000), ("GB", "*", 120_000)))


async def _screened(world: World, *numbers: str, max_price: int | None = None, body: str = "Hello"):
    message, recipients = await world.use.accept.checked(command(*numbers, body=body), LICENSEE)
    return await world.use.screening.screen(message, recipients, max_price)


async def test_each_recipient_is_priced_through_its_routes_first_provider():
    world = World(prices=PRICES)
    await world.use.licensees.set_guard(LICENSEE, {"countries": {"GB": "allow"}}, may_loosen=True)
    screened = await _screened(world, AU_MOBILE, GB_MOBILE, body="x" * 161)  # two segments each
    priced = [(line.country, line.provider, line.cost) for line in screened.lines]
    assert priced == [("AU", "recording", 100_000), ("GB", "recording", 240_000)]
    assert (screened.segments, screened.cost, screened.currency) == (4, 340_000, "AUD")


async def test_max_price_blocks_a_recipient_costing_more_and_lets_one_at_it_go():
    world = World(prices=PRICES)
    await world.use.licensees.set_guard(LICENSEE, {"countries": {"GB": "allow"}}, may_loosen=True)
    screened = await _screened(world, AU_MOBILE, GB_MOBILE, max_price=120_000 - 1)
    au, gb = screened.recipients
    assert au.status is Status.QUEUED
    assert gb.status is Status.BLOCKED and gb.last_error == "it costs 0.12 AUD, over the message's MaxPrice of 0.119999 AUD"
    assert (screened.segments, screened.cost) == (1, 50_000)  # what still goes
    at_it = await _screened(world, GB_MOBILE, max_price=120_000)
    assert at_it.recipients[0].status is Status.QUEUED


async def test_a_price_the_table_lacks_blocks_the_recipient_only_when_something_needs_it():
    world = World()  # no price table
    await world.use.licensees.set_guard(LICENSEE, {"countries": {"GB": "allow"}}, may_loosen=True)
    unpriced = await _screened(world, GB_MOBILE)
    assert unpriced.recipients[0].status is Status.QUEUED and unpriced.cost is None
    await world.use.licensees.set_guard(LICENSEE, {"caps": {"dailyCost": "10"}}, may_loosen=True)
    capped = await _screened(world, GB_MOBILE)
    assert capped.recipients[0].status is Status.BLOCKED
    assert capped.recipients[0].last_error == ("the price table has no price for GB through recording, and this licensee's cost cap "
                                               "needs one")


async def test_a_recipient_with_no_route_is_left_for_dispatch_to_fail_and_costs_nothing():
    world = World(prices=PRICES)
    world.use.licensees.default_routes = RoutingTable((Rule("+61", ("recording",)),))
    await world.use.licensees.set_guard(LICENSEE, {"countries": {"GB": "allow"}}, may_loosen=True)
    screened = await _screened(world, AU_MOBILE, GB_MOBILE)
    assert [r.status for r in screened.recipients] == [Status.QUEUED, Status.QUEUED]
    assert [line.provider for line in screened.lines] == ["recording", None] and screened.cost == 50_000


async def test_a_refused_recipient_is_stored_blocked_when_accepted_before_any_job_runs():
    world = World()
    response = await world.sms.accept(command(AU_MOBILE, GB_MOBILE), LICENSEE)
    _, (au, gb) = await world.store.load(response.comm_id)
    assert au.status is Status.QUEUED
    assert gb.status is Status.BLOCKED and gb.updated_at == gb.created_at  # blocked as it was created


async def test_an_immediate_send_says_how_many_the_guard_blocked_and_why():
    world = World()
    answer = await world.sms.send_now(command(AU_MOBILE, GB_MOBILE, US_LINE), LICENSEE)
    assert not answer.ok
    assert answer.summary == ("Sent to 1 of 3 recipients; 2 blocked by the guard: country GB is blocked by this licensee's guard "
                              "(otherCountries)")


async def test_a_recipient_is_priced_at_the_dearest_provider_its_route_may_fail_over_to():
    """A cap and a MaxPrice hold whichever provider takes it: a licensee's own table, which its key sets,
    cannot put a cheap provider first and let a dear one send on failover."""
    from sms.providers import ProviderSet
    from tests.fakes import RecordingProvider, assembled

    class Dear(RecordingProvider):
        name = "dear"

    async def screened(prices: PriceTable, max_price: int | None = None):
        use = assembled(providers=ProviderSet([RecordingProvider(), Dear()]), prices=prices,
                        default_routes=RoutingTable((Rule("*", ("recording", "dear")),)))
        message, recipients = await use.accept.checked(command(AU_MOBILE), LICENSEE)
        return await use.screening.screen(message, recipients, max_price)

    both = PriceTable("AUD", (("AU", "recording", 50_000), ("AU", "dear", 90_000)))
    cheap_first = await screened(both)
    [line] = cheap_first.lines
    assert (line.provider, line.cost, cheap_first.cost) == ("recording", 90_000, 90_000)
    over = await screened(both, max_price=89_999)
    assert over.recipients[0].status is Status.BLOCKED and "it costs 0.09 AUD" in over.recipients[0].last_error
    # A provider of the route the table cannot price: unknown, so blocked where a price is needed, naming it.
    unpriced = await screened(PriceTable("AUD", (("AU", "recording", 50_000),)), max_price=1_000_000)
    assert unpriced.recipients[0].last_error == "the price table has no price for AU through dear, and its MaxPrice needs one"
