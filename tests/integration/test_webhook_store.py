"""Webhook events and delivery logs in Table Storage (sms/storage/events.py, sms/storage/webhook_tables.py),
on Azurite and on the fakes, through the same tests: a batch is in the ledger entry's transaction and
within Azure's limits, racing writers leave each event in exactly one batch, ranges page across the
shards, old rows go, and a licensee's endpoints stay at five however many are added at once."""
import asyncio
import base64
import json
import uuid
from collections import Counter
from datetime import timedelta
from functools import partial

import azure.functions as func
import pytest
from azure.data.tables.aio import TableServiceClient

from sms.config import Settings
from sms.domain import transitions
from sms.domain.errors import ValidationFailed
from sms.domain.events import Delivery, EventBatch, WebhookEvent, batch_id
from sms.domain.model import Contact, Message, Recipient, Status, utcnow
from sms.domain.pacing import RequestRateLimiter
from sms.storage import DeliveryRecord, WebhookEndpoint, WebhookSecret
from sms.storage.events import TableEventStore
from sms.storage.ledger import TableLedgerStore
from sms.storage.webhook_tables import TableDeliveryLogStore, TableWebhookEndpointStore
from sms.usecases.announce import Announcer
from sms.usecases.auth import Authenticator, new_key
from sms.usecases.delivery import WebhookDelivery
from sms.usecases.ledger import Ledger
from tests import hostile
from tests.fakes import (
    FakeGateway,
    InMemoryApiKeyStore,
    InMemoryDeliveryLog,
    InMemoryDeliveryQueue,
    InMemoryJobQueue,
    InMemoryLedgerStore,
    InMemoryMessageStore,
    InMemoryWebhookEndpointStore,
    RecordingProvider,
    ScriptedTransport,
    assembled,
)

A, B = "a" * 32, "b" * 32


@pytest.fixture(params=["azurite", "memory"])
async def stores(request, emulator, unique_name):
    """(ledger store, event store, delivery log) over one table each, as the app wires them."""
    if request.param == "memory":
        ledger = InMemoryLedgerStore()
        yield ledger, ledger, InMemoryDeliveryLog()
        return
    async with TableServiceClient.from_connection_string(emulator.connection_string) as service:
        table = service.get_table_client(unique_name("ledger"))
        ledger = TableLedgerStore(table)
        await ledger.create_table()
        log = TableDeliveryLogStore(service.get_table_client(unique_name("hooklog")))
        await log.create_table()
        yield ledger, TableEventStore(table), log


async def _announcing(ledger_store, licensee=A):
    endpoints, queue = InMemoryWebhookEndpointStore(), InMemoryDeliveryQueue()
    now = utcnow()
    await endpoints.add(WebhookEndpoint(licensee, uuid.uuid4().hex, "https://crm.example.org/e", (), WebhookSecret("whsec_x", now), now))
    return Ledger(ledger_store, Announcer(endpoints, queue)), queue


def _message(n: int, licensee=A) -> tuple[Message, list[Recipient]]:
    comm_id = uuid.uuid4().hex
    message = Message(comm_id, licensee, "Your appointment is tomorrow", Contact(), n, "GSM-7", 1)
    return message, [Recipient(comm_id, i, uuid.uuid4().hex, f"+614120{i:05d}", contact_id=f"{i:032x}") for i in range(n)]


def _sent(r: Recipient) -> Recipient:
    return transitions.sent(transitions.claimed(r, "c1", at=utcnow()), f"prov-{r.seq}", at=utcnow())


async def test_a_full_job_with_the_longest_reasons_is_one_write_within_azures_limits_and_reads_back_in_order(stores):
    ledger_store, events, _ = stores
    ledger, queue = await _announcing(ledger_store)
    message, recipients = _message(100)
    reason = "😀" * 1000  # the longest reason a row keeps, in the widest characters
    outcomes = [transitions.failed(transitions.claimed(r, "c1", at=utcnow()), reason, at=utcnow()) for r in recipients]
    await ledger.record(message, outcomes)  # Azure's limits are checked before the write (sms/storage/limits.py)
    [(delivery, _)] = queue.take()
    found = await events.batch(A, message.comm_id, delivery.batch)
    assert [json.loads(e.body)["data"]["seq"] for e in found] == list(range(100))
    assert {e.type for e in found} == {"message.failed"}
    assert json.loads(found[99].body)["data"]["error"] == outcomes[99].last_error


