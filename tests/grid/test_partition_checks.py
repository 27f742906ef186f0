"""Grids partition their community: every boundary write (service, admin, import) refuses a cell
that leaves its community or overlaps a neighbour, with its code and nothing written, and reports
the parts no cell covers. The check itself (grid.partition) answers for unsaved shapes too."""

from datetime import date

import pytest
from django.contrib.gis.geos import MultiPolygon
from django.db.backends.postgresql.psycopg_any import DateRange

from grid import partition, services
from grid.errors import PartitionInvalid
from grid.importers import ImportRejected, units_import
from grid.models import AuditEvent, Building, Community, GridBoundary, GridCell
from tests.factories import (
    ORIGIN,
    BuildingFactory,
    CommunityFactory,
    GridCellFactory,
    StreetFactory,
    multi,
    rect,
)
from tests.grid.test_import_bad_files import feature, ring, write_geojson

X0, Y0 = ORIGIN
D1 = date(2024, 1, 1)
D2 = date(2025, 3, 1)
D3 = date(2025, 9, 1)
# At 21.2°N, 0.001° is about 104 m east-west and 111 m north-south.
MID = X0 + 0.005

pytestmark = pytest.mark.django_db


def west_half(dx: float = 0.0):
    return rect(X0, Y0, MID + dx, Y0 + 0.01)


def east_half(dx: float = 0.0):
    return rect(MID + dx, Y0, X0 + 0.01, Y0 + 0.01)


@pytest.fixture
def community():
    street = StreetFactory(code="440803001")
    return CommunityFactory(street=street, code="440803001001", geom=multi(rect(X0, Y0, X0 + 0.01, Y0 + 0.01)))


@pytest.fixture
def two_grids(community):
    west = GridCellFactory(community=community, code="440803001001001", boundary=west_half(), valid_from=D1)
    east = GridCellFactory(community=community, code="440803001001002", boundary=east_half(), valid_from=D1)
    house = BuildingFactory(community=community, geom=rect(X0 + 0.001, Y0 + 0.001, X0 + 0.0013, Y0 + 0.0013))
    services.buildings_reassign(community_ids=[community.pk])
    return west, east, house


def written(community) -> tuple:
    """Everything a refused boundary write must leave as it was."""
    return (
        list(GridBoundary.objects.order_by("id").values_list("id", "cell_id", "valid", "geom")),
        AuditEvent.objects.count(),
        Community.objects.get(pk=community.pk).data_version,
        list(Building.objects.order_by("id").values_list("id", "grid_cell_id")),
    )


# --- the check on shapes (grid.partition) ------------------------------------------------------


def test_a_clean_partition_has_no_problems(community):
    report = partition.partition_check(community=community, cells={"W": west_half(), "E": east_half()})
    assert report.ok and report.problems == () and report.mismatched_edges == {}


def test_overlap_leak_and_gap_each_have_their_code_cells_area_and_geometry(community):
    cells = {
        "W": west_half(dx=0.001),  # overlaps E by ~104 m × 1110 m
        "E": rect(MID, Y0, X0 + 0.011, Y0 + 0.009),  # leaks ~104 m east, leaves a strip uncovered
    }
    report = partition.partition_check(community=community, cells=cells)
    by_code = {p.code: p for p in report.problems}
    assert set(by_code) == {"grid_overlap", "grid_outside_community", "community_not_covered"}
    overlap = by_code["grid_overlap"]
    assert overlap.cells == ("E", "W") and overlap.severity == "error"
    assert overlap.area_m2 == pytest.approx(104 * 1000, rel=0.03)  # 0.001° × 0.009° where both lie
    assert "网格 E 与网格 W 重叠约" in overlap.message
    assert overlap.geom.srid == 4326 and overlap.geom.intersects(rect(MID, Y0, MID + 0.001, Y0 + 0.009))
    leak = by_code["grid_outside_community"]
    assert leak.cells == ("E",) and "超出社区 440803001001" in leak.message
    gap = by_code["community_not_covered"]
    assert gap.severity == "warning" and gap.cells == ()
    assert gap.area_m2 == pytest.approx(0.004 * 104_000 * 0.001 * 111_000, rel=0.05)
    assert not report.ok and {p.code for p in report.errors} == {"grid_overlap", "grid_outside_community"}
    # Drawn back on a map: WKT, and the edges that do not match a neighbour's.
    assert report.as_dict()["problems"][0]["wkt"].startswith(("POLYGON", "MULTIPOLYGON"))
    assert set(report.mismatched_edges) == {"E", "W"}


