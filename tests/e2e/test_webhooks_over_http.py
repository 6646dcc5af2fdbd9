"""Webhooks over HTTP (issue 15), end to end: the dev host (`python -m sms.dev.host`, the app's own
functions, its queue listener imitating the Functions host) on an Azurite of its own, and receivers on
127.0.0.1 that verify every request with the `standardwebhooks` package (tests/webhook_receiver.py).

Each test drives the gateway only as its users do (the HTTP API, vendors' receipts and inbound SMS)
and asserts on what the receivers got, what the delivery log and `GET /api/webhooks` say, and what the
dev host logged: exactly once to a receiver that answers 200; at least once, with identical bodies,
across failures and a killed host; a 410 disabling the endpoint until it is enabled; no delivery to a
name that resolves to loopback; both secrets signing during a rotation; no redirect followed.
"""
from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
import urllib.request
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode

import pytest
from azure.storage.queue import QueueClient
from standardwebhooks import Webhook, WebhookVerificationError
from twilio.request_validator import RequestValidator

from sms.config import WEBHOOK_QUEUE
from sms.dev import azurite
from sms.domain.events import located
from sms.domain.webhook_signing import new_secret
from tests.e2e.conftest import EVENTGRID_SECRET, DevHost, doomed_devhost, running_devhost, wait_for
from tests.webhook_receiver import Delivery, ReceiverThread, WebhookReceiver

SENDER = "+61400000715"  # every licensee here texts from it: a STOP to it applies to them all
TWILIO_TOKEN, PUBLIC = "e2e-twilio-token", "https://sms.example.test"
CALLBACKS = {"TWILIO_AUTH_TOKEN": TWILIO_TOKEN, "SMS_PUBLIC_BASE_URL": PUBLIC}
LOCAL_RECEIVERS = {"SMS_WEBHOOKS_ALLOW_PRIVATE": "true", **CALLBACKS}
CODES = {"message.sent": "s", "message.delivered": "d", "message.undelivered": "u", "message.failed": "f",
         "message.opted_out": "o"}
FINAL = {"delivered", "undelivered", "failed", "opted_out"}


# -- the gateway, its storage and receivers ---------------------------------------------------------


@pytest.fixture(scope="module")
def receivers():
    """Receivers served from a thread of their own: the tests themselves block on HTTP calls."""
    with ReceiverThread() as thread:
        yield thread


@contextlib.contextmanager
def gateway(tmp_path: Path, **env: str):
    """A dev host on an Azurite of its own (so no other host takes its queue messages), stopped on exit."""
    with azurite.start() as storage:
        with running_devhost(storage.connection_string, tmp_path / "outbox.jsonl", **env) as host:
            yield storage, host


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One gateway for the tests that only add an endpoint of their own licensee and watch it."""
    with gateway(tmp_path_factory.mktemp("webhooks"), **LOCAL_RECEIVERS) as pair:
        yield pair


def licensee() -> str:
    return uuid.uuid4().hex


def add_endpoint(host: DevHost, key: str, url: str, event_types: list[str] | None = None) -> dict:
    status, endpoint = host.request("POST", "/api/webhooks", {"url": url, **({"eventTypes": event_types} if event_types else {})}, key=key)
    assert status == 200, endpoint
    assert endpoint["secret"].startswith("whsec_") and endpoint["enabled"] is True
    return endpoint


def endpoint_state(host: DevHost, key: str, endpoint_id: str) -> dict:
    status, listed = host.request("GET", "/api/webhooks", key=key)
    assert status == 200, listed
    [endpoint] = [e for e in listed["endpoints"] if e["endpointId"] == endpoint_id]
    assert "secret" not in endpoint
    return endpoint


def delivery_log(host: DevHost, key: str, endpoint_id: str) -> list[dict]:
    """Every attempt the endpoint's delivery log holds, newest first, every page."""
    found, token = [], None
    for _ in range(100):
        query = urlencode({"take": 200, **({"continuationToken": token} if token else {})})
        status, page = host.request("GET", f"/api/webhooks/{endpoint_id}/deliveries?{query}", key=key)
        assert status == 200, page
        found += page["deliveries"]
        token = page.get("continuationToken")
        if not token:
            return found
    raise AssertionError("no end to the delivery log's pages")


def deliveries_pending(connection_string: str) -> int:
    """Messages on the delivery queue, hidden ones included (in flight, or waiting for a retry)."""
    with QueueClient.from_connection_string(connection_string, WEBHOOK_QUEUE) as queue:
        return queue.get_queue_properties().approximate_message_count


