"""What every benchmark needs: a load loop at fixed concurrency, percentiles, CPU time, the report."""
from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable


@dataclass
class Run:
    requests: int
    seconds: float
    latencies: list[float] = field(repr=False)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    @property
    def p50_ms(self) -> float:
        return self.percentile(50) * 1000

    @property
    def p99_ms(self) -> float:
        return self.percentile(99) * 1000


async def load(requests: int, concurrency: int, call: Callable[[int], Awaitable[None]]) -> Run:
    """`requests` calls, `concurrency` at a time: each of `concurrency` workers takes the next number."""
    counter = iter(range(requests))
    latencies: list[float] = []

    async def worker() -> None:
        for i in counter:
            started = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Run(requests, time.perf_counter() - started, latencies)


def combine(runs: list[Run]) -> Run:
    """Several runs of the same thing taken in turns with others: one run, their times added."""
    return Run(sum(r.requests for r in runs), sum(r.seconds for r in runs), [t for r in runs for t in r.latencies])


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Row:
    area: str
    measure: str
    value: float
    unit: str
    target: str = ""
    met: bool | None = None


def table(rows: list[Row]) -> str:
    header = ("area", "measure", "value", "unit", "target", "")
    cells = [header] + [
        (r.area, r.measure, f"{r.value:,.3g}" if abs(r.value) < 1000 else f"{r.value:,.0f}", r.unit, r.target,
         "" if r.met is None else ("met" if r.met else "MISSED"))
        for r in rows
    ]
    widths = [max(len(str(c[i])) for c in cells) for i in range(len(header))]
    lines = [" | ".join(str(c[i]).ljust(widths[i]) for i in range(len(header))).rstrip() for c in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)
