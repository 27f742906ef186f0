"""The tablet page's "today's work" (今日工作): the buildings due for a visit in the worker's grids
(the gaps' rule: residential, with households, no visit since local midnight `visit_interval_days`
days ago) and the worker's open cases with their deadlines, embedded in the page for offline use."""

import json
import uuid
from datetime import datetime, time, timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from grid.access import reach_for_user
from grid.models import Building, Role
from orgs.cases_models import Case
from orgs.models import Visit
from orgs.services.cases import case_create, case_transition
from orgs.tablet_selectors import buildings_due_for_visit, open_cases_for_tablet
from tests.factories import BuildingFactory, square
from tests.orgs.cases_world import categories
from tests.orgs.conftest import X, Y
from tests.orgs_factories import EnterpriseFactory, GridWorkerFactory
from tests.people import user_with


def _visit(user, building, when) -> Visit:
    return Visit.objects.create(
        id=uuid.uuid4(), occurred_at=when, reporter=user, reporter_name="网格员", place=building.point,
        community=building.community, grid_cell=building.grid_cell, building=building,
        kind=Visit.Kind.BUILDING, payload_hash="x",
    )


@pytest.fixture
def grid_a(space):
    """Grid A1 with five buildings of known visit history; the worker of A1."""
    worker = user_with(Role.GRID_WORKER, username="wg_day", grid_cell=space.a1)
    days = int(settings.WANGGE_RULES["visit_interval_days"])
    tz = timezone.get_current_timezone()
    today = timezone.localdate()
    window_morning = datetime.combine(today - timedelta(days=days), time(8), tzinfo=tz)
    recent = BuildingFactory(community=space.a, code="A1RECENT", geom=square(X + 0.001, Y + 0.006, 0.0003))
    edge = BuildingFactory(community=space.a, code="A1EDGE", geom=square(X + 0.003, Y + 0.006, 0.0003))
    stale = BuildingFactory(community=space.a, code="A1STALE", geom=square(X + 0.001, Y + 0.008, 0.0003))
    shop = BuildingFactory(
        community=space.a, code="A1SHOP", kind=Building.Kind.COMMERCIAL, geom=square(X + 0.003, Y + 0.008, 0.0003)
    )
    empty = BuildingFactory(community=space.a, code="A1EMPTY", households=0, geom=square(X + 0.002, Y + 0.004, 0.0003))
    Building.objects.filter(code__startswith="A1").update(grid_cell=space.a1)
    for b in (recent, edge, stale, shop, empty):
        b.refresh_from_db()
    _visit(worker, recent, timezone.now() - timedelta(days=3))
    _visit(worker, edge, window_morning)  # the morning of the window's first day still counts
    _visit(worker, stale, window_morning - timedelta(hours=9))  # the evening before: due
    _visit(worker, space.house_b1, timezone.now() - timedelta(days=300))  # another grid's
    return worker


@pytest.mark.django_db
def test_due_buildings_follow_the_gaps_rule_in_my_grids_only(space, grid_a, django_assert_num_queries):
    reach = reach_for_user(grid_a)
    with django_assert_num_queries(1):
        due = buildings_due_for_visit(reach=reach)
    # Never visited first (house_a1 of the fixture), then the longest unvisited.
    assert [b["code"] for b in due] == [space.house_a1.code, "A1STALE"]
    assert due[0]["last_visit"] is None and due[1]["last_visit"] is not None
    assert due[1]["households"] == 24
    assert abs(due[1]["lon"] - Building.objects.get(code="A1STALE").point.x) < 1e-6


@pytest.mark.django_db
def test_my_open_cases_with_deadlines_nearest_first_and_scoped(space, grid_a):
    category = categories()["暴露垃圾"]
    mine = case_create(reach=None, user=grid_a, category=category, description="楼道堆物",
                       source=Case.Source.VISIT, building=space.house_a1).case
    done = case_create(reach=None, user=grid_a, category=category, description="已办结",
                       source=Case.Source.VISIT, building=space.house_a1).case
    case_transition(reach=None, user=grid_a, case=done, action="decline", reason="非本辖区事项")
    case_create(reach=None, user=grid_a, category=category, description="别的网格",
                source=Case.Source.VISIT, building=space.house_b1)
    late = timezone.now() + timedelta(days=400)
    rows = open_cases_for_tablet(reach=reach_for_user(grid_a), at=late)
    assert [r["id"] for r in rows] == [mine.pk]
    assert rows[0]["category"] == category.name and rows[0]["state"] == "待立案"
    assert rows[0]["deadline"] and rows[0]["overdue"] is True


