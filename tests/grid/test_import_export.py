"""Import and export of spatial units: round trips per format, idempotent re-import, redraws by
import, the real district files of 湛江."""

import io
import json
from datetime import date
from pathlib import Path

import pytest
import shapely
from django.core.management import CommandError, call_command
from django.db import connection

from grid import services
from grid.exporters import units_export
from grid.importers import ImportRejected, units_import
from grid.models import Building, Community, GridBoundary, GridCell, ServiceCentre, Street
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

DATA = Path(__file__).resolve().parents[2] / "data"
X0, Y0 = ORIGIN
FORMATS = {"geojson": "units.geojson", "gpkg": "units.gpkg", "shp": "units.zip", "csv": "units.csv"}


def shape(geos) -> shapely.Geometry:
    # normalize: a shapefile stores rings clockwise, so vertex order may differ after a round trip.
    return shapely.normalize(shapely.from_wkb(bytes(geos.wkb)))


@pytest.fixture
def community():
    """One community (0.01° square) cut into two grids, with four buildings of varied attributes."""
    street = StreetFactory(code="440803001")
    com = CommunityFactory(street=street, code="440803001001", name="海滨社区")
    GridCellFactory(
        community=com,
        code="440803001001001",
        name="第一网格",
        responsible_body="海滨物业",
        boundary=rect(X0, Y0, X0 + 0.005, Y0 + 0.01),
    )
    GridCellFactory(
        community=com,
        code="440803001001002",
        name="第二网格",
        boundary=rect(X0 + 0.005, Y0, X0 + 0.01, Y0 + 0.01),
    )
    BuildingFactory(
        community=com,
        code="B1",
        name="1栋",
        households=24,
        floors=6,
        kind="residential",
        address="海滨路1号",
        geom=square(X0 + 0.001, Y0 + 0.001, 0.0002),
    )
    BuildingFactory(
        community=com,
        code="B2",
        name="2栋",
        households=0,
        floors=2,
        kind="commercial",
        address="",
        geom=square(X0 + 0.006, Y0 + 0.001, 0.0002),
    )
    BuildingFactory(
        community=com,
        code="B3",
        name="3栋",
        households=60,
        floors=18,
        kind="mixed",
        address="海滨路3号",
        geom=square(X0 + 0.0056, Y0 + 0.005, 0.0003),
    )
    BuildingFactory(
        community=com,
        code="B4",
        name="4栋",
        households=12,
        floors=3,
        kind="public",
        address="海滨路4号",
        geom=square(X0 + 0.003, Y0 + 0.008, 0.0002),
    )
    services.buildings_reassign(community_ids=[com.id])
    return com


def snapshot_grids() -> dict:
    return {
        c.code: (
            c.name,
            c.community.code,
            c.responsible_body,
            shape(c.boundaries.get(valid__upper_inf=True).geom),
        )
        for c in GridCell.objects.select_related("community")
    }


def snapshot_buildings() -> dict:
    return {
        b.code: (
            b.name,
            b.address,
            b.kind,
            b.households,
            b.floors,
            b.community.code,
            b.grid_cell.code if b.grid_cell else None,
            shape(b.geom),
        )
        for b in Building.objects.select_related("community", "grid_cell")
    }


def assert_same(before: dict, after: dict, tolerance: float = 1e-9) -> None:
    assert set(before) == set(after)
    for code, values in before.items():
        assert after[code][:-1] == values[:-1], code
        assert shapely.equals_exact(after[code][-1], values[-1], tolerance), code


def feature_collection(features: list[dict]) -> dict:
    return {"type": "FeatureCollection", "features": features}


def polygon_feature(props: dict, poly) -> dict:
    return {"type": "Feature", "properties": props, "geometry": json.loads(poly.geojson)}


# --------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_grids_round_trip_through_every_format(community, tmp_path, fmt):
    before = snapshot_grids()
    out = tmp_path / FORMATS[fmt]
    result = units_export(level="grid", path=out)
    assert result.count == 2
    GridCell.objects.all().delete()

    report = units_import(
        level="grid", path=out, crs="wgs84" if fmt == "csv" else None, valid_from=date(2024, 1, 1)
    )

    assert (report.created, report.updated, report.rejected) == (2, 0, 0)
    assert_same(before, snapshot_grids())
    # Buildings were reassigned to the re-imported grids by the boundary service.
    assert Building.objects.get(code="B1").grid_cell.code == "440803001001001"
    assert Building.objects.get(code="B2").grid_cell.code == "440803001001002"


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_buildings_round_trip_through_every_format(community, tmp_path, fmt):
    before = snapshot_buildings()
    out = tmp_path / FORMATS[fmt]
    units_export(level="building", path=out, fmt=fmt)
    Building.objects.all().delete()

    report = units_import(level="building", path=out, crs="wgs84" if fmt == "csv" else None)

    assert (report.created, report.updated, report.unchanged, report.rejected) == (4, 0, 0, 0)
    assert_same(before, snapshot_buildings())


