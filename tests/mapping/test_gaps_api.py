"""GET /api/gaps/ and /api/gaps/summary/ on the hand-built street: scoped by reach, filtered,
paginated, personal data masked, a bounded number of queries."""

from __future__ import annotations

from datetime import timedelta

import pytest

from grid.models import Role
from mapping.models import Gap
from mapping.services import gaps_recompute
from orgs import services as org_services
from tests.mapping.conftest import AT, Scene
from tests.people import api_client, user_with

K = Gap.Kind
URL = "/api/gaps/"
SUMMARY = "/api/gaps/summary/"
pytestmark = pytest.mark.django_db


@pytest.fixture
def computed(scene: Scene) -> Scene:
    gaps_recompute(community_ids=None, at=AT)
    return scene


def features(user, **params) -> list[dict]:
    response = api_client(user).get(URL, params)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["type"] == "FeatureCollection"
    return body["features"]


def kinds_and_subjects(feats: list[dict]) -> set[tuple[str, str]]:
    return {(f["properties"]["kind"], f["properties"]["subject_code"] or f["properties"]["subject_label"]) for f in feats}


def test_a_grid_worker_sees_the_gaps_of_their_grid_only(computed: Scene):
    s = computed
    worker = user_with(Role.GRID_WORKER, grid_cell=s.a2)
    seen = kinds_and_subjects(features(worker))
    assert seen == {
        (K.GRID_WITHOUT_BRANCH, s.a2.code),
        (K.GRID_WITHOUT_WORKER, s.a2.code),
        (K.GRID_LOW_VISIT_RATE, s.a2.code),
        (K.BUILDING_UNVISITED, s.h3.code),
    }
    # Not even by asking for A1, A or the street by code.
    assert features(worker, grid_cell=s.a1.code) == []
    assert kinds_and_subjects(features(worker, community=s.a.code)) == seen


def test_a_community_admin_sees_their_community_with_its_areas_and_cadres(computed: Scene):
    s = computed
    admin = user_with(Role.COMMUNITY_ADMIN, community=s.b)
    assert kinds_and_subjects(features(admin)) == {(K.AREA_NOT_GRIDDED, s.b.code), (K.AREA_BEYOND_SERVICE_CENTRE, s.b.code)}
    admin_a = user_with(Role.COMMUNITY_ADMIN, community=s.a)
    seen = kinds_and_subjects(features(admin_a))
    assert (K.CADRE_SHORT_OF_DAYS, "驻点甲") in seen and len(seen) == 11
    street = user_with(Role.STREET_ADMIN, street=s.street)
    assert len(features(street)) == Gap.objects.count() == 15


def test_an_operator_and_anonymous_are_refused():
    assert api_client(user_with(Role.OPERATOR)).get(URL).status_code == 403
    assert api_client(None).get(URL).status_code == 401
    assert api_client(None).get(SUMMARY).status_code == 401


def test_a_member_gap_shows_the_masked_name_and_id_only(computed: Scene):
    s = computed
    street = user_with(Role.STREET_ADMIN, street=s.street)
    (feat,) = features(street, kind=K.MEMBER_UNATTACHED)
    props = feat["properties"]
    assert props["subject_label"] == "王**" and props["subject_id"] == s.unattached.id
    assert props["subject_type"] == "orgs.PartyMember"
    text = str(feat)
    assert "王小明" not in text and "id_number" not in text and "phone" not in text
    assert feat["geometry"]["type"] == "Point"
    assert props["responsible_org_id"] == s.a_org.id and props["grid_code"] == s.a1.code


