"""Jobs put by our queue adapter, consumed by the dev host's queue listener with host.json semantics."""
import asyncio

from sms.config import host_json, queue_message_encoding
from sms.dev.host.app import QueueTrigger
from sms.dev.host.queues import QueueListener, QueueSemantics
from sms.domain.model import SendJob
from sms.storage.queues import StorageJobQueue, create_queue, queue_client

JOB = SendJob("8" * 32, 0, 41)


class Recorder:
    def __init__(self, fail_times: int = 0):
        self.bodies: list[bytes] = []
        self.dequeue_counts: list[int] = []
        self.fail_times = fail_times

    async def handle(self, msg):
        self.bodies.append(msg.get_body())
        self.dequeue_counts.append(msg.dequeue_count)
        if len(self.bodies) <= self.fail_times:
            raise RuntimeError("boom")


async def run_listener(queue_service, name, function, semantics, until, timeout=20.0):
    trigger = QueueTrigger("test", name, "AzureWebJobsStorage", "msg", function)
    listener = QueueListener(trigger, queue_service.get_queue_client(name), queue_service.get_queue_client(f"{name}-poison"), semantics)
    task = asyncio.create_task(listener.run())
    try:
        async with asyncio.timeout(timeout):
            while not until():
                await asyncio.sleep(0.05)
    finally:
        listener.stop()
        await task


async def queue_holding_a_job(queue_service, unique_name, delay_seconds: int = 0) -> str:
    """A new queue with JOB put on it by our adapter; returns the queue's name."""
    name = unique_name("jobs")
    jobs = StorageJobQueue(queue_service, name, queue_message_encoding())
    await jobs.create_queue()
    await jobs.put(JOB, delay_seconds=delay_seconds)
    return name


FAST = QueueSemantics(batch_size=4, new_batch_threshold=2, max_polling_interval=0.2, visibility_timeout=0, max_dequeue_count=3)


async def test_jobs_are_encoded_the_way_the_trigger_decodes_them(queue_service, unique_name):
    assert queue_message_encoding() == QueueSemantics.from_host_json(host_json()).message_encoding == "base64"
    name = await queue_holding_a_job(queue_service, unique_name)
    recorder = Recorder()
    await run_listener(queue_service, name, recorder.handle, FAST, until=lambda: recorder.bodies)
    assert SendJob.from_json(recorder.bodies[0]) == JOB


async def test_a_failing_message_is_retried_then_moved_to_the_poison_queue(queue_service, unique_name):
    name = await queue_holding_a_job(queue_service, unique_name)
    recorder = Recorder(fail_times=99)
    poison = queue_client(queue_service, f"{name}-poison", "base64")

    await run_listener(queue_service, name, recorder.handle, FAST, until=lambda: len(recorder.bodies) >= 3)

    assert recorder.dequeue_counts == [1, 2, 3]
    parked = [m async for m in poison.receive_messages()]
    assert [SendJob.from_json(m.content) for m in parked] == [JOB]
    assert await queue_service.get_queue_client(name).peek_messages() == []


async def test_a_message_that_fails_once_succeeds_on_retry_and_is_deleted(queue_service, unique_name):
    name = await queue_holding_a_job(queue_service, unique_name)
    recorder = Recorder(fail_times=1)

    await run_listener(queue_service, name, recorder.handle, FAST, until=lambda: len(recorder.bodies) >= 2)

    assert recorder.dequeue_counts == [1, 2]
    assert await queue_service.get_queue_client(name).peek_messages() == []


async def test_a_delayed_job_is_invisible_until_its_delay_passes(queue_service, unique_name):
    name = await queue_holding_a_job(queue_service, unique_name, delay_seconds=60)
    assert await queue_service.get_queue_client(name).peek_messages() == []
    assert (await queue_service.get_queue_client(name).get_queue_properties()).approximate_message_count == 1


