"""A webhook receiver on 127.0.0.1 for tests: it verifies every request with the `standardwebhooks`
package (the reference receiver, nothing of ours) and then answers as it is told.

`receiver.answer(...)` picks the answer: 200, 500, 429 with a Retry-After, 410, "hang" (no answer
until the test ends, longer than any timeout under test) or "redirect" (302 to /elsewhere, a path
that records whoever follows it). A request that fails verification is answered 400 and recorded
in `rejected`.
"""
from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

from sms.webhooks.signing import new_secret


@dataclass
class Delivery:
    webhook_id: str
    payload: object
    host: str  # the Host header: the URL's host, even when the connection went to a checked address


@dataclass
class WebhookReceiver:
    secret: str
    verified: list[Delivery] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # why verification failed, per request
    followed: list[str] = field(default_factory=list)  # requests that reached the redirect's target
    url: str = ""
    _status: int = 200
    _headers: dict[str, str] = field(default_factory=dict)
    _hang: bool = False
    _body: str | None = None
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    def answer(self, how: int | str, *, retry_after: str | None = None, body: str | None = None) -> None:
        """200, 500, 429, 410, ... (with `retry_after` for a Retry-After header, `body` for the response's
        text), "hang" or "redirect"."""
        self._body = body
        self._hang = how == "hang"
        self._status = 302 if how == "redirect" else (200 if self._hang else int(how))
        self._headers = {"Location": "/elsewhere"} if how == "redirect" else {}
        if retry_after is not None:
            self._headers["Retry-After"] = retry_after

    @property
    def ids(self) -> list[str]:
        return [d.webhook_id for d in self.verified]

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            payload = Webhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError as exc:
            self.rejected.append(str(exc))
            return web.Response(status=400, text=f"verification failed: {exc}")
        self.verified.append(Delivery(request.headers["webhook-id"], payload, request.headers.get("Host", "")))
        if self._hang:
            await self._released.wait()
        return web.Response(status=self._status, headers=self._headers, text=self._body or ("ok" if self._status < 300 else f"answer {self._status}"))

    async def _elsewhere(self, request: web.Request) -> web.Response:
        self.followed.append(request.method)
        return web.Response(text="you followed a redirect")


async def serve(receiver: WebhookReceiver, ssl_context: ssl.SSLContext | None = None) -> tuple[web.AppRunner, int]:
    """Starts `receiver` on a free port of 127.0.0.1 (with TLS given a context); the caller cleans up the runner."""
    app = web.Application()
    app.router.add_post("/hook", receiver._hook)
    app.router.add_route("*", "/elsewhere", receiver._elsewhere)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - port 0 picked a free one


@pytest.fixture(name="webhook_receiver")
async def webhook_receiver_fixture():
    """A started receiver with a fresh secret; stopped (and any hanging request released) at the end."""
    receiver = WebhookReceiver(secret=new_secret())
    runner, port = await serve(receiver)
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        receiver._released.set()
        await runner.cleanup()
