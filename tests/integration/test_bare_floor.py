"""The benchmark's bare floor (bench/bare_floor.py) makes the gateway's two storage calls for real:
its hand-signed requests are accepted by Azurite, refused with a wrong key, and what they write reads
back through the SDKs as a job and the two rows of a one-recipient message."""
import base64
import json

import aiohttp
import pytest

from bench.bare_floor import Account, BareFloor, StorageRefused, ensure_storage


async def test_the_job_and_both_rows_land(emulator, unique_name, table_service, queue_service):
    queue, table = unique_name("bare-"), unique_name("Bare")
    await ensure_storage(emulator.connection_string, queue, table)
    async with aiohttp.ClientSession() as session:
        floor = BareFloor(Account.parse(emulator.connection_string), session, queue, table)
        await floor.put_job("ab" * 16)
        await floor.insert_rows("ab" * 16, "+61412345678", "Sam", "Hello")

    [message] = [m async for m in queue_service.get_queue_client(queue).receive_messages()]
    assert json.loads(base64.b64decode(message.content)) == {"commId": "ab" * 16, "first": 0, "last": 0}
    rows = {e["RowKey"]: e async for e in table_service.get_table_client(table).query_entities(f"PartitionKey eq '{'ab' * 16}'")}
    assert set(rows) == {"r000000", "message"}
    assert rows["r000000"]["PhoneNumber"] == "+61412345678" and rows["r000000"]["Status"] == "queued"
    assert rows["message"]["Body"] == "Hello" and rows["message"]["RecipientCount"] == 1
    assert rows["message"]["CreatedAt"] == rows["r000000"]["CreatedAt"]  # read back as datetimes


async def test_a_wrong_key_is_refused_by_both_services(emulator, unique_name):
    queue, table = unique_name("bare-"), unique_name("Bare")
    await ensure_storage(emulator.connection_string, queue, table)
    right = Account.parse(emulator.connection_string)
    wrong = Account(right.name, bytes(64), right.queue_endpoint, right.table_endpoint)
    async with aiohttp.ClientSession() as session:
        floor = BareFloor(wrong, session, queue, table)
        with pytest.raises(StorageRefused, match="403"):
            await floor.put_job("cd" * 16)
        with pytest.raises(StorageRefused, match="403"):
            await floor.insert_rows("cd" * 16, "+61412345678", None, "Hello")
