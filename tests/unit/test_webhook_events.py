"""Which webhook events a status change makes, and the rule that makes them impossible to lose or to
double: a batch exists exactly when the ledger write that recorded its change was made, and its
delivery was queued before that write (over the fakes; tests/integration has the table adapters)."""
import json
from dataclasses import replace
from datetime import timedelta

import pytest

from sms.domain import transitions
from sms.domain.errors import RecordChanged
from sms.domain.events import Delivery, batch_id, located
from sms.domain.model import Message, Recipient, Status, utcnow
from sms.usecases.announce import Announcer
from sms.usecases.ledger import Ledger
from tests.fakes import ALEX, SAM, InMemoryDeliveryQueue, InMemoryLedgerStore, InMemoryWebhookEndpointStore, World


def _payloads(world: World) -> list[dict]:
    return [json.loads(e.body) for events in world.ledger.event_batches.values() for e in events]


async def _endpoint(world: World, events=None, licensee=None):
    from tests.fakes import LICENSEE

    return await world.use.webhooks.add(licensee or LICENSEE, "https://crm.example.org/sms-events", events)


async def test_a_licensee_without_endpoints_keeps_no_events_and_queues_nothing():
    world = World()
    await world.send(SAM, ALEX)
    assert world.ledger.event_batches == {}
    assert world.deliveries.put_deliveries == []


@pytest.mark.parametrize("one_call", [False, True], ids=["two_call", "one_call"])
async def test_a_send_tells_each_recipients_sent_with_what_routes_it_and_the_ledger_lists_it(one_call):
    world = World(one_call=one_call)
    endpoint = await _endpoint(world)
    comm_id = await world.send(SAM, ALEX)
    assert (len(world.whole.jobs), comm_id[12]) == ((1, "8") if one_call else (0, "4"))  # the path it took
    assert world.ledger.entries[comm_id].licensee_id == endpoint.licensee_id  # listed, as GET /api/sms lists it
    [(delivery, delay)] = world.deliveries.take()
    assert (delivery.endpoint_id, delivery.comm_id, delay, delivery.attempt, delivery.only) == (endpoint.endpoint_id, comm_id, 0, 1, None)
    events = await world.ledger.batch(delivery.licensee_id, comm_id, delivery.batch)
    assert [e.type for e in events] == ["message.sent", "message.sent"]
    sam, alex = (json.loads(e.body) for e in events)
    assert sam["id"] == events[0].id and located(sam["id"]) == (delivery.batch, comm_id)
    assert sam["data"]["phoneNumber"] == SAM and alex["data"]["phoneNumber"] == ALEX
    row = await world.recipient(comm_id, 0)
    assert sam["data"] | {} == {
        "commId": comm_id, "reference": f"SMS-{comm_id[:8].upper()}", "recipientId": row.recipient_id, "seq": 0,
        "phoneNumber": SAM, "contactId": None, "status": "sent", "sequence": 1, "providerMessageId": row.provider_message_id,
        "error": None, "linkedObjectId": None, "suiteId": None,
    }
    assert sam["timestamp"].endswith("Z")


@pytest.mark.parametrize("one_call", [False, True], ids=["two_call", "one_call"])
async def test_a_receipt_tells_delivered_once_however_often_it_comes(one_call):
    world = World(one_call=one_call)
    await _endpoint(world)
    comm_id = await world.send(SAM)
    world.deliveries.take()
    for _ in range(3):
        await world.inbound.apply_receipt(f"{comm_id}:0", Status.DELIVERED, "prov-1")
    [(delivery, _)] = world.deliveries.take()
    [event] = await world.ledger.batch(delivery.licensee_id, comm_id, delivery.batch)
    payload = json.loads(event.body)
    assert (payload["type"], payload["data"]["status"], payload["data"]["sequence"]) == ("message.delivered", "delivered", 2)
    assert event.id.endswith("_0d")
    assert [p["type"] for p in _payloads(world)].count("message.delivered") == 1


