"""The operator console in a real browser (issue 29): Debian's Chromium (scripts/install-browser) driven by Playwright
through `executable_path`, against a dev host of its own on an Azurite of its own.

Playwright only promises to work with the Chromium it bundles ("use at your own risk" otherwise:
playwright.dev/python/docs/api/class-browsertype#browser-type-launch), so requirements-dev.txt pins the Playwright built
for the Chromium Debian ships, and `chromium` below says which versions met if a launch fails.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Page, sync_playwright

from sms.config import PROJECT_ROOT
from sms.dev import azurite
from tests.e2e.conftest import DevHost, running_devhost
from tests.webhook_receiver import ReceiverThread

LICENSEE_A = "a" * 32
LICENSEE_B = "b" * 32
# Where the tour saves its screenshots: docs/console/ with `make console-screenshots`, else the test's own folder.
SCREENSHOTS = os.environ.get("SMS_CONSOLE_SCREENSHOTS")


# Per module, not per session: Playwright's sync API runs an event loop on this thread while it is started, and the
# async tests that run after (pytest-asyncio) cannot start theirs beside it. Stopped at a module's end, it is gone
# before the next module's tests; each module pays a second or so to start Chromium.
@pytest.fixture(scope="module")
def chromium(request) -> Browser:
    executable = shutil.which("chromium")
    assert executable, "Chromium is not installed: `make test` installs Debian's (scripts/install-browser)"
    version = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=executable)
        except Exception as error:
            raise AssertionError(f"Playwright could not drive {version} ({executable}): is requirements-dev.txt's playwright the one "
                                 f"built for this Chromium?\n{error}") from error
        with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():  # in make test's output
            print(f"\n{request.module.__name__}: {version}, driven by Playwright (Chromium {browser.version})")
        yield browser
        browser.close()


@dataclass
class Console:
    """The dev host the console is served from, and a key of each kind."""
    host: DevHost
    admin: str
    licensee_a: str
    licensee_b: str
    receivers: ReceiverThread
    read_only_a: str = ""

    @property
    def url(self) -> str:
        return self.host.base_url + "/console"


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    with azurite.start() as storage, ReceiverThread() as receivers:
        outbox = tmp_path_factory.mktemp("console") / "outbox.jsonl"
        with running_devhost(storage.connection_string, outbox, SMS_WEBHOOKS_ALLOW_PRIVATE="true") as host:
            yield Console(host, host.create_key(LICENSEE_A, "--role", "admin", "--name", "operator"),
                          host.create_key(LICENSEE_A, "--name", "clinic-a"), host.create_key(LICENSEE_B, "--name", "clinic-b"), receivers,
                          host.create_key(LICENSEE_A, "--read-only", "--name", "front-desk"))


@dataclass
class Watched:
    """A page with what it did that no page should: dialogs opened (alert() from injected script), uncaught errors,
    and console errors (kept apart: a refused request is logged as one)."""
    page: Page
    dialogs: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


@contextlib.contextmanager
def watched_page(browser: Browser, **context_options) -> Watched:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, **context_options)
    page = context.new_page()
    watched = Watched(page)

    def dialog(d: Dialog) -> None:
        watched.dialogs.append(f"{d.type}: {d.message}")
        d.dismiss()

    page.on("dialog", dialog)
    page.on("pageerror", lambda error: watched.page_errors.append(str(error)))
    page.on("console", lambda message: watched.console_errors.append(message.text) if message.type == "error" else None)
    try:
        yield watched
    finally:
        context.close()


@pytest.fixture
def browser_page(chromium) -> Watched:
    """A fresh browser context (its own session storage) with the console's CSP enforced; no dialog and no uncaught
    error by the end of the test."""
    with watched_page(chromium) as watched:
        yield watched
        assert watched.dialogs == [], watched.dialogs
        assert watched.page_errors == [], watched.page_errors


def sign_in(page: Page, console: Console, key: str, where: str = "messages") -> None:
    page.goto(f"{console.url}#/{where}")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Console").wait_for()


def screenshot(page: Page, name: str, tmp_path: Path) -> Path:
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    if not folder.is_absolute():
        folder = PROJECT_ROOT / folder
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
