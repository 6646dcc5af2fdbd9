"""Our signatures, checked by the reference receiver (the `standardwebhooks` package), not by our own code."""
import base64
import json
import time
from datetime import datetime, timezone

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from sms.domain.webhook_signing import new_secret, sign

BODY = json.dumps({"type": "message.delivered", "data": {"messageId": "0f8e", "to": "+61 4** *** *99"}}, separators=(",", ":"))


def test_one_secret_verifies_with_the_reference_receiver():
    secret = new_secret()
    headers = sign([secret], "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", int(time.time()), BODY)
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)
    assert Webhook(secret).verify(BODY.encode(), headers) == json.loads(BODY)


def test_the_signature_is_the_reference_libraries_own():
    secret, at = new_secret(), datetime(2024, 5, 1, 12, 0, 30, tzinfo=timezone.utc)
    headers = sign([secret], "msg_1", at, BODY)
    assert headers["webhook-timestamp"] == str(int(at.timestamp()))
    assert headers["webhook-signature"] == Webhook(secret).sign("msg_1", at, BODY)


def test_during_a_rotation_either_secret_verifies_alone():
    new, old, stranger = new_secret(), new_secret(), new_secret()
    headers = sign([new, old], "msg_rotating", time.time(), BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(new).verify(BODY, headers) == json.loads(BODY)
    assert Webhook(old).verify(BODY, headers) == json.loads(BODY)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(stranger).verify(BODY, headers)


def test_a_tampered_body_or_id_fails_verification():
    secret = new_secret()
    headers = sign([secret], "msg_1", int(time.time()), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace("delivered", "failed"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-id": "msg_2"})


def test_an_old_timestamp_fails_verification():
    """The reference receiver refuses attempts older than 5 minutes: a captured request cannot be replayed."""
    secret = new_secret()
    headers = sign([secret], "msg_1", int(time.time()) - 600, BODY)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, headers)


def test_a_new_secret_is_whsec_and_32_random_bytes():
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_") and first != second
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 32


@pytest.mark.parametrize(
    "secrets, msg_id, problem",
    [
        ([], "msg_1", "at least one secret"),
        (["whsec_" + base64.b64encode(b"k" * 32).decode()], "msg.1", "without '.'"),
        (["sk_" + base64.b64encode(b"k" * 32).decode()], "msg_1", "starts with 'whsec_'"),
        (["whsec_" + base64.b64encode(b"short").decode()], "msg_1", "24 to 64 bytes"),
        (["whsec_not base64!"], "msg_1", "followed by base64"),
    ],
)
def test_bad_input_is_refused_without_quoting_the_secret(secrets, msg_id, problem):
    with pytest.raises(ValueError, match=problem) as raised:
        sign(secrets, msg_id, 1_700_000_000, BODY)
    assert not any(secret.split("_", 1)[1] in str(raised.value) for secret in secrets)
