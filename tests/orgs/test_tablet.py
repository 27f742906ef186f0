"""The tablet page (/tablet/): a grid worker logs visits, a stationed cadre check-ins and contacts,
with or without a network; they reach the server through the sync API when the tablet is back
online, each exactly once."""

import json
import re
import time
from datetime import timedelta

import pytest
from django.templatetags.static import static
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from grid.models import Role
from orgs.models import StationContact, Visit
from tests.browser import browser_session
from tests.orgs_factories import GridWorkerFactory, StationedCadreFactory
from tests.people import user_with

PASSWORD = "tablet-test-2026"
TABLET = "/tablet/"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]




def staff_member(username: str, role: str, **unit):
    """A member of staff who signs in by the form (the page is session-based)."""
    return user_with(role, username=username, password=PASSWORD, staff=True, **unit)


@pytest.mark.django_db
def test_the_page_needs_a_sign_in_and_a_role_that_logs_visits(space):
    anonymous = Client().get(TABLET)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/admin/login/?next=/tablet/")
    leader = Client()
    leader.force_login(staff_member("lingdao_t", Role.LEADER, street=space.street))
    assert leader.get(TABLET).status_code == 403


@pytest.mark.django_db
def test_a_worker_picks_from_the_buildings_of_their_own_grid_only(space):
    worker = Client()
    worker.force_login(staff_member("wg_t", Role.GRID_WORKER, grid_cell=space.a1))
    response = worker.get(TABLET)
    assert response.status_code == 200
    assert [b["code"] for b in response.context["buildings"]] == [space.house_a1.code]
    html = response.content.decode()
    assert "走访记录" in html and space.house_b1.code not in html


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_visits_saved_offline_are_synced_once_online_and_refusals_stay_on_the_tablet(browser_page, space):
    worker = staff_member("wg_tablet", Role.GRID_WORKER, grid_cell=space.a1)
    GridWorkerFactory(community=space.a, grid_cells=[space.a1], user=worker)
    s = browser_page
    s.admin_login("wg_tablet", PASSWORD, next_path=TABLET)
    page = s.page
    assert "走访记录" in page.title()
    here = space.house_a1.point
    s.context.grant_permissions(["geolocation"])
    s.context.set_geolocation({"longitude": here.x, "latitude": here.y, "accuracy": 12})

    s.context.set_offline(True)
    expect(page.locator("#net")).to_have_text("离线")
    for saved, (kind, building, household) in enumerate(
        (
            ("household", space.house_a1.code, "2单元301"),
            ("other", "", ""),
            ("building", space.house_b1.code, ""),  # another grid's building: the server refuses it
        ),
        start=1,
    ):
        page.select_option("select[name=kind]", kind)
        page.fill("input[name=building]", building)
        page.fill("input[name=household]", household)
        page.fill("textarea[name=summary]", "离线记录")
        page.click("#visit-form button[type=submit]")
        # Wait for this record's save (the queue grows, then the form is reset): the message
        # alone reads the same after every save, and filling the next record before the reset
        # would have it cleared under the test's hands.
        expect(page.locator("#count")).to_have_text(str(saved))
        expect(page.locator("#message")).to_have_text("已保存在本机，待同步。")
    expect(page.locator("#count")).to_have_text("3")
    assert Visit.objects.count() == 0

    s.context.set_offline(False)  # the page syncs by itself when the network returns
    expect(page.locator("#message")).to_contain_text("已保存 2 条", timeout=15_000)
    expect(page.locator("#count")).to_have_text("1")
    refused = page.locator("#queue li")
    expect(refused).to_contain_text("不在您负责的范围内")
    visits = list(Visit.objects.order_by("kind"))
    assert [(v.kind, v.reporter_id, v.summary) for v in visits] == [
        ("household", worker.pk, "离线记录"),
        ("other", worker.pk, "离线记录"),
    ]
    household = visits[0]
    assert household.building == space.house_a1 and household.household == "2单元301"
    assert household.accuracy_m == 12 and household.point.distance(here) < 1e-7
    assert visits[1].grid_cell == space.a1  # placed by its position alone

    # Syncing again sends nothing new; the refused record waits until the worker deletes it.
    page.click("#sync")
    expect(page.locator("#message")).to_have_text("没有待同步的记录。")
    refused.get_by_role("button", name="删除").click()
    expect(page.locator("#count")).to_have_text("0")
    assert Visit.objects.count() == 2
    s.screenshot("tablet.png")

    # Signing out ends the session: the page and the sync API are closed to this browser.
    with page.expect_navigation():
        page.click(".signout button")
    s.goto(TABLET)
    assert "/admin/login/" in page.url
    assert s.external_requests() == []
    assert s.console_errors == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_stationed_cadre_checks_in_and_logs_a_contact_from_the_tablet(browser_page, space):
    cadre = staff_member("zd_tablet", Role.STATIONED_CADRE, community=space.a)
    today = timezone.localdate()
    posting = StationedCadreFactory(
        community=space.a, user=cadre, period_start=today - timedelta(days=10), period_end=None
    )
    s = browser_page
    s.admin_login("zd_tablet", PASSWORD, next_path=TABLET)
    page = s.page
    expect(page.locator("#station h2")).to_contain_text(space.a.name)

    # Without a position a check-in proves nothing: it is not even saved.
    page.click("#check-in")
    expect(page.locator("#message")).to_contain_text("无法获取定位")
    expect(page.locator("#count")).to_have_text("0")

    inside = space.house_a2.point
    s.context.grant_permissions(["geolocation"])
    s.context.set_geolocation({"longitude": inside.x, "latitude": inside.y, "accuracy": 8})
    page.click("#check-in")
    expect(page.locator("#count")).to_have_text("1")
    page.fill("#contact-form input[name=contact_name]", "王阿姨")
    page.fill("#contact-form textarea[name=summary]", "反映楼道照明")
    page.click("#contact-form button[type=submit]")
    expect(page.locator("#count")).to_have_text("2")
    s.screenshot("tablet_cadre.png")

    page.click("#sync")
    expect(page.locator("#message")).to_contain_text("已保存 2 条")
    expect(page.locator("#count")).to_have_text("0")
    contacts = {c.kind: c for c in StationContact.objects.all()}
    assert set(contacts) == {"check_in", "contact"}
    assert all(c.cadre == posting and c.reporter == cadre for c in contacts.values())
    assert contacts["check_in"].on_site is True
    assert contacts["contact"].contact_name == "王阿姨"
    assert s.external_requests() == []
    assert s.console_errors == []


