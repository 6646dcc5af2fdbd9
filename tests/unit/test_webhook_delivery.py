"""The deliverer over fakes and a scripted transport: every request verified by the reference receiver
(`standardwebhooks`), the schedule's retries, the delivery log, disabling, replay and parking."""
import asyncio
import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from standardwebhooks import Webhook

from sms.domain.errors import NotFound, ValidationFailed
from sms.domain.events import Delivery, batch_id
from sms.domain.webhook_attempts import DeliveryAttempt, Outcome
from sms.usecases import delivery as delivery_module
from sms.usecases.delivery import COMMIT_GRACE, MAX_PARKED, NOT_WRITTEN_YET_DELAY, PARKED_DELAY, WebhookDelivery
from tests.fakes import ALEX, LICENSEE, SAM, ScriptedTransport, World

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)  # for ids and times no receiver checks


class Clock:
    def __init__(self, at: datetime | None = None):
        # Now, when the clock is made: the reference receiver refuses a timestamp more than 5 minutes
        # from its own clock (and a module-level "now" is stale by the time a long run reaches it).
        self.at = at or datetime.now(timezone.utc).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.at


OK = DeliveryAttempt(Outcome.DELIVERED, 200, 10)
DOWN = DeliveryAttempt(Outcome.RETRY, 503, 40, "503 Service Unavailable", response_body="maintenance")


async def _world(*script: DeliveryAttempt, clock: Clock | None = None, failures: int = 10, period: timedelta = timedelta(hours=24)):
    world = World()
    endpoint = await world.use.webhooks.add(LICENSEE, "https://crm.example.org/sms-events")
    transport = ScriptedTransport(*script)
    deliverer = WebhookDelivery(world.webhooks, world.ledger, world.delivery_log, world.deliveries, transport,
                                disable_after_failures=failures, disable_after=period, clock=clock or Clock(), rand=lambda: 0.5)
    return world, endpoint, transport, deliverer


def _verified(endpoint, request) -> dict:
    _, headers, body = request
    return Webhook(endpoint.secret.value).verify(body, headers)


async def _sent_batch(world, *numbers):
    comm_id = await world.send(*numbers)
    [(delivery, _)] = world.deliveries.take()
    return comm_id, replace(delivery, queued_at=T0)


async def test_a_batch_goes_in_order_each_request_verified_by_the_reference_receiver_and_logged():
    world, endpoint, transport, deliverer = await _world()
    comm_id, delivery = await _sent_batch(world, SAM, ALEX)
    assert await deliverer.deliver(delivery) == 2
    payloads = [_verified(endpoint, r) for r in transport.requests]
    assert [p["data"]["phoneNumber"] for p in payloads] == [SAM, ALEX]
    assert [r[1]["webhook-id"] for r in transport.requests] == [p["id"] for p in payloads]
    assert {r[0] for r in transport.requests} == {endpoint.url}
    records, token = await deliverer.attempts(endpoint)
    assert token is None
    assert sorted((r.event_id, r.outcome, r.status, r.attempt, r.replay) for r in records) == sorted(
        (p["id"], "delivered", 200, 1, False) for p in payloads)
    assert world.deliveries.take() == []  # nothing left to retry


async def test_the_first_failure_stops_the_batch_and_the_rest_is_retried_on_the_schedule():
    clock = Clock()
    world, endpoint, transport, deliverer = await _world(OK, DOWN, clock=clock)
    comm_id, delivery = await _sent_batch(world, SAM, ALEX, "+61412000003")
    assert await deliverer.deliver(delivery) == 1
    assert len(transport.requests) == 2  # the third was not tried against a receiver that is down
    [(retry, delay)] = world.deliveries.take()
    ids = [json.loads(b)["id"] for _, _, b in transport.requests]
    events = await world.ledger.batch(LICENSEE, comm_id, delivery.batch)
    assert retry.attempt == 2 and retry.only == (ids[1], events[2].id)
    assert delay == 5  # the schedule's second step (5 s; jitter pinned to none)
    log = {(r.event_id, r.outcome, r.error, r.response_body) for r in (await deliverer.attempts(endpoint))[0]}
    assert (ids[1], "retry", "503 Service Unavailable", "maintenance") in log
    # The retry: the same ids, signed afresh (a new timestamp), only the two left.
    clock.at += timedelta(seconds=7)
    transport.requests.clear()
    assert await deliverer.deliver(retry) == 2
    assert [r[1]["webhook-id"] for r in transport.requests] == [ids[1], events[2].id]
    assert {r[1]["webhook-timestamp"] for r in transport.requests} == {str(int(clock.at.timestamp()))}
    for request in transport.requests:
        _verified(endpoint, request)


