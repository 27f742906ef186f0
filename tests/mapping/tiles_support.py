"""What the tile tests share: a small street built through the services, a Mapbox Vector Tile
reader (protobuf by hand: a few dozen lines instead of a dependency) and tile arithmetic.

    X                 X+0.005            X+0.01   X+0.03            X+0.04
    +-----------------+------------------+  ...   +-----------------+
    | A1 (branch)     | A2 (no branch)   |        | B (one grid)    |
    |  h_members: 3   |  h_unvisited:    |        |  h_b            |
    |   members, no   |   never visited  |        |                 |
    |   group, seen   |  h_a2_seen:      |        |                 |
    |   10 days ago   |   visited today  |        |                 |
    |  h_grouped:     |                  |        |                 |
    |   group, seen   |                  |        |                 |
    |  a cadre's      |                  |        |                 |
    |   check-in      |                  |        |                 |
    +-----------------+------------------+        +-----------------+

A and B are communities of one street, 0.02° apart, so a z16 tile of one never meets the other.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.contrib.gis.geos import Point
from django.utils import timezone

from grid.models import Building, Community, GridCell, Role, ServiceCentre, Street
from grid.services import buildings_reassign
from orgs.models import StationContact, StationedCadre, Visit
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
    CommunityOrgFactory,
    GridBranchFactory,
    PartyMemberFactory,
    StationedCadreFactory,
    StreetCommitteeFactory,
)
from tests.people import user_with

X, Y = ORIGIN


# --- tile arithmetic ---------------------------------------------------------------------------


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


def tile_bounds(tile: tuple[int, int, int]) -> tuple[float, float, float, float]:
    """(west, south, east, north) of a tile in degrees."""
    z, x, y = tile
    n = 2**z

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)


def tile_url(layer: str, tile: tuple[int, int, int], query: str = "") -> str:
    z, x, y = tile
    return f"/tiles/{layer}/{z}/{x}/{y}.mvt" + (f"?{query}" if query else "")


def centre_of(building: Building) -> tuple[float, float]:
    return building.point.x, building.point.y


# --- reading a vector tile -----------------------------------------------------------------------

GEOMETRY_TYPES = {0: "Unknown", 1: "Point", 2: "LineString", 3: "Polygon"}


@dataclass
class Feature:
    id: int | None
    type: str
    properties: dict[str, Any]
    first_point: tuple[int, int] | None = None


@dataclass
class Layer:
    name: str
    extent: int = 4096
    features: list[Feature] = field(default_factory=list)


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes):
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            size, i = _varint(buf, i)
            value, i = buf[i : i + size], i + size
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield number, wire, value


def _packed(buf: bytes) -> list[int]:
    out, i = [], 0
    while i < len(buf):
        value, i = _varint(buf, i)
        out.append(value)
    return out


def _zigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def _value(buf: bytes) -> Any:
    import struct

    for number, _, raw in _fields(buf):
        if number == 1:
            return raw.decode()
        if number == 2:
            return struct.unpack("<f", raw)[0]
        if number == 3:
            return struct.unpack("<d", raw)[0]
        if number in (4, 5):
            return raw if raw < 2**63 else raw - 2**64
        if number == 6:
            return _zigzag(raw)
        if number == 7:
            return bool(raw)
    return None


def _feature(buf: bytes, keys: list[str], values: list[Any]) -> Feature:
    fid, tags, gtype, geometry = None, [], 0, []
    for number, _, raw in _fields(buf):
        if number == 1:
            fid = raw
        elif number == 2:
            tags = _packed(raw)
        elif number == 3:
            gtype = raw
        elif number == 4:
            geometry = _packed(raw)
    props = {keys[tags[i]]: values[tags[i + 1]] for i in range(0, len(tags), 2)}
    first = None
    if len(geometry) >= 3 and geometry[0] & 7 == 1:  # MoveTo
        first = (_zigzag(geometry[1]), _zigzag(geometry[2]))
    return Feature(fid, GEOMETRY_TYPES[gtype], props, first)


def decode(tile: bytes) -> dict[str, Layer]:
    """The layers of an MVT, each with its features (id, type, properties, first point)."""
    layers: dict[str, Layer] = {}
    for number, _, raw in _fields(tile):
        if number != 3:
            continue
        name, extent, keys, values, raw_features = "", 4096, [], [], []
        for n, _, v in _fields(raw):
            if n == 1:
                name = v.decode()
            elif n == 2:
                raw_features.append(v)
            elif n == 3:
                keys.append(v.decode())
            elif n == 4:
                values.append(_value(v))
            elif n == 5:
                extent = v
        layers[name] = Layer(name, extent, [_feature(f, keys, values) for f in raw_features])
    return layers


def features(body: bytes, layer: str) -> list[Feature]:
    """The features of `layer` in a tile body ([] for an empty tile)."""
    found = decode(body).get(layer)
    return found.features if found else []


# --- the world -------------------------------------------------------------------------------------


@dataclass
class World:
    street: Street
    a: Community
    b: Community
    a1: GridCell
    a2: GridCell
    b1: GridCell
    h_members: Building
    h_grouped: Building
    h_unvisited: Building
    h_a2_seen: Building
    h_b: Building
    centre: ServiceCentre
    street_admin: User
    worker_a1: User
    worker_a1_twin: User
    admin_b: User


def visit(building: Building, when: datetime) -> Visit:
    """A household visit (test data written directly: the sync path is tested in orgs)."""
    user = User.objects.get_or_create(username="tile-visits")[0]
    return Visit.objects.create(
        id=uuid.uuid4(),
        occurred_at=when,
        reporter=user,
        reporter_name="测试网格员",
        place=building.point,
        community=building.community,
        grid_cell=building.grid_cell,
        building=building,
        kind=Visit.Kind.HOUSEHOLD,
        household="101室",
        payload_hash="x" * 64,
    )


def check_in(cadre: StationedCadre, place: Point, when: datetime, *, on_site: bool = True) -> StationContact:
    user = User.objects.get_or_create(username="tile-visits")[0]
    return StationContact.objects.create(
        id=uuid.uuid4(),
        occurred_at=when,
        reporter=user,
        reporter_name=cadre.name,
        place=place,
        community=cadre.community,
        kind=StationContact.Kind.CHECK_IN,
        cadre=cadre,
        on_site=on_site,
        payload_hash="x" * 64,
    )


def build_world() -> World:
    street = StreetFactory(geom=multi(rect(X, Y, X + 0.04, Y + 0.01)))
    committee = StreetCommitteeFactory(street=street)
    a = CommunityFactory(street=street, name="甲社区", geom=multi(rect(X, Y, X + 0.01, Y + 0.01)))
    b = CommunityFactory(street=street, name="乙社区", geom=multi(rect(X + 0.03, Y, X + 0.04, Y + 0.01)))
    a_org = CommunityOrgFactory(community=a, parent=committee)
    CommunityOrgFactory(community=b, parent=committee)
    a1 = GridCellFactory(community=a, name="甲一网格", boundary=rect(X, Y, X + 0.005, Y + 0.01))
    a2 = GridCellFactory(community=a, name="甲二网格", boundary=rect(X + 0.005, Y, X + 0.01, Y + 0.01))
    b1 = GridCellFactory(community=b, name="乙一网格", boundary=rect(X + 0.03, Y, X + 0.04, Y + 0.01))
    h_members = BuildingFactory(
        community=a, name="甲1栋", geom=square(X + 0.001, Y + 0.001, 0.0003), households=30
    )
    h_grouped = BuildingFactory(
        community=a, name="甲2栋", geom=square(X + 0.002, Y + 0.002, 0.0003), households=20
    )
    h_unvisited = BuildingFactory(community=a, name="甲3栋", geom=square(X + 0.007, Y + 0.001, 0.0003))
    h_a2_seen = BuildingFactory(community=a, name="甲4栋", geom=square(X + 0.008, Y + 0.002, 0.0003))
    h_b = BuildingFactory(community=b, name="乙1栋", geom=square(X + 0.035, Y + 0.005, 0.0003))
    buildings_reassign()
    for house in (h_members, h_grouped, h_unvisited, h_a2_seen, h_b):
        house.refresh_from_db()
    branch = GridBranchFactory(grid_cell=a1, parent=a_org)
    BuildingGroupFactory(buildings=[h_grouped], parent=branch)
    for _ in range(3):
        PartyMemberFactory(residence_building=h_members, organisation=branch)
    now = timezone.now()
    visit(h_members, now - timedelta(days=10))
    visit(h_grouped, now - timedelta(days=1))
    visit(h_a2_seen, now - timedelta(hours=1))
    visit(h_b, now - timedelta(days=2))
    cadre = StationedCadreFactory(community=a, name="驻点干部甲")
    check_in(cadre, Point(X + 0.001, Y + 0.008, srid=4326), now - timedelta(days=1))
    centre = ServiceCentreFactory(
        street=street, level=ServiceCentre.Level.STREET, geom=Point(X + 0.004, Y + 0.008, srid=4326)
    )
    return World(
        street,
        a,
        b,
        a1,
        a2,
        b1,
        h_members,
        h_grouped,
        h_unvisited,
        h_a2_seen,
        h_b,
        centre,
        street_admin=user_with(Role.STREET_ADMIN, street=street),
        worker_a1=user_with(Role.GRID_WORKER, grid_cell=a1),
        worker_a1_twin=user_with(Role.GRID_WORKER, grid_cell=a1),
        admin_b=user_with(Role.COMMUNITY_ADMIN, community=b),
    )
