"""Admin pages of field events (走访记录, 驻点联系记录): what a clerk checks after the tablets sync.

The records come only from the sync API, so the admin shows them read-only, limited to the
user's reach, with the ones logged far from their subject flagged."""

from datetime import datetime, timedelta
from uuid import uuid4

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.gis.geos import Point
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from playwright.sync_api import expect

from grid.models import Role
from orgs.models import StationContact, Visit
from tests.factories import CommunityFactory
from tests.orgs_factories import StationedCadreFactory
from tests.people import grant, signed_in

PASSWORD = "admin-pass-123"  # noqa: S105 - test account
VISITS = "/admin/orgs/visit/"
CONTACTS = "/admin/orgs/stationcontact/"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def staff_user(username: str, role: str, *, perms: tuple[str, ...] = ("view",), **unit):
    """A staff account with the Django permissions that open the event pages (as the demo groups
    give) and one role over `unit`."""
    user = get_user_model().objects.create_user(username, password=PASSWORD, is_staff=True)
    codenames = [f"{p}_{m}" for p in perms for m in ("visit", "stationcontact", "stationedcadre")]
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="orgs", codename__in=codenames)
    )
    grant(user, role, **unit)
    return user


def make_visit(*, at, reporter, offset_m: float = 10.0, **extra) -> Visit:
    """A household visit to building `at`, captured `offset_m` metres east of it (1° ≈ 104 km here)."""
    building = at
    place = building.point
    point = Point(place.x + offset_m / 104_000, place.y, srid=4326)
    fields = {
        "id": uuid4(),
        "payload_hash": "x" * 64,
        "occurred_at": timezone.now() - timedelta(hours=2),
        "reporter": reporter,
        "reporter_name": reporter.first_name or reporter.username,
        "kind": Visit.Kind.HOUSEHOLD,
        "captured_lon": point.x,
        "captured_lat": point.y,
        "captured_crs": "wgs84",
        "accuracy_m": 8.0,
        "point": point,
        "place": place,
        "community": building.community,
        "grid_cell": building.grid_cell,
        "building": building,
        "household": "2单元301",
        "distance_to_subject_m": offset_m,
        "summary": "了解独居老人情况",
    }
    fields.update(extra)
    return Visit.objects.create(**fields)


def make_contact(*, cadre, building, reporter, kind=StationContact.Kind.CONTACT, on_site=True, **extra):
    fields = {
        "id": uuid4(),
        "payload_hash": "x" * 64,
        "occurred_at": timezone.now() - timedelta(hours=1),
        "reporter": reporter,
        "reporter_name": reporter.username,
        "kind": kind,
        "place": building.point,
        "community": building.community,
        "grid_cell": building.grid_cell,
        "building": building,
        "cadre": cadre,
        "contact_name": "王阿姨",
        "on_site": on_site,
    }
    fields.update(extra)
    return StationContact.objects.create(**fields)


@pytest.fixture
def events(space):
    """Grid workers of A1 and A2 (both in community A), each with a visit in their grid, a visit in
    community B, and a stationed cadre of A with one contact."""
    worker_a1 = staff_user("wg_a1", Role.GRID_WORKER, grid_cell=space.a1)
    worker_a2 = staff_user("wg_a2", Role.GRID_WORKER, grid_cell=space.a2)
    worker_b1 = staff_user("wg_b1", Role.GRID_WORKER, grid_cell=space.b1)
    cadre_user = staff_user("zd_a", Role.STATIONED_CADRE, community=space.a)
    cadre = StationedCadreFactory(community=space.a, name="驻点甲", user=cadre_user)
    return {
        "a1": make_visit(at=space.house_a1, reporter=worker_a1, reporter_name="张网格"),
        "a2": make_visit(at=space.house_a2, reporter=worker_a2, reporter_name="李网格"),
        "b1": make_visit(at=space.house_b1, reporter=worker_b1, reporter_name="赵网格"),
        "contact": make_contact(cadre=cadre, building=space.house_a1, reporter=cadre_user),
        "cadre": cadre,
        "worker_a1": worker_a1,
    }


