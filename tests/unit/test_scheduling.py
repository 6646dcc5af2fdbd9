"""Scheduled sends, validity, quiet hours and cancel (issue 16), over the fakes with an injected clock
and a queue that keeps each job hidden for its delay, as Azure's does: nothing sent early, nothing
sent late, nothing sent after it was cancelled or expired."""
import asyncio
import random
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from sms.domain import transitions
from sms.domain.comm_ids import CommIdKeys
from sms.domain.commands import Party, SendMessage
from sms.domain.errors import NotFound, ValidationFailed
from sms.domain.model import MAX_QUEUE_DELAY, WAITING, SendJob, Status, utcnow
from sms.usecases.licensees import CACHE_SECONDS
from tests.fakes import (
    EVERY_COUNTRY,
    LICENSEE,
    OTHER,
    InMemoryJobQueue,
    InMemoryLedgerStore,
    InMemoryLicenseeSettingsStore,
    InMemoryMessageStore,
    InMemoryWholeJobQueue,
    RecordingProvider,
    assembled,
)

# A Wednesday: 11:00 UTC is 22:00 in Sydney (AEDT, +11) and 06:00 in New York (EST, -5).
T0 = datetime(2026, 11, 25, 11, 0, tzinfo=timezone.utc)
SYDNEY, NEW_YORK, AU_MOBILE = "+61299999999", "+12125551234", "+61412345678"


class Clock:
    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


