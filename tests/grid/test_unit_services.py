"""Streets, communities, grid cells, buildings and service centres are written by grid.services
only: each write validates, saves, writes its audit row and tells its community; each refusal has
its stable code and writes nothing. The admin goes through the same services."""

from __future__ import annotations

import pytest
from django.contrib.gis.geos import Point
from django.test import Client
from django.urls import reverse

from grid import services
from grid.audit import audited_update
from grid.errors import GridError
from grid.models import AuditEvent, Building, Community, GridCell, ServiceCentre, Street
from tests.factories import (
    ORIGIN,
    BuildingFactory,
    CommunityFactory,
    GridCellFactory,
    ServiceCentreFactory,
    StreetFactory,
    multi,
    rect,
    square,
)

X0, Y0 = ORIGIN
CALLS: list[tuple[str, list[int]]] = []

pytestmark = pytest.mark.django_db


def outline_listener(*, community_ids: list[int]) -> None:
    CALLS.append(("outline", community_ids))


@pytest.fixture
def listening(settings):
    CALLS.clear()
    settings.WANGGE_OUTLINE_LISTENERS = ["tests.grid.test_unit_services.outline_listener"]
    return CALLS


@pytest.fixture
def street():
    return StreetFactory(code="440803001", geom=multi(rect(X0, Y0, X0 + 0.02, Y0 + 0.01)))


@pytest.fixture
def community(street):
    return CommunityFactory(street=street, code="440803001001", geom=multi(rect(X0, Y0, X0 + 0.01, Y0 + 0.01)))


@pytest.fixture
def cell(community):
    return GridCellFactory(community=community, code="440803001001001", boundary=rect(X0, Y0, X0 + 0.01, Y0 + 0.01))


def version(community: Community) -> int:
    return Community.objects.get(pk=community.pk).data_version


def snapshot() -> tuple:
    """What a refused write must leave as it was: every unit row and the audit log."""
    return (
        list(Street.objects.order_by("id").values_list("id", "code", "name", "district_adcode")),
        list(Community.objects.order_by("id").values_list("id", "code", "street_id", "name", "data_version")),
        list(GridCell.objects.order_by("id").values_list("id", "code", "community_id", "name")),
        list(Building.objects.order_by("id").values_list("id", "code", "community_id", "grid_cell_id")),
        list(ServiceCentre.objects.order_by("id").values_list("id", "code", "street_id", "community_id")),
        AuditEvent.objects.count(),
    )


def refused(expected: str, write, /, **kwargs) -> GridError:
    before = snapshot()
    with pytest.raises(GridError) as err:
        write(**kwargs)
    assert err.value.code == expected, err.value.message
    assert snapshot() == before, "a refused write must change nothing"
    return err.value


# --- writes: saved, audited, announced ---------------------------------------------------------


def test_a_community_created_is_audited_and_announced_as_a_new_outline(street, listening):
    community = services.community_create(
        code="440803001002", street=street, name="新社区", geom=rect(X0 + 0.01, Y0, X0 + 0.02, Y0 + 0.01)
    )
    row = AuditEvent.objects.get(object_type="grid.Community", object_id=str(community.pk))
    assert (row.action, row.street_id) == ("create", street.pk)
    assert row.changes == {"code": "440803001002", "street": street.pk, "name": "新社区", "residents": 0}
    assert community.geom.geom_type == "MultiPolygon" and community.data_version == 0
    assert version(community) == 1
    assert listening == [("outline", [community.pk])]


def test_an_outline_edit_bumps_the_version_and_tells_the_outline_listeners(community, listening):
    before = version(community)
    services.community_update(community=community, geom=rect(X0, Y0, X0 + 0.012, Y0 + 0.01))
    assert version(community) == before + 1
    assert listening == [("outline", [community.pk])]
    row = AuditEvent.objects.filter(object_type="grid.Community").latest("id")
    assert list(row.changes) == ["geom"]


def test_a_rename_is_not_an_outline_change(community, listening):
    before = version(community)
    services.community_update(community=community, name="改名社区", geom=community.geom)
    assert version(community) == before + 1
    assert listening == []
    row = AuditEvent.objects.filter(object_type="grid.Community").latest("id")
    assert row.changes == {"name": [community.name, "改名社区"]}


def test_an_update_that_changes_nothing_saves_and_logs_nothing(community, django_assert_num_queries):
    before = snapshot()
    # The savepoint, the locked read (with its street), its release: no check of an unchanged
    # code, no save, no audit row.
    with django_assert_num_queries(3):
        services.community_update(community=community, name=community.name, residents=community.residents)
    assert snapshot() == before


def test_audited_update_saves_only_the_changed_fields_and_redacts_what_it_is_told(community):
    Community.objects.filter(pk=community.pk).update(residents=4321)  # a concurrent write, not seen
    stale = Community.objects.get(pk=community.pk)
    stale.residents = 1
    diff = audited_update(stale, fields={"name": "甲", "residents": 1}, summary="测试", redacted={"name"})
    assert diff == {"name": "已修改"}  # residents was already 1 on the object: not a change
    community.refresh_from_db()
    assert (community.name, community.residents) == ("甲", 4321)
    assert AuditEvent.objects.latest("id").changes == {"name": "已修改"}


