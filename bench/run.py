"""Every benchmark, one table: `make bench` (full, a few minutes) or `--smoke` (seconds, for CI).

Figures are ratios against a baseline measured in the same run: absolute times on a shared
2-core machine are noise. Targets are shown next to the figures, not asserted: benchmarks are
not pass/fail tests. A PNG of accept throughput against concurrency is written beside this file.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
from pathlib import Path

from sms.dev import azurite

from . import accept, dispatch, fanout, flow, latency, ledger, memory, scheduled, wire
from .harness import Row, table

HERE = Path(__file__).resolve().parent


def chart(levels: list[accept.Level], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    concurrency = [level.concurrency for level in levels]
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot(concurrency, [level.gateway.per_second for level in levels], marker="o", label="gateway two-call (HTTP, dev host)")
    axis.plot(concurrency, [level.one_call.per_second for level in levels], marker="D", label="gateway one-call (HTTP, dev host)")
    axis.plot(concurrency, [level.bare.per_second for level in levels], marker="^",
              label="bare floor (HTTP, aiohttp, hand-signed put + transaction)")
    axis.plot(concurrency, [level.one_put.per_second for level in levels], marker="v",
              label="bare one-put floor (HTTP, aiohttp, hand-signed put)")
    axis.plot(concurrency, [level.raw.per_second for level in levels], marker="s", label="raw SDK floor (put + transaction, in-process)")
    axis.set_xscale("log", base=2)
    axis.set_xticks(concurrency, [str(c) for c in concurrency])
    axis.set_xlabel("concurrent requests")
    axis.set_ylabel("accepted requests / s")
    axis.set_title("Accept path against Azurite, same run")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the benchmarks still run")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--ledger-messages", type=int, default=ledger.FULL_SIZE,
                        help=f"messages the ledger part's licensee holds (default {ledger.FULL_SIZE:,}; see bench/ledger.py)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    requests, rounds, fanout_seconds, recipients, seconds = (40, 1, 0.05, 200, 0.2) if args.smoke else (2000, 4, 3.0, 2000, 2.0)
    rows: list[Row] = []
    with azurite.start() as storage:
        levels = asyncio.run(accept.run(storage.connection_string, requests, (1, 8, 32), rounds))
        rows += accept.rows(levels)
    # Each part gets a fresh Azurite: it slows down as it holds more rows (Azure's partitions do
    # not), and after the earlier parts the memory part's reads timed out at 20 s, with Azurite
    # spending 23 s of CPU where a fresh one spends under 1.
    with azurite.start() as storage:
        rows += fanout.rows(asyncio.run(fanout.run(storage.connection_string, fanout_seconds)))
    with azurite.start() as storage:
        rows += dispatch.rows(asyncio.run(dispatch.run(storage.connection_string, recipients)))
    with azurite.start() as storage:
        sizes = (200, 1_000) if args.smoke else memory.SIZES
        rows += memory.rows(memory.run(storage.connection_string, sizes))
    held = ledger.SMOKE_SIZE if args.smoke else args.ledger_messages
    with azurite.start() as storage:
        filled, pages = asyncio.run(ledger.first_pages(storage.connection_string, {ledger.BIG: held, ledger.SMALL: max(held // 20, 60)}))
    with azurite.start() as storage:  # a fresh one: the filled ledger would slow every write
        accepted = asyncio.run(ledger.accept_trips(storage.connection_string))
        dispatched = asyncio.run(ledger.dispatch_trips(storage.connection_string, recipients))
    rows += ledger.rows(filled, pages, accepted, dispatched)
    due = 40 if args.smoke else scheduled.DUE_AT_ONCE
    with azurite.start() as storage, tempfile.TemporaryDirectory() as outbox:
        late = asyncio.run(scheduled.lateness(storage.connection_string, due, Path(outbox) / "outbox.jsonl"))
        cost = asyncio.run(scheduled.storage_cost(storage.connection_string, 5 if args.smoke else 50))
    rows += scheduled.rows(late, cost, due)
    with azurite.start() as storage, tempfile.TemporaryDirectory() as outbox:
        rows += latency.rows(asyncio.run(latency.run(storage.connection_string, latency.SMOKE_SIZE if args.smoke else latency.FULL_SIZE,
                                                     Path(outbox) / "outbox.jsonl")))
    counted = 5 if args.smoke else 48
    with azurite.start() as storage:
        rows += flow.rows(asyncio.run(flow.per_message(storage.connection_string, counted)), counted)
    rows += wire.rows(wire.run(seconds))

    print(table(rows))
    chart(levels, HERE / "throughput.png")
    print(f"\nchart: {HERE / 'throughput.png'}")
    if args.json:
        args.json.write_text(json.dumps([row.__dict__ for row in rows], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
