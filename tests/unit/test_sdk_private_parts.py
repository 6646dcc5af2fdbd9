"""Every private part of an Azure SDK the gateway reads, each named by a test here, so an SDK upgrade that
moves one fails a test saying which (and where the gateway reads it) instead of a request at run time.

- azure-core's `parse_retry_after` (azure.core.pipeline.policies._utils): no longer imported; the hot path
  reads Retry-After itself (sms/storage/handwritten/retries.py) and the test below holds it to azure-core's.
- What the hot path reads of an SDK client's pipeline at start (transport.pipeline_parts), and the generated
  client =direct sends through (sending.ThroughPipeline).
- What AcsProvider reads of azure-communication-sms's SmsClient (sms/providers/acs.py).
"""
import base64
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from azure.communication.sms.aio import SmsClient
from azure.data.tables.aio import TableClient
from azure.storage.queue.aio import QueueClient

from sms.config import azurite_connection_string
from sms.domain.pacing import retry_after_seconds
from sms.storage.handwritten.transport import pipeline_parts


def reach(obj, path: str, where: str):
    """obj.<path>, failing with the first attribute on the way that is gone."""
    walked = []
    for name in path.split("."):
        walked.append(name)
        if not hasattr(obj, name):
            pytest.fail(f"{type(obj).__module__}.{type(obj).__qualname__} has no `{name}` (reading `{'.'.join(walked)}`), "
                        f"which {where} reads: the SDK moved it")
        obj = getattr(obj, name)
    return obj


def in_seconds(delta: timedelta) -> str:
    return format_datetime(datetime.now(timezone.utc) + delta, usegmt=True)


@pytest.mark.parametrize("value", [
    "0", "5", "1.5", "-3", "120", " 7 ", "1e2", "nan", "inf", "", "soon", "5s",
    in_seconds(timedelta(seconds=90)), in_seconds(timedelta(hours=-1)), "Wed, 25 Nov 2026 01:02:03 +1000",
    "Wed, 25 Nov 2099 01:02:03", "Wed, 25 Nov 2099 01:02:03 XYZ", "Wed, 32 Nov 2026 01:02:03 GMT", "25 Nov 2099 01:02:03 -0800",
])
def test_azure_cores_parse_retry_after_reads_each_retry_after_as_the_hot_path_does(value):
    """azure.core.pipeline.policies._utils.parse_retry_after: what azure-core's RetryPolicy waits for a
    Retry-After, under azure-data-tables. The hot path waits the same (None: where azure-core's raises,
    the hot path falls back to its backoff, as it did when it called azure-core's)."""
    try:
        from azure.core.pipeline.policies._utils import parse_retry_after
    except ImportError as exc:
        pytest.fail(f"azure.core.pipeline.policies._utils.parse_retry_after is gone ({exc}): compare "
                    "sms/storage/handwritten/retries.py retry_after_seconds with what azure-core's RetryPolicy now uses")
    try:
        theirs = max(0.0, parse_retry_after(value))
    except (ValueError, TypeError):
        theirs = None
    ours = retry_after_seconds(value)
    if theirs is None or ours is None:
        assert ours == theirs
    else:
        assert ours == pytest.approx(theirs, abs=1.5)  # a date counts from now, read twice


@pytest.mark.parametrize("client, agent", [
    (lambda hook: QueueClient.from_connection_string(azurite_connection_string(), "q", raw_response_hook=hook),
     "azsdk-python-storage-queue"),
    (lambda hook: TableClient.from_connection_string(azurite_connection_string(), "T", raw_response_hook=hook), "azsdk-python-data-tables"),
])
async def test_the_pipeline_parts_the_hot_path_reads_at_start_are_where_it_reads_them(client, agent):
    """`<client>._client._client._pipeline._impl_policies`, each policy's `_policy` (when wrapped),
    `user_agent` and `_response_callback`: the User-Agent the hot path sends and the raw_response_hook it
    calls (sms/storage/handwritten/transport.py pipeline_parts)."""
    def hook(response):
        pass

    async with client(hook) as sdk_client:
        where = "sms/storage/handwritten/transport.py pipeline_parts"
        policies = reach(sdk_client, "_client._client._pipeline._impl_policies", where)
        unwrapped = [getattr(policy, "_policy", policy) for policy in policies]
        assert any(hasattr(policy, "user_agent") for policy in unwrapped), f"no policy has `user_agent`, which {where} reads"
        assert any(getattr(policy, "_response_callback", None) is hook for policy in unwrapped), (
            f"no policy has `_response_callback`, which {where} reads")
        user_agent, found = pipeline_parts(sdk_client)
    assert user_agent.startswith(agent) and found is hook


@pytest.mark.parametrize("client", [
    lambda: QueueClient.from_connection_string(azurite_connection_string(), "q"),
    lambda: TableClient.from_connection_string(azurite_connection_string(), "T"),
])
async def test_the_generated_client_direct_sends_through_is_where_it_is_read(client):
    """`<client>._client.send_request`: the generated client's public method, whose pipeline is the
    client's (SMS_STORAGE_REQUESTS=direct, sms/storage/handwritten/sending.py ThroughPipeline)."""
    async with client() as sdk_client:
        assert callable(reach(sdk_client, "_client.send_request", "sms/storage/handwritten/sending.py ThroughPipeline"))


async def test_the_acs_sms_clients_private_parts_acs_provider_reads_are_there():
    """`SmsClient._sms_service_client` (`.sms.send`, to send with repeatability values of our own, and
    `._client.send_request`, for the health check), `SmsClient._endpoint`, and the generated models
    `SendMessageRequest`, `SmsRecipient`, `SmsSendOptions` (sms/providers/acs.py)."""
    try:
        from azure.communication.sms._generated.models import SendMessageRequest, SmsRecipient, SmsSendOptions  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"azure.communication.sms._generated.models moved ({exc}), which sms/providers/acs.py imports")
    key = base64.b64encode(b"k" * 32).decode()
    where = "sms/providers/acs.py AcsProvider"
    async with SmsClient.from_connection_string(f"endpoint=https://example.communication.azure.com/;accesskey={key}") as client:
        assert callable(reach(client, "_sms_service_client.sms.send", where))
        assert callable(reach(client, "_sms_service_client._client.send_request", where))
        assert reach(client, "_endpoint", where).startswith("https://example.communication.azure.com")
