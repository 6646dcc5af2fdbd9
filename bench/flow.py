"""Storage transactions per message, from accept to its final status, on each accept path (issue 30's measures:
Azure bills Table and Queue storage per transaction, each REST request one).

Counted, not reckoned: in this process, through the real adapters `bootstrap.build` wires (every storage HTTP
response seen at the adapter, the hand-written hot path's included), one-recipient messages each to a distinct
number (so every dispatch reads its opt-out, as a gateway sending to many numbers does) go through every step a
deployment runs for them, on each path in turn:

- accept: `Accept.queue`, as POST /api/sms/send calls it;
- the host: the queue's Get Messages (batches of host.json's batchSize, 16, as the Functions host reads them)
  and, after the function, its Delete Message. A listener's empty polls are left out: they cost per listener
  and second (after an empty poll it waits from 100 ms up to maxPollingInterval, 2 s), not per message;
- the worker: what the queue function runs (sms/entrypoints/worker.py), materialize on the one-call path, the
  send (the console provider: `sent` is its final status, no receipt follows), the ledger;
- the sweeper: its marks (written behind, up to 100 a transaction per partition, a shard and a 5-minute bucket:
  counted apart, as their share per message falls as more messages are accepted a second) and its look once they
  fall due (a sweep run with its clock past the marks: one load per message, the marks dropped). What a sweep run
  costs whatever it finds (its index's shard queries, its other checks), every SWEEP_SCHEDULE, is a row of its own:
  it does not grow with messages.

Two-call is the gateway with SMS_ACCEPT_ONE_CALL off, as before issue 30; one-call the same with it on and a
commId key (bench/accept.py's ONE_CALL_ENV). The paths run one after the other, each its sweep after it, so a
sweep finds its own path's marks only.
"""
from __future__ import annotations

from datetime import timedelta

from sms.bootstrap import build
from sms.config import ACCEPT_QUEUE, SEND_QUEUE, Settings, queue_message_encoding
from sms.domain.commands import Party, SendMessage
from sms.domain.jobs import WholeJob, parse_job
from sms.domain.model import Status, utcnow
from sms.storage.queues import queue_client
from sms.usecases.sweep import PendingMessages, Sweep

from . import accept
from .harness import Row
from .ledger import Trips

LICENSEE = "f1" * 16
BATCH = 16  # host.json queues.batchSize: what one Get Messages of the host takes
STEPS = ("accept", "host: get + delete", "worker", "sweeper: marks", "sweeper: look when due")
PATHS = {"two-call": accept.TWO_CALL_ENV, "one-call": accept.ONE_CALL_ENV}


async def per_message(connection: str, messages: int) -> dict[str, dict[str, float]]:
    """path -> step -> storage transactions per message (and "total")."""
    found = {}
    for path, env in PATHS.items():
        found[path] = await _one_path(connection, path, env, messages)
    return found


async def _one_path(connection: str, path: str, env: dict[str, str], messages: int) -> dict[str, float]:
    trips = Trips()
    settings = Settings.from_env({"AzureWebJobsStorage": connection, "SMS_PROVIDER": "console", **env})
    adapters = build(settings, on_response=trips)
    try:
        await adapters.ensure_storage()
        use = adapters.gateway().use
        queue = queue_client(adapters.queues, ACCEPT_QUEUE if path == "one-call" else SEND_QUEUE, queue_message_encoding())
        lease = timedelta(seconds=settings.sending_lease_seconds)
        pending = PendingMessages(adapters.pending, lease)
        later = [utcnow()]
        sweep = Sweep(adapters.messages, adapters.jobs, pending, use.opt_outs, lease, clock=lambda: later[0])

        async def flow(numbers: range) -> dict[str, int]:
            counted = dict.fromkeys(("accept", "get", "worker", "delete", "marks", "sweep", "empty sweep"), 0)

            async def step(name: str, work) -> None:
                trips.reset()
                await work()
                counted[name] += trips.responses
                trips.reset()
                await adapters.pending.flush()  # the marks the step noted (written behind), counted apart
                counted["marks"] += trips.responses

            comm_ids, taken = [], []

            async def accepting() -> None:
                for i in numbers:
                    command = SendMessage(to=(Party(phone_number=f"+6143{i:07d}"),), body=f"Flow benchmark {i}")
                    comm_ids.append((await use.accept.queue(command, LICENSEE)).comm_id)

            async def getting() -> None:
                while len(taken) < len(comm_ids):  # one Get Messages a batch, as the host's listener takes them
                    page = [m async for m in await queue.receive_messages(messages_per_page=BATCH).by_page().__anext__()]
                    if not page:
                        raise RuntimeError(f"{path}: {len(taken)} of {len(comm_ids)} jobs on {queue.queue_name}; "
                                           "the accept did not take the path it is counted for")
                    taken.extend(page)

            async def working() -> None:
                for message in taken:
                    job = parse_job(message.content)  # as the queue functions do (sms/entrypoints/worker.py)
                    await (use.dispatch.dispatch_whole(job) if isinstance(job, WholeJob) else use.dispatch.dispatch(job))

            async def deleting() -> None:
                for message in taken:
                    await queue.delete_message(message)

            async def sweeping() -> None:
                later[0] = utcnow() + pending.patience + timedelta(minutes=30)
                await sweep.run()

            await step("empty sweep", sweeping)  # nothing noted yet: what any sweep run costs
            for name, work in (("accept", accepting), ("get", getting), ("worker", working), ("delete", deleting), ("sweep", sweeping)):
                await step(name, work)
            trips.reset()
            for comm_id in comm_ids:  # a figure for messages that did not end sent would mean nothing
                loaded = await adapters.messages.load(comm_id)
                if loaded is None or [r.status for r in loaded[1]] != [Status.SENT]:
                    raise RuntimeError(f"{path}: message {comm_id} did not end sent: {loaded and loaded[1]}")
            return counted

        await flow(range(1))  # warm up: the licensee's settings, the caches, the sweeper's one-time backfill
        counted = await flow(range(1, messages + 1))
        out = {"accept": counted["accept"], "host: get + delete": counted["get"] + counted["delete"], "worker": counted["worker"],
               "sweeper: marks": counted["marks"], "sweeper: look when due": counted["sweep"] - counted["empty sweep"]}
        out = {name: value / messages for name, value in out.items()}
        out["total"] = sum(out.values())
        out["sweep run"] = counted["empty sweep"]
        return out
    finally:
        await adapters.close()


def rows(found: dict[str, dict[str, float]], messages: int) -> list[Row]:
    out = []
    for path, steps in found.items():
        out.append(Row("transactions", f"storage transactions per message, {path}", steps["total"],
                       f"per 1-recipient message, accept to sent ({messages} counted; empty polls left out)"))
        out += [Row("transactions", f"  {path}: {name}", steps[name], "per message") for name in STEPS]
    saved = found["two-call"]["total"] - found["one-call"]["total"]
    out.append(Row("transactions", "two-call less one-call, per message", saved, "transactions"))
    out.append(Row("transactions", "a sweep run, whatever it finds (either path)", found["one-call"]["sweep run"],
                   "per run (every 5 minutes)"))
    return out
