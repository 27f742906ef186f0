"""Versioned grid boundaries: history stays queryable, buildings follow their grid."""

from datetime import date

import pytest
from django.contrib.gis.geos import Point
from django.db import IntegrityError, connection, transaction
from django.db.backends.postgresql.psycopg_any import DateRange

from grid import selectors, services
from grid.errors import BoundaryConflict, InvalidGeometry
from grid.models import Building, Community, GridBoundary, GridBoundaryPart
from tests.factories import ORIGIN, BuildingFactory, CommunityFactory, GridCellFactory, multi, rect, square

X0, Y0 = ORIGIN
D1 = date(2024, 1, 1)
D2 = date(2025, 3, 1)

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_grids():
    """A community split into a west and an east grid at X0 + 0.005."""
    community = CommunityFactory()
    west = GridCellFactory(community=community, boundary=rect(X0, Y0, X0 + 0.005, Y0 + 0.01), valid_from=D1)
    east = GridCellFactory(
        community=community, boundary=rect(X0 + 0.005, Y0, X0 + 0.01, Y0 + 0.01), valid_from=D1
    )
    return community, west, east


def test_point_lookup_answers_for_the_date_asked(two_grids):
    community, west, east = two_grids
    point = Point(X0 + 0.004, Y0 + 0.005, srid=4326)
    assert selectors.grid_cell_at(point=point, on_date=D2) == west

    # The planner moves the line west on D2: the point now falls in the east grid.
    services.grid_boundaries_set(
        shapes={
            west.id: rect(X0, Y0, X0 + 0.003, Y0 + 0.01),
            east.id: rect(X0 + 0.003, Y0, X0 + 0.01, Y0 + 0.01),
        },
        valid_from=D2,
    )
    assert selectors.grid_cell_at(point=point, on_date=date(2025, 2, 28)) == west
    assert selectors.grid_cell_at(point=point, on_date=D2) == east
    assert selectors.grid_cell_at(point=point) == east
    # Before any boundary existed, the point was in no grid.
    assert selectors.grid_cell_at(point=point, on_date=date(2023, 12, 31)) is None


def test_redraw_closes_the_old_version_and_keeps_it(two_grids):
    _, west, _ = two_grids
    services.grid_boundary_set(
        cell=west, geom=rect(X0, Y0, X0 + 0.004, Y0 + 0.01), valid_from=D2, note="拆分调整"
    )
    versions = list(selectors.grid_cell_history(cell=west))
    assert [(v.valid.lower, v.valid.upper) for v in versions] == [(D1, D2), (D2, None)]
    assert versions[1].note == "拆分调整"
    # The old shape is unchanged.
    assert versions[0].geom.equals(multi(rect(X0, Y0, X0 + 0.005, Y0 + 0.01)))


def test_point_on_shared_edge_belongs_to_exactly_one_grid(two_grids):
    _, west, east = two_grids
    on_edge = Point(X0 + 0.005, Y0 + 0.005, srid=4326)
    # Covers, not Contains: the point is not lost; the lower code wins, deterministically.
    assert selectors.grid_cell_at(point=on_edge, on_date=D2) == min(west, east, key=lambda c: c.code)


def test_same_shape_twice_makes_no_new_version(two_grids):
    _, west, _ = two_grids
    result = services.grid_boundaries_set(
        shapes={west.id: rect(X0, Y0, X0 + 0.005, Y0 + 0.01)}, valid_from=D2
    )
    assert result.unchanged == 1 and result.redrawn == 0 and result.created == 0
    assert GridBoundary.objects.filter(cell=west).count() == 1


def test_redraw_on_the_start_day_corrects_in_place(two_grids):
    _, west, _ = two_grids
    result = services.grid_boundaries_set(
        shapes={west.id: rect(X0, Y0, X0 + 0.0045, Y0 + 0.01)}, valid_from=D1
    )
    assert result.corrected == 1
    assert GridBoundary.objects.filter(cell=west).count() == 1


def test_rewriting_the_past_before_a_later_version_is_refused(two_grids):
    _, west, _ = two_grids
    services.grid_boundary_set(cell=west, geom=rect(X0, Y0, X0 + 0.004, Y0 + 0.01), valid_from=D2)
    before = list(GridBoundary.objects.values_list("id", "valid", "geom"))
    with pytest.raises(BoundaryConflict) as err:
        services.grid_boundary_set(
            cell=west, geom=rect(X0, Y0, X0 + 0.003, Y0 + 0.01), valid_from=date(2024, 6, 1)
        )
    assert err.value.code == "boundary_conflict"
    assert west.code in err.value.message
    assert list(GridBoundary.objects.values_list("id", "valid", "geom")) == before


def test_database_refuses_overlapping_versions(two_grids):
    _, west, _ = two_grids
    with pytest.raises(IntegrityError), transaction.atomic():
        GridBoundary.objects.create(
            cell=west, geom=multi(square(X0, Y0, 0.001)), valid=DateRange(date(2024, 5, 1), date(2024, 6, 1))
        )


