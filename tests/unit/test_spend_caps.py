"""Spend caps (issue 27): daily and monthly, in segments and in estimated cost, per licensee, counted in its
own zone's days, exact under concurrency, warned of at 50/80/100 %, and refused at the cap naming it."""
import asyncio
import json
from datetime import datetime, timezone

import pytest

from sms.domain.comm_ids import CommIdKeys
from sms.domain.errors import StorageUnavailable
from sms.domain.model import Status
from sms.domain.prices import PriceTable
from sms.domain.spend import Cap, CapReached
from tests.fakes import (
    ALEX,
    LICENSEE,
    OTHER,
    SAM,
    Clock,
    InMemoryDeliveryQueue,
    InMemoryJobQueue,
    InMemoryLedgerStore,
    InMemoryMessageStore,
    InMemorySpendStore,
    InMemoryWholeJobQueue,
    SmsOverCommands,
    assembled,
    command,
)

# 0.05 USD a segment everywhere, except Germany which the table does not price.
PRICES = PriceTable("USD", (("AU", "*", 50_000), ("US", "*", 50_000)))
SAM3 = "+61412000003"
LONG = "x" * 161  # two GSM-7 segments


def numbers(n: int) -> list[str]:
    return [f"+614120{i:05d}" for i in range(n)]


def gateway(clock=None, **options):
    spend = options.pop("spend", None) or InMemorySpendStore()
    use = assembled(prices=PRICES, spend=spend, clock=clock or Clock(datetime(2026, 12, 6, 3, 0, tzinfo=timezone.utc)), **options)
    return use, spend, SmsOverCommands(use)


async def capped(use, **caps):
    await use.licensees.set_guard(LICENSEE, {"caps": caps}, may_loosen=True)


async def used(use, cap: Cap) -> int:
    return next(u.used for u in await use.spend.spent(LICENSEE) if u.cap is cap)


@pytest.mark.parametrize("cap, caps, body", [
    (Cap.DAILY_SEGMENTS, {"dailySegments": 6}, LONG),  # 3 recipients x 2 segments = 6
    (Cap.MONTHLY_SEGMENTS, {"monthlySegments": 6}, LONG),
    (Cap.DAILY_COST, {"dailyCost": "0.30"}, LONG),  # 6 segments x 0.05
    (Cap.MONTHLY_COST, {"monthlyCost": "0.30"}, LONG),
])
async def test_exactly_at_the_cap_goes_and_one_over_is_refused_naming_the_cap(cap, caps, body):
    jobs = InMemoryJobQueue()
    use, spend, sms = gateway(jobs=jobs)
    await capped(use, **caps)
    await sms.accept(command(SAM, ALEX, SAM3, body=body), LICENSEE)  # exactly the cap
    assert await used(use, cap) == (6 if cap.counts == "segments" else 300_000)
    jobs_before = len(jobs.jobs)
    with pytest.raises(CapReached) as refused:
        await sms.accept(command(SAM, body="Hi"), LICENSEE)  # one segment over
    error = refused.value
    assert error.error_code == cap.error_code
    period = "Daily" if cap.period == "day" else "Monthly"
    what = "segment" if cap.counts == "segments" else "cost"
    figures = ("6 reached: 6 used, this request needs 1" if cap.counts == "segments"
               else "0.30 USD reached: 0.30 USD used, this request needs 0.05 USD")
    # The licensee has not set a zone: UTC. The day ends at midnight; the month on January 1st.
    resets = "2026-12-07T00:00:00+00:00" if cap.period == "day" else "2027-01-01T00:00:00+00:00"
    assert error.message == f"{period} {what} cap of {figures}; it resets at {resets}"
    assert error.retry_after_seconds == (21 * 3600 if cap.period == "day" else 25 * 86400 + 21 * 3600)
    assert await used(use, cap) == (6 if cap.counts == "segments" else 300_000)  # the refused one took nothing
    assert len(jobs.jobs) == jobs_before  # nothing queued


async def test_over_two_caps_the_one_that_resets_last_is_named():
    use, _, sms = gateway()
    await capped(use, dailySegments=1, monthlySegments=1)
    await sms.accept(command(SAM), LICENSEE)
    with pytest.raises(CapReached) as refused:
        await sms.accept(command(SAM), LICENSEE)
    assert refused.value.error_code == "MonthlySegmentCap"  # retrying at midnight would be refused again


async def test_a_licensee_without_caps_costs_no_storage_call():
    use, spend, sms = gateway()
    await sms.accept(command(SAM, ALEX), LICENSEE)
    await sms.send_now(command(SAM), LICENSEE)
    assert (spend.reads, spend.writes) == (0, 0)


