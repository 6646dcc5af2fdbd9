"""Routing: which providers a recipient's SMS may go through, in order, and the number it goes out from.

A table is an ordered list of rules; the first rule that matches a recipient's number wins. A rule
matches by destination country (ISO 3166 alpha-2, from the number: libphonenumber's region), by E.164
prefix (`+614`), or everything (`*`). It names providers in the order to try them (the next only when
one refused before acceptance: sms/providers Failure.NOT_TAKEN) and may pin the sender number the
recipient sees. No rule matching is a refusal of that recipient (`no_route`), never a silent drop.

The deployment has a default table (SMS_ROUTES; without it, one rule sending everything through the
first provider); a licensee's own table, when set, replaces it for that licensee's messages.

A table given as text (SMS_ROUTES, `python -m sms routes set --file`, PUT /api/routes's rules) is read
by `parse_table` / `parse_rules`, which name every problem by its field ("Rules[1].Providers[0]"): a
country libphonenumber does not know, a prefix that is not `+` and 1 to 15 digits, a provider the
deployment does not have, a sender that is neither E.164 nor an alphanumeric sender id, and a rule that
can never match because an earlier one takes all its numbers (after `*`, say): always a mistake.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Collection

import phonenumbers

from .errors import FieldError, ValidationFailed

ANYWHERE = "*"
# Why a recipient no rule matched was not sent.
NO_ROUTE = "No route: no rule of the routing table matches this number (no_route)"


@dataclass(frozen=True)
class Rule:
    match: str  # "*", a country ("AU"), or an E.164 prefix ("+614")
    providers: tuple[str, ...]  # provider names, in the order to try them
    sender: str | None = None  # the number (or alphanumeric id) recipients matched by this rule see

    def matches(self, e164: str) -> bool:
        if self.match == ANYWHERE:
            return True
        if self.match.startswith("+"):
            return e164.startswith(self.match)
        return region_of(e164) == self.match


@dataclass(frozen=True)
class RoutingTable:
    rules: tuple[Rule, ...]

    def route_for(self, e164: str) -> Rule | None:
        """The first rule that matches the number; None when none does (the recipient has no route)."""
        return next((rule for rule in self.rules if rule.matches(e164)), None)

    @classmethod
    def through(cls, *providers: str) -> "RoutingTable":
        """Everything through these providers, the first first and each next one when the one before did
        not take it: a deployment's default without SMS_ROUTES (all of its providers, in the order named)."""
        return cls((Rule(ANYWHERE, tuple(providers)),))


