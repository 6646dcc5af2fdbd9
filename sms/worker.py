"""Queue and timer blueprint: send jobs, parked (poison) jobs and the sweeper -> the service."""
from __future__ import annotations

import logging

import azure.functions as func

from .bootstrap import gateway
from .config import SEND_QUEUE, SWEEP_SCHEDULE, max_dequeue_count
from .model import SendJob

log = logging.getLogger("sms.worker")

bp = func.Blueprint()


@bp.function_name("send_job")
@bp.queue_trigger(arg_name="msg", queue_name=SEND_QUEUE, connection="AzureWebJobsStorage")
async def send_job(msg: func.QueueMessage) -> None:
    # A malformed job raises: the host retries it, then parks it on the poison queue for a person to see.
    job = SendJob.from_json(msg.get_body())
    outcomes = await (await gateway()).sms.dispatch(job)
    log.info("job %s[%d..%d]: %d recipient(s) handled", job.comm_id, job.first, job.last, len(outcomes))


@bp.function_name("send_job_poison")
@bp.queue_trigger(arg_name="msg", queue_name=f"{SEND_QUEUE}-poison", connection="AzureWebJobsStorage")
async def send_job_poison(msg: func.QueueMessage) -> None:
    """The host parks a job here after maxDequeueCount failed deliveries: nothing may wait forever."""
    try:
        job = SendJob.from_json(msg.get_body())
    except ValueError:
        log.error("parked message %s is not a send job; dropped: %r", msg.id, msg.get_body()[:200])
        return
    failed = await (await gateway()).sms.give_up(job, f"Gave up after {max_dequeue_count()} failed attempts to run its send job")
    log.error("job %s[%d..%d] parked: %d recipient(s) failed", job.comm_id, job.first, job.last, len(failed))


@bp.function_name("sweep_left_behind")
@bp.timer_trigger(arg_name="timer", schedule=SWEEP_SCHEDULE, run_on_startup=False)
async def sweep_left_behind(timer: func.TimerRequest) -> None:
    """A safety net: re-queue recipients left queued with no job, or sending past their lease; move
    opt-outs a process of the version before wrote in the old layout during an upgrade."""
    gw = await gateway()
    await gw.sms.sweep()
    await gw.move_legacy_opt_outs()
