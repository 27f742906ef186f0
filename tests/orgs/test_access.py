"""Reach over organisations and people: a grid worker of grid A sees nothing of grid B; a community
secretary sees their community; the street admin the street; personal data only where view_pii."""

import pytest

from grid.access import NotInReach, reach_for_user
from grid.models import AuditEvent, Role
from orgs import access
from orgs.models import Enterprise, GridWorker, PartyMember, PartyOrganisation, StationedCadre
from tests.orgs.reach_world import world_fixture  # noqa: F401 - fixture
from tests.people import grant, user_with

pytestmark = pytest.mark.django_db


def _ids(qs):
    return set(qs.values_list("pk", flat=True))


def test_grid_worker_sees_only_their_grid(world):
    w, s = world, world.space
    reach = reach_for_user(user_with(Role.GRID_WORKER, grid_cell=s.a1))
    orgs = _ids(access.party_orgs_in_reach(reach))
    # Their grid's branch and building group, and the chain above them; nothing of A2 or B.
    assert orgs == {w.committee.pk, w.org_a.pk, w.branch_a1.pk, w.group_a1.pk}
    assert _ids(access.party_members_in_reach(reach)) == {w.member_a1.pk}
    assert _ids(access.enterprises_in_reach(reach)) == {w.firm_a1.pk}
    assert _ids(access.grid_workers_in_reach(reach)) == {w.worker_a1.pk}
    assert not access.stationed_cadres_in_reach(reach).exists()
    with pytest.raises(NotInReach):
        access.get_in_reach(reach, PartyMember.objects.all(), pk=w.member_b1.pk)
    with pytest.raises(NotInReach):
        access.get_in_reach(reach, PartyOrganisation.objects.all(), pk=w.branch_a2.pk)


def test_community_admin_sees_their_community(world):
    w, s = world, world.space
    reach = reach_for_user(user_with(Role.COMMUNITY_ADMIN, community=s.a))
    assert _ids(access.party_orgs_in_reach(reach)) == {
        w.committee.pk,
        w.org_a.pk,
        w.branch_a1.pk,
        w.branch_a2.pk,
        w.group_a1.pk,
    }
    assert _ids(access.party_members_in_reach(reach)) == {
        w.member_a1.pk,
        w.member_a2.pk,
        w.member_org_a.pk,
    }
    assert _ids(access.enterprises_in_reach(reach)) == {w.firm_a1.pk}
    assert _ids(access.grid_workers_in_reach(reach)) == {w.worker_a1.pk}
    assert _ids(access.stationed_cadres_in_reach(reach)) == {w.cadre_a.pk}


def test_street_admin_sees_the_street(world):
    reach = reach_for_user(user_with(Role.STREET_ADMIN, street=world.space.street))
    assert access.party_orgs_in_reach(reach).count() == PartyOrganisation.objects.count()
    assert access.party_members_in_reach(reach).count() == PartyMember.objects.count()
    assert access.enterprises_in_reach(reach).count() == Enterprise.objects.count()
    assert access.grid_workers_in_reach(reach).count() == GridWorker.objects.count()
    assert access.stationed_cadres_in_reach(reach).count() == StationedCadre.objects.count()


def test_member_reported_to_a_community_is_seen_there(world):
    from orgs import services

    services.party_member_update(member=world.member_b1, reported_community=world.space.a)
    reach = reach_for_user(user_with(Role.COMMUNITY_ADMIN, community=world.space.a))
    assert world.member_b1.pk in _ids(access.party_members_in_reach(reach))


def test_view_pii_is_granted_per_place(world):
    s = world.space
    user = user_with(Role.COMMUNITY_ADMIN, community=s.a)

    grant(user, Role.GRID_WORKER, grid_cell=s.b1)
    reach = reach_for_user(user)
    members = list(access.party_members_in_reach(reach))
    assert {m.pk for m in members} >= {world.member_a1.pk, world.member_b1.pk}
    visible = access.pii_visible(reach=reach, objects=members)
    # Secretary of A: unmasked in A; only a grid worker in B: masked there.
    assert world.member_a1.pk in visible and world.member_b1.pk not in visible
    event = AuditEvent.objects.get(action=AuditEvent.Action.READ_PII)
    assert event.changes["member_ids"] == sorted(visible)
    assert event.object_type == "orgs.PartyMember" and event.object_id == ""


def test_no_pii_role_reveals_nothing_and_writes_no_audit(world):
    reach = reach_for_user(user_with(Role.GRID_WORKER, grid_cell=world.space.a1))
    assert access.pii_visible(reach=reach, objects=[world.member_a1]) == set()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.READ_PII).exists()
