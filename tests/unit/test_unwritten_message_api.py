"""A message accepted in one storage call, before the worker has written its rows (issue 30), over the app's own
functions and the fakes: GET answers what its tagged commId says (queued, or cancelled after a cancel), DELETE
cancels it through its gate, its replies and events are none yet; an id not recognised as this licensee's answers
404 as any unknown one does, and nothing is written for it."""
import json
from datetime import datetime, timedelta, timezone

import azure.functions as func
import pytest

from sms.config import Settings
from sms.domain.comm_ids import RECOGNISED_FOR, CommIdKeys
from sms.domain.jobs import GATE_CANCELLED, GATE_MATERIALIZED, Gate
from sms.domain.model import Status, new_guid
from sms.domain.pacing import RequestRateLimiter
from sms.entrypoints.openapi import document
from sms.usecases.auth import Authenticator, new_key
from sms.wire import MessageState, jsv
from tests.fakes import (
    LICENSEE,
    OTHER,
    Clock,
    FakeGateway,
    InMemoryApiKeyStore,
    InMemoryJobQueue,
    InMemoryLedgerStore,
    InMemoryMessageStore,
    RecordingProvider,
    assembled,
    whole_job,
)

KEY = b"k" * 32
NUMBERS = ("+61412000001", "+61412000002", "+61412000003")


class Store(InMemoryMessageStore):
    """The fake store, with a hook run just before a cancel's gate is inserted (a worker's write landing then)."""

    before_gate = None

    async def close_gate(self, comm_id, licensee_id, at):
        if self.before_gate is not None:
            await self.before_gate()
        await super().close_gate(comm_id, licensee_id, at)


@pytest.fixture
async def gw():
    clock = Clock(datetime.now(timezone.utc).replace(microsecond=123000))
    keys = InMemoryApiKeyStore()
    key, record = new_key(LICENSEE)
    other_key, other_record = new_key(OTHER)
    await keys.add(record)
    await keys.add(other_record)
    store, provider, ledger = Store(), RecordingProvider(), InMemoryLedgerStore()
    use = assembled(store, InMemoryJobQueue(), provider, ledger=ledger, clock=clock, comm_id_keys=CommIdKeys(KEY))
    settings = Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    gw = FakeGateway(use, Authenticator(keys), RequestRateLimiter(0), settings,
                     clock=clock, store=store, provider=provider, ledger=ledger, key=key, other_key=other_key)
    gw.comm_id = CommIdKeys(KEY).mint(LICENSEE, clock.at, len(NUMBERS))
    gw.job = whole_job(*NUMBERS, comm_id=gw.comm_id, at=clock.at)  # what the worker will write
    return gw


def _call(gw, function: str, method: str, url: str, key: str | None = None, route_params: dict | None = None, params=None):
    request = func.HttpRequest(method, url, headers={"Authorization": f"Bearer {key or gw.key}"}, params=params or {},
                               route_params=route_params or {}, body=b"")
    return gw.functions[function](request)


def status(gw, comm_id: str, suffix: str = "", key: str | None = None):
    return _call(gw, "sms_status", "GET", f"http://h/api/sms/{comm_id}{suffix}", key, {"commId": comm_id + suffix})


def cancel(gw, comm_id: str, key: str | None = None):
    return _call(gw, "sms_cancel", "DELETE", f"http://h/api/sms/{comm_id}", key, {"commId": comm_id})


def replies(gw, comm_id: str, key: str | None = None):
    return _call(gw, "sms_replies", "GET", f"http://h/api/sms/{comm_id}/replies", key, {"commId": comm_id})


def events(gw, comm_id: str, key: str | None = None):
    return _call(gw, "sms_events", "GET", f"http://h/api/sms/{comm_id}/events", key, {"commId": comm_id})


async def ok(response) -> dict:
    response = await response
    assert response.status_code == 200, response.get_body()
    return json.loads(response.get_body())


async def test_get_before_the_rows_answers_queued_with_what_the_id_says_in_json_jsv_and_the_named_operation(gw):
    created = gw.clock.at.isoformat().replace("+00:00", "Z")
    expected = {"commId": gw.comm_id, "reference": f"SMS-{gw.comm_id[:8].upper()}", "status": "queued", "licenseeId": LICENSEE,
                "createdAt": created, "recipientCount": 3, "recipients": []}
    assert await ok(status(gw, gw.comm_id)) == expected
    assert await ok(status(gw, gw.comm_id, ".json")) == expected
    named = await ok(_call(gw, "op_get_sms_status", "GET", "http://h/api/GetSmsStatus", params={"CommId": gw.comm_id}))
    assert named == expected

    as_jsv = (await status(gw, gw.comm_id, ".jsv")).get_body().decode()
    assert "Encoding" not in as_jsv and "Segments" not in as_jsv and "Recipients:[]" in as_jsv
    assert MessageState.model_validate(jsv.loads(as_jsv)) == MessageState.model_validate(expected)
    # The contract says so: every property OpenAPI requires is there, and the two it leaves out are the ones absent.
    schema = document()["components"]["schemas"]["MessageState"]
    assert set(schema["required"]) <= set(expected) and {"encoding", "segments"} <= set(schema["properties"]) - set(schema["required"])


async def test_once_the_worker_wrote_the_rows_get_answers_them_with_the_same_created_at(gw):
    await gw.use.dispatch.dispatch_whole(gw.job)
    state = await ok(status(gw, gw.comm_id))
    assert (state["status"], state["encoding"], state["segments"], len(state["recipients"])) == ("sent", "GSM-7", 1, 3)
    assert state["createdAt"] == gw.clock.at.isoformat().replace("+00:00", "Z")


