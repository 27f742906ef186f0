"""A populated street for the reach tests (access, API, audit): the `space` of conftest.py with an
organisation tree, members, workers, cadres and enterprises in each grid, and users per role."""

from dataclasses import dataclass

import pytest
from django.contrib.gis.geos import Point

from orgs.models import Enterprise, GridWorker, PartyMember, PartyOrganisation, StationedCadre
from tests.factories import ORIGIN
from tests.orgs_factories import (
    BuildingGroupFactory,
    CommunityOrgFactory,
    EnterpriseFactory,
    GridBranchFactory,
    GridWorkerFactory,
    PartyMemberFactory,
    StationedCadreFactory,
    StreetCommitteeFactory,
    make_id_number,
)

X, Y = ORIGIN
PHONE = "13800138000"


@dataclass
class World:
    space: object
    committee: PartyOrganisation
    org_a: PartyOrganisation
    org_b: PartyOrganisation
    branch_a1: PartyOrganisation
    branch_a2: PartyOrganisation
    branch_b1: PartyOrganisation
    group_a1: PartyOrganisation
    group_b1: PartyOrganisation
    member_a1: PartyMember
    member_a2: PartyMember
    member_b1: PartyMember
    member_org_a: PartyMember  # of the community organisation of A, living nowhere known
    firm_a1: Enterprise
    firm_b1: Enterprise
    worker_a1: GridWorker
    worker_b1: GridWorker
    cadre_a: StationedCadre
    cadre_b: StationedCadre




@pytest.fixture(name="world")
def world_fixture(space) -> World:
    s = space
    committee = StreetCommitteeFactory(street=s.street)
    org_a = CommunityOrgFactory(community=s.a, parent=committee)
    org_b = CommunityOrgFactory(community=s.b, parent=committee)
    branch_a1 = GridBranchFactory(grid_cell=s.a1, parent=org_a)
    branch_a2 = GridBranchFactory(grid_cell=s.a2, parent=org_a)
    branch_b1 = GridBranchFactory(grid_cell=s.b1, parent=org_b)
    group_a1 = BuildingGroupFactory(buildings=[s.house_a1], parent=branch_a1)
    group_b1 = BuildingGroupFactory(buildings=[s.house_b1], parent=branch_b1)
    member_a1 = PartyMemberFactory(
        name="甲一",
        organisation=branch_a1,
        residence_building=s.house_a1,
        id_number=make_id_number(1),
        phone=PHONE,
    )
    member_a2 = PartyMemberFactory(
        name="甲二", organisation=branch_a2, residence_building=s.house_a2, id_number=make_id_number(2)
    )
    member_b1 = PartyMemberFactory(
        name="乙一", organisation=branch_b1, residence_building=s.house_b1, id_number=make_id_number(3)
    )
    member_org_a = PartyMemberFactory(name="甲社区", organisation=org_a, id_number=make_id_number(4))
    firm_a1 = EnterpriseFactory(name="甲一公司", point=Point(X + 0.001, Y + 0.008, srid=4326))
    firm_b1 = EnterpriseFactory(name="乙一公司", point=Point(X + 0.015, Y + 0.008, srid=4326))
    worker_a1 = GridWorkerFactory(community=s.a, grid_cells=[s.a1], phone="13900139000")
    worker_b1 = GridWorkerFactory(community=s.b, grid_cells=[s.b1], phone="13900139001")
    cadre_a = StationedCadreFactory(community=s.a)
    cadre_b = StationedCadreFactory(community=s.b)
    return World(
        s,
        committee,
        org_a,
        org_b,
        branch_a1,
        branch_a2,
        branch_b1,
        group_a1,
        group_b1,
        member_a1,
        member_a2,
        member_b1,
        member_org_a,
        firm_a1,
        firm_b1,
        worker_a1,
        worker_b1,
        cadre_a,
        cadre_b,
    )
