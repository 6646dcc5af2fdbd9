"""The hand-written requests, proven equal to the ones the Azure SDK builds for the same operations.

Each case builds the same operations twice, through TableClient.submit_transaction or
QueueClient.send_message (aio) and through ours (the message store's transactions, StorageJobQueue.put), over one
capturing transport: what is compared is what the pipeline would have put on the wire, after
authentication and every other policy. Nothing is sent.

Where ours differs from the SDK's on purpose, DIFFERENCES names it, says why, and quotes the
Microsoft documentation that says Azure accepts it; the comparison allows exactly those differences.
"""
from datetime import datetime, timedelta, timezone

import pytest
from azure.core import MatchConditions
from azure.core.credentials import AzureNamedKeyCredential
from azure.data.tables import AccountSasPermissions, ResourceTypes, UpdateMode, generate_account_sas
from azure.data.tables._deserialize import _from_entity_datetime
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue import AccountSasPermissions as QueueSasPermissions
from azure.storage.queue import ResourceTypes as QueueResourceTypes
from azure.storage.queue import generate_account_sas as generate_queue_sas
from azure.storage.queue.aio import QueueServiceClient

from sms.config import AZURITE_ACCOUNT, AZURITE_KEY, azurite_connection_string
from sms.domain.jobs import WholeJob
from sms.domain.model import Contact, Message, Recipient, SendJob
from sms.storage.handwritten.sending import DirectRequests
from sms.storage.queues import StorageJobQueue, StorageWholeJobQueue, queue_client
from sms.storage.sdk_requests import SdkRequests
from tests.unit.capture import CapturingTransport, Operation, batch_answer, parse_batch, transactions

PERFORMING = "https://learn.microsoft.com/en-us/rest/api/storageservices/performing-entity-group-transactions"
PREFER = ("https://learn.microsoft.com/en-us/rest/api/storageservices/"
          "setting-the-prefer-header-to-manage-response-echo-on-insert-operations")
UPDATE_ENTITY = "https://learn.microsoft.com/en-us/rest/api/storageservices/update-entity2"
PAYLOAD_FORMAT = "https://learn.microsoft.com/en-us/rest/api/storageservices/payload-format-for-table-service-operations"

DIFFERENCES = {
    "Prefer: return-no-content on each insert": (
        "The gateway reads only the new row's ETag, so it asks Azure not to echo the entity back. "
        f"{PERFORMING}: 'To suppress the response content echo for the Insert Entity, specify the Prefer header "
        "with the return-no-content value for each insert operation in the change set', as its sample request "
        f"does. {PREFER}: 'If the Prefer header is set to return-no-content, the service will respond with status "
        "code 204 (No Content)'. The page's sample response shows that 204 with the row's ETag."),
    "no Edm.String type annotations": (
        f"{PAYLOAD_FORMAT}, Property Types in a JSON Feed: Edm.String, 'odata.type annotation required: No'; "
        "PartitionKey and RowKey 'are predefined as type Edm.String'. The sample bodies on "
        f"{PERFORMING} carry none. Every other type is annotated exactly as the SDK does (Edm.DateTime)."),
    "no x-ms-version, x-ms-date, Date or Content-Length on each operation": (
        f"{PERFORMING}: the $batch request itself 'must include the x-ms-version header' and is the one that "
        "is signed; the page's JSON sample request sends each operation with only Content-Type, Accept, "
        f"Prefer and DataServiceVersion. {UPDATE_ENTITY} lists x-ms-version as 'Optional' on the operation "
        "itself. An operation's body ends where its MIME part ends."),
    "compact JSON, and no blank line before the closing boundaries": (
        "The same JSON value and the same MIME parts: the bodies here are compared after parsing, with the "
        "standard library's MIME parser."),
}

# The headers of each operation that decide what Azure does with it, and of the $batch request.
OPERATION_HEADERS = ("If-Match", "Content-Type", "DataServiceVersion", "Prefer", "Accept")
OUTER_HEADERS = ("Content-Type", "Accept", "x-ms-version", "DataServiceVersion", "MaxDataServiceVersion")
# The SDK's per-operation headers ours leave out (DIFFERENCES), and ours the SDK leaves out.
SDK_ONLY_HEADERS = {"Content-Length", "x-ms-version", "x-ms-date", "Date"}

PARTITION = "O'Brien ü 😀 100% +&=;,@$!*()[]{}~ it''s"  # Azure forbids only / \ # ? and control characters
READ_BACK = _from_entity_datetime("2026-11-25T01:15:18.8388812Z")  # as the SDK reads it: 7 digits kept


