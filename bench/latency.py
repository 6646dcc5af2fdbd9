"""Accept to provider (issue 30's measures): how long after the accept's answer each path's message reaches the
provider, both paths in the same run, interleaved.

One dev host, its worker functions running as the Functions host runs them (its queue listeners poll as the
Storage Queues extension does: host.json's batch size and maxPollingInterval), the console provider writing an
outbox line per SMS with the instant it was handed over, and the one-call accept on (bench/accept.py's
ONE_CALL_ENV). One-recipient messages are posted one at a time at a modest, steady rate, alternating: one without
options (the one-call path: its job on sms-accept, the worker writes the rows and sends) and one with
createCommunicationReferencesImmediately true (today's two-call path, as with the flag off: the same code once the
accept has chosen it). One host for both, so one worker and one pair of listeners serve both paths alike.

The clock: the wall clock of this machine, read by this process when the 200 has arrived, and by the dev host's
console provider as it sends (its outbox line's `at`): both processes read the same clock.
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import datetime
from pathlib import Path

import aiohttp

from sms.bootstrap import build
from sms.config import Settings
from sms.dev.host import spawned
from sms.usecases.auth import issue_key

from .accept import ONE_CALL_ENV
from .harness import Row
from .scheduled import percentile

LICENSEE = "1a" * 16
RATE = 20  # accepts a second, both paths together: modest, so the figure is a message's way, not a queue's backlog
FULL_SIZE, SMOKE_SIZE = 300, 10  # messages a path
PATHS = ("two-call", "one-call")


async def run(connection: str, messages: int, outbox: Path) -> dict[str, list[float]]:
    """path -> seconds from each accept's 200 to its provider call, sorted."""
    gateway = build(Settings.from_env({"AzureWebJobsStorage": connection}))
    await gateway.ensure_storage()
    key = await issue_key(gateway.keys, LICENSEE, "bench")
    await gateway.close()
    env = {**os.environ, "AzureWebJobsStorage": connection, "SMS_PROVIDER": "console", "SMS_CONSOLE_OUTBOX": str(outbox),
           "SMS_LOG_LEVEL": "WARNING", "SMS_REQUESTS_PER_MINUTE": "0", **ONE_CALL_ENV}
    answered: dict[str, float] = {}
    comm_ids: dict[str, str] = {}
    with spawned(env) as host:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as session:
            started = time.monotonic()
            for n in range(2 * messages):
                path = PATHS[n % 2]
                body = f"lat-{path}-{n // 2}"
                request = {"smsModel": {"to": [{"phoneNumber": f"+6144{n:07d}"}], "messageBody": body}}
                if path == "two-call":
                    request["createCommunicationReferencesImmediately"] = True  # SMSSend's, beside smsModel
                await asyncio.sleep(max(0.0, started + n / RATE - time.monotonic()))
                async with session.post(f"{host.base_url}/api/sms/send", json=request) as response:
                    if response.status != 200:
                        raise RuntimeError(f"accept answered {response.status}: {await response.text()}")
                    comm_ids[body] = (await response.json())["commId"]
                    answered[body] = time.time()
            deadline = time.monotonic() + 60 + messages / 5
            while time.monotonic() < deadline:
                lines = outbox.read_text().splitlines() if outbox.exists() else []
                if len(lines) >= 2 * messages:
                    break
                await asyncio.sleep(0.2)
            else:
                raise RuntimeError(f"only {len(lines)} of {2 * messages} messages reached the provider")
    await _paths_taken(connection, comm_ids)
    found: dict[str, list[float]] = {path: [] for path in PATHS}
    for line in lines:
        sent = json.loads(line)
        path = sent["body"].rsplit("-", 1)[0].removeprefix("lat-")
        found[path].append(datetime.fromisoformat(sent["at"]).timestamp() - answered[sent["body"]])
    return {path: sorted(seconds) for path, seconds in found.items()}


async def _paths_taken(connection: str, comm_ids: dict[str, str]) -> None:
    """Each message went the way it is measured for: a one-call message's rows were written by the worker, with its
    gate row (sms/domain/jobs.py); today's accept writes none. Raises otherwise. Read after the measuring."""
    adapters = build(Settings.from_env({"AzureWebJobsStorage": connection}))
    try:
        for body, comm_id in comm_ids.items():
            one_call = (await adapters.messages.gate(comm_id)) is not None
            if one_call != body.startswith("lat-one-call-"):
                raise RuntimeError(f"{body} (commId {comm_id}) did not take the path it is measured for")
    finally:
        await adapters.close()


def rows(found: dict[str, list[float]]) -> list[Row]:
    clock = "ms (wall clock: the 200's arrival here to the console provider's send in the dev host)"
    out = []
    for path in PATHS:
        out += [Row("latency", f"accept to provider, {path}: p50", percentile(found[path], 50) * 1000, clock),
                Row("latency", f"accept to provider, {path}: p99", percentile(found[path], 99) * 1000, clock)]
    for p in (50, 99):  # a ratio, not a difference: either may be the larger, and every row's figure is >= 0
        ratio = percentile(found["one-call"], p) / max(percentile(found["two-call"], p), 1e-6)
        out.append(Row("latency", f"accept to provider, one-call/two-call: p{p}", ratio, "ratio"))
    return out
