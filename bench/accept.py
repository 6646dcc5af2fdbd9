"""Accept path: POST /api/sms/send (one recipient) over HTTP to the dev host, on both of its paths, beside
the floors measured in the same run, at the same concurrency:

- the gateway, two-call: a dev host as configured by default (SMS_ACCEPT_ONE_CALL off): the job put and
  the message's transaction, as before issue 30.
- the gateway, one-call: a second dev host with SMS_COMMID_KEY (a fixed bench key) and SMS_ACCEPT_ONE_CALL
  on: the same BODY (one recipient, no Idempotency-Key) takes issue 30's one-call accept, its job put on
  sms-accept alone. Checked once a run (`_paths_taken`): a host that silently took the other path would
  otherwise yield a figure for the wrong thing.
- the bare floors (bench/bare_floor.py), one process: the two-call floor (the same queue put and
  two-entity transaction per request) and the one-put floor (the one-call accept's put alone), signed by
  hand over one aiohttp session. The dev hosts' CPU per request is set beside theirs; all are read from
  /proc and all the servers are loaded by the same HTTP client.
- the raw SDK floor: the two-call floor's calls made directly through the SDKs, in this process, for the
  throughput ratio.

The dev hosts run with their worker functions disabled (AzureWebJobs.<name>.Disabled, as on Azure),
so sending does not compete with accepting (and nothing drains the queues: the path check counts on it).
Each level's requests are split into rounds in which the five take turns, in a rotating order, so the
machine's drift hits all alike.
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
from sms.config import ACCEPT_QUEUE, SEND_QUEUE, Settings, proxy_lookup_options
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


# Issue 30's goal for the one-call gateway's CPU per accepted request against the one-put floor's; shown, not claimed.
ISSUE_30_TARGET = 1.2
# The one-call host's commId key: fixed, so runs are alike; a bench key, never a deployment's (at least 32 characters:
# sms/config.py MIN_COMMID_KEY_CHARS).
BENCH_COMMID_KEY = "bench-only-commid-key-0123456789abcdef"
ONE_CALL_ENV = {"SMS_COMMID_KEY": BENCH_COMMID_KEY, "SMS_ACCEPT_ONE_CALL": "true"}
TWO_CALL_ENV = {"SMS_COMMID_KEY": "", "SMS_ACCEPT_ONE_CALL": "false"}  # as by default, whatever this shell holds


@dataclass
class Level:
    concurrency: int
    gateway: Run  # the two-call path (the default host)
    bare: Run  # the two-call floor
    raw: Run
    gateway_cpu_ms: float  # the two-call host's CPU per accepted request at this concurrency
    bare_cpu_ms: float  # the two-call floor's
    one_call: Run  # the one-call host
    one_put: Run  # the one-put floor
    one_call_cpu_ms: float
    one_put_cpu_ms: float

    @property
    def cpu_ratio(self) -> float:
        return _ratio(self.gateway_cpu_ms, self.bare_cpu_ms)

    @property
    def one_call_cpu_ratio(self) -> float:
        return _ratio(self.one_call_cpu_ms, self.one_put_cpu_ms)


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


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
    """Each level: `requests` to each dev host, to each bare floor and through the raw floor, in `rounds`
    turns each; CPU per request of the server processes from /proc."""
    gateway = build(Settings.from_env({"AzureWebJobsStorage": connection}))
    await gateway.ensure_storage()
    key = await issue_key(gateway.keys, LICENSEE, "bench")
    await gateway.close()
    await bare_floor.ensure_storage(connection)

    env = {**os.environ, "AzureWebJobsStorage": connection, "SMS_LOG_LEVEL": "WARNING", "SMS_REQUESTS_PER_MINUTE": "0",
           "SMS_API_KEY_CACHE_SECONDS": "3600", "AzureWebJobs.send_job.Disabled": "true",
           "AzureWebJobs.send_job_poison.Disabled": "true", "AzureWebJobs.sweep_left_behind.Disabled": "true",
           "AzureWebJobs.accept_job.Disabled": "true", "AzureWebJobs.accept_job_poison.Disabled": "true",
           # The webhook queue's listeners poll too: their CPU is not accepting's.
           "AzureWebJobs.deliver_webhooks.Disabled": "true", "AzureWebJobs.deliver_webhooks_poison.Disabled": "true"}
    results: list[Level] = []
    with spawned({**env, **TWO_CALL_ENV}) as host, spawned({**env, **ONE_CALL_ENV}) as one_call_host, \
            bare_floor.spawned(connection) as bare:
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

            servers = {"gateway": (poster(host.base_url), host.process.pid),
                       "one-call": (poster(one_call_host.base_url), one_call_host.process.pid),
                       "bare": (poster(bare.base_url), bare.process.pid),
                       "one-put": (poster(bare.base_url + bare_floor.ONE_PUT), bare.process.pid)}
            warm = min(50, requests)
            async with QueueServiceClient.from_connection_string(connection, **proxy_lookup_options()) as queues:
                for name, (post, _) in servers.items():  # warm up: connections, caches, first imports
                    before = await _queued(queues)
                    await load(warm, 4, post)
                    if name in ("gateway", "one-call"):
                        _paths_taken(name, warm, before, await _queued(queues))
            await load(warm, 4, raw.call)

            order = ["gateway", "one-call", "bare", "one-put", "raw"]
            for concurrency in levels:
                runs: dict[str, list[Run]] = {name: [] for name in order}
                cpu = dict.fromkeys(servers, 0.0)
                for turn in range(rounds):
                    share = requests // rounds + (1 if turn < requests % rounds else 0)
                    first = turn % len(order)
                    for name in order[first:] + order[:first]:
                        if name == "raw":
                            runs[name].append(await load(share, concurrency, raw.call))
                            continue
                        post, pid = servers[name]
                        before = cpu_seconds(pid)
                        runs[name].append(await load(share, concurrency, post))
                        cpu[name] += cpu_seconds(pid) - before
                per_request = {name: seconds / requests * 1000 for name, seconds in cpu.items()}
                results.append(Level(
                    concurrency, combine(runs["gateway"]), combine(runs["bare"]), combine(runs["raw"]),
                    per_request["gateway"], per_request["bare"], combine(runs["one-call"]), combine(runs["one-put"]),
                    per_request["one-call"], per_request["one-put"],
                ))
    return results


async def _queued(queues: QueueServiceClient) -> dict[str, int]:
    """How many jobs wait on each of the gateway's send queues (nothing takes them: the workers are disabled)."""
    return {name: (await queues.get_queue_client(name).get_queue_properties()).approximate_message_count
            for name in (SEND_QUEUE, ACCEPT_QUEUE)}