@pytest.mark.django_db
def test_gcj02_round_trip_returns_the_same_shapes(community, tmp_path):
    before = snapshot_grids()
    out = tmp_path / "grids_gcj.gpkg"
    call_command("export_units", str(out), level="grid", crs="gcj02", stdout=io.StringIO())
    GridCell.objects.all().delete()

    # No EPSG code exists for GCJ-02: the file records none, so the import must be told.
    with pytest.raises(ImportRejected) as missing:
        units_import(level="grid", path=out)
    assert missing.value.code == "crs_missing"
    units_import(level="grid", path=out, crs="gcj02", valid_from=date(2024, 1, 1))

    assert_same(before, snapshot_grids(), tolerance=1e-7)


@pytest.mark.django_db
def test_gcj02_export_is_offset_from_storage(community, tmp_path):
    out = tmp_path / "grids.geojson"
    units_export(level="grid", path=out, crs="gcj02")
    data = json.loads(out.read_text())
    x, y = data["features"][0]["geometry"]["coordinates"][0][0][0]
    # In 湛江 GCJ-02 lies roughly 500 m east/south-east of WGS-84: never the stored value.
    assert abs(x - X0) > 0.003 or abs(y - Y0) > 0.001


@pytest.mark.django_db
def test_export_limits_to_one_community_and_date(community, tmp_path):
    other = CommunityFactory(
        street=community.street, code="440803001002", geom=multi(square(X0 + 0.01, Y0, 0.01))
    )
    GridCellFactory(community=other, code="440803001002001", boundary=square(X0 + 0.01, Y0, 0.01))
    out = tmp_path / "g.geojson"

    assert units_export(level="grid", path=out, community=community.code).count == 2
    assert units_export(level="grid", path=out).count == 3
    # Before the boundaries existed nothing was in force.
    assert units_export(level="grid", path=out, as_of=date(2023, 12, 31)).count == 0


# --------------------------------------------------------------------------------------------
# Idempotence and redraws
# --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_importing_the_same_file_twice_changes_nothing(community, tmp_path):
    out = tmp_path / "grids.geojson"
    units_export(level="grid", path=out)
    buildings = tmp_path / "buildings.geojson"
    units_export(level="building", path=buildings)
    versions = list(GridBoundary.objects.values_list("id", "valid"))
    data_version = Community.objects.get(pk=community.pk).data_version

    grids = units_import(level="grid", path=out, valid_from=date(2025, 3, 1))
    again = units_import(level="building", path=buildings)

    assert (grids.created, grids.updated, grids.unchanged) == (0, 0, 2)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)
    assert list(GridBoundary.objects.values_list("id", "valid")) == versions
    assert Community.objects.get(pk=community.pk).data_version == data_version


@pytest.mark.django_db
def test_redraw_by_import_closes_old_versions_and_reassigns_buildings(community, tmp_path):
    # Move the dividing line from x0+0.005 to x0+0.007: building B2 (at x0+0.006) changes grid.
    path = tmp_path / "redraw.geojson"
    path.write_text(
        json.dumps(
            feature_collection(
                [
                    polygon_feature(
                        {"code": "440803001001001", "name": "第一网格"}, rect(X0, Y0, X0 + 0.007, Y0 + 0.01)
                    ),
                    polygon_feature(
                        {"code": "440803001001002", "name": "第二网格"},
                        rect(X0 + 0.007, Y0, X0 + 0.01, Y0 + 0.01),
                    ),
                ]
            )
        )
    )
    assert Building.objects.get(code="B2").grid_cell.code == "440803001001002"

    out = io.StringIO()
    call_command("import_units", str(path), "--level", "grid", "--valid-from", "2025-06-01", stdout=out)

    first = GridCell.objects.get(code="440803001001001")
    old, new = first.boundaries.order_by("valid")
    assert (old.valid.lower, old.valid.upper) == (date(2024, 1, 1), date(2025, 6, 1))
    assert new.valid.lower == date(2025, 6, 1) and new.valid.upper_inf
    assert Building.objects.get(code="B2").grid_cell == first
    log = out.getvalue()
    assert "新增 0、更新 2、未变 0、修复 0、拒绝 0" in log
    assert "读取" in log and "校验" in log and "写入" in log


@pytest.mark.django_db
def test_import_keeps_stored_values_for_columns_the_file_lacks(community, tmp_path):
    path = tmp_path / "b.geojson"
    path.write_text(
        json.dumps(
            feature_collection(
                [
                    polygon_feature(
                        {"code": "B1", "name": "一号楼", "floors": "7"},
                        square(X0 + 0.001, Y0 + 0.001, 0.0002),
                    ),
                ]
            )
        )
    )
    report = units_import(level="building", path=path)
    b1 = Building.objects.get(code="B1")
    assert report.updated == 1
    assert (b1.name, b1.floors, b1.households, b1.address, b1.kind) == (
        "一号楼",
        7,
        24,
        "海滨路1号",
        "residential",
    )


