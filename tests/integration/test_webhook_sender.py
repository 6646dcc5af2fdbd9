"""The webhook sender against a local receiver that verifies with the reference `standardwebhooks`
package. Every destination is 127.0.0.1 or refused before connecting; names resolve through a
patched getaddrinfo, so nothing here needs DNS or reaches the internet."""
import asyncio
import datetime
import json
import logging
import socket
import ssl
import time
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sms.domain.webhook_signing import sign
from sms.webhooks.sender import DeliveryAttempt, Outcome, WebhookSender, refusal
from tests.webhook_receiver import serve, webhook_receiver_fixture  # noqa: F401 - the webhook_receiver fixture

BODY = json.dumps({"type": "message.sent", "data": {"messageId": "0f8e"}}, separators=(",", ":"))


@pytest.fixture
async def sender():
    """Loopback allowed (the receiver is on 127.0.0.1), short timeouts so "hang" ends quickly."""
    s = WebhookSender(allow_private=True, connect_timeout=2, total_timeout=1)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def guarded():
    s = WebhookSender()
    try:
        yield s
    finally:
        await s.close()


def signed(receiver, msg_id=None):
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    return msg_id, sign([receiver.secret], msg_id, int(time.time()), BODY)


async def deliver(sender, receiver, url=None) -> tuple[str, DeliveryAttempt]:
    msg_id, headers = signed(receiver)
    return msg_id, await sender.send(url or receiver.url, headers, BODY)


async def test_200_is_delivered_and_the_receiver_verified_it(sender, webhook_receiver):
    msg_id, attempt = await deliver(sender, webhook_receiver)
    assert (attempt.outcome, attempt.status, attempt.error, attempt.response_body) == (Outcome.DELIVERED, 200, None, "ok")
    assert not attempt.should_retry
    assert webhook_receiver.ids == [msg_id] and webhook_receiver.verified[0].payload == json.loads(BODY)
    assert webhook_receiver.rejected == []


async def test_one_session_serves_every_attempt(sender, webhook_receiver):
    await deliver(sender, webhook_receiver)
    session = sender._session  # noqa: SLF001
    await deliver(sender, webhook_receiver)
    assert sender._session is session and len(webhook_receiver.ids) == 2  # noqa: SLF001


async def test_500_is_retried(sender, webhook_receiver):
    webhook_receiver.answer(500)
    _, attempt = await deliver(sender, webhook_receiver)
    assert (attempt.outcome, attempt.status, attempt.response_body) == (Outcome.RETRY, 500, "answer 500")
    assert attempt.should_retry and len(webhook_receiver.ids) == 1


@pytest.mark.parametrize("retry_after, seconds", [("120", 120), ("Fri, 31 Dec 1999 23:59:59 GMT", 0)])
async def test_429_is_retried_with_its_retry_after(sender, webhook_receiver, retry_after, seconds):
    webhook_receiver.answer(429, retry_after=retry_after)
    _, attempt = await deliver(sender, webhook_receiver)
    assert (attempt.outcome, attempt.status, attempt.retry_after_seconds) == (Outcome.RETRY, 429, seconds)


async def test_410_means_gone(sender, webhook_receiver):
    webhook_receiver.answer(410)
    _, attempt = await deliver(sender, webhook_receiver)
    assert (attempt.outcome, attempt.status) == (Outcome.GONE, 410) and not attempt.should_retry


@pytest.mark.parametrize("status", [400, 401, 404])
async def test_other_4xx_is_refused_and_retried_on_the_schedule(sender, webhook_receiver, status):
    webhook_receiver.answer(status)
    _, attempt = await deliver(sender, webhook_receiver)
    assert (attempt.outcome, attempt.status) == (Outcome.REFUSED, status) and attempt.should_retry


async def test_a_redirect_is_not_followed(sender, webhook_receiver):
    webhook_receiver.answer("redirect")
    _, attempt = await deliver(sender, webhook_receiver)
    assert (attempt.outcome, attempt.status) == (Outcome.REFUSED, 302) and attempt.should_retry
    assert "/elsewhere" in attempt.error and "not followed" in attempt.error
    assert webhook_receiver.followed == [] and len(webhook_receiver.ids) == 1


