"""Client idempotency: a retried request answers as the original and creates and sends nothing new."""
from dataclasses import replace
from datetime import timedelta

import pytest

from sms.domain.errors import Conflict, KeyReused
from sms.domain.model import utcnow
from sms.usecases.idempotency import IN_PROGRESS_GRACE
from tests.fakes import InMemoryIdempotencyStore, InMemoryJobQueue, InMemoryMessageStore, RecordingProvider, command, sms_over

LICENSEE, OTHER = "a" * 32, "b" * 32


def request(*numbers, body="Your results are ready"):
    return command(*numbers, body=body)


@pytest.fixture
def world():
    store, queue, provider, keys = InMemoryMessageStore(), InMemoryJobQueue(), RecordingProvider(), InMemoryIdempotencyStore()
    return store, queue, provider, keys, sms_over(store, queue, provider, idempotency=keys, idempotency_window=timedelta(hours=24))


async def test_a_retried_request_gets_the_original_answer_and_nothing_new(world):
    store, queue, provider, _, service = world
    first = await service.accept(request("+61412000001"), LICENSEE, "order-123")
    again = await service.accept(request("+61412000001"), LICENSEE, "order-123")
    assert again == first
    assert len(store.messages) == 1 and len(queue.jobs) == 1
    for job, _ in queue.jobs:
        await service.dispatch(job)
    assert len(provider.sent) == 1


async def test_the_same_key_with_a_different_request_is_refused(world):
    store, queue, _, _, service = world
    await service.accept(request("+61412000001"), LICENSEE, "order-123")
    with pytest.raises(KeyReused, match="different request"):
        await service.accept(request("+61412000001", body="Something else"), LICENSEE, "order-123")
    with pytest.raises(KeyReused):  # queued and immediate sends are different requests too
        await service.send_now(request("+61412000001"), LICENSEE, "order-123")
    assert len(store.messages) == 1 and len(queue.jobs) == 1


async def test_keys_belong_to_their_licensee(world):
    store, _, _, _, service = world
    mine = await service.accept(request("+61412000001"), LICENSEE, "k1")
    theirs = await service.accept(request("+61412000001"), OTHER, "k1")
    assert mine.comm_id != theirs.comm_id and len(store.messages) == 2


async def test_an_expired_key_starts_a_new_request(world):
    store, _, _, keys, service = world
    first = await service.accept(request("+61412000001"), LICENSEE, "k1")
    record = keys.records[(LICENSEE, "k1")]
    keys.records[(LICENSEE, "k1")] = replace(record, expires_at=utcnow() - timedelta(seconds=1))
    second = await service.accept(request("+61412000001"), LICENSEE, "k1")
    assert second.comm_id != first.comm_id and len(store.messages) == 2


async def test_an_immediate_send_retried_reports_the_real_outcome_without_sending_again(world):
    _, _, provider, _, service = world
    first = await service.send_now(request("+61412000001", "+61412000002"), LICENSEE, "now-1")
    again = await service.send_now(request("+61412000001", "+61412000002"), LICENSEE, "now-1")
    assert again == first and first.summary == "Sent to 2 of 2 recipients"
    assert len(provider.sent) == 2


async def test_a_retry_racing_the_first_request_is_told_to_wait_and_a_dead_first_request_is_finished(world):
    store, _, _, keys, service = world

    async def first_request_dies(staged):
        raise ConnectionError("process killed")

    original_commit = store.commit
    store.commit = first_request_dies
    with pytest.raises(ConnectionError):
        await service.accept(request("+61412000001"), LICENSEE, "k1")
    store.commit = original_commit

    with pytest.raises(Conflict, match="still being processed"):  # it may still be writing: wait
        await service.accept(request("+61412000001"), LICENSEE, "k1")

    record = keys.records[(LICENSEE, "k1")]
    keys.records[(LICENSEE, "k1")] = replace(record, created_at=utcnow() - IN_PROGRESS_GRACE - timedelta(seconds=1))
    finished = await service.accept(request("+61412000001"), LICENSEE, "k1")
    assert finished.comm_id == record.comm_id and list(store.messages) == [record.comm_id]


async def test_without_a_key_every_request_is_new(world):
    store, _, _, keys, service = world
    await service.accept(request("+61412000001"), LICENSEE)
    await service.accept(request("+61412000001"), LICENSEE)
    assert len(store.messages) == 2 and keys.records == {}


async def test_an_immediate_send_retried_while_the_first_still_sends_is_told_to_wait(world):
    """Issue 12, item 5: the retry used to answer 200 "Sent to 0 of 3 recipients" (status false)
    while the first request was still sending, inviting a client to resend the failures."""
    import asyncio

    _, _, provider, _, service = world
    provider.delay = 0.2
    people = ("+61412000001", "+61412000002", "+61412000003")
    first = asyncio.create_task(service.send_now(request(*people), LICENSEE, "now-2"))
    while provider.in_flight == 0:  # the first request is with the provider
        await asyncio.sleep(0.01)
    with pytest.raises(Conflict, match="still being processed"):
        await service.send_now(request(*people), LICENSEE, "now-2")
    answer = await first
    assert answer.summary == "Sent to 3 of 3 recipients"
    assert await service.send_now(request(*people), LICENSEE, "now-2") == answer
    assert len(provider.sent) == 3


async def test_a_refused_request_claims_no_key_so_the_corrected_request_goes_through(world):
    """Issue 23, item 3: a 400 (a bad number, a sendAt in the past, a sendAt on an immediate route)
    used to claim the key, so the corrected resend got 409 "still being processed", then 422."""
    from sms.domain.errors import ValidationFailed

    store, queue, provider, keys, service = world
    with pytest.raises(ValidationFailed):
        await service.accept(request("not a number"), LICENSEE, "order-9")
    past = command("+61412000001", body="hi", send_at="2020-01-01T00:00:00Z")
    with pytest.raises(ValidationFailed):
        await service.accept(past, LICENSEE, "order-9")
    future = command("+61412000001", body="hi", send_at=(utcnow() + timedelta(hours=1)).isoformat())
    with pytest.raises(ValidationFailed):  # scheduling is refused on an immediate route
        await service.send_now(future, LICENSEE, "now-9")
    assert keys.records == {} and store.messages == {} and queue.jobs == []

    corrected = await service.accept(request("+61412000001"), LICENSEE, "order-9")
    assert corrected.ok and list(store.messages) == [corrected.comm_id]
    assert keys.records[(LICENSEE, "order-9")].comm_id == corrected.comm_id
    assert await service.accept(request("+61412000001"), LICENSEE, "order-9") == corrected
    now = await service.send_now(request("+61412000002"), LICENSEE, "now-9")
    assert now.summary == "Sent to 1 of 1 recipient" and [s.to for s in provider.sent] == ["+61412000002"]
