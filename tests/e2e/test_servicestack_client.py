"""The real ServiceStack Python client, with the seed's DTOs, against the dev host."""
from dataclasses import dataclass

import pytest
from dataclasses_json import LetterCase, Undefined, dataclass_json
from servicestack import IReturn, JsonServiceClient, WebServiceException

from tests.e2e import seed_dtos
from tests.e2e.seed_dtos import CommResponse, SMSContact, SMSModel

LICENSEE = "abcdef0123456789abcdef0123456789"


# The seed's SMSSend does not declare its response type, which the client's post()/send_all()
# need; this subclass adds only that. Its name stays SMSSend: the client routes by class name.
@dataclass_json(letter_case=LetterCase.CAMEL, undefined=Undefined.EXCLUDE)
@dataclass
class SMSSend(seed_dtos.SMSSend, IReturn[CommResponse]):
    pass


@pytest.fixture(scope="module")
def client(devhost):
    client = JsonServiceClient(devhost.base_url)
    client.bearer_token = devhost.create_key(LICENSEE)
    return client


def sms(*numbers: str, body: str = "Hello from the ServiceStack client", cls=SMSSend):
    return cls(sms_model=SMSModel(to=[SMSContact(name="Sam", phone_number=n) for n in numbers], message_body=body))


def test_post_reaches_api_smssend_and_returns_a_comm_response(client, devhost):
    response = client.post(sms("+61412700001"))
    assert isinstance(response, CommResponse)
    assert response.status is True and len(response.comm_id) == 32 and response.message == "Queued for 1 recipient"
    status, state = devhost.request("GET", f"/api/sms/{response.comm_id}", key=client.bearer_token)
    assert status == 200 and state["licenseeId"] == LICENSEE


def test_post_url_with_the_seeds_own_dto_on_the_seeds_routes(client):
    for route in ("/api/sendmessage", "/api/send", "/api/sms/send", "/api/sendmessage/immediate"):
        response = client.post_url(route, sms("+61412700002", cls=seed_dtos.SMSSend), response_as=CommResponse)
        assert response.status is True, route


def test_the_older_json_reply_route(client, devhost):
    old = JsonServiceClient(devhost.base_url).set_base_path("")
    old.bearer_token = client.bearer_token
    assert old.reply_base_url.endswith("/json/reply/")
    assert old.post(sms("+61412700003")).status is True


def test_send_all_batches_through_the_auto_batch_route(client):
    responses = client.send_all([sms("+61412700004"), sms("+61412700005")])
    assert [r.status for r in responses] == [True, True]
    assert responses[0].comm_id != responses[1].comm_id


def test_a_validation_error_raises_web_service_exception_with_our_response_status(client):
    with pytest.raises(WebServiceException) as caught:
        client.post(sms("+61412700006", "not a phone"))
    error = caught.value
    assert error.status_code == 400
    assert error.response_status.error_code == "ValidationException"
    assert error.response_status.errors[0].field_name == "SMSModel.To[1].PhoneNumber"
    assert "'not a phone'" in error.response_status.errors[0].message


def test_a_bad_key_raises_web_service_exception_401(devhost):
    client = JsonServiceClient(devhost.base_url)
    client.bearer_token = "sms_0000000000000000." + "A" * 43
    with pytest.raises(WebServiceException) as caught:
        client.post(sms("+61412700007"))
    assert caught.value.status_code == 401 and caught.value.response_status.error_code == "Unauthorized"
