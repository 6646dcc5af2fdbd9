"""Queue blueprint: a send job from the queue -> the service's dispatch."""
from __future__ import annotations

import logging

import azure.functions as func

from .bootstrap import gateway
from .config import SEND_QUEUE
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