async def test_caps_are_per_licensee():
    use, _, sms = gateway()
    await capped(use, dailySegments=1)
    await sms.accept(command(SAM), LICENSEE)
    await sms.accept(command(SAM, ALEX), OTHER)  # no caps of its own
    with pytest.raises(CapReached):
        await sms.accept(command(SAM), LICENSEE)


@pytest.mark.parametrize("one_call", [False, True], ids=["two_call", "one_call"])
async def test_concurrent_accepts_take_exactly_the_room_and_share_writes(one_call):
    whole = InMemoryWholeJobQueue()
    one_call_ports = {"accept_jobs": whole, "comm_id_keys": CommIdKeys(b"k" * 32), "accept_one_call": True} if one_call else {}
    use, spend, sms = gateway(**one_call_ports)
    await capped(use, dailySegments=10)
    await used(use, Cap.DAILY_SEGMENTS)  # the counters read once, as the first request would
    spend.reads = spend.writes = 0
    results = await asyncio.gather(*(sms.accept(command(n), LICENSEE) for n in numbers(50)), return_exceptions=True)
    accepted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, CapReached)]
    assert (len(accepted), len(refused)) == (10, 40)
    assert len(whole.jobs) == (10 if one_call else 0)  # the path they took: one put each, the refused none
    assert await used(use, Cap.DAILY_SEGMENTS) == 10
    # Coalesced: the requests that arrived while one write was in flight went together in the next.
    assert spend.writes < 10


async def test_a_day_is_the_licensees_own_and_rolls_over_at_its_midnight():
    clock = Clock(datetime(2026, 12, 6, 12, 59, tzinfo=timezone.utc))  # 23:59 in Sydney (UTC+11)
    use, _, sms = gateway(clock)
    await use.licensees.set(LICENSEE, time_zone="Australia/Sydney")
    await capped(use, dailySegments=1, monthlySegments=3)
    await sms.accept(command(SAM), LICENSEE)
    with pytest.raises(CapReached) as refused:
        await sms.accept(command(SAM), LICENSEE)
    assert refused.value.message.endswith("it resets at 2026-12-07T00:00:00+11:00")
    assert refused.value.retry_after_seconds == 60
    clock.at = datetime(2026, 12, 6, 13, 0, tzinfo=timezone.utc)  # 00:00 on the 7th in Sydney: a new day
    await sms.accept(command(SAM), LICENSEE)
    assert await used(use, Cap.DAILY_SEGMENTS) == 1
    assert await used(use, Cap.MONTHLY_SEGMENTS) == 2  # the same month
    clock.at = datetime(2026, 12, 31, 12, 59, tzinfo=timezone.utc)  # 23:59 on the 31st in Sydney
    await sms.accept(command(SAM), LICENSEE)  # the month's third
    with pytest.raises(CapReached) as refused:
        clock.at = datetime(2026, 12, 31, 12, 59, 30, tzinfo=timezone.utc)
        await sms.accept(command(SAM), LICENSEE)
    assert refused.value.error_code == "MonthlySegmentCap"
    assert refused.value.message.endswith("it resets at 2027-01-01T00:00:00+11:00")
    clock.at = datetime(2026, 12, 31, 13, 0, tzinfo=timezone.utc)  # January 1st in Sydney, still December in UTC
    await sms.accept(command(SAM), LICENSEE)
    assert await used(use, Cap.MONTHLY_SEGMENTS) == 1


async def test_each_threshold_is_told_once_by_webhook_under_the_message_that_crossed_it():
    ledger, deliveries = InMemoryLedgerStore(), InMemoryDeliveryQueue()
    use, _, sms = gateway(ledger=ledger, deliveries=deliveries)
    await use.webhooks.add(LICENSEE, "https://crm.example.org/sms-events")
    await capped(use, dailySegments=10, monthlyCost="1.00")
    comm_ids = [(await sms.accept(command(SAM), LICENSEE)).comm_id for _ in range(10)]
    told = [(comm_id, json.loads(e.body)) for (lic, comm_id, _), events in ledger.event_batches.items() if lic == LICENSEE
            for e in events if e.type == "usage.threshold"]
    daily = sorted((p["data"]["percent"], comm_ids.index(c)) for c, p in told if p["data"]["cap"] == "dailySegments")
    assert daily == [(50, 4), (80, 7), (100, 9)]  # the 5th, 8th and 10th segment crossed them, once each
    monthly = [p for _, p in told if p["data"]["cap"] == "monthlyCost"]
    assert [p["data"]["percent"] for p in monthly] == [50]  # 0.50 of 1.00
    first = next(p for c, p in told if p["data"]["cap"] == "dailySegments" and p["data"]["percent"] == 100)
    assert first["data"] == {"cap": "dailySegments", "limit": 10, "used": 10, "currency": None, "percent": 100,
                             "period": "2026-12-06", "resetsAt": "2026-12-07T00:00:00+00:00", "commId": comm_ids[9]}
    assert first["id"].endswith(f"_{comm_ids[9]}_tds100")
    assert monthly[0]["data"]["used"] == "0.50" and monthly[0]["data"]["currency"] == "USD"
    assert monthly[0]["data"]["period"] == "2026-12"
    batches = {(d.comm_id, d.batch) for d, _ in deliveries.put_deliveries if any(
        e.type == "usage.threshold" for e in ledger.event_batches.get((LICENSEE, d.comm_id, d.batch), ()))}
    assert len(batches) == 3  # each crossing's batch announced (the 10th message crossed two caps' thresholds)


