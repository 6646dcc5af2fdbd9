"""Phone numbers in, E.164 out (phonenumbers, Google's libphonenumber port)."""
from __future__ import annotations

import re

import phonenumbers


class InvalidNumber(ValueError):
    pass


def to_e164(raw: str, default_region: str) -> str:
    """Parse a number as a person would type it; national numbers use `default_region`."""
    text = (raw or "").strip()
    if not text:
        raise InvalidNumber("a phone number is required")
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(f"{_quoted(raw)} is not a phone number ({_reason(exc)})") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidNumber(f"{_quoted(raw)} is not a valid phone number for region "
                            f"{phonenumbers.region_code_for_number(number) or default_region}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _reason(exc: phonenumbers.NumberParseException) -> str:
    return {
        phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
        phonenumbers.NumberParseException.NOT_A_NUMBER: "not a number",
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
        phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
        phonenumbers.NumberParseException.TOO_LONG: "too long",
    }.get(exc.error_type, "unparseable")


def _quoted(raw: str) -> str:
    """What was given, for a message that may reach a log: masked, and cut short."""
    text = mask_numbers(raw)
    return repr(text if len(text) <= 40 else text[:39] + "…")


def mask(e164: str) -> str:
    """For logs: keep the country code and the last two digits, e.g. +614*******78."""
    if len(e164) <= 6:
        return "*" * len(e164)
    return e164[:4] + "*" * (len(e164) - 6) + e164[-2:]


# A run of digits long enough to be a phone number, however it is written: spaces, dots, dashes or
# brackets between the digits ("+61 (412) 345-999").
_DIGIT_RUN = re.compile(r"\d(?:[\s().\-]{0,3}\d){5,}")


def mask_numbers(text: str) -> str:
    """Text that may hold phone numbers, for a log or a message that could reach one: in every run of
    6 or more digits only the first three (of a run of 10 or more) and the last two are kept, e.g.
    "+61 412 345 999 call me" -> "+61 4** *** *99 call me"."""
    return _DIGIT_RUN.sub(_masked_run, text)


def _masked_run(match: re.Match[str]) -> str:
    run = match.group()
    digits = sum(c.isdigit() for c in run)
    keep_first = 3 if digits >= 10 else 0
    out, seen = [], 0
    for c in run:
        if c.isdigit():
            seen += 1
            out.append(c if seen <= keep_first or seen > digits - 2 else "*")
        else:
            out.append(c)
    return "".join(out)
