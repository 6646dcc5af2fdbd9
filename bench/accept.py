"""Accept path: POST /api/sms/send (one recipient) over HTTP to the dev host, against the raw floor:
the same queue put and Table transaction done directly with the SDK, at the same concurrency.

The dev host runs with its worker functions disabled (AzureWebJobs.<name>.Disabled, as on Azure),
so sending does not compete with accepting; its CPU per accepted request is read from /proc.
"""
from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass

import aiohttp
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueServiceClient

from sms.auth import issue_key
from sms.bootstrap import build
from sms.config import Settings, proxy_lookup_options
from sms.devhost import spawned
from sms.model import utcnow
from sms.storage.queues import queue_client

from .harness import Row, Run, cpu_seconds, load

LICENSEE = "be" * 16
BODY = json.dumps({"smsModel": {"to": [{"name": "Sam", "phoneNumber": "+61412345678"}], "messageBody": "Benchmark: your appointment is at 10am"}})
# Jasmin (open-source Python SMS gateway) spends about 1.1 ms of CPU per accepted HTTP /send here.
JASMIN_CPU_MS = 1.1


@dataclass
class Level:
    concurrency: int
    gateway: Run
    raw: Run
    host_cpu_ms: float  # the dev host's CPU per accepted request at this concurrency


async def _raw_floor(connection: str, requests: int, concurrency: int) -> Run:
    """What any gateway must do per request: one queue put and one two-entity transaction, with the
    SDK's own calls and the same client options as the gateway's, so the ratio measures code."""
    options = proxy_lookup_options()
    async with TableServiceClient.from_connection_string(connection, **options) as tables, \
            QueueServiceClient.from_connection_string(connection, **options) as queues:
        table = tables.get_table_client("BenchRaw")
        await _ignore_exists(table.create_table())
        queue = queue_client(queues, "bench-raw", "base64")
        await _ignore_exists(queue.create_queue())

        async def call(i: int) -> None:
            comm_id = uuid.uuid4().hex
            now = utcnow()
            await queue.send_message(json.dumps({"commId": comm_id, "first": 0, "last": 0}))
            await table.submit_transaction([
                ("create", {"PartitionKey": comm_id, "RowKey": "r000000", "RecipientId": uuid.uuid4().hex,
                            "PhoneNumber": "+61412345678", "Name": "Sam", "Status": "queued", "Attempts": 0,
                            "CreatedAt": now, "UpdatedAt": now}),
                ("create", {"PartitionKey": comm_id, "RowKey": "message", "LicenseeId": LICENSEE,
                            "Body": "Benchmark: your appointment is at 10am", "RecipientCount": 1, "Encoding": "GSM-7",
                            "Segments": 1, "CreatedAt": now}),
            ])

        return await load(requests, concurrency, call)


async def _ignore_exists(creating) -> None:
    try:
        await creating
    except Exception:  # already there
        pass


async def run(connection: str, requests: int, levels: tuple[int, ...]) -> tuple[list[Level], float]:
    """Each level's gateway and raw runs (interleaved, so drift hits both alike) and CPU ms per request."""
    gateway = build(Settings.from_env({"AzureWebJobsStorage": connection}))
    await gateway.ensure_storage()
    key = await issue_key(gateway.keys, LICENSEE, "bench")
    await gateway.close()

    env = {"AzureWebJobsStorage": connection, "SMS_LOG_LEVEL": "WARNING", "SMS_REQUESTS_PER_MINUTE": "0",
           "SMS_API_KEY_CACHE_SECONDS": "3600", "AzureWebJobs.send_job.Disabled": "true",
           "AzureWebJobs.send_job_poison.Disabled": "true", "AzureWebJobs.sweep_left_behind.Disabled": "true"}
    results: list[Level] = []
    with spawned({**os.environ, **env}) as host:
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        connector = aiohttp.TCPConnector(limit=max(levels) + 4)
        async with aiohttp.ClientSession(connector=connector) as http:
            url = f"{host.base_url}/api/sms/send"

            async def post(i: int) -> None:
                async with http.post(url, data=BODY, headers=headers) as response:
                    if response.status != 200:
                        raise RuntimeError(f"gateway answered {response.status}: {await response.text()}")
                    await response.read()

            await load(min(50, requests), 4, post)  # warm up: connections, caches, first imports
            await _raw_floor(connection, min(50, requests), 4)
            for concurrency in levels:
                raw = await _raw_floor(connection, requests, concurrency)
                cpu_before = cpu_seconds(host.process.pid)
                gateway_run = await load(requests, concurrency, post)
                level_cpu_ms = (cpu_seconds(host.process.pid) - cpu_before) / requests * 1000
                results.append(Level(concurrency, gateway_run, raw, level_cpu_ms))
            cpu_ms = sum(level.host_cpu_ms for level in results) / len(results)
    return results, cpu_ms


def rows(levels: list[Level], cpu_ms: float) -> list[Row]:
    out = []
    for level in levels:
        c = level.concurrency
        ratio = level.gateway.per_second / level.raw.per_second
        out += [
            Row("accept", f"gateway req/s @{c}", level.gateway.per_second, "req/s"),
            Row("accept", f"raw floor req/s @{c}", level.raw.per_second, "req/s"),
            Row("accept", f"gateway/raw @{c}", ratio, "ratio", ">= 0.8", ratio >= 0.8),
            Row("accept", f"p50 / p99 @{c}", level.gateway.p50_ms, f"ms (p99 {level.gateway.p99_ms:.1f})"),
            Row("accept", f"host CPU per request @{c}", level.host_cpu_ms, "ms"),
        ]
    out.append(Row("accept", "host CPU per request, all levels", cpu_ms, "ms", f"< {JASMIN_CPU_MS} (Jasmin)", cpu_ms < JASMIN_CPU_MS))
    return out
