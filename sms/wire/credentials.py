"""The API key from an Authorization header, sent the ways ServiceStack API-key clients send it."""
from __future__ import annotations

import base64
import binascii

from ..domain.errors import Unauthenticated

_HINT = "send 'Authorization: Bearer <key>' (or HTTP Basic with the key as the user name)"


def api_key_from(authorization: str | None) -> str:
    if not authorization or not authorization.strip():
        raise Unauthenticated(f"Missing API key: {_HINT}")
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials and " " not in credentials:
        return credentials
    if scheme.lower() == "basic" and credentials:
        try:
            user, _, _password = base64.b64decode(credentials, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):  # ValueError: credentials that are not ASCII
            raise Unauthenticated(f"Malformed Basic credentials: {_HINT}") from None
        if user:
            return user
    raise Unauthenticated(f"Malformed Authorization header: {_HINT}")
