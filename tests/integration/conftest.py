import functools
import inspect
import os
import uuid

import pytest
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueServiceClient

from sms.bootstrap import build
from sms.bootstrap import storage_requests as requests_for
from sms.config import STORAGE_REQUESTS, Settings
from sms.storage.pending import TablePendingIndex
from sms.storage.queues import StorageJobQueue, StorageWholeJobQueue
from sms.storage.tables import TableMessageStore

# `SMS_STORAGE_REQUESTS=sdk pytest tests/integration` runs this whole suite with the two hot storage
# requests (a table transaction, a job put) sent through the SDK's submit_transaction and
# send_message instead of the gateway's own: the fallback a user who meets a difference on Azure
# would switch to must pass everything the default passes. `=direct` sends the gateway's own requests
# through the SDK clients' pipelines; unset (`lean`, the default) over the hot path's own transport.
STORAGE_REQUESTS_UNDER_TEST = (os.environ.get("SMS_STORAGE_REQUESTS") or "lean").strip().lower()
if STORAGE_REQUESTS_UNDER_TEST not in STORAGE_REQUESTS:
    raise pytest.UsageError(f"SMS_STORAGE_REQUESTS={STORAGE_REQUESTS_UNDER_TEST!r} is not one of {sorted(STORAGE_REQUESTS)}")


def pytest_report_header(config):
    return f"storage requests: {STORAGE_REQUESTS_UNDER_TEST} (SMS_STORAGE_REQUESTS)"


@pytest.fixture(autouse=True)
async def storage_requests(monkeypatch):
    """The way under test, built as bootstrap builds it for a process (its `setting` names it). Every
    adapter a test builds takes it unless the test gives its own: those it builds itself,
    and those `bootstrap.build` builds from Settings.from_env (tests pass it their own environment,
    which would otherwise leave the setting at its default)."""
    requests = requests_for(STORAGE_REQUESTS_UNDER_TEST)
    for adapter in (TableMessageStore, StorageJobQueue, StorageWholeJobQueue, TablePendingIndex):
        monkeypatch.setattr(adapter, "__init__", _given_unless_passed(adapter.__init__, requests))
    from_env = Settings.from_env.__func__

    def with_the_setting(cls, environ=None):
        return from_env(cls, None if environ is None else {"SMS_STORAGE_REQUESTS": STORAGE_REQUESTS_UNDER_TEST, **environ})

    monkeypatch.setattr(Settings, "from_env", classmethod(with_the_setting))
    yield requests
    await requests.close()


def _given_unless_passed(init, requests):
    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(*args, **kwargs):
        bound = signature.bind_partial(*args, **kwargs)
        bound.arguments.setdefault("requests", requests)
        init(*bound.args, **bound.kwargs)

    return __init__


class RoundTrips:
    """Counts HTTP responses from storage: one per request, however many entities it carries."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, response) -> None:
        self.count += 1


@pytest.fixture
def round_trips():
    return RoundTrips()


@pytest.fixture
async def table_service(emulator, round_trips):
    async with TableServiceClient.from_connection_string(emulator.connection_string, raw_response_hook=round_trips) as service:
        yield service


@pytest.fixture
async def queue_service(emulator, round_trips):
    async with QueueServiceClient.from_connection_string(emulator.connection_string, raw_response_hook=round_trips) as service:
        yield service


@pytest.fixture
def unique_name():
    """Table and queue names no other test uses, so tests share one Azurite without seeing each other."""
    return lambda prefix: f"{prefix}{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def adapters(emulator):
    """The real adapters (bootstrap.build) over the session's Azurite, their tables and queues made."""
    built = build(Settings.from_env({"AzureWebJobsStorage": emulator.connection_string}))
    await built.ensure_storage()
    yield built
    await built.close()
