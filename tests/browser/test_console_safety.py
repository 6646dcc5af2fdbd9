"""Text anyone can write (a reply, a message body) is only ever text on the console's page: no markup is parsed
from it and no script of it runs, and the page's policy makes the browser refuse to parse it even if a page tried
(issue 29)."""
from __future__ import annotations

from playwright.sync_api import expect

from sms.dev.simulate import inbound_event, post
from tests.e2e.conftest import EVENTGRID_SECRET, wait_for

from .conftest import sign_in, watched_page
from .test_console_flows import send

HOSTILE_REPLIES = ["<img src=x onerror=alert(1)>", "</script><script>alert(2)</script>"]
HOSTILE_BODY = '<svg onload=alert(3)><a href="javascript:alert(4)">tap</a>'


def test_a_hostile_reply_and_body_show_as_text_and_run_nothing(console, chromium):
    person = "+61412555901"
    comm_id = send(console, console.licensee_a, person, HOSTILE_BODY, ReplyIsAllowed=True)
    assert wait_for(lambda: console.host.request("GET", f"/api/sms/{comm_id}", key=console.licensee_a)[1]["status"] == "sent")
    for text in HOSTILE_REPLIES:
        assert post(inbound_event(person, text), console.host.base_url, EVENTGRID_SECRET)[0] == 200
    assert wait_for(lambda: len(console.host.request("GET", f"/api/sms/{comm_id}/replies", key=console.licensee_a)[1]["replies"]) == 2)

    with watched_page(chromium) as watched:
        page = watched.page
        sign_in(page, console, console.licensee_a)
        expect(page.locator("#results")).to_contain_text(HOSTILE_BODY[:40])  # the preview (its first 40 characters), as sent
        page.goto(f"{console.url}#/message/{comm_id}")
        replies = page.locator(".reply")
        expect(replies).to_have_count(2)
        assert sorted(replies.all_inner_texts()) == sorted(HOSTILE_REPLIES)
        # Nothing of it became an element: no img, svg, script or javascript: link in the page the reply or body made.
        assert page.evaluate("""() => document.querySelectorAll(
            'main img, main svg, main script, a[href^="javascript"], [onerror], [onload]').length""") == 0
        page.wait_for_timeout(500)  # an onerror would fire as the image failed to load
        assert watched.dialogs == [] and watched.page_errors == [] and watched.console_errors == [], watched


def test_the_browser_itself_refuses_to_parse_html_or_run_inline_script_on_the_console(console, browser_page):
    page = browser_page.page
    sign_in(page, console, console.licensee_a)
    # Trusted Types with no policy: assigning a string as HTML throws, whatever module tried it.
    refused = page.evaluate("""() => { try { document.body.insertAdjacentHTML('beforeend', '<img src=x onerror=alert(5)>');
        return 'parsed'; } catch (error) { return error.name; } }""")
    assert refused == "TypeError"
    # Nor can a script element be given code as a string; and script-src 'self' would not run an inline one anyway.
    refused = page.evaluate("""() => { try { const script = document.createElement('script'); script.textContent = 'window.ran = true';
        document.body.append(script); return 'added'; } catch (error) { return error.name; } }""")
    assert refused == "TypeError" and page.evaluate("() => window.ran === true") is False
    assert page.evaluate("() => document.querySelectorAll('img[src=x]').length") == 0
    assert browser_page.dialogs == []
    browser_page.page_errors.clear()  # the refusals above are reported as errors: what this test wanted


def test_the_console_cannot_be_framed(console, browser_page):
    page = browser_page.page
    response = page.goto(console.url)
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    # A page framing the console: the browser leaves the frame empty.
    page.goto("about:blank")
    page.set_content(f'<iframe id=f src="{console.url}"></iframe>')
    page.wait_for_timeout(1000)
    frame = page.frame_locator("#f")
    expect(frame.get_by_label("API key")).to_have_count(0)
    browser_page.console_errors.clear()
