"""The real adapters wired by bootstrap.build, over Azurite, with the console provider writing an outbox."""
import json
import os
import subprocess
import sys

import pytest
from azure.storage.queue.aio import QueueServiceClient

from sms.bootstrap import build
from sms.config import PROJECT_ROOT, SEND_QUEUE, Settings
from sms.domain.errors import Unauthenticated
from sms.domain.model import SendJob
from sms.storage.queues import queue_client
from sms.usecases.auth import Authenticator
from tests.fakes import command, sms_of

LICENSEE = "c" * 32


@pytest.fixture
async def gateway(emulator, tmp_path):
    settings = Settings.from_env({"AzureWebJobsStorage": emulator.connection_string, "SMS_CONSOLE_OUTBOX": str(tmp_path / "outbox.jsonl")})
    gw = build(settings)
    await gw.ensure_storage()
    yield gw
    await gw.close()


def outbox(gw) -> list[dict]:
    path = gw.settings.console_outbox
    return [json.loads(line) for line in open(path)] if os.path.exists(path) else []


async def take_jobs(emulator, comm_id: str) -> list[SendJob]:
    """Receive this message's jobs from the real queue, decoded as the trigger decodes them."""
    async with QueueServiceClient.from_connection_string(emulator.connection_string) as service:
        queue = queue_client(service, SEND_QUEUE, "base64")
        jobs = []
        async for m in queue.receive_messages(max_messages=32, visibility_timeout=60):
            job = SendJob.from_json(m.content)
            if job.comm_id == comm_id:
                jobs.append(job)
                await queue.delete_message(m)
        return sorted(jobs, key=lambda j: j.first)


async def test_accepted_message_is_queued_sent_once_and_reported(gateway, emulator):
    numbers = [f"+614123{i:05d}" for i in range(150)]
    response = await sms_of(gateway).accept(command(*numbers, body="Flu clinic"), LICENSEE)
    jobs = await take_jobs(emulator, response.comm_id)
    assert jobs == [SendJob(response.comm_id, 0, 99), SendJob(response.comm_id, 100, 149)]

    for job in jobs:
        await sms_of(gateway).dispatch(job)
    for job in jobs:  # every delivery may be the second one
        await sms_of(gateway).dispatch(job)

    sent = outbox(gateway)
    assert sorted(line["to"] for line in sent) == numbers
    report = await sms_of(gateway).status(response.comm_id, LICENSEE)
    assert report.status == "sent"
    assert {r.provider_message_id for r in report.recipients} == {line["providerMessageId"] for line in sent}


async def test_keys_add_list_revoke(gateway):
    from sms.domain.model import utcnow
    from sms.usecases.auth import new_key

    key, record = new_key(LICENSEE, "ops")
    await gateway.keys.add(record)
    auth = Authenticator(gateway.keys, cache_seconds=0)
    assert await auth.licensee_for(key) == LICENSEE
    assert record.key_id in [r.key_id for r in await gateway.keys.list(LICENSEE)]
    assert await gateway.keys.revoke(record.key_id, utcnow()) is True
    assert await gateway.keys.revoke("0" * 16, utcnow()) is False
    with pytest.raises(Unauthenticated, match="revoked"):
        await auth.licensee_for(key)


