"""The operator console: one HTML page and its ES modules, served by the gateway itself (issue 29).

The console is a client of the public HTTP API and nothing else: these routes only hand the browser files that
ship in the app's package (sms/operator_console/, deployed with the code, as .funcignore keeps sms/), and every
page then calls /api/... with the key the operator signed in with. No build step and no CDN: the files are
plain ES modules as committed.

Every answer carries a Content-Security-Policy that lets the page run only these files: no inline script, no
eval, nothing from elsewhere, no framing (frame-ancestors works only as a header, never in <meta>:
developer.mozilla.org/docs/Web/HTTP/Headers/Content-Security-Policy/frame-ancestors), and Trusted Types with no
policy, so the browser itself refuses to parse a string into HTML (innerHTML and the like throw): message bodies
and replies, which anyone can write, can only ever be text on the page.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import azure.functions as func

from .routes import CONSOLE_ASSET_PATTERN

ASSETS = Path(__file__).resolve().parent.parent / "operator_console"
PAGE = "index.html"
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self'", "connect-src 'self'",
    "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
    "require-trusted-types-for 'script'", "trusted-types 'none'",
))
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # No hashed file names without a build step, so the browser asks each time and gets 304 while unchanged.
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


@lru_cache(maxsize=1)
def _shipped() -> frozenset[str]:
    """The files the console ships, listed on the first request (no file is touched at import: DESIGN.md)."""
    return frozenset(path.name for path in ASSETS.iterdir() if path.is_file())


# Only names the console ships reach the cache, so it holds at most one entry a file: a request for a name it lacks
# (anyone may send one, without a key) is answered without being remembered.
@lru_cache(maxsize=None)
def _asset(name: str) -> Asset:
    path = ASSETS / name
    body = path.read_bytes()
    return Asset(body, _CONTENT_TYPES[path.suffix], '"%s"' % hashlib.sha256(body).hexdigest()[:32])


def _file(name: str) -> Asset | None:
    # The host's route constraint lets in only such names; held here too, so no name with a path in it reaches a file.
    if name not in _shipped() or not (name == PAGE or re.fullmatch(CONSOLE_ASSET_PATTERN, name)):
        return None
    return _asset(name)


def _matches(if_none_match: str, etag: str) -> bool:
    """If-None-Match against the file's ETag: `*`, or any listed tag, weak ones (W/) compared weakly (RFC 9110 13.1.2)."""
    tags = [tag.strip() for tag in if_none_match.split(",")]
    return "*" in tags or etag in (tag.removeprefix("W/") for tag in tags)


def serve(req: func.HttpRequest) -> func.HttpResponse:
    """GET /console (the page) and /console/{asset}; 304 when the browser's copy is current, 404 for anything else."""
    name = req.route_params.get("asset") or PAGE
    asset = _file(name)
    if asset is None:
        return func.HttpResponse(f"The console has no file named {name!r}", status_code=404,
                                 headers={**_HEADERS, "Content-Type": "text/plain; charset=utf-8"})
    headers = {**_HEADERS, "ETag": asset.etag}
    if _matches(req.headers.get("If-None-Match", ""), asset.etag):
        return func.HttpResponse(status_code=304, headers=headers)
    return func.HttpResponse(asset.body, status_code=200, headers={**headers, "Content-Type": asset.content_type})
