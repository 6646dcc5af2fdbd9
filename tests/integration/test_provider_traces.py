"""Adversarial review of each adapter's `find` (issue 23, item 2) against the local vendor fakes: what a
trace answers at the edges of its matching. A test whose docstring gives an interleaving failed before
its fix; the rest pin down what `find` relies on."""
import json
import uuid
from dataclasses import replace
from datetime import timedelta

from sms.domain.model import utcnow
from sms.providers import Found, OutgoingSms
from sms.providers.console import ConsoleProvider
from sms.providers.twilio import TwilioProvider
from tests.fake_vendors import FakeTwilio
from tests.integration import test_providers as adapters

# test_providers' fixtures and claim builder, shared rather than copied.
cert, acs, twilio, claimed = adapters.cert, adapters.acs, adapters.twilio, adapters.claimed

BODY = "Your code is 1234"  # what test_providers.claimed sends


# -- Twilio ---------------------------------------------------------------------------------------------


async def test_twilio_an_sms_that_reached_twilio_late_after_its_claim_is_not_answered_never_sent(twilio):
    """The window is [stamp - 1 min, stamp + call timeout + 1 min], the stamp being the claim's
    updated_at, taken when the claim rule was applied, before its write went out. The write's answer can
    come long after: azure-core waits 20 s per read and retries a $batch three times (bootstrap
    TABLE_RETRY, STORAGE_TIMEOUTS), and a lost answer is followed by a re-read in which `_claimed`
    recognises the row as its own and keeps the first stamp. So a worker may call Twilio 90 s or more
    after the stamp, then die. The trace, after the lease, lists Twilio's messages: ours was created
    outside the window, `ours` is empty, and the answer is NOT_SENT: the recipient is put back and
    texted a second time. A message with the same body created at any time from the stamp to the trace
    is evidence (at worst UNKNOWN), never "never reached Twilio"."""
    fake, provider = twilio
    taken = claimed("+61412000001", minutes_ago=3)
    fake.took("+61412000001", BODY, minutes_ago=1)  # it reached Twilio two minutes after its claim's stamp
    assert (await provider.find(taken)).found is not Found.NOT_SENT


async def test_twilio_through_a_messaging_service_is_listed_by_to_alone_and_found(twilio):
    """A messaging service picks the From: the list is read by To alone, and the SMS is found."""
    fake, _ = twilio
    service = TwilioProvider(FakeTwilio.ACCOUNT_SID, FakeTwilio.AUTH_TOKEN, messaging_service_sid="MG" + "2" * 32,
                             api_base_url=fake.base_url, timeout_seconds=1)
    try:
        taken = claimed("+61412000003")
        sid = (await service.send(taken)).provider_message_id
        trace = await service.find(taken)
        assert (trace.found, trace.provider_message_id) == (Found.SENT, sid)
        assert fake.requests[-1]["query"] == {"To": "+61412000003", "PageSize": "200"}
        fake.took("+61412000004", "Your cøde is 1234", sender="+61400000077")  # rewritten, from the service's pool
        assert (await service.find(claimed("+61412000004"))).found is Found.UNKNOWN
    finally:
        await service.close()


async def test_twilio_date_created_to_the_second_still_matches_a_claim_made_later_in_that_second(twilio):
    """Twilio's date_created has whole seconds (RFC 2822, GMT): a claim stamped at .999 of the second
    the SMS was created in is still matched (the window allows a minute either side)."""
    fake, provider = twilio
    taken = claimed("+61412000005", minutes_ago=0)
    stamped = taken.attempt_at.replace(microsecond=999_999)
    taken = replace(taken, first_attempt_at=stamped, attempt_at=stamped)
    fake.took("+61412000005", BODY, minutes_ago=(utcnow() - stamped.replace(microsecond=0)).total_seconds() / 60)
    assert (await provider.find(taken)).found is Found.SENT


# -- ACS ------------------------------------------------------------------------------------------------------