# --- reach ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_grid_worker_sees_only_the_visits_of_their_grid(space, events):
    client = signed_in(events["worker_a1"])
    html = client.get(VISITS).content.decode()
    assert "张网格" in html
    assert "李网格" not in html and "赵网格" not in html
    assert client.get(f"{VISITS}{events['a1'].pk}/change/").status_code == 200
    # Another grid's visit is not there, exactly like a missing one (the admin redirects with
    # "不存在"); a made-up id answers the same.
    for pk in (events["a2"].pk, events["b1"].pk, uuid4()):
        response = client.get(f"{VISITS}{pk}/change/")
        assert response.status_code == 302 and response.url == "/admin/"
    # A grid worker does not see the community-wide station work.
    assert "王阿姨" not in client.get(CONTACTS).content.decode()


@pytest.mark.django_db
def test_community_and_street_admins_see_their_units(space, events):
    community_admin = staff_user("sq_a", Role.COMMUNITY_ADMIN, community=space.a)
    street_admin = staff_user("jd", Role.STREET_ADMIN, street=space.street)

    # A visit in another street, which neither of them reaches.
    elsewhere = CommunityFactory()
    make_visit(
        at=space.house_b1,
        reporter=events["worker_a1"],
        reporter_name="外街人",
        community=elsewhere,
        grid_cell=None,
        building=None,
    )

    html = signed_in(community_admin).get(VISITS).content.decode()
    assert "张网格" in html and "李网格" in html
    assert "赵网格" not in html and "外街人" not in html
    assert "王阿姨" in signed_in(community_admin).get(CONTACTS).content.decode()

    response = signed_in(street_admin).get(VISITS)
    html = response.content.decode()
    assert all(name in html for name in ("张网格", "李网格", "赵网格")) and "外街人" not in html
    assert signed_in(street_admin).get(f"{VISITS}{events['b1'].pk}/change/").status_code == 200
    # The community filter offers the communities in reach, not every one in the database.
    community_filter = next(
        f for f in response.context["cl"].filter_specs if getattr(f, "field_path", "") == "community"
    )
    assert sorted(pk for pk, _ in community_filter.lookup_choices) == sorted([space.a.pk, space.b.pk])
    assert elsewhere.name not in html


