"""Simulator numbers: numbers regulators reserve for fiction, so no person can ever hold one. A send to
one goes to the simulator provider (sms/providers/simulator.py), never to a phone, and is answered
the way the number's last digit says: a licensee tries its whole integration (receipts, failures,
webhooks) end to end without texting anyone. README's *Simulator numbers* has the table.

The lists, exactly as the regulators publish them (every number in them is one libphonenumber, and
so the gateway, accepts: tests/unit/test_simulated.py):

- Australia, ACMA, "Phone numbers for use in TV shows, films and creative works"
  (https://www.acma.gov.au/phone-numbers-use-tv-shows-films-and-creative-works): 30 mobile numbers,
  listed one by one (not a range: the numbers between them are ordinary stock, a real person's
  phone), and the geographic blocks (02), (03), (07) and (08) 5550 xxxx and 7010 xxxx. ACMA's
  1800 and 1300 numbers on the same page are left out: nobody texts a freephone number.
- North America, NANPA, "555 NXX" (https://nationalnanpa.com/number_resource_info/555_numbers.html):
  555-0100 to 555-0199 are reserved for fictitious use, as line numbers in a geographic area code
  (+1 202 555 0100). The same digits in a toll-free (8YY), premium (900) or personal (5XX) area code
  are an assignable number like any other, and are not simulated.
"""
from __future__ import annotations

import enum
from functools import lru_cache

import phonenumbers

from .model import Status

# ACMA's mobile numbers for fiction, in the order its page lists them, in E.164.
ACMA_MOBILES = frozenset("+61" + n[1:] for n in (
    "0491570006", "0491570156", "0491570157", "0491570158", "0491570159", "0491570110", "0491570313", "0491570737",
    "0491571266", "0491571491", "0491571804", "0491572549", "0491572665", "0491572983", "0491573770", "0491573087",
    "0491574118", "0491574632", "0491575254", "0491575789", "0491576398", "0491576801", "0491577426", "0491577644",
    "0491578957", "0491578148", "0491578888", "0491579212", "0491579760", "0491579455",
))
# ACMA's geographic blocks: area code 2, 3, 7 or 8, then 5550 or 7010, then any four digits.
ACMA_AREAS = "2378"
ACMA_BLOCKS = ("5550", "7010")
# NANPA's: NPA 555 01XX.
NANP_FICTION = "55501"


# The simulator provider's name: what routes, timelines, usage and the ledger show for its sends.
SIMULATOR = "simulator"


class Behaviour(enum.Enum):
    """How the simulator answers a send to a simulator number."""

    DELIVERED = "delivered"  # taken; a `delivered` receipt follows
    UNDELIVERED = "undelivered"  # taken; an `undelivered` receipt follows, with the carrier's code
    FAILED = "failed"  # the provider takes the request and refuses the SMS: nothing sent, and not sent elsewhere
    NOT_TAKEN = "not_taken"  # refused before acceptance: nothing reached the provider; another one may be tried
    AMBIGUOUS = "ambiguous"  # taken, but the answer never came back whole (a timeout after the request was written)
    NO_RECEIPT = "no_receipt"  # taken; no receipt ever comes

    @property
    def taken(self) -> bool:
        """Whether the simulator has the SMS once the call is over: what it answers when asked (`find`)."""
        return self not in (Behaviour.FAILED, Behaviour.NOT_TAKEN)

    @property
    def receipt(self) -> Status | None:
        """The delivery receipt that follows a send, if any."""
        return {Behaviour.DELIVERED: Status.DELIVERED, Behaviour.UNDELIVERED: Status.UNDELIVERED}.get(self)

    @property
    def code(self) -> str | None:
        """The simulator's own code for what went wrong: on the refusal, or in the receipt's detail."""
        return _CODES.get(self)


_CODES = {
    Behaviour.UNDELIVERED: "HANDSET_UNREACHABLE",
    Behaviour.FAILED: "DESTINATION_BLOCKED",
    Behaviour.NOT_TAKEN: "UNSUPPORTED_DESTINATION",
    Behaviour.AMBIGUOUS: "TIMEOUT",
}

# By the number's last digit: one digit for each way a send can go, the rest delivered, as most SMS are.
BY_LAST_DIGIT = {
    "0": Behaviour.DELIVERED,
    "1": Behaviour.UNDELIVERED,
    "2": Behaviour.FAILED,
    "3": Behaviour.NOT_TAKEN,
    "4": Behaviour.AMBIGUOUS,
    "5": Behaviour.NO_RECEIPT,
    **dict.fromkeys("6789", Behaviour.DELIVERED),
}


def simulated(e164: str) -> Behaviour | None:
    """How the simulator answers a send to `e164` (as the gateway stores numbers: E.164), or None when
    it is not a simulator number. Pure and cheap: a few string tests, libphonenumber only for a number
    that looks like North American fiction."""
    return BY_LAST_DIGIT[e164[-1]] if _fictional(e164) else None


def _fictional(e164: str) -> bool:
    if len(e164) != 12 or not e164[1:].isdigit():
        return False
    if e164.startswith("+61"):
        return e164 in ACMA_MOBILES or (e164[3] in ACMA_AREAS and e164[4:8] in ACMA_BLOCKS)
    return e164.startswith("+1") and e164[5:10] == NANP_FICTION and _geographic(e164)


_GEOGRAPHIC = (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE,
               phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)


@lru_cache(maxsize=1024)
def _geographic(e164: str) -> bool:
    """A North American number in a geographic area code (libphonenumber's metadata knows which are
    toll-free, premium or personal)."""
    return phonenumbers.number_type(phonenumbers.parse(e164, None)) in _GEOGRAPHIC
