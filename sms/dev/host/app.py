"""Reading a FunctionApp the way the host indexes it: each function's trigger, from its function.json."""
from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from .. import ncrontab
from .routing import HttpRoute, Template

log = logging.getLogger("sms.devhost")

ALL_METHODS = None  # an HTTP trigger without "methods" admits every method


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


def read_app(functions: Iterable[Any], route_prefix: str) -> tuple[list[HttpRoute], list[QueueTrigger], list[TimerTrigger]]:
    """The HTTP routes (in registration order; sms.dev.host.routing orders them as the host does),
    queue triggers and timer triggers of an app's functions (`app.get_functions()`). Functions
    disabled by app setting are left out."""
    routes, queues, timers = [], [], []
    prefix = route_prefix.strip("/")
    for fn in functions:
        name = fn.get_function_name()
        if is_disabled(name):
            log.warning("%s is disabled (AzureWebJobs.%s.Disabled); it is not run", name, name)
            continue
        trigger = next(b for b in _bindings(fn) if b["direction"] == "IN" and b["type"].endswith("Trigger"))
        user_function = fn.get_user_function()
        if trigger["type"] == "httpTrigger":
            route = trigger.get("route") or name  # ScriptHost.ValidateHttpFunction: no route means the name
            methods = trigger.get("methods")
            template = Template.parse("/".join(p for p in (prefix, route.strip("/")) if p))
            routes.append(HttpRoute(name, route, template, frozenset(m.upper() for m in methods) if methods is not None else ALL_METHODS,
                                    user_function, trigger["name"]))
        elif trigger["type"] == "queueTrigger":
            queues.append(QueueTrigger(name, trigger["queueName"], trigger.get("connection") or "AzureWebJobsStorage",
                                       trigger["name"], user_function))
        elif trigger["type"] == "timerTrigger":
            ncrontab.parse(trigger["schedule"])  # a bad schedule fails at start, as on the host
            timers.append(TimerTrigger(name, trigger["schedule"], trigger["name"], user_function, bool(trigger.get("runOnStartup"))))
        else:
            log.warning("%s: the dev host does not run %s functions; it is not served", name, trigger["type"])
    return routes, queues, timers


def is_disabled(function_name: str) -> bool:
    """The Functions host's own switch: app setting AzureWebJobs.<name>.Disabled = true."""
    return os.environ.get(f"AzureWebJobs.{function_name}.Disabled", "").strip().lower() in ("true", "1")


async def invoke(function: Callable, arg_name: str, value: Any) -> Any:
    """Call a function as the Python worker does: async ones on the loop, sync ones on a thread."""
    if inspect.iscoroutinefunction(function):
        return await function(**{arg_name: value})
    return await asyncio.to_thread(function, **{arg_name: value})
