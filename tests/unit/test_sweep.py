"""The sweeper reads its index of pending messages, not every message (issue 25): what it finds, when,
and what it leaves for later."""
from datetime import datetime, timedelta, timezone

from sms.domain.commands import Party, SendMessage
from sms.domain.model import SendJob, Status
from sms.domain.transitions import held
from sms.usecases.sweep import QUEUED_FOR
from tests.fakes import LICENSEE, Clock, InMemoryJobQueue, InMemoryMessageStore, RecordingProvider, assembled, pending_index_of

T0 = datetime(2026, 12, 6, 10, 0, tzinfo=timezone.utc)
LEASE = timedelta(minutes=5)


class CountingStore(InMemoryMessageStore):
    """Counts the sweeper's reads: loads of one message, and scans of them all."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.scans = 0

    async def load(self, comm_id, first=0, last=None):
        self.loads.append(comm_id)
        return await super().load(comm_id, first, last)

    async def unfinished(self):
        self.scans += 1
        return await super().unfinished()


class World:
    def __init__(self) -> None:
        self.clock, self.store, self.queue = Clock(T0), CountingStore(), InMemoryJobQueue()
        self.provider = RecordingProvider()
        self.use = assembled(self.store, self.queue, self.provider, clock=self.clock, sending_lease=LEASE)
        self.index = pending_index_of(self.store)

    async def send(self, *numbers: str, **fields) -> str:
        command = SendMessage(to=tuple(Party(phone_number=n) for n in numbers), body="Your appointment is at 10am", **fields)
        return (await self.use.accept.queue(command, LICENSEE)).comm_id

    async def sweep_at(self, at: datetime) -> list[SendJob]:
        self.clock.at = at
        self.store.loads.clear()
        return await self.use.sweep.run()

    def lose_jobs(self) -> None:
        self.queue.jobs.clear()


async def test_a_message_whose_jobs_were_lost_is_found_once_it_is_due_and_not_before():
    world = World()
    await world.use.sweep.run()  # the first sweep of a deployment: its one scan, of nothing yet
    comm_id = await world.send(*(f"+6141230{i:04d}" for i in range(150)))
    world.lose_jobs()

    assert await world.sweep_at(T0 + timedelta(minutes=4)) == []
    assert world.store.loads == []  # nothing due: not a message read

    swept = await world.sweep_at(T0 + QUEUED_FOR + timedelta(seconds=1))
    assert swept == [SendJob(comm_id, 0, 99), SendJob(comm_id, 100, 199)]
    assert [job for job, _ in world.queue.jobs] == swept
    assert world.store.loads == [comm_id] and world.store.scans == 1


async def test_messages_not_yet_due_and_finished_ones_cost_the_sweep_nothing():
    world = World()
    await world.use.sweep.run()
    done = await world.send("+61412300001")
    await world.use.dispatch.dispatch(world.queue.jobs[0][0])
    await world.sweep_at(T0 + timedelta(minutes=6))
    assert world.store.loads == [done] and world.index.marks == {}  # looked at once, then forgotten

    world.clock.at = T0 + timedelta(minutes=30)
    later = await world.send("+61412300002")
    assert await world.sweep_at(T0 + timedelta(minutes=31)) == []
    assert world.store.loads == [] and list(world.index.marks) == [later]


async def test_a_scheduled_message_whose_job_was_lost_is_sent_after_its_time_not_left_scheduled():
    world = World()
    await world.use.sweep.run()
    send_at = T0 + timedelta(days=2)
    comm_id = await world.send("+61412300001", send_at=send_at.isoformat())
    world.lose_jobs()

    assert await world.sweep_at(T0 + timedelta(days=1)) == []
    assert world.store.loads == []  # a scheduled message is due after its sendAt, not before

    [job] = await world.sweep_at(send_at + QUEUED_FOR + timedelta(seconds=1))
    assert job == SendJob(comm_id, 0, 99)
    await world.use.dispatch.dispatch(job)
    _, [row] = await world.store.load(comm_id)
    assert row.status is Status.SENT and world.provider.calls == ["+61412300001"]


async def test_a_claim_past_its_lease_is_found_and_a_waiting_message_is_looked_at_again_later():
    world = World()
    await world.use.sweep.run()
    comm_id = await world.send("+61412300001", "+61412300002")
    _, (first, second) = await world.store.load(comm_id)
    world.store.recipients[comm_id][0] = first.__class__(**{**first.__dict__, "status": Status.SENDING, "claim_id": "dead"})
    world.store.recipients[comm_id][1] = held(second, "Waiting for the licensee's quiet hours (21:00-08:00)", at=T0)
    world.lose_jobs()

    [job] = await world.sweep_at(T0 + LEASE + timedelta(seconds=1))
    assert job == SendJob(comm_id, 0, 99)  # the claim's; the held row has its own job coming
    assert world.index.marks == {comm_id: T0 + LEASE + timedelta(seconds=1) + LEASE}  # still pending: again later


async def test_the_messages_accepted_before_the_index_existed_are_indexed_by_one_scan_once():
    world = World()
    comm_id = await world.send("+61412300001")
    world.index.marks.clear()  # accepted by the version before: never noted
    world.lose_jobs()

    [job] = await world.sweep_at(T0 + QUEUED_FOR + timedelta(seconds=1))
    assert job.comm_id == comm_id and world.store.scans == 1
    await world.sweep_at(T0 + 2 * QUEUED_FOR)
    await world.sweep_at(T0 + 3 * QUEUED_FOR)
    assert world.store.scans == 1

