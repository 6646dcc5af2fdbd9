"""A message accepted in one storage call (issue 30), seen in the console before its worker has written it: the page
says it is being written, offers its cancel, and shows the recipients once the worker writes them, without a reload.

The dev host here runs without its sms-accept listener (AzureWebJobs.accept_job.Disabled, as on Azure), so the messages
stay unwritten for as long as the test needs; a second dev host on the same Azurite, with every listener, is the worker
that writes and sends them.
"""
from __future__ import annotations

import re

from playwright.sync_api import expect

from sms.dev import azurite
from tests.browser.conftest import Console, sign_in
from tests.e2e.conftest import running_devhost

LICENSEE = "c1" * 16
WORKER_OFF = {"AzureWebJobs.accept_job.Disabled": "true", "AzureWebJobs.accept_job_poison.Disabled": "true"}


def accepted_in_one_call(host, key: str, number: str) -> str:
    status, answer = host.request("POST", "/api/sms/send", {"smsModel": {"to": [{"phoneNumber": number}], "messageBody": "See you at 10"}},
                                  key=key)
    assert status == 200, answer
    status, message = host.request("GET", f"/api/sms/{answer['commId']}", key=key)
    # Not written yet, so this is the one-call path's answer from the commId alone: nothing to list, no encoding.
    assert status == 200 and message["recipients"] == [] and "encoding" not in message and message["status"] == "queued", message
    return answer["commId"]


def test_a_message_being_written_is_followed_until_written_and_one_cancelled_before_is_cancelled(tmp_path, browser_page):
    page = browser_page.page
    with azurite.start() as storage, running_devhost(storage.connection_string, tmp_path / "outbox.jsonl", **WORKER_OFF) as host:
        key = host.create_key(LICENSEE, "--name", "api")
        console = Console(host, admin="", licensee_a=key, licensee_b="", receivers=None)
        sign_in(page, console, key)

        cancelled = accepted_in_one_call(host, key, "+61412555301")
        page.goto(f"{console.url}#/message/{cancelled}")
        expect(page.locator("#being-written")).to_have_text("Being written: 1 recipient, listed here in a moment.")
        expect(page.locator("#message-status")).to_have_text("queued")
        page.get_by_role("button", name="Cancel (1 not sent yet)").click()
        expect(page.locator("#notice")).to_have_text("Cancelled 1 recipient.")
        expect(page.locator("#message-status")).to_have_text("cancelled")
        expect(page.locator("#being-written")).to_have_text("Cancelled before it was written: 1 recipient, none sent.")
        expect(page.get_by_role("button", name=re.compile("^Cancel"))).to_have_count(0)

        followed = accepted_in_one_call(host, key, "+61412555302")
        page.goto(f"{console.url}#/message/{followed}")
        expect(page.locator("#being-written")).to_have_text("Being written: 1 recipient, listed here in a moment.")
        expect(page.get_by_text("Known once written")).to_be_visible()
        assert "undefined" not in page.content() and "NaN" not in page.content()

        with running_devhost(storage.connection_string, tmp_path / "outbox.jsonl") as worker:
            # The worker writes the message and sends it; the page, still polling, lists the recipient.
            recipient = page.get_by_role("region", name="Recipient +61412555302")
            expect(recipient.get_by_role("list", name="Timeline")).to_contain_text("sent", timeout=30_000)
            expect(page.locator("#being-written")).to_have_count(0)
            expect(page.get_by_text("GSM-7, 1 segment")).to_be_visible()
            status, message = worker.request("GET", f"/api/sms/{cancelled}", key=key)
            assert status == 200 and [r["status"] for r in message["recipients"]] == ["cancelled"], message
        assert [sms["to"] for sms in host.sent()] == ["+61412555302"]
