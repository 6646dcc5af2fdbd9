"""The benchmark's bare floor (bench/bare_floor.py) makes the gateway's two storage calls for real:
its hand-signed requests are accepted by Azurite, refused with a wrong key, and what they write reads
back through the SDKs as a job and the two rows of a one-recipient message."""
import base64
import json
from datetime import datetime, timezone

import aiohttp
import pytest

from bench.bare_floor import LICENSEE, Account, BareFloor, StorageRefused, ensure_storage
from sms.domain.jobs import WholeJob
from sms.domain.validation import Limits, message_from
from sms.wire import SMSSend
from sms.wire.mapping import send_command


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


async def test_the_one_put_floor_puts_the_whole_message_as_the_gateways_version_2_job_and_nothing_else(
        emulator, unique_name, table_service, queue_service):
    """Issue 30's one-put floor: one put, never expiring, its body the fields of the gateway's version-2 job for the
    same one-recipient message (so the same size, within the ids' and the time's digits), and no row written."""
    queue, table = unique_name("bare-"), unique_name("Bare")
    await ensure_storage(emulator.connection_string, queue, table)
    async with aiohttp.ClientSession() as session:
        floor = BareFloor(Account.parse(emulator.connection_string), session, queue, table)
        await floor.put_whole("ab" * 16, "+61412345678", "Sam", "Benchmark: your appointment is at 10am")

    [message] = [m async for m in queue_service.get_queue_client(queue).receive_messages()]
    assert message.expires_on.year >= 9999  # messagettl=-1, as the gateway puts a whole job
    put = json.loads(base64.b64decode(message.content))
    gateway_shaped = WholeJob.of(*_one_recipient("ab" * 16)).text
    assert set(put) == set(json.loads(gateway_shaped))
    assert put["to"][0][1:] == ["+61412345678", "Sam", None] and put["body"] == "Benchmark: your appointment is at 10am"
    assert len(json.dumps(put, separators=(",", ":"))) == len(gateway_shaped)
    rows = [e async for e in table_service.get_table_client(table).query_entities(f"PartitionKey eq '{'ab' * 16}'")]
    assert rows == []


def _one_recipient(comm_id):
    command = send_command(SMSSend.model_validate({"smsModel": {"to": [{"name": "Sam", "phoneNumber": "+61412345678"}],
                                                                "messageBody": "Benchmark: your appointment is at 10am"}}))
    at = datetime.now(timezone.utc).replace(microsecond=123000)
    message, recipients = message_from(command, LICENSEE, Limits(), at, comm_id)
    return message, recipients
