"""Twilio, through Twilio's own Python SDK (async client).

After a crash (`find`), Twilio's own record answers whether it took an SMS: its Messages list, read
by To and From, newest first (Twilio sorts it by DateSent, most recent first: "Read multiple Message
resources", twilio.com/docs/messaging/api/message-resource). Twilio takes no idempotency key on a
send, so reading is the only safe question: an SMS it has is recorded, never sent again.
"""
from __future__ import annotations

import asyncio
import logging
import math
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from ..domain.pacing import retry_after_seconds
from . import Failure, Found, OutgoingSms, SendOutcome, SmsProvider, Trace

log = logging.getLogger("sms.providers.twilio")

TWILIO_API = "https://api.twilio.com"
TWILIO_MAX_VALIDITY = 36_000  # seconds: the longest ValidityPeriod Twilio takes, and its default
# Tracing a claim left behind: the messages read (one page), and how far apart our clock and Twilio's may be.
FIND_LIMIT = 200
CLOCK_SKEW = timedelta(minutes=1)


# Twilio's answers that say it did not take the SMS and another provider may (docs/providers.md cites each):
# 20003 authentication failed; 21408 permission to send to that region is not enabled on the account;
# 21606 the From number cannot send SMS (to that destination). Any other 4xx refuses this SMS (21211
# invalid To, 21610 the number replied STOP to Twilio, 21612 not reachable by SMS): another provider
# would refuse it too, or must not send it.
NOT_TAKEN_CODES = frozenset({20003, 21408, 21606})


def rest_failure(status: int, code: int | None) -> Failure:
    """What Twilio's error answer to a send means for trying elsewhere. A 5xx other than 503 may come after
    Twilio created the message, so it may have been sent; a 503 (Service Unavailable) and 401/403 are
    refusals at the door; 4xx by Twilio's error code."""
    if status == 503 or status in (401, 403) or code in NOT_TAKEN_CODES:
        return Failure.NOT_TAKEN
    if status >= 500:
        return Failure.AMBIGUOUS
    return Failure.REFUSED


class _Throttled(Exception):
    def __init__(self, retry_after: float | None):
        super().__init__("Twilio answered 429 Too Many Requests")
        self.retry_after = retry_after


class _TwilioHttp(AsyncTwilioHttpClient):
    """The SDK's own HTTP client, with two additions: a base URL (tests point it at a local fake of
    Twilio's API) and a 429 surfaced with its Retry-After, which the SDK's exception does not carry."""

    def __init__(self, api_base_url: str, timeout: float):
        super().__init__(timeout=timeout)
        self._base = api_base_url.rstrip("/")
        self._timeout = timeout

    async def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None, allow_redirects=False):
        if self._base != TWILIO_API and url.startswith(TWILIO_API):
            url = self._base + url[len(TWILIO_API):]
        # The SDK passes timeout=None, which aiohttp reads as "never time out": a stalled Twilio
        # would hold a send slot indefinitely.
        response = await super().request(method, url, params, data, headers, auth, timeout or self._timeout, allow_redirects)
        if response.status_code == 429:
            raise _Throttled(retry_after_seconds((response.headers or {}).get("Retry-After")))
        return response


