"""The DTOs of the ServiceStack contract (from the seed), as pydantic models.

Property names are matched case-insensitively on input (camelCase from Python and
TypeScript clients, PascalCase from .NET). Each field's validation alias is its .NET
(PascalCase) name, used by JSV and in error paths such as ``SMSModel.To[1].PhoneNumber``;
its serialization alias is the camelCase JSON name.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AliasGenerator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel, to_pascal
from pydantic_core import PydanticCustomError

from . import jsv

_EMPTY_GUID = "0" * 32


def parse_guid(value: Any) -> str | None:
    """Guids arrive with or without dashes or braces, in any case; we keep ServiceStack's "N" format.

    The all-zero Guid is how .NET clients send an unset Guid, so it reads as "not given".
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError("must be a Guid string")
    try:
        hex32 = uuid.UUID(value.strip()).hex
    except ValueError:
        raise ValueError(f"'{value}' is not a Guid") from None
    return None if hex32 == _EMPTY_GUID else hex32


@dataclass(frozen=True)
class DotNetType:
    """The .NET type a field has in the service's C# DTOs where its Python type does not say (a Guid is text here):
    what /types/csharp and the other native types (sms/entrypoints/native_types) declare it as."""

    name: str  # Guid
    nullable: bool = False  # Guid? rather than Guid


Guid = Annotated[str | None, BeforeValidator(parse_guid), DotNetType("Guid")]
GuidText = Annotated[str | None, DotNetType("Guid")]  # a Guid the gateway writes (an answer's commId): nothing to parse


class WireModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=AliasGenerator(validation_alias=to_pascal, serialization_alias=to_camel),
        populate_by_name=True,
        extra="ignore",
    )
    _names_by_lower: ClassVar[dict[str, str]]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._names_by_lower = {}
        for name, info in cls.model_fields.items():
            alias = info.validation_alias or name
            for spelling in (name, alias, info.serialization_alias or name):
                cls._names_by_lower[spelling.lower()] = alias

    @model_validator(mode="before")
    @classmethod
    def _match_names_case_insensitively(cls, data: Any) -> Any:
        if isinstance(data, dict):
            names = cls._names_by_lower
            return {names.get(k.lower(), k) if isinstance(k, str) else k: v for k, v in data.items()}
        return data


class SMSContact(WireModel):
    name: str | None = None
    phone_number: str | None = None
    contact_id: Guid = None


# The gateway's own properties take exactly what README documents, as pydantic's lax mode would not: a
# JSON value has its JSON type (no "60" for 60, no 1 or "yes" for true); JSV and form text (jsv.Text) is
# parsed strictly. The seed's booleans stay as lenient as ServiceStack.Text reads them.
_DIGITS = re.compile(r"[0-9]+")
_MAX_DIGITS = 18  # 10**18 seconds: far past any validity period, and well inside what int() reads


def _whole_number(unit: str, example: int, too_many: str) -> Any:
    """A JSON integer or null; in JSV or a form, digits only, or empty (not given)."""

    def whole(value: Any) -> int | None:
        if isinstance(value, jsv.Text):
            if not value.strip():
                return None  # written but left empty, as a form or JSV can: not given
            if not _DIGITS.fullmatch(value):
                raise PydanticCustomError("int_parsing", f"must be a whole number of {unit}, digits only (e.g. {example})")
            if len(value.lstrip("0")) > _MAX_DIGITS:
                raise PydanticCustomError("invalid_value", too_many)
            return int(value)
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise PydanticCustomError("int_type", f"must be a JSON integer, a whole number of {unit} (e.g. {example}), or null")

    return whole


_whole_seconds = _whole_number("seconds", 7200, "is far more seconds than a message can wait")  # ValidityPeriod
_whole_segments = _whole_number("segments", 2, "is far more segments than an SMS can have")  # MaxSegments


def _amount(value: Any) -> str | int | float | None:
    """MaxPrice: decimal text or a JSON number, or null; in JSV or a form, the text (empty: not given). Whether
    it is an amount (not negative, at most 6 decimals) the accept use case says, naming the field."""
    if isinstance(value, jsv.Text):
        return str(value) if value.strip() else None
    if value is None or isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    raise PydanticCustomError("decimal_type", 'must be an amount: decimal text such as "0.10", a JSON number, or null')


