"""Ledger (issue 14): what GET /api/sms's first page costs on a licensee holding many messages, and what
the ledger adds to accepting and dispatching. Storage round trips are counted at the adapter (every
HTTP response of the SDK clients `bootstrap.build` makes), and each query's own filter is read back to
show it never reaches outside the licensee's partitions.

The ledger is filled with the rows `TableLedgerStore.save` writes (its transactions are captured, not
rebuilt by hand) regrouped into full transactions per partition. Even so Azurite is the limit: it
looks each written key up among every row of the partition (LokiJS's PartitionKey index, then a
scan), so a fill costs the square of its size: 1,000 messages (5,800 rows) took 2 s, 10,000 (58,000
rows) 234 s, and 100,000 would take about 100 times that, hours. So `make bench` fills FULL_SIZE
(about a minute) and `--ledger-messages` takes more. The first page's cost does not depend on it:
one query per shard, each a RowKey range of one partition read `take` rows at most, as the rows
below check from the requests themselves.
"""
from __future__ import annotations

import asyncio
import json
import math
import random
import re
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sms.bootstrap import build
from sms.config import Settings
from sms.domain.jobs import WHOLE_JOB_SIZE
from sms.domain.model import STATUS_LETTERS, SendJob, Status, status_of, utcnow
from sms.domain.validation import Limits
from sms.providers.twilio import TwilioProvider
from sms.storage import LedgerEntry, LedgerQuery, LedgerRecipient
from sms.storage.ledger import LEDGER_TABLE, TableLedgerStore
from sms.storage.limits import MAX_OPERATIONS
from sms.storage.shards import SHARDS
from sms.usecases.ledger import Ledger
from sms.wire import SMSSend
from sms.wire.mapping import send_command
from tests.fake_vendors import FakeTwilio
from tests.fakes import InMemoryLedgerStore, assembled

from . import accept, dispatch
from .harness import Row
from .memory import NullProvider

BIG, SMALL = "1e" * 16, "2e" * 16  # the licensee holding many messages, and one beside it
TAKE = 50
DAYS = 90  # the fill's messages were created over this many days
PHONES, LINKED = 5_000, 3_000  # pools the fill draws from
# Per recipient: mostly delivered, as a gateway's history is.
OUTCOMES = [Status.DELIVERED] * 80 + [Status.SENT] * 8 + [Status.UNDELIVERED] * 5 + [Status.FAILED] * 5 + [Status.OPTED_OUT] * 2
FANOUT_SIZES = (1, 100, 1000)
FULL_SIZE, SMOKE_SIZE = 5_000, 300


@dataclass
class Sent:
    created_at: datetime
    comm_id: str
    phones: tuple[str, ...]
    linked: str | None
    statuses: frozenset[str]  # each recipient's and the message's


@dataclass
class Filled:
    messages: dict[str, list[Sent]] = field(default_factory=dict)  # per licensee, in no order
    seconds: float = 0.0
    rows: int = 0


def _generate(licensee: str, count: int, now: datetime, rng: random.Random) -> list[tuple[LedgerEntry, list[LedgerRecipient], Sent]]:
    made = []
    for _ in range(count):
        comm_id = uuid.UUID(int=rng.getrandbits(128), version=4).hex
        created_at = now - timedelta(seconds=rng.uniform(60, DAYS * 86_400))
        size = 1 if rng.random() < 0.85 else rng.randint(2, 3)
        phones = tuple(f"+614{p:08d}" for p in rng.sample(range(PHONES), size))
        outcomes = [rng.choice(OUTCOMES) for _ in phones]
        linked = uuid.UUID(int=rng.randrange(LINKED)).hex if rng.random() < 0.3 else None
        letters = "".join(STATUS_LETTERS[s] for s in outcomes)
        entry = LedgerEntry(licensee, comm_id, created_at, size, 1, "GSM-7", "Your appointment is tomorrow at 10am.", letters,
                            linked_object_id=linked, suite_id="5" * 32 if rng.random() < 0.5 else None)
        rows = [LedgerRecipient(seq, phone, uuid.UUID(int=rng.randrange(PHONES)).hex if rng.random() < 0.3 else None, status.value)
                for seq, (phone, status) in enumerate(zip(phones, outcomes, strict=True))]
        statuses = frozenset({s.value for s in outcomes} | {status_of(set(outcomes))})
        made.append((entry, rows, Sent(created_at, comm_id, phones, linked, statuses)))
    return made


