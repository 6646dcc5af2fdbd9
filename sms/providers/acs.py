"""Azure Communication Services SMS, through its Python SDK (azure-communication-sms, aio).

Idempotency: `SmsClient.send()` makes fresh repeatability values on every call, so a retry of a
send ACS already performed would text the person twice. This adapter sends the same request
through the SDK's generated client with values derived from the recipient record instead. ACS
tracks a request for 5 minutes and answers 412 to a Repeatability-First-Sent older than that, so
within the window every attempt reuses the first attempt's pair (ACS dedupes it) and after it
each attempt gets a fresh pair of its own.

What ACS promises, and where: the SMS API's `SmsRecipient.repeatabilityRequestId` ("the client can
make the request multiple times with the same Repeatability-Request-ID and get back an appropriate
response without the server executing the request multiple times": REST API "Sms - Send",
api-version 2021-03-07, and azure-communication-sms 1.1.0's generated models), with
`repeatabilityFirstSent` saying when it was first sent. How long ACS tracks a request is written
down for its repeatable requests in general, 5 minutes, after which a repeat gets 412
(learn.microsoft.com/rest/api/communication/repeatable-requests, which lists Email and Rooms; the
SMS page gives no other figure). So after a crash (`find`) a claim left behind is asked about by
repeating its very request, only while its pair is inside REPEATABILITY_WINDOW: ACS then answers with
the SMS it has (sent once), or sends it (sent now), never twice. Past the window ACS cannot tell.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from email.utils import format_datetime

from azure.communication.sms._generated.models import SendMessageRequest, SmsRecipient, SmsSendOptions
from azure.communication.sms.aio import SmsClient
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.core.pipeline.policies import AsyncRetryPolicy
from azure.core.rest import HttpRequest

from ..domain.model import utcnow
from ..domain.pacing import retry_after_seconds
from . import Failure, Found, OutgoingSms, SendOutcome, SmsProvider, Trace

# Comfortably inside ACS's 5-minute tracking window, allowing for clock skew.
REPEATABILITY_WINDOW = timedelta(minutes=4)
_NAMESPACE = uuid.UUID("6f1d3b52-5c7e-4f8a-9a41-2a9e8b0c7d15")


def repeatability(sms: OutgoingSms) -> tuple[str, str]:
    """(Repeatability-Request-ID, Repeatability-First-Sent) for this attempt, stable across its retries."""
    request_id, first_sent = _pair(sms)
    return request_id, format_datetime(first_sent, usegmt=True)


def _pair(sms: OutgoingSms) -> tuple[str, datetime]:
    first = sms.first_attempt_at or utcnow()
    this = sms.attempt_at or first
    if this - first < REPEATABILITY_WINDOW:
        return str(uuid.uuid5(_NAMESPACE, sms.recipient_id)), first
    return str(uuid.uuid5(_NAMESPACE, f"{sms.recipient_id}/{sms.attempt}")), this


class _BoundedRetry(AsyncRetryPolicy):
    """azure-core's retry, with each wait between tries (its backoff, or a Retry-After) at most LONGEST_WAIT."""

    LONGEST_WAIT = 5.0

    def get_backoff_time(self, settings) -> float:
        return min(super().get_backoff_time(settings), self.LONGEST_WAIT)

    def get_retry_after(self, response) -> float | None:
        after = super().get_retry_after(response)
        return None if after is None else min(after, self.LONGEST_WAIT)


def _transient(status: int | None) -> bool:
    # 412: the repeatability window passed; the next attempt gets a fresh pair. 401/403: a key being
    # rotated or a role not yet granted should not fail every message at once.
    return status is None or status >= 500 or status in (401, 403, 408, 412, 429)


def _failure(status: int | None, whole_request: bool) -> Failure:
    """What an ACS refusal means for trying elsewhere (docs/providers.md). At the door (401/403 credentials
    or role, 429 throttled, 503 unavailable): not taken. Another 5xx answer to the whole request may come
    after ACS took it: ambiguous (asked again at once under the same repeatability pair). A recipient's
    own failed result in a whole answer, or any other 4xx: refused."""
    if status in (401, 403, 429, 503):
        return Failure.NOT_TAKEN
    if whole_request and (status is None or status >= 500):
        return Failure.AMBIGUOUS
    return Failure.REFUSED


