"""A send command checked against the rules and turned into records, or every problem found, by field.

Problems name the field by its path in the ServiceStack contract ("SMSModel.To[1].PhoneNumber"): that
text is what a client reads, so it is part of the answer, not an import of the wire layer.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Sequence

from . import segments, transitions
from .commands import Party, SendMessage
from .errors import FieldError, Forbidden, ValidationFailed
from .guard import MAX_CAP, MICROS, money_micros
from .instants import EXAMPLE, NotAnInstant, parse_instant
from .model import Contact, Message, Recipient, Status, new_guid
from .phone import InvalidNumber, to_e164
from .smart_encoding import with_gsm_equivalents

# Carriers accept alphanumeric sender ids of up to 11 letters, digits and spaces.
_ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")

# Free text stored with a message, in characters: generous for what it holds (a person's or a sender's
# name, a note about the message), and small enough that a message with 99 recipients, every field at
# its limit, stays well inside what Azure stores (a string 64 KiB, an entity 1 MiB, a transaction
# 4 MiB): tests/unit/test_input_limits.py builds that worst case. Without them, a long note reached
# storage and Azure's refusal came back as a 500.
MAX_NAME_CHARS = 200
MAX_NOTES_CHARS = 4000
# SMSModel.MaxSegments: 1 to 255, the most parts a concatenated SMS can have (its header counts them in one octet:
# 3GPP TS 23.040, 9.2.3.24.1).
MAX_SEGMENTS_OPTION = 255
# SMSModel.MaxPrice: the most one recipient's SMS may cost, at most this (the spend caps' bound, sms/domain/guard.py).
MAX_PRICE = MAX_CAP * MICROS


@dataclass(frozen=True)
class Limits:
    default_region: str = "AU"
    max_recipients: int = 1000
    max_body_chars: int = 1600
    max_segments: int = 10
    max_schedule_days: int = 35  # SMS_MAX_SCHEDULE_DAYS: how far ahead sendAt (and validUntil) may be


# A sendAt this little in the past is a client's clock running behind ours: it means "now".
SEND_AT_SKEW = timedelta(seconds=60)


def message_from(model: SendMessage, licensee_id: str, limits: Limits, now: datetime,
                 comm_id: str | None = None) -> tuple[Message, list[Recipient]]:
    """The records to store for a send (under `comm_id`, or a new one), accepted at `now`; raises
    ValidationFailed listing every field error, or Forbidden. A message with a sendAt still ahead has
    its recipients `scheduled`."""
    if model.missing:
        raise ValidationFailed([FieldError("SMSModel", "NotNull", "SMSModel is required")])
    if model.licensee_id is not None and model.licensee_id != licensee_id:
        raise Forbidden("SMSModel.LicenseeId is not the licensee this API key belongs to")

    errors: list[FieldError] = []
    body, info = _body(model, limits, errors)
    _max_segments(model.max_segments, info, errors)
    _max_price(model.max_price, errors)
    sender = _sender(model.sender, limits, errors)
    _at_most("SMSModel.Notes", model.notes, MAX_NOTES_CHARS, errors)
    comm_id = comm_id or new_guid()
    send_at, valid_until = _timing(model, limits, now, errors)
    recipients = _recipients(comm_id, model.to, limits, errors, now)
    if errors:
        raise ValidationFailed(errors)
    if send_at is not None:
        recipients = [transitions.scheduled(replace(r, status=Status.SCHEDULED)) for r in recipients]

    message = Message(
        comm_id=comm_id, licensee_id=licensee_id, body=body, sender=sender,
        recipient_count=len(recipients), encoding=info.encoding, segments=info.segments,
        reply_is_allowed=model.reply_is_allowed, reply_is_required=model.reply_is_required,
        notes=model.notes, linked_object_id=model.linked_object_id, suite_id=model.suite_id, created_at=now,
        send_at=send_at, valid_until=valid_until, urgent=bool(model.urgent),
    )
    return message, recipients


def _timing(model: SendMessage, limits: Limits, now: datetime, errors: list[FieldError]) -> tuple[datetime | None, datetime | None]:
    """sendAt (None when absent or already come) and validUntil, each checked against the rules."""
    latest = now + timedelta(days=limits.max_schedule_days)
    send_at = _instant("SMSModel.SendAt", model.send_at, errors)
    if send_at is not None:
        if send_at < now - SEND_AT_SKEW:
            errors.append(FieldError("SMSModel.SendAt", "InThePast",
                                     f"SMSModel.SendAt is in the past ({_shown(send_at)}; now is {_shown(now)})"))
        elif send_at > latest:
            errors.append(FieldError("SMSModel.SendAt", "TooFarAhead",
                                     f"SMSModel.SendAt is more than {limits.max_schedule_days} days ahead (at most {_shown(latest)})"))
        send_at = send_at if send_at > now else None  # a moment ago, by a clock behind ours: now
    valid_until = _instant("SMSModel.ValidUntil", model.valid_until, errors)
    period = model.validity_period
    if period is not None and model.valid_until is not None:
        errors.append(FieldError("SMSModel.ValidityPeriod", "Conflict",
                                 "SMSModel.ValidityPeriod and SMSModel.ValidUntil say the same thing: give one"))
    elif period is not None:
        if isinstance(period, bool) or not isinstance(period, int) or not 1 <= period <= limits.max_schedule_days * 86400:
            errors.append(FieldError("SMSModel.ValidityPeriod", "InvalidValue",
                                     f"SMSModel.ValidityPeriod is a whole number of seconds from 1 to {limits.max_schedule_days * 86400}"))
        else:
            valid_until = (send_at or now) + timedelta(seconds=period)
    if valid_until is not None and model.valid_until is not None:
        if valid_until <= now:
            errors.append(FieldError("SMSModel.ValidUntil", "InThePast",
                                     f"SMSModel.ValidUntil is not in the future ({_shown(valid_until)}; now is {_shown(now)})"))
        elif send_at is not None and valid_until <= send_at:
            errors.append(FieldError("SMSModel.ValidUntil", "BeforeSendAt", "SMSModel.ValidUntil must be after SMSModel.SendAt"))
        elif valid_until > (send_at or now) + timedelta(days=limits.max_schedule_days):
            # The same bound as ValidityPeriod's: at most SMS_MAX_SCHEDULE_DAYS from when it may first go.
            errors.append(FieldError("SMSModel.ValidUntil", "TooFarAhead",
                                     f"SMSModel.ValidUntil is more than {limits.max_schedule_days} days after "
                                     f"{'SMSModel.SendAt' if send_at else 'now'}"))
    return send_at, valid_until


def _instant(field_name: str, value: object, errors: list[FieldError]) -> datetime | None:
    """An instant written in ISO 8601 with its offset (sms/domain/instants.py), or None when not given."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        errors.append(FieldError(field_name, "InvalidValue", f"{field_name} must be an instant with its offset, {EXAMPLE}"))
        return None
    try:
        return parse_instant(value)
    except NotAnInstant as problem:
        if problem.code == "NoOffset":
            errors.append(FieldError(field_name, "NoOffset", f"{field_name} needs its offset from UTC, {EXAMPLE}: without one, "
                                                             "whose 9 a.m. is it?"))
        else:
            errors.append(FieldError(field_name, "InvalidValue", f"{field_name} is not an instant with its offset: {EXAMPLE}"))
        return None


