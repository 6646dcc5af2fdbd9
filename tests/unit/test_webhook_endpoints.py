"""Managing a licensee's webhook endpoints (issue 15), over the in-memory store: what may be saved,
the limit, rotation's grace period, isolation between licensees, and secrets that are shown once."""
import asyncio
import base64
import logging
from dataclasses import replace
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import yarl

from sms.domain.errors import LimitReached, NotFound, RecordChanged, ValidationFailed
from sms.domain.events import EVENT_TYPES
from sms.domain.model import utcnow
from sms.storage import WebhookEndpoint, WebhookSecret
from sms.usecases.webhook_endpoints import MAX_ENDPOINTS, WebhookEndpoints, new_secret
from tests.fakes import LICENSEE, OTHER, InMemoryWebhookEndpointStore

URL = "https://hooks.example.org/sms?tenant=7"


@pytest.fixture
def store():
    return InMemoryWebhookEndpointStore()


@pytest.fixture
def webhooks(store):
    return WebhookEndpoints(store)


def refusal(error: ValidationFailed) -> tuple[str, str]:
    [field] = error.field_errors
    return field.field_name, field.message


def test_a_secret_is_standard_webhooks_whsec_and_base64_of_32_random_bytes():
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert new_secret() != secret


async def test_an_endpoint_is_added_with_its_event_types_and_a_secret(webhooks, store):
    endpoint = await webhooks.add(LICENSEE, URL, ["message.failed", "reply.received", "message.failed"])
    assert endpoint.url == URL and endpoint.licensee_id == LICENSEE and len(endpoint.endpoint_id) == 32
    assert endpoint.event_types == ("message.failed", "reply.received")  # duplicates dropped, order kept
    assert endpoint.secret.value.startswith("whsec_") and endpoint.previous_secret is None
    assert endpoint.disabled_at is None and endpoint.etag
    assert endpoint.wants("reply.received") and not endpoint.wants("message.sent")
    assert await store.get(LICENSEE, endpoint.endpoint_id) == endpoint
    every = await webhooks.add(LICENSEE, URL)
    assert every.event_types == () and all(every.wants(t) for t in EVENT_TYPES)


LOOPBACK, LOCALHOST = "127.0.0.1 is a loopback address", "must not point at localhost"
OTHER_SPELLINGS = [
    # Issue 23: spellings a WHATWG URL parser (and IDNA) reads as loopback, localhost or private, saved as names before.
    ("https://１２７.０.０.１/hook", LOOPBACK),  # fullwidth digits
    ("https://127。0。0。1/hook", LOOPBACK),  # ideographic full stops (U+3002)
    ("https://127．0．0．1/hook", LOOPBACK),  # fullwidth full stops (U+FF0E)
    ("https://127｡0｡0｡1/hook", LOOPBACK),  # halfwidth ideographic full stops (U+FF61)
    ("https://①②⑦.0.0.1/hook", LOOPBACK),  # circled digits
    ("https://%31%32%37.0.0.1/hook", LOOPBACK),  # percent-encoded
    ("https://%E2%91%A0%E2%91%A1%E2%91%A6%E3%80%820.0.1/hook", LOOPBACK),  # percent-encoded circled digits and U+3002
    ("https://0177.0.0.1/hook", LOOPBACK),  # octal
    ("https://0x7f.1/hook", LOOPBACK),
    ("https://0X7F000001/hook", LOOPBACK),
    ("https://127.0.0.1./hook", LOOPBACK),
    ("https://[::ffff:127.0.0.1]/hook", LOOPBACK),
    ("https://１０.０.０.１/hook", "10.0.0.1 is a private address"),
    ("https://169。254。169。254/latest/meta-data", "169.254.169.254 is a link-local address"),
    ("https://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/hook", LOCALHOST),  # circled letters
    ("https://ｌｏｃａｌｈｏｓｔ/hook", LOCALHOST),  # fullwidth letters
    ("https://LocalHost/hook", LOCALHOST),
    ("https://localhost./hook", LOCALHOST),
    ("https://%6C%6f%63%61%6c%68%6f%73%74/hook", LOCALHOST),
    ("https://api.ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/hook", LOCALHOST),
    ("https://localhost%2E/hook", LOCALHOST),
    # Hosts that do not normalise cleanly are refused, whatever they would name.
    ("https://%ff/hook", "names no valid host"),  # percent-decodes to bytes that are not UTF-8
    ("https://exa%2Fmple.org/hook", "names no valid host"),  # a '/' in a host
    ("https://exa%20mple.org/hook", "names no valid host"),
    ("https://1.2.3.256/hook", "names no valid host"),  # ends in a number, is no IPv4 address
    ("https://0x1g.2.3.4/hook", "names no valid host"),
    ("https://xn--/hook", "names no valid host"),  # an A-label that is not one
    ("https://[fe80::1%25en0]/hook", "names no valid host"),  # an IPv6 zone: no URL carries one
    ("https://[v1.fe]/hook", "names no valid host"),  # in brackets, and no IPv6 address
]