@pytest.mark.django_db
def test_buildings_find_their_community_by_column_code_prefix_or_space(community, tmp_path):
    path = tmp_path / "b.csv"
    inside = square(X0 + 0.002, Y0 + 0.002, 0.0001).wkt
    path.write_text(
        "code,name,community_code,kind,wkt\n"
        f'N1,按列,440803001001,住宅,"{inside}"\n'
        f'440803001001N2,按编码,,商业,"{inside}"\n'
        f'N3,按位置,,,"{inside}"\n',
        encoding="utf-8",
    )
    report = units_import(level="building", path=path, crs="wgs84")
    assert report.created == 3
    rows = dict(
        Building.objects.filter(code__in=["N1", "440803001001N2", "N3"]).values_list(
            "code", "community__code"
        )
    )
    assert set(rows.values()) == {"440803001001"}
    assert Building.objects.get(code="440803001001N2").kind == "commercial"
    assert Building.objects.get(code="N3").grid_cell.code == "440803001001001"


@pytest.mark.django_db
def test_service_centres_from_csv_lon_lat_get_street_community_and_level(community, tmp_path):
    path = tmp_path / "sc.csv"
    # As Excel saves it in China: GBK, Chinese column names for the coordinates.
    path.write_text(
        "code,name,经度,纬度,level,radius_m\n"
        f"SC1,海滨社区党群服务中心,{X0 + 0.004},{Y0 + 0.004},,800\n"
        f"SC2,街道党群服务中心,{X0 + 0.015},{Y0 + 0.015},,\n",
        encoding="gbk",
    )
    units_import(level="service_centre", path=path, crs="wgs84")
    sc1, sc2 = ServiceCentre.objects.order_by("code")
    assert (sc1.level, sc1.community, sc1.street.code, sc1.service_radius_m) == (
        "community",
        community,
        "440803001",
        800,
    )
    # Outside every community but inside the street (the factory street is a 0.02° square).
    assert (sc2.level, sc2.community, sc2.street.code, sc2.service_radius_m) == (
        "street",
        None,
        "440803001",
        1000,
    )

    out = tmp_path / "sc.gpkg"
    units_export(level="service_centre", path=out)
    ServiceCentre.objects.all().delete()
    assert units_import(level="service_centre", path=out).created == 2
    assert ServiceCentre.objects.get(code="SC1").service_radius_m == 800


@pytest.mark.django_db
def test_communities_and_streets_round_trip(community, tmp_path):
    out = tmp_path / "c.shp"  # a plain shapefile set, not zipped
    units_export(level="community", path=out)
    streets = tmp_path / "s.zip"
    units_export(level="street", path=streets)
    Community.objects.filter(pk=community.pk).update(name="改名", residents=1)

    report = units_import(level="community", path=out)
    again = units_import(level="street", path=streets)

    assert (report.updated, again.unchanged) == (1, 1)
    assert Community.objects.get(pk=community.pk).name == "海滨社区"
    assert Community.objects.get(pk=community.pk).residents == 3000


# --------------------------------------------------------------------------------------------
# The real district files
# --------------------------------------------------------------------------------------------


def counts() -> tuple[int, ...]:
    return tuple(
        m.objects.count() for m in (Street, Community, GridCell, GridBoundary, Building, ServiceCentre)
    )


@pytest.mark.django_db
def test_xiashan_adcode_is_not_a_street_code(tmp_path):
    before = counts()
    with pytest.raises(CommandError) as exc:
        call_command(
            "import_units",
            str(DATA / "xiashan_440803_gcj02.geojson"),
            level="street",
            crs="gcj02",
            code_field="adcode",
            stdout=io.StringIO(),
        )
    assert "[code_format]" in str(exc.value)
    assert "第 1 个要素（编码 440803）" in str(exc.value)
    assert counts() == before


@pytest.mark.django_db
def test_xiashan_imports_with_its_published_area(tmp_path):
    data = json.loads((DATA / "xiashan_440803_gcj02.geojson").read_text())
    data["features"][0]["properties"]["code"] = "440803001"
    path = tmp_path / "xiashan.geojson"
    path.write_text(json.dumps(data))

    report = units_import(level="street", path=path, crs="gcj02")

    assert (report.created, report.rejected) == (1, 0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT ST_Area(geom::geography) / 1e6 FROM grid_street WHERE code = '440803001'")
        area_km2 = cursor.fetchone()[0]
    assert area_km2 == pytest.approx(119.15, rel=0.005)
    assert Street.objects.get(code="440803001").district_adcode == "440803"


@pytest.mark.django_db
def test_zhanjiang_districts_three_invalid_ones_are_repaired_and_reported(tmp_path):
    data = json.loads((DATA / "zhanjiang_440800_districts_gcj02.geojson").read_text())
    for feature in data["features"]:
        feature["properties"]["code"] = f"{feature['properties']['adcode']}000"
    path = tmp_path / "zhanjiang.geojson"
    path.write_text(json.dumps(data, ensure_ascii=False))

    report = units_import(level="street", path=path, crs="gcj02")

    assert (report.created, report.rejected, report.repaired) == (9, 0, 3)
    repaired = {i.code for i in report.issues if i.error_code == "geometry_repaired"}
    assert repaired == {"440811000", "440823000", "440883000"}
    assert all(i.severity == "warning" for i in report.issues)
    assert Street.objects.filter(geom__isvalid=True).count() == 9
