"""The MessageStore, OptOutStore and WebhookEndpointStore contracts, run against the Azure adapter (on Azurite)
and the in-memory fake alike."""
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from azure.data.tables.aio import TableServiceClient

from sms.domain import transitions
from sms.domain.errors import AlreadyExists, RecordChanged
from sms.domain.jobs import GATE_CANCELLED, GATE_MATERIALIZED, Gate
from sms.domain.model import MAX_EVENTS, Contact, Message, Recipient, Status, utcnow
from sms.storage import WebhookEndpoint, WebhookSecret
from sms.storage.inbound import TableOptOutStore
from sms.storage.tables import TableApiKeyStore, TableMessageStore
from sms.storage.webhook_tables import TableWebhookEndpointStore
from sms.usecases.auth import new_key
from tests.fakes import InMemoryApiKeyStore, InMemoryMessageStore, InMemoryOptOutStore, InMemoryWebhookEndpointStore
from tests.integration.both_ways import BOTH, store_under_test


@pytest.fixture(params=BOTH)
async def store(request, emulator, unique_name):
    async with store_under_test(request.param, emulator.connection_string, InMemoryMessageStore, TableMessageStore,
                                unique_name("msgs")) as chosen:
        yield chosen


def message(comm_id: str, count: int) -> tuple[Message, list[Recipient]]:
    msg = Message(comm_id=comm_id, licensee_id="a" * 32, body="Hello € 😀", sender=Contact("Clinic", "+61400000000", "c" * 32),
                  recipient_count=count, encoding="UCS-2", segments=1, reply_is_allowed=True, notes="n")
    recipients = [Recipient(comm_id=comm_id, seq=i, recipient_id=f"{i:032x}", phone_number=f"+614123{i:05d}",
                            name=f"P{i}" if i % 2 else None) for i in range(count)]
    return msg, recipients


async def test_a_message_reads_back_as_written(store):
    msg, recipients = message("1" * 32, 3)
    stored = await store.add(msg, recipients)
    assert all(r.etag for r in stored)

    loaded_message, loaded = await store.load(msg.comm_id)
    assert loaded_message == msg
    assert [(r.seq, r.recipient_id, r.phone_number, r.name, r.status) for r in loaded] == [
        (r.seq, r.recipient_id, r.phone_number, r.name, Status.QUEUED) for r in recipients
    ]
    assert [r.etag for r in loaded] == [r.etag for r in stored]


@pytest.mark.parametrize("blocked, cost, currency", [(0, 0, "USD"), (2, 2**31 + 1, "AUD"), (1, None, "USD"), (0, None, None)])
async def test_what_a_message_cost_as_accepted_reads_back_as_written(store, blocked, cost, currency):
    """Issue 27: an idempotent retry answers the estimate from the stored message (its cost may pass an Int32 in millionths)."""
    msg, recipients = message("7" * 32, 3)
    msg = replace(msg, blocked=blocked, estimated_cost=cost, currency=currency)
    await store.add(msg, recipients)
    assert (await store.load(msg.comm_id))[0] == msg
    assert await store.message(msg.comm_id) == msg


async def test_a_range_loads_only_those_recipients_in_order(store):
    msg, recipients = message("2" * 32, 250)
    await store.add(msg, recipients)
    loaded_message, loaded = await store.load(msg.comm_id, 100, 199)
    assert loaded_message.comm_id == msg.comm_id
    assert [r.seq for r in loaded] == list(range(100, 200))
    assert len((await store.load(msg.comm_id))[1]) == 250


async def test_unknown_messages_load_as_none(store):
    assert await store.load("3" * 32) is None


