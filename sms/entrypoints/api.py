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

from .. import wire
from ..config import ConfigError
from ..domain.errors import (
    FieldError,
    Forbidden,
    GatewayError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    StorageUnavailable,
    TooManyRequests,
    ValidationFailed,
)
from ..domain.model import utcnow
from ..domain.phone import mask_numbers
from ..gateway import Gateway
from ..logs import log_unexpected
from ..usecases.auth import Principal, issue_key, revoke_key, rotate_key_of
from ..wire import RepliesResponse, ReplyState
from ..wire.dto import RoutingTableRequest, WebhookEndpointRemoved, WebhookEndpointRequest, WebhookReplayRequest
from ..wire.http import document_response, error_response, html_page
from ..wire.mapping import (
    api_key_list,
    api_key_rotation,
    api_key_state,
    batch_keys,
    cancel_response,
    comm_response,
    delivery_list,
    delivery_log_page,
    estimate_response,
    events_page,
    grace_period,
    guard_change,
    guard_state,
    key_licensee,
    key_request,
    ledger_query,
    licensee_list,
    licensee_settings_state,
    message_list,
    message_state,
    named_licensee,
    opt_out_history,
    opt_out_list,
    opt_out_number,
    opt_out_query,
    opt_out_request,
    opt_out_state,
    providers_response,
    query_value,
    replay_request,
    replay_response,
    request_key,
    routing_rules,
    routing_table_state,
    send_command,
    usage_range,
    usage_response,
    webhook_endpoint_list,
    webhook_endpoint_state,
    webhook_event_list,
)
from ..wire.requests import AddOptOut, CreateApiKey, RotateApiKey, SetLicenseeSettings
from . import metadata, named, openapi, operator_console, reference
from .routes import ACTING_KINDS, ADMIN_KINDS, MAX_BATCH, OPERATION, READ_KINDS, ROUTES, Route, register

log = logging.getLogger("sms.api")

CHUNKED_NOT_SUPPORTED = ("A request body sent chunked (Transfer-Encoding: chunked) is not supported: the Azure Functions host "
                         "passes a function no body without a Content-Length. Send the body with a Content-Length header")

GatewaySource = Callable[[], Awaitable[Gateway]]
Work = Callable[[func.HttpRequest, Gateway, Route], Awaitable["BaseModel | list[BaseModel]"]]


def _negotiate(req: func.HttpRequest, route: Route, suffix: str | None) -> wire.Format:
    return wire.response_format(req.params.get("format"), suffix or (route.format.value if route.format else None),
                                req.headers.get("Accept"))


async def _respond(req: func.HttpRequest, route: Route, gateway: GatewaySource, work: Work) -> func.HttpResponse:
    """Run a route's work and answer in the negotiated format; every failure in ServiceStack's error shape."""
    suffix = _suffix(req, route)
    if suffix is not None and suffix.lower() not in ("json", "jsv"):
        return error_response(NotFound(f"Unknown format suffix '.{suffix}': use .json or .jsv"), wire.Format.JSON)
    fmt = _negotiate(req, route, suffix)
    try:
        _unknown_operation(req, route)
        if req.method.upper() not in route.working_methods:
            raise MethodNotAllowed(req.method.upper(), ", ".join(route.working_methods))
        result = await work(req, await gateway(), route)
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


def _suffix(req: func.HttpRequest, route: Route) -> str | None:
    """The format suffix the URL carries (`/api/send.jsv`, `/api/sms/{commId}.jsv`), if any."""
    if route.has_format_suffix:
        return req.route_params.get("format", "")
    if route.comm_id_takes_suffix:
        return _with_suffix(req.route_params.get("commId", ""))[1]
    return None


def _unknown_operation(req: func.HttpRequest, route: Route) -> None:
    """ServiceStack's /json/reply/{operation}: this service has one operation (and its auto-batch)."""
    if route.kind == "reply":
        operation = req.route_params.get("operation", "")
        if operation.lower() not in (OPERATION.lower(), OPERATION.lower() + "[]"):
            raise NotFound(f"Unknown operation '{operation}': this service has {OPERATION}")


