"""The local receiver README points `make run` at (`python -m sms.webhooks.listen`): it takes what the
gateway's sender sends, signed, and refuses what is not."""
import io
import json
import socket
import subprocess
import sys
import time

from aiohttp import web

from sms.config import PROJECT_ROOT
from sms.dev.listen import receiver, verified
from sms.domain.webhook_attempts import Outcome
from sms.domain.webhook_signing import new_secret, sign
from sms.webhooks.sender import WebhookSender

BODY = json.dumps({"id": "evt_1", "type": "message.sent", "timestamp": "2026-11-25T00:00:00Z", "data": {"seq": 0}})


async def _serving(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"  # noqa: SLF001


async def test_it_prints_what_the_sender_sends_and_refuses_another_secret():
    secret, out, err = new_secret(), io.StringIO(), io.StringIO()
    runner, url = await _serving(receiver([secret], out=out, err=err))
    sender = WebhookSender(allow_private=True)
    try:
        ok = await sender.send(url, sign([secret], "evt_1", time.time(), BODY), BODY)
        forged = await sender.send(url, sign([new_secret()], "evt_2", time.time(), BODY), BODY)
    finally:
        await sender.close()
        await runner.cleanup()
    assert (ok.outcome, ok.status) == (Outcome.DELIVERED, 200)
    assert json.loads(out.getvalue()) == json.loads(BODY)
    assert (forged.outcome, forged.status) == (Outcome.REFUSED, 401)
    assert "refused evt_2: no signature matches the secret" in err.getvalue()


async def test_an_answer_other_than_200_lets_you_watch_the_gateway_retry():
    secret = new_secret()
    runner, url = await _serving(receiver([secret], answer=503, out=io.StringIO()))
    sender = WebhookSender(allow_private=True)
    try:
        attempt = await sender.send(url, sign([secret], "evt_1", time.time(), BODY), BODY)
    finally:
        await sender.close()
        await runner.cleanup()
    assert (attempt.outcome, attempt.status) == (Outcome.RETRY, 503)


def test_verification_takes_either_secret_of_a_rotation_and_refuses_old_or_missing_headers():
    old, new = new_secret(), new_secret()
    now = time.time()
    headers = sign([new, old], "evt_1", now, BODY)
    assert verified([old], headers, BODY.encode(), now) is None
    assert verified([new], headers, BODY.encode(), now) is None
    assert verified([old], headers, BODY.encode() + b" ", now) == "no signature matches the secret"
    assert verified([old], headers, BODY.encode(), now + 301) == "webhook-timestamp is more than 5 minutes off"
    assert verified([old], {}, BODY.encode(), now).startswith("missing")


def test_the_readme_command_listens_and_prints_each_event():
    secret = new_secret()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "sms.webhooks.listen", "--secret", secret, "--port", str(port)],
                               cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "Listening on http://127.0.0.1:" in process.stderr.readline()
        import urllib.request

        deadline = time.monotonic() + 20
        while True:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=BODY.encode(), method="POST",
                                             headers=sign([secret], "evt_1", time.time(), BODY))
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    assert response.status == 200
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert json.loads(process.stdout.readline()) == json.loads(BODY)
    finally:
        process.terminate()
        process.wait(timeout=10)
