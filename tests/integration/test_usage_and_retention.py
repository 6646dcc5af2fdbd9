"""Daily usage and retention over the ledger, on Azurite and on the fakes: usage adds up exactly what
was sent, from the roll-up without reading any message; retention removes old messages with
their recipients, replies and every ledger row, a bounded batch at a time, and nothing newer."""
import uuid
from datetime import date, datetime, time, timedelta, timezone

import pytest
from azure.data.tables.aio import TableServiceClient

from sms.bootstrap import build
from sms.config import Settings
from sms.domain.local_days import LocalDays
from sms.domain.model import Contact, Message, Recipient, SendJob, Status, utcnow
from sms.storage import DayUsage, IdempotencyRecord, InboundSms, LedgerQuery, LicenseeSettings, ReplyRoute
from sms.storage.idempotency import TableIdempotencyStore
from sms.storage.inbound import TableInboundStore
from sms.storage.ledger import TableLedgerStore
from sms.storage.tables import TableMessageStore
from sms.usecases.ledger import Ledger
from sms.usecases.retention import Retention
from sms.usecases.usage import RollUp, Usage
from tests.fakes import (
    Clock,
    InMemoryIdempotencyStore,
    InMemoryInboundStore,
    InMemoryLedgerStore,
    InMemoryLicenseeSettingsStore,
    InMemoryMessageStore,
    RecordingProvider,
    SmsOverCommands,
    assembled,
    command,
)

A, B = "a" * 32, "b" * 32
SYDNEY = "Australia/Sydney"
TODAY = datetime(2026, 11, 25, tzinfo=timezone.utc).date()
TODAY_AT = datetime(2026, 11, 25, 0, 15, tzinfo=timezone.utc)


def at(days_ago: int, hour: int = 9) -> datetime:
    return datetime.combine(TODAY - timedelta(days=days_ago), time(hour), timezone.utc)


@pytest.fixture(params=["azurite", "memory"])
async def stores(request, emulator, unique_name):
    if request.param == "memory":
        yield InMemoryMessageStore(), InMemoryLedgerStore(), InMemoryInboundStore()
        return
    async with TableServiceClient.from_connection_string(emulator.connection_string) as service:
        table = service.get_table_client(unique_name("msgs"))
        messages, ledger = TableMessageStore(table), TableLedgerStore(service.get_table_client(unique_name("ledger")))
        await messages.create_table()
        await ledger.create_table()
        inbound = TableInboundStore(table, service.get_table_client(unique_name("inb")), service.get_table_client(unique_name("routes")))
        await inbound.create_tables()
        yield messages, ledger, inbound


async def sent(messages, ledger: Ledger, licensee, created_at, statuses, segments=1, provider="twilio", contact=False, replies=False):
    comm_id = uuid.uuid4().hex
    message = Message(comm_id=comm_id, licensee_id=licensee, body="Your results are ready", sender=Contact(),
                      recipient_count=len(statuses), encoding="GSM-7", segments=segments, created_at=created_at,
                      reply_is_allowed=replies)
    recipients = [Recipient(comm_id=comm_id, seq=i, recipient_id=uuid.uuid4().hex, phone_number=f"+6141255{i:04d}",
                            contact_id=f"{i:032x}" if contact else None, created_at=created_at, updated_at=created_at)
                  for i in range(len(statuses))]
    stored = await messages.add(message, recipients)
    await ledger.record(message, [replace_status(r, s) for r, s in zip(stored, statuses, strict=True)], provider)
    return message


def replace_status(recipient, status):
    return recipient if status is Status.QUEUED else recipient.moved_to(status, at=utcnow())