def test_filters_by_kind_unit_age_resolution_and_bbox(computed: Scene):
    s = computed
    street = user_with(Role.STREET_ADMIN, street=s.street)
    assert {f["properties"]["kind"] for f in features(street, kind=K.AREA_NOT_GRIDDED)} == {K.AREA_NOT_GRIDDED}
    assert {f["properties"]["community_code"] for f in features(street, community=s.c.code)} == {s.c.code}
    assert len(features(street, grid_cell=s.a2.code)) == 4
    assert len(features(street, street=s.street.code)) == 15
    assert features(street, since_before=AT.date().isoformat()) == []
    assert len(features(street, since_before=(AT.date() + timedelta(days=1)).isoformat())) == 15
    # C's gaps only, by the box around it.
    box = features(street, in_bbox="110.449,21.189,110.461,21.201")
    assert {f["properties"]["community_code"] for f in box} == {s.c.code}
    # History: a resolved gap is listed with resolved=true only.
    org_services.grid_worker_update(worker=s.worker_a2, active=True)
    gaps_recompute(community_ids=[s.a.id], at=AT + timedelta(hours=1))
    (closed,) = features(street, resolved="true")
    assert closed["properties"]["kind"] == K.GRID_WITHOUT_WORKER and closed["properties"]["resolved_at"]
    assert K.GRID_WITHOUT_WORKER not in {f["properties"]["kind"] for f in features(street)}


@pytest.mark.parametrize(
    "params",
    [{"kind": "no_such_kind"}, {"since_before": "2026-13-01"}, {"resolved": "maybe"}, {"in_bbox": "1,2,3"}],
)
def test_bad_query_strings_are_a_400_with_a_stable_code(computed: Scene, params):
    street = user_with(Role.STREET_ADMIN, street=computed.street)
    response = api_client(street).get(URL, params)
    assert response.status_code == 400 and response.json()["code"] == "invalid_input", response.content


def test_the_list_is_paginated_in_a_fixed_number_of_queries(computed: Scene, django_assert_max_num_queries):
    s = computed
    street = user_with(Role.STREET_ADMIN, street=s.street)
    client = api_client(street)
    with django_assert_max_num_queries(6):
        body = client.get(URL, {"page_size": 5}).json()
    assert body["count"] == 15 and len(body["features"]) == 5 and body["next"]


def test_the_summary_counts_by_kind_for_the_units_held_wholly(computed: Scene, django_assert_max_num_queries):
    s = computed
    street = user_with(Role.STREET_ADMIN, street=s.street)
    with django_assert_max_num_queries(10):
        response = api_client(street).get(SUMMARY)
    assert response.status_code == 200, response.content
    body = response.json()
    assert {k["kind"] for k in body["kinds"]} == set(Gap.Kind.values)
    units = {(u["level"], u["code"]): u for u in body["units"]}
    assert units[("street", s.street.code)]["open"] == 15
    assert units[("community", s.a.code)]["open"] == 11
    assert units[("community", s.c.code)]["by_kind"] == {K.AREA_NOT_GRIDDED: 1, K.AREA_BEYOND_SERVICE_CENTRE: 1}
    assert units[("grid_cell", s.a1.code)]["open"] == 6  # h1, h2, two members, two firms
    assert units[("grid_cell", s.a2.code)]["by_kind"] == {
        K.GRID_WITHOUT_BRANCH: 1, K.GRID_WITHOUT_WORKER: 1, K.GRID_LOW_VISIT_RATE: 1, K.BUILDING_UNVISITED: 1,
    }
    # A grid worker gets their grid's row only: no community total that counts other grids.
    worker = user_with(Role.GRID_WORKER, grid_cell=s.a2)
    rows = api_client(worker).get(SUMMARY).json()["units"]
    assert [(u["level"], u["code"], u["open"]) for u in rows] == [("grid_cell", s.a2.code, 4)]
    # Filtered by kind and community.
    rows = api_client(street).get(SUMMARY, {"kind": K.BUILDING_UNVISITED, "community": s.a.code}).json()["units"]
    assert {(u["level"], u["code"], u["open"]) for u in rows} == {
        ("street", s.street.code, 2), ("community", s.a.code, 2), ("grid_cell", s.a1.code, 1), ("grid_cell", s.a2.code, 1),
    }
