"""HTTP blueprint: request -> auth and wire decode -> command -> use case -> wire encode. Nothing else.

Every function is registered from the route table in sms.routes, over the Gateway it is given.
"""
from __future__ import annotations

import logging
import math
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Awaitable, Callable

import azure.functions as func
from pydantic import BaseModel

from . import metadata, openapi, wire
from .config import ConfigError
from .errors import (
    FieldError,
    GatewayError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    StorageUnavailable,
    TooManyRequests,
    ValidationFailed,
)
from .logs import log_unexpected
from .model import utcnow
from .phone import mask_numbers
from .gateway import Gateway
from .usecases.delivery import WebhookDelivery
from .usecases.ledger import Ledger
from .usecases.webhooks import WebhookEndpoints
from .routes import MAX_BATCH, OPERATION, Route, register
from .wire import RepliesResponse, ReplyState
from .wire.dto import WebhookEndpointRemoved, WebhookEndpointRequest, WebhookReplayRequest
from .wire.http import error_response, json_response
from .wire.mapping import (
    cancel_response,
    comm_response,
    delivery_list,
    delivery_log_page,
    ledger_query,
    message_list,
    message_state,
    replay_request,
    replay_response,
    send_command,
    usage_range,
    usage_response,
    webhook_endpoint_list,
    webhook_endpoint_state,
)

log = logging.getLogger("sms.api")

GatewaySource = Callable[[], Awaitable[Gateway]]
Work = Callable[[func.HttpRequest, Gateway], Awaitable["BaseModel | list[BaseModel]"]]


def _negotiate(req: func.HttpRequest, route: Route, suffix: str | None) -> wire.Format:
    return wire.response_format(req.params.get("format"), suffix or (route.format.value if route.format else None), req.headers.get("Accept"))


async def _respond(req: func.HttpRequest, route: Route, gateway: GatewaySource, work: Work,
                   suffix: str | None = None) -> func.HttpResponse:
    """Run a handler's work and answer in the negotiated format; every failure in ServiceStack's error shape."""
    if route.has_format_suffix:
        suffix = req.route_params.get("format", "")
    if suffix is not None and suffix.lower() not in ("json", "jsv"):
        return error_response(NotFound(f"Unknown format suffix '.{suffix}': use .json or .jsv"), wire.Format.JSON)
    fmt = _negotiate(req, route, suffix)
    try:
        if req.method.upper() not in route.working_methods:
            raise MethodNotAllowed(req.method.upper(), ", ".join(route.working_methods))
        result = await work(req, await gateway())
        headers = {"Content-Type": fmt.content_type}
        if isinstance(result, list):  # an auto-batch: ServiceStack says how many requests it ran
            headers["X-AutoBatch-Completed"] = str(len(result))
        return func.HttpResponse(wire.encode(result, fmt), status_code=200, headers=headers)
    except GatewayError as error:
        if isinstance(error, StorageUnavailable):
            log.warning("storage unavailable: %s", mask_numbers(repr(error.__cause__)))
        return error_response(error, fmt)
    except ConfigError as error:
        log.error("gateway misconfigured: %s", error)
        return error_response(StorageUnavailable("The gateway is not configured correctly; see its logs"), fmt)
    except Exception as error:
        log_unexpected(log, f"unhandled error in {route.name}", error)
        return error_response(GatewayError("An unexpected error occurred", "InternalServerError"), fmt)


async def _licensee(req: func.HttpRequest, gw: Gateway) -> str:
    """The key's licensee, once it is within its request rate."""
    licensee = await gw.auth.licensee_for(wire.api_key_from(req.headers.get("Authorization")))
    wait = gw.requests.retry_after(licensee)
    if wait is not None:
        raise TooManyRequests(f"Too many requests: this licensee may make {gw.requests.per_minute} a minute; retry in "
                              f"{math.ceil(wait)} s", math.ceil(wait))
    return licensee


def _request_data(req: func.HttpRequest, route: Route, gw: Gateway) -> Any:
    body = req.get_body()
    limit = gw.settings.max_request_bytes
    if len(body) > limit:
        raise PayloadTooLarge(len(body), limit)
    return wire.read_body(body, req.headers.get("Content-Type"), route.format or wire.Format.JSON)


