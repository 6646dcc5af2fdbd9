"""The simulator provider: answers sends to simulator numbers (sms/domain/simulated.py) the way each
number says, without a network or a phone, and follows the SMS it took with their delivery receipts.

It is in every deployment (SMS_SIMULATOR, on unless set off), so a licensee can try its integration end
to end, receipts and webhooks included, without texting anyone; simulator numbers go to it whatever the
routing table says. Everything it keeps is in this process's memory, and bounded:

- What it took, by recipient id and attempt (the last REMEMBERED): `find` answers from it. An SMS it
  never takes (a refused or not-taken number, or one that is no simulator number) is one it never had,
  whichever process is asked. One it takes but has no record of may have been taken by another instance
  or before a restart, so it cannot tell: "never had it" would have the gateway send it again.
- Receipts waiting to be applied (at most PENDING_RECEIPTS; past that a receipt is dropped and
  logged, as a carrier's can be lost). Each is applied RECEIPT_DELAY seconds after its send, through
  the receipt use case a vendor's callback calls once it has read the vendor's request
  (`Inbound.apply_receipt`, given by `send_receipts_to`): a simulated receipt has no vendor format
  to read, so it starts where theirs arrive, with the same reference ("<commId>:<seq>") and the same
  forward-only rule, ledger and webhook events. It needs no HTTP server, and no `?code=` secret.

A receipt waits on the process's event loop after the send's function invocation has returned. The
Python worker runs one event loop for the life of its process and runs every async invocation on it
(Azure/azure-functions-python-worker 4.34.0, azure_functions_worker/dispatcher.py: `dispatch_forever`
awaits a future that never completes; `_handle__invocation_request` awaits an async function on
`self._loop`), so the receipt is applied unless the process stops first; then it is lost, as a real
receipt can be.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import OrderedDict
from typing import AsyncIterator, Protocol

from ..domain.model import Status
from ..domain.phone import mask
from ..domain.simulated import SIMULATOR, Behaviour, simulated
from ..logs import log_unexpected
from . import Failure, Found, OutgoingSms, SendOutcome, SmsProvider, Trace

log = logging.getLogger("sms.providers.simulator")

NAME = SIMULATOR
RECEIPT_DELAY = 2.0  # seconds from a send to its receipt: after the dispatch has recorded the send, most times
RECEIPT_ATTEMPTS = 3  # a receipt whose write failed (storage unreachable) is tried again, waiting twice as long each time
RECEIPT_CONCURRENCY = 8  # receipts applied at once, of different messages: each is a few storage requests, beside the sends
REMEMBERED = 50_000  # SMS it keeps a record of, newest; about 10 MB
PENDING_RECEIPTS = 10_000  # receipts waiting to be applied
NOT_A_SIMULATOR_NUMBER = "NOT_A_SIMULATOR_NUMBER"


class ReceiptSink(Protocol):
    """Where receipts go: Inbound.apply_receipt's signature."""

    async def __call__(self, reference: str, status: Status, provider_message_id: str | None = None,
                       detail: str | None = None, provider: str = "") -> object: ...


# What each refusal says, before its code.
_REFUSALS = {
    Behaviour.FAILED: (Failure.REFUSED, "Simulator refused the SMS: the destination is blocked"),
    Behaviour.NOT_TAKEN: (Failure.NOT_TAKEN, "Simulator did not take the SMS: it does not serve this destination"),
    Behaviour.AMBIGUOUS: (Failure.AMBIGUOUS, "Simulator timed out after the request was written: it may have the SMS"),
}
_UNDELIVERED_DETAIL = "Simulated carrier: the handset could not be reached"


