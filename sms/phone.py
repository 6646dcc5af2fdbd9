"""Phone numbers in, E.164 out (phonenumbers, Google's libphonenumber port)."""
from __future__ import annotations

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
        raise InvalidNumber(f"'{raw}' is not a phone number ({_reason(exc)})") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidNumber(f"'{raw}' is not a valid phone number for region {phonenumbers.region_code_for_number(number) or default_region}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _reason(exc: phonenumbers.NumberParseException) -> str:
    return {
        phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
        phonenumbers.NumberParseException.NOT_A_NUMBER: "not a number",
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
        phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
        phonenumbers.NumberParseException.TOO_LONG: "too long",
    }.get(exc.error_type, "unparseable")


def mask(e164: str) -> str:
    """For logs: keep the country code and the last two digits, e.g. +614*******78."""
    if len(e164) <= 6:
        return "*" * len(e164)
    return e164[:4] + "*" * (len(e164) - 6) + e164[-2:]
