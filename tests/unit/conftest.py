from types import SimpleNamespace

import pytest

from sms import api, callbacks
from sms.auth import Authenticator, new_key
from sms.config import Settings
from sms.pacing import RequestRateLimiter
from tests.fakes import LICENSEE as WORLD_LICENSEE
from tests.fakes import InMemoryApiKeyStore, World

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


# Settings the vendors' callbacks need, for the fake gateway below.
SECRET = "grid-secret-123"
TOKEN = "twilio-token-xyz"
PUBLIC = "https://sms.example.org"


@pytest.fixture
async def gw(monkeypatch, indexed_functions):
    """The app's functions over a World of fakes, with a key for LICENSEE: what the HTTP layer sees."""
    world = World()
    keys = InMemoryApiKeyStore()
    key, record = new_key(WORLD_LICENSEE)
    await keys.add(record)
    gateway = SimpleNamespace(
        world=world, sms=world.sms, inbound=world.inbound, auth=Authenticator(keys), requests=RequestRateLimiter(0), key=key,
        settings=Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "SMS_EVENTGRID_SECRET": SECRET,
                                    "TWILIO_AUTH_TOKEN": TOKEN, "SMS_PUBLIC_BASE_URL": PUBLIC}),
        functions={name: fn.get_user_function() for name, fn in indexed_functions.items()},
    )

    async def fake_gateway():
        return gateway

    monkeypatch.setattr(api, "gateway", fake_gateway)
    monkeypatch.setattr(callbacks, "gateway", fake_gateway)
    return gateway