def cli(emulator, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "AzureWebJobsStorage": emulator.connection_string}
    return subprocess.run([sys.executable, "-m", "sms", *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)


async def test_cli_prints_a_working_key_alone_on_the_last_line_and_revokes_it(gateway, emulator):
    created = cli(emulator, "keys", "create", "--licensee", "DDDDDDDD-DDDD-DDDD-DDDD-DDDDDDDDDDDD", "--name", "crm")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    auth = Authenticator(gateway.keys, cache_seconds=0)
    assert await auth.licensee_for(key) == "d" * 32

    listed = cli(emulator, "keys", "list", "--licensee", "d" * 32)
    key_id = key[4:20]
    assert key_id in listed.stdout and "active" in listed.stdout and key.split(".")[1] not in listed.stdout

    revoked = cli(emulator, "keys", "revoke", key)  # the whole key works too, and is not echoed back
    assert revoked.returncode == 0 and revoked.stdout.strip() == f"Revoked {key_id}"
    with pytest.raises(Unauthenticated, match="revoked"):
        await auth.licensee_for(key)
    assert cli(emulator, "keys", "revoke", "0" * 16).returncode == 1


async def test_cli_rotates_a_key_and_limits_active_keys(gateway, emulator):
    licensee = "9" * 32
    first = cli(emulator, "keys", "create", "--licensee", licensee, "--expires-in-days", "30").stdout.strip().splitlines()[-1]
    rotated = cli(emulator, "keys", "rotate", "--licensee", licensee, "--grace-hours", "2")
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip().splitlines()[-1]
    assert first[4:20] in rotated.stdout and new != first
    refused = cli(emulator, "keys", "create", "--licensee", licensee)
    assert refused.returncode == 2 and "already has 2 active keys" in refused.stderr
    listed = cli(emulator, "keys", "list", "--licensee", licensee).stdout
    assert listed.count("active") == 2 and "never" in listed  # the new key never expires; the old one does soon
    auth = Authenticator(gateway.keys, cache_seconds=0)
    assert await auth.licensee_for(first) == await auth.licensee_for(new) == licensee


async def test_cli_rotates_the_key_it_is_told_to_under_its_name(gateway, emulator):
    """Issue 25: with two active keys, rotate refused, and the new key had no name."""
    licensee = "8" * 32
    crm = cli(emulator, "keys", "create", "--licensee", licensee, "--name", "crm").stdout.strip().splitlines()[-1]
    billing = cli(emulator, "keys", "create", "--licensee", licensee, "--name", "billing").stdout.strip().splitlines()[-1]
    unchosen = cli(emulator, "keys", "rotate", "--licensee", licensee)
    assert unchosen.returncode == 2 and "--key-id" in unchosen.stderr and crm[4:20] in unchosen.stderr, unchosen.stderr
    unknown = cli(emulator, "keys", "rotate", "--licensee", licensee, "--key-id", "0" * 16)
    assert unknown.returncode == 1 and "no active key" in unknown.stderr
    rotated = cli(emulator, "keys", "rotate", "--licensee", licensee, "--key-id", crm, "--grace-hours", "2")  # the whole key works too
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip().splitlines()[-1]
    assert crm[4:20] in rotated.stdout and "'crm'" in rotated.stdout and crm.split(".")[1] not in rotated.stdout
    rows = {line.split()[0]: line for line in cli(emulator, "keys", "list", "--licensee", licensee).stdout.splitlines()[1:]}
    assert rows[new[4:20]].endswith(" crm") and " never " in rows[new[4:20]]
    assert rows[billing[4:20]].endswith(" billing") and " never " in rows[billing[4:20]]
    assert " never " not in rows[crm[4:20]]  # it stops at the end of the grace period
    auth = Authenticator(gateway.keys, cache_seconds=0)
    assert {await auth.licensee_for(k) for k in (crm, billing, new)} == {licensee}


async def test_cli_creates_admin_and_read_only_keys_and_lists_what_each_may_do(gateway, emulator):
    """Issue 29: keys gain a role and a read-only flag; `keys list` shows both."""
    licensee = "7" * 32
    admin = cli(emulator, "keys", "create", "--licensee", licensee, "--role", "admin", "--name", "ops")
    viewer = cli(emulator, "keys", "create", "--licensee", licensee, "--read-only", "--name", "desk")
    assert admin.returncode == viewer.returncode == 0, admin.stderr + viewer.stderr
    admin_key, viewer_key = (done.stdout.strip().splitlines()[-1] for done in (admin, viewer))
    assert "admin" in admin.stdout.splitlines()[0] and "read-only" in viewer.stdout.splitlines()[0]
    auth = Authenticator(gateway.keys, cache_seconds=0)
    assert (await auth.principal_for(admin_key)).role == "admin" and (await auth.principal_for(viewer_key)).read_only
    rows = {line.split()[0]: line for line in cli(emulator, "keys", "list", "--licensee", licensee).stdout.splitlines()[1:]}
    assert rows[admin_key[4:20]].split()[2:4] == ["admin", "full"] and rows[viewer_key[4:20]].split()[2:4] == ["licensee", "read-only"]
    refused = cli(emulator, "keys", "create", "--licensee", licensee, "--role", "owner")
    assert refused.returncode == 2 and "owner" in refused.stderr


async def test_with_storage_down_a_send_is_storage_unavailable_and_changes_nothing():
    from sms.domain.errors import StorageUnavailable

    dead = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;TableEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    gw = build(Settings.from_env({"AzureWebJobsStorage": dead}))
    try:
        with pytest.raises(StorageUnavailable):
            await sms_of(gw).accept(command("+61412345678", body="hi"), LICENSEE)
    finally:
        await gw.close()


async def test_health_reports_storage_and_provider(gateway):
    console, simulator = {"name": "console", "status": "ok"}, {"name": "simulator", "status": "ok"}
    assert await gateway.health() == {"status": "ok", "storage": {"status": "ok"}, "provider": console,
                                      "providers": [console, simulator]}
    dead = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;TableEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    down = build(Settings.from_env({"AzureWebJobsStorage": dead}))
    try:
        report = await down.health()
    finally:
        await down.close()
    assert report["status"] == "unhealthy" and report["storage"]["status"].startswith("unavailable")
    assert "AccountKey" not in str(report) and "a2V5" not in str(report)


async def test_health_is_degraded_while_one_provider_is_down_and_unhealthy_when_every_one_is(gateway):
    from sms.providers import ProviderSet
    from tests.fakes import RecordingProvider

    class Down(RecordingProvider):
        def __init__(self, name):
            super().__init__()
            self.name = name

        async def check(self):
            return "unreachable (ClientConnectorError)"

    up = RecordingProvider()
    gateway.providers = ProviderSet([Down("acs-au"), up])
    report = await gateway.health()
    assert report["status"] == "degraded"
    assert report["providers"] == [{"name": "acs-au", "status": "unreachable (ClientConnectorError)"}, {"name": up.name, "status": "ok"}]
    gateway.providers = ProviderSet([Down("acs-au"), Down("twilio-us")])
    assert (await gateway.health())["status"] == "unhealthy"