def test_the_service_worker_is_public_uncached_and_names_only_this_sites_files():
    # Browsers fetch the worker again without a session to look for updates: it must not need one.
    response = Client().get("/tablet/sw.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Cache-Control"] == "no-cache"
    body = response.content.decode()
    assets = json.loads(re.search(r"var ASSETS = (\[.*?\]);", body).group(1))
    assert assets == [static("orgs/tablet.js"), static("orgs/tablet.css"), static("favicon.svg")]
    assert 'var PAGE = "/tablet/";' in body
    assert "http://" not in body and "https://" not in body


def _wait_for(page, script: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.evaluate(script):
            return
        page.wait_for_timeout(200)
    raise AssertionError(f"not true within {timeout} s: {script}")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_page_opens_without_a_network_once_opened_with_one_and_forgets_it_on_sign_out(
    browser, live_server, space
):
    worker = staff_member("wg_offline", Role.GRID_WORKER, grid_cell=space.a1)
    GridWorkerFactory(community=space.a, grid_cells=[space.a1], user=worker)
    with browser_session(browser, base_url=live_server.url, service_workers="allow") as s:
        s.admin_login("wg_offline", PASSWORD, next_path=TABLET)
        page = s.page
        # The worker installs and keeps the signed-in page (not the sign-in form it came from).
        _wait_for(page, "async () => { const r = await caches.match('/tablet/');"
                        " return !!r && (await r.text()).includes('wg_offline'); }")

        # The next morning, no signal: the page still opens, with the buildings to pick from.
        s.context.set_offline(True)
        page.reload(wait_until="load")
        expect(page.locator("h1")).to_have_text("走访记录")
        expect(page.locator("#net")).to_have_text("离线")
        expect(page.locator(f'#buildings option[value="{space.house_a1.code}"]')).to_have_count(1)
        page.select_option("select[name=kind]", "household")
        page.fill("input[name=building]", space.house_a1.code)
        page.fill("textarea[name=summary]", "无信号时记录")
        page.click("#visit-form button[type=submit]")
        expect(page.locator("#count")).to_have_text("1")
        assert Visit.objects.count() == 0

        # Signal again, but the browser lost its CSRF cookie meanwhile (the kept page's token no
        # longer matches): the worker is told to refresh, and the record stays on the device.
        s.context.clear_cookies(name="csrftoken")
        s.context.set_offline(False)
        expect(page.locator("#message")).to_contain_text("页面已过期，请刷新页面后再同步", timeout=15_000)
        expect(page.locator("#count")).to_have_text("1")
        assert Visit.objects.count() == 0
        assert len(s.console_errors) == 1 and "403" in s.console_errors[0]  # the refused POST
        s.console_errors.clear()
        # Refreshed with signal, the page is current again and the record reaches the server once.
        page.reload(wait_until="load")
        page.click("#sync")
        expect(page.locator("#message")).to_contain_text("已保存 1 条", timeout=15_000)
        visit = Visit.objects.get()
        assert visit.reporter == worker and visit.building == space.house_a1

        assert s.console_errors == []

        # Signing out forgets the cached page: offline, the tablet shows nobody's page.
        with page.expect_navigation():
            page.click(".signout button")
        assert page.evaluate("async () => (await caches.keys()).filter(n => n.startsWith('wangge-tablet-'))") == []
        s.context.set_offline(True)
        s.goto(TABLET)
        expect(page.locator("h1")).to_have_text("暂时无法打开走访记录")
        assert "wg_offline" not in page.content()
        assert s.external_requests() == []
        # The worker answers that page with 503 (it is not the page asked for); Chromium logs it.
        assert len(s.console_errors) == 1 and "503" in s.console_errors[0]


@pytest.mark.django_db
def test_a_stale_csrf_token_is_its_own_error_not_a_missing_permission(space):
    worker = staff_member("wg_csrf", Role.GRID_WORKER, grid_cell=space.a1)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(worker)
    response = browser.post("/api/sync/visits/", {"items": []}, content_type="application/json")
    assert response.status_code == 403
    assert response.json() == {"code": "csrf_failed", "message": "页面已过期，请刷新页面后重试"}
