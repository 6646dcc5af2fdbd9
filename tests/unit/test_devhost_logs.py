"""The dev host's logs hold no API key secret and no full phone number, even from requests its HTTP
parser refuses (issue 23, item 12): aiohttp logs "Error handling request" with the exception, and
the exception quotes the raw request line or header it could not read. The dev host is served
in-process (sms.devhost.serve, as `python -m sms.devhost` serves it) on a free loopback port, and
spoken to over a raw socket, since no HTTP client sends such bytes."""
import asyncio
import base64
import contextlib
import logging

import azure.functions as func
import pytest

from sms.dev.host import serve
from tests.unit.test_no_server_errors import PLANTED_DIGITS, leaked

KEY = "sms_abcdef0123456789.SECRETSECRETSECRETSECRETSECRETSECRETSECRETx"
SECRET = KEY.split(".", 1)[1]
PHONE = "+" + PLANTED_DIGITS


def _app() -> func.FunctionApp:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.function_name("explode")
    @app.route(route="explode", methods=["POST"])
    async def explode(req: func.HttpRequest) -> func.HttpResponse:
        raise RuntimeError(f"could not send to {PHONE} with {req.headers.get('authorization')}")

    @app.function_name("hello")
    @app.route(route="hello", methods=["GET"])
    async def hello(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("hello")

    return app


@pytest.fixture
async def devhost(capsys):
    stop, ready = asyncio.Event(), asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(_app(), "127.0.0.1", 0, stop=stop, on_ready=ready.set_result))
    port = await asyncio.wait_for(ready, 30)
    capsys.readouterr()  # the function list it prints
    yield port
    stop.set()
    await asyncio.wait_for(task, 30)


async def exchange(port: int, raw: bytes) -> bytes:
    """Send `raw` as is and read the whole answer (the host closes the connection after a refusal)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def written(caplog) -> str:
    """Every record as a handler writes it: the message, and the traceback of any exc_info."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(record) for record in caplog.records)


BASIC = base64.b64encode(f"{KEY}:".encode()).decode()
REFUSED = {
    "a NUL in the Authorization header": f"POST /hello HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\x00{PHONE}\r\n"
                                         f"Content-Length: 0\r\n\r\n",
    "a NUL in Basic credentials": f"GET /hello HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {BASIC}\x00\r\n\r\n",
    "an overlong request line": f"GET /hello?phoneNumber={PHONE}&key={KEY}&pad={'a' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n",
    "an overlong header": f"GET /hello HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY} {PHONE}{' ' * 9000}x\r\n\r\n",
    "a control character in the path": f"GET /api/{PHONE}\x01{KEY} HTTP/1.1\r\nHost: x\r\n\r\n",
    "a header name that is not a token": f"GET /hello HTTP/1.1\r\nHost: x\r\nX-{PHONE} {KEY}: v\r\n\r\n",
    "a Content-Length that is not a number": f"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: {PHONE}{KEY}\r\n\r\n",
    "a bad version": f"GET /api/{PHONE}/{KEY} HTTP/9.Z\r\nHost: x\r\n\r\n",
}


@pytest.mark.parametrize("raw", REFUSED.values(), ids=REFUSED.keys())
async def test_a_request_the_parser_refuses_is_a_400_logged_without_the_key_secret_or_the_number(devhost, caplog, raw):
    caplog.set_level(logging.DEBUG)
    answer = await exchange(devhost, raw.encode())
    assert answer.startswith(b"HTTP/1.") and answer.split(b" ", 2)[1] == b"400", answer[:200]
    await asyncio.sleep(0.05)  # the refusal is logged as its answer is written
    logged = written(caplog)
    assert "Error handling request" in logged  # it is logged, and says what was wrong
    assert SECRET[:12] not in logged and BASIC[24:48] not in logged
    assert not leaked(logged), logged


async def test_a_function_that_raises_is_logged_without_the_key_secret_or_the_number(devhost, caplog):
    caplog.set_level(logging.DEBUG)
    answer = await exchange(devhost, f"POST /explode HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
                                     f"Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
    assert answer.split(b" ", 2)[1] == b"500"
    logged = written(caplog)
    assert "function explode failed" in logged and "RuntimeError" in logged
    assert SECRET[:12] not in logged and not leaked(logged), logged


def test_the_log_level_in_local_settings_json_is_the_one_used(monkeypatch, tmp_path):
    """README: locally, settings come from the environment, then local.settings.json; SMS_LOG_LEVEL is one of them
    (issue 25). Both `python -m sms.devhost` and `make run` configured logging before reading the file."""
    from sms.dev import localrun
    from sms.dev.host import host

    monkeypatch.delenv("SMS_LOG_LEVEL", raising=False)
    levels: list[str] = []
    monkeypatch.setattr(logging, "basicConfig", lambda **options: levels.append(options["level"]))

    def load_local_settings():  # what local.settings.json would set
        monkeypatch.setenv("SMS_LOG_LEVEL", "warning")

    monkeypatch.setattr(host, "load_local_settings", load_local_settings)
    monkeypatch.setattr(host, "load_app", lambda spec: None)
    monkeypatch.setattr(host, "app_cleanup", lambda spec: None)
    monkeypatch.setattr(host, "serve", lambda *args, **kwargs: asyncio.sleep(0))
    host.main(["--port", "0"])

    class Started(Exception):
        pass

    def start_local_storage(connection):  # where make run would start Azurite, this one stops
        raise Started

    monkeypatch.delenv("SMS_LOG_LEVEL")
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    monkeypatch.setattr(localrun, "PROJECT_ROOT", tmp_path)  # it copies the example settings file there, not into the project
    (tmp_path / "local.settings.example.json").write_text('{"Values": {}}')
    monkeypatch.setattr(localrun, "load_local_settings", load_local_settings)
    monkeypatch.setattr(localrun, "port_in_use", lambda host, port: False)
    monkeypatch.setattr(localrun, "start_local_storage", start_local_storage)
    with pytest.raises(Started):
        localrun.main(["--port", "0"])
    assert levels == ["WARNING", "WARNING"]
