"""Memory: peak RSS of a worker process dispatching all the jobs of a 1,000- and a 10,000-recipient
message. Flat means the second is about the first: a worker holds one job's recipients at a time.

    python -m bench.memory <connection string> <commId> <recipients>   (the worker side)
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from sms.bootstrap import build
from sms.config import PROJECT_ROOT, Settings
from sms.domain.model import SendJob
from sms.providers import OutgoingSms, SendOutcome, SmsProvider
from sms.wire import SMSSend
from sms.wire.mapping import send_command
from tests.fakes import assembled

from .harness import Row

SIZES = (2_000, 10_000)  # both past one full batch of concurrent jobs, so only the total differs
WORKER_BATCH = 16  # host.json batchSize: jobs one worker process runs at once


class NullProvider(SmsProvider):
    name = "null"

    async def send(self, sms: OutgoingSms) -> SendOutcome:
        return SendOutcome(provider_message_id="null")


async def _dispatch_all(connection: str, comm_id: str, recipients: int) -> None:
    gateway = build(Settings.from_env({"AzureWebJobsStorage": connection}))
    try:
        worker = assembled(gateway.messages, gateway.jobs, NullProvider(), missing_message_wait=0).dispatch
        jobs = SendJob.covering(comm_id, recipients)
        for i in range(0, len(jobs), WORKER_BATCH):
            await asyncio.gather(*(worker.dispatch(job) for job in jobs[i:i + WORKER_BATCH]))
    finally:
        await gateway.close()


async def _accept(connection: str, recipients: int) -> str:
    gateway = build(Settings.from_env({"AzureWebJobsStorage": connection, "SMS_MAX_RECIPIENTS": str(max(SIZES))}))
    try:
        await gateway.ensure_storage()
        request = SMSSend.model_validate({"SMSModel": {"To": [{"PhoneNumber": f"+614{i:08d}"} for i in range(recipients)],
                                                       "MessageBody": "Memory benchmark"}})
        return (await gateway.gateway().use.accept.queue(send_command(request), "3e" * 16)).comm_id
    finally:
        await gateway.close()


def peak_rss_mb(connection: str, recipients: int) -> float:
    comm_id = asyncio.run(_accept(connection, recipients))
    result = subprocess.run([sys.executable, "-m", "bench.memory", connection, comm_id, str(recipients)],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, env=os.environ)
    if result.returncode != 0:
        raise RuntimeError(f"the memory worker failed ({recipients} recipients):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_rss_mb"]


def run(connection: str, sizes: tuple[int, ...] = SIZES) -> dict[int, float]:
    return {size: peak_rss_mb(connection, size) for size in sizes}


def rows(results: dict[int, float]) -> list[Row]:
    small, large = results[min(results)], results[max(results)]
    return [
        *(Row("memory", f"worker peak RSS, {size:,} recipients", mb, "MB") for size, mb in results.items()),
        Row("memory", f"peak RSS {max(results):,} vs {min(results):,}", large / small, "ratio", "flat (<= 1.1)", large / small <= 1.1),
    ]


def _peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM). Not getrusage's ru_maxrss: on Linux that survives
    fork and exec, so a worker started by a large parent would report the parent's size."""
    with open("/proc/self/status") as status:
        kilobytes = next(line for line in status if line.startswith("VmHWM:")).split()[1]
    return int(kilobytes) / 1024


if __name__ == "__main__":
    connection, comm_id, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    asyncio.run(_dispatch_all(connection, comm_id, count))
    print(json.dumps({"peak_rss_mb": _peak_rss_mb()}))
