"""The bare floor: the least an HTTP gateway on Azure Storage does per accepted one-recipient request,
in its own process, so `make bench` can set the dev host's CPU per request beside it.

Per POST it reads the JSON body and makes the gateway's storage calls, in one of two modes by path:
- the two-call floor (any path but /one/...): one queue put (the job, ids only) and one entity-group
  transaction inserting two entities (the recipient row and the message row), as today's accept does;
- the one-put floor (/one/...): the one queue put of issue 30's one-call accept alone, its body the
  whole message shaped and sized as the gateway's version-2 job (sms/domain/jobs.py), never expiring.
Both are signed here with the account key and sent over one long-lived aiohttp ClientSession. It has
no SDK, no validation, no caller authentication and no retries: what is left is aiohttp's server and
client, the signatures and the request bodies, the part no gateway design can remove.

Signing follows Microsoft's "Authorize with Shared Key"
(https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key): the Shared Key
scheme for the Queue service (the verb, eleven standard headers, the canonicalized x-ms- headers and
the canonicalized resource), and the Shared Key scheme for the Table service (the verb, Content-MD5,
Content-Type, the date and the canonicalized resource), which is also what azure-data-tables sends.

    AzureWebJobsStorage=<connection string> python -m bench.bare_floor [--queue Q] [--table T]

It listens on a free loopback port and prints it; SIGTERM stops it. `spawned()` runs it as a child.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import formatdate
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from sms.dev import children  # only to run it as a child: the floor's own path uses nothing of the gateway's

QUEUE = "bench-bare"
TABLE = "BenchBare"
QUEUE_VERSION = "2026-10-06"  # the x-ms-version azure-storage-queue sends, and
TABLE_VERSION = "2019-02-02"  # azure-data-tables'
LICENSEE = "be" * 16
ONE_PUT = "/one"  # the path prefix of the one-put floor; any other path is the two-call floor
ROOT = Path(__file__).resolve().parent.parent
_LISTENING = re.compile(r"Bare floor listening on http://127\.0\.0\.1:(\d+)")


@dataclass(frozen=True)
class Account:
    name: str
    key: bytes
    queue_endpoint: str
    table_endpoint: str

    @classmethod
    def parse(cls, connection: str) -> "Account":
        parts = dict(p.split("=", 1) for p in connection.split(";") if "=" in p)
        name = parts["AccountName"]
        protocol, suffix = parts.get("DefaultEndpointsProtocol", "https"), parts.get("EndpointSuffix", "core.windows.net")
        return cls(
            name, base64.b64decode(parts["AccountKey"]),
            parts.get("QueueEndpoint", f"{protocol}://{name}.queue.{suffix}").rstrip("/"),
            parts.get("TableEndpoint", f"{protocol}://{name}.table.{suffix}").rstrip("/"),
        )

    def sign(self, string_to_sign: str) -> str:
        digest = hmac.new(self.key, string_to_sign.encode(), hashlib.sha256).digest()
        return f"SharedKey {self.name}:{base64.b64encode(digest).decode()}"

    def resource(self, url: str) -> str:
        """The canonicalized resource of a URL without query parameters: /account/path. On the
        emulator's path-style URLs the path starts with the account name, so it appears twice."""
        return f"/{self.name}{urlsplit(url).path}"


