"""Browser-test harness: headless Debian Chromium driven by Playwright's sync API.

Pages must work on intranets cut off from the internet, so every session records each URL the
browser asks for and refuses (aborts) anything that is not this machine; tests then assert that the
list of outside requests is empty. Playwright's own browser download is never used
(`playwright install` is impossible here): we launch /usr/bin/chromium.

Use through the fixtures in tests/conftest.py (`browser`, `browser_page`); mark tests
`@pytest.mark.browser`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Playwright, Request, Route

CHROMIUM = os.environ.get("WANGGE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Containers give /dev/shm 64 MB; Chromium's renderer crashes on big pages without this.
    "--disable-dev-shm-usage",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
LOCAL_SCHEMES = {"data", "blob", "about"}


def screenshot_path(name: str) -> Path:
    """Where screenshots go: $WANGGE_SCREENSHOTS, else the temp directory (/tmp)."""
    return Path(os.environ.get("WANGGE_SCREENSHOTS") or tempfile.gettempdir()) / name


def is_local(url: str) -> bool:
    """True for URLs that never leave the machine: 127.0.0.1/localhost, data:, blob:, about:."""
    parts = urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return True
    return parts.scheme in {"http", "https", "ws", "wss"} and (parts.hostname or "") in LOCAL_HOSTS


def launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


@dataclass
class BrowserSession:
    """One fresh browser context (cookies, storage) with one page and the requests it made."""

    context: BrowserContext
    page: Page
    base_url: str
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def goto(self, path: str) -> None:
        """Open a path of the live server and wait until the page and its scripts have loaded."""
        self.page.goto(self.url(path), wait_until="load")

    def external_requests(self) -> list[str]:
        return [u for u in self.requests if not is_local(u)]

    def admin_login(self, username: str, password: str, *, next_path: str = "/admin/") -> None:
        """Log in through the real admin login form (not a cookie shortcut)."""
        self.goto(f"/admin/login/?next={next_path}")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        with self.page.expect_navigation(wait_until="load"):
            self.page.click("input[type=submit]")
        if "/admin/login/" in self.page.url:
            raise AssertionError(f"登录失败：{username}（仍在登录页 {self.page.url}）")

    def screenshot(self, name: str | Path, *, full_page: bool = True) -> Path:
        """Save a PNG; a bare file name goes to screenshot_path()."""
        path = Path(name) if Path(name).is_absolute() else screenshot_path(str(name))
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


@contextmanager
def browser_session(
    browser: Browser,
    *,
    base_url: str,
    locale: str = "zh-CN",
    service_workers: Literal["allow", "block"] = "block",
) -> Iterator[BrowserSession]:
    """Service workers are blocked unless a test is about one: requests a worker answers from its
    cache never reach the route guard below, and the worker's own fetches need Playwright's
    experimental flag to be seen. Pages that register one are same-origin only (checked in
    their tests by what the worker's script fetches)."""
    context = browser.new_context(
        locale=locale,
        timezone_id="Asia/Shanghai",
        viewport={"width": 1280, "height": 900},
        extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9"},
        service_workers=service_workers,
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    session = BrowserSession(context=context, page=page, base_url=base_url)

    def record(request: Request) -> None:
        session.requests.append(request.url)

    def guard(route: Route) -> None:
        # Recorded by the "request" listener as well; aborting keeps a test from waiting on a
        # network that an intranet does not have.
        if is_local(route.request.url):
            route.continue_()
        else:
            route.abort("blockedbyclient")

    context.on("request", record)
    context.route("**/*", guard)
    def console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            session.console_errors.append(msg.text)

    page.on("console", console)
    page.on("pageerror", lambda exc: session.console_errors.append(str(exc)))
    try:
        yield session
    finally:
        context.close()
