"""The OpenAPI 3 document, generated from the route table and the pydantic models the code uses.

Nothing here is written by hand that the code also knows: paths come from sms.routes, request
and response schemas from the wire DTOs (request schemas in validation mode, with the .NET
names JSV uses and JSON accepts; response schemas in serialization mode, camelCase).
"""
from __future__ import annotations

import functools
import json
from typing import Any

from pydantic.json_schema import models_json_schema

from ..domain.model import Status
from ..domain.routing import MAX_PROVIDERS_PER_RULE, MAX_RULES
from ..domain.validation import MAX_NAME_CHARS, MAX_NOTES_CHARS, MAX_SEGMENTS_OPTION
from ..storage import KEY_ROLES
from ..usecases.auth import MAX_ACTIVE_KEYS, MAX_READ_ONLY_KEYS
from ..usecases.delivery import DEFAULT_LOG_TAKE, MAX_LOG_TAKE, REPLAY_BATCHES
from ..usecases.ledger import DEFAULT_TAKE, MAX_TAKE
from ..usecases.optout_list import DEFAULT_TAKE as OPT_OUTS_DEFAULT_TAKE
from ..usecases.optout_list import MAX_TAKE as OPT_OUTS_MAX_TAKE
from ..usecases.status import DEFAULT_EVENTS_TAKE, MAX_EVENTS_TAKE
from ..usecases.webhook_endpoints import MAX_ENDPOINTS, MAX_URL_CHARS
from ..wire import CommResponse, ErrorResponse, MessageState, RepliesResponse, SMSModel, SMSSend
from ..wire.dto import (
    ApiKeyList,
    ApiKeyRotation,
    ApiKeyState,
    CancelResponse,
    EstimateResponse,
    GuardRequest,
    GuardState,
    LicenseeList,
    LicenseeSettingsState,
    MessageList,
    OptOutHistory,
    OptOutList,
    OptOutState,
    ProvidersResponse,
    RoutingTableRequest,
    RoutingTableState,
    UsageResponse,
    WebhookDeliveryList,
    WebhookEndpointList,
    WebhookEndpointRemoved,
    WebhookEndpointRequest,
    WebhookEndpointState,
    WebhookEventList,
    WebhookReplayRequest,
    WebhookReplayResponse,
)
from ..wire.mapping import LISTED_STATUSES, MAX_GRACE_HOURS, MAX_KEY_DAYS, MAX_KEY_NAME_CHARS
from ..wire.requests import (
    ACTING_FOR,
    ACTING_FOR_TEXT,
    AddOptOut,
    CreateApiKey,
    GetOptOutHistory,
    GetSmsEvents,
    GetUsage,
    GetWebhookDeliveries,
    QueryApiKeys,
    QueryOptOuts,
    QuerySms,
    RemoveOptOut,
    RotateApiKey,
    SetLicenseeSettings,
    query_names,
)
from .routes import ACTING_KINDS, ADMIN_KINDS, KEY_ID_PATTERN, MAX_BATCH, OPERATION, READ_KINDS, ROUTES, Route

_REF = "#/components/schemas/{model}"
_JSON = "application/json"
_JSV = "text/jsv"

