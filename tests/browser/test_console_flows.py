"""What an operator does in the console, in Chromium: sign in, send, watch a message to delivered, search, cancel,
webhooks with a secret shown once and a replayed delivery, keys; and what a licensee's key cannot see (issue 29)."""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

from playwright.sync_api import expect

from sms.dev.simulate import inbound_event, post, receipt_event
from tests.e2e.conftest import EVENTGRID_SECRET, wait_for
from tests.webhook_receiver import WebhookReceiver

from .conftest import LICENSEE_B, sign_in


def send(console, key: str, number: str, text: str, **model) -> str:
    status, answer = console.host.request("POST", "/api/sms/send", {"SMSModel": {"To": [{"PhoneNumber": number}], "MessageBody": text,
                                                                                **model}}, key)
    assert status == 200, answer
    return answer["commId"]


def page_text(page) -> str:
    """Everything the page holds: its markup, and what its inputs hold (not in the markup)."""
    values = page.evaluate("() => [...document.querySelectorAll('input, textarea, select')].map(e => e.value).join('\\n')")
    return page.content() + values


def test_sign_in_send_and_watch_the_message_go_queued_sent_delivered(console, browser_page):
    page = browser_page.page
    sign_in(page, console, console.licensee_a)
    # The key is kept for the tab, and nowhere on the page, in the address or in local storage.
    assert console.licensee_a not in page_text(page) and console.licensee_a not in page.url
    assert page.evaluate("() => Object.keys(localStorage).length") == 0
    expect(page.locator("#who")).to_contain_text("clinic-a")

    page.get_by_role("link", name="Send", exact=True).click()
    page.get_by_label("To", exact=True).fill("+61412555001")
    page.get_by_label("Message", exact=True).fill("Your appointment is at 10am tomorrow")
    page.get_by_role("button", name="Send", exact=True).click()
    page.get_by_role("link", name="Follow it").click()
    comm_id = page.url.rsplit("/", 1)[1]
    recipient = page.get_by_role("region", name="Recipient +61412555001")
    # The timeline fills in as the worker sends it: queued, then sent (the console provider), without a reload.
    expect(recipient.get_by_role("list", name="Timeline")).to_contain_text("sent", timeout=30_000)
    timeline = recipient.get_by_role("list", name="Timeline").inner_text()
    assert timeline.index("queued") < timeline.index("sent"), timeline
    expect(page.locator("#message-status")).to_have_text("sent")

    # The carrier's receipt (what ACS would post) arrives: the page, still polling, shows it delivered.
    assert post(receipt_event(comm_id, 0, delivered=True), console.host.base_url, EVENTGRID_SECRET)[0] == 200
    expect(page.locator("#message-status")).to_have_text("delivered", timeout=30_000)
    assert recipient.get_by_role("list", name="Timeline").inner_text().index("sent") < \
        recipient.get_by_role("list", name="Timeline").inner_text().index("delivered")


def test_search_the_ledger_by_number_and_linked_object(console, browser_page):
    page = browser_page.page
    booking = uuid.uuid4().hex
    send(console, console.licensee_a, "+61412555101", "First of the search", LinkedObjectId=booking)
    send(console, console.licensee_a, "+61412555102", "Second of the search", LinkedObjectId=uuid.uuid4().hex)
    # The ledger's search indexes follow a send within seconds (README, Message ledger): wait until the API finds them.
    assert wait_for(lambda: console.host.request("GET", f"/api/sms?linkedObjectId={booking}", key=console.licensee_a)[1]["messages"])
    assert wait_for(lambda: console.host.request("GET", "/api/sms?phoneNumber=%2B61412555102", key=console.licensee_a)[1]["messages"])
    sign_in(page, console, console.licensee_a)
    page.get_by_label("Phone number").fill("+61412555102")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Second of the search")
    assert "phoneNumber=%2B61412555102" in page.url  # the search is in the address: reload or share it
    page.get_by_role("link", name="Clear").click()
    expect(page.get_by_label("Phone number")).to_have_value("")
    page.get_by_label("Linked object id").fill(booking)
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("First of the search")