async def test_a_recipient_the_price_table_cannot_price_under_a_cost_cap_is_blocked_and_reserves_nothing():
    use, spend, sms = gateway(default_guard=None)
    await use.licensees.set_guard(LICENSEE, {"otherCountries": "allow", "caps": {"dailyCost": "1.00"}}, may_loosen=True)
    result = await sms.accept(command(SAM, "+4915112345678"), LICENSEE)  # Germany: no price
    report = await sms.status(result.comm_id, LICENSEE)
    assert [r.status for r in report.recipients] == [Status.QUEUED, Status.BLOCKED]
    assert await used(use, Cap.DAILY_COST) == 50_000  # SAM's alone
    only_unpriced = await sms.accept(command("+4915112345678"), LICENSEE)
    assert only_unpriced.comm_id
    assert await used(use, Cap.DAILY_COST) == 50_000


async def test_a_refused_keyed_request_claims_no_key_and_a_keyed_retry_reserves_nothing():
    use, _, sms = gateway()
    await capped(use, dailySegments=1)
    first = await sms.accept(command(SAM), LICENSEE, idempotency_key="k1")
    again = await sms.accept(command(SAM), LICENSEE, idempotency_key="k1")  # a retry: answered, nothing reserved
    assert again.comm_id == first.comm_id
    assert await used(use, Cap.DAILY_SEGMENTS) == 1
    with pytest.raises(CapReached):
        await sms.accept(command(ALEX), LICENSEE, idempotency_key="k2")
    await use.licensees.set_guard(LICENSEE, {"caps": {"dailySegments": 2}}, may_loosen=True)
    # The key was not claimed by the refused request: the same request is a first request now, not "still running".
    accepted = await sms.accept(command(ALEX), LICENSEE, idempotency_key="k2")
    assert accepted.ok


async def test_send_now_reserves_as_accept_does():
    use, _, sms = gateway()
    await capped(use, dailySegments=1)
    await sms.send_now(command(SAM), LICENSEE)
    with pytest.raises(CapReached):
        await sms.send_now(command(SAM), LICENSEE, idempotency_key="k")


async def test_an_auto_batch_keeps_the_items_before_the_refusal():
    use, _, _ = gateway()
    await capped(use, dailySegments=2)
    with pytest.raises(CapReached) as refused:
        await use.accept.queue_each([command(SAM), command(ALEX), command(SAM3)], LICENSEE)
    assert (refused.value.batch_completed, refused.value.batch_index) == (2, 2)
    assert await used(use, Cap.DAILY_SEGMENTS) == 2


class FailingStage(InMemoryMessageStore):
    async def stage(self, message, recipients):
        raise StorageUnavailable()


class CommitLandsUnanswered(InMemoryMessageStore):
    """A commit storage applied whose answer never came (a timeout, a connection reset, the request cancelled
    while it waited): the message is stored and its jobs will send it, but the request fails."""

    def __init__(self, failure: BaseException):
        super().__init__()
        self.failure = failure

    async def commit(self, staged):
        await super().commit(staged)
        raise self.failure


async def test_an_accept_whose_save_fails_before_its_commit_gives_its_room_back():
    use, spend, sms = gateway(messages=FailingStage())
    await capped(use, dailySegments=5)
    with pytest.raises(StorageUnavailable):
        await sms.accept(command(SAM, ALEX), LICENSEE)
    for _ in range(5):  # the give-back goes in the background: let it land
        await asyncio.sleep(0)
    assert await used(use, Cap.DAILY_SEGMENTS) == 0


@pytest.mark.parametrize("failure", [StorageUnavailable(), asyncio.CancelledError()])
@pytest.mark.parametrize("send", ["accept", "send_now"])
async def test_a_save_that_failed_at_its_commit_keeps_its_room_since_the_commit_may_have_landed(send, failure):
    # Given back, the room would be taken again by the next request while the message already stored is sent:
    # the cap under-counted. Whether an unanswered commit landed is unknown, so the room stays reserved.
    store = CommitLandsUnanswered(failure)
    use, _, sms = gateway(messages=store)
    await capped(use, dailySegments=2)
    with pytest.raises(type(failure)):
        await getattr(sms, send)(command(SAM, ALEX), LICENSEE)
    for _ in range(5):
        await asyncio.sleep(0)
    assert store.messages  # it landed: its jobs send it
    assert await used(use, Cap.DAILY_SEGMENTS) == 2
    with pytest.raises(CapReached):
        await sms.accept(command(SAM3), LICENSEE)