# --- read-only --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_events_cannot_be_added_changed_or_deleted_even_with_every_permission(space, events):
    # The community admin holds add/change/delete on the models: the records still stay as synced.
    user = staff_user(
        "sq_all", Role.COMMUNITY_ADMIN, perms=("view", "add", "change", "delete"), community=space.a
    )
    client = signed_in(user)
    visit, contact = events["a1"], events["contact"]

    page = client.get(f"{VISITS}{visit.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="_save"' not in html and "<textarea" not in html  # view mode
    for label in (
        "发生时间",
        "记录人",
        "户（门牌/房号）",
        "定位精度（米）",
        "定位与对象距离",
        "采集坐标系",
        "WGS-84（卫星定位原始坐标）",
    ):
        assert label in html, label
    assert "了解独居老人情况" in html and "payload" not in html.lower()

    response = client.post(f"{VISITS}{visit.pk}/change/", {"summary": "改写", "household": "9单元"})
    assert response.status_code == 403
    assert client.post(f"{VISITS}{visit.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get(f"{VISITS}add/").status_code == 403
    assert client.post(f"{VISITS}add/", {"kind": "household", "summary": "补录"}).status_code == 403
    # No bulk delete action either.
    response = client.post(
        VISITS, {"action": "delete_selected", "_selected_action": [visit.pk], "post": "yes"}
    )
    assert Visit.objects.count() == 3
    visit.refresh_from_db()
    assert (visit.summary, visit.household) == ("了解独居老人情况", "2单元301")

    html = client.get(f"{CONTACTS}{contact.pk}/change/").content.decode()
    assert "在驻点社区内" in html and "wangge-readonly-map" in html and 'name="_save"' not in html
    assert client.post(f"{CONTACTS}{contact.pk}/change/", {"contact_name": "别人"}).status_code == 403
    assert client.get(f"{CONTACTS}add/").status_code == 403
    contact.refresh_from_db()
    assert contact.contact_name == "王阿姨"


# --- what the clerk looks for -----------------------------------------------------------------


@pytest.mark.django_db
def test_records_far_from_their_subject_are_flagged(space, events):
    far = make_visit(at=space.house_a1, reporter=events["worker_a1"], offset_m=850, reporter_name="远处人")
    client = signed_in(events["worker_a1"])
    html = client.get(VISITS).content.decode()
    assert html.count("距离过远</span>") == 1  # only the 850 m one; the 10 m one is not flagged
    assert "850 米" in html and "10 米" in html and "±8 米" in html
    # The filter finds exactly the far ones.
    response = client.get(VISITS, {"far": "yes"})
    assert [v.pk for v in response.context["cl"].result_list] == [far.pk]
    # And the record's own page says so beside its map.
    page = client.get(f"{VISITS}{far.pk}/change/").content.decode()
    assert "距离过远" in page and "wangge-readonly-map" in page


@pytest.mark.django_db
def test_list_is_newest_first_and_searchable(space, events):
    older = make_visit(
        at=space.house_a1,
        reporter=events["worker_a1"],
        reporter_name="早先人",
        occurred_at=timezone.now() - timedelta(days=3),
    )
    client = signed_in(events["worker_a1"])
    rows = list(client.get(VISITS).context["cl"].result_list)
    assert [v.pk for v in rows] == [events["a1"].pk, older.pk]
    assert [v.pk for v in client.get(VISITS, {"q": "早先"}).context["cl"].result_list] == [older.pk]
    found = client.get(VISITS, {"q": space.house_a1.code}).context["cl"].result_list
    assert {v.pk for v in found} == {events["a1"].pk, older.pk}
    assert client.get(VISITS, {"kind__exact": "building"}).context["cl"].result_count == 0


@pytest.mark.django_db
def test_list_queries_do_not_grow_with_rows(space, events):
    community_admin = staff_user("sq_q", Role.COMMUNITY_ADMIN, community=space.a)
    client = signed_in(community_admin)
    budgets = {}
    for url in (VISITS, CONTACTS):
        with CaptureQueriesContext(connection) as one:
            assert client.get(url).status_code == 200
        budgets[url] = len(one.captured_queries)
    # A full page: 50 rows with different buildings, grids, enterprises-free households, cadres.
    reporter = events["worker_a1"]
    now = timezone.now()
    Visit.objects.bulk_create(
        Visit(
            id=uuid4(),
            payload_hash="x" * 64,
            occurred_at=now - timedelta(minutes=i + 5),
            reporter=reporter,
            reporter_name=f"批量{i}",
            kind=Visit.Kind.HOUSEHOLD,
            place=house.point,
            community=house.community,
            grid_cell=house.grid_cell,
            building=house,
            household=f"{i}号",
            distance_to_subject_m=float(i * 10),
            accuracy_m=5.0,
        )
        for i, house in enumerate([space.house_a1, space.house_a2] * 25)
    )
    cadres = [StationedCadreFactory(community=space.a) for _ in range(3)]
    for i in range(50):
        make_contact(cadre=cadres[i % 3], building=space.house_a2, reporter=reporter)
    for url in (VISITS, CONTACTS):
        with CaptureQueriesContext(connection) as full:
            response = client.get(url)
        assert len(response.context["cl"].result_list) == 50
        assert len(full.captured_queries) <= budgets[url], [q["sql"][:200] for q in full.captured_queries]
    assert max(budgets.values()) <= 15, budgets


@pytest.mark.django_db
def test_the_cadre_page_shows_this_months_duty_against_the_requirement(space, events):
    cadre, reporter = events["cadre"], events["cadre"].user
    now = timezone.localtime()
    today_9 = now.replace(hour=9, minute=0, second=0, microsecond=0)
    # Days of this month strictly before today are in this month unless today is the 1st.
    earlier = today_9 - timedelta(days=1) if now.day > 1 else today_9
    for when in (today_9, today_9.replace(hour=10), earlier):
        make_contact(
            cadre=cadre, building=space.house_a1, reporter=reporter, kind="check_in", occurred_at=when
        )
    make_contact(cadre=cadre, building=space.house_a1, reporter=reporter, kind="check_in", on_site=False)
    make_contact(cadre=cadre, building=space.house_a1, reporter=reporter, occurred_at=today_9)
    last_month = datetime.combine(now.date().replace(day=1) - timedelta(days=3), today_9.timetz())
    make_contact(cadre=cadre, building=space.house_a1, reporter=reporter, occurred_at=last_month)

    community_admin = staff_user("sq_c", Role.COMMUNITY_ADMIN, community=space.a)
    html = signed_in(community_admin).get(f"/admin/orgs/stationedcadre/{cadre.pk}/change/").content.decode()
    days = 2 if now.day > 1 else 1
    # The 9:00 contact, and events["contact"] of an hour ago unless that fell in last month.
    contacts = 1 + int(timezone.localtime(events["contact"].occurred_at).month == now.month)
    assert f"联系群众 {contacts} / {cadre.required_contacts_per_month} 次" in html
    assert f"在岗驻点 {days} / {cadre.required_days_per_month} 天" in html
    assert f"{CONTACTS}?cadre__exact={cadre.pk}" in html
    listed = signed_in(community_admin).get(CONTACTS, {"cadre__exact": cadre.pk}).context["cl"]
    assert listed.result_count == StationContact.objects.filter(cadre=cadre).count()


def test_the_cadre_list_shows_each_cadres_month_and_flags_those_behind(space, events):
    """A clerk scans the list: who keeps pace with the required days and contacts this month."""
    on_pace = StationedCadreFactory(
        community=space.a, name="驻点乙", required_days_per_month=1, required_contacts_per_month=1
    )
    reporter = events["cadre"].user
    now = timezone.localtime()
    for kind in (StationContact.Kind.CHECK_IN, StationContact.Kind.CONTACT):
        make_contact(cadre=on_pace, building=space.house_a1, reporter=reporter, kind=kind, occurred_at=now)
    StationedCadreFactory(community=space.a, name="驻点丙", required_days_per_month=8)

    admin_user = staff_user("sq_list", Role.COMMUNITY_ADMIN, community=space.a)
    response = signed_in(admin_user).get("/admin/orgs/stationedcadre/")
    rows = {
        row.name: row
        for row in response.context["cl"].result_list  # the annotated rows the page rendered
    }
    assert (rows["驻点乙"].month_days, rows["驻点乙"].month_contacts) == (1, 1)
    assert (rows["驻点丙"].month_days, rows["驻点丙"].month_contacts) == (0, 0)
    html = response.content.decode()
    assert "1 / 1" in html and "0 / 8" in html
    # Only the cadre with nothing done is behind an even pace.
    row_of = {name: html.split(name, 1)[1].split("</tr>", 1)[0] for name in ("驻点乙", "驻点丙")}
    assert "进度落后" not in row_of["驻点乙"] and "进度落后" in row_of["驻点丙"]


# --- in the browser ---------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_visit_page_shows_the_point_on_a_read_only_map(browser_page, space):
    worker = staff_user("wg_browser", Role.GRID_WORKER, grid_cell=space.a1)
    visit = make_visit(at=space.house_a1, reporter=worker, offset_m=300, reporter_name="张网格")

    s = browser_page
    s.admin_login("wg_browser", PASSWORD)
    s.goto(f"{VISITS}{visit.pk}/change/")
    page = s.page
    page.wait_for_selector(".wangge-readonly-map.leaflet-container", state="visible")
    assert "走访记录" in page.title()
    # The captured point is the one marker; community, grid, footprint and the line to the place
    # are drawn beneath it; nothing to draw with, nothing to save.
    marker = page.locator(".leaflet-marker-pane .leaflet-marker-icon")
    marker.wait_for(state="visible")
    assert marker.count() == 1
    assert page.locator(".leaflet-overlay-pane path").count() >= 4
    assert page.locator(".leaflet-draw-toolbar").count() == 0
    assert page.locator("input[name=_save]").count() == 0
    # Framed on the point and the place together, not on the point alone at street zoom.
    frame, pin = page.locator(".wangge-readonly-map").bounding_box(), marker.bounding_box()
    assert frame and pin and frame["x"] < pin["x"] < frame["x"] + frame["width"]
    line = page.locator(".leaflet-overlay-pane path.leaflet-interactive").bounding_box()
    assert line and line["width"] > 100  # 300 m shown as a line, not a dot
    assert "距离过远" in page.locator("body").inner_text()
    s.screenshot("admin_visit.png")

    # In the list the clerk spots it by the red marker.
    s.goto(VISITS)
    flag = page.locator("#result_list .wangge-far")
    assert flag.count() == 1 and flag.inner_text() == "距离过远"
    expect(flag).to_be_in_viewport()  # not scrolled off to the right of the table
    s.screenshot("admin_visits.png")

    assert s.external_requests() == []
    assert s.console_errors == []
