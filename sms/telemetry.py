"""Traces and counters, sent to Application Insights when APPLICATIONINSIGHTS_CONNECTION_STRING is set.

One trace follows a message from HTTP accept through the queue (the job carries a W3C traceparent,
an id, not a body) to each provider call. Counters: recipients accepted, sent, failed, delivered,
by provider. No phone number or message body is ever put in a span or a metric.
"""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, ContextManager

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


def tracing() -> bool:
    """Whether spans go anywhere: a tracer provider has been set (configure(), or a test's). Until then
    OpenTelemetry's default makes spans that record nothing, which still cost their context switches
    and the job's traceparent (about 9 us of an accept's CPU, measured): skipped."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


_NO_SPAN = contextlib.nullcontext(trace.INVALID_SPAN)  # reusable, and set_attribute on it does nothing


def span(name: str, attributes: dict[str, Any] | None = None, traceparent: str | None = None) -> ContextManager[trace.Span]:
    """A span named `name` (continuing the trace `traceparent` names, when given), or nothing at all
    when no tracer provider is set."""
    if not tracing():
        return _NO_SPAN
    parent = continued(traceparent) if traceparent is not None else None
    return tracer.start_as_current_span(name, context=parent, attributes=attributes)


def current_traceparent() -> str | None:
    """The active trace as a W3C traceparent, to ride in a queue message (None when not tracing)."""
    if not tracing():
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def continued(traceparent: str | None) -> context.Context:
    """The context a job's traceparent names, so the worker's spans join the accepting request's trace."""
    return propagate.extract({"traceparent": traceparent} if traceparent else {})
