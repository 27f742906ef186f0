import os

import pytest
from django.db import connection, connections

# Playwright's sync API runs an event loop in the test thread; Django's async-safety check would
# otherwise refuse the ORM calls that live_server tests make beside it.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Mark the test database so transactional tests may TRUNCATE the append-only audit log, and
    bound every statement: the slowest legitimate one here takes seconds, so a plan gone quadratic
    or a lock never granted fails its test with the statement in the traceback after five
    minutes, instead of stalling the whole CI run until its time limit (it happened once)."""
    with django_db_blocker.unblock():
        name = connection.settings_dict["NAME"]
        assert name.startswith("test_"), name
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{name}" SET wangge.audit_truncate_allowed = \'on\'')
            cursor.execute(f'ALTER DATABASE "{name}" SET statement_timeout = \'300s\'')
        connections.close_all()
    yield


# --- browser tests (tests/browser.py) ---------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole run; each test gets a fresh context from browser_page."""
    from playwright.sync_api import sync_playwright

    from tests.browser import launch

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def browser_page(browser, live_server):
    """A BrowserSession (fresh context, locale zh-CN) against the live server; it records every
    request URL and aborts any that would leave the machine. See tests/browser.py."""
    from tests.browser import browser_session

    with browser_session(browser, base_url=live_server.url) as session:
        yield session
