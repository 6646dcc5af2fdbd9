"""Every console page, with data on it: axe-core finds no serious or critical accessibility violation, every control
is reachable with the Tab key, and a screenshot is saved (docs/console/ with `make console-screenshots`) (issue 29)."""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from sms.dev.simulate import inbound_event, post, receipt_event
from tests.e2e.conftest import EVENTGRID_SECRET, wait_for
from tests.webhook_receiver import WebhookReceiver

from .conftest import screenshot, sign_in, watched_page
from .test_console_flows import send

# Every page an admin sees, and what shows it is drawn: (address, screenshot name, text it waits for).
PAGES = [
    ("messages", "messages", "Page 1"),
    ("send", "send", "One number per line"),
    ("usage", "usage", "Per day"),
    ("webhooks", "webhooks", "Add an endpoint"),
    ("optouts", "optouts", "Add or remove by hand"),
    ("settings", "settings", "Routing table"),
    ("keys", "keys", "Create a key"),
]


def seed(console) -> tuple[str, str]:
    """A few days' worth of what a clinic sends: messages in every state, a reply, a webhook with deliveries."""
    receiver = console.receivers.start(WebhookReceiver(secret="whsec_" + "A" * 43))
    status, endpoint = console.host.request("POST", "/api/webhooks", {"Url": receiver.url}, console.admin)
    assert status == 200, endpoint
    receiver.secret = endpoint["secret"]
    patients = ["+61412000101", "+61412000102", "+61412000103", "+61412000104"]
    texts = ["Your appointment with Dr Lee is tomorrow at 10:30am. Reply C to confirm.", "Your prescription is ready to collect.",
             "Reminder: fasting blood test on Friday, nothing to eat after 10pm.", "Your results are in: please call us."]
    sent = [send(console, console.admin, number, text, ReplyIsAllowed=True, LinkedObjectId=str(uuid.uuid4()))
            for number, text in zip(patients, texts, strict=True)]
    for comm_id in sent:
        assert wait_for(lambda c=comm_id: console.host.request("GET", f"/api/sms/{c}", key=console.admin)[1]["status"] == "sent")
    post(receipt_event(sent[0], 0, delivered=True), console.host.base_url, EVENTGRID_SECRET)
    post(receipt_event(sent[1], 0, delivered=False, detail="Handset unreachable"), console.host.base_url, EVENTGRID_SECRET)
    post(inbound_event(patients[0], "C, see you then"), console.host.base_url, EVENTGRID_SECRET)
    post(inbound_event(patients[3], "STOP"), console.host.base_url, EVENTGRID_SECRET)
    later = (datetime.now(timezone.utc) + timedelta(days=20)).isoformat()
    send(console, console.admin, "+61412000105", "Your flu shot is due next month.", SendAt=later)
    assert wait_for(lambda: len(receiver.verified) >= 4, timeout=30), receiver.rejected
    return sent[0], endpoint["endpointId"]


def tab_reaches_every_control(page: Page) -> list[str]:
    """Press Tab from the page's first control (its skip link) on, until focus leaves the page or comes round again;
    the visible, enabled controls it never reached."""
    mark = """() => { const e = document.activeElement; if (!e || e === document.body) return null;
        if (!e.dataset.tabMark) e.dataset.tabMark = String(Math.random()); return e.dataset.tabMark; }"""
    page.evaluate("() => document.querySelector('a.skip').focus()")
    first = page.evaluate(mark)
    for _ in range(400):  # a date input takes several presses: one per part of the date
        page.keyboard.press("Tab")
        if page.evaluate(mark) in (None, first):
            break
    return page.evaluate("""() => [...document.querySelectorAll('a[href], button, input, select, textarea, summary')]
        .filter(e => !e.disabled && e.offsetParent !== null && e.tabIndex >= 0 && !e.dataset.tabMark)
        .map(e => e.outerHTML.slice(0, 120))""")


def serious(results) -> list[str]:
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


def test_every_page_passes_axe_and_the_keyboard_and_is_pictured(console, chromium, tmp_path):
    comm_id, endpoint_id = seed(console)
    pages = [*PAGES, (f"message/{comm_id}", "message", "Recipients"), (f"webhooks/{endpoint_id}", "webhook-deliveries", "Delivery log")]
    axe = Axe()
    # axe-core compiles some of its checks with new Function(), which the console's policy forbids, so the scan runs
    # in a context that ignores the policy; every other browser test runs with it enforced.
    with watched_page(chromium, bypass_csp=True) as watched:
        page = watched.page
        sign_in(page, console, console.admin)
        problems = {}
        for address, name, ready in pages:
            page.goto(f"{console.url}#/{address}")
            expect(page.locator("main")).to_contain_text(ready)
            page.wait_for_load_state("networkidle")
            # Nothing the page drew from the API shows a JavaScript value's name where data should be.
            assert not re.search(r"\b(null|undefined|NaN)\b|\[object Object\]", page.locator("main").inner_text()), name
            page.evaluate("() => document.getElementById('notice').replaceChildren()")  # the last toast, not the page
            screenshot(page, name, tmp_path)
            found = serious(axe.run(page))
            unreachable = tab_reaches_every_control(page)
            if found or unreachable:
                problems[name] = {"axe": found, "not reached by Tab": unreachable}
        page.goto(console.url)
        page.evaluate("() => sessionStorage.clear()")
        page.reload()
        expect(page.get_by_label("API key")).to_be_visible()
        screenshot(page, "sign-in", tmp_path)
        problems.update({"sign-in": found} if (found := serious(axe.run(page))) else {})
        assert problems == {}, problems
        assert watched.dialogs == [] and watched.page_errors == []


def press_until(page: Page, key: str, focused: str, most: int = 30) -> None:
    """Press `key` until the script `focused` says focus is where it should be; fails if it never gets there."""
    for _ in range(most):
        page.keyboard.press(key)
        if page.evaluate(focused):
            return
    raise AssertionError(f"{key} x{most} never reached {focused}")


def test_send_and_follow_a_message_with_the_keyboard_alone(console, browser_page):
    page = browser_page.page
    page.goto(console.url)
    page.keyboard.type(console.licensee_a)  # the key field has focus when the page opens
    page.keyboard.press("Enter")
    expect(page.get_by_role("navigation", name="Console")).to_be_visible()
    # Back from the page's heading (focused on each page) to the navigation's Send link.
    press_until(page, "Shift+Tab", "() => document.activeElement.textContent === 'Send'")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Send")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.type("+61412555601")
    page.keyboard.press("Tab")
    page.keyboard.type("Typed without a mouse")
    press_until(page, "Tab", "() => document.activeElement.type === 'submit'")  # on to the Send button
    page.keyboard.press("Enter")
    expect(page.get_by_role("link", name="Follow it")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Follow it")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("region", name="Recipient +61412555601")).to_be_visible()