class HidingQueue:
    """Jobs hidden for their delay, as Azure's queue hides them (at most 7 days: it refuses more)."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self.hidden: list[tuple[datetime, int, SendJob]] = []
        self.puts: list[tuple[SendJob, int]] = []
        self._order = 0

    async def put(self, job: SendJob, *, delay_seconds: int = 0) -> None:
        assert 0 <= delay_seconds <= 7 * 86400, "Azure refuses a visibility timeout over 7 days"
        self.puts.append((job, delay_seconds))
        self._order += 1
        self.hidden.append((self.clock() + timedelta(seconds=delay_seconds), self._order, job))


class Gateway:
    def __init__(self, at: datetime = T0, delay: float = 0.0, send_concurrency: int = 16, store: InMemoryMessageStore | None = None,
                 one_call: bool = False):
        """`one_call`: the accept's one-call path on (issue 30): a message that can be is put whole, and its first
        run (visible at once, as sms-accept's message) writes its rows; its later hops are version-1 jobs."""
        self.clock = Clock(at)
        self.whole = InMemoryWholeJobQueue()
        one_call_ports = {"accept_jobs": self.whole, "comm_id_keys": CommIdKeys(b"k" * 32), "accept_one_call": True} if one_call else {}
        self.store, self.ledger, self.settings = store or InMemoryMessageStore(), InMemoryLedgerStore(), InMemoryLicenseeSettingsStore()
        self.queue = HidingQueue(self.clock)
        self.provider = RecordingProvider(delay=delay)
        self.sent_at: dict[str, datetime] = {}
        send = self.provider.send

        async def timed(sms):
            self.sent_at[sms.to] = self.clock()
            return await send(sms)

        self.provider.send = timed
        self.use = assembled(self.store, self.queue, self.provider, ledger=self.ledger, licensees=self.settings, clock=self.clock,
                            send_concurrency=send_concurrency, default_guard=EVERY_COUNTRY, **one_call_ports)

    async def send(self, *numbers, licensee=LICENSEE, **timing) -> str:
        command = SendMessage(to=tuple(Party(phone_number=n) for n in numbers), body="Your appointment is tomorrow at 10",
                              **timing)
        return (await self.use.accept.queue(command, licensee)).comm_id

    async def run_queue(self, until: datetime) -> None:
        """Run every job that becomes visible up to `until`, each at its time, in order."""
        whole, self.whole.jobs = self.whole.jobs, []
        for job in whole:
            await self.use.dispatch.dispatch_whole(job)
        while self.queue.hidden:
            self.queue.hidden.sort(key=lambda item: item[:2])
            visible_at, _, job = self.queue.hidden[0]
            if visible_at > until:
                break
            self.queue.hidden.pop(0)
            self.clock.at = max(self.clock.at, visible_at)
            await self.use.dispatch.dispatch(job)
        self.clock.at = max(self.clock.at, until)

    async def statuses(self, comm_id: str) -> list[Status]:
        return [r.status for r in (await self.store.load(comm_id))[1]]


# A change of quiet hours wakes held jobs once every worker's cached copy has lapsed.
CACHE_SECONDS_DUE = int(CACHE_SECONDS) + 1


def iso(at: datetime) -> str:
    return at.isoformat()


async def test_a_scheduled_message_waits_then_goes_at_its_time():
    gw = Gateway()
    at = T0 + timedelta(days=3)
    result = await gw.use.accept.queue(SendMessage(to=(Party(phone_number=AU_MOBILE),), body="Hi", send_at=iso(at)), LICENSEE)
    assert result.summary == "Scheduled for 1 recipient at 2026-11-28T11:00:00Z"
    assert await gw.statuses(result.comm_id) == [Status.SCHEDULED]
    assert [delay for _, delay in gw.queue.puts] == [3 * 86400]
    [entry], _ = await gw.use.ledger.page(_query())
    assert entry.statuses == "w"  # listed as scheduled from the start
    await gw.run_queue(at - timedelta(seconds=1))
    assert gw.provider.sent == []
    await gw.run_queue(at)
    assert gw.sent_at == {AU_MOBILE: at}
    assert await gw.statuses(result.comm_id) == [Status.SENT]


async def test_a_send_scheduled_past_seven_days_hops_and_is_still_on_time():
    gw = Gateway()
    at = T0 + timedelta(days=20, minutes=7)
    await gw.send(AU_MOBILE, send_at=iso(at))
    await gw.run_queue(at - timedelta(seconds=1))
    assert gw.provider.sent == []
    delays = [delay for _, delay in gw.queue.puts]
    assert len(delays) == 3 and all(d <= MAX_QUEUE_DELAY.total_seconds() for d in delays)  # two hops, then the last leg
    await gw.run_queue(at)
    assert gw.sent_at == {AU_MOBILE: at}


async def test_a_job_that_comes_a_moment_early_goes_back_for_the_rest():
    gw = Gateway()
    at = T0 + timedelta(hours=1)
    comm_id = await gw.send(AU_MOBILE, send_at=iso(at))
    [(job, _)] = gw.queue.puts
    gw.clock.at = at - timedelta(milliseconds=400)  # the queue's clock runs ahead of ours
    await gw.use.dispatch.dispatch(job)
    assert gw.provider.sent == [] and gw.queue.puts[-1] == (job, 1)
    assert await gw.statuses(comm_id) == [Status.SCHEDULED]


@pytest.mark.parametrize("timing, field, words", [
    ({"send_at": iso(T0 - timedelta(minutes=5))}, "SMSModel.SendAt", "in the past"),
    ({"send_at": iso(T0 + timedelta(days=36))}, "SMSModel.SendAt", "more than 35 days ahead"),
    ({"send_at": "2026-11-26T09:00:00"}, "SMSModel.SendAt", "needs its offset"),
    ({"send_at": "tomorrow at nine"}, "SMSModel.SendAt", "is not an instant"),
    ({"send_at": iso(T0 + timedelta(hours=2)), "valid_until": iso(T0 + timedelta(hours=1))}, "SMSModel.ValidUntil",
     "after SMSModel.SendAt"),
    ({"valid_until": iso(T0 - timedelta(seconds=1))}, "SMSModel.ValidUntil", "not in the future"),
    ({"valid_until": iso(T0 + timedelta(days=35, seconds=1))}, "SMSModel.ValidUntil", "more than 35 days after now"),
    ({"send_at": iso(T0 + timedelta(days=30)), "valid_until": iso(T0 + timedelta(days=65, seconds=1))}, "SMSModel.ValidUntil",
     "more than 35 days after SMSModel.SendAt"),
    ({"valid_until": iso(T0 + timedelta(hours=1)), "validity_period": 60}, "SMSModel.ValidityPeriod", "give one"),
    ({"validity_period": 0}, "SMSModel.ValidityPeriod", "whole number of seconds"),
    ({"validity_period": True}, "SMSModel.ValidityPeriod", "whole number of seconds"),
])
async def test_timing_that_breaks_a_rule_is_a_400_naming_it_and_nothing_is_stored(timing, field, words):
    gw = Gateway()
    with pytest.raises(ValidationFailed) as refused:
        await gw.send(AU_MOBILE, **timing)
    [error] = refused.value.field_errors
    assert error.field_name == field and words in error.message
    assert gw.store.messages == {} and gw.queue.puts == []


async def test_a_send_at_a_moment_ago_by_a_slow_clock_means_now_and_an_immediate_send_cannot_be_scheduled():
    gw = Gateway()
    comm_id = await gw.send(AU_MOBILE, send_at=iso(T0 - timedelta(seconds=30)))
    assert await gw.statuses(comm_id) == [Status.QUEUED] and gw.queue.puts[-1][1] == 0
    with pytest.raises(ValidationFailed, match="SMSModel.SendAt schedules a message"):
        await gw.use.send_now.send(SendMessage(to=(Party(phone_number=AU_MOBILE),), body="Hi",
                                                 send_at=iso(T0 + timedelta(hours=1))), LICENSEE)


async def test_a_recipient_not_handed_over_by_valid_until_expires_and_is_never_sent():
    gw = Gateway()
    at = T0 + timedelta(hours=1)
    comm_id = await gw.send(AU_MOBILE, SYDNEY, send_at=iso(at), validity_period=600)
    message = gw.store.messages[comm_id]
    assert message.valid_until == at + timedelta(seconds=600)
    # The workers were down from before its time until after its validity: the job runs late.
    gw.queue.hidden = [(at + timedelta(minutes=11), 1, job) for _, _, job in gw.queue.hidden]
    await gw.run_queue(at + timedelta(minutes=11))
    assert gw.provider.sent == []
    assert await gw.statuses(comm_id) == [Status.EXPIRED, Status.EXPIRED]
    rows = (await gw.store.load(comm_id))[1]
    assert rows[0].last_error == "Not sent before the message's validUntil"
    [entry], _ = await gw.use.ledger.page(_query())
    assert entry.statuses == "xx"


async def test_a_validity_that_runs_out_during_a_slow_job_expires_the_recipients_not_yet_handed_over():
    gw = Gateway(send_concurrency=1)
    send = gw.provider.send

    async def slow(sms):  # each call takes four minutes of the clock (a slow rate limit, say)
        outcome = await send(sms)
        gw.clock.at += timedelta(minutes=4)
        return outcome

    gw.provider.send = slow
    comm_id = await gw.send(*[f"+6141200000{i}" for i in range(5)], validity_period=600)
    await gw.run_queue(T0)
    assert await gw.statuses(comm_id) == [Status.SENT] * 3 + [Status.EXPIRED] * 2
    assert len(gw.provider.sent) == 3


async def test_a_valid_until_reaches_the_provider_when_it_is_sent_in_time():
    gw = Gateway()
    comm_id = await gw.send(AU_MOBILE, validity_period=300)
    await gw.run_queue(T0)
    [sms] = gw.provider.sent
    assert sms.valid_until == T0 + timedelta(seconds=300)
    assert await gw.statuses(comm_id) == [Status.SENT]


async def _quiet(gw: Gateway, window="21:00-08:00", zone="Australia/Sydney"):
    await gw.use.licensees.set(LICENSEE, quiet_hours=window, time_zone=zone)


@pytest.mark.parametrize("one_call", [False, True], ids=["two_call", "one_call"])
async def test_quiet_hours_across_midnight_hold_each_recipient_until_its_own_local_morning(one_call):
    gw = Gateway(one_call=one_call)  # 22:00 in Sydney, 06:00 in New York
    await _quiet(gw)
    comm_id = await gw.send(SYDNEY, NEW_YORK, AU_MOBILE, "+447911123456")  # the last: no one zone, so Sydney's
    assert (len(gw.whole.jobs), len(gw.queue.puts)) == ((1, 0) if one_call else (0, 1))  # the path it took
    await gw.run_queue(T0)
    assert gw.provider.sent == []
    rows = (await gw.store.load(comm_id))[1]
    assert {r.status for r in rows} == {Status.QUEUED}
    assert all(r.last_error.startswith("Waiting for the licensee's quiet hours (21:00-08:00") for r in rows)
    # Held rows are not "left behind": the sweeper, however late it looks, queues no copy of their job.
    a_day_later = assembled(gw.store, InMemoryJobQueue(), clock=lambda: T0 + timedelta(days=1))
    assert await a_day_later.sweep.run() == []
    new_york_morning = datetime(2026, 11, 25, 13, 0, tzinfo=timezone.utc)  # 08:00 EST
    sydney_morning = datetime(2026, 11, 25, 21, 0, tzinfo=timezone.utc)  # 08:00 AEDT on the 26th
    await gw.run_queue(new_york_morning - timedelta(seconds=1))
    assert gw.provider.sent == []
    await gw.run_queue(sydney_morning - timedelta(seconds=1))
    assert gw.sent_at == {NEW_YORK: new_york_morning}
    await gw.run_queue(sydney_morning)
    assert gw.sent_at == {NEW_YORK: new_york_morning, SYDNEY: sydney_morning, AU_MOBILE: sydney_morning,
                          "+447911123456": sydney_morning}
    assert [r.last_error for r in (await gw.store.load(comm_id))[1]] == [None] * 4


@pytest.mark.parametrize("one_call", [False, True], ids=["two_call", "one_call"])
async def test_an_urgent_message_goes_inside_quiet_hours_and_outside_them_nothing_waits(one_call):
    gw = Gateway(one_call=one_call)
    await _quiet(gw)
    await gw.send(SYDNEY, urgent=True)
    assert len(gw.whole.jobs) == (1 if one_call else 0)
    await gw.run_queue(T0)
    assert gw.sent_at == {SYDNEY: T0}
    await gw.send(NEW_YORK)  # 06:00 there: held
    await gw.run_queue(datetime(2026, 11, 25, 14, 0, tzinfo=timezone.utc))  # until 09:00 in New York
    assert gw.sent_at[NEW_YORK] == datetime(2026, 11, 25, 13, 0, tzinfo=timezone.utc)
    await gw.send("+12125550000")
    await gw.run_queue(gw.clock.at)
    assert gw.sent_at["+12125550000"] == gw.clock.at


async def test_a_window_inside_one_day_and_a_scheduled_time_inside_quiet_hours():
    gw = Gateway(at=datetime(2026, 11, 25, 1, 30, tzinfo=timezone.utc))  # 12:30 in Sydney
    await _quiet(gw, "12:00-13:00")
    at = datetime(2026, 11, 25, 1, 45, tzinfo=timezone.utc)
    await gw.send(SYDNEY, send_at=iso(at))
    await gw.run_queue(datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc))
    assert gw.sent_at == {SYDNEY: datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)}  # 13:00 in Sydney, not 12:45