def _flag(value: Any) -> bool | None:
    """Urgent: a JSON boolean or null; in JSV or a form, True or False (in any case, as .NET's bool.Parse
    reads them), or empty (not given). Not ServiceStack's shorthands (1, 0, t, y, on): README's is a boolean."""
    if isinstance(value, jsv.Text):
        if not value.strip():
            return None
        if value.lower() not in ("true", "false"):
            raise PydanticCustomError("bool_parsing", "must be True or False")
        return value.lower() == "true"
    if value is None or isinstance(value, bool):
        return value
    raise PydanticCustomError("bool_type", "must be a JSON boolean, true or false, or null")


Seconds = Annotated[int | None, BeforeValidator(_whole_seconds)]
# An API key's lifetime and a rotation's grace period (their ranges are checked where they are read: sms/wire/mapping.py).
Days = Annotated[int | None, BeforeValidator(_whole_number("days", 90, "is far more days than a key can last"))]
Hours = Annotated[int | None, BeforeValidator(_whole_number("hours", 24, "is far more hours than a grace period can last"))]
Segments = Annotated[int | None, BeforeValidator(_whole_segments)]
Amount = Annotated[str | int | float | None, BeforeValidator(_amount)]
Flag = Annotated[bool | None, BeforeValidator(_flag)]


class BaseLicenseeEnforcedServiceModel(WireModel):
    """The seed's base of SMSModel: the licensee the request is for (the API key's, when left out)."""

    licensee_id: Guid = None


class SMSModel(BaseLicenseeEnforcedServiceModel):
    from_: SMSContact | None = Field(default=None, validation_alias="From", serialization_alias="from")
    to: list[SMSContact] | None = None
    message_body: str | None = None
    reply_is_allowed: bool = False
    reply_is_required: bool = False
    notes: str | None = None
    linked_object_id: Guid = None
    suite_id: Guid = None
    # Added after the seed's contract (issue 16): ServiceStack clients that do not know them leave them
    # out, and nothing changes for them. The instants stay text here, so that the accept use case can say
    # what is wrong with one (a datetime would take a time without its offset as UTC without a word).
    send_at: str | None = Field(default=None, description=(
        "Not sent before this instant: ISO 8601 with its offset, Z, +HH:MM or -HH:MM (2026-11-26T09:00:00+11:00), at most "
        "SMS_MAX_SCHEDULE_DAYS ahead. Recipients are `scheduled` until then. Not on the immediate routes."))
    valid_until: str | None = Field(default=None, description=(
        "Not sent after this instant (ISO 8601 with its offset, as SendAt's, after SendAt): a recipient not handed to the "
        "provider by then ends `expired`. Give this or ValidityPeriod, not both."))
    validity_period: Seconds = Field(default=None, description=(
        "Or: how many seconds from SendAt (or from now) the message stays worth sending; then as ValidUntil. In JSON an "
        "integer (not a string); in JSV or a form, digits only."))
    urgent: Flag = Field(default=None, description=(
        "Send inside the licensee's quiet hours too (an alarm, a one-time code). False when left out. In JSON a boolean "
        "(not a string or a number); in JSV or a form, True or False."))

    # Added for issue 27: what a message may cost, and how its body is encoded.
    smart_encoding: Flag = Field(default=None, description=(
        "Replace typographic characters (curly quotes, dashes, the ellipsis, no-break and other Unicode spaces, ...) with "
        "their GSM-7 equivalents before the segments are counted, so that one curly quote does not send the message as UCS-2; "
        "the replaced body is what is stored and sent (README, Guard: the table). False when left out. In JSON a boolean; in "
        "JSV or a form, True or False."))
    max_segments: Segments = Field(default=None, description=(
        "The most SMS segments the body may need (1 to 255): a body needing more is refused (400, naming both numbers) and "
        "nothing is saved. In JSON an integer; in JSV or a form, digits only."))
    max_price: Amount = Field(default=None, description=(
        "The most one recipient's SMS (every segment) may cost, in the price table's currency: decimal text (\"0.10\") or a "
        "number, at most 6 decimals, not negative. A recipient that costs more, or that the price table cannot price, is "
        "not sent: it ends `blocked`, with the reason; the rest of the message goes."))

    # What a request without them dumped before they existed: the idempotency fingerprint leaves them out
    # when they are not given (sms/wire/mapping.py canonical_json).
    EXTENSIONS: ClassVar[tuple[str, ...]] = ("send_at", "valid_until", "validity_period", "urgent", "smart_encoding", "max_segments",
                                             "max_price")


