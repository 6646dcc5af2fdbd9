"""Delivery receipts, replies and opt-outs, over in-memory fakes."""

import asyncio
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace

import pytest

from sms.domain.commands import Party
from sms.domain.errors import NotFound
from sms.domain.model import Status, utcnow
from sms.providers.acs import AcsProvider
from sms.providers.twilio import TwilioProvider
from sms.storage import EVERY_LICENSEE
from sms.usecases import optouts
from sms.usecases.optouts import keyword, sender_scope
from tests.fakes import ALEX, LICENSEE, OTHER, SAM, World, command, sms_over


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
    # Tied to the licensee of the message it answers, and to the number it was sent to (every licensee texting from it).
    assert world.opt_out_store.scopes == {LICENSEE: {SAM}, EVERY_LICENSEE + "+61400000000": {SAM}}

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
    await world.send(SAM, ALEX)
    reads = world.opt_out_store.reads
    await world.send(ALEX, SAM)  # numbers read within the cache time: no read
    assert world.opt_out_store.reads == reads
    await world.send(SAM, "+61412000003")  # a number not read yet: one read, for it alone
    assert world.opt_out_store.reads == reads + 1


async def test_replies_are_linked_to_the_message_that_allowed_them(world):
    comm_id = await world.send(SAM, replies=True)
    stored = await world.inbound.receive(world.text_from(SAM, "Yes, see you at 10"))
    assert stored.comm_id == comm_id
    assert [r.body for r in await world.use.status.replies(comm_id, LICENSEE)] == ["Yes, see you at 10"]
    with pytest.raises(NotFound):
        await world.use.status.replies(comm_id, OTHER)
    report = await world.sms.status(comm_id, LICENSEE)
    assert [r.body for r in report.replies] == ["Yes, see you at 10"]


async def test_replies_to_a_message_that_did_not_allow_them_are_kept_unlinked(world):
    comm_id = await world.send(ALEX)
    stored = await world.inbound.receive(world.text_from(ALEX, "who is this?"))
    assert stored.comm_id is None
    assert await world.use.status.replies(comm_id, LICENSEE) == []
    assert list(world.inbound_store.stored.values()) == [stored]
    assert (await world.sms.status(comm_id, LICENSEE)).replies is None  # not a message that takes replies


async def test_the_same_inbound_sms_delivered_twice_is_stored_once(world):
    sms = world.text_from(SAM, "hi")
    await world.inbound.receive(sms)
    await world.inbound.receive(sms)
    assert len(world.inbound_store.stored) == 1


async def test_send_now_reports_opted_out_recipients(world):
    await world.inbound.receive(world.text_from(SAM, "STOP"))
    response = await world.sms.send_now(command(SAM, ALEX, body="x"), LICENSEE)
    assert (response.ok, response.summary) == (False, "Sent to 1 of 2 recipients; 1 opted out")


# -- a STOP applies to the sender number it was sent to (carriers' rule), for every licensee texting from it --

GATEWAY_NUMBER = "+61400000000"  # where the person's STOP went: the inbound SMS's `to`
OTHER_NUMBER = "+61400000001"


async def send_from(world, number, licensee, sender=None, replies=False):
    """One immediate SMS from `sender` (None: the provider's default number); the recipient's status."""
    sent = command(number, body="Hello", reply_is_allowed=replies, sender=Party(phone_number=sender) if sender is not None else None)
    response = await world.sms.send_now(sent, licensee)
    return (await world.recipient(response.comm_id)).status


def texted(world, number):
    return sum(1 for sms in world.provider.sent if sms.to == number)


async def test_a_stop_reaches_every_licensee_sending_from_the_number_it_was_sent_to(world):
    world.provider.default_sender = GATEWAY_NUMBER  # as ACS_FROM_NUMBER would set it
    assert await send_from(world, SAM, LICENSEE, replies=True) is Status.SENT  # the reply is linked to this one
    assert await send_from(world, SAM, OTHER) is Status.SENT  # same number, no replies: its list is cached now
    await world.inbound.receive(world.text_from(SAM, "STOP"))  # sent to GATEWAY_NUMBER

    sent = texted(world, SAM)
    assert await send_from(world, SAM, LICENSEE) is Status.OPTED_OUT
    assert await send_from(world, SAM, OTHER) is Status.OPTED_OUT  # the provider's default number is that number
    assert await send_from(world, SAM, OTHER, sender="0400 000 000") is Status.OPTED_OUT  # named in national format
    assert texted(world, SAM) == sent
    # Another number of the other licensee's, and an alphanumeric sender id, were not where the STOP went.
    assert await send_from(world, SAM, OTHER, sender=OTHER_NUMBER) is Status.SENT
    assert await send_from(world, SAM, OTHER, sender="MyShop") is Status.SENT
    # The licensee whose message it answered stops texting the number from every sender, as before.
    assert await send_from(world, SAM, LICENSEE, sender=OTHER_NUMBER) is Status.OPTED_OUT

    await world.inbound.receive(world.text_from(SAM, "START"))
    assert await send_from(world, SAM, OTHER) is Status.SENT
    assert await send_from(world, SAM, LICENSEE) is Status.SENT
    assert texted(world, SAM) == sent + 4