def entities() -> list[dict]:
    return [
        {"PartitionKey": PARTITION, "RowKey": "r000000 'quoted' ✓", "Text": 'she said "hi"\r\n€ 😀 <&> \u2028',
         "Empty": "", "Max": 2**31 - 1, "Min": -(2**31), "Zero": 0, "Flag": True, "Off": False, "Nothing": None,
         "When": datetime(2026, 11, 25, 1, 2, 3, 456789, tzinfo=timezone.utc),
         "Elsewhere": datetime(2026, 11, 25, 11, 2, 3, 7, tzinfo=timezone(timedelta(hours=10))),
         "Whole": datetime(2026, 1, 1, tzinfo=timezone.utc), "ReadBack": READ_BACK},
        {"PartitionKey": PARTITION, "RowKey": "message"},
        {"PartitionKey": PARTITION, "RowKey": "日本語 😀", "Name": "Zoë", "Attempts": 3},
    ]


def account_sas() -> str:
    return generate_account_sas(AzureNamedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY), ResourceTypes(object=True),
                                AccountSasPermissions(add=True, update=True), expiry=datetime(2030, 1, 1, tzinfo=timezone.utc))


def table_service(credential: str, transport: CapturingTransport) -> TableServiceClient:
    endpoint = f"http://127.0.0.1:10002/{AZURITE_ACCOUNT}"
    if credential == "sas":
        return TableServiceClient.from_connection_string(
            f"TableEndpoint={endpoint};SharedAccessSignature={account_sas()}", transport=transport)
    return TableServiceClient.from_connection_string(azurite_connection_string(), transport=transport)


def pick(headers: dict, names: tuple) -> dict:
    lowered = {k.lower(): v for k, v in headers.items()}
    return {name: lowered.get(name.lower()) for name in names}


def without_string_annotations(entity: dict) -> dict:
    """The SDK's entity less its Edm.String annotations, having checked they annotate strings and nothing else."""
    annotated = {k[: -len("@odata.type")] for k, v in entity.items() if k.endswith("@odata.type") and v == "Edm.String"}
    plain_strings = {k for k, v in entity.items()
                     if isinstance(v, str) and "@" not in k and entity.get(f"{k}@odata.type", "Edm.String") == "Edm.String"}
    assert annotated == plain_strings
    return {k: v for k, v in entity.items() if not (k.endswith("@odata.type") and v == "Edm.String")}


def assert_same_transaction(ours_request, sdk_request) -> None:
    ours_outer, ours = parse_batch(ours_request)
    sdk_outer, sdk = parse_batch(sdk_request)
    for outer in (ours_outer, sdk_outer):
        content_type = outer["headers"]["Content-Type"]
        assert content_type.startswith("multipart/mixed; boundary=batch_")
        outer["headers"]["Content-Type"] = "multipart/mixed; boundary=batch_<random>"
    assert (ours_outer["method"], ours_outer["path"], ours_outer["query"]) == (sdk_outer["method"], sdk_outer["path"], sdk_outer["query"])
    assert pick(ours_outer["headers"], OUTER_HEADERS) == pick(sdk_outer["headers"], OUTER_HEADERS)
    assert len(ours) == len(sdk)
    for mine, theirs in zip(ours, sdk, strict=True):
        assert_same_operation(mine, theirs)


def assert_same_operation(ours: Operation, sdk: Operation) -> None:
    assert ours.part_headers == sdk.part_headers  # Content-Type, Content-Transfer-Encoding, Content-ID
    assert (ours.method, ours.path, ours.query) == (sdk.method, sdk.path, sdk.query)
    insert = ours.method == "POST"
    # DIFFERENCES: Prefer on inserts; the SDK's per-operation x-ms-version, x-ms-date, Date, Content-Length.
    assert pick(ours.headers, OPERATION_HEADERS) == {**pick(sdk.headers, OPERATION_HEADERS),
                                                     **({"Prefer": "return-no-content"} if insert else {})}
    assert set(sdk.headers) - set(ours.headers) == SDK_ONLY_HEADERS
    assert set(ours.headers) - set(sdk.headers) == ({"Prefer"} if insert else set())
    # DIFFERENCES: no Edm.String annotations; every value and every other annotation as the SDK writes it.
    assert ours.entity == without_string_annotations(sdk.entity)