class SMSSend(WireModel):
    sms_model: SMSModel | None = Field(default=None, validation_alias="SMSModel", serialization_alias="smsModel")
    create_communication_references_immediately: bool = False


class SeedCommResponse(WireModel):
    """The seed's CommResponse, as its ServiceStack clients read it."""

    comm_id: GuidText = None
    reference: str | None = None
    status: bool = False
    message: str | None = None


class CostEstimate(WireModel):
    """What a message costs before it is sent (issue 27): the answer to every send and to POST /api/sms/estimate."""

    encoding: str | None = Field(default=None, description="How the body is sent: GSM-7, or UCS-2 when a character is outside GSM-7")
    segments: int | None = Field(default=None, description="The SMS segments of each recipient's SMS (each is billed per segment)")
    recipients: int | None = Field(default=None, description="How many recipients are to be sent: every one the guard did not block")
    blocked: int | None = Field(default=None, description=(
        "How many recipients the licensee's guard blocked (0 when none): they are not sent, and each one's status says why"))
    estimated_cost: str | None = Field(default=None, description=(
        "What the recipients to be sent cost together, by the operator's price table (decimal text, in currency); absent "
        "when the table cannot price one of them, or there is no table"))
    currency: str | None = Field(default=None, description="The price table's currency (ISO 4217); absent when there is no price table")


# Pydantic lists inherited fields in reverse order of the bases: the seed's come first, as ServiceStack's sample
# shows them and JSV writes them (tests/unit/test_formats.py pins the order).
class CommResponse(CostEstimate, SeedCommResponse):
    """The answer to a send: the seed's fields, then what the message costs."""


class RecipientEstimate(WireModel):
    """One recipient of an estimate: where its number is, which provider would send it, what its SMS costs, and
    what the licensee's guard says of it."""

    phone_number: str = Field(description="The number in E.164")
    country: str | None = Field(default=None, description="Its country (ISO 3166 alpha-2); absent when libphonenumber cannot tell")
    number_type: str = Field(description="Its type by libphonenumber: mobile, fixed_line, premium_rate, ...")
    provider: str | None = Field(default=None, description="The provider its route tries first; absent: no route matches it")
    cost: str | None = Field(default=None, description=(
        "What its SMS costs (every segment) through the dearest provider its route may fail over to; absent when the price "
        "table has no price for one of them"))
    action: Literal["allow", "monitor", "block"] = Field(description=(
        "allow: it is sent; monitor: sent, and flagged on its timeline; block: not sent (the guard, or the message's MaxPrice)"))
    reason: str | None = Field(default=None, description="Why it is blocked or monitored")


class EstimateResponse(CostEstimate):
    """POST /api/sms/estimate: what the send would cost, and each recipient's line. Nothing was stored or sent."""

    lines: list[RecipientEstimate] = Field(default_factory=list, description="Each recipient, in the order of SMSModel.To")


class RecipientState(WireModel):
    id: str
    phone_number: str
    name: str | None = None
    contact_id: str | None = None
    status: str
    provider_message_id: str | None = None
    error: str | None = None
    attempts: int = 0
    updated_at: datetime
    # Added after the seed's contract (clients ignore fields they do not know): each step of the SMS,
    # oldest first, starting with queued. When retries made more steps than are kept, the first two
    # (queued, the first claim) and the latest ten are listed, and timelineOmitted counts those between.
    timeline: list[RecipientEvent] = Field(default_factory=list)
    timeline_omitted: int | None = None