async def test_a_start_to_another_number_leaves_the_stop_where_it_was_sent(world):
    world.provider.default_sender = GATEWAY_NUMBER
    await send_from(world, SAM, LICENSEE, replies=True)
    await world.inbound.receive(world.text_from(SAM, "STOP"))
    await world.inbound.receive(replace(world.text_from(SAM, "START"), to_number=OTHER_NUMBER))
    assert await send_from(world, SAM, OTHER) is Status.OPTED_OUT
    assert await send_from(world, SAM, OTHER, sender=OTHER_NUMBER) is Status.SENT


async def test_a_stop_whose_sender_number_is_unknown_applies_to_every_licensee(world):
    await send_from(world, SAM, LICENSEE, replies=True)
    await world.inbound.receive(replace(world.text_from(SAM, "STOP"), to_number=""))
    assert await send_from(world, SAM, OTHER, sender=OTHER_NUMBER) is Status.OPTED_OUT
    await world.inbound.receive(replace(world.text_from(SAM, "START"), to_number=""))
    assert await send_from(world, SAM, OTHER, sender=OTHER_NUMBER) is Status.SENT


async def test_a_cold_check_costs_one_read_per_number(world):
    world.provider.default_sender = GATEWAY_NUMBER
    await world.send(SAM)
    assert world.opt_out_store.reads == 1  # every scope SAM opted out of: the licensee's, the sender's, everyone's
    await world.send(ALEX, "+61412000003", ALEX)
    assert world.opt_out_store.reads == 3  # a number twice in one job is read once


async def test_a_long_list_costs_a_job_nothing_more_and_a_stop_is_applied_by_the_next_job(world):
    for i in range(10_000):
        await world.opt_out_store.add(LICENSEE, f"+61499{i:06d}", None)
    world.opt_out_store.scopes[EVERY_LICENSEE] = {f"+61498{i:06d}" for i in range(10_000)}
    job = (SAM, ALEX, "+61499000042")
    comm_id = await world.send(*job)
    assert world.opt_out_store.reads <= 3  # bounded by the job's numbers, not by 20,000 opt-outs
    assert [(await world.recipient(comm_id, seq)).status for seq in range(3)] == [Status.SENT, Status.SENT, Status.OPTED_OUT]
    reads = world.opt_out_store.reads
    await world.send(*job)
    assert world.opt_out_store.reads == reads  # a warm cache: no read at all

    await world.inbound.receive(world.text_from(SAM, "STOP"))
    comm_id = await world.send(*job)  # the very next job in this process, within the cache time
    assert [(await world.recipient(comm_id, seq)).status for seq in range(3)] == [Status.OPTED_OUT, Status.SENT, Status.OPTED_OUT]
    assert world.opt_out_store.reads == reads + 1  # SAM's answer was dropped and read again; the others were kept


def held_reads(store):
    """Make the store's reads take what storage holds now but answer only once `release` is set: a read
    in flight while something else changes storage. `started` is set once a read has begun."""
    started, release = asyncio.Event(), asyncio.Event()
    for name in ("scopes_for",):

        async def held(*args, _original=getattr(store, name)):
            answer = await _original(*args)
            started.set()
            await release.wait()
            return answer

        setattr(store, name, held)
    return started, release


async def test_a_list_read_in_flight_when_a_stop_lands_is_not_kept(world):
    started, release = held_reads(world.opt_out_store)
    racing = asyncio.create_task(world.send(SAM))  # its check reads the lists before the STOP is written
    await started.wait()
    await world.inbound.receive(world.text_from(SAM, "STOP"))
    release.set()
    await racing
    # The process that received the STOP applies it at once: the read that raced it is not cached.
    assert (await world.recipient(await world.send(SAM))).status is Status.OPTED_OUT