@pytest.mark.django_db
def test_the_page_embeds_todays_work(space, grid_a):
    client = Client()
    client.force_login(grid_a)
    response = client.get("/tablet/")
    assert response.status_code == 200
    today = response.context["today"]
    assert [b["code"] for b in today["due"]] == [space.house_a1.code, "A1STALE"]
    html = response.content.decode()
    embedded = json.loads(html.split('id="today-data" type="application/json">')[1].split("</script>")[0])
    assert [b["code"] for b in embedded["due"]] == [space.house_a1.code, "A1STALE"]
    assert "今日工作" in html and space.house_b1.code not in html


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_tablet_lists_and_sketches_the_due_buildings_nearest_first(browser_page, space, grid_a):
    grid_a.set_password("tablet-day-2026")
    grid_a.is_staff = True
    grid_a.save()
    s = browser_page
    stale = Building.objects.get(code="A1STALE")
    s.context.grant_permissions(["geolocation"])
    s.context.set_geolocation({"longitude": stale.point.x, "latitude": stale.point.y, "accuracy": 15})
    s.admin_login("wg_day", "tablet-day-2026", next_path="/tablet/")
    page = s.page
    expect(page.locator("#due-count")).to_have_text("2")
    # Standing at A1STALE, it comes first (the never-visited house_a1 is farther).
    expect(page.locator("#due-hint")).to_contain_text("由近到远")
    expect(page.locator("#due li")).to_have_count(2)
    assert page.locator("#due li").evaluate_all("els => els.map(e => e.dataset.code)") == [
        "A1STALE", space.house_a1.code,
    ]
    expect(page.locator("#due li").first).to_contain_text("上次走访")
    expect(page.locator("#due li").nth(1)).to_contain_text("从未走访")
    expect(page.locator("#due-map circle.due")).to_have_count(2)
    expect(page.locator("#due-map circle.me")).to_have_count(1)
    expect(page.locator("#cases li")).to_have_text(["暂无在办事项。"])
    # Tapping a due building starts a visit to it.
    page.locator("#due li").nth(1).click()
    expect(page.locator("input[name=building]")).to_have_value(space.house_a1.code)
    s.screenshot("tablet_day.png")
    assert s.external_requests() == []
    assert s.console_errors == []


# Enterprise visits (两新组织走访) from the tablet


@pytest.mark.django_db
def test_the_page_offers_only_the_enterprises_of_my_grids(space, grid_a):
    mine = EnterpriseFactory(name="甲网格企业", community=space.a, point=space.house_a1.point)
    EnterpriseFactory(name="乙社区企业", community=space.b, point=space.house_b1.point)
    client = Client()
    client.force_login(grid_a)
    response = client.get("/tablet/")
    assert response.context["enterprises"] == [{"id": mine.pk, "name": "甲网格企业"}]
    html = response.content.decode()
    assert '<option value="enterprise">两新组织走访</option>' in html and "乙社区企业" not in html


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_enterprise_visit_logged_offline_is_synced_once(browser_page, space, grid_a):
    grid_a.set_password("tablet-day-2026")
    grid_a.is_staff = True
    grid_a.save()
    GridWorkerFactory(community=space.a, grid_cells=[space.a1], user=grid_a)
    firm = EnterpriseFactory(name="甲网格企业", community=space.a, point=space.house_a1.point)
    s = browser_page
    s.admin_login("wg_day", "tablet-day-2026", next_path="/tablet/")
    page = s.page
    expect(page.locator("#enterprise-field")).to_be_hidden()
    page.wait_for_load_state("networkidle")  # the page's own requests done before the signal goes
    s.context.set_offline(True)
    page.select_option("select[name=kind]", "enterprise")
    expect(page.locator("#enterprise-field")).to_be_visible()
    page.click("#visit-form button[type=submit]")  # no enterprise picked: nothing kept
    expect(page.locator("#message")).to_have_text("请选择走访的两新组织。")
    expect(page.locator("#count")).to_have_text("0")
    page.select_option("select[name=enterprise]", str(firm.pk))
    page.fill("textarea[name=summary]", "了解用工情况")
    page.click("#visit-form button[type=submit]")
    expect(page.locator("#count")).to_have_text("1")
    expect(page.locator("#queue li")).to_contain_text("甲网格企业")
    s.context.set_offline(False)
    expect(page.locator("#message")).to_contain_text("已保存 1 条", timeout=15_000)
    page.click("#sync")
    expect(page.locator("#message")).to_have_text("没有待同步的记录。")
    visit = Visit.objects.get(kind="enterprise")
    assert (visit.kind, visit.enterprise, visit.reporter, visit.summary) == (
        "enterprise", firm, grid_a, "了解用工情况"
    )
    assert visit.community == space.a
    assert s.external_requests() == []
    assert s.console_errors == []
