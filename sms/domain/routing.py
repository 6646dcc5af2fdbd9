"""Routing: which providers a recipient's SMS may go through, in order, and the number it goes out from.

A table is an ordered list of rules; the first rule that matches a recipient's number wins. A rule
matches by destination country (ISO 3166 alpha-2, from the number: libphonenumber's region), by E.164
prefix (`+614`), or everything (`*`). It names providers in the order to try them (the next only when
one refused before acceptance: sms/providers Failure.NOT_TAKEN) and may pin the sender number the
recipient sees. No rule matching is a refusal of that recipient (`no_route`), never a silent drop.

The deployment has a default table (SMS_ROUTES; without it, one rule sending everything through the
first provider); a licensee's own table, when set, replaces it for that licensee's messages.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

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
    def through(cls, provider: str) -> "RoutingTable":
        """Everything through one provider: a deployment's default without SMS_ROUTES."""
        return cls((Rule(ANYWHERE, (provider,)),))


@lru_cache(maxsize=4096)
def region_of(e164: str) -> str | None:
    """The country a number belongs to (ISO 3166 alpha-2), as libphonenumber reads it; None if it cannot tell."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return None