_ERRORS = {
    "400": "The request is malformed or breaks a rule; `errors` names each field. Nothing was saved.",
    "401": "The API key is missing, malformed, unknown or revoked.",
    "403": "SMSModel.LicenseeId is not the licensee of the API key.",
    "404": "No such message for this licensee, or no such route or operation.",
    "405": "The route exists, but not for this method.",
    "409": "A request with this Idempotency-Key is still being processed; retry shortly.",
    "412": "Repeatability-First-Sent is older than the idempotency window.",
    "413": "The request body is larger than SMS_MAX_REQUEST_BYTES.",
    "415": "The Content-Type is not one this service reads.",
    "422": "This Idempotency-Key was used with a different request.",
    "429": "Too many requests; retry after the Retry-After header's seconds.",
    "503": "Storage is unavailable; retry later.",
}
_ERRORS_BY_KIND = {
    "send": ("400", "401", "403", "404", "405", "409", "412", "413", "415", "422", "429", "503"),
    "reply": ("400", "401", "403", "404", "405", "409", "412", "413", "415", "422", "429", "503"),
    "batch": ("400", "401", "403", "405", "409", "412", "413", "415", "422", "429", "503"),
    "estimate": ("400", "401", "403", "404", "405", "413", "415", "429", "503"),
    "status": ("400", "401", "404", "429", "503"),
    "cancel": ("400", "401", "404", "405", "409", "429", "503"),
    "replies": ("400", "401", "404", "429", "503"),
    "list": ("400", "401", "404", "429", "503"),
    "usage": ("400", "401", "404", "429", "503"),
    "providers": ("400", "401", "404", "429", "503"),
    "webhooks_list": ("400", "401", "429", "503"),
    "webhooks_add": ("400", "401", "409", "413", "415", "429", "503"),
    "webhooks_remove": ("400", "401", "404", "405", "429", "503"),
    "webhooks_rotate_secret": ("400", "401", "404", "405", "429", "503"),
    "webhooks_enable": ("400", "401", "404", "405", "429", "503"),
    "webhooks_deliveries": ("400", "401", "404", "405", "429", "503"),
    "webhooks_replay": ("400", "401", "404", "405", "413", "415", "429", "503"),
    "routes_show": ("400", "401", "429", "503"),
    "routes_set": ("400", "401", "409", "413", "415", "429", "503"),
    "routes_clear": ("400", "401", "409", "429", "503"),
    "guard_show": ("400", "401", "409", "429", "503"),
    "guard_set": ("400", "401", "403", "409", "413", "415", "429", "503"),
    "guard_clear": ("400", "401", "403", "409", "429", "503"),
    "settings_show": ("400", "401", "429", "503"),
    "settings_set": ("400", "401", "409", "413", "415", "429", "503"),
    # API keys: 403 (a licensee's key on an admin route, a read-only key on a change) comes from _statuses.
    "keys_current": ("400", "401", "404", "429", "503"),
    "keys_list": ("400", "401", "429", "503"),
    "keys_create": ("400", "401", "409", "413", "415", "429", "503"),
    "keys_rotate": ("400", "401", "404", "405", "409", "413", "415", "429", "503"),
    "keys_revoke": ("400", "401", "404", "405", "429", "503"),
    # opt-outs
    "optouts_list": ("400", "401", "429", "503"),
    "optouts_history": ("400", "401", "429", "503"),
    "optouts_add": ("400", "401", "413", "415", "429", "503"),
    "optouts_remove": ("400", "401", "404", "405", "409", "429", "503"),
    # Issue 29: every licensee (admin keys only), and a message's webhook events.
    "licensees_list": ("400", "401", "429", "503"),
    "events": ("400", "401", "404", "429", "503"),
}
# Where a status means something else on a route than _ERRORS says.
_ERRORS_ON = {
    "cancel": {"400": "The commId is not a Guid.", "404": "No such message for this licensee (another licensee's answers the same).",
               "409": "The message kept changing while it was cancelled (its job is sending it): cancel it again after Retry-After."},
    "webhooks_add": {"409": f"The licensee already has {MAX_ENDPOINTS} webhook endpoints: remove one first."},
    **{kind: {"404": "No webhook endpoint with this id for this licensee."}
       for kind in ("webhooks_remove", "webhooks_rotate_secret", "webhooks_enable", "webhooks_deliveries")},
    **{kind: {"409": "The licensee's settings kept changing while this change was saved (another change landed first each "
                     "time): make it again."} for kind in ("routes_set", "routes_clear", "guard_set", "guard_clear")},
    **{kind: {"403": "The change would loosen the guard (the message names each field: Countries.GB: block -> allow). A "
                     "licensee's key may only tighten its guard; the operator loosens it (python -m sms guard set, or an admin "
                     "key). Nothing was saved."} for kind in ("guard_set", "guard_clear")},
    "guard_show": {"409": "The licensee's stored guard cannot be read: the operator sets it again."},
    "keys_current": {"404": "The key was revoked and removed while this worker still held it: sign in again."},
    "keys_create": {"409": f"The licensee already has as many active keys of this kind (role, read-only or not) as it may: "
                           f"{MAX_ACTIVE_KEYS} full-access, {MAX_READ_ONLY_KEYS} read-only. Revoke one, or rotate it, first."},
    "keys_rotate": {"404": "No active API key with this id.",
                    "409": f"The key's licensee would keep {MAX_ACTIVE_KEYS} other full-access keys of its role "
                           f"({MAX_READ_ONLY_KEYS} read-only) beside the new one: revoke one first."},
    "keys_revoke": {"404": "No API key with this id."},
    "optouts_add": {"400": "phoneNumber is missing or no number, or reason is missing, longer than 500 characters or not printable. "
                           "Nothing was saved."},
    "optouts_remove": {"400": "phoneNumber is missing or no number, or reason is missing, longer than 500 characters or not "
                              "printable. Nothing was changed.",
                       "404": "The number has no opt-out of this licensee to remove.",
                       "409": "The number has no opt-out of this licensee, but a STOP sent to a sender number, or one the gateway "
                              "could not tie to a licensee, blocks it (the message says which). The gateway never lifts those: "
                              "only a START from the number does. Or the number's opt-out changed while the removal was "
                              "being made (a STOP landed): nothing was lifted; read it again."},
    "routes_set": {"400": "The body is no routing table: `errors` names each problem (Rules[1].Providers[0]: a provider this "
                          "deployment does not have; a country libphonenumber does not know; a prefix not + and 1 to 15 digits; "
                          "a sender neither E.164 nor an alphanumeric id; a rule an earlier one leaves nothing to match; more "
                          f"than {MAX_RULES} rules). Nothing was saved."},
    "webhooks_replay": {"400": "The request breaks a rule (`errors` names each field: EventId, or From and To, not both; "
                               "From before To), or the endpoint is disabled or does not take the event's type. Nothing was queued.",
                        "404": "No webhook endpoint with this id for this licensee, or no event with this EventId."},
    "settings_set": {"400": "A field is wrong (`errors` names each): QuietHours not a window HH:MM-HH:MM, or one that starts and "
                            "ends at the same time; TimeZone not an IANA name; QuietHours and NoQuietHours both given; none of "
                            "the three given. Nothing was saved.",
                     "409": "The licensee's settings kept changing while this change was saved (another change landed first each "
                            "time): make it again."},
    # Issue 29
    "events": {"400": "The commId is not a Guid, take is not 1 to 500, or the continuationToken is not one this route issued.",
               "404": "No such message for this licensee (another licensee's answers the same)."},
}
SUMMARIES = {
    "send": "Save the SMS and queue it for background sending",
    "send_now": "Save the SMS and send it within the request; the answer says what happened",
    "reply": f"ServiceStack's predefined route: {OPERATION} saves and queues; {OPERATION}[] takes a batch",
    "batch": f"ServiceStack's auto-batch: a list of up to {MAX_BATCH} {OPERATION}, every one validated before any is saved",
    "estimate": "What a send of this body would cost, nothing stored, queued or sent: encoding, segments, recipients to be "
                "sent and blocked, the estimated cost by the operator's price table, and each recipient's country, number type, "
                "provider, cost and what the licensee's guard says of it. Takes any body a send takes (an SMSSend, an SMSModel "
                f"on its own, or a list of up to {MAX_BATCH} of them, answered by a list); no Idempotency-Key",
    "status": "The message and every recipient's status",
    "cancel": "Cancel what of the message has not gone: every recipient still scheduled or queued ends cancelled; "
              "the answer counts them, and the others by status",
    "replies": "The replies people sent to the message (when it allowed replies)",
    "list": "The licensee's messages, newest first, a page at a time, with filters",
    "usage": "What the licensee sent, per day of its time zone: messages, recipients and recipients by status (every one), "
             "segments and recipients by provider (only those a provider accepted: what providers bill); each day names its zone",
    "providers": "The deployment's providers, in the order the settings name them, each with its circuit breaker (and its "
                 "per-country circuits) in the worker that answered: closed, open (routed around) or half_open",
    "webhooks_list": "The licensee's webhook endpoints, oldest first (never their secrets), and every event type",
    "webhooks_add": f"Add a webhook endpoint (at most {MAX_ENDPOINTS}); the answer carries its signing secret, shown only this once",
    "webhooks_remove": "Remove a webhook endpoint: nothing more is sent to it",
    "webhooks_rotate_secret": ("A new signing secret, shown only this once; the previous one keeps signing for "
                               "SMS_WEBHOOK_SECRET_GRACE_HOURS"),
    "webhooks_enable": "Send to a disabled webhook endpoint again, its failures forgotten",
    "webhooks_deliveries": "The webhook endpoint's delivery log: every attempt to send it an event, newest first, a page at a time",
    "webhooks_replay": f"Send events to the webhook endpoint again: one (EventId), or every one written in a time range "
                       f"(From, To), at most {REPLAY_BATCHES} batches a request",
    "routes_show": "The routing table the licensee's messages go by: its own (source licensee) or the deployment's default "
                   "(source default). The first rule that matches a number wins; its providers are tried in order",
    "routes_set": f"Give the licensee its own routing table (1 to {MAX_RULES} rules), in place of the deployment's default; "
                  "the answer is the table as stored. Every worker uses it within 30 s",
    "routes_clear": "Remove the licensee's own routing table: the deployment's default applies again (the answer shows it)",
    "guard_show": "The guard the licensee's messages go by (its own, source licensee, or the deployment's default): which "
                  "countries and number types it allows, monitors or blocks, pumping protection, its safe list and its caps",
    "guard_set": "Tighten the licensee's guard: the fields given replace (countries, numberTypes and caps merge); the answer is "
                 "the guard as stored. Every worker uses it within 30 s",
    "guard_clear": "Go back to the deployment's default guard, where it permits nothing the licensee's own refuses",
    "settings_show": "The licensee's own settings: its quiet hours (the window its messages wait out, in each recipient's local "
                     "time) and its time zone",
    "settings_set": "Change the licensee's quiet hours or time zone (what is not given is kept; NoQuietHours: true removes the "
                    "quiet hours); the answer is the settings as stored. Every worker uses them within 30 s, and messages the "
                    "old hours held are queued again",
    "keys_current": "The API key the request carries (never its secret): its licensee, role and whether it is read-only. Any "
                    "key may ask; a console signs in with it",
    "keys_list": "Admin key only: every API key, or one licensee's (licenseeId), oldest first, never their secrets",
    "keys_create": "Admin key only: a new API key for a licensee, with its role and read-only flag; the answer carries the key, "
                   "shown only this once",
    "keys_rotate": "Admin key only: a new key replacing this one, with its licensee, name, role and read-only flag; the new key is "
                   "in the answer, shown only this once, and the replaced one keeps working for graceHours (24 by default)",
    "keys_revoke": "Admin key only: revoke the key; this worker refuses it at once, every worker within SMS_API_KEY_CACHE_SECONDS",
    # opt-outs
    "optouts_list": "The licensee's own opt-outs, by number (opted back in too: each number's latest change), searched by a "
                    "number or the start of one; a page of up to 200 and a continuation token",
    "optouts_history": "Every change of one number's opt-out the licensee may see, newest first: its own scope's STOPs, STARTs "
                       "and manual changes (with reason and key), and the STOPs shared by every licensee",
    "optouts_add": "Stop the licensee's messages to a number (a manual opt-out): recorded with its reason and the key's id; "
                   "every worker applies it within 30 s",
    "optouts_remove": "Lift the licensee's own opt-out of a number, recorded with its reason and the key's id. A STOP the number "
                      "sent to a sender number, or one that applies to every licensee, is never lifted: the answer lists them",
    # Issue 29
    "licensees_list": "Admin key only: every licensee (one with an API key or settings of its own), by id: its active keys, "
                      "whether it has its own routing table and guard, its quiet hours and time zone",
    "events": "The webhook events the message produced, oldest first, a page at a time: each as its endpoints were sent it "
              "(kept only while the licensee has a webhook endpoint)",
}
_WEBHOOK_ANSWERS = {"webhooks_list": WebhookEndpointList, "webhooks_remove": WebhookEndpointRemoved,
                    "webhooks_deliveries": WebhookDeliveryList, "webhooks_replay": WebhookReplayResponse}
