"""Proxy settings: looked up once at start instead of on every storage call, still honoured."""
from aiohttp import web

from sms.bootstrap import build
from sms.config import Settings, proxy_lookup_options


def test_without_a_proxy_in_the_environment_the_per_request_lookup_is_off(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert proxy_lookup_options() == {"use_env_settings": False}


async def test_a_proxy_in_the_environment_still_carries_storage_calls(monkeypatch, emulator):
    seen: list[str] = []

    async def proxy(request: web.Request) -> web.Response:
        seen.append(str(request.url))
        return web.json_response({"odata.error": {"code": "ResourceNotFound", "message": {"value": "by the proxy"}}},
                                 status=404, headers={"x-ms-error-code": "ResourceNotFound"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        assert proxy_lookup_options() == {}
        gateway = build(Settings.from_env({"AzureWebJobsStorage": emulator.connection_string}))
        try:
            assert await gateway.keys.get("0" * 16) is None  # the proxy's answer: not found
        finally:
            await gateway.close()
    finally:
        await runner.cleanup()
    assert seen and all(f":{emulator.table_port}/devstoreaccount1/SmsApiKeys" in url for url in seen)
