"""A long job records its progress in the ledger while it runs (issue 25)."""
import asyncio
from datetime import timedelta

from sms.domain.commands import Party, SendMessage
from sms.domain.errors import StorageUnavailable
from sms.domain.model import STATUS_LETTERS, Status
from tests.fakes import LICENSEE, InMemoryJobQueue, InMemoryLedgerStore, InMemoryMessageStore, RecordingProvider, assembled


async def test_a_long_rate_limited_job_shows_its_sent_recipients_in_the_ledger_before_it_ends():
    ledger, queue = InMemoryLedgerStore(), InMemoryJobQueue()
    store = InMemoryMessageStore()
    use = assembled(store, queue, RecordingProvider(), ledger=ledger, send_rate_per_second=20,
                    progress_every=timedelta(milliseconds=100))
    numbers = [f"+6141230{i:04d}" for i in range(12)]  # 12 turns at 20 a second: about 0.6 s
    sent = await use.accept.queue(SendMessage(to=tuple(Party(phone_number=n) for n in numbers), body="Hi"), LICENSEE)
    message = store.messages[sent.comm_id]
    job = asyncio.create_task(use.dispatch.dispatch(queue.jobs[0][0]))
    seen = set()
    while not job.done():
        entry = await ledger.entry(LICENSEE, sent.comm_id, message.created_at)
        if entry is not None:
            seen.add(entry.statuses)
        await asyncio.sleep(0.02)
    await job

    sent_letter, queued_letter = STATUS_LETTERS[Status.SENT], STATUS_LETTERS[Status.QUEUED]
    assert any(sent_letter in s and queued_letter in s for s in seen), seen  # part sent, part still to go
    final = await ledger.entry(LICENSEE, sent.comm_id, message.created_at)
    assert final.statuses == sent_letter * 12


async def test_a_progress_write_that_fails_fails_nothing_and_the_job_still_records_everything():
    class FailingFirstSaves(InMemoryLedgerStore):
        def __init__(self):
            super().__init__()
            self.refused = 0

        async def save(self, entry, recipients, previous, events=None):
            if self.refused < 1:
                self.refused += 1
                raise StorageUnavailable()
            return await super().save(entry, recipients, previous, events)

    ledger, queue, store, provider = FailingFirstSaves(), InMemoryJobQueue(), InMemoryMessageStore(), RecordingProvider()
    use = assembled(store, queue, provider, ledger=ledger, send_rate_per_second=20, progress_every=timedelta(milliseconds=50))
    numbers = [f"+6141230{i:04d}" for i in range(8)]
    sent = await use.accept.queue(SendMessage(to=tuple(Party(phone_number=n) for n in numbers), body="Hi"), LICENSEE)
    await use.dispatch.dispatch(queue.jobs[0][0])

    assert ledger.refused == 1 and sorted(provider.calls) == numbers
    entry = await ledger.entry(LICENSEE, sent.comm_id, store.messages[sent.comm_id].created_at)
    assert entry.statuses == STATUS_LETTERS[Status.SENT] * 8
