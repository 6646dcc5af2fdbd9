"""A one-call accept's job (issue 30) at the worker: its rows written from it, in one write that only one run of the
job can make, then sent as a send job is; a cancel's gate before them cancels every recipient; a parked job ends every
recipient failed. Over the fakes (tests/integration/test_materialize_store.py runs the races on Azurite)."""
import asyncio
import json

import azure.functions as func
import pytest

from sms.config import Settings
from sms.domain.errors import AlreadyExists
from sms.domain.jobs import GATE_CANCELLED, GATE_MATERIALIZED, Gate
from sms.domain.model import STATUS_LETTERS, Status, UnknownJobVersion, utcnow
from sms.domain.pacing import RequestRateLimiter
from sms.usecases.auth import Authenticator
from sms.usecases.dispatch import RecipientsInFlight
from sms.usecases.materialize import CommIdCollision, NotMaterialized
from tests.fakes import (
    LICENSEE,
    OTHER,
    FakeGateway,
    InMemoryApiKeyStore,
    InMemoryJobQueue,
    InMemoryLedgerStore,
    InMemoryMessageStore,
    RecordingProvider,
    assembled,
    pending_index_of,
    whole_job,
)

NUMBERS = ("+61412000001", "+61412000002", "+61412000003")
REASON = "Gave up after 5 failed attempts to run its send job"


class Worker:
    def __init__(self, store=None, provider=None):
        self.store, self.queue = store or InMemoryMessageStore(), InMemoryJobQueue()
        self.provider, self.ledger = provider or RecordingProvider(), InMemoryLedgerStore()
        self.use = assembled(self.store, self.queue, self.provider, ledger=self.ledger)
        self.dispatch = self.use.dispatch

    async def statuses(self, comm_id):
        return [r.status for r in (await self.store.load(comm_id))[1]]


async def test_the_rows_are_written_from_the_job_with_the_gate_then_each_recipient_is_sent_once():
    w, job = Worker(), whole_job(*NUMBERS, notes="n")
    outcomes = await w.dispatch.dispatch_whole(job)

    assert sorted(w.provider.calls) == sorted(NUMBERS)
    assert [r.status for r in outcomes] == [Status.SENT] * 3
    message, rows = await w.store.load(job.message.comm_id)
    assert message == job.message
    assert [(r.recipient_id, r.phone_number, r.created_at) for r in rows] == [
        (r.recipient_id, r.phone_number, job.message.created_at) for r in job.recipients]
    assert w.store.gates[job.message.comm_id] == Gate(GATE_MATERIALIZED, LICENSEE, job.message.created_at)
    assert w.ledger.entries[job.message.comm_id].statuses == STATUS_LETTERS[Status.SENT] * 3  # recorded, as after any job
    assert job.message.comm_id in pending_index_of(w.store).marks  # the sweeper's to look at from now on


async def test_the_rows_write_costs_what_the_load_it_replaces_did():
    """Materialize + send is as many round trips as load + send for the same message with its rows stored."""
    today, job = Worker(), whole_job(*NUMBERS)
    await today.store.add(job.message, job.recipients)
    today.store.round_trips = 0
    await today.dispatch.dispatch(job.ids())

    one_call = Worker()
    await one_call.dispatch.dispatch_whole(job)
    assert one_call.store.round_trips == today.store.round_trips


async def test_a_redelivery_finds_the_rows_and_sends_nothing_again():
    w, job = Worker(), whole_job(*NUMBERS)
    await w.dispatch.dispatch_whole(job)
    assert await w.dispatch.dispatch_whole(job) == []
    assert sorted(w.provider.calls) == sorted(NUMBERS)
    assert await w.statuses(job.message.comm_id) == [Status.SENT] * 3


async def test_a_write_that_landed_unanswered_is_found_and_sent_from():
    """The rows' write landed and its answer was lost: the job runs again, its write gets a 409, and it goes on
    from the rows as stored."""
    w, job = Worker(), whole_job(*NUMBERS)
    await w.store.add(job.message, job.recipients, Gate(GATE_MATERIALIZED, LICENSEE, job.message.created_at))
    await w.dispatch.dispatch_whole(job)
    assert sorted(w.provider.calls) == sorted(NUMBERS)
    assert await w.statuses(job.message.comm_id) == [Status.SENT] * 3


async def test_two_workers_on_one_job_send_each_recipient_once():
    store, provider = InMemoryMessageStore(), RecordingProvider(delay=0.01)
    one, two = Worker(store, provider), Worker(store, provider)
    job = whole_job(*NUMBERS)
    results = await asyncio.gather(one.dispatch.dispatch_whole(job), two.dispatch.dispatch_whole(job), return_exceptions=True)
    assert all(not isinstance(r, BaseException) or isinstance(r, RecipientsInFlight) for r in results), results
    assert sorted(provider.calls) == sorted(NUMBERS)
    assert await one.statuses(job.message.comm_id) == [Status.SENT] * 3


async def test_a_cancel_before_the_rows_cancels_every_recipient():
    w, job = Worker(), whole_job(*NUMBERS)
    cancelled_at = utcnow()
    await w.store.close_gate(job.message.comm_id, LICENSEE, cancelled_at)
    assert await w.dispatch.dispatch_whole(job) == []
    assert w.provider.calls == []
    _, rows = await w.store.load(job.message.comm_id)
    assert [(r.status, r.attempts, r.updated_at) for r in rows] == [(Status.CANCELLED, 0, cancelled_at)] * 3
    assert w.store.gates[job.message.comm_id].state == GATE_CANCELLED
    assert w.ledger.entries[job.message.comm_id].statuses == STATUS_LETTERS[Status.CANCELLED] * 3
    assert await w.dispatch.dispatch_whole(job) == [] and w.provider.calls == []  # and again, on a redelivery


