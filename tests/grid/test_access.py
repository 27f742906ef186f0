"""Reach: a user sees the places their roles cover and nothing else; the audit log is append-only."""

from datetime import date

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, ProgrammingError, connection, transaction

from grid import access, services
from grid.audit import Actor, acting_as
from grid.models import AuditEvent, Building, Role, RoleAssignment
from tests.factories import (
    ORIGIN,
    BuildingFactory,
    CommunityFactory,
    GridCellFactory,
    StreetFactory,
    rect,
    square,
)
from tests.people import user_with

X0, Y0 = ORIGIN
pytestmark = pytest.mark.django_db


@pytest.fixture
def town():
    """Two streets; street 1 has two communities; community 1 has grids A and B."""
    s1, s2 = StreetFactory(), StreetFactory()
    c1 = CommunityFactory(street=s1)
    c2 = CommunityFactory(street=s1, geom=c1.geom)
    c3 = CommunityFactory(street=s2, geom=c1.geom)
    a = GridCellFactory(community=c1, boundary=rect(X0, Y0, X0 + 0.005, Y0 + 0.01))
    b = GridCellFactory(community=c1, boundary=rect(X0 + 0.005, Y0, X0 + 0.01, Y0 + 0.01))
    in_a = BuildingFactory(community=c1, geom=square(X0 + 0.001, Y0 + 0.001, 0.0003))
    in_b = BuildingFactory(community=c1, geom=square(X0 + 0.007, Y0 + 0.001, 0.0003))
    in_c3 = BuildingFactory(community=c3, geom=square(X0 + 0.001, Y0 + 0.001, 0.0003))
    services.buildings_reassign(community_ids=[c1.id, c3.id])
    return {
        "s1": s1,
        "s2": s2,
        "c1": c1,
        "c2": c2,
        "c3": c3,
        "a": a,
        "b": b,
        "in_a": in_a,
        "in_b": in_b,
        "in_c3": in_c3,
    }




def test_grid_worker_reaches_only_their_grid(town):
    reach = access.reach_for_user(user_with(Role.GRID_WORKER, grid_cell=town["a"]))
    assert set(access.grid_cells_in_reach(reach)) == {town["a"]}
    assert set(access.buildings_in_reach(reach)) == {town["in_a"]}
    # They see their own community and street (names, outlines), no other.
    assert set(access.communities_in_reach(reach)) == {town["c1"]}
    assert set(access.streets_in_reach(reach)) == {town["s1"]}
    with pytest.raises(access.NotInReach):
        access.get_in_reach(reach, Building.objects.all(), code=town["in_b"].code)
    assert access.get_in_reach(reach, Building.objects.all(), code=town["in_a"].code) == town["in_a"]


def test_missing_and_forbidden_look_the_same(town):
    reach = access.reach_for_user(user_with(Role.GRID_WORKER, grid_cell=town["a"]))
    with pytest.raises(access.NotInReach) as forbidden:
        access.get_in_reach(reach, Building.objects.all(), code=town["in_b"].code)
    with pytest.raises(access.NotInReach) as missing:
        access.get_in_reach(reach, Building.objects.all(), code="does-not-exist")
    assert str(forbidden.value) == str(missing.value)


def test_community_admin_reaches_the_whole_community(town):
    reach = access.reach_for_user(user_with(Role.COMMUNITY_ADMIN, community=town["c1"]))
    assert set(access.grid_cells_in_reach(reach)) == {town["a"], town["b"]}
    assert set(access.buildings_in_reach(reach)) == {town["in_a"], town["in_b"]}
    assert set(access.communities_in_reach(reach)) == {town["c1"]}


def test_street_admin_reaches_every_community_of_the_street(town):
    reach = access.reach_for_user(user_with(Role.STREET_ADMIN, street=town["s1"]))
    assert set(access.communities_in_reach(reach)) == {town["c1"], town["c2"]}
    assert town["in_c3"] not in set(access.buildings_in_reach(reach))
    assert reach.can("view_pii") and reach.can("edit_space")


def test_operator_reaches_no_place_and_revoked_roles_reach_nothing(town):
    operator = user_with(Role.OPERATOR)
    reach = access.reach_for_user(operator)
    assert reach.is_empty and not reach.can_read()
    assert not access.buildings_in_reach(reach).exists()
    worker = user_with(Role.GRID_WORKER, grid_cell=town["a"])
    RoleAssignment.objects.filter(user=worker).update(revoked_at="2026-01-01T00:00:00Z")
    assert access.reach_for_user(worker).is_empty


def test_a_role_covers_exactly_one_unit(town):
    user = User.objects.create_user(username="bad")
    with pytest.raises(IntegrityError), transaction.atomic():
        RoleAssignment.objects.create(user=user, role=Role.GRID_WORKER)
    with pytest.raises(IntegrityError), transaction.atomic():
        RoleAssignment.objects.create(
            user=user, role=Role.GRID_WORKER, grid_cell=town["a"], community=town["c1"]
        )


def test_boundary_write_is_audited_with_the_actor(town):
    planner = user_with(Role.PLANNER, street=town["s1"])
    with acting_as(Actor(user_id=planner.pk, name=planner.username, ip="10.1.2.3")):
        services.grid_boundary_set(
            cell=town["a"], geom=rect(X0, Y0, X0 + 0.004, Y0 + 0.01), valid_from=date(2025, 1, 1)
        )
    event = AuditEvent.objects.filter(object_type="grid.GridBoundary").latest("id")
    assert (event.actor, event.ip, event.action) == (planner, "10.1.2.3", "update")
    assert town["a"].code in event.changes["cells"]


def test_audit_log_is_append_only_in_the_database(town):
    services.grid_cell_retire(cell=town["b"], valid_to=date(2025, 1, 1))
    event = AuditEvent.objects.latest("id")
    count = AuditEvent.objects.count()
    for statement in ("UPDATE grid_auditevent SET summary = 'x'", "DELETE FROM grid_auditevent"):
        with (
            pytest.raises(ProgrammingError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cur,
        ):
            cur.execute(statement)
    event.refresh_from_db()
    assert AuditEvent.objects.count() == count and event.summary.startswith("网格")