@pytest.mark.parametrize("credential", ["key", "sas"])
async def test_inserts_are_the_sdks_operation_by_operation(credential):
    transport = CapturingTransport(batch_answer())
    async with table_service(credential, transport) as service:
        table = service.get_table_client("SmsMessages")
        sdk_etags = [r["etag"] for r in await table.submit_transaction([("create", e) for e in entities()])]
        our_etags = await transactions(table).create(entities())
    sdk, ours = transport.requests
    assert_same_transaction(ours, sdk)
    assert our_etags == sdk_etags == ['W/"etag-0"', 'W/"etag-1"', 'W/"etag-2"']
    _, operations = parse_batch(ours)
    assert [op.path for op in operations] == [f"http://127.0.0.1:10002/{AZURITE_ACCOUNT}/SmsMessages"] * 3
    if credential == "sas":  # on the $batch URL, as the SDK puts it, and on no operation's
        assert "sig" in parse_batch(ours)[0]["query"] and all(op.query == {} for op in operations)


@pytest.mark.parametrize("credential", ["key", "sas"])
async def test_conditional_replaces_are_the_sdks_operation_by_operation(credential):
    etags = ['W/"datetime\'2026-11-25T01%3A15%3A18.8388812Z\'"', 'W/"0x8D101F7E4B662C4"', "*"]
    transport = CapturingTransport(batch_answer())
    async with table_service(credential, transport) as service:
        table = service.get_table_client("SmsMessages")
        await table.submit_transaction([
            ("update", e, {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified})
            for e, etag in zip(entities(), etags, strict=True)])
        await transactions(table).replace(list(zip(entities(), etags, strict=True)))
    sdk, ours = transport.requests
    assert_same_transaction(ours, sdk)
    _, operations = parse_batch(ours)
    assert [op.headers["If-Match"] for op in operations] == etags
    # The keys as the SDK quotes them: ' doubled (OData), then every reserved character percent-encoded.
    assert operations[0].path.endswith(
        "/SmsMessages(PartitionKey='O%27%27Brien%20%C3%BC%20%F0%9F%98%80%20100%25%20%2B%26%3D%3B%2C%40%24%21%2A%28%29"
        "%5B%5D%7B%7D~%20it%27%27%27%27s',RowKey='r000000%20%27%27quoted%27%27%20%E2%9C%93')")


@pytest.mark.parametrize("credential", ["key", "sas"])
async def test_upserts_are_the_sdks_operation_by_operation(credential):
    transport = CapturingTransport(batch_answer())
    async with table_service(credential, transport) as service:
        table = service.get_table_client("SmsMessages")
        await table.submit_transaction([("upsert", e, {"mode": UpdateMode.REPLACE}) for e in entities()])
        await transactions(table).submit(transactions(table).upserting(entities()))
    sdk, ours = transport.requests
    assert_same_transaction(ours, sdk)
    assert [(op.method, "If-Match" in op.headers) for op in parse_batch(ours)[1]] == [("PUT", False)] * 3


async def test_the_sdk_path_sends_what_submit_transaction_sends():
    """SMS_STORAGE_REQUESTS=sdk: the operations go to the SDK itself, which writes its own request."""
    transport = CapturingTransport(batch_answer())
    async with table_service("key", transport) as service:
        table = service.get_table_client("SmsMessages")
        etags = await transactions(table, through_sdk=True).create(entities())
        await table.submit_transaction([("create", e) for e in entities()])
        await transactions(table, through_sdk=True).replace([(e, "*") for e in entities()])
    ours, sdk, replaced = transport.requests
    assert etags == ['W/"etag-0"', 'W/"etag-1"', 'W/"etag-2"']
    ours_ops, sdk_ops = parse_batch(ours)[1], parse_batch(sdk)[1]
    assert [(o.method, o.path, o.headers.get("Prefer"), o.entity) for o in ours_ops] == [
        (o.method, o.path, None, o.entity) for o in sdk_ops]
    assert all("PartitionKey@odata.type" in o.entity for o in ours_ops)  # the SDK's own body, not ours
    assert [o.headers["If-Match"] for o in parse_batch(replaced)[1]] == ["*"] * 3


JOB = SendJob(comm_id="a" * 32, first=3, last=99, traceparent="<&>\"'ü✓ ]]> 😀")
# Headers that differ between any two requests (a fresh id, the time, the signature over the time).
PER_REQUEST_HEADERS = {"x-ms-client-request-id", "x-ms-date", "date", "authorization"}