class _Captured:
    """Stands in for the ledger's TableClient: keeps what `save` would submit instead of sending it."""

    def __init__(self) -> None:
        self.operations: list[tuple] = []

    async def submit_transaction(self, operations: list[tuple], **options) -> list[dict]:
        self.operations += operations
        return [{} for _ in operations]  # the SDK answers one mapping (with its etag) per operation


async def fill(tables, sizes: dict[str, int], concurrency: int = 8, chunk: int = 3_000) -> Filled:
    """`sizes[licensee]` messages each, written as `TableLedgerStore.save` writes them, in full
    transactions (one partition each), `concurrency` at a time."""
    table = tables.get_table_client(LEDGER_TABLE)
    rng, now, filled = random.Random(14), utcnow(), Filled()
    started = time.perf_counter()
    for licensee, count in sizes.items():
        filled.messages[licensee] = []
        for first in range(0, count, chunk):
            captured = _Captured()
            planner = TableLedgerStore(captured)  # type: ignore[arg-type]
            for entry, rows, sent in _generate(licensee, min(chunk, count - first), now, rng):
                await planner.save(entry, rows, None)
                filled.messages[licensee].append(sent)
            by_partition: dict[str, list[tuple]] = defaultdict(list)
            for operation in captured.operations:
                by_partition[operation[1]["PartitionKey"]].append(operation)
            batches = [ops[i : i + MAX_OPERATIONS] for ops in by_partition.values() for i in range(0, len(ops), MAX_OPERATIONS)]
            pending = iter(batches)
            await asyncio.gather(*(_write_all(table, pending) for _ in range(concurrency)))
            filled.rows += len(captured.operations)
    filled.seconds = time.perf_counter() - started
    return filled


async def _write_all(table, batches) -> None:
    for batch in batches:  # shared by the writers: each takes the next
        await table.submit_transaction(batch)


class Trips:
    """Every storage response: how many, how many entities each query read, and which partitions the
    queries named (from the request's own $filter)."""

    def __init__(self) -> None:
        self.responses = 0
        self.entities = 0
        self.partitions: list[str | None] = []

    def __call__(self, response: Any) -> None:
        self.responses += 1
        request = response.http_request
        if request.method != "GET" or f"/{LEDGER_TABLE}(" not in request.url:
            return
        where = " ".join(parse_qs(urlsplit(request.url).query).get("$filter", []))
        # One partition, and a RowKey range inside it: nothing else is a cheap query.
        named = re.fullmatch(r"PartitionKey eq '([^']*)' and RowKey g[et] '[^']*' and RowKey lt '[^']*'", where)
        self.partitions.append(named.group(1) if named else None)
        try:
            self.entities += len(json.loads(response.http_response.text())["value"])
        except (ValueError, KeyError):
            pass

    def reset(self) -> None:
        self.responses, self.entities, self.partitions = 0, 0, []


@dataclass
class Measured:
    name: str
    licensee: str
    trips: int
    entities: int
    outside: int  # queries that are not a RowKey range in one of the licensee's partitions


def _queries(filled: Filled, now: datetime) -> list[tuple[str, LedgerQuery, Any]]:
    """First pages issue 14 names, each with the test its messages must pass."""
    month = {"created_from": now - timedelta(days=30), "created_to": now}
    in_month = [m for m in filled.messages[BIG] if month["created_from"] <= m.created_at < now]
    phone = Counter(p for m in in_month for p in m.phones).most_common(1)[0][0]
    linked = Counter(m.linked for m in in_month if m.linked).most_common(1)[0][0]
    return [
        ("newest 50", LedgerQuery(BIG), lambda m: True),
        ("phone number, one month", LedgerQuery(BIG, phone_number=phone, **month), lambda m: phone in m.phones),
        ("linkedObjectId, one month", LedgerQuery(BIG, linked_object_id=linked, **month), lambda m: m.linked == linked),
        ("status failed, one month", LedgerQuery(BIG, status="failed", **month), lambda m: "failed" in m.statuses),
        ("newest 50, small licensee", LedgerQuery(SMALL), lambda m: True),
    ]