# The query parameters of GET routes are their request DTOs' fields (sms/wire/requests.py: names and descriptions);
# what the DTOs leave to the routes' own checks (ranges, patterns) is said here.
_QUERY_SCHEMAS: dict[type, dict[str, dict[str, Any]]] = {
    GetWebhookDeliveries: {"take": {"type": "integer", "minimum": 1, "maximum": MAX_LOG_TAKE, "default": DEFAULT_LOG_TAKE}},
    QuerySms: {"take": {"type": "integer", "minimum": 1, "maximum": MAX_TAKE, "default": DEFAULT_TAKE},
               "status": {"type": "string", "enum": list(LISTED_STATUSES)},
               **dict.fromkeys(("contactId", "linkedObjectId", "suiteId"), {"type": "string", "format": "uuid"}),
               "reference": {"type": "string", "pattern": "^SMS-[0-9A-Fa-f]{8}$"}},
    GetUsage: dict.fromkeys(("from", "to"), {"type": "string", "format": "date"}),
    QueryApiKeys: {"licenseeId": {"type": "string", "format": "uuid"}},
    QueryOptOuts: {"take": {"type": "integer", "minimum": 1, "maximum": OPT_OUTS_MAX_TAKE, "default": OPT_OUTS_DEFAULT_TAKE},
                   "licenseeId": {"type": "string", "format": "uuid"}},  # opt-outs
    GetOptOutHistory: {"licenseeId": {"type": "string", "format": "uuid"}},
    RemoveOptOut: {"licenseeId": {"type": "string", "format": "uuid"}, "reason": {"type": "string", "minLength": 1, "maxLength": 500}},
    GetSmsEvents: {"take": {"type": "integer", "minimum": 1, "maximum": MAX_EVENTS_TAKE, "default": DEFAULT_EVENTS_TAKE}},
}


