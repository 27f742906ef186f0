"""Files an import must refuse (or repair and report), each leaving the database untouched."""

import io
import json
import os
import zipfile

import pytest
from django.core.management import CommandError, call_command

from grid import importers
from grid.exporters import units_export
from grid.importers import ImportRejected, units_import
from grid.models import Building, Community, GridBoundary, GridBoundaryPart, GridCell, ServiceCentre, Street
from tests.factories import ORIGIN, CommunityFactory, StreetFactory, multi, rect, square

X0, Y0 = ORIGIN
GRID_A = "440803001001001"
GRID_B = "440803001001002"

pytestmark = pytest.mark.django_db


@pytest.fixture
def community():
    street = StreetFactory(code="440803001")
    return CommunityFactory(street=street, code="440803001001", geom=multi(square(X0, Y0, 0.01)))


def counts() -> tuple[int, ...]:
    models = (Street, Community, GridCell, GridBoundary, GridBoundaryPart, Building, ServiceCentre)
    return tuple(m.objects.count() for m in models)


def feature(code, coordinates, geometry_type="Polygon", **props) -> dict:
    return {
        "type": "Feature",
        "properties": {"code": code, "name": f"网格{code[-3:]}", **props},
        "geometry": {"type": geometry_type, "coordinates": coordinates},
    }


def ring(poly) -> list:
    return [list(p) for p in poly.coords[0]]


def write_geojson(path, features) -> str:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False))
    return str(path)


def rejected(**kwargs) -> ImportRejected:
    before = counts()
    with pytest.raises(ImportRejected) as exc:
        units_import(**kwargs)
    assert counts() == before, "a rejected import must write nothing"
    return exc.value


def error_codes(exc: ImportRejected) -> set[str]:
    return {i.error_code for i in exc.issues if i.severity == "error"}


# --------------------------------------------------------------------------------------------
# Whole-file problems
# --------------------------------------------------------------------------------------------


def test_random_bytes_named_geojson(community, tmp_path):
    path = tmp_path / "noise.geojson"
    path.write_bytes(os.urandom(2048))
    assert rejected(level="grid", path=path).code == "file_unreadable"


