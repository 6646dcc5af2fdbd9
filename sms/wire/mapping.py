"""ServiceStack DTOs to the use cases' commands, and their answers back to DTOs: the only place the
two shapes meet, so a change to the contract stops here."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Mapping, Sequence

from ..domain.breaker import Circuit
from ..domain.commands import Estimate, MessageReport, Party, ProvisionalReport, RequestKey, SendMessage, SendResult
from ..domain.errors import FieldError, ValidationFailed
from ..domain.events import EVENT_TYPES, WebhookEvent
from ..domain.guard import Guard, guard_data, money_text
from ..domain.instants import OFFSETS, parse_instant
from ..domain.model import Status, reference_for, status_of, utcnow
from ..domain.phone import InvalidNumber, to_e164
from ..domain.pumping import PrefixBlock
from ..domain.routing import RoutingTable
from ..domain.spend import Cap
from ..storage import (
    EVERY_LICENSEE,
    KEY_ROLE_LICENSEE,
    ApiKeyRecord,
    DayUsage,
    DeliveryRecord,
    LedgerEntry,
    LedgerQuery,
    LicenseeSettings,
    WebhookEndpoint,
)
from ..storage import (
    OptOutChange as StoredOptOutChange,
)
from ..usecases.auth import Rotation
from ..usecases.cancel import CancelResult
from ..usecases.guard import Screened
from ..usecases.ledger import counts, statuses_of
from ..usecases.licensees import LicenseeSummary
from ..usecases.spend import CapUse
from .dto import (
    ApiKeyList,
    ApiKeyRotation,
    ApiKeyState,
    CancelResponse,
    CommResponse,
    CountryCircuit,
    EstimateResponse,
    GuardCaps,
    GuardCapUse,
    GuardPrefixBlock,
    GuardState,
    LicenseeList,
    LicenseeSettingsState,
    MatchedRecipient,
    MessageList,
    MessageState,
    MessageSummary,
    OptOutChange,
    OptOutHistory,
    OptOutList,
    OptOutState,
    ProvidersResponse,
    ProviderState,
    RecipientEstimate,
    RecipientEvent,
    RecipientState,
    ReplyState,
    RouteRule,
    RoutingTableRequest,
    RoutingTableState,
    SMSContact,
    SMSModel,
    SMSSend,
    UsageDay,
    UsageResponse,
    WebhookDeliveryAttempt,
    WebhookDeliveryList,
    WebhookEndpointList,
    WebhookEndpointState,
    WebhookEventList,
    WebhookEventState,
    WebhookReplayRequest,
    WebhookReplayResponse,
    parse_guid,
)
from .dto import LicenseeSummary as LicenseeSummaryState
from .requests import ACTING_FOR, CreateApiKey, GetSmsEvents, GetUsage, GetWebhookDeliveries, QuerySms, RotateApiKey, query_names


def query_value(params: Mapping[str, Any], name: str) -> Any:
    """A query string's (or a body object's) value, its name matched in any case (ServiceStack's rule); None when absent."""
    return next((value for key, value in params.items() if isinstance(key, str) and key.lower() == name.lower()), None)

def send_command(request: SMSSend) -> SendMessage:
    model = request.sms_model
    if model is None:
        return SendMessage(missing=True)
    return SendMessage(
        licensee_id=model.licensee_id, sender=_party(model.from_) if model.from_ is not None else None,
        to=tuple(_party(c) for c in model.to or ()), body=model.message_body,
        reply_is_allowed=model.reply_is_allowed, reply_is_required=model.reply_is_required, notes=model.notes,
        linked_object_id=model.linked_object_id, suite_id=model.suite_id,
        send_at=model.send_at, valid_until=model.valid_until, validity_period=model.validity_period, urgent=bool(model.urgent),
        smart_encoding=bool(model.smart_encoding), max_segments=model.max_segments, max_price=model.max_price,
        references_now=bool(request.create_communication_references_immediately),
    )


def request_key(key: str | None, request: SMSSend) -> RequestKey | None:
    """An Idempotency-Key with the request's canonical text, what its retry is compared with (made only
    when a key came: it serialises the whole request)."""
    return RequestKey(key, canonical_json(request)) if key is not None else None


def batch_keys(key: str | None, requests: Sequence[SMSSend]) -> list[RequestKey] | None:
    """An auto-batch's key, one for each item: the batch's key and the item's position. '\n' cannot occur
    in a client's key (printable only), so no client key collides with these."""
    return [RequestKey(f"{key}\n[{i}]", canonical_json(r)) for i, r in enumerate(requests)] if key is not None else None


def canonical_json(request: SMSSend) -> str:
    """The request's one canonical text: the DTO's own dump, as it was before SMSModel had the
    scheduling properties, with each of them only when given (Urgent only when true, which is what
    makes it mean anything). Keys stored before they existed still match their retries; adding a
    property to SMSModel must extend SMSModel.EXTENSIONS the same way."""
    model = request.sms_model
    if model is None:
        return request.model_dump_json()
    left_out = {name for name in SMSModel.EXTENSIONS if (value := getattr(model, name)) is None or value is False}
    return request.model_dump_json(exclude={"sms_model": left_out})


def _party(contact: SMSContact) -> Party:
    return Party(contact.name, contact.phone_number, contact.contact_id)


def comm_response(result: SendResult) -> CommResponse:
    # Built from the use case's own typed values, so without validation (model_construct): validating
    # them, through WireModel's case-insensitive names, cost every accept about 5 us.
    return CommResponse.model_construct(comm_id=result.comm_id, reference=result.reference, status=result.ok, message=result.summary,
                                        **(_cost_fields(result.estimate) if result.estimate is not None else {}))


def _cost_fields(estimate: Estimate) -> dict:
    """What a message costs, as CostEstimate's fields (a send's answer and an estimate's share them)."""
    return {"encoding": estimate.encoding, "segments": estimate.segments, "recipients": estimate.recipients,
            "blocked": estimate.blocked, "estimated_cost": money_text(estimate.cost), "currency": estimate.currency}


def estimate_response(screened: Screened) -> EstimateResponse:
    """POST /api/sms/estimate's answer: the figures a send would answer, and each recipient's line."""
    return EstimateResponse(**_cost_fields(screened.estimate), lines=[
        RecipientEstimate(phone_number=line.phone_number, country=line.country, number_type=line.number_type,
                          provider=line.provider, cost=money_text(line.cost), action=line.action.value, reason=line.reason)
        for line in screened.lines])


def message_state(report: MessageReport | ProvisionalReport) -> MessageState:
    if isinstance(report, ProvisionalReport):  # its rows not yet written: no encoding or segments to say, no recipients
        return MessageState(comm_id=report.comm_id, reference=report.reference, status=report.status, licensee_id=report.licensee_id,
                            created_at=report.created_at, recipient_count=report.recipient_count, recipients=[])
    message = report.message
    return MessageState(
        comm_id=message.comm_id, reference=report.reference, status=report.status, licensee_id=message.licensee_id,
        created_at=message.created_at, encoding=message.encoding, segments=message.segments,
        recipient_count=message.recipient_count,
        recipients=[
            RecipientState(
                id=r.recipient_id, phone_number=r.phone_number, name=r.name, contact_id=r.contact_id,
                status=r.status.value, provider_message_id=r.provider_message_id, error=r.last_error,
                attempts=r.attempts, updated_at=r.updated_at,
                timeline=[RecipientEvent(status=e.status.value, at=e.at, provider_message_id=e.provider_message_id,
                                         error=e.error, attempt=e.attempt, provider=e.provider, outcome=e.outcome, code=e.code,
                                         guard=e.guard)
                          for e in r.timeline],
                timeline_omitted=r.events_omitted or None,
            )
            for r in report.recipients
        ],
        replies=None if report.replies is None else [ReplyState.of(r) for r in report.replies],
        send_at=message.send_at, valid_until=message.valid_until, urgent=message.urgent or None,
    )


def cancel_response(result: CancelResult) -> CancelResponse:
    return CancelResponse(comm_id=result.comm_id, cancelled=result.cancelled, unaffected=dict(sorted(result.unaffected.items())))


def message_list(entries: list[LedgerEntry], token: str | None) -> MessageList:
    return MessageList(messages=[_summary(e) for e in entries], continuation_token=token)


def _summary(entry: LedgerEntry) -> MessageSummary:
    matched = entry.matched
    return MessageSummary(
        comm_id=entry.comm_id, reference=reference_for(entry.comm_id), created_at=entry.created_at,
        status=None if matched else status_of(statuses_of(entry)), recipient_count=entry.recipient_count,
        counts=None if matched else counts(entry), segments=entry.segments, encoding=entry.encoding,
        linked_object_id=entry.linked_object_id, suite_id=entry.suite_id, preview=entry.preview,
        recipient=MatchedRecipient(phone_number=matched.phone_number, contact_id=matched.contact_id, status=matched.status)
        if matched else None,
    )


# Query parameters of GET /api/sms, matched case-insensitively (ServiceStack's rule for query strings): the fields of
# its request DTO, QuerySms, by their JSON names.
LIST_PARAMETERS = tuple(name for name in query_names(QuerySms) if name != ACTING_FOR)  # licenseeId: api._acting_for's
LISTED_STATUSES = tuple(s.value for s in Status) + ("partially_sent",)
_REFERENCE = re.compile(r"^SMS-[0-9A-F]{8}$", re.IGNORECASE)


def ledger_query(params: Mapping[str, str], licensee_id: str, default_region: str) -> tuple[LedgerQuery, int | None, str | None]:
    """GET /api/sms's query string as a ledger query, the page size and the continuation token;
    ValidationFailed naming every parameter that is wrong."""
    given = {name.lower(): value for name, value in params.items()}
    value = {name: given.get(name.lower()) for name in LIST_PARAMETERS}
    errors: list[FieldError] = []

    def bad(name: str, message: str) -> None:
        errors.append(FieldError(name, "InvalidValue", f"{name}: {message}"))

    take = None
    if value["take"] is not None:
        try:
            take = int(value["take"])
        except ValueError:
            bad("take", "must be a whole number from 1 to 200")
    created_from, created_to = _instant("from", value["from"], bad), _instant("to", value["to"], bad, end_of_day=True)
    if created_from and created_to and created_from >= created_to:
        bad("to", "must be after from")
    status = value["status"]
    if status is not None and status.lower() not in LISTED_STATUSES:
        bad("status", f"must be one of {', '.join(LISTED_STATUSES)}")
    phone = None
    if value["phoneNumber"] is not None:
        try:
            phone = to_e164(value["phoneNumber"], default_region)
        except InvalidNumber as exc:
            bad("phoneNumber", str(exc))
    ids = {}
    for name in ("contactId", "linkedObjectId", "suiteId"):
        try:
            ids[name] = parse_guid(value[name])
        except ValueError:
            bad(name, f"'{value[name]}' is not a Guid")
    reference = value["reference"]
    if reference is not None and not _REFERENCE.match(reference.strip()):
        bad("reference", "is a message's reference, SMS- and 8 hex digits (e.g. SMS-E1F6BE64)")
    if errors:
        raise ValidationFailed(errors)
    query = LedgerQuery(licensee_id, created_from, created_to, status.lower() if status else None, phone, ids.get("contactId"),
                        ids.get("linkedObjectId"), ids.get("suiteId"), reference.strip().upper() if reference else None)
    return query, take, value["continuationToken"] or None


# The instants a query may name (UTC, both ends included). The gateway stores nothing older; the stores'
# keys (microseconds since 1970 in 16 digits: sms/storage/ledger.py, sms/domain/events.py) sort right only
# from 1970 to 2286; and near the ends of what a datetime holds, converting to UTC or stepping a
# microsecond overflows (issue 23: `to=0001-01-01T00:00:00Z` answered 500).
EARLIEST, LATEST = datetime(2000, 1, 1, tzinfo=timezone.utc), datetime(2200, 1, 1, tzinfo=timezone.utc)
_SPAN = f"from {EARLIEST:%Y-%m-%d} to {LATEST - timedelta(days=1):%Y-%m-%d}"


def _instant(name: str, text: str | None, bad, end_of_day: bool = False) -> datetime | None:
    """An instant with its offset (ISO 8601), or a day (YYYY-MM-DD, UTC): from its start, or, for `to`,
    to its end, so from=2026-11-01&to=2026-11-30 is all of November. Only from EARLIEST to LATEST."""
    if text is None or text == "":
        return None
    try:
        moment = _parsed(text, end_of_day)
        inside = moment is not None and EARLIEST <= moment <= LATEST
    except OverflowError:  # at the very ends of what a datetime holds (once in UTC, or the day after): outside too
        moment, inside = LATEST, False
    if moment is None:
        bad(name, f"must be a day (2026-11-25) or an instant with its offset ({OFFSETS}: 2026-11-25T09:00:00+11:00)")
    elif not inside:
        bad(name, f"must be a day or an instant {_SPAN} (UTC)")
    return moment if inside else None


def _parsed(text: str, end_of_day: bool) -> datetime | None:
    """The day's start (its end, with `end_of_day`), or the instant, in UTC; None when the text is neither."""
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
            return day + timedelta(days=1) if end_of_day else day
        return parse_instant(text)
    except ValueError:  # NotAnInstant is one
        return None


MAX_USAGE_DAYS = 366


USAGE_PARAMETERS = tuple(name for name in query_names(GetUsage) if name != ACTING_FOR)  # from, to


def usage_range(params: Mapping[str, str], today: date) -> tuple[date, date]:
    """GET /api/usage's days: from and to (YYYY-MM-DD, both included, the licensee's days), by default the
    last 30 days up to `today`, the licensee's."""
    given = {name.lower(): value for name, value in params.items()}
    errors: list[FieldError] = []
    days = {}
    for name, default in zip(USAGE_PARAMETERS, (today - timedelta(days=29), today), strict=True):
        text = given.get(name)
        try:
            days[name] = date.fromisoformat(text) if text else default
        except ValueError:
            errors.append(FieldError(name, "InvalidValue", f"{name}: must be a day, e.g. 2026-11-25"))
            continue
        if text and not EARLIEST.date() <= days[name] < LATEST.date():
            errors.append(FieldError(name, "InvalidValue", f"{name}: must be a day {_SPAN}"))
    if not errors and days["from"] > days["to"]:
        errors.append(FieldError("to", "InvalidValue", "to: must not be before from"))
    elif not errors and (days["to"] - days["from"]).days >= MAX_USAGE_DAYS:
        errors.append(FieldError("to", "InvalidValue", f"to: at most {MAX_USAGE_DAYS} days from from"))
    if errors:
        raise ValidationFailed(errors)
    return days["from"], days["to"]


def providers_response(names: list[str], circuits: dict[str, Circuit]) -> ProvidersResponse:
    """Each provider's circuit (closed when none was ever recorded) and its countries' circuits."""

    def state(circuit: Circuit | None) -> dict:
        circuit = circuit or Circuit()
        return {"state": circuit.state.value, "since": circuit.since, "failures_in_a_row": circuit.failures, "reason": circuit.reason}

    return ProvidersResponse(providers=[
        ProviderState(name=name, **state(circuits.get(name)), countries=[
            CountryCircuit(country=key.split("|", 1)[1], **state(circuit)) for key, circuit in circuits.items()
            if key.startswith(f"{name}|")])
        for name in names])


def usage_response(days: list[DayUsage]) -> UsageResponse:
    return UsageResponse(days=[UsageDay(day=u.day.isoformat(), messages=u.messages, recipients=u.recipients, segments=u.segments,
                                        by_status=u.by_status, by_provider=u.by_provider, counted_at=u.counted_at,
                                        time_zone=u.time_zone) for u in days])



def webhook_endpoint_state(endpoint: WebhookEndpoint, show_secret: bool = False) -> WebhookEndpointState:
    """An endpoint as answered; its current secret only with `show_secret` (adding it, rotating it)."""
    previous = endpoint.previous_secret
    return WebhookEndpointState(
        endpoint_id=endpoint.endpoint_id, url=endpoint.url, event_types=list(endpoint.event_types), created_at=endpoint.created_at,
        enabled=endpoint.disabled_at is None, disabled_at=endpoint.disabled_at, disabled_reason=endpoint.disabled_reason,
        previous_secret_expires_at=previous.expires_at if previous else None,
        secret=endpoint.secret.value if show_secret else None,
    )


def webhook_endpoint_list(endpoints: list[WebhookEndpoint]) -> WebhookEndpointList:
    return WebhookEndpointList(endpoints=[webhook_endpoint_state(e) for e in endpoints], event_types=list(EVENT_TYPES))


# Query parameters of GET /api/webhooks/{endpointId}/deliveries, matched case-insensitively as GET /api/sms's
# (GetWebhookDeliveries's fields but the one its path takes).
DELIVERY_LOG_PARAMETERS = tuple(name for name in query_names(GetWebhookDeliveries) if name not in ("endpointId", ACTING_FOR))


def delivery_log_page(params: Mapping[str, str]) -> tuple[int | None, str | None]:
    """The page size and continuation token the query string asks for (the use case checks the size's range)."""
    given = {name.lower(): value for name, value in params.items()}
    take, token = (given.get(name.lower()) for name in DELIVERY_LOG_PARAMETERS)
    if take is None or take == "":
        return None, token or None
    try:
        return int(take), token or None
    except ValueError:
        raise ValidationFailed([FieldError("take", "InvalidValue", "take: must be a whole number from 1 to 200")]) from None


def delivery_list(records: list[DeliveryRecord], token: str | None) -> WebhookDeliveryList:
    return WebhookDeliveryList(deliveries=[
        WebhookDeliveryAttempt(at=r.at, event_id=r.event_id, event_type=r.event_type, attempt=r.attempt, outcome=r.outcome,
                               status_code=r.status, latency_ms=r.latency_ms, error=r.error,
                               response_body=r.response_body or None, replay=r.replay)
        for r in records
    ], continuation_token=token)


@dataclass(frozen=True)
class Replay:
    """What a replay request asks for: one event (`event_id`), or the events written in [start, end)."""

    event_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    token: str | None = None  # a range's: where the previous answer stopped


def replay_request(request: WebhookReplayRequest) -> Replay:
    """EventId, or From and To (instants with their offsets, or days: To takes its day whole), never
    both; ValidationFailed naming the field otherwise. That From is before To is the use case's rule."""
    event_id = (request.event_id or "").strip() or None
    start_text, end_text = ((text or "").strip() or None for text in (request.from_, request.to))
    token = (request.continuation_token or "").strip() or None
    errors: list[FieldError] = []

    def bad(name: str, message: str, code: str = "InvalidValue") -> None:
        errors.append(FieldError(name, code, f"{name}: {message}"))

    if event_id is not None:
        if start_text is not None or end_text is not None:
            bad("EventId", "give EventId (one event) or From and To (a time range), not both")
        elif token is not None:
            bad("ContinuationToken", "goes on with a time range (From and To), not with one event")
    elif start_text is None and end_text is None:
        bad("EventId", "give EventId (one event), or From and To (every event written in that time range)", "Required")
    elif start_text is None or end_text is None:
        bad("From" if start_text is None else "To", f"is required with {'To' if start_text is None else 'From'}", "Required")
    if errors:
        raise ValidationFailed(errors)
    if event_id is not None:
        return Replay(event_id=event_id)
    start, end = _instant("From", start_text, bad), _instant("To", end_text, bad, end_of_day=True)
    if errors:
        raise ValidationFailed(errors)
    return Replay(start=start, end=end, token=token)


def replay_response(queued: int, event_id: str | None = None, token: str | None = None) -> WebhookReplayResponse:
    return WebhookReplayResponse(queued=queued, event_id=event_id, continuation_token=token)


def routing_rules(request: RoutingTableRequest) -> list[dict[str, Any]] | None:
    """The rules as plain data, for the routing table's own rules to read (sms.domain.routing.parse_rules)."""
    return None if request.rules is None else [rule.model_dump() for rule in request.rules]


def routing_table_state(table: RoutingTable, own: bool) -> RoutingTableState:
    return RoutingTableState(source="licensee" if own else "default",
                             rules=[RouteRule(match=r.match, providers=list(r.providers), sender=r.sender) for r in table.rules])


# What GET /api/guard answers beside the guard itself: a PUT of that answer, as it is, leaves them out.
_GUARD_READ_ONLY = {"source", "currency", "spent", "prefixblocks"}
# Nor is the licensee an admin key acts for (licenseeId) one of the guard's rules.
_GUARD_NOT_RULES = _GUARD_READ_ONLY | {"licenseeid"}


def guard_change(data: Any) -> Any:
    """A PUT /api/guard body as the guard's rules read it (sms.domain.guard.parse_guard names each problem):
    the fields only an answer carries dropped, so what GET answered can be put back."""
    if isinstance(data, dict):
        return {key: value for key, value in data.items() if str(key).lower() not in _GUARD_NOT_RULES}
    return data


def guard_state(guard: Guard, own: bool, currency: str | None, spent: Sequence[CapUse] | None = None,
                blocks: Sequence[PrefixBlock] | None = None) -> GuardState:
    data = guard_data(guard)
    return GuardState(
        source="licensee" if own else "default", countries=data["countries"], other_countries=data["otherCountries"],
        number_types=data["numberTypes"], pumping=data["pumping"], safe_list=data["safeList"],
        caps=GuardCaps(**{_snake(k): v for k, v in data["caps"].items()}), currency=currency,
        spent=None if spent is None else [
            GuardCapUse(cap=u.cap.wire, limit=None if u.limit is None else _figure(u.cap, u.limit), used=_figure(u.cap, u.used),
                        period=u.period.name, resets_at=u.period.resets_at) for u in spent],
        prefix_blocks=None if blocks is None else [
            GuardPrefixBlock(prefix=b.prefix, since=b.since, until=b.until, sends=b.sends, confirmed=b.confirmed) for b in blocks])


def _figure(cap: Cap, value: int) -> int | str:
    """A cap's figure on the wire: segments as a number, cost as decimal text."""
    return value if cap.counts == "segments" else money_text(value)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def licensee_settings_state(settings: LicenseeSettings) -> LicenseeSettingsState:
    """GET and PUT /api/settings' answer: the row's quiet hours and zone, as `licensees show` shows them (its routing
    table and guard have their own routes)."""
    return LicenseeSettingsState(licensee_id=settings.licensee_id, quiet_hours=settings.quiet_hours,
                                 time_zone=settings.time_zone, updated_at=settings.updated_at)


# -- API keys (issue 29) --

MAX_KEY_NAME_CHARS = 100
MAX_KEY_DAYS = 3660  # ten years: a longer-lived key is one nobody will remember to rotate
MAX_GRACE_HOURS = 24 * 366  # as the CLI's keys rotate --grace-hours
DEFAULT_GRACE_HOURS = 24  # as the CLI's


def api_key_state(record: ApiKeyRecord, key: str | None = None) -> ApiKeyState:
    """A key as answered: its whole `key` only when just created or rotated (shown once)."""
    return ApiKeyState(key_id=record.key_id, name=record.name, licensee_id=record.licensee_id, role=record.role,
                       read_only=record.read_only, created_at=record.created_at, expires_at=record.expires_at,
                       revoked_at=record.revoked_at, active=record.active(utcnow()), key=key)


def api_key_list(records: Sequence[ApiKeyRecord]) -> ApiKeyList:
    return ApiKeyList(keys=[api_key_state(r) for r in records])


def api_key_rotation(rotation: Rotation) -> ApiKeyRotation:
    return ApiKeyRotation(new_key=api_key_state(rotation.record, rotation.key), replaced_key_id=rotation.replaced.key_id,
                          replaced_until=rotation.replaced_until)


def key_licensee(params: Mapping[str, str]) -> str | None:
    """GET /api/keys?licenseeId=: the licensee whose keys to list (None: every licensee's)."""
    return _licensee_id(query_value(params, "licenseeId"), required=False)


def _licensee_id(value: str | None, required: bool) -> str | None:
    try:
        licensee = parse_guid(value)
    except ValueError:
        licensee = None
        value = value if len(value) <= 40 else value[:40] + "..."
        raise ValidationFailed([FieldError("LicenseeId", "InvalidGuid", f"LicenseeId '{value}' is not a Guid")]) from None
    if licensee is None and required:
        raise ValidationFailed([FieldError("LicenseeId", "NotEmpty", "LicenseeId is required: the licensee the key works for")])
    return licensee


@dataclass(frozen=True)
class KeyRequest:
    """What POST /api/keys asks for, checked: the arguments of sms.usecases.auth.issue_key."""

    licensee_id: str
    name: str | None
    expires_at: datetime | None
    role: str
    read_only: bool


def key_request(request: CreateApiKey) -> KeyRequest:
    errors = []
    if request.name is not None and not 1 <= len(request.name) <= MAX_KEY_NAME_CHARS:
        errors.append(FieldError("Name", "Length", f"Name: 1 to {MAX_KEY_NAME_CHARS} characters, or left out"))
    days = request.expires_in_days
    if days is not None and not 1 <= days <= MAX_KEY_DAYS:
        errors.append(FieldError("ExpiresInDays", "InclusiveBetween", f"ExpiresInDays: 1 to {MAX_KEY_DAYS} days, or left out"))
    if errors:
        raise ValidationFailed(errors)
    return KeyRequest(_licensee_id(request.licensee_id, required=True), request.name,
                      utcnow() + timedelta(days=days) if days else None, request.role or KEY_ROLE_LICENSEE,
                      bool(request.read_only))


def grace_period(request: RotateApiKey) -> timedelta:
    hours = DEFAULT_GRACE_HOURS if request.grace_hours is None else request.grace_hours
    if not 0 <= hours <= MAX_GRACE_HOURS:
        raise ValidationFailed([FieldError("GraceHours", "InclusiveBetween", f"GraceHours: 0 to {MAX_GRACE_HOURS} hours, or left out")])
    return timedelta(hours=hours)


# opt-outs (issue 29): GET/POST/DELETE api/optouts and GET api/optouts/history.

_NUMBER_PREFIX = re.compile(r"^\+[0-9]{1,15}$")
MAX_REASON_CHARS = 500


def opt_out_query(params: Mapping[str, str], default_region: str) -> tuple[str, int | None, str | None]:
    """GET api/optouts' query string: the number prefix ("+" for all), the page size and the token."""
    number, take, token = (query_value(params, name) for name in ("phoneNumber", "take", "continuationToken"))
    prefix = "+"
    if number is not None and number.strip():
        compact = "".join(number.split())
        prefix = compact if _NUMBER_PREFIX.match(compact) else opt_out_number(number, default_region)
    if take is None or take == "":
        return prefix, None, token or None
    try:
        return prefix, int(take), token or None
    except ValueError:
        raise ValidationFailed([FieldError("take", "InvalidValue", "take: must be a whole number from 1 to 200")]) from None


def opt_out_number(value: str | None, default_region: str) -> str:
    """A request's phoneNumber in E.164; a 400 naming phoneNumber when it is missing or no number."""
    if value is None or not value.strip():
        raise ValidationFailed([FieldError("phoneNumber", "NotEmpty", "phoneNumber is required")])
    try:
        return to_e164(value, default_region)
    except InvalidNumber as exc:
        raise ValidationFailed([FieldError("phoneNumber", "InvalidValue", f"phoneNumber: {exc}")]) from None


def opt_out_request(number: str | None, reason: str | None, default_region: str) -> tuple[str, str]:
    """A manual change's number in E.164 and its reason; one 400 naming each of them that is wrong."""
    errors: list[FieldError] = []
    checked = []
    for check, value in ((lambda v: opt_out_number(v, default_region), number), (opt_out_reason, reason)):
        try:
            checked.append(check(value))
        except ValidationFailed as failed:
            errors += failed.field_errors
    if errors:
        raise ValidationFailed(errors)
    return checked[0], checked[1]


def opt_out_reason(value: str | None) -> str:
    """A manual change's reason: 1 to 500 printable characters, trimmed; a 400 naming reason otherwise."""
    reason = (value or "").strip()
    if not reason:
        raise ValidationFailed([FieldError("reason", "NotEmpty", "reason is required: why the opt-out is added or removed")])
    if len(reason) > MAX_REASON_CHARS or not reason.isprintable():
        raise ValidationFailed([FieldError("reason", "InvalidValue",
                                           f"reason must be 1 to {MAX_REASON_CHARS} printable characters (no line breaks)")])
    return reason


def opt_out_change(change: StoredOptOutChange, licensee_id: str) -> OptOutChange:
    scope, sender = "licensee", None
    if change.scope == EVERY_LICENSEE:
        scope = "everyone"
    elif change.scope.startswith(EVERY_LICENSEE):
        scope, sender = "sender", change.scope[len(EVERY_LICENSEE):]
    elif change.scope != licensee_id:
        raise ValueError("another licensee's scope is never shown")
    return OptOutChange(at=change.at, opted_out=change.opted_out, source=change.source, reason=change.reason,
                        by_key_id=change.by_key_id, scope=scope, sender=sender)


def opt_out_state(change: StoredOptOutChange, others: Sequence[StoredOptOutChange] | None = None) -> OptOutState:
    """The licensee's own scope's latest change; with `others` (POST, DELETE), the shared STOPs that block it as well."""
    return OptOutState(phone_number=change.number, opted_out=change.opted_out, at=change.at, source=change.source,
                       reason=change.reason, by_key_id=change.by_key_id,
                       blocked_elsewhere=None if others is None else [opt_out_change(o, change.scope) for o in others])


def opt_out_list(states: Sequence[StoredOptOutChange], token: str | None) -> OptOutList:
    return OptOutList(opt_outs=[opt_out_state(s) for s in states], continuation_token=token)


def opt_out_history(number: str, licensee_id: str, changes: Sequence[StoredOptOutChange]) -> OptOutHistory:
    return OptOutHistory(phone_number=number, changes=[opt_out_change(c, licensee_id) for c in changes])
# -- an admin key acting for a licensee (issue 29) --

def named_licensee(params: Mapping[str, str], body: Any = None) -> str | None:
    """The licensee a request names to act for: licenseeId in the query string and a body object's field (any case);
    None when it names none. A value that is not a Guid, or a query and a body naming two licensees, is a 400 naming
    licenseeId: neither is picked silently (a settings body read from one licensee and put back under another's query)."""
    named = [_licensee_guid(value) for value in (
        query_value(params, "licenseeId"), query_value(body, "licenseeId") if isinstance(body, dict) else None) if value is not None]
    if len(set(named)) > 1:
        raise ValidationFailed([FieldError("licenseeId", "Conflict", f"licenseeId names {named[0]} in the query string and {named[1]} "
                                                                     "in the body: name one licensee")])
    return named[0] if named else None


def _licensee_guid(given: Any) -> str:
    if not isinstance(given, str):
        raise ValidationFailed([FieldError("licenseeId", "InvalidGuid", "licenseeId must be a Guid, as text")])
    try:
        return parse_guid(given)
    except ValueError:
        shown = given if len(given) <= 40 else given[:40] + "..."
        raise ValidationFailed([FieldError("licenseeId", "InvalidGuid", f"licenseeId '{shown}' is not a Guid")]) from None


# -- the admin's licensee list, and a message's webhook events (issue 29) --

def licensee_list(summaries: Sequence[LicenseeSummary]) -> LicenseeList:
    return LicenseeList(licensees=[LicenseeSummaryState(
        licensee_id=s.licensee_id, active_keys=s.active_keys, has_own_routes=s.has_own_routes, has_own_guard=s.has_own_guard,
        quiet_hours=s.quiet_hours, time_zone=s.time_zone) for s in summaries])


EVENTS_PARAMETERS = tuple(name for name in query_names(GetSmsEvents) if name not in ("commId", ACTING_FOR))  # take, token


def events_page(params: Mapping[str, str]) -> tuple[int | None, str | None]:
    """GET /api/sms/{commId}/events' page size and continuation token (the use case checks the size's range)."""
    given = {name.lower(): value for name, value in params.items()}
    take, token = (given.get(name.lower()) for name in EVENTS_PARAMETERS)
    if take is None or take == "":
        return None, token or None
    try:
        return int(take), token or None
    except ValueError:
        raise ValidationFailed([FieldError("take", "InvalidValue", "take: must be a whole number from 1 to 500")]) from None


def webhook_event_list(comm_id: str, events: Sequence[WebhookEvent], token: str | None) -> WebhookEventList:
    return WebhookEventList(comm_id=comm_id, continuation_token=token, events=[
        WebhookEventState(id=e.id, type=e.type, at=parse_instant(e.payload["timestamp"]), payload=e.body) for e in events])