async def test_acs_does_not_send_now_an_sms_whose_valid_until_has_passed(acs):
    """ACS's `find` repeats the claim's request; if ACS never had it, ACS sends it now. The repeat is made
    without looking at `valid_until` (ACS takes no validity of its own): an OTP valid for 60 s, claimed
    at t, its worker dead before the call, is traced at t + lease (>= 30 s; SMS_SENDING_LEASE_SECONDS's
    minimum) and sent at, say, t + 90 s, 30 s after it stopped being worth anything. Dispatch.send would
    have expired it (Twilio and console answer NOT_SENT, and the row is then expired before any send).
    The same repeat also ignores an opt-out or a cancel that came after the claim. Past its validUntil
    the repeat should not be made: UNKNOWN (or expire the row)."""
    fake, provider = acs
    never = replace(claimed("+61412000006", minutes_ago=1.5), valid_until=utcnow() - timedelta(seconds=30))
    await provider.find(never)
    assert fake.executed == [], "sent after its validUntil"


async def test_acs_a_later_attempts_fresh_pair_is_repeated_as_it_was_sent_and_past_the_window_not_at_all(acs):
    """Attempt 3, claimed 6 minutes after the first: it was sent with a fresh pair of its own (id of
    recipient/3, first-sent = its claim). Its trace repeats that pair (ACS dedupes: sent once); the
    first attempt's pair, long untracked, is not used. An attempt 2 claimed 3 minutes after the first
    reused the first's pair: 4 minutes after the first it is past the window, so not asked (UNKNOWN)."""
    fake, provider = acs
    first = utcnow() - timedelta(minutes=6, seconds=30)
    third = OutgoingSms(uuid.uuid4().hex, "+61412000007", BODY, None, reference=f"{'c' * 32}:1", attempt=3,
                        first_attempt_at=first, attempt_at=utcnow() - timedelta(seconds=30))
    sent = await provider.send(third)
    trace = await provider.find(third)
    assert (trace.found, trace.provider_message_id) == (Found.SENT, sent.provider_message_id)
    assert fake.executed == ["+61412000007"]
    repeat = fake.requests[-1]["json"]["smsRecipients"][0]
    assert repeat["repeatabilityRequestId"] == str(uuid.uuid5(uuid.UUID("6f1d3b52-5c7e-4f8a-9a41-2a9e8b0c7d15"),
                                                              f"{third.recipient_id}/3"))
    second = replace(third, attempt=2, first_attempt_at=utcnow() - timedelta(minutes=4, seconds=10),
                     attempt_at=utcnow() - timedelta(minutes=1, seconds=10))
    requests = len(fake.requests)
    assert (await provider.find(second)).found is Found.UNKNOWN and len(fake.requests) == requests


# -- console ---------------------------------------------------------------------------------------------------


async def test_the_console_outbox_matches_a_recipient_id_whole_and_survives_a_line_cut_short(tmp_path):
    """A recipient id that is the start (or end) of another's is not taken for it; a crash that cut a
    line before its recipient id leaves the next send glued to it, and that send is still found."""
    outbox = tmp_path / "outbox.jsonl"
    provider = ConsoleProvider(str(outbox))
    long_one = replace(claimed(), recipient_id="ab" * 16)
    await provider.send(long_one)
    for prefix in ("ab" * 15, "b" + "ab" * 15):
        assert (await provider.find(replace(long_one, recipient_id=prefix))).found is Found.NOT_SENT
    with outbox.open("a") as f:
        f.write('{"providerMessageId": "console-cut", "reci')  # the crash cut it before its recipient id
    after = claimed()
    sent = await provider.send(after)
    trace = await provider.find(after)
    assert trace.found is Found.SENT  # found, though its line no longer reads as JSON (so without its id)
    assert trace.provider_message_id in (None, sent.provider_message_id)
    assert json.loads(outbox.read_text().splitlines()[0])["recipientId"] == long_one.recipient_id
