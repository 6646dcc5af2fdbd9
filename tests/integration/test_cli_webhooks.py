"""`python -m sms webhooks ...` against Azurite: an operator manages a licensee's endpoints through the
same use case as /api/webhooks, and sees a secret only when it is made."""
import asyncio
import json
import re
import uuid
from datetime import datetime, timedelta, timezone

from azure.storage.queue.aio import QueueServiceClient

from sms.bootstrap import build
from sms.config import Settings, queue_message_encoding
from sms.domain.events import Delivery, EventBatch, WebhookEvent, batch_id, located
from sms.entrypoints import cli
from sms.storage import DeliveryRecord
from sms.storage.queues import StorageDeliveryQueue, queue_client
from sms.usecases import delivery


async def _run(argv: list[str]) -> int:
    """cli.main runs its own event loop: run it in a thread, as a shell would run it in a process."""
    return await asyncio.to_thread(cli.main, argv)


async def stored(connection: str, licensee: str, endpoint_id: str):
    adapters = build(Settings.from_env({"AzureWebJobsStorage": connection}))
    try:
        return await adapters.webhooks.get(licensee, endpoint_id)
    finally:
        await adapters.close()


async def test_webhooks_add_list_rotate_enable_remove(emulator, monkeypatch, capsys):
    licensee, other = uuid.uuid4().hex, uuid.uuid4().hex
    monkeypatch.setenv("AzureWebJobsStorage", emulator.connection_string)
    monkeypatch.delenv("SMS_WEBHOOKS_ALLOW_PRIVATE", raising=False)
    monkeypatch.setattr(cli, "load_local_settings", lambda: None)

    assert await _run(["webhooks", "add", "--licensee", licensee, "--url", "https://hooks.example.org/sms",
                       "--events", "message.failed, reply.received,message.failed"]) == 0
    out = capsys.readouterr().out.splitlines()
    secret = out[-1]
    assert secret.startswith("whsec_") and "cannot be shown again" in out[-2]
    endpoint_id = re.search(r"Added webhook endpoint ([0-9a-f]{32}) ", out[-2]).group(1)
    endpoint = await stored(emulator.connection_string, licensee, endpoint_id)
    assert endpoint.secret.value == secret and endpoint.event_types == ("message.failed", "reply.received")

    assert await _run(["webhooks", "list", "--licensee", licensee]) == 0
    listed = capsys.readouterr().out
    assert endpoint_id in listed and "message.failed,reply.received" in listed and "enabled" in listed
    assert secret not in listed and secret.removeprefix("whsec_") not in listed

    assert await _run(["webhooks", "rotate-secret", "--licensee", licensee, endpoint_id.upper()]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("whsec_") and out[-1] != secret and "the previous one stops signing at" in out[-2]
    rotated = await stored(emulator.connection_string, licensee, endpoint_id)
    assert rotated.secret.value == out[-1] and rotated.previous_secret.value == secret

    assert await _run(["webhooks", "enable", "--licensee", licensee, endpoint_id]) == 0
    assert f"Enabled webhook endpoint {endpoint_id}" in capsys.readouterr().out

    # Another licensee's endpoint is not found; a URL that is not public https is refused with the reason.
    assert await _run(["webhooks", "remove", "--licensee", other, endpoint_id]) == 1
    assert f"No webhook endpoint with id {endpoint_id}" in capsys.readouterr().err
    assert await _run(["webhooks", "add", "--licensee", licensee, "--url", "https://10.0.0.5/hook"]) == 2
    assert "Url: must reach the public internet: 10.0.0.5 is a private address" in capsys.readouterr().err
    assert await _run(["webhooks", "add", "--licensee", licensee, "--url", "https://hooks.example.org/", "--events", "x.y"]) == 2
    assert "'x.y' is not an event type" in capsys.readouterr().err

    assert await _run(["webhooks", "remove", "--licensee", licensee, endpoint_id]) == 0
    assert f"Removed webhook endpoint {endpoint_id}" in capsys.readouterr().out
    assert await stored(emulator.connection_string, licensee, endpoint_id) is None
    assert await _run(["webhooks", "list", "--licensee", licensee]) == 0
    assert endpoint_id not in capsys.readouterr().out


DAY = datetime(2026, 11, 20, tzinfo=timezone.utc)


async def written(connection: str, licensee: str, endpoint_id: str) -> list[WebhookEvent]:
    """Three batches of the licensee's events on DAY, another licensee's batch, and the endpoint's delivery log."""
    adapters = build(Settings.from_env({"AzureWebJobsStorage": connection}))
    try:
        await adapters.ensure_storage()
        events = []
        for hour, owner in ((1, licensee), (2, licensee), (3, licensee), (4, uuid.uuid4().hex)):
            comm_id, batch = uuid.uuid4().hex, batch_id(DAY + timedelta(hours=hour))
            event_id = f"evt_{batch}_{comm_id}_0s"
            event = WebhookEvent(event_id, "message.sent", json.dumps({"id": event_id, "type": "message.sent", "data": {"n": hour}}))
            await adapters.events.add(EventBatch(owner, comm_id, batch, (event,)))
            events.append(event)
        await adapters.delivery_log.add([
            DeliveryRecord(licensee, endpoint_id, DAY + timedelta(hours=h, minutes=1), e.id, e.type, 1, outcome, status, 30, error)
            for h, e, outcome, status, error in ((1, events[0], "delivered", 200, None), (2, events[1], "retry", 503,
                                                                                          "503 Service Unavailable"),
                                                 (3, events[2], "blocked", None, "resolves to 10.0.0.5, a private address"))])
        return events
    finally:
        await adapters.close()


async def test_webhooks_deliveries_and_replay(emulator, monkeypatch, capsys, unique_name):
    licensee, other = uuid.uuid4().hex, uuid.uuid4().hex
    monkeypatch.setenv("AzureWebJobsStorage", emulator.connection_string)
    monkeypatch.setattr(cli, "load_local_settings", lambda: None)
    monkeypatch.setattr(delivery, "REPLAY_BATCHES", 2)  # so a range needs two requests: the CLI goes on by itself
    hooks_queue, built = unique_name("hooks"), cli.build

    def with_its_own_delivery_queue(settings, *args, **kwargs):
        adapters = built(settings, *args, **kwargs)
        adapters.deliveries = StorageDeliveryQueue(adapters.queues, hooks_queue, queue_message_encoding())
        return adapters

    monkeypatch.setattr(cli, "build", with_its_own_delivery_queue)
    assert await _run(["webhooks", "add", "--licensee", licensee, "--url", "https://hooks.example.org/sms"]) == 0
    endpoint_id = re.search(r"Added webhook endpoint ([0-9a-f]{32}) ", capsys.readouterr().out).group(1)
    first, second, third, theirs = await written(emulator.connection_string, licensee, endpoint_id)

    assert await _run(["webhooks", "deliveries", "--licensee", licensee, endpoint_id.upper(), "--take", "2"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split()[:4] == ["AT", "EVENT", "TYPE", "ATTEMPT"] and len(rows) == 2
    assert rows[0].startswith("2026-11-20 03:01:00 message.sent") and "blocked" in rows[0] and third.id in rows[0]
    assert "resolves to 10.0.0.5" in rows[0] and " - " in rows[0]  # no status code came
    assert "retry" in rows[1] and " 503 " in rows[1] and second.id in rows[1]
    assert await _run(["webhooks", "deliveries", "--licensee", licensee, endpoint_id]) == 0
    assert [line.split()[-1] for line in capsys.readouterr().out.splitlines()[1:]][-1] == first.id

    assert await _run(["webhooks", "replay", "--licensee", licensee, endpoint_id, "--event", second.id]) == 0
    assert f"Queued event {second.id} (message.sent) for webhook endpoint {endpoint_id}" in capsys.readouterr().out
    assert await _run(["webhooks", "replay", "--licensee", licensee, endpoint_id, "--from", "2026-11-20T11:00:00+11:00",
                       "--to", "2026-11-20"]) == 0
    assert "Queued 3 batch(es) of events written from 2026-11-20T00:00:00+00:00 to 2026-11-21T00:00:00+00:00" in capsys.readouterr().out

    queue = queue_client(QueueServiceClient.from_connection_string(emulator.connection_string), hooks_queue, queue_message_encoding())
    async with queue:
        deliveries = [Delivery.from_json(m.content) for m in await queue.peek_messages(max_messages=32)]
    assert all(d.replay and d.endpoint_id == endpoint_id and d.licensee_id == licensee for d in deliveries)
    assert [(d.batch, d.only) for d in deliveries] == [(located(second.id)[0], (second.id,))] + \
        [(located(e.id)[0], None) for e in (first, second, third)]
    assert theirs.id.split("_")[1] not in {d.batch for d in deliveries}

    # Each wrong request is refused naming the field, as POST /api/webhooks/{endpointId}/replay refuses it.
    for wrong, said in ((["--event", first.id, "--from", "2026-11-20", "--to", "2026-11-21"], "EventId: give EventId"),
                        (["--from", "2026-11-20"], "To: is required with From"),
                        ([], "EventId: give EventId (one event), or From and To"),
                        (["--from", "2026-11-20T09:00:00", "--to", "2026-11-21"], "From: must be a day"),
                        (["--from", "2026-11-21", "--to", "2026-11-20"], "From must be before To")):
        assert await _run(["webhooks", "replay", "--licensee", licensee, endpoint_id, *wrong]) == 2
        assert said in capsys.readouterr().err
    assert await _run(["webhooks", "deliveries", "--licensee", licensee, endpoint_id, "--take", "0"]) == 2
    assert "take must be from 1 to 200" in capsys.readouterr().err
    for action in (["deliveries"], ["replay", "--event", first.id]):
        assert await _run(["webhooks", action[0], "--licensee", other, endpoint_id, *action[1:]]) == 1
        assert f"No webhook endpoint with id {endpoint_id}" in capsys.readouterr().err
