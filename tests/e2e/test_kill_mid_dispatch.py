"""A dev host killed (SIGKILL) while it sends a 1,000-recipient message, and a new host on the same
storage: every recipient is texted exactly once and ends `sent`, none "outcome unknown" (issue 23,
item 2). The console provider's outbox is its vendor record: what the killed host handed over is in it,
so the new host records those as sent (with the outbox's id) and sends the ones it never handed over.

What is faithful and what is not: the killed host is the real dev host, with its in-flight queue
visibility cut from the Functions host's 600 s to 8 s so that the jobs it held come back within the
test (on Azure they come back after 10 minutes, with their dequeue count up), and the sending lease at
its minimum, 30 s. The kill lands where the dispatch is: the host is frozen (SIGSTOP) until storage
holds claims in `sending`, then killed, so every run exercises claims left behind both ways.

The same on each accept path (issue 30): one 1,000-recipient message takes the two-call path (over 98 recipients),
ten of 98 the one-call path, where the worker first writes each message's rows from its job and then sends it.
"""
from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient
from azure.storage.queue import QueueClient

from sms.config import ACCEPT_QUEUE, SEND_QUEUE
from sms.dev import azurite
from sms.domain.jobs import WHOLE_JOB_SIZE
from sms.domain.transitions import NOT_HANDED_OVER
from sms.storage.tables import MESSAGES_TABLE
from tests.e2e.conftest import doomed_devhost, outbox_lines, running_devhost, wait_for

RECIPIENTS = 1000
LEASE = {"SMS_SENDING_LEASE_SECONDS": "30"}


def rows(connection_string: str, comm_id: str) -> dict[str, dict]:
    """Recipient id -> its row, read straight from the table."""
    with TableClient.from_connection_string(connection_string, MESSAGES_TABLE) as table:
        found = table.query_entities("PartitionKey eq @pk", parameters={"pk": comm_id},
                                     select=["RowKey", "RecipientId", "Status", "ProviderMessageId"])
        return {e["RecipientId"]: dict(e) for e in found if e["RowKey"].startswith("r")}




def kill_once(process, look, caught, may_still_catch):
    """Freeze the host (SIGSTOP), look at storage, and kill it (SIGKILL) once `caught(what it saw)`; else let it go on
    a moment. Fails once `may_still_catch(what it saw)` is false: the host went past where the kill should land. Returns
    what storage held at the kill (the host was frozen from that look to its death, so nothing changed between)."""
    while True:
        os.kill(process.pid, signal.SIGSTOP)
        seen = look()
        if caught(seen):
            break
        assert may_still_catch(seen), "the dispatch ran past where the kill should land before it could be caught there"
        os.kill(process.pid, signal.SIGCONT)
        time.sleep(0.02)
    process.kill()
    process.wait(10)
    return seen


