"""The planners' page (/planning/, mapping/planning_views.py): who may open it, which community it
opens, what it hands the script, and the dashboard's link to it."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from grid.models import Role
from tests.factories import CommunityFactory, StreetFactory, multi, rect
from tests.mapping.plans_scene import PlanScene, X, Y, plan_scene_fixture  # noqa: F401 - fixture
from tests.people import signed_in, user_with

pytestmark = pytest.mark.django_db


def _config(response) -> dict:
    html = response.content.decode()
    marker = '<script id="planning-config" type="application/json">'
    start = html.index(marker) + len(marker)
    return json.loads(html[start : html.index("</script>", start)])


def _page(s: PlanScene) -> str:
    return f"/planning/{s.community.code}/"


def test_planners_and_street_admins_open_the_page_of_their_community(plan_scene: PlanScene):
    s = plan_scene
    for role in (Role.PLANNER, Role.STREET_ADMIN):
        client = signed_in(user_with(role, street=s.community.street))
        # /planning/ opens the first community they plan, keeping the query string.
        response = client.get("/planning/?plan=7")
        assert response.status_code == 302 and response.url == f"{_page(s)}?plan=7"
        response = client.get(_page(s))
        assert response.status_code == 200, role
        config = _config(response)
        assert [c["code"] for c in config["communities"]] == [s.community.code]
        community = config["community"]
        assert (community["code"], community["name"]) == (s.community.code, s.community.name)
        assert community["outline"]["type"] == "MultiPolygon"
        west, south, east, north = community["bbox"]
        assert (west, south, east, north) == pytest.approx((X, Y, X + 0.012, Y + 0.004))
        assert (config["households_min"], config["households_max"]) == (300, 500)
        assert config["plans_url"] == "/api/plans/"
        assert config["suggest_url"] == "/api/plans/suggest/"
        assert config["tiles"] == "/tiles/{layer}/{z}/{x}/{y}.mvt"
        html = response.content.decode()
        assert 'name="csrf-token"' in html and "mapping/planning.js" in html
        # Nothing from outside: no absolute URL in the page, the map library from our static files.
        assert "http://" not in html and "https://" not in html
        assert "vendor/maplibre/maplibre-gl.mjs" in html


def test_a_planner_lands_on_the_planning_page_after_signing_in(plan_scene: PlanScene):
    planner = signed_in(user_with(Role.PLANNER, street=plan_scene.community.street))
    response = planner.get("/")
    assert response.status_code == 302 and response.url == "/planning/"


def test_roles_that_do_not_plan_are_refused(plan_scene: PlanScene):
    s = plan_scene
    refused = [
        user_with(Role.GRID_WORKER, grid_cell=s.a),
        user_with(Role.LEADER, street=s.community.street),
        user_with(Role.COMMUNITY_ADMIN, community=s.community),
        user_with(Role.OPERATOR, staff=True),
    ]
    for user in refused:
        client = signed_in(user)
        for path in ("/planning/", _page(s)):
            response = client.get(path)
            assert response.status_code == 403, (user.role_assignments.first().role, path)
            assert "网格规划仅对规划人员和街道管理员开放" in response.content.decode()


def test_the_page_needs_a_sign_in():
    response = Client().get("/planning/")
    assert response.status_code == 302 and response.url == "/admin/login/?next=/planning/"


def test_a_community_outside_the_planning_reach_is_not_found(plan_scene: PlanScene):
    s = plan_scene
    elsewhere = StreetFactory(geom=multi(rect(X + 0.1, Y, X + 0.2, Y + 0.1)))
    other = CommunityFactory(street=elsewhere, geom=multi(rect(X + 0.1, Y, X + 0.15, Y + 0.05)))
    planner = signed_in(user_with(Role.PLANNER, street=s.community.street))
    assert planner.get(f"/planning/{other.code}/").status_code == 404
    assert planner.get("/planning/440803999999/").status_code == 404
    # A planner of the other street sees only that street's community.
    theirs = signed_in(user_with(Role.PLANNER, street=elsewhere))
    assert theirs.get(_page(s)).status_code == 404
    assert [c["code"] for c in _config(theirs.get(f"/planning/{other.code}/"))["communities"]] == [other.code]


def test_the_dashboard_links_to_the_page_only_for_those_who_plan(plan_scene: PlanScene):
    s = plan_scene
    planner = signed_in(user_with(Role.STREET_ADMIN, street=s.community.street))
    assert 'href="/planning/">网格规划</a>' in planner.get("/dashboard/").content.decode()
    leader = signed_in(user_with(Role.LEADER, street=s.community.street))
    assert "网格规划" not in leader.get("/dashboard/").content.decode()
