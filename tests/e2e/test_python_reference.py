"""Add ServiceStack Reference for Python, end to end: the DTOs the dev host serves at /types/python, saved as
dtos.py and imported, drive the real `servicestack` client (PyPI 0.1.15) against the same host. The client sends
each typed request to /api/{ClassName} with the verb of its IGet/IPost/... marker (GET and DELETE fields in the
query string) and reads the answer into the class of its IReturn[...] marker."""
from __future__ import annotations

import datetime
import importlib.util
import sys
import urllib.request

import pytest
from servicestack import JsonServiceClient, WebServiceException

from tests.e2e.conftest import EVENTGRID_SECRET, wait_for

LICENSEE = "28e0" * 8  # this file's own: the lists and usage below see only its messages
PERSON = "+61412702801"
SCHEDULED = "+61412702802"


@pytest.fixture(scope="module")
def dtos(devhost, tmp_path_factory):
    """GET /types/python as a tool fetches it, saved as dtos.py and imported."""
    with urllib.request.urlopen(devhost.base_url + "/types/python", timeout=30) as answer:
        assert answer.status == 200 and answer.headers["Content-Type"].startswith("text/plain")
        text = answer.read().decode()
    assert text.startswith('""" Options:\n') and f"BaseUrl: {devhost.base_url}\n" in text
    path = tmp_path_factory.mktemp("reference") / "dtos.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("dtos_from_the_dev_host", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # the client resolves field types through the module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def client(devhost):
    client = JsonServiceClient(devhost.base_url)
    client.bearer_token = devhost.create_key(LICENSEE)
    return client


@pytest.fixture(scope="module")
def sent(dtos, client):
    """One message to PERSON that allows replies, sent with the typed SMSSend, once handed to the provider."""
    response = client.send(dtos.SMSSend(sms_model=dtos.SMSModel(
        to=[dtos.SMSContact(name="Sam", phone_number=PERSON)], message_body="Typed from the Python reference",
        reply_is_allowed=True, notes="issue 28")))
    assert wait_for(lambda: client.send(dtos.GetSmsStatus(comm_id=response.comm_id)).status == "sent"), response
    return response


def test_smssend_answers_a_comm_response(dtos, sent):
    assert isinstance(sent, dtos.CommResponse)
    assert sent.status is True and len(sent.comm_id) == 32 and sent.message == "Queued for 1 recipient"
    assert (sent.encoding, sent.segments, sent.recipients, sent.blocked) == ("GSM-7", 1, 1, 0)


def test_get_sms_status_reads_the_message(dtos, client, sent, devhost):
    state = client.send(dtos.GetSmsStatus(comm_id=sent.comm_id))
    assert isinstance(state, dtos.MessageState)
    assert (state.comm_id, state.reference, state.licensee_id, state.status) == (sent.comm_id, sent.reference, LICENSEE, "sent")
    assert isinstance(state.created_at, datetime.datetime) and state.created_at.tzinfo is not None
    [recipient] = state.recipients
    assert isinstance(recipient, dtos.RecipientState)
    assert (recipient.phone_number, recipient.name, recipient.status) == (PERSON, "Sam", "sent")
    assert [e.status for e in recipient.timeline][-1] == "sent"
    assert [line["body"] for line in devhost.sent() if line["to"] == PERSON] == ["Typed from the Python reference"]


def test_query_sms_lists_it_by_number_and_by_reference(dtos, client, sent):
    by_number = client.send(dtos.QuerySms(phone_number=PERSON))
    assert isinstance(by_number, dtos.MessageList)
    [summary] = by_number.messages
    assert isinstance(summary, dtos.MessageSummary)
    assert (summary.comm_id, summary.reference, summary.recipient_count) == (sent.comm_id, sent.reference, 1)
    assert isinstance(summary.recipient, dtos.MatchedRecipient)  # a search by number says how that number fared
    assert (summary.recipient.phone_number, summary.recipient.status) == (PERSON, "sent")
    assert summary.preview == "Typed from the Python reference"
    assert [m.comm_id for m in client.send(dtos.QuerySms(reference=sent.reference)).messages] == [sent.comm_id]
    assert client.send(dtos.QuerySms(phone_number="+61412702899")).messages == []


