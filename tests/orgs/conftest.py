"""A small street for the orgs tests: two side-by-side communities, three grids, three buildings.

Community A (west) has grids A1 (west half) and A2 (east half); community B (east) has grid B1.
One building stands in each grid, assigned by the grid service.
"""

from dataclasses import dataclass

import pytest

from grid.models import Building, Community, GridCell, Street
from grid.services import buildings_reassign
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

X, Y = ORIGIN


@dataclass
class Space:
    street: Street
    a: Community
    b: Community
    a1: GridCell
    a2: GridCell
    b1: GridCell
    house_a1: Building
    house_a2: Building
    house_b1: Building


@pytest.fixture
def space(db) -> Space:
    street = StreetFactory(geom=multi(rect(X, Y, X + 0.02, Y + 0.01)))
    a = CommunityFactory(street=street, geom=multi(rect(X, Y, X + 0.01, Y + 0.01)), residents=3000)
    b = CommunityFactory(street=street, geom=multi(rect(X + 0.01, Y, X + 0.02, Y + 0.01)), residents=3000)
    house_a1 = BuildingFactory(community=a, geom=square(X + 0.002, Y + 0.002, 0.0005))
    house_a2 = BuildingFactory(community=a, geom=square(X + 0.007, Y + 0.002, 0.0005))
    house_b1 = BuildingFactory(community=b, geom=square(X + 0.012, Y + 0.002, 0.0005))
    a1 = GridCellFactory(community=a, boundary=rect(X, Y, X + 0.005, Y + 0.01))
    a2 = GridCellFactory(community=a, boundary=rect(X + 0.005, Y, X + 0.01, Y + 0.01))
    b1 = GridCellFactory(community=b, boundary=rect(X + 0.01, Y, X + 0.02, Y + 0.01))
    buildings_reassign()
    for house in (house_a1, house_a2, house_b1):
        house.refresh_from_db()
    return Space(street, a, b, a1, a2, b1, house_a1, house_a2, house_b1)