async def test_retry_after_is_honoured_and_the_schedule_ends_after_eight_attempts(caplog):
    world, endpoint, transport, deliverer = await _world(
        DeliveryAttempt(Outcome.RETRY, 429, 3, "429 Too Many Requests", retry_after_seconds=120), DOWN)
    comm_id, delivery = await _sent_batch(world, SAM)
    await deliverer.deliver(delivery)
    [(_, delay)] = world.deliveries.take()
    assert delay == 120
    await deliverer.deliver(replace(delivery, attempt=8))
    assert world.deliveries.take() == []
    assert "gave up on 1 event(s)" in caplog.text


async def test_a_410_disables_the_endpoint_with_the_reason_and_nothing_more_is_sent():
    gone = DeliveryAttempt(Outcome.GONE, 410, 5, "410 Gone: the receiver wants no more webhooks")
    world, endpoint, transport, deliverer = await _world(gone)
    _, delivery = await _sent_batch(world, SAM)
    await deliverer.deliver(delivery)
    stored = await world.webhooks.get(LICENSEE, endpoint.endpoint_id)
    assert stored.disabled_at is not None and "410 Gone" in stored.disabled_reason
    assert world.deliveries.take() == []
    transport.requests.clear()
    _, later = await _sent_batch_anyway(world, deliverer)
    assert await deliverer.deliver(later) == 0 and transport.requests == []


async def _sent_batch_anyway(world, deliverer):
    """A delivery for a disabled endpoint (queued before it was disabled)."""
    comm_id = await world.send(ALEX)
    world.deliveries.take()  # this process's announcer may not know yet (its cache): the deliverer checks
    [(lic, c, b)] = [k for k in world.ledger.event_batches if k[1] == comm_id]
    endpoint = (await world.webhooks.list(lic))[0]
    return comm_id, Delivery(lic, endpoint.endpoint_id, c, b, queued_at=T0)


async def test_a_run_of_failures_disables_only_once_it_has_lasted_the_period_and_a_success_resets_it():
    clock = Clock()
    world, endpoint, transport, deliverer = await _world(DOWN, DOWN, OK, DOWN, DOWN, DOWN, clock=clock, failures=3,
                                                         period=timedelta(hours=1))
    _, delivery = await _sent_batch(world, SAM)

    async def attempt(after: timedelta):
        clock.at += after
        await deliverer.deliver(delivery)
        return await world.webhooks.get(LICENSEE, endpoint.endpoint_id)

    assert (await attempt(timedelta(0))).consecutive_failures == 1
    assert (await attempt(timedelta(minutes=10))).consecutive_failures == 2
    assert (await attempt(timedelta(minutes=10))).consecutive_failures == 0  # it took one: the count starts again
    since = clock.at + timedelta(minutes=1)
    assert (await attempt(timedelta(minutes=1))).failing_since == since
    three = await attempt(timedelta(minutes=1))
    assert (three.consecutive_failures, three.disabled_at) == (2, None)
    disabled = await attempt(timedelta(hours=1))  # the third in a row, an hour after the first
    assert disabled.disabled_at == clock.at
    reason = disabled.disabled_reason
    assert reason.startswith("3 failed deliveries in a row since ") and "503 Service Unavailable" in reason
    enabled = await world.use.webhooks.enable(LICENSEE, endpoint.endpoint_id)
    assert (enabled.disabled_at, enabled.consecutive_failures, enabled.failing_since) == (None, 0, None)


