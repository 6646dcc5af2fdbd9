"""The human-readable metadata page (GET /api/metadata), in the spirit of ServiceStack's.

Routes come from the route table, the DTO tables from the pydantic models, and the samples
are real model instances run through the same encoders the API answers with.
"""
from __future__ import annotations

import functools
import html
import json

from pydantic import BaseModel

from ..wire import CommResponse, Format, SMSContact, SMSModel, SMSSend, encode
from ..wire.dto import (
    CancelResponse,
    ErrorResponse,
    EstimateResponse,
    MatchedRecipient,
    MessageList,
    MessageSummary,
    RecipientEstimate,
    ResponseError,
    ResponseStatus,
    RouteRule,
    RoutingTableRequest,
    RoutingTableState,
    UsageDay,
    UsageResponse,
    WebhookDeliveryAttempt,
    WebhookDeliveryList,
    WebhookEndpointList,
    WebhookEndpointRemoved,
    WebhookEndpointRequest,
    WebhookEndpointState,
    WebhookReplayRequest,
    WebhookReplayResponse,
)
from .routes import OPERATION, ROUTES

_SAMPLE_REQUEST = SMSSend(
    sms_model=SMSModel(
        from_=SMSContact(name="Clinic", phone_number="Clinic"),
        to=[SMSContact(name="Sam Citizen", phone_number="+61412345678", contact_id="6f9619ff8b86d011b42d00c04fc964ff")],
        message_body="Your appointment is tomorrow at 10:30am. Reply YES to confirm.",
        reply_is_allowed=True,
        licensee_id="11111111111111111111111111111111",
    ),
)
# The seed's four fields, then what the message costs (issue 27), as priced by a price table in USD.
_SAMPLE_RESPONSE = CommResponse(comm_id="e1f6be64733348e3b37055b6c0fd9ebe", reference="SMS-E1F6BE64", status=True,
                                message="Queued for 1 recipient", encoding="GSM-7", segments=1, recipients=1, blocked=0,
                                estimated_cost="0.0525", currency="USD")
_SAMPLE_ESTIMATE = EstimateResponse(encoding="GSM-7", segments=1, recipients=1, blocked=1, estimated_cost="0.0525", currency="USD",
                                    lines=[RecipientEstimate(phone_number="+61412345678", country="AU", number_type="mobile",
                                                             provider="acs", cost="0.0525", action="allow"),
                                           RecipientEstimate(phone_number="+61190012345", country="AU", number_type="premium_rate",
                                                             provider="acs", cost="0.0525", action="block",
                                                             reason="premium-rate numbers are blocked by this licensee's guard "
                                                                    "(numberTypes)")])
# Scheduling (issue 16): properties ServiceStack's own clients do not know, and leave out.
_SAMPLE_SCHEDULED = SMSSend(
    sms_model=SMSModel(
        to=[SMSContact(name="Sam Citizen", phone_number="+61412345678")],
        message_body="Reminder: your appointment is today at 10:30am.",
        send_at="2026-11-26T08:00:00+11:00", validity_period=7200,
    ),
)
_SAMPLE_SCHEDULED_RESPONSE = CommResponse(comm_id="5d41402abc4b2a76b9719d911017c592", reference="SMS-5D41402A", status=True,
                                          message="Scheduled for 1 recipient at 2026-11-25T21:00:00Z")
_SAMPLE_CANCEL = CancelResponse(comm_id="5d41402abc4b2a76b9719d911017c592", cancelled=2, unaffected={"sent": 1})


def _fields(model: type[BaseModel]) -> str:
    rows = []
    for name, field in model.model_fields.items():
        annotation = str(field.annotation).replace("typing.", "").replace("sms.wire.dto.", "").replace("<class '", "").replace("'>", "")
        rows.append(f"<tr><td>{field.validation_alias or name}</td><td>{field.serialization_alias or name}</td>"
                    f"<td>{html.escape(annotation)}</td><td>{html.escape(field.description or '')}</td></tr>")
    return (f"<h3>{model.__name__}</h3><table><tr><th>Name (JSV, .NET)</th><th>JSON name</th><th>Type</th><th>Notes</th></tr>"
            + "".join(rows) + "</table>")


# What each status means, for the page; tests/unit/test_docs.py checks it names every one sms.domain.model.Status has.
STATUS_MEANINGS = {
    "scheduled": "Waiting for the message's SendAt.",
    "queued": "Waiting for its turn to be sent, or for a retry (scheduled and queued recipients inside the licensee's quiet "
              "hours wait for their end, with the reason in error).",
    "sending": "Handed to the provider.",
    "sent": "The provider took it.",
    "delivered": "The carrier says it reached the phone.",
    "undelivered": "The carrier says it did not reach the phone.",
    "failed": "The provider refused it, or every attempt failed; the reason is in error.",
    "opted_out": "Not sent: the number opted out (STOP).",
    "expired": "Not sent: its ValidUntil (or ValidityPeriod) passed first.",
    "cancelled": "Not sent: DELETE /api/sms/{commId} cancelled it first.",
    "blocked": "Not sent: the licensee's guard refused the destination (its country, its number type, a pumping block "
               "of its prefix, or its price over MaxPrice); the reason is in error.",
    "partially_sent": "A message's only: some of its recipients were sent, others were not or were not delivered.",
}