async def first_pages(connection: str, sizes: dict[str, int]) -> tuple[Filled, list[Measured]]:
    trips = Trips()
    adapters = build(Settings.from_env({"AzureWebJobsStorage": connection}), on_response=trips)
    try:
        await adapters.ensure_storage()
        filled = await fill(adapters.tables, sizes)
        ledger, now, measured = Ledger(adapters.ledger), utcnow(), []
        for name, query, keep in _queries(filled, now):
            licensee = query.licensee_id
            trips.reset()
            page, _ = await ledger.page(query, TAKE)
            window = [m for m in filled.messages[licensee]
                      if (query.created_from is None or query.created_from <= m.created_at)
                      and (query.created_to is None or m.created_at < query.created_to)]
            expected = [m.comm_id for m in sorted(window, key=lambda m: m.created_at, reverse=True) if keep(m)][:TAKE]
            if [e.comm_id for e in page] != expected:  # a figure for a wrong answer would mean nothing
                raise AssertionError(f"ledger benchmark: {name} answered other messages than were filled")
            outside = sum(1 for p in trips.partitions if p is None or p not in {f"{licensee}|{s}" for s in range(SHARDS)})
            measured.append(Measured(name, licensee, trips.responses, trips.entities, outside))
        return filled, measured
    finally:
        await adapters.close()


async def accept_trips(connection: str, repeats: int = 3) -> dict[int, tuple[float, float, float]]:
    """recipients -> (round trips per accepted message as bootstrap wires it, ledger included; the
    same with the use cases assembled without a ledger; as bootstrap wires it with issue 30's one-call accept on,
    which a message of more than WHOLE_JOB_SIZE recipients does not take)."""
    trips = Trips()
    settings = {"AzureWebJobsStorage": connection, "SMS_MAX_RECIPIENTS": "1000"}
    adapters = build(Settings.from_env(settings), on_response=trips)
    one_call = build(Settings.from_env({**settings, **accept.ONE_CALL_ENV}), on_response=trips)
    try:
        await adapters.ensure_storage()
        wired = adapters.gateway().use.accept
        bare = assembled(adapters.messages, adapters.jobs, NullProvider(), limits=Limits(max_recipients=1000)).accept
        found = {}
        for size in FANOUT_SIZES:
            request = send_command(SMSSend.model_validate({"SMSModel": {"To": [{"PhoneNumber": f"+614{i:08d}"} for i in range(size)],
                                                                        "MessageBody": "Ledger benchmark"}}))
            figures = []
            for way in (wired, bare, one_call.gateway().use.accept):
                await way.queue(request, "ac" * 16)  # warm up
                trips.reset()
                for _ in range(repeats):
                    await way.queue(request, "ac" * 16)
                figures.append(trips.responses / repeats)
            found[size] = (figures[0], figures[1], figures[2])
        return found
    finally:
        await adapters.close()
        await one_call.close()