def test_slivers_below_the_tolerance_are_not_reported(community, settings):
    # A 0.5 m overlap along the 1.1 km shared edge: 550 m² in one piece.
    cells = {"W": west_half(dx=0.000005), "E": east_half()}
    settings.WANGGE_PARTITION = {"tolerance_m2": 1000}
    assert partition.partition_check(community=community, cells=cells).ok
    settings.WANGGE_PARTITION = {"tolerance_m2": 100}
    (problem,) = partition.partition_check(community=community, cells=cells).problems
    assert problem.code == "grid_overlap" and 400 < problem.area_m2 < 700


def test_an_outline_being_edited_is_checked_instead_of_the_stored_one(community):
    smaller = multi(rect(X0, Y0, X0 + 0.008, Y0 + 0.01))
    report = partition.partition_check(
        community=community, cells={"W": west_half(), "E": east_half()}, outline=smaller
    )
    assert [(p.code, p.cells) for p in report.errors] == [("grid_outside_community", ("E",))]


def test_an_invalid_draft_is_named_not_measured(community):
    bow_tie = MultiPolygon(
        rect(X0, Y0, X0 + 0.001, Y0 + 0.001), rect(X0 + 0.0005, Y0, X0 + 0.0015, Y0 + 0.001), srid=4326
    )
    report = partition.partition_check(community=community, cells={"W": bow_tie, "E": east_half()})
    assert ("geometry_invalid", ("W",)) in [(p.code, p.cells) for p in report.errors]


# --- the one boundary writer refuses, and writes nothing --------------------------------------


@pytest.mark.parametrize(
    ("shapes", "code", "cells"),
    [
        ({"west": west_half(dx=0.002)}, "grid_overlap", ["440803001001001", "440803001001002"]),
        ({"west": rect(X0 - 0.002, Y0, MID, Y0 + 0.01)}, "grid_outside_community", ["440803001001001"]),
    ],
)
def test_a_boundary_write_that_breaks_the_partition_is_refused(community, two_grids, shapes, code, cells):
    west, east, _ = two_grids
    by_name = {"west": west, "east": east}
    before = written(community)
    with pytest.raises(PartitionInvalid) as err:
        services.grid_boundaries_set(shapes={by_name[k].pk: v for k, v in shapes.items()}, valid_from=D2)
    assert err.value.code == code
    (problem,) = err.value.detail["problems"]
    assert (problem["code"], problem["cells"]) == (code, cells)
    assert all(c in err.value.message for c in cells)
    assert problem["wkt"]
    assert written(community) == before


def test_moving_a_shared_edge_is_judged_on_the_whole_set(community, two_grids):
    west, east, _ = two_grids
    # Alone, the wider west grid would overlap the east one as stored: refused.
    with pytest.raises(PartitionInvalid):
        services.grid_boundaries_set(shapes={west.pk: west_half(dx=0.002)}, valid_from=D2)
    # Written together, the two new shapes tile the community: accepted.
    result = services.grid_boundaries_set(
        shapes={west.pk: west_half(dx=0.002), east.pk: east_half(dx=0.002)}, valid_from=D2
    )
    assert result.redrawn == 2 and result.warnings == []


def test_an_uncovered_part_is_reported_and_the_write_goes_through(community, two_grids):
    west, _, _ = two_grids
    result = services.grid_boundaries_set(shapes={west.pk: west_half(dx=-0.001)}, valid_from=D2)
    assert result.redrawn == 1
    (warning,) = result.warnings
    assert (warning.code, warning.severity, warning.community) == ("community_not_covered", "warning", community.code)
    assert "不属于任何网格" in warning.message
    row = AuditEvent.objects.filter(object_type="grid.GridBoundary").latest("id")
    assert row.changes["warnings"] == ["community_not_covered"]


def test_an_overlap_stored_before_the_check_does_not_block_an_unrelated_redraw(community, two_grids):
    west, east, _ = two_grids
    # Written around the service, as data from before this rule: a third grid over the east one.
    legacy = GridCell.objects.create(community=community, code="440803001001003", name="旧网格")
    GridBoundary.objects.create(cell=legacy, geom=multi(east_half()), valid=DateRange(D1, None, "[)"))
    result = services.grid_boundaries_set(shapes={west.pk: west_half(dx=-0.0005)}, valid_from=D2)
    assert result.redrawn == 1
    assert {p.code for p in result.warnings} == {"grid_overlap", "community_not_covered"}
    # But a redraw of one of the two overlapping grids must mend it.
    with pytest.raises(PartitionInvalid) as err:
        services.grid_boundaries_set(shapes={east.pk: east_half(dx=0.0001)}, valid_from=D2)
    assert err.value.code == "grid_overlap"


