"""Content negotiation and the codecs: bodies in (JSON, JSV, forms), DTOs and errors out (JSON, JSV).

The response format is chosen as ServiceStack chooses it: `?format=json|jsv`, then a `.json`/`.jsv`
route suffix (or the format of a predefined `/json/reply`, `/jsv/reply` route), then the Accept
header; JSON when none of them names a format we speak.
"""
from __future__ import annotations

import enum
import functools
import json
import re
import sys
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, Sequence, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_pascal
from pydantic_core import PydanticSerializationError

from ..domain.errors import (
    Conflict,
    FieldError,
    Forbidden,
    GatewayError,
    KeyReused,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    StillChanging,
    StorageUnavailable,
    TooManyRequests,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
)
from . import jsv
from .dto import ErrorResponse, ResponseError, ResponseStatus, pascal_dict

M = TypeVar("M", bound=BaseModel)


class Format(str, enum.Enum):
    JSON = "json"
    JSV = "jsv"

    @property
    def content_type(self) -> str:
        return "application/json; charset=utf-8" if self is Format.JSON else "text/jsv; charset=utf-8"


_MEDIA_FORMATS = {
    "application/json": Format.JSON,
    "text/json": Format.JSON,
    "text/jsv": Format.JSV,
    "application/jsv": Format.JSV,
}
FORM = "application/x-www-form-urlencoded"
# A body sent chunked reaches the function empty (the Functions host passes none without a Content-Length), and
# a proxy on the way may have dropped the Transfer-Encoding header that sms.entrypoints.api looks for: say it here too.
EMPTY_BODY = "The request body is empty (a body sent chunked, without a Content-Length, arrives empty: send its Content-Length)"
MULTIPART = "multipart/form-data"


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def response_format(query: str | None = None, suffix: str | None = None, accept: str | None = None) -> Format:
    for named in (query, suffix):
        if named and named.lower() in ("json", "jsv"):
            return Format(named.lower())
    return _from_accept(accept) or Format.JSON


@functools.lru_cache(maxsize=256)  # clients send few distinct Accept headers, and each request has one
def _from_accept(accept: str | None) -> Format | None:
    """The supported media type the client weighs highest; ties go to the first listed."""
    best: tuple[float, Format] | None = None
    for item in (accept or "").split(","):
        media, *params = (p.strip() for p in item.split(";"))
        fmt = _MEDIA_FORMATS.get(media.lower())
        if fmt is None:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and (best is None or q > best[0]):
            best = (q, fmt)
    return best[1] if best else None


# -- reading requests ---------------------------------------------------------------------------


def read_body(body: bytes, content_type: str | None, default: Format = Format.JSON) -> Any:
    """A request body as plain data (dicts, lists, strings), whatever format it came in.

    Every string in it, keys included, is valid Unicode, or the body is refused naming the field."""
    media = media_type(content_type)
    if not body or not body.strip():
        raise ValidationFailed([FieldError("", "SerializationException", EMPTY_BODY)])
    fmt = _MEDIA_FORMATS.get(media) if media else default
    if fmt is None and media not in (FORM, MULTIPART):
        raise UnsupportedMediaType(media)
    if media == MULTIPART:
        data = _multipart(body, content_type or "")
    else:
        try:
            text = body.decode("utf-8-sig")  # RFC 8259: JSON between systems is UTF-8; JSV and forms here too
        except UnicodeDecodeError:
            raise _unreadable("The request body is not UTF-8 text") from None
        # Text decoded from UTF-8 holds no lone surrogate: JSON can still write one as an escape, and
        # a form's percent-escaped bytes can be anything. Only those are walked (the walk costs about
        # 1 us a recipient; the search below, nothing).
        if fmt is Format.JSON:
            data = _json(text)
            if _SURROGATE_ESCAPE.search(text) is None:
                return data
        elif fmt is Format.JSV:
            return _jsv(text, "The request body is not valid JSV")
        else:
            # A percent-escaped byte that is not UTF-8 is kept (as a lone surrogate) for the check below
            # to name its field; the default, errors="replace", would send U+FFFD in its place.
            fields = parse_qsl(text, keep_blank_values=True, errors="surrogateescape")
            data = {key: _form_value(key, value) for key, value in fields}
    _refuse_invalid_text(data)
    return data


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _unreadable(f"The request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise _unreadable("The request body is nested deeper than this service reads") from None
    except ValueError:  # int() refuses a number longer than sys.get_int_max_str_digits() (CVE-2020-10735)
        raise _unreadable(f"The request body is not valid JSON here: it has a number of more than "
                          f"{sys.get_int_max_str_digits()} digits") from None


def _form_value(key: str, value: str) -> Any:
    """ServiceStack reads a complex form field as JSV: SMSModel={To:[{PhoneNumber:...}],...}. A simple
    one is text, as a JSV scalar is."""
    return _jsv(value, f"Form field '{key}' is not valid JSV") if value.lstrip()[:1] in ("{", "[") else jsv.Text(value)


def _multipart(body: bytes, content_type: str) -> dict[str, Any]:
    try:
        header = content_type.encode("ascii")  # a boundary is ASCII (RFC 2046, section 5.1.1)
    except UnicodeEncodeError:
        raise _unreadable("The multipart/form-data boundary is not ASCII") from None
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + header + b"\r\n\r\n" + body)
    if not message.is_multipart():
        raise _unreadable("The multipart/form-data body could not be read (is the boundary right?)")
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")  # bytes that are not ASCII: lone surrogates
        if name:
            payload = part.get_payload(decode=True) or b""
            fields[str(name)] = _form_value(str(name), payload.decode("utf-8", errors="surrogateescape"))
    return fields


