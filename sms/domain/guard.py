"""A licensee's guard on its money (issue 27): which destinations its messages may reach, whether its
traffic is watched for SMS pumping, and how much it may spend. Pure rules: where a licensee's guard is
kept and who may change it is sms/usecases/guard.py's business.

Destinations are judged per recipient, by the number's country and its libphonenumber type:
- a country is `allow`ed, `monitor`ed (sent, and flagged on its timeline) or `block`ed; a country the
  guard does not name takes `otherCountries` (`block` by default, as Twilio's Geo Permissions: a new
  licensee may text the deployment's home countries, SMS_GUARD_HOME_COUNTRIES, and nothing else);
- a number type (premium_rate, shared_cost, toll_free, voip, ...) may be given an action too; premium-
  rate and shared-cost (special-service) numbers are blocked unless the guard allows them, whatever
  their country says: those are where pumping's money goes.
The stricter of the two wins (block over monitor over allow). A blocked recipient ends `blocked`, with
the reason this module words; the rest of its message goes.
"""
from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, Context, Decimal, Inexact, InvalidOperation, Overflow, Underflow
from functools import cached_property, lru_cache
from typing import Any, Mapping

import phonenumbers
from phonenumbers import PhoneNumberType

from .errors import FieldError, ValidationFailed


class Action(str, enum.Enum):
    ALLOW = "allow"
    MONITOR = "monitor"  # sent, and flagged
    BLOCK = "block"

    @property
    def strictness(self) -> int:
        return _STRICTNESS[self]


_STRICTNESS = {Action.ALLOW: 0, Action.MONITOR: 1, Action.BLOCK: 2}


class PumpingMode(str, enum.Enum):
    ENFORCE = "enforce"  # a prefix whose burst shows a collapsing delivery rate is blocked for a while
    MONITOR = "monitor"  # the same found and told (webhook, log), nothing blocked
    OFF = "off"

    @property
    def strictness(self) -> int:
        return {PumpingMode.OFF: 0, PumpingMode.MONITOR: 1, PumpingMode.ENFORCE: 2}[self]


# libphonenumber's number types, by the names the guard uses for them.
NUMBER_TYPES: dict[int, str] = {
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
    PhoneNumberType.UNKNOWN: "unknown",
}
TYPE_NAMES = frozenset(NUMBER_TYPES.values())
# Refused everywhere unless a licensee's guard allows them: the number types whose calls and texts the
# sender pays the owner for (premium rate) or shares the cost of (shared cost, "special services").
REFUSED_TYPES: tuple[tuple[str, Action], ...] = (("premium_rate", Action.BLOCK), ("shared_cost", Action.BLOCK))

MAX_COUNTRIES = 300  # every ISO 3166 region libphonenumber knows fits
MAX_SAFE_LIST = 200
MAX_CAP = 10**12
PREFIX = re.compile(r"\+[1-9][0-9]{0,14}")  # an E.164 number or a prefix of one (fullmatch; ASCII digits, as numbers are stored)
MICROS = 1_000_000  # money is kept in millionths of the price table's currency: exact, and sums exactly


@dataclass(frozen=True)
class Caps:
    """The most a licensee may send, per day and per month of its own time zone, in segments (each
    recipient's SMS counts its segments) and in estimated cost (millionths of the price table's
    currency: sms/domain/prices.py). None: no cap."""

    daily_segments: int | None = None
    monthly_segments: int | None = None
    daily_cost: int | None = None
    monthly_cost: int | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.daily_segments, self.monthly_segments, self.daily_cost, self.monthly_cost))


@dataclass(frozen=True)
class Verdict:
    """The guard's word on one number: its action and, for block and monitor, why (said on the recipient)."""

    action: Action
    reason: str | None = None


ALLOWED = Verdict(Action.ALLOW)