async def dispatch_trips(connection: str, recipients: int) -> dict[str, float]:
    """A `recipients` message's jobs run together in one process through the Twilio adapter to the
    local fake, as bench/dispatch.py runs them; without and then with the ledger: round trips per job, and the
    ledger's own share counted on a client of its own."""
    every, ledger_only = Trips(), Trips()
    settings = Settings.from_env({"AzureWebJobsStorage": connection, "SMS_MAX_RECIPIENTS": str(recipients)})
    adapters = build(settings, on_response=every)
    ledger_side = build(settings, on_response=ledger_only)
    fake = await FakeTwilio().start()
    provider = TwilioProvider(FakeTwilio.ACCOUNT_SID, FakeTwilio.AUTH_TOKEN, from_number="+61400000000", api_base_url=fake.base_url)
    try:
        await adapters.ensure_storage()
        found: dict[str, float] = {}
        for with_ledger in (False, True):
            worker = assembled(adapters.messages, adapters.jobs, provider, limits=Limits(max_recipients=recipients),
                              send_concurrency=dispatch.CONCURRENCY, missing_message_wait=0,
                              ledger=ledger_side.ledger if with_ledger else InMemoryLedgerStore())  # in memory: no round trips
            request = SMSSend.model_validate({"SMSModel": {"To": [{"PhoneNumber": f"+614{i:08d}"} for i in range(recipients)],
                                                           "MessageBody": "Ledger dispatch benchmark"}})
            accepted = await worker.accept.queue(send_command(request), "d2" * 16)
            jobs = SendJob.covering(accepted.comm_id, recipients)
            every.reset()
            ledger_only.reset()
            results = await asyncio.gather(*(worker.dispatch.dispatch(job) for job in jobs), return_exceptions=True)
            failed = sum(1 for r in results if isinstance(r, BaseException))
            key = "ledger" if with_ledger else "none"
            found[f"{key} per job"] = (every.responses + ledger_only.responses) / len(jobs)
            found[f"{key} ledger per job"] = ledger_only.responses / len(jobs)
            found[f"{key} failed jobs"] = failed
        return found
    finally:
        await provider.close()
        await adapters.close()
        await ledger_side.close()
        await fake.stop()


def rows(filled: Filled, measured: list[Measured], accepted: dict[int, tuple[float, float]], dispatched: dict[str, float]) -> list[Row]:
    held = {licensee: len(messages) for licensee, messages in filled.messages.items()}
    out = [Row("ledger", f"fill: {filled.rows:,} rows for {held[BIG]:,} + {held[SMALL]:,} messages", filled.seconds, "s")]
    for m in measured:
        label = f"{m.name} ({held[m.licensee]:,} held)"
        out.append(Row("ledger", f"round trips, first page: {label}", m.trips, "per page", f"<= {SHARDS}", m.trips <= SHARDS))
        out.append(Row("ledger", f"rows read, first page: {m.name}", m.entities, "entities", f"<= {SHARDS * TAKE}",
                       m.entities <= SHARDS * TAKE))
    outside = sum(m.outside for m in measured)
    out.append(Row("ledger", "queries not a RowKey range of the licensee's partitions", outside, "queries", "0", outside == 0))
    for size, (wired, bare, _) in accepted.items():
        allowed = bare + math.ceil(size / MAX_OPERATIONS)
        out.append(Row("ledger", f"accept round trips, {size} recipient{'s' if size > 1 else ''} (no ledger: {bare:g})", wired,
                       "per message",
                       f"<= {allowed:g}", wired <= allowed))
    for size, (_, _, one_call) in accepted.items():
        # Issue 30: one storage call where the one-call accept applies; today's path, and its calls, where it does not.
        # Over WHOLE_JOB_SIZE it is today's path, shown without a verdict: the sweeper's marks, written behind once a
        # second, land in one count or the other.
        label = f"accept round trips, one-call path on, {size} recipient{'s' if size > 1 else ''}"
        if size <= WHOLE_JOB_SIZE:
            out.append(Row("ledger", label, one_call, "per message", "1 (issue 30)", one_call == 1))
        else:
            out.append(Row("ledger", label, one_call, f"per message (over {WHOLE_JOB_SIZE}: today's path)"))
    out.append(Row("ledger", "dispatch round trips per 100-recipient job, no ledger", dispatched["none per job"], "per job"))
    out.append(Row("ledger", "dispatch round trips per 100-recipient job, ledger", dispatched["ledger per job"], "per job"))
    out.append(Row("ledger", "  of which the ledger's", dispatched["ledger ledger per job"], "per job"))
    out.append(Row("ledger", "jobs whose ledger write gave up", dispatched["ledger failed jobs"], "jobs", "0",
                   dispatched["ledger failed jobs"] == 0))
    return out
