"""HTTP answers every entry point shares: an error in ServiceStack's shape, and a document in JSON (or JSV)."""
from __future__ import annotations

import json
from typing import Any

import azure.functions as func
from pydantic.alias_generators import to_pascal

from ..domain.errors import GatewayError
from . import jsv
from .formats import Format, encode, error_body, error_headers, error_status


def error_response(error: GatewayError, fmt: Format = Format.JSON) -> func.HttpResponse:
    """ServiceStack's error shape in the given format, with the status and headers the error calls for."""
    headers = {"Content-Type": fmt.content_type, **error_headers(error)}
    return func.HttpResponse(encode(error_body(error), fmt), status_code=error_status(error), headers=headers)


def json_response(data: Any, status_code: int = 200, content_type: str = "application/json; charset=utf-8") -> func.HttpResponse:
    """Compact, as every other JSON answer is."""
    return func.HttpResponse(json.dumps(data, separators=(",", ":")).encode(), status_code=status_code,
                             headers={"Content-Type": content_type})


def document_response(data: dict[str, Any], fmt: Format, status_code: int = 200) -> func.HttpResponse:
    """A document that is no DTO (GET /api/health's) in the negotiated format: JSON under its own names, JSV under
    the same names in PascalCase, as a DTO's are written."""
    if fmt is Format.JSON:
        return json_response(data, status_code, fmt.content_type)
    return func.HttpResponse(jsv.dumps(_pascal_keys(data)).encode(), status_code=status_code, headers={"Content-Type": fmt.content_type})


def _pascal_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {to_pascal(key): _pascal_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_pascal_keys(item) for item in value]
    return value


# The gateway's own HTML pages (/api/metadata, /metadata, /json/metadata, /jsv/metadata): no script, their style inline.
# They share an origin with the operator console, whose key sits in the tab's session storage, so they are held to
# what they need: nothing loads or runs on them, and nothing may frame them (frame-ancestors works only as a header:
# developer.mozilla.org/docs/Web/HTTP/Headers/Content-Security-Policy/frame-ancestors).
HTML_PAGE_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def html_page(body: str, status_code: int = 200) -> func.HttpResponse:
    """One of the gateway's HTML pages, with HTML_PAGE_HEADERS."""
    return func.HttpResponse(body, status_code=status_code, headers=HTML_PAGE_HEADERS)
