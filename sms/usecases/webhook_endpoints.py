"""A licensee's webhook endpoints, managed: add, list, rotate a secret, remove, enable again. Sending
events to them is another module's job; this one decides what may be saved.

The rules checked when a URL is saved: absolute https, a host, no user name or password, at most
MAX_URL_CHARS. The host is judged as a URL parser reads it (sms/domain/destinations.py normalised_host:
percent-decoded, IDNA-mapped, legacy IPv4 forms read), so "１２７.０.０.１", "127。0。0。1",
"%31%32%37.0.0.1" and "ⓛⓞⓒⓐⓛⓗⓞⓢⓣ" are the loopback they spell, and the URL is saved with the host so
written (an international name in its ASCII form); a host that does not normalise cleanly is refused.
A host that is an IP address outside the public internet (private, loopback, link-local, reserved...)
or "localhost" is refused unless `allow_private` (SMS_WEBHOOKS_ALLOW_PRIVATE, for local development,
which also lets http through). A name can still resolve to such an address, or change what it
resolves to: the sender checks the resolved address again before each delivery.

Secrets follow the Standard Webhooks specification: "whsec_" and the base64 of 32 random bytes, which
are what signatures use. A secret is in the answer to add and to rotate_secret and nowhere else.
"""
from __future__ import annotations

import logging
import random
import re
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Iterable
from urllib.parse import urlsplit, urlunsplit

from ..domain.destinations import IPAddress, NotAHost, host_address, judged, non_public, normalised_host
from ..domain.errors import AlreadyExists, FieldError, LimitReached, NotFound, RecordChanged, ValidationFailed
from ..domain.events import EVENT_TYPES
from ..domain.model import utcnow
from ..domain.webhook_signing import new_secret  # the secret's form belongs to the signing scheme
from ..storage import WebhookEndpoint, WebhookEndpointStore, WebhookSecret
from .announce import Announcer
from .optimistic import update_optimistically

log = logging.getLogger("sms.webhooks")

MAX_ENDPOINTS = 5
MAX_URL_CHARS = 2000
DEFAULT_GRACE = timedelta(hours=24)
WRITE_ATTEMPTS = 3
# The field names a client reads in an error: the request's own (WebhookEndpointRequest).
URL_FIELD, EVENTS_FIELD = "Url", "EventTypes"

_ENDPOINT_ID = re.compile(r"^[0-9a-f]{32}$")


def _refused(field: str, message: str) -> ValidationFailed:
    return ValidationFailed([FieldError(field, "InvalidValue", f"{field}: {message}")])


def address_problem(address: IPAddress) -> str | None:
    """Why an address is not one a webhook may be sent to (outside the public internet), or None."""
    kind, shown = non_public(address), judged(address)
    if kind == "non-public":
        return f"{shown} is not a public internet address"
    return f"{shown} is {'the' if kind == 'unspecified' else 'a'} {kind} address" if kind else None


