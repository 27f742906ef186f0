"""A small street whose coverage gaps are known by construction (tests/mapping).

    X,Y                X+0.005             X+0.01              X+0.02        X+0.05
     +-------------------+-------------------+-------------------+    ...    +--------+
     | A1: branch,       | A2: no branch,    | B: no grids, no   |           | C:     |
     | active worker     | inactive worker   | org, no centre of |           | empty  |
     |  h1 (3 residents, |  h3 never visited |  its own (A's     |           |        |
     |  no group)        |                   |  centre reaches   |           |        |
     |  h2 (group, last  |   centre (A) at   |  its west part)   |           |        |
     |  visit 100 d ago) |   X+0.005,Y+0.005 |                   |           |        |
     +-------------------+-------------------+-------------------+           +--------+

Street S has a working committee; community A an organisation; B and C none. Everything in the
comments of `scene` below is what the recompute must find (tests/mapping/test_gaps_kinds.py).
The run's moment is AT (2026-03-16 12:00 Shanghai): the month is half gone (16/31).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.contrib.gis.geos import Point

from grid.models import Building, Community, GridCell, ServiceCentre, Street
from grid.services import buildings_reassign
from orgs.models import (
    Enterprise,
    GridWorker,
    PartyMember,
    PartyOrganisation,
    StationContact,
    StationedCadre,
    Visit,
)
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
from tests.orgs_factories import (
    BuildingGroupFactory,
    CadreFactory,
    CommunityOrgFactory,
    EnterpriseFactory,
    GridBranchFactory,
    GridWorkerFactory,
    PartyMemberFactory,
    StationedCadreFactory,
    StreetCommitteeFactory,
)

X, Y = ORIGIN
SHANGHAI = ZoneInfo("Asia/Shanghai")
AT = datetime(2026, 3, 16, 12, 0, tzinfo=SHANGHAI)


@dataclass
class Scene:
    street: Street
    committee: PartyOrganisation
    a: Community
    b: Community
    c: Community
    a_org: PartyOrganisation
    a1: GridCell
    a2: GridCell
    a1_branch: PartyOrganisation
    h1: Building
    h2: Building
    h3: Building
    shop: Building
    group_h2: PartyOrganisation
    worker_a1: GridWorker
    worker_a2: GridWorker
    unattached: PartyMember
    lost: PartyMember
    firm_should_form: Enterprise
    firm_uncovered: Enterprise
    firm_instructed: Enterprise
    firm_own_org: Enterprise
    cadre_behind: StationedCadre
    cadre_on_pace: StationedCadre
    centre: ServiceCentre


def events_user() -> User:
    return User.objects.get_or_create(username="gap-events")[0]


def visit(building: Building, when: datetime) -> Visit:
    """A household visit to `building` (test data written directly: the sync path is tested in orgs)."""
    user = events_user()
    return Visit.objects.create(
        id=uuid.uuid4(), occurred_at=when, reporter=user, reporter_name="测试网格员", place=building.point,
        community=building.community, grid_cell=building.grid_cell, building=building,
        kind=Visit.Kind.HOUSEHOLD, household="101室", payload_hash="x" * 64,
    )


def check_in(cadre: StationedCadre, when: datetime, *, on_site: bool = True) -> StationContact:
    user = events_user()
    place = cadre.community.geom.point_on_surface
    return StationContact.objects.create(
        id=uuid.uuid4(), occurred_at=when, reporter=user, reporter_name=cadre.name, place=place,
        community=cadre.community, kind=StationContact.Kind.CHECK_IN, cadre=cadre, on_site=on_site,
        payload_hash="x" * 64,
    )


@pytest.fixture
def scene(db) -> Scene:
    street = StreetFactory(geom=multi(rect(X, Y, X + 0.06, Y + 0.01)))
    committee = StreetCommitteeFactory(street=street)
    a = CommunityFactory(street=street, geom=multi(rect(X, Y, X + 0.01, Y + 0.01)))
    # B: no grid cells and no organisation; the nearest centre is A's (its west part is in reach).
    b = CommunityFactory(street=street, geom=multi(rect(X + 0.01, Y, X + 0.02, Y + 0.01)))
    # C: empty and far from everything: wholly ungridded and wholly beyond any centre.
    c = CommunityFactory(street=street, geom=multi(rect(X + 0.05, Y, X + 0.06, Y + 0.01)))
    a_org = CommunityOrgFactory(community=a, parent=committee)

    h1 = BuildingFactory(community=a, geom=square(X + 0.001, Y + 0.001, 0.0003), households=24)
    h2 = BuildingFactory(community=a, geom=square(X + 0.002, Y + 0.004, 0.0003), households=24)
    h3 = BuildingFactory(community=a, geom=square(X + 0.007, Y + 0.002, 0.0003), households=24)
    # Not residential: never an unvisited-building gap, and not in a grid's household count.
    shop = BuildingFactory(
        community=a, geom=square(X + 0.003, Y + 0.007, 0.0003), households=0, kind=Building.Kind.COMMERCIAL
    )
    a1 = GridCellFactory(community=a, boundary=rect(X, Y, X + 0.005, Y + 0.01))
    a2 = GridCellFactory(community=a, boundary=rect(X + 0.005, Y, X + 0.01, Y + 0.01))
    buildings_reassign()
    for house in (h1, h2, h3, shop):
        house.refresh_from_db()

    # A1 has a branch; A2 none -> grid_without_branch A2 (warning: nobody lives in A2 as a member).
    a1_branch = GridBranchFactory(grid_cell=a1, parent=a_org)
    # h2 has its group; h1 has three residents (one unattached) and none -> building_without_group h1.
    group_h2 = BuildingGroupFactory(buildings=[h2], parent=a1_branch)
    for _ in range(2):
        PartyMemberFactory(residence_building=h1, organisation=a1_branch)
    unattached = PartyMemberFactory(name="王小明", residence_building=h1, organisation=None)
    # Lost contact but still in h2's group: member_lost_contact, answered by the group.
    lost = PartyMemberFactory(
        name="李四", residence_building=h2, organisation=group_h2, category=PartyMember.Category.LOST_CONTACT
    )

    # Workers: A1 active -> no gap; A2's only worker is inactive -> grid_without_worker A2.
    worker_a1 = GridWorkerFactory(community=a, grid_cells=[a1])
    worker_a2 = GridWorkerFactory(community=a, grid_cells=[a2])
    GridWorker.objects.filter(pk=worker_a2.pk).update(active=False)

    # Visits: h1 ten days ago; h2 100 days ago (unvisited, warning: under twice the interval);
    # h3 never (unvisited, serious). A1: 24 of 48 households visited = 50 %, not under the
    # minimum; A2: 0 of 24 -> grid_low_visit_rate A2 (serious: under half the minimum).
    visit(h1, AT - timedelta(days=10))
    visit(h2, AT - timedelta(days=100))

    # Enterprises in A1 (by point).
    def firm(name: str, dx: float, **kwargs) -> Enterprise:
        return EnterpriseFactory(name=name, point=Point(X + dx, Y + 0.008, srid=4326), **kwargs)

    firm_should_form = firm("应建公司", 0.001)  # 3 full members, no org -> should form one
    for _ in range(3):
        PartyMemberFactory(work_enterprise=firm_should_form, organisation=a1_branch)
    PartyMemberFactory(  # a probationary member does not count towards the three
        work_enterprise=firm_should_form, organisation=a1_branch, status=PartyMember.Status.PROBATIONARY
    )
    firm_uncovered = firm("空白公司", 0.002)  # nothing at all -> uncovered
    instructor = CadreFactory(street=street)
    firm_instructed = firm("指导员公司", 0.003, instructor=instructor)  # covered by an instructor
    firm_own_org = firm("有组织公司", 0.004)
    from orgs import services as org_services

    org_services.party_org_create(
        kind=PartyOrganisation.Kind.ENTERPRISE_ORG, level=PartyOrganisation.Level.BRANCH, name="有组织公司党支部",
        code="ENT00001", street=street, parent=a_org, premises=firm_own_org,
    )
    for _ in range(3):
        PartyMemberFactory(work_enterprise=firm_own_org, organisation=a1_branch)

    # Stationed cadres in A, 8 days a month each; on the 16th, 15 of 31 days are over and the pace
    # asks for 0.8 × 8 × 15/31 = 3.1 days: three on-site days are behind, four are not. An off-site
    # check-in and one of last month do not count.
    cadre_behind = StationedCadreFactory(community=a, name="驻点甲", period_start=AT.date().replace(day=1, month=1))
    cadre_on_pace = StationedCadreFactory(community=a, name="驻点乙", period_start=AT.date().replace(day=1, month=1))
    for day in (2, 3, 4):
        check_in(cadre_behind, AT.replace(day=day, hour=9))
    check_in(cadre_behind, AT.replace(day=5, hour=9), on_site=False)
    check_in(cadre_behind, AT.replace(month=2, day=27, hour=9))
    for day in (2, 3, 4, 5):
        check_in(cadre_on_pace, AT.replace(day=day, hour=9))
    # A posting that ended last month is no longer anyone's concern.
    StationedCadreFactory(
        community=a, name="驻点丙", period_start=AT.date().replace(month=1, day=1),
        period_end=AT.date().replace(month=2, day=28),
    )

    centre = ServiceCentreFactory(
        street=street, community=a, level=ServiceCentre.Level.COMMUNITY, geom=Point(X + 0.005, Y + 0.005, srid=4326)
    )
    return Scene(
        street, committee, a, b, c, a_org, a1, a2, a1_branch, h1, h2, h3, shop, group_h2, worker_a1, worker_a2,
        unattached, lost, firm_should_form, firm_uncovered, firm_instructed, firm_own_org, cadre_behind,
        cadre_on_pace, centre,
    )
