"""HTTP answers every entry point shares: an error in ServiceStack's shape, and a JSON document."""
from __future__ import annotations

import json
from typing import Any

import azure.functions as func

from ..domain.errors import GatewayError
from .formats import Format, encode, error_body, error_headers, error_status


def error_response(error: GatewayError, fmt: Format = Format.JSON) -> func.HttpResponse:
    """ServiceStack's error shape in the given format, with the status and headers the error calls for."""
    headers = {"Content-Type": fmt.content_type, **error_headers(error)}
    return func.HttpResponse(encode(error_body(error), fmt), status_code=error_status(error), headers=headers)


def json_response(data: Any, status_code: int = 200, content_type: str = "application/json; charset=utf-8") -> func.HttpResponse:
    return func.HttpResponse(json.dumps(data).encode(), status_code=status_code, headers={"Content-Type": content_type})