async def test_updates_are_etag_checked_and_all_or_nothing(store):
    msg, recipients = message("4" * 32, 3)
    stored = await store.add(msg, recipients)
    claimed = await store.update_recipients(msg.comm_id, [r.moved_to(Status.SENDING, attempts=1, claim_id="c1",
                                                                     at=utcnow()) for r in stored])
    assert [r.etag for r in claimed] != [r.etag for r in stored]
    # The claim id reads back: a worker whose claim's answer was lost recognises its claim by it.
    assert [(r.claim_id, r.attempts) for r in (await store.load(msg.comm_id))[1]] == [("c1", 1)] * 3

    # A second writer still holding the old ETags loses, and writes none of its changes.
    with pytest.raises(RecordChanged):
        await store.update_recipients(msg.comm_id, [claimed[0].moved_to(Status.SENT, at=utcnow()),
                                                    stored[1].moved_to(Status.FAILED, at=utcnow())])
    _, current = await store.load(msg.comm_id)
    assert [r.status for r in current] == [Status.SENDING] * 3

    done = await store.update_recipients(msg.comm_id, [claimed[0].moved_to(Status.SENT, provider_message_id="p1", at=utcnow())])
    _, current = await store.load(msg.comm_id, 0, 0)
    assert (current[0].status, current[0].provider_message_id, current[0].etag) == (Status.SENT, "p1", done[0].etag)



async def test_a_recipients_timeline_reads_back_as_written(store):
    """Every step a recipient went through, with its time, provider id, reason and attempt, round-trips
    (one Timeline property on the row); a row nobody has touched yet is queued at its creation."""
    msg, recipients = message("8" * 32, 2)
    stored = await store.add(msg, recipients)
    claimed = transitions.claimed(stored[0], "d1", at=utcnow())
    [row] = await store.update_recipients(msg.comm_id, [claimed])
    [row] = await store.update_recipients(msg.comm_id, [transitions.released(row, "429: slow down 😀", at=utcnow())])
    [row] = await store.update_recipients(msg.comm_id, [transitions.claimed(row, "d2", at=utcnow())])
    [row] = await store.update_recipients(msg.comm_id, [transitions.recorded(row, transitions.sent(row, "p-9", at=utcnow()), at=utcnow())])
    [row] = await store.update_recipients(msg.comm_id, [transitions.receipt(row, Status.DELIVERED, "p-9", None, at=utcnow())])

    _, (loaded, untouched) = await store.load(msg.comm_id)
    assert loaded.events == row.events and loaded.events_omitted == 0
    assert [(e.status, e.provider_message_id, e.error, e.attempt) for e in loaded.timeline] == [
        (Status.QUEUED, None, None, None), (Status.SENDING, None, None, 1), (Status.QUEUED, None, "429: slow down 😀", None),
        (Status.SENDING, None, None, 2), (Status.SENT, "p-9", None, None), (Status.DELIVERED, None, None, None)]
    assert loaded.timeline[0].at == loaded.created_at and loaded.timeline[-1].at == loaded.updated_at
    assert [e.status for e in untouched.timeline] == [Status.QUEUED] and untouched.events == ()


async def test_a_timeline_past_its_bound_reads_back_with_the_count_left_out(store):
    msg, recipients = message("9" * 32, 1)
    [row] = await store.add(msg, recipients)
    for attempt in range(8):
        row = transitions.released(transitions.claimed(row, f"d{attempt}", at=utcnow()), "busy", at=utcnow())
    [row] = await store.update_recipients(msg.comm_id, [row])
    _, [loaded] = await store.load(msg.comm_id)
    assert (loaded.events, loaded.events_omitted) == (row.events, 16 - MAX_EVENTS)


# -- a one-call message's gate (issue 30): the worker's write of the rows and a cancel both insert it, so one wins --

AT = datetime(2026, 12, 7, 1, 2, 3, 456000, tzinfo=timezone.utc)