def test_a_host_killed_mid_dispatch_leaves_no_recipient_unknown_and_none_texted_twice(tmp_path):
    box = tmp_path / "outbox.jsonl"
    phones = [f"+6141{i:07d}" for i in range(RECIPIENTS)]
    with azurite.start() as storage:
        with doomed_devhost(storage.connection_string, box, **LEASE) as (first, process):
            key = first.create_key("5" * 32)
            status, answer = first.request("POST", "/api/sms/send", {"SMSModel": {
                "To": [{"PhoneNumber": p} for p in phones], "MessageBody": "Your appointment is at 10am"}}, key=key)
            assert status == 200, answer
            comm_id = answer["commId"]
            assert wait_for(lambda: len(outbox_lines(box)) >= 100, timeout=60, interval=0.01)
            at_kill = kill_once(process, lambda: rows(storage.connection_string, comm_id),
                                lambda seen: any(r["Status"] == "sending" for r in seen.values()),
                                lambda seen: len(outbox_lines(box)) < RECIPIENTS - 100)
            handed = {line["recipientId"]: line["providerMessageId"] for line in outbox_lines(box)}

        claimed = {rid for rid, r in at_kill.items() if r["Status"] == "sending"}
        claimed_and_handed, claimed_only = claimed & handed.keys(), claimed - handed.keys()
        statuses_at_kill = Counter(r["Status"] for r in at_kill.values())

        with running_devhost(storage.connection_string, box, **LEASE) as second:
            done = lambda: all(r["Status"] not in ("queued", "sending") for r in rows(storage.connection_string, comm_id).values())  # noqa: E731
            assert wait_for(done, timeout=180, interval=0.5), Counter(r["Status"] for r in rows(storage.connection_string,
                                                                                                comm_id).values())
            status, message = second.request("GET", f"/api/sms/{comm_id}", key=key)
            assert status == 200

    final = {r["id"]: r for r in message["recipients"]}
    lines = outbox_lines(box)
    # Exactly once each: 1,000 lines, one per recipient, and every recipient sent.
    assert len(lines) == RECIPIENTS and sorted(Counter(line["recipientId"] for line in lines).values()) == [1] * RECIPIENTS
    assert Counter(r["status"] for r in final.values()) == {"sent": RECIPIENTS}, statuses_at_kill
    # The kill left claims both ways, and each was settled by what the provider had.
    assert claimed_and_handed or claimed_only, statuses_at_kill
    for rid in claimed_and_handed:  # handed over before the kill: recorded with the provider's own id, not sent again
        assert final[rid]["providerMessageId"] == handed[rid]
        assert all(step.get("error") != NOT_HANDED_OVER for step in final[rid]["timeline"])
    for rid in claimed_only:  # claimed, never handed over: sent by the new host, its timeline says why
        assert any(step.get("error") == NOT_HANDED_OVER for step in final[rid]["timeline"]), final[rid]["timeline"]
        assert final[rid]["attempts"] == 2
    print(f"at the kill: {dict(statuses_at_kill)}; claimed and handed over {len(claimed_and_handed)}, "
          f"claimed only {len(claimed_only)}; after: {dict(Counter(r['status'] for r in final.values()))}")


MESSAGES = 10


def partition(connection_string: str, comm_id: str) -> list[dict]:
    """Every row of the message's partition: its message row, its recipients and (a one-call message's) its gate."""
    with TableClient.from_connection_string(connection_string, MESSAGES_TABLE) as table:
        return [dict(e) for e in table.query_entities("PartitionKey eq @pk", parameters={"pk": comm_id})]


def queued_jobs(connection_string: str) -> dict[str, int]:
    """Messages on each job queue and its poison queue, invisible ones too (Get Queue Metadata's approximate count is
    never below the real one: https://learn.microsoft.com/rest/api/storageservices/get-queue-metadata)."""
    counts = {}
    for name in (ACCEPT_QUEUE, f"{ACCEPT_QUEUE}-poison", SEND_QUEUE, f"{SEND_QUEUE}-poison"):
        with QueueClient.from_connection_string(connection_string, name) as queue:
            try:
                counts[name] = queue.get_queue_properties().approximate_message_count
            except ResourceNotFoundError:  # never made: nothing was put on it
                counts[name] = 0
    return counts