async def test_a_receiver_that_hangs_times_out(sender, webhook_receiver):
    webhook_receiver.answer("hang")
    _, attempt = await deliver(sender, webhook_receiver)
    assert (attempt.outcome, attempt.status, attempt.error) == (Outcome.RETRY, None, "timed out")
    assert len(webhook_receiver.ids) == 1  # it arrived; no answer came in time


async def test_no_one_listening_is_retried(sender):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free, and closed again before the send
    attempt = await sender.send(f"http://127.0.0.1:{port}/hook", {"webhook-id": "msg_1"}, BODY)
    assert attempt.outcome is Outcome.RETRY and attempt.error.startswith("unreachable")


async def test_the_response_body_is_cut_to_1000_characters(sender, webhook_receiver):
    webhook_receiver.answer(500, body="x" * 5000)
    _, attempt = await deliver(sender, webhook_receiver)
    assert attempt.status == 500 and attempt.response_body == "x" * 1000


async def test_http_is_refused_without_allow_private(guarded):
    attempt = await guarded.send("http://hooks.example.com/hook", {"webhook-id": "msg_1"}, BODY)
    assert (attempt.outcome, attempt.error) == (Outcome.BLOCKED, "https only: the URL is http")
    assert not attempt.should_retry


@pytest.mark.parametrize(
    "host, kind",
    [
        ("10.0.0.5", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"), ("127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"), ("0.0.0.0", "unspecified"), ("224.0.0.1", "multicast"), ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-public"), ("[::1]", "loopback"), ("[fe80::1]", "link-local"), ("[fc00::1]", "private"),
        ("[::ffff:10.0.0.5]", "private"), ("[::ffff:127.0.0.1]", "loopback"), ("[64:ff9b::a9fe:a9fe]", "link-local"),
    ],
)
async def test_a_private_ip_literal_is_refused_before_connecting(guarded, host, kind):
    attempt = await guarded.send(f"https://{host}/hook", {"webhook-id": "msg_1"}, BODY)
    assert attempt.outcome is Outcome.BLOCKED and f"is a {kind} address" in attempt.error
    assert attempt.status is None and not attempt.should_retry


@pytest.mark.parametrize("host", ["2130706433", "127.1", "0x7f.0.0.1"])
async def test_legacy_ipv4_forms_are_refused(guarded, host):
    attempt = await guarded.send(f"https://{host}/hook", {"webhook-id": "msg_1"}, BODY)
    assert attempt.outcome is Outcome.BLOCKED


@pytest.mark.parametrize("host", ["%31%32%37.0.0.1", "１２７.０.０.１", "127。0。0。1", "ⓛⓞⓒⓐⓛⓗⓞⓢⓣ", "%ff"])
async def test_a_url_saved_before_hosts_were_normalised_is_read_as_it_would_be_now(guarded, host):
    """Saving now refuses these (issue 23); one saved before is blocked, the host read the same way,
    not tried (a percent-encoded host went to the resolver, which could not look it up: a retry)."""
    attempt = await guarded.send(f"https://{host}/hook", {"webhook-id": "msg_1"}, BODY)
    assert attempt.outcome is Outcome.BLOCKED and attempt.status is None, attempt.error


def fake_dns(monkeypatch, names: dict[str, list[str]]) -> list[str]:
    """Resolve `names` (host -> addresses) on the running loop without DNS; the looked-up names are returned."""
    loop = asyncio.get_running_loop()
    real, lookups = loop.getaddrinfo, []

    async def getaddrinfo(host, port, *args, **kwargs):
        if host not in names:
            return await real(host, port, *args, **kwargs)
        lookups.append(host)
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port, 0, 0) if ":" in a else (a, port))
            for a in names[host]
        ]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return lookups


async def test_localhost_is_refused(guarded, webhook_receiver):
    port = webhook_receiver.url.split(":")[2].split("/")[0]
    attempt = await guarded.send(f"https://localhost:{port}/hook", signed(webhook_receiver)[1], BODY)
    assert attempt.outcome is Outcome.BLOCKED and "localhost resolves to a loopback address" in attempt.error
    assert webhook_receiver.ids == []