class RecipientEvent(WireModel):
    """One step of a recipient's timeline: the status it moved to and when. providerMessageId is on the
    step that brought it (sent, or a receipt that came first); error on a release (back to queued for a
    retry), a failure, undelivered or opted out; attempt on a claim (sending)."""

    status: str
    at: datetime
    provider_message_id: str | None = None
    error: str | None = None
    attempt: int | None = None
    provider: str | None = None  # on a claim: the provider it was handed to; on a pass to the next, that one
    outcome: str | None = None  # on a failed call's step: not_taken, refused or ambiguous (README, Several providers)
    code: str | None = None  # and the provider's own error code or HTTP status
    guard: str | None = None  # on a claim the licensee's guard monitors: why it was flagged (README, Guard)


RecipientState.model_rebuild()


class ReplyState(WireModel):
    from_number: str
    to_number: str
    body: str
    received_at: datetime
    provider: str
    provider_message_id: str

    @classmethod
    def of(cls, sms: Any) -> "ReplyState":
        """From a stored InboundSms (the wire layer does not import storage, so it is duck-typed)."""
        return cls(from_number=sms.from_number, to_number=sms.to_number, body=sms.body, received_at=sms.received_at,
                   provider=sms.provider, provider_message_id=sms.provider_message_id)


class RepliesResponse(WireModel):
    comm_id: str
    replies: list[ReplyState]


class MessageState(WireModel):
    """GET /api/sms/{commId}: the message and where each recipient's SMS stands."""

    comm_id: str
    reference: str
    status: str
    licensee_id: str
    created_at: datetime
    # Left out only while a message accepted in one storage call is not yet written (issue 30: about a second; its
    # recipients [] then): its commId says when, for whom and to how many, not what its body costs. Absent rather
    # than a guess, which a client would take for a fact (a UCS-2 body billed as GSM-7).
    encoding: str | None = Field(default=None, description=(
        "GSM-7 or UCS-2: what the body is sent as. Absent only while a message just accepted is being written (recipients [])"))
    segments: int | None = Field(default=None, description=(
        "SMS segments per recipient. Absent only while a message just accepted is being written (recipients [])"))
    recipient_count: int
    recipients: list[RecipientState]
    replies: list[ReplyState] | None = None  # when the message allowed replies
    send_at: datetime | None = None  # a scheduled message's sendAt: not sent before it
    valid_until: datetime | None = None  # not sent after it: what is still waiting then expires
    urgent: bool | None = None  # true: sent inside the licensee's quiet hours too


class CancelResponse(WireModel):
    """DELETE /api/sms/{commId}: how many recipients this request cancelled (those still scheduled or
    queued), and the others by the status they are in (already with the provider, or past it)."""

    comm_id: str
    cancelled: int
    unaffected: dict[str, int] = Field(default_factory=dict)


class ResponseError(WireModel):
    error_code: str
    field_name: str
    message: str


class ResponseStatus(WireModel):
    error_code: str
    message: str
    errors: list[ResponseError] | None = None
    meta: dict[str, str] | None = None  # e.g. AutoBatchIndex: which item of an auto-batch failed


class ErrorResponse(WireModel):
    """ServiceStack's error body: its clients raise WebServiceException carrying this status."""

    response_status: ResponseStatus


class MatchedRecipient(WireModel):
    """In a search by phone number or contactId: the recipient it found, and how its SMS stands."""

    phone_number: str
    contact_id: str | None = None
    status: str


class MessageSummary(WireModel):
    """GET /api/sms: one message of the licensee's ledger."""

    comm_id: str
    reference: str
    created_at: datetime
    status: str | None = None  # the message's; in a search by phone number or contactId, see recipient
    recipient_count: int
    counts: dict[str, int] | None = None  # recipients by status
    segments: int
    encoding: str
    linked_object_id: str | None = None
    suite_id: str | None = None
    preview: str  # the body's first 40 characters
    recipient: MatchedRecipient | None = None


class MessageList(WireModel):
    """GET /api/sms: a page of the licensee's messages, newest first."""

    messages: list[MessageSummary]
    continuation_token: str | None = None  # pass it back for the next page; none when this was the last