async def _send(req: func.HttpRequest, gw: Gateway, route: Route, immediate: bool = False) -> BaseModel:
    licensee = await _licensee(req, gw)
    key = _idempotency_key(req, gw)
    command = send_command(wire.to_dto(_request_data(req, route, gw), wire.SMSSend))
    accept = gw.use.accept
    return comm_response(await (accept.send_now if immediate else accept.queue)(command, licensee, key))


async def _send_batch(req: func.HttpRequest, gw: Gateway, route: Route) -> list[BaseModel]:
    """ServiceStack's auto-batch: a list of SMSSend, every item validated before any is saved."""
    licensee = await _licensee(req, gw)
    key = _idempotency_key(req, gw)
    commands = [send_command(dto) for dto in wire.to_dtos(_request_data(req, route, gw), wire.SMSSend, MAX_BATCH)]
    return [comm_response(result) for result in await gw.use.accept.queue_each(commands, licensee, key)]


def _send_function(route: Route, gateway: GatewaySource):
    immediate = route.kind == "send_now"

    async def send(req: func.HttpRequest) -> func.HttpResponse:
        return await _respond(req, route, gateway, lambda req, gw: _send(req, gw, route, immediate))

    return send


def _batch_function(route: Route, gateway: GatewaySource):
    async def send_batch(req: func.HttpRequest) -> func.HttpResponse:
        return await _respond(req, route, gateway, lambda req, gw: _send_batch(req, gw, route))

    return send_batch


def _reply_function(route: Route, gateway: GatewaySource):
    """ServiceStack's older predefined routes: /json/reply/SMSSend, and /json/reply/SMSSend[] for a batch."""

    async def reply(req: func.HttpRequest) -> func.HttpResponse:
        operation = req.route_params.get("operation", "")
        if operation.lower() not in (OPERATION.lower(), OPERATION.lower() + "[]"):
            unknown = NotFound(f"Unknown operation '{operation}': this service has {OPERATION}")
            return error_response(unknown, _negotiate(req, route, None))
        work = _send_batch if operation.endswith("[]") else _send
        return await _respond(req, route, gateway, lambda req, gw: work(req, gw, route))

    return reply


def _idempotency_key(req: func.HttpRequest, gw: Gateway) -> str | None:
    """Idempotency-Key, or ACS-style Repeatability-Request-ID (with Repeatability-First-Sent)."""
    header = "Idempotency-Key" if req.headers.get("Idempotency-Key") is not None else "Repeatability-Request-ID"
    key = req.headers.get(header)
    if key is None:
        return None
    key = key.strip()
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise ValidationFailed([FieldError(header, "InvalidValue", f"{header} must be 1 to 255 printable characters")])
    first_sent = req.headers.get("Repeatability-First-Sent")
    if first_sent is not None:
        try:
            sent_at = parsedate_to_datetime(first_sent)
        except (TypeError, ValueError):
            sent_at = None
        if sent_at is None or sent_at.tzinfo is None:
            raise ValidationFailed([FieldError("Repeatability-First-Sent", "InvalidValue",
                                               "Repeatability-First-Sent must be an HTTP date, e.g. 'Tue, 24 Nov 2026 23:00:00 GMT'")])
        window = timedelta(hours=gw.settings.idempotency_hours)
        if utcnow() - sent_at > window:
            raise PreconditionFailed(f"Repeatability-First-Sent is older than the {window.total_seconds() / 3600:g}-hour window: send it as a new request")
    return key


def _comm_id(raw_id: str) -> str:
    try:
        comm_id = wire.parse_guid(raw_id)
    except ValueError:
        comm_id = None
    if comm_id is None:
        raise ValidationFailed([FieldError("commId", "InvalidGuid", f"commId '{raw_id}' is not a Guid")])
    return comm_id


