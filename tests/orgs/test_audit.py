"""Every orgs service write leaves one audit row in its own transaction, with the actor, the street
and what changed; personal data appears only as "changed"; a refused write leaves no row."""

from datetime import date
from decimal import Decimal

import pytest

from grid.audit import Actor, acting_as
from grid.models import AuditEvent
from orgs import services
from orgs.errors import OrgError
from tests.orgs_factories import (
    CommitteeSeatFactory,
    CommunityOrgFactory,
    EnterpriseFactory,
    GridBranchFactory,
    GridWorkerFactory,
    PartyMemberFactory,
    StationedCadreFactory,
    StreetCommitteeFactory,
    make_id_number,
)

pytestmark = pytest.mark.django_db
ACTOR = Actor(user_id=None, name="街道办小王", ip="10.0.0.8")


def last(object_type: str, action: str) -> AuditEvent:
    return AuditEvent.objects.filter(object_type=object_type, action=action).latest("id")


def test_org_create_and_update_are_audited_with_actor_street_and_diff(space):
    with acting_as(ACTOR):
        org = CommunityOrgFactory(community=space.a)
        created = last("orgs.PartyOrganisation", "create")
        assert created.object_id == str(org.pk) and created.actor_name == "街道办小王"
        assert created.ip == "10.0.0.8" and created.street_id == space.street.pk
        assert created.changes["community"] == space.a.pk and created.changes["kind"] == "community_org"
        services.party_org_update(org=org, name="新名称", term_years=4, level=org.level)
    updated = last("orgs.PartyOrganisation", "update")
    # Only what changed: the level was given but is the same.
    assert updated.changes == {"name": [org.name, "新名称"], "term_years": [org.term_years, 4]}


def test_refused_write_leaves_no_audit_row(space):
    org = CommunityOrgFactory(community=space.a)
    before = AuditEvent.objects.count()
    with pytest.raises(OrgError):
        services.party_org_create(
            kind="grid_branch",
            level="branch",
            name="错",
            code="BAD-1",
            parent=org,
            grid_cell=GridCellOf(space.b),
        )
    with pytest.raises(OrgError):
        services.stationed_cadre_create(
            name="甲", community=space.a, period_start=date(2024, 5, 1), period_end=date(2024, 1, 1)
        )
    assert AuditEvent.objects.count() == before


def GridCellOf(community):  # noqa: N802 - reads as a factory
    from tests.factories import GridCellFactory

    return GridCellFactory(community=community)


def test_member_audit_never_holds_personal_data(space):
    branch = GridBranchFactory(grid_cell=space.a1)
    member = PartyMemberFactory(organisation=branch, id_number=make_id_number(5), phone="13812345678")
    created = last("orgs.PartyMember", "create")
    assert created.street_id == space.street.pk
    assert created.changes["id_number"] == "已填写"
    text = str(created.changes) + created.summary
    assert make_id_number(5) not in text and "13812345678" not in text
    services.party_member_update(member=member, phone="13900001111", category="retired")
    updated = last("orgs.PartyMember", "update")
    assert updated.changes == {"category": ["employed", "retired"], "phone": "已修改"}


def test_people_enterprises_and_ratings_are_audited(space):
    committee = StreetCommitteeFactory(street=space.street)
    org = CommunityOrgFactory(community=space.a, parent=committee, is_enlarged=True)
    worker = GridWorkerFactory(community=space.a, grid_cells=[space.a1], phone="13700000000")
    services.grid_worker_update(worker=worker, grid_cells=[space.a1, space.a2])
    assert last("orgs.GridWorker", "update").changes == {
        "grid_cells": [[space.a1.pk], [space.a1.pk, space.a2.pk]]
    }
    cadre = StationedCadreFactory(community=space.a)
    services.stationed_cadre_update(cadre=cadre, period_end=date(2024, 12, 31))
    assert last("orgs.StationedCadre", "update").changes == {"period_end": [None, "2024-12-31"]}
    firm = EnterpriseFactory(community=space.b)
    assert last("orgs.Enterprise", "create").changes["community"] == space.b.pk
    services.enterprise_update(enterprise=firm, employee_count=99)
    assert last("orgs.Enterprise", "update").changes == {"employee_count": [20, 99]}
    services.star_rating_record(org=org, year=2024, score=Decimal("90"), satisfaction_score=Decimal("80"))
    assert last("orgs.StarRating", "create").changes["total_score"] == "86.00"
    rect = services.party_org_flag_weak(org=org, flagged_on=date(2024, 3, 1), reasons="组织生活不规范")
    services.rectification_convert(rectification=rect, converted_on=date(2024, 9, 1))
    assert last("orgs.Rectification", "update").changes == {"converted_on": [None, "2024-09-01"]}
    CommitteeSeatFactory(org=org, liaison_communities=[space.a])
    seat = last("orgs.CommitteeSeat", "create")
    assert seat.changes["liaison_communities"] == [space.a.pk] and seat.street_id == space.street.pk