class UsageDay(WireModel):
    """What the licensee sent on one of its days (a calendar day of its time zone): its messages by the
    day they were accepted. Segments and byProvider count only the recipients a provider accepted (sent,
    delivered, undelivered): what providers bill. Recipients and byStatus count every recipient, whatever
    became of it."""

    day: str = Field(description="The day the messages were accepted, YYYY-MM-DD, in timeZone")
    messages: int = Field(description="Messages accepted that day")
    recipients: int = Field(description="Their recipients, every one: sent or not")
    segments: int = Field(description=(
        "What providers bill: each message's segments times its recipients a provider accepted (sent, delivered or "
        "undelivered). Not those that failed, opted out, expired, were cancelled or still wait or are being sent"))
    by_status: dict[str, int] = Field(description="Every recipient, by its status now")
    by_provider: dict[str, int] = Field(description=(
        "The recipients a provider accepted (those segments counts), by provider; a day with none has none"))
    counted_at: datetime | None = Field(default=None, description=(
        "When the roll-up added the day up; absent: counted for this answer (today, and the two days before until rolled up)"))
    time_zone: str = Field(description=(
        "The zone whose calendar day this is: the licensee's when the day was counted (UTC until it sets one). A day "
        "rolled up before the licensee changed its zone keeps the zone it was counted in until it is rebuilt"))


class CircuitState(WireModel):
    """A provider's circuit breaker in the worker that answered (each worker keeps its own)."""

    state: str = Field(description="closed (calls go through), open (routed around) or half_open (one probe call goes through)")
    since: datetime | None = Field(default=None, description="When it last changed state")
    failures_in_a_row: int = Field(description="Calls that failed in a row (not taken, or no answer)")
    reason: str | None = Field(default=None, description="Why it opened")


class CountryCircuit(CircuitState):
    country: str = Field(description="The destination country (ISO 3166 alpha-2) of this circuit: opened by delivery receipts")


class ProviderState(CircuitState):
    name: str = Field(description="The provider instance, as routes name it")
    countries: list[CountryCircuit] = Field(default_factory=list, description="Its circuits per destination country")


class ProvidersResponse(WireModel):
    """GET /api/providers: every provider instance in the order the settings name them (the first takes what no route
    sends elsewhere), with its health in the worker that answered."""

    providers: list[ProviderState]


class UsageResponse(WireModel):
    """GET /api/usage: the licensee's days with messages, oldest first."""

    days: list[UsageDay]


def pascal_dict(value: Any) -> Any:
    """A model as plain data under its .NET (PascalCase) names, nulls left out: what JSV writes."""
    if isinstance(value, BaseModel):
        return {
            (field.validation_alias or name): pascal_dict(item)
            for name, field in type(value).model_fields.items()
            if (item := getattr(value, name)) is not None
        }
    if isinstance(value, list):
        return [pascal_dict(item) for item in value]
    return value


class WebhookEndpointRequest(WireModel):
    """POST /api/webhooks: where the licensee's events go, and which ones (none: every type)."""

    url: str | None = None
    event_types: list[str] | None = None


class WebhookEndpointState(WireModel):
    """A webhook endpoint. `secret` is only in the answers to adding it and to rotating its secret:
    shown once, never listed."""

    endpoint_id: str
    url: str
    event_types: list[str]  # empty: every type
    created_at: datetime
    enabled: bool
    disabled_at: datetime | None = None
    disabled_reason: str | None = None
    previous_secret_expires_at: datetime | None = None  # after a rotation: the old secret signs too until then
    secret: str | None = None


class WebhookEndpointList(WireModel):
    """GET /api/webhooks: the licensee's endpoints, oldest first, and every event type there is."""

    endpoints: list[WebhookEndpointState]
    event_types: list[str]


class WebhookEndpointRemoved(WireModel):
    """DELETE /api/webhooks/{endpointId}: nothing more is sent to it."""

    endpoint_id: str
    removed: bool = True


class WebhookDeliveryAttempt(WireModel):
    """One attempt to send one event to the endpoint, as its delivery log keeps it."""

    at: datetime
    event_id: str
    event_type: str
    attempt: int  # of the delivery schedule: 1 to 8
    outcome: str  # delivered | retry | refused | gone | blocked
    status_code: int | None = None  # the receiver's HTTP status; none when no answer came
    latency_ms: int
    error: str | None = None
    response_body: str | None = None  # the receiver's answer, its first 1,000 characters
    replay: bool = False  # sent because a replay asked for it


