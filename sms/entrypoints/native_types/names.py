"""ServiceStack's own rules for property names in generated DTOs (ServiceStack.Text StringExtensions): camelCase for
JSON and TypeScript, lower_case_underscore for Python. Our rule for the JSON an answer carries (pydantic's to_camel
of the field) gives the same names: tests/unit/test_native_types.py checks every field."""
from __future__ import annotations


def camel_case(name: str) -> str:
    """ToCamelCase: the leading capitals are lowered, but the last of a run when a lower-case letter follows it
    (SMSModel -> smsModel, ID -> id, From -> from)."""
    chars = list(name)
    for i, char in enumerate(chars):
        following = name[i + 1] if i + 1 < len(name) else "A"
        if char.isascii() and char.isupper() and (following.isascii() and following.isupper() or i == 0):
            chars[i] = char.lower()
        else:
            break
    return "".join(chars)


def snake_case(name: str) -> str:
    """ToLowercaseUnderscore of the camelCase name: each character not a lower-case letter, digit or _ becomes _ and
    itself lowered (SMSModel -> sms_model, CreateCommunicationReferencesImmediately -> create_communication_...)."""
    return "".join(c if c.isdigit() or (c.isalpha() and c.islower()) or c == "_" else "_" + c.lower() for c in camel_case(name))