def settled(storage) -> bool:
    """True once every delivery queued so far has been run and deleted: what a receiver will ever get
    of them, it has got."""
    return wait_for(lambda: deliveries_pending(storage.connection_string) == 0, timeout=60, interval=0.25)


def send(host: DevHost, key: str, phones: list[str], *, immediate: bool = False, replies: bool = False,
         text: str = "Your appointment") -> str:
    model = {"From": {"PhoneNumber": SENDER}, "To": [{"PhoneNumber": p} for p in phones], "MessageBody": text,
             "ReplyIsAllowed": replies}
    status, answer = host.request("POST", "/api/sms/send/immediate" if immediate else "/api/sms/send", {"SMSModel": model}, key=key)
    assert status == 200, answer
    return answer["commId"]


def ledger(host: DevHost, key: str, params: dict | None = None) -> list[dict]:
    found, token = [], None
    for _ in range(200):
        query = urlencode({**(params or {}), "take": 200, **({"continuationToken": token} if token else {})})
        status, page = host.request("GET", f"/api/sms?{query}", key=key)
        assert status == 200, page
        found += page["messages"]
        token = page.get("continuationToken")
        if not token:
            return found
    raise AssertionError("no end to the ledger's pages")


def dispatched(host: DevHost, key: str, count: int) -> bool:
    """All `count` of the licensee's messages are listed (their jobs have run and recorded them), none
    still queued or sending."""
    return len(ledger(host, key)) == count and not any(ledger(host, key, {"status": s}) for s in ("queued", "sending"))


def grid(host: DevHost, events: list[dict]) -> None:
    status, answer = host.request("POST", f"/api/sms/receipts/acs?code={EVENTGRID_SECRET}", events)
    assert status == 200, answer


def acs_report(comm_id: str, seq: int, phone: str, outcome: str) -> dict:
    data = {"messageId": f"Outgoing_{comm_id}_{seq}", "from": SENDER, "to": phone, "deliveryStatus": outcome,
            "deliveryStatusDetails": "No error." if outcome == "Delivered" else "Carrier said no",
            "receivedTimestamp": _now(), "tag": f"{comm_id}:{seq}"}
    return {"id": uuid.uuid4().hex, "eventType": "Microsoft.Communication.SMSDeliveryReportReceived", "data": data}