async def test_another_licensees_cancel_is_not_this_messages():
    """A tagged id's HMAC is per licensee: one in 2^21 made-up ids passes for another licensee's. Its cancel's gate
    must not touch the message."""
    w, job = Worker(), whole_job(*NUMBERS)
    await w.store.close_gate(job.message.comm_id, OTHER, utcnow())
    await w.dispatch.dispatch_whole(job)
    assert sorted(w.provider.calls) == sorted(NUMBERS)
    assert await w.statuses(job.message.comm_id) == [Status.SENT] * 3


async def test_a_parked_job_whose_rows_were_never_written_ends_every_recipient_failed():
    w, job = Worker(), whole_job(*NUMBERS)
    rows = await w.dispatch.give_up_whole(job, REASON)
    assert [(r.status, r.last_error, r.attempts) for r in rows] == [(Status.FAILED, REASON, 0)] * 3
    assert await w.statuses(job.message.comm_id) == [Status.FAILED] * 3
    assert w.store.gates[job.message.comm_id].state == GATE_MATERIALIZED  # a later cancel finds the rows
    assert w.ledger.entries[job.message.comm_id].statuses == STATUS_LETTERS[Status.FAILED] * 3
    assert w.provider.calls == []
    assert await w.dispatch.dispatch_whole(job) == [] and w.provider.calls == []  # a copy left behind sends nothing


async def test_a_parked_job_whose_rows_exist_is_given_up_on_as_a_send_job_is():
    """What was sent stays sent; what is still queued fails."""
    w, job = Worker(provider=RecordingProvider(raise_for={NUMBERS[1]})), whole_job(*NUMBERS)
    await w.dispatch.dispatch_whole(job)  # the second is released for a retry
    assert await w.statuses(job.message.comm_id) == [Status.SENT, Status.QUEUED, Status.SENT]
    rows = await w.dispatch.give_up_whole(job, REASON)
    assert [r.status for r in rows] == [Status.SENT, Status.FAILED, Status.SENT]
    assert rows[1].last_error == REASON and rows[1].attempts == 1


async def test_a_parked_job_after_a_cancel_ends_cancelled():
    w, job = Worker(), whole_job(*NUMBERS)
    await w.store.close_gate(job.message.comm_id, LICENSEE, utcnow())
    rows = await w.dispatch.give_up_whole(job, REASON)
    assert [r.status for r in rows] == [Status.CANCELLED] * 3


async def test_another_message_under_the_same_id_is_reported_and_left_alone():
    w, job = Worker(), whole_job(*NUMBERS)
    other = whole_job(NUMBERS[0], licensee=OTHER, body="Not yours", comm_id=job.message.comm_id)
    await w.dispatch.dispatch_whole(other)
    calls = list(w.provider.calls)
    for run in (w.dispatch.dispatch_whole(job), w.dispatch.give_up_whole(job, REASON)):
        with pytest.raises(CommIdCollision):
            await run
    assert w.provider.calls == calls
    assert (await w.store.load(job.message.comm_id))[0] == other.message


async def test_a_refused_write_with_nothing_there_is_run_again():
    """A 409 with neither the rows nor a cancel's gate to show for it (it cannot happen while retention keeps
    both): raised for the queue to run again, never taken for done."""
    class Refusing(InMemoryMessageStore):
        async def commit(self, staged):
            raise AlreadyExists("refused")

    w = Worker(Refusing())
    with pytest.raises(NotMaterialized):
        await w.dispatch.dispatch_whole(whole_job(*NUMBERS))
    assert w.provider.calls == []


# -- the queue triggers ----------------------------------------------------------------------------------------------

def _gateway(w: Worker) -> FakeGateway:
    return FakeGateway(w.use, Authenticator(InMemoryApiKeyStore()), RequestRateLimiter(0),
                       Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true"}))


async def test_accept_job_writes_the_rows_and_sends():
    w, job = Worker(), whole_job(*NUMBERS)
    await _gateway(w).functions["accept_job"](func.QueueMessage(body=job.to_json().encode()))
    assert sorted(w.provider.calls) == sorted(NUMBERS)
    assert await w.statuses(job.message.comm_id) == [Status.SENT] * 3


async def test_accept_job_poison_ends_every_recipient_failed():
    w, job = Worker(), whole_job(*NUMBERS)
    await _gateway(w).functions["accept_job_poison"](func.QueueMessage(body=job.to_json().encode()))
    _, rows = await w.store.load(job.message.comm_id)
    assert {(r.status, r.attempts) for r in rows} == {(Status.FAILED, 0)}
    assert rows[0].last_error.startswith("Gave up after ")


async def test_the_accept_triggers_never_drop_a_job_of_an_unknown_version():
    w = Worker()
    functions = _gateway(w).functions
    later = json.dumps({"v": 9, "commId": "c" * 32}).encode()
    for name in ("accept_job", "accept_job_poison"):
        with pytest.raises(UnknownJobVersion):
            await functions[name](func.QueueMessage(body=later))
    with pytest.raises(ValueError):
        await functions["accept_job"](func.QueueMessage(body=b"not a job"))  # retried, then parked
    await functions["accept_job_poison"](func.QueueMessage(body=b"not a job"))  # parked: dropped, as send_job_poison does