async def test_a_gate_written_with_the_rows_between_the_two_reads_answers_the_rows(gw):
    """GET read no rows, then finds the worker's gate: the rows are there, read again."""
    store, job = gw.store, gw.job
    load = store.load
    calls = []

    async def late_load(comm_id, first=0, last=None):
        calls.append(comm_id)
        if len(calls) == 1:
            found = await load(comm_id, first, last)
            await store.add(job.message, job.recipients, Gate(GATE_MATERIALIZED, LICENSEE, job.message.created_at))
            return found
        return await load(comm_id, first, last)

    store.load = late_load
    state = await ok(status(gw, gw.comm_id))
    assert (state["status"], len(state["recipients"]), state["segments"]) == ("queued", 3, 1)


async def test_cancel_before_the_rows_cancels_every_recipient_and_the_worker_sends_none(gw):
    assert await ok(cancel(gw, gw.comm_id)) == {"commId": gw.comm_id, "cancelled": 3, "unaffected": {}}
    assert gw.store.gates[gw.comm_id] == Gate(GATE_CANCELLED, LICENSEE, gw.clock.at)
    assert (await ok(status(gw, gw.comm_id)))["status"] == "cancelled"
    # Again: nothing more to cancel, every one is (or will be) cancelled.
    assert await ok(cancel(gw, gw.comm_id)) == {"commId": gw.comm_id, "cancelled": 0, "unaffected": {"cancelled": 3}}

    assert await gw.use.dispatch.dispatch_whole(gw.job) == []
    assert gw.provider.calls == []
    state = await ok(status(gw, gw.comm_id))
    assert (state["status"], [r["status"] for r in state["recipients"]]) == ("cancelled", ["cancelled"] * 3)
    assert await ok(cancel(gw, gw.comm_id)) == {"commId": gw.comm_id, "cancelled": 0, "unaffected": {"cancelled": 3}}


async def test_a_cancel_whose_gate_the_worker_inserted_first_cancels_the_rows_it_wrote(gw):
    job = gw.job
    gw.store.before_gate = lambda: gw.store.add(job.message, job.recipients, Gate(GATE_MATERIALIZED, LICENSEE, job.message.created_at))
    assert await ok(cancel(gw, gw.comm_id)) == {"commId": gw.comm_id, "cancelled": 3, "unaffected": {}}
    assert [r.status for r in (await gw.store.load(gw.comm_id))[1]] == [Status.CANCELLED] * 3
    assert gw.store.gates[gw.comm_id].state == GATE_MATERIALIZED


async def test_another_licensees_gate_on_the_id_is_a_409_to_try_again_and_the_message_stays_queued(gw):
    """Its worker ignores that gate and writes the rows queued: cancelled then, by the same request again."""
    await gw.store.close_gate(gw.comm_id, OTHER, gw.clock.at)
    response = await cancel(gw, gw.comm_id)
    assert response.status_code == 409 and response.headers.get("Retry-After") == "1"
    assert (await ok(status(gw, gw.comm_id)))["status"] == "queued"
    await gw.store.add(gw.job.message, gw.job.recipients)  # the worker's rows, without a gate (the other licensee's stays)
    assert (await ok(cancel(gw, gw.comm_id)))["cancelled"] == 3


async def test_replies_and_events_before_the_rows_are_none_yet(gw):
    assert await ok(replies(gw, gw.comm_id)) == {"commId": gw.comm_id, "replies": []}
    assert (await ok(events(gw, gw.comm_id)))["events"] == []


def _not_ours(gw) -> dict[str, tuple[str, str | None]]:
    """Ids that must answer as unknown ones, and the key asking."""
    return {
        "made up": (CommIdKeys(b"x" * 32).mint(LICENSEE, gw.clock.at, 3), None),
        "another licensee's, asked by this one": (CommIdKeys(KEY).mint(OTHER, gw.clock.at, 3), None),
        "this licensee's, asked by another": (gw.comm_id, gw.other_key),
        "a version-4 id": (new_guid(), None),
        "too old": (CommIdKeys(KEY).mint(LICENSEE, gw.clock.at - RECOGNISED_FOR - timedelta(seconds=1), 3), None),
    }


@pytest.mark.parametrize("which", ["made up", "another licensee's, asked by this one", "this licensee's, asked by another",
                                   "a version-4 id", "too old"])
async def test_an_id_not_recognised_as_the_licensees_answers_404_everywhere_and_writes_nothing(gw, which):
    comm_id, key = _not_ours(gw)[which]
    for call in (status, cancel, replies, events):
        response = await call(gw, comm_id, key=key)
        assert response.status_code == 404, (call.__name__, response.get_body())
        assert json.loads(response.get_body())["responseStatus"]["message"] == f"No message with commId {comm_id}"
    assert gw.store.gates == {}


async def test_another_licensees_stored_message_answers_404_even_under_a_tagged_id_of_this_one(gw):
    """A row found is judged by its licensee alone: the tag is read only when there is none."""
    job = whole_job(*NUMBERS, licensee=OTHER, comm_id=gw.comm_id, at=gw.clock.at)
    await gw.store.add(job.message, job.recipients, Gate(GATE_MATERIALIZED, OTHER, job.message.created_at))
    for call in (status, cancel, replies, events):
        assert (await call(gw, gw.comm_id)).status_code == 404, call.__name__
    assert [r.status for r in (await gw.store.load(gw.comm_id))[1]] == [Status.QUEUED] * 3


async def test_without_a_key_configured_no_id_is_recognised(gw):
    gw.use = assembled(gw.store, InMemoryJobQueue(), gw.provider, clock=gw.clock)
    for call in (status, cancel, replies, events):
        assert (await call(gw, gw.comm_id)).status_code == 404, call.__name__
    assert gw.store.gates == {}