@lru_cache(maxsize=4096)
def region_of(e164: str) -> str | None:
    """The country a number belongs to (ISO 3166 alpha-2), as libphonenumber reads it; None if it cannot tell."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return None


MAX_RULES = 200
MAX_PROVIDERS_PER_RULE = 10  # a failover chain longer than this is not a plan
MAX_PROVIDER_NAME_CHARS = 64
# A table is stored as its text (table_text: compact JSON, ASCII) in one string property of the licensee's
# row, which Azure caps at 64 KiB as UTF-16: 32,768 ASCII characters (sms/storage/limits.py MAX_STRING_BYTES;
# a test holds the two together).
MAX_TABLE_CHARS = 32 * 1024
# The text given, before it is read (indented, commented by spaces): generous, and still bounded.
MAX_TEXT_CHARS = 256 * 1024

_FIELDS = ("match", "providers", "sender")
_PREFIX = re.compile(r"\+[1-9][0-9]{0,14}")  # E.164: a country code never starts with 0; at most 15 digits
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
# An alphanumeric sender id: 1 to 11 of A-Z, a-z, 0-9 and space, at least one letter (all digits is a short
# code, not a name). Twilio's glossary: "Limit length to 11 characters", "upper- and lowercase ASCII
# letters, the digits 0 through 9, and the space character", "They can't be numbers only"
# (https://www.twilio.com/docs/glossary/what-alphanumeric-sender-id). Some carriers take a few symbols
# more (- + _ &); the characters every one takes are the ones kept here.
_ALPHANUMERIC = re.compile(r"(?=[A-Za-z0-9 ]*[A-Za-z])[A-Za-z0-9 ]{1,11}")


def parse_table(text: str, known_providers: Collection[str] | None) -> RoutingTable:
    """A table from its text: JSON, the rules (a list) or an object holding them as `rules` (what GET
    /api/routes answers). `known_providers`: the names a rule may use; None takes any name (a table read
    back from storage, saved when the deployment's providers may have been others). ValidationFailed
    naming each problem; never any other exception, whatever the text."""
    if len(text) > MAX_TEXT_CHARS:
        raise _refused("MaxLength", f"the routing table is {len(text)} characters; at most {MAX_TEXT_CHARS} are read")
    if not text.strip():
        raise _refused("NotEmpty", "the routing table is empty: give its rules, a JSON list such as "
                                   '[{"match": "AU", "providers": ["acs"]}, {"match": "*", "providers": ["twilio"]}]')
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _refused("SerializationException", f"the routing table is not valid JSON: {exc.msg} at line {exc.lineno} "
                                                 f"column {exc.colno}") from None
    except RecursionError:
        raise _refused("SerializationException", "the routing table is nested deeper than JSON is read here") from None
    except ValueError:  # int() refuses a number past sys.get_int_max_str_digits() (CVE-2020-10735)
        raise _refused("SerializationException", "the routing table holds a number too long to read") from None
    return parse_rules(data, known_providers)


def parse_rules(data: Any, known_providers: Collection[str] | None) -> RoutingTable:
    """A table from plain data (decoded JSON or JSV): a list of rules, or an object holding them as `rules`,
    names in any case. As parse_table says."""
    if isinstance(data, dict):
        data = next((value for key, value in data.items() if isinstance(key, str) and key.lower() == "rules"), None)
    if data is None or data == []:
        raise _refused("NotEmpty", "a routing table needs at least one rule (to have the deployment's default, clear the table)")
    if not isinstance(data, list):
        raise _refused("InvalidType", f"the rules must be a list of rules, not {_kind(data)}")
    if len(data) > MAX_RULES:
        raise _refused("MaxCount", f"a routing table holds at most {MAX_RULES} rules; this one has {len(data)}")
    errors: list[FieldError] = []
    rules: list[Rule | None] = [_rule(f"Rules[{i}]", item, known_providers, errors) for i, item in enumerate(data)]
    for i, rule in enumerate(rules):
        earlier = next((j for j in range(i) if rule is not None and rules[j] is not None and _covers(rules[j], rule)), None)
        if earlier is not None:
            errors.append(FieldError(f"Rules[{i}]", "Unreachable", (
                f"Rules[{i}]: can never match: every number it matches is taken by Rules[{earlier}] "
                f"({_shown(rules[earlier].match)}) before it; the first rule that matches wins")))
    if errors:
        raise ValidationFailed(errors)
    table = RoutingTable(tuple(r for r in rules if r is not None))
    if (length := len(table_text(table))) > MAX_TABLE_CHARS:
        raise _refused("MaxLength", f"the routing table is {length} characters as stored; at most {MAX_TABLE_CHARS} "
                                    "(one Table Storage property, 64 KiB): fewer rules or shorter provider names")
    return table


def table_data(table: RoutingTable) -> list[dict[str, Any]]:
    """The table as plain data, as parse_rules reads it: a rule's sender only when it has one."""
    return [{"match": r.match, "providers": list(r.providers), **({"sender": r.sender} if r.sender is not None else {})}
            for r in table.rules]


def table_text(table: RoutingTable) -> str:
    """The table as stored and as `routes show --json` prints it: compact JSON, ASCII."""
    return json.dumps(table_data(table), separators=(",", ":"))


def _rule(path: str, item: Any, known: Collection[str] | None, errors: list[FieldError]) -> Rule | None:
    if not isinstance(item, dict):
        errors.append(FieldError(path, "InvalidType", f"{path}: a rule is an object with match, providers and sender, not {_kind(item)}"))
        return None
    given: dict[str, Any] = {}
    for key, value in item.items():
        name = key.lower() if isinstance(key, str) else None
        if name not in _FIELDS:
            field = f"{path}.{_printable(str(key))}"
            errors.append(FieldError(field, "UnknownField", f"{field}: a rule has match, providers and sender only"))
        else:
            given[name] = value
    before = len(errors)
    match = _match(f"{path}.Match", given.get("match"), errors)
    providers = _providers(f"{path}.Providers", given.get("providers"), known, errors)
    sender = _sender(f"{path}.Sender", given.get("sender"), errors)
    if len(errors) > before or match is None or not providers:
        return None
    return Rule(match, providers, sender)


def _match(path: str, value: Any, errors: list[FieldError]) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        errors.append(FieldError(path, "NotEmpty", f"{path}: required: a country (AU), an E.164 prefix (+614) or * for any number"))
        return None
    if not isinstance(value, str):
        errors.append(FieldError(path, "InvalidType", f"{path}: must be text, not {_kind(value)}"))
        return None
    match = value.strip()
    if match == ANYWHERE:
        return match
    if match.startswith("+"):
        if _PREFIX.fullmatch(match):
            return match
        errors.append(FieldError(path, "InvalidValue", f"{path}: {_shown(match)} is not an E.164 prefix: + and 1 to 15 digits, "
                                                       "the first not 0 (+61, +614)"))
        return None
    if match.upper() in phonenumbers.SUPPORTED_REGIONS:
        return match.upper()
    errors.append(FieldError(path, "InvalidValue", f"{path}: {_shown(match)} is not a country (an ISO 3166 code such as AU or US), "
                                                   "an E.164 prefix (+614) or *"))
    return None


def _providers(path: str, value: Any, known: Collection[str] | None, errors: list[FieldError]) -> tuple[str, ...]:
    if value is None or value == []:
        errors.append(FieldError(path, "NotEmpty", f"{path}: required: the providers to send through, in the order to try them"))
        return ()
    if not isinstance(value, list):
        errors.append(FieldError(path, "InvalidType", f"{path}: must be a list of provider names, not {_kind(value)}"))
        return ()
    if len(value) > MAX_PROVIDERS_PER_RULE:
        errors.append(FieldError(path, "MaxCount", f"{path}: names {len(value)} providers; at most {MAX_PROVIDERS_PER_RULE}"))
        return ()
    names: list[str] = []
    for i, name in enumerate(value):
        where = f"{path}[{i}]"
        if not isinstance(name, str):
            errors.append(FieldError(where, "InvalidType", f"{where}: must be a provider's name, not {_kind(name)}"))
        elif not name.strip():
            errors.append(FieldError(where, "NotEmpty", f"{where}: empty: name a provider"))
        elif known is not None and name.strip() not in known:
            errors.append(FieldError(where, "UnknownProvider", f"{where}: {_shown(name.strip())} is not a provider of this deployment "
                                                               f"(its providers: {_listed(known)})"))
        elif len(name.strip()) > MAX_PROVIDER_NAME_CHARS:
            errors.append(FieldError(where, "MaxLength", f"{where}: {len(name.strip())} characters; a provider's name is at most "
                                                         f"{MAX_PROVIDER_NAME_CHARS}"))
        elif name.strip() in names:
            errors.append(FieldError(where, "Duplicate", f"{where}: {_shown(name.strip())} is named twice in this rule"))
        else:
            names.append(name.strip())
    return tuple(names) if len(names) == len(value) else ()


def _sender(path: str, value: Any, errors: list[FieldError]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        errors.append(FieldError(path, "InvalidType", f"{path}: must be text, not {_kind(value)}"))
        return None
    sender = value.strip()
    if not sender:
        errors.append(FieldError(path, "NotEmpty", f"{path}: empty: leave it out for the provider's own sender"))
    elif _E164.fullmatch(sender) or _ALPHANUMERIC.fullmatch(sender):
        return sender
    else:
        errors.append(FieldError(path, "InvalidValue", (
            f"{path}: {_shown(sender)} is neither an E.164 number (+61400000000) nor an alphanumeric sender id "
            "(1 to 11 letters, digits or spaces, at least one letter)")))
    return None


def _covers(earlier: Rule, later: Rule) -> bool:
    """Whether every number `later` matches is matched by `earlier` (so `later` can never be chosen)."""
    if earlier.match == ANYWHERE or earlier.match == later.match:
        return True
    if not earlier.match.startswith("+") or later.match == ANYWHERE:
        return False  # a country takes only its own numbers: a prefix or * after it still has others
    if later.match.startswith("+"):
        return later.match.startswith(earlier.match)
    # A country's numbers all start with its calling code: a prefix of that code takes every one of them.
    return f"+{phonenumbers.country_code_for_region(later.match)}".startswith(earlier.match)


def _refused(code: str, message: str) -> ValidationFailed:
    return ValidationFailed([FieldError("Rules", code, f"Rules: {message}")])


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true or false", type(None): "null"}.get(type(value), "a number")


def _printable(text: str, limit: int = 40) -> str:
    """Text as an error can quote it: printable ASCII (escapes for the rest, lone surrogates too), cut short."""
    shown = json.dumps(text[:limit])[1:-1]
    return shown + ("..." if len(text) > limit else "")


def _shown(text: str) -> str:
    return f"'{_printable(text)}'"


def _listed(names: Collection[str], limit: int = 20) -> str:
    listed = ", ".join(_printable(n) for n in list(names)[:limit])
    return (listed + ", ...") if len(names) > limit else (listed or "none")
