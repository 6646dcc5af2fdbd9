"""ServiceStack's /api/{Operation} (issue 28): every operation is also served where ServiceStack's TypeScript and Python
clients send a typed request, and answers exactly what its own route answers; the values its own route takes in the
path come from the query string or the body, each required and checked before anything runs."""
import json
from datetime import timedelta

import azure.functions as func
import pytest

from sms.entrypoints.named import NAMED_ROUTES, operation_of
from sms.entrypoints.operations import OPERATIONS
from tests.fakes import ALEX, SAM

SEND = {"SMSModel": {"To": [{"PhoneNumber": "+61412345678"}], "MessageBody": "Hello"}}


def call(gw, function: str, method: str, url: str, params: dict | None = None, body=None, route_params: dict | None = None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
    headers = {"Authorization": f"Bearer {gw.key}", "Content-Type": "application/json"}
    request = func.HttpRequest(method, url, headers=headers, params=params or {}, route_params=route_params or {}, body=data)
    return gw.functions[function](request)


async def answer(gw, *args, status: int = 200, **kwargs):
    response = await call(gw, *args, **kwargs)
    assert response.status_code == status, response.get_body()
    return json.loads(response.get_body())


def test_every_operation_but_smssend_has_its_api_route_with_its_verb():
    named = {route.path: route for route in NAMED_ROUTES}
    for op in OPERATIONS:
        if op.name == "SMSSend":
            continue  # /api/SMSSend is one of the seed's routes, with its auto-batch
        route = named[f"api/{op.name}"]
        assert operation_of(route) is op and route.working_methods == (op.method,) and route.kind == op.kinds[0]


async def test_get_sms_status_with_the_comm_id_in_the_query_answers_as_the_status_route(gw):
    sent = await answer(gw, "send", "POST", "http://h/api/send", body=SEND)
    own = await answer(gw, "sms_status", "GET", "http://h/api/sms/x", route_params={"commId": sent["commId"]})
    named = await answer(gw, "op_get_sms_status", "GET", "http://h/api/GetSmsStatus", params={"CommId": sent["commId"]})
    assert named == own and named["commId"] == sent["commId"] and named["recipients"][0]["phoneNumber"] == "+61412345678"


async def test_query_sms_takes_the_list_routes_filters_from_the_query(gw):
    wanted, _ = await gw.world.send(SAM), await gw.world.send(ALEX)  # sent and ledgered, as the worker would
    params = {"reference": f"SMS-{wanted[:8]}", "take": "5"}
    found = await answer(gw, "op_query_sms", "GET", "http://h/api/QuerySms", params=params)
    assert [m["commId"] for m in found["messages"]] == [wanted]
    assert found == await answer(gw, "sms_list", "GET", "http://h/api/sms", params=params)
    bad = await answer(gw, "op_query_sms", "GET", "http://h/api/QuerySms", params={"take": "many"}, status=400)
    assert bad["responseStatus"]["errors"][0]["fieldName"] == "take"


async def test_cancel_sms_with_the_comm_id_in_the_query_cancels(gw):
    from sms.domain.model import utcnow

    later = (utcnow() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    scheduled = {"SMSModel": {**SEND["SMSModel"], "SendAt": later}}
    sent = await answer(gw, "send", "POST", "http://h/api/send", body=scheduled)
    cancelled = await answer(gw, "op_cancel_sms", "DELETE", "http://h/api/CancelSms", params={"commId": sent["commId"]})
    assert cancelled == {"commId": sent["commId"], "cancelled": 1, "unaffected": {}}


async def test_a_post_takes_its_path_value_from_the_body(gw):
    added = await answer(gw, "op_add_webhook_endpoint", "POST", "http://h/api/AddWebhookEndpoint", body={"url": "https://example.org/h"})
    rotated = await answer(gw, "op_rotate_webhook_secret", "POST", "http://h/api/RotateWebhookSecret",
                           body={"endpointId": added["endpointId"]})
    assert rotated["endpointId"] == added["endpointId"] and rotated["secret"] != added["secret"]
    removed = await answer(gw, "op_delete_webhook_endpoint", "DELETE", "http://h/api/DeleteWebhookEndpoint",
                           params={"EndpointId": added["endpointId"].upper()})
    assert removed == {"endpointId": added["endpointId"], "removed": True}


@pytest.mark.parametrize("function, method, params, field, code", [
    ("op_get_sms_status", "GET", {}, "commId", "NotEmpty"),
    ("op_get_sms_status", "GET", {"commId": "not-a-guid"}, "commId", "InvalidValue"),
    ("op_get_sms_replies", "GET", {"commId": "e1f6be64733348e3b37055b6c0fd9ebe'"}, "commId", "InvalidValue"),
    ("op_delete_webhook_endpoint", "DELETE", {"endpointId": "../../x"}, "endpointId", "InvalidValue"),
    ("op_get_webhook_deliveries", "GET", {"endpointId": "e1f6be64-7333-48e3-b370-55b6c0fd9ebe"}, "endpointId", "InvalidValue"),
])
async def test_a_path_value_missing_or_not_what_its_route_takes_is_a_400_naming_it(gw, function, method, params, field, code):
    refused = await answer(gw, function, method, "http://h/api/x", params=params, status=400)
    assert [(e["fieldName"], e["errorCode"]) for e in refused["responseStatus"]["errors"]] == [(field, code)]


async def test_a_path_value_in_a_body_of_the_wrong_shape_is_named_too(gw):
    refused = await answer(gw, "op_enable_webhook_endpoint", "POST", "http://h/api/x", body={"endpointId": {"$ne": 1}}, status=400)
    assert refused["responseStatus"]["errors"][0]["fieldName"] == "endpointId"
    unreadable = await answer(gw, "op_enable_webhook_endpoint", "POST", "http://h/api/x", body=b"{not json", status=400)
    assert unreadable["responseStatus"]["errors"][0]["errorCode"] == "SerializationException"


async def test_another_method_is_a_405_naming_the_operations_own(gw):
    response = await call(gw, "op_get_sms_status", "POST", "http://h/api/GetSmsStatus", body={"commId": "e1f6be64733348e3b37055b6c0fd9ebe"})
    assert response.status_code == 405 and response.headers["Allow"] == "GET"


async def test_a_request_without_a_valid_key_is_a_401_before_its_path_values_or_body_are_read(gw):
    """The key is checked first, as on every other route: a caller without one learns nothing of the request's shape."""
    for headers in ({}, {"Authorization": "Bearer sms_not-a-key"}):
        for params, body in (({}, b""), ({"commId": "not-a-guid"}, b""), ({}, b"{not json")):
            request = func.HttpRequest("POST" if body else "GET", "http://h/api/GetSmsStatus", headers=headers, params=params,
                                       body=body)
            response = await gw.functions["op_get_sms_status"](request)
            assert response.status_code in (401, 405) and (response.status_code == 405) == bool(body), response.get_body()
