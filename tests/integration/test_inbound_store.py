"""Replies, reply routes and opt-outs in Table Storage (Azurite)."""
from datetime import timedelta, timezone

import pytest

from sms.domain.model import utcnow
from sms.storage import InboundSms, ReplyRoute
from sms.storage.inbound import UNLINKED_SHARDS, TableInboundStore, TableOptOutStore
from sms.storage.tables import TableMessageStore
from tests.integration.test_store_contract import message


@pytest.fixture
async def stores(table_service, unique_name):
    messages = table_service.get_table_client(unique_name("msgs"))
    inbound = TableInboundStore(messages, table_service.get_table_client(unique_name("inb")),
                                table_service.get_table_client(unique_name("routes")))
    opt_outs = TableOptOutStore(table_service.get_table_client(unique_name("opt")), table_service.get_table_client(unique_name("legacy")))
    store = TableMessageStore(messages)
    await store.create_table()
    await inbound.create_tables()
    await opt_outs.create_table()
    return store, inbound, opt_outs


def reply(comm_id, body, seconds=0, sid="SM1"):
    return InboundSms("+61412000001", "+61400000000", body, utcnow() + timedelta(seconds=seconds), "twilio", sid, comm_id)


async def test_replies_share_the_message_partition_without_becoming_recipients(stores):
    store, inbound, _ = stores
    msg, rows = message("9" * 32, 3)
    await store.add(msg, rows)
    assert await inbound.add(reply(msg.comm_id, "second", 5, "SM2")) is True
    assert await inbound.add(reply(msg.comm_id, "first", 0, "SM1")) is True
    assert await inbound.add(reply(msg.comm_id, "first", 0, "SM1")) is False  # delivered twice, stored once

    assert [r.body for r in await inbound.replies(msg.comm_id)] == ["first", "second"]
    _, recipients = await store.load(msg.comm_id)
    assert [r.seq for r in recipients] == [0, 1, 2]
    assert (await store.message(msg.comm_id)).comm_id == msg.comm_id
    assert await store.message("8" * 32) is None


async def test_unlinked_inbound_sms_are_kept_by_the_day_received_and_the_number(stores):
    """By the UTC day, so retention deletes them by a PartitionKey range (issue 25), and a shard of the
    number, so a day is no one hot partition; the same SMS delivered twice is one row."""
    _, inbound, _ = stores
    sms = reply(None, "who is this?")
    assert await inbound.add(sms) is True
    assert await inbound.add(sms) is False
    entities = [e async for e in inbound._inbound.list_entities()]
    day = sms.received_at.astimezone(timezone.utc).strftime("%Y%m%d")
    [(partition, shard, number, body)] = [(*e["PartitionKey"].rsplit("|", 1), e["From"], e["Body"]) for e in entities]
    assert (partition, number, body) == (f"days|{day}", "+61412000001", "who is this?")
    assert int(shard) in range(UNLINKED_SHARDS)


async def test_reply_routes_keep_the_latest_message_per_number(stores):
    _, inbound, _ = stores
    await inbound.remember_routes([ReplyRoute("+61412000001", "1" * 32, "a" * 32), ReplyRoute("+61412000002", "1" * 32, "a" * 32)])
    await inbound.remember_routes([ReplyRoute("+61412000001", "2" * 32, "b" * 32)])
    assert await inbound.route_for("+61412000001") == ReplyRoute("+61412000001", "2" * 32, "b" * 32)
    assert (await inbound.route_for("+61412000002")).comm_id == "1" * 32
    assert await inbound.route_for("+61412000003") is None


async def test_opt_outs_add_list_and_remove(stores):
    _, _, opt_outs = stores
    await opt_outs.add("a" * 32, "+61412000001", utcnow())
    await opt_outs.add("a" * 32, "+61412000002", utcnow())
    await opt_outs.add("*", "+61412000003", utcnow())
    # The licensee's numbers are {+61412000001, +61412000002}, asked per number as dispatch asks.
    assert (await opt_outs.scopes_for("+61412000001"), await opt_outs.scopes_for("+61412000002")) == ({"a" * 32}, {"a" * 32})
    await opt_outs.remove("a" * 32, "+61412000001")
    await opt_outs.remove("a" * 32, "+61499999999")  # removing what is not there is fine
    assert await opt_outs.scopes_for("+61412000001") == set()
    assert await opt_outs.scopes_for("+61412000002") == {"a" * 32}
    assert await opt_outs.scopes_for("+61412000003") == {"*"}
    assert await opt_outs.scopes_for("+61499999999") == set()


async def test_every_scope_a_number_opted_out_of_is_one_query(stores, round_trips):
    _, _, opt_outs = stores
    gateway, other = "*+61400000000", "*+61400000001"  # every licensee texting from that number
    await opt_outs.add("*", "+61412000003", utcnow())
    await opt_outs.add(gateway, "+61412000001", utcnow())
    await opt_outs.add(gateway, "+61412000002", utcnow())
    await opt_outs.add(other, "+61412000001", utcnow())
    await opt_outs.add("a" * 32, "+61412000001", utcnow())
    await opt_outs.add("a" * 32, "+61412000004", utcnow())

    before = round_trips.count
    scopes = await opt_outs.scopes_for("+61412000001")
    assert round_trips.count - before == 1  # what dispatch reads for one number, whatever the lists hold: one query
    assert scopes == {gateway, other, "a" * 32}
    assert await opt_outs.scopes_for("+61412000002") == {gateway}
    assert await opt_outs.scopes_for("+61412000003") == {"*"}
    assert await opt_outs.scopes_for("+61412000004") == {"a" * 32}
    rows = [(e["PartitionKey"], e["RowKey"]) async for e in opt_outs._table.list_entities()]
    # The number is the partition; the scope, as written, the row.
    assert ("+61412000003", "*") in rows and ("+61412000001", "*+61400000000") in rows and ("+61412000004", "a" * 32) in rows

    await opt_outs.remove(gateway, "+61412000001")
    await opt_outs.remove(other, "+61499999999")  # removing what is not there is fine
    assert await opt_outs.scopes_for("+61412000001") == {other, "a" * 32}
    assert await opt_outs.scopes_for("+61499999999") == set()


async def test_forgetting_a_messages_routes_keeps_one_a_later_message_took_even_after_the_read(stores):
    """Issue 25: routes go with their message; one a later message's send took, before the read or
    between the read and the delete, stays (the delete is conditional on the ETag read)."""
    from tests.integration.test_idempotency_store import BeforeEachDelete

    _, inbound, _ = stores
    old, later = "1" * 32, "2" * 32
    await inbound.remember_routes([ReplyRoute(f"+6141200000{i}", old, "a" * 32) for i in range(4)])
    await inbound.remember_routes([ReplyRoute("+61412000000", later, "a" * 32)])

    async def later_send_takes_the_third():
        await inbound.remember_routes([ReplyRoute("+61412000002", later, "a" * 32)])

    racing = TableInboundStore(inbound._messages, inbound._inbound, BeforeEachDelete(inbound._routes, later_send_takes_the_third))
    assert await racing.forget_routes(old, ["+61412000002"]) == 0  # read as old's, taken before the delete
    numbers = [f"+6141200000{i}" for i in range(5)]  # the fifth has no route
    assert await inbound.forget_routes(old, numbers) == 2
    assert [getattr(await inbound.route_for(n), "comm_id", None) for n in numbers] == [later, None, later, None, None]
