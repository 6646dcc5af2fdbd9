"""Running the dev host: `python -m sms.dev.host --host 127.0.0.1 --port 7071`, or in a child
process for tests and benchmarks (`spawned`)."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import importlib
import logging
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterator

import azure.functions as func
from aiohttp import web
from azure.storage.queue.aio import QueueServiceClient

from ...config import PROJECT_ROOT, ConfigError, host_json, load_local_settings, proxy_lookup_options, resolve_connection
from .. import children
from .app import read_app
from .http import http_app
from .queues import QueueListener, QueueSemantics
from .routing import route_table
from .timers import TimerRunner

log = logging.getLogger("sms.devhost")

POISON_SUFFIX = "-poison"



def connection_string(setting: str) -> str:
    try:
        return resolve_connection(setting, os.environ.get(setting, ""))
    except ConfigError as exc:
        raise SystemExit(str(exc)) from None


def load_app(spec: str) -> func.FunctionApp:
    module_name, _, attr = spec.partition(":")
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    return getattr(importlib.import_module(module_name), attr or "app")


def app_cleanup(spec: str) -> Callable[[], Awaitable[None]] | None:
    """The app module's `gateway.close`, if it has one. The real host never calls it (a worker process
    just ends); here it closes the app's storage clients at stop, so none is left open."""
    load_app(spec)
    return getattr(getattr(sys.modules[spec.partition(":")[0]], "gateway", None), "close", None)


async def serve(
    app: func.FunctionApp, host: str, port: int, *,
    stop: asyncio.Event | None = None, on_ready: Callable[[int], None] | None = None,
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    host_settings = host_json()
    prefix = host_settings.get("extensions", {}).get("http", {}).get("routePrefix", "api")
    routes, triggers, timers = read_app(app.get_functions(), prefix)
    routes = route_table(routes, log.error)
    semantics = QueueSemantics.from_host_json(host_settings)

    runner = web.AppRunner(http_app(routes), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        if exc.errno == errno.EADDRINUSE:
            raise SystemExit(f"Port {port} on {host} is already in use: stop what serves it, or pick another --port") from None
        raise
    bound_port = site._server.sockets[0].getsockname()[1]  # the real port when asked for 0

    services: list[QueueServiceClient] = []
    listeners: list[QueueListener] = []
    for trigger in triggers:
        # The listener's client looks up proxy settings once too, as the app's do (config.proxy_lookup_options).
        service = QueueServiceClient.from_connection_string(connection_string(trigger.connection), **proxy_lookup_options())
        services.append(service)
        # A poison queue has no poison queue of its own (QueueListenerFactory.CreatePoisonQueueReference).
        poison = None if trigger.queue_name.endswith(POISON_SUFFIX) else service.get_queue_client(trigger.queue_name + POISON_SUFFIX)
        listeners.append(QueueListener(trigger, service.get_queue_client(trigger.queue_name), poison, semantics))
    timer_runners = [TimerRunner(timer) for timer in timers]
    tasks = [asyncio.create_task(runner.run()) for runner in (*listeners, *timer_runners)]

    print("Functions (HTTP routes in the order the host tries them):", flush=True)
    for route in routes:
        methods = ",".join(sorted(route.methods)) if route.methods is not None else "any method"
        print(f"  {route.name}: [{methods}] http://{host}:{bound_port}/{route.template.text}", flush=True)
    for trigger in triggers:
        print(f"  {trigger.name}: queueTrigger on '{trigger.queue_name}'", flush=True)
    for timer in timers:
        print(f"  {timer.name}: timerTrigger '{timer.schedule}'", flush=True)
    print(f"Dev host listening on http://{host}:{bound_port}", flush=True)
    if on_ready:
        on_ready(bound_port)

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for stoppable in (*listeners, *timer_runners):
            stoppable.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runner.cleanup()
        for service in services:
            await service.close()
        if on_stop is not None:
            await on_stop()


@dataclass
class SpawnedHost:
    base_url: str
    process: subprocess.Popen
    output: list[str]


@contextlib.contextmanager
def spawned(env: dict[str, str], timeout: float = 60.0) -> Iterator[SpawnedHost]:
    """This dev host in a child process on a free loopback port, for tests and benchmarks; stopped on exit."""
    port: list[int] = []

    def listening(line: str) -> bool:
        if match := re.search(r"Dev host listening on http://127\.0\.0\.1:(\d+)", line):
            port.append(int(match.group(1)))
        return bool(port)

    child = children.start([sys.executable, "-m", "sms.dev.host", "--host", "127.0.0.1", "--port", "0"], listening,
                           what="dev host", timeout=timeout, cwd=PROJECT_ROOT, env={**env, "PYTHONUNBUFFERED": "1"})
    try:
        yield SpawnedHost(f"http://127.0.0.1:{port[0]}", child.process, child.output)
    finally:
        child.stop()


def configure_logging() -> None:
    """At SMS_LOG_LEVEL, read once the settings are (local.settings.json may set it); the Azure SDKs' chatter at WARNING."""
    logging.basicConfig(level=os.environ.get("SMS_LOG_LEVEL", "INFO").upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sms.devhost", description="A local stand-in for the Azure Functions host.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7071, help="0 picks a free port (printed at start)")
    parser.add_argument("--app", default="function_app:app", help="module:attribute of the FunctionApp")
    args = parser.parse_args(argv)
    load_local_settings()
    configure_logging()
    asyncio.run(serve(load_app(args.app), args.host, args.port, on_stop=app_cleanup(args.app)))


if __name__ == "__main__":
    main()