async def test_during_a_rotations_grace_period_both_secrets_verify_and_after_it_only_the_new_one():
    clock = Clock(datetime.now(timezone.utc))
    world, endpoint, transport, deliverer = await _world(clock=clock)
    rotated = await world.use.webhooks.rotate_secret(LICENSEE, endpoint.endpoint_id)
    _, delivery = await _sent_batch(world, SAM)
    await deliverer.deliver(delivery)
    _, headers, body = transport.requests[-1]
    Webhook(endpoint.secret.value).verify(body, headers)
    Webhook(rotated.secret.value).verify(body, headers)
    clock.at = rotated.previous_secret.expires_at + timedelta(seconds=1)
    await deliverer.deliver(delivery)
    _, headers, body = transport.requests[-1]
    assert len(headers["webhook-signature"].split()) == 1
    # The receiver's own clock check is about "now": verify the signature itself as the library computes it.
    assert headers["webhook-signature"] == Webhook(rotated.secret.value).sign(headers["webhook-id"], clock.at, body)


async def test_a_batch_not_written_yet_is_looked_for_again_then_dropped_after_the_grace_period():
    clock = Clock()
    world, endpoint, transport, deliverer = await _world(clock=clock)
    missing = Delivery(LICENSEE, endpoint.endpoint_id, "c" * 32, batch_id(T0), queued_at=T0)
    clock.at = T0 + timedelta(seconds=1)
    assert await deliverer.deliver(missing) == 0
    assert world.deliveries.take() == [(missing, NOT_WRITTEN_YET_DELAY)]
    clock.at = T0 + timedelta(seconds=30)  # then it waits as long again as it has waited: a few looks in all
    assert await deliverer.deliver(missing) == 0
    assert world.deliveries.take() == [(missing, 30)]
    clock.at = T0 + COMMIT_GRACE
    assert await deliverer.deliver(missing) == 0
    assert world.deliveries.take() == [] and transport.requests == []


async def test_a_removed_endpoint_gets_nothing():
    world, endpoint, transport, deliverer = await _world()
    _, delivery = await _sent_batch(world, SAM)
    await world.use.webhooks.remove(LICENSEE, endpoint.endpoint_id)
    assert await deliverer.deliver(delivery) == 0 and transport.requests == []


async def test_replay_of_one_event_sends_it_alone_under_its_own_id_and_logs_it_as_a_replay():
    world, endpoint, transport, deliverer = await _world()
    comm_id, delivery = await _sent_batch(world, SAM, ALEX)
    events = await world.ledger.batch(LICENSEE, comm_id, delivery.batch)
    replayed = await deliverer.replay_event(endpoint, events[1].id)
    assert replayed == events[1]
    [(again, delay)] = world.deliveries.take()
    assert (again.only, again.replay, delay) == ((events[1].id,), True, 0)
    await deliverer.deliver(again)
    assert [r[1]["webhook-id"] for r in transport.requests] == [events[1].id]
    [record] = (await deliverer.attempts(endpoint))[0]
    assert record.replay is True
    for unknown in ("evt_nope", events[1].id[:-1] + "u", events[1].id.replace(delivery.batch, batch_id(T0))):
        with pytest.raises(NotFound):
            await deliverer.replay_event(endpoint, unknown)
    picky = await world.use.webhooks.add(LICENSEE, "https://crm.example.org/failures-only", ["message.failed"])
    with pytest.raises(ValidationFailed, match="does not take message.sent"):
        await deliverer.replay_event(picky, events[0].id)