def test_cancel_a_scheduled_message(console, browser_page):
    page = browser_page.page
    sign_in(page, console, console.licensee_a, "send")
    page.get_by_label("To", exact=True).fill("+61412555201")
    page.get_by_label("Message", exact=True).fill("Reminder for next week")
    later = datetime.now() + timedelta(days=2)
    page.get_by_label("Send at (optional)").fill(later.strftime("%Y-%m-%dT%H:%M:%S"))
    page.get_by_role("button", name="Send", exact=True).click()
    page.get_by_role("link", name="Follow it").click()
    expect(page.locator("#message-status")).to_have_text("scheduled")
    page.get_by_role("button", name="Cancel (1 not sent yet)").click()
    expect(page.locator("#message-status")).to_have_text("cancelled")
    expect(page.locator("#notice")).to_have_text("Cancelled 1 recipient.")
    expect(page.get_by_role("button", name=re.compile("^Cancel"))).to_have_count(0)


def test_add_a_webhook_see_its_secret_once_and_replay_a_delivery(console, browser_page):
    page = browser_page.page
    receiver = console.receivers.start(WebhookReceiver(secret="whsec_" + "A" * 43))
    sign_in(page, console, console.licensee_a, "webhooks")
    page.get_by_label("URL").fill(receiver.url)
    page.get_by_role("checkbox", name="message.sent").check()
    page.get_by_role("button", name="Add endpoint").click()
    shown = page.locator("[data-secret]")
    secret = shown.inner_text()
    assert secret.startswith("whsec_")
    receiver.secret = secret  # the receiver verifies every delivery with the secret the page showed
    page.get_by_role("button", name="Done").click()
    expect(page.locator("[data-secret]")).to_have_count(0)
    assert secret not in page_text(page)

    send(console, console.licensee_a, "+61412555301", "A message for the webhook")
    assert wait_for(lambda: receiver.verified, timeout=30), receiver.rejected
    first = receiver.verified[0]
    page.get_by_role("link", name=receiver.url).click()
    page.get_by_role("button", name=f"Replay event {first.webhook_id}").click()
    expect(page.locator("#notice")).to_have_text("Replay queued: 1 event.")
    assert wait_for(lambda: len(receiver.verified) >= 2, timeout=30), receiver.rejected
    assert receiver.verified[1].webhook_id == first.webhook_id and receiver.verified[1].payload == first.payload
    assert receiver.rejected == []
    page.reload()
    expect(page.get_by_role("table", name="Delivery attempts")).to_contain_text("(replay)", timeout=30_000)
    # The message's own page lists the event it produced, as it was signed and sent.
    page.goto(f"{console.url}#/message/{first.payload['data']['commId']}")
    events = page.get_by_role("table", name="Webhook events")
    expect(events).to_contain_text("message.sent")
    expect(events).to_contain_text(first.webhook_id)


def test_an_admin_creates_a_key_sees_it_once_and_revokes_it(console, browser_page):
    page = browser_page.page
    sign_in(page, console, console.admin, "keys")
    page.get_by_label("Licensee id").fill(LICENSEE_B)
    page.get_by_label("Name", exact=True).fill("temp-b")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("[data-secret]").inner_text()
    assert re.fullmatch(r"sms_[0-9a-f]{16}\..+", key)
    assert console.host.request("GET", "/api/keys/current", key=key) == (200, console.host.request("GET", "/api/keys/current", key=key)[1])
    assert console.host.request("GET", "/api/keys/current", key=key)[1]["licenseeId"] == LICENSEE_B
    page.get_by_role("button", name="Done").click()
    assert key not in page_text(page) and key[4:20] in page_text(page)  # its id stays listed, never the key
    page.get_by_role("button", name=f"Revoke key {key[4:20]}").click()
    expect(page.locator("#notice")).to_have_text(f"Revoked {key[4:20]}.")
    assert console.host.request("GET", "/api/keys/current", key=key)[0] == 401