def test_a_host_killed_mid_dispatch_of_one_call_messages_leaves_none_unknown_and_none_texted_twice(tmp_path):
    """The same kill on the one-call path (issue 30): ten messages of 98 recipients, each accepted in one put of its whole
    job, so the worker first writes the message's rows from the job (sms-accept) and then sends. The kill lands with
    claims in `sending` and whatever the worker had not yet written from its jobs; the new host writes those (once)
    and finishes the rest, each recipient texted exactly once."""
    box = tmp_path / "outbox.jsonl"
    phones = {m: [f"+6142{m:02d}{i:05d}" for i in range(WHOLE_JOB_SIZE)] for m in range(MESSAGES)}
    total = MESSAGES * WHOLE_JOB_SIZE
    with azurite.start() as storage:
        cs = storage.connection_string
        with doomed_devhost(cs, box, **LEASE) as (first, process):
            key = first.create_key("6" * 32)
            comm_ids = []

            def accept(m: int) -> None:
                status, answer = first.request("POST", "/api/sms/send", {"SMSModel": {
                    "To": [{"PhoneNumber": p} for p in phones[m]], "MessageBody": f"Your appointment {m} is at 10am"}}, key=key)
                assert status == 200, answer
                assert uuid.UUID(answer["commId"]).version == 8, answer  # tagged: taken by the accept before any row exists
                comm_ids.append(answer["commId"])

            # All but the last, and their sends under way; then the last, and the kill right after its answer, before
            # the worker (its next poll for it up to host.json's maxPollingInterval away) has likely written its rows.
            for m in range(MESSAGES - 1):
                accept(m)
            assert wait_for(lambda: len(outbox_lines(box)) >= 100, timeout=60, interval=0.01)
            accept(MESSAGES - 1)
            at_kill = kill_once(process, lambda: {c: rows(cs, c) for c in comm_ids},
                                lambda seen: any(r["Status"] == "sending" for found in seen.values() for r in found.values()),
                                lambda seen: len(outbox_lines(box)) < total - 100)
            handed = {line["recipientId"]: line["providerMessageId"] for line in outbox_lines(box)}

        claimed = {rid for found in at_kill.values() for rid, r in found.items() if r["Status"] == "sending"}
        claimed_and_handed, claimed_only = claimed & handed.keys(), claimed - handed.keys()
        statuses_at_kill = Counter(r["Status"] for found in at_kill.values() for r in found.values())

        with running_devhost(cs, box, **LEASE) as second:
            def finished():
                found = [rows(cs, c) for c in comm_ids]
                return all(len(f) == WHOLE_JOB_SIZE and all(r["Status"] not in ("queued", "sending") for r in f.values()) for f in found)
            assert wait_for(finished, timeout=240, interval=0.5), {c: Counter(r["Status"] for r in rows(cs, c).values()) for c in comm_ids}
            assert wait_for(lambda: not any(queued_jobs(cs).values()), timeout=60, interval=0.5), queued_jobs(cs)
            final = {}
            for c in comm_ids:
                status, message = second.request("GET", f"/api/sms/{c}", key=key)
                assert status == 200, message
                assert message["recipientCount"] == WHOLE_JOB_SIZE
                final.update({r["id"]: r for r in message["recipients"]})
        stored = {c: Counter("recipient" if e["RowKey"].startswith("r") else e["RowKey"] for e in partition(cs, c)) for c in comm_ids}
        gates = {c: [e["State"] for e in partition(cs, c) if e["RowKey"] == "gate"] for c in comm_ids}

    lines = outbox_lines(box)
    # One set of rows per message, written from its job by the worker (the one-call path's `materialized` gate).
    assert stored == {c: {"message": 1, "recipient": WHOLE_JOB_SIZE, "gate": 1} for c in comm_ids}
    assert gates == {c: ["materialized"] for c in comm_ids}
    # Exactly once each: one line per recipient of every message, to that recipient's phone, and every recipient sent.
    assert len(final) == total
    assert len(lines) == total and sorted(Counter(line["recipientId"] for line in lines).values()) == [1] * total
    assert {line["recipientId"]: line["to"] for line in lines} == {rid: r["phoneNumber"] for rid, r in final.items()}
    assert Counter(r["status"] for r in final.values()) == {"sent": total}, statuses_at_kill
    # The kill left claims in `sending`, each settled by what the provider had.
    assert claimed_and_handed or claimed_only, statuses_at_kill
    for rid in claimed_and_handed:
        assert final[rid]["providerMessageId"] == handed[rid]
        assert all(step.get("error") != NOT_HANDED_OVER for step in final[rid]["timeline"])
    for rid in claimed_only:
        assert any(step.get("error") == NOT_HANDED_OVER for step in final[rid]["timeline"]), final[rid]["timeline"]
        assert final[rid]["attempts"] == 2
    print(f"at the kill, each message's rows: {[dict(Counter(r['Status'] for r in at_kill[c].values())) for c in comm_ids]}; "
          f"{len(handed)} handed over; claimed and handed over {len(claimed_and_handed)}, claimed only {len(claimed_only)}")
