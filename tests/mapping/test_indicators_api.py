"""GET /api/indicators/?unit=CODE[&from=&to=]: the live figures and the daily history, scoped by reach;
bad parameters are 400 with a stable code; the schema carries every formula.

The scene is tests/mapping/test_indicators.py's, whose right answers are known; the clock is held
at its AT so "today" is the scene's day.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from grid.models import Role, RoleAssignment
from mapping import indicators
from mapping.models import IndicatorSnapshot
from tests.mapping.test_indicators import (
    AT,
    DAY,
    EXPECTED_A,
    EXPECTED_A1,
    EXPECTED_EMPTY,
    IScene,
    build_scene,
)

pytestmark = pytest.mark.django_db

URL = "/api/indicators/"


@pytest.fixture
def iscene(monkeypatch) -> IScene:
    monkeypatch.setattr("django.utils.timezone.now", lambda: AT)
    return build_scene()


def client_as(username: str, role: str | None = None, **unit) -> APIClient:
    user = User.objects.create_user(username=username)
    if role is not None:
        RoleAssignment.objects.create(user=user, role=role, **unit)
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_current_figures_and_history(iscene, django_assert_max_num_queries):
    w = iscene
    for back in (40, 2, 1, 0):
        indicators.indicator_snapshots_take(day=DAY - timedelta(days=back), at=AT - timedelta(days=back))
    client = client_as("street", Role.STREET_ADMIN, street=w.street)

    with django_assert_max_num_queries(8):
        response = client.get(URL, {"unit": w.a.code})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["unit"] == {"type": "community", "code": w.a.code, "name": w.a.name}
    assert body["indicators"] == EXPECTED_A
    # Without from/to: the 30 days up to today, oldest first (the snapshot 40 days back is older).
    assert body["history_from"] == str(DAY - timedelta(days=29))
    assert body["history_to"] == str(DAY)
    assert [h["day"] for h in body["history"]] == [str(DAY - timedelta(days=d)) for d in (2, 1, 0)]
    assert body["history"][-1]["indicators"] == EXPECTED_A  # today's snapshot = the live figures

    ranged = client.get(URL, {"unit": w.a1.code, "from": str(DAY - timedelta(days=1)), "to": str(DAY)})
    assert ranged.status_code == 200
    assert ranged.json()["indicators"] == EXPECTED_A1
    assert [h["day"] for h in ranged.json()["history"]] == [str(DAY - timedelta(days=1)), str(DAY)]

    only_old = client.get(URL, {"unit": w.street.code, "from": "2026-01-01", "to": "2026-02-28"})
    assert [h["day"] for h in only_old.json()["history"]] == [str(DAY - timedelta(days=40))]


def test_an_empty_community_answers_null_rates(iscene):
    client = client_as("street", Role.STREET_ADMIN, street=iscene.street)
    body = client.get(URL, {"unit": iscene.e.code}).json()
    assert body["indicators"] == EXPECTED_EMPTY
    assert body["indicators"]["household_visit_coverage"] == {"value": None, "numerator": 0, "denominator": 0}
    assert body["history"] == []


def _not_found(response) -> dict:
    assert response.status_code == 404, response.content
    assert response.json()["code"] == "not_found"
    return response.json()


def test_reach_a_grid_worker_asks_for_their_grid_only(iscene):
    w = iscene
    worker = client_as("worker", Role.GRID_WORKER, grid_cell=w.a1)
    assert worker.get(URL, {"unit": w.a1.code}).json()["indicators"] == EXPECTED_A1
    missing = _not_found(worker.get(URL, {"unit": "440803999999999"}))
    # The neighbouring grid, the worker's own community (its outline is visible to them, its data
    # is not) and the street: exactly like a code that does not exist.
    for code in (w.a2.code, w.a.code, w.street.code, w.e.code, "no-such-unit", "４４０８０３"):
        assert _not_found(worker.get(URL, {"unit": code})) == missing


def test_reach_a_community_admin_asks_for_the_community_and_its_grids(iscene):
    w = iscene
    admin = client_as("admin", Role.COMMUNITY_ADMIN, community=w.a)
    assert admin.get(URL, {"unit": w.a.code}).status_code == 200
    assert admin.get(URL, {"unit": w.a2.code}).status_code == 200
    _not_found(admin.get(URL, {"unit": w.street.code}))  # the street holds other communities' data
    _not_found(admin.get(URL, {"unit": w.e.code}))


def test_reach_roles_that_read_nothing(iscene):
    w = iscene
    assert APIClient().get(URL, {"unit": w.a.code}).status_code == 401
    assert client_as("norole").get(URL, {"unit": w.a.code}).status_code == 403
    assert client_as("operator", Role.OPERATOR).get(URL, {"unit": w.a.code}).status_code == 403
    leader = client_as("leader", Role.LEADER, street=w.street)
    assert leader.get(URL, {"unit": w.street.code}).status_code == 200


@pytest.mark.parametrize(
    ("query", "code", "field"),
    [
        ({}, "invalid_input", "unit"),
        ({"unit": ""}, "invalid_input", "unit"),
        ({"from": "2026-02-30"}, "invalid_input", "from"),
        ({"to": "16/03/2026"}, "invalid_input", "to"),
        ({"from": "2026-03-17", "to": "2026-03-16"}, "date_range_reversed", None),
        ({"from": "2026-03-17"}, "date_range_reversed", None),  # to defaults to today (16 March)
        ({"from": "2024-01-01", "to": "2026-03-16"}, "date_range_too_long", None),
    ],
)
def test_bad_parameters_are_400_with_a_stable_code(iscene, query, code, field):
    client = client_as("street", Role.STREET_ADMIN, street=iscene.street)
    query = {"unit": iscene.a.code, **query} if "unit" not in query and query else query
    before = IndicatorSnapshot.objects.count()
    response = client.get(URL, query)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert response.json()["message"]
    if field:
        assert field in response.json()["errors"]
    assert IndicatorSnapshot.objects.count() == before


def test_the_longest_range_is_accepted(iscene):
    client = client_as("street", Role.STREET_ADMIN, street=iscene.street)
    start = DAY - timedelta(days=730)
    response = client.get(URL, {"unit": iscene.a.code, "from": str(start), "to": str(DAY)})
    assert response.status_code == 200, response.content


def test_the_schema_states_every_formula():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    figures = schema["components"]["schemas"]["IndicatorFigures"]["properties"]
    for key, (name, formula) in indicators.FORMULAS.items():
        assert name in str(figures[key]) and formula in str(figures[key]), key
    assert "中位数" in str(figures["open_gaps"])
    parameters = {p["name"] for p in schema["paths"]["/api/indicators/"]["get"]["parameters"]}
    assert {"unit", "from", "to"} <= parameters


def test_a_history_at_the_start_of_the_calendar_is_not_an_overflow(iscene):
    client = client_as("street", Role.STREET_ADMIN, street=iscene.street)
    response = client.get(URL, {"unit": iscene.a.code, "to": "0001-01-05"})
    assert response.status_code == 200, response.content
    assert response.json()["history_from"] == "0001-01-01"
