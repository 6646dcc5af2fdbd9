"""Proxy settings: looked up once at start instead of on every storage call, still honoured."""
import contextlib
from typing import Callable

from aiohttp import web

from sms.bootstrap import build
from sms.config import Settings, proxy_lookup_options
from tests.unit.capture import sending_way


def test_without_a_proxy_in_the_environment_the_per_request_lookup_is_off(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert proxy_lookup_options() == {"use_env_settings": False}


@contextlib.asynccontextmanager
async def proxy_answering(monkeypatch, answer: Callable[[], web.Response]):
    """An HTTP proxy on 127.0.0.1 set in the environment (HTTP_PROXY) that answers every request with
    `answer()`; yields the requests it saw ("METHOD URL")."""
    seen: list[str] = []

    async def proxy(request: web.Request) -> web.Response:
        seen.append(f"{request.method} {request.url}")
        return answer()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{runner.addresses[0][1]}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        yield seen
    finally:
        await runner.cleanup()


async def test_a_proxy_in_the_environment_still_carries_storage_calls(monkeypatch, emulator):
    def not_found() -> web.Response:
        return web.json_response({"odata.error": {"code": "ResourceNotFound", "message": {"value": "by the proxy"}}},
                                 status=404, headers={"x-ms-error-code": "ResourceNotFound"})

    async with proxy_answering(monkeypatch, not_found) as seen:
        assert proxy_lookup_options() == {}
        gateway = build(Settings.from_env({"AzureWebJobsStorage": emulator.connection_string}))
        try:
            assert await gateway.keys.get("0" * 16) is None  # the proxy's answer: not found
        finally:
            await gateway.close()
    assert seen and all(f":{emulator.table_port}/devstoreaccount1/SmsApiKeys" in line for line in seen)


async def test_a_proxy_in_the_environment_carries_the_hot_paths_calls_too(monkeypatch, emulator):
    """The job put and the commit transaction go over the hot path's own session (SMS_STORAGE_REQUESTS=lean):
    it honours a proxy set in the environment as the SDK clients do."""
    from azure.core.exceptions import HttpResponseError

    from sms.domain.model import SendJob

    def no_queue() -> web.Response:
        return web.Response(status=404, headers={"x-ms-error-code": "QueueNotFound"}, text="by the proxy")

    async with proxy_answering(monkeypatch, no_queue) as seen:
        gateway = build(Settings.from_env({"AzureWebJobsStorage": emulator.connection_string, "SMS_STORAGE_REQUESTS": "lean"}))
        try:
            assert sending_way(gateway.jobs._puts) == "lean"
            try:
                await gateway.jobs.put(SendJob(comm_id="a" * 32, first=0, last=0))
            except HttpResponseError as exc:
                assert exc.status_code == 404
            else:
                raise AssertionError("the put did not go through the proxy")
        finally:
            await gateway.close()
    assert [line.split(" ", 1)[0] for line in seen] == ["POST"] and "/sms-send/messages" in seen[0]
