"""Writes of the orgs API beyond organisations and members: grid workers, enterprises, committee
seats, rectifications and star ratings. Each goes through its service (one audit row), stays
inside the caller's editing reach, and a refusal writes nothing."""

from decimal import Decimal

import pytest

from grid import coords
from grid.models import AuditEvent, Role
from orgs import services
from orgs.models import CommitteeSeat, Enterprise, GridWorker, PartyOrganisation, Rectification, StarRating
from tests.factories import ORIGIN
from tests.orgs.reach_world import world_fixture  # noqa: F401 - fixture
from tests.people import api_client, user_with

X, Y = ORIGIN
pytestmark = [pytest.mark.django_db]




@pytest.fixture
def users(world):
    s = world.space
    return {
        "worker_a1": user_with(Role.GRID_WORKER, grid_cell=s.a1),
        "admin_a": user_with(Role.COMMUNITY_ADMIN, community=s.a),
        "street": user_with(Role.STREET_ADMIN, street=s.street),
        "leader": user_with(Role.LEADER, street=s.street),
    }


def counts() -> tuple[int, ...]:
    return (
        GridWorker.objects.count(),
        Enterprise.objects.count(),
        CommitteeSeat.objects.count(),
        Rectification.objects.count(),
        StarRating.objects.count(),
        AuditEvent.objects.count(),
    )


