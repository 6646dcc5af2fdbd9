"""Queue and timer blueprint: send jobs, webhook deliveries, parked (poison) messages and the timers -> the use cases."""
from __future__ import annotations

import logging
from collections import Counter
from typing import Awaitable, Callable

import azure.functions as func

from ..config import ACCEPT_QUEUE, RETENTION_SCHEDULE, SEND_QUEUE, SWEEP_SCHEDULE, USAGE_ROLL_UP_SCHEDULE, WEBHOOK_QUEUE, max_dequeue_count
from ..domain.events import Delivery
from ..domain.jobs import WholeJob, parse_job
from ..domain.model import SendJob, utcnow
from ..gateway import Gateway

log = logging.getLogger("sms.worker")


def blueprint(gateway: Callable[[], Awaitable[Gateway]]) -> func.Blueprint:
    """The queue and timer functions, each working over the Gateway `gateway` gives (built on first use)."""
    bp = func.Blueprint()

    async def give_up_parked(msg: func.QueueMessage, parse: Callable[[bytes], SendJob | WholeJob]) -> None:
        """A job the host parked on a poison queue: what it left waiting ends failed, with the reason. A message that
        is no job is dropped, logged; an unknown version raises (UnknownJobVersion is no ValueError) and stays."""
        try:
            job = parse(msg.get_body())
        except ValueError:
            log.error("parked message %s is not a send job; dropped: %r", msg.id, msg.get_body()[:200])
            return
        reason = f"Gave up after {max_dequeue_count()} failed attempts to run its send job"
        dispatch = (await gateway()).use.dispatch
        if isinstance(job, WholeJob):
            rows = await dispatch.give_up_whole(job, reason)
            ended = Counter(r.status.value for r in rows)
            log.error("job %s parked: its rows stand %s", job.message.comm_id, dict(sorted(ended.items())))
        else:
            failed = await dispatch.give_up(job, reason)
            log.error("job %s[%d..%d] parked: %d recipient(s) failed", job.comm_id, job.first, job.last, len(failed))

    @bp.function_name("send_job")
    @bp.queue_trigger(arg_name="msg", queue_name=SEND_QUEUE, connection="AzureWebJobsStorage")
    async def send_job(msg: func.QueueMessage) -> None:
        # A malformed job raises: the host retries it, then parks it on the poison queue for a person to see.
        job = SendJob.from_json(msg.get_body())
        outcomes = await (await gateway()).use.dispatch.dispatch(job)
        log.info("job %s[%d..%d]: %d recipient(s) handled", job.comm_id, job.first, job.last, len(outcomes))

    @bp.function_name("send_job_poison")
    @bp.queue_trigger(arg_name="msg", queue_name=f"{SEND_QUEUE}-poison", connection="AzureWebJobsStorage")
    async def send_job_poison(msg: func.QueueMessage) -> None:
        """The host parks a job here after maxDequeueCount failed deliveries: nothing may wait forever."""
        await give_up_parked(msg, SendJob.from_json)

    @bp.function_name("accept_job")
    @bp.queue_trigger(arg_name="msg", queue_name=ACCEPT_QUEUE, connection="AzureWebJobsStorage")
    async def accept_job(msg: func.QueueMessage) -> None:
        """A one-call accept's job (issue 30): the message's rows written from it, then sent as a send job is. A
        malformed job, or one of a version this code does not know, raises: retried, then parked."""
        job = parse_job(msg.get_body())
        dispatch = (await gateway()).use.dispatch
        outcomes = await (dispatch.dispatch_whole(job) if isinstance(job, WholeJob) else dispatch.dispatch(job))
        ids = job.ids() if isinstance(job, WholeJob) else job
        log.info("job %s[%d..%d]: %d recipient(s) handled", ids.comm_id, ids.first, ids.last, len(outcomes))

    @bp.function_name("accept_job_poison")
    @bp.queue_trigger(arg_name="msg", queue_name=f"{ACCEPT_QUEUE}-poison", connection="AzureWebJobsStorage")
    async def accept_job_poison(msg: func.QueueMessage) -> None:
        """A one-call accept's job the host parked after maxDequeueCount failed deliveries. It may be the message's
        only copy: its rows are written with every recipient failed (cancelled, after a cancel), so nothing waits
        for good and the client reads why. One of an unknown version raises (UnknownJobVersion is no ValueError)
        and stays, for the release that knows it."""
        await give_up_parked(msg, parse_job)

    @bp.function_name("deliver_webhooks")
    @bp.queue_trigger(arg_name="msg", queue_name=WEBHOOK_QUEUE, connection="AzureWebJobsStorage")
    async def deliver_webhooks(msg: func.QueueMessage) -> None:
        """One batch of events to one endpoint. A raise (storage unreachable) has the host run it again,
        which may send an event twice: receivers dedupe by webhook-id."""
        delivery = Delivery.from_json(msg.get_body())
        use = (await gateway()).use
        await use.delivery.deliver(delivery)

    @bp.function_name("deliver_webhooks_poison")
    @bp.queue_trigger(arg_name="msg", queue_name=f"{WEBHOOK_QUEUE}-poison", connection="AzureWebJobsStorage")
    async def deliver_webhooks_poison(msg: func.QueueMessage) -> None:
        """A delivery that kept raising (storage down for a while): put back later, not lost."""
        try:
            delivery = Delivery.from_json(msg.get_body())
        except ValueError:
            log.error("parked message %s is not a webhook delivery; dropped: %r", msg.id, msg.get_body()[:200])
            return
        use = (await gateway()).use
        if use.delivery is not None:
            await use.delivery.parked(delivery)

    @bp.function_name("sweep_left_behind")
    @bp.timer_trigger(arg_name="timer", schedule=SWEEP_SCHEDULE, run_on_startup=False)
    async def sweep_left_behind(timer: func.TimerRequest) -> None:
        """A safety net: re-queue recipients left queued with no job, or sending past their lease."""
        await (await gateway()).use.sweep.run()

    @bp.function_name("retention")
    @bp.timer_trigger(arg_name="timer", schedule=RETENTION_SCHEDULE, run_on_startup=False)
    async def retention(timer: func.TimerRequest) -> None:
        """Delete what is past its keeping (sms/usecases/retention.py): messages older than SMS_RETENTION_DAYS,
        a bounded batch a run, with their reply routes; unlinked inbound SMS, webhook events and delivery
        logs as old; expired Idempotency-Key records. It logs how many."""
        use = (await gateway()).use
        if use.retention is not None:
            await use.retention.run(utcnow())

    @bp.function_name("usage_roll_up")
    @bp.timer_trigger(arg_name="timer", schedule=USAGE_ROLL_UP_SCHEDULE, run_on_startup=False)
    async def usage_roll_up(timer: func.TimerRequest) -> None:
        """Add up the licensees' days that are due: ended and not counted yet, or counted again for late
        receipts (GET /api/usage reads the totals)."""
        run = await (await gateway()).use.usage.roll_up()
        left = f"; {run.left} noted day(s) left for the next run" if run.left else ""
        log.info("usage: rolled up %d licensee-day(s)%s", run.counted, left)

    return bp