@pytest.mark.parametrize("url, reason", [
    (None, "is required"),
    ("  ", "is required"),
    ("http://hooks.example.org/sms", "must be an absolute https URL"),
    ("ftp://hooks.example.org/", "must be an absolute https URL"),
    ("hooks.example.org/sms", "must be an absolute https URL"),
    ("/api/hooks", "must be an absolute https URL"),
    ("https:///path-only", "must name a host"),
    ("https://user:pass@hooks.example.org/", "must not carry a user name or password"),
    ("https://token@hooks.example.org/", "must not carry a user name or password"),
    ("https://hooks.example.org:99999/", "is not a valid URL"),
    ("https://hooks.example.org/a b", "must not contain spaces"),
    ("https://hooks.example.org/\x00", "must not contain spaces or control characters"),
    ("https://hooks.example.org/#top", "must not have a fragment"),
    ("https://hooks.example.org/" + "a" * 2000, "at most 2000"),
    ("https://localhost/hook", "must not point at localhost"),
    ("https://LOCALHOST./hook", "must not point at localhost"),
    ("https://api.localhost/hook", "must not point at localhost"),
    ("https://127.0.0.1/hook", "127.0.0.1 is a loopback address"),
    ("https://127.1/hook", "127.0.0.1 is a loopback address"),
    ("https://2130706433/hook", "127.0.0.1 is a loopback address"),
    ("https://0x7f.0.0.1/hook", "127.0.0.1 is a loopback address"),
    ("https://[::1]/hook", "::1 is a loopback address"),
    ("https://[::ffff:10.0.0.1]/hook", "10.0.0.1 is a private address"),
    ("https://10.1.2.3/hook", "10.1.2.3 is a private address"),
    ("https://172.16.0.9/hook", "172.16.0.9 is a private address"),
    ("https://192.168.1.1:8443/hook", "192.168.1.1 is a private address"),
    ("https://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address"),
    ("https://[fe80::1]/hook", "fe80::1 is a link-local address"),
    ("https://[fd00::1]/hook", "fd00::1 is a private address"),
    ("https://0.0.0.0/hook", "0.0.0.0 is the unspecified address"),
    ("https://240.0.0.1/hook", "240.0.0.1 is a reserved address"),
    ("https://224.0.0.1/hook", "224.0.0.1 is a multicast address"),
    ("https://100.64.0.1/hook", "100.64.0.1 is not a public internet address"),
    *OTHER_SPELLINGS,
])
async def test_a_url_that_cannot_be_a_public_https_endpoint_is_refused_with_the_reason(webhooks, store, url, reason):
    with pytest.raises(ValidationFailed) as refused:
        await webhooks.add(LICENSEE, url)
    field, message = refusal(refused.value)
    assert field == "Url" and reason in message, message
    assert store.endpoints == {}


@pytest.mark.parametrize("url", ["https://hooks.example.org", "HTTPS://Hooks.Example.org:8443/a/b?c=d", "https://93.184.215.14/hook",
                                 "https://[2606:4700::1111]/hook", "https://xn--bcher-kva.example/", "https://" + "a" * 1980 + ".org"])
async def test_a_public_https_url_is_accepted(webhooks, url):
    assert (await webhooks.add(LICENSEE, url)).url == url


@pytest.mark.parametrize("url, saved", [
    ("https://bücher.example/hook", "https://xn--bcher-kva.example/hook"),
    ("https://BÜCHER.example/hook?x=1", "https://xn--bcher-kva.example/hook?x=1"),
    ("https://例え.テスト:8443/path", "https://xn--r8jz45g.xn--zckzah:8443/path"),
    ("https://hooks。example。org/sms", "https://hooks.example.org/sms"),
    ("https://%68ooks.example.org/sms", "https://hooks.example.org/sms"),
    ("https://ｈｏｏｋｓ.example.org/sms", "https://hooks.example.org/sms"),
    ("https://0x5db8d70e/hook", "https://93.184.215.14/hook"),
    ("https://[2606:4700:0:0::1111]/hook", "https://[2606:4700::1111]/hook"),
])
async def test_a_public_host_in_another_spelling_is_saved_as_a_url_parser_writes_it(webhooks, url, saved):
    """What is saved is what was judged: the sender (aiohttp, through yarl) reads the same host from it."""
    endpoint = await webhooks.add(LICENSEE, url)
    assert endpoint.url == saved
    assert yarl.URL(endpoint.url).raw_host == urlsplit(saved).hostname


