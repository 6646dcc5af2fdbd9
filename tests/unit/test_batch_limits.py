"""Azure's limits on a transaction and its entities, refused before anything is sent, on both paths
(our own request and, with SMS_STORAGE_REQUESTS=sdk, the SDK's). Azurite enforces few of them, so
only these tests stand between a write that passes locally and one Azure refuses.

The limits, as Microsoft documents them:
- https://learn.microsoft.com/en-us/rest/api/storageservices/performing-entity-group-transactions
  "All entities subject to operations as part of the transaction must have the same PartitionKey value."
  "The transaction can include at most 100 entities, and its total payload may be no more than 4 MiB in size."
- https://learn.microsoft.com/en-us/rest/api/storageservices/understanding-the-table-service-data-model
  "An entity can have up to 255 properties, including 3 system properties ... the user may include up to
  252 custom properties"; "Property names are case-sensitive strings up to 255 characters in size";
  Edm.String: "A UTF-16-encoded value. String values may be up to 64 KiB in size."
- https://learn.microsoft.com/en-us/azure/storage/tables/scalability-targets
  "Maximum size of a single entity, including all property values: 1 MiB".
- How Azure counts an entity's size: https://learn.microsoft.com/en-us/archive/blogs/avkashchauhan/
  how-the-size-of-an-entity-is-caclulated-in-windows-azure-table-storage
"""
import pytest
from azure.data.tables.aio import TableClient

from sms.config import azurite_connection_string
from sms.storage.limits import (
    MAX_ENTITY_BYTES,
    MAX_REQUEST_BYTES,
    MAX_STRING_BYTES,
    StorageLimitExceeded,
    check_entity,
    entity_size,
)
from sms.storage.requests import TableTransactions
from tests.unit.capture import CapturingTransport, batch_answer, transactions

PATHS = pytest.mark.parametrize("through_sdk", [False, True], ids=["direct", "sdk"])


@pytest.fixture
def transport():
    return CapturingTransport(batch_answer())


@pytest.fixture
def table(transport):
    return TableClient.from_connection_string(azurite_connection_string(), "SmsMessages", transport=transport)


def row(rk: str, pk: str = "p", **values) -> dict:
    return {"PartitionKey": pk, "RowKey": rk, **values}


async def refused(writer: TableTransactions, entities: list, transport: CapturingTransport, limit: str, *, replace: bool = False):
    with pytest.raises(StorageLimitExceeded) as raised:
        if replace:
            await writer.replace([(e, "*") for e in entities])
        else:
            await writer.create(entities)
    assert raised.value.limit == limit
    assert transport.requests == []  # refused before anything was sent
    return str(raised.value)


async def accepted(writer: TableTransactions, entities: list, transport: CapturingTransport):
    await writer.create(entities)
    assert len(transport.requests) == 1


@PATHS
async def test_one_partition_key_per_transaction(table, transport, through_sdk):
    message = await refused(transactions(table, through_sdk), [row("a"), row("b"), row("c", pk="other")], transport, "PartitionKey")
    assert message == ("A transaction's entities must share one PartitionKey (Azure's rule): operation 2 has 'other', "
                       "the first had 'p'")
    await refused(transactions(table, through_sdk), [row("a"), row("b", pk="other")], transport, "PartitionKey", replace=True)


@PATHS
async def test_at_most_100_operations(table, transport, through_sdk):
    message = await refused(transactions(table, through_sdk), [row(f"r{i}") for i in range(101)], transport, "Operations")
    assert "at most 100 operations" in message and "has 101" in message
    await accepted(transactions(table, through_sdk), [row(f"r{i}") for i in range(100)], transport)


@PATHS
async def test_at_most_4_mib_of_request(table, transport, through_sdk):
    # 100 entities of 41 KiB each: every entity and string within its limits, the whole over 4 MiB.
    big = [row(f"r{i:03d}", A="x" * 21_000, B="y" * 21_000) for i in range(100)]
    message = await refused(transactions(table, through_sdk), big, transport, "RequestSize")
    assert f"at most {MAX_REQUEST_BYTES} bytes (4 MiB" in message
    await accepted(transactions(table, through_sdk), big[:95], transport)


async def test_the_sdks_own_body_is_measured_on_the_sdk_path(table, transport):
    """The SDK writes a larger body than ours (type annotations, per-operation headers): one ours keeps
    under 4 MiB can be over it as the SDK writes it. The SDK path measures the SDK's own body."""
    entities = [row(f"r{i:03d}", **{f"P{p:03d}": "z" * 140 for p in range(252)}) for i in range(100)]
    ours = transactions(table).inserting(entities)
    assert len(ours.request.content) < MAX_REQUEST_BYTES
    message = await refused(transactions(table, through_sdk=True), entities, transport, "RequestSize")
    assert "the SDK wrote" in message