def _shown(at: datetime) -> str:
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


def _body(model: SendMessage, limits: Limits, errors: list[FieldError]) -> tuple[str, segments.SegmentInfo | None]:
    """The body and how it is sent (counted once: it walks every character), or None if it is invalid. With
    SmartEncoding, the body with its typographic characters replaced: what is counted, stored and sent."""
    body, info = model.body or "", None
    if model.smart_encoding:
        body = with_gsm_equivalents(body)
    if not body.strip():
        errors.append(FieldError("SMSModel.MessageBody", "NotEmpty", "SMSModel.MessageBody must not be empty"))
    elif not _shows_anything(body):
        errors.append(FieldError(
            "SMSModel.MessageBody", "NoVisibleText",
            "SMSModel.MessageBody has nothing a phone can show: only control, formatting (zero-width) or space characters",
        ))
    elif len(body) > limits.max_body_chars:
        errors.append(FieldError(
            "SMSModel.MessageBody", "MaxLength",
            f"SMSModel.MessageBody is {len(body)} characters; the limit is {limits.max_body_chars}",
        ))
    elif (info := segments.count(body)).segments > limits.max_segments:
        errors.append(FieldError(
            "SMSModel.MessageBody", "MaxSegments",
            f"SMSModel.MessageBody needs {info.segments} SMS segments ({info.encoding}); the limit is {limits.max_segments}",
        ))
        info = None
    return body, info


