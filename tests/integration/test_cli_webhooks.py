"""`python -m sms webhooks ...` against Azurite: an operator manages a licensee's endpoints through the
same use case as /api/webhooks, and sees a secret only when it is made."""
import asyncio
import re
import uuid

from sms import cli
from sms.bootstrap import build
from sms.config import Settings


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
