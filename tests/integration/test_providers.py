"""Each adapter through its vendor's real SDK, against a local fake of the vendor's REST API."""
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from sms.model import utcnow
from sms.providers import OutgoingSms
from sms.providers.acs import AcsProvider
from sms.providers.twilio import TwilioProvider
from tests.fake_vendors import FakeAcs, FakeTwilio, Reply, SelfSignedCert

RECIPIENT = uuid.uuid4().hex
FIRST = utcnow() - timedelta(seconds=30)


def sms(to="+61412345678", attempt=1, attempt_at=None, sender=None):
    return OutgoingSms(RECIPIENT, to, "Your code is 1234", sender, reference=f"{'c' * 32}:7", attempt=attempt,
                       first_attempt_at=FIRST, attempt_at=attempt_at or FIRST)


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return SelfSignedCert.create(tmp_path_factory.mktemp("tls"))


@pytest.fixture
async def acs(cert):
    fake = await FakeAcs(cert).start()
    provider = AcsProvider(fake.connection_string, "+61400000000", connection_verify=str(cert.cert_path), retry_total=0,
                           read_timeout=1)
    yield fake, provider
    await provider.close()
    await fake.stop()


@pytest.fixture
async def twilio():
    fake = await FakeTwilio().start()
    provider = TwilioProvider(FakeTwilio.ACCOUNT_SID, FakeTwilio.AUTH_TOKEN, from_number="+61400000000",
                              status_callback_url="https://gateway.example/api/sms/receipts/twilio",
                              api_base_url=fake.base_url, timeout_seconds=1)
    yield fake, provider
    await provider.close()
    await fake.stop()


# -- ACS -------------------------------------------------------------------------------------------------


async def test_acs_sends_a_signed_request_with_stable_repeatability_and_a_receipt_tag(acs):
    fake, provider = acs
    outcome = await provider.send(sms())
    assert outcome.accepted and outcome.provider_message_id == "Outgoing_1_0"
    assert fake.auth_failures == 0
    sent = fake.requests[0]["json"]
    assert sent["from"] == "+61400000000" and sent["message"] == "Your code is 1234"
    assert sent["smsSendOptions"] == {"enableDeliveryReport": True, "tag": f"{'c' * 32}:7"}
    (recipient,) = sent["smsRecipients"]
    assert recipient["to"] == "+61412345678"
    assert recipient["repeatabilityFirstSent"] == format_datetime(FIRST, usegmt=True)

    # A retry inside ACS's window repeats the same pair, so ACS can recognise it.
    await provider.send(sms(attempt=2, attempt_at=FIRST + timedelta(minutes=2)))
    assert fake.requests[1]["json"]["smsRecipients"][0]["repeatabilityRequestId"] == recipient["repeatabilityRequestId"]
    # Past the window (ACS would answer 412 to the old first-sent) the attempt gets a pair of its own.
    later = FIRST + timedelta(minutes=6)
    await provider.send(sms(attempt=3, attempt_at=later))
    third = fake.requests[2]["json"]["smsRecipients"][0]
    assert third["repeatabilityRequestId"] != recipient["repeatabilityRequestId"]
    assert third["repeatabilityFirstSent"] == format_datetime(later, usegmt=True)


async def test_acs_uses_the_messages_own_sender_when_it_has_one(acs):
    fake, provider = acs
    await provider.send(sms(sender="+61499999999"))
    assert fake.requests[0]["json"]["from"] == "+61499999999"


async def test_acs_wrong_key_is_refused_by_the_fake(cert):
    fake = await FakeAcs(cert).start()
    wrong = fake.connection_string.replace(FakeAcs.ACCESS_KEY, "d3Jvbmc=")
    provider = AcsProvider(wrong, "+61400000000", connection_verify=str(cert.cert_path), retry_total=0)
    try:
        outcome = await provider.send(sms())
    finally:
        await provider.close()
        await fake.stop()
    assert fake.auth_failures == 1 and not outcome.accepted and outcome.transient  # a key problem is retried, not fatal


@pytest.mark.parametrize("reply, transient, retry_after, fragment", [
    (FakeAcs.recipient_failure("+61412345678", 400, "Invalid To phone number format."), False, None, "Invalid To phone number"),
    (FakeAcs.recipient_failure("+61412345678", 500, "Internal error"), True, None, "ACS 500"),
    (FakeAcs.error(400, "Bad request"), False, None, "ACS 400"),
    (FakeAcs.error(429, "Too many requests", {"Retry-After": "17"}), True, 17.0, "ACS 429"),
    (FakeAcs.error(500, "Server error"), True, None, "ACS 500"),
    (FakeAcs.error(412, "Repeatability-First-Sent is outside the window"), True, None, "ACS 412"),
    (Reply(hang_seconds=3), True, None, "unreachable"),
])
async def test_acs_answers_map_to_outcomes(acs, reply, transient, retry_after, fragment):
    fake, provider = acs
    fake.script.append(reply)
    outcome = await provider.send(sms())
    assert not outcome.accepted
    assert (outcome.transient, outcome.retry_after_seconds) == (transient, retry_after)
    assert fragment in outcome.error


# -- Twilio ------------------------------------------------------------------------------------------------