async def test_a_gate_written_with_the_rows_reads_back_and_no_other_read_sees_it(store):
    msg, recipients = message("a1" * 16, 3)
    stored = await store.add(msg, recipients, Gate(GATE_MATERIALIZED, msg.licensee_id, AT))
    assert await store.gate(msg.comm_id) == Gate(GATE_MATERIALIZED, msg.licensee_id, AT)
    loaded_message, loaded = await store.load(msg.comm_id)
    assert loaded_message == msg and [r.etag for r in loaded] == [r.etag for r in stored]
    assert await store.message(msg.comm_id) == msg
    assert msg.comm_id in await store.unfinished()
    # A second write of the same rows (a redelivery) fails whole: 409 on its rows, and on the gate.
    with pytest.raises(AlreadyExists):
        await store.add(msg, recipients, Gate(GATE_MATERIALIZED, msg.licensee_id, AT))
    with pytest.raises(AlreadyExists):
        await store.close_gate(msg.comm_id, msg.licensee_id, AT)
    assert await store.gate(msg.comm_id) == Gate(GATE_MATERIALIZED, msg.licensee_id, AT)
    await store.delete(msg.comm_id)
    assert await store.gate(msg.comm_id) is None and await store.load(msg.comm_id) is None


async def test_a_cancels_gate_fails_the_write_of_the_rows_whole_and_then_lets_the_cancelled_rows_in(store):
    msg, recipients = message("a2" * 16, 3)
    assert await store.gate(msg.comm_id) is None
    await store.close_gate(msg.comm_id, msg.licensee_id, AT)
    with pytest.raises(AlreadyExists):  # a second cancel
        await store.close_gate(msg.comm_id, "b" * 32, AT + timedelta(seconds=1))
    with pytest.raises(AlreadyExists):
        await store.add(msg, recipients, Gate(GATE_MATERIALIZED, msg.licensee_id, AT))
    assert await store.load(msg.comm_id) is None and await store.message(msg.comm_id) is None
    gate = await store.gate(msg.comm_id)
    assert gate == Gate(GATE_CANCELLED, msg.licensee_id, AT)

    cancelled = [transitions.cancelled(r, at=gate.at) for r in recipients]
    await store.add(msg, cancelled)
    _, loaded = await store.load(msg.comm_id)
    assert [r.status for r in loaded] == [Status.CANCELLED] * 3
    assert await store.gate(msg.comm_id) == gate
    with pytest.raises(AlreadyExists):  # another worker's same write
        await store.add(msg, cancelled)


async def test_a_gate_goes_only_with_rows_one_transaction_holds(store):
    """Rows written before the gate's transaction would be written again by every run of the job, over rows a run
    before had sent: refused before anything is written."""
    msg, recipients = message("a3" * 16, 99)
    with pytest.raises(ValueError):
        await store.add(msg, recipients, Gate(GATE_MATERIALIZED, msg.licensee_id, AT))
    assert await store.load(msg.comm_id) is None and await store.gate(msg.comm_id) is None


# -- the OptOutStore contract: what dispatch and STOP / START rely on, from the adapter and the fake alike --

@pytest.fixture(params=["azurite", "memory"])
async def opt_out_store(request, emulator, unique_name):
    if request.param == "memory":
        yield InMemoryOptOutStore()
        return
    async with TableServiceClient.from_connection_string(emulator.connection_string) as service:
        table = TableOptOutStore(service.get_table_client(unique_name("opt")), service.get_table_client(unique_name("legacy")))
        await table.create_table()
        yield table


async def test_a_number_reads_back_every_scope_it_opted_out_of(opt_out_store):
    number, sender_scope = "+61412000001", "*+61400000000"
    for scope in ("a" * 32, "b" * 32, "*", sender_scope):
        await opt_out_store.add(scope, number, utcnow())
    await opt_out_store.add("a" * 32, "+61412000002", utcnow())
    assert await opt_out_store.scopes_for(number) == {"a" * 32, "b" * 32, "*", sender_scope}
    await opt_out_store.add("a" * 32, number, utcnow())  # a STOP again changes nothing
    await opt_out_store.remove("b" * 32, number)
    await opt_out_store.remove("*", number)
    await opt_out_store.remove("*", "+61499999999")  # nothing to remove: not an error
    assert await opt_out_store.scopes_for(number) == {"a" * 32, sender_scope}
    assert await opt_out_store.scopes_for("+61412000002") == {"a" * 32}
    assert await opt_out_store.scopes_for("+61499999999") == set()
    await opt_out_store.add("*", number, utcnow())  # a STOP after a START
    assert await opt_out_store.scopes_for(number) == {"a" * 32, sender_scope, "*"}
    assert await opt_out_store.migrate_legacy() == set()  # nothing in an older layout


