"""HTTP blueprint for the SMS vendors' callbacks: delivery receipts and inbound SMS.

Registered from the route table in sms.routes, like the client API in sms.api.
"""
from __future__ import annotations

import hmac
import logging
from typing import Awaitable, Callable
from urllib.parse import urlsplit

import azure.functions as func
from twilio.request_validator import RequestValidator

from ..config import Settings
from ..domain.errors import GatewayError, Unauthenticated
from ..domain.model import InboundSms, utcnow
from ..domain.phone import mask_numbers
from ..gateway import Gateway
from ..logs import log_unexpected
from ..wire import callbacks
from ..wire.http import error_response, json_response
from .routes import Route, register

log = logging.getLogger("sms.callbacks")

GatewaySource = Callable[[], Awaitable[Gateway]]
VendorWork = Callable[[func.HttpRequest, Gateway], Awaitable[func.HttpResponse]]


async def _respond(req: func.HttpRequest, gateway: GatewaySource, work: VendorWork) -> func.HttpResponse:
    """Run a callback's work. Vendors read only the status code: 2xx is done, anything else is delivered again later."""
    try:
        return await work(req, await gateway())
    except GatewayError as error:
        if not isinstance(error, Unauthenticated):
            log.warning("callback refused: %s", mask_numbers(error.message))
        return error_response(error)
    except Exception as error:
        log_unexpected(log, "callback failed", error)
        return error_response(GatewayError("An unexpected error occurred", "InternalServerError"))


async def _receipts_acs(req: func.HttpRequest, gw: Gateway) -> func.HttpResponse:
    """Event Grid: the subscription handshake, delivery reports and inbound SMS from ACS."""
    secret = gw.settings.eventgrid_secret
    code = req.params.get("code", "").encode("utf-8", "surrogatepass")  # any text, even a lone surrogate
    if not secret or not hmac.compare_digest(code, secret.encode()):
        # Event Grid does not sign its deliveries: the endpoint URL carries a secret instead.
        raise Unauthenticated("Missing or wrong ?code= (set SMS_EVENTGRID_SECRET and put it in the subscription's URL)")
    if req.method.upper() == "OPTIONS":  # CloudEvents' webhook validation handshake
        origin = req.headers.get("WebHook-Request-Origin", "*")
        return func.HttpResponse(status_code=200, headers={"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*"})
    for event in callbacks.grid_events(req.get_body()):
        if event.type == callbacks.SUBSCRIPTION_VALIDATION:
            return json_response({"validationResponse": event.field("validationCode")}, content_type="application/json")
        if event.type == callbacks.DELIVERY_REPORT:
            status = callbacks.acs_delivery_status(event)
            if status is None:
                log.info("ACS delivery report %s with status %s: nothing to record", event.id, _shown(event.field("deliveryStatus")))
                continue
            await gw.use.inbound.apply_receipt(event.text("tag", callbacks.TEXT) or "", status,
                                           event.text("messageId", callbacks.OPTIONAL_MESSAGE_ID),
                                           event.text("deliveryStatusDetails", callbacks.TEXT), provider="acs")
        elif event.type == callbacks.SMS_RECEIVED:
            message_id = event.field("messageId") or event.id
            await gw.use.inbound.receive(InboundSms(
                from_number=event.text("from", callbacks.SENDER_NUMBER), to_number=event.text("to", callbacks.OUR_NUMBER) or "",
                body=event.text("message", callbacks.INBOUND_TEXT),
                received_at=callbacks.timestamp(event.field("receivedTimestamp")), provider="acs",
                provider_message_id=callbacks.checked(callbacks.MESSAGE_ID, "messageId", message_id, f"SMSReceived event {event.id}"),
            ))
        else:
            log.info("Event Grid event %s of type %s is not one the gateway reads; ignored", event.id, _shown(event.type))
    return json_response({}, content_type="application/json")


def _twilio_form(req: func.HttpRequest, settings: Settings) -> tuple[dict[str, str], str]:
    """The callback's form fields, once X-Twilio-Signature proves Twilio sent them, and the provider
    instance whose account signed it (each Twilio account signs with its own auth token)."""
    tokens = [(p.name, p.auth_token) for p in settings.providers if p.kind == "twilio" and p.auth_token]
    tokens += [("twilio", settings.twilio_auth_token)] if settings.twilio_auth_token else []
    if not tokens or not settings.public_base_url:
        raise Unauthenticated("Twilio callbacks need a Twilio provider's auth token and SMS_PUBLIC_BASE_URL to be set")
    fields = callbacks.form_fields(req.get_body())
    # Twilio signs the URL it called: our public base URL, not what the host behind a proxy sees.
    called = urlsplit(req.url)
    url = settings.public_base_url + called.path + (f"?{called.query}" if called.query else "")
    signature = req.headers.get("X-Twilio-Signature", "")
    signer = next((name for name, token in tokens if RequestValidator(token).validate(url, fields, signature)), None)
    if signer is None:
        raise Unauthenticated("X-Twilio-Signature does not match this request")
    return fields, signer


async def _receipts_twilio(req: func.HttpRequest, gw: Gateway) -> func.HttpResponse:
    fields, _ = _twilio_form(req, gw.settings)
    status = callbacks.twilio_status(fields.get("MessageStatus", ""))
    if status is not None:
        error_code = callbacks.form_text(fields, "ErrorCode", callbacks.TEXT)
        await gw.use.inbound.apply_receipt(
            req.params.get("ref", ""), status, callbacks.form_text(fields, "MessageSid", callbacks.OPTIONAL_MESSAGE_ID),
            f"Twilio error {error_code}" if error_code else None, provider="twilio")
    return func.HttpResponse(status_code=204)


_EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


async def _inbound_twilio(req: func.HttpRequest, gw: Gateway) -> func.HttpResponse:
    fields, _ = _twilio_form(req, gw.settings)
    await gw.use.inbound.receive(InboundSms(
        from_number=callbacks.form_text(fields, "From", callbacks.SENDER_NUMBER),
        to_number=callbacks.form_text(fields, "To", callbacks.OUR_NUMBER) or "",
        body=callbacks.form_text(fields, "Body", callbacks.OPTIONAL_INBOUND_TEXT) or "", received_at=utcnow(),
        provider="twilio", provider_message_id=callbacks.form_text(fields, "MessageSid", callbacks.MESSAGE_ID),
    ))
    # An empty TwiML answer: Twilio sends nothing back to the person.
    return func.HttpResponse(_EMPTY_TWIML, status_code=200, headers={"Content-Type": "text/xml"})


def _shown(value: object) -> str:
    """A vendor's value as a log may show it: short, and with any phone number in it masked."""
    return mask_numbers(repr(value)[:80])


# Each callback route kind (sms.entrypoints.routes.Route.kind) and its code.
_WORK: dict[str, VendorWork] = {"receipts_acs": _receipts_acs, "receipts_twilio": _receipts_twilio, "inbound_twilio": _inbound_twilio}


def _function(route: Route, gateway: GatewaySource) -> Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]:
    work = _WORK[route.kind]

    async def respond(req: func.HttpRequest) -> func.HttpResponse:
        return await _respond(req, gateway, work)

    return respond


def blueprint(gateway: GatewaySource) -> func.Blueprint:
    """The vendors' callbacks, each working over the Gateway `gateway` gives (built on first use)."""
    return register(func.Blueprint(), dict.fromkeys(_WORK, _function), gateway)
