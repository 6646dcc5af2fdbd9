"""Sends one signed webhook request and says what became of it; never follows a redirect, never
reaches a private network unless told to.

The destination guard works on the address actually connected to. A URL checked when it was saved
can later resolve elsewhere, and a name checked once and resolved again at connect time can answer
differently the second time (DNS rebinding). So the connector's resolver is the guard: it resolves
once, refuses the connection if any address is private, and hands the connector exactly the
addresses it checked. The URL's host still names the server for TLS (SNI, certificate) and in the
Host header. IP literals never reach a resolver, so they are checked before the request, the host
read as it was when the URL was saved (sms/domain/destinations.py normalised_host).
"""
from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import Mapping
from http import HTTPStatus

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from ..domain.destinations import NotAHost, host_address, non_public, normalised_host
from ..domain.pacing import retry_after_seconds
from ..domain.webhook_attempts import RESPONSE_BODY_CHARS, DeliveryAttempt, Outcome

log = logging.getLogger("sms.webhooks")

_READ_BYTES = 4 * RESPONSE_BODY_CHARS  # enough for 1,000 characters of UTF-8; the rest is never read
USER_AGENT = "sms-gateway-webhooks/1"


class DestinationRefused(Exception):
    """The destination is one webhooks may not reach. Not an OSError, so aiohttp passes it through
    unwrapped from the resolver."""


refusal = non_public  # the one rule (sms/domain/destinations.py), under the name the sender's callers use


class GuardedResolver(AbstractResolver):
    """Resolves a host once and answers only if every address is allowed (or `allow_private`): the
    connector connects to the addresses this returns, the ones that were checked."""

    def __init__(self, allow_private: bool):
        self._allow_private = allow_private
        self._resolver = aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        if not self._allow_private:
            for result in results:
                kind = refusal(result["host"])
                if kind:
                    raise DestinationRefused(f"{host} resolves to a {kind} address {result['host']}")
        return results

    async def close(self) -> None:
        await self._resolver.close()


class WebhookSender:
    """One long-lived HTTP session for every webhook this process sends, made on first use."""

    def __init__(
        self,
        *,
        connect_timeout: float = 5.0,
        total_timeout: float = 15.0,
        allow_private: bool = False,
        ssl_context: ssl.SSLContext | None = None,
    ):
        """`total_timeout` bounds the whole attempt, 15 s by default: the low end of the spec's 15-30 s
        (a receiver acknowledges, then works). `allow_private` is for local development only: it lets
        http through and private, loopback and link-local destinations. `ssl_context`: the CAs to trust
        when not the system's (tests trust their own); certificates are always verified."""
        self._timeout = aiohttp.ClientTimeout(total=total_timeout, connect=connect_timeout)
        self._allow_private = allow_private
        self._ssl = ssl_context if ssl_context is not None else True
        self._session: aiohttp.ClientSession | None = None
        self._resolver: GuardedResolver | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._resolver = GuardedResolver(self._allow_private)
            connector = aiohttp.TCPConnector(
                resolver=self._resolver,
                use_dns_cache=False,  # a cached answer would skip the guard's look at a fresh one
                ssl=self._ssl,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                cookie_jar=aiohttp.DummyCookieJar(),  # one receiver's cookies never reach another
                trust_env=False,  # no proxy from the environment between the guard and the receiver
                headers={"User-Agent": USER_AGENT},
            )
        return self._session

    async def send(self, url: str, headers: Mapping[str, str], body: str | bytes) -> DeliveryAttempt:
        """POST `body` with `headers` (the webhook-* ones from signing.sign) to `url`, once."""
        where = redacted(url)
        blocked = self._blocked(url)
        if blocked:
            return _logged(DeliveryAttempt(Outcome.BLOCKED, error=blocked), where, headers)
        data = body.encode("utf-8") if isinstance(body, str) else body
        started = time.monotonic()
        try:
            async with self._open().post(
                url, data=data, headers={"Content-Type": "application/json", **headers}, allow_redirects=False
            ) as response:
                attempt = _answered(response, await _start_of(response), _ms_since(started))
        except DestinationRefused as exc:
            attempt = DeliveryAttempt(Outcome.BLOCKED, latency_ms=_ms_since(started), error=str(exc))
        except asyncio.TimeoutError:
            attempt = DeliveryAttempt(Outcome.RETRY, latency_ms=_ms_since(started), error="timed out")
        except aiohttp.InvalidURL:
            attempt = DeliveryAttempt(Outcome.BLOCKED, latency_ms=_ms_since(started), error="not a valid URL")
        except (aiohttp.ClientError, OSError) as exc:
            attempt = DeliveryAttempt(Outcome.RETRY, latency_ms=_ms_since(started), error=f"unreachable ({_reason(exc)})")
        return _logged(attempt, where, headers)

    def _blocked(self, url: str) -> str | None:
        """Why `url` may not be sent to, as far as the URL alone tells (names are checked when resolved)."""
        try:
            parsed = URL(url)
        except (ValueError, TypeError):
            return "not a valid URL"
        if parsed.scheme not in ("https", "http") or not parsed.host:
            return "not an http(s) URL"
        if parsed.scheme != "https" and not self._allow_private:
            return "https only: the URL is http"
        if self._allow_private:
            return None
        host = parsed.host
        try:
            # As it was judged when saved: 127.1, 2130706433 and 0x7f.1 are 127.0.0.1 (the C library reads them so too)
            address = host_address(normalised_host(host))
        except NotAHost as exc:
            return f"{host} is not a valid host: it {exc}"
        if address is None:
            return None  # a name: the resolver checks what it resolves to
        kind = refusal(address)
        return f"{host} is a {kind} address" if kind else None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._resolver is not None:  # the connector closes only a resolver it made itself
            await self._resolver.close()
            self._resolver = None


