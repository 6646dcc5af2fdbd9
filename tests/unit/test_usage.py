"""GET /api/usage over the fakes (issue 23, item 9): `segments` and `byProvider` count the recipients a
provider accepted (sent, delivered, undelivered), what providers bill; `recipients` and `byStatus` count
every recipient. Both ways a day is counted: when asked (today, yesterday) and by the nightly roll-up."""
import uuid
from datetime import datetime, time, timedelta, timezone

import pytest

from sms.domain.model import Contact, Message, Recipient, Status, utcnow
from sms.usecases.ledger import Ledger
from sms.usecases.usage import Usage
from tests.fakes import LICENSEE, InMemoryLedgerStore

TODAY = datetime(2026, 11, 25, tzinfo=timezone.utc).date()
BILLED = {Status.SENT, Status.DELIVERED, Status.UNDELIVERED}


async def recorded(ledger: Ledger, day, statuses: list[Status], segments: int, provider: str | None = "twilio") -> None:
    """A message of `segments` segments whose recipients the ledger has at these statuses."""
    created_at = datetime.combine(day, time(9), timezone.utc)
    comm_id = uuid.uuid4().hex
    first = Status.SCHEDULED if Status.SCHEDULED in statuses or Status.CANCELLED in statuses else Status.QUEUED
    message = Message(comm_id=comm_id, licensee_id=LICENSEE, body="Your results are ready", sender=Contact(),
                      recipient_count=len(statuses), encoding="GSM-7", segments=segments, created_at=created_at,
                      send_at=created_at + timedelta(hours=1) if first is Status.SCHEDULED else None)
    recipients = [Recipient(comm_id=comm_id, seq=i, recipient_id=uuid.uuid4().hex, phone_number=f"+6141255{i:04d}",
                            status=first, created_at=created_at, updated_at=created_at) for i in range(len(statuses))]
    await ledger.record(message, [r if s is first else r.moved_to(s, at=utcnow()) for r, s in zip(recipients, statuses,
                                                                                                  strict=True)], provider)


async def both_ways(ledger: Ledger, store: InMemoryLedgerStore, day) -> list:
    """The day's usage counted when asked, then as the roll-up saved it."""
    usage = Usage(store)
    [asked] = await usage.usage(LICENSEE, day, day, today=day)
    await usage.roll_up(day + timedelta(days=1))
    [rolled_up] = await usage.usage(LICENSEE, day, day, today=day + timedelta(days=2))
    assert asked.counted_at is None and rolled_up.counted_at is not None
    return [asked, rolled_up]


@pytest.mark.parametrize("status", list(Status), ids=[s.value for s in Status])
async def test_a_recipient_counts_its_segments_and_provider_only_when_a_provider_accepted_it(status):
    store = InMemoryLedgerStore()
    ledger = Ledger(store)
    await recorded(ledger, TODAY, [status], segments=3, provider="console")
    for usage in await both_ways(ledger, store, TODAY):
        assert (usage.messages, usage.recipients, usage.by_status) == (1, 1, {status.value: 1})
        if status in BILLED:
            assert (usage.segments, usage.by_provider) == (3, {"console": 1})
        else:
            assert (usage.segments, usage.by_provider) == (0, {})


async def test_a_day_of_mixed_outcomes_bills_only_what_providers_accepted():
    """The issue's case: a cancelled scheduled message counted 3 segments and a provider with nothing sent."""
    store = InMemoryLedgerStore()
    ledger = Ledger(store)
    await recorded(ledger, TODAY, [Status.CANCELLED] * 3, segments=1, provider="console")
    await recorded(ledger, TODAY, [Status.SENT, Status.DELIVERED, Status.UNDELIVERED, Status.FAILED, Status.OPTED_OUT], segments=2)
    await recorded(ledger, TODAY, [Status.EXPIRED, Status.SENT], segments=4, provider="acs")
    await recorded(ledger, TODAY, [Status.QUEUED, Status.SENDING], segments=1)
    await recorded(ledger, TODAY, [Status.DELIVERED], segments=1, provider=None)  # no provider recorded: "unknown"
    for usage in await both_ways(ledger, store, TODAY):
        assert (usage.messages, usage.recipients) == (5, 13)
        assert usage.segments == 3 * 2 + 1 * 4 + 1
        assert usage.by_provider == {"twilio": 3, "acs": 1, "unknown": 1}
        assert usage.by_status == {"cancelled": 3, "sent": 2, "delivered": 2, "undelivered": 1, "failed": 1, "opted_out": 1,
                                   "expired": 1, "queued": 1, "sending": 1}
