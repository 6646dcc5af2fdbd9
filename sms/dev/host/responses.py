"""The headers a function's `func.HttpResponse` goes out with on Azure, after the Python worker and the host
have each had their turn with them. The gateway sets its own Content-Type and no cookies, so this matters
only to keep the dev host honest for whatever else it serves.

The worker (azure-functions-python-library `azure/functions/http.py`, `HttpResponseConverter.encode`, the same in
1.22 and 1.26; python-worker 4.34.0 `azure_functions_worker/bindings/datumdef.py`, `datum_as_proto`):
- with no Content-Type header, writes one from `mimetype`, adding `; charset=` only to a `text/` type;
- sends the headers as a map, so of a name given twice only the last value goes;
- takes every Set-Cookie header out, reads each with `http.cookies.SimpleCookie` (one it cannot read is
  dropped without a word) and sends the cookies as RpcHttpCookie: domain and path always, as text (empty
  when not given), expires through `dateutil.parser` (a date it cannot read fails the invocation: 500),
  max-age as a number (likewise), secure and httponly as booleans, samesite Lax, Strict or None.

The host (azure-functions-host 4.1037.0 `GrpcMessageExtensionUtilities.RpcHttpCookieConverter` and
`RawScriptResult`) appends each cookie with ASP.NET Core's `ResponseCookies.Append(key, value, options)`: the
value through `Uri.EscapeDataString`, written by `SetCookieHeaderValue.ToString()` as
`name=value; expires=<RFC 1123>; max-age=<whole seconds>; domain=<d>; path=<p>; secure; samesite=<lax|strict|none>;
httponly`, lower-case, each part only when set. The worker's own end-to-end tests show the result:
`Set-Cookie: foo=bar` goes out as `foo=bar; domain=; path=` (python-worker tests/unittests/test_http_functions.py,
test_set_cookie_header_in_response_default_value, test_multiple_cookie_header_in_response).
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from email.utils import format_datetime
from http.cookiejar import http2time
from http.cookies import Morsel, SimpleCookie
from urllib.parse import quote

import azure.functions as func

# RFC 7230's token: what SetCookieHeaderValue takes as a name (CookieHeaderValue.CheckNameFormat); SimpleCookie
# takes a few more characters, which the host then refuses by throwing while it writes the answer (a 500).
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


class UnwritableCookie(ValueError):
    """A cookie the worker or the host fails on: the function's invocation ends in a 500."""


def response_headers(response: func.HttpResponse) -> list[tuple[str, str]]:
    """The headers `response` goes out with on Azure, Set-Cookie last, one per cookie. Raises UnwritableCookie
    where the worker or the host would fail."""
    headers = response.headers.copy()
    if "content-type" not in headers:
        mimetype = response.mimetype
        headers["content-type"] = f"{mimetype}; charset={response.charset}" if mimetype.startswith("text/") else mimetype
    cookies = [SimpleCookie(text) for text in headers.get_all("Set-Cookie")]
    headers.remove("Set-Cookie")
    as_map = dict(headers.items())  # the worker's map: the last value of a name given twice
    sent: dict[str, tuple[str, str]] = {}
    for name, value in as_map.items():
        sent.setdefault(name.lower(), (name, value))  # the host adds a header once; a second spelling is logged, not sent
    return [*sent.values(), *(("Set-Cookie", set_cookie(name, morsel)) for cookie in cookies for name, morsel in cookie.items())]


def set_cookie(name: str, morsel: Morsel) -> str:
    """One cookie as the host writes it, from what the worker read of it."""
    if not _TOKEN.match(name):
        raise UnwritableCookie(f"cookie name {name!r} is not an HTTP token")
    parts = [f"{name}={quote(morsel.value, safe='')}"]  # Uri.EscapeDataString: all but A-Z a-z 0-9 - . _ ~
    if morsel["expires"]:
        seconds = http2time(morsel["expires"])  # the worker reads it with dateutil; both read the dates cookies carry
        if seconds is None:
            raise UnwritableCookie(f"cookie {name}: cannot read expires={morsel['expires']!r}")
        parts.append("expires=" + format_datetime(datetime.fromtimestamp(int(seconds), timezone.utc), usegmt=True))
    if morsel["max-age"] != "":
        try:
            max_age = int(float(morsel["max-age"]))  # TimeSpan.FromSeconds, then (long)TotalSeconds
        except ValueError:
            raise UnwritableCookie(f"cookie {name}: max-age={morsel['max-age']!r} is not a number") from None
        if max_age < 0:  # HeaderUtilities.FormatNonNegativeInt64 throws
            raise UnwritableCookie(f"cookie {name}: max-age={max_age} is negative")
        parts.append(f"max-age={max_age}")
    parts += [f"domain={morsel['domain']}", f"path={morsel['path']}"]  # always: the worker sends them as text, '' or not
    if morsel["secure"]:
        parts.append("secure")
    same_site = str(morsel["samesite"]).lower()
    if same_site in ("lax", "strict", "none"):
        parts.append(f"samesite={same_site}")
    if morsel["httponly"]:
        parts.append("httponly")
    return "; ".join(parts)