_GUID = {"type": "string", "format": "uuid"}


def _query_parameters(model: type, path_values: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """A GET request DTO's fields as OpenAPI query parameters (the ones its path takes left out)."""
    schemas = {ACTING_FOR: _GUID, **_QUERY_SCHEMAS.get(model, {})}
    return [{"name": name, "in": "query", "required": False, "schema": schemas.get(name, {"type": "string"}),
             "description": model.model_fields[field].description}
            for field, name in zip(model.model_fields, query_names(model), strict=True) if name not in path_values]

_INSTANT = "an instant with its offset, Z, +HH:MM or -HH:MM (2026-11-25T09:00:00+11:00), or a day (2026-11-25, UTC)"
_REPLAY_FORM = {
    "EventId": {"type": "string", "description": "The event to send again"},
    "From": {"type": "string", "description": f"Events written from (inclusive): {_INSTANT}"},
    "To": {"type": "string", "description": f"Events written before (exclusive): {_INSTANT}, taken whole"},
    "ContinuationToken": {"type": "string", "description": "From the previous answer for the same range: go on from there"},
}

_GET_KINDS = ("status", "replies", "list", "usage")
@functools.cache
def document() -> dict[str, Any]:
    _, schemas = models_json_schema(
        [(SMSSend, "validation"), (CommResponse, "serialization"), (EstimateResponse, "serialization"),
         (MessageState, "serialization"), (CancelResponse, "serialization"),
         (RepliesResponse, "serialization"), (MessageList, "serialization"), (UsageResponse, "serialization"),
         (ProvidersResponse, "serialization"), (ErrorResponse, "serialization"),
         (WebhookEndpointRequest, "validation"), (WebhookEndpointState, "serialization"), (WebhookEndpointList, "serialization"),
         (WebhookEndpointRemoved, "serialization"), (WebhookDeliveryList, "serialization"),
         (WebhookReplayRequest, "validation"), (WebhookReplayResponse, "serialization"),
         (RoutingTableRequest, "validation"), (RoutingTableState, "serialization"), (GuardRequest, "validation"),
         (GuardState, "serialization"), (SetLicenseeSettings, "validation"), (LicenseeSettingsState, "serialization"),
         (CreateApiKey, "validation"), (RotateApiKey, "validation"), (ApiKeyState, "serialization"),
         (ApiKeyList, "serialization"), (ApiKeyRotation, "serialization"),
         (AddOptOut, "validation"), (OptOutState, "serialization"), (OptOutList, "serialization"), (OptOutHistory, "serialization"),
         (LicenseeList, "serialization"), (WebhookEventList, "serialization")],
        ref_template=_REF,
    )
    _document_limits(schemas["$defs"])
    _document_routing_limits(schemas["$defs"])
    _document_statuses(schemas["$defs"])
    paths: dict[str, Any] = {}
    for route in ROUTES:
        if route.kind in SUMMARIES:
            paths.setdefault("/" + route.path, {})[route.working_methods[0].lower()] = _operation(route)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "SMS Gateway API",
            "version": "1.0.0",
            "description": "Saves SMS messages and sends them through an SMS provider. Compatible with the "
            f"ServiceStack service's {OPERATION} operation: JSON or JSV, chosen by ?format=, a .json/.jsv suffix "
            "or the Accept header.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <API key>"},
                "basic": {"type": "http", "scheme": "basic", "description": "HTTP Basic with the API key as the user name"},
            },
        },
        "security": [{"bearer": []}, {"basic": []}],
    }


