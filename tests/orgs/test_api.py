"""The orgs API through HTTP: every endpoint scoped by reach, personal data masked unless the role
may see it (and then audited), writes refused without edit_orgs or against the tree rules."""

import pytest
from django.contrib.gis.geos import Point
from django.db import connection
from django.test.utils import CaptureQueriesContext
from drf_spectacular.generators import SchemaGenerator

from grid.models import AuditEvent, Role
from orgs.models import PartyMember, PartyOrganisation
from tests.factories import ORIGIN, GridCellFactory
from tests.orgs.reach_world import PHONE, world_fixture  # noqa: F401 - fixture
from tests.orgs_factories import (
    BuildingGroupFactory,
    EnterpriseFactory,
    GridWorkerFactory,
    PartyMemberFactory,
    make_id_number,
)
from tests.people import api_client, user_with

X, Y = ORIGIN
pytestmark = [pytest.mark.django_db]




def _ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    body = response.json()
    items = body["features"] if "features" in body else body["results"]
    return {item["id"] for item in items}


@pytest.fixture
def users(world):
    s = world.space
    return {
        "worker_a1": user_with(Role.GRID_WORKER, grid_cell=s.a1),
        "worker_b1": user_with(Role.GRID_WORKER, grid_cell=s.b1),
        "admin_a": user_with(Role.COMMUNITY_ADMIN, community=s.a),
        "street": user_with(Role.STREET_ADMIN, street=s.street),
    }


def expected(world, who: str) -> dict[str, set[int]]:
    w = world
    return {
        "worker_a1": {
            "organisations": {w.committee.pk, w.org_a.pk, w.branch_a1.pk, w.group_a1.pk},
            "members": {w.member_a1.pk},
            "grid-workers": {w.worker_a1.pk},
            "stationed-cadres": set(),
            "enterprises": {w.firm_a1.pk},
        },
        "worker_b1": {
            "organisations": {w.committee.pk, w.org_b.pk, w.branch_b1.pk, w.group_b1.pk},
            "members": {w.member_b1.pk},
            "grid-workers": {w.worker_b1.pk},
            "stationed-cadres": set(),
            "enterprises": {w.firm_b1.pk},
        },
        "admin_a": {
            "organisations": {w.committee.pk, w.org_a.pk, w.branch_a1.pk, w.branch_a2.pk, w.group_a1.pk},
            "members": {w.member_a1.pk, w.member_a2.pk, w.member_org_a.pk},
            "grid-workers": {w.worker_a1.pk},
            "stationed-cadres": {w.cadre_a.pk},
            "enterprises": {w.firm_a1.pk},
        },
    }[who]


ENDPOINTS = ["organisations", "members", "grid-workers", "stationed-cadres", "enterprises"]


def test_lists_and_details_are_scoped_by_reach(world, users):
    every = {
        "organisations": set(PartyOrganisation.objects.values_list("pk", flat=True)),
        "members": set(PartyMember.objects.values_list("pk", flat=True)),
        "grid-workers": {world.worker_a1.pk, world.worker_b1.pk},
        "stationed-cadres": {world.cadre_a.pk, world.cadre_b.pk},
        "enterprises": {world.firm_a1.pk, world.firm_b1.pk},
    }
    for who in ("worker_a1", "worker_b1", "admin_a"):
        _check_scoping(api_client(users[who]), expected(world, who), every)


def _check_scoping(client, want, every):
    for endpoint in ENDPOINTS:
        assert _ids(client.get(f"/api/{endpoint}/")) == want[endpoint], endpoint
        for pk in every[endpoint]:
            response = client.get(f"/api/{endpoint}/{pk}/")
            if pk in want[endpoint]:
                assert response.status_code == 200, (endpoint, pk)
            else:
                # Out of reach answers exactly like a missing id.
                assert response.status_code == 404, (endpoint, pk)
                assert response.json() == client.get(f"/api/{endpoint}/999999/").json()


def test_street_admin_sees_the_whole_street(world, users):
    client = api_client(users["street"])
    assert _ids(client.get("/api/organisations/")) == set(
        PartyOrganisation.objects.values_list("pk", flat=True)
    )
    assert _ids(client.get("/api/members/")) == set(PartyMember.objects.values_list("pk", flat=True))
    assert len(_ids(client.get("/api/enterprises/"))) == 2