@pytest.mark.parametrize("one_call", [False, True], ids=["two_call", "one_call"])
async def test_quiet_hours_holding_past_valid_until_end_in_expired(one_call):
    gw = Gateway(one_call=one_call)
    await _quiet(gw)
    comm_id = await gw.send(SYDNEY, validity_period=3600)
    assert len(gw.whole.jobs) == (1 if one_call else 0)
    await gw.run_queue(T0 + timedelta(days=1))
    assert gw.provider.sent == [] and await gw.statuses(comm_id) == [Status.EXPIRED]
    # It went back on the queue for its validUntil, not for the morning.
    # One-call: the first run was the whole job's, on its own queue.
    assert [delay for _, delay in gw.queue.puts] == ([3600] if one_call else [0, 3600])


async def test_bad_quiet_hours_or_zones_are_refused_naming_them():
    gw = Gateway()
    for window, zone, field in (("21-08", "UTC", "QuietHours"), ("09:00-09:00", "UTC", "QuietHours"),
                                ("21:00-08:00", "Mars/Olympus", "TimeZone"), ("25:00-08:00", "UTC", "QuietHours")):
        with pytest.raises(ValidationFailed) as refused:
            await gw.use.licensees.set(LICENSEE, quiet_hours=window, time_zone=zone)
        assert refused.value.field_errors[0].field_name == field
    assert gw.settings.settings == {}


