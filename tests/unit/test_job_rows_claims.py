"""JobRows' write lanes: a claim holds a send slot until its write lands, so it never queues behind
the job's writes of outcomes (at most WRITES_IN_FLIGHT of those at once); it goes at once and takes
along whatever else is waiting."""
import asyncio
from datetime import timedelta

from sms.domain import transitions
from sms.domain.model import Contact, Message, Recipient, Status, utcnow
from sms.usecases import job_rows
from sms.usecases.job_rows import JobRows
from tests.fakes import InMemoryMessageStore

COMM = "c" * 32


class GatedStore(InMemoryMessageStore):
    """Every recipient write waits at a gate until the test opens it; the test sees what is in flight."""

    def __init__(self):
        super().__init__()
        self.in_flight: list[list[int]] = []
        self.gate = asyncio.Event()

    async def update_recipients(self, comm_id, recipients):
        seqs = sorted(r.seq for r in recipients)
        self.in_flight.append(seqs)
        await self.gate.wait()
        try:
            return await super().update_recipients(comm_id, recipients)
        finally:
            self.in_flight.remove(seqs)


async def rows_of(store: GatedStore, count: int) -> JobRows:
    recipients = [Recipient(COMM, i, f"{i:032x}", f"+6141200{i:04d}") for i in range(count)]
    message = Message(COMM, "l" * 32, "hi", Contact(), recipient_count=count, encoding="GSM-7", segments=1)
    staged = await store.stage(message, recipients)
    stored = await store.commit(staged)
    return JobRows(store, COMM, stored, 0, count - 1, timedelta(minutes=5))


async def settle_soon() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_claim_goes_at_once_while_the_jobs_outcome_writes_fill_their_lanes():
    store = GatedStore()
    store.gate.set()
    rows = await rows_of(store, 6)
    claimed = [await rows.claim(seq) for seq in range(job_rows.WRITES_IN_FLIGHT + 2)]
    assert all(r is not None and r.status is Status.SENDING for r in claimed)

    store.gate.clear()
    outcomes = []
    for r in claimed:  # each in its own turn, so each makes its own write if a lane is free
        outcomes.append(asyncio.create_task(rows.record(transitions.sent(r, f"SM{r.seq}", at=utcnow()))))
        await settle_soon()
    outcome_writes = list(store.in_flight)
    assert len(outcome_writes) == job_rows.WRITES_IN_FLIGHT  # the rest wait for a lane...

    claiming = asyncio.create_task(rows.claim(5))
    await settle_soon()
    # ...while the claim went at once, taking along the outcomes still waiting.
    assert len(store.in_flight) == job_rows.WRITES_IN_FLIGHT + 1
    [claim_write] = [seqs for seqs in store.in_flight if seqs not in outcome_writes]
    assert 5 in claim_write and len(claim_write) > 1

    store.gate.set()
    assert (await claiming).status is Status.SENDING
    assert all(r.status is Status.SENT for r in await asyncio.gather(*outcomes))
    assert {r.seq: r.status for r in store.recipients[COMM].values()} == {
        0: Status.SENT, 1: Status.SENT, 2: Status.SENT, 3: Status.SENT, 4: Status.QUEUED, 5: Status.SENDING}


async def test_outcomes_alone_never_have_more_than_their_lanes_in_flight():
    store = GatedStore()
    store.gate.set()
    rows = await rows_of(store, 8)
    claimed = [await rows.claim(seq) for seq in range(8)]
    store.gate.clear()
    most = 0
    outcomes = []
    for r in claimed:
        outcomes.append(asyncio.create_task(rows.record(transitions.sent(r, f"SM{r.seq}", at=utcnow()))))
        await settle_soon()
        most = max(most, len(store.in_flight))
    store.gate.set()
    await asyncio.gather(*outcomes)
    assert most == job_rows.WRITES_IN_FLIGHT