def test_org_filters_subtree_and_ancestors(world, users):
    client = api_client(users["street"])
    w = world
    assert _ids(client.get("/api/organisations/", {"kind": "grid_branch"})) == {
        w.branch_a1.pk,
        w.branch_a2.pk,
        w.branch_b1.pk,
    }
    assert _ids(client.get("/api/organisations/", {"community": w.space.b.code})) == {
        w.org_b.pk,
        w.branch_b1.pk,
        w.group_b1.pk,
    }
    assert _ids(client.get(f"/api/organisations/{w.org_a.pk}/subtree/")) == {
        w.org_a.pk,
        w.branch_a1.pk,
        w.branch_a2.pk,
        w.group_a1.pk,
    }
    chain = client.get(f"/api/organisations/{w.group_a1.pk}/ancestors/").json()
    assert [o["id"] for o in chain] == [w.committee.pk, w.org_a.pk, w.branch_a1.pk]
    # A grid worker's subtree of the community org holds only their own grid's part of it.
    worker = api_client(users["worker_a1"])
    assert _ids(worker.get(f"/api/organisations/{w.org_a.pk}/subtree/")) == {
        w.org_a.pk,
        w.branch_a1.pk,
        w.group_a1.pk,
    }
    assert client.get("/api/organisations/", {"kind": "nonsense"}).json()["code"] == "invalid_input"


def test_enterprises_are_geojson_points(world, users):
    body = api_client(users["admin_a"]).get("/api/enterprises/").json()
    assert body["type"] == "FeatureCollection"
    feature = body["features"][0]
    assert feature["geometry"]["type"] == "Point"
    assert feature["properties"]["community_code"] == world.space.a.code
    assert feature["properties"]["has_own_org"] is False


# --- personal data ----------------------------------------------------------------------------


def test_grid_worker_sees_masked_personal_data_and_no_audit_row(world, users):
    body = api_client(users["worker_a1"]).get(f"/api/members/{world.member_a1.pk}/").json()
    assert body["pii_masked"] is True
    assert body["id_number"] == make_id_number(1)[:6] + "********" + make_id_number(1)[-4:]
    assert body["phone"] == "138****8000"
    assert not AuditEvent.objects.filter(action="read_pii").exists()


def test_community_admin_sees_personal_data_and_each_read_is_audited(world, users):
    client = api_client(users["admin_a"])
    body = client.get(f"/api/members/{world.member_a1.pk}/").json()
    assert body["pii_masked"] is False
    assert body["id_number"] == make_id_number(1) and body["phone"] == PHONE
    event = AuditEvent.objects.get(action="read_pii")
    assert event.actor_id == users["admin_a"].pk
    assert event.changes == {"member_ids": [world.member_a1.pk]}

    page = client.get("/api/members/").json()
    assert all(not m["pii_masked"] for m in page["results"])
    listed = AuditEvent.objects.filter(action="read_pii").latest("id")
    assert listed.changes["member_ids"] == sorted(m["id"] for m in page["results"])


def test_worker_phones_follow_the_same_rule(world, users):
    masked = api_client(users["worker_a1"]).get(f"/api/grid-workers/{world.worker_a1.pk}/").json()
    assert masked["phone"] == "139****9000" and masked["pii_masked"]
    clear = api_client(users["admin_a"]).get(f"/api/grid-workers/{world.worker_a1.pk}/").json()
    assert clear["phone"] == "13900139000"
    assert AuditEvent.objects.get(action="read_pii").changes == {"worker_ids": [world.worker_a1.pk]}


# --- writes -------------------------------------------------------------------------------------


def _org_payload(world, **over):
    data = {
        "kind": "building_group",
        "level": "group",
        "name": "甲二楼栋党小组",
        "code": "BG-NEW-1",
        "parent": world.branch_a2.pk,
        "buildings": [world.space.house_a2.code],
    }
    return data | over


