"""What writes the ledger, with the fakes: a dispatch once its job's writes are done, a delivery
receipt once its write is done, a parked job's give-up. Never a message that was not committed; and
a ledger write that fails is made again by the retry, with no SMS sent twice."""
import pytest

from sms.domain.errors import StorageUnavailable
from sms.domain.model import SendJob, Status
from sms.storage import LedgerQuery
from sms.usecases.dispatch import MessageNotWritten
from sms.usecases.ledger import counts
from tests.fakes import ALEX, LICENSEE, OTHER, SAM, World
from tests.unit.test_service import request


@pytest.fixture
def world():
    return World()


async def entries(world, **filters):
    return (await world.use.ledger.page(LedgerQuery(LICENSEE, **filters), 50))[0]


async def test_a_dispatched_message_is_listed_with_its_outcomes_and_a_receipt_moves_it_on(world):
    world.provider.refuse = {ALEX: "blocked number"}
    comm_id = await world.send(SAM, ALEX)
    [entry] = await entries(world)
    assert entry.comm_id == comm_id and counts(entry) == {"sent": 1, "failed": 1}

    assert await world.inbound.apply_receipt(f"{comm_id}:0", Status.DELIVERED, "p-1")
    [entry] = await entries(world)
    assert counts(entry) == {"delivered": 1, "failed": 1}
    [found] = await entries(world, phone_number=SAM)
    assert (found.comm_id, found.matched.status) == (comm_id, "delivered")
    assert await entries(world, status="sent") == []  # no recipient is `sent` any more
    assert (await world.use.ledger.page(LedgerQuery(OTHER), 50))[0] == []


async def test_a_message_never_committed_is_never_listed(world):
    async def commit_fails(staged):
        raise StorageUnavailable()

    world.store.commit = commit_fails
    with pytest.raises(StorageUnavailable):
        await world.send(SAM)
    job, _ = world.queue.jobs[0]
    world.use.dispatch._missing_message_wait = 0
    with pytest.raises(MessageNotWritten):
        await world.use.dispatch.dispatch(job)
    assert await world.use.dispatch.give_up(job, "parked") == []
    assert await entries(world) == []


async def test_a_failed_ledger_write_fails_the_job_and_its_retry_writes_it_without_a_second_sms(world):
    save = world.ledger.save
    failures = []

    async def ledger_down_once(*args):
        if not failures:
            failures.append(1)
            raise StorageUnavailable()
        return await save(*args)

    world.ledger.save = ledger_down_once
    response = await world.sms.accept(request(SAM), LICENSEE)
    job = SendJob(response.comm_id, 0, 0)
    with pytest.raises(StorageUnavailable):
        await world.sms.dispatch(job)  # the SMS went out; the queue will run the job again
    await world.sms.dispatch(job)
    assert [s.to for s in world.provider.sent] == [SAM]
    [entry] = await entries(world)
    assert counts(entry) == {"sent": 1}


async def test_a_parked_jobs_failures_are_listed(world):
    response = await world.sms.accept(request(SAM, ALEX), LICENSEE)
    await world.use.dispatch.give_up(SendJob(response.comm_id, 0, 1), "Gave up after 5 failed attempts")
    [entry] = await entries(world, status="failed")
    assert entry.comm_id == response.comm_id and counts(entry) == {"failed": 2}


async def test_a_receipt_does_not_change_which_provider_the_usage_counts(world):
    """Found walking through README: a simulated (ACS) receipt for a console-sent message moved the
    whole message to `acs` in GET /api/usage."""
    comm_id = await world.send(SAM, ALEX)
    assert await world.inbound.apply_receipt(f"{comm_id}:0", Status.DELIVERED, "p-1", provider="acs")
    calendar = await world.use.usage.calendar(LICENSEE)
    [today] = await world.use.usage.days(calendar, calendar.today, calendar.today)
    assert today.by_provider == {"recording": 2}


async def test_an_immediate_send_whose_ledger_write_fails_still_answers_what_was_sent(world):
    """A 503 here would tell the client an SMS that went out had failed, and invite a resend. The
    answer stays the real outcome; the job's safety-net copy records the ledger later."""
    save = world.ledger.save

    async def ledger_down(*args):
        raise StorageUnavailable()

    world.ledger.save = ledger_down
    response = await world.sms.send_now(request(SAM), LICENSEE)
    assert response.ok is True and response.summary == "Sent to 1 of 1 recipient"
    assert await entries(world) == []

    world.ledger.save = save
    [(safety_net, delay)] = world.queue.jobs
    assert delay > 0
    await world.sms.dispatch(safety_net)
    [entry] = await entries(world)
    assert counts(entry) == {"sent": 1} and [s.to for s in world.provider.sent] == [SAM]