def checked_url(url: object, allow_private: bool) -> str:
    """The URL, if a webhook may be sent to it; ValidationFailed naming Url and the reason otherwise."""
    if not isinstance(url, str) or not url.strip():
        raise _refused(URL_FIELD, "is required: the https URL events are posted to")
    url = url.strip()
    if len(url) > MAX_URL_CHARS:
        raise _refused(URL_FIELD, f"is {len(url)} characters; at most {MAX_URL_CHARS}")
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise _refused(URL_FIELD, "must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not a number from 0 to 65535
    except ValueError:
        raise _refused(URL_FIELD, "is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme != "https" and not (allow_private and scheme == "http"):
        raise _refused(URL_FIELD, "must be an absolute https URL (https://...)")
    if not parts.hostname:
        raise _refused(URL_FIELD, "must name a host")
    if parts.username is not None or parts.password is not None:
        raise _refused(URL_FIELD, "must not carry a user name or password: the signature proves who sent an event")
    if parts.fragment or url.endswith("#"):
        raise _refused(URL_FIELD, "must not have a fragment (#...): it is never sent")
    try:
        host = normalised_host(f"[{parts.hostname}]" if parts.netloc.startswith("[") else parts.hostname)  # no userinfo by now
    except NotAHost as exc:
        raise _refused(URL_FIELD, f"names no valid host: it {exc}") from None
    if not allow_private:
        name = host.rstrip(".")
        if name == "localhost" or name.endswith(".localhost"):
            raise _refused(URL_FIELD, "must not point at localhost (SMS_WEBHOOKS_ALLOW_PRIVATE allows it for local development)")
        address = host_address(host)
        problem = address_problem(address) if address is not None else None
        if problem:
            raise _refused(URL_FIELD, f"must reach the public internet: {problem} "
                                      "(SMS_WEBHOOKS_ALLOW_PRIVATE allows it for local development)")
    if host != parts.hostname:  # saved as judged, so the sender (any client) reads the host that was judged
        netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port is not None else "")
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
        if len(url) > MAX_URL_CHARS:
            raise _refused(URL_FIELD, f"is {len(url)} characters written with its host in ASCII; at most {MAX_URL_CHARS}")
    return url


def checked_event_types(event_types: Iterable[object] | None) -> tuple[str, ...]:
    """The event types, each one this gateway sends, duplicates dropped, in the order given; empty
    (none given) means every type."""
    chosen: list[str] = []
    errors = []
    for i, name in enumerate(event_types or ()):
        if not isinstance(name, str) or name not in EVENT_TYPES:
            shown = name if isinstance(name, str) and len(name) <= 64 else "this"
            errors.append(FieldError(f"{EVENTS_FIELD}[{i}]", "InvalidValue",
                                     f"{EVENTS_FIELD}[{i}]: '{shown}' is not an event type; use {', '.join(EVENT_TYPES)}"))
        elif name not in chosen:
            chosen.append(name)
    if errors:
        raise ValidationFailed(errors)
    return tuple(chosen)


class WebhookEndpoints:
    def __init__(self, store: WebhookEndpointStore, *, allow_private: bool = False, grace: timedelta = DEFAULT_GRACE,
                 max_endpoints: int = MAX_ENDPOINTS, announcer: Announcer | None = None):
        self._store = store
        self._announcer = announcer  # told of every change, so this process sends by the endpoints as they are
        self.allow_private = allow_private
        self.grace = grace
        self.max_endpoints = max_endpoints

    async def add(self, licensee_id: str, url: object, event_types: Iterable[object] | None = None) -> WebhookEndpoint:
        """A new endpoint, with its secret: the only answer besides rotate_secret's that carries it.

        At most `max_endpoints` a licensee, however many adds run at once: each endpoint holds one of
        the licensee's places (its slot), and the store writes an endpoint only with a place no other
        holds (one add of those racing for a place wins). An add tries the places free when it read,
        in random order (so adds at once seldom meet), and is refused once none is left."""
        url = checked_url(url, self.allow_private)
        types = checked_event_types(event_types)
        now = utcnow()
        new = WebhookEndpoint(licensee_id, uuid.uuid4().hex, url, types, WebhookSecret(new_secret(), now), now)
        for slot in self._free_slots(await self._store.list(licensee_id)):
            try:
                endpoint = await self._store.add(replace(new, slot=slot))
                break
            except AlreadyExists:
                continue  # another add took this place since the list was read
        else:
            raise LimitReached(f"This licensee already has {self.max_endpoints} webhook endpoints, the most it may have: "
                               "remove one first")
        self._changed(licensee_id)
        log.info("webhook endpoint %s added for licensee %s", endpoint.endpoint_id, licensee_id)
        return endpoint

    async def list(self, licensee_id: str) -> list[WebhookEndpoint]:
        return await self._store.list(licensee_id)

    async def get(self, licensee_id: str, endpoint_id: str) -> WebhookEndpoint:
        """The licensee's endpoint; NotFound, worded the same, when it is missing or another licensee's."""
        endpoint_id = endpoint_id.strip().lower()
        endpoint = await self._store.get(licensee_id, endpoint_id) if _ENDPOINT_ID.match(endpoint_id) else None
        if endpoint is None:
            raise NotFound(f"No webhook endpoint with id {endpoint_id[:64]}")
        return endpoint

    async def rotate_secret(self, licensee_id: str, endpoint_id: str) -> WebhookEndpoint:
        """A new current secret; the old one keeps signing for `grace` (a previous one still in its
        grace period is dropped: two secrets at most). The answer carries the new secret."""
        now = utcnow()

        def change(endpoint: WebhookEndpoint) -> WebhookEndpoint:
            previous = replace(endpoint.secret, expires_at=now + self.grace) if self.grace > timedelta(0) else None
            return replace(endpoint, secret=WebhookSecret(new_secret(), now), previous_secret=previous)

        endpoint = await self._update(licensee_id, endpoint_id, change)
        log.info("webhook endpoint %s of licensee %s has a new secret; the previous one signs until %s",
                 endpoint.endpoint_id, licensee_id, endpoint.previous_secret.expires_at if endpoint.previous_secret else now)
        return endpoint

    async def enable(self, licensee_id: str, endpoint_id: str) -> WebhookEndpoint:
        """Send to a disabled endpoint again, its failures forgotten."""

        def change(endpoint: WebhookEndpoint) -> WebhookEndpoint:
            return replace(endpoint, disabled_at=None, disabled_reason=None, consecutive_failures=0, failing_since=None)

        return await self._update(licensee_id, endpoint_id, change)

    async def remove(self, licensee_id: str, endpoint_id: str) -> None:
        endpoint = await self.get(licensee_id, endpoint_id)
        await self._store.remove(licensee_id, endpoint.endpoint_id)
        self._changed(licensee_id)
        log.info("webhook endpoint %s of licensee %s removed", endpoint.endpoint_id, licensee_id)

    async def _update(self, licensee_id: str, endpoint_id: str, change) -> WebhookEndpoint:
        first = await self.get(licensee_id, endpoint_id)

        async def read() -> WebhookEndpoint:
            return await self.get(licensee_id, first.endpoint_id)

        written = await update_optimistically(read, change, self._store.replace, attempts=WRITE_ATTEMPTS,
                                              what=f"webhook endpoint {first.endpoint_id}", current=first)
        if written is None:  # change() always plans a write
            raise RecordChanged(f"webhook endpoint {first.endpoint_id} was not written")
        self._changed(licensee_id)
        return written

    def _free_slots(self, existing: list[WebhookEndpoint]) -> list[int]:
        """The places not held, shuffled. An endpoint saved before places were kept holds none but
        counts: the places are 0 up to the cap less their number, which only falls (none is saved so
        any more), so places held plus those endpoints never pass the cap."""
        held = {e.slot for e in existing if e.slot is not None}
        unplaced = sum(1 for e in existing if e.slot is None)
        free = [slot for slot in range(self.max_endpoints - unplaced) if slot not in held]
        return random.sample(free, len(free))

    def _changed(self, licensee_id: str) -> None:
        if self._announcer is not None:
            self._announcer.forget(licensee_id)