def _document_limits(schemas: dict[str, Any]) -> None:
    """The lengths sms.domain.validation enforces, which the DTOs (the seed's contract) do not carry."""
    for model, field, limit in (("SMSContact", "Name", MAX_NAME_CHARS), ("SMSModel", "Notes", MAX_NOTES_CHARS)):
        for option in schemas[model]["properties"][field]["anyOf"]:
            if option.get("type") == "string":
                option["maxLength"] = limit
    for field, limit in (("SendAt", {"format": "date-time"}), ("ValidUntil", {"format": "date-time"}), ("ValidityPeriod", {"minimum": 1}),
                         ("MaxSegments", {"minimum": 1, "maximum": MAX_SEGMENTS_OPTION})):
        for option in schemas["SMSModel"]["properties"][field]["anyOf"]:
            if option.get("type") != "null":
                option.update(limit)


def _document_routing_limits(schemas: dict[str, Any]) -> None:
    """How many rules and providers a table may have (sms.domain.routing checks them, naming the field:
    the DTO leaves them to it)."""
    for model, field, limit in (("RoutingTableRequest", "Rules", MAX_RULES), ("RouteRule-Input", "Providers", MAX_PROVIDERS_PER_RULE)):
        schemas[model]["properties"][field]["anyOf"][0].update(minItems=1, maxItems=limit)