@pytest.mark.parametrize("url", ["http://localhost:8000/hook", "https://127.0.0.1:9000/", "http://192.168.1.20/hook",
                                 "http://[::1]:8080/"])
async def test_the_local_development_setting_allows_private_destinations_and_plain_http(store, url):
    local = WebhookEndpoints(store, allow_private=True)
    assert (await local.add(LICENSEE, url)).url == url
    for still_refused in ("ftp://localhost/", "http://user:pw@localhost/", "http:///x"):
        with pytest.raises(ValidationFailed):
            await local.add(LICENSEE, still_refused)


async def test_event_types_must_be_ones_the_gateway_sends_each_named_in_the_error(webhooks, store):
    with pytest.raises(ValidationFailed) as refused:
        await webhooks.add(LICENSEE, URL, ["message.sent", "message.exploded", 7, "Message.Failed"])
    assert [(e.field_name, e.error_code) for e in refused.value.field_errors] == [
        ("EventTypes[1]", "InvalidValue"), ("EventTypes[2]", "InvalidValue"), ("EventTypes[3]", "InvalidValue")]
    assert "'message.exploded' is not an event type; use message.sent, message.delivered" in refused.value.field_errors[0].message
    assert store.endpoints == {}


async def test_a_licensee_has_at_most_five_endpoints(webhooks):
    for i in range(MAX_ENDPOINTS):
        await webhooks.add(LICENSEE, f"{URL}&n={i}")
    with pytest.raises(LimitReached, match="already has 5 webhook endpoints.*remove one first"):
        await webhooks.add(LICENSEE, URL)
    await webhooks.add(OTHER, URL)  # another licensee's count is its own
    first = (await webhooks.list(LICENSEE))[0]
    await webhooks.remove(LICENSEE, first.endpoint_id)
    await webhooks.add(LICENSEE, URL)
    assert len(await webhooks.list(LICENSEE)) == MAX_ENDPOINTS


async def test_adds_at_once_never_pass_the_limit_and_a_removed_endpoint_frees_its_place(webhooks, store):
    """Issue 23: each add counted the endpoints, then wrote; 60 at once made 20. Each endpoint now holds
    one of its licensee's five places, and the store writes one only with a place nobody holds."""
    added = await asyncio.gather(*(webhooks.add(LICENSEE, f"{URL}&n={i}") for i in range(12)), return_exceptions=True)
    assert sum(isinstance(a, LimitReached) for a in added) == 7
    kept = await webhooks.list(LICENSEE)
    assert sorted(e.slot for e in kept) == list(range(MAX_ENDPOINTS))
    await webhooks.remove(LICENSEE, kept[3].endpoint_id)
    again = await asyncio.gather(*(webhooks.add(LICENSEE, URL) for _ in range(4)), return_exceptions=True)
    assert sum(not isinstance(a, BaseException) for a in again) == 1 and len(await webhooks.list(LICENSEE)) == MAX_ENDPOINTS


async def test_endpoints_saved_before_places_were_kept_count_against_the_limit(webhooks, store):
    now = utcnow()
    for i in range(3):  # as an earlier version saved them: no place held
        await store.add(WebhookEndpoint(LICENSEE, f"{i:032x}", URL, (), WebhookSecret(new_secret(), now), now))
    added = await asyncio.gather(*(webhooks.add(LICENSEE, URL) for _ in range(5)), return_exceptions=True)
    assert sum(not isinstance(a, BaseException) for a in added) == 2
    assert sorted(e.slot for e in await webhooks.list(LICENSEE) if e.slot is not None) == [0, 1]
    await webhooks.remove(LICENSEE, f"{0:032x}")
    assert (await webhooks.add(LICENSEE, URL)).slot == 2  # the place the removed one counted for
    with pytest.raises(LimitReached):
        await webhooks.add(LICENSEE, URL)


async def test_rotation_makes_a_new_secret_and_keeps_the_previous_one_signing_for_the_grace_period(store):
    webhooks = WebhookEndpoints(store, grace=timedelta(hours=6))
    added = await webhooks.add(LICENSEE, URL)
    before = utcnow()
    rotated = await webhooks.rotate_secret(LICENSEE, added.endpoint_id)
    assert rotated.secret.value != added.secret.value and rotated.secret.value.startswith("whsec_")
    assert rotated.previous_secret.value == added.secret.value
    expires = rotated.previous_secret.expires_at
    assert before + timedelta(hours=6) <= expires <= utcnow() + timedelta(hours=6)
    assert rotated.signing_secrets(utcnow()) == [rotated.secret.value, added.secret.value]
    assert rotated.signing_secrets(expires) == [rotated.secret.value]  # the grace period is over
    assert await store.get(LICENSEE, added.endpoint_id) == rotated

    again = await webhooks.rotate_secret(LICENSEE, added.endpoint_id.upper())  # ids in any case
    assert again.previous_secret.value == rotated.secret.value  # two secrets at most: the oldest is dropped
    assert added.secret.value not in again.signing_secrets(utcnow())