def test_get_usage_counts_it(dtos, client, sent):
    usage = client.send(dtos.GetUsage())
    assert isinstance(usage, dtos.UsageResponse)
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    [day] = [d for d in usage.days if d.day == today]
    assert isinstance(day, dtos.UsageDay) and day.time_zone == "UTC"
    assert day.messages >= 1 and day.recipients >= 1 and day.by_status.get("sent", 0) >= 1


def test_get_sms_replies_reads_a_reply(dtos, client, sent, devhost):
    inbound = {"messageId": "Incoming_python_reference", "from": PERSON, "to": "+61400000000", "message": "Yes please",
               "receivedTimestamp": "2026-11-24T23:00:00Z"}
    status, _ = devhost.request("POST", f"/api/sms/receipts/acs?code={EVENTGRID_SECRET}",
                                [{"id": "python-reference-reply", "eventType": "Microsoft.Communication.SMSReceived", "data": inbound}])
    assert status == 200
    replies = client.send(dtos.GetSmsReplies(comm_id=sent.comm_id))
    assert isinstance(replies, dtos.RepliesResponse) and replies.comm_id == sent.comm_id
    [reply] = replies.replies
    assert isinstance(reply, dtos.ReplyState)
    assert (reply.body, reply.from_number) == ("Yes please", PERSON)
    assert isinstance(reply.received_at, datetime.datetime)


def test_cancel_sms_cancels_a_scheduled_message(dtos, client, devhost):
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    scheduled = client.send(dtos.SMSSend(sms_model=dtos.SMSModel(
        to=[dtos.SMSContact(phone_number=SCHEDULED)], message_body="Not to go", send_at=later.isoformat())))
    assert scheduled.status is True and scheduled.message.startswith("Scheduled for 1 recipient at ")
    cancelled = client.send(dtos.CancelSms(comm_id=scheduled.comm_id))
    assert isinstance(cancelled, dtos.CancelResponse)
    assert (cancelled.comm_id, cancelled.cancelled, cancelled.unaffected) == (scheduled.comm_id, 1, {})
    state = client.send(dtos.GetSmsStatus(comm_id=scheduled.comm_id))
    assert (state.status, state.recipients[0].status) == ("cancelled", "cancelled")
    assert [m.comm_id for m in client.send(dtos.QuerySms(status="cancelled")).messages] == [scheduled.comm_id]


def test_the_settings_reads_answer_their_types(dtos, client):
    """The operations that take no fields: each answers the class its IReturn names."""
    providers = client.send(dtos.GetProviders())
    assert isinstance(providers, dtos.ProvidersResponse) and providers.providers[0].name and providers.providers[0].state == "closed"
    assert client.send(dtos.GetWebhookEndpoints()).endpoints == []
    routes = client.send(dtos.GetRoutingTable())
    assert isinstance(routes, dtos.RoutingTableState) and routes.source == "default"
    guard = client.send(dtos.GetGuard())
    assert isinstance(guard, dtos.GuardState) and guard.source == "default" and isinstance(guard.caps, dtos.GuardCaps)


def test_estimate_sms_prices_a_body_without_sending_it(dtos, client, devhost):
    before = len(devhost.sent())
    estimate = client.send(dtos.EstimateSms(sms_model=dtos.SMSModel(to=[dtos.SMSContact(phone_number="+61412702803")],
                                                                    message_body="How much?")))
    assert isinstance(estimate, dtos.EstimateResponse)
    assert (estimate.encoding, estimate.segments, estimate.recipients, estimate.blocked) == ("GSM-7", 1, 1, 0)
    [line] = estimate.lines
    assert isinstance(line, dtos.RecipientEstimate) and (line.phone_number, line.country, line.action) == ("+61412702803", "AU", "allow")
    assert len(devhost.sent()) == before


