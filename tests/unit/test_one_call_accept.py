"""The one-call accept (issue 30) with its writer on, over the app's own functions and the fakes: an eligible send
is saved as its version-2 job alone (one storage call, no row written), under a tagged commId that GET and DELETE
recognise right after; the worker then writes its rows and sends each recipient once. Anything that asks for more
takes today's path under a version-4 id: the writer off (the default), no commId key, an Idempotency-Key,
createCommunicationReferencesImmediately, a sendAt, a blocked recipient, more than one transaction's recipients;
a job that does not fit the queue message is saved today's way under its tagged id."""
import json
from datetime import datetime, timedelta, timezone

import azure.functions as func
import pytest

from sms.config import Settings
from sms.domain.comm_ids import CommIdKeys
from sms.domain.errors import StorageUnavailable
from sms.domain.jobs import WHOLE_JOB_SIZE
from sms.domain.pacing import RequestRateLimiter
from sms.usecases.auth import Authenticator, new_key
from tests.fakes import (
    LICENSEE,
    Clock,
    FakeGateway,
    InMemoryApiKeyStore,
    InMemoryIdempotencyStore,
    InMemoryJobQueue,
    InMemoryLedgerStore,
    InMemoryMessageStore,
    InMemoryWholeJobQueue,
    RecordingProvider,
    assembled,
)

KEYS = CommIdKeys(b"k" * 32)
NUMBERS = ["+61412000001", "+61412000002", "+61412000003"]


class TooBig(InMemoryWholeJobQueue):
    def fits(self, job) -> bool:
        return False


async def gateway(one_call: bool = True, comm_id_keys=KEYS, accept_jobs=None):
    clock = Clock(datetime.now(timezone.utc).replace(microsecond=456789))
    keys = InMemoryApiKeyStore()
    key, record = new_key(LICENSEE)
    await keys.add(record)
    store, queue, provider, ledger = InMemoryMessageStore(), InMemoryJobQueue(), RecordingProvider(), InMemoryLedgerStore()
    accept_jobs = accept_jobs or InMemoryWholeJobQueue()
    idempotency = InMemoryIdempotencyStore()
    use = assembled(store, queue, provider, ledger=ledger, accept_jobs=accept_jobs, idempotency=idempotency, clock=clock,
                    comm_id_keys=comm_id_keys, accept_one_call=one_call)
    settings = Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    return FakeGateway(use, Authenticator(keys), RequestRateLimiter(0), settings, clock=clock, store=store, queue=queue,
                       provider=provider, ledger=ledger, accept_jobs=accept_jobs, idempotency=idempotency, key=key)


def request(gw, method: str, url: str, body: dict | None = None, route_params: dict | None = None, headers: dict | None = None):
    headers = {"Authorization": f"Bearer {gw.key}", "Content-Type": "application/json", **(headers or {})}
    return func.HttpRequest(method, url, headers=headers,
                            route_params=route_params or {}, params={}, body=json.dumps(body).encode() if body is not None else b"")


async def send(gw, to=NUMBERS, headers: dict | None = None, send: dict | None = None, **model) -> str:
    body = {"SMSModel": {"To": [{"PhoneNumber": n} for n in to], "MessageBody": "Your results are ready", **model}, **(send or {})}
    response = await gw.functions["sms_send"](request(gw, "POST", "http://h/api/sms/send", body, headers=headers))
    assert response.status_code == 200, response.get_body()
    return json.loads(response.get_body())["commId"]


async def call(gw, function: str, method: str, comm_id: str) -> dict:
    response = await gw.functions[function](request(gw, method, f"http://h/api/sms/{comm_id}", route_params={"commId": comm_id}))
    assert response.status_code == 200, response.get_body()
    return json.loads(response.get_body())


def storage_calls(gw) -> int:
    """Every storage call the fakes saw: rows, ledger, idempotency records, and the puts of either queue."""
    return (gw.store.round_trips + gw.ledger.round_trips + len(gw.idempotency.records) + len(gw.queue.jobs)
            + len(gw.accept_jobs.jobs))


async def run_worker(gw) -> None:
    jobs, gw.accept_jobs.jobs = list(gw.accept_jobs.jobs), []
    for job in jobs:
        await gw.use.dispatch.dispatch_whole(job)


async def test_an_eligible_send_is_one_put_then_get_answers_queued_and_the_worker_sends_each_once():
    gw = await gateway()
    comm_id = await send(gw)

    assert storage_calls(gw) == 1 and len(gw.accept_jobs.jobs) == 1  # the put, and nothing else
    job = gw.accept_jobs.jobs[0]
    assert (job.message.comm_id, comm_id[12]) == (comm_id, "8")  # a tagged (version-8) id
    assert KEYS.recognised(comm_id, LICENSEE, gw.clock()) is not None
    assert job.message.created_at == gw.clock().replace(microsecond=456000)  # to the millisecond, as the id carries it
    state = await call(gw, "sms_status", "GET", comm_id)
    assert (state["status"], state["recipientCount"], state["recipients"]) == ("queued", 3, [])

    await run_worker(gw)
    assert sorted(gw.provider.calls) == sorted(NUMBERS)
    written = await call(gw, "sms_status", "GET", comm_id)
    assert (written["status"], written["createdAt"], len(written["recipients"])) == ("sent", state["createdAt"], 3)
    await gw.use.dispatch.dispatch_whole(job)  # a redelivery
    assert sorted(gw.provider.calls) == sorted(NUMBERS)


