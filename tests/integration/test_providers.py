"""Each adapter through its vendor's real SDK, against a local fake of the vendor's REST API."""
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from sms.domain.model import utcnow
from sms.providers import Failure, Found, OutgoingSms
from sms.providers.acs import REPEATABILITY_WINDOW, AcsProvider, repeatability
from sms.providers.console import ConsoleProvider
from sms.providers.twilio import FIND_LIMIT, TwilioProvider
from tests.fake_vendors import FakeAcs, FakeTwilio, Reply, SelfSignedCert

RECIPIENT = uuid.uuid4().hex


def sms(to="+61412345678", attempt=1, attempt_at=None, sender=None, first=None):
    """An SMS whose first attempt was `first` (by default half a minute before now: inside the 5 minutes
    the ACS fake, like ACS, tracks a repeatable request; a time fixed at import would pass them in a long run)."""
    first = first or utcnow() - timedelta(seconds=30)
    return OutgoingSms(RECIPIENT, to, "Your code is 1234", sender, reference=f"{'c' * 32}:7", attempt=attempt,
                       first_attempt_at=first, attempt_at=attempt_at or first)


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
    first = utcnow() - timedelta(seconds=30)
    outcome = await provider.send(sms(first=first))
    assert outcome.accepted and outcome.provider_message_id == "Outgoing_1_0"
    assert fake.auth_failures == 0
    sent = fake.requests[0]["json"]
    assert sent["from"] == "+61400000000" and sent["message"] == "Your code is 1234"
    assert sent["smsSendOptions"] == {"enableDeliveryReport": True, "tag": f"{'c' * 32}:7"}
    (recipient,) = sent["smsRecipients"]
    assert recipient["to"] == "+61412345678"
    assert recipient["repeatabilityFirstSent"] == format_datetime(first, usegmt=True)

    # A retry inside ACS's window repeats the same pair, so ACS can recognise it.
    await provider.send(sms(attempt=2, attempt_at=first + timedelta(minutes=2), first=first))
    assert fake.requests[1]["json"]["smsRecipients"][0]["repeatabilityRequestId"] == recipient["repeatabilityRequestId"]
    # Past the window (ACS would answer 412 to the old first-sent) the attempt gets a pair of its own.
    later = first + timedelta(minutes=6)
    await provider.send(sms(attempt=3, attempt_at=later, first=first))
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


# The last column: what each answer means for trying another provider (issue 26; docs/providers.md).
@pytest.mark.parametrize("reply, transient, retry_after, fragment, failure", [
    (FakeAcs.recipient_failure("+61412345678", 400, "Invalid To phone number format."), False, None, "Invalid To phone number",
     Failure.REFUSED),
    (FakeAcs.recipient_failure("+61412345678", 500, "Internal error"), True, None, "ACS 500", Failure.REFUSED),
    (FakeAcs.error(400, "Bad request"), False, None, "ACS 400", Failure.REFUSED),
    (FakeAcs.error(401, "Denied"), True, None, "ACS 401", Failure.NOT_TAKEN),
    (FakeAcs.error(429, "Too many requests", {"Retry-After": "17"}), True, 17.0, "ACS 429", Failure.NOT_TAKEN),
    (FakeAcs.error(503, "Unavailable"), True, None, "ACS 503", Failure.NOT_TAKEN),
    (FakeAcs.error(500, "Server error"), True, None, "ACS 500", Failure.AMBIGUOUS),
    (FakeAcs.error(412, "Repeatability-First-Sent is outside the window"), True, None, "ACS 412", Failure.REFUSED),
    (Reply(hang_seconds=3), True, None, "no answer", Failure.AMBIGUOUS),
])
async def test_acs_answers_map_to_outcomes(acs, reply, transient, retry_after, fragment, failure):
    fake, provider = acs
    fake.script.append(reply)
    outcome = await provider.send(sms())
    assert not outcome.accepted
    assert (outcome.transient, outcome.retry_after_seconds, outcome.failure) == (transient, retry_after, failure)
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


