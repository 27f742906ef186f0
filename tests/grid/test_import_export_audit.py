"""Imports and exports of spatial units leave one audit row each: who, which file, what it touched.
A rejected import leaves nothing at all, audit row included."""

import json

import pytest

from grid import importers
from grid.audit import Actor, acting_as
from grid.exporters import units_export
from grid.importers import ImportRejected, units_import
from grid.models import AuditEvent, GridBoundary, GridCell
from tests.factories import ORIGIN, CommunityFactory, GridCellFactory, StreetFactory, multi, rect

pytestmark = pytest.mark.django_db
X0, Y0 = ORIGIN
PLANNER = Actor(user_id=None, name="规划员甲", ip="10.0.0.7")


@pytest.fixture
def community():
    street = StreetFactory(code="440803001")
    return CommunityFactory(
        street=street, code="440803001001", geom=multi(rect(X0, Y0, X0 + 0.01, Y0 + 0.01))
    )


def grid_file(tmp_path, features: list[tuple[str, str, tuple]]) -> str:
    def feature(code, name, box):
        x0, y0, x1, y1 = box
        ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
        return {
            "type": "Feature",
            "properties": {"code": code, "name": name},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        }

    path = tmp_path / "网格.geojson"
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": [feature(*f) for f in features]}),
        encoding="utf-8",
    )
    return str(path)


def test_an_import_writes_one_audit_row_with_file_counts_and_codes(community, tmp_path):
    GridCellFactory(community=community, code="440803001001001", boundary=rect(X0, Y0, X0 + 0.005, Y0 + 0.01))
    path = grid_file(
        tmp_path,
        [
            # The existing grid, redrawn narrower, and a new one beside it.
            ("440803001001001", "第一网格", (X0, Y0, X0 + 0.004, Y0 + 0.01)),
            ("440803001001002", "第二网格", (X0 + 0.005, Y0, X0 + 0.01, Y0 + 0.01)),
        ],
    )
    before = AuditEvent.objects.filter(action="import").count()
    with acting_as(PLANNER):
        report = units_import(level="grid", path=path)
    assert (report.created, report.updated) == (1, 1)

    rows = AuditEvent.objects.filter(action=AuditEvent.Action.IMPORT)
    assert rows.count() == before + 1
    row = rows.latest("id")
    assert row.object_type == "grid.GridCell"
    assert (row.actor_name, row.ip) == ("规划员甲", "10.0.0.7")
    assert row.street_id == community.street_id
    assert "新增1" in row.summary and "更新1" in row.summary and "网格.geojson" in row.summary
    assert row.changes["file"] == "网格.geojson"
    assert row.changes["level"] == "grid"
    assert row.changes["crs"] == "EPSG:4326"  # GeoJSON is WGS-84 by definition
    assert (row.changes["total"], row.changes["created"], row.changes["updated"]) == (2, 1, 1)
    assert row.changes["codes"] == ["440803001001001", "440803001001002"]
    assert row.changes["codes_truncated"] is False


def test_the_codes_listed_are_capped(community, tmp_path, monkeypatch):
    monkeypatch.setattr(importers, "MAX_AUDITED_CODES", 2)
    path = grid_file(
        tmp_path,
        [
            (f"44080300100100{i}", f"网格{i}", (X0 + 0.002 * i, Y0, X0 + 0.002 * (i + 1), Y0 + 0.01))
            for i in range(3)
        ],
    )
    units_import(level="grid", path=path)
    row = AuditEvent.objects.filter(action="import").latest("id")
    assert row.changes["created"] == 3
    assert row.changes["codes"] == ["440803001001000", "440803001001001"]
    assert row.changes["codes_truncated"] is True


def test_a_rejected_import_writes_nothing_not_even_an_audit_row(community, tmp_path):
    path = grid_file(
        tmp_path,
        [
            ("440803001001001", "好网格", (X0, Y0, X0 + 0.005, Y0 + 0.01)),
            ("440803999001002", "无主网格", (X0 + 0.005, Y0, X0 + 0.01, Y0 + 0.01)),  # no such community
        ],
    )
    audit_before = AuditEvent.objects.count()
    with pytest.raises(ImportRejected) as caught:
        units_import(level="grid", path=path)
    assert caught.value.code == "import_rejected"
    assert {i.error_code for i in caught.value.issues} == {"parent_unknown"}
    assert AuditEvent.objects.count() == audit_before
    assert not GridCell.objects.exists() and not GridBoundary.objects.exists()


def test_an_unreadable_file_writes_no_audit_row(community, tmp_path):
    path = tmp_path / "坏文件.geojson"
    path.write_bytes(b"\x00\x01 not json")
    audit_before = AuditEvent.objects.count()
    with pytest.raises(ImportRejected):
        units_import(level="grid", path=path)
    assert AuditEvent.objects.count() == audit_before


def test_an_export_writes_one_audit_row(community, tmp_path):
    GridCellFactory(community=community, code="440803001001001", boundary=rect(X0, Y0, X0 + 0.005, Y0 + 0.01))
    GridCellFactory(
        community=community, code="440803001001002", boundary=rect(X0 + 0.005, Y0, X0 + 0.01, Y0 + 0.01)
    )
    with acting_as(PLANNER):
        result = units_export(level="grid", path=tmp_path / "out.gpkg", crs="gcj02", community=community.code)
    assert result.count == 2
    row = AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT).latest("id")
    assert row.object_type == "grid.GridCell"
    assert row.actor_name == "规划员甲"
    assert row.street_id == community.street_id
    assert row.changes["file"] == "out.gpkg"
    assert row.changes["level"] == "grid"
    assert row.changes["count"] == 2
    assert row.changes["crs"] == "gcj02"
    assert row.changes["community"] == community.code
    assert "2" in row.summary and "out.gpkg" in row.summary


def test_command_line_import_names_the_account_that_ran_it(tmp_path):
    """Run through the command, the audit row says which OS account ran it, not "system"."""
    import getpass
    import json

    from django.core.management import call_command

    from grid.models import AuditEvent
    from tests.factories import StreetFactory

    street = StreetFactory.build(code="440803099")
    path = tmp_path / "streets.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"code": street.code, "name": "测试街道"},
        "geometry": json.loads(street.geom.geojson)}]}), encoding="utf-8")
    call_command("import_units", "--level", "street", str(path))
    event = AuditEvent.objects.get(action="import")
    assert event.actor_name == f"命令行 import_units（{getpass.getuser()}）"
