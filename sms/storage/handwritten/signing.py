"""What authorizes a hand-written request, as the SDK pipelines' credential policies add it: SharedKey for
Queue and for Table (two different strings to sign), a SAS in the URL, or an Entra ID bearer token.
tests/unit/test_hot_path.py computes each Authorization header here and with the SDK's own policy."""
from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import unquote, urlsplit

from azure.core.exceptions import ServiceRequestError

# The scope both storage SDKs ask Entra ID for (azure-storage-queue's and azure-data-tables' STORAGE_OAUTH_SCOPE).
STORAGE_SCOPE = "https://storage.azure.com/.default"
# azure-core's BearerTokenCredentialPolicy asks for a new token 5 minutes before the old one expires.
TOKEN_REFRESH_SECONDS = 300


class Signer:
    async def sign(self, method: str, url: str, headers: dict[str, str]) -> str:
        """Adds what authorizes the request to `headers`; returns the URL to send to."""
        raise NotImplementedError


class NoSignature(Signer):
    async def sign(self, method, url, headers):
        return url


@dataclass(frozen=True)
class SasInUrl(Signer):
    """A SAS credential appended to the URL, as azure-core's AzureSasCredentialPolicy appends it."""
    signature: str

    async def sign(self, method, url, headers):
        signature = self.signature[1:] if self.signature.startswith("?") else self.signature
        if "?" in url:
            return url if signature in url else url + ("" if url.endswith("?") else "&") + signature
        return f"{url}?{signature}"


def _query(query: str) -> dict[str, str]:
    """The query's parameters as azure-core's HttpRequest.query reads them (values still percent-encoded)."""
    return {name: value for name, _, value in (part.partition("=") for part in query.split("&"))} if query else {}


# The canonicalized resource depends on the URL alone, and the hot path sends to a handful of URLs.
@functools.lru_cache(maxsize=256)
def _queue_resource(account: str, url: str) -> str:
    """/account/path, then each query parameter on its own line, sorted (Blob, Queue and File services)."""
    parts = urlsplit(url)
    query = "".join(f"\n{name.lower()}:{unquote(value)}" for name, value in sorted(_query(parts.query).items()))
    return f"/{account}{parts.path}{query}"


@functools.lru_cache(maxsize=256)
def _table_resource(account: str, url: str) -> str:
    """/account/path, with only the query's `comp` (Table service)."""
    parts = urlsplit(url)
    query = _query(parts.query)
    return f"/{account}{parts.path}" + (f"?comp={query['comp']}" if "comp" in query else "")


def _keyed(key: str) -> "hmac.HMAC":
    """The account key's HMAC-SHA256, keyed once: each signature copies it (1 us) instead of keying a new
    one (3 us)."""
    return hmac.new(base64.b64decode(key), digestmod=hashlib.sha256)


def _signature(keyed: "hmac.HMAC", string_to_sign: str) -> str:
    mac = keyed.copy()
    mac.update(string_to_sign.encode("utf-8"))
    return base64.b64encode(mac.digest()).decode()


class QueueSharedKey(Signer):
    """Shared Key for the Blob, Queue and File services ("Authorize with Shared Key",
    https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key): the verb, eleven
    standard headers (Content-Length empty when 0), the x-ms- headers lowercased and sorted, the
    canonicalized resource, then each query parameter on its own line, sorted. As azure-storage-queue's
    SharedKeyCredentialPolicy builds it."""

    _STANDARD = ("content-encoding", "content-language", "content-length", "content-md5", "content-type", "date",
                 "if-modified-since", "if-match", "if-none-match", "if-unmodified-since", "range")

    def __init__(self, account: str, key: str):
        self.account, self._key = account, _keyed(key)

    def string_to_sign(self, method: str, url: str, headers: Mapping[str, str]) -> str:
        lowered = {name.lower(): value for name, value in headers.items() if value}
        if lowered.get("content-length") == "0":
            del lowered["content-length"]
        standard = "\n".join([lowered.get(name, "") for name in self._STANDARD])
        # The x-ms- headers we send are ASCII letters, digits and '-', on which the SDK's collation is
        # plain ordering.
        canonical_headers = "".join([f"{name}:{lowered[name]}\n" for name in sorted(n for n in lowered if n.startswith("x-ms-"))])
        return f"{method}\n{standard}\n{canonical_headers}{_queue_resource(self.account, url)}"

    async def sign(self, method, url, headers):
        headers["Authorization"] = f"SharedKey {self.account}:{_signature(self._key, self.string_to_sign(method, url, headers))}"
        return url