def _paths_taken(host: str, accepted: int, before: dict[str, int], after: dict[str, int]) -> None:
    """The host took the path it is measured for: each accept put one job on its path's queue (sms-accept for the
    one-call path, sms-send for the two-call path) and none on the other's. Raises otherwise."""
    grown = {name: after[name] - before[name] for name in after}
    expected = {ACCEPT_QUEUE: accepted, SEND_QUEUE: 0} if host == "one-call" else {ACCEPT_QUEUE: 0, SEND_QUEUE: accepted}
    if grown != expected:
        raise RuntimeError(f"the {host} dev host did not take its path: {accepted} accepts grew the queues by {grown}, "
                           f"not {expected}; its figures would measure the other path")


def rows(levels: list[Level]) -> list[Row]:
    """The two-call rows keep the names they had before issue 30 (docs/scaling.md cites them); the one-call
    path's rows sit beside them."""
    out = []
    target = f"<= {ISSUE_17_TARGET} (issue 17 target)"
    one_call_target = f"<= {ISSUE_30_TARGET} (issue 30 target)"
    for level in levels:
        c = level.concurrency
        ratio = level.gateway.per_second / level.raw.per_second
        out += [
            Row("accept", f"gateway req/s @{c}", level.gateway.per_second, "req/s"),
            Row("accept", f"gateway one-call req/s @{c}", level.one_call.per_second, "req/s"),
            Row("accept", f"bare floor req/s @{c}", level.bare.per_second, "req/s"),
            Row("accept", f"bare one-put floor req/s @{c}", level.one_put.per_second, "req/s"),
            Row("accept", f"raw SDK floor req/s @{c}", level.raw.per_second, "req/s"),
            Row("accept", f"gateway/raw SDK floor req/s @{c}", ratio, "ratio", ">= 0.8", ratio >= 0.8),
            Row("accept", f"p50 / p99 @{c}", level.gateway.p50_ms, f"ms (p99 {level.gateway.p99_ms:.1f})"),
            Row("accept", f"one-call p50 / p99 @{c}", level.one_call.p50_ms, f"ms (p99 {level.one_call.p99_ms:.1f})"),
            Row("accept", f"gateway CPU per request @{c}", level.gateway_cpu_ms, "ms"),
            Row("accept", f"gateway one-call CPU per request @{c}", level.one_call_cpu_ms, "ms"),
            Row("accept", f"bare floor CPU per request @{c}", level.bare_cpu_ms, "ms"),
            Row("accept", f"bare one-put floor CPU per request @{c}", level.one_put_cpu_ms, "ms"),
            Row("accept", f"gateway/bare floor CPU @{c}", level.cpu_ratio, "ratio", target),
            Row("accept", f"gateway one-call/bare one-put floor CPU @{c}", level.one_call_cpu_ratio, "ratio", one_call_target),
            Row("accept", f"gateway one-call/two-call CPU @{c}", _ratio(level.one_call_cpu_ms, level.gateway_cpu_ms), "ratio"),
        ]

    def mean(figure) -> float:
        return sum(figure(level) for level in levels) / len(levels)

    gateway_ms, bare_ms = mean(lambda x: x.gateway_cpu_ms), mean(lambda x: x.bare_cpu_ms)
    one_call_ms, one_put_ms = mean(lambda x: x.one_call_cpu_ms), mean(lambda x: x.one_put_cpu_ms)
    out += [
        Row("accept", "gateway CPU per request, all levels", gateway_ms, "ms"),
        Row("accept", "gateway one-call CPU per request, all levels", one_call_ms, "ms"),
        Row("accept", "bare floor CPU per request, all levels", bare_ms, "ms"),
        Row("accept", "bare one-put floor CPU per request, all levels", one_put_ms, "ms"),
        Row("accept", "gateway/bare floor CPU, all levels", _ratio(gateway_ms, bare_ms), "ratio", target),
        Row("accept", "gateway one-call/bare one-put floor CPU, all levels", _ratio(one_call_ms, one_put_ms), "ratio", one_call_target),
    ]
    return out
