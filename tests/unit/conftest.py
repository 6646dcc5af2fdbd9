import pytest

from sms.service import SmsService
from sms.validation import Limits
from tests.fakes import InMemoryJobQueue, InMemoryMessageStore, RecordingProvider

LICENSEE = "a" * 32
OTHER_LICENSEE = "b" * 32


@pytest.fixture
def store():
    return InMemoryMessageStore()


@pytest.fixture
def queue():
    return InMemoryJobQueue()


@pytest.fixture
def provider():
    return RecordingProvider()


@pytest.fixture
def limits():
    return Limits(default_region="AU", max_recipients=1000, max_body_chars=1600)


@pytest.fixture
def service(store, queue, provider, limits):
    return SmsService(store, queue, provider, limits, send_concurrency=8)