async def test_removing_or_shortening_quiet_hours_releases_the_recipients_they_held():
    """Issue 23, item 8: 20 minutes after `licensees set --no-quiet-hours` recipients still waited for
    the old window's end. A change re-queues the licensee's held jobs, due once every worker's cached
    settings have lapsed; a message scheduled for later is left to its own time."""
    gw = Gateway()  # 22:00 in Sydney
    await _quiet(gw)
    held = await gw.send(SYDNEY, AU_MOBILE)
    later = await gw.send(SYDNEY, send_at=iso(T0 + timedelta(days=2)))
    await gw.run_queue(T0)
    assert gw.provider.sent == [] and await gw.statuses(held) == [Status.QUEUED, Status.QUEUED]
    puts = len(gw.queue.puts)

    await gw.use.licensees.set(LICENSEE, no_quiet_hours=True)
    woken = gw.queue.puts[puts:]
    assert [(job.comm_id, delay) for job, delay in woken] == [(held, CACHE_SECONDS_DUE)]
    await gw.run_queue(T0 + timedelta(seconds=CACHE_SECONDS_DUE))
    assert gw.sent_at == {SYDNEY: T0 + timedelta(seconds=CACHE_SECONDS_DUE), AU_MOBILE: T0 + timedelta(seconds=CACHE_SECONDS_DUE)}
    assert await gw.statuses(later) == [Status.SCHEDULED]

    # A window made shorter: held until its new end (23:00 in Sydney), not the old morning.
    gw = Gateway()
    await _quiet(gw)
    held = await gw.send(SYDNEY)
    await gw.run_queue(T0)
    await gw.use.licensees.set(LICENSEE, quiet_hours="21:00-23:00")
    await gw.run_queue(T0 + timedelta(hours=2))
    assert gw.sent_at == {SYDNEY: T0 + timedelta(hours=1)}