class TableSharedKey(Signer):
    """Shared Key for the Table service (same page): the verb, Content-MD5, Content-Type, the date
    (x-ms-date) and the canonicalized resource, with only `comp` of the query. As azure-data-tables'
    SharedKeyCredentialPolicy builds it."""

    def __init__(self, account: str, key: str):
        self.account, self._key = account, _keyed(key)

    def string_to_sign(self, method: str, url: str, headers: Mapping[str, str]) -> str:
        lowered = {name.lower(): value for name, value in headers.items() if value}
        return (f"{method}\n{lowered.get('content-md5', '')}\n{lowered.get('content-type', '')}\n"
                f"{lowered.get('x-ms-date', '')}\n{_table_resource(self.account, url)}")

    async def sign(self, method, url, headers):
        headers["Authorization"] = f"SharedKey {self.account}:{_signature(self._key, self.string_to_sign(method, url, headers))}"
        return url


class BearerToken(Signer):
    """An Entra ID token from the app's AsyncTokenCredential, for the storage scope. One token serves
    every request until 5 minutes before it expires (or its refresh_on); then one caller refreshes it
    while the others wait for it, as azure-core's BearerTokenCredentialPolicy does."""

    def __init__(self, credential: Any, clock: Callable[[], float] = time.time):
        self._credential, self._clock = credential, clock
        self._token: Any = None
        self._refreshing = asyncio.Lock()

    def _stale(self) -> bool:
        token = self._token
        if token is None:
            return True
        now = self._clock()
        refresh_on = getattr(token, "refresh_on", None)
        return now >= token.expires_on - TOKEN_REFRESH_SECONDS or (refresh_on is not None and now >= refresh_on)

    async def sign(self, method, url, headers):
        if not url.lower().startswith("https"):
            raise ServiceRequestError("Bearer token authentication is not permitted for non-TLS protected (non-https) URLs.")
        if self._stale():
            async with self._refreshing:
                if self._stale():
                    self._token = await self._credential.get_token(STORAGE_SCOPE)
        headers["Authorization"] = f"Bearer {self._token.token}"
        return url


def signer_for_queue(credential: Any) -> Signer:
    """What signs as an aio QueueClient with this credential would."""
    if _has(credential, "get_token"):
        return BearerToken(credential)
    if _has(credential, "account_key"):  # the queue SDK keeps the key as its SharedKey policy
        return QueueSharedKey(credential.account_name, credential.account_key)
    if credential is None:  # a SAS: it is in the client's url, which the request's URL is made from
        return NoSignature()
    raise TypeError(f"the hot path cannot sign with a {type(credential).__name__}")


def signer_for_table(credential: Any) -> Signer:
    """What signs as an aio TableClient with this credential would."""
    if _has(credential, "get_token"):
        return BearerToken(credential)
    if _has(credential, "named_key"):
        return TableSharedKey(credential.named_key.name, credential.named_key.key)
    if _has(credential, "signature"):  # a SAS from a connection string: the SDK appends it to every URL
        return SasInUrl(credential.signature)
    if credential is None:
        return NoSignature()
    raise TypeError(f"the hot path cannot sign with a {type(credential).__name__}")


def _has(obj: Any, attribute: str) -> bool:
    return obj is not None and hasattr(obj, attribute)