async def _authorized(req: func.HttpRequest, gw: Gateway, route: Route) -> Principal:
    """The key's principal, when the key may call the route's kind (routes.READ_KINDS, routes.ADMIN_KINDS); else 403
    naming the method and the route. The one place a key's role and read-only flag are checked."""
    principal = await gw.auth.principal_for(wire.api_key_from(req.headers.get("Authorization")))
    called = f"{req.method.upper()} /{route.path}"
    if route.kind in ADMIN_KINDS and not principal.is_admin:
        raise Forbidden(f"{called} takes an admin API key; this key is a licensee's", "AdminOnly")
    if principal.read_only and route.kind not in READ_KINDS:
        raise Forbidden(f"This API key is read-only: {called} changes something, so it takes a key that is not", "ReadOnlyKey")
    return principal


async def _principal(req: func.HttpRequest, gw: Gateway, route: Route) -> Principal:
    """The key's principal, once it may call the route and its licensee is within its request rate."""
    principal = await _authorized(req, gw, route)
    wait = gw.requests.retry_after(principal.licensee_id)
    if wait is not None:
        raise TooManyRequests(f"Too many requests: this licensee may make {gw.requests.per_minute} a minute; retry in "
                              f"{math.ceil(wait)} s", math.ceil(wait))
    return principal


async def _licensee(req: func.HttpRequest, gw: Gateway, route: Route) -> str:
    """The licensee whose data the request works on: the key's, or on routes.ACTING_KINDS the one it names (_acting_for)."""
    return (await _acting_for(req, gw, route))[1]


async def _acting_for(req: func.HttpRequest, gw: Gateway, route: Route) -> tuple[Principal, str]:
    """The key's principal and the licensee the request works on. On routes.ACTING_KINDS a request may name one
    (licenseeId: the query string, or a POST or PUT body's field): an admin key acts for any licensee, a licensee key
    only for its own (403 NotYourLicensee for another). The request rate is charged to the key's own licensee."""
    principal = await _principal(req, gw, route)
    if route.kind not in ACTING_KINDS:
        return principal, principal.licensee_id
    body = _request_data(req, route, gw) if req.method.upper() in ("POST", "PUT") and req.get_body() else None
    named = named_licensee(req.params, body)
    if named is None or named == principal.licensee_id:
        return principal, principal.licensee_id
    if not principal.is_admin:
        raise Forbidden(f"licenseeId {named} is not this key's licensee: a licensee key works on its own licensee's data only; "
                        "an admin key may act for another", "NotYourLicensee")
    return principal, named


def _request_data(req: func.HttpRequest, route: Route, gw: Gateway) -> Any:
    body = req.get_body()
    if not body and "chunked" in req.headers.get("Transfer-Encoding", "").lower():
        # The Functions host hands a function the body only when Content-Length > 0 (GrpcMessageConversionExtensions.ToRpcHttp,
        # host 4.1037.0): a chunked one arrives empty. Say so, rather than that the client sent nothing.
        raise ValidationFailed([FieldError("Transfer-Encoding", "NotSupported", CHUNKED_NOT_SUPPORTED)])
    limit = gw.settings.max_request_bytes
    if len(body) > limit:
        raise PayloadTooLarge(len(body), limit)
    return wire.read_body(body, req.headers.get("Content-Type"), route.format or wire.Format.JSON)


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
            raise PreconditionFailed(f"Repeatability-First-Sent is older than the {window.total_seconds() / 3600:g}-hour window: "
                                     "send it as a new request")
    return key


def _comm_id(req: func.HttpRequest) -> str:
    """The route's commId, without a format suffix; 400 when it is not a Guid."""
    raw_id = _with_suffix(req.route_params.get("commId", ""))[0]
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


# -- the work of each route kind: (request, gateway, route) -> the answer, in ServiceStack's shape ---------