class WebhookDeliveryList(WireModel):
    """GET /api/webhooks/{endpointId}/deliveries: the endpoint's delivery log, newest first, a page at a time."""

    deliveries: list[WebhookDeliveryAttempt]
    continuation_token: str | None = None  # pass it back for the next page; none when this was the last


class WebhookReplayRequest(WireModel):
    """POST /api/webhooks/{endpointId}/replay: one event again (EventId), or every event written in a
    time range (From, To), each an instant with its offset or a day (UTC). ContinuationToken goes on
    with the same range where the previous answer stopped."""

    event_id: str | None = None
    from_: str | None = Field(default=None, validation_alias="From", serialization_alias="from")
    to: str | None = None
    continuation_token: str | None = None


class WebhookReplayResponse(WireModel):
    """What a replay queued: 1 for an event (with its eventId), the number of batches for a range (with
    a continuationToken when the range has more: post it back with the same From and To)."""

    queued: int
    event_id: str | None = None
    continuation_token: str | None = None


class RouteRule(WireModel):
    """One rule of a routing table: the numbers it matches, the providers to send them through, in the
    order to try them (the next only when one refused before taking the SMS), and the sender they see."""

    # A misspelt field would route SMS other than meant: refused, not ignored. (The schema does not say
    # additionalProperties: false, as JSON may name the fields in any case.)
    model_config = ConfigDict(extra="forbid", json_schema_extra=lambda schema: schema.pop("additionalProperties", None))

    match: str | None = Field(default=None, description=(
        "A country (ISO 3166 code: AU, the country libphonenumber gives the number), an E.164 prefix (+614: + and 1 to 15 "
        "digits) or * (any number)"))
    providers: list[str] | None = Field(default=None, description=(
        "The deployment's providers to send through, in the order to try them (1 to 10, each once)"))
    sender: str | None = Field(default=None, description=(
        "What the recipients this rule matches see the SMS come from: an E.164 number or an alphanumeric sender id (1 to 11 "
        "letters, digits or spaces, at least one letter). Absent: the provider's own"))


class RoutingTableRequest(WireModel):
    """PUT /api/routes: the licensee's own routing table, its rules in order (the first that matches a
    number wins). What GET /api/routes answers can be put back as it is."""

    rules: list[RouteRule] | None = None


class RoutingTableState(WireModel):
    """The routing table the licensee's messages go by: its own (source `licensee`) or the deployment's
    default (source `default`)."""

    source: Literal["licensee", "default"] = Field(description=(
        "licensee: the licensee's own table; default: the deployment's, as the licensee has none of its own"))
    rules: list[RouteRule]


_ACTION = "allow (sent), monitor (sent, and flagged on the recipient's timeline) or block (not sent: the recipient ends blocked)"


class GuardCaps(WireModel):
    """The most the licensee may send per day and per month of its time zone; null: no cap."""

    # Up to sms.domain.guard.MAX_CAP (10**12), past what a C# int holds: the DTOs declare a long.
    daily_segments: Annotated[int | None, DotNetType("Int64", nullable=True)] = Field(
        default=None, description="Segments a day (each recipient's SMS counts its segments)")
    monthly_segments: Annotated[int | None, DotNetType("Int64", nullable=True)] = Field(
        default=None, description="Segments a calendar month")
    daily_cost: str | None = Field(default=None, description="Estimated cost a day, in the price table's currency (\"50.00\")")
    monthly_cost: str | None = Field(default=None, description="Estimated cost a calendar month")