async def test_writers_racing_on_one_message_leave_each_event_in_exactly_one_batch(stores):
    ledger_store, events, _ = stores
    message, recipients = _message(20)
    writers = [await _announcing(ledger_store) for _ in range(4)]
    # Each writer records a different recipient's outcome at once; the entry's ETag makes them take turns.
    await asyncio.gather(*(ledger.record(message, [_sent(recipients[i])]) for i, (ledger, _) in enumerate(writers)))
    announced = [d for _, queue in writers for d, _ in queue.take()]
    written = [e for d in announced for e in (await events.batch(A, message.comm_id, d.batch) or [])]
    assert sorted(json.loads(e.body)["data"]["seq"] for e in written) == [0, 1, 2, 3]
    assert len({e.id for e in written}) == 4


async def test_batches_of_a_range_page_oldest_first_across_the_shards_and_stay_the_licensees(stores):
    ledger_store, events, _ = stores
    start = utcnow()
    written = []
    for i in range(12):
        comm_id = uuid.uuid4().hex
        batch = batch_id(start + timedelta(milliseconds=i))
        event = WebhookEvent(f"evt_{batch}_{comm_id}_r", "reply.received", json.dumps({"id": f"evt_{batch}_{comm_id}_r",
                                                                                       "type": "reply.received"}))
        await events.add(EventBatch(A if i % 4 else B, comm_id, batch, (event,)))
        written.append((A if i % 4 else B, comm_id, batch))
    mine = [(c, b) for lic, c, b in written if lic == A]
    seen, token = [], None
    while True:
        page, token = await events.batches(A, start, start + timedelta(milliseconds=11), 3, token)
        assert len(page) <= 3
        seen += page
        if token is None:
            break
    assert seen == [x for x in mine if x[1] < batch_id(start + timedelta(milliseconds=11))]
    with pytest.raises(ValidationFailed):
        await events.batches(A, start, start + timedelta(seconds=1), 3, "not-a-token")
    assert await events.purge(A, start + timedelta(milliseconds=5)) >= 1
    left, _ = await events.batches(A, start, start + timedelta(seconds=1), 100)
    assert left == [x for x in mine if x[1] >= batch_id(start + timedelta(milliseconds=5))]
    assert len((await events.batches(B, start, start + timedelta(seconds=1), 100))[0]) == 3


async def test_the_delivery_log_pages_newest_first_per_endpoint_and_old_attempts_go(stores):
    _, _, log = stores
    e1, e2 = uuid.uuid4().hex, uuid.uuid4().hex
    t0 = utcnow()
    body = "🚫" * 1000  # the longest response body kept, in the widest characters
    records = [DeliveryRecord(A, e1, t0 + timedelta(seconds=i), f"evt_{i}", "message.sent", 1, "retry", 503, 30 + i,
                              "503 Service Unavailable", body, replay=i == 2) for i in range(5)]
    await log.add(records)
    await log.add([DeliveryRecord(A, e2, t0, "evt_other", "message.sent", 1, "delivered", 200, 9)])
    first, token = await log.page(A, e1, 2)
    rest, end = await log.page(A, e1, 10, token)
    assert [r.event_id for r in first + rest] == ["evt_4", "evt_3", "evt_2", "evt_1", "evt_0"] and end is None
    assert first[0] == records[4] and rest[0].replay is True
    assert [r.event_id for r in (await log.page(A, e2, 10))[0]] == ["evt_other"]
    assert (await log.page(B, e1, 10))[0] == []
    with pytest.raises(ValidationFailed):
        await log.page(A, e1, 2, "bm90IGEgdG9rZW4")
    assert await log.purge(A, e1, t0 + timedelta(seconds=3)) == 3
    assert [r.event_id for r in (await log.page(A, e1, 10))[0]] == ["evt_4", "evt_3"]


async def test_a_token_that_decodes_to_what_no_token_of_ours_holds_is_a_400_naming_it(stores):
    """Issue 23: tokens decoding to JSON nested 3,000 deep (RecursionError) or holding a lone surrogate
    (UnicodeEncodeError, in the query) answered 500 on the delivery log and on replays of a range."""
    _, events, log = stores
    start, endpoint_id = utcnow(), uuid.uuid4().hex
    await log.add([DeliveryRecord(A, endpoint_id, start, "evt_1", "message.sent", 1, "delivered", 200, 9)])
    for token in hostile.TOKENS:
        for reading in (partial(events.batches, A, start - timedelta(days=1), start, 5, token), partial(log.page, A, endpoint_id,
                                                                                                        5, token)):
            with pytest.raises(ValidationFailed) as refused:
                await reading()
            assert [e.field_name for e in refused.value.field_errors] == ["continuationToken"], token[:40]


def test_a_status_the_ledger_keeps_that_tells_nothing_makes_no_event():
    """queued and sending tell the licensee nothing."""
    from sms.domain.events import status_events

    message, [r] = _message(1)
    assert status_events("1" * 16, message, transitions.claimed(r, "c", at=utcnow()), Status.QUEUED) == []


