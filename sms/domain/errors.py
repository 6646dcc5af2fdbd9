"""What can go wrong, in the service's terms; the wire layer maps each to HTTP."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldError:
    field_name: str  # the DTO path, e.g. "SMSModel.To[1].PhoneNumber"
    error_code: str
    message: str


@dataclass
class GatewayError(Exception):
    message: str
    error_code: str = "Error"
    field_errors: list[FieldError] = field(default_factory=list)
    # In an auto-batch: how many items were done before this error, and which item it is about
    # (ServiceStack's X-AutoBatch-Completed header and ResponseStatus.Meta["AutoBatchIndex"]).
    batch_completed: int | None = None
    batch_index: int | None = None

    def __str__(self) -> str:
        return self.message


class ValidationFailed(GatewayError):
    """The request is malformed or breaks a rule; nothing was changed."""

    def __init__(self, field_errors: list[FieldError], message: str | None = None, batch_completed: int | None = None):
        super().__init__(message or field_errors[0].message, "ValidationException", list(field_errors), batch_completed)


class Unauthenticated(GatewayError):
    def __init__(self, message: str):
        super().__init__(message, "Unauthorized")


class Forbidden(GatewayError):
    def __init__(self, message: str, error_code: str = "Forbidden"):
        super().__init__(message, error_code)


class NotFound(GatewayError):
    def __init__(self, message: str):
        super().__init__(message, "NotFound")


class MethodNotAllowed(GatewayError):
    def __init__(self, method: str, allowed: str):
        super().__init__(f"{method} is not allowed here; use {allowed}", "MethodNotAllowed")
        self.allowed = allowed


class PayloadTooLarge(GatewayError):
    def __init__(self, size: int, limit: int):
        super().__init__(f"The request body is {size} bytes; the limit is {limit}", "RequestEntityTooLarge")


class UnsupportedMediaType(GatewayError):
    def __init__(self, media_type: str):
        super().__init__(
            f"Content-Type '{media_type}' is not supported: send application/json, text/jsv, "
            "application/x-www-form-urlencoded or multipart/form-data",
            "UnsupportedMediaType",
        )


class TooManyRequests(GatewayError):
    def __init__(self, message: str, retry_after_seconds: int):
        super().__init__(message, "TooManyRequests")
        self.retry_after_seconds = retry_after_seconds


class Conflict(GatewayError):
    """The request meets a state it cannot go on from: an idempotency key in use by a request that has
    not finished, a stored record this version cannot read."""

    def __init__(self, message: str):
        super().__init__(message, "Conflict")


class StillChanging(Conflict):
    """A write kept losing races to other writers of the same rows (a cancel of recipients a dispatch
    is claiming as it goes): what it had not written is unchanged, and the same request again is safe."""

    def __init__(self, message: str, retry_after_seconds: int = 1):
        GatewayError.__init__(self, message, "Conflict")
        self.retry_after_seconds = retry_after_seconds


class LimitReached(Conflict):
    """The licensee already has as many of something as it may (webhook endpoints): remove one first."""

    def __init__(self, message: str):
        GatewayError.__init__(self, message, "LimitExceeded")


class KeyReused(GatewayError):
    """An idempotency key came back with a different request."""

    def __init__(self, message: str):
        super().__init__(message, "IdempotencyKeyReused")


class PreconditionFailed(GatewayError):
    def __init__(self, message: str):
        super().__init__(message, "PreconditionFailed")


class AlreadyExists(Exception):
    """A create found its row already there."""


class StorageUnavailable(GatewayError):
    """Table or queue storage could not be reached or refused the request."""

    def __init__(self, message: str = "Storage is unavailable; try again shortly"):
        super().__init__(message, "ServiceUnavailable")


class RecordChanged(Exception):
    """An ETag-checked write lost a race: someone else changed the record first."""