class GuardRequest(WireModel):
    """PUT /api/guard: a change to the licensee's guard. Each field given replaces the guard's (countries,
    numberTypes and caps merge: a null removes an entry or a cap); the rest is kept. A licensee's key may only
    tighten its guard: a change that permits anything the guard now refuses is 403, naming each such field
    (the operator loosens it: python -m sms guard set)."""

    countries: dict[str, str | None] | None = Field(default=None, description=(
        f"Country (ISO 3166 alpha-2) -> {_ACTION}; null removes the country (otherCountries applies)"))
    other_countries: str | None = Field(default=None, description=f"Every country not listed: {_ACTION}")
    number_types: dict[str, str | None] | None = Field(default=None, description=(
        "libphonenumber's number type (premium_rate, shared_cost, toll_free, voip, personal_number, pager, uan, voicemail, "
        f"mobile, fixed_line, fixed_line_or_mobile, unknown) -> {_ACTION}. premium_rate and shared_cost are blocked unless allowed"))
    pumping: str | None = Field(default=None, description=(
        "Pumping protection: enforce (a prefix whose burst shows a collapsing delivery rate is blocked for a while), monitor "
        "(found and told, nothing blocked) or off"))
    safe_list: list[str] | None = Field(default=None, description="E.164 numbers or prefixes (+614) pumping protection never blocks")
    caps: GuardCaps | None = None


class GuardCapUse(WireModel):
    """One spend cap as it stands now (GET /api/guard)."""

    cap: str = Field(description="dailySegments, dailyCost, monthlySegments or monthlyCost")
    limit: int | str | None = Field(default=None, description="The cap (segments, or cost as decimal text); absent: no such cap")
    used: int | str = Field(description="What the period has reserved so far, counted whether or not a cap is set")
    period: str = Field(description="The day (YYYY-MM-DD) or month (YYYY-MM) of the licensee's time zone")
    resets_at: datetime = Field(description="When the period ends and the cap starts again")


class GuardPrefixBlock(WireModel):
    """A destination prefix pumping protection blocked (GET /api/guard): its recipients end blocked until it ends."""

    prefix: str = Field(description="The E.164 prefix: the numbers that start with it")
    since: datetime
    until: datetime
    sends: int = Field(description="Sends to the prefix in the window that tripped it")
    confirmed: int = Field(description="Of those, the ones a delivery receipt confirmed")


class GuardState(WireModel):
    """The guard the licensee's messages go by: its own (source `licensee`) or the deployment's default."""

    source: Literal["licensee", "default"] = Field(description=(
        "licensee: the licensee's own guard; default: the deployment's (its home countries), as the licensee has none of its own"))
    countries: dict[str, str] = Field(description=f"Country -> {_ACTION}")
    other_countries: str = Field(description="Every country not listed")
    number_types: dict[str, str] = Field(description="Number type -> action")
    pumping: str
    safe_list: list[str]
    caps: GuardCaps
    currency: str | None = Field(default=None, description="The price table's currency, which cost caps are in; null: no price table")
    spent: list[GuardCapUse] | None = Field(default=None, description=(
        "GET only: each cap's use in its period now (counted whether or not the cap is set), and when it resets"))
    prefix_blocks: list[GuardPrefixBlock] | None = Field(default=None, description=(
        "GET only: the prefixes pumping protection has blocked now (the operator lifts one: python -m sms guard lift)"))


class LicenseeSettingsState(WireModel):
    """The licensee's own settings (GET and PUT /api/settings), as `python -m sms licensees show` shows them."""

    licensee_id: GuidText
    quiet_hours: str | None = Field(default=None, description=(
        "The window its messages wait out, HH:MM-HH:MM (21:00-08:00 crosses midnight), in each recipient's local time (from "
        "its number; a number whose zone is not known or spans several: timeZone's); urgent messages go anyway. Absent: none"))
    time_zone: str = Field(description=(
        "Its own zone, an IANA name (UTC until set): for numbers whose zone is not known or spans several, and its days "
        "(usage, caps)"))
    updated_at: datetime | None = Field(default=None, description=(
        "When its settings row (these, its routing table or its guard) last changed; absent: never"))
# -- API keys (issue 29): never their secrets, but for the answers to creating and rotating one, shown that once --

class ApiKeyState(WireModel):
    """An API key as the gateway keeps it. `key` (the whole key, secret and all) is only in the answers to creating
    and rotating it: shown once, never listed, and the gateway cannot show it again."""

    key_id: str
    name: str | None = None
    licensee_id: GuidText
    role: str  # licensee | admin
    read_only: bool
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    active: bool
    key: str | None = None


class ApiKeyList(WireModel):
    """GET /api/keys: the keys, oldest first (never their secrets)."""

    keys: list[ApiKeyState]