def test_a_building_moved_is_reassigned_and_both_communities_told(street, community, cell):
    other = CommunityFactory(street=street, code="440803001002", geom=multi(rect(X0 + 0.01, Y0, X0 + 0.02, Y0 + 0.01)))
    building = services.building_create(
        code="B-1", name="1栋", community=community, geom=square(X0 + 0.002, Y0 + 0.002, 0.0003)
    )
    assert building.grid_cell_id == cell.pk and building.point is not None
    versions = (version(community), version(other))
    moved = services.building_update(
        building=building, community=other, geom=square(X0 + 0.012, Y0 + 0.002, 0.0003)
    )
    assert moved.grid_cell_id is None and moved.community_id == other.pk
    assert (version(community), version(other)) == (versions[0] + 1, versions[1] + 1)
    row = AuditEvent.objects.filter(object_type="grid.Building").latest("id")
    assert set(row.changes) == {"community", "geom"} and row.changes["community"] == [community.pk, other.pk]


def test_a_service_centre_write_and_delete_are_audited(street, community):
    centre = services.service_centre_create(
        code="SC-1", name="中心", level="community", street=street, community=community,
        geom=Point(X0 + 0.005, Y0 + 0.005, srid=4326),
    )
    services.service_centre_update(centre=centre, service_radius_m=800)
    pk = centre.pk
    services.service_centre_delete(centre=centre)
    actions = list(
        AuditEvent.objects.filter(object_type="grid.ServiceCentre", object_id=str(pk))
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["create", "update", "delete"]
    assert not ServiceCentre.objects.filter(pk=pk).exists()


# --- refusals: stable code, nothing written ----------------------------------------------------


def test_codes_must_start_with_their_parents_code(street, community):
    err = refused(
        "code_parent_mismatch", services.community_create,
        code="440803002001", street=street, name="错码社区", geom=rect(X0, Y0, X0 + 0.01, Y0 + 0.01),
    )
    assert "440803001" in err.message and err.detail["field"] == "code"
    refused(
        "code_parent_mismatch", services.grid_cell_create,
        code="440803001002001", community=community, name="错码网格",
    )
    refused(
        "code_parent_mismatch", services.street_create,
        code="440804009", name="错区街道", geom=rect(X0, Y0, X0 + 0.01, Y0 + 0.01), district_adcode="440803",
    )


def test_moving_a_community_to_another_street_needs_a_matching_code(community):
    elsewhere = StreetFactory(code="440803002")
    refused("code_parent_mismatch", services.community_update, community=community, street=elsewhere)
    moved = services.community_update(community=community, street=elsewhere, code="440803002001")
    assert moved.code == "440803002001"


def test_a_parent_code_is_fixed_once_children_use_it(street, community, cell):
    refused("code_parent_mismatch", services.street_update, street=street, code="440803009")
    refused("code_parent_mismatch", services.community_update, community=community, code="440803001009")
    refused("field_readonly", services.grid_cell_update, cell=cell, code="440803001001009")


def test_an_outline_that_leaves_a_grid_outside_is_refused(community, cell, listening):
    err = refused(
        "grid_outside_community", services.community_update,
        community=community, geom=rect(X0, Y0, X0 + 0.006, Y0 + 0.01),
    )
    assert cell.code in err.message
    assert listening == []


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"code": "440803001001"}, "code_taken"),
        ({"code": "4408030010"}, "code_format"),
        ({"name": ""}, "blank"),
        ({"residents": -1}, "min_value"),
        ({"geom": Point(X0, Y0, srid=4326)}, "geometry_type"),
        ({"colour": "red"}, "field_unknown"),
    ],
)
def test_bad_values_are_refused_with_the_fields_rule(street, community, kwargs, code):
    other = CommunityFactory(street=street, code="440803001002", geom=multi(square(X0 + 0.01, Y0, 0.01)))
    refused(code, services.community_update, community=other, **kwargs)


def test_a_centre_below_street_level_needs_a_community_of_its_street(street, community):
    elsewhere = StreetFactory(code="440803002")
    point = Point(X0 + 0.005, Y0 + 0.005, srid=4326)
    refused(
        "community_not_in_street", services.service_centre_create,
        code="SC-2", name="越街中心", level="community", street=elsewhere, community=community, geom=point,
    )
    refused(
        "centre_community_required", services.service_centre_create,
        code="SC-3", name="无社区服务站", level="station", street=street, geom=point,
    )


def test_a_unit_still_referenced_is_not_deleted(community, cell):
    err = refused("unit_in_use", services.community_delete, community=community)
    assert "网格" in err.message


# --- the admin routes through the services -----------------------------------------------------


@pytest.fixture
def admin_web(db):
    from django.contrib.auth.models import User

    user = User.objects.create_superuser(username="root", email="root@example.invalid", password=None)
    client = Client()
    client.force_login(user)
    return client, user