_STATUS_WORDS = ("scheduled (waiting for SendAt), queued, sending, sent, delivered, undelivered, failed, opted_out, "
                 "expired (ValidUntil passed before it was sent), cancelled (DELETE /api/sms/{commId} came first), "
                 "blocked (the licensee's guard refused the destination)")


def _document_statuses(schemas: dict[str, Any]) -> None:
    """The statuses each answer can hold, from sms.domain.model.Status (the DTOs carry them as text)."""
    recipient = [s.value for s in Status]
    for model, statuses in (("MessageState", LISTED_STATUSES), ("MessageSummary", LISTED_STATUSES), ("RecipientState", recipient),
                            ("RecipientEvent", recipient), ("MatchedRecipient", recipient)):
        prop = schemas[model]["properties"]["status"]
        for option in prop.get("anyOf", [prop]):
            if option.get("type") == "string":
                option["enum"] = list(statuses)
        prop["description"] = ("A message's: its recipients' common status, sending while any is still waiting or being sent, "
                               "partially_sent when some were not sent or not delivered. " if "partially_sent" in statuses
                               else "A recipient's: ") + _STATUS_WORDS


@functools.cache
def document_json() -> bytes:
    return json.dumps(document(), separators=(",", ":")).encode()


def _ref(model: type) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _content(json_schema: dict[str, Any], what: str) -> dict[str, Any]:
    return {_JSON: {"schema": json_schema}, _JSV: {"schema": {"type": "string", "description": f"{what} as JSV"}}}


