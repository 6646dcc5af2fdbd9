"""A small local stand-in for the Azure Functions host, for machines without Core Tools.

It serves the FunctionApp's own registered functions: HTTP routes and methods come from
`app.get_functions()` and the route prefix from host.json, so there is no second route
table to drift. Queue triggers are driven from the real (Azurite) queue with host.json's
semantics: batchSize, newBatchThreshold, maxPollingInterval, visibilityTimeout,
maxDequeueCount (then `<queue>-poison`) and messageEncoding. Timer triggers run on their
NCRONTAB schedules.

    python -m sms.devhost --host 127.0.0.1 --port 7071
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import importlib
import inspect
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

import azure.functions as func
from aiohttp import web
from azure.functions.queue import QueueMessage  # the type the Python worker hands to queue triggers
from azure.functions.timer import TimerRequest
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from . import ncrontab
from .config import PROJECT_ROOT, ConfigError, host_json, load_local_settings, resolve_connection

log = logging.getLogger("sms.devhost")

# How long a received message stays invisible while its function runs (the Functions
# host uses 10 minutes and renews it; local runs finish long before that).
IN_FLIGHT_VISIBILITY_SECONDS = 600
MIN_POLL_SECONDS = 0.1


# -- reading the app -----------------------------------------------------------------------


@dataclass(frozen=True)
class HttpRoute:
    name: str
    template: str
    pattern: re.Pattern
    methods: frozenset[str]
    arg_name: str
    function: Callable



@dataclass(frozen=True)
class TimerTrigger:
    name: str
    schedule: str
    arg_name: str
    function: Callable
    run_on_startup: bool = False


@dataclass(frozen=True)
class QueueTrigger:
    name: str
    queue_name: str
    connection: str
    arg_name: str
    function: Callable


def _bindings(fn: Any) -> list[dict]:
    return json.loads(fn.get_function_json())["bindings"]


_PARAM = re.compile(r"\{(\*)?([A-Za-z_][A-Za-z0-9_]*)(?::[^}?]*)?(\?)?\}")


def route_pattern(template: str) -> re.Pattern:
    """An ASP.NET route template as a regex: 'sms/{commId}', 'send.{format}', '{*rest}', '{x?}', '{id:guid}'."""
    parts = []
    for segment in template.strip("/").split("/"):
        whole = _PARAM.fullmatch(segment)
        if whole and whole.group(1):
            parts.append(f"(?:/(?P<{whole.group(2)}>.*))?")
        elif whole:
            parts.append(f"(?:/(?P<{whole.group(2)}>[^/]+)){'?' if whole.group(3) else ''}")
        else:  # literal text, possibly with parameters inside: a "complex segment"
            pattern, pos = "", 0
            for param in _PARAM.finditer(segment):
                pattern += re.escape(segment[pos:param.start()]) + f"(?P<{param.group(2)}>[^/]+?)"
                pos = param.end()
            parts.append("/" + pattern + re.escape(segment[pos:]))
    return re.compile(r"\A" + "".join(parts) + r"/?\Z", re.IGNORECASE | re.DOTALL)


def route_precedence(template: str) -> tuple[int, ...]:
    """ASP.NET's order, segment by segment: literal, then complex, then parameter, then catch-all."""
    ranks = []
    for segment in template.strip("/").split("/"):
        whole = _PARAM.fullmatch(segment)
        ranks.append(4 if whole and whole.group(1) else 3 if whole else 2 if _PARAM.search(segment) else 1)
    return tuple(ranks)


