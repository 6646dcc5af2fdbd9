"""The operator's price table (issue 27): what one SMS segment costs, per destination country and
provider, in one currency. The figures are the operator's (its contracts with its providers), never
ours: the gateway only multiplies them, for the cost it answers before sending and the spend caps.

The file (SMS_PRICES names it) is CSV with a header row `country,provider,price,currency`:
- `country`: ISO 3166 alpha-2, or `*` for every country not listed;
- `provider`: a provider instance's name (SMS_PROVIDERS), or `*` for any;
- `price`: one segment's price, a decimal with at most 6 places;
- `currency`: ISO 4217 letters, the same on every row.
Blank lines and lines starting `#` are skipped. The most specific row wins: country and provider, then
country and `*`, then `*` and provider, then `*` and `*`. No row: the cost is unknown (None), and a
recipient that needs a price (a cost cap, a maxPrice) is not sent (sms/usecases/guard.py says so).
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

import phonenumbers

from .guard import money_micros

ANY = "*"
MAX_ROWS = 10_000
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class PriceTableError(ValueError):
    """A price table that cannot be read: the message names the line and the problem."""


@dataclass(frozen=True)
class PriceTable:
    currency: str | None = None
    prices: tuple[tuple[str, str, int], ...] = ()  # (country or *, provider or *, micros per segment)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_key", {(c, p): micros for c, p, micros in self.prices})

    def per_segment(self, country: str | None, provider: str) -> int | None:
        """One segment's price to `country` through `provider`, in millionths of `currency`; None: no row covers it."""
        by_key: dict[tuple[str, str], int] = self.__dict__["_by_key"]
        for key in ((country or ANY, provider), (country or ANY, ANY), (ANY, provider), (ANY, ANY)):
            price = by_key.get(key)
            if price is not None:
                return price
        return None

    def cost(self, country: str | None, provider: str, segments: int) -> int | None:
        price = self.per_segment(country, provider)
        return None if price is None else price * segments


NO_PRICES = PriceTable()


def parse_prices(text: str, source: str = "SMS_PRICES") -> PriceTable:
    """A price table from its CSV text; PriceTableError naming the line of the first problem."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        return NO_PRICES
    header_line, header = lines[0]
    columns = [c.strip().lower() for c in next(csv.reader([header]))]
    if columns != ["country", "provider", "price", "currency"]:
        raise PriceTableError(f"{source} line {header_line}: the header must be country,provider,price,currency")
    if len(lines) - 1 > MAX_ROWS:
        raise PriceTableError(f"{source} has {len(lines) - 1} rows; the limit is {MAX_ROWS}")
    currency, rows, seen = None, [], set()
    for n, line in lines[1:]:
        cells = [c.strip() for c in next(csv.reader(io.StringIO(line)))]
        if len(cells) != 4:
            raise PriceTableError(f"{source} line {n}: 4 cells (country,provider,price,currency), found {len(cells)}")
        country, provider, price, row_currency = cells
        country = country.upper()
        if country != ANY and country not in phonenumbers.SUPPORTED_REGIONS:
            raise PriceTableError(f"{source} line {n}: {country!r} is not a country (ISO 3166 alpha-2) or *")
        if not provider:
            raise PriceTableError(f"{source} line {n}: the provider is a provider's name or *")
        micros = money_micros(price)
        if micros is None:
            raise PriceTableError(f"{source} line {n}: {price!r} is not a price (a decimal, at most 6 places, not negative)")
        row_currency = row_currency.upper()
        if not _CURRENCY.match(row_currency):
            raise PriceTableError(f"{source} line {n}: {row_currency!r} is not a currency code such as USD")
        if currency is not None and row_currency != currency:
            raise PriceTableError(f"{source} line {n}: every row is in one currency ({currency}), not {row_currency}")
        if (country, provider) in seen:
            raise PriceTableError(f"{source} line {n}: {country},{provider} is priced twice")
        currency = row_currency
        seen.add((country, provider))
        rows.append((country, provider, micros))
    return PriceTable(currency, tuple(rows))
