"""Without a tracer provider (no APPLICATIONINSIGHTS_CONNECTION_STRING), no span is made and no
traceparent rides in a job: both cost CPU on every accept and go nowhere. Checked in a fresh
interpreter, since other tests set a provider for this process."""
import subprocess
import sys

from sms.config import PROJECT_ROOT

CHECK = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from sms import telemetry
assert not telemetry.tracing()
with telemetry.span("sms.accept") as span:
    assert span is trace.INVALID_SPAN and telemetry.current_traceparent() is None
trace.set_tracer_provider(TracerProvider())
assert telemetry.tracing()
with telemetry.span("sms.accept") as span:
    assert span.is_recording() and telemetry.current_traceparent().startswith("00-")
    parent = telemetry.current_traceparent()
with telemetry.span("sms.dispatch", traceparent=parent) as child:
    assert format(child.get_span_context().trace_id, "032x") == parent.split("-")[1]
print("ok")
"""


def test_no_span_and_no_traceparent_until_a_tracer_provider_is_set_and_both_after():
    out = subprocess.run([sys.executable, "-c", CHECK], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr
