"""The dev host's HTTP front: a request is routed as the Functions host routes it and handed to the
function as the host hands it to the Python worker; the function's answer goes back as they send it.

What the worker sees follows the host's `GrpcMessageConversionExtensions.ToRpcHttp`: header names
lower-cased and repeated values joined with ','; query values percent-decoded, a repeated key's
values joined with ',' (keys compared case-insensitively), a key with no value left out; route
values as matched; the body only when the request has `Content-Length > 0` (a chunked body reaches
the function empty). docs/devhost.md lists each rule with its source.
"""
from __future__ import annotations

import logging
from urllib.parse import parse_qsl

import azure.functions as func
from aiohttp import log as aiohttp_log
from aiohttp import web
from multidict import CIMultiDict

from ...logs import MaskedRecords, log_unexpected
from .app import invoke
from .responses import UnwritableCookie, response_headers
from .routing import HttpRoute, kestrel_path, select

log = logging.getLogger("sms.devhost")

# aiohttp logs a request its parser refuses ("Error handling request", at ERROR) with the exception,
# whose message quotes the raw request line or header: an API key, a phone number in a query. Every
# one of aiohttp's loggers masks its records, as the gateway masks its own (sms/logs.py).
_MASKED = MaskedRecords()
AIOHTTP_LOGGERS = tuple(v for v in vars(aiohttp_log).values() if isinstance(v, logging.Logger))

# ScriptConstants.DefaultMaxRequestBodySize. Above it Kestrel throws while the host binds the
# request, and the host's ExceptionMiddleware answers 500 with no body (azure-functions-host #10519).
MAX_REQUEST_BODY = 104_857_600

# Routes chosen for recent (method, raw path) pairs. The choice depends on nothing else (the table is
# fixed once the host starts), and trying the table in order costs a send request about 14 template
# matches, since the host's name order puts sms_send after most routes. Cleared when full.
_CHOSEN_MAX = 4096

_HOMEPAGE = b"<!DOCTYPE html><html><body><h1>Your Functions app is up and running</h1></body></html>"


def query_params(query_string: str) -> dict[str, str]:
    """The query as the worker gets it: `?a=1&a=2` is '1,2', `?a=` and `?flag` are absent,
    `?a=1&A=2` is one key (ASP.NET's query collection is case-insensitive)."""
    if not query_string:
        return {}
    grouped: dict[str, tuple[str, list[str]]] = {}
    for key, value in parse_qsl(query_string, keep_blank_values=True):
        grouped.setdefault(key.lower(), (key, []))[1].append(value)
    params = {}
    for key, values in grouped.values():
        joined = ",".join(v for v in values if v)  # StringValues.ToString() skips empty values
        if joined:
            params[key] = joined
    return params


def header_values(request: web.Request) -> dict[str, str]:
    headers = {}
    for name in request.headers.keys():
        values = request.headers.getall(name)
        headers[name.lower()] = values[0] if len(values) == 1 else ",".join(v for v in values if v)
    return headers


def http_app(table: list[HttpRoute], max_request_body: int = MAX_REQUEST_BODY) -> web.Application:
    """Serves `table` (routes in the host's order, from sms.dev.host.routing.route_table)."""

    chosen_for: dict[tuple[str, str], tuple[str, tuple[HttpRoute, dict[str, str]] | None]] = {}

    def choose(method: str, raw_path: str) -> tuple[str, tuple[HttpRoute, dict[str, str]] | None]:
        key = (method, raw_path)
        if (known := chosen_for.get(key)) is None:
            if len(chosen_for) >= _CHOSEN_MAX:
                chosen_for.clear()
            path = kestrel_path(raw_path)
            known = chosen_for[key] = (path, select(table, method, path))
        return known

    async def dispatch(request: web.Request) -> web.StreamResponse:
        path, chosen = choose(request.method, request.raw_path)
        if chosen is None:
            if path == "/" and request.method == "GET":  # the host's HomepageMiddleware
                return web.Response(body=_HOMEPAGE, content_type="text/html")
            return web.Response(status=404)  # the host's answer: no body, no Content-Type
        route, values = chosen
        body = b""
        if (request.content_length or 0) > 0:  # the host passes a body only with a Content-Length: not a chunked one
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                return web.Response(status=500)
        req = func.HttpRequest(
            method=request.method, url=str(request.url), headers=header_values(request),
            params=query_params(request.query_string), route_params=values, body=body,
        )
        try:
            result = await invoke(route.function, route.arg_name, req)
        except Exception as error:
            log_unexpected(log, f"function {route.name} failed", error)
            return web.Response(status=500)
        if not isinstance(result, func.HttpResponse):
            return web.Response(status=204 if result is None else 200, text=None if result is None else str(result))
        try:
            headers = CIMultiDict(response_headers(result))
        except UnwritableCookie as error:
            log.error("function %s answered a cookie Azure cannot send (a 500 there): %s", route.name, error)
            return web.Response(status=500)
        return web.Response(status=result.status_code, body=result.get_body(), headers=headers)

    for logger in AIOHTTP_LOGGERS:
        logger.addFilter(_MASKED)  # once: a filter already added is not added again
    application = web.Application(client_max_size=max_request_body)
    application.router.add_route("*", r"/{tail:[\s\S]*}", dispatch)  # any path, even with an encoded newline
    return application
