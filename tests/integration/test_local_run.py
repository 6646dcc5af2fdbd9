"""`make run` (sms.dev.localrun) as a newcomer meets it: a second run while one runs, and the key it prints."""
import os
import socket
import subprocess
import sys

from sms.bootstrap import build
from sms.config import PROJECT_ROOT, Settings
from sms.dev.localrun import LOCAL_LICENSEE, local_key, port_in_use, revoke_local_key
from sms.domain.model import utcnow
from sms.usecases.auth import issue_key


async def _active_keys(gateway) -> set[str]:
    return {k.key_id for k in await gateway.keys.list(LOCAL_LICENSEE) if k.active(utcnow())}


async def test_a_second_run_on_a_busy_port_says_so_in_one_line_and_touches_no_key(emulator):
    gateway = build(Settings.from_env({"AzureWebJobsStorage": emulator.connection_string}))
    await gateway.ensure_storage()
    running_key = await issue_key(gateway.keys, LOCAL_LICENSEE, "the first run's")
    before = await _active_keys(gateway)
    with socket.socket() as first_run:  # stands in for the gateway the first `make run` serves
        first_run.bind(("127.0.0.1", 0))
        first_run.listen()
        port = first_run.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "sms.dev.localrun", "--host", "127.0.0.1", "--port", str(port)], cwd=PROJECT_ROOT,
            env={**os.environ, "AzureWebJobsStorage": emulator.connection_string}, capture_output=True, text=True, timeout=60,
        )
    try:
        assert result.returncode == 1
        assert "Traceback" not in result.stderr + result.stdout
        assert result.stderr.strip().splitlines() == [
            f"Port {port} on 127.0.0.1 is already in use (is another `make run` running?): stop it first."
        ]
        assert await _active_keys(gateway) == before  # the running gateway's key still works
        assert running_key.removeprefix("sms_").split(".")[0] in before
    finally:
        await gateway.close()


def test_a_free_port_is_not_reported_in_use():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert not port_in_use("127.0.0.1", port)


async def test_a_run_revokes_only_the_key_it_printed(emulator):
    gateway = build(Settings.from_env({"AzureWebJobsStorage": emulator.connection_string}))
    await gateway.ensure_storage()
    try:
        for old in await _active_keys(gateway):  # earlier tests' keys for the local licensee
            await gateway.keys.revoke(old, utcnow())
        other_run = await issue_key(gateway.keys, LOCAL_LICENSEE, "another run's")
        this_run = await local_key(gateway)
        other_id, this_id = (k.removeprefix("sms_").split(".")[0] for k in (other_run, this_run))
        assert await _active_keys(gateway) == {other_id, this_id}
        mine = [k for k in await gateway.keys.list(LOCAL_LICENSEE) if k.key_id == this_id][0]
        assert mine.expires_at is not None  # a killed run's key lapses by itself
        assert (mine.role, mine.read_only) == ("admin", False)  # issue 29: every page and key route works locally
        await revoke_local_key(gateway, this_run)
        assert await _active_keys(gateway) == {other_id}
    finally:
        await gateway.close()