async def test_usage_adds_up_each_day_from_the_roll_up_and_today_from_the_entries(stores):
    messages, store, _ = stores
    ledger, usage = Ledger(store), Usage(store, InMemoryLicenseeSettingsStore(), clock=lambda: at(0, 0))
    await sent(messages, ledger, A, at(2), [Status.SENT, Status.FAILED], segments=2)
    await sent(messages, ledger, A, at(2, 23), [Status.DELIVERED], provider="acs")
    await sent(messages, ledger, A, at(1), [Status.OPTED_OUT, Status.SENT, Status.SENT])
    await sent(messages, ledger, B, at(2), [Status.SENT] * 5)
    await sent(messages, ledger, A, at(0), [Status.QUEUED])

    assert (await usage.roll_up()).counted == 3  # A's two days and B's one, before today
    days = await usage.days(await usage.calendar(A), TODAY - timedelta(days=10), TODAY)
    # Segments and byProvider count the recipients a provider accepted (sent, delivered, undelivered):
    # not the failed, opted-out or still queued ones, which `recipients` and byStatus still count.
    assert [(u.day, u.messages, u.recipients, u.segments) for u in days] == [
        (TODAY - timedelta(days=2), 2, 3, 3), (TODAY - timedelta(days=1), 1, 3, 2), (TODAY, 1, 1, 0)]
    assert days[0].by_status == {"sent": 1, "failed": 1, "delivered": 1}
    assert days[0].by_provider == {"twilio": 1, "acs": 1}
    assert days[2].by_status == {"queued": 1} and days[2].by_provider == {}
    assert days[0].counted_at is not None and days[2].counted_at is None  # today is counted as asked
    assert [u.messages for u in await usage.days(await usage.calendar(B), TODAY - timedelta(days=10), TODAY)] == [1]


@pytest.mark.parametrize("day", [date(2026, 10, 4), date(2026, 4, 5)], ids=["23 hours", "25 hours"])
async def test_usage_counts_the_licensees_own_days_and_saves_the_zone_they_were_counted_in(stores, day):
    """Issue 25: a Sydney licensee's days are Sydney's, 23 and 25 hours long when the clocks change; the
    roll-up saves each with its zone, and a total saved before totals had zones reads as UTC's."""
    messages, store, _ = stores
    ledger, licensees = Ledger(store), InMemoryLicenseeSettingsStore()
    await licensees.put(LicenseeSettings(A, time_zone=SYDNEY))
    start, end = LocalDays(SYDNEY).span(day)
    minute = timedelta(minutes=1)
    for created_at, segments in ((start - minute, 1), (start, 2), (end - minute, 3), (end, 4)):
        await sent(messages, ledger, A, created_at, [Status.SENT], segments=segments)
    clock = Clock(end + timedelta(days=1, hours=12))  # the day after has ended too
    usage = Usage(store, licensees, clock=clock)
    await usage.roll_up()
    clock.at += timedelta(days=5)  # every day read back from what the roll-up saved
    one_day = timedelta(days=1)
    days = await usage.days(await usage.calendar(A), day - one_day, day + one_day)
    assert [(u.day, u.messages, u.segments, u.time_zone, u.counted_at is not None) for u in days] == [
        (day - one_day, 1, 1, SYDNEY, True), (day, 2, 2 + 3, SYDNEY, True), (day + one_day, 1, 4, SYDNEY, True)]
    if isinstance(store, TableLedgerStore):  # a row saved before issue 25, with no TimeZone
        await store._table.upsert_entity({"PartitionKey": f"{B}|0", "RowKey": f"d|{day:%Y%m%d}", "Messages": 1, "Recipients": 1,
                                          "Segments": 1, "ByStatus": '{"sent": 1}', "ByProvider": '{"twilio": 1}',
                                          "CountedAt": clock.at})
        assert [u.time_zone for u in await store.usage(B, day, day)] == ["UTC"]


async def test_a_roll_up_after_ten_days_down_fills_every_day_and_the_next_run_counts_none_again(stores):
    """Issue 25, on Azurite too: the days a stopped timer missed are found by their noted days, counted
    once, and marked, so the next run (an hour later) has nothing to do."""
    messages, store, _ = stores
    ledger = Ledger(store)
    missed = [TODAY - timedelta(days=back) for back in range(14, 0, -1)]
    for day in missed:
        await sent(messages, ledger, A, datetime.combine(day, time(12), timezone.utc), [Status.SENT])
    clock = Clock(TODAY_AT)
    usage = Usage(store, InMemoryLicenseeSettingsStore(), clock=clock)
    assert await usage.roll_up() == RollUp(counted=14, left=0)
    clock.at += timedelta(hours=1)
    assert await usage.roll_up() == RollUp(counted=0, left=0)
    assert [(u.day, u.counted_at) for u in await usage.days(await usage.calendar(A), missed[0], missed[-1])] == [
        (day, TODAY_AT) for day in missed]


