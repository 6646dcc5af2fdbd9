"""The job put, written by hand for speed, against the real queue service: what lands is exactly what
the SDK's send_message would have put there, in either encoding, hidden when delayed."""
from datetime import datetime, timedelta, timezone

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.queue import AccountSasPermissions, ResourceTypes, generate_account_sas
from azure.storage.queue.aio import QueueServiceClient

from sms.bootstrap import build
from sms.config import ACCEPT_QUEUE, AZURITE_ACCOUNT, AZURITE_KEY, Settings
from sms.domain.jobs import WholeJob, parse_job
from sms.domain.model import Contact, Message, Recipient, SendJob
from sms.storage.queues import StorageJobQueue, StorageWholeJobQueue, queue_client

# Characters XML treats specially, and some that are not ASCII (in the free-text trace field).
JOB = SendJob(comm_id="a" * 32, first=3, last=99, traceparent="<&>\"'ü✓ ]]>")


@pytest.mark.parametrize("encoding", ["base64", "none"])
async def test_a_put_stores_what_send_message_would_have(queue_service, unique_name, round_trips, encoding):
    name = unique_name("put")
    ours = StorageJobQueue(queue_service, name, encoding)
    await ours.create_queue()
    await queue_client(queue_service, name, encoding).send_message(JOB.to_json())
    round_trips.count = 0

    await ours.put(JOB)

    assert round_trips.count == 1
    raw = [m.content for m in await queue_service.get_queue_client(name).peek_messages(max_messages=2)]
    assert len(raw) == 2 and raw[0] == raw[1]
    decoded = await queue_client(queue_service, name, encoding).peek_messages(max_messages=2)
    assert [SendJob.from_json(m.content) for m in decoded] == [JOB, JOB]


async def test_a_delayed_put_stays_hidden(queue_service, unique_name):
    name = unique_name("put")
    jobs = StorageJobQueue(queue_service, name, "base64")
    await jobs.create_queue()
    await jobs.put(JOB, delay_seconds=60)
    client = queue_service.get_queue_client(name)
    assert await client.peek_messages() == []
    assert (await client.get_queue_properties()).approximate_message_count == 1


async def test_a_put_to_a_missing_queue_is_the_services_404_not_an_outage(queue_service, unique_name):
    with pytest.raises(HttpResponseError) as raised:
        await StorageJobQueue(queue_service, unique_name("missing"), "base64").put(JOB)
    assert raised.value.status_code == 404


def test_an_unknown_encoding_is_refused(queue_service):
    with pytest.raises(ValueError, match="messageEncoding"):
        StorageJobQueue(queue_service, "jobs", "utf-16")


def queue_sas_connection(emulator) -> str:
    """A connection string that carries an account SAS (as a deployment without the account key would)
    instead of the key: the SDK then appends the SAS to every URL it builds, including the queue's url."""
    sas = generate_account_sas(AZURITE_ACCOUNT, AZURITE_KEY, ResourceTypes(service=True, container=True, object=True),
                               AccountSasPermissions(read=True, add=True, create=True, process=True),
                               expiry=datetime.now(timezone.utc) + timedelta(hours=1))
    return f"QueueEndpoint=http://127.0.0.1:{emulator.queue_port}/{AZURITE_ACCOUNT};SharedAccessSignature={sas}"


@pytest.mark.parametrize("delay_seconds", [0, 60])
async def test_a_put_works_with_a_sas_connection_string(emulator, queue_service, unique_name, delay_seconds):
    name = unique_name("sas")
    await queue_service.create_queue(name)
    async with QueueServiceClient.from_connection_string(queue_sas_connection(emulator)) as service:
        assert "sig=" in service.get_queue_client(name).url  # the case that broke: the SAS rides on the queue's url
        await StorageJobQueue(service, name, "base64").put(JOB, delay_seconds=delay_seconds)
    properties = await queue_service.get_queue_client(name).get_queue_properties()
    visible = await queue_client(queue_service, name, "base64").peek_messages()
    assert properties.approximate_message_count == 1
    assert [SendJob.from_json(m.content) for m in visible] == ([] if delay_seconds else [JOB])


def whole_job(notes: str = "") -> WholeJob:
    at = datetime(2026, 12, 7, 1, 2, 3, 456000, tzinfo=timezone.utc)
    message = Message(comm_id="c" * 32, licensee_id="a" * 32, body="<&> ☕ 😀", sender=Contact("Clinic"), recipient_count=2,
                      encoding="UCS-2", segments=1, notes=notes or None, created_at=at)
    return WholeJob.of(message, [Recipient(message.comm_id, i, f"{i:032x}", f"+6141234567{i}", name="Zoë", created_at=at, updated_at=at)
                                 for i in range(2)])


@pytest.mark.parametrize("encoding", ["base64", "none"])
async def test_a_whole_job_lands_as_itself_and_never_expires(queue_service, unique_name, round_trips, encoding):
    """Issue 30: the one-call accept's one durable write. Read back by the queue's own client, as the trigger reads it."""
    name = unique_name("accept")
    queue = StorageWholeJobQueue(queue_service, name, encoding)
    await queue.create_queue()
    job = whole_job()
    round_trips.count = 0

    await queue.put(job)

    assert round_trips.count == 1
    [landed] = await queue_client(queue_service, name, encoding).peek_messages()
    assert parse_job(landed.content) == job and list(parse_job(landed.content).recipients) == list(job.recipients)
    assert landed.expires_on.year == 9999  # messagettl=-1: the service's "never" (it expires in 7 days without it)


async def test_a_whole_job_over_64_kib_encoded_does_not_fit_whatever_azurite_would_take(queue_service, unique_name):
    """Azure refuses a message over 64 KiB of encoded text; Azurite is not trusted to: the queue says it does not fit."""
    queue = StorageWholeJobQueue(queue_service, unique_name("accept"), "base64")
    base = len(whole_job("n").text.encode()) - 1  # all but the notes' characters
    assert len(whole_job("n" * (49_152 - base)).text.encode()) == 49_152
    assert queue.fits(whole_job("n" * (49_152 - base)))
    assert not queue.fits(whole_job("n" * (49_153 - base)))
    assert not queue.fits(whole_job("☕" * 20_000))  # 60,000 bytes of UTF-8 before base64


async def test_the_gateway_creates_the_accept_queue_and_its_poison_queue(emulator):
    """Issue 30: sms-accept exists before anything is put on it or any trigger listens to it, as sms-send does."""
    adapters = build(Settings.from_env({"AzureWebJobsStorage": emulator.connection_string}))
    try:
        await adapters.ensure_storage()
        names = {q.name async for q in adapters.queues.list_queues(name_starts_with=ACCEPT_QUEUE)}
    finally:
        await adapters.close()
    assert names == {ACCEPT_QUEUE, f"{ACCEPT_QUEUE}-poison"}
