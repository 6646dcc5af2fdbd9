"""Traces and counters, sent to Application Insights when APPLICATIONINSIGHTS_CONNECTION_STRING is set.

One trace follows a message from HTTP accept through the queue (the job carries a W3C traceparent,
an id, not a body) to each provider call. Counters: recipients accepted, sent, failed, delivered,
by provider. No phone number or message body is ever put in a span or a metric.
"""
from __future__ import annotations

import logging
import os

from opentelemetry import context, metrics, propagate, trace

log = logging.getLogger("sms.telemetry")

tracer = trace.get_tracer("sms")
_meter = metrics.get_meter("sms")
accepted = _meter.create_counter("sms.recipients.accepted", unit="{recipient}", description="Recipients accepted for sending")
sent = _meter.create_counter("sms.recipients.sent", unit="{recipient}", description="Recipients the provider accepted")
failed = _meter.create_counter("sms.recipients.failed", unit="{recipient}", description="Recipients that failed for good")
delivered = _meter.create_counter("sms.recipients.delivered", unit="{recipient}", description="Delivery receipts saying delivered")

_configured = False


def configure(environ: dict[str, str] | None = None) -> bool:
    """Send telemetry to Azure Monitor when configured; once per process, never at import time."""
    global _configured
    env = os.environ if environ is None else environ
    if _configured or not env.get("APPLICATIONINSIGHTS_CONNECTION_STRING"):
        return False
    from azure.monitor.opentelemetry import configure_azure_monitor

    configure_azure_monitor(connection_string=env["APPLICATIONINSIGHTS_CONNECTION_STRING"], logger_name="sms")
    _configured = True
    log.info("telemetry goes to Application Insights")
    return True


def current_traceparent() -> str | None:
    """The active trace as a W3C traceparent, to ride in a queue message."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def continued(traceparent: str | None) -> context.Context:
    """The context a job's traceparent names, so the worker's spans join the accepting request's trace."""
    return propagate.extract({"traceparent": traceparent} if traceparent else {})