@pytest.fixture(params=["azurite", "memory"])
async def endpoint_api(request, emulator, unique_name):
    """The app's /api/webhooks functions over an endpoint store (Azurite's table, or the fake), and a key."""
    if request.param == "memory":
        store = InMemoryWebhookEndpointStore()
        yield await _endpoint_api(store)
        return
    async with TableServiceClient.from_connection_string(emulator.connection_string) as service:
        store = TableWebhookEndpointStore(service.get_table_client(unique_name("hooks")))
        await store.create_table()
        yield await _endpoint_api(store)


async def _endpoint_api(store):
    keys = InMemoryApiKeyStore()
    key, record = new_key(A)
    await keys.add(record)
    use = assembled(InMemoryMessageStore(), InMemoryJobQueue(), RecordingProvider(), webhooks=store)
    return FakeGateway(use, Authenticator(keys), RequestRateLimiter(0),
                       Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true"}),
                       key=key, store=store)


def _call(gw, function: str, body: dict | None = None, endpoint_id: str | None = None):
    method = {"webhooks_add": "POST", "webhooks_remove": "DELETE"}[function]
    return gw.functions[function](func.HttpRequest(
        method, "http://localhost/api/webhooks", headers={"Authorization": f"Bearer {gw.key}", "Content-Type": "application/json"},
        route_params={"endpointId": endpoint_id} if endpoint_id else {}, body=json.dumps(body).encode() if body else b""))


async def _add_at_once(gw, n: int) -> Counter:
    answers = await asyncio.gather(*(_call(gw, "webhooks_add", {"url": f"https://crm.example.org/hook/{i}"}) for i in range(n)))
    for answer in answers:
        if answer.status_code == 409:
            assert json.loads(answer.get_body())["responseStatus"]["errorCode"] == "LimitExceeded"
    return Counter(answer.status_code for answer in answers)


async def test_sixty_adds_at_once_make_exactly_five_endpoints_and_a_removed_one_frees_exactly_one_place(endpoint_api):
    """Issue 23: 60 concurrent POST /api/webhooks made 20 endpoints, each add having counted the
    licensee's endpoints before any of the others had written. The cap holds under concurrency now."""
    gw = endpoint_api
    assert await _add_at_once(gw, 60) == {200: 5, 409: 55}
    endpoints = await gw.store.list(A)
    assert len(endpoints) == 5
    assert (await _call(gw, "webhooks_remove", endpoint_id=endpoints[2].endpoint_id)).status_code == 200
    assert await _add_at_once(gw, 10) == {200: 1, 409: 9}
    assert len(await gw.store.list(A)) == 5
    assert len(await gw.store.every()) == 5  # whatever keeps the count is no endpoint


class TakenFirst:
    """A table client whose first transaction finds one of its rows gone already: as a purge running
    beside this one (two retention runs, or a timer restarted mid-run) would leave it. Everything else
    goes to the real table."""

    def __init__(self, table):
        self._table, self.taken = table, None

    def __getattr__(self, name):
        return getattr(self._table, name)

    async def submit_transaction(self, operations, **kwargs):
        if self.taken is None:
            self.taken = operations[-1][1]
            await self._table.delete_entity(self.taken["PartitionKey"], self.taken["RowKey"])
        return await self._table.submit_transaction(operations, **kwargs)


async def test_a_purge_finishes_when_a_row_it_read_went_meanwhile(emulator, unique_name):
    """Issue 25: on Azure a delete of a row that is not there fails its whole transaction (404,
    sms/storage/refusals.py transaction_refusal), and the delivery log's and the events' purges failed
    the retention run with it. The rows left are deleted row by row, where gone is no error."""
    async with TableServiceClient.from_connection_string(emulator.connection_string) as service:
        log_table, ledger_table = service.get_table_client(unique_name("hooklog")), service.get_table_client(unique_name("ledger"))
        await log_table.create_table()
        await ledger_table.create_table()
        t0, endpoint_id = utcnow(), uuid.uuid4().hex
        await TableDeliveryLogStore(log_table).add([DeliveryRecord(A, endpoint_id, t0 + timedelta(seconds=i), f"evt_{i}",
                                                                   "message.sent", 1, "delivered", 200, 9) for i in range(3)])
        for i in range(3):
            batch = batch_id(t0 + timedelta(milliseconds=i))
            await TableEventStore(ledger_table).add(EventBatch(A, "c" * 32, batch, (WebhookEvent(f"evt_{i}", "reply.received", "{}"),)))

        raced_log, raced_ledger = TakenFirst(log_table), TakenFirst(ledger_table)
        assert await TableDeliveryLogStore(raced_log).purge(A, endpoint_id, t0 + timedelta(minutes=1)) == 3
        assert await TableEventStore(raced_ledger).purge(A, t0 + timedelta(minutes=1)) == 3
        assert raced_log.taken is not None and raced_ledger.taken is not None  # the race happened
        assert [row async for row in log_table.list_entities()] == []
        assert [row async for row in ledger_table.list_entities()] == []