async def test_twilio_sends_with_basic_auth_and_the_form_fields_twilio_expects(twilio):
    fake, provider = twilio
    outcome = await provider.send(sms())
    assert outcome.accepted and outcome.provider_message_id.startswith("SM")
    assert fake.auth_failures == 0
    assert fake.requests[0]["form"] == {
        "To": "+61412345678", "From": "+61400000000", "Body": "Your code is 1234",
        "StatusCallback": f"https://gateway.example/api/sms/receipts/twilio?ref={'c' * 32}%3A7",
    }


async def test_twilio_can_send_through_a_messaging_service():
    fake = await FakeTwilio().start()
    provider = TwilioProvider(FakeTwilio.ACCOUNT_SID, FakeTwilio.AUTH_TOKEN, messaging_service_sid="MG" + "2" * 32,
                              api_base_url=fake.base_url)
    try:
        assert (await provider.send(sms())).accepted
    finally:
        await provider.close()
        await fake.stop()
    assert fake.requests[0]["form"] == {"To": "+61412345678", "MessagingServiceSid": "MG" + "2" * 32, "Body": "Your code is 1234"}


async def test_twilio_wrong_token_is_refused_by_the_fake():
    fake = await FakeTwilio().start()
    provider = TwilioProvider(FakeTwilio.ACCOUNT_SID, "wrong", from_number="+61400000000", api_base_url=fake.base_url)
    try:
        outcome = await provider.send(sms())
    finally:
        await provider.close()
        await fake.stop()
    assert fake.auth_failures == 1 and not outcome.accepted and outcome.transient


@pytest.mark.parametrize("reply, transient, retry_after, fragment", [
    (FakeTwilio.error(400, 21211, "The 'To' number is not a valid phone number."), False, None, "error 21211"),
    (FakeTwilio.error(400, 21610, "Attempt to send to unsubscribed recipient"), False, None, "unsubscribed"),
    (FakeTwilio.error(429, 20429, "Too Many Requests", {"Retry-After": "9"}), True, 9.0, "429"),
    (FakeTwilio.error(500, 20500, "Internal Server Error"), True, None, "Twilio 500"),
    (Reply(hang_seconds=3), True, None, "unreachable"),
])
async def test_twilio_answers_map_to_outcomes(twilio, reply, transient, retry_after, fragment):
    fake, provider = twilio
    fake.script.append(reply)
    outcome = await provider.send(sms())
    assert not outcome.accepted
    assert (outcome.transient, outcome.retry_after_seconds) == (transient, retry_after)
    assert fragment in outcome.error


async def test_provider_health_checks_send_nothing(acs, twilio, cert):
    acs_fake, acs_provider = acs
    twilio_fake, twilio_provider = twilio
    assert await acs_provider.check() is None and await twilio_provider.check() is None
    # One request, and not a send (the fake may refuse its signature: any answer proves reachability).
    assert len(acs_fake.requests) + acs_fake.auth_failures == 1 and all(r["json"] is None for r in acs_fake.requests)
    assert twilio_fake.requests[0]["path"].endswith(f"{FakeTwilio.ACCOUNT_SID}.json")

    wrong = TwilioProvider(FakeTwilio.ACCOUNT_SID, "wrong-token", from_number="+61400000000", api_base_url=twilio_fake.base_url)
    try:
        assert await wrong.check() == "Twilio answered 401"
    finally:
        await wrong.close()
    gone = AcsProvider("endpoint=https://127.0.0.1:9/;accesskey=" + FakeAcs.ACCESS_KEY, "+61400000000",
                       connection_verify=str(cert.cert_path), retry_total=0)
    try:
        assert (await gone.check()).startswith("ACS unreachable")
    finally:
        await gone.close()


def test_an_acs_call_cannot_outlast_the_sending_lease():
    """azure-core's own defaults wait 300 s to connect and 300 s to read: a stalled call would outlive
    the default lease (SMS_SENDING_LEASE_SECONDS, 300) and be taken for a crashed send while in flight."""
    from sms.config import Settings

    provider = AcsProvider("endpoint=https://example.communication.azure.com/;accesskey=" + "a" * 44, "+61400000000")
    config = provider._client._sms_service_client._client._pipeline._transport.connection_config
    tries = 1 + 2  # retry_total
    assert tries * (config.timeout + config.read_timeout) < Settings.sending_lease_seconds / 2


async def test_twilio_is_told_a_validity_shorter_than_its_own_and_not_otherwise(twilio):
    """Twilio takes ValidityPeriod from 1 to 36,000 s (its errors 90007 and 30036): the rest of a short
    validUntil is passed on; a longer one, or none, leaves Twilio's default."""
    fake, provider = twilio
    now = datetime.now(timezone.utc)
    await provider.send(replace(sms(), valid_until=now + timedelta(seconds=600)))
    await provider.send(replace(sms(), valid_until=now + timedelta(hours=20)))
    await provider.send(replace(sms(), valid_until=now - timedelta(seconds=5)))  # due this instant: the least Twilio takes
    short, long, due = (request["form"] for request in fake.requests)
    assert 590 <= int(short["ValidityPeriod"]) <= 600
    assert "ValidityPeriod" not in long
    assert due["ValidityPeriod"] == "1"
