"""The ServiceStack wire contract: DTOs, the JSON and JSV codecs, content negotiation, errors."""
from .credentials import api_key_from
from .dto import (
    CommResponse,
    ErrorResponse,
    MessageState,
    RecipientState,
    RepliesResponse,
    ReplyState,
    SMSContact,
    SMSModel,
    SMSSend,
    parse_guid,
)
from .formats import Format, encode, error_body, error_headers, error_status, read_body, response_format, to_dto, to_dtos

__all__ = [
    "CommResponse", "ErrorResponse", "Format", "MessageState", "RecipientState", "RepliesResponse", "ReplyState",
    "SMSContact", "SMSModel", "SMSSend",
    "api_key_from", "encode", "error_body", "error_headers", "error_status", "parse_guid", "read_body",
    "response_format", "to_dto", "to_dtos",
]