@pytest.mark.parametrize("reply, transient, retry_after, fragment, failure", [
    (FakeTwilio.error(400, 21211, "The 'To' number is not a valid phone number."), False, None, "error 21211", Failure.REFUSED),
    (FakeTwilio.error(400, 21610, "Attempt to send to unsubscribed recipient"), False, None, "unsubscribed", Failure.REFUSED),
    (FakeTwilio.error(400, 21408, "Permission to send an SMS has not been enabled"), False, None, "error 21408", Failure.NOT_TAKEN),
    (FakeTwilio.error(401, 20003, "Authenticate"), True, None, "error 20003", Failure.NOT_TAKEN),
    (FakeTwilio.error(429, 20429, "Too Many Requests", {"Retry-After": "9"}), True, 9.0, "429", Failure.NOT_TAKEN),
    (FakeTwilio.error(503, 20503, "Service Unavailable"), True, None, "Twilio 503", Failure.NOT_TAKEN),
    (FakeTwilio.error(500, 20500, "Internal Server Error"), True, None, "Twilio 500", Failure.AMBIGUOUS),
    (Reply(hang_seconds=3), True, None, "no answer", Failure.AMBIGUOUS),
])
async def test_twilio_answers_map_to_outcomes(twilio, reply, transient, retry_after, fragment, failure):
    fake, provider = twilio
    fake.script.append(reply)
    outcome = await provider.send(sms())
    assert not outcome.accepted
    assert (outcome.transient, outcome.retry_after_seconds, outcome.failure) == (transient, retry_after, failure)
    assert fragment in outcome.error


async def test_a_provider_nobody_answers_at_the_door_did_not_take_the_sms(cert):
    """Connection refused (nothing listens on the port): nothing was written, so another provider may be tried."""
    twilio = TwilioProvider(FakeTwilio.ACCOUNT_SID, FakeTwilio.AUTH_TOKEN, from_number="+61400000000", api_base_url="http://127.0.0.1:9")
    acs = AcsProvider("endpoint=https://127.0.0.1:9/;accesskey=" + FakeAcs.ACCESS_KEY, "+61400000000",
                      connection_verify=str(cert.cert_path), retry_total=0)
    try:
        for outcome in (await twilio.send(sms()), await acs.send(sms())):
            assert not outcome.accepted and outcome.failure is Failure.NOT_TAKEN and "unreachable" in outcome.error
    finally:
        await twilio.close()
        await acs.close()


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


# -- after a crash: asking the provider whether it has a claim left behind (issue 23, item 2) -------------


def claimed(to="+61412345678", minutes_ago: float = 0.5, recipient=None):
    """A claim made `minutes_ago` by a worker that then died: its first attempt."""
    at = utcnow() - timedelta(minutes=minutes_ago)
    return OutgoingSms(recipient or uuid.uuid4().hex, to, "Your code is 1234", None, reference=f"{'c' * 32}:7",
                       attempt=1, first_attempt_at=at, attempt_at=at)


async def test_acs_is_asked_by_repeating_the_very_request_inside_its_window_so_it_sends_at_most_once(acs):
    fake, provider = acs
    taken = claimed("+61412000001")
    first = await provider.send(taken)  # the worker's call reached ACS, then the worker died
    trace = await provider.find(taken)
    assert (trace.found, trace.provider_message_id) == (Found.SENT, first.provider_message_id)
    assert fake.executed == ["+61412000001"]  # the repeat was answered from ACS's record, not sent again
    repeat = fake.requests[-1]["json"]["smsRecipients"][0]
    assert (repeat["repeatabilityRequestId"], repeat["repeatabilityFirstSent"]) == repeatability(taken)

    never = claimed("+61412000002")  # the worker died before its call went out
    trace = await provider.find(never)
    assert trace.found is Found.SENT and fake.executed == ["+61412000001", "+61412000002"]  # sent now, once
    assert (await provider.find(never)).provider_message_id == trace.provider_message_id and len(fake.executed) == 2


