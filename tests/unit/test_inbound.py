"""Delivery receipts, replies and opt-outs, over in-memory fakes."""

import pytest

from sms.errors import NotFound
from sms.model import Status
from sms.optouts import keyword
from sms.storage import EVERY_LICENSEE
from sms.wire import SMSSend
from tests.fakes import LICENSEE, OTHER, SAM, ALEX, World



@pytest.fixture
def world():
    return World()


@pytest.mark.parametrize("body, expected", [
    ("STOP", "out"), (" stop. ", "out"), ("Unsubscribe", "out"), ("cancel!", "out"), ("END", "out"), ("quit", "out"),
    ("STOPALL", "out"), ("START", "in"), ("unstop", "in"), ("please stop texting me", None), ("Yes", None), ("", None),
])
def test_keywords(body, expected):
    assert keyword(body) == expected


async def test_receipts_move_status_forward_only(world):
    comm_id = await world.send(SAM)
    ref = f"{comm_id}:0"
    assert await world.inbound.apply_receipt(ref, Status.DELIVERED, "p-1") is True
    assert (await world.recipient(comm_id)).status is Status.DELIVERED
    # A duplicate, and a late "sent" that arrives after "delivered", change nothing.
    assert await world.inbound.apply_receipt(ref, Status.DELIVERED) is False
    assert await world.inbound.apply_receipt(ref, Status.SENT) is False
    assert await world.inbound.apply_receipt(ref, Status.UNDELIVERED) is False
    assert (await world.recipient(comm_id)).status is Status.DELIVERED


async def test_an_undelivered_receipt_keeps_the_carriers_reason(world):
    comm_id = await world.send(SAM)
    assert await world.inbound.apply_receipt(f"{comm_id}:0", Status.UNDELIVERED, detail="Handset unreachable")
    recipient = await world.recipient(comm_id)
    assert (recipient.status, recipient.last_error) == (Status.UNDELIVERED, "Handset unreachable")


@pytest.mark.parametrize("reference", ["", "nonsense", f"{'c' * 32}:0", f"{'c' * 32}:x", "C" * 32 + ":0"])
async def test_receipts_for_unknown_recipients_are_ignored(world, reference):
    assert await world.inbound.apply_receipt(reference, Status.DELIVERED) is False


async def test_opt_out_round_trip(world):
    first = await world.send(SAM, replies=True)
    await world.inbound.receive(world.text_from(SAM, "STOP"))
    assert world.opt_out_store.scopes == {LICENSEE: {SAM}}  # tied to the licensee of the message it answers

    skipped = await world.send(SAM, ALEX)
    assert (await world.recipient(skipped, 0)).status is Status.OPTED_OUT
    assert (await world.recipient(skipped, 1)).status is Status.SENT
    assert [s.to for s in world.provider.sent] == [SAM, ALEX]  # only the first message reached Sam

    other_licensee = await world.send(SAM, licensee=OTHER)  # a STOP to one licensee does not silence another
    assert (await world.recipient(other_licensee)).status is Status.SENT

    await world.inbound.receive(world.text_from(SAM, "start"))
    again = await world.send(SAM)
    assert (await world.recipient(again)).status is Status.SENT
    assert first != again


async def test_a_stop_that_answers_no_known_message_applies_to_every_licensee(world):
    await world.inbound.receive(world.text_from(ALEX, "Stop"))
    assert world.opt_out_store.scopes == {EVERY_LICENSEE: {ALEX}}
    for licensee in (LICENSEE, OTHER):
        comm_id = await world.send(ALEX, licensee=licensee)
        assert (await world.recipient(comm_id)).status is Status.OPTED_OUT
    assert world.provider.sent == []


async def test_the_opt_out_list_costs_no_round_trip_per_job_once_cached(world):
    await world.send(SAM)
    reads = world.opt_out_store.reads
    await world.send(ALEX)
    assert world.opt_out_store.reads == reads


async def test_replies_are_linked_to_the_message_that_allowed_them(world):
    comm_id = await world.send(SAM, replies=True)
    stored = await world.inbound.receive(world.text_from(SAM, "Yes, see you at 10"))
    assert stored.comm_id == comm_id
    assert [r.body for r in await world.inbound.replies(comm_id, LICENSEE)] == ["Yes, see you at 10"]
    with pytest.raises(NotFound):
        await world.inbound.replies(comm_id, OTHER)
    state = await world.sms.status(comm_id, LICENSEE)
    assert [r.body for r in state.replies] == ["Yes, see you at 10"]


async def test_replies_to_a_message_that_did_not_allow_them_are_kept_unlinked(world):
    comm_id = await world.send(ALEX)
    stored = await world.inbound.receive(world.text_from(ALEX, "who is this?"))
    assert stored.comm_id is None
    assert await world.inbound.replies(comm_id, LICENSEE) == []
    assert list(world.inbound_store.stored.values()) == [stored]
    assert (await world.sms.status(comm_id, LICENSEE)).replies is None  # not a message that takes replies


async def test_the_same_inbound_sms_delivered_twice_is_stored_once(world):
    sms = world.text_from(SAM, "hi")
    await world.inbound.receive(sms)
    await world.inbound.receive(sms)
    assert len(world.inbound_store.stored) == 1


async def test_send_now_reports_opted_out_recipients(world):
    await world.inbound.receive(world.text_from(SAM, "STOP"))
    request = SMSSend.model_validate({"SMSModel": {"To": [{"PhoneNumber": SAM}, {"PhoneNumber": ALEX}], "MessageBody": "x"}})
    response = await world.sms.send_now(request, LICENSEE)
    assert (response.status, response.message) == (False, "Sent to 1 of 2 recipients; 1 opted out")
