"""The simulator provider (sms/providers/simulator.py): answers each send by the number's behaviour, keeps
a bounded record of what it took (what `find` answers), and follows taken SMS with their receipts through
the receipt use case (Inbound.apply_receipt), as a vendor's callback does."""
import asyncio
import logging
from datetime import datetime, timezone

import pytest

from sms.domain.model import Status
from sms.domain.simulated import Behaviour
from sms.providers import Failure, Found, OutgoingSms
from sms.providers.simulator import SimulatorProvider
from tests.fakes import EVERY_COUNTRY, InMemoryJobQueue, InMemoryLedgerStore, InMemoryMessageStore, command, sms_over

# One North American simulator number per behaviour (the last digit decides), and an ordinary one.
DELIVERED, UNDELIVERED, FAILED, NOT_TAKEN, AMBIGUOUS, NO_RECEIPT = (f"+1202555010{d}" for d in range(6))
ORDINARY = "+61412345678"
LICENSEE = "a" * 32


def sms(to: str, recipient_id: str = "r-1", attempt: int = 1, reference: str = "0123456789abcdef0123456789abcdef:0") -> OutgoingSms:
    at = datetime(2026, 5, 1, 9, 0, tzinfo=timezone.utc)
    return OutgoingSms(recipient_id=recipient_id, to=to, body="Hello", reference=reference, attempt=attempt,
                       first_attempt_at=at, attempt_at=at)


class Receipts:
    """A receipt sink with Inbound.apply_receipt's signature: keeps each receipt; can fail the first
    `failures` calls, or hold every call until `release` is set."""

    def __init__(self, failures: int = 0, hold: bool = False):
        self.applied: list[tuple] = []
        self.calls = 0
        self.failures = failures
        self.release = asyncio.Event()
        if not hold:
            self.release.set()

    async def __call__(self, reference, status, provider_message_id=None, detail=None, provider=""):
        self.calls += 1
        await self.release.wait()
        if self.calls <= self.failures:
            raise ConnectionError("storage unreachable")
        self.applied.append((reference, status, provider_message_id, detail, provider))
        return True


@pytest.fixture
async def simulator():
    provider = SimulatorProvider(receipt_delay=0)
    yield provider
    await provider.close()


async def test_it_is_named_simulator_and_always_reachable(simulator):
    assert simulator.name == "simulator" and simulator.find_sends is False
    assert await simulator.check() is None


async def test_taken_sms_are_accepted_with_an_id_of_their_own(simulator):
    ids = set()
    for to in (DELIVERED, UNDELIVERED, NO_RECEIPT):
        outcome = await simulator.send(sms(to, recipient_id=to))
        assert outcome.accepted and outcome.provider_message_id.startswith("sim-")
        ids.add(outcome.provider_message_id)
    assert len(ids) == 3


@pytest.mark.parametrize("to, failure, code", [
    (FAILED, Failure.REFUSED, "DESTINATION_BLOCKED"),
    (NOT_TAKEN, Failure.NOT_TAKEN, "UNSUPPORTED_DESTINATION"),
    (AMBIGUOUS, Failure.AMBIGUOUS, "TIMEOUT"),
    (ORDINARY, Failure.NOT_TAKEN, "NOT_A_SIMULATOR_NUMBER"),
])
async def test_refusals_say_what_they_mean_for_trying_again(simulator, to, failure, code):
    """Not transient: nothing about them changes with time, and an ambiguous one must never be sent
    blind again. A number that is not a simulator number is never taken (were a routing table to send
    real numbers here, they go on to the next provider, not to a silent `delivered`)."""
    outcome = await simulator.send(sms(to))
    assert not outcome.accepted and outcome.provider_message_id is None
    assert (outcome.failure, outcome.code, outcome.transient) == (failure, code, False)
    assert code in outcome.error


async def test_find_answers_from_what_it_took(simulator):
    taken = {to: await simulator.send(sms(to, recipient_id=to)) for to in (DELIVERED, UNDELIVERED, NO_RECEIPT, AMBIGUOUS)}
    for to, outcome in taken.items():
        trace = await simulator.find(sms(to, recipient_id=to))
        assert trace.found is Found.SENT, to
        if to != AMBIGUOUS:
            assert trace.provider_message_id == outcome.provider_message_id
    # The ambiguous one was taken: the answer was what got lost. Asked, the simulator has it, with an id.
    assert (await simulator.find(sms(AMBIGUOUS, recipient_id=AMBIGUOUS))).provider_message_id.startswith("sim-")