def _jsv(text: str, what: str) -> Any:
    try:
        return jsv.loads(text)
    except jsv.JsvError as exc:
        raise _unreadable(f"{what}: {exc}") from None


def _unreadable(message: str) -> ValidationFailed:
    return ValidationFailed([FieldError("", "SerializationException", message)])


# A code point no valid Unicode text holds: half of a UTF-16 surrogate pair on its own. JSON can write
# one ("\ud800" is a valid escape), and surrogateescape keeps a byte that is not UTF-8 as one.
# Nothing downstream can carry it: it cannot be encoded as UTF-8 for a provider, for storage or for
# the answer, so it is refused here, once, for every string a request holds.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def invalid_unicode_at(text: str) -> int | None:
    """Where `text` stops being valid Unicode (a lone surrogate), or None when it is valid."""
    if text.isascii():
        return None
    found = _LONE_SURROGATE.search(text)
    return found.start() if found else None


def _refuse_invalid_text(data: Any) -> None:
    """Every string and key in a decoded document is valid Unicode; else a 400 naming each field as
    the client spelled it, e.g. SMSModel.To[0].Name. Walked without recursion: depth is the reader's
    limit, not this one's."""
    errors: list[FieldError] = []
    pending: list[tuple[str, Any]] = [("", data)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            if (at := invalid_unicode_at(value)) is not None:
                errors.append(FieldError(path, "InvalidUnicode", (
                    f"{path or 'The request body'} is not valid Unicode text: character {at + 1} is a lone UTF-16 "
                    "surrogate or a byte that is not UTF-8")))
        elif isinstance(value, dict):
            children = []
            for key, item in value.items():
                key = str(key)
                if invalid_unicode_at(key) is not None:
                    errors.append(FieldError(path, "InvalidUnicode",
                                             f"{path or 'The request body'} has a property name that is not valid Unicode text"))
                    continue
                children.append((f"{path}.{key}" if path else key, item))
            pending.extend(reversed(children))  # popped in document order
        elif isinstance(value, list):
            pending.extend(reversed([(f"{path}[{i}]", item) for i, item in enumerate(value)]))
    if errors:
        raise ValidationFailed(errors)


def to_dto(data: Any, model: type[M], path: str = "") -> M:
    if not isinstance(data, dict):
        raise _unreadable(f"The request{f' item {path}' if path else ''} must be an object (a {model.__name__})")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed([_field_error(e, path) for e in exc.errors()]) from None


def to_dtos(data: Any, model: type[M], limit: int) -> list[M]:
    """An auto-batched request: a list of DTOs. Every item is checked before any is used."""
    if not isinstance(data, list):
        raise _unreadable(f"A batched request must be a list of {model.__name__} objects")
    if not data or len(data) > limit:
        raise ValidationFailed([FieldError("", "MaxCount", f"A batch holds 1 to {limit} requests; this one has {len(data)}")])
    dtos, errors = [], []
    for i, item in enumerate(data):
        try:
            dtos.append(to_dto(item, model, f"[{i}]"))
        except ValidationFailed as exc:
            errors += exc.field_errors
    if errors:
        raise ValidationFailed(errors)
    return dtos


def _field_error(error: dict, prefix: str = "") -> FieldError:
    path = prefix
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    return FieldError(path, to_pascal(error["type"]), f"{path}: {message}" if path else message)


# -- writing responses ----------------------------------------------------------------------------


def encode(value: BaseModel | Sequence[BaseModel], fmt: Format) -> bytes:
    if fmt is Format.JSV:
        return _utf8(jsv.dumps(pascal_dict(value if isinstance(value, BaseModel) else list(value))))
    if isinstance(value, BaseModel):
        try:
            return value.model_dump_json(by_alias=True, exclude_none=True).encode()
        except PydanticSerializationError:  # text that is not valid Unicode: see _utf8
            data: Any = value.model_dump(mode="json", by_alias=True, exclude_none=True)
    else:
        data = [v.model_dump(mode="json", by_alias=True, exclude_none=True) for v in value]
    return _utf8(json.dumps(data, separators=(",", ":"), ensure_ascii=False))


def _utf8(text: str) -> bytes:
    """UTF-8, with U+FFFD for any lone surrogate. Requests holding one are refused, but an answer can
    still quote one (an error naming a header or path the client sent), and an answer that cannot be
    encoded would be a 500."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()


_HTTP_STATUS = {
    ValidationFailed: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    MethodNotAllowed: 405,
    Conflict: 409,
    PreconditionFailed: 412,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    KeyReused: 422,
    TooManyRequests: 429,
    StorageUnavailable: 503,
}


def error_status(error: GatewayError) -> int:
    for kind, status in _HTTP_STATUS.items():
        if isinstance(error, kind):
            return status
    return 500


def error_body(error: GatewayError) -> ErrorResponse:
    errors = [ResponseError(error_code=e.error_code, field_name=e.field_name, message=e.message) for e in error.field_errors]
    meta = {"AutoBatchIndex": str(error.batch_index)} if error.batch_index is not None else None
    return ErrorResponse(response_status=ResponseStatus(error_code=error.error_code, message=error.message, errors=errors or None,
                                                        meta=meta))


def error_headers(error: GatewayError) -> dict[str, str]:
    if error.batch_completed is not None:  # ServiceStack's: how many auto-batched requests were done
        return {"X-AutoBatch-Completed": str(error.batch_completed)}
    if isinstance(error, MethodNotAllowed):
        return {"Allow": error.allowed}
    if isinstance(error, (TooManyRequests, StillChanging)):
        return {"Retry-After": str(error.retry_after_seconds)}
    return {}
