"""Issue 14 over HTTP: GET /api/sms/{commId} shows each recipient's timeline (queued, claimed, sent with the
provider's id, delivered, with reasons), in JSON and JSV alike, and the replies oldest first. The app's own
functions are called as the Functions worker calls them, over fakes (tests/unit/conftest.py `gw`)."""
import json
from dataclasses import replace
from datetime import datetime, timedelta

import azure.functions as func

from sms.domain.model import utcnow
from sms.storage import EVERY_LICENSEE
from sms.wire import MessageState, jsv
from tests.fakes import ALEX, SAM
from tests.unit.test_callbacks_api import delivery_report, grid


def get_status(gw, comm_id: str, suffix: str = ""):
    req = func.HttpRequest("GET", f"http://localhost/api/sms/{comm_id}{suffix}", headers={"Authorization": f"Bearer {gw.key}"},
                           route_params={"commId": comm_id + suffix}, body=b"")
    return gw.functions["sms_status"](req)


async def send(gw, *numbers, replies=False) -> str:
    body = {"SMSModel": {"To": [{"PhoneNumber": n} for n in numbers], "MessageBody": "hello", "ReplyIsAllowed": replies}}
    response = await gw.functions["send"](func.HttpRequest(
        "POST", "http://localhost/api/send", headers={"Authorization": f"Bearer {gw.key}"}, body=json.dumps(body).encode()))
    assert response.status_code == 200
    return json.loads(response.get_body())["commId"]


async def run_jobs(gw, comm_id: str) -> None:
    for job, _ in list(gw.world.queue.jobs):
        if job.comm_id == comm_id:
            await gw.functions["send_job"](func.QueueMessage(body=job.to_json().encode()))


async def test_a_send_a_dispatch_and_a_receipt_show_as_queued_sending_sent_delivered(gw):
    comm_id = await send(gw, SAM)
    queued = json.loads((await get_status(gw, comm_id)).get_body())["recipients"][0]
    assert queued["timeline"] == [{"status": "queued", "at": queued["updatedAt"]}]

    await run_jobs(gw, comm_id)
    report = [{"id": "e1", "eventType": "Microsoft.Communication.SMSDeliveryReportReceived", "data": delivery_report(f"{comm_id}:0")}]
    assert (await grid(gw, report)).status_code == 200

    response = await get_status(gw, comm_id)
    assert response.status_code == 200
    [recipient] = json.loads(response.get_body())["recipients"]
    timeline = recipient["timeline"]
    assert [step["status"] for step in timeline] == ["queued", "sending", "sent", "delivered"]
    times = [datetime.fromisoformat(step["at"]) for step in timeline]
    assert times == sorted(times) and timeline[-1]["at"] == recipient["updatedAt"]
    assert timeline[1]["attempt"] == 1 and "attempt" not in timeline[2]
    assert timeline[2]["providerMessageId"] == recipient["providerMessageId"] == "rec-1"  # the provider's, not the receipt's
    assert not any("error" in step for step in timeline)
    assert "timelineOmitted" not in recipient  # nothing left out: the field appears only when something was
    # The fields every client already reads are still there, as they were.
    assert {"id", "phoneNumber", "status", "providerMessageId", "attempts", "updatedAt"} <= set(recipient)
    assert (recipient["status"], recipient["attempts"]) == ("delivered", 1)


async def test_the_jsv_answer_carries_the_same_timeline_under_dotnet_names(gw):
    comm_id = await send(gw, SAM)
    await run_jobs(gw, comm_id)
    as_json = (await get_status(gw, comm_id)).get_body()
    as_jsv = (await get_status(gw, comm_id, ".jsv")).get_body().decode()
    assert "Timeline:[{Status:queued,At:" in as_jsv and "{Status:sent,At:" in as_jsv and "ProviderMessageId:rec-1}" in as_jsv
    assert MessageState.model_validate(jsv.loads(as_jsv)) == MessageState.model_validate(json.loads(as_json))


async def test_an_opted_out_recipient_and_a_refused_one_say_why(gw):
    comm_id = await send(gw, SAM, ALEX)
    await gw.world.opt_out_store.add(EVERY_LICENSEE, SAM, utcnow())
    gw.world.provider.refuse[ALEX] = "number is blocked"
    await run_jobs(gw, comm_id)
    sam, alex = json.loads((await get_status(gw, comm_id)).get_body())["recipients"]
    assert [(s["status"], s.get("error")) for s in sam["timeline"]] == [("queued", None), ("opted_out", "The recipient opted out (STOP)")]
    assert [(s["status"], s.get("error")) for s in alex["timeline"]] == [("queued", None), ("sending", None), ("failed",
                                                                                                               "number is blocked")]


async def test_replies_are_listed_oldest_first(gw):
    comm_id = await send(gw, SAM, replies=True)
    await run_jobs(gw, comm_id)
    later, earlier = gw.world.text_from(SAM, "see you then"), gw.world.text_from(SAM, "yes")
    await gw.world.inbound.receive(later)
    await gw.world.inbound.receive(replace(earlier, received_at=later.received_at - timedelta(minutes=1)))
    replies = json.loads((await get_status(gw, comm_id)).get_body())["replies"]
    assert [r["body"] for r in replies] == ["yes", "see you then"]


def test_the_openapi_document_describes_the_timeline():
    from sms.entrypoints import openapi

    schemas = openapi.document()["components"]["schemas"]
    assert schemas["RecipientState"]["properties"]["timeline"]["items"] == {"$ref": "#/components/schemas/RecipientEvent"}
    assert "timelineOmitted" in schemas["RecipientState"]["properties"]
    assert set(schemas["RecipientEvent"]["properties"]) == {"status", "at", "providerMessageId", "error", "attempt", "provider", "outcome",
                                                                          "code", "guard"}
    assert set(schemas["RecipientEvent"]["required"]) == {"status", "at"}
    # Every field the seed's clients read is still described, and still required where it was.
    assert {"id", "phoneNumber", "status", "updatedAt"} <= set(schemas["RecipientState"]["required"])
    assert "timeline" not in schemas["RecipientState"]["required"]