def _operation(route: Route) -> dict[str, Any]:
    kind = "send" if route.kind == "send_now" else route.kind
    parameters: list[dict[str, Any]] = [
        {"name": "format", "in": "query", "required": False, "schema": {"type": "string", "enum": ["json", "jsv"]},
         "description": "Response format; overrides the suffix and the Accept header"},
    ]
    if route.has_format_suffix:
        parameters.append({"name": "format", "in": "path", "required": True, "schema": {"type": "string", "enum": ["json", "jsv"]}})
    operation: dict[str, Any] = {"operationId": route.name, "summary": SUMMARIES[route.kind], "parameters": parameters}
    if kind in ("send", "reply", "batch"):
        parameters.append({"name": "Idempotency-Key", "in": "header", "required": False,
                           "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                           "description": "A retry with the same key (per licensee, for SMS_IDEMPOTENCY_HOURS) answers as the "
                                          "first request did and sends nothing new; on an auto-batch, item by item. "
                                          "Repeatability-Request-ID and Repeatability-First-Sent are accepted too."})

    if route.kind.startswith("webhooks_"):
        if "{endpointId}" in route.path:
            parameters.append({"name": "endpointId", "in": "path", "required": True,
                               "schema": {"type": "string", "pattern": dict(route.patterns)["endpointId"]},
                               "description": "The endpointId the endpoint was added with (32 hex digits)"})
        if route.kind == "webhooks_add":
            form = {"Url": {"type": "string", "maxLength": MAX_URL_CHARS},
                    "EventTypes": {"type": "string", "description": "EventTypes as JSV"}}
            operation["requestBody"] = _request_body(_ref(WebhookEndpointRequest), "WebhookEndpointRequest", form)
        elif route.kind == "webhooks_replay":
            operation["requestBody"] = _request_body(_ref(WebhookReplayRequest), "WebhookReplayRequest", _REPLAY_FORM)
        elif route.kind == "webhooks_deliveries":
            parameters += _query_parameters(GetWebhookDeliveries, ("endpointId",))
        answer = _WEBHOOK_ANSWERS.get(route.kind, WebhookEndpointState)
        ok = _content(_ref(answer), answer.__name__)
    elif route.kind.startswith("guard_"):
        if route.kind == "guard_set":
            form = {"Countries": {"type": "string", "description": "Countries as JSV: {GB:monitor,FR:block}"},
                    "Caps": {"type": "string", "description": "Caps as JSV: {DailySegments:1000,MonthlyCost:250.00}"}}
            operation["requestBody"] = _request_body(_ref(GuardRequest), "GuardRequest", form)
        ok = _content(_ref(GuardState), "GuardState")
    elif route.kind.startswith("routes_"):
        if route.kind == "routes_set":
            form = {"Rules": {"type": "string", "description": "Rules as JSV: [{Match:AU,Providers:[acs],Sender:+61400000000},...]"}}
            operation["requestBody"] = _request_body(_ref(RoutingTableRequest), "RoutingTableRequest", form)
        ok = _content(_ref(RoutingTableState), "RoutingTableState")
    elif route.kind.startswith("settings_"):
        if route.kind == "settings_set":
            form = {"QuietHours": {"type": "string", "description": "21:00-08:00"}, "NoQuietHours": {"type": "boolean"},
                    "TimeZone": {"type": "string", "description": "Australia/Sydney"}}
            operation["requestBody"] = _request_body(_ref(SetLicenseeSettings), "SetLicenseeSettings", form)
        ok = _content(_ref(LicenseeSettingsState), "LicenseeSettingsState")
    elif route.kind.startswith("keys_"):
        if "{keyId}" in route.path:
            parameters.append({"name": "keyId", "in": "path", "required": True, "schema": {"type": "string", "pattern": KEY_ID_PATTERN},
                               "description": "The key's id: the 16 hex digits after sms_ in the key"})
        if route.kind == "keys_list":
            parameters += _query_parameters(QueryApiKeys)
        elif route.kind == "keys_create":
            form = {"LicenseeId": {"type": "string", "format": "uuid"}, "Name": {"type": "string", "maxLength": MAX_KEY_NAME_CHARS},
                    "Role": {"type": "string", "enum": list(KEY_ROLES)}, "ReadOnly": {"type": "boolean"},
                    "ExpiresInDays": {"type": "integer", "minimum": 1, "maximum": MAX_KEY_DAYS}}
            operation["requestBody"] = _request_body(_ref(CreateApiKey), "CreateApiKey", form)
        elif route.kind == "keys_rotate":
            form = {"GraceHours": {"type": "integer", "minimum": 0, "maximum": MAX_GRACE_HOURS}}
            operation["requestBody"] = {**_request_body(_ref(RotateApiKey), "RotateApiKey", form), "required": False}
        answer = {"keys_list": ApiKeyList, "keys_rotate": ApiKeyRotation}.get(route.kind, ApiKeyState)
        ok = _content(_ref(answer), answer.__name__)
    elif route.kind.startswith("optouts_"):  # opt-outs
        if route.kind == "optouts_add":
            form = {"PhoneNumber": {"type": "string"}, "Reason": {"type": "string", "minLength": 1, "maxLength": 500},
                    "LicenseeId": {"type": "string", "format": "uuid"}}
            operation["requestBody"] = _request_body(_ref(AddOptOut), "AddOptOut", form)
        else:
            parameters += _query_parameters({"optouts_list": QueryOptOuts, "optouts_history": GetOptOutHistory,
                                             "optouts_remove": RemoveOptOut}[route.kind])
        answer = {"optouts_list": OptOutList, "optouts_history": OptOutHistory}.get(route.kind, OptOutState)
        ok = _content(_ref(answer), answer.__name__)
    elif route.kind == "licensees_list":
        ok = _content(_ref(LicenseeList), "LicenseeList")
    elif route.kind == "events":
        parameters.append({"name": "commId", "in": "path", "required": True,
                           "schema": {"type": "string", "pattern": dict(route.patterns)["commId"]},
                           "description": "The commId a send answered with (32 hex digits, dashes allowed)"})
        parameters += _query_parameters(GetSmsEvents, ("commId",))
        ok = _content(_ref(WebhookEventList), "WebhookEventList")
    elif route.kind == "list":
        parameters += _query_parameters(QuerySms)
        ok = _content(_ref(MessageList), "MessageList")
    elif route.kind == "providers":
        ok = _content(_ref(ProvidersResponse), "ProvidersResponse")
    elif route.kind == "usage":
        parameters += _query_parameters(GetUsage)
        ok = _content(_ref(UsageResponse), "UsageResponse")
    elif route.kind in (*_GET_KINDS, "cancel"):
        pattern = dict(route.patterns)["commId"]
        parameters.append({"name": "commId", "in": "path", "required": True, "schema": {"type": "string", "pattern": pattern},
                           "description": "The commId a send answered with (32 hex digits, dashes allowed)"})
        answer = {"status": MessageState, "cancel": CancelResponse}.get(route.kind, RepliesResponse)
        ok = _content(_ref(answer), answer.__name__)
    elif route.kind == "batch":
        operation["requestBody"] = _request_body({"type": "array", "items": _ref(SMSSend), "maxItems": MAX_BATCH})
        ok = _content({"type": "array", "items": _ref(CommResponse)}, "a list of CommResponse")
    elif route.kind == "estimate":
        body = {"oneOf": [_ref(SMSSend), _ref(SMSModel), {"type": "array", "items": _ref(SMSSend), "maxItems": MAX_BATCH}]}
        operation["requestBody"] = _request_body(body)
        ok = _content({"oneOf": [_ref(EstimateResponse), {"type": "array", "items": _ref(EstimateResponse)}]},
                      "EstimateResponse or a list of them")
    elif route.kind == "reply":
        parameters.append({"name": "operation", "in": "path", "required": True,
                           "schema": {"type": "string", "enum": [OPERATION, OPERATION + "[]"]}})
        body = {"oneOf": [_ref(SMSSend), {"type": "array", "items": _ref(SMSSend)}]}
        operation["requestBody"] = _request_body(body)
        ok = _content({"oneOf": [_ref(CommResponse), {"type": "array", "items": _ref(CommResponse)}]}, "CommResponse or a list of them")
    else:
        operation["requestBody"] = _request_body(_ref(SMSSend))
        ok = _content(_ref(CommResponse), "CommResponse")

    if route.kind in ACTING_KINDS and not any(p["name"] == ACTING_FOR for p in parameters):  # on a POST or PUT too
        parameters.append({"name": ACTING_FOR, "in": "query", "required": False, "schema": _GUID, "description": ACTING_FOR_TEXT})

    batch_header = {"X-AutoBatch-Completed": {"description": "How many of the auto-batch's items were done (ServiceStack's header)",
                                              "schema": {"type": "integer"}}} if route.kind in ("batch", "reply") else None
    operation["responses"] = {"200": {"description": "OK", "content": ok, **({"headers": batch_header} if batch_header else {})}} | {
        status: {"description": _error_description(route, kind, status), "content": _content(_ref(ErrorResponse), "ErrorResponse")}
        for status in _statuses(route, kind)
    }
    return operation