async def test_a_noted_day_keeps_when_the_roll_up_counted_it_until_the_day_is_noted_again(stores):
    """What the roll-up finds the days it missed by: each noted day remembers when the roll-up counted it.
    Noting the day again (a message recorded for it since) replaces the row, forgetting that (Azure's
    Insert Or Replace Entity replaces the whole entity: learn.microsoft.com/rest/api/storageservices/
    insert-or-replace-entity), and a mark made from a row read before that is refused by its ETag (Merge
    Entity's If-Match: .../merge-entity), so the day is counted again."""
    _, store, _ = stores
    day, at = TODAY - timedelta(days=3), datetime(2026, 11, 25, 0, 15, 30, 123456, tzinfo=timezone.utc)
    await store.note_day(A, day)
    [noted] = await store.noted_days(before=TODAY)
    assert (noted.day, noted.licensee_id, noted.rolled_up_at) == (day, A, None)
    assert await store.mark_rolled_up(noted, at)
    [marked] = await store.noted_days(before=TODAY, after=day - timedelta(days=1))
    assert (marked.day, marked.licensee_id, marked.rolled_up_at) == (day, A, at)
    assert not await store.mark_rolled_up(noted, at + timedelta(hours=1))  # read before the mark
    await store.note_day(A, day)
    [again] = await store.noted_days(before=TODAY)
    assert again.rolled_up_at is None
    assert not await store.mark_rolled_up(marked, at)
    assert await store.noted_days(before=day) == [] and await store.noted_days(before=TODAY, after=day) == []
    await store.forget_day(A, day)
    assert not await store.mark_rolled_up(again, at)  # retention took it meanwhile: nothing to mark, no error
    assert await store.days(before=TODAY) == []


async def test_a_days_usage_is_replaced_or_removed(stores):
    _, store, _ = stores
    day = TODAY - timedelta(days=3)
    await store.save_usage(DayUsage(A, day, 2, 2, 2, {"sent": 2}, {"acs": 2}, TODAY_AT, "UTC"))
    await store.save_usage(DayUsage(A, day, 1, 1, 1, {"sent": 1}, {"acs": 1}, TODAY_AT, SYDNEY))
    assert [(u.messages, u.time_zone) for u in await store.usage(A, day, day)] == [(1, SYDNEY)]
    await store.delete_usage(A, day)
    await store.delete_usage(A, day)  # not there: no error
    assert await store.usage(A, day, day) == []


async def test_usage_bills_only_what_a_provider_accepted_through_cancel_expiry_opt_out_and_dispatch(emulator):
    """Issue 23: a cancelled scheduled message was counted as 3 segments through `console` with nothing
    sent. Here, on Azurite and through the use cases: one message cancelled before its sendAt, one that
    expires before its job runs, one to a number that opted out, one sent; every body two segments."""
    adapters = build(Settings.from_env({"AzureWebJobsStorage": emulator.connection_string}))
    try:
        await adapters.ensure_storage()
        now = datetime.now(timezone.utc).replace(microsecond=0)
        licensee, clock = uuid.uuid4().hex, lambda: now
        sms = SmsOverCommands(assembled(adapters.messages, adapters.jobs, RecordingProvider(), opt_outs=adapters.opt_outs,
                                   ledger=adapters.ledger, clock=clock))
        body = "Your flu shot is booked. " * 7  # 175 GSM-7 characters: two segments
        opted_out, others = "+61412000901", ["+61412000902", "+61412000903", "+61412000904", "+61412000905"]
        await adapters.opt_outs.add(licensee, opted_out, now)

        async def accepted(numbers, **timing):
            return (await sms.accept(command(*numbers, body=body, **timing), licensee)).comm_id

        cancelled = await accepted(others[:3], send_at=(now + timedelta(hours=1)).isoformat())
        assert (await sms.use.cancel.cancel(licensee, cancelled)).cancelled == 3
        expiring = await accepted(others[:1], validity_period=60)
        blocked = await accepted([opted_out])
        sent = await accepted(others[2:])
        today = now.date()  # the day they were accepted
        now += timedelta(minutes=2)  # past the expiring one's ValidityPeriod, before the cancelled one's sendAt
        for comm_id, count in ((expiring, 1), (blocked, 1), (sent, 2)):  # their jobs, as the queue trigger runs them
            await sms.dispatch(SendJob(comm_id, 0, count - 1))
        statuses = {c: [r.status for r in (await adapters.messages.load(c))[1]] for c in (cancelled, expiring, blocked, sent)}
        assert statuses == {cancelled: [Status.CANCELLED] * 3, expiring: [Status.EXPIRED], blocked: [Status.OPTED_OUT],
                            sent: [Status.SENT] * 2}

        usage = sms.use.usage
        [asked] = await usage.days(await usage.calendar(licensee), today, today)
        now = datetime.combine(today + timedelta(days=1), time(0, 15), timezone.utc)  # when the roll-up runs, the night after
        await usage.roll_up()
        now += timedelta(days=3)
        [rolled_up] = await usage.days(await usage.calendar(licensee), today, today)
        assert asked.counted_at is None and rolled_up.counted_at is not None
        for day in (asked, rolled_up):
            assert (day.messages, day.recipients, day.segments) == (4, 7, 4)
            assert day.by_status == {"cancelled": 3, "expired": 1, "opted_out": 1, "sent": 2}
            assert day.by_provider == {"recording": 2}
    finally:
        await adapters.close()


