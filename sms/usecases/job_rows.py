"""One job's recipient rows as one dispatch sees them, and the only way it changes them.

Every change a dispatch makes to its job's recipients goes through `JobRows`: claiming one for its
provider call, recording the outcome, settling one a dead worker left `sending` as the provider traces
it, marking one opted out, giving up on a parked job's. Two properties make that one place worth having:

- Changes made while the job's writes are in flight go out together in its next write, as one
  entity-group transaction (a job is at most 100 rows of one partition). A job's storage round trips
  therefore grow with the moments at which its provider calls start, not with its recipient count.
- A change is a rule applied to the row as stored, not a row to overwrite. Writes are ETag-checked;
  when storage refuses one (RecordChanged), the job's rows are read again and every rule of the
  write is applied again to what is there. Storage refuses a write when another worker or a delivery
  receipt wrote first, and also when this dispatch's own write landed but its answer was lost: the
  $batch retry after a reset connection repeats it and meets the new ETags (sms/storage/requests.py).
  Rows carrying this dispatch's claim id are then recognised as its own, not as someone else's.

A claim refused because another worker has taken one of those recipients meanwhile means two
dispatches are working through the same job (a redelivery, a safety-net or sweeper copy). The one
that lost steps aside: it claims nothing more (`yielded`), records the outcomes of what it already
handed over, and ends, leaving the rest to the other. Otherwise the two would keep colliding on the
next recipients, write after write, with outcomes of SMS already sent waiting in those writes.
"""
from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime, timedelta
from typing import Callable, Sequence

from ..domain import transitions
from ..domain.model import WAITING, Recipient, Status, utcnow
from ..storage import MessageStore
from .optimistic import update_optimistically

# How often one write is re-read and its rules applied again after storage refused it, before the
# dispatch gives up and leaves the job to the queue's retry. Each round drops the claims other
# workers won, so only rows that keep changing under it (a burst of receipts) can use them all.
WRITE_ATTEMPTS = 5

# Writes of one job's outcomes in flight at once; changes made meanwhile wait, and go out together in the
# next. A write carrying a claim does not wait for one of these (it holds a send slot until it lands):
# it goes at once, with whatever is waiting. More in flight buys a little dispatch rate for many more
# storage requests a job; two is where the dispatch benchmark stopped gaining (docs/scaling.md, Dispatch).
WRITES_IN_FLIGHT = 2

Rule = Callable[[Recipient, datetime], "Recipient | None"]  # a row as stored, and the time of the change