async def test_replay_of_a_range_queues_each_batch_written_in_it_and_goes_on_with_a_token(monkeypatch):
    world, endpoint, transport, deliverer = await _world()
    start = datetime.now(timezone.utc)
    for number in (SAM, ALEX, "+61412000003"):
        await world.send(number)
    end = datetime.now(timezone.utc) + timedelta(seconds=1)
    await world.send("+61412000004")  # written after the range: but its batch time is "now", so move the range's end
    written = sorted(k[2] for k in world.ledger.event_batches)
    world.deliveries.take()
    end_before_last = datetime.fromtimestamp(int(written[-1][:16]) / 1e6, timezone.utc)
    monkeypatch.setattr(delivery_module, "REPLAY_BATCHES", 2)
    queued, token = await deliverer.replay_range(endpoint, start, end_before_last)
    assert (queued, token is not None) == (2, True)
    queued, token = await deliverer.replay_range(endpoint, start, end_before_last, token)
    assert (queued, token) == (1, None)
    replays = [d for d, _ in world.deliveries.take()]
    assert sorted(d.batch for d in replays) == written[:3] and all(d.replay for d in replays)
    assert end > start
    with pytest.raises(ValidationFailed, match="From must be before To"):
        await deliverer.replay_range(endpoint, end, start)


async def test_replay_to_a_disabled_endpoint_is_refused():
    world, endpoint, transport, deliverer = await _world()
    disabled = replace(endpoint, disabled_at=T0, disabled_reason="410")
    with pytest.raises(ValidationFailed, match="enable it"):
        await deliverer.replay_range(disabled, T0, T0 + timedelta(hours=1))
    with pytest.raises(ValidationFailed, match="enable it"):
        await deliverer.replay_event(disabled, "evt_x")


async def test_a_parked_delivery_is_put_back_later_a_few_times_then_given_up():
    world, endpoint, transport, deliverer = await _world()
    delivery = Delivery(LICENSEE, endpoint.endpoint_id, "c" * 32, batch_id(T0), queued_at=T0)
    assert await deliverer.parked(delivery) is True
    [(again, delay)] = world.deliveries.take()
    assert (again.parked, delay) == (1, PARKED_DELAY)
    assert await deliverer.parked(replace(delivery, parked=MAX_PARKED)) is False
    assert world.deliveries.take() == []


async def test_the_log_pages_newest_first_and_refuses_a_take_out_of_range():
    world, endpoint, transport, deliverer = await _world()
    _, delivery = await _sent_batch(world, SAM, ALEX, "+61412000003")
    await deliverer.deliver(delivery)
    first, token = await deliverer.attempts(endpoint, take=2)
    rest, end = await deliverer.attempts(endpoint, take=2, token=token)
    assert (len(first), len(rest), end) == (2, 1, None)
    for take in (0, 201):
        with pytest.raises(ValidationFailed, match="take must be from 1 to 200"):
            await deliverer.attempts(endpoint, take=take)


class StopsAtTheSecond(ScriptedTransport):
    """Answers the first request; at the second the worker stops: `how` "raises" (the process fails) or
    "hangs" (the host cancels the invocation while it waits for the receiver)."""

    def __init__(self, how: str):
        super().__init__()
        self.how = how
        self.second_sent = asyncio.Event()

    async def send(self, url, headers, body):
        if self.requests:
            self.requests.append((url, dict(headers), body))
            self.second_sent.set()
            if self.how == "raises":
                raise RuntimeError("worker stopped")
            await asyncio.Event().wait()  # never answered
        return await super().send(url, headers, body)


@pytest.mark.parametrize("how", ["raises", "hangs"])
async def test_a_worker_stopped_mid_batch_leaves_the_attempts_it_completed_in_the_log(how):
    """Issue 25: the log was written once, after the whole batch, so a worker stopped mid-batch left no
    row for the attempts it had made. Each attempt is logged as soon as its answer is in."""
    world, endpoint, _, _ = await _world()
    transport = StopsAtTheSecond(how)
    deliverer = WebhookDelivery(world.webhooks, world.ledger, world.delivery_log, world.deliveries, transport, clock=Clock())
    _, delivery = await _sent_batch(world, SAM, ALEX, "+61412000003")
    running = asyncio.create_task(deliverer.deliver(delivery))
    await transport.second_sent.wait()
    if how == "hangs":
        running.cancel()
    with pytest.raises(asyncio.CancelledError if how == "hangs" else RuntimeError):
        await running
    first_id = transport.requests[0][1]["webhook-id"]
    records, _ = await deliverer.attempts(endpoint)
    assert [(r.event_id, r.outcome, r.status) for r in records] == [(first_id, "delivered", 200)]