def test_invalid_geometry_is_refused_and_nothing_written(two_grids):
    _, west, _ = two_grids
    from django.contrib.gis.geos import Polygon

    bow_tie = Polygon(
        ((X0, Y0), (X0 + 0.01, Y0 + 0.01), (X0 + 0.01, Y0), (X0, Y0 + 0.01), (X0, Y0)), srid=4326
    )
    count = GridBoundary.objects.count()
    with pytest.raises(InvalidGeometry) as err:
        services.grid_boundary_set(cell=west, geom=bow_tie, valid_from=D2)
    assert err.value.code == "geometry_invalid"
    assert GridBoundary.objects.count() == count


def test_wrong_srid_is_refused(two_grids):
    _, west, _ = two_grids
    geom = rect(X0, Y0, X0 + 0.004, Y0 + 0.01)
    geom.srid = 3857
    with pytest.raises(InvalidGeometry) as err:
        services.grid_boundary_set(cell=west, geom=geom, valid_from=D2)
    assert err.value.code == "crs_mismatch"


def test_subdivided_parts_cover_the_boundary_exactly(two_grids):
    _, west, _ = two_grids
    # A boundary with many vertices (a 600-gon) is cut into pieces of at most 128 vertices.
    circle = Point(X0 + 0.0025, Y0 + 0.005, srid=4326).buffer(0.002, quadsegs=150)
    boundary = services.grid_boundary_set(cell=west, geom=circle, valid_from=D2)
    parts = GridBoundaryPart.objects.filter(boundary=boundary)
    assert parts.count() > 1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT max(ST_NPoints(geom)), ST_Equals(ST_Union(geom), %s::geometry) "
            "FROM grid_gridboundarypart WHERE boundary_id = %s",
            [boundary.geom.ewkt, boundary.id],
        )
        max_points, same = cursor.fetchone()
    assert max_points <= 128 + 1
    assert same
    # Old parts of a superseded version stay with that version.
    old = GridBoundary.objects.get(cell=west, valid__upper_inf=False)
    assert GridBoundaryPart.objects.filter(boundary=old).exists()


def test_building_goes_to_the_grid_with_the_largest_share_of_its_footprint(two_grids):
    community, west, east = two_grids
    # Straddles the line at X0+0.005: 30% west, 70% east. Its first vertex lies in the west grid.
    footprint = rect(X0 + 0.0047, Y0 + 0.002, X0 + 0.0057, Y0 + 0.0025)
    building = BuildingFactory(community=community, geom=footprint)
    services.buildings_reassign(community_ids=[community.id])
    building.refresh_from_db()
    assert building.grid_cell == east
    # Its stored position is inside the footprint (point on surface), never the first vertex.
    assert footprint.covers(building.point)


def test_buildings_follow_a_redraw_in_the_same_transaction(two_grids):
    community, west, east = two_grids
    building = BuildingFactory(community=community, geom=square(X0 + 0.0035, Y0 + 0.004, 0.0003))
    services.buildings_reassign(community_ids=[community.id])
    building.refresh_from_db()
    assert building.grid_cell == west
    version_before = Community.objects.get(id=community.id).data_version

    result = services.grid_boundaries_set(
        shapes={
            west.id: rect(X0, Y0, X0 + 0.003, Y0 + 0.01),
            east.id: rect(X0 + 0.003, Y0, X0 + 0.01, Y0 + 0.01),
        },
        valid_from=D2,
    )
    building.refresh_from_db()
    assert result.buildings_moved == 1
    assert building.grid_cell == east
    assert Community.objects.get(id=community.id).data_version > version_before


def test_building_outside_every_grid_has_none(two_grids):
    community, _, _ = two_grids
    building = BuildingFactory(community=community, geom=square(X0 + 0.05, Y0 + 0.05, 0.0002))
    assert services.buildings_reassign(community_ids=[community.id]) == 0
    building.refresh_from_db()
    assert building.grid_cell is None
    assert building in selectors.buildings_without_grid()


def test_reassign_is_idempotent(two_grids):
    community, _, _ = two_grids
    for i in range(5):
        BuildingFactory(community=community, geom=square(X0 + 0.001 + i * 0.0015, Y0 + 0.003, 0.0002))
    Building.objects.update(grid_cell=None)
    assert services.buildings_reassign(community_ids=[community.id]) == 5
    assert services.buildings_reassign(community_ids=[community.id]) == 0


def test_retired_grid_keeps_its_history(two_grids):
    _, west, _ = two_grids
    point = Point(X0 + 0.001, Y0 + 0.001, srid=4326)
    services.grid_cell_retire(cell=west, valid_to=D2)
    assert selectors.grid_cell_at(point=point, on_date=D2) is None
    assert selectors.grid_cell_at(point=point, on_date=date(2024, 12, 31)) == west
    with pytest.raises(BoundaryConflict):
        services.grid_cell_retire(cell=west, valid_to=D2)
