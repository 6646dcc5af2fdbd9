"""Daily usage and retention over the ledger, on Azurite and on the fakes: usage adds up exactly what
was sent, from the nightly roll-up without reading any message; retention removes old messages with
their recipients, replies and every ledger row, a bounded batch at a time, and nothing newer."""
import uuid
from datetime import datetime, time, timedelta, timezone

import pytest
from azure.data.tables.aio import TableServiceClient

from sms.model import Contact, Message, Recipient, Status
from sms.storage import InboundSms, LedgerQuery
from sms.storage.inbound import TableInboundStore
from sms.storage.ledger import TableLedgerStore
from sms.storage.tables import TableMessageStore
from sms.usecases.ledger import Ledger
from sms.usecases.retention import Retention
from tests.fakes import InMemoryLedgerStore, InMemoryMessageStore

A, B = "a" * 32, "b" * 32
TODAY = datetime(2026, 11, 25, tzinfo=timezone.utc).date()


def at(days_ago: int, hour: int = 9) -> datetime:
    return datetime.combine(TODAY - timedelta(days=days_ago), time(hour), timezone.utc)


@pytest.fixture(params=["azurite", "memory"])
async def stores(request, emulator, unique_name):
    if request.param == "memory":
        yield InMemoryMessageStore(), InMemoryLedgerStore(), None
        return
    async with TableServiceClient.from_connection_string(emulator.connection_string) as service:
        table = service.get_table_client(unique_name("msgs"))
        messages, ledger = TableMessageStore(table), TableLedgerStore(service.get_table_client(unique_name("ledger")))
        await messages.create_table()
        await ledger.create_table()
        yield messages, ledger, TableInboundStore(table, service.get_table_client(unique_name("inb")),
                                                 service.get_table_client(unique_name("routes")))


async def sent(messages, ledger: Ledger, licensee, created_at, statuses, segments=1, provider="twilio", contact=False):
    comm_id = uuid.uuid4().hex
    message = Message(comm_id=comm_id, licensee_id=licensee, body="Your results are ready", sender=Contact(),
                      recipient_count=len(statuses), encoding="GSM-7", segments=segments, created_at=created_at)
    recipients = [Recipient(comm_id=comm_id, seq=i, recipient_id=uuid.uuid4().hex, phone_number=f"+6141255{i:04d}",
                            contact_id=f"{i:032x}" if contact else None, created_at=created_at, updated_at=created_at)
                  for i in range(len(statuses))]
    stored = await messages.add(message, recipients)
    await ledger.record(message, [replace_status(r, s) for r, s in zip(stored, statuses, strict=True)], provider)
    return message


def replace_status(recipient, status):
    return recipient if status is Status.QUEUED else recipient.moved_to(status)


async def test_usage_adds_up_each_day_from_the_roll_up_and_today_from_the_entries(stores):
    messages, store, _ = stores
    ledger = Ledger(store)
    await sent(messages, ledger, A, at(2), [Status.SENT, Status.FAILED], segments=2)
    await sent(messages, ledger, A, at(2, 23), [Status.DELIVERED], provider="acs")
    await sent(messages, ledger, A, at(1), [Status.OPTED_OUT, Status.SENT, Status.SENT])
    await sent(messages, ledger, B, at(2), [Status.SENT] * 5)
    await sent(messages, ledger, A, at(0), [Status.QUEUED])

    assert await ledger.roll_up(TODAY) == 3  # A's two days and B's one, before today
    days = await ledger.usage(A, TODAY - timedelta(days=10), TODAY, TODAY)
    assert [(u.day, u.messages, u.recipients, u.segments) for u in days] == [
        (TODAY - timedelta(days=2), 2, 3, 5), (TODAY - timedelta(days=1), 1, 3, 3), (TODAY, 1, 1, 1)]
    assert days[0].by_status == {"sent": 1, "failed": 1, "delivered": 1}
    assert days[0].by_provider == {"twilio": 2, "acs": 1}
    assert days[0].counted_at is not None and days[2].counted_at is None  # today is counted as asked
    assert [u.messages for u in await ledger.usage(B, TODAY - timedelta(days=10), TODAY, TODAY)] == [1]


async def test_retention_removes_old_messages_with_every_row_a_batch_at_a_time(stores):
    messages, store, inbound = stores
    ledger = Ledger(store)
    old = [await sent(messages, ledger, A, at(100 + i), [Status.SENT, Status.FAILED], contact=True) for i in range(3)]
    kept = await sent(messages, ledger, A, at(10), [Status.SENT])
    other = await sent(messages, ledger, B, at(200), [Status.SENT])
    if inbound is not None:  # a reply lives in its message's partition: it goes with it
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
    if inbound is not None:
        assert await inbound.replies(old[0].comm_id) == []
