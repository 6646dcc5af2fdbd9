import pytest

from sms.config import Settings
from sms.domain.pacing import RequestRateLimiter
from sms.domain.validation import Limits
from sms.usecases.auth import Authenticator, new_key
from tests.fakes import LICENSEE as WORLD_LICENSEE
from tests.fakes import FakeGateway, InMemoryApiKeyStore, InMemoryJobQueue, InMemoryMessageStore, RecordingProvider, World, sms_over

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
    return sms_over(store, queue, provider, limits=limits, send_concurrency=8)


# Settings the vendors' callbacks need, for the fake gateway below.
SECRET = "grid-secret-123"
TOKEN = "twilio-token-xyz"
PUBLIC = "https://sms.example.org"


@pytest.fixture
async def gw():
    """The app's functions over a World of fakes, with a key for LICENSEE: what the HTTP layer sees."""
    world = World()
    keys = InMemoryApiKeyStore()
    key, record = new_key(WORLD_LICENSEE)
    await keys.add(record)
    return FakeGateway(
        world.use, Authenticator(keys), RequestRateLimiter(0),
        Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "SMS_EVENTGRID_SECRET": SECRET,
                           "SMS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": TOKEN,
                           "TWILIO_FROM_NUMBER": "+61400000000", "SMS_PUBLIC_BASE_URL": PUBLIC}),
        world=world, key=key,
    )
