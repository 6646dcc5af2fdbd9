"""A webhook receiver on 127.0.0.1 for tests: it verifies every request with the `standardwebhooks`
package (the reference receiver, nothing of ours) and then answers as it is told.

`receiver.answer(...)` picks the answer: 200, 500, 429 with a Retry-After, 410, "hang" (no answer
until the test ends or calls `release()`, longer than any timeout under test) or "redirect" (302 to
/elsewhere, a path that records whoever follows it); `receiver.answer_first(n, ...)` gives an answer
to the next n requests only, before the standing one. A request that fails verification is answered
400 and recorded in `rejected`. Each verified request is kept with its raw body and headers (to
verify again with another secret, or compare a redelivery byte for byte) and the answer it got.

`ReceiverThread` runs receivers on an event loop of their own, for tests that are not async (the
end-to-end tests drive the dev host with blocking HTTP calls).
"""
from __future__ import annotations

import asyncio
import ssl
import threading
from collections import deque
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

from sms.domain.webhook_signing import new_secret


@dataclass
class Delivery:
    webhook_id: str
    payload: object
    host: str  # the Host header: the URL's host, even when the connection went to a checked address
    body: bytes = b""  # exactly as received
    headers: dict[str, str] = field(default_factory=dict)
    answered: int | str = 200  # the status the receiver answered, or "hang"


@dataclass(frozen=True)
class _Answer:
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    hang: bool = False
    body: str | None = None

    @classmethod
    def of(cls, how: int | str, retry_after: str | None, body: str | None) -> "_Answer":
        hang = how == "hang"
        headers = [("Location", "/elsewhere")] if how == "redirect" else []
        if retry_after is not None:
            headers.append(("Retry-After", retry_after))
        return cls(302 if how == "redirect" else (200 if hang else int(how)), tuple(headers), hang, body)


@dataclass
class WebhookReceiver:
    secret: str
    verified: list[Delivery] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # why verification failed, per request
    followed: list[str] = field(default_factory=list)  # requests that reached the redirect's target
    url: str = ""
    _standing: _Answer = field(default_factory=_Answer)
    _planned: deque[_Answer] = field(default_factory=deque)
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    def answer(self, how: int | str, *, retry_after: str | None = None, body: str | None = None) -> None:
        """200, 500, 429, 410, ... (with `retry_after` for a Retry-After header, `body` for the response's
        text), "hang" or "redirect", from now on."""
        self._standing = _Answer.of(how, retry_after, body)

    def answer_first(self, count: int, how: int | str, *, retry_after: str | None = None, body: str | None = None) -> None:
        """`how` for the next `count` requests (after any answers planned before), then the standing answer."""
        self._planned.extend([_Answer.of(how, retry_after, body)] * count)

    def release(self) -> None:
        """Let every hanging request answer (on the receiver's loop); later "hang"s no longer hang."""
        self._released.set()

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
        answer = self._planned.popleft() if self._planned else self._standing
        self.verified.append(Delivery(request.headers["webhook-id"], payload, request.headers.get("Host", ""), body,
                                      dict(request.headers), "hang" if answer.hang and not self._released.is_set() else answer.status))
        if answer.hang:
            await self._released.wait()
        status = answer.status
        return web.Response(status=status, headers=dict(answer.headers), text=answer.body or ("ok" if status < 300 else f"answer {status}"))

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


class ReceiverThread:
    """An event loop on a thread of its own, serving receivers for a test that is not async."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="webhook-receivers")
        self._thread.start()
        self._runners: list[tuple[WebhookReceiver, web.AppRunner]] = []

    def start(self, receiver: WebhookReceiver, ssl_context: ssl.SSLContext | None = None) -> WebhookReceiver:
        """Serves `receiver` on a free port of 127.0.0.1; sets and returns it with its url."""
        runner, port = asyncio.run_coroutine_threadsafe(serve(receiver, ssl_context), self._loop).result(30)
        receiver.url = f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}/hook"
        self._runners.append((receiver, runner))
        return receiver

    def release(self, receiver: WebhookReceiver) -> None:
        """`receiver.release()`, on the receivers' loop."""
        self._loop.call_soon_threadsafe(receiver.release)

    def stop(self) -> None:
        async def cleanup() -> None:
            for receiver, runner in self._runners:
                receiver.release()
                await runner.cleanup()

        try:
            asyncio.run_coroutine_threadsafe(cleanup(), self._loop).result(30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    def __enter__(self) -> "ReceiverThread":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