def read_app(app: func.FunctionApp, route_prefix: str) -> tuple[list[HttpRoute], list[QueueTrigger], list[TimerTrigger]]:
    routes, queues, timers = [], [], []
    prefix = route_prefix.strip("/")
    for fn in app.get_functions():
        name = fn.get_function_name()
        if is_disabled(name):
            log.warning("%s is disabled (AzureWebJobs.%s.Disabled); it is not run", name, name)
            continue
        trigger = next(b for b in _bindings(fn) if b["direction"] == "IN" and b["type"].endswith("Trigger"))
        user_function = fn.get_user_function()
        if trigger["type"] == "httpTrigger":
            template = "/".join(p for p in (prefix, trigger.get("route") or name) if p)
            methods = frozenset(m.upper() for m in trigger.get("methods") or ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
            routes.append(HttpRoute(name, template, route_pattern(template), methods, trigger["name"], user_function))
        elif trigger["type"] == "queueTrigger":
            queues.append(QueueTrigger(name, trigger["queueName"], trigger.get("connection") or "AzureWebJobsStorage", trigger["name"], user_function))
        elif trigger["type"] == "timerTrigger":
            ncrontab.parse(trigger["schedule"])  # a bad schedule fails at start, as on the host
            timers.append(TimerTrigger(name, trigger["schedule"], trigger["name"], user_function, bool(trigger.get("runOnStartup"))))
        else:
            log.warning("%s: the dev host does not run %s functions; it is not served", name, trigger["type"])
    routes.sort(key=lambda r: route_precedence(r.template))
    return routes, queues, timers


def is_disabled(function_name: str) -> bool:
    """The Functions host's own switch: app setting AzureWebJobs.<name>.Disabled = true."""
    return os.environ.get(f"AzureWebJobs.{function_name}.Disabled", "").strip().lower() in ("true", "1")


async def invoke(function: Callable, arg_name: str, value: Any) -> Any:
    """Call a function as the Python worker does: async ones on the loop, sync ones on a thread."""
    if inspect.iscoroutinefunction(function):
        return await function(**{arg_name: value})
    return await asyncio.to_thread(function, **{arg_name: value})


# -- HTTP ------------------------------------------------------------------------------------


def http_app(routes: list[HttpRoute]) -> web.Application:
    async def dispatch(request: web.Request) -> web.StreamResponse:
        path, matched = request.path, []
        for route in routes:  # in precedence order: the first that matches and takes the method serves it
            if match := route.pattern.match(path):
                if request.method in route.methods:
                    return await _call(route, match, request)
                matched.append(route)
        if not matched:
            return web.Response(status=404)
        allowed = sorted({m for r in matched for m in r.methods})
        return web.Response(status=405, headers={"Allow": ", ".join(allowed)})

    async def _call(route: HttpRoute, match: re.Match, request: web.Request) -> web.StreamResponse:
        req = func.HttpRequest(
            method=request.method,
            url=str(request.url),
            headers={k: ", ".join(request.headers.getall(k)) for k in request.headers.keys()},
            params={k: v for k, v in request.query.items()},
            route_params={k: v for k, v in match.groupdict().items() if v is not None},
            body=await request.read(),
        )
        try:
            result = await invoke(route.function, route.arg_name, req)
        except Exception:
            log.exception("function %s failed", route.name)
            return web.Response(status=500)
        if not isinstance(result, func.HttpResponse):
            return web.Response(status=204 if result is None else 200, text=None if result is None else str(result))
        headers = {k: v for k, v in result.headers.items()}
        if not any(k.lower() == "content-type" for k in headers) and result.mimetype:
            headers["Content-Type"] = f"{result.mimetype}; charset={result.charset}" if result.charset else result.mimetype
        return web.Response(status=result.status_code, body=result.get_body(), headers=headers)

    application = web.Application(client_max_size=100 * 1024 * 1024)  # the Functions host's request limit
    application.router.add_route("*", r"/{tail:[\s\S]*}", dispatch)  # any path, even with an encoded newline
    return application


# -- queues ------------------------------------------------------------------------------------


def _seconds(value: str | int | float | None, default: float) -> float:
    """host.json durations are TimeSpan strings: 'hh:mm:ss' or 'd.hh:mm:ss'."""
    if value is None:
        return default
    if isinstance(value, (int, float)):
        return float(value)
    days, clock = 0, value
    head, dot, rest = value.partition(".")
    if dot and ":" not in head:
        days, clock = int(head), rest
    hours, minutes, seconds = clock.split(":")
    return timedelta(days=days, hours=int(hours), minutes=int(minutes), seconds=float(seconds)).total_seconds()


@dataclass(frozen=True)
class QueueSemantics:
    batch_size: int = 16
    new_batch_threshold: int = 8
    max_polling_interval: float = 60.0
    visibility_timeout: float = 0.0
    max_dequeue_count: int = 5
    message_encoding: str = "base64"

    @classmethod
    def from_host_json(cls, host: dict) -> "QueueSemantics":
        q = host.get("extensions", {}).get("queues", {})
        batch = int(q.get("batchSize", cls.batch_size))
        return cls(
            batch_size=batch,
            new_batch_threshold=int(q.get("newBatchThreshold", batch // 2)),
            max_polling_interval=_seconds(q.get("maxPollingInterval"), cls.max_polling_interval),
            visibility_timeout=_seconds(q.get("visibilityTimeout"), cls.visibility_timeout),
            max_dequeue_count=int(q.get("maxDequeueCount", cls.max_dequeue_count)),
            message_encoding=str(q.get("messageEncoding", cls.message_encoding)).lower(),
        )


class QueueListener:
    """Runs one queue-triggered function the way the Functions host does."""

    def __init__(self, trigger: QueueTrigger, queue: QueueClient, poison: QueueClient, semantics: QueueSemantics):
        self.trigger = trigger
        self._queue = queue
        self._poison = poison
        self._q = semantics
        self._in_flight: set[asyncio.Task] = set()
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        await _create_queue(self._queue)
        await _create_queue(self._poison)
        delay = MIN_POLL_SECONDS
        while not self._stopping.is_set():
            received = 0
            if len(self._in_flight) <= self._q.new_batch_threshold:
                try:
                    async for message in self._queue.receive_messages(
                        messages_per_page=self._q.batch_size, max_messages=self._q.batch_size,
                        visibility_timeout=IN_FLIGHT_VISIBILITY_SECONDS,
                    ):
                        received += 1
                        task = asyncio.create_task(self._process(message))
                        self._in_flight.add(task)
                        task.add_done_callback(self._in_flight.discard)
                except Exception as exc:  # storage down: keep polling, as the host does
                    log.warning("polling %s failed: %s", self.trigger.queue_name, exc)
            delay = MIN_POLL_SECONDS if received else min(delay * 2, self._q.max_polling_interval)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    def stop(self) -> None:
        self._stopping.set()

    async def _process(self, message: Any) -> None:
        try:
            body = self._decode(message.content)
            queue_message = QueueMessage(
                id=message.id, body=body, dequeue_count=message.dequeue_count, pop_receipt=message.pop_receipt,
                insertion_time=message.inserted_on, expiration_time=message.expires_on, time_next_visible=message.next_visible_on,
            )
            await invoke(self.trigger.function, self.trigger.arg_name, queue_message)
        except Exception as exc:
            await self._failed(message, exc)
        else:
            await self._queue.delete_message(message)

    def _decode(self, content: str) -> bytes:
        if self._q.message_encoding == "base64":
            try:
                return base64.b64decode(content, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("message is not valid base64 (host.json messageEncoding is base64)") from None
        return content.encode()

    async def _failed(self, message: Any, exc: Exception) -> None:
        if message.dequeue_count >= self._q.max_dequeue_count:
            log.error("%s: message %s failed %d times, moved to %s: %s", self.trigger.name, message.id,
                      message.dequeue_count, self._poison.queue_name, exc)
            await self._poison.send_message(message.content)
            await self._queue.delete_message(message)
        else:
            log.warning("%s: message %s failed (attempt %d of %d), retrying: %s", self.trigger.name, message.id,
                        message.dequeue_count, self._q.max_dequeue_count, exc, exc_info=exc)
            await self._queue.update_message(message, visibility_timeout=int(self._q.visibility_timeout))


class TimerRunner:
    """Runs one timer-triggered function on its NCRONTAB schedule, as the host does."""

    def __init__(self, trigger: TimerTrigger):
        self.trigger = trigger
        self._schedule = ncrontab.parse(trigger.schedule)
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        if self.trigger.run_on_startup:
            await self._fire(past_due=False)
        while not self._stopping.is_set():
            now = datetime.now(timezone.utc)
            due = ncrontab.next_after(self._schedule, now)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), (due - now).total_seconds())
            if not self._stopping.is_set():
                await self._fire(past_due=False)

    def stop(self) -> None:
        self._stopping.set()

    async def _fire(self, past_due: bool) -> None:
        try:
            await invoke(self.trigger.function, self.trigger.arg_name, TimerRequest(past_due=past_due))
        except Exception:
            log.exception("timer function %s failed", self.trigger.name)


async def _create_queue(queue: QueueClient) -> None:
    with contextlib.suppress(Exception):
        await queue.create_queue()


# -- running it ----------------------------------------------------------------------------------


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


async def serve(
    app: func.FunctionApp, host: str, port: int, *,
    stop: asyncio.Event | None = None, on_ready: Callable[[int], None] | None = None,
) -> None:
    host_settings = host_json()
    prefix = host_settings.get("extensions", {}).get("http", {}).get("routePrefix", "api")
    routes, triggers, timers = read_app(app, prefix)
    semantics = QueueSemantics.from_host_json(host_settings)

    runner = web.AppRunner(http_app(routes), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = site._server.sockets[0].getsockname()[1]  # the real port when asked for 0

    services: list[QueueServiceClient] = []
    listeners: list[QueueListener] = []
    for trigger in triggers:
        service = QueueServiceClient.from_connection_string(connection_string(trigger.connection))
        services.append(service)
        listeners.append(QueueListener(
            trigger,
            service.get_queue_client(trigger.queue_name),
            service.get_queue_client(f"{trigger.queue_name}-poison"),
            semantics,
        ))
    timer_runners = [TimerRunner(timer) for timer in timers]
    tasks = [asyncio.create_task(runner.run()) for runner in (*listeners, *timer_runners)]

    print("Functions:", flush=True)
    for route in routes:
        print(f"  {route.name}: [{','.join(sorted(route.methods))}] http://{host}:{bound_port}/{route.template}", flush=True)
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
        from .bootstrap import close_gateway

        await close_gateway()


@dataclass
class SpawnedHost:
    base_url: str
    process: subprocess.Popen
    output: list[str]


@contextlib.contextmanager
def spawned(env: dict[str, str], timeout: float = 60.0) -> Iterator[SpawnedHost]:
    """This dev host in a child process on a free loopback port, for tests and benchmarks; stopped on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sms.devhost", "--host", "127.0.0.1", "--port", "0"], cwd=PROJECT_ROOT,
        env={**env, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output: list[str] = []
    ready = threading.Event()
    port: list[int] = []

    def drain() -> None:  # keeps reading so the host never blocks on a full pipe
        for line in process.stdout:
            output.append(line.rstrip())
            if match := re.search(r"Dev host listening on http://127\.0\.0\.1:(\d+)", line):
                port.append(int(match.group(1)))
                ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True, name="devhost-output").start()
    try:
        if not ready.wait(timeout) or not port:
            raise RuntimeError("dev host did not start:\n" + "\n".join(output[-30:]))
        yield SpawnedHost(f"http://127.0.0.1:{port[0]}", process, output)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sms.devhost", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7071, help="0 picks a free port (printed at start)")
    parser.add_argument("--app", default="function_app:app", help="module:attribute of the FunctionApp")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("SMS_LOG_LEVEL", "INFO").upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    load_local_settings()
    asyncio.run(serve(load_app(args.app), args.host, args.port))


if __name__ == "__main__":
    main()
