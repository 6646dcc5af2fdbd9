"""The vendors' callback functions, called as the Functions worker calls them, over fakes."""
import json
from urllib.parse import urlencode

import azure.functions as func
import pytest
from twilio.request_validator import RequestValidator

from sms.model import Status
from sms.storage import EVERY_LICENSEE
from tests.fakes import SAM
from tests.unit.conftest import PUBLIC, SECRET, TOKEN


def call(gw, name, path, body=b"", method="POST", headers=None, params=None):
    query = f"?{urlencode(params)}" if params else ""
    req = func.HttpRequest(method, f"http://internal-host:7071{path}{query}", headers=headers or {}, params=params or {}, body=body)
    return gw.functions[name](req)


def grid(gw, events, code=SECRET, method="POST", headers=None):
    params = {"code": code} if code is not None else {}
    return call(gw, "receipts_acs", "/api/sms/receipts/acs", json.dumps(events).encode(), method, headers, params)


def twilio_call(gw, name, path, fields, params=None, sign_with=TOKEN, signature=None):
    query = f"?{urlencode(params)}" if params else ""
    if signature is None:
        signature = RequestValidator(sign_with).compute_signature(f"{PUBLIC}{path}{query}", fields)
    headers = {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}
    return call(gw, name, path, urlencode(fields).encode(), headers=headers, params=params)


@pytest.mark.parametrize("code", [None, "", "wrong"])
async def test_event_grid_without_the_secret_is_refused(gw, code):
    response = await grid(gw, [{"id": "1", "eventType": "x", "data": {}}], code=code)
    assert response.status_code == 401


async def test_event_grid_subscription_handshake(gw):
    events = [{"id": "1", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "data": {"validationCode": "512d38b6"}}]
    response = await grid(gw, events)
    assert response.status_code == 200 and json.loads(response.get_body()) == {"validationResponse": "512d38b6"}
    options = await grid(gw, [], method="OPTIONS", headers={"WebHook-Request-Origin": "eventgrid.azure.net"})
    assert options.status_code == 200 and options.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"


def delivery_report(tag, status="Delivered", details="No error."):
    return {"messageId": "Outgoing_1", "from": "+61400000000", "to": SAM, "deliveryStatus": status,
            "deliveryStatusDetails": details, "receivedTimestamp": "2026-11-24T23:00:00Z", "tag": tag}


async def test_acs_delivery_reports_in_both_event_schemas(gw):
    first = await gw.world.send(SAM)
    second = await gw.world.send(SAM)
    grid_schema = [{"id": "e1", "eventType": "Microsoft.Communication.SMSDeliveryReportReceived", "data": delivery_report(f"{first}:0")}]
    cloud_event = {"id": "e2", "specversion": "1.0", "type": "Microsoft.Communication.SMSDeliveryReportReceived",
                   "source": "/acs", "data": delivery_report(f"{second}:0", "Failed", "Handset unreachable")}
    assert (await grid(gw, grid_schema)).status_code == 200
    assert (await grid(gw, cloud_event)).status_code == 200
    assert (await gw.world.recipient(first)).status is Status.DELIVERED
    undelivered = await gw.world.recipient(second)
    assert (undelivered.status, undelivered.last_error) == (Status.UNDELIVERED, "Handset unreachable")


async def test_acs_inbound_stop_opts_out(gw):
    event = {"id": "e3", "eventType": "Microsoft.Communication.SMSReceived",
             "data": {"messageId": "Incoming_1", "from": SAM, "to": "+61400000000", "message": "STOP", "receivedTimestamp": "2026-11-24T23:00:00Z"}}
    assert (await grid(gw, [event])).status_code == 200
    assert gw.world.opt_out_store.scopes == {EVERY_LICENSEE: {SAM}}


