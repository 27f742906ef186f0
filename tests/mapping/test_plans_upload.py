"""Starting a draft from a file of the community's grids: read, converted and checked as the grid
import does, every bad feature named with its index and stable code, nothing written on refusal."""

from __future__ import annotations

import io
import json

import pytest

from grid.exporters import units_export
from grid.models import AuditEvent
from mapping import plans
from mapping.plans_models import Plan, PlanCell
from tests.factories import rect
from tests.mapping.plans_scene import PlanScene, X, Y, plan_scene_fixture  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


def feature(code, geometry, name="网格"):
    return {"type": "Feature", "properties": {"code": code, "name": name}, "geometry": geometry}


def polygon(poly) -> dict:
    return json.loads(poly.json)


def upload(features) -> io.BytesIO:
    return io.BytesIO(json.dumps({"type": "FeatureCollection", "features": features}).encode())


def nothing_written(before_plans: int, before_audit: int) -> None:
    assert Plan.objects.count() == before_plans and AuditEvent.objects.count() == before_audit
    assert not PlanCell.objects.exists()


@pytest.mark.parametrize(("fmt", "name"), [("gpkg", "grids.gpkg"), ("shp", "grids.zip"), ("geojson", "grids.geojson")])
def test_an_export_of_todays_grid_comes_back_as_a_draft_of_the_same_shapes(plan_scene: PlanScene, tmp_path, fmt, name):
    s = plan_scene
    path = tmp_path / name
    units_export(level="grid", path=path, fmt=fmt, community=s.community.code)
    with path.open("rb") as fh:
        plan, warnings = plans.plan_create_from_file(community=s.community, name="导入", file=fh, filename=name)
    assert warnings == [] and plan.origin == Plan.Origin.UPLOAD
    got = {pc.code: pc for pc in PlanCell.objects.filter(plan=plan)}
    assert set(got) == {s.a.code, s.b.code, s.c.code}
    for cell in (s.a, s.b, s.c):
        assert got[cell.code].cell == cell and got[cell.code].name == cell.name
        # A shapefile turns rings clockwise: the same area, maybe other vertex order.
        assert got[cell.code].geom.sym_difference(cell.boundaries.get().geom).area < 1e-14


def test_a_new_code_and_a_repaired_shape_are_taken_with_a_warning(plan_scene: PlanScene):
    s = plan_scene
    new = f"{s.community.code}900"
    bow_tie = {"type": "Polygon", "coordinates": [[[X + 0.008, Y], [X + 0.012, Y + 0.004], [X + 0.012, Y],
                                                   [X + 0.008, Y + 0.004], [X + 0.008, Y]]]}
    plan, warnings = plans.plan_create_from_file(
        community=s.community, name="含新网格", filename="g.geojson",
        file=upload([feature(s.a.code, polygon(rect(X, Y, X + 0.008, Y + 0.004)), "甲乙"),
                     feature(new, bow_tie, "")]),
    )
    assert sorted((w["index"], w["error_code"]) for w in warnings) == [(2, "geometry_repaired"), (2, "name_defaulted")]
    cells = {pc.code: pc for pc in plan.cells.all()}
    assert set(cells) == {s.a.code, new} and cells[new].cell is None and cells[s.a.code].name == "甲乙"


def test_every_bad_feature_is_named_with_its_code_and_nothing_is_written(plan_scene: PlanScene):
    s = plan_scene
    before = (Plan.objects.count(), AuditEvent.objects.count())
    good = polygon(rect(X, Y, X + 0.004, Y + 0.004))
    features = [
        feature(s.a.code, good),  # 1: fine
        feature("440803999999001", good),  # 2: another community's code
        feature(s.b.code, good),  # 3, 4: the same code twice
        feature(s.b.code, good),
        feature(s.c.code, None),  # 5: no geometry
        feature(f"{s.community.code}901", {"type": "Point", "coordinates": [X, Y]}),  # 6: not a polygon
        feature("12345", good),  # 7: not a grid code
        feature(f"{s.community.code}902", polygon(rect(1, 1, 2, 2))),  # 8: not in China
    ]
    with pytest.raises(plans.UploadRejected) as caught:
        plans.plan_create_from_file(community=s.community, name="坏文件", file=upload(features), filename="g.geojson")
    error = caught.value
    assert error.code == "plan_upload_rejected" and "7 个要素" in error.message
    found = sorted((i["index"], i["error_code"]) for i in error.detail["issues"] if i["severity"] == "error")
    assert found == [
        (2, "code_parent_mismatch"), (3, "code_duplicate"), (4, "code_duplicate"), (5, "geometry_missing"),
        (6, "geometry_type"), (7, "code_format"), (8, "coords_out_of_range"),
    ]
    nothing_written(*before)


@pytest.mark.parametrize(
    ("content", "filename", "code"),
    [
        (b"\x00\x01 not a file", "g.geojson", "file_unreadable"),
        (b'{"type": "FeatureCollection", "features": []}', "g.geojson", "file_empty"),
        (b"code,name,wkt\n", "g.csv", "file_empty"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_whole(plan_scene: PlanScene, content, filename, code):
    before = (Plan.objects.count(), AuditEvent.objects.count())
    with pytest.raises(plans.UploadRejected) as caught:
        plans.plan_create_from_file(community=plan_scene.community, name="x", file=io.BytesIO(content), filename=filename)
    assert caught.value.code == "plan_upload_rejected"
    assert [i["error_code"] for i in caught.value.detail["issues"]] == [code]
    nothing_written(*before)


def test_a_csv_needs_its_crs_and_a_gcj02_file_is_converted(plan_scene: PlanScene):
    s = plan_scene
    text = f'code,name,wkt\n{s.a.code},甲,"{rect(X, Y, X + 0.004, Y + 0.004).wkt}"\n'.encode()
    with pytest.raises(plans.UploadRejected) as caught:
        plans.plan_create_from_file(community=s.community, name="x", file=io.BytesIO(text), filename="g.csv")
    assert [i["error_code"] for i in caught.value.detail["issues"]] == ["crs_missing"]
    plan, _ = plans.plan_create_from_file(community=s.community, name="x", file=io.BytesIO(text), filename="g.csv",
                                          crs="gcj02")
    # Read as GCJ-02, the square is moved back by the offset (a few hundred metres in Zhanjiang).
    shifted = plan.cells.get().geom.extent[0] - X
    assert -0.01 < shifted < -0.001
