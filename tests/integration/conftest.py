import functools
import os
import uuid

import pytest
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueServiceClient

from sms.config import STORAGE_REQUESTS, Settings
from sms.storage.batch import Transactions
from sms.storage.hot_path import HotPathTransport
from sms.storage.queues import StorageJobQueue
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


@pytest.fixture(scope="session")
def storage_requests() -> str:
    return STORAGE_REQUESTS_UNDER_TEST


@pytest.fixture(autouse=True)
async def storage_requests_everywhere(monkeypatch):
    """Every adapter a test builds takes the path under test unless the test says otherwise: those it
    builds itself (given a hot path transport of the test's own under `lean`, as bootstrap gives one
    per process; the SDK path under `sdk`), and those `bootstrap.build` builds from Settings.from_env
    (tests pass it their own environment, which would otherwise leave the setting at its default)."""
    if STORAGE_REQUESTS_UNDER_TEST == "lean":
        hot_path = HotPathTransport()
        for adapter in (Transactions, TableMessageStore, StorageJobQueue):
            monkeypatch.setattr(adapter, "__init__", functools.partialmethod(adapter.__init__, hot_path=hot_path))
        yield
        await hot_path.close()
        return
    if STORAGE_REQUESTS_UNDER_TEST == "sdk":
        for adapter in (Transactions, TableMessageStore, StorageJobQueue):
            monkeypatch.setattr(adapter, "__init__", functools.partialmethod(adapter.__init__, through_sdk=True))
    from_env = Settings.from_env.__func__

    def with_the_setting(cls, environ=None):
        return from_env(cls, None if environ is None else {"SMS_STORAGE_REQUESTS": STORAGE_REQUESTS_UNDER_TEST, **environ})

    monkeypatch.setattr(Settings, "from_env", classmethod(with_the_setting))
    yield



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
