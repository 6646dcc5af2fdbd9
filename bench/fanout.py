"""Fan-out: requests of 1, 10, 100 and 1000 recipients through the service on real Azure adapters:
storage round trips per request (counted at the adapter, every HTTP response) and recipients/s."""
from __future__ import annotations

import time

from sms.bootstrap import build
from sms.config import Settings
from sms.wire import SMSSend

from .harness import Row

SIZES = (1, 10, 100, 1000)


def _request(size: int) -> SMSSend:
    return SMSSend.model_validate({"SMSModel": {"To": [{"PhoneNumber": f"+614{i:08d}"} for i in range(size)], "MessageBody": "Fan-out"}})


async def run(connection: str, repeats: int) -> dict[int, tuple[float, float]]:
    """size -> (round trips per request, recipients accepted per second)."""
    responses = 0

    def count(_response) -> None:
        nonlocal responses
        responses += 1

    gateway = build(Settings.from_env({"AzureWebJobsStorage": connection, "SMS_MAX_RECIPIENTS": "1000"}), on_response=count)
    await gateway.ensure_storage()
    results = {}
    try:
        for size in SIZES:
            request = _request(size)
            await gateway.sms.accept(request, "fa" * 16)  # warm up
            responses = 0
            started = time.perf_counter()
            for _ in range(repeats):
                await gateway.sms.accept(request, "fa" * 16)
            elapsed = time.perf_counter() - started
            results[size] = (responses / repeats, size * repeats / elapsed)
    finally:
        await gateway.close()
    return results


def rows(results: dict[int, tuple[float, float]]) -> list[Row]:
    out = []
    for size, (trips, per_second) in results.items():
        target, met = ("<= 3", trips <= 3) if size == 100 else ("", None)
        out.append(Row("fan-out", f"round trips, {size} recipients", trips, "per request", target, met))
        out.append(Row("fan-out", f"recipients/s, {size} recipients", per_second, "recipients/s"))
    ratio = results[100][1] / results[1][1]
    out.append(Row("fan-out", "recipients/s at 100 vs at 1", ratio, "x", ">= 30", ratio >= 30))
    return out