# The grid page's read-only inline of boundary versions still posts its management form.
NO_VERSIONS = {"boundaries-TOTAL_FORMS": "0", "boundaries-INITIAL_FORMS": "0"}


def community_form(community: Community, **changes) -> dict:
    data = {
        "code": community.code,
        "street": community.street_id,
        "name": community.name,
        "residents": community.residents,
        "geom": community.geom.geojson,
    }
    return {**data, **changes}


def test_an_admin_edit_is_the_services_write(admin_web, community, listening):
    client, user = admin_web
    before = version(community)
    response = client.post(
        reverse("admin:grid_community_change", args=[community.pk]),
        community_form(community, name="后台改名", geom=multi(rect(X0, Y0, X0 + 0.011, Y0 + 0.01)).geojson),
    )
    assert response.status_code == 302
    (row,) = AuditEvent.objects.filter(object_type="grid.Community", object_id=str(community.pk))
    assert row.actor_id == user.pk and row.changes["name"] == [community.name, "后台改名"]
    assert "geom" in row.changes
    assert version(community) == before + 1
    assert listening == [("outline", [community.pk])]


def test_an_admin_add_with_a_wrong_code_is_a_form_error(admin_web, community):
    client, _ = admin_web
    before = snapshot()
    response = client.post(
        reverse("admin:grid_gridcell_add"),
        {"code": "440803001009001", "community": community.pk, "name": "错码", "responsible_body": "", **NO_VERSIONS},
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors.as_data()
    assert [e.code for e in errors["code"]] == ["code_parent_mismatch"]
    assert "440803001001" in errors["code"][0].message
    assert snapshot() == before


def test_an_admin_add_writes_through_the_service(admin_web, community):
    client, user = admin_web
    response = client.post(
        reverse("admin:grid_gridcell_add"),
        {"code": "440803001001007", "community": community.pk, "name": "第七网格", "responsible_body": "", **NO_VERSIONS},
    )
    assert response.status_code == 302
    cell = GridCell.objects.get(code="440803001001007")
    (row,) = AuditEvent.objects.filter(object_type="grid.GridCell", object_id=str(cell.pk))
    assert (row.action, row.actor_id, row.street_id) == ("create", user.pk, community.street_id)


def test_an_admin_outline_leaving_a_grid_is_refused_on_the_map(admin_web, community, cell):
    client, _ = admin_web
    before = snapshot()
    response = client.post(
        reverse("admin:grid_community_change", args=[community.pk]),
        community_form(community, geom=multi(rect(X0, Y0, X0 + 0.005, Y0 + 0.01)).geojson),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors.as_data()
    assert [e.code for e in errors["geom"]] == ["grid_outside_community"]
    assert snapshot() == before


def test_admin_deletes_are_the_services_one_row_each(admin_web, community):
    client, user = admin_web
    one, two, three = (BuildingFactory(community=community, code=f"DEL-{i}") for i in range(3))
    before = version(community)
    response = client.post(reverse("admin:grid_building_delete", args=[one.pk]), {"post": "yes"})
    assert response.status_code == 302
    response = client.post(
        reverse("admin:grid_building_changelist"),
        {"action": "delete_selected", "_selected_action": [two.pk, three.pk], "post": "yes"},
    )
    assert response.status_code == 302
    rows = AuditEvent.objects.filter(object_type="grid.Building", action="delete")
    assert sorted(rows.values_list("object_id", flat=True)) == sorted(str(b.pk) for b in (one, two, three))
    assert set(rows.values_list("actor_id", flat=True)) == {user.pk}
    assert version(community) > before


def test_a_refusal_only_the_write_sees_comes_back_as_a_message(admin_web, community, monkeypatch):
    """A concurrent change can make the service refuse after the form's check passed: the admin's
    transaction rolls back and the page says why."""
    from grid.admin import CommunityAdmin

    def beaten(**kwargs):
        raise GridError("社区编码 440803001001 已存在", code="code_taken")

    monkeypatch.setattr(CommunityAdmin, "update_service", beaten)
    client, _ = admin_web
    before = snapshot()
    url = reverse("admin:grid_community_change", args=[community.pk])
    response = client.post(url, community_form(community, name="并发改名"), follow=True)
    assert response.redirect_chain[0] == (url, 302)
    assert "社区编码 440803001001 已存在" in [str(m) for m in response.context["messages"]]
    assert snapshot() == before


def test_a_service_centre_admin_refuses_a_community_of_another_street(admin_web, community):
    client, _ = admin_web
    elsewhere = StreetFactory(code="440803002")
    centre = ServiceCentreFactory(street=elsewhere)
    before = snapshot()
    response = client.post(
        reverse("admin:grid_servicecentre_change", args=[centre.pk]),
        {
            "code": centre.code,
            "name": centre.name,
            "level": "community",
            "street": elsewhere.pk,
            "community": community.pk,
            "address": "",
            "service_radius_m": 1000,
            "geom": centre.geom.geojson,
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors.as_data()
    assert [e.code for e in errors["community"]] == ["community_not_in_street"]
    assert snapshot() == before
