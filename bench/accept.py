"""Accept path: POST /api/sms/send (one recipient) over HTTP to the dev host, beside two baselines
measured in the same run, at the same concurrency:

- the bare floor (bench/bare_floor.py): a minimal aiohttp server process making the same queue put
  and two-entity transaction per request, signed by hand over one aiohttp session. The dev host's
  CPU per request is set beside the bare floor's; both are read from /proc and both processes are
  loaded by the same HTTP client.
- the raw SDK floor: the same two calls made directly through the SDKs, in this process, for the
  throughput ratio.

The dev host runs with its worker functions disabled (AzureWebJobs.<name>.Disabled, as on Azure),
so sending does not compete with accepting. Each level's requests are split into rounds in which
the three take turns, in a rotating order, so the machine's drift hits all three alike.
"""
from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass

import aiohttp
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueServiceClient

from sms.bootstrap import build
from sms.config import Settings, proxy_lookup_options
from sms.dev.host import spawned
from sms.domain.model import utcnow
from sms.storage.queues import queue_client
from sms.usecases.auth import issue_key

from . import bare_floor
from .harness import Row, Run, combine, cpu_seconds, load

LICENSEE = bare_floor.LICENSEE
BODY = json.dumps({"smsModel": {"to": [{"name": "Sam", "phoneNumber": "+61412345678"}],
                                "messageBody": "Benchmark: your appointment is at 10am"}})
# Issue 17's goal for the gateway's CPU per accepted request against the bare floor's. Shown beside
# the figure for information; nothing here claims it is met.
ISSUE_17_TARGET = 1.2


@dataclass
class Level:
    concurrency: int
    gateway: Run
    bare: Run
    raw: Run
    gateway_cpu_ms: float  # the dev host's CPU per accepted request at this concurrency
    bare_cpu_ms: float  # the bare floor's

    @property
    def cpu_ratio(self) -> float:
        return self.gateway_cpu_ms / self.bare_cpu_ms if self.bare_cpu_ms else float("inf")


class RawFloor:
    """What any gateway must do per request: one queue put and one two-entity transaction, with the
    SDK's own calls and the same client options as the gateway's, so the ratio measures code."""

    def __init__(self, connection: str):
        options = proxy_lookup_options()
        self._tables = TableServiceClient.from_connection_string(connection, **options)
        self._queues = QueueServiceClient.from_connection_string(connection, **options)
        self._table = self._tables.get_table_client("BenchRaw")
        self._queue = queue_client(self._queues, "bench-raw", "base64")

    async def __aenter__(self) -> "RawFloor":
        await _ignore_exists(self._table.create_table())
        await _ignore_exists(self._queue.create_queue())
        return self

    async def __aexit__(self, *exc) -> None:
        await self._tables.close()
        await self._queues.close()

    async def call(self, i: int) -> None:
        comm_id = uuid.uuid4().hex
        now = utcnow()
        await self._queue.send_message(json.dumps({"commId": comm_id, "first": 0, "last": 0}))
        await self._table.submit_transaction([
            ("create", {"PartitionKey": comm_id, "RowKey": "r000000", "RecipientId": uuid.uuid4().hex,
                        "PhoneNumber": "+61412345678", "Name": "Sam", "Status": "queued", "Attempts": 0,
                        "CreatedAt": now, "UpdatedAt": now}),
            ("create", {"PartitionKey": comm_id, "RowKey": "message", "LicenseeId": LICENSEE,
                        "Body": "Benchmark: your appointment is at 10am", "RecipientCount": 1, "Encoding": "GSM-7",
                        "Segments": 1, "CreatedAt": now}),
        ])


async def _ignore_exists(creating) -> None:
    try:
        await creating
    except Exception:  # already there
        pass