async def test_a_name_resolving_to_loopback_is_refused(guarded, webhook_receiver, monkeypatch):
    fake_dns(monkeypatch, {"hooks.example.test": ["127.0.0.1"]})
    port = webhook_receiver.url.split(":")[2].split("/")[0]
    attempt = await guarded.send(f"https://hooks.example.test:{port}/hook", signed(webhook_receiver)[1], BODY)
    assert (attempt.outcome, attempt.error) == (Outcome.BLOCKED, "hooks.example.test resolves to a loopback address 127.0.0.1")
    assert webhook_receiver.ids == []


async def test_one_private_address_among_public_ones_is_enough_to_refuse(guarded, monkeypatch):
    fake_dns(monkeypatch, {"mixed.example.test": ["93.184.216.34", "10.0.0.5"]})
    attempt = await guarded.send("https://mixed.example.test/hook", {"webhook-id": "msg_1"}, BODY)
    assert (attempt.outcome, attempt.error) == (Outcome.BLOCKED, "mixed.example.test resolves to a private address 10.0.0.5")


async def test_with_allow_private_the_connection_goes_to_the_checked_address(sender, webhook_receiver, monkeypatch):
    """The name exists only in the patched resolver, looked up once: the request reached the address
    that lookup returned, with the URL's host in the Host header."""
    lookups = fake_dns(monkeypatch, {"hooks.example.test": ["127.0.0.1"]})
    port = webhook_receiver.url.split(":")[2].split("/")[0]
    msg_id, attempt = await deliver(sender, webhook_receiver, f"http://hooks.example.test:{port}/hook")
    assert attempt.outcome is Outcome.DELIVERED and webhook_receiver.ids == [msg_id]
    assert webhook_receiver.verified[0].host == f"hooks.example.test:{port}"
    assert lookups == ["hooks.example.test"]


def test_public_addresses_pass_the_guard():
    assert refusal("93.184.216.34") is None and refusal("2606:2800:220:1:248:1893:25c8:1946") is None


async def test_the_log_has_neither_the_signature_nor_the_query(sender, webhook_receiver, caplog):
    msg_id, headers = signed(webhook_receiver)
    with caplog.at_level(logging.INFO, logger="sms.webhooks"):
        await sender.send(webhook_receiver.url + "?token=hunter2#frag", headers, BODY)
    text = caplog.text
    assert msg_id in text and webhook_receiver.url in text
    assert "hunter2" not in text and headers["webhook-signature"].split(",", 1)[1] not in text
    assert webhook_receiver.secret.split("_", 1)[1] not in text and "messageId" not in text


def certificate_for(name: str, folder) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for `name`: (the server's context, a client context trusting only it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "receiver.crt", folder / "receiver.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    return server, ssl.create_default_context(cafile=str(cert_path))


@pytest.mark.parametrize("certified", ["hooks.example.test", "someone-else.example.test"])
async def test_tls_goes_to_the_checked_address_under_the_urls_name(webhook_receiver, monkeypatch, tmp_path, certified):
    """Connected to the address the guard checked, TLS still names the URL's host (SNI) and checks the
    certificate against it: a certificate for another name is not accepted."""
    server_context, trusted = certificate_for(certified, tmp_path)
    names_asked = []
    server_context.sni_callback = lambda sock, name, ctx: names_asked.append(name)
    runner, port = await serve(webhook_receiver, server_context)
    fake_dns(monkeypatch, {"hooks.example.test": ["127.0.0.1"]})
    sender = WebhookSender(allow_private=True, ssl_context=trusted)
    try:
        msg_id, attempt = await deliver(sender, webhook_receiver, f"https://hooks.example.test:{port}/hook")
    finally:
        await sender.close()
        await runner.cleanup()
    assert names_asked == ["hooks.example.test"]
    if certified == "hooks.example.test":
        assert attempt.outcome is Outcome.DELIVERED and webhook_receiver.ids == [msg_id]
    else:
        assert attempt.outcome is Outcome.RETRY and "Certificate" in attempt.error and webhook_receiver.ids == []