def twilio(host: DevHost, path: str, fields: dict[str, str], expected: int) -> None:
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC + path, fields)
    request = urllib.request.Request(host.base_url + path, data=urlencode(fields).encode(), method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == expected


def twilio_receipt(host: DevHost, comm_id: str, seq: int, status: str) -> None:
    fields = {"MessageSid": "SM" + uuid.uuid4().hex, "MessageStatus": status, **({"ErrorCode": "30006"} if status == "failed" else {})}
    twilio(host, f"/api/sms/receipts/twilio?{urlencode({'ref': f'{comm_id}:{seq}'})}", fields, 204)


def acs_inbound(host: DevHost, person: str, text: str) -> str:
    """A reply through ACS (Event Grid); its provider message id."""
    data = {"messageId": f"Incoming_{uuid.uuid4().hex}", "from": person, "to": SENDER, "message": text, "receivedTimestamp": _now()}
    grid(host, [{"id": uuid.uuid4().hex, "eventType": "Microsoft.Communication.SMSReceived", "data": data}])
    return data["messageId"]


def twilio_inbound(host: DevHost, person: str, text: str) -> str:
    """A reply through Twilio ("A message comes in"); its provider message id."""
    sid = "SM" + uuid.uuid4().hex
    twilio(host, "/api/sms/inbound/twilio", {"MessageSid": sid, "From": person, "To": SENDER, "Body": text}, 200)
    return sid


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


# -- what a receiver got, as the facts it reports -------------------------------------------------------


def fact(delivery: Delivery) -> tuple:
    """What one event says happened, whatever its id: (commId, seq, type) for a recipient's status,
    (commId, type, the inbound SMS's provider id[, opted_out|opted_in]) for a reply and its opt-out change.
    Checks on the way that the id, the payload and the request agree."""
    payload = delivery.payload
    assert payload["id"] == delivery.webhook_id and json.loads(delivery.body) == payload
    where = located(delivery.webhook_id)
    assert where is not None, f"{delivery.webhook_id} is not an event id the gateway issues"
    data, kind = payload["data"], payload["type"]
    assert where[1] == data["commId"], delivery.webhook_id
    if kind in CODES:
        assert delivery.webhook_id.endswith(f"_{data['seq']}{CODES[kind]}"), delivery.webhook_id
        assert data["status"] == kind.removeprefix("message.")
        assert data["sequence"] == (1 if kind == "message.sent" else 2), payload
        return data["commId"], data["seq"], kind
    if kind == "reply.received":
        assert delivery.webhook_id.endswith("_r")
        return data["commId"], kind, data["providerMessageId"]
    assert kind == "optout.changed" and delivery.webhook_id.endswith("_o"), payload
    return data["commId"], kind, data["providerMessageId"], data["optOut"]


def facts(deliveries: list[Delivery]) -> dict[tuple, set[str]]:
    """Each fact, with the webhook ids it arrived under."""
    found: dict[tuple, set[str]] = defaultdict(set)
    for delivery in deliveries:
        found[fact(delivery)].add(delivery.webhook_id)
    return found


# -- 1. exactly once ------------------------------------------------------------------------------------


A, B = licensee(), licensee()  # A has an endpoint for every event type; B has none
PHONES = [f"+6141277{i:04d}" for i in range(12)]  # the people both text, with ReplyIsAllowed or not
REPLIERS = [f"+6141278{i:04d}" for i in range(4)]  # each texted once by A, with ReplyIsAllowed: who their reply answers is certain
B_REPLIER, STRANGER = "+61412790001", "+61412790002"  # texted once by B; texted by nobody


@dataclass
class Sent:
    licensee: str
    comm_id: str
    phones: list[str]
    statuses: list[str] = field(default_factory=list)  # by seq, as receipts leave them


def send_many(host: DevHost, key: str, who: str, count: int, seed: int) -> list[Sent]:
    rng, sent = random.Random(seed), []
    for i in range(count):
        phones = rng.sample(PHONES, rng.choice([1, 1, 2, 3, 4]))
        comm_id = send(host, key, phones, immediate=i % 8 == 0, replies=rng.random() < 0.3, text=f"Reminder {who[:4]} {i}")
        sent.append(Sent(who, comm_id, phones, ["sent"] * len(phones)))
    return sent


@pytest.fixture(scope="module")
def exactly_once(tmp_path_factory, receivers):
    """Two licensees send a few hundred messages (queued and immediate); receipts come for most of
    their recipients (ACS and Twilio, some twice, some "sent" after "delivered"); people reply, one
    texts STOP and later START. Returns what was sent, the inbound SMS that A must hear of, and A's
    receiver once nothing is left to deliver."""
    receiver = receivers.start(WebhookReceiver(secret=""))
    with gateway(tmp_path_factory.mktemp("exactly-once"), **LOCAL_RECEIVERS) as (storage, host):
        keys = {A: host.create_key(A), B: host.create_key(B)}
        endpoint = add_endpoint(host, keys[A], receiver.url)
        receiver.secret = endpoint["secret"]

        with ThreadPoolExecutor(2) as pool:
            a_sent, b_sent = pool.map(lambda args: send_many(host, keys[args[0]], *args), [(A, 150, 1), (B, 110, 2)])
        sent = a_sent + b_sent
        assert wait_for(lambda: all(dispatched(host, keys[w], n) for w, n in ((A, 150), (B, 110))), timeout=90, interval=0.5)

        # Receipts, as the vendors send them: ACS reports in batches, Twilio callbacks one by one.
        rng, reports, twilio_after = random.Random(3), [], []
        for message in sent:
            for seq, phone in enumerate(message.phones):
                draw = rng.random()
                if draw < 0.45:
                    reports.append(acs_report(message.comm_id, seq, phone, "Delivered"))
                    message.statuses[seq] = "delivered"
                    if draw < 0.05:  # a late "sent" after "delivered": older news, no event
                        twilio_after.append((message.comm_id, seq, "sent"))
                elif draw < 0.55:
                    reports.append(acs_report(message.comm_id, seq, phone, "Failed"))
                    message.statuses[seq] = "undelivered"
                elif draw < 0.62:
                    twilio_receipt(host, message.comm_id, seq, "failed")
                    message.statuses[seq] = "failed"
                elif draw < 0.75:
                    twilio_receipt(host, message.comm_id, seq, "delivered")
                    message.statuses[seq] = "delivered"
                    twilio_after.append((message.comm_id, seq, "sent"))
        for i in range(0, len(reports), 50):
            grid(host, reports[i : i + 50])
        grid(host, reports[:30])  # ACS sends some again: nothing changes, nothing is told twice
        for comm_id, seq, status in twilio_after:
            twilio_receipt(host, comm_id, seq, status)

        # Replies: to A's messages (through ACS and Twilio), to B's, from a number nobody texted; a STOP
        # and a START from one of A's people, with A's sends to that number in between and after.
        anchors = {phone: Sent(A, send(host, keys[A], [phone], replies=True, text="Can you come?"), [phone],
                               ["sent"]) for phone in REPLIERS}
        anchors[B_REPLIER] = Sent(B, send(host, keys[B], [B_REPLIER], replies=True, text="Can you come?"), [B_REPLIER], ["sent"])
        sent += anchors.values()
        assert wait_for(lambda: dispatched(host, keys[A], 154) and dispatched(host, keys[B], 111), timeout=60, interval=0.25)
        stopper = REPLIERS[3]
        inbound = [(anchors[REPLIERS[0]].comm_id, acs_inbound(host, REPLIERS[0], "Yes, see you then"), None),
                   (anchors[REPLIERS[1]].comm_id, twilio_inbound(host, REPLIERS[1], "Running 10 min late"), None),
                   (anchors[REPLIERS[2]].comm_id, acs_inbound(host, REPLIERS[2], "Who is this?"), None),
                   (anchors[REPLIERS[2]].comm_id, twilio_inbound(host, REPLIERS[2], "Oh, the dentist. Thanks"), None),
                   (anchors[stopper].comm_id, acs_inbound(host, stopper, "STOP"), "opted_out")]
        acs_inbound(host, B_REPLIER, "Thanks")  # B's: B has no endpoint
        acs_inbound(host, STRANGER, "Hello?")  # nobody's: nobody is told
        after_stop = [Sent(A, send(host, keys[A], [stopper, PHONES[0]]), [stopper, PHONES[0]], ["opted_out", "sent"]),
                      Sent(A, send(host, keys[A], [stopper], immediate=True), [stopper], ["opted_out"]),
                      Sent(B, send(host, keys[B], [stopper]), [stopper], ["opted_out"])]
        assert wait_for(lambda: dispatched(host, keys[A], 156) and dispatched(host, keys[B], 112), timeout=60, interval=0.25)
        inbound.append((anchors[stopper].comm_id, twilio_inbound(host, stopper, "START"), "opted_in"))
        after_stop.append(Sent(A, send(host, keys[A], [stopper]), [stopper], ["sent"]))
        sent += after_stop
        assert wait_for(lambda: dispatched(host, keys[A], 157), timeout=60, interval=0.25)

        expected = expected_facts(sent, inbound)
        assert wait_for(lambda: expected <= set(facts(list(receiver.verified))), timeout=90, interval=0.5), \
            sorted(expected - set(facts(list(receiver.verified))))[:10]
        assert settled(storage), "deliveries still queued"
        yield sent, expected, receiver, (host, keys[A], endpoint["endpointId"])


def expected_facts(sent: list[Sent], inbound: list[tuple[str, str, str | None]], who: str = A) -> set[tuple]:
    """What the endpoint of licensee `who` must hear of: each of its recipients sent (or opted out) and
    its final status, each reply to one of its messages, and each opt-out change such a reply made."""
    expected = set()
    for message in sent:
        if message.licensee != who:
            continue
        for seq, status in enumerate(message.statuses):
            if status != "opted_out":
                expected.add((message.comm_id, seq, "message.sent"))
            if status in FINAL:
                expected.add((message.comm_id, seq, f"message.{status}"))
    for comm_id, provider_id, opt_out in inbound:
        expected.add((comm_id, "reply.received", provider_id))
        if opt_out:
            expected.add((comm_id, "optout.changed", provider_id, opt_out))
    return expected


def test_every_event_reaches_a_200_receiver_exactly_once_and_nothing_else_does(exactly_once):
    sent, expected, receiver, (host, key, endpoint_id) = exactly_once
    got = list(receiver.verified)
    assert receiver.rejected == []  # every request carried a valid signature
    assert {d.answered for d in got} == {200}
    assert len(expected) > 500  # the world has a few hundred messages' worth

    twice = {i: n for i, n in Counter(d.webhook_id for d in got).items() if n > 1}
    assert twice == {}, f"{len(twice)} event(s) sent more than once, e.g. {list(twice)[:5]}"
    found = facts(got)
    assert set(found) == expected, (sorted(set(found) - expected)[:10], sorted(expected - set(found))[:10])
    assert all(len(ids) == 1 for ids in found.values()), [f for f, ids in found.items() if len(ids) > 1][:5]  # one id per fact

    # Nothing of B's, ever: its messages share A's numbers, sender and receipts' paths.
    b_messages = {m.comm_id for m in sent if m.licensee == B}
    assert not {d.payload["data"]["commId"] for d in got} & b_messages

    # A recipient's events tell their order: sent (sequence 1) no later than its final status (2).
    by_recipient = defaultdict(dict)
    for d in got:
        if d.payload["type"] in CODES:
            by_recipient[(d.payload["data"]["commId"], d.payload["data"]["seq"])][d.payload["data"]["sequence"]] = d.payload
    for events in by_recipient.values():
        if 1 in events and 2 in events:
            assert events[1]["timestamp"] <= events[2]["timestamp"], events
    stops = [d.payload["data"] for d in got if d.payload["type"] == "optout.changed"]
    assert sorted((s["optOut"], s["keyword"]) for s in stops) == [("opted_in", "START"), ("opted_out", "STOP")]

    # The delivery log agrees: one attempt per event, delivered.
    log = delivery_log(host, key, endpoint_id)
    assert Counter(e["outcome"] for e in log) == {"delivered": len(got)}
    assert sorted(e["eventId"] for e in log) == sorted(d.webhook_id for d in got)


# -- 2. at least once, across failures and a killed host -------------------------------------------------

def test_every_event_arrives_at_least_once_across_500s_a_hanging_receiver_and_a_killed_host(receivers, tmp_path):
    """The receiver answers 500 to its first requests, then hangs; the host delivering is SIGKILLed
    while requests hang (their answers never read, their queue messages neither deleted nor released)
    and a new host is started on the same storage; the receiver answers 200 from then on.

    What is simulated, and why it is faithful: the killed host is the real dev host, its in-flight
    visibility set to 8 s instead of 600 s (the one difference). On Azure, the messages a dead
    instance held reappear once that visibility lapses, with their dequeue count up, and another
    instance runs them: the same happens here, 8 s after they were taken instead of 10 minutes. The
    new host is started exactly as usual, and the 500s are retried by the gateway's own schedule
    (the first retry 5 s later). Every expected event must arrive and be answered 200 at least once;
    an event sent more than once must carry the same bytes each time."""
    receiver = receivers.start(WebhookReceiver(secret=""))
    receiver.answer_first(6, 500)
    receiver.answer("hang")
    who = licensee()
    with azurite.start() as storage:
        with doomed_devhost(storage.connection_string, tmp_path / "outbox.jsonl", **LOCAL_RECEIVERS) as (first, process):
            key = first.create_key(who)
            endpoint = add_endpoint(first, key, receiver.url)
            receiver.secret = endpoint["secret"]
            rng = random.Random(7)
            sent = [Sent(who, "", phones) for phones in (rng.sample(PHONES, rng.choice([1, 2, 3])) for _ in range(24))]
            for message in sent:
                message.comm_id = send(first, key, message.phones)
                message.statuses = ["sent"] * len(message.phones)
            assert wait_for(lambda: dispatched(first, key, len(sent)), timeout=30, interval=0.2)
            reports = []
            for message in sent[::3]:  # a second batch for some: delivered
                reports.append(acs_report(message.comm_id, 0, message.phones[0], "Delivered"))
                message.statuses[0] = "delivered"
            grid(first, reports)
            assert wait_for(lambda: sum(d.answered == "hang" for d in receiver.verified) >= 4, timeout=30, interval=0.05)
            # The 500s came first, and each ended its batch's run, which logs it: wait for those log
            # rows, or a kill landing between a 500 and its row would leave it out (a run cut short
            # logs nothing, as the log's docs say), and the log check below would race the kill.
            answered_500 = {d.webhook_id for d in receiver.verified if d.answered == 500}
            retries = lambda: {e["eventId"] for e in delivery_log(first, key, endpoint["endpointId"])  # noqa: E731
                               if e["outcome"] == "retry" and e["statusCode"] == 500}
            assert wait_for(lambda: answered_500 <= retries(), timeout=30, interval=0.25), sorted(answered_500 - retries())
            process.kill()  # SIGKILL: no cleanup, no message released
            process.wait(10)
            hung = {d.webhook_id for d in receiver.verified if d.answered == "hang"}
            failed = {d.webhook_id for d in receiver.verified if d.answered == 500}
        receivers.release(receiver)
        receiver.answer(200)

        with running_devhost(storage.connection_string, tmp_path / "outbox.jsonl", **LOCAL_RECEIVERS) as second:
            expected = expected_facts(sent, [], who)
            answered = lambda: {fact(d) for d in list(receiver.verified) if d.answered == 200}  # noqa: E731
            assert wait_for(lambda: expected <= answered(), timeout=90, interval=0.25), sorted(expected - answered())[:10]
            assert settled(storage)
            log = delivery_log(second, key, endpoint["endpointId"])

    got = list(receiver.verified)
    assert receiver.rejected == []
    assert set(facts(got)) == expected  # nothing else arrived
    assert failed and hung, "the faults under test did not happen"
    delivered = {d.webhook_id for d in got if d.answered == 200}
    assert failed <= delivered and hung <= delivered  # what failed, and what the killed host held, came back
    bodies = defaultdict(set)
    for d in got:
        bodies[d.webhook_id].add(d.body)
    assert all(len(b) == 1 for b in bodies.values()), "an event was sent again with different bytes"
    assert all(len(ids) == 1 for ids in facts(got).values())  # the same fact is always the same event id
    # The log: each 500 as a retry; each event delivered; the hung attempts, cut off by the kill, are not in it.
    assert {e["eventId"] for e in log if e["outcome"] == "delivered"} == delivered
    assert {e["eventId"] for e in log if e["outcome"] == "retry" and e["statusCode"] == 500} == failed


# -- 3. a 410 disables the endpoint ---------------------------------------------------------------------


def received(receiver: WebhookReceiver, comm_id: str, answered: int | str = 200) -> list[Delivery]:
    return [d for d in list(receiver.verified) if d.payload["data"]["commId"] == comm_id and d.answered == answered]


def test_a_410_disables_the_endpoint_nothing_is_sent_to_it_and_enable_resumes(receivers, tmp_path):
    """The receiver answers 410 Gone to the first event of a batch: the endpoint is disabled at once
    (GET /api/webhooks says so, and why), the batch's other event is not sent, nor are the events of
    a message sent while it is disabled; `enable` makes sends resume, and a replay of the time range
    (refused while disabled) sends the events kept meanwhile."""
    receiver = receivers.start(WebhookReceiver(secret=""))
    receiver.answer(410)
    who = licensee()
    began = datetime.now(timezone.utc) - timedelta(minutes=1)
    with gateway(tmp_path, **LOCAL_RECEIVERS) as (storage, host):
        key = host.create_key(who)
        endpoint = add_endpoint(host, key, receiver.url)
        receiver.secret, endpoint_id = endpoint["secret"], endpoint["endpointId"]

        gone = send(host, key, PHONES[:2])
        assert wait_for(lambda: not endpoint_state(host, key, endpoint_id)["enabled"], timeout=30), "not disabled"
        state = endpoint_state(host, key, endpoint_id)
        assert state["disabledAt"] and "410" in state["disabledReason"], state

        receiver.answer(200)
        while_disabled = send(host, key, PHONES[2:4])
        assert wait_for(lambda: dispatched(host, key, 2), timeout=30)
        assert settled(storage)  # any delivery queued for it has run
        assert [(d.payload["data"]["commId"], d.payload["data"]["seq"], d.answered) for d in receiver.verified] == [(gone, 0, 410)]
        [attempt] = delivery_log(host, key, endpoint_id)
        assert (attempt["outcome"], attempt["statusCode"], attempt["eventId"]) == ("gone", 410, receiver.verified[0].webhook_id)

        window = {"from": began.isoformat(), "to": (datetime.now(timezone.utc) + timedelta(minutes=5)).isoformat()}
        status, refused = host.request("POST", f"/api/webhooks/{endpoint_id}/replay", window, key=key)
        assert status == 400, refused  # a disabled endpoint takes no replay

        status, enabled = host.request("POST", f"/api/webhooks/{endpoint_id}/enable", key=key)
        assert status == 200 and enabled["enabled"] is True and not enabled.get("disabledReason"), enabled
        after = send(host, key, [PHONES[4]])
        assert wait_for(lambda: received(receiver, after), timeout=30), "sends did not resume"
        assert received(receiver, while_disabled) == []

        status, replayed = host.request("POST", f"/api/webhooks/{endpoint_id}/replay", window, key=key)
        assert status == 200 and replayed["queued"] == 3, replayed  # the three messages' batches
        assert wait_for(lambda: len(received(receiver, gone)) == 2 and len(received(receiver, while_disabled)) == 2
                        and len(received(receiver, after)) == 2, timeout=30), "the replay did not arrive"
        assert settled(storage)
        log = delivery_log(host, key, endpoint_id)
    assert receiver.rejected == []
    assert {fact(d) for d in receiver.verified if d.answered == 200} == {
        (gone, 0, "message.sent"), (gone, 1, "message.sent"), (while_disabled, 0, "message.sent"),
        (while_disabled, 1, "message.sent"), (after, 0, "message.sent")}
    assert sorted((e["outcome"], e["replay"]) for e in log) == [("delivered", False)] + [("delivered", True)] * 5 + [("gone", False)]


# -- 4. no delivery to a private destination --------------------------------------------------------------


def loopback_name() -> str | None:
    """A name this machine resolves (through /etc/hosts: there is no DNS here) to 127.0.0.1 only, and
    that is not localhost: it passes the check made when a URL is saved, which looks at the URL alone."""
    names = []
    for line in Path("/etc/hosts").read_text().splitlines():
        parts = line.split("#")[0].split()
        if len(parts) >= 2 and parts[0].startswith("127."):
            names += parts[1:]
    for name in names:
        if name.rstrip(".").lower() == "localhost" or name.rstrip(".").lower().endswith(".localhost"):
            continue
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(name, 443, type=socket.SOCK_STREAM)}
        except OSError:
            continue
        if addresses == {"127.0.0.1"}:
            return name
    return None