async def test_another_process_applies_a_stop_within_the_cache_time_counted_from_its_read(world, monkeypatch):
    clock = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(optouts, "time", SimpleNamespace(monotonic=lambda: clock.now))
    elsewhere = sms_over(world.store, world.queue, world.provider, opt_outs=world.opt_out_store, inbound=world.inbound_store)
    started, release = held_reads(world.opt_out_store)
    request = command(SAM, body="Hello")
    racing = asyncio.create_task(elsewhere.send_now(request, LICENSEE))
    await started.wait()  # its reads began at t=0
    clock.now += 10
    await world.inbound.receive(world.text_from(SAM, "STOP"))  # written at t=10, by this process
    clock.now += 10
    release.set()
    await racing  # the other process's reads answer at t=20, with what storage held at t=0
    clock.now += 11  # t=31: the documented 30 s have passed since those reads began (21 s after the STOP)
    again = await elsewhere.send_now(request, LICENSEE)
    assert (await world.recipient(again.comm_id)).status is Status.OPTED_OUT


@pytest.mark.parametrize("written, scope", [
    ("+61400000000", "*+61400000000"), ("+61 400 000 000", "*+61400000000"), ("+61 (4) 0000-0000", "*+61400000000"),
    ("0400 000 000", "*0400000000"),  # no region to read it by: compared as written, never equal to E.164
    ("12345", "*12345"), ("MyShop", "*MyShop"), ("", None), (None, None), ("+61/400#", None),
])
def test_sender_numbers_are_compared_in_e164_however_they_were_written(written, scope):
    assert sender_scope(written) == scope


async def test_the_provider_says_which_number_it_sends_from_by_default():
    acs = AcsProvider("endpoint=https://example.communication.azure.com/;accesskey=" + "A" * 44, "+61400000000")
    assert acs.default_sender == "+61400000000"
    assert TwilioProvider("AC" + "1" * 32, "token", from_number="+61400000000").default_sender == "+61400000000"
    # A Messaging Service picks the number from its pool (and handles STOP to it itself): none we can name.
    assert TwilioProvider("AC" + "1" * 32, "token", from_number="+61400000000",
                          messaging_service_sid="MG" + "2" * 32).default_sender is None
    await acs.close()


async def test_a_jobs_reads_run_together_but_at_most_sixteen_at_once(world):
    in_flight, most = 0, 0
    read = world.opt_out_store.scopes_for

    async def counted(number):
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1
        return await read(number)

    world.opt_out_store.scopes_for = counted
    await world.opt_out_store.add(LICENSEE, "+61412000007", None)
    numbers = [f"+614120000{i:02d}" for i in range(40)]
    assert await world.opt_outs.blocked(LICENSEE, None, numbers) == {"+61412000007"}
    assert most == 16 and world.opt_out_store.reads == 40


async def test_the_sweeper_moves_opt_outs_an_older_version_wrote_and_applies_them_at_once(world):
    """During an upgrade a process of the version before may record a STOP in the old layout; the
    sweeper moves it, and this process's cached "not opted out" for that number is dropped."""
    async def migrate_legacy():
        world.opt_out_store.scopes.setdefault(LICENSEE, set()).add(SAM)
        return {SAM}

    assert await world.opt_outs.blocked(LICENSEE, None, [SAM]) == set()  # read, and kept for 30 s
    world.opt_out_store.migrate_legacy = migrate_legacy
    await world.use.sweep.run()
    assert await world.opt_outs.blocked(LICENSEE, None, [SAM]) == {SAM}


async def test_a_reply_whose_message_is_gone_is_kept_unlinked_and_its_route_goes(world):
    """Issue 25: a route outlived its message (retention deleted the message, or a route written before
    retention removed routes with their messages): a reply from the number was then stored in the
    deleted message's partition, where nothing would ever delete it, and told to the licensee as a reply
    to a message it can no longer see. A route lasts no longer than its message."""
    await world.use.webhooks.add(LICENSEE, "https://crm.example.org/sms-events")
    comm_id = await world.send(SAM, replies=True)
    world.deliveries.take()
    await world.store.delete(comm_id)  # as retention does, a route left behind
    stored = await world.inbound.receive(world.text_from(SAM, "Is this still on?"))
    assert stored.comm_id is None
    assert list(world.inbound_store.stored.values()) == [stored]
    assert world.deliveries.take() == []  # no reply.received for a message that is not there
    assert await world.inbound_store.route_for(SAM) is None


async def test_the_gateways_retention_removes_old_unlinked_sms_and_old_messages_routes(world):
    """Issue 25, as assembled (sms/gateway.py): the hourly timer's Retention is given the inbound store."""
    comm_id = await world.send(SAM, replies=True)
    await world.inbound.receive(replace(world.text_from(ALEX, "who is this?"), received_at=utcnow() - timedelta(days=100)))
    later = utcnow() + timedelta(days=100)  # the message is past SMS_RETENTION_DAYS (90) by then
    assert await world.use.retention.run(later) == 1
    assert await world.store.load(comm_id) is None
    assert await world.inbound_store.route_for(SAM) is None
    assert world.inbound_store.stored == {}
