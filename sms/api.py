"""HTTP blueprint: request -> auth and wire decode -> service -> wire encode. Nothing else."""
from __future__ import annotations

import logging
from typing import Awaitable, Callable

import azure.functions as func

from . import wire
from .bootstrap import gateway
from .config import ConfigError
from .errors import FieldError, GatewayError, StorageUnavailable, ValidationFailed

log = logging.getLogger("sms.api")

bp = func.Blueprint()

# The seed's routes (below the host's "api" prefix), plus /api/SMSSend where ServiceStack
# clients post by default. Function names are what the Functions host and portal show.
QUEUED_ROUTES = {
    "send_message": "sendmessage",
    "send": "send",
    "sms_send": "sms/send",
    "sms_send_servicestack": "SMSSend",
}
IMMEDIATE_ROUTES = {
    "send_message_immediate": "sendmessage/immediate",
    "send_immediate": "send/immediate",
    "sms_send_immediate": "sms/send/immediate",
}


def _json(status: int, body: bytes) -> func.HttpResponse:
    return func.HttpResponse(body, status_code=status, mimetype="application/json", charset="utf-8")


async def _answer(work: Callable[[], Awaitable[bytes]]) -> func.HttpResponse:
    """Run a handler's work; every failure becomes ServiceStack's error shape, never a stack trace."""
    try:
        return _json(200, await work())
    except GatewayError as error:
        if isinstance(error, StorageUnavailable):
            log.warning("storage unavailable: %r", error.__cause__)
        return _json(wire.error_status(error), wire.encode_error(error))
    except ConfigError as error:
        log.error("gateway misconfigured: %s", error)
        return _json(503, wire.encode_error(StorageUnavailable("The gateway is not configured correctly; see its logs")))
    except Exception:
        log.exception("unhandled error")
        return _json(500, wire.encode_error(GatewayError("An unexpected error occurred", "InternalServerError")))


async def _licensee(req: func.HttpRequest) -> str:
    gw = await gateway()
    return await gw.auth.licensee_for(wire.bearer_token(req.headers.get("Authorization")))


def _send_handler(immediate: bool):
    async def send(req: func.HttpRequest) -> func.HttpResponse:
        async def work() -> bytes:
            licensee = await _licensee(req)
            request = wire.decode_send_request(req.get_body())
            sms = (await gateway()).sms
            return wire.encode(await (sms.send_now if immediate else sms.accept)(request, licensee))

        return await _answer(work)

    return send


for _name, _route in {**QUEUED_ROUTES, **IMMEDIATE_ROUTES}.items():
    bp.function_name(_name)(
        bp.route(route=_route, methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)(
            _send_handler(immediate=_name in IMMEDIATE_ROUTES)
        )
    )


@bp.function_name("sms_status")
@bp.route(route="sms/{commId}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def sms_status(req: func.HttpRequest) -> func.HttpResponse:
    async def work() -> bytes:
        licensee = await _licensee(req)
        raw_id = req.route_params.get("commId", "")
        try:
            comm_id = wire.parse_guid(raw_id)
        except ValueError:
            comm_id = None
        if comm_id is None:
            raise ValidationFailed([FieldError("commId", "InvalidGuid", f"commId '{raw_id}' is not a Guid")])
        return wire.encode(await (await gateway()).sms.status(comm_id, licensee))

    return await _answer(work)