async def run(connection: str, requests: int, levels: tuple[int, ...], rounds: int = 4) -> list[Level]:
    """Each level: `requests` to the gateway, to the bare floor and through the raw floor, in `rounds`
    turns each; CPU per request of the two server processes from /proc."""
    gateway = build(Settings.from_env({"AzureWebJobsStorage": connection}))
    await gateway.ensure_storage()
    key = await issue_key(gateway.keys, LICENSEE, "bench")
    await gateway.close()
    await bare_floor.ensure_storage(connection)

    env = {"AzureWebJobsStorage": connection, "SMS_LOG_LEVEL": "WARNING", "SMS_REQUESTS_PER_MINUTE": "0",
           "SMS_API_KEY_CACHE_SECONDS": "3600", "AzureWebJobs.send_job.Disabled": "true",
           "AzureWebJobs.send_job_poison.Disabled": "true", "AzureWebJobs.sweep_left_behind.Disabled": "true",
           "AzureWebJobs.accept_job.Disabled": "true", "AzureWebJobs.accept_job_poison.Disabled": "true",
           # The webhook queue's listeners poll too: their CPU is not accepting's.
           "AzureWebJobs.deliver_webhooks.Disabled": "true", "AzureWebJobs.deliver_webhooks_poison.Disabled": "true"}
    results: list[Level] = []
    with spawned({**os.environ, **env}) as host, bare_floor.spawned(connection) as bare:
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        connector = aiohttp.TCPConnector(limit=max(levels) + 4)
        async with aiohttp.ClientSession(connector=connector) as http, RawFloor(connection) as raw:

            def poster(base_url: str):
                url = f"{base_url}/api/sms/send"

                async def post(i: int) -> None:
                    async with http.post(url, data=BODY, headers=headers) as response:
                        if response.status != 200:
                            raise RuntimeError(f"{base_url} answered {response.status}: {await response.text()}")
                        await response.read()

                return post

            servers = {"gateway": (poster(host.base_url), host.process.pid), "bare": (poster(bare.base_url), bare.process.pid)}
            for post, _ in servers.values():  # warm up: connections, caches, first imports
                await load(min(50, requests), 4, post)
            await load(min(50, requests), 4, raw.call)

            order = ["gateway", "bare", "raw"]
            for concurrency in levels:
                runs: dict[str, list[Run]] = {name: [] for name in order}
                cpu = {"gateway": 0.0, "bare": 0.0}
                for turn in range(rounds):
                    share = requests // rounds + (1 if turn < requests % rounds else 0)
                    for name in order[turn % 3:] + order[:turn % 3]:
                        if name == "raw":
                            runs[name].append(await load(share, concurrency, raw.call))
                            continue
                        post, pid = servers[name]
                        before = cpu_seconds(pid)
                        runs[name].append(await load(share, concurrency, post))
                        cpu[name] += cpu_seconds(pid) - before
                results.append(Level(
                    concurrency, combine(runs["gateway"]), combine(runs["bare"]), combine(runs["raw"]),
                    cpu["gateway"] / requests * 1000, cpu["bare"] / requests * 1000,
                ))
    return results


def rows(levels: list[Level]) -> list[Row]:
    out = []
    target = f"<= {ISSUE_17_TARGET} (issue 17 target)"
    for level in levels:
        c = level.concurrency
        ratio = level.gateway.per_second / level.raw.per_second
        out += [
            Row("accept", f"gateway req/s @{c}", level.gateway.per_second, "req/s"),
            Row("accept", f"bare floor req/s @{c}", level.bare.per_second, "req/s"),
            Row("accept", f"raw SDK floor req/s @{c}", level.raw.per_second, "req/s"),
            Row("accept", f"gateway/raw SDK floor req/s @{c}", ratio, "ratio", ">= 0.8", ratio >= 0.8),
            Row("accept", f"p50 / p99 @{c}", level.gateway.p50_ms, f"ms (p99 {level.gateway.p99_ms:.1f})"),
            Row("accept", f"gateway CPU per request @{c}", level.gateway_cpu_ms, "ms"),
            Row("accept", f"bare floor CPU per request @{c}", level.bare_cpu_ms, "ms"),
            Row("accept", f"gateway/bare floor CPU @{c}", level.cpu_ratio, "ratio", target),
        ]
    gateway_ms = sum(level.gateway_cpu_ms for level in levels) / len(levels)
    bare_ms = sum(level.bare_cpu_ms for level in levels) / len(levels)
    out += [
        Row("accept", "gateway CPU per request, all levels", gateway_ms, "ms"),
        Row("accept", "bare floor CPU per request, all levels", bare_ms, "ms"),
        Row("accept", "gateway/bare floor CPU, all levels", gateway_ms / bare_ms if bare_ms else float("inf"), "ratio", target),
    ]
    return out