async def _send(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    """Save the SMS and queue it (the worker sends it)."""
    licensee = await _licensee(req, gw, route)
    key = _idempotency_key(req, gw)
    request = wire.to_dto(_request_data(req, route, gw), wire.SMSSend)
    return comm_response(await gw.use.accept.queue(send_command(request), licensee, request_key(key, request)))


async def _send_now(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    """Save the SMS and send it within the request; the answer says what happened."""
    licensee = await _licensee(req, gw, route)
    key = _idempotency_key(req, gw)
    request = wire.to_dto(_request_data(req, route, gw), wire.SMSSend)
    return comm_response(await gw.use.send_now.send(send_command(request), licensee, request_key(key, request)))


async def _batch(req: func.HttpRequest, gw: Gateway, route: Route) -> list[BaseModel]:
    """ServiceStack's auto-batch: a list of SMSSend, every item validated before any is saved."""
    licensee = await _licensee(req, gw, route)
    key = _idempotency_key(req, gw)
    requests = wire.to_dtos(_request_data(req, route, gw), wire.SMSSend, MAX_BATCH)
    results = await gw.use.accept.queue_each([send_command(r) for r in requests], licensee, batch_keys(key, requests))
    return [comm_response(result) for result in results]


async def _reply(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel | list[BaseModel]:
    """ServiceStack's older predefined routes: /json/reply/SMSSend, and /json/reply/SMSSend[] for a batch
    (an operation this service does not have is refused before: _unknown_operation)."""
    work = _batch if req.route_params.get("operation", "").endswith("[]") else _send
    return await work(req, gw, route)


async def _estimate(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel | list[BaseModel]:
    """What a send would cost, and each recipient's line: any body a send takes (an SMSSend, or an SMSModel on its own),
    or an auto-batch's list of them. Nothing is stored, queued or claimed: an Idempotency-Key is not read."""
    licensee = await _licensee(req, gw, route)
    data = _request_data(req, route, gw)
    if isinstance(data, list):
        requests = wire.to_dtos([_as_send(item) for item in data], wire.SMSSend, MAX_BATCH)
        return [estimate_response(s) for s in await gw.use.accept.estimate_each([send_command(r) for r in requests], licensee)]
    request = wire.to_dto(_as_send(data), wire.SMSSend)
    return estimate_response(await gw.use.accept.estimate(send_command(request), licensee))


def _as_send(data: Any) -> Any:
    """An SMSModel on its own, as the SMSSend holding it (errors then name SMSModel.<field>, as a send's do)."""
    if isinstance(data, dict) and not any(isinstance(k, str) and k.lower() == "smsmodel" for k in data):
        return {"SMSModel": data}
    return data


async def _status(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    licensee = await _licensee(req, gw, route)
    return message_state(await gw.use.status.report(_comm_id(req), licensee))


async def _cancel(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    """DELETE /api/sms/{commId}: every recipient still scheduled or queued ends cancelled."""
    licensee = await _licensee(req, gw, route)
    return cancel_response(await gw.use.cancel.cancel(licensee, _comm_id(req)))


async def _replies(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    licensee = await _licensee(req, gw, route)
    comm_id = _comm_id(req)
    replies = await gw.use.status.replies(comm_id, licensee)
    return RepliesResponse(comm_id=comm_id, replies=[ReplyState.of(r) for r in replies])


async def _list(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    """The licensee's messages, newest first, with filters (the ledger)."""
    licensee = await _licensee(req, gw, route)
    query, take, token = ledger_query(req.params, licensee, gw.settings.default_region)
    return message_list(*await gw.use.ledger.page(query, take, token))


async def _usage(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    calendar = await gw.use.usage.calendar(await _licensee(req, gw, route))  # from, to and today are the licensee's days
    first, last = usage_range(req.params, calendar.today)
    return usage_response(await gw.use.usage.days(calendar, first, last))


# The licensee's webhook endpoints, with its key. A secret is in the answer to add and rotate-secret only.

async def _webhooks_list(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    return webhook_endpoint_list(await gw.use.webhooks.list(await _licensee(req, gw, route)))


async def _webhooks_add(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    licensee = await _licensee(req, gw, route)
    request = wire.to_dto(_request_data(req, route, gw), WebhookEndpointRequest)
    return webhook_endpoint_state(await gw.use.webhooks.add(licensee, request.url, request.event_types), show_secret=True)


async def _webhooks_remove(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    licensee = await _licensee(req, gw, route)
    endpoint_id = req.route_params.get("endpointId", "").lower()
    await gw.use.webhooks.remove(licensee, endpoint_id)
    return WebhookEndpointRemoved(endpoint_id=endpoint_id)


async def _webhooks_rotate_secret(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    licensee = await _licensee(req, gw, route)
    endpoint = await gw.use.webhooks.rotate_secret(licensee, req.route_params.get("endpointId", ""))
    return webhook_endpoint_state(endpoint, show_secret=True)


async def _webhooks_enable(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    licensee = await _licensee(req, gw, route)
    return webhook_endpoint_state(await gw.use.webhooks.enable(licensee, req.route_params.get("endpointId", "")))


async def _webhooks_deliveries(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    licensee = await _licensee(req, gw, route)
    take, token = delivery_log_page(req.params)
    endpoint = await gw.use.webhooks.get(licensee, req.route_params.get("endpointId", ""))
    return delivery_list(*await gw.use.delivery.attempts(endpoint, take, token))


async def _webhooks_replay(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    licensee = await _licensee(req, gw, route)
    replay = replay_request(wire.to_dto(_request_data(req, route, gw), WebhookReplayRequest))
    delivery = gw.use.delivery
    endpoint = await gw.use.webhooks.get(licensee, req.route_params.get("endpointId", ""))
    if replay.event_id is not None:
        return replay_response(1, event_id=(await delivery.replay_event(endpoint, replay.event_id)).id)
    queued, token = await delivery.replay_range(endpoint, replay.start, replay.end, replay.token)
    return replay_response(queued, token=token)


# The licensee's own routing table, with its key (or an admin key acting for it: _acting_for).

async def _routes_show(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    """Its own table as stored now (not a process's cached copy), or the deployment's default, saying which."""
    licensees = gw.use.licensees
    own = await licensees.routes(await _licensee(req, gw, route), cached=False)
    return routing_table_state(own or licensees.default_routes, own is not None)


async def _routes_set(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    licensee = await _licensee(req, gw, route)
    licensees = gw.use.licensees
    request = wire.to_dto(_request_data(req, route, gw), RoutingTableRequest)
    return routing_table_state(await licensees.set_routes(licensee, licensees.parse_routes(routing_rules(request))), own=True)


async def _routes_clear(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    licensees = gw.use.licensees
    await licensees.set_routes(await _licensee(req, gw, route), None)
    return routing_table_state(licensees.default_routes, own=False)


# The licensee's guard, with its key: it may read it and tighten it; loosening it takes the operator (python -m sms guard set)
# or an admin key acting for the licensee.

async def _guard_show(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    """Its own guard as stored now (not a process's cached copy), or the deployment's default, saying which."""
    licensee = await _licensee(req, gw, route)
    guard, own = await gw.use.licensees.stored_guard(licensee)  # one read: its parts agree with each other
    return guard_state(guard, own, gw.use.screening.currency, await gw.use.spend.spent(licensee, guard.caps),
                       await gw.use.pumping.blocks(licensee))


async def _guard_set(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    principal, licensee = await _acting_for(req, gw, route)  # an admin key may loosen, as the operator's guard set does
    guard = await gw.use.licensees.set_guard(licensee, guard_change(_request_data(req, route, gw)), may_loosen=principal.is_admin)
    return guard_state(guard, True, gw.use.screening.currency)


async def _guard_clear(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    """Back to the deployment's default: refused (403) where the default permits more than the licensee's own."""
    principal, licensee = await _acting_for(req, gw, route)
    guard = await gw.use.licensees.set_guard(licensee, None, may_loosen=principal.is_admin, clear=True)
    return guard_state(guard, False, gw.use.screening.currency)


# The licensee's own settings, with its key: its quiet hours and time zone, through the use case `python -m sms licensees set`
# uses (the same checks, the same ETag-guarded write of the row its routes and guard share).

async def _settings_show(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    return licensee_settings_state(await gw.use.licensees.settings(await _licensee(req, gw, route)))


async def _settings_set(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    licensee = await _licensee(req, gw, route)
    request = wire.to_dto(_request_data(req, route, gw), SetLicenseeSettings)
    return licensee_settings_state(await gw.use.licensees.set(
        licensee, quiet_hours=request.quiet_hours, no_quiet_hours=bool(request.no_quiet_hours), time_zone=request.time_zone))


# API keys (issue 29): the key the request carries, for any key; every licensee's keys, for an admin key only
# (routes.ADMIN_KINDS, checked by _authorized). The use cases are the CLI's (python -m sms keys).

def _key_id(req: func.HttpRequest) -> str:
    return req.route_params.get("keyId", "").lower()


async def _keys_current(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    """The key the request carries, as stored now: the console's sign-in probe (who am I, and what may I do)."""
    principal = await _principal(req, gw, route)
    record = await gw.auth.keys.get(principal.key_id)
    if record is None:  # revoked and gone from storage while this worker still held it
        raise NotFound(f"No API key with id {principal.key_id}")
    return api_key_state(record)


async def _keys_list(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    await _principal(req, gw, route)
    return api_key_list(await gw.auth.keys.list(key_licensee(req.params)))


async def _keys_create(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    await _principal(req, gw, route)
    asked = key_request(wire.to_dto(_request_data(req, route, gw), CreateApiKey))
    key = await issue_key(gw.auth.keys, asked.licensee_id, asked.name, asked.expires_at, asked.role, asked.read_only)
    record = await gw.auth.keys.get(key[4:20])
    return api_key_state(record, key)


async def _keys_rotate(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    await _principal(req, gw, route)
    # The body is optional (graceHours has a default); one sent chunked still gets _request_data's answer.
    chunked = "chunked" in req.headers.get("Transfer-Encoding", "").lower()
    data = _request_data(req, route, gw) if req.get_body() or chunked else {}
    grace = grace_period(wire.to_dto(data, RotateApiKey))
    return api_key_rotation(await rotate_key_of(gw.auth.keys, _key_id(req), grace))


async def _keys_revoke(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    await _principal(req, gw, route)
    record = await revoke_key(gw.auth.keys, _key_id(req))
    gw.auth.forget(record.key_id)  # refused at once here; other workers within SMS_API_KEY_CACHE_SECONDS
    return api_key_state(record)


# opt-outs (issue 29): the licensee's own list and each number's history; manual changes of its own scope only, each
# recorded with its reason and the key that made it (sms.usecases.optouts says in which order the two stores are written).

async def _optouts_list(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    licensee = await _licensee(req, gw, route)
    prefix, take, token = opt_out_query(req.params, gw.settings.default_region)
    return opt_out_list(*await gw.use.opt_out_list.page(licensee, prefix, take, token))


async def _optouts_history(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    licensee = await _licensee(req, gw, route)
    number = opt_out_number(query_value(req.params, "phoneNumber"), gw.settings.default_region)
    return opt_out_history(number, licensee, await gw.use.opt_out_list.history(licensee, number))


async def _optouts_add(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    principal, licensee = await _acting_for(req, gw, route)  # the key that made the change is kept with it
    request = wire.to_dto(_request_data(req, route, gw), AddOptOut)
    number, reason = opt_out_request(request.phone_number, request.reason, gw.settings.default_region)
    change = await gw.use.opt_outs.add(licensee, number, reason, principal.key_id)
    return opt_out_state(change, await gw.use.opt_out_list.others(number))


async def _optouts_remove(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    """IDelete: its fields in the query string, as ServiceStack's clients send them."""
    principal, licensee = await _acting_for(req, gw, route)
    asked = (query_value(req.params, name) for name in ("phoneNumber", "reason"))
    number, reason = opt_out_request(*asked, gw.settings.default_region)
    change = await gw.use.opt_outs.remove(licensee, number, reason, principal.key_id)
    return opt_out_state(change, await gw.use.opt_out_list.others(number))


# Issue 29: every licensee, for an admin key (routes.ADMIN_KINDS); the webhook events one message produced, for any key.

async def _licensees_list(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    await _principal(req, gw, route)
    return licensee_list(await gw.use.licensees.directory(await gw.auth.keys.list(), utcnow()))


async def _events(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    """Another licensee's message answers as a missing one does (404), as GET /api/sms/{commId} does."""
    licensee = await _licensee(req, gw, route)
    comm_id = _comm_id(req)
    take, token = events_page(req.params)
    return webhook_event_list(comm_id, *await gw.use.status.events(comm_id, licensee, take, token))


# -- the routes that answer in their own shape: no key, no ServiceStack errors ----------------------------


async def _health(req: func.HttpRequest, route: Route, gateway: GatewaySource) -> func.HttpResponse:
    """For load balancers and people: 200 when storage and a provider answer (degraded: one of several does
    not, and routes fail over to the others), else 503. Each provider's breaker in this worker beside its
    own answer. No key needed."""
    try:
        gw = await gateway()
        report = await gw.health()
        circuits = gw.use.breakers.circuits()
        for provider in report.get("providers", []):
            provider["breaker"] = circuits[provider["name"]].state.value if provider["name"] in circuits else "closed"
    except ConfigError as error:
        log.error("gateway misconfigured: %s", error)
        report = {"status": "unhealthy", "configuration": "invalid; see the logs"}
    fmt = wire.response_format(req.params.get("format"), None, req.headers.get("Accept"))
    return document_response(report, fmt, 503 if report["status"] == "unhealthy" else 200)


async def _openapi(req: func.HttpRequest, route: Route, gateway: GatewaySource) -> func.HttpResponse:
    return func.HttpResponse(openapi.document_json(), status_code=200, headers={"Content-Type": "application/json; charset=utf-8"})


async def _metadata(req: func.HttpRequest, route: Route, gateway: GatewaySource) -> func.HttpResponse:
    return html_page(metadata.page())


async def _types(req: func.HttpRequest, route: Route, gateway: GatewaySource) -> func.HttpResponse:
    return reference.types(req, route.path)


async def _metadata_page(req: func.HttpRequest, route: Route, gateway: GatewaySource) -> func.HttpResponse:
    return reference.metadata_page(req, route)


async def _console(req: func.HttpRequest, route: Route, gateway: GatewaySource) -> func.HttpResponse:
    return operator_console.serve(req)


# Each route kind (sms.entrypoints.routes.Route.kind) and its code: a route's function is `_function(route, ...)` over it.
async def _providers(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel:
    await _licensee(req, gw, route)  # any key: which providers there are, and how they fare, is no licensee's secret
    return providers_response(gw.use.dispatch.provider_names, gw.use.breakers.circuits())


_WORK: dict[str, Work] = {
    "send": _send, "send_now": _send_now, "batch": _batch, "reply": _reply, "estimate": _estimate, "status": _status, "cancel": _cancel,
    "replies": _replies, "list": _list, "usage": _usage, "providers": _providers,
    "webhooks_list": _webhooks_list, "webhooks_add": _webhooks_add,
    "webhooks_remove": _webhooks_remove, "webhooks_rotate_secret": _webhooks_rotate_secret,
    "webhooks_enable": _webhooks_enable, "webhooks_deliveries": _webhooks_deliveries, "webhooks_replay": _webhooks_replay,
    "routes_show": _routes_show, "routes_set": _routes_set, "routes_clear": _routes_clear,
    "guard_show": _guard_show, "guard_set": _guard_set, "guard_clear": _guard_clear,
    "settings_show": _settings_show, "settings_set": _settings_set,
    "keys_current": _keys_current, "keys_list": _keys_list, "keys_create": _keys_create, "keys_rotate": _keys_rotate,
    "keys_revoke": _keys_revoke,
    "optouts_list": _optouts_list, "optouts_history": _optouts_history, "optouts_add": _optouts_add,  # opt-outs
    "optouts_remove": _optouts_remove,
    "licensees_list": _licensees_list, "events": _events,  # issue 29
}
_OWN_SHAPE: dict[str, Callable[[func.HttpRequest, Route, GatewaySource], Awaitable[func.HttpResponse]]] = {
    "health": _health, "openapi": _openapi, "metadata": _metadata, "types": _types, "metadata_page": _metadata_page,
    "console": _console,
}


def _function(route: Route, gateway: GatewaySource) -> Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]:
    """The function the host calls for `route`: its kind's work, answered by `_respond` (or in its own shape)."""
    if route.kind in _OWN_SHAPE:
        own = _OWN_SHAPE[route.kind]

        async def answer(req: func.HttpRequest) -> func.HttpResponse:
            return await own(req, route, gateway)

        return answer
    work = _WORK[route.kind]
    operation = named.operation_of(route)
    if operation is not None:  # /api/{Operation}: the operation's own route's work, its path values found in the request
        own_work, own_route = work, operation.routes[0]

        async def work(req: func.HttpRequest, gw: Gateway, route: Route) -> BaseModel | list[BaseModel]:
            # The key first, as every route checks it before the request (the work checks it again: a cached record);
            # this route's kind is its own route's, and a refusal names the route called.
            await _authorized(req, gw, route)
            return await own_work(named.as_own_route(req, operation, gw.settings.max_request_bytes), gw, own_route)

    async def respond(req: func.HttpRequest) -> func.HttpResponse:
        return await _respond(req, route, gateway, work)

    return respond


def blueprint(gateway: GatewaySource) -> func.Blueprint:
    """The client API's functions, each working over the Gateway `gateway` gives (built on first use)."""
    return register(func.Blueprint(), dict.fromkeys([*_WORK, *_OWN_SHAPE], _function), gateway, routes=(*ROUTES, *named.NAMED_ROUTES))