@dataclass(frozen=True)
class Guard:
    countries: tuple[tuple[str, Action], ...] = ()  # (ISO 3166 alpha-2, action), sorted by country
    other_countries: Action = Action.BLOCK
    number_types: tuple[tuple[str, Action], ...] = REFUSED_TYPES  # (type name, action), sorted by type
    pumping: PumpingMode = PumpingMode.ENFORCE
    safe_list: tuple[str, ...] = ()  # E.164 numbers or prefixes ("+614") pumping protection never blocks
    caps: Caps = field(default_factory=Caps)

    @cached_property
    def _by_country(self) -> dict[str, Action]:
        return dict(self.countries)

    @cached_property
    def _by_type(self) -> dict[str, Action]:
        return dict(self.number_types)

    def country_action(self, country: str | None) -> Action:
        return self._by_country.get(country or "", self.other_countries)

    def type_action(self, number_type: str) -> Action:
        return self._by_type.get(number_type, Action.ALLOW)

    def judge(self, e164: str) -> Verdict:
        """What the guard says of texting this number: the stricter of its country's action and its type's."""
        country, number_type = kind_of(e164)
        by_country, by_type = self.country_action(country), self.type_action(number_type)
        if by_country is Action.ALLOW and by_type is Action.ALLOW:
            return ALLOWED
        action = max(by_country, by_type, key=lambda a: a.strictness)
        verb = "blocked" if action is Action.BLOCK else "monitored"
        reasons = []
        if by_country is action:
            where = f"country {country}" if country else "a number of no country"
            listed = country is not None and country in self._by_country
            reasons.append(f"{where} is {verb} by this licensee's guard" + ("" if listed else " (otherCountries)"))
        if by_type is action:
            reasons.append(f"{number_type.replace('_', '-')} numbers are {verb} by this licensee's guard (numberTypes)")
        return Verdict(action, "; ".join(reasons))

    def safe(self, e164: str) -> bool:
        """On the safe list: pumping protection never blocks it."""
        return any(e164.startswith(entry) for entry in self.safe_list)

    def loosened_by(self, other: "Guard") -> list[str]:
        """What `other` permits that this guard does not: each as a field and why. Empty when `other`
        is at least as strict everywhere (a licensee may tighten its own guard; loosening takes the operator)."""
        found: list[str] = []
        names = {c for c, _ in self.countries} | {c for c, _ in other.countries}
        for country in sorted(names):
            if other.country_action(country).strictness < self.country_action(country).strictness:
                found.append(f"Countries.{country}: {self.country_action(country).value} -> {other.country_action(country).value}")
        if other.other_countries.strictness < self.other_countries.strictness:
            found.append(f"OtherCountries: {self.other_countries.value} -> {other.other_countries.value}")
        for name in sorted({t for t, _ in self.number_types} | {t for t, _ in other.number_types}):
            if other.type_action(name).strictness < self.type_action(name).strictness:
                found.append(f"NumberTypes.{name}: {self.type_action(name).value} -> {other.type_action(name).value}")
        if other.pumping.strictness < self.pumping.strictness:
            found.append(f"Pumping: {self.pumping.value} -> {other.pumping.value}")
        if added := sorted(set(other.safe_list) - set(self.safe_list)):
            found.append(f"SafeList: adds {', '.join(added)}")
        for name in ("daily_segments", "monthly_segments", "daily_cost", "monthly_cost"):
            before, after = getattr(self.caps, name), getattr(other.caps, name)
            if before is not None and (after is None or after > before):
                found.append(f"Caps.{_camel(name)}: {_cap_text(name, before)} -> {_cap_text(name, after)}")
        return found


def default_guard(home_countries: tuple[str, ...]) -> Guard:
    """The guard of a licensee that has not set its own: its deployment's home countries allowed (every
    country when they are "*"), risky number types refused, pumping protection on, no caps."""
    if home_countries == ("*",):
        return Guard(other_countries=Action.ALLOW)
    return Guard(countries=tuple((c, Action.ALLOW) for c in sorted(home_countries)))


@lru_cache(maxsize=65_536)
def kind_of(e164: str) -> tuple[str | None, str]:
    """A number's country (ISO 3166 alpha-2; None when libphonenumber cannot tell) and type (NUMBER_TYPES).
    Cached: a number texted again costs nothing to judge."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None, "unknown"
    return phonenumbers.region_code_for_number(number), NUMBER_TYPES.get(phonenumbers.number_type(number), "unknown")


# -- the guard as data: what PUT /api/guard takes and GET answers, and what is stored -------------------

_CAP_FIELDS = {"dailySegments": "daily_segments", "monthlySegments": "monthly_segments",
               "dailyCost": "daily_cost", "monthlyCost": "monthly_cost"}


def guard_data(guard: Guard) -> dict[str, Any]:
    """The guard as plain data: JSON's shape, camelCase, money as decimal text."""
    caps = {wire: _cap_value(name, getattr(guard.caps, name)) for wire, name in _CAP_FIELDS.items()}
    return {"countries": {c: a.value for c, a in guard.countries},
            "otherCountries": guard.other_countries.value,
            "numberTypes": {t: a.value for t, a in guard.number_types},
            "pumping": guard.pumping.value, "safeList": list(guard.safe_list), "caps": caps}