async def test_a_receipt_recorded_before_the_job_tells_sent_first_from_the_timeline():
    """The job records once all of it is done; a receipt for its first recipient can be recorded first."""
    store, queue, endpoints = InMemoryLedgerStore(), InMemoryDeliveryQueue(), InMemoryWebhookEndpointStore()
    world = World()
    endpoint = await _endpoint(world)
    await endpoints.add(endpoint)
    ledger = Ledger(store, Announcer(endpoints, queue))
    message = Message("c" * 32, endpoint.licensee_id, "Hello", _contact(), 1, "GSM-7", 1)
    row = Recipient(message.comm_id, 0, "r" * 32, SAM)
    claimed = transitions.claimed(row, "claim-1", at=utcnow())
    sent = transitions.sent(claimed, "prov-9", at=utcnow())
    delivered = transitions.receipt(sent, Status.DELIVERED, "prov-9", None, at=utcnow())
    await ledger.record(message, [delivered])
    [(delivery, _)] = queue.take()
    events = await store.batch(message.licensee_id, message.comm_id, delivery.batch)
    assert [json.loads(e.body)["data"]["sequence"] for e in events] == [1, 2]
    assert [e.type for e in events] == ["message.sent", "message.delivered"]
    assert json.loads(events[0].body)["timestamp"] == _z(sent.updated_at)
    assert json.loads(events[0].body)["data"]["providerMessageId"] == "prov-9"
    # The job's own record, arriving late, tells nothing more.
    await ledger.record(message, [sent])
    assert queue.take() == [] and len(store.event_batches) == 1


async def test_failures_and_opt_outs_are_told_with_their_reason():
    world = World()
    world.provider.refuse = {ALEX: "number unreachable"}
    await _endpoint(world)
    await world.opt_outs.opt_out("+61412000003", "+61400000000", None)
    await world.send(SAM, ALEX, "+61412000003")
    by_number = {p["data"]["phoneNumber"]: p for p in _payloads(world)}
    assert by_number[SAM]["type"] == "message.sent"
    assert (by_number[ALEX]["type"], by_number[ALEX]["data"]["error"]) == ("message.failed", "number unreachable")
    assert by_number["+61412000003"]["type"] == "message.opted_out"
    assert by_number["+61412000003"]["data"]["sequence"] == 2


async def test_an_endpoint_gets_deliveries_only_for_the_types_it_takes_and_a_disabled_one_none():
    world = World()
    failures = await _endpoint(world, ["message.failed"])
    everything = await _endpoint(world)
    world.provider.refuse = {ALEX: "no"}
    await world.send(SAM)
    assert [d.endpoint_id for d, _ in world.deliveries.take()] == [everything.endpoint_id]
    await world.send(ALEX)
    assert sorted(d.endpoint_id for d, _ in world.deliveries.take()) == sorted([failures.endpoint_id, everything.endpoint_id])
    world.webhooks.endpoints[everything.licensee_id, everything.endpoint_id] = replace(everything, disabled_at=utcnow())
    world.use.webhooks._changed(everything.licensee_id)
    before = len(world.ledger.event_batches)
    await world.send(SAM)
    assert world.deliveries.take() == []
    assert len(world.ledger.event_batches) == before + 1  # kept: a replay can send it once the endpoint is enabled


async def test_a_write_that_loses_a_race_leaves_no_batch_and_its_retry_makes_exactly_one():
    """The entry's ETag refuses the loser's whole write, events included; its retry announces anew."""
    world = World()
    await _endpoint(world)
    store = world.ledger
    real_save, refused = store.save, []

    async def save_refused_once(entry, recipients, previous, events=None):
        if not refused:
            refused.append(events)
            raise RecordChanged("another writer was first")
        await real_save(entry, recipients, previous, events)

    store.save = save_refused_once
    comm_id = await world.send(SAM)
    deliveries = [d for d, _ in world.deliveries.take()]
    assert len(deliveries) == 2  # one per attempt to write, each queued before its write
    existing = [d for d in deliveries if await store.batch(d.licensee_id, comm_id, d.batch) is not None]
    assert existing == [deliveries[1]] and refused[0].batch == deliveries[0].batch
    assert [p["type"] for p in _payloads(world)] == ["message.sent"]


