"""Scheduled sends (issue 16): how late they go out against their sendAt when thousands fall due at
once, and what one costs in storage.

Lateness: the dev host (its queue listener polls as the Functions host does: host.json's batch size,
new-batch threshold and maximum polling interval) with the console provider writing an outbox line per
SMS, with the instant it was handed over. N one-recipient messages are posted over HTTP, every one with
the same sendAt, far enough ahead for all to be accepted first; each line's instant less the sendAt is
that message's lateness. One worker process sends them all, so the tail is how long it takes one
process to work through N jobs due at the same instant; on Azure, more instances share them.

Storage cost: in this process, through the real adapters, counting every storage response: accepting a
scheduled message (job put, message write, its ledger entry), a hop (the job coming back early), and
the send at its time.
"""
from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp

from sms.bootstrap import build
from sms.config import Settings
from sms.dev.host import spawned
from sms.domain.commands import Party, SendMessage
from sms.domain.model import SendJob, utcnow
from sms.providers.console import ConsoleProvider
from sms.usecases.auth import issue_key
from tests.fakes import assembled

from .harness import Row, load

LICENSEE = "5c" * 16
CONCURRENCY = 16
DUE_AT_ONCE = 2000  # "a few thousand due at once" (issue 16)


async def lateness(connection: str, messages: int, outbox: Path) -> list[float]:
    """Seconds each message went out after its sendAt, sorted."""
    gateway = build(Settings.from_env({"AzureWebJobsStorage": connection}))
    await gateway.ensure_storage()
    key = await issue_key(gateway.keys, LICENSEE, "bench")
    await gateway.close()
    env = {**os.environ, "AzureWebJobsStorage": connection, "SMS_PROVIDER": "console", "SMS_CONSOLE_OUTBOX": str(outbox),
           "SMS_LOG_LEVEL": "WARNING", "SMS_REQUESTS_PER_MINUTE": "1000000"}
    with spawned(env) as host:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as session:
            # Long enough ahead for every message to be accepted first: about 80 a second here on a busy
            # day (2,000 took 24-25 s on 2026-11-25, over a lead that allowed 100 a second), so allow 50.
            send_at = utcnow().replace(microsecond=0) + timedelta(seconds=4 + messages / 50)

            async def post(i: int) -> None:
                body = {"SMSModel": {"To": [{"PhoneNumber": f"+6141{i:07d}"}], "MessageBody": f"scheduled {i}",
                                     "SendAt": send_at.isoformat()}}
                async with session.post(f"{host.base_url}/api/sms/send", json=body) as response:
                    if response.status != 200:
                        raise RuntimeError(f"accept answered {response.status}: {await response.text()}")

            await load(messages, CONCURRENCY, post)
            if utcnow() >= send_at:
                raise RuntimeError("accepting took longer than the lead: the figures would mix accept and send")
            deadline = time.monotonic() + (send_at - utcnow()).total_seconds() + 120 + messages / 10
            while time.monotonic() < deadline:
                lines = outbox.read_text().splitlines() if outbox.exists() else []
                if len(lines) >= messages:
                    break
                await asyncio.sleep(0.5)
            else:
                raise RuntimeError(f"only {len(lines)} of {messages} scheduled messages went out")
    sent = [json.loads(line) for line in lines]
    return sorted((datetime.fromisoformat(s["at"]) - send_at).total_seconds() for s in sent)


async def storage_cost(connection: str, messages: int) -> dict[str, float]:
    """Storage round trips per scheduled message: accepting it, one hop, and sending it at its time."""
    trips = 0

    def count(_response) -> None:
        nonlocal trips
        trips += 1

    gateway = build(Settings.from_env({"AzureWebJobsStorage": connection}), on_response=count)
    provider = ConsoleProvider()
    now = utcnow()
    clock = [now]
    use = assembled(gateway.messages, gateway.jobs, provider, ledger=gateway.ledger, licensees=gateway.licensees,
                   missing_message_wait=0, clock=lambda: clock[0])
    try:
        await gateway.ensure_storage()
        send_at = now + timedelta(days=10)
        trips = 0
        comm_ids = [(await use.accept.queue(SendMessage(to=(Party(phone_number=f"+6142{i:07d}"),), body="Scheduled",
                                                        send_at=send_at.isoformat()), LICENSEE)).comm_id for i in range(messages)]
        accepted = trips / messages
        trips = 0
        for comm_id in comm_ids:  # the first hop comes back a week early and is put back
            await use.dispatch.dispatch(SendJob(comm_id, 0, 0))
        hop = trips / messages
        clock[0] = send_at
        trips = 0
        for comm_id in comm_ids:
            await use.dispatch.dispatch(SendJob(comm_id, 0, 0))
        sent = trips / messages
        return {"accept": accepted, "hop": hop, "send": sent}
    finally:
        await gateway.close()


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1] if len(values) > 1 else values[0]


def rows(late: list[float], cost: dict[str, float], messages: int) -> list[Row]:
    return [
        Row("scheduled", f"{messages:,} due at once: late by, p50", percentile(late, 50), "s"),
        Row("scheduled", f"{messages:,} due at once: late by, p99", percentile(late, 99), "s"),
        Row("scheduled", "sent before its time", sum(1 for t in late if t < 0), "messages", "0", all(t >= 0 for t in late)),
        Row("scheduled", "storage round trips: accept a scheduled message", cost["accept"], "per message"),
        Row("scheduled", "storage round trips: each 7-day hop", cost["hop"], "per message"),
        Row("scheduled", "storage round trips: send it at its time", cost["send"], "per message"),
    ]