def guard_text(guard: Guard) -> str:
    """How a guard is stored: compact JSON (ASCII), read back by `parse_guard`."""
    return json.dumps(guard_data(guard), separators=(",", ":"), sort_keys=True)


def parse_guard_text(text: str) -> Guard:
    return parse_guard(json.loads(text), Guard(), whole=True)


def parse_guard(data: Any, base: Guard, *, whole: bool = False) -> Guard:
    """`base` changed by what `data` gives (each top-level field given replaces the base's; `countries`
    and `numberTypes` merge, a null action removing an entry; `caps` merges, null removing a cap). With
    `whole`, the data is the whole guard. ValidationFailed naming every problem by field."""
    errors: list[FieldError] = []
    if not isinstance(data, Mapping):
        raise ValidationFailed([FieldError("Guard", "InvalidValue", "the guard is a JSON object")])
    known = {"countries", "otherCountries", "numberTypes", "pumping", "safeList", "caps"}
    fields = {_lower(k): (k, v) for k, v in data.items()}
    for lowered, (key, _) in fields.items():
        if lowered not in {_lower(k) for k in known}:
            errors.append(FieldError(str(key)[:64], "Unknown", f"{str(key)[:64]} is not a field of the guard: "
                                                              f"{', '.join(sorted(known))}"))

    def given(name: str) -> tuple[bool, Any]:
        entry = fields.get(_lower(name))
        return (entry is not None, entry[1] if entry else None)

    countries = dict(() if whole else base.countries)
    ok, value = given("countries")
    if ok:
        countries.update(_actions("Countries", value, _country, errors))
    number_types = dict(() if whole else base.number_types)
    ok, value = given("numberTypes")
    if ok:
        number_types.update(_actions("NumberTypes", value, _type_name, errors))
    other = base.other_countries
    ok, value = given("otherCountries")
    if ok:
        other = _enum(Action, "OtherCountries", value, errors) or other
    pumping = base.pumping
    ok, value = given("pumping")
    if ok:
        pumping = _enum(PumpingMode, "Pumping", value, errors) or pumping
    safe_list = base.safe_list
    ok, value = given("safeList")
    if ok:
        safe_list = _safe_list(value, errors)
    caps = base.caps
    ok, value = given("caps")
    if ok:
        caps = _caps(value, Caps() if whole else base.caps, errors)
    if errors:
        raise ValidationFailed(errors)
    return Guard(tuple(sorted((c, a) for c, a in countries.items() if a is not None)), other,
                 tuple(sorted((t, a) for t, a in number_types.items() if a is not None)), pumping, safe_list, caps)


def _lower(name: Any) -> str:
    return str(name).lower()


def _actions(path: str, value: Any, key_of, errors: list[FieldError]) -> dict[str, Action | None]:
    if not isinstance(value, Mapping):
        errors.append(FieldError(path, "InvalidValue", f"{path} maps each key to allow, monitor or block"))
        return {}
    if len(value) > MAX_COUNTRIES:
        errors.append(FieldError(path, "MaxCount", f"{path} has {len(value)} entries; the limit is {MAX_COUNTRIES}"))
        return {}
    out: dict[str, Action | None] = {}
    for raw_key, raw_action in value.items():
        key = key_of(f"{path}.{str(raw_key)[:16]}", raw_key, errors)
        action = None if raw_action is None else _enum(Action, f"{path}.{str(raw_key)[:16]}", raw_action, errors)
        if key is not None and (raw_action is None or action is not None):
            out[key] = action
    return out


def _country(path: str, value: Any, errors: list[FieldError]) -> str | None:
    code = str(value).strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        errors.append(FieldError(path, "InvalidCountry", f"{path}: {str(value)[:16]!r} is not a country libphonenumber knows "
                                                         "(ISO 3166 alpha-2, such as AU or GB)"))
        return None
    return code


def _type_name(path: str, value: Any, errors: list[FieldError]) -> str | None:
    name = str(value).strip().lower().replace("-", "_")
    if name not in TYPE_NAMES:
        errors.append(FieldError(path, "InvalidNumberType", f"{path}: {str(value)[:32]!r} is not a number type; "
                                                            f"one of {', '.join(sorted(TYPE_NAMES))}"))
        return None
    return name


