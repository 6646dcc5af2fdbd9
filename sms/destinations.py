"""Which addresses a webhook may reach: the public internet only. One rule for both places that ask:
saving an endpoint (sms/usecases/webhooks.py, on an IP literal) and sending to it (sms/webhooks/sender.py,
on every address a name resolves to, at send time)."""
from __future__ import annotations

import ipaddress
import re
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


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


def literal_address(host: str) -> IPAddress | None:
    """The address a host names without a DNS lookup: an IP literal, including the legacy IPv4 forms
    the C library reads ("127.1", "2130706433", "0x7f.0.0.1"); None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if re.fullmatch(r"[0-9a-fA-Fx.]+", host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None