async def test_retention_removes_old_messages_with_every_row_a_batch_at_a_time(stores):
    messages, store, inbound = stores
    ledger = Ledger(store)
    old = [await sent(messages, ledger, A, at(100 + i), [Status.SENT, Status.FAILED], contact=True) for i in range(3)]
    kept = await sent(messages, ledger, A, at(10), [Status.SENT])
    other = await sent(messages, ledger, B, at(200), [Status.SENT])
    if isinstance(inbound, TableInboundStore):  # a reply lives in its message's partition: it goes with it
        await inbound.add(InboundSms("+61412550000", "+61400000000", "Thanks", at(99), "acs", "r-1", old[0].comm_id))

    retention = Retention(messages, store, keep_days=90, batch=2)
    assert await retention.run(at(0)) == 2  # a bounded batch
    assert await retention.run(at(0)) == 2
    assert await retention.run(at(0)) == 0
    for message in (*old, other):
        assert await messages.load(message.comm_id) is None
    assert await messages.load(kept.comm_id) is not None
    listed, _ = await ledger.page(LedgerQuery(A), 50)
    assert [e.comm_id for e in listed] == [kept.comm_id]
    for query in (LedgerQuery(A, phone_number="+61412550001"), LedgerQuery(A, contact_id=f"{1:032x}"),
                  LedgerQuery(A, status="failed"), LedgerQuery(B)):
        assert (await ledger.page(query, 50))[0] == []  # no index row outlives its message
    assert await store.days(before=TODAY) == [(TODAY - timedelta(days=10), A)]
    if isinstance(inbound, TableInboundStore):
        assert await inbound.replies(old[0].comm_id) == []


async def test_retention_removes_a_messages_reply_routes_with_it_but_not_one_a_later_message_took(stores):
    """Issue 25: reply routes (one a number, to the last message sent to it that takes replies) were
    never removed: a reply then linked to a message long deleted. A route lasts as long as its message
    can be answered, which is as long as the message is kept, and goes with it, before it."""
    messages, store, inbound = stores
    ledger = Ledger(store)
    old = await sent(messages, ledger, A, at(100), [Status.SENT, Status.SENT], replies=True)
    later = await sent(messages, ledger, A, at(10), [Status.SENT], replies=True)  # to old's first number again
    _, recipients = await messages.load(old.comm_id)
    # As dispatch writes them, once each recipient is sent: the later message takes the first number's.
    await inbound.remember_routes([ReplyRoute(r.phone_number, old.comm_id, A, r.recipient_id) for r in recipients])
    await inbound.remember_routes([ReplyRoute(recipients[0].phone_number, later.comm_id, A)])

    assert await Retention(messages, store, keep_days=90, inbound=inbound).run(at(0)) == 1
    assert await inbound.route_for(recipients[1].phone_number) is None
    assert (await inbound.route_for(recipients[0].phone_number)).comm_id == later.comm_id
    assert await messages.load(later.comm_id) is not None