async def test_acs_events_with_pascalcase_keys_are_read_not_dropped(gw):
    comm_id = await gw.world.send(SAM)
    report = {"EventType": "Microsoft.Communication.SMSDeliveryReportReceived", "Id": "e4",
              "Data": {"MessageId": "Outgoing_2", "DeliveryStatus": "Delivered", "Tag": f"{comm_id}:0"}}
    inbound = {"Id": "e5", "EventType": "Microsoft.Communication.SMSReceived",
               "Data": {"MessageId": "Incoming_2", "From": SAM, "To": "+61400000000", "Message": "STOP"}}
    assert (await grid(gw, [report, inbound])).status_code == 200
    delivered = await gw.world.recipient(comm_id)
    assert delivered.status is Status.DELIVERED
    assert gw.world.opt_out_store.scopes == {EVERY_LICENSEE: {SAM}}


async def test_an_inbound_sms_without_a_sender_is_refused_with_a_logged_reason(gw, caplog):
    event = {"id": "e6", "eventType": "Microsoft.Communication.SMSReceived", "data": {"messageId": "Incoming_3", "text": "STOP"}}
    response = await grid(gw, [event])
    assert response.status_code == 400  # Event Grid does not retry a 400: it dead-letters the event
    assert "SMSReceived event e6 has no 'from'" in json.loads(response.get_body())["responseStatus"]["message"]
    assert any("SMSReceived event e6 has no 'from'" in r.getMessage() for r in caplog.records)
    assert gw.world.opt_out_store.scopes == {}


async def test_malformed_event_grid_bodies_are_400(gw):
    response = await call(gw, "receipts_acs", "/api/sms/receipts/acs", b"{not json", params={"code": SECRET})
    assert response.status_code == 400


async def test_twilio_status_callbacks_need_a_valid_signature(gw):
    comm_id = await gw.world.send(SAM)
    fields = {"MessageSid": "SM1", "MessageStatus": "delivered", "To": SAM}
    ref = {"ref": f"{comm_id}:0"}

    forged = await twilio_call(gw, "receipts_twilio", "/api/sms/receipts/twilio", fields, ref, sign_with="not-the-token")
    unsigned = await twilio_call(gw, "receipts_twilio", "/api/sms/receipts/twilio", fields, ref, signature="")
    assert forged.status_code == unsigned.status_code == 401
    assert (await gw.world.recipient(comm_id)).status is Status.SENT

    # The signature covers the URL Twilio called (our public one), not the host's internal one.
    genuine = await twilio_call(gw, "receipts_twilio", "/api/sms/receipts/twilio", fields, ref)
    assert genuine.status_code == 204
    assert (await gw.world.recipient(comm_id)).status is Status.DELIVERED

    tampered = await twilio_call(gw, "receipts_twilio", "/api/sms/receipts/twilio", {**fields, "MessageStatus": "failed"}, ref,
                                 signature=RequestValidator(TOKEN).compute_signature(f"{PUBLIC}/api/sms/receipts/twilio?ref={comm_id}%3A0", fields))
    assert tampered.status_code == 401


async def test_twilio_inbound_stop_answers_empty_twiml(gw):
    response = await twilio_call(gw, "inbound_twilio", "/api/sms/inbound/twilio",
                                 {"MessageSid": "SM9", "From": SAM, "To": "+61400000000", "Body": "Stop"})
    assert response.status_code == 200 and response.get_body().endswith(b"<Response></Response>")
    assert gw.world.opt_out_store.scopes == {EVERY_LICENSEE: {SAM}}


async def test_replies_route_lists_replies_for_the_keys_licensee(gw):
    comm_id = await gw.world.send(SAM, replies=True)
    await twilio_call(gw, "inbound_twilio", "/api/sms/inbound/twilio", {"MessageSid": "SM10", "From": SAM, "To": "+61400000000", "Body": "Thanks!"})
    req = func.HttpRequest("GET", f"http://h/api/sms/{comm_id}/replies", headers={"Authorization": f"Bearer {gw.key}"},
                           route_params={"commId": comm_id}, body=b"")
    response = await gw.functions["sms_replies"](req)
    body = json.loads(response.get_body())
    assert response.status_code == 200 and [r["body"] for r in body["replies"]] == ["Thanks!"]
    assert body["replies"][0]["fromNumber"] == SAM
