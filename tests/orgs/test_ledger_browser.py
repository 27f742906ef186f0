"""The ledger page (/ledger/) in headless Chromium: a community admin filters the list, opens a case
and reads its timeline, loses a race (409: 已被他人更新，请刷新), takes the next step, and sees the
header's inbox count change after a reminder sweep; no request leaves 127.0.0.1.

The page's CSP has no 'unsafe-eval': the test reads the page with `evaluate` and waits on
selectors, never on `wait_for_function`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from grid.models import Role
from orgs.cases_models import Case
from orgs.services import inbox
from tests.orgs.cases_world import Ledger, ledger_fixture  # noqa: F401 - fixture
from tests.people import user_with

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-ledger-2026"


def _rows(s) -> list[str]:
    return s.page.eval_on_selector_all("#cases tbody tr", "trs => trs.map(tr => tr.dataset.id)")


def _wait_rows(s, n: int) -> None:
    for _ in range(100):
        if len(_rows(s)) == n:
            return
        s.page.wait_for_timeout(100)
    raise AssertionError(f"expected {n} rows, saw {_rows(s)}")


def test_a_community_admin_filters_opens_a_case_acts_and_sees_the_inbox(browser_page, ledger: Ledger):
    s = browser_page
    earlier = timezone.now() - timedelta(days=10)
    rubbish = ledger.raise_case(now=earlier, description="小区门口垃圾堆放两天无人清运")
    quarrel = ledger.raise_case(
        by=ledger.admin_a,
        cell="a2",
        category=ledger.neighbours,
        now=earlier + timedelta(hours=1),
        description="楼上漏水邻里纠纷",
    )
    elsewhere = ledger.raise_case(by=ledger.admin_b, cell="b1", now=earlier, description="另一社区的事项")
    user = user_with(
        Role.COMMUNITY_ADMIN, community=ledger.space.a, username="shequ", password=PASSWORD, staff=True
    )

    s.admin_login("shequ", PASSWORD, next_path="/ledger/")
    assert s.page.url.split("?")[0].endswith("/ledger/")
    try:
        s.page.wait_for_selector('body[data-ready="true"]', state="attached", timeout=30_000)
    except Exception as exc:  # say why the page did not start
        raise AssertionError(f"the ledger page did not start: {s.console_errors}") from exc
    assert s.page.locator("#map canvas.maplibregl-canvas").count() == 1
    # Community A's two cases; B's is not in reach.
    assert sorted(_rows(s)) == sorted([str(rubbish.pk), str(quarrel.pk)])
    assert s.page.inner_text("#count") == "共2件"
    assert s.page.is_hidden("#inbox-unread")
    assert "按期办结率" in s.page.inner_text("#stats")

    # Filter by category: only the quarrel; the URL and the export link carry the filter.
    s.page.select_option('select[name="category"]', str(ledger.neighbours.pk))
    _wait_rows(s, 1)
    assert _rows(s) == [str(quarrel.pk)]
    assert f"category={ledger.neighbours.pk}" in s.page.url
    assert f"category={ledger.neighbours.pk}" in s.page.get_attribute("#export", "href")
    s.page.select_option('select[name="category"]', "")
    _wait_rows(s, 2)

    # Open a case: its timeline and the actions a community admin may take.
    s.page.click(f'#cases tbody tr[data-id="{rubbish.pk}"]')
    s.page.wait_for_selector("#detail .timeline li")
    assert "采集" in s.page.inner_text("#detail .timeline")
    assert s.page.locator('#detail button[data-action="accept"]').count() == 1
    assert f"case={rubbish.pk}" in s.page.url
    s.screenshot("ledger-case.png")  # to /tmp unless WANGGE_SCREENSHOTS is set

    # Someone else registers it first: the page's step is refused as stale, in Chinese.
    ledger.act(rubbish, "accept", now=timezone.now())
    s.page.click('#detail button[data-action="accept"]')
    s.page.wait_for_selector("#toast:not([hidden])")
    assert s.page.inner_text("#toast") == "已被他人更新，请刷新"
    s.page.wait_for_selector('#detail button[data-action="dispatch"]')
    assert Case.objects.get(pk=rubbish.pk).state == Case.State.REGISTERED

    # The next step from the page: 派遣, recorded on the timeline.
    s.page.click('#detail button[data-action="dispatch"]')
    s.page.wait_for_selector('#detail .timeline li:has-text("派遣")')
    assert Case.objects.get(pk=rubbish.pk).state == Case.State.DISPATCHED

    # A reminder sweep: the header's count follows without a reload.
    sent = inbox.reminders_cases_due()
    assert sent["case_overdue"] >= 1
    mine = user.notifications.filter(read_at__isnull=True).count()
    assert mine >= 1
    s.page.evaluate("() => window.dispatchEvent(new Event('inbox:refresh'))")
    s.page.wait_for_selector("#inbox-unread:not([hidden])")
    assert s.page.inner_text("#inbox-unread") == str(mine)
    assert "已超期" in s.page.inner_text("#inbox ul")
    s.page.click("#read-all")
    s.page.wait_for_selector("#inbox-unread[hidden]", state="attached")
    assert not user.notifications.filter(read_at__isnull=True).exists()
    s.screenshot("ledger-page.png")

    # Another community's case, asked for by URL: refused in Chinese like a missing one, nothing shown.
    s.goto(f"/ledger/?case={elsewhere.pk}")
    s.page.wait_for_selector('body[data-ready="true"]', state="attached", timeout=30_000)
    assert s.page.inner_text("#toast") == "事项不存在或不在您的范围内"
    assert s.page.is_hidden("#detail")

    assert s.external_requests() == []
    # The refused step's 409 and the foreign case's 404 are the only console entries (failed fetches).
    assert [e for e in s.console_errors if "409" not in e and "404" not in e] == []


def test_cases_are_a_clustered_layer_on_the_dashboard(browser_page, ledger: Ledger):
    s = browser_page
    ledger.raise_case()
    ledger.raise_case(by=ledger.admin_b, cell="b1")
    user_with(Role.STREET_ADMIN, street=ledger.space.street, username="jiedao", password=PASSWORD, staff=True)
    s.admin_login("jiedao", PASSWORD, next_path="/dashboard/")
    s.page.wait_for_selector('body[data-map-ready="1"]', state="attached", timeout=30_000)
    assert (
        s.page.evaluate("() => window.dashboard.map.getLayoutProperty('cases-point', 'visibility')") == "none"
    )
    assert s.page.inner_text(".ledger-link") == "民情台账"

    s.page.check('input[data-layer="cases"]')
    assert (
        s.page.evaluate("() => window.dashboard.map.getLayoutProperty('cases-point', 'visibility')")
        == "visible"
    )
    assert s.page.evaluate("() => window.dashboard.map.getSource('cases')._options.cluster") is True
    for _ in range(100):
        if any("/api/cases/" in u for u in s.requests):
            break
        s.page.wait_for_timeout(100)
    assert any("/api/cases/" in u for u in s.requests)
    # The bookmarked view keeps the layer (the page writes its URL after the map settles).
    for _ in range(100):
        if "cases" in s.page.url.split("layers=")[-1].split("&")[0]:
            break
        s.page.wait_for_timeout(100)
    assert "cases" in s.page.url.split("layers=")[-1].split("&")[0]
    s.screenshot("ledger-dashboard-cases.png", full_page=False)
    assert s.external_requests() == []
    assert s.console_errors == []