def test_roles_without_edit_orgs_are_refused_and_nothing_written(world, users):
    before = PartyOrganisation.objects.count()
    response = api_client(users["worker_a1"]).post("/api/organisations/", _org_payload(world), format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    response = api_client(users["worker_a1"]).patch(
        f"/api/members/{world.member_a1.pk}/", {"name": "改名"}, format="json"
    )
    assert response.status_code == 403
    assert PartyOrganisation.objects.count() == before
    assert PartyMember.objects.get(pk=world.member_a1.pk).name == "甲一"


def test_community_admin_creates_and_updates_an_org_with_audit(world, users):
    client = api_client(users["admin_a"])
    response = client.post("/api/organisations/", _org_payload(world), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["building_codes"] == [world.space.house_a2.code]
    assert body["parent"]["id"] == world.branch_a2.pk
    created = AuditEvent.objects.get(
        action="create", object_type="orgs.PartyOrganisation", object_id=body["id"]
    )
    assert created.actor_id == users["admin_a"].pk and created.street_id == world.space.street.pk

    response = client.patch(f"/api/organisations/{body['id']}/", {"name": "甲二第一党小组"}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "甲二第一党小组"
    updated = AuditEvent.objects.get(action="update", object_id=body["id"])
    assert updated.changes == {"name": ["甲二楼栋党小组", "甲二第一党小组"]}


def test_tree_violations_are_400_with_the_stable_code_and_write_nothing(world, users):
    client = api_client(users["street"])
    before = PartyOrganisation.objects.count()
    audits = AuditEvent.objects.count()
    # A grid branch of community A's organisation on a (free) grid of community B.
    free_b = GridCellFactory(community=world.space.b)
    response = client.post(
        "/api/organisations/",
        {
            "kind": "grid_branch",
            "level": "branch",
            "name": "错挂支部",
            "code": "GB-BAD",
            "parent": world.org_a.pk,
            "grid_cell": free_b.code,
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "org_grid_outside_parent_community"
    # A building group directly under a community organisation.
    response = client.post("/api/organisations/", _org_payload(world, parent=world.org_a.pk), format="json")
    assert response.status_code == 400 and response.json()["code"] == "org_parent_kind"
    # Moving a branch whose building group would then stand outside it.
    response = client.patch(
        f"/api/organisations/{world.branch_a1.pk}/", {"grid_cell": world.space.a2.code}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] in {"org_grid_taken", "org_children_outside_grid"}
    assert PartyOrganisation.objects.count() == before
    assert AuditEvent.objects.count() == audits
    assert PartyOrganisation.objects.get(pk=world.branch_a1.pk).grid_cell_id == world.space.a1.pk


def test_references_outside_the_editing_reach_read_as_missing(world, users):
    client = api_client(users["admin_a"])
    before = PartyOrganisation.objects.count()
    response = client.post(
        "/api/organisations/",
        _org_payload(world, parent=world.branch_b1.pk, buildings=[world.space.house_b1.code]),
        format="json",
    )
    assert response.status_code == 400 and response.json()["code"] == "reference_not_found"
    # Visible (the chain above) but not theirs to edit.
    response = client.patch(f"/api/organisations/{world.committee.pk}/", {"name": "改"}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "outside_edit_reach"
    response = client.patch(f"/api/organisations/{world.org_b.pk}/", {"name": "改"}, format="json")
    assert response.status_code == 404
    assert PartyOrganisation.objects.count() == before


def test_member_create_and_update(world, users):
    client = api_client(users["admin_a"])
    payload = {
        "name": "新党员",
        "gender": "female",
        "organisation": world.branch_a2.pk,
        "residence_building": world.space.house_a2.code,
        "id_number": make_id_number(77),
        "phone": "138 0000 1111",
        "dues_paid_through": "2024-06",
    }
    response = client.post("/api/members/", payload, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["pii_masked"] and body["phone"] == "138****1111" and body["dues_paid_through"] == "2024-06"
    audit = AuditEvent.objects.get(action="create", object_type="orgs.PartyMember", object_id=body["id"])
    assert make_id_number(77) not in str(audit.changes) and "13800001111" not in str(audit.changes)

    dup = client.post("/api/members/", payload | {"name": "重复"}, format="json")
    assert dup.status_code == 400 and dup.json()["code"] == "member_duplicate_id_number"
    bad = client.post("/api/members/", payload | {"id_number": "440803198001010000"}, format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "id_number_invalid"
    nowhere = client.post(
        "/api/members/", {"name": "无处", "gender": "male", "id_number": make_id_number(78)}, format="json"
    )
    assert nowhere.status_code == 403 and nowhere.json()["code"] == "outside_edit_reach"
    assert PartyMember.objects.filter(name__in=["重复", "无处"]).count() == 0

    response = client.patch(f"/api/members/{body['id']}/", {"phone": "13900002222"}, format="json")
    assert response.status_code == 200
    change = AuditEvent.objects.get(action="update", object_id=body["id"])
    assert change.changes == {"phone": "已修改"}


def test_stationed_cadre_update(world, users):
    client = api_client(users["admin_a"])
    response = client.patch(
        f"/api/stationed-cadres/{world.cadre_a.pk}/", {"period_end": "2023-01-01"}, format="json"
    )
    assert response.status_code == 400 and response.json()["code"] == "stationed_period_order"
    response = client.patch(
        f"/api/stationed-cadres/{world.cadre_a.pk}/", {"period_end": "2024-12-31"}, format="json"
    )
    assert response.status_code == 200 and response.json()["period_end"] == "2024-12-31"
    assert client.patch(f"/api/stationed-cadres/{world.cadre_b.pk}/", {}, format="json").status_code == 404


# --- rules ----------------------------------------------------------------------------------------


def test_rule_violations_are_scoped(world, users):
    street = api_client(users["street"]).get("/api/rules/violations/", {"date": "2025-01-01"})
    assert street.status_code == 200
    all_rows = street.json()["results"]
    assert all_rows and {"rule_code", "rule_label", "message", "responsible_org_name"} <= set(all_rows[0])
    worker = api_client(users["worker_a1"]).get(
        "/api/rules/violations/", {"street": world.space.street.code, "date": "2025-01-01"}
    )
    seen = {("org", o.pk) for o in (world.committee, world.org_a, world.branch_a1, world.group_a1)}
    seen.add(("enterprise", world.firm_a1.pk))
    rows = worker.json()["results"]
    assert rows and all((r["subject_type"], r["subject_id"]) in seen for r in rows)
    assert len(rows) < len(all_rows)
    other = api_client(users["worker_a1"]).get("/api/rules/violations/", {"street": "440803999"})
    assert other.status_code == 404


# --- budgets and documentation ------------------------------------------------------------------


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_query_count_does_not_grow_with_rows(world, users, django_assert_max_num_queries):
    client = api_client(users["admin_a"])
    urls = ["/api/members/", "/api/organisations/", "/api/grid-workers/", "/api/enterprises/"]
    few = {url: _queries(client, url) for url in urls}
    s = world.space
    for n in range(6):
        PartyMemberFactory(
            organisation=world.branch_a1, residence_building=s.house_a1, id_number=make_id_number(100 + n)
        )
        BuildingGroupFactory(buildings=[s.house_a2], parent=world.branch_a2, code=f"BGQ{n}")
        GridWorkerFactory(community=s.a, grid_cells=[s.a1, s.a2], phone=f"1370000000{n}")
        EnterpriseFactory(point=Point(X + 0.002, Y + 0.007, srid=4326))
    for url in urls:
        with django_assert_max_num_queries(few[url]):
            assert client.get(url).status_code == 200


def test_openapi_documents_every_endpoint_in_chinese():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    paths = schema["paths"]
    for path in (
        "/api/organisations/",
        "/api/organisations/{id}/",
        "/api/organisations/{id}/subtree/",
        "/api/organisations/{id}/ancestors/",
        "/api/members/",
        "/api/members/{id}/",
        "/api/grid-workers/",
        "/api/stationed-cadres/",
        "/api/enterprises/",
        "/api/rules/violations/",
    ):
        assert path in paths, path
        for operation in paths[path].values():
            if isinstance(operation, dict) and "summary" in operation:
                assert any("\u4e00" <= ch <= "\u9fff" for ch in operation["summary"]), (
                    path,
                    operation["summary"],
                )


def test_unknown_dates_in_query_are_400(world, users):
    response = api_client(users["street"]).get("/api/rules/violations/", {"date": "2025-13-01"})
    assert response.status_code == 400 and response.json()["code"] == "invalid_input"