async def test_a_delivery_costs_two_reads_and_one_log_write_per_attempt(table_service, round_trips, unique_name):
    """Issue 25: each attempt is logged as soon as its answer is in (a worker stopped mid-batch leaves
    the attempts it made), one write each. Before, one transaction logged the whole batch after it: a
    batch of three cost 3 round trips, now 5. Counted over Azurite, every storage response."""
    endpoints = TableWebhookEndpointStore(table_service.get_table_client(unique_name("hooks")))
    ledger_table = table_service.get_table_client(unique_name("ledger"))
    log = TableDeliveryLogStore(table_service.get_table_client(unique_name("hooklog")))
    for store in (endpoints, log):
        await store.create_table()
    await ledger_table.create_table()
    now = utcnow()
    secret = WebhookSecret("whsec_" + base64.b64encode(bytes(32)).decode(), now)
    endpoint = await endpoints.add(WebhookEndpoint(A, uuid.uuid4().hex, "https://crm.example.org/e", (), secret, now))
    comm_id, batch = uuid.uuid4().hex, batch_id(now)
    ids = [f"evt_{batch}_{comm_id}_{i}" for i in range(3)]
    sent = tuple(WebhookEvent(i, "message.sent", json.dumps({"id": i, "type": "message.sent"})) for i in ids)
    await TableEventStore(ledger_table).add(EventBatch(A, comm_id, batch, sent))
    deliverer = WebhookDelivery(endpoints, TableEventStore(ledger_table), log, InMemoryDeliveryQueue(), ScriptedTransport())

    before = round_trips.count
    assert await deliverer.deliver(Delivery(A, endpoint.endpoint_id, comm_id, batch)) == 3
    assert round_trips.count - before == 2 + 3  # the endpoint, the batch; a log row per attempt
    assert len((await log.page(A, endpoint.endpoint_id, 10))[0]) == 3


# -- one message's events (GET /api/sms/{commId}/events, issue 29) --

def _comm_ids_in_one_shard(n: int) -> list[str]:
    """n commIds whose messages share a ledger partition (the shard is their first byte mod SHARDS)."""
    return [f"{3 * i:02x}" + uuid.uuid4().hex[2:] for i in range(n)]


def _batch_of(licensee: str, comm_id: str, at, n: int) -> EventBatch:
    batch = batch_id(at)
    events = tuple(WebhookEvent(f"evt_{batch}_{comm_id}_{i}s", "message.sent", json.dumps(
        {"id": f"evt_{batch}_{comm_id}_{i}s", "type": "message.sent", "timestamp": at.isoformat(), "data": {"seq": i}}))
        for i in range(n))
    return EventBatch(licensee, comm_id, batch, events)


async def test_a_messages_events_are_read_from_its_partition_since_a_time_a_page_at_a_time_and_only_its_own(stores):
    _, events, _ = stores
    mine, neighbour = _comm_ids_in_one_shard(2)
    start = utcnow()
    before = _batch_of(A, mine, start - timedelta(minutes=1), 1)  # written before `since`: not read
    # 250 events in one batch are two rows (ROW_EVENTS = 200 a row): a page can end inside a row.
    batches = [_batch_of(A, mine, start + timedelta(milliseconds=i), n) for i, n in ((1, 2), (3, 250), (5, 1))]
    for batch in (before, *batches, _batch_of(A, neighbour, start + timedelta(milliseconds=2), 3),
                  _batch_of(B, mine, start + timedelta(milliseconds=4), 2)):
        await events.add(batch)

    read, token, pages = [], None, 0
    while True:
        page, token = await events.of_message(A, mine, start, 100, token)
        read += page
        pages += 1
        if token is None:
            break
        assert len(page) == 100
    assert [e.id for e in read] == [e.id for b in batches for e in b.events] and pages == 3
    assert [e.body for e in read[:2]] == [e.body for e in batches[0].events]
    whole, more = await events.of_message(A, mine, start - timedelta(minutes=2), 500)
    assert more is None and [e.id for e in whole] == [e.id for b in (before, *batches) for e in b.events]
    assert (await events.of_message(A, uuid.uuid4().hex, start, 10)) == ([], None)
    with pytest.raises(ValidationFailed):
        await events.of_message(A, mine, start, 10, "not-a-token")