class AcsProvider(SmsProvider):
    name = "acs"
    find_sends = True  # find repeats the request: what ACS never had, it sends then

    def __init__(self, connection_string: str, from_number: str, **client_options):
        # Few SDK-level retries: the queue's own retry, with backoff, is the outer loop.
        client_options.setdefault("retry_total", 2)
        # azure-core waits up to 300 s to connect and 300 s to read, as long as the default sending
        # lease: a stalled call would be taken for a crashed one while still in flight. Bounded as
        # Twilio's adapter is (15 s), three tries stay well inside the lease.
        client_options.setdefault("connection_timeout", 5)
        client_options.setdefault("read_timeout", 15)
        # azure-core sleeps whatever a Retry-After says between tries (RetryPolicy.sleep): capped here, so
        # the whole call has a bound (longest_call); a longer wait comes back as transient, and the
        # dispatch waits it out on the queue, holding no claim.
        client_options.setdefault("retry_policy", _BoundedRetry(**{k: client_options[k] for k in ("retry_total",)}))
        tries = client_options["retry_total"] + 1
        self.longest_call = tries * (client_options["connection_timeout"] + client_options["read_timeout"]) + \
            (tries - 1) * _BoundedRetry.LONGEST_WAIT
        self._client = SmsClient.from_connection_string(connection_string, **client_options)
        self._endpoint = self._client._endpoint  # noqa: SLF001 - parsed from the connection string by the SDK
        self.default_sender = from_number

    async def send(self, sms: OutgoingSms) -> SendOutcome:
        return (await self._send(sms))[0]

    async def find(self, sms: OutgoingSms) -> Trace:
        """Repeat the claim's very request, while ACS still tracks its pair (see the module docstring)."""
        now = utcnow()
        if now - _pair(sms)[1] >= REPEATABILITY_WINDOW or (sms.valid_until is not None and now >= sms.valid_until):
            return Trace(Found.UNKNOWN)  # ACS no longer tracks it; or a repeat could send what is no longer worth sending
        outcome, status, repeatability_result = await self._send(sms)
        if status == 412 or repeatability_result == "rejected":  # ACS no longer tracks it: it cannot tell
            return Trace(Found.UNKNOWN)
        if outcome.accepted:
            return Trace(Found.SENT, outcome.provider_message_id)
        if outcome.transient:
            return Trace(Found.ASK_AGAIN, error=outcome.error)
        return Trace(Found.NOT_SENT, error=outcome.error)  # refused for good: the first time too

    async def _send(self, sms: OutgoingSms) -> tuple[SendOutcome, int | None, str | None]:
        """The outcome, the HTTP status behind it and ACS's repeatabilityResult."""
        request_id, first_sent = repeatability(sms)
        request = SendMessageRequest(
            from_property=sms.sender or self.default_sender,
            sms_recipients=[SmsRecipient(to=sms.to, repeatability_request_id=request_id, repeatability_first_sent=first_sent)],
            message=sms.body,
            sms_send_options=SmsSendOptions(enable_delivery_report=True, tag=sms.reference),
        )
        try:
            response = await self._client._sms_service_client.sms.send(request)  # noqa: SLF001 - see module docstring
        except HttpResponseError as exc:
            headers = exc.response.headers if exc.response is not None else {}
            return SendOutcome(
                error=f"ACS {exc.status_code}: {exc.reason or exc.message}",
                transient=_transient(exc.status_code),
                retry_after_seconds=retry_after_seconds(headers.get("Retry-After")),
                failure=_failure(exc.status_code, whole_request=True), code=str(exc.status_code),
            ), exc.status_code, None
        except ServiceRequestError as exc:
            # azure-core: "An error occurred while attempt to make a request to the service. No request was sent."
            return SendOutcome(error=f"ACS unreachable ({type(exc).__name__})", transient=True, failure=Failure.NOT_TAKEN), None, None
        except ServiceResponseError as exc:
            # azure-core: "The request was sent, but the client failed to understand the response."
            return SendOutcome(error=f"ACS gave no answer ({type(exc).__name__})", transient=True, failure=Failure.AMBIGUOUS), None, None
        result = response.value[0]
        if result.successful:
            return SendOutcome(provider_message_id=result.message_id), result.http_status_code, result.repeatability_result
        return (SendOutcome(error=f"ACS {result.http_status_code}: {result.error_message}", transient=_transient(result.http_status_code),
                            failure=_failure(result.http_status_code, whole_request=False), code=str(result.http_status_code)),
                result.http_status_code, result.repeatability_result)

    async def check(self) -> str | None:
        """ACS SMS has no read-only call: this proves the endpoint answers, not that the key is right."""
        try:
            response = await self._client._sms_service_client._client.send_request(HttpRequest("GET", self._endpoint))  # noqa: SLF001
            await response.read()
        except (ServiceRequestError, ServiceResponseError) as exc:
            return f"ACS unreachable ({type(exc).__name__})"
        return None

    async def close(self) -> None:
        await self._client.close()