@PATHS
@pytest.mark.parametrize("character, limit_chars", [("a", 32_768), ("é", 32_768), ("😀", 16_384)])
async def test_a_string_property_is_at_most_64_kib_as_utf_16(table, transport, through_sdk, character, limit_chars):
    """64 KiB is 32,768 UTF-16 code units: 32,768 characters of the Basic Multilingual Plane, or half as
    many emoji, each of which is two code units (a surrogate pair)."""
    writer = transactions(table, through_sdk)
    message = await refused(writer, [row("a", Notes=character * (limit_chars + 1))], transport, "StringSize")
    assert f"property Notes is {MAX_STRING_BYTES + 2 * len(character.encode('utf-16-le')) // 2} bytes as UTF-16" in message
    assert f"Azure allows {MAX_STRING_BYTES} bytes (64 KiB)" in message
    await accepted(writer, [row("a", Notes=character * limit_chars)], transport)


def azure_entity_size(entity: dict) -> int:
    """The documented formula, written out again here rather than trusted from the code under test:
    4 bytes + Len(PartitionKey + RowKey) * 2 + For-Each Property(8 + Len(Property Name) * 2 + Sizeof(type)),
    a string being 2 bytes a character + 4, a DateTime 8, an Int 4, a Bool 1."""
    def units(text: str) -> int:
        return len(text.encode("utf-16-le")) // 2

    size = 4 + 2 * units(entity["PartitionKey"] + entity["RowKey"])
    for name, value in entity.items():
        if name in ("PartitionKey", "RowKey") or value is None:
            continue
        sizeof = units(value) * 2 + 4 if isinstance(value, str) else 1 if isinstance(value, bool) else 4
        size += 8 + 2 * units(name) + sizeof
    return size


def entity_of_exactly(size: int) -> dict:
    """15 strings of 64 KiB, and a 16th that brings the entity to `size` bytes as Azure counts them."""
    entity = row("r", **{f"p{i:02d}": "x" * 32_768 for i in range(15)}, Flag=True, Off=False, Count=7)
    entity["p15"] = ""
    entity["p15"] = "x" * ((size - azure_entity_size(entity)) // 2)
    assert azure_entity_size(entity) == entity_size(entity) == size
    return entity


@PATHS
async def test_an_entity_is_at_most_1_mib_as_azure_counts_it(table, transport, through_sdk):
    writer = transactions(table, through_sdk)
    too_big = entity_of_exactly(MAX_ENTITY_BYTES + 2)
    message = await refused(writer, [too_big], transport, "EntitySize")
    assert message == (f"Entity (PartitionKey='p', RowKey='r') is {MAX_ENTITY_BYTES + 2} bytes as Azure counts an "
                       f"entity's size; Azure allows {MAX_ENTITY_BYTES} (1 MiB)")
    await accepted(writer, [entity_of_exactly(MAX_ENTITY_BYTES)], transport)


@PATHS
async def test_at_most_252_properties_besides_the_three_system_ones(table, transport, through_sdk):
    writer = transactions(table, through_sdk)
    many = {f"P{i:03d}": i for i in range(253)}
    message = await refused(writer, [row("a", **many)], transport, "PropertyCount")
    assert "has 253 properties besides PartitionKey, RowKey and Timestamp; Azure allows 252 (255 with those three)" in message
    del many["P252"]
    await accepted(writer, [row("a", **many, Unset=None)], transport)  # a None is not stored, so it does not count


@PATHS
async def test_a_property_name_is_at_most_255_characters(table, transport, through_sdk):
    writer = transactions(table, through_sdk)
    message = await refused(writer, [row("a", **{"N" * 256: 1})], transport, "PropertyName")
    assert "is 256 characters; Azure allows 255" in message
    await accepted(writer, [row("a", **{"N" * 255: 1})], transport)


@pytest.mark.parametrize("character", ["a", '"', "\\", "\x01", "\n", "é", "€", "\u2028", "😀"])
def test_a_small_json_body_cannot_hide_an_oversized_string_or_entity(character):
    """Strings and entity size are measured only when an entity's JSON is over 32 KiB: each UTF-16 code
    unit of text costs at least one byte of that (ASCII) JSON, whatever the character."""
    import json

    from sms.storage.handwritten.odata import entity_json

    text = character * 40_000
    json_bytes = len(json.dumps(entity_json(row("a", T=text)), separators=(",", ":")))
    units = len(text.encode("utf-16-le")) // 2
    assert units <= json_bytes - len('{"PartitionKey":"p","RowKey":"a","T":""}')
    with pytest.raises(StorageLimitExceeded):  # and measured, it is refused when it is too big
        check_entity(row("a", T=character * (MAX_STRING_BYTES // 2 + 1)), 10**9)