async def test_acs_past_its_window_cannot_tell_and_is_not_asked(acs):
    fake, provider = acs
    assert (await provider.find(claimed(minutes_ago=REPEATABILITY_WINDOW.total_seconds() / 60 + 0.1))).found is Found.UNKNOWN
    assert fake.requests == []
    fake.script = [FakeAcs.error(412, "Repeatability first sent header is not within 5 minutes window")]
    assert (await provider.find(claimed())).found is Found.UNKNOWN  # clocks apart: ACS says it no longer tracks it
    fake.script = [FakeAcs.error(503, "busy")]
    assert (await provider.find(claimed())).found is Found.ASK_AGAIN
    fake.script = [FakeAcs.recipient_failure("+61412345678", 400, "Invalid To phone number")]
    trace = await provider.find(claimed())
    assert (trace.found, trace.error) == (Found.NOT_SENT, "ACS 400: Invalid To phone number")


async def test_twilio_is_asked_through_its_messages_list_and_never_sent_to(twilio):
    fake, provider = twilio
    taken = claimed("+61412000001")
    sid = (await provider.send(taken)).provider_message_id
    trace = await provider.find(taken)
    assert (trace.found, trace.provider_message_id) == (Found.SENT, sid)
    listed = fake.requests[-1]
    assert (listed["method"], listed["query"]) == ("GET", {"To": "+61412000001", "From": "+61400000000", "PageSize": "200"})
    assert (await provider.find(claimed("+61412000002"))).found is Found.NOT_SENT
    assert sum(1 for r in fake.requests if r["method"] == "POST") == 1  # asking sent nothing


async def test_twilio_answers_that_cannot_be_read_as_ours_are_unknown_never_not_sent(twilio):
    fake, provider = twilio
    fake.took("+61412000003", "Your code is 1234", minutes_ago=30)  # the same text, long before the claim: not ours
    assert (await provider.find(claimed("+61412000003"))).found is Found.NOT_SENT
    fake.took("+61412000004", "Your cøde is 1234")  # another body in the claim's time: maybe ours, rewritten
    assert (await provider.find(claimed("+61412000004"))).found is Found.UNKNOWN
    fake.took("+61412000005", "Your code is 1234", status="failed")  # taken, and failed by Twilio: nothing went out
    trace = await provider.find(claimed("+61412000005"))
    assert trace.found is Found.NOT_SENT and trace.error.startswith("Twilio refused: error 30007")
    for i in range(FIND_LIMIT):  # a page full of older messages: ours could be past it
        fake.took("+61412000006", f"old {i}", minutes_ago=60)
    assert (await provider.find(claimed("+61412000006"))).found is Found.UNKNOWN
    fake.script = [FakeTwilio.error(500, 20500, "Internal Server Error")]
    assert (await provider.find(claimed("+61412000007"))).found is Found.ASK_AGAIN


async def test_the_console_provider_reads_its_outbox(tmp_path):
    provider = ConsoleProvider(str(tmp_path / "outbox.jsonl"))
    taken = claimed()
    assert (await provider.find(taken)).found is Found.NOT_SENT  # no outbox yet: nothing was sent
    sent = await provider.send(taken)
    trace = await provider.find(taken)
    assert (trace.found, trace.provider_message_id) == (Found.SENT, sent.provider_message_id)
    assert (await provider.find(claimed())).found is Found.NOT_SENT
    cut = claimed()
    with (tmp_path / "outbox.jsonl").open("a") as f:  # a line the crash cut short
        f.write(f'{{"providerMessageId": "console-1", "recipientId": "{cut.recipient_id}", "to": "+6')
    assert (await provider.find(cut)).found is Found.SENT
    assert (await ConsoleProvider().find(taken)).found is Found.UNKNOWN  # without an outbox it keeps no record
