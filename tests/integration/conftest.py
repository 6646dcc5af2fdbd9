import uuid

import pytest
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueServiceClient



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
