"""A webhook receiver for local development: point an endpoint at it while `make run` runs and watch the
events arrive, each checked as a receiver should check it.

    .venv/bin/python -m sms.dev.listen --secret whsec_... [--port 8787] [--answer 200]

It listens on 127.0.0.1 only, verifies each request's Standard Webhooks signature (the secret's, or
any of several during a rotation) and its timestamp (at most 5 minutes off, as the spec's libraries
allow), prints one JSON line per verified event, and answers `--answer` (e.g. 500 or 410, to watch
the gateway retry or disable the endpoint). A request that fails verification gets 401 and a line
on stderr. In your own application, use a Standard Webhooks library (`standardwebhooks` on PyPI and
its siblings): the tests check that it verifies these requests unchanged.
"""
from __future__ import annotations

import argparse
import hmac
import json
import sys
import time
from typing import Sequence

from aiohttp import web

from ..domain.webhook_signing import sign

TOLERANCE_SECONDS = 5 * 60


def verified(secrets: Sequence[str], headers, body: bytes, now: float | None = None) -> str | None:
    """Why the request is not one signed with one of `secrets` just now; None when it is."""
    msg_id, timestamp, signatures = (headers.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not (msg_id and timestamp and signatures):
        return "missing webhook-id, webhook-timestamp or webhook-signature"
    try:
        sent_at = int(timestamp)
    except ValueError:
        return "webhook-timestamp is not a number"
    if abs((time.time() if now is None else now) - sent_at) > TOLERANCE_SECONDS:
        return "webhook-timestamp is more than 5 minutes off"
    given = set(signatures.split())
    for secret in secrets:
        expected = sign([secret], msg_id, sent_at, body)["webhook-signature"]
        if any(hmac.compare_digest(expected, candidate) for candidate in given):
            return None
    return "no signature matches the secret"


def receiver(secrets: Sequence[str], answer: int = 200, out=sys.stdout, err=sys.stderr) -> web.Application:
    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        problem = verified(secrets, request.headers, body)
        if problem:
            print(f"refused {request.headers.get('webhook-id', '?')}: {problem}", file=err, flush=True)
            return web.Response(status=401, text=problem)
        print(json.dumps(json.loads(body), ensure_ascii=False), file=out, flush=True)
        return web.Response(status=answer, text="ok" if answer < 300 else f"answering {answer}")

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/{tail:.*}", hook)
    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sms.dev.listen", description=__doc__.split("\n\n")[0])
    parser.add_argument("--secret", action="append", required=True,
                        help="the endpoint's whsec_ secret (repeat it to accept a previous one too)")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--answer", type=int, default=200, help="the HTTP status to answer a verified event with")
    args = parser.parse_args(argv)
    print(f"Listening on http://127.0.0.1:{args.port}/ (add it with: {{\"url\": \"http://127.0.0.1:{args.port}/\"}})",
          file=sys.stderr, flush=True)
    web.run_app(receiver(args.secret, args.answer), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