async def test_a_cancel_right_after_the_accept_cancels_every_recipient_and_the_worker_sends_none():
    gw = await gateway()
    comm_id = await send(gw)
    assert await call(gw, "sms_cancel", "DELETE", comm_id) == {"commId": comm_id, "cancelled": 3, "unaffected": {}}
    await run_worker(gw)
    assert gw.provider.calls == []
    state = await call(gw, "sms_status", "GET", comm_id)
    assert (state["status"], [r["status"] for r in state["recipients"]]) == ("cancelled", ["cancelled"] * 3)


async def test_each_item_of_an_unkeyed_auto_batch_is_one_put():
    gw = await gateway()
    body = [{"SMSModel": {"To": [{"PhoneNumber": n}], "MessageBody": "Hi"}} for n in NUMBERS]
    response = await gw.functions["sms_send_servicestack_batch"](request(gw, "POST", "http://h/api/SMSSend[]", body))
    assert response.status_code == 200, response.get_body()
    ids = [answer["commId"] for answer in json.loads(response.get_body())]
    assert [job.message.comm_id for job in gw.accept_jobs.jobs] == ids and storage_calls(gw) == 3
    await run_worker(gw)
    assert sorted(gw.provider.calls) == sorted(NUMBERS)


def _later(gw) -> str:
    return (gw.clock() + timedelta(hours=2)).isoformat().replace("+00:00", "Z")


TODAYS_PATH = {
    "the writer off": (dict(one_call=False), {}),
    "no commId key": (dict(comm_id_keys=None), {}),
    "an Idempotency-Key": ({}, dict(headers={"Idempotency-Key": "k1"})),
    "records asked for at once": ({}, dict(send={"CreateCommunicationReferencesImmediately": True})),
    "a sendAt": ({}, dict(SendAt=_later)),
    "a blocked recipient": ({}, dict(to=NUMBERS + ["+14155550100"])),  # outside the default guard's region
    "more than one transaction's recipients": ({}, dict(to=[f"+614120{i:05d}" for i in range(WHOLE_JOB_SIZE + 1)])),
}


@pytest.mark.parametrize("why", list(TODAYS_PATH))
async def test_a_send_that_asks_for_more_takes_todays_path_under_a_version_4_id(why):
    options, what = TODAYS_PATH[why]
    gw = await gateway(**options)
    what = {k: (v(gw) if callable(v) else v) for k, v in what.items()}
    comm_id = await send(gw, **what)
    assert comm_id[12] == "4" and gw.accept_jobs.jobs == []
    assert gw.store.messages[comm_id].comm_id == comm_id and gw.queue.jobs  # rows written at accept, its job on sms-send


async def test_a_send_that_would_take_it_but_the_job_does_not_fit_is_saved_todays_way_under_its_tagged_id():
    gw = await gateway(accept_jobs=TooBig())
    comm_id = await send(gw)
    assert comm_id[12] == "8" and gw.accept_jobs.jobs == []
    assert [r.comm_id for r in (await gw.store.load(comm_id))[1]] == [comm_id] * 3 and len(gw.queue.jobs) == 1
    assert (await call(gw, "sms_status", "GET", comm_id))["segments"] == 1  # its rows: the full answer


class PutLandsUnanswered(InMemoryWholeJobQueue):
    """The put lands and its answer is lost (a timeout, a reset after the service applied it); `meanwhile` runs between
    the two, e.g. the worker taking the job at once."""

    def __init__(self, meanwhile=None):
        super().__init__()
        self.meanwhile = meanwhile

    async def put(self, job) -> None:
        await super().put(job)
        if self.meanwhile is not None:
            await self.meanwhile(job)
        raise StorageUnavailable()


async def post(gw, number: str) -> func.HttpResponse:
    body = {"SMSModel": {"To": [{"PhoneNumber": number}], "MessageBody": "Your results are ready"}}
    return await gw.functions["sms_send"](request(gw, "POST", "http://h/api/sms/send", body))


async def test_a_put_whose_answer_is_lost_is_withdrawn_so_its_503_is_true_and_the_resend_is_the_only_sms():
    # Left standing, the landed job would be sent while its client, told 503, sends the message again: two SMS.
    queue = PutLandsUnanswered()
    gw = await gateway(accept_jobs=queue)
    refused = await post(gw, NUMBERS[0])
    assert refused.status_code == 503
    assert "withdrawn: nothing will be sent" in json.loads(refused.get_body())["responseStatus"]["message"]
    [landed] = queue.jobs
    assert (await gw.store.gate(landed.message.comm_id)).state == "cancelled"

    queue.put = InMemoryWholeJobQueue.put.__get__(queue)  # storage answers again: the client sends it again
    resent = await send(gw, to=[NUMBERS[0]])
    await run_worker(gw)  # the landed job and the resend
    assert gw.provider.calls == [NUMBERS[0]]
    withdrawn = await call(gw, "sms_status", "GET", landed.message.comm_id)
    assert [r["status"] for r in withdrawn["recipients"]] == ["cancelled"]
    assert (await call(gw, "sms_status", "GET", resent))["status"] == "sent"


async def test_a_put_whose_answer_is_lost_after_the_worker_wrote_it_is_accepted_and_sent_once():
    gw = None

    async def worker_first(job):
        await gw.use.dispatch.dispatch_whole(job)

    queue = PutLandsUnanswered(worker_first)
    gw = await gateway(accept_jobs=queue)
    accepted = await post(gw, NUMBERS[1])
    assert accepted.status_code == 200, accepted.get_body()
    comm_id = json.loads(accepted.get_body())["commId"]
    assert gw.provider.calls == [NUMBERS[1]]
    await run_worker(gw)  # the job's redelivery
    assert gw.provider.calls == [NUMBERS[1]] and (await call(gw, "sms_status", "GET", comm_id))["status"] == "sent"