async def test_a_failed_queue_put_leaves_the_change_unrecorded_so_the_retry_tells_it():
    world = World()
    await _endpoint(world)

    async def unreachable(delivery, delay_seconds=0):
        raise ConnectionError("queue unreachable")

    world.deliveries.put = unreachable
    with pytest.raises(ConnectionError):
        await world.send(SAM)
    assert world.ledger.event_batches == {} and world.ledger.entries == {}


async def test_a_reply_and_a_stop_tell_the_licensee_whose_message_they_answer():
    world = World()
    await _endpoint(world)
    comm_id = await world.send(SAM, replies=True)
    world.deliveries.take()
    reply = world.text_from(SAM, "STOP")
    await world.inbound.receive(reply)
    await world.inbound.receive(reply)  # the vendor delivers it twice: the same batch, the same ids
    [(first, _), (second, _)] = world.deliveries.take()
    assert first.batch == second.batch == batch_id(reply.received_at, f"acs:{reply.provider_message_id}")
    events = await world.ledger.batch(first.licensee_id, comm_id, first.batch)
    received, opted = (json.loads(e.body) for e in events)
    row = await world.recipient(comm_id)
    assert received["type"] == "reply.received" and received["data"]["text"] == "STOP"
    assert (received["data"]["recipientId"], received["data"]["phoneNumber"], received["data"]["to"]) == (row.recipient_id, SAM,
                                                                                                          "+61400000000")
    assert (opted["type"], opted["data"]["optOut"], opted["data"]["keyword"]) == ("optout.changed", "opted_out", "STOP")
    await world.inbound.receive(world.text_from(SAM, "start"))
    [(start, _)] = world.deliveries.take()
    [_, back_in] = await world.ledger.batch(start.licensee_id, comm_id, start.batch)
    assert json.loads(back_in.body)["data"]["optOut"] == "opted_in"


async def test_an_sms_nobody_sent_to_tells_nobody():
    world = World()
    await _endpoint(world)
    await world.inbound.receive(world.text_from("+61499999999", "hello?"))
    assert world.deliveries.take() == [] and world.ledger.event_batches == {}


def test_a_delivery_survives_the_queue_and_a_foreign_message_is_refused():
    delivery = Delivery("a" * 32, "e" * 32, "c" * 32, "1764090000123456", 3, ("evt_1",), True, utcnow() - timedelta(seconds=5), 2)
    assert Delivery.from_json(delivery.to_json()) == delivery
    for text in ("", "[]", '{"l": 1}', '{"job": "x"}', json.dumps({**json.loads(delivery.to_json()), "n": 0})):
        with pytest.raises(ValueError):
            Delivery.from_json(text)


def test_event_ids_locate_their_batch_and_nothing_else_passes():
    assert located("evt_1764090000123456_" + "c" * 32 + "_12d") == ("1764090000123456", "c" * 32)
    assert located("evt_1764090000123456-0123456789_" + "c" * 32 + "_r") == ("1764090000123456-0123456789", "c" * 32)
    for bad in ("", "evt_1_2_3", "evt_1764090000123456_" + "c" * 32 + "_12z", "evt_1764090000123456_" + "C" * 32 + "_1s",
                "evt_1764090000123456_" + "c" * 32 + "_1s.x"):
        assert located(bad) is None


def _contact():
    from sms.domain.model import Contact

    return Contact()


def _z(at) -> str:
    return at.isoformat(timespec="microseconds").replace("+00:00", "Z")
