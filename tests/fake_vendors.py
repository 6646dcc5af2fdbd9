"""Local fakes of the SMS vendors' REST APIs, on 127.0.0.1, that check what the real SDKs send.

Each fake verifies authentication the way the vendor does (ACS: HMAC-SHA256 over method, path,
date, host and body hash; Twilio: HTTP Basic with the account SID and auth token), records every
request, and answers from a script: success, partial failure, 400, 429 with Retry-After, 500, or
a hang longer than the client's timeout.
"""
from __future__ import annotations

import asyncio
import base64
import datetime
import email.utils
import hashlib
import hmac
import ipaddress
import json
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hang_seconds: float = 0.0


class FakeVendor:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[Reply] = []  # next replies, in order; empty means success
        self.down: Reply | None = None  # while set, every request gets this answer (a provider refusing everything)
        self.latency = 0.0  # seconds every answer takes, like a real provider's
        self.arrivals: list[float] = []  # loop time each authenticated request arrived
        self.auth_failures = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> "FakeVendor":
        app = web.Application()
        app.router.add_route("*", r"/{tail:[\s\S]*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        problem = self.check_auth(request, body)
        if problem:
            self.auth_failures += 1
            return web.json_response({"error": problem}, status=401)
        self.arrivals.append(asyncio.get_running_loop().time())
        record = self.record(request, body)
        self.requests.append(record)
        if self.latency:
            await asyncio.sleep(self.latency)
        reply = self.down or (self.script.pop(0) if self.script else self.success(record))
        if reply.hang_seconds:
            await asyncio.sleep(reply.hang_seconds)
        return web.json_response(reply.body, status=reply.status, headers=reply.headers)

    def check_auth(self, request: web.Request, body: bytes) -> str | None:
        raise NotImplementedError

    def record(self, request: web.Request, body: bytes) -> dict[str, Any]:
        raise NotImplementedError

    def success(self, record: dict[str, Any]) -> Reply:
        raise NotImplementedError


# -- Azure Communication Services -------------------------------------------------------------


class FakeAcs(FakeVendor):
    ACCESS_KEY = base64.b64encode(b"fake-acs-access-key-for-tests").decode()

    # How long the fake tracks a repeatable request, as ACS documents for its repeatable requests.
    TRACKED = datetime.timedelta(minutes=5)

    def __init__(self, cert: "SelfSignedCert") -> None:
        super().__init__()
        self.cert = cert
        self.tracked: dict[str, tuple[str, dict]] = {}  # repeatability id -> (first sent, the answer it got)
        self.executed: list[str] = []  # each recipient number ACS actually sent to: repeats are not sent again

    async def start(self, ssl_context=None) -> "FakeAcs":
        return await super().start(self.cert.server_context())

    @property
    def connection_string(self) -> str:
        return f"endpoint=https://127.0.0.1:{self.port}/;accesskey={self.ACCESS_KEY}"

    def check_auth(self, request: web.Request, body: bytes) -> str | None:
        content_hash = base64.b64encode(hashlib.sha256(body).digest()).decode()
        if request.headers.get("x-ms-content-sha256") != content_hash:
            return "body hash mismatch"
        path_and_query = request.rel_url.raw_path + (f"?{request.rel_url.raw_query_string}" if request.rel_url.raw_query_string else "")
        to_sign = f"{request.method}\n{path_and_query}\n{request.headers.get('x-ms-date')};{request.host};{content_hash}"
        expected = base64.b64encode(hmac.new(base64.b64decode(self.ACCESS_KEY), to_sign.encode(), hashlib.sha256).digest()).decode()
        if request.headers.get("Authorization") != f"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={expected}":
            return "bad HMAC signature"
        return None

    def record(self, request: web.Request, body: bytes) -> dict[str, Any]:
        return {"path": request.path, "query": dict(request.query), "json": json.loads(body) if body else None}

    def success(self, record: dict[str, Any]) -> Reply:
        if record["json"] is None:  # not a send: ACS answers other paths with 404
            return Reply(404, {"error": {"code": "NotFound", "message": "Not found"}})
        results = []
        for i, r in enumerate(record["json"]["smsRecipients"]):
            request_id, first_sent = r.get("repeatabilityRequestId"), r.get("repeatabilityFirstSent")
            if request_id and first_sent:
                sent_at = email.utils.parsedate_to_datetime(first_sent)
                if datetime.datetime.now(datetime.timezone.utc) - sent_at > self.TRACKED:
                    return Reply(412, {"error": {"code": "PreconditionFailed",
                                                 "message": "Repeatability first sent header is not within 5 minutes window"}})
                if request_id in self.tracked and self.tracked[request_id][0] == first_sent:
                    results.append(self.tracked[request_id][1])  # a repeat: the first answer, nothing sent again
                    continue
            result = {"to": r["to"], "messageId": f"Outgoing_{len(self.requests)}_{i}", "httpStatusCode": 202, "successful": True,
                      "repeatabilityResult": "accepted"}
            self.executed.append(r["to"])
            if request_id and first_sent:
                self.tracked[request_id] = (first_sent, result)
            results.append(result)
        return Reply(202, {"value": results})

    @staticmethod
    def recipient_failure(to: str, status: int, message: str) -> Reply:
        return Reply(202, {"value": [{"to": to, "httpStatusCode": status, "successful": False, "errorMessage": message}]})

    @staticmethod
    def error(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
        return Reply(status, {"error": {"code": str(status), "message": message}}, headers or {})


# -- Twilio ------------------------------------------------------------------------------------


class FakeTwilio(FakeVendor):
    ACCOUNT_SID = "AC" + "1" * 32
    AUTH_TOKEN = "fake-twilio-auth-token"

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []  # what Twilio keeps of each SMS it took, oldest first

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def check_auth(self, request: web.Request, body: bytes) -> str | None:
        expected = "Basic " + base64.b64encode(f"{self.ACCOUNT_SID}:{self.AUTH_TOKEN}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return "bad basic auth"
        if request.path not in (f"/2010-04-01/Accounts/{self.ACCOUNT_SID}/Messages.json", f"/2010-04-01/Accounts/{self.ACCOUNT_SID}.json"):
            return f"unexpected path {request.path}"
        return None

    def record(self, request: web.Request, body: bytes) -> dict[str, Any]:
        return {"path": request.path, "method": request.method, "form": dict(parse_qsl(body.decode())), "query": dict(request.query)}

    def success(self, record: dict[str, Any]) -> Reply:
        if record["path"].endswith(f"{self.ACCOUNT_SID}.json"):  # fetching the account: the health check
            return Reply(200, {"sid": self.ACCOUNT_SID, "status": "active", "friendly_name": "Fake"})
        if record["method"] == "GET":  # reading the Messages list: newest first, filtered by To and From
            query = record["query"]
            found = [m for m in reversed(self.messages)
                     if m["to"] == query.get("To", m["to"]) and m["from"] == query.get("From", m["from"])]
            size = int(query.get("PageSize", 50))
            return Reply(200, {"messages": found[:size], "end": min(size, len(found)) - 1, "page": 0, "page_size": size,
                               "start": 0, "next_page_uri": None, "previous_page_uri": None,
                               "uri": record["path"], "first_page_uri": record["path"]})
        form = record["form"]
        message = {"sid": f"SM{len(self.requests):032x}", "status": "queued", "to": form.get("To"),
                   "from": form.get("From") or "+61400000009", "body": form.get("Body"), "direction": "outbound-api",
                   "date_created": email.utils.format_datetime(datetime.datetime.now(datetime.timezone.utc), usegmt=True),
                   "error_code": None, "error_message": None, "account_sid": self.ACCOUNT_SID}
        self.messages.append(message)
        return Reply(201, message)

    def took(self, to: str, body: str, minutes_ago: float = 0, status: str = "queued", sender: str = "+61400000000") -> None:
        """Something Twilio already has: an SMS sent earlier, by us or by anyone using the account."""
        at = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=minutes_ago)
        self.messages.append({"sid": f"SMold{len(self.messages):029x}", "status": status, "to": to, "from": sender, "body": body,
                              "direction": "outbound-api", "date_created": email.utils.format_datetime(at, usegmt=True),
                              "error_code": 30007 if status == "failed" else None, "error_message": None,
                              "account_sid": self.ACCOUNT_SID})

    @staticmethod
    def error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> Reply:
        return Reply(status, {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                              "status": status}, headers or {})


# -- TLS for the ACS fake (the SDK only speaks https) ---------------------------------------------------


@dataclass
class SelfSignedCert:
    cert_path: Path
    key_path: Path

    @classmethod
    def create(cls, folder: Path) -> "SelfSignedCert":
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        cert_path, key_path = folder / "fake-vendor.crt", folder / "fake-vendor.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        return cls(cert_path, key_path)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context
