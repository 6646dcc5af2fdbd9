"""GET /api/sms over HTTP (issue 14): two licensees send a few hundred messages through the dev host
(queued and immediate, some to several people, over shared numbers, contacts, linked objects and
suites); the jobs run, receipts and a reply arrive, a STOP makes later sends opted_out. Then every
filter is paged to the end with several page sizes, in JSON and once in JSV, and checked against what
was sent: newest first, nothing missing, nothing twice, and nothing of the other licensee, ever."""
import json
import random
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from sms.dev import azurite
from sms.wire import jsv
from tests.e2e.conftest import EVENTGRID_SECRET, running_devhost, wait_for

A, B = "e1" * 16, "e2" * 16
SENDER = "+61400000714"  # both licensees text from it, so a STOP to it applies to both
PHONES = [f"+6141255{i:04d}" for i in range(10)]  # the people both licensees text
STOPPED, REPLYING = PHONES[0], PHONES[1]
CONTACTS = [uuid.UUID(int=0xC0 + i).hex for i in range(4)]
LINKED = [uuid.UUID(int=0x10 + i).hex for i in range(3)]
SUITES = [uuid.UUID(int=0x50 + i).hex for i in range(2)]
BEFORE_STOP, AFTER_STOP = 110, 15  # messages per licensee
TWILIO_TOKEN, PUBLIC = "e2e-twilio-token", "https://sms.example.test"
FINAL = {"failed", "delivered", "undelivered", "opted_out"}


@dataclass
class Sent:
    licensee: str
    comm_id: str
    phones: list[str]  # by seq
    contacts: list[str | None]
    linked: str | None
    suite: str | None
    statuses: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        found = set(self.statuses)
        if len(found) == 1:
            return found.pop()
        if found & {"queued", "sending"}:
            return "sending"
        return "partially_sent" if found & {"failed", "undelivered", "opted_out"} else "sent"


def local(phone: str) -> str:
    """+61412550003 as a person in Australia writes it: 0412 550 003."""
    national = "0" + phone[3:]
    return f"{national[:4]} {national[4:7]} {national[7:]}"


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """A dev host of its own (on its own Azurite) that also takes Twilio's signed callbacks: a Twilio
    "failed" receipt is the one way over HTTP to make a console-sent recipient `failed`."""
    with azurite.start() as storage:
        with running_devhost(storage.connection_string, tmp_path_factory.mktemp("ledger") / "outbox.jsonl",
                             TWILIO_AUTH_TOKEN=TWILIO_TOKEN, SMS_PUBLIC_BASE_URL=PUBLIC) as devhost:
            yield devhost