def _refused(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["code"] == code, response.json()


# --- grid workers -----------------------------------------------------------------------------


def test_community_admin_adds_a_worker_to_a_grid_of_their_community(world, users):
    s = world.space
    response = api_client(users["admin_a"]).post(
        "/api/grid-workers/",
        {"name": "新网格员", "community": s.a.code, "grid_cells": [s.a2.code], "phone": "13700001111"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert [c["code"] for c in body["grid_cells"]] == [s.a2.code]
    assert body["pii_masked"] is True and "13700001111" not in response.content.decode()
    worker = GridWorker.objects.get(pk=body["id"])
    assert worker.community == s.a and worker.phone_hash
    row = AuditEvent.objects.filter(object_type="orgs.GridWorker", object_id=str(worker.pk)).get()
    assert row.action == "create" and row.changes["phone"] == "已填写"


def test_a_worker_grid_must_stay_in_the_worker_community_and_the_callers_reach(world, users):
    s = world.space
    before = counts()
    # Grid B1 is outside the community admin's reach: not even found.
    response = api_client(users["admin_a"]).post(
        "/api/grid-workers/",
        {"name": "越界", "community": s.a.code, "grid_cells": [s.b1.code]},
        format="json",
    )
    _refused(response, 400, "reference_not_found")
    # The street admin reaches B1, but it lies in another community than the worker's.
    response = api_client(users["street"]).post(
        "/api/grid-workers/",
        {"name": "越界", "community": s.a.code, "grid_cells": [s.b1.code]},
        format="json",
    )
    _refused(response, 400, "worker_grid_outside_community")
    assert counts() == before


def test_updating_a_worker_replaces_their_grids_and_stays_in_reach(world, users):
    s, w = world.space, world
    admin = api_client(users["admin_a"])
    response = admin.patch(
        f"/api/grid-workers/{w.worker_a1.pk}/",
        {"grid_cells": [s.a1.code, s.a2.code], "active": False},
        format="json",
    )
    assert response.status_code == 200, response.content
    w.worker_a1.refresh_from_db()
    assert set(w.worker_a1.grid_cells.all()) == {s.a1, s.a2} and not w.worker_a1.active
    before = counts()
    _refused(
        admin.patch(f"/api/grid-workers/{w.worker_b1.pk}/", {"name": "改名"}, format="json"), 404, "not_found"
    )
    _refused(
        api_client(users["worker_a1"]).post("/api/grid-workers/", {}, format="json"), 403, "permission_denied"
    )
    _refused(
        api_client(users["leader"]).patch(
            f"/api/grid-workers/{w.worker_a1.pk}/", {"name": "x"}, format="json"
        ),
        403,
        "permission_denied",
    )
    assert counts() == before


# --- enterprises --------------------------------------------------------------------------------


def test_an_enterprise_placed_in_gcj02_is_converted_once_and_gets_its_community(world, users):
    s = world.space
    wgs = (X + 0.003, Y + 0.004)
    gcj = coords.wgs84_to_gcj02(*wgs)
    response = api_client(users["admin_a"]).post(
        "/api/enterprises/",
        {
            "name": "新企业",
            "credit_code": "91440800mA4W00000c",  # lower case: stored upper case
            "employee_count": 12,
            "location": {"type": "Point", "coordinates": [float(gcj[0]), float(gcj[1])]},
            "crs": "gcj02",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    feature = response.json()
    assert feature["properties"]["community_code"] == s.a.code
    assert feature["properties"]["credit_code"] == "91440800MA4W00000C"
    stored = Enterprise.objects.get(pk=feature["id"])
    # Converted exactly once: back at the WGS-84 point to well under a metre (1e-6° ≈ 0.1 m).
    assert abs(stored.geom.x - wgs[0]) < 1e-6 and abs(stored.geom.y - wgs[1]) < 1e-6
    assert AuditEvent.objects.filter(
        object_type="orgs.Enterprise", object_id=str(stored.pk), action="create"
    ).exists()


def test_an_enterprise_outside_the_callers_reach_is_not_written(world, users):
    before = counts()
    # A point in community B: the community admin of A may not place an enterprise there.
    response = api_client(users["admin_a"]).post(
        "/api/enterprises/",
        {"name": "越界企业", "location": {"type": "Point", "coordinates": [X + 0.015, Y + 0.005]}},
        format="json",
    )
    _refused(response, 403, "outside_edit_reach")
    response = api_client(users["street"]).post(
        "/api/enterprises/",
        {"name": "海上企业", "location": {"type": "Point", "coordinates": [X + 0.5, Y + 0.5]}},
        format="json",
    )
    _refused(response, 400, "enterprise_outside_communities")
    response = api_client(users["street"]).post(
        "/api/enterprises/",
        {"name": "坐标系", "location": {"type": "Point", "coordinates": [X, Y]}, "crs": "not-a-crs"},
        format="json",
    )
    _refused(response, 400, "crs_unknown")
    response = api_client(users["street"]).post(
        "/api/enterprises/",
        {"name": "无位置", "location": {"type": "Point", "coordinates": ["a", 1]}},
        format="json",
    )
    _refused(response, 400, "invalid_input")
    assert counts() == before


def test_moving_an_enterprise_in_bd09_changes_its_community(world, users):
    s, w = world.space, world
    bd = coords.wgs84_to_bd09(X + 0.015, Y + 0.005)
    response = api_client(users["street"]).patch(
        f"/api/enterprises/{w.firm_a1.pk}/",
        {"location": {"type": "Point", "coordinates": [float(bd[0]), float(bd[1])]}, "crs": "bd09"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["properties"]["community_code"] == s.b.code
    # The community admin of A cannot move A's enterprise out of their reach.
    before = counts()
    response = api_client(users["admin_a"]).patch(
        f"/api/enterprises/{w.firm_b1.pk}/", {"name": "改名"}, format="json"
    )
    _refused(response, 404, "not_found")
    assert counts() == before


# --- committee seats ----------------------------------------------------------------------------


def test_seats_of_an_enlarged_committee_are_listed_added_and_removed(world, users):
    s, w = world.space, world
    services.party_org_update(org=w.org_a, is_enlarged=True)
    admin = api_client(users["admin_a"])
    url = f"/api/organisations/{w.org_a.pk}/seats/"
    response = admin.post(
        url,
        {
            "person_name": "李委员",
            "unit_name": "第一中学",
            "is_resident_unit_head": True,
            "liaison_communities": [s.a.code],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    seat = response.json()
    assert seat["liaison_community_codes"] == [s.a.code] and seat["is_resident_unit_head"] is True
    assert [x["person_name"] for x in admin.get(url).json()] == ["李委员"]
    assert admin.get(f"/api/committee-seats/{seat['id']}/").status_code == 200

    response = admin.delete(f"/api/committee-seats/{seat['id']}/")
    assert response.status_code == 204
    assert not CommitteeSeat.objects.exists()
    row = AuditEvent.objects.filter(object_type="orgs.CommitteeSeat", action="delete").get()
    assert row.changes["person_name"] == "李委员" and row.street_id == s.street.pk


def test_seat_refusals_write_nothing(world, users):
    s, w = world.space, world
    before = counts()
    admin = api_client(users["admin_a"])
    # Not enlarged.
    _refused(
        admin.post(f"/api/organisations/{w.org_a.pk}/seats/", {"person_name": "甲"}, format="json"),
        400,
        "seat_org_not_enlarged",
    )
    # The street committee's records are not the community admin's (strict reach): not found.
    services.party_org_update(org=w.committee, is_enlarged=True)
    before = counts()
    _refused(
        admin.post(f"/api/organisations/{w.committee.pk}/seats/", {"person_name": "甲"}, format="json"),
        404,
        "not_found",
    )
    _refused(admin.get(f"/api/organisations/{w.committee.pk}/seats/"), 404, "not_found")
    # A liaison community the caller does not reach.
    services.party_org_update(org=w.org_a, is_enlarged=True)
    before = counts()
    response = admin.post(
        f"/api/organisations/{w.org_a.pk}/seats/",
        {"person_name": "甲", "liaison_communities": [s.b.code]},
        format="json",
    )
    _refused(response, 400, "reference_not_found")
    assert counts() == before


# --- rectifications and star ratings ------------------------------------------------------------


def test_flagging_and_converting_a_weak_branch(world, users):
    w = world
    admin = api_client(users["admin_a"])
    url = f"/api/organisations/{w.branch_a1.pk}/rectifications/"
    response = admin.post(url, {"flagged_on": "2025-01-10", "reasons": "组织生活不正常"}, format="json")
    assert response.status_code == 201, response.content
    rect = response.json()
    assert rect["converted_on"] is None
    w.branch_a1.refresh_from_db()
    assert w.branch_a1.weak

    before = counts()
    _refused(
        admin.post(url, {"flagged_on": "2025-02-01", "reasons": "再次"}, format="json"),
        400,
        "rectification_open_exists",
    )
    _refused(
        admin.patch(f"/api/rectifications/{rect['id']}/", {"converted_on": "2024-12-31"}, format="json"),
        400,
        "rectification_date_order",
    )
    assert counts() == before

    response = admin.patch(
        f"/api/rectifications/{rect['id']}/", {"converted_on": "2025-06-30"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["converted_on"] == "2025-06-30"
    w.branch_a1.refresh_from_db()
    assert not w.branch_a1.weak
    # The grid worker of A1 reads their branch's record but cannot write it.
    worker = api_client(users["worker_a1"])
    assert [r["id"] for r in worker.get(url).json()] == [rect["id"]]
    _refused(
        worker.post(url, {"flagged_on": "2025-07-01", "reasons": "x"}, format="json"),
        403,
        "permission_denied",
    )
    _refused(worker.get(f"/api/organisations/{w.branch_b1.pk}/rectifications/"), 404, "not_found")


def test_star_ratings_are_recorded_and_corrected(world, users):
    w = world
    admin = api_client(users["admin_a"])
    url = f"/api/organisations/{w.branch_a2.pk}/star-ratings/"
    response = admin.post(url, {"year": 2024, "score": "80", "satisfaction_score": "95"}, format="json")
    assert response.status_code == 201, response.content
    # 80 × 0.6 + 95 × 0.4 = 86 → 4 stars.
    assert Decimal(response.json()["total_score"]) == Decimal("86.00") and response.json()["stars"] == 4
    response = admin.post(url, {"year": 2024, "score": "95", "satisfaction_score": "95"}, format="json")
    assert response.status_code == 200 and response.json()["stars"] == 5
    assert [r["year"] for r in admin.get(url).json()] == [2024]
    before = counts()
    _refused(
        admin.post(url, {"year": 2024, "score": "101", "satisfaction_score": "1"}, format="json"),
        400,
        "invalid_input",
    )
    _refused(
        api_client(users["admin_a"]).post(
            f"/api/organisations/{w.branch_b1.pk}/star-ratings/",
            {"year": 2024, "score": "80", "satisfaction_score": "80"},
            format="json",
        ),
        404,
        "not_found",
    )
    assert counts() == before
    assert StarRating.objects.get().org_id == w.branch_a2.pk
    assert PartyOrganisation.objects.filter(pk=w.branch_a2.pk).exists()


def test_implausible_member_dates_and_credit_codes_are_refused_on_the_api_too(world, users):
    """The roster import's plausibility checks hold on every path: the services apply them."""
    from orgs.models import PartyMember
    from tests.orgs_factories import make_id_number

    client = api_client(users["admin_a"])
    before, members = counts(), PartyMember.objects.count()
    member = {"name": "新党员", "gender": "male", "organisation": world.branch_a2.pk}
    cases = [
        ({**member, "joined_on": "2999-01-01"}, "joined_on_future"),
        ({**member, "birth_date": "1990-05-01", "joined_on": "2000-01-01"}, "joined_under_age"),
        ({**member, "birth_date": "1990-05-01", "id_number": make_id_number(5)}, "birth_date_mismatch"),
    ]
    for payload, code in cases:
        _refused(client.post("/api/members/", payload, format="json"), 400, code)
    enterprise = {
        "name": "假代码企业",
        "credit_code": "91440800MA4W000001",  # wrong check character
        "location": {"type": "Point", "coordinates": [X + 0.003, Y + 0.004]},
    }
    _refused(client.post("/api/enterprises/", enterprise, format="json"), 400, "credit_code_invalid")
    assert counts() == before and PartyMember.objects.count() == members
