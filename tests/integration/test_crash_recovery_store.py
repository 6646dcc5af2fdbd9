"""Adversarial review of the crash recovery against Azurite: what only the Table service shows (an
entity-group transaction refused for one entity's ETag, the sweeper's own query)."""
from dataclasses import replace
from datetime import timedelta

import pytest

from sms.domain import transitions
from sms.domain.commands import Party, SendMessage
from sms.domain.model import Status, utcnow
from sms.storage.tables import TableMessageStore
from tests.fakes import InMemoryJobQueue, TracingProvider, VendorRecord, assembled

LICENSEE = "a" * 32


@pytest.fixture
async def store(table_service, unique_name):
    table = TableMessageStore(table_service.get_table_client(unique_name("review")))
    await table.create_table()
    return table


async def test_on_azurite_a_receipt_during_the_trace_strands_the_recipients_put_back(store):
    """tests/unit/test_crash_recovery.py's receipt case on the Table service: the settle transaction is
    refused for R0's ETag alone (its receipt), JobRows reads again and steps aside, the put-back rows
    land queued with NOT_HANDED_OVER, and the sweeper's rule (transitions.stranded: queued rows with an
    error are "retry pending") does not find them, however long they wait."""
    vendor, queue = VendorRecord(), InMemoryJobQueue()
    use = assembled(store, queue, TracingProvider(vendor))
    numbers = ("+61412300000", "+61412300001", "+61412300002")
    sent = await use.accept.queue(SendMessage(to=tuple(Party(phone_number=n) for n in numbers), body="Hi"), LICENSEE)
    comm_id = sent.comm_id
    [(job, _)] = queue.jobs
    _, rows = await store.load(comm_id)
    an_hour_ago = utcnow() - timedelta(hours=1)
    dead = [replace(transitions.claimed(r, "dead worker", at=utcnow()), updated_at=an_hour_ago, first_attempt_at=an_hour_ago) for r in rows]
    dead = await store.update_recipients(comm_id, dead)
    vendor.ids[dead[0].recipient_id], vendor.sends[dead[0].recipient_id] = "vendor-0", 1  # R0 reached the vendor

    class ReceiptMeanwhile(TracingProvider):
        async def find(self, sms):
            trace = await super().find(sms)
            if sms.to == numbers[0]:
                _, now = await store.load(comm_id, 0, 0)
                await store.update_recipients(comm_id, [transitions.receipt(now[0], Status.DELIVERED, "vendor-0", None, at=utcnow())])
            return trace

    again = assembled(store, queue, ReceiptMeanwhile(vendor))
    await again.dispatch.dispatch(job)
    swept = await again.sweep.run(queued_for=timedelta(0))
    for each in swept:
        await again.dispatch.dispatch(each)
    _, rows = await store.load(comm_id)
    assert [r.status for r in rows] == [Status.DELIVERED, Status.SENT, Status.SENT]