async def test_a_removal_lifts_only_the_row_it_read(opt_out_store):
    """An opt-in's tombstone depends on the row it read (its ETag), or on there being none; storage refuses it over
    a row written since (412, or 409 where none was read): RecordChanged, and the row that landed stays."""
    number, scope = "+61412000003", "a" * 32
    await opt_out_store.add(scope, number, utcnow())
    with pytest.raises(RecordChanged):
        await opt_out_store.remove(scope, number, read=None)  # read as absent, and a row is there
    [read] = await opt_out_store.rows_for(number)
    await opt_out_store.add(scope, number, utcnow())  # a STOP again, after the read
    with pytest.raises(RecordChanged):
        await opt_out_store.remove(scope, number, read=read)
    assert await opt_out_store.scopes_for(number) == {scope}
    [read] = await opt_out_store.rows_for(number)
    await opt_out_store.remove(scope, number, read=read)
    assert await opt_out_store.scopes_for(number) == set()
    await opt_out_store.remove(scope, "+61499999998", read=None)  # nothing read, nothing there: a tombstone
    assert [row.opted_out for row in await opt_out_store.rows_for("+61499999998")] == [False]


# -- the WebhookEndpointStore contract: what managing endpoints (and the sender, later) relies on --

@pytest.fixture(params=BOTH)
async def webhook_store(request, emulator, unique_name):
    async with store_under_test(request.param, emulator.connection_string, InMemoryWebhookEndpointStore, TableWebhookEndpointStore,
                                unique_name("hooks")) as chosen:
        yield chosen


def endpoint(licensee: str, endpoint_id: str, **changes) -> WebhookEndpoint:
    now = utcnow()
    return replace(WebhookEndpoint(licensee, endpoint_id, "https://hooks.example.org/in?x=1", ("message.sent", "reply.received"),
                                   WebhookSecret("whsec_" + "A" * 43 + "=", now), now), **changes)


async def test_an_endpoint_reads_back_as_written_and_only_under_its_licensee(webhook_store):
    a, b = "a" * 32, "b" * 32
    now = utcnow()
    full = endpoint(a, "1" * 32, previous_secret=WebhookSecret("whsec_old", now - timedelta(days=1), now + timedelta(hours=24)),
                    disabled_at=now, disabled_reason="410 Gone: the receiver said it is gone", consecutive_failures=3,
                    failing_since=now - timedelta(hours=1))
    stored = await webhook_store.add(full)
    assert stored.etag and replace(stored, etag=None) == full
    assert await webhook_store.get(a, "1" * 32) == stored
    plain = await webhook_store.add(endpoint(a, "2" * 32, event_types=(), created_at=now + timedelta(seconds=1)))
    assert (plain.previous_secret, plain.disabled_at, plain.consecutive_failures, plain.event_types) == (None, None, 0, ())
    await webhook_store.add(endpoint(b, "3" * 32))
    assert await webhook_store.list(a) == [stored, plain]  # oldest first
    assert await webhook_store.get(b, "1" * 32) is None and await webhook_store.get(a, "3" * 32) is None
    with pytest.raises(AlreadyExists):
        await webhook_store.add(endpoint(a, "1" * 32))