def test_truncated_json(community, tmp_path):
    text = json.dumps(
        {"type": "FeatureCollection", "features": [feature(GRID_A, [ring(square(X0, Y0, 0.005))])]}
    )
    path = tmp_path / "cut.geojson"
    path.write_text(text[: len(text) // 2])
    assert rejected(level="grid", path=path).code == "file_unreadable"


def test_empty_feature_collection(community, tmp_path):
    path = write_geojson(tmp_path / "empty.geojson", [])
    assert rejected(level="grid", path=path).code == "file_empty"


def test_missing_code_field_is_reported_through_the_command(community, tmp_path):
    path = write_geojson(tmp_path / "nocode.geojson", [feature(GRID_A, [ring(square(X0, Y0, 0.005))])])
    before = counts()
    with pytest.raises(CommandError) as exc:
        call_command("import_units", path, "--level", "grid", "--code-field", "wgbm", stdout=io.StringIO())
    assert "[field_missing]" in str(exc.value) and "wgbm" in str(exc.value)
    assert counts() == before


def test_unknown_crs(community, tmp_path):
    path = write_geojson(tmp_path / "a.geojson", [feature(GRID_A, [ring(square(X0, Y0, 0.005))])])
    exc = rejected(level="grid", path=path, crs="mars-2000")
    assert exc.code == "crs_unknown"


def test_csv_without_crs(community, tmp_path):
    path = tmp_path / "grids.csv"
    path.write_text(f'code,name,wkt\n{GRID_A},网格,"{square(X0, Y0, 0.005).wkt}"\n', encoding="utf-8")
    assert rejected(level="grid", path=path).code == "crs_missing"
    # The same file with its CRS declared imports.
    assert units_import(level="grid", path=path, crs="wgs84").created == 1


def test_layer_missing(community, tmp_path):
    path = tmp_path / "communities.gpkg"
    units_export(level="community", path=path)
    assert rejected(level="community", path=path, layer="no_such_layer").code == "layer_missing"


def test_file_too_large(community, tmp_path, monkeypatch):
    path = write_geojson(tmp_path / "a.geojson", [feature(GRID_A, [ring(square(X0, Y0, 0.005))])])
    monkeypatch.setattr(importers, "MAX_FILE_BYTES", 100)
    assert rejected(level="grid", path=path).code == "file_too_large"


def test_zip_bomb_is_refused_before_reading(community, tmp_path, monkeypatch):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("grids.shp", "w", force_zip64=True) as member:
            block = bytes(1024 * 1024)
            for _ in range(50):
                member.write(block)
    assert path.stat().st_size < 1024 * 1024  # 50 MB of zeros packs into well under 1 MB
    monkeypatch.setattr(importers, "MAX_ARCHIVE_UNCOMPRESSED_BYTES", 20 * 1024 * 1024)
    assert rejected(level="grid", path=path).code == "archive_too_large"
    # The ratio alone also catches it under the default size limit.
    monkeypatch.setattr(importers, "MAX_ARCHIVE_UNCOMPRESSED_BYTES", 1024**3)
    assert rejected(level="grid", path=path).code == "archive_too_large"


# --------------------------------------------------------------------------------------------
# Per-feature problems: all listed, nothing written
# --------------------------------------------------------------------------------------------


def test_duplicate_codes(community, tmp_path):
    path = write_geojson(
        tmp_path / "dup.geojson",
        [
            feature(GRID_A, [ring(rect(X0, Y0, X0 + 0.005, Y0 + 0.01))]),
            feature(GRID_A, [ring(rect(X0 + 0.005, Y0, X0 + 0.01, Y0 + 0.01))]),
        ],
    )
    exc = rejected(level="grid", path=path)
    assert exc.code == "import_rejected"
    assert [(i.index, i.error_code) for i in exc.issues] == [(1, "code_duplicate"), (2, "code_duplicate")]


def test_bow_tie_is_repaired_and_reported(community, tmp_path):
    bow_tie = [[X0, Y0], [X0 + 0.005, Y0 + 0.005], [X0 + 0.005, Y0], [X0, Y0 + 0.005], [X0, Y0]]
    path = write_geojson(tmp_path / "bowtie.geojson", [feature(GRID_A, [bow_tie])])

    report = units_import(level="grid", path=path)

    assert (report.created, report.repaired, report.rejected) == (1, 1, 0)
    uncovered, issue = report.issues  # whole-file findings (index None) first
    assert (issue.index, issue.code, issue.error_code, issue.severity) == (
        1,
        GRID_A,
        "geometry_repaired",
        "warning",
    )
    # The two triangles leave most of the community to no grid: said, not refused.
    assert (uncovered.index, uncovered.error_code, uncovered.severity) == (None, "community_not_covered", "warning")
    assert "Self-intersection" in issue.message
    stored = GridBoundary.objects.get(cell__code=GRID_A).geom
    assert stored.valid and stored.num_geom == 2  # the two triangles of the bow tie


def test_collinear_polygon_cannot_be_repaired(community, tmp_path):
    flat = [[X0, Y0], [X0 + 0.001, Y0], [X0 + 0.002, Y0], [X0, Y0]]
    path = write_geojson(
        tmp_path / "flat.geojson",
        [feature(GRID_A, [ring(rect(X0, Y0, X0 + 0.005, Y0 + 0.01))]), feature(GRID_B, [flat])],
    )
    exc = rejected(level="grid", path=path)
    assert [(i.index, i.code, i.error_code) for i in exc.issues] == [(2, GRID_B, "geometry_invalid")]


def test_point_is_not_a_grid(community, tmp_path):
    path = write_geojson(
        tmp_path / "pt.geojson", [feature(GRID_A, [X0 + 0.001, Y0 + 0.001], geometry_type="Point")]
    )
    assert error_codes(rejected(level="grid", path=path)) == {"geometry_type"}


def test_projected_metres_declared_as_wgs84(community, tmp_path):
    # UTM zone 49N metres of the same square, with the file claiming degrees.
    metres = [[437800, 2343300], [438200, 2343300], [438200, 2343700], [437800, 2343700], [437800, 2343300]]
    path = tmp_path / "utm.csv"
    wkt = "POLYGON ((" + ", ".join(f"{x} {y}" for x, y in metres) + "))"
    path.write_text(f'code,name,wkt\n{GRID_A},网格,"{wkt}"\n', encoding="utf-8")
    assert error_codes(rejected(level="grid", path=path, crs="wgs84")) == {"coords_out_of_range"}
    # Declared as what it is, the same file lands in 湛江.
    assert units_import(level="grid", path=path, crs="EPSG:32649").created == 1


def test_grid_whose_community_does_not_exist(community, tmp_path):
    orphan = "440803001009001"
    path = write_geojson(
        tmp_path / "orphan.geojson",
        [feature(GRID_A, [ring(square(X0, Y0, 0.005))]), feature(orphan, [ring(square(X0, Y0, 0.004))])],
    )
    exc = rejected(level="grid", path=path)
    (issue,) = exc.issues
    assert (issue.index, issue.code, issue.error_code) == (2, orphan, "parent_unknown")
    assert "440803001009" in issue.message


def test_bad_codes_and_values_are_all_listed(community, tmp_path):
    cell = [ring(square(X0 + 0.001, Y0 + 0.001, 0.0002))]
    path = write_geojson(
        tmp_path / "b.geojson",
        [
            feature("B1", cell, households=-3),
            feature("B2", cell, floors="2.5"),
            feature("B 3", cell),
            feature("", cell),
            feature("B5", cell, kind="castle"),
        ],
    )
    exc = rejected(level="building", path=path)
    assert [(i.index, i.error_code) for i in exc.issues] == [
        (1, "value_invalid"),
        (2, "value_invalid"),
        (3, "code_format"),
        (4, "code_missing"),
        (5, "value_invalid"),
    ]


def test_command_lists_every_rejected_feature(community, tmp_path):
    path = write_geojson(
        tmp_path / "mixed.geojson",
        [
            feature(GRID_A, [ring(square(X0, Y0, 0.005))]),
            feature("4408030010010", [ring(square(X0, Y0, 0.004))]),
            feature(GRID_B, [X0, Y0], geometry_type="Point"),
        ],
    )
    before = counts()
    with pytest.raises(CommandError) as exc:
        call_command("import_units", path, "--level", "grid", stdout=io.StringIO())
    text = str(exc.value)
    assert "第 2 个要素（编码 4408030010010） [code_format]" in text
    assert "第 3 个要素（编码 440803001001002） [geometry_type]" in text
    assert "拒绝 2" in text
    assert counts() == before


# --------------------------------------------------------------------------------------------
# --partial
# --------------------------------------------------------------------------------------------


def test_partial_writes_the_good_features_only(community, tmp_path):
    path = write_geojson(
        tmp_path / "mixed.geojson",
        [
            feature(GRID_A, [ring(rect(X0, Y0, X0 + 0.005, Y0 + 0.01))]),
            feature("440803001009001", [ring(square(X0, Y0, 0.004))]),  # no such community
            feature(GRID_B, [X0, Y0], geometry_type="Point"),
        ],
    )
    out = io.StringIO()
    call_command("import_units", path, "--level", "grid", "--partial", stdout=out)

    assert list(GridCell.objects.values_list("code", flat=True)) == [GRID_A]
    assert GridBoundary.objects.count() == 1
    log = out.getvalue()
    assert "[parent_unknown]" in log and "[geometry_type]" in log
    assert "新增 1、更新 0、未变 0、修复 0、拒绝 2" in log