def queue_answer(request):
    return 201, {"Content-Type": "application/xml"}, (
        b"<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessagesList><QueueMessage><MessageId>m</MessageId>"
        b"<InsertionTime>Wed, 25 Nov 2026 01:02:03 GMT</InsertionTime><ExpirationTime>Wed, 02 Dec 2026 01:02:03 GMT"
        b"</ExpirationTime><PopReceipt>p</PopReceipt><TimeNextVisible>Wed, 25 Nov 2026 01:02:03 GMT</TimeNextVisible>"
        b"</QueueMessage></QueueMessagesList>")


def queue_service(credential: str, transport: CapturingTransport) -> QueueServiceClient:
    if credential == "sas":
        sas = generate_queue_sas(AZURITE_ACCOUNT, AZURITE_KEY, QueueResourceTypes(object=True), QueueSasPermissions(add=True),
                                 expiry=datetime(2030, 1, 1, tzinfo=timezone.utc))
        return QueueServiceClient.from_connection_string(
            f"QueueEndpoint=http://127.0.0.1:10001/{AZURITE_ACCOUNT};SharedAccessSignature={sas}", transport=transport)
    return QueueServiceClient.from_connection_string(azurite_connection_string(), transport=transport)


@pytest.mark.parametrize("encoding", ["base64", "none"])
@pytest.mark.parametrize("delay_seconds", [0, 45])
@pytest.mark.parametrize("credential", ["key", "sas"])
@pytest.mark.parametrize("through_sdk", [False, True])
async def test_a_job_put_is_send_message_byte_for_byte(encoding, delay_seconds, credential, through_sdk):
    transport = CapturingTransport(queue_answer)
    async with queue_service(credential, transport) as service:
        await StorageJobQueue(service, "sms-send", encoding, SdkRequests() if through_sdk else DirectRequests()).put(JOB,
                                                                                                                     delay_seconds=delay_seconds)
        await queue_client(service, "sms-send", encoding).send_message(JOB.to_json(), visibility_timeout=delay_seconds or None,
                                                                       time_to_live=-1 if delay_seconds else None)
    ours, sdk = transport.requests
    assert (ours.method, ours.url, bytes(ours.content)) == (sdk.method, sdk.url, bytes(sdk.content))
    same = {k.lower(): v for k, v in ours.headers.items() if k.lower() not in PER_REQUEST_HEADERS}
    assert same == {k.lower(): v for k, v in sdk.headers.items() if k.lower() not in PER_REQUEST_HEADERS}
    assert set(same) >= {"content-type", "accept", "x-ms-version", "content-length", "user-agent"}
    signed = {"Authorization" in request.headers for request in (ours, sdk)}
    assert signed == {credential == "key"}  # a SAS authorizes by the URL instead
    assert ("visibilitytimeout=45&messagettl=-1" in ours.url) is bool(delay_seconds)
    assert ("sig=" in ours.url) is (credential == "sas") and "/sms-send/messages" in ours.url


@pytest.mark.parametrize("encoding", ["base64", "none"])
@pytest.mark.parametrize("credential", ["key", "sas"])
@pytest.mark.parametrize("through_sdk", [False, True])
async def test_a_whole_job_put_never_expires_and_is_send_message_byte_for_byte(encoding, credential, through_sdk):
    """Issue 30: the one-call accept's job is the message's only copy until the worker writes its rows, so it is put
    with messagettl=-1 (Put Message: omitted, a message expires after 7 days), and otherwise as send_message puts it."""
    message = Message(comm_id="c" * 32, licensee_id="a" * 32, body="<&> ☕ 😀", sender=Contact(), recipient_count=1,
                      encoding="UCS-2", segments=1, created_at=datetime(2026, 12, 7, 1, 2, 3, 456000, tzinfo=timezone.utc))
    whole = WholeJob.of(message, [Recipient(message.comm_id, 0, "r" * 32, "+61412345678", created_at=message.created_at,
                                            updated_at=message.created_at)])
    transport = CapturingTransport(queue_answer)
    async with queue_service(credential, transport) as service:
        await StorageWholeJobQueue(service, "sms-accept", encoding, SdkRequests() if through_sdk else DirectRequests()).put(whole)
        await queue_client(service, "sms-accept", encoding).send_message(whole.to_json(), time_to_live=-1)
    ours, sdk = transport.requests
    assert (ours.method, ours.url, bytes(ours.content)) == (sdk.method, sdk.url, bytes(sdk.content))
    same = {k.lower(): v for k, v in ours.headers.items() if k.lower() not in PER_REQUEST_HEADERS}
    assert same == {k.lower(): v for k, v in sdk.headers.items() if k.lower() not in PER_REQUEST_HEADERS}
    assert "messagettl=-1" in ours.url and "visibilitytimeout" not in ours.url and "/sms-accept/messages" in ours.url