def test_a_licensee_key_sees_neither_another_licensees_messages_nor_the_admin_pages(console, browser_page):
    page = browser_page.page
    theirs = send(console, console.licensee_a, "+61412555401", "For licensee A's eyes only")
    sign_in(page, console, console.licensee_b)
    expect(page.locator("#who")).to_contain_text(LICENSEE_B)
    expect(page.get_by_role("navigation", name="Console").get_by_role("link")).to_have_text(
        ["Messages", "Send", "Usage", "Webhooks", "Opt-outs", "Settings"])
    expect(page.locator("#results")).not_to_contain_text("For licensee A's eyes only")
    page.goto(f"{console.url}#/keys")
    expect(page.locator("main")).to_contain_text("This page is for admin keys")
    page.goto(f"{console.url}#/message/{theirs}")
    expect(page.locator("main .error")).to_contain_text("404")
    assert "For licensee A" not in page_text(page)
    # What the page would get if it asked anyway: the API refuses the key, whatever the page shows.
    status = page.evaluate("""async () => (await fetch('/api/keys', {headers: {Authorization:
        'Bearer ' + sessionStorage.getItem('sms-console-key')}})).status""")
    assert status == 403
    assert page.locator("#acting").count() == 0  # no licensee switch for a licensee's key


def test_a_read_only_key_can_look_and_is_offered_no_change(console, browser_page):
    page = browser_page.page
    scheduled = send(console, console.licensee_a, "+61412555501", "Scheduled, seen read-only",
                     SendAt=(datetime.now().astimezone() + timedelta(days=3)).isoformat())
    sign_in(page, console, console.read_only_a)
    expect(page.locator("#who")).to_contain_text("read-only")
    page.goto(f"{console.url}#/message/{scheduled}")
    expect(page.locator("#message-status")).to_have_text("scheduled")
    page.goto(f"{console.url}#/send")
    expect(page.locator("main")).to_contain_text("This key is read-only: it cannot send.")


def test_opt_outs_search_history_and_manual_changes_with_a_reason(console, browser_page):
    page = browser_page.page
    person = "+61412555701"
    comm_id = send(console, console.licensee_a, person, "Before the STOP", ReplyIsAllowed=True)
    # The STOP answers that message once it has gone, so it is this licensee's (and its sender number's).
    assert wait_for(lambda: console.host.request("GET", f"/api/sms/{comm_id}", key=console.licensee_a)[1]["status"] == "sent")
    assert post(inbound_event(person, "STOP"), console.host.base_url, EVENTGRID_SECRET)[0] == 200
    sign_in(page, console, console.licensee_a, "optouts")
    page.get_by_role("search", name="Search opt-outs").get_by_label("Phone number").fill(person)
    page.get_by_role("button", name="Search").click()
    rows = page.get_by_role("table", name="Opt-outs").locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("stop")
    history = page.get_by_role("table", name=f"History of {person}")
    expect(history).to_contain_text("opted out")

    # The person called to say they want the reminders again: lifted by hand, with the reason, and recorded.
    change = page.get_by_role("form", name="Add or remove by hand")
    change.get_by_label("Phone number").fill(person)
    change.get_by_label("Reason").fill("Asked by phone on 7 Dec to get reminders again")
    change.get_by_role("button", name="Remove opt-out").click()
    expect(page.locator("#notice")).to_contain_text(f"{person} is no longer opted out")
    expect(history).to_contain_text("Asked by phone on 7 Dec")
    expect(history).to_contain_text(console.licensee_a[4:20])  # the key that did it
    # Added back by hand: the API says so too.
    change.get_by_label("Phone number").fill(person)
    change.get_by_label("Reason").fill("Changed their mind")
    change.get_by_role("button", name="Opt out").click()
    expect(page.locator("#notice")).to_contain_text(f"{person} is opted out")
    status, state = console.host.request("GET", f"/api/optouts?phoneNumber=%2B{person[1:]}", key=console.licensee_a)
    assert status == 200 and state["optOuts"][0]["optedOut"] is True and state["optOuts"][0]["reason"] == "Changed their mind"