class BareFloor:
    """The two storage calls, written and signed by hand."""

    def __init__(self, account: Account, session: aiohttp.ClientSession, queue: str, table: str):
        self._account, self._session = account, session
        self._messages_url = f"{account.queue_endpoint}/{queue}/messages"
        self._messages_resource = account.resource(self._messages_url)
        self._table_url = f"{account.table_endpoint}/{table}"
        self._batch_url = f"{account.table_endpoint}/$batch"
        self._batch_resource = account.resource(self._batch_url)

    async def put_job(self, comm_id: str) -> None:
        """The two-call accept's job: ids only."""
        await self._put(json.dumps({"commId": comm_id, "first": 0, "last": 0}, separators=(",", ":")))

    async def put_whole(self, comm_id: str, phone_number: str, name: str | None, text: str) -> None:
        """The one-call accept's job: the whole message, with the fields and the size of the gateway's version-2
        job for a one-recipient message with no options (sms/domain/jobs.py, WholeJob.text), and put as the
        gateway puts it, never expiring (messagettl=-1)."""
        at = int(datetime.now(timezone.utc).timestamp() * 1000)
        whole = {"v": 2, "commId": comm_id, "licenseeId": LICENSEE, "at": at, "body": text, "enc": "GSM-7", "seg": 1,
                 "from": [None, None, None], "to": [[uuid.uuid4().hex, phone_number, name, None]]}
        await self._put(json.dumps(whole, separators=(",", ":"), ensure_ascii=False), never_expires=True)

    async def _put(self, job: str, never_expires: bool = False) -> None:
        body = ("<?xml version='1.0' encoding='utf-8'?>\n<QueueMessage><MessageText>"
                f"{base64.b64encode(job.encode()).decode()}</MessageText></QueueMessage>").encode()
        date = formatdate(usegmt=True)
        # VERB, Content-Encoding, -Language, -Length, -MD5, -Type, Date, If-Modified-Since, If-Match,
        # If-None-Match, If-Unmodified-Since, Range; then the x-ms- headers, sorted; then the resource,
        # and each query parameter on a line of its own as "name:value".
        resource, url = self._messages_resource, self._messages_url
        if never_expires:
            resource, url = f"{resource}\nmessagettl:-1", f"{url}?messagettl=-1"
        signed = (f"POST\n\n\n{len(body)}\n\napplication/xml\n\n\n\n\n\n\n"
                  f"x-ms-date:{date}\nx-ms-version:{QUEUE_VERSION}\n{resource}")
        headers = {"Content-Type": "application/xml", "x-ms-date": date, "x-ms-version": QUEUE_VERSION,
                   "Authorization": self._account.sign(signed)}
        async with self._session.post(url, data=body, headers=headers) as response:
            answer = await response.read()
            if response.status != 201:
                raise StorageRefused(f"queue put: {response.status} {answer[:300]!r}")

    async def insert_rows(self, comm_id: str, phone_number: str, name: str | None, text: str) -> None:
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        recipient = {"PartitionKey": comm_id, "RowKey": "r000000", "RecipientId": uuid.uuid4().hex,
                     "PhoneNumber": phone_number, "Name": name, "Status": "queued", "Attempts": 0,
                     "CreatedAt": now, "CreatedAt@odata.type": "Edm.DateTime",
                     "UpdatedAt": now, "UpdatedAt@odata.type": "Edm.DateTime"}
        message = {"PartitionKey": comm_id, "RowKey": "message", "LicenseeId": LICENSEE, "Body": text,
                   "RecipientCount": 1, "Encoding": "GSM-7", "Segments": 1, "ReplyIsAllowed": False,
                   "ReplyIsRequired": False, "CreatedAt": now, "CreatedAt@odata.type": "Edm.DateTime"}
        unique = uuid.uuid4()
        batch, changeset = f"batch_{unique}", f"changeset_{unique}"
        lines = [f"--{batch}", f"Content-Type: multipart/mixed; boundary={changeset}", ""]
        for number, entity in enumerate((recipient, message), start=1):
            lines += [
                f"--{changeset}", "Content-Type: application/http", "Content-Transfer-Encoding: binary",
                f"Content-ID: {number}", "", f"POST {self._table_url} HTTP/1.1", "Content-Type: application/json",
                "Accept: application/json;odata=nometadata", "Prefer: return-no-content", "DataServiceVersion: 3.0",
                "", json.dumps({k: v for k, v in entity.items() if v is not None}, separators=(",", ":")),
            ]
        lines += [f"--{changeset}--", f"--{batch}--", ""]
        content_type = f"multipart/mixed; boundary={batch}"
        date = formatdate(usegmt=True)
        # Table service Shared Key: VERB, Content-MD5, Content-Type, Date (x-ms-date when sent), resource.
        signed = f"POST\n\n{content_type}\n{date}\n{self._batch_resource}"
        headers = {"Content-Type": content_type, "Accept": "application/json", "x-ms-date": date,
                   "x-ms-version": TABLE_VERSION, "DataServiceVersion": "3.0", "MaxDataServiceVersion": "3.0;NetFx",
                   "Authorization": self._account.sign(signed)}
        async with self._session.post(self._batch_url, data="\r\n".join(lines).encode(), headers=headers) as response:
            answer = await response.read()
            if response.status != 202 or re.search(rb"HTTP/1\.1 [^2]", answer):
                raise StorageRefused(f"$batch: {response.status} {answer[:300]!r}")