def _command(*numbers, **timing) -> SendMessage:
    return SendMessage(to=tuple(Party(phone_number=n) for n in numbers), body="Your code is 123456", **timing)


async def test_an_immediate_send_inside_quiet_hours_is_refused_naming_the_window_and_nothing_is_stored():
    """Issue 23, item 1: it used to answer "Sent to 0 of 1 recipient" (status false), then send at the
    window's end; a client that believed the answer and resent texted the person twice. An immediate send
    goes now or not at all: inside the window it is refused, unless urgent."""
    gw = Gateway()  # 22:00 in Sydney, 06:00 in New York, 11:00 in London (a London landline has one zone)
    await _quiet(gw)
    with pytest.raises(ValidationFailed) as refused:
        await gw.use.send_now.send(_command(NEW_YORK, "+442071234567"), LICENSEE)
    [error] = refused.value.field_errors
    assert (error.field_name, error.error_code) == ("SMSModel.Urgent", "QuietHours")
    assert error.message.startswith("1 of 2 recipients is inside the licensee's quiet hours (21:00-08:00, the recipient's local "
                                    "time) until 2026-11-25T13:00:00Z")
    assert "Urgent" in error.message and "/api/sms/send" in error.message
    assert gw.provider.sent == [] and gw.queue.puts == [] and gw.store.messages == {}

    urgent = await gw.use.send_now.send(_command(NEW_YORK, "+442071234567", urgent=True), LICENSEE)
    assert (urgent.ok, urgent.summary) == (True, "Sent to 2 of 2 recipients")
    assert gw.sent_at == {NEW_YORK: T0, "+442071234567": T0}
    outside = await gw.use.send_now.send(_command("+442079460000"), LICENSEE)  # 11:00 in London: not held
    assert (outside.ok, outside.summary) == (True, "Sent to 1 of 1 recipient")


async def test_an_immediate_send_says_which_recipients_are_still_to_go_never_sent_to_fewer():
    """A recipient released for a retry (the provider was unreachable) will still be sent: the answer
    says so, rather than "Sent to 1 of 2", which reads as a failure to send again."""
    gw = Gateway()
    gw.provider.raise_for = {SYDNEY}
    answer = await gw.use.send_now.send(_command(SYDNEY, NEW_YORK), LICENSEE)
    assert answer.ok is False
    assert answer.summary == ("Sent to 1 of 2 recipients; 1 still to be sent (not a failure: do not send it again): "
                              "provider error (ConnectionError)")
    assert await gw.statuses(answer.comm_id) == [Status.QUEUED, Status.SENT]


