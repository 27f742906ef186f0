"""The admin of space: writes through the services (HTTP client) and the map pages in a real
headless Chromium that must not make a single request outside this machine."""

import json
import re
from datetime import date

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from grid import services
from grid.models import Building, GridBoundary, Role
from tests.factories import ORIGIN, BuildingFactory, GridCellFactory, ServiceCentreFactory, rect, square
from tests.people import grant

X0, Y0 = ORIGIN
PASSWORD = "admin-pass-123"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2 costs ~0.3 s per user created or logged in; these tests are not about hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def geojson(poly) -> str:
    return poly.geojson


@pytest.fixture
def cell_with_building(db):
    cell = GridCellFactory(boundary=square(X0, Y0, 0.005), valid_from=date(2024, 1, 1))
    building = BuildingFactory(
        community=cell.community, geom=square(X0 + 0.001, Y0 + 0.001, 0.0003), name="1栋"
    )
    services.buildings_reassign(community_ids=[cell.community_id])
    building.refresh_from_db()
    assert building.grid_cell_id == cell.id
    return cell, building


def _form_errors(response):
    context = getattr(response, "context", None)
    return (
        context["adminform"].form.errors.as_json()
        if context and "adminform" in context
        else response.status_code
    )


def boundary_rows(cell):
    return list(GridBoundary.objects.filter(cell=cell).order_by("valid").values_list("valid", "note"))


# --- server side: writes go through the services -----------------------------------------------


@pytest.mark.django_db
def test_adding_a_boundary_version_redraws_through_the_service(admin_client, cell_with_building):
    cell, building = cell_with_building
    # Shrink the grid so the building falls outside it.
    response = admin_client.post(
        "/admin/grid/gridboundary/add/",
        {
            "cell": cell.pk,
            "valid_from": "2025-03-01",
            "note": "拆分",
            "geom": geojson(square(X0 + 0.003, Y0, 0.002)),
        },
    )
    assert response.status_code == 302, _form_errors(response)
    versions = GridBoundary.objects.filter(cell=cell).order_by("valid")
    assert [(v.valid.lower, v.valid.upper) for v in versions] == [
        (date(2024, 1, 1), date(2025, 3, 1)),
        (date(2025, 3, 1), None),
    ]
    assert versions[1].note == "拆分"
    assert versions[1].parts.exists()  # the service also subdivided it
    building.refresh_from_db()
    assert building.grid_cell_id is None  # and reassigned the community's buildings


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("post", "field", "text"),
    [
        # A bow-tie polygon crosses itself.
        (
            {
                "valid_from": "2025-03-01",
                "geom": json.dumps(
                    {
                        "type": "Polygon",
                        "coordinates": [
                            [[X0, Y0], [X0 + 0.01, Y0 + 0.01], [X0 + 0.01, Y0], [X0, Y0 + 0.01], [X0, Y0]]
                        ],
                    }
                ),
            },
            "geom",
            "图形无效",
        ),
        # Before the version in force starts: history is not rewritten.
        (
            {"valid_from": "2023-01-01", "geom": geojson(square(X0, Y0, 0.004))},
            "valid_from",
            "晚于 2023-01-01",
        ),
    ],
)
def test_a_refused_boundary_shows_the_reason_and_writes_nothing(
    admin_client, cell_with_building, post, field, text
):
    cell, building = cell_with_building
    before = boundary_rows(cell)
    response = admin_client.post("/admin/grid/gridboundary/add/", {"cell": cell.pk, "note": "", **post})
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert field in form.errors
    assert text in " ".join(form.errors[field])
    assert boundary_rows(cell) == before
    building.refresh_from_db()
    assert building.grid_cell_id == cell.id


