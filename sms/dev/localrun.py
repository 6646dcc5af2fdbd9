"""`make run`: Azurite, tables and queues, a local API key and a curl example, then the app on :7071.

Uses `func start` where Azure Functions Core Tools is installed, otherwise the dev host.
"""
from __future__ import annotations

import argparse
import asyncio
import errno
import shutil
import socket
import subprocess
import sys
from datetime import timedelta
from urllib.parse import urlparse

from ..config import PROJECT_ROOT, Settings, load_local_settings
from ..domain.model import utcnow
from ..entrypoints.cli import with_adapters
from ..storage import KEY_ROLE_ADMIN
from ..usecases.auth import KeyLimitReached, issue_key
from . import azurite
from .host.host import configure_logging

# Azurite starts empty every run, so the local licensee is a fixed, recognisable Guid.
LOCAL_LICENSEE = "11111111111111111111111111111111"
# A run revokes its own key when it stops; one that was killed leaves a key that lapses by itself,
# so an emulator that keeps its data never fills up with keys no run can revoke.
LOCAL_KEY_LIFETIME = timedelta(days=7)


def _endpoint(connection: str, name: str) -> tuple[str, int] | None:
    for part in connection.split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == name.lower():
            url = urlparse(value.strip())
            return url.hostname or "", url.port or 80
    return None


def _listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def port_in_use(host: str, port: int) -> bool:
    """Whether the HTTP port is taken, checked the way the server will bind it (SO_REUSEADDR, as
    aiohttp sets it), so a port left in TIME_WAIT by an earlier run does not count as taken."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def start_local_storage(connection: str) -> azurite.Azurite | None:
    """Start Azurite on the connection string's loopback ports, unless something already serves them."""
    queue, table = _endpoint(connection, "QueueEndpoint"), _endpoint(connection, "TableEndpoint")
    if not queue or not table or queue[0] not in ("127.0.0.1", "localhost") or table[0] not in ("127.0.0.1", "localhost"):
        return None  # real Azure storage: nothing to start
    if _listening("127.0.0.1", queue[1]) and _listening("127.0.0.1", table[1]):
        print(f"Using the storage emulator already listening on ports {queue[1]} and {table[1]}")
        return None
    emulator = azurite.start(queue_port=queue[1], table_port=table[1])
    print(f"Azurite started in memory on 127.0.0.1 (queues :{emulator.queue_port}, tables :{emulator.table_port})")
    return emulator


async def local_key(adapters) -> str:
    """A fresh admin key for the local licensee, so every route (the key routes too) works locally. Keys other runs
    printed are left alone: one may be in use."""
    return await issue_key(adapters.keys, LOCAL_LICENSEE, "local (make run)", utcnow() + LOCAL_KEY_LIFETIME, role=KEY_ROLE_ADMIN)


async def revoke_local_key(adapters, key: str) -> None:
    """Revoke the key this run printed, and only that one."""
    await adapters.keys.revoke(key.removeprefix("sms_").split(".")[0], utcnow())


def banner(base_url: str, key: str) -> str:
    auth = f'-H "Authorization: Bearer {key}"'
    body = '{"smsModel":{"to":[{"name":"Sam","phoneNumber":"+61412345678"}],"messageBody":"Hello from the SMS gateway"}}'
    return f"""
SMS gateway ready at {base_url}
Admin API key (every licensee's keys too) for local licensee {LOCAL_LICENSEE}:
  {key}

The operator console (sign in with the key above):
  {base_url}/console

Send a message (it is queued, then the worker sends it through the console provider):
  curl -s -X POST {base_url}/api/sms/send {auth} -H "Content-Type: application/json" -d '{body}'
Then see where it stands (use the commId from the answer; in its first second or so it is queued with
"recipients": [], while the worker writes the message it took in one storage call):
  curl -s {base_url}/api/sms/<commId> {auth}
Your messages, newest first, and what was sent today:
  curl -s "{base_url}/api/sms?take=10" {auth}
  curl -s {base_url}/api/usage {auth}
Every operation, and typed DTOs for ServiceStack's clients (README, Typed clients):
  {base_url}/metadata
  npx --package @servicestack/cli typescript-ref {base_url} dtos.ts
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sms.dev.localrun", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7071)
    args = parser.parse_args(argv)

    if port_in_use(args.host, args.port):
        print(f"Port {args.port} on {args.host} is already in use (is another `make run` running?): stop it first.", file=sys.stderr)
        return 1
    settings_file = PROJECT_ROOT / "local.settings.json"
    if not settings_file.exists():
        shutil.copy(PROJECT_ROOT / "local.settings.example.json", settings_file)
        print(f"Created {settings_file.name} from local.settings.example.json")
    load_local_settings()
    configure_logging()  # after the settings: local.settings.json may set SMS_LOG_LEVEL
    emulator = start_local_storage(Settings.from_env().storage_connection)
    key = None
    try:
        key = asyncio.run(with_adapters(local_key))
        base_url = f"http://{args.host}:{args.port}"
        if shutil.which("func"):
            print(banner(base_url, key), flush=True)
            subprocess.run(["func", "start", "--port", str(args.port)], cwd=PROJECT_ROOT, check=False)
        else:
            from .host import load_app, serve
            from .host.host import app_cleanup

            asyncio.run(serve(load_app("function_app:app"), args.host, args.port, on_stop=app_cleanup("function_app:app"),
                              on_ready=lambda port: print(banner(f"http://{args.host}:{port}", key), flush=True)))
    except KeyboardInterrupt:
        pass
    except KeyLimitReached as exc:
        print(f"error: {exc} (with `.venv/bin/python -m sms keys list --licensee {LOCAL_LICENSEE}` and `keys revoke`)",
              file=sys.stderr)
        return 1
    finally:
        if key and not emulator:  # an emulator we started takes its data with it
            try:
                asyncio.run(with_adapters(lambda adapters: revoke_local_key(adapters, key)))
            except Exception as exc:  # storage already gone: the key lapses by itself
                print(f"Could not revoke this run's key ({type(exc).__name__}); it expires in {LOCAL_KEY_LIFETIME.days} days")
        if emulator:
            emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