def _enum(kind, path: str, value: Any, errors: list[FieldError]):
    try:
        return kind(str(value).strip().lower()) if isinstance(value, str) else kind(None)
    except ValueError:
        errors.append(FieldError(path, "InvalidValue", f"{path} is one of {', '.join(m.value for m in kind)}"))
        return None


def _safe_list(value: Any, errors: list[FieldError]) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_SAFE_LIST:
        errors.append(FieldError("SafeList", "InvalidValue", f"SafeList is a list of at most {MAX_SAFE_LIST} E.164 numbers "
                                                             "or prefixes, such as +61491570110 or +614"))
        return ()
    entries = []
    for i, entry in enumerate(value):
        text = entry.strip().replace(" ", "") if isinstance(entry, str) else ""
        if not PREFIX.fullmatch(text):
            errors.append(FieldError(f"SafeList[{i}]", "InvalidValue",
                                     f"SafeList[{i}] is not an E.164 number or prefix: + and 1 to 15 digits"))
        else:
            entries.append(text)
    return tuple(sorted(set(entries)))


def _caps(value: Any, base: Caps, errors: list[FieldError]) -> Caps:
    if not isinstance(value, Mapping):
        errors.append(FieldError("Caps", "InvalidValue", "Caps is an object: dailySegments, monthlySegments, dailyCost, monthlyCost"))
        return base
    changes: dict[str, int | None] = {}
    by_lower = {k.lower(): (k, name) for k, name in _CAP_FIELDS.items()}
    for raw_key, raw in value.items():
        entry = by_lower.get(str(raw_key).lower())
        if entry is None:
            errors.append(FieldError(f"Caps.{str(raw_key)[:32]}", "Unknown", f"Caps.{str(raw_key)[:32]} is not a cap: "
                                                                          f"{', '.join(_CAP_FIELDS)}"))
            continue
        wire, name = entry
        if raw is None:
            changes[name] = None
        elif name.endswith("_segments"):
            if isinstance(raw, str) and raw.strip().isdecimal() and len(raw) <= 16:
                raw = int(raw)  # JSV has no numbers: a JSV body's caps arrive as text
            if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= MAX_CAP:
                errors.append(FieldError(f"Caps.{wire}", "InvalidValue", f"Caps.{wire} is a whole number of segments from 0 "
                                                                       f"to {MAX_CAP}, or null for no cap"))
            else:
                changes[name] = raw
        else:
            micros = money_micros(raw)
            if micros is None or micros > MAX_CAP * MICROS:
                errors.append(FieldError(f"Caps.{wire}", "InvalidValue", f"Caps.{wire} is an amount such as \"50.00\" "
                                                                       "(at most 6 decimals, not negative), or null for no cap"))
            else:
                changes[name] = micros
    return replace(base, **changes)


def money_micros(value: Any) -> int | None:
    """An amount (a JSON number or decimal text, at most 6 decimals, not negative) in millionths; None if it is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) or (isinstance(value, str) and len(value) > 32):
        return None
    try:
        amount = Decimal(str(value).strip())
        if not amount.is_finite() or amount < 0:
            return None
        micros = _EXACT.multiply(amount, MICROS)
    except ArithmeticError:  # InvalidOperation: not a number; Overflow, Underflow, Inexact: no amount held exactly
        return None
    if micros != micros.to_integral_value(rounding=ROUND_DOWN):
        return None
    return int(micros)


# Millionths worked out exactly or not at all: Decimal's default context rounds to 28 digits and overflows past
# 10**999999, so "1e999999999" raised (a 500), "1e-999999999" came out 0 and 29 significant digits were rounded
# into whole millionths. 64 digits hold any amount text (at most 32 characters) or float times a million exactly.
_EXACT = Context(prec=64, traps=[InvalidOperation, Overflow, Underflow, Inexact])


def money_text(micros: int | None) -> str | None:
    """Millionths as decimal text with at least two decimals ("0.0525", "50.00"); None stays None."""
    if micros is None:
        return None
    text = f"{Decimal(micros) / MICROS:.6f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.ljust(2, '0')}"


def _cap_value(name: str, value: int | None) -> int | str | None:
    return money_text(value) if name.endswith("_cost") else value


def _cap_text(name: str, value: int | None) -> str:
    return "none" if value is None else str(_cap_value(name, value))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head[0].upper() + head[1:] + "".join(part.capitalize() for part in rest)