class TwilioProvider(SmsProvider):
    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        status_callback_url: str | None = None,
        api_base_url: str = TWILIO_API,
        timeout_seconds: float = 15.0,
    ):
        self._http = _TwilioHttp(api_base_url, timeout_seconds)
        self.longest_call = timeout_seconds  # one request: the SDK's HTTP client does not retry
        self._client = Client(account_sid, auth_token, http_client=self._http)
        self._from = from_number
        self._service = messaging_service_sid
        self.default_sender = None if messaging_service_sid else from_number  # a service picks from its own pool
        self._callback = status_callback_url

    async def send(self, sms: OutgoingSms) -> SendOutcome:
        fields: dict[str, str | int] = {"to": sms.to, "body": sms.body}
        if sms.sender or not self._service:
            fields["from_"] = sms.sender or self._from or ""
        else:
            fields["messaging_service_sid"] = self._service
        if self._callback:
            # The reference rides in the callback URL, which Twilio signs, so a receipt finds its recipient.
            fields["status_callback"] = f"{self._callback}?ref={quote(sms.reference)}"
        if sms.valid_until is not None:
            # Twilio keeps a message queued at most 36,000 s and takes 1 to 36,000 (its errors 90007 and
            # 30036): a shorter validUntil is passed on, so Twilio drops it too once it is worth nothing.
            left = math.ceil((sms.valid_until - datetime.now(timezone.utc)).total_seconds())
            if left < TWILIO_MAX_VALIDITY:
                fields["validity_period"] = max(1, left)
        try:
            message = await self._client.messages.create_async(**fields)
        except _Throttled as exc:
            return SendOutcome(error=str(exc), transient=True, retry_after_seconds=exc.retry_after, failure=Failure.NOT_TAKEN,
                               code="429")
        except TwilioRestException as exc:
            transient = exc.status >= 500 or exc.status in (401, 403, 408)
            return SendOutcome(error=f"Twilio {exc.status} error {exc.code}: {exc.msg}", transient=transient,
                               failure=rest_failure(exc.status, exc.code), code=str(exc.code or exc.status))
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # No connection was made (refused, DNS, or no answer to the connect): nothing was written.
            return SendOutcome(error=f"Twilio unreachable ({type(exc).__name__})", transient=True, failure=Failure.NOT_TAKEN)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, TwilioException) as exc:
            # The request may have been written: a timeout waiting for the answer, a reset mid-answer, an
            # answer the SDK could not read. Twilio may have it.
            return SendOutcome(error=f"Twilio gave no answer ({type(exc).__name__})", transient=True, failure=Failure.AMBIGUOUS)
        if message.status in ("failed", "undelivered"):  # taken, then failed at once: Twilio's to report, not ours to resend
            return SendOutcome(provider_message_id=None,
                               error=f"Twilio refused: error {message.error_code} {message.error_message or ''}".strip(),
                               failure=Failure.REFUSED, code=str(message.error_code) if message.error_code else None)
        return SendOutcome(provider_message_id=message.sid)

    async def find(self, sms: OutgoingSms) -> Trace:
        """Whether Twilio took `sms`: an outbound message to its number, from its sender, created since
        its claim. The same body: Twilio has it (a failed one: it refused it).
        Only other messages in that time, or more than one page of them: it cannot be told which is
        ours (Twilio may rewrite a body, e.g. smart encoding), so unknown, never sent again. None: it
        never reached Twilio, safe to send."""
        # From the claim to now: the claim is stamped before its write goes out, and the call may come
        # any time after (a slow or retried write); anything in that span with our body may be ours.
        claimed = sms.attempt_at or sms.first_attempt_at or datetime.now(timezone.utc)
        start, end = claimed - CLOCK_SKEW, datetime.now(timezone.utc) + CLOCK_SKEW
        sender = sms.sender or (None if self._service else self._from)
        filters = {"to": sms.to, **({"from_": sender} if sender else {})}
        try:
            messages = await self._client.messages.list_async(**filters, limit=FIND_LIMIT, page_size=FIND_LIMIT)
        except _Throttled as exc:
            return Trace(Found.ASK_AGAIN, error=str(exc))
        except TwilioRestException as exc:
            return Trace(Found.ASK_AGAIN, error=f"Twilio {exc.status} error {exc.code}: {exc.msg}")
        except TwilioException as exc:  # a page it could not read ("Unable to fetch page"): the SDK's list raises this
            return Trace(Found.ASK_AGAIN, error=f"Twilio: {exc.args[0] if exc.args else type(exc).__name__}")
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return Trace(Found.ASK_AGAIN, error=f"Twilio unreachable ({type(exc).__name__})")
        ours = [m for m in messages if (m.direction or "").startswith("outbound") and m.date_created is not None
                and start <= m.date_created <= end]
        same = [m for m in ours if m.body == sms.body]
        if same:
            found = same[-1]  # the oldest: the list is newest first
            if found.status == "failed":  # Twilio took it and could not send it: nothing went out
                return Trace(Found.NOT_SENT, error=f"Twilio refused: error {found.error_code} {found.error_message or ''}".strip())
            return Trace(Found.SENT, found.sid)
        if ours or len(messages) >= FIND_LIMIT:
            return Trace(Found.UNKNOWN)
        return Trace(Found.NOT_SENT)

    async def check(self) -> str | None:
        """Fetching our own account proves Twilio answers and takes the credentials."""
        try:
            await self._client.api.v2010.accounts(self._client.username).fetch_async()
        except _Throttled:
            return None  # it answered
        except TwilioRestException as exc:
            return f"Twilio answered {exc.status}"
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return f"Twilio unreachable ({type(exc).__name__})"
        return None

    async def close(self) -> None:
        await self._http.close()