class ConnectionCounter:
    """A TCP listener on 127.0.0.1 that counts connections (TLS or not, it never gets that far)."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.count = 0
        threading.Thread(target=self._accept, daemon=True, name="connection-counter").start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self.count += 1
            connection.close()

    def close(self) -> None:
        self._socket.close()


def test_without_allow_private_no_private_destination_is_saved_or_ever_contacted(tmp_path):
    """SMS_WEBHOOKS_ALLOW_PRIVATE left false: http, loopback, localhost and private addresses are
    refused when saved; a name that passes that check but resolves to 127.0.0.1 when the event is
    sent is never connected to: the delivery log and the host's log say blocked, and the listener on
    that port counts no connection."""
    name = loopback_name()
    if name is None:
        pytest.skip("no name in /etc/hosts resolves to 127.0.0.1 alone")
    counter = ConnectionCounter()
    try:
        with socket.create_connection(("127.0.0.1", counter.port), timeout=5):
            pass
        assert wait_for(lambda: counter.count == 1, timeout=5)  # it does count
        counter.count = 0
        who = licensee()
        with gateway(tmp_path, SMS_WEBHOOKS_ALLOW_PRIVATE="false") as (storage, host):
            key = host.create_key(who)
            for url in (f"http://127.0.0.1:{counter.port}/hook", f"https://127.0.0.1:{counter.port}/hook",
                        f"https://localhost:{counter.port}/hook", f"https://LOCALHOST.:{counter.port}/hook",
                        f"https://api.localhost:{counter.port}/hook", "https://10.0.0.1/hook", "https://192.168.1.20/hook",
                        "https://169.254.169.254/latest/meta-data", "https://[::1]/hook", "https://[::ffff:127.0.0.1]/hook",
                        "https://127.1/hook", "https://2130706433/hook", "https://0x7f.0.0.1/hook", f"http://{name}:{counter.port}/hook"):
                status, answer = host.request("POST", "/api/webhooks", {"url": url}, key=key)
                assert status == 400, (url, answer)
                assert [e["fieldName"] for e in answer["responseStatus"]["errors"]] == ["Url"], (url, answer)
            status, listed = host.request("GET", "/api/webhooks", key=key)
            assert listed["endpoints"] == []

            endpoint = add_endpoint(host, key, f"https://{name}:{counter.port}/hook")
            send(host, key, PHONES[:2])
            assert wait_for(lambda: delivery_log(host, key, endpoint["endpointId"]), timeout=30), "no attempt made"
            attempt = delivery_log(host, key, endpoint["endpointId"])[-1]
            assert counter.count == 0, f"the gateway connected to a loopback address: {attempt}"
            assert attempt["outcome"] == "blocked" and attempt.get("statusCode") is None, attempt
            assert "loopback" in attempt["error"] and "127.0.0.1" in attempt["error"], attempt
            assert any(f"to https://{name}:{counter.port}/hook: blocked" in line for line in host.output), host.output[-20:]
            assert settled(storage)
            assert len(delivery_log(host, key, endpoint["endpointId"])) == 1  # the batch's first event; blocked is not retried
        assert counter.count == 0, "the gateway connected to a loopback address"
    finally:
        counter.close()


# -- 5. secret rotation ---------------------------------------------------------------------------------------


def verifies(secret: str, delivery: Delivery) -> bool:
    try:
        Webhook(secret).verify(delivery.body, delivery.headers)
    except WebhookVerificationError:
        return False
    return True


def test_after_a_rotation_the_old_and_the_new_secret_both_verify_during_the_grace(shared, receivers):
    """A receiver holding only the secret it was first given keeps verifying after a rotation (the
    previous secret signs beside the new one for SMS_WEBHOOK_SECRET_GRACE_HOURS); each such request
    verifies with the new secret alone too. A second rotation drops the first secret: two at most."""
    _, host = shared
    receiver = receivers.start(WebhookReceiver(secret=""))
    who = licensee()
    key = host.create_key(who)
    endpoint = add_endpoint(host, key, receiver.url)
    original = receiver.secret = endpoint["secret"]
    before = send(host, key, [PHONES[0]])
    assert wait_for(lambda: received(receiver, before), timeout=30)

    status, rotated = host.request("POST", f"/api/webhooks/{endpoint['endpointId']}/rotate-secret", key=key)
    assert status == 200, rotated
    second = rotated["secret"]
    assert second.startswith("whsec_") and second != original
    expires = datetime.fromisoformat(rotated["previousSecretExpiresAt"].replace("Z", "+00:00"))
    assert timedelta(hours=23) < expires - datetime.now(timezone.utc) <= timedelta(hours=24)
    assert endpoint_state(host, key, endpoint["endpointId"])["previousSecretExpiresAt"] == rotated["previousSecretExpiresAt"]

    during = send(host, key, PHONES[1:3])
    assert wait_for(lambda: len(received(receiver, during)) == 2 or receiver.rejected, timeout=30)
    assert receiver.rejected == []  # the receiver holding the original secret alone verified them
    for delivery in received(receiver, during):
        assert verifies(original, delivery) and verifies(second, delivery) and not verifies(new_secret(), delivery)
        assert len(delivery.headers["webhook-signature"].split()) == 2
    [first] = received(receiver, before)
    assert verifies(original, first) and not verifies(second, first)  # signed before the rotation: the original only

    status, rotated = host.request("POST", f"/api/webhooks/{endpoint['endpointId']}/rotate-secret", key=key)
    assert status == 200, rotated
    third = receiver.secret = rotated["secret"]
    last = send(host, key, [PHONES[3]])
    assert wait_for(lambda: received(receiver, last), timeout=30)
    [delivery] = received(receiver, last)
    assert verifies(third, delivery) and verifies(second, delivery) and not verifies(original, delivery)
    assert receiver.rejected == []


# -- 6. no redirect followed ----------------------------------------------------------------------------------


def test_a_redirect_is_not_followed_and_the_event_is_retried_not_delivered(shared, receivers):
    """The receiver answers 302 to /elsewhere (on the same server, which records whoever comes): the
    gateway never goes there; the attempt is logged refused, retried on the schedule (5 s later) and
    refused again. The endpoint stays enabled."""
    _, host = shared
    receiver = receivers.start(WebhookReceiver(secret=""))
    receiver.answer("redirect")
    who = licensee()
    key = host.create_key(who)
    endpoint = add_endpoint(host, key, receiver.url)
    receiver.secret = endpoint["secret"]
    comm_id = send(host, key, [PHONES[0]])

    assert wait_for(lambda: delivery_log(host, key, endpoint["endpointId"]), timeout=30), "no attempt made"
    first = delivery_log(host, key, endpoint["endpointId"])[-1]
    assert receiver.followed == [], "the redirect was followed"
    assert (first["attempt"], first["outcome"], first["statusCode"]) == (1, "refused", 302), first
    assert wait_for(lambda: len(delivery_log(host, key, endpoint["endpointId"])) >= 2, timeout=30), "not retried"
    log = delivery_log(host, key, endpoint["endpointId"])
    assert [(e["attempt"], e["outcome"], e["statusCode"]) for e in log] == [(2, "refused", 302), (1, "refused", 302)]
    assert all("redirect" in e["error"] and "not followed" in e["error"] for e in log), log
    assert receiver.followed == []
    got = received(receiver, comm_id, 302)
    assert len(got) == 2 and len({d.webhook_id for d in got}) == 1 and len({d.body for d in got}) == 1
    assert [d for d in receiver.verified if d.answered != 302] == []
    assert endpoint_state(host, key, endpoint["endpointId"])["enabled"] is True