def get(host, path: str, key: str) -> tuple[int, bytes]:
    request = urllib.request.Request(host.base_url + path, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def send(host, key: str, message: Sent, rng: random.Random, immediate: bool) -> str:
    to = []
    for phone, contact in zip(message.phones, message.contacts, strict=True):
        person = {"PhoneNumber": local(phone) if rng.random() < 0.3 else phone, "Name": "Pat"}
        if contact:
            person["ContactId"] = contact
        to.append(person)
    model = {"From": {"PhoneNumber": SENDER}, "To": to, "MessageBody": f"Appointment reminder {rng.random():.6f}",
             "ReplyIsAllowed": True}
    if message.linked:
        model["LinkedObjectId"] = message.linked
    if message.suite:
        model["SuiteId"] = message.suite
    status, reply = host.request("POST", "/api/sms/send/immediate" if immediate else "/api/sms/send", {"SMSModel": model}, key=key)
    assert status == 200, reply
    return reply["commId"]


def send_many(host, key: str, licensee: str, count: int, seed: int, stopped: bool) -> list[Sent]:
    """`count` messages, one after another (so they are created in this order)."""
    rng, sent = random.Random(seed), []
    for i in range(count):
        phones = rng.sample(PHONES, rng.choice([1, 1, 1, 2, 3, 4]))
        if stopped and i % 3 == 0 and STOPPED not in phones:
            phones.append(STOPPED)
        contacts = [rng.choice(CONTACTS + [None]) for _ in phones]  # a contact may have two numbers in one message
        message = Sent(licensee, "", phones, contacts, rng.choice(LINKED + [None]), rng.choice(SUITES + [None, None]))
        message.comm_id = send(host, key, message, rng, immediate=i % 10 == 0)
        message.statuses = ["opted_out" if stopped and p == STOPPED else "sent" for p in phones]
        sent.append(message)
    return sent


def listing(host, key: str, params: dict, take: int, fmt: str = "json") -> list[dict]:
    """Every page of GET /api/sms to the end: the messages as JSON names."""
    found, token = [], None
    for _ in range(500):
        query = {**params, "take": take, **({"continuationToken": token} if token else {})}
        status, raw = get(host, f"/api/sms{'.jsv' if fmt == 'jsv' else ''}?{urlencode(query)}", key)
        assert status == 200, raw[:500]
        if fmt == "jsv":
            page = jsv.loads(raw.decode())
            messages, token = [_camel(m) for m in page.get("Messages", [])], page.get("ContinuationToken")
        else:
            page = json.loads(raw)
            messages, token = page["messages"], page.get("continuationToken")
        assert len(messages) <= take
        found += messages
        if not token:
            return found
    raise AssertionError(f"no end to the pages of {params}")


def _camel(value):
    if isinstance(value, dict):
        return {k[0].lower() + k[1:]: _camel(v) for k, v in value.items()}
    return value


def grid(host, events: list[dict]) -> None:
    status, answer = host.request("POST", f"/api/sms/receipts/acs?code={EVENTGRID_SECRET}", events)
    assert status == 200, answer


def acs_report(message: Sent, seq: int, outcome: str, n: int) -> dict:
    data = {"messageId": f"Outgoing_{message.comm_id}_{seq}", "from": SENDER, "to": message.phones[seq], "deliveryStatus": outcome,
            "deliveryStatusDetails": "No error." if outcome == "Delivered" else "Carrier said no",
                "receivedTimestamp": "2026-11-24T23:00:00Z",
            "tag": f"{message.comm_id}:{seq}"}
    return {"id": f"r{n}", "eventType": "Microsoft.Communication.SMSDeliveryReportReceived", "data": data}


def twilio_failed(host, message: Sent, seq: int) -> None:
    path = f"/api/sms/receipts/twilio?{urlencode({'ref': f'{message.comm_id}:{seq}'})}"
    fields = {"MessageSid": "SM" + uuid.uuid4().hex, "MessageStatus": "failed", "ErrorCode": "30006"}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC + path, fields)
    request = urllib.request.Request(host.base_url + path, data=urlencode(fields).encode(), method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 204


def inbound(host, person: str, text: str) -> None:
    data = {"messageId": f"Incoming_{uuid.uuid4().hex}", "from": person, "to": SENDER, "message": text,
            "receivedTimestamp": "2026-11-24T23:00:00Z"}
    grid(host, [{"id": data["messageId"], "eventType": "Microsoft.Communication.SMSReceived", "data": data}])


def dispatched(host, keys: dict[str, str], counts: dict[str, int]) -> bool:
    """Every message listed, and none still queued or sending."""
    for licensee, key in keys.items():
        if len(listing(host, key, {}, 200)) != counts[licensee]:
            return False
        if any(listing(host, key, {"status": s}, 200) for s in ("queued", "sending")):
            return False
    return True


@pytest.fixture(scope="module")
def world(host):
    keys = {A: host.create_key(A), B: host.create_key(B)}

    def each_licensee(count: int, seeds: tuple[int, int], stopped: bool) -> list[Sent]:
        """Each licensee's sends in order (so created in that order); the two side by side."""
        with ThreadPoolExecutor(2) as pool:
            batches = list(pool.map(lambda ks: send_many(host, keys[ks[0]], ks[0], count, ks[1], stopped), zip(keys, seeds, strict=True)))
        return batches[0] + batches[1]

    sent = each_licensee(BEFORE_STOP, (1, 2), stopped=False)
    assert wait_for(lambda: dispatched(host, keys, dict.fromkeys(keys, BEFORE_STOP)), timeout=60, interval=0.5), "jobs left"
    inbound(host, REPLYING, "Yes, see you then")  # a reply: it changes nothing the listing shows
    inbound(host, STOPPED, "STOP")  # every later send from SENDER to STOPPED, of either licensee, is opted_out
    sent += each_licensee(AFTER_STOP, (3, 4), stopped=True)
    assert wait_for(lambda: dispatched(host, keys, dict.fromkeys(keys, BEFORE_STOP + AFTER_STOP)), timeout=60, interval=0.5), "jobs left"

    # Receipts: delivered for about half the sent recipients, undelivered (ACS "Failed") for some, and
    # failed (Twilio's "failed") for a few; posted as ACS would batch them.
    rng, events = random.Random(5), []
    for message in sent:
        for seq, status in enumerate(message.statuses):
            if status != "sent":
                continue
            draw = rng.random()
            if draw < 0.5:
                events.append(acs_report(message, seq, "Delivered", len(events)))
                message.statuses[seq] = "delivered"
            elif draw < 0.6:
                events.append(acs_report(message, seq, "Failed", len(events)))
                message.statuses[seq] = "undelivered"
            elif draw < 0.65:
                twilio_failed(host, message, seq)
                message.statuses[seq] = "failed"
    for i in range(0, len(events), 50):
        grid(host, events[i : i + 50])
    grid(host, events[:20])  # some twice: nothing changes
    return host, keys, sent


def newest_first(sent: list[Sent], licensee: str, keep=lambda m: True) -> list[str]:
    return [m.comm_id for m in reversed(sent) if m.licensee == licensee and keep(m)]


def ids(messages: list[dict]) -> list[str]:
    return [m["commId"] for m in messages]


def test_every_filter_pages_to_the_end_as_sent_and_never_shows_the_other_licensee(world):
    host, keys, sent = world
    statuses = {m.status for m in sent} | {s for m in sent for s in m.statuses}
    assert {"sent", "delivered", "undelivered", "failed", "opted_out", "partially_sent"} <= statuses  # the world has them all

    for licensee, key in keys.items():
        every_filter(host, key, licensee, sent)


def every_filter(host, key: str, licensee: str, sent: list[Sent]) -> None:
    """Each filter paged to the end with the licensee's key: exactly its own messages that match, newest first."""
    by_id = {m.comm_id: m for m in sent}
    other = {m.comm_id for m in sent if m.licensee != licensee}
    everything = newest_first(sent, licensee)

    def check(params: dict, keep, take: int, fmt: str = "json") -> list[dict]:
        found = listing(host, key, params, take, fmt)
        assert not other & set(ids(found)), f"{params}: the other licensee's messages"
        assert ids(found) == newest_first(sent, licensee, keep), params  # in order, none missing, none twice
        assert found or params.get("status") in ("queued", "sending"), f"{params} finds nothing: the world should have some"
        return found

    for take in (1, 7, 50):
        check({}, lambda m: True, take)
    found = check({}, lambda m: True, 200)
    for message in found:
        expected = by_id[message["commId"]]
        assert message["status"] == expected.status, (message, expected)
        assert message["recipientCount"] == len(expected.phones)
        assert message["counts"] == {s: expected.statuses.count(s) for s in set(expected.statuses)}
        assert message.get("linkedObjectId") == expected.linked and message.get("suiteId") == expected.suite
    created = {m["commId"]: datetime.fromisoformat(m["createdAt"].replace("Z", "+00:00")) for m in found}

    # A window, written with an offset, from one message (inclusive) to another (exclusive); and by days.
    oldest_first = list(reversed(everything))
    start, end = created[oldest_first[30]], created[oldest_first[90]]
    sydney = timezone(timedelta(hours=11))
    window = {"from": start.astimezone(sydney).isoformat(), "to": end.astimezone(sydney).isoformat()}
    check(window, lambda m: start <= created[m.comm_id] < end, 9)
    days = {"from": min(created.values()).date().isoformat(), "to": max(created.values()).date().isoformat()}
    check(days, lambda m: True, 50)
    check({"to": start.isoformat()}, lambda m: created[m.comm_id] < start, 11)

    for status in ("sent", "delivered", "undelivered", "failed", "opted_out", "partially_sent", "queued", "sending"):
        check({"status": status}, lambda m, s=status: s == m.status or s in m.statuses, 13)
    check({"status": "PARTIALLY_SENT", **window}, lambda m: m.status == "partially_sent" and start <= created[m.comm_id] < end, 5)

    for phone in PHONES[:4]:
        found = check({"phoneNumber": local(phone)}, lambda m, p=phone: p in m.phones, 8)
        for message in found:  # how that recipient's SMS stands, instead of the message's status
            expected = by_id[message["commId"]]
            seq = expected.phones.index(phone)
            assert message["recipient"]["phoneNumber"] == phone and message["recipient"]["status"] == expected.statuses[seq]
            assert "status" not in message and "counts" not in message
    check({"phoneNumber": STOPPED, "status": "opted_out"},
          lambda m: STOPPED in m.phones and m.statuses[m.phones.index(STOPPED)] == "opted_out", 6)
    for contact in CONTACTS[:3]:
        found = check({"contactId": contact.upper()}, lambda m, c=contact: c in m.contacts, 10)
        assert all(m["recipient"]["contactId"] == contact for m in found)
    for linked in LINKED:
        check({"linkedObjectId": linked}, lambda m, o=linked: m.linked == o, 12)
    for suite in SUITES:
        check({"suiteId": suite}, lambda m, u=suite: m.suite == u, 20)
    check({"suiteId": SUITES[0], "linkedObjectId": LINKED[0], "status": "delivered"},
          lambda m: m.suite == SUITES[0] and m.linked == LINKED[0] and "delivered" in m.statuses, 4)
    for comm_id in everything[::40]:
        reference = f"SMS-{comm_id[:8].upper()}"
        check({"reference": reference.lower()}, lambda m, c=comm_id: m.comm_id == c, 5)
    for comm_id in [m.comm_id for m in sent if m.licensee != licensee][::40]:  # the other's references find nothing
        assert listing(host, key, {"reference": f"SMS-{comm_id[:8].upper()}"}, 5) == []

    # Once in JSV, paged with a filter: the same messages as in JSON.
    check({"status": "delivered"}, lambda m: "delivered" in m.statuses or m.status == "delivered", 17, fmt="jsv")
    check({}, lambda m: True, 60, fmt="jsv")


def first_page(host, key: str, params: dict, take: int) -> dict:
    status, raw = get(host, f"/api/sms?{urlencode({**params, 'take': take})}", key)
    assert status == 200
    return json.loads(raw)


def test_a_continuation_token_used_with_the_other_licensees_key_shows_nothing_of_the_first(world):
    host, keys, sent = world
    for mine, theirs in ((A, B), (B, A)):
        own = {m.comm_id for m in sent if m.licensee == theirs}
        for params in ({}, {"phoneNumber": PHONES[2]}, {"linkedObjectId": LINKED[0]}, {"status": "delivered"}):
            token = first_page(host, keys[mine], params, 7)["continuationToken"]
            status, raw = get(host, f"/api/sms?{urlencode({**params, 'take': 7, 'continuationToken': token})}", keys[theirs])
            assert status == 200
            shown = ids(json.loads(raw)["messages"])
            assert shown and set(shown) <= own, params  # only the key's own messages, whatever the token says