class PutLandsUnanswered(InMemoryWholeJobQueue):
    """The one-call accept's queue (issue 30): the put lands, its answer is lost."""

    def __init__(self, failure: BaseException | None):
        super().__init__()
        self.failure = failure

    async def put(self, job):
        await super().put(job)
        if self.failure is not None:
            raise self.failure


class GateUnavailable(InMemoryMessageStore):
    async def close_gate(self, comm_id, licensee_id, at):
        raise StorageUnavailable()


@pytest.mark.parametrize("failure, messages", [(StorageUnavailable(), GateUnavailable()), (asyncio.CancelledError(), None)],
                         ids=["unavailable, gate unavailable too", "cancelled"])
async def test_a_one_call_put_that_failed_keeps_its_room_since_it_may_have_landed(failure, messages):
    """The one-call accept's put is its commit: the worker writes and sends what landed, unless the accept could
    withdraw it (a put that failed with storage unavailable, its gate closed: the test below)."""
    queue = PutLandsUnanswered(failure)
    use, _, sms = gateway(accept_jobs=queue, comm_id_keys=CommIdKeys(b"k" * 32), accept_one_call=True,
                          **({"messages": messages} if messages else {}))
    await capped(use, dailySegments=2)
    with pytest.raises(type(failure)):
        await sms.accept(command(SAM, ALEX), LICENSEE)
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(queue.jobs) == 1 and await used(use, Cap.DAILY_SEGMENTS) == 2
    queue.failure = None
    with pytest.raises(CapReached):
        await sms.accept(command(SAM3), LICENSEE)
    assert len(queue.jobs) == 1


async def test_a_one_call_put_that_failed_and_was_withdrawn_gives_its_room_back():
    queue = PutLandsUnanswered(StorageUnavailable())
    use, _, sms = gateway(accept_jobs=queue, comm_id_keys=CommIdKeys(b"k" * 32), accept_one_call=True)
    await capped(use, dailySegments=2)
    with pytest.raises(StorageUnavailable, match="withdrawn"):
        await sms.accept(command(SAM, ALEX), LICENSEE)
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(queue.jobs) == 1 and await used(use, Cap.DAILY_SEGMENTS) == 0  # it landed, and will be written cancelled
    queue.failure = None
    await sms.accept(command(SAM, ALEX), LICENSEE)  # the resend has the room
    assert len(queue.jobs) == 2 and await used(use, Cap.DAILY_SEGMENTS) == 2


async def test_spent_answers_each_cap_with_its_limit_use_and_reset():
    use, _, sms = gateway()
    await capped(use, dailySegments=10, monthlyCost="2.50")
    await sms.accept(command(SAM, ALEX), LICENSEE)
    spent = {u.cap: u for u in await use.spend.spent(LICENSEE)}
    assert (spent[Cap.DAILY_SEGMENTS].limit, spent[Cap.DAILY_SEGMENTS].used) == (10, 2)
    assert (spent[Cap.MONTHLY_COST].limit, spent[Cap.MONTHLY_COST].used) == (2_500_000, 100_000)
    assert spent[Cap.DAILY_COST].limit is None and spent[Cap.DAILY_COST].used == 100_000
    assert spent[Cap.MONTHLY_SEGMENTS].period.resets_at.isoformat() == "2027-01-01T00:00:00+00:00"


async def test_over_http_the_cap_is_a_429_naming_it_with_retry_after():
    import azure.functions as func

    from sms.config import Settings
    from sms.domain.pacing import RequestRateLimiter
    from sms.usecases.auth import Authenticator, new_key
    from tests.fakes import FakeGateway, InMemoryApiKeyStore

    keys = InMemoryApiKeyStore()
    key, record = new_key(LICENSEE)
    await keys.add(record)
    use, _, _ = gateway()
    await capped(use, dailySegments=2)
    settings = Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    gw = FakeGateway(use, Authenticator(keys), RequestRateLimiter(0), settings)

    body = {"SMSModel": {"To": [{"PhoneNumber": n} for n in (SAM, ALEX, SAM3)], "MessageBody": "Hi"}}
    refused = await gw.functions["sms_send"](func.HttpRequest(
        "POST", "http://localhost/api/sms/send", headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        body=json.dumps(body).encode()))
    assert refused.status_code == 429 and refused.headers["Retry-After"] == str(21 * 3600)
    status = json.loads(refused.get_body())["responseStatus"]
    assert status["errorCode"] == "DailySegmentCap"
    assert status["message"] == ("Daily segment cap of 2 reached: 0 used, this request needs 3; "
                                 "it resets at 2026-12-07T00:00:00+00:00")