async def unlinked(inbound) -> list[str]:
    """The bodies of the unlinked inbound SMS the store holds, sorted."""
    if isinstance(inbound, InMemoryInboundStore):
        return sorted(s.body for s in inbound.stored.values() if s.comm_id is None)
    return sorted([e["Body"] async for e in inbound._inbound.list_entities()])


async def test_retention_removes_unlinked_inbound_sms_received_before_the_retention_period(stores):
    """Issue 25: an SMS that answers no message (SmsInbound) was kept for good. It is kept as long as
    messages are, by the UTC day it was received; rows in the layout before (partition the number) too."""
    messages, store, inbound = stores
    for days_ago, body in ((91, "old"), (90, "oldest kept"), (3, "recent")):
        await inbound.add(InboundSms(f"+6141266{days_ago:04d}", "+61400000000", body, at(days_ago, hour=23), "acs", f"in-{days_ago}"))
    if isinstance(inbound, TableInboundStore):  # written by the version before: partition the number, RowKey "x<provider>:<id>"
        for days_ago, body in ((200, "legacy old"), (30, "legacy recent")):
            await inbound._inbound.create_entity({"PartitionKey": "+61412670000", "RowKey": f"xtwilio:SM{days_ago}", "From": "+61412670000",
                                                  "To": "+61400000000", "Body": body, "ReceivedAt": at(days_ago), "Provider": "twilio",
                                                  "ProviderMessageId": f"SM{days_ago}"})
    kept = ["oldest kept", "recent"] + (["legacy recent"] if isinstance(inbound, TableInboundStore) else [])
    retention = Retention(messages, store, keep_days=90, inbound=inbound)
    assert await retention.run(at(0, hour=0)) == 0  # no message to remove; the unlinked SMS are not messages
    assert await unlinked(inbound) == sorted(kept)
    await retention.run(at(0, hour=23))  # the same day: nothing more is due
    assert await unlinked(inbound) == sorted(kept)


async def test_retention_removes_expired_idempotency_records_a_share_each_hour_and_every_one_in_a_day(emulator, unique_name):
    """Issue 25: Idempotency-Key records (kept SMS_IDEMPOTENCY_HOURS, then only taken over when their
    key comes again) were never removed. Each hourly run removes the expired ones in one 24th of them,
    so the whole table is read once a day; a record expired at `now` goes, a live one stays."""
    async with TableServiceClient.from_connection_string(emulator.connection_string) as service:
        for keys in (InMemoryIdempotencyStore(), TableIdempotencyStore(service.get_table_client(unique_name("idem")))):
            if isinstance(keys, TableIdempotencyStore):
                await keys.create_table()
            now = at(0, hour=0)
            for i in range(60):  # the odd ones expired 6 hours ago; the even ones live for the whole day of runs
                created, expires = (now - timedelta(hours=30), now - timedelta(hours=6)) if i % 2 else (now, now + timedelta(hours=48))
                await keys.claim(IdempotencyRecord(A, f"key-{i}", "h", uuid.uuid4().hex, created, expires))
            retention = Retention(InMemoryMessageStore(), InMemoryLedgerStore(), keep_days=90, idempotency=keys)
            await retention.run(now)
            gone_in_one_run = [i for i in range(60) if await _claimed_again(keys, i, now)]
            assert 0 < len(gone_in_one_run) < 30  # one share of the 30 expired, none of the live
            assert all(i % 2 for i in gone_in_one_run)
            for hour in range(1, 24):
                await retention.run(now + timedelta(hours=hour))
            assert [i for i in range(60) if await _claimed_again(keys, i, now)] == list(range(1, 60, 2))


async def _claimed_again(keys, i: int, now) -> bool:
    """Whether record i is gone: a claim of its key finds nothing. (The claim is removed again.)"""
    probe = IdempotencyRecord(A, f"key-{i}", "probe", uuid.uuid4().hex, now, now + timedelta(hours=24))
    if await keys.claim(probe) is None:
        await keys.release(probe)
        return True
    return False