async def test_cancel_stops_every_waiting_recipient_and_leaves_the_rest():
    gw = Gateway()
    sent_first = await gw.send(AU_MOBILE)
    await gw.run_queue(T0)
    at = T0 + timedelta(days=2)
    comm_id = await gw.send(SYDNEY, NEW_YORK, send_at=iso(at))
    result = await gw.use.cancel.cancel(LICENSEE, comm_id)
    assert (result.cancelled, result.unaffected) == (2, {})
    again = await gw.use.cancel.cancel(LICENSEE, comm_id)
    assert (again.cancelled, again.unaffected) == (0, {"cancelled": 2})
    await gw.run_queue(at + timedelta(hours=1))
    assert [s.to for s in gw.provider.sent] == [AU_MOBILE]
    assert await gw.statuses(comm_id) == [Status.CANCELLED, Status.CANCELLED]
    assert (await gw.use.cancel.cancel(LICENSEE, sent_first)).unaffected == {"sent": 1}
    with pytest.raises(NotFound, match=f"No message with commId {comm_id}"):
        await gw.use.cancel.cancel(OTHER, comm_id)


async def test_a_cancel_racing_a_dispatch_never_lets_a_cancelled_recipient_go_out():
    """60 races: claims go two at a time a millisecond apart, and the cancel lands anywhere from before
    the first to after the last. In every one, no cancelled recipient was handed to the provider, and
    every recipient was either sent or cancelled. Most races end split, so the race is really run."""
    split = 0
    for trial in range(60):
        rng = random.Random(trial)
        gw = Gateway(delay=0.001, send_concurrency=2)
        numbers = [f"+614120{i:05d}" for i in range(12)]
        comm_id = await gw.send(*numbers)
        [(job, _)] = gw.queue.puts

        async def cancel_after(seconds: float, gw=gw, comm_id=comm_id):
            await asyncio.sleep(seconds)
            return await gw.use.cancel.cancel(LICENSEE, comm_id)

        _, result = await asyncio.gather(gw.use.dispatch.dispatch(job), cancel_after(rng.uniform(0, 0.008)))
        rows = (await gw.store.load(comm_id))[1]
        called = set(gw.provider.calls)
        cancelled = {r.phone_number for r in rows if r.status is Status.CANCELLED}
        assert cancelled.isdisjoint(called), f"trial {trial}: a cancelled recipient was sent"
        assert result.cancelled == len(cancelled) and cancelled | called == set(numbers)
        assert {r.phone_number for r in rows if r.status is Status.SENT} == called
        split += bool(cancelled) and bool(called)
    assert split >= 20


class ClaimedUnderTheCancel(InMemoryMessageStore):
    """Another worker's dispatch claims one of the recipients a cancel is writing in the moment between
    the cancel's read and its write, `claims` times: the lowest waiting one, as a dispatch goes."""

    def __init__(self, claims: int):
        super().__init__()
        self.claims = claims

    async def update_recipients(self, comm_id, recipients):
        if self.claims and any(r.status is Status.CANCELLED for r in recipients):
            rows = self.recipients[comm_id]
            seq = min(seq for seq, row in rows.items() if row.status in WAITING)
            rows[seq] = replace(transitions.claimed(rows[seq], "another worker", at=utcnow()), etag=f"claimed-{self.claims}")
            self.claims -= 1
        return await super().update_recipients(comm_id, recipients)


async def test_a_cancel_outlasts_a_dispatch_claiming_under_it_and_cancels_what_it_left():
    """Issue 23: a cancel whose recipients a dispatch kept claiming lost five writes in a row (each
    claim won the race) and answered 500. Once a dispatch is seen at work, each recipient is cancelled
    in a write of its own: a claim costs the cancel only the recipient it took."""
    gw = Gateway(store=ClaimedUnderTheCancel(claims=7))
    comm_id = await gw.send(*(f"+614120{i:05d}" for i in range(12)))
    result = await gw.use.cancel.cancel(LICENSEE, comm_id)
    assert (result.cancelled, result.unaffected) == (5, {"sending": 7})
    assert await gw.statuses(comm_id) == [Status.SENDING] * 7 + [Status.CANCELLED] * 5
    [entry], _ = await gw.use.ledger.page(_query())
    assert entry.statuses == "s" * 7 + "c" * 5


def _query():
    from sms.storage import LedgerQuery

    return LedgerQuery(LICENSEE)