_READ_ONLY = "The API key is read-only (errorCode ReadOnlyKey): this route changes something."
_ADMIN_ONLY = "The API key is a licensee's (errorCode AdminOnly): this route takes an admin key."
_NOT_YOURS = "licenseeId names a licensee other than the key's own, and the key is a licensee's (errorCode NotYourLicensee)."


def _statuses(route: Route, kind: str) -> list[str]:
    """The kind's statuses, with 403 where a key's role or read-only flag can refuse the route (sms.entrypoints.api)."""
    statuses = set(_ERRORS_BY_KIND[kind])
    if route.kind not in READ_KINDS or route.kind in ADMIN_KINDS or route.kind in ACTING_KINDS:
        statuses.add("403")
    return sorted(statuses)


def _error_description(route: Route, kind: str, status: str) -> str:
    if status != "403":
        return _ERRORS_ON.get(kind, {}).get(status, _ERRORS[status])
    reasons = [_ERRORS_ON.get(kind, {}).get(status, _ERRORS[status])] if status in _ERRORS_BY_KIND[kind] else []
    reasons += [_ADMIN_ONLY] if route.kind in ADMIN_KINDS else []
    reasons += [_READ_ONLY] if route.kind not in READ_KINDS else []
    reasons += [_NOT_YOURS] if route.kind in ACTING_KINDS else []
    return " Or: ".join(reasons)


_SEND_FORM = {
    "SMSModel": {"type": "string", "description": "SMSModel as JSV"},
    "CreateCommunicationReferencesImmediately": {"type": "boolean"},
}


def _request_body(json_schema: dict[str, Any], what: str = "SMSSend", form: dict[str, Any] = _SEND_FORM) -> dict[str, Any]:
    return {"required": True, "content": {
        **_content(json_schema, what),
        "application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": form}},
    }}
