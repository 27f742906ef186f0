"""A community whose planning answers are known by construction (tests/mapping/test_plans_*.py).

    X         X+0.004      X+0.008       X+0.012      (0.004° ≈ 415 m east-west, 445 m north-south)
    +------------+------------+------------+  Y+0.004
    |  A         |  B         |  C         |
    |  a1  a2    |  b1        | c1 c2 c3   |   every building 100 households
    |  a3  a4    |  b2        | c4 c5 c6   |
    +------------+------------+------------+  Y
    A: 400 (in range), worker, branch      B: 200 (-100), worker, branch
    C: 600 (+100), no worker, branch; c1 and c4 (its western column, x+0.0085…0.0089) hold the
    building group G with two members living in c1; an enterprise sits in c4 (by its building)
    and one in C by its point only (x+0.0115).

Moving C's western column into B (B to X+0.0092) brings every cell into range: A 400, B 400,
C 400, 200 households moved. Each cell is a rectangle, Polsby-Popper π·w·h/(w+h)².
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.gis.geos import Point, Polygon

from grid.models import Building, Community, GridCell
from grid.services import buildings_reassign
from orgs.models import Enterprise, GridWorker, PartyMember, PartyOrganisation
from tests.factories import (
    ORIGIN,
    BuildingFactory,
    CommunityFactory,
    GridCellFactory,
    StreetFactory,
    multi,
    rect,
    square,
)
from tests.orgs_factories import (
    BuildingGroupFactory,
    CommunityOrgFactory,
    EnterpriseFactory,
    GridBranchFactory,
    GridWorkerFactory,
    PartyMemberFactory,
    StreetCommitteeFactory,
)

X, Y = ORIGIN
SIZE = 0.0004


@dataclass
class PlanScene:
    community: Community
    a: GridCell
    b: GridCell
    c: GridCell
    buildings: dict[str, Building]
    branch_a: PartyOrganisation
    branch_b: PartyOrganisation
    branch_c: PartyOrganisation
    group: PartyOrganisation
    members: list[PartyMember]
    worker_a: GridWorker
    worker_b: GridWorker
    firm_in_c4: Enterprise
    firm_by_point: Enterprise


def column(x0: float) -> Polygon:
    return rect(x0, Y, x0 + 0.004, Y + 0.004)


@pytest.fixture(name="plan_scene")
def plan_scene_fixture(db) -> PlanScene:
    street = StreetFactory(geom=multi(rect(X, Y, X + 0.03, Y + 0.01)))
    committee = StreetCommitteeFactory(street=street)
    community = CommunityFactory(street=street, geom=multi(rect(X, Y, X + 0.012, Y + 0.004)))
    CommunityOrgFactory(community=community, parent=committee)
    spots = {
        "a1": (X + 0.001, Y + 0.002), "a2": (X + 0.002, Y + 0.002),
        "a3": (X + 0.001, Y + 0.001), "a4": (X + 0.002, Y + 0.001),
        "b1": (X + 0.005, Y + 0.002), "b2": (X + 0.005, Y + 0.001),
        "c1": (X + 0.0085, Y + 0.002), "c2": (X + 0.0095, Y + 0.002), "c3": (X + 0.0105, Y + 0.002),
        "c4": (X + 0.0085, Y + 0.001), "c5": (X + 0.0095, Y + 0.001), "c6": (X + 0.0105, Y + 0.001),
    }
    buildings = {
        name: BuildingFactory(community=community, code=f"PB{name.upper()}", name=f"{name}栋",
                              geom=square(x, y, SIZE), households=100)
        for name, (x, y) in spots.items()
    }
    a = GridCellFactory(community=community, boundary=column(X), name="甲网格")
    b = GridCellFactory(community=community, boundary=column(X + 0.004), name="乙网格")
    c = GridCellFactory(community=community, boundary=column(X + 0.008), name="丙网格")
    buildings_reassign()
    for house in buildings.values():
        house.refresh_from_db()
    branch_a = GridBranchFactory(grid_cell=a)
    branch_b = GridBranchFactory(grid_cell=b)
    branch_c = GridBranchFactory(grid_cell=c)
    group = BuildingGroupFactory(buildings=[buildings["c1"], buildings["c4"]], parent=branch_c)
    members = [PartyMemberFactory(residence_building=buildings["c1"], organisation=group) for _ in range(2)]
    worker_a = GridWorkerFactory(community=community, grid_cells=[a])
    worker_b = GridWorkerFactory(community=community, grid_cells=[b])
    firm_in_c4 = EnterpriseFactory(name="西列企业", building=buildings["c4"])
    firm_by_point = EnterpriseFactory(name="东端企业", point=Point(X + 0.0115, Y + 0.0035, srid=4326))
    return PlanScene(
        community, a, b, c, buildings, branch_a, branch_b, branch_c, group, members, worker_a, worker_b, firm_in_c4,
        firm_by_point,
    )


def geojson(poly: Polygon) -> dict:
    import json

    return json.loads(poly.json)