@pytest.mark.django_db
def test_boundary_versions_are_read_only(admin_client, cell_with_building):
    cell, _ = cell_with_building
    version = GridBoundary.objects.get(cell=cell)
    page = admin_client.get(f"/admin/grid/gridboundary/{version.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="_save"' not in html  # view only
    assert "wangge-readonly-map" in html  # but still a map
    response = admin_client.post(
        f"/admin/grid/gridboundary/{version.pk}/change/",
        {"cell": cell.pk, "note": "改写", "geom": geojson(square(X0, Y0, 0.001))},
    )
    assert response.status_code == 403
    assert (
        admin_client.post(f"/admin/grid/gridboundary/{version.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert GridBoundary.objects.get(pk=version.pk).note == ""
    # The grid's page lists its versions read-only.
    html = admin_client.get(f"/admin/grid/gridcell/{cell.pk}/change/").content.decode()
    assert "边界版本" in html and "gridboundary_set-0-valid" not in html and "至今" in html
    assert f"/admin/grid/gridboundary/add/?cell={cell.pk}" in html
    # Deleting a grid would take its history with it: not offered.
    assert admin_client.post(f"/admin/grid/gridcell/{cell.pk}/delete/", {"post": "yes"}).status_code == 403


@pytest.mark.django_db
def test_saving_a_building_reassigns_its_grid(admin_client, cell_with_building):
    cell, building = cell_with_building
    far = square(X0 + 0.008, Y0 + 0.008, 0.0003)  # inside the community, outside the grid
    data = {
        "code": building.code,
        "name": building.name,
        "address": "",
        "kind": "residential",
        "community": building.community_id,
        "households": 20,
        "floors": 6,
        "geom": geojson(far),
    }
    response = admin_client.post(f"/admin/grid/building/{building.pk}/change/", data)
    assert response.status_code == 302, _form_errors(response)
    building.refresh_from_db()
    assert building.grid_cell_id is None

    data.update(code="NEW-1", geom=geojson(square(X0 + 0.002, Y0 + 0.002, 0.0003)))
    assert admin_client.post("/admin/grid/building/add/", data).status_code == 302
    assert Building.objects.get(code="NEW-1").grid_cell_id == cell.id


@pytest.mark.django_db
def test_building_grid_and_point_cannot_be_written(admin_client, cell_with_building):
    cell, building = cell_with_building
    other = GridCellFactory(community=cell.community, boundary=rect(X0 + 0.005, Y0, X0 + 0.01, Y0 + 0.005))
    data = {
        "code": building.code,
        "name": "改名",
        "kind": "residential",
        "community": building.community_id,
        "households": 1,
        "floors": 1,
        "geom": geojson(building.geom),
        "grid_cell": other.pk,
        "point": "POINT (0 0)",
    }
    assert admin_client.post(f"/admin/grid/building/{building.pk}/change/", data).status_code == 302
    building.refresh_from_db()
    assert building.name == "改名"
    assert building.grid_cell_id == cell.id
    assert building.point.within(building.geom)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("/admin/grid/street/?q=4408", ["街道编码", "社区数"]),
        ("/admin/grid/community/", ["社区编码", "网格数", "楼栋数"]),
        ("/admin/grid/gridcell/?q=第", ["网格编码", "责任主体", "户数"]),
        ("/admin/grid/gridboundary/?current=yes", ["网格编码", "生效日期", "现行"]),
        ("/admin/grid/building/?kind=residential", ["楼栋编码", "所属网格", "户数"]),
        ("/admin/grid/servicecentre/", ["编码", "服务半径（米）"]),
    ],
)
def test_changelists_are_chinese_and_filterable(admin_client, cell_with_building, url, headers):
    ServiceCentreFactory(street=cell_with_building[0].community.street)
    response = admin_client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    for header in headers:
        assert header in html, header


@pytest.mark.django_db
def test_changelist_queries_do_not_grow_with_rows(
    admin_client, cell_with_building, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    cell, _ = cell_with_building
    urls = [
        "/admin/grid/gridcell/",
        "/admin/grid/building/",
        "/admin/grid/gridboundary/",
        "/admin/grid/community/",
    ]
    budgets = {}
    for url in urls:
        with CaptureQueriesContext(connection) as one:
            assert admin_client.get(url).status_code == 200
        budgets[url] = len(one.captured_queries)
    for i in range(5):
        GridCellFactory(community=cell.community, boundary=square(X0 + 0.005 + i * 0.001, Y0, 0.001))
        BuildingFactory(community=cell.community)
    services.buildings_reassign(community_ids=[cell.community_id])
    for url in urls:
        with django_assert_max_num_queries(budgets[url]):
            admin_client.get(url)


@pytest.mark.django_db
def test_admin_lists_are_limited_to_the_users_reach(client, cell_with_building):
    from django.contrib.auth.models import Permission

    cell, building = cell_with_building
    elsewhere = BuildingFactory(code="ELSEWHERE")  # another community
    staff = get_user_model().objects.create_user("shequ", password=PASSWORD, is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(codename__in=["view_building", "change_building"]))
    grant(staff, Role.COMMUNITY_ADMIN, community=cell.community)
    client.force_login(staff)
    html = client.get("/admin/grid/building/").content.decode()
    assert building.code in html and "ELSEWHERE" not in html
    assert client.get(f"/admin/grid/building/{building.pk}/change/").status_code == 200
    # Outside the reach the object is simply not there (the admin redirects with "不存在").
    assert client.get(f"/admin/grid/building/{elsewhere.pk}/change/").status_code == 302
    # Only communities in reach are offered.
    form = client.get(f"/admin/grid/building/{building.pk}/change/").context["adminform"].form
    assert list(form.fields["community"].queryset) == [cell.community]


# --- in the browser --------------------------------------------------------------------------


@pytest.fixture
def superuser(transactional_db):
    return get_user_model().objects.create_superuser("admin", "admin@example.com", PASSWORD)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_admin_map_pages_render_in_chinese_without_leaving_the_machine(browser_page, superuser):
    cell = GridCellFactory(boundary=square(X0, Y0, 0.005), name="海滨网格")
    building = BuildingFactory(
        community=cell.community, geom=square(X0 + 0.002, Y0 + 0.002, 0.0003), name="3栋"
    )
    services.buildings_reassign(community_ids=[cell.community_id])

    s = browser_page
    s.admin_login("admin", PASSWORD)
    assert "站点管理" in s.page.content() or "管理首页" in s.page.title()

    s.goto(f"/admin/grid/building/{building.pk}/change/")
    page = s.page
    page.wait_for_selector(".leaflet-container", state="visible")
    # The footprint is drawn (interactive, editable) over the grid/community outlines (not).
    page.wait_for_selector("path.leaflet-interactive")
    assert page.locator("path.leaflet-interactive").count() == 1
    assert page.locator(".leaflet-overlay-pane path").count() >= 3
    assert "楼栋" in page.title()
    assert page.locator("input[name=_save]").get_attribute("value") == "保存"
    assert page.locator(".leaflet-draw-edit-edit").get_attribute("title") == "编辑图形"
    # Fitted to the building, not left at the default street-wide zoom.
    box = page.locator("path.leaflet-interactive").bounding_box()
    assert box is not None and box["width"] > 40 and box["height"] > 40  # ~2 px at the default zoom
    s.screenshot("admin_building.png")

    s.goto(f"/admin/grid/gridboundary/add/?cell={cell.pk}")
    page.wait_for_selector(".leaflet-container", state="visible")
    assert page.locator(".leaflet-draw-draw-polygon").get_attribute("title") == "画多边形"
    assert page.locator("input[name=_save]").get_attribute("value") == "保存"
    assert "网格边界版本" in page.title()
    # The grid's current shape and its community are shown for reference.
    assert page.locator(".leaflet-overlay-pane path").count() >= 2
    s.screenshot("admin_boundary_add.png")

    # The grid's page: its current shape on a read-only map (no drawing toolbar), versions below.
    services.grid_boundary_set(
        cell=cell, geom=square(X0, Y0, 0.004), valid_from=date(2025, 1, 1), note="收缩"
    )
    s.goto(f"/admin/grid/gridcell/{cell.pk}/change/")
    page.wait_for_selector(".leaflet-container", state="visible")
    assert page.locator(".leaflet-overlay-pane path").count() >= 2
    assert page.locator(".leaflet-draw-draw-polygon").count() == 0
    assert page.locator(".inline-related tbody tr.has_original").count() == 2
    assert "收缩" in page.locator(".inline-related").inner_text()
    s.screenshot("admin_gridcell.png")

    assert s.external_requests() == []
    assert all(u.startswith(s.base_url) or u.startswith(("data:", "blob:")) for u in s.requests)
    assert s.console_errors == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_drawing_a_new_boundary_in_the_browser_saves_a_version(browser_page, superuser):
    cell = GridCellFactory(boundary=square(X0, Y0, 0.005), valid_from=date(2024, 1, 1))
    s = browser_page
    s.admin_login("admin", PASSWORD)
    s.goto(f"/admin/grid/gridboundary/add/?cell={cell.pk}")
    page = s.page
    page.wait_for_selector(".leaflet-container", state="visible")
    page.fill("#id_valid_from", "2025-06-01")
    page.fill("#id_note", "浏览器绘制")

    page.click(".leaflet-draw-draw-polygon")
    box = page.locator(".leaflet-container").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    corners = [(cx - 60, cy - 60), (cx + 60, cy - 60), (cx + 60, cy + 60), (cx - 60, cy + 60)]
    vertices = page.locator(".leaflet-marker-pane .leaflet-editing-icon")
    # The map must stand still: Leaflet.draw takes a vertex only when the press lands on its
    # cursor marker, which a zoom or pan still running would carry away from the pointer.
    expect(page.locator(".leaflet-zoom-anim, .leaflet-pan-anim")).to_have_count(0)
    for n, (x, y) in enumerate(corners, start=1):
        for _attempt in range(3):
            # Two moves: the cursor marker follows the pointer on mousemove, then the press hits it.
            page.mouse.move(x + 5, y + 5)
            page.mouse.move(x, y)
            page.mouse.click(x, y)
            # A press that missed the marker leaves no vertex; give a slow page 2 s to show
            # one before pressing again, so a late vertex is not doubled.
            try:
                expect(vertices).to_have_count(n, timeout=2_000)
                break
            except AssertionError:
                continue
        # Wait for Leaflet.draw to take the vertex before the next click: under load a click
        # arriving early is read as a double click and ends the shape too soon.
        expect(vertices).to_have_count(n, timeout=10_000)
        page.wait_for_timeout(400)
    vertices.first.click()  # close the ring on the first vertex
    # A locator assertion, not wait_for_function: a string predicate is run through eval, which
    # the page's Content Security Policy rightly forbids.
    expect(page.locator("#id_geom")).to_have_value(re.compile("Polygon"), timeout=10_000)

    with page.expect_navigation(wait_until="load"):
        page.click("input[name=_save]")
    assert "/admin/grid/gridboundary/" in page.url and "/add/" not in page.url
    current = GridBoundary.objects.get(cell=cell, valid__upper_inf=True)
    assert current.valid.lower == date(2025, 6, 1)
    assert current.note == "浏览器绘制"
    assert current.geom.valid and current.geom.geom_type == "MultiPolygon"
    assert s.external_requests() == []