class JobRows:
    """The rows of one job (recipients `first`..`last` of message `comm_id`) for one dispatch.

    `claim_id` is random per JobRows, so per dispatch attempt: rows that carry it were claimed by
    this dispatch, whatever the answer to the write said.
    """

    def __init__(self, store: MessageStore, comm_id: str, rows: Sequence[Recipient], first: int, last: int,
                 lease: timedelta, clock: Callable[[], datetime] = utcnow):
        self.claim_id = uuid.uuid4().hex
        self._store, self._comm_id, self._first, self._last, self._lease = store, comm_id, first, last, lease
        self._clock = clock  # every change is timed by it, when its rule is applied
        self._rows = {r.seq: r for r in rows}
        # seq -> (rule, whether its result settles the row, the future its caller awaits or None)
        self._pending: dict[int, tuple[Rule, bool, asyncio.Future | None]] = {}
        self._writing = asyncio.Semaphore(WRITES_IN_FLIGHT)
        self._settled: dict[int, Recipient] = {}
        self.error: BaseException | None = None  # the last write's failure, if it failed
        self.yielded = False  # another worker is claiming this job's recipients: leave the rest to it

    def queued(self, seq: int) -> bool:
        """Whether the recipient was waiting (queued or scheduled) when last read: one another worker
        took since is skipped."""
        return self._rows[seq].status in WAITING

    def row(self, seq: int) -> Recipient:
        """The recipient as this dispatch last read or wrote it."""
        return self._rows[seq]

    def current(self) -> list[Recipient]:
        """Every row of the job as this dispatch last read or wrote it."""
        return [self._rows[seq] for seq in sorted(self._rows)]

    def settled(self) -> list[Recipient]:
        """The rows this dispatch settled (sent, failed, opted out, or released for a retry), as stored."""
        return [self._settled[seq] for seq in sorted(self._settled)]

    # -- changes -----------------------------------------------------------------------------

    async def claim(self, seq: int, provider: str | None = None, sent_from: str | None = None,
                    flagged: str | None = None) -> Recipient | None:
        """Claim a queued recipient for one provider call to `provider` from `sent_from` (queued -> sending,
        attempts + 1, this claim id), written together with whatever else is waiting. Call it just before
        the provider call, never earlier: `sending` must mean "handed to the provider". None when another
        worker has the recipient or it is settled."""

        def claimed(row: Recipient, at: datetime) -> Recipient | None:
            if row.claim_id == self.claim_id:
                return row  # this dispatch's claim landed; only its answer was lost
            return None if self.yielded else transitions.claimed(row, self.claim_id, at=at, provider=provider, sent_from=sent_from,
                                                                               flagged=flagged)

        row = await self._write(seq, claimed, settles=False, claiming=True)
        return row if row is not None and row.status is Status.SENDING and row.claim_id == self.claim_id else None

    async def pass_on(self, seq: int, provider: str, why: str, code: str | None = None) -> Recipient | None:
        """Hand this dispatch's claimed recipient to the next provider of its route (`why`: the first did
        not take it), written at once, before the next call. The row as it now stands: still this claim's
        and `sending` to `provider`, or settled (a cancel came meanwhile), or None if it moved on."""
        return await self._write(seq, lambda row, at: transitions.passed_on(row, self.claim_id, provider, why, at=at, code=code),
                                 settles=False, claiming=True)

    async def record(self, outcome: Recipient) -> Recipient:
        """Record a provider call's outcome, merged into the row as stored: status only moves forward,
        so a receipt that came first keeps its later status (the provider's message id is kept)."""
        return await self._write(outcome.seq, _merged_with(outcome), settles=True)

    def fail_left_behind(self, seq: int) -> None:
        """Fail, as outcome unknown, a recipient another worker left `sending` past its lease.
        Written with the next write (or `flush`)."""
        self._add(seq, (lambda row, at: transitions.left_behind(row, at - self._lease, self.claim_id, at=at), True, None))

    def found_sent(self, seq: int, claim_id: str, provider_message_id: str | None) -> None:
        """A claim left behind that the provider says it has: sent, with its id. Written with the next write."""
        self._add(seq, (lambda row, at: transitions.found_sent(row, claim_id, provider_message_id, at=at), True, None))

    def found_unknown(self, seq: int, claim_id: str | None) -> None:
        """A claim left behind that the provider cannot tell about: failed as outcome unknown. Written with the next write."""
        self._add(seq, (lambda row, at: transitions.found_unknown(row, claim_id, at=at), True, None))

    def found_not_sent(self, seq: int, claim_id: str, refusal: str | None = None) -> None:
        """A claim left behind that the provider never had: queued again, to be sent now (or failed with
        the provider's `refusal`). Written with the next write."""
        self._add(seq, (lambda row, at: transitions.found_not_sent(row, claim_id, refusal, at=at), refusal is not None, None))

    def opt_out(self, seq: int) -> None:
        """Mark a queued recipient opted out: not attempted. Written with the next write (or `flush`)."""
        self._add(seq, (lambda row, at: transitions.opted_out(row, at=at), True, None))

    def block(self, seq: int, reason: str) -> None:
        """Mark a waiting recipient blocked by the licensee's guard (`reason` says why): not attempted.
        Written with the next write."""
        self._add(seq, (lambda row, at: transitions.blocked(row, reason, at=at), True, None))

    def no_route(self, seq: int) -> None:
        """Fail a queued recipient no routing rule matches: not attempted. Written with the next write."""
        self._add(seq, (lambda row, at: transitions.unroutable(row, at=at), True, None))

    def expire(self, seq: int) -> None:
        """Mark a waiting recipient expired (its validUntil passed): not attempted. Written with the next write."""
        self._add(seq, (lambda row, at: transitions.expired(row, at=at), True, None))

    def cancel(self, seq: int) -> None:
        """Cancel a waiting recipient: not attempted. Written with the next write (or `flush`); one a
        dispatch claimed first is left as it is (the rule sees the claim when the write is refused)."""
        self._add(seq, (lambda row, at: transitions.cancelled(row, at=at), True, None))

    def hold(self, seq: int, reason: str) -> None:
        """Keep a waiting recipient waiting, with `reason` (quiet hours). Written with the next write."""
        self._add(seq, (lambda row, at: transitions.held(row, reason, at=at), False, None))

    def give_up(self, seq: int, reason: str) -> None:
        """For a parked job: fail a queued recipient with `reason`, and one left `sending` past its
        lease as outcome unknown. A recipient whose lease still runs is left to its live worker.
        Written with the next write (or `flush`)."""
        self._add(seq, (lambda row, at: transitions.given_up(row, reason, at - self._lease, self.claim_id, at=at), True, None))

    async def flush(self, *, claiming: bool = False) -> None:
        """Write every change still waiting; raises what the write raised. `claiming`: the write
        carries a claim, whose send slot is held until it lands: it goes at once, with whatever else
        is waiting, instead of queueing behind WRITES_IN_FLIGHT writes of outcomes."""
        await asyncio.sleep(0)  # let the changes made in this turn of the event loop join the write
        async with contextlib.nullcontext() if claiming else self._writing:
            if not self._pending:
                return
            batch, self._pending = self._pending, {}
            try:
                results = await self._apply(batch)
            except BaseException as exc:
                # Every change of the batch shares its fate: each waiting caller raises it.
                self.error = exc
                for _, _, waiting in batch.values():
                    if waiting is not None and not waiting.done():
                        waiting.cancel() if isinstance(exc, asyncio.CancelledError) else waiting.set_exception(exc)
                raise
            for seq, (_, _, waiting) in batch.items():
                if waiting is not None and not waiting.done():
                    waiting.set_result(results[seq])

    # -- writing -----------------------------------------------------------------------------

    async def _write(self, seq: int, rule: Rule, settles: bool, claiming: bool = False) -> Recipient | None:
        written: asyncio.Future[Recipient | None] = asyncio.get_running_loop().create_future()
        self._add(seq, (rule, settles, written))
        await self.flush(claiming=claiming)
        return await written  # written by this flush, or by one already in flight that took it along

    def _add(self, seq: int, change: tuple[Rule, bool, asyncio.Future | None]) -> None:
        assert seq not in self._pending, f"two changes to recipient {seq} waiting at once"  # a caller would wait forever
        self._pending[seq] = change

    async def _apply(self, batch: dict[int, tuple[Rule, bool, asyncio.Future | None]]) -> dict[int, Recipient | None]:
        """Apply the rules to the rows as last read and write the rows they change, all or none;
        when storage refuses, read the rows again and start over."""

        def change(rows: dict[int, Recipient]) -> tuple[dict[int, Recipient | None], list[Recipient]]:
            at = self._clock()
            results = {seq: rule(rows[seq], at) for seq, (rule, _, _) in batch.items()}
            return results, [row for seq, row in results.items() if row is not None and row is not rows[seq]]

        async def write(planned: tuple[dict[int, Recipient | None], list[Recipient]]) -> dict[int, Recipient | None]:
            results, changed = planned
            for row in await self._store.update_recipients(self._comm_id, changed) if changed else []:
                self._rows[row.seq] = results[row.seq] = row
            self._settled.update({seq: row for seq, row in results.items() if row is not None and batch[seq][1]})
            return results

        async def read() -> dict[int, Recipient]:
            # A row may read back older than a write of this dispatch still in flight: the next write
            # of that row then meets a changed ETag and is derived again. Every write is ETag-checked,
            # so a stale row can cost a round trip, never a wrong write.
            loaded = await self._store.load(self._comm_id, self._first, self._last)
            self._rows.update({r.seq: r for r in (loaded[1] if loaded else [])})
            # Claims (the changes a caller waits on that do not settle the row): a hold or a row put back
            # is not one, and a receipt that changed such a row says nothing of another dispatch.
            claims = [seq for seq, (_, settles, waiting) in batch.items() if not settles and waiting is not None]
            if any(self._rows[seq].status not in WAITING and self._rows[seq].claim_id != self.claim_id for seq in claims):
                self.yielded = True
            return self._rows

        return await update_optimistically(read, change, write, attempts=WRITE_ATTEMPTS,
                                           what=f"recipients of {self._comm_id}", current=self._rows)


def _merged_with(outcome: Recipient) -> Rule:
    return lambda row, at: transitions.recorded(row, outcome, at=at) or row  # unchanged: this outcome's write had landed already