def _max_segments(limit: object, info: segments.SegmentInfo | None, errors: list[FieldError]) -> None:
    """SMSModel.MaxSegments: a body needing more segments than the request allows is refused, naming both."""
    if limit is None:
        return
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_SEGMENTS_OPTION:
        errors.append(FieldError("SMSModel.MaxSegments", "InvalidValue",
                                 f"SMSModel.MaxSegments is a whole number of segments from 1 to {MAX_SEGMENTS_OPTION}"))
    elif info is not None and info.segments > limit:
        errors.append(FieldError("SMSModel.MaxSegments", "MaxSegments",
                                 f"SMSModel.MessageBody needs {info.segments} SMS segments ({info.encoding}); "
                                 f"SMSModel.MaxSegments allows {limit}"))


def _max_price(value: object, errors: list[FieldError]) -> None:
    if value is not None and max_price_of(value) is None:
        errors.append(FieldError("SMSModel.MaxPrice", "InvalidValue",
                                 'SMSModel.MaxPrice is an amount in the price table\'s currency, such as "0.10" or 0.1 '
                                 f"(at most 6 decimals, not negative, at most {MAX_CAP})"))


def max_price_of(value: object) -> int | None:
    """SMSModel.MaxPrice in millionths of the price table's currency; None when not given or not an amount."""
    micros = money_micros(value) if value is not None else None
    return micros if micros is not None and micros <= MAX_PRICE else None


# Unicode general categories a phone shows nothing for on their own: controls (Cc: NUL, ESC, DEL, C1),
# formatting (Cf: zero-width spaces and joiners, BOM, bidi marks, soft hyphen), separators (Z*) and
# combining marks with no base (M*). Unassigned code points (Cn) count as visible: they are often
# emoji newer than Python's Unicode database, which phones do show.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zs", "Zl", "Zp", "Mn", "Mc", "Me"})


def _shows_anything(text: str) -> bool:
    return any(unicodedata.category(c) not in _INVISIBLE_CATEGORIES for c in text)


def _sender(contact: Party | None, limits: Limits, errors: list[FieldError]) -> Contact:
    """A phone number in E.164, or an alphanumeric sender id as given; absent lets the provider choose."""
    if contact is None:
        return Contact()
    _at_most("SMSModel.From.Name", contact.name, MAX_NAME_CHARS, errors)
    raw = (contact.phone_number or "").strip()
    number = None
    if _ALPHANUMERIC_SENDER.match(raw):
        number = raw
    elif raw:
        try:
            number = to_e164(raw, limits.default_region)
        except InvalidNumber as exc:
            errors.append(FieldError(
                "SMSModel.From.PhoneNumber", "InvalidPhoneNumber",
                f"SMSModel.From.PhoneNumber: {exc}; use a phone number or an alphanumeric sender id of up to 11 characters",
            ))
    return Contact(contact.name, number, contact.contact_id)


def _recipients(comm_id: str, contacts: Sequence[Party], limits: Limits, errors: list[FieldError], now: datetime) -> list[Recipient]:
    if not contacts:
        errors.append(FieldError("SMSModel.To", "NotEmpty", "SMSModel.To needs at least one recipient"))
        return []
    if len(contacts) > limits.max_recipients:
        # Refused whole: no time is spent parsing the numbers.
        errors.append(FieldError(
            "SMSModel.To", "MaxCount",
            f"SMSModel.To has {len(contacts)} recipients; the limit is {limits.max_recipients} per request",
        ))
        return []
    recipients: list[Recipient] = []
    seen: set[str] = set()
    for i, contact in enumerate(contacts):
        _at_most(f"SMSModel.To[{i}].Name", contact.name, MAX_NAME_CHARS, errors)
        try:
            number = to_e164(contact.phone_number or "", limits.default_region)
        except InvalidNumber as exc:
            path = f"SMSModel.To[{i}].PhoneNumber"
            errors.append(FieldError(path, "InvalidPhoneNumber", f"{path}: {exc}"))
            continue
        if number in seen:  # one SMS per number, however often and in whatever format it is listed
            continue
        seen.add(number)
        recipients.append(Recipient(
            comm_id=comm_id, seq=len(recipients), recipient_id=new_guid(),
            phone_number=number, name=contact.name, contact_id=contact.contact_id, created_at=now, updated_at=now,
        ))
    return recipients


def _at_most(path: str, text: str | None, limit: int, errors: list[FieldError]) -> None:
    if text is not None and len(text) > limit:
        errors.append(FieldError(path, "MaxLength", f"{path} is {len(text)} characters; the limit is {limit}"))
