"""Which addresses a webhook may reach: the public internet only. One rule for both places that ask:
saving an endpoint (sms/usecases/webhook_endpoints.py) and sending to it (sms/webhooks/sender.py, which also
checks every address a name resolves to, at send time); and one reading of a URL's host for both:
`normalised_host`, the host as a WHATWG URL parser leaves it."""
from __future__ import annotations

import ipaddress
from urllib.parse import unquote

import idna

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# The URL Standard's forbidden domain code points: besides these, C0 controls and DEL.
_FORBIDDEN_IN_DOMAIN = frozenset(' #%/:<>?@[\\]^|')
_HEX, _OCTAL, _DECIMAL = frozenset("0123456789abcdefABCDEF"), frozenset("01234567"), frozenset("0123456789")


class NotAHost(ValueError):
    """A URL's host that does not normalise cleanly; the message says why."""


def normalised_host(host: str) -> str:
    """The host as the URL Standard's host parser (https://url.spec.whatwg.org/#host-parsing) leaves it,
    for a special scheme such as https: the host any client, the sender's included, would reach.

    `host` as urlsplit or yarl give it (an IPv6 address without its brackets), or in brackets, which only
    an IPv6 address may be. An IPv6 address comes back compressed, without brackets. Anything else is
    percent-decoded (as UTF-8); mapped and encoded to ASCII by IDNA (UTS #46, not transitional: case
    folded, fullwidth and other compatibility forms mapped, U+3002, U+FF0E and U+FF61 read as dots),
    through the idna package, which yarl (so aiohttp, so the sender) uses too; and
    when its last label is a number, read by the URL Standard's IPv4 parser, which takes "0x7f.1",
    "2130706433", "0177.0.0.1" and "127.1" for 127.0.0.1, and written as four decimal numbers. An ASCII
    name with no "xn--" label is only lowercased, as yarl leaves it. NotAHost when it is none of these."""
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed or ":" in host:  # only an IPv6 address has one: a name may not
        host = host[1:-1] if bracketed else host
        if "%" in host:
            raise NotAHost("has an IPv6 zone, which no URL carries")
        try:
            return ipaddress.IPv6Address(host).compressed
        except ValueError:
            raise NotAHost("is not an IPv6 address") from None
    try:
        decoded = unquote(host, errors="strict")
    except UnicodeDecodeError:
        raise NotAHost("percent-decodes to bytes that are not UTF-8") from None
    if decoded.isascii() and not any(label.startswith("xn--") for label in decoded.lower().split(".")):
        name = decoded.lower()
    else:
        try:
            name = idna.encode(decoded, uts46=True, transitional=False).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise NotAHost(f"is not an internationalised domain name IDNA can write in ASCII ({exc})") from None
    if not name or any(ch in _FORBIDDEN_IN_DOMAIN or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        raise NotAHost("is empty or has a character no host has")
    if _ends_in_a_number(name):
        address = _ipv4(name)
        if address is None:
            raise NotAHost("ends in a number but is not an IPv4 address")
        return str(address)
    return name


def host_address(host: str) -> IPAddress | None:
    """The IP address a normalised host is (`normalised_host`), or None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def non_public(address: str | IPAddress) -> str | None:
    """Why an IP address is no webhook destination ("private", "loopback", ...), or None when it is a
    public one. IPv6 forms that carry an IPv4 address (mapped, 6to4, Teredo, NAT64) are judged by it.
    ValueError when `address` is not an IP address."""
    ip = judged(ipaddress.ip_address(address) if isinstance(address, str) else address)
    for kind in ("unspecified", "loopback", "link_local", "multicast", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    if not ip.is_global:
        return "non-public"  # 100.64.0.0/10 (carrier-grade NAT) and the like
    return None


def judged(ip: IPAddress) -> IPAddress:
    """The address a destination is judged by: the IPv4 address an IPv6 form carries (mapped, 6to4,
    Teredo, NAT64), or the address itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return embedded
    return ip


# -- the URL Standard's IPv4 parser (https://url.spec.whatwg.org/#concept-ipv4-parser) -------------

def _ends_in_a_number(name: str) -> bool:
    parts = name.split(".")
    if parts[-1] == "":
        if len(parts) == 1:
            return False
        parts.pop()
    last = parts[-1]
    return (last != "" and set(last) <= _DECIMAL) or _ipv4_number(last) is not None


def _ipv4_number(part: str) -> int | None:
    if part == "":
        return None
    digits, radix = part, 10
    if len(part) >= 2 and part[:2] in ("0x", "0X"):
        digits, radix = part[2:], 16
    elif len(part) >= 2 and part[0] == "0":
        digits, radix = part[1:], 8
    if digits == "":
        return 0
    if not set(digits) <= {16: _HEX, 8: _OCTAL, 10: _DECIMAL}[radix]:
        return None
    return int(digits, radix)


def _ipv4(name: str) -> ipaddress.IPv4Address | None:
    parts = name.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if len(parts) > 4:
        return None
    numbers = [_ipv4_number(part) for part in parts]
    if None in numbers:
        return None
    *leading, last = numbers  # type: ignore[misc]
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        return None
    return ipaddress.IPv4Address(last + sum(n * 256 ** (3 - i) for i, n in enumerate(leading)))