def _answered(response: aiohttp.ClientResponse, text: str, latency_ms: int) -> DeliveryAttempt:
    status = response.status
    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    if 200 <= status < 300:
        return DeliveryAttempt(Outcome.DELIVERED, status, latency_ms, None, retry_after, text)
    if status == 410:
        outcome, error = Outcome.GONE, "410 Gone: the receiver wants no more webhooks"
    elif 300 <= status < 400:
        to = _location(response)
        outcome, error = Outcome.REFUSED, f"{status} redirect{to} not followed: the endpoint's URL needs updating"
    elif status in (408, 429) or status >= 500:
        outcome, error = Outcome.RETRY, _status_line(status)
    else:
        outcome, error = Outcome.REFUSED, _status_line(status)
    return DeliveryAttempt(outcome, status, latency_ms, error, retry_after, text)


async def _start_of(response: aiohttp.ClientResponse) -> str:
    """The response body's first 1,000 characters; the rest is never read (nor waited for)."""
    head = b""
    while len(head) < _READ_BYTES:
        chunk = await response.content.read(_READ_BYTES - len(head))
        if not chunk:
            break
        head += chunk
    return head.decode("utf-8", errors="replace")[:RESPONSE_BODY_CHARS]


def _location(response: aiohttp.ClientResponse) -> str:
    """" to <where the redirect points>", query dropped, or "" when it names nowhere usable."""
    try:
        return f" to {redacted(str(response.url.join(URL(response.headers['Location']))))}"
    except (KeyError, ValueError, TypeError):
        return ""


def _status_line(status: int) -> str:
    """"503 Service Unavailable": the standard phrase, not the receiver's, which could say anything."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def redacted(url: str) -> str:
    """The URL for a log: no query, fragment or credentials (receivers put tokens there)."""
    try:
        return str(URL(url).with_user(None).with_query(None).with_fragment(None))
    except (ValueError, TypeError):
        return "<invalid URL>"


def _reason(exc: BaseException) -> str:
    detail = str(exc).strip()
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _logged(attempt: DeliveryAttempt, where: str, headers: Mapping[str, str]) -> DeliveryAttempt:
    """One line per attempt: the id and the URL without its query; never the signature, the body or
    the receiver's own words (its response body is in the attempt, for the delivery log): every part
    of the line is the gateway's, so no phone number reaches it."""
    webhook_id = next((v for k, v in headers.items() if k.lower() == "webhook-id"), "?")
    level = logging.INFO if attempt.outcome is Outcome.DELIVERED else logging.WARNING
    log.log(
        level, "webhook %s to %s: %s%s in %d ms%s", webhook_id, where, attempt.outcome.value,
        f" ({attempt.status})" if attempt.status else "", attempt.latency_ms,
        f": {attempt.error}" if attempt.error else "",
    )
    return attempt