async def test_find_says_never_had_it_only_of_what_it_never_takes(simulator):
    failed = await simulator.find(sms(FAILED))
    assert failed.found is Found.NOT_SENT and "DESTINATION_BLOCKED" in failed.error  # refused for good: not sent again
    assert (await simulator.find(sms(NOT_TAKEN))) .found is Found.NOT_SENT and (await simulator.find(sms(NOT_TAKEN))).error is None
    assert (await simulator.find(sms(ORDINARY))).found is Found.NOT_SENT


async def test_find_cannot_tell_of_a_taken_number_it_has_no_record_of(simulator):
    """Its record is this process's memory: another instance, or this one before a restart, may have
    taken it. "Never had it" would have the gateway send it again, so it cannot tell."""
    assert (await simulator.find(sms(DELIVERED))).found is Found.UNKNOWN
    await simulator.send(sms(DELIVERED, attempt=1))
    assert (await simulator.find(sms(DELIVERED, attempt=2))).found is Found.UNKNOWN  # another claim than the one it took


async def test_its_record_is_bounded_and_forgetting_never_turns_into_never_had_it():
    simulator = SimulatorProvider(receipt_delay=0, remembered=3)
    for i in range(4):
        await simulator.send(sms(NO_RECEIPT, recipient_id=f"r-{i}"))
    assert (await simulator.find(sms(NO_RECEIPT, recipient_id="r-0"))).found is Found.UNKNOWN
    assert [(await simulator.find(sms(NO_RECEIPT, recipient_id=f"r-{i}"))).found for i in (1, 2, 3)] == [Found.SENT] * 3
    await simulator.close()


async def test_delivered_and_undelivered_are_followed_by_their_receipts(simulator):
    receipts = Receipts()
    simulator.send_receipts_to(receipts)
    outcomes = {}
    for seq, to in enumerate((DELIVERED, UNDELIVERED, FAILED, NOT_TAKEN, AMBIGUOUS, NO_RECEIPT)):
        outcomes[to] = await simulator.send(sms(to, recipient_id=to, reference=f"{'c' * 32}:{seq}"))
    await simulator.wait_for_receipts()
    assert receipts.applied == [
        (f"{'c' * 32}:0", Status.DELIVERED, outcomes[DELIVERED].provider_message_id, None, "simulator"),
        (f"{'c' * 32}:1", Status.UNDELIVERED, outcomes[UNDELIVERED].provider_message_id,
         "Simulated carrier: the handset could not be reached (HANDSET_UNREACHABLE)", "simulator"),
    ]


async def test_a_receipt_that_could_not_be_applied_is_tried_again(simulator):
    receipts = Receipts(failures=1)
    simulator.send_receipts_to(receipts)
    await simulator.send(sms(DELIVERED))
    await simulator.wait_for_receipts()
    assert receipts.calls == 2 and [r[1] for r in receipts.applied] == [Status.DELIVERED]


async def test_a_receipt_that_never_applies_is_given_up_and_logged(simulator, caplog):
    receipts = Receipts(failures=100)
    simulator.send_receipts_to(receipts)
    with caplog.at_level(logging.WARNING, logger="sms.providers.simulator"):
        await simulator.send(sms(DELIVERED))
        await simulator.wait_for_receipts()
    assert receipts.applied == [] and receipts.calls == 3
    assert "receipt" in caplog.text and "+1202555010" not in caplog.text  # the number is masked


async def test_receipts_waiting_are_bounded(caplog):
    simulator = SimulatorProvider(receipt_delay=0, pending_receipts=2)
    receipts = Receipts(hold=True)
    simulator.send_receipts_to(receipts)
    with caplog.at_level(logging.WARNING, logger="sms.providers.simulator"):
        for i in range(3):
            assert (await simulator.send(sms(DELIVERED, recipient_id=f"r-{i}"))).accepted  # the send itself is never refused for it
    assert "dropped" in caplog.text
    receipts.release.set()
    await simulator.wait_for_receipts()
    assert len(receipts.applied) == 2
    await simulator.close()