def test_an_admin_acts_for_another_licensee(console, browser_page):
    page = browser_page.page
    send(console, console.licensee_b, "+61412555801", "Licensee B's own message")
    assert wait_for(lambda: console.host.request("GET", "/api/sms", key=console.licensee_b)[1]["messages"])
    sign_in(page, console, console.admin)
    expect(page.locator("#results")).not_to_contain_text("Licensee B's own message")
    page.get_by_label("Act for licensee").fill(LICENSEE_B)
    page.get_by_role("button", name="Switch").click()
    expect(page.locator("#who code")).to_have_text(LICENSEE_B)
    expect(page.locator("#results")).to_contain_text("Licensee B's own message")
    page.goto(f"{console.url}#/settings")
    page.get_by_label("Quiet hours", exact=True).fill("21:00-07:00")
    page.get_by_label("Time zone", exact=True).fill("Australia/Perth")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#notice")).to_contain_text("quiet hours 21:00-07:00")
    assert console.host.request("GET", "/api/settings", key=console.licensee_b)[1]["timeZone"] == "Australia/Perth"
    assert console.host.request("GET", "/api/settings", key=console.licensee_a)[1].get("quietHours") != "21:00-07:00"


def test_an_admin_acting_for_a_licensee_never_sends_as_another(console, browser_page):
    """Review (issue 29): the header says the admin works on licensee B, but the Send page posts without it, so the
    message goes out as the admin key's own licensee (A), under A's sender, quiet hours and guard, and "Follow it" then
    finds nothing (it asks for B's message). The page must send for B, or refuse to send while acting for another."""
    page = browser_page.page
    text = f"Sent while acting for B {uuid.uuid4().hex[:8]}"
    sign_in(page, console, console.admin)
    page.locator("#acting").fill(LICENSEE_B)
    page.get_by_role("button", name="Switch").click()
    expect(page.locator("#who code")).to_have_text(LICENSEE_B)
    page.get_by_role("link", name="Send", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Send")
    if page.get_by_role("button", name="Send", exact=True).count():
        page.get_by_label("To", exact=True).fill("+61412555601")
        page.get_by_label("Message", exact=True).fill(text)
        page.get_by_role("button", name="Send", exact=True).click()
        page.locator("#sent-message, main .error").first.wait_for()  # the gateway has answered the send
    if page.locator("#sent-message").count():
        comm_id = page.locator("#sent-message").get_attribute("href").rsplit("/", 1)[1]
        status, message = console.host.request("GET", f"/api/sms/{comm_id}?licenseeId={LICENSEE_B}", key=console.admin)
        assert status == 200 and message["licenseeId"] == LICENSEE_B, f"sent as another licensee than the one shown: {status} {message}"


def test_pressing_send_again_after_a_lost_answer_sends_the_sms_once(console, browser_page):
    """The send reaches the gateway but its answer never reaches the page (the connection drops): the operator presses
    Send again, and the gateway answers from the first request (the page's Idempotency-Key) instead of sending twice."""
    page = browser_page.page
    number = "+61412555951"
    sign_in(page, console, console.licensee_a, "send")
    dropped = []

    def drop_first_answer(route):
        if not dropped:
            route.fetch()  # the gateway gets it and accepts it
            dropped.append(True)
            route.abort("connectionreset")  # and the page never hears
        else:
            route.continue_()

    page.route("**/api/send", drop_first_answer)
    page.get_by_label("To", exact=True).fill(number)
    page.get_by_label("Message", exact=True).fill("Sent once, whatever the network did")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator("main .error")).to_be_visible()
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("link", name="Follow it")).to_be_visible()
    comm_id = page.locator("#sent-message").get_attribute("href").rsplit("/", 1)[1]
    assert wait_for(lambda: console.host.request("GET", f"/api/sms/{comm_id}", key=console.licensee_a)[1]["status"] == "sent")
    search = f"/api/sms?phoneNumber=%2B{number[1:]}"
    assert wait_for(lambda: console.host.request("GET", search, key=console.licensee_a)[1]["messages"])
    assert [m["commId"] for m in console.host.request("GET", search, key=console.licensee_a)[1]["messages"]] == [comm_id]
    assert [sms["to"] for sms in console.host.sent()].count(number) == 1  # the provider was handed it once
    browser_page.console_errors.clear()