async def test_rotation_without_a_grace_period_drops_the_old_secret_at_once(store):
    webhooks = WebhookEndpoints(store, grace=timedelta(0))
    added = await webhooks.add(LICENSEE, URL)
    rotated = await webhooks.rotate_secret(LICENSEE, added.endpoint_id)
    assert rotated.previous_secret is None and rotated.signing_secrets(utcnow()) == [rotated.secret.value]


async def test_enable_clears_the_disabled_state_and_the_failures(webhooks, store):
    added = await webhooks.add(LICENSEE, URL)
    disabled = await store.replace(replace(added, disabled_at=utcnow(), disabled_reason="410 Gone", consecutive_failures=3,
                                           failing_since=utcnow()))
    enabled = await webhooks.enable(LICENSEE, added.endpoint_id)
    assert (enabled.disabled_at, enabled.disabled_reason, enabled.consecutive_failures, enabled.failing_since) == (None, None, 0, None)
    assert enabled.secret == disabled.secret and enabled.etag != disabled.etag


async def test_a_write_that_loses_a_race_reads_again_and_keeps_the_other_writers_change(webhooks, store):
    added = await webhooks.add(LICENSEE, URL)
    real_replace = store.replace
    raced = []

    async def replace_after_a_sender_wrote(endpoint):
        if not raced:  # the sender records a failure between our read and our write
            raced.append(await real_replace(replace(added, disabled_reason="5 failures", disabled_at=utcnow())))
        return await real_replace(endpoint)

    store.replace = replace_after_a_sender_wrote
    rotated = await webhooks.rotate_secret(LICENSEE, added.endpoint_id)
    assert rotated.disabled_reason == "5 failures" and rotated.previous_secret.value == added.secret.value


async def test_another_licensees_endpoint_is_as_missing_as_a_missing_one(webhooks, store):
    theirs = await webhooks.add(OTHER, URL)
    for act in (webhooks.rotate_secret, webhooks.enable, webhooks.remove, webhooks.get):
        with pytest.raises(NotFound) as not_theirs:
            await act(LICENSEE, theirs.endpoint_id)
        with pytest.raises(NotFound) as missing:
            await act(LICENSEE, "d" * 32)
        assert str(not_theirs.value).replace(theirs.endpoint_id, "X") == str(missing.value).replace("d" * 32, "X")
    for not_an_id in ("", "../x", "a" * 31, "g" * 32, "a/b#c?d"):
        with pytest.raises(NotFound):
            await webhooks.remove(LICENSEE, not_an_id)
    assert await webhooks.list(LICENSEE) == []
    assert await store.get(OTHER, theirs.endpoint_id) == theirs  # untouched


async def test_remove_deletes_only_that_endpoint(webhooks):
    keep = await webhooks.add(LICENSEE, URL)
    gone = await webhooks.add(LICENSEE, URL + "&2")
    await webhooks.remove(LICENSEE, gone.endpoint_id)
    assert [e.endpoint_id for e in await webhooks.list(LICENSEE)] == [keep.endpoint_id]
    with pytest.raises(NotFound):
        await webhooks.remove(LICENSEE, gone.endpoint_id)


async def test_a_removed_endpoint_cannot_be_rotated_under_a_racing_write(webhooks, store):
    added = await webhooks.add(LICENSEE, URL)

    async def gone(endpoint):
        await store.remove(LICENSEE, endpoint.endpoint_id)
        raise RecordChanged("gone")

    store.replace = gone
    with pytest.raises(NotFound):
        await webhooks.rotate_secret(LICENSEE, added.endpoint_id)


async def test_no_secret_reaches_the_logs_or_a_repr(webhooks, caplog):
    caplog.set_level(logging.DEBUG)
    added = await webhooks.add(LICENSEE, URL)
    rotated = await webhooks.rotate_secret(LICENSEE, added.endpoint_id)
    await webhooks.enable(LICENSEE, added.endpoint_id)
    listed = await webhooks.list(LICENSEE)
    await webhooks.remove(LICENSEE, added.endpoint_id)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert added.endpoint_id in logged  # what happened is logged, by id
    for secret in (added.secret.value, rotated.secret.value):
        for text in (logged, repr(rotated), repr(listed), str(rotated)):
            assert secret not in text and secret.removeprefix("whsec_") not in text