def _with_suffix(raw_id: str) -> tuple[str, str | None]:
    """A commId route value and its format suffix, if any (one other than .json or .jsv is answered 404)."""
    stem, dot, suffix = raw_id.rpartition(".")
    return (stem, suffix) if dot else (raw_id, None)


def _status_function(route: Route, gateway: GatewaySource):
    async def sms_status(req: func.HttpRequest) -> func.HttpResponse:
        raw_id, suffix = _with_suffix(req.route_params.get("commId", ""))

        async def work(req: func.HttpRequest, gw: Gateway) -> BaseModel:
            licensee = await _licensee(req, gw)
            return message_state(await gw.use.status.report(_comm_id(raw_id), licensee))

        return await _respond(req, route, gateway, work, suffix)

    return sms_status


def _cancel_function(route: Route, gateway: GatewaySource):
    """DELETE /api/sms/{commId}: every recipient still scheduled or queued ends cancelled."""

    async def sms_cancel(req: func.HttpRequest) -> func.HttpResponse:
        raw_id, suffix = _with_suffix(req.route_params.get("commId", ""))

        async def work(req: func.HttpRequest, gw: Gateway) -> BaseModel:
            licensee = await _licensee(req, gw)
            if gw.use.cancel is None:  # assemble() always wires it: a wiring mistake, answered 500
                raise RuntimeError("this gateway was assembled without the cancel use case")
            return cancel_response(await gw.use.cancel.cancel(licensee, _comm_id(raw_id)))

        return await _respond(req, route, gateway, work, suffix)

    return sms_cancel


def _replies_function(route: Route, gateway: GatewaySource):
    async def sms_replies(req: func.HttpRequest) -> func.HttpResponse:
        async def work(req: func.HttpRequest, gw: Gateway) -> BaseModel:
            licensee = await _licensee(req, gw)
            comm_id = _comm_id(req.route_params.get("commId", ""))
            replies = await gw.use.status.replies(comm_id, licensee)
            return RepliesResponse(comm_id=comm_id, replies=[ReplyState.of(r) for r in replies])

        return await _respond(req, route, gateway, work)

    return sms_replies


def _ledger(gw: Gateway) -> Ledger:
    if gw.use.ledger is None:  # assemble() without a ledger store: a wiring mistake, answered 500
        raise RuntimeError("this gateway was assembled without a ledger")
    return gw.use.ledger


def _list_function(route: Route, gateway: GatewaySource):
    async def sms_list(req: func.HttpRequest) -> func.HttpResponse:
        async def work(req: func.HttpRequest, gw: Gateway) -> BaseModel:
            licensee = await _licensee(req, gw)
            query, take, token = ledger_query(req.params, licensee, gw.settings.default_region)
            return message_list(*await _ledger(gw).page(query, take, token))

        return await _respond(req, route, gateway, work)

    return sms_list


def _usage_function(route: Route, gateway: GatewaySource):
    async def usage(req: func.HttpRequest) -> func.HttpResponse:
        async def work(req: func.HttpRequest, gw: Gateway) -> BaseModel:
            licensee = await _licensee(req, gw)
            today = utcnow().date()
            first, last = usage_range(req.params, today)
            return usage_response(await _ledger(gw).usage(licensee, first, last, today))

        return await _respond(req, route, gateway, work)

    return usage


def _webhooks(gw: Gateway) -> WebhookEndpoints:
    if gw.use.webhooks is None:  # assemble() without a webhook endpoint store: a wiring mistake, answered 500
        raise RuntimeError("this gateway was assembled without a webhook endpoint store")
    return gw.use.webhooks


