"""The vendors' callback functions, called as the Functions worker calls them, over fakes."""
import json
from urllib.parse import urlencode

import azure.functions as func
import pytest
from twilio.request_validator import RequestValidator

from sms.domain.model import Status
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
             "data": {"messageId": "Incoming_1", "from": SAM, "to": "+61400000000", "message": "STOP",
                      "receivedTimestamp": "2026-11-24T23:00:00Z"}}
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

    signed = RequestValidator(TOKEN).compute_signature(f"{PUBLIC}/api/sms/receipts/twilio?ref={comm_id}%3A0", fields)
    tampered = await twilio_call(gw, "receipts_twilio", "/api/sms/receipts/twilio", {**fields, "MessageStatus": "failed"}, ref,
                                 signature=signed)
    assert tampered.status_code == 401


async def test_twilio_inbound_stop_answers_empty_twiml(gw):
    response = await twilio_call(gw, "inbound_twilio", "/api/sms/inbound/twilio",
                                 {"MessageSid": "SM9", "From": SAM, "To": "+61400000000", "Body": "Stop"})
    assert response.status_code == 200 and response.get_body().endswith(b"<Response></Response>")
    assert gw.world.opt_out_store.scopes == {EVERY_LICENSEE: {SAM}}


async def test_replies_route_lists_replies_for_the_keys_licensee(gw):
    comm_id = await gw.world.send(SAM, replies=True)
    await twilio_call(gw, "inbound_twilio", "/api/sms/inbound/twilio", {"MessageSid": "SM10", "From": SAM, "To": "+61400000000",
                                                                        "Body": "Thanks!"})
    req = func.HttpRequest("GET", f"http://h/api/sms/{comm_id}/replies", headers={"Authorization": f"Bearer {gw.key}"},
                           route_params={"commId": comm_id}, body=b"")
    response = await gw.functions["sms_replies"](req)
    body = json.loads(response.get_body())
    assert response.status_code == 200 and [r["body"] for r in body["replies"]] == ["Thanks!"]
    assert body["replies"][0]["fromNumber"] == SAM


# -- hostile or broken callbacks: a 400 (a logged refusal), never a 500, and nothing stored ---------

def received(**data):
    event_data = {"messageId": "Incoming_9", "from": SAM, "to": "+61400000000", "message": "Thanks",
                  "receivedTimestamp": "2026-11-24T23:00:00Z", **data}
    return {"id": "e9", "eventType": "Microsoft.Communication.SMSReceived", "data": event_data}


def raw_grid(gw, body: bytes):
    return call(gw, "receipts_acs", "/api/sms/receipts/acs", body, params={"code": SECRET})


def nothing_received(gw) -> bool:
    return gw.world.inbound_store.stored == {} and gw.world.opt_out_store.scopes == {}


def refused_and_logged(response, caplog) -> str:
    assert response.status_code == 400, (response.status_code, response.get_body()[:200])
    message = json.loads(response.get_body())["responseStatus"]["message"]
    assert any(r.name == "sms.callbacks" and "refused" in r.getMessage() for r in caplog.records)
    return message


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
                                  b'[{"id":"1","eventType":"x","data":{"n":' + b"9" * 5000 + b"}}]",
                                  json.dumps([received(message="\ud800")]).encode()],
                         ids=["deep list", "deep object", "huge integer", "lone surrogate"])
async def test_event_grid_bodies_no_reader_can_take_are_400s(gw, caplog, body):
    refused_and_logged(await raw_grid(gw, body), caplog)
    assert nothing_received(gw)


@pytest.mark.parametrize("field, value", [
    ("messageId", {"a": 1}), ("messageId", ["Incoming_9"]), ("messageId", 7),
    ("messageId", "Incoming/9"), ("messageId", "Incoming#9"), ("messageId", "Incoming?9"), ("messageId", "Incoming\\9"),
    ("messageId", "Incoming\t9"), ("messageId", "i" * 10_000),
    ("from", {"a": 1}), ("from", "+61/412000001"), ("from", "+61 412 000 001 call me"), ("from", "1" * 10_000),
    ("to", {"a": 1}), ("to", "+61/400000000"), ("to", "4" * 10_000),
    ("message", {"text": "STOP"}), ("message", "STOP" + " " * 100_000 + "x"),
])
async def test_an_inbound_sms_with_a_field_storage_cannot_take_is_refused(gw, caplog, field, value):
    message = refused_and_logged(await grid(gw, [received(**{field: value})]), caplog)
    assert f"'{field}'" in message
    assert nothing_received(gw)


@pytest.mark.parametrize("field, value", [("messageId", {"a": 1}), ("messageId", "Outgoing/1"), ("messageId", "o" * 10_000),
                                          ("deliveryStatusDetails", {"a": 1}), ("tag", {"a": 1})])
async def test_a_delivery_report_with_a_field_storage_cannot_take_is_refused(gw, caplog, field, value):
    comm_id = await gw.world.send(SAM)
    before = await gw.world.recipient(comm_id)
    report = delivery_report(f"{comm_id}:0", "Failed")
    report[field] = value
    event = {"id": "e10", "eventType": "Microsoft.Communication.SMSDeliveryReportReceived", "data": report}
    refused_and_logged(await grid(gw, [event]), caplog)
    assert await gw.world.recipient(comm_id) == before


async def test_an_inbound_sms_without_a_time_zone_is_read_as_utc(gw):
    """Python cannot order a naive time against the aware ones storage gives back: the replies route
    failed on every read once one was stored."""
    comm_id = await gw.world.send(SAM, replies=True)
    assert (await grid(gw, [received(messageId="In_1", receivedTimestamp="2026-11-24T23:00:00")])).status_code == 200
    assert (await grid(gw, [received(messageId="In_2", receivedTimestamp="2026-11-24T23:00:01Z")])).status_code == 200
    req = func.HttpRequest("GET", f"http://h/api/sms/{comm_id}/replies", headers={"Authorization": f"Bearer {gw.key}"},
                           route_params={"commId": comm_id}, body=b"")
    response = await gw.functions["sms_replies"](req)
    assert response.status_code == 200
    assert [r["receivedAt"] for r in json.loads(response.get_body())["replies"]] == ["2026-11-24T23:00:00Z", "2026-11-24T23:00:01Z"]


@pytest.mark.parametrize("field, value", [("MessageSid", "SM/1"), ("MessageSid", "S" * 10_000), ("From", "+61#412000001"),
                                          ("From", "not a number"), ("To", "4" * 10_000), ("Body", "b" * 100_000)])
async def test_a_signed_twilio_inbound_sms_with_a_field_storage_cannot_take_is_refused(gw, caplog, field, value):
    fields = {"MessageSid": "SM11", "From": SAM, "To": "+61400000000", "Body": "STOP", field: value}
    message = refused_and_logged(await twilio_call(gw, "inbound_twilio", "/api/sms/inbound/twilio", fields), caplog)
    assert f"'{field}'" in message
    assert nothing_received(gw)


@pytest.mark.parametrize("field, value", [("MessageSid", "SM#1"), ("MessageSid", "S" * 10_000)])
async def test_a_signed_twilio_status_with_a_field_storage_cannot_take_is_refused(gw, caplog, field, value):
    comm_id = await gw.world.send(SAM)
    before = await gw.world.recipient(comm_id)
    fields = {"MessageSid": "SM1", "MessageStatus": "failed", "ErrorCode": "30003", field: value}
    refused_and_logged(await twilio_call(gw, "receipts_twilio", "/api/sms/receipts/twilio", fields, {"ref": f"{comm_id}:0"}), caplog)
    assert await gw.world.recipient(comm_id) == before