class ApiKeyRotation(WireModel):
    """POST /api/keys/{keyId}/rotate: the new key (with `key`, shown this once), and the key it replaces, which keeps
    working until `replacedUntil`."""

    new_key: ApiKeyState
    replaced_key_id: str
    replaced_until: datetime


# opt-outs (issue 29): a licensee's opt-out list, each number's history, and its manual changes.

_SCOPE = ("licensee: the licensee's own (a STOP that answered its message, or its key's manual change); sender: a STOP sent "
          "to the sender number `sender` (it blocks every licensee texting from that number); everyone: a STOP the gateway "
          "could not tie to one licensee (it blocks every licensee). Only the licensee scope is lifted by DELETE api/optouts")


class OptOutChange(WireModel):
    """One change of a number's opt-out of one scope."""

    at: datetime = Field(description="When it changed: the STOP or START's time as the provider gave it, or the request's")
    opted_out: bool = Field(description="true: opted out from then on; false: opted back in")
    source: str = Field(description="stop or start (an SMS from the number), or manual (an API key, with a reason)")
    reason: str | None = Field(default=None, description="A manual change's reason, as given")
    by_key_id: str | None = Field(default=None, description="The id of the API key that made a manual change")
    scope: str = Field(description=_SCOPE)
    sender: str | None = Field(default=None, description="The sender number a sender-scope STOP was sent to")


class OptOutState(WireModel):
    """A number's opt-out of the licensee's own scope: its latest change."""

    phone_number: str = Field(description="E.164")
    opted_out: bool = Field(description="Whether the number is opted out of the licensee's own scope now")
    at: datetime = Field(description="When that last changed")
    source: str = Field(description="stop, start or manual: what made the last change")
    reason: str | None = Field(default=None, description="The last change's reason, when it was manual")
    by_key_id: str | None = Field(default=None, description="The API key that made the last change, when it was manual")
    blocked_elsewhere: list[OptOutChange] | None = Field(default=None, description=(
        "POST and DELETE only: the STOPs of the shared scopes (sender, everyone) that block the number now. The gateway "
        "never lifts these: only a START from the number does"))


class OptOutList(WireModel):
    """GET api/optouts: the licensee's own opt-outs (opted back in too), by number."""

    opt_outs: list[OptOutState]
    continuation_token: str | None = None  # pass it back for the next page; none when this was the last


class OptOutHistory(WireModel):
    """GET api/optouts/history: every change of a number's opt-out the licensee may see, newest first."""

    phone_number: str = Field(description="E.164")
    changes: list[OptOutChange]
# -- the admin's licensee list, and a message's webhook events (issue 29) --

class LicenseeSummary(WireModel):
    """One licensee: one with an API key or a settings row (the gateway keeps no other list of licensees)."""

    licensee_id: GuidText
    active_keys: int = Field(description="Its API keys that work now (not revoked, not expired)")
    has_own_routes: bool = Field(description="Whether it has its own routing table (else the deployment's default applies)")
    has_own_guard: bool = Field(description="Whether it has its own guard (else the deployment's default applies)")
    quiet_hours: str | None = Field(default=None, description="Its quiet hours, HH:MM-HH:MM; absent: none")
    time_zone: str = Field(description="Its own zone, an IANA name (UTC until set)")


class LicenseeList(WireModel):
    """GET /api/licensees: every licensee, by id."""

    licensees: list[LicenseeSummary]


class WebhookEventState(WireModel):
    """A webhook event, as the licensee's endpoints were sent it."""

    id: str = Field(description="The event's id (the webhook-id header; EventId of a replay)")
    type: str = Field(description="message.sent, message.delivered, reply.received, ...")
    at: datetime = Field(description="When it happened: its payload's timestamp")
    payload: str = Field(description="The event exactly as sent (JSON: id, type, timestamp and data), as its signature signs it")


class WebhookEventList(WireModel):
    """GET /api/sms/{commId}/events: the message's webhook events, oldest first, a page at a time."""

    comm_id: GuidText
    events: list[WebhookEventState]
    continuation_token: str | None = Field(default=None, description="Ask again with it for the next page; absent: no more")