def _sample(title: str, media: str, body: bytes) -> str:
    text = body.decode()
    if media == "application/json":
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    return f"<h4>{html.escape(title)}</h4><pre>Content-Type: {media}\n\n{html.escape(text)}</pre>"


# The DTOs the page documents, in the order it shows them.
_DOCUMENTED = (SMSSend, SMSModel, SMSContact, CommResponse, EstimateResponse, RecipientEstimate, CancelResponse, MessageList,
               MessageSummary, MatchedRecipient, UsageResponse, UsageDay, WebhookEndpointRequest, WebhookEndpointState,
               WebhookEndpointList, WebhookEndpointRemoved, WebhookDeliveryList, WebhookDeliveryAttempt, WebhookReplayRequest,
               WebhookReplayResponse, RoutingTableRequest, RoutingTableState, RouteRule)


@functools.cache
def page() -> bytes:
    routes = "".join(
        f"<tr><td>{r.working_methods[0]}</td><td>/{html.escape(r.path)}</td><td>{r.kind}</td></tr>"
        for r in ROUTES if r.kind in ("send", "send_now", "batch", "reply", "estimate", "status", "cancel", "replies", "list", "usage")
        or r.kind.startswith(("webhooks_", "routes_"))
    )
    statuses = "".join(f"<tr><td>{status}</td><td>{html.escape(meaning)}</td></tr>" for status, meaning in STATUS_MEANINGS.items())
    error = ErrorResponse(response_status=ResponseStatus(
        error_code="ValidationException", message="SMSModel.To needs at least one recipient",
        errors=[ResponseError(error_code="NotEmpty", field_name="SMSModel.To", message="SMSModel.To needs at least one recipient")],
    ))
    samples = "".join(
        _sample(f"{title} ({fmt.value.upper()})", fmt.content_type.split(";")[0], encode(model, fmt))
        for title, model in (("Request: SMSSend", _SAMPLE_REQUEST), ("Response: CommResponse", _SAMPLE_RESPONSE), ("Error", error),
                             ("Request: SMSSend, scheduled", _SAMPLE_SCHEDULED), ("Response: CommResponse, scheduled",
                                                                                  _SAMPLE_SCHEDULED_RESPONSE),
                             ("Response to DELETE /api/sms/{commId}: CancelResponse", _SAMPLE_CANCEL),
                             ("Response to POST /api/sms/estimate: EstimateResponse", _SAMPLE_ESTIMATE))
        for fmt in (Format.JSON, Format.JSV)
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SMS Gateway API: {OPERATION}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}}
pre{{background:#f6f6f6;padding:.75rem;overflow:auto}}</style></head><body>
<h1>SMS Gateway API</h1>
<h2>{OPERATION}</h2>
<p>Saves the specified SMS and sends it for background processing. Requires authentication:
<code>Authorization: Bearer &lt;API key&gt;</code> (or HTTP Basic with the key as the user name).</p>
<p>Choose the response format with <code>?format=json|jsv</code>, a <code>.json</code>/<code>.jsv</code> suffix on the
route, or the <code>Accept</code> header (JSON by default). Request bodies may be JSON, JSV
(<code>text/jsv</code>) or a form post. The OpenAPI document is at <a href="/api/openapi.json">/api/openapi.json</a>;
every operation, with typed DTOs for ServiceStack's clients, at <a href="/metadata">/metadata</a>.</p>
<h2>Routes</h2><table><tr><th>Method</th><th>Route</th><th>Kind</th></tr>{routes}</table>
<h2>Scheduling</h2>
<p>SMSModel's <code>SendAt</code> holds a message until an instant (ISO 8601 with its offset), <code>ValidUntil</code> or
<code>ValidityPeriod</code> (seconds) says when it is no longer worth sending, and <code>Urgent</code> sends it inside the
licensee's quiet hours too. ServiceStack clients that do not know them leave them out. <code>DELETE /api/sms/{{commId}}</code>
cancels what of a message has not gone.</p>
<h2>Cost before sending</h2>
<p>Every send answers, after the CommResponse's own fields, how its body is encoded, the segments of each recipient's SMS,
how many recipients are to be sent and how many the licensee's guard blocked, and what those to be sent cost by the
operator's price table. <code>POST /api/sms/estimate</code> takes any body a send takes and answers the same, with a line per
recipient, storing and sending nothing. SMSModel's <code>SmartEncoding</code> replaces typographic quotes, dashes, ellipses
and Unicode spaces with their GSM-7 equivalents; <code>MaxSegments</code> refuses a longer body; <code>MaxPrice</code> blocks a
recipient whose SMS costs more.</p>
<h2>Statuses</h2><table><tr><th>Status</th><th>Meaning</th></tr>{statuses}</table>
<h2>Data transfer objects</h2>
{"".join(_fields(m) for m in _DOCUMENTED)}
<h2>Samples</h2>
{samples}
</body></html>""".encode()