async def _webhooks_list(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    return webhook_endpoint_list(await _webhooks(gw).list(await _licensee(req, gw)))


async def _webhooks_add(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    licensee = await _licensee(req, gw)
    request = wire.to_dto(_request_data(req, route, gw), WebhookEndpointRequest)
    return webhook_endpoint_state(await _webhooks(gw).add(licensee, request.url, request.event_types), show_secret=True)


async def _webhooks_remove(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    licensee = await _licensee(req, gw)
    endpoint_id = req.route_params.get("endpointId", "").lower()
    await _webhooks(gw).remove(licensee, endpoint_id)
    return WebhookEndpointRemoved(endpoint_id=endpoint_id)


async def _webhooks_rotate_secret(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    licensee = await _licensee(req, gw)
    endpoint = await _webhooks(gw).rotate_secret(licensee, req.route_params.get("endpointId", ""))
    return webhook_endpoint_state(endpoint, show_secret=True)


async def _webhooks_enable(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    licensee = await _licensee(req, gw)
    return webhook_endpoint_state(await _webhooks(gw).enable(licensee, req.route_params.get("endpointId", "")))


def _delivery(gw: Gateway) -> WebhookDelivery:
    if gw.use.delivery is None:  # assemble() without the webhook ports: a wiring mistake, answered 500
        raise RuntimeError("this gateway was assembled without webhook delivery")
    return gw.use.delivery


async def _webhooks_deliveries(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    licensee = await _licensee(req, gw)
    take, token = delivery_log_page(req.params)
    delivery = _delivery(gw)
    endpoint = await _webhooks(gw).get(licensee, req.route_params.get("endpointId", ""))
    return delivery_list(*await delivery.attempts(endpoint, take, token))


async def _webhooks_replay(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    licensee = await _licensee(req, gw)
    replay = replay_request(wire.to_dto(_request_data(req, route, gw), WebhookReplayRequest))
    delivery = _delivery(gw)
    endpoint = await _webhooks(gw).get(licensee, req.route_params.get("endpointId", ""))
    if replay.event_id is not None:
        return replay_response(1, event_id=(await delivery.replay_event(endpoint, replay.event_id)).id)
    queued, token = await delivery.replay_range(endpoint, replay.start, replay.end, replay.token)
    return replay_response(queued, token=token)


_WEBHOOK_WORK = {"webhooks_list": _webhooks_list, "webhooks_add": _webhooks_add, "webhooks_remove": _webhooks_remove,
                 "webhooks_rotate_secret": _webhooks_rotate_secret, "webhooks_enable": _webhooks_enable,
                 "webhooks_deliveries": _webhooks_deliveries, "webhooks_replay": _webhooks_replay}


def _webhooks_function(route: Route, gateway: GatewaySource):
    """The licensee's webhook endpoints, with its key. A secret is in the answer to add and rotate-secret only."""
    work = _WEBHOOK_WORK[route.kind]

    async def webhooks(req: func.HttpRequest) -> func.HttpResponse:
        return await _respond(req, route, gateway, lambda req, gw: work(req, gw, route))

    return webhooks


def _health_function(route: Route, gateway: GatewaySource):
    """For load balancers and people: 200 when storage and the provider answer, else 503. No key needed."""

    async def health(req: func.HttpRequest) -> func.HttpResponse:
        try:
            report = await (await gateway()).health()
        except ConfigError as error:
            log.error("gateway misconfigured: %s", error)
            report = {"status": "unhealthy", "configuration": "invalid; see the logs"}
        return json_response(report, 200 if report["status"] == "ok" else 503)

    return health


def _openapi_function(route: Route, gateway: GatewaySource):
    async def openapi_document(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(openapi.document_json(), status_code=200, headers={"Content-Type": "application/json; charset=utf-8"})

    return openapi_document


def _metadata_function(route: Route, gateway: GatewaySource):
    async def metadata_page(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(metadata.page(), status_code=200, headers={"Content-Type": "text/html; charset=utf-8"})

    return metadata_page


_HANDLERS = {
    "send": _send_function,
    "send_now": _send_function,
    "batch": _batch_function,
    "reply": _reply_function,
    "status": _status_function,
    "cancel": _cancel_function,
    "replies": _replies_function,
    "list": _list_function,
    "usage": _usage_function,
    **dict.fromkeys(_WEBHOOK_WORK, _webhooks_function),
    "health": _health_function,
    "openapi": _openapi_function,
    "metadata": _metadata_function,
}

def blueprint(gateway: GatewaySource) -> func.Blueprint:
    """The client API's functions, each working over the Gateway `gateway` gives (built on first use)."""
    return register(func.Blueprint(), _HANDLERS, gateway)