class SimulatorProvider(SmsProvider):
    name = NAME

    def __init__(self, receipt_delay: float = RECEIPT_DELAY, remembered: int = REMEMBERED, pending_receipts: int = PENDING_RECEIPTS):
        self._receipt_delay = receipt_delay
        self._remembered = remembered
        self._pending_limit = pending_receipts
        self._taken: OrderedDict[str, tuple[int, str]] = OrderedDict()  # recipient id -> (attempt, provider message id)
        self._sink: ReceiptSink | None = None
        self._pending: set[asyncio.Task] = set()  # held: the loop keeps only weak references to tasks
        self._receipt_slots = asyncio.Semaphore(RECEIPT_CONCURRENCY)
        self._messages_receipts: dict[str, tuple[asyncio.Lock, list[int]]] = {}  # comm id -> its turn, receipts waiting for it

    def send_receipts_to(self, sink: ReceiptSink) -> None:
        """Where the receipts of what it takes go from now on: the gateway's `Inbound.apply_receipt`.
        Until it is given one, receipts are not kept."""
        self._sink = sink

    async def send(self, sms: OutgoingSms) -> SendOutcome:
        behaviour = simulated(sms.to)
        if behaviour is None:
            return SendOutcome(error=f"Simulator did not take the SMS: the number is not a simulator number ({NOT_A_SIMULATOR_NUMBER})",
                               failure=Failure.NOT_TAKEN, code=NOT_A_SIMULATOR_NUMBER)
        provider_id = None
        if behaviour.taken:
            provider_id = self._take(sms)
            if behaviour.receipt is not None:
                self._follow_with_receipt(sms, behaviour, provider_id)
        log.info("SMS to %s: simulated %s%s", mask(sms.to), behaviour.value, f" as {provider_id}" if provider_id else "")
        if behaviour in _REFUSALS:
            failure, text = _REFUSALS[behaviour]
            return SendOutcome(error=f"{text} ({behaviour.code})", failure=failure, code=behaviour.code)
        return SendOutcome(provider_message_id=provider_id)

    def _take(self, sms: OutgoingSms) -> str:
        provider_id = f"sim-{uuid.uuid4().hex}"
        self._taken[sms.recipient_id] = (sms.attempt, provider_id)
        self._taken.move_to_end(sms.recipient_id)
        while len(self._taken) > self._remembered:
            self._taken.popitem(last=False)
        return provider_id

    async def find(self, sms: OutgoingSms) -> Trace:
        behaviour = simulated(sms.to)
        if behaviour is None or not behaviour.taken:
            # It never takes an SMS to this number, in any process: never had it. One refused for good says why.
            refusal = f"{_REFUSALS[behaviour][1]} ({behaviour.code})" if behaviour is Behaviour.FAILED else None
            return Trace(Found.NOT_SENT, error=refusal)
        attempt, provider_id = self._taken.get(sms.recipient_id, (None, None))
        if attempt == sms.attempt:
            return Trace(Found.SENT, provider_id)
        return Trace(Found.UNKNOWN)  # another instance, or this one before a restart, may have taken it

    def _follow_with_receipt(self, sms: OutgoingSms, behaviour: Behaviour, provider_id: str) -> None:
        if self._sink is None:
            return
        if len(self._pending) >= self._pending_limit:
            log.warning("simulator: %d receipts are waiting already; the %s receipt for %s is dropped",
                        len(self._pending), behaviour.value, mask(sms.to))
            return
        detail = f"{_UNDELIVERED_DETAIL} ({behaviour.code})" if behaviour is Behaviour.UNDELIVERED else None
        task = asyncio.get_running_loop().create_task(self._apply_later(self._sink, sms, behaviour.receipt, provider_id, detail))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _apply_later(self, sink: ReceiptSink, sms: OutgoingSms, status: Status, provider_id: str, detail: str | None) -> None:
        wait = self._receipt_delay
        for attempt in range(1, RECEIPT_ATTEMPTS + 1):
            await asyncio.sleep(wait)
            try:
                # A message's receipts one at a time: each rewrites the message's ledger entry (ETag-checked),
                # and a job's receipts all come due together; at once, they and the dispatch's own record of
                # the job kept refusing each other's writes (tests/integration/test_simulator.py).
                async with self._in_turn(sms.reference.partition(":")[0]), self._receipt_slots:
                    await sink(sms.reference, status, provider_id, detail, provider=self.name)
                return
            except Exception as exc:
                if attempt == RECEIPT_ATTEMPTS:
                    log_unexpected(log, f"simulator: the {status.value} receipt for {mask(sms.to)} could not be applied "
                                        f"after {attempt} attempts; it is dropped", exc)
                    return
                log.warning("simulator: the %s receipt for %s could not be applied (%s); trying again",
                            status.value, mask(sms.to), type(exc).__name__)
                wait = self._receipt_delay * 2 ** attempt

    @contextlib.asynccontextmanager
    async def _in_turn(self, comm_id: str) -> AsyncIterator[None]:
        """One receipt of the message at a time; the lock is kept only while a receipt of it waits."""
        turn, waiting = self._messages_receipts.setdefault(comm_id, (asyncio.Lock(), [0]))
        waiting[0] += 1
        try:
            async with turn:
                yield
        finally:
            waiting[0] -= 1
            if not waiting[0]:
                del self._messages_receipts[comm_id]

    async def wait_for_receipts(self) -> None:
        """Until every receipt under way has been applied or given up (tests; a shutdown that wants them)."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def close(self) -> None:
        """Receipts still waiting are dropped: the clients they would be written with close next."""
        for task in self._pending:
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
