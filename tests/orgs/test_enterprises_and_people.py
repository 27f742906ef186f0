"""Enterprises find their community from their point; people and seats stay inside their street."""

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.gis.geos import Point

from orgs import services
from orgs.errors import OrgError, TreeMismatch
from orgs.models import CommitteeSeat, Enterprise, GridWorker, PartyOrganisation
from tests.factories import ORIGIN
from tests.orgs_factories import (
    CadreFactory,
    CommitteeSeatFactory,
    EnterpriseFactory,
    GridWorkerFactory,
    community_org_for,
    street_committee_for,
)


@pytest.mark.django_db
def test_enterprise_community_comes_from_its_point_or_building(space):
    in_b = EnterpriseFactory(point=Point(ORIGIN[0] + 0.015, ORIGIN[1] + 0.005, srid=4326))
    assert in_b.community == space.b
    in_house = services.enterprise_create(name="楼内企业", building=space.house_a2)
    assert in_house.community == space.a and in_house.geom.equals(space.house_a2.point)
    on_edge = EnterpriseFactory(point=Point(ORIGIN[0] + 0.01, ORIGIN[1] + 0.005, srid=4326))
    assert on_edge.community == space.a  # shared edge: the lower code wins, stably


@pytest.mark.django_db
def test_enterprise_outside_every_community_is_refused_and_nothing_written(space):
    with pytest.raises(OrgError) as err:
        EnterpriseFactory(point=Point(ORIGIN[0] + 0.5, ORIGIN[1], srid=4326))
    assert err.value.code == "enterprise_outside_communities"
    assert Enterprise.objects.count() == 0


@pytest.mark.django_db
def test_enterprise_may_only_be_covered_by_a_joint_branch(space):
    org_a = community_org_for(space.a)
    with pytest.raises(OrgError) as err:
        EnterpriseFactory(community=space.a, covering_joint_branch=org_a)
    assert err.value.code == "enterprise_joint_branch_kind"
    joint = services.party_org_create(
        kind="joint_branch",
        level="branch",
        name="商圈联合党支部",
        code="JB1",
        parent=org_a,
        community=space.a,
    )
    assert EnterpriseFactory(community=space.a, covering_joint_branch=joint).covering_joint_branch == joint


@pytest.mark.django_db
def test_enterprise_org_must_sit_in_its_parents_community(space):
    org_a = community_org_for(space.a)
    firm_b = EnterpriseFactory(community=space.b)
    with pytest.raises(TreeMismatch) as err:
        services.party_org_create(
            kind="enterprise_org", level="branch", name="企业支部", code="EO1", parent=org_a, premises=firm_b
        )
    assert err.value.code == "org_premises_outside_parent_community"
    assert not PartyOrganisation.objects.filter(code="EO1").exists()


@pytest.mark.django_db
def test_weak_flag_rectification_and_conversion(space):
    org_a = community_org_for(space.a)
    rect = services.party_org_flag_weak(org=org_a, flagged_on=date(2025, 1, 10), reasons="组织生活不正常")
    assert PartyOrganisation.objects.get(pk=org_a.pk).weak
    with pytest.raises(OrgError) as err:
        services.party_org_flag_weak(org=org_a, flagged_on=date(2025, 2, 1), reasons="再次")
    assert err.value.code == "rectification_open_exists"
    services.rectification_convert(rectification=rect, converted_on=date(2025, 6, 1))
    assert not PartyOrganisation.objects.get(pk=org_a.pk).weak


@pytest.mark.django_db
def test_star_rating_satisfaction_weighs_forty_percent(space):
    org_a = community_org_for(space.a)
    rating, created = services.star_rating_record(
        org=org_a, year=2024, score=Decimal("90"), satisfaction_score=Decimal("80")
    )
    assert created and rating.total_score == Decimal("86.00") and rating.stars == 4
    again, created = services.star_rating_record(org=org_a, year=2024, score=95, satisfaction_score=90, stars=5)
    assert not created and again.pk == rating.pk and again.total_score == Decimal("93.00")
    with pytest.raises(OrgError):
        services.star_rating_record(org=org_a, year=2025, score=101, satisfaction_score=50)


@pytest.mark.django_db
def test_grid_worker_grids_lie_in_their_community(space):
    with pytest.raises(TreeMismatch) as err:
        GridWorkerFactory(community=space.a, grid_cells=[space.a1, space.b1])
    assert err.value.code == "worker_grid_outside_community"
    assert GridWorker.objects.count() == 0
    worker = GridWorkerFactory(community=space.a, grid_cells=[space.a1, space.a2])
    assert set(worker.grid_cells.all()) == {space.a1, space.a2}


@pytest.mark.django_db
def test_committee_seats_only_on_enlarged_orgs_and_liaison_inside_the_street(space):
    committee = street_committee_for(space.street)
    with pytest.raises(OrgError) as err:
        CommitteeSeatFactory(org=committee)
    assert err.value.code == "seat_org_not_enlarged"
    services.party_org_update(org=committee, is_enlarged=True)
    committee.refresh_from_db()
    seat = CommitteeSeatFactory(
        org=committee, is_resident_unit_head=True, liaison_communities=[space.a, space.b]
    )
    assert set(seat.liaison_communities.all()) == {space.a, space.b}
    assert CommitteeSeat.objects.count() == 1


@pytest.mark.django_db
def test_instructor_from_another_street_is_refused(space):
    with pytest.raises(TreeMismatch):
        EnterpriseFactory(community=space.a, instructor=CadreFactory())
    assert Enterprise.objects.count() == 0
