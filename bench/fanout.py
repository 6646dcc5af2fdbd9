"""Fan-out: requests of 1, 10, 100 and 1000 recipients through the service on real Azure adapters:
storage round trips per request (counted at the adapter, every HTTP response) and recipients/s."""
from __future__ import annotations

import time

from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueClient

from sms.bootstrap import build
from sms.config import SEND_QUEUE, Settings
from sms.storage.tables import MESSAGES_TABLE
from sms.wire import SMSSend
from sms.wire.mapping import send_command

from .harness import Row

SIZES = (1, 10, 100, 1000)


def _request(size: int) -> SMSSend:
    return SMSSend.model_validate({"SMSModel": {"To": [{"PhoneNumber": f"+614{i:08d}"} for i in range(size)], "MessageBody": "Fan-out"}})


async def run(connection: str, seconds: float, turn: float = 0.2) -> dict[int, tuple[float, float]]:
    """size -> (round trips per request, recipients accepted per second).

    Sizes take turns of `turn` seconds each, round after round, until every size has run for
    `seconds`: drift in a shared machine's load then hits every size alike, and the ratio between
    them holds still. Every turn starts from an empty table and queue, because Azurite's
    transactions slow down as its table grows (a 100-row transaction takes about 6 ms into
    12,000 rows and 16 ms into 60,000; Azure's partitions do not), which would otherwise charge
    the big sizes for the rows earlier turns left behind."""
    responses = 0

    def count(_response) -> None:
        nonlocal responses
        responses += 1

    gateway = build(Settings.from_env({"AzureWebJobsStorage": connection, "SMS_MAX_RECIPIENTS": "1000"}), on_response=count)
    await gateway.ensure_storage()
    accept = gateway.gateway().use.accept
    requests, turn = {size: _request(size) for size in SIZES}, min(turn, seconds)
    elapsed, sent, trips = dict.fromkeys(SIZES, 0.0), dict.fromkeys(SIZES, 0), dict.fromkeys(SIZES, 0)
    tables = TableServiceClient.from_connection_string(connection)
    queue = QueueClient.from_connection_string(connection, SEND_QUEUE)
    try:
        for request in requests.values():
            await accept.queue(send_command(request), "fa" * 16)  # warm up
        while min(elapsed.values()) < seconds:
            for size, request in requests.items():
                await tables.delete_table(MESSAGES_TABLE)
                await tables.create_table(MESSAGES_TABLE)
                await queue.clear_messages()
                responses, started = 0, time.perf_counter()
                while sent[size] == 0 or time.perf_counter() - started < turn:
                    await accept.queue(send_command(request), "fa" * 16)
                    sent[size] += 1
                elapsed[size] += time.perf_counter() - started
                trips[size] += responses
    finally:
        await gateway.close()
        await tables.close()
        await queue.close()
    return {size: (trips[size] / sent[size], size * sent[size] / elapsed[size]) for size in SIZES}


def rows(results: dict[int, tuple[float, float]]) -> list[Row]:
    out = []
    for size, (trips, per_second) in results.items():
        target, met = ("<= 3", trips <= 3) if size == 100 else ("", None)
        out.append(Row("fan-out", f"round trips, {size} recipients", trips, "per request", target, met))
        out.append(Row("fan-out", f"recipients/s, {size} recipients", per_second, "recipients/s"))
    ratio = results[100][1] / results[1][1]
    out.append(Row("fan-out", "recipients/s at 100 vs at 1", ratio, "x", ">= 30", ratio >= 30))
    return out