def test_the_routing_table_and_guard_writes(dtos, client):
    provider = client.send(dtos.GetProviders()).providers[0].name
    table = client.send(dtos.SetRoutingTable(rules=[dtos.RouteRule(match="*", providers=[provider])]))
    assert isinstance(table, dtos.RoutingTableState) and table.source == "licensee"
    assert [(r.match, r.providers) for r in table.rules] == [("*", [provider])]
    assert client.send(dtos.ResetRoutingTable()).source == "default"
    guard = client.send(dtos.SetGuard(caps=dtos.GuardCaps(daily_segments=500)))
    assert isinstance(guard, dtos.GuardState) and (guard.source, guard.caps.daily_segments) == ("licensee", 500)
    with pytest.raises(WebServiceException) as refused:  # back to the default loosens it: the operator's call
        client.send(dtos.ResetGuard())
    assert refused.value.status_code == 403 and "DailySegments" in refused.value.response_status.message


def test_the_licensee_settings_read_and_write(dtos, client):
    """Quiet hours set, read and cleared (noQuietHours: a null is left out of what the client sends, and keeps them)."""
    quiet = client.send(dtos.SetLicenseeSettings(quiet_hours="21:00-08:00", time_zone="Australia/Sydney"))
    assert isinstance(quiet, dtos.LicenseeSettingsState) and quiet.licensee_id == LICENSEE
    assert (quiet.quiet_hours, quiet.time_zone) == ("21:00-08:00", "Australia/Sydney") and quiet.updated_at is not None
    read = client.send(dtos.GetLicenseeSettings())
    assert (read.quiet_hours, read.time_zone) == ("21:00-08:00", "Australia/Sydney")
    assert client.send(dtos.SetLicenseeSettings(quiet_hours=None, time_zone="Europe/London")).quiet_hours == "21:00-08:00"
    cleared = client.send(dtos.SetLicenseeSettings(no_quiet_hours=True, time_zone="UTC"))
    assert (cleared.quiet_hours, cleared.time_zone) == (None, "UTC")
    with pytest.raises(WebServiceException) as refused:
        client.send(dtos.SetLicenseeSettings(time_zone="Mars/Olympus_Mons"))
    assert refused.value.status_code == 400 and refused.value.response_status.errors[0].field_name == "TimeZone"


def test_a_webhook_endpoints_life(dtos, client):
    added = client.send(dtos.AddWebhookEndpoint(url="https://hooks.example.com/sms", event_types=["message.delivered"]))
    assert isinstance(added, dtos.WebhookEndpointState) and added.secret and added.enabled is True
    assert [e.endpoint_id for e in client.send(dtos.GetWebhookEndpoints()).endpoints] == [added.endpoint_id]
    rotated = client.send(dtos.RotateWebhookSecret(endpoint_id=added.endpoint_id))
    assert rotated.secret and rotated.secret != added.secret and rotated.previous_secret_expires_at is not None
    assert client.send(dtos.EnableWebhookEndpoint(endpoint_id=added.endpoint_id)).enabled is True
    deliveries = client.send(dtos.GetWebhookDeliveries(endpoint_id=added.endpoint_id))
    assert isinstance(deliveries, dtos.WebhookDeliveryList) and deliveries.deliveries == []
    now = datetime.datetime.now(datetime.timezone.utc)
    replayed = client.send(dtos.ReplayWebhookEvents(endpoint_id=added.endpoint_id, from_=(now - datetime.timedelta(hours=2)).isoformat(),
                                                    to=(now - datetime.timedelta(hours=1)).isoformat()))
    assert isinstance(replayed, dtos.WebhookReplayResponse) and replayed.queued == 0  # before this licensee sent anything
    removed = client.send(dtos.DeleteWebhookEndpoint(endpoint_id=added.endpoint_id))
    assert (removed.endpoint_id, removed.removed) == (added.endpoint_id, True)
    assert client.send(dtos.GetWebhookEndpoints()).endpoints == []