async def test_a_message_that_is_not_base64_goes_to_poison_at_once_without_running(queue_service, unique_name):
    # The host moves it on its first receipt whatever maxDequeueCount is (CreateMessageDecodingFailedHandler),
    # and creates the poison queue if it has to (AddMessageAndCreateIfNotExistsAsync).
    name = unique_name("jobs")
    raw = queue_service.get_queue_client(name)
    await create_queue(raw)
    await raw.send_message("not base64!")
    recorder = Recorder()
    poison = queue_service.get_queue_client(f"{name}-poison")
    parked = []

    async def moved():
        try:
            parked.extend(await poison.peek_messages())
        except Exception:  # not created yet
            pass
        return parked

    listener = QueueListener(QueueTrigger("test", name, "AzureWebJobsStorage", "msg", recorder.handle), raw, poison,
                             QueueSemantics(**{**FAST.__dict__, "max_dequeue_count": 5}))
    task = asyncio.create_task(listener.run())
    try:
        async with asyncio.timeout(20):
            while not await moved():
                await asyncio.sleep(0.05)
    finally:
        listener.stop()
        await task
    assert recorder.bodies == [] and [m.content for m in parked] == ["not base64!"] and parked[0].dequeue_count == 0
    assert await raw.peek_messages() == []


async def test_a_message_dequeued_more_than_max_times_is_parked_without_running(queue_service, unique_name):
    name = await queue_holding_a_job(queue_service, unique_name)
    queue = queue_client(queue_service, name, "base64")
    for _ in range(3):  # three deliveries that never finished (a crashed worker), each taken and let go
        async for message in queue.receive_messages(max_messages=1, visibility_timeout=1):
            await queue.update_message(message, visibility_timeout=0)
    recorder = Recorder()
    poison = queue_client(queue_service, f"{name}-poison", "base64")
    semantics = QueueSemantics(**{**FAST.__dict__, "max_dequeue_count": 2})
    listener = QueueListener(QueueTrigger("test", name, "AzureWebJobsStorage", "msg", recorder.handle),
                             queue_service.get_queue_client(name), queue_service.get_queue_client(f"{name}-poison"), semantics)
    task = asyncio.create_task(listener.run())
    parked = []
    try:
        async with asyncio.timeout(20):
            while not parked:
                parked.extend([m async for m in poison.receive_messages()] if await _exists(poison) else [])
                await asyncio.sleep(0.05)
    finally:
        listener.stop()
        await task
    assert recorder.bodies == []  # dequeue count 4 > 2: moved before the function ran
    assert [SendJob.from_json(m.content) for m in parked] == [JOB]


async def test_a_failing_message_on_a_poison_queue_is_left_to_reappear(queue_service, unique_name):
    name = unique_name("jobs") + "-poison"
    jobs = StorageJobQueue(queue_service, name, "base64")
    await jobs.create_queue()
    await jobs.put(JOB)
    recorder = Recorder(fail_times=99)
    listener = QueueListener(QueueTrigger("parked", name, "AzureWebJobsStorage", "msg", recorder.handle),
                             queue_service.get_queue_client(name), None, FAST)
    task = asyncio.create_task(listener.run())
    try:
        async with asyncio.timeout(20):
            while not recorder.bodies:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # several polls: it is not delivered again, nor moved anywhere
    finally:
        listener.stop()
        await task
    assert recorder.dequeue_counts == [1]
    assert await queue_service.get_queue_client(name).peek_messages() == []  # invisible for the in-flight lease
    assert (await queue_service.get_queue_client(name).get_queue_properties()).approximate_message_count == 1
    assert not await _exists(queue_service.get_queue_client(f"{name}-poison"))


async def _exists(queue) -> bool:
    try:
        await queue.get_queue_properties()
    except Exception:
        return False
    return True


def test_polling_backs_off_from_100_ms_randomised_up_to_the_maximum():
    import random

    from sms.dev.host.queues import PollingBackoff

    backoff = PollingBackoff(2.0, random.Random(1))
    delays = [backoff.next_empty_delay() for _ in range(10)]
    assert delays[0] == 0.1
    for n, delay in enumerate(delays[1:8], start=1):  # 100 ms + (0.8..1.2) x 2^(n-1) x 100 ms
        assert min(0.1 + 0.8 * 2 ** (n - 1) * 0.1, 2.0) <= delay <= min(0.1 + 1.2 * 2 ** (n - 1) * 0.1, 2.0)
    assert delays[-1] == 2.0
    backoff.found_messages()
    assert backoff.next_empty_delay() == 0.1