def test_a_neighbour_version_starting_later_is_checked_on_its_own_day(community, two_grids):
    west, east, _ = two_grids
    # The west grid gives up a strip on D2 and takes it back on D3.
    services.grid_boundaries_set(shapes={west.pk: west_half(dx=-0.001)}, valid_from=D2)
    services.grid_boundaries_set(shapes={west.pk: west_half()}, valid_from=D3)
    before = written(community)
    # The east grid taking that strip from D2 on fits on D2 but overlaps the west grid from D3.
    with pytest.raises(PartitionInvalid) as err:
        services.grid_boundaries_set(shapes={east.pk: east_half(dx=-0.001)}, valid_from=D2)
    assert err.value.code == "grid_overlap" and f"自 {D3} 起" in err.value.message
    assert written(community) == before


# --- the importer: per-feature codes, nothing written ------------------------------------------


def test_an_overlapping_grid_file_is_refused_per_feature(community, tmp_path):
    path = write_geojson(
        tmp_path / "grids.geojson",
        [
            feature("440803001001001", [ring(west_half(dx=0.001))]),
            feature("440803001001002", [ring(east_half())]),
            feature("440803001001003", [ring(rect(X0 + 0.02, Y0, X0 + 0.021, Y0 + 0.001))]),
        ],
    )
    before = (GridCell.objects.count(), written(community))
    with pytest.raises(ImportRejected) as err:
        units_import(level="grid", path=path, partial=True)  # a partition error rejects even partial
    issues = sorted((i.index, i.code, i.error_code) for i in err.value.issues)
    assert issues == [
        (1, "440803001001001", "grid_overlap"),
        (2, "440803001001002", "grid_overlap"),
        (3, "440803001001003", "grid_outside_community"),
    ]
    assert (GridCell.objects.count(), written(community)) == before


def test_a_grid_file_leaving_a_gap_is_imported_with_a_warning(community, tmp_path):
    path = write_geojson(tmp_path / "grids.geojson", [feature("440803001001001", [ring(west_half())])])
    report = units_import(level="grid", path=path)
    assert report.created == 1
    (warning,) = report.warnings
    assert (warning.index, warning.code, warning.error_code) == (None, community.code, "community_not_covered")


def test_a_community_outline_that_leaves_its_grids_outside_is_refused(community, two_grids, tmp_path):
    path = write_geojson(
        tmp_path / "communities.geojson",
        [
            {
                "type": "Feature",
                "properties": {"code": community.code, "name": community.name},
                "geometry": {"type": "Polygon", "coordinates": [ring(west_half())]},
            }
        ],
    )
    before = (Community.objects.get(pk=community.pk).geom.wkt, written(community))
    with pytest.raises(ImportRejected) as err:
        units_import(level="community", path=path)
    assert [(i.index, i.code, i.error_code) for i in err.value.issues] == [
        (1, community.code, "grid_outside_community")
    ]
    assert "440803001001002" in err.value.issues[0].message
    assert (Community.objects.get(pk=community.pk).geom.wkt, written(community)) == before


# --- the admin: a refusal is a form error; a gap a warning -------------------------------------


def test_the_admin_refuses_an_overlapping_boundary_on_the_map_field(admin_client, community, two_grids):
    west, _, _ = two_grids
    before = written(community)
    response = admin_client.post(
        "/admin/grid/gridboundary/add/",
        {"cell": west.pk, "valid_from": "2025-03-01", "note": "", "geom": west_half(dx=0.002).geojson},
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors.as_data()["geom"]
    assert [e.code for e in errors] == ["grid_overlap"]
    assert "440803001001002" in errors[0].message
    assert written(community) == before


def test_the_admin_writes_a_boundary_leaving_a_gap_and_says_so(admin_client, community, two_grids):
    west, _, _ = two_grids
    response = admin_client.post(
        "/admin/grid/gridboundary/add/",
        {"cell": west.pk, "valid_from": "2025-03-01", "note": "", "geom": west_half(dx=-0.001).geojson},
        follow=True,
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert any("不属于任何网格" in m for m in shown), shown
    assert GridBoundary.objects.filter(cell=west, valid__startswith=D2).exists()
