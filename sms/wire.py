"""The ServiceStack wire contract: DTOs from the seed, JSON decoding, responses and errors.

Property names are matched case-insensitively on input (camelCase from Python and
TypeScript clients, PascalCase from .NET); JSON output is camelCase. Field paths in
errors use the DTOs' PascalCase names, e.g. ``SMSModel.To[1].PhoneNumber``.
"""
from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import (
    AliasGenerator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel, to_pascal

from .errors import (
    FieldError,
    Forbidden,
    GatewayError,
    NotFound,
    StorageUnavailable,
    Unauthenticated,
    ValidationFailed,
)

JSON_CONTENT_TYPE = "application/json; charset=utf-8"

_EMPTY_GUID = "0" * 32


def parse_guid(value: Any) -> str | None:
    """Guids arrive with or without dashes or braces, in any case; we keep ServiceStack's "N" format.

    The all-zero Guid is how .NET clients send an unset Guid, so it reads as "not given".
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError("must be a Guid string")
    try:
        hex32 = uuid.UUID(value.strip()).hex
    except ValueError:
        raise ValueError(f"'{value}' is not a Guid") from None
    return None if hex32 == _EMPTY_GUID else hex32


Guid = Annotated[str | None, BeforeValidator(parse_guid)]


class WireModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=AliasGenerator(validation_alias=to_pascal, serialization_alias=to_camel),
        populate_by_name=True,
        extra="ignore",
    )
    _names_by_lower: ClassVar[dict[str, str]]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._names_by_lower = {}
        for name, info in cls.model_fields.items():
            alias = info.validation_alias or name
            for spelling in (name, alias, info.serialization_alias or name):
                cls._names_by_lower[spelling.lower()] = alias

    @model_validator(mode="before")
    @classmethod
    def _match_names_case_insensitively(cls, data: Any) -> Any:
        if isinstance(data, dict):
            names = cls._names_by_lower
            return {names.get(k.lower(), k) if isinstance(k, str) else k: v for k, v in data.items()}
        return data


class SMSContact(WireModel):
    name: str | None = None
    phone_number: str | None = None
    contact_id: Guid = None


class SMSModel(WireModel):
    licensee_id: Guid = None
    from_: SMSContact | None = Field(default=None, validation_alias="From", serialization_alias="from")
    to: list[SMSContact] | None = None
    message_body: str | None = None
    reply_is_allowed: bool = False
    reply_is_required: bool = False
    notes: str | None = None
    linked_object_id: Guid = None
    suite_id: Guid = None


class SMSSend(WireModel):
    sms_model: SMSModel | None = Field(default=None, validation_alias="SMSModel", serialization_alias="smsModel")
    create_communication_references_immediately: bool = False


class CommResponse(WireModel):
    comm_id: str | None = None
    reference: str | None = None
    status: bool = False
    message: str | None = None


class RecipientState(WireModel):
    id: str
    phone_number: str
    name: str | None = None
    contact_id: str | None = None
    status: str
    provider_message_id: str | None = None
    error: str | None = None
    attempts: int = 0
    updated_at: datetime


class MessageState(WireModel):
    """GET /api/sms/{commId}: the message and where each recipient's SMS stands."""

    comm_id: str
    reference: str
    status: str
    licensee_id: str
    created_at: datetime
    encoding: str
    segments: int
    recipient_count: int
    recipients: list[RecipientState]


def decode_send_request(body: bytes) -> SMSSend:
    """JSON body -> SMSSend, or ValidationFailed naming what is wrong."""
    if not body or not body.strip():
        raise ValidationFailed([FieldError("SMSModel", "NotEmpty", "The request body is empty; send an SMSSend object")])
    try:
        data = json.loads(body.decode("utf-8-sig"))  # RFC 8259: JSON between systems is UTF-8
    except UnicodeDecodeError:
        raise ValidationFailed([FieldError("", "SerializationException", "The request body is not UTF-8 text")]) from None
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            [FieldError("", "SerializationException", f"The request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")]
        ) from None
    if not isinstance(data, dict):
        raise ValidationFailed([FieldError("", "SerializationException", "The request body must be a JSON object (an SMSSend)")])
    try:
        return SMSSend.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed([_field_error(e) for e in exc.errors()]) from None


def _field_error(error: dict) -> FieldError:
    path = ""
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    code = to_pascal(error["type"])
    return FieldError(path, code, f"{path}: {message}" if path else message)


def encode(model: BaseModel) -> bytes:
    return model.model_dump_json(by_alias=True, exclude_none=True).encode()


def encode_json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


_HTTP_STATUS = {
    ValidationFailed: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    StorageUnavailable: 503,
}


def error_status(error: GatewayError) -> int:
    for kind, status in _HTTP_STATUS.items():
        if isinstance(error, kind):
            return status
    return 500


def encode_error(error: GatewayError) -> bytes:
    """ServiceStack's ResponseStatus shape, so its clients raise WebServiceException with our details."""
    status: dict[str, Any] = {"errorCode": error.error_code, "message": error.message}
    if error.field_errors:
        status["errors"] = [
            {"errorCode": e.error_code, "fieldName": e.field_name, "message": e.message} for e in error.field_errors
        ]
    return encode_json({"responseStatus": status})


_BEARER = re.compile(r"^\s*Bearer\s+(\S+)\s*$", re.IGNORECASE)


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthenticated("Missing API key: send it as 'Authorization: Bearer <key>'")
    match = _BEARER.match(authorization)
    if not match:
        raise Unauthenticated("Malformed Authorization header: expected 'Bearer <key>'")
    return match.group(1)