async def test_a_messages_receipts_are_applied_one_at_a_time_and_different_messages_at_once(simulator):
    """Each receipt rewrites its message's ledger entry: a job's receipts applied all at once kept
    refusing each other's writes (tests/integration/test_simulator.py)."""
    in_flight: dict[str, int] = {}
    most: dict[str, int] = {}
    both_at_once = asyncio.Event()

    async def sink(reference, status, provider_message_id=None, detail=None, provider=""):
        comm_id = reference.partition(":")[0]
        in_flight[comm_id] = in_flight.get(comm_id, 0) + 1
        most[comm_id] = max(most.get(comm_id, 0), in_flight[comm_id])
        if len([n for n in in_flight.values() if n]) == 2:
            both_at_once.set()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        in_flight[comm_id] -= 1

    simulator.send_receipts_to(sink)
    for comm_id in ("a" * 32, "b" * 32):
        for seq in range(5):
            await simulator.send(sms(DELIVERED, recipient_id=f"{comm_id}-{seq}", reference=f"{comm_id}:{seq}"))
    await simulator.wait_for_receipts()
    assert most == {"a" * 32: 1, "b" * 32: 1} and both_at_once.is_set()
    assert simulator._messages_receipts == {}  # nothing kept for a message once its receipts are done


async def test_without_a_sink_receipts_are_not_kept(simulator):
    assert (await simulator.send(sms(DELIVERED))).accepted
    await simulator.wait_for_receipts()  # nothing waits: there is nowhere to send them


async def test_close_drops_the_receipts_still_waiting():
    simulator = SimulatorProvider(receipt_delay=3600)
    receipts = Receipts()
    simulator.send_receipts_to(receipts)
    await simulator.send(sms(DELIVERED))
    await simulator.close()
    await simulator.wait_for_receipts()
    assert receipts.calls == 0


async def test_a_message_to_every_behaviour_through_the_use_cases():
    """Accepted, dispatched through the simulator, and its receipts applied by Inbound, as a vendor's
    callback applies them: each recipient ends as README's table says (those the dispatch decides alone)."""
    store, queue, ledger = InMemoryMessageStore(), InMemoryJobQueue(), InMemoryLedgerStore()
    simulator = SimulatorProvider(receipt_delay=0)
    sms_ = sms_over(store, queue, simulator, ledger=ledger, default_guard=EVERY_COUNTRY)
    simulator.send_receipts_to(sms_.use.inbound.apply_receipt)
    numbers = (DELIVERED, UNDELIVERED, FAILED, NOT_TAKEN, AMBIGUOUS, NO_RECEIPT, "+61491570156", "+61255500101")
    response = await sms_.accept(command(*numbers), LICENSEE)
    for job, _ in list(queue.jobs):
        await sms_.dispatch(job)
    await simulator.wait_for_receipts()
    _, rows = await store.load(response.comm_id)
    ends = {r.phone_number: r for r in rows}
    assert ends[DELIVERED].status is Status.DELIVERED and ends["+61491570156"].status is Status.DELIVERED
    assert ends[UNDELIVERED].status is Status.UNDELIVERED and "HANDSET_UNREACHABLE" in ends[UNDELIVERED].last_error
    assert ends["+61255500101"].status is Status.UNDELIVERED
    assert ends[FAILED].status is Status.FAILED and "DESTINATION_BLOCKED" in ends[FAILED].last_error
    assert ends[NO_RECEIPT].status is Status.SENT
    assert all(r.attempts == 1 for r in rows)  # none tried twice
    calendar = await sms_.use.usage.calendar(LICENSEE)
    [today] = await sms_.use.usage.days(calendar, calendar.today, calendar.today)
    assert set(today.by_provider) == {"simulator"}
    await simulator.close()


def test_behaviours_cover_the_issue():
    """Issue 26: delivered, undelivered with a code, failed, refused before acceptance, ambiguous timeout, no receipt ever."""
    assert [b.value for b in Behaviour] == ["delivered", "undelivered", "failed", "not_taken", "ambiguous", "no_receipt"]