async def test_an_endpoint_is_replaced_only_while_its_etag_holds_and_removed_for_good(webhook_store):
    a = "a" * 32
    stored = await webhook_store.add(endpoint(a, "4" * 32))
    rotated = await webhook_store.replace(replace(stored, secret=WebhookSecret("whsec_new", utcnow()), previous_secret=stored.secret))
    assert rotated.etag != stored.etag and await webhook_store.get(a, "4" * 32) == rotated
    with pytest.raises(RecordChanged):  # a writer still holding the old ETag loses
        await webhook_store.replace(replace(stored, disabled_reason="late"))
    await webhook_store.remove(a, "4" * 32)
    await webhook_store.remove(a, "4" * 32)  # already gone: no error
    assert await webhook_store.get(a, "4" * 32) is None and await webhook_store.list(a) == []
    with pytest.raises(RecordChanged):  # gone: nothing to replace
        await webhook_store.replace(rotated)


async def test_of_two_endpoints_for_one_place_only_the_first_is_written_and_removing_it_frees_the_place(webhook_store):
    """The place (slot) that keeps a licensee's endpoints at five under concurrent adds (issue 23)."""
    a, b = "a" * 32, "b" * 32
    first = await webhook_store.add(endpoint(a, "5" * 32, slot=0))
    with pytest.raises(AlreadyExists):
        await webhook_store.add(endpoint(a, "6" * 32, slot=0))
    assert await webhook_store.get(a, "6" * 32) is None and await webhook_store.list(a) == [first]
    await webhook_store.add(endpoint(b, "7" * 32, slot=0))  # another licensee's places are its own
    rotated = await webhook_store.replace(replace(first, secret=WebhookSecret("whsec_new", utcnow())))
    assert rotated.slot == 0 and (await webhook_store.get(a, "5" * 32)).slot == 0  # a replace keeps the place
    with pytest.raises(AlreadyExists):
        await webhook_store.add(endpoint(a, "6" * 32, slot=0))
    await webhook_store.remove(a, "5" * 32)
    second = await webhook_store.add(endpoint(a, "6" * 32, slot=0))
    assert second.etag and await webhook_store.list(a) == [second]
    assert sorted(e.endpoint_id for e in await webhook_store.every() if e.licensee_id in (a, b)) == ["6" * 32, "7" * 32]


# -- the ApiKeyStore contract: a key's role and read-only flag (issue 29) --

@pytest.fixture(params=BOTH)
async def key_store(request, emulator, unique_name):
    async with store_under_test(request.param, emulator.connection_string, InMemoryApiKeyStore, TableApiKeyStore,
                                unique_name("keys")) as chosen:
        yield chosen


async def test_a_keys_role_and_read_only_flag_read_back_as_written(key_store):
    _, admin = new_key("a" * 32, "ops", role="admin", read_only=True)
    _, plain = new_key("a" * 32)
    await key_store.add(admin)
    await key_store.add(plain)
    assert await key_store.get(admin.key_id) == admin and await key_store.get(plain.key_id) == plain
    assert {(k.key_id, k.role, k.read_only) for k in await key_store.list("a" * 32)} == {
        (admin.key_id, "admin", True), (plain.key_id, "licensee", False)}


async def test_a_key_stored_before_roles_reads_back_as_a_full_access_licensee_key(emulator, unique_name):
    async with TableServiceClient.from_connection_string(emulator.connection_string) as service:
        table = service.get_table_client(unique_name("keys"))
        await TableApiKeyStore(table).create_table()
        # The row as TableApiKeyStore.add wrote it before issue 29: no Role, no ReadOnly.
        await table.create_entity({"PartitionKey": "0123456789abcdef", "RowKey": "key", "LicenseeId": "a" * 32,
                                   "SecretHash": "0" * 64, "CreatedAt": utcnow()})
        old = await TableApiKeyStore(table).get("0123456789abcdef")
        assert (old.role, old.read_only, old.licensee_id) == ("licensee", False, "a" * 32)
