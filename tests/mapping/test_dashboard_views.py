"""The street office's page and what it stands on: where `/` and the sign-in send each role, the
page's sign-in and CSP, the search API's scoping and refusals, and the indicators of every grid
cell that the map shades (mapping/views.py, mapping/dashboard.py, mapping/dashboard_apis.py)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse

from grid.models import Role
from tests.factories import BuildingFactory, square
from tests.mapping.conftest import X, Y
from tests.people import api_client, signed_in, user_with

pytestmark = pytest.mark.django_db


def _planner_home() -> str:
    # Planners land on /planning/ once that page exists, on the dashboard until then.
    try:
        return reverse("planning")
    except NoReverseMatch:
        return "/dashboard/"


# --- where each user lands ---------------------------------------------------------------------


def test_home_sends_every_role_to_its_own_page(scene):
    s = scene
    cases = [
        (user_with(Role.STREET_ADMIN, street=s.street), "/dashboard/"),
        (user_with(Role.COMMUNITY_ADMIN, community=s.a), "/dashboard/"),
        (user_with(Role.LEADER, street=s.street), "/dashboard/"),
        (user_with(Role.PLANNER, street=s.street), _planner_home()),
        (user_with(Role.GRID_WORKER, grid_cell=s.a1), "/tablet/"),
        (user_with(Role.STATIONED_CADRE, community=s.a), "/tablet/"),
        (user_with(Role.OPERATOR, staff=True), "/admin/"),
    ]
    for user, target in cases:
        response = signed_in(user).get("/")
        assert response.status_code == 302 and response.url == target, (
            user.role_assignments.first().role,
            response,
        )


def test_a_wider_role_wins_over_a_field_role_and_a_superuser_gets_the_map(scene):
    both = user_with(Role.GRID_WORKER, grid_cell=scene.a1)
    from tests.people import grant

    grant(both, Role.COMMUNITY_ADMIN, community=scene.a)
    assert signed_in(both).get("/").url == "/dashboard/"
    boss = get_user_model().objects.create_superuser("boss", password=None)
    assert signed_in(boss).get("/").url == "/dashboard/"


def test_home_asks_a_stranger_to_sign_in_and_tells_a_user_without_role_why(scene):
    response = Client().get("/")
    assert response.status_code == 302 and response.url == "/admin/login/?next=/"
    nobody = signed_in(user_with(None))
    response = nobody.get("/")
    assert response.status_code == 403
    assert "还没有可用的角色" in response.content.decode()


def test_signing_in_without_next_lands_on_home_and_an_explicit_next_still_wins(scene):
    user_with(
        Role.STREET_ADMIN, street=scene.street, username="jiedao", password="pw-jiedao-2026", staff=True
    )
    form = Client().get("/admin/login/").content.decode()
    assert 'name="next" value="/"' in form
    response = Client().post(
        "/admin/login/", {"username": "jiedao", "password": "pw-jiedao-2026", "next": "/"}
    )
    assert response.status_code == 302 and response.url == "/"
    response = Client().post(
        "/admin/login/?next=/tablet/",
        {"username": "jiedao", "password": "pw-jiedao-2026", "next": "/tablet/"},
    )
    assert response.status_code == 302 and response.url == "/tablet/"


# --- the page ------------------------------------------------------------------------------------


def test_the_page_needs_a_sign_in_and_a_reading_role(scene):
    response = Client().get("/dashboard/")
    assert response.status_code == 302 and response.url == "/admin/login/?next=/dashboard/"
    operator = signed_in(user_with(Role.OPERATOR, staff=True))
    assert operator.get("/dashboard/").status_code == 403


def _config(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="dashboard-config" type="application/json">') + len(
        '<script id="dashboard-config" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


def test_the_page_starts_from_the_units_held_wholly_and_loads_nothing_from_outside(scene):
    admin = signed_in(user_with(Role.STREET_ADMIN, street=scene.street))
    response = admin.get("/dashboard/")
    assert response.status_code == 200
    config = _config(response)
    assert [r["code"] for r in config["roots"]] == [scene.street.code]
    west, south, east, north = config["extent"]
    assert west == pytest.approx(X) and south == pytest.approx(Y)
    assert east == pytest.approx(X + 0.06) and north == pytest.approx(Y + 0.01)
    assert config["tiles"] == "/tiles/{layer}/{z}/{x}/{y}.mvt"
    assert config["basemap"] == ""
    html = response.content.decode()
    assert "http://" not in html and "https://" not in html
    csp = response["Content-Security-Policy"]
    # MapLibre 6 starts its worker from its own file: the page needs no blob: worker, no eval.
    assert "blob:" not in csp.split("script-src")[1].split(";")[0]
    assert "unsafe-eval" not in csp and "worker-src" not in csp

    # A community secretary starts from the community, a grid worker (were they to open it) from the grid.
    secretary = signed_in(user_with(Role.COMMUNITY_ADMIN, community=scene.a))
    assert [r["code"] for r in _config(secretary.get("/dashboard/"))["roots"]] == [scene.a.code]
    worker = signed_in(user_with(Role.GRID_WORKER, grid_cell=scene.a1))
    roots = _config(worker.get("/dashboard/"))["roots"]
    assert [(r["type"], r["code"]) for r in roots] == [("grid_cell", scene.a1.code)]
    assert roots[0]["bbox"] == pytest.approx([X, Y, X + 0.005, Y + 0.01])


def test_a_basemap_widens_connect_src_for_this_page_only(scene, settings):
    settings.BASEMAP_TILES_URL = "http://tiles.intranet/{z}/{x}/{y}.png"
    admin = signed_in(user_with(Role.STREET_ADMIN, street=scene.street))
    page_csp = admin.get("/dashboard/")["Content-Security-Policy"]
    connect = page_csp.split("connect-src")[1].split(";")[0]
    assert "http://tiles.intranet" in connect
    # Any other page keeps the global policy.
    other = admin.get("/admin/")["Content-Security-Policy"]
    assert "tiles.intranet" not in other.split("connect-src")[1].split(";")[0]


# --- search ---------------------------------------------------------------------------------------


def test_a_grid_worker_cannot_find_another_grids_building(scene):
    s = scene
    worker = api_client(user_with(Role.GRID_WORKER, grid_cell=s.a1))
    street_admin = api_client(user_with(Role.STREET_ADMIN, street=s.street))
    for q in (s.h3.code, s.h3.name):
        hits = worker.get("/api/search/", {"q": q}).json()["results"]
        assert s.h3.code not in {h["code"] for h in hits}, q
        assert s.h3.code in {h["code"] for h in street_admin.get("/api/search/", {"q": q}).json()["results"]}
    own = worker.get("/api/search/", {"q": s.h1.code}).json()["results"]
    assert [(h["type"], h["code"]) for h in own] == [("building", s.h1.code)]
    west, south, east, north = own[0]["bbox"]
    assert west == pytest.approx(X + 0.001) and north == pytest.approx(Y + 0.0013)
    # Its own grid is found by code, with the grid's current boundary as extent.
    cell = worker.get("/api/search/", {"q": s.a1.code}).json()["results"]
    assert cell[0]["type"] == "grid_cell" and cell[0]["bbox"] == pytest.approx([X, Y, X + 0.005, Y + 0.01])
    assert s.a2.code not in {
        h["code"] for h in worker.get("/api/search/", {"q": s.a2.code}).json()["results"]
    }


def test_search_finds_units_organisations_and_enterprises_by_name_within_reach(scene):
    s = scene
    admin = api_client(user_with(Role.STREET_ADMIN, street=s.street))
    hits = admin.get("/api/search/", {"q": s.a.name}).json()["results"]
    assert ("community", s.a.code) in {(h["type"], h["code"]) for h in hits}
    org = admin.get("/api/search/", {"q": s.a1_branch.name}).json()["results"]
    assert ("organisation", s.a1_branch.code) in {(h["type"], h["code"]) for h in org}
    # A grid branch is found where it hangs: its grid's extent.
    branch = next(h for h in org if h["code"] == s.a1_branch.code)
    assert branch["bbox"] == pytest.approx([X, Y, X + 0.005, Y + 0.01])
    firm = admin.get("/api/search/", {"q": "空白公司"}).json()["results"]
    assert [(h["type"], h["label"]) for h in firm] == [("enterprise", "空白公司")]


def test_search_answers_at_most_twenty_in_a_bounded_number_of_queries(scene):
    for i in range(30):
        BuildingFactory(community=scene.a, name=f"同名楼{i}", geom=square(X + 0.0001 * i, Y + 0.009, 0.00005))
    admin = api_client(user_with(Role.STREET_ADMIN, street=scene.street))
    with CaptureQueriesContext(connection) as queries:
        response = admin.get("/api/search/", {"q": "同名楼"})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 20
    assert len(queries) <= 12, [q["sql"][:120] for q in queries.captured_queries]


@pytest.mark.parametrize("params", [{}, {"q": ""}, {"q": "   "}, {"q": "x" * 65}, {"q": "a\x00b"}])
def test_a_bad_query_is_a_400_with_its_code(scene, params):
    admin = api_client(user_with(Role.STREET_ADMIN, street=scene.street))
    response = admin.get("/api/search/", params)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_input" and "q" in body["errors"]


def test_search_needs_a_reading_role(scene):
    assert api_client().get("/api/search/", {"q": "海"}).status_code in (401, 403)
    assert api_client(user_with(Role.OPERATOR)).get("/api/search/", {"q": "海"}).status_code == 403


# --- every grid cell's indicators, for the shading --------------------------------------------------


def test_grid_cell_indicators_are_those_of_the_indicators_api_for_the_cells_in_reach(scene):
    s = scene
    admin = api_client(user_with(Role.STREET_ADMIN, street=s.street))
    with CaptureQueriesContext(connection) as queries:
        response = admin.get("/api/indicators/grid-cells/")
    # The reach, the cells, one indicators statement for all of them: not one per cell.
    assert len(queries) <= 6, [q["sql"][:120] for q in queries.captured_queries]
    rows = {r["code"]: r for r in response.json()["results"]}
    assert set(rows) == {s.a1.code, s.a2.code}
    assert rows[s.a1.code]["id"] == s.a1.pk  # the id the grid_cells tiles carry
    one = admin.get("/api/indicators/", {"unit": s.a2.code}).json()["indicators"]
    assert rows[s.a2.code]["indicators"] == one
    worker = api_client(user_with(Role.GRID_WORKER, grid_cell=s.a1))
    assert [r["code"] for r in worker.get("/api/indicators/grid-cells/").json()["results"]] == [s.a1.code]
    # Narrowed to a community; one out of reach (or unknown) narrows to nothing.
    assert len(admin.get("/api/indicators/grid-cells/", {"community": s.b.code}).json()["results"]) == 0
    assert (
        worker.get("/api/indicators/grid-cells/", {"community": s.a.code}).json()["results"][0]["code"]
        == s.a1.code
    )