class StorageRefused(Exception):
    pass


def application(floor: BareFloor) -> web.Application:
    async def accept(request: web.Request) -> web.Response:
        model = json.loads(await request.read())["smsModel"]
        to = model["to"][0]
        comm_id = uuid.uuid4().hex
        try:
            await floor.put_job(comm_id)  # the gateway's order: the job first, the rows after
            await floor.insert_rows(comm_id, to["phoneNumber"], to.get("name"), model["messageBody"])
        except StorageRefused as exc:
            return web.Response(status=503, text=str(exc))
        return web.json_response({"commId": comm_id, "status": True})

    async def accept_one(request: web.Request) -> web.Response:
        model = json.loads(await request.read())["smsModel"]
        to = model["to"][0]
        comm_id = uuid.uuid4().hex
        try:
            await floor.put_whole(comm_id, to["phoneNumber"], to.get("name"), model["messageBody"])
        except StorageRefused as exc:
            return web.Response(status=503, text=str(exc))
        return web.json_response({"commId": comm_id, "status": True})

    app = web.Application()
    app.router.add_post(f"{ONE_PUT}/{{tail:.*}}", accept_one)
    app.router.add_post("/{tail:.*}", accept)
    return app


async def serve(connection: str, queue: str, table: str) -> None:
    account = Account.parse(connection)
    async with aiohttp.ClientSession() as session:  # trust_env stays False: no per-request proxy look-up
        runner = web.AppRunner(application(BareFloor(account, session, queue, table)), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(f"Bare floor listening on http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()


async def ensure_storage(connection: str, queue: str = QUEUE, table: str = TABLE) -> None:
    """Creates the queue and table through the SDKs (in the benchmark's process, not the floor's)."""
    from azure.core.exceptions import ResourceExistsError
    from azure.data.tables.aio import TableServiceClient
    from azure.storage.queue.aio import QueueServiceClient

    async with TableServiceClient.from_connection_string(connection) as tables, \
            QueueServiceClient.from_connection_string(connection) as queues:
        with contextlib.suppress(ResourceExistsError):
            await tables.create_table(table)
        with contextlib.suppress(ResourceExistsError):
            await queues.create_queue(queue)


@dataclass
class Spawned:
    base_url: str
    process: subprocess.Popen
    output: list[str]


@contextlib.contextmanager
def spawned(connection: str, queue: str = QUEUE, table: str = TABLE, timeout: float = 30.0) -> Iterator[Spawned]:
    """The bare floor in a child process on a free loopback port; stopped on exit."""
    port: list[int] = []

    def listening(line: str) -> bool:
        if match := _LISTENING.search(line):
            port.append(int(match.group(1)))
        return bool(port)

    child = children.start([sys.executable, "-m", "bench.bare_floor", "--queue", queue, "--table", table], listening,
                           what="the bare floor", timeout=timeout, cwd=ROOT,
                           env={**os.environ, "AzureWebJobsStorage": connection, "PYTHONUNBUFFERED": "1"})
    try:
        yield Spawned(f"http://127.0.0.1:{port[0]}", child.process, child.output)
    finally:
        child.stop(timeout=10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_floor", description=__doc__.splitlines()[0])
    parser.add_argument("--queue", default=QUEUE)
    parser.add_argument("--table", default=TABLE)
    args = parser.parse_args(argv)
    asyncio.run(serve(os.environ["AzureWebJobsStorage"], args.queue, args.table))


if __name__ == "__main__":
    main()
