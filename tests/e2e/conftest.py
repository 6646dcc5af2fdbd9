import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from sms.config import PROJECT_ROOT
from sms.dev import azurite, children
from sms.dev.host import spawned

EVENTGRID_SECRET = "e2e-eventgrid-secret"
COMMID_KEY = "e2e-commid-key-0123456789abcdef0123456789"  # at least 32 characters (sms/config.py)


@dataclass
class DevHost:
    base_url: str
    outbox: Path
    env: dict
    output: list[str]

    def request(self, method: str, path: str, body=None, key: str | None = None, headers: dict | None = None):
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers or {})
        if key:
            request.add_header("Authorization", f"Bearer {key}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, _json(response.read())
        except urllib.error.HTTPError as error:
            return error.code, _json(error.read())

    def sent(self) -> list[dict]:
        return outbox_lines(self.outbox)

    def create_key(self, licensee: str, *options: str) -> str:
        """A new key for the licensee, made by the CLI (`options`: `--role admin`, `--read-only`, ...)."""
        result = subprocess.run([sys.executable, "-m", "sms", "keys", "create", "--licensee", licensee, *options],
                                cwd=PROJECT_ROOT, env=self.env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]


def outbox_lines(path: Path) -> list[dict]:
    """The console provider's outbox, its whole lines. Read while a host appends (or after a kill), its last line may
    not be whole yet: that send is still being written, as the provider's own reader allows (sms/providers/console.py)."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8", errors="replace")
    return [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines()]


def _json(raw: bytes):
    return json.loads(raw) if raw else None


@pytest.fixture(scope="session")
def devhost_emulator():
    """The dev host's own Azurite: its queue listener would otherwise take other tests' jobs."""
    with azurite.start() as instance:
        yield instance


@pytest.fixture
def own_emulator():
    """An Azurite for a test that starts its own dev host: the shared dev host polls devhost_emulator's
    queues, and would take that host's jobs and webhook deliveries (and send them by its own settings)."""
    with azurite.start() as instance:
        yield instance


def _devhost_env(connection_string: str, outbox: Path, extra_env: dict[str, str]) -> dict[str, str]:
    # The one-call accept as deployed (issue 30: on wherever a commId key is set), pinned here so neither the shell nor a
    # local.settings.json picks the path; a test passes SMS_ACCEPT_ONE_CALL="off" for the two-call accept.
    return {**os.environ, "AzureWebJobsStorage": connection_string, "SMS_CONSOLE_OUTBOX": str(outbox),
            "SMS_PROVIDER": "console", "SMS_EVENTGRID_SECRET": EVENTGRID_SECRET, "SMS_COMMID_KEY": COMMID_KEY,
            "SMS_COMMID_KEY_PREVIOUS": "", "SMS_ACCEPT_ONE_CALL": "", **extra_env}


@contextlib.contextmanager
def running_devhost(connection_string: str, outbox: Path, **extra_env: str):
    """`python -m sms.dev.host` on a free port against the given storage; stopped on exit."""
    env = _devhost_env(connection_string, outbox, extra_env)
    with spawned(env) as host:
        yield DevHost(host.base_url, outbox, env, host.output)


@pytest.fixture(scope="session")
def devhost(devhost_emulator, tmp_path_factory):
    """The dev host the end-to-end tests share, against its own Azurite."""
    with running_devhost(devhost_emulator.connection_string, tmp_path_factory.mktemp("devhost") / "outbox.jsonl") as host:
        yield host


def wait_for(check, timeout: float = 30.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


# The doomed host hides a message it takes for this long instead of the Functions host's 600 s (and
# renews at half of it, as the host does): long enough for any of its deliveries, short enough that the
# queue hands what it held back before the test's end.
DOOMED_IN_FLIGHT_SECONDS = 8
_DOOMED = ("import sys, sms.dev.host.queues as q; q.IN_FLIGHT_VISIBILITY_SECONDS = {0}; q.RENEW_EVERY_SECONDS = {0} / 2; "
           "from sms.dev.host.host import main; main(sys.argv[1:])")


@contextlib.contextmanager
def doomed_devhost(connection_string: str, outbox: Path, **extra_env: str):
    """The dev host (its own `main`, nothing reimplemented) with the in-flight visibility shortened,
    as `running_devhost` starts it otherwise; yields it and its process, to be killed."""
    env = {**_devhost_env(connection_string, outbox, extra_env), "PYTHONUNBUFFERED": "1"}
    port: list[int] = []

    def listening(line: str) -> bool:
        if match := re.search(r"Dev host listening on http://127\.0\.0\.1:(\d+)", line):
            port.append(int(match.group(1)))
        return bool(port)

    child = children.start([sys.executable, "-c", _DOOMED.format(DOOMED_IN_FLIGHT_SECONDS), "--host", "127.0.0.1", "--port", "0"],
                           listening, what="doomed dev host", cwd=PROJECT_ROOT, env=env)
    try:
        yield DevHost(f"http://127.0.0.1:{port[0]}", outbox, env, child.output), child.process
    finally:
        child.stop()
