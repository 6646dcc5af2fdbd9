"""Telemetry: one trace from accept through the queue to the provider, counters, and no personal data."""
import json

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sms import telemetry
from sms.domain.model import SendJob, Status
from tests.fakes import ALEX, SAM, World

_spans = InMemorySpanExporter()
_metrics = InMemoryMetricReader()


@pytest.fixture(scope="module", autouse=True)
def sdk():
    """Real OpenTelemetry SDK providers with in-memory exporters (set once: OpenTelemetry allows one per process)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_spans))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[_metrics]))


def counter(name: str) -> dict[str, int]:
    found = {}
    for resource in _metrics.get_metrics_data().resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        found[point.attributes.get("provider", "")] = point.value
    return found


async def test_one_trace_follows_a_message_from_accept_through_the_queue_to_the_provider():
    _spans.clear()
    world = World()
    comm_id = await world.send(SAM, ALEX)  # accepts, then dispatches the queued job (as the worker would)

    spans = {s.name: s for s in _spans.get_finished_spans()}
    accept, dispatch = spans["sms.accept"], spans["sms.dispatch"]
    sends = [s for s in _spans.get_finished_spans() if s.name == "sms.provider.send"]
    assert len(sends) == 2
    assert {s.context.trace_id for s in (accept, dispatch, *sends)} == {accept.context.trace_id}
    assert dispatch.parent.span_id == accept.context.span_id  # carried by the job's traceparent
    assert all(s.parent.span_id == dispatch.context.span_id for s in sends)
    assert accept.attributes["sms.comm_id"] == comm_id and accept.attributes["sms.recipients"] == 2
    assert {s.attributes["sms.outcome"] for s in sends} == {"sent"}


def test_jobs_carry_the_traceparent_and_old_jobs_without_one_still_read():
    job = SendJob("a" * 32, 0, 9, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    assert SendJob.from_json(job.to_json()).traceparent == job.traceparent
    assert SendJob.from_json('{"commId":"' + "a" * 32 + '","first":0,"last":9}').traceparent is None
    assert json.loads(SendJob("a" * 32, 0, 9).to_json()) == {"commId": "a" * 32, "first": 0, "last": 9}


async def test_counters_by_provider():
    world = World()
    before = counter("sms.recipients.sent").get("recording", 0), counter("sms.recipients.accepted").get("recording", 0)
    comm_id = await world.send(SAM, ALEX)
    assert counter("sms.recipients.accepted")["recording"] - before[1] == 2
    assert counter("sms.recipients.sent")["recording"] - before[0] == 2
    delivered = counter("sms.recipients.delivered").get("acs", 0)
    await world.inbound.apply_receipt(f"{comm_id}:0", Status.DELIVERED, provider="acs")
    assert counter("sms.recipients.delivered")["acs"] - delivered == 1


async def test_no_phone_number_or_body_in_any_span_or_metric():
    _spans.clear()
    world = World()
    await world.send(SAM, ALEX)
    exported = json.dumps([dict(s.attributes) | {"name": s.name} for s in _spans.get_finished_spans()])
    exported += _metrics.get_metrics_data().to_json()
    for secret in (SAM, ALEX, SAM[1:], "Hello"):
        assert secret not in exported


def test_azure_monitor_is_configured_only_when_its_connection_string_is_set():
    assert telemetry.configure({}) is False
