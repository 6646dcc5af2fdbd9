"""The accept use case's commit point, with the fakes: a message's rows are staged and its jobs queued
(one job after the staging, several beside it); the message becomes visible (commit) only after every
job is on the queue, so a message is never stored without its jobs. A failed put or stage leaves no message."""
import asyncio

import pytest

from sms.domain.commands import Party, SendMessage
from sms.domain.errors import StorageUnavailable
from tests.fakes import InMemoryJobQueue, InMemoryMessageStore, RecordingProvider, assembled

LICENSEE = "a" * 32


def command(recipients: int) -> SendMessage:
    return SendMessage(body="Your results are ready",
                       to=tuple(Party(phone_number=f"+614120{i:05d}") for i in range(recipients)))


class Journal:
    """A store and a queue that write what happens, in order, into one list."""

    def __init__(self):
        self.events: list[str] = []
        self.store, self.queue = InMemoryMessageStore(), InMemoryJobQueue()
        stage, commit, put = self.store.stage, self.store.commit, self.queue.put

        async def staged(message, recipients):
            self.events.append("stage starts")
            await asyncio.sleep(0.01)
            result = await stage(message, recipients)
            self.events.append("staged")
            return result

        async def committed(staged_message):
            self.events.append("commit")
            return await commit(staged_message)

        async def queued(job, *, delay_seconds=0):
            self.events.append("put starts")
            await asyncio.sleep(0.02)
            await put(job, delay_seconds=delay_seconds)
            self.events.append("put")

        self.store.stage, self.store.commit, self.queue.put = staged, committed, queued


@pytest.mark.parametrize("recipients", [1, 99])
async def test_a_message_staged_without_writes_is_staged_then_queued_then_committed_in_one_task(recipients):
    """The usual message: no task to overlap its put with staging that writes nothing (that cost more
    CPU than it saved, issue 17), and the rows are built before the job is queued, so rows storage would
    refuse queue nothing."""
    journal = Journal()
    accept = assembled(journal.store, journal.queue, RecordingProvider()).accept
    result = await accept.queue(command(recipients), LICENSEE)
    assert journal.events == ["stage starts", "staged", "put starts", "put", "commit"]
    assert result.ok and len(journal.queue.jobs) == 1


@pytest.mark.parametrize("recipients, jobs", [(100, 1), (250, 3)])
async def test_puts_and_staging_that_writes_rows_run_together_and_the_commit_comes_after_both(recipients, jobs):
    """Several jobs, or a message with rows to write before its commit (100 recipients: one more than
    the committing transaction holds beside the message row): the puts overlap the staging's writes."""
    journal = Journal()
    accept = assembled(journal.store, journal.queue, RecordingProvider()).accept
    result = await accept.queue(command(recipients), LICENSEE)

    events = journal.events
    assert events[-1] == "commit" and events.count("commit") == 1
    assert events.count("put") == jobs
    # Together, not one after the other: every put had started before staging finished.
    assert events.index("staged") > max(i for i, e in enumerate(events) if e == "put starts")
    assert result.ok and len(journal.queue.jobs) == jobs


async def test_a_job_that_cannot_be_queued_leaves_no_message():
    journal = Journal()

    async def queue_down(job, *, delay_seconds=0):
        raise StorageUnavailable()

    journal.queue.put = queue_down
    accept = assembled(journal.store, journal.queue, RecordingProvider()).accept
    with pytest.raises(StorageUnavailable):
        await accept.queue(command(3), LICENSEE)
    assert "commit" not in journal.events and journal.store.messages == {}


@pytest.mark.parametrize("recipients, jobs_queued", [(3, 0), (250, 3)])
async def test_rows_that_cannot_be_staged_leave_no_message_and_any_job_finds_nothing(recipients, jobs_queued):
    journal = Journal()

    async def stage_fails(message, recipients):
        raise StorageUnavailable()

    journal.store.stage = stage_fails
    use = assembled(journal.store, journal.queue, RecordingProvider(), missing_message_wait=0)
    with pytest.raises(StorageUnavailable):
        await use.accept.queue(command(recipients), LICENSEE)
    assert "commit" not in journal.events and journal.store.messages == {}
    # One job: staged first, so none is queued. Several: queued beside the staging, and harmless: each
    # dispatch finds no message and sends nothing.
    assert len(journal.queue.jobs) == jobs_queued


async def test_cancelling_an_accept_whose_puts_run_beside_staging_cancels_the_puts_too():
    """A cancelled request (its host stopping) does not wait out its job puts, which could be retrying
    for tens of seconds; nor does it commit anything. (Found by an adversarial review of issue 17's change.)"""
    journal = Journal()
    stage, put = journal.store.stage, journal.queue.put
    finished_puts = []

    async def slow_stage(message, recipients):
        await asyncio.sleep(0.05)  # the earlier rows' transactions in flight
        return await stage(message, recipients)

    async def slow_put(job, *, delay_seconds=0):
        await asyncio.sleep(5)  # a put in its retry backoff
        await put(job, delay_seconds=delay_seconds)
        finished_puts.append(job)

    journal.store.stage, journal.queue.put = slow_stage, slow_put
    accept = assembled(journal.store, journal.queue, RecordingProvider()).accept
    task = asyncio.create_task(accept.queue(command(250), LICENSEE))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=1)
    assert finished_puts == [] and journal.store.messages == {} and "commit" not in journal.events
