"""`export_units --user NAME` exports what that user's reach shows and names them in the audit log;
without --user it stays the operator's whole-database export."""

import getpass
import io
import json

import pytest
from django.core.management import CommandError, call_command

from grid.models import AuditEvent, Role
from tests.factories import ORIGIN, CommunityFactory, GridCellFactory, StreetFactory, multi, rect
from tests.people import user_with

pytestmark = pytest.mark.django_db
X0, Y0 = ORIGIN


@pytest.fixture
def two_streets():
    """Two streets side by side, one community and two grids in each."""
    cells = {}
    for i, code in enumerate(("440803001", "440803002")):
        x = X0 + 0.02 * i
        street = StreetFactory(code=code, geom=multi(rect(x, Y0, x + 0.02, Y0 + 0.02)))
        community = CommunityFactory(street=street, code=f"{code}001", geom=multi(rect(x, Y0, x + 0.01, Y0 + 0.01)))
        cells[code] = [
            GridCellFactory(community=community, code=f"{community.code}001", boundary=rect(x, Y0, x + 0.005, Y0 + 0.01)),
            GridCellFactory(
                community=community, code=f"{community.code}002", boundary=rect(x + 0.005, Y0, x + 0.01, Y0 + 0.01)
            ),
        ]
    return cells




def exported_codes(path) -> list[str]:
    return [f["properties"]["code"] for f in json.loads(path.read_text(encoding="utf-8"))["features"]]


def test_a_street_admins_export_holds_only_their_streets_grids(two_streets, tmp_path):
    admin = user_with(username="jiedao1", role=Role.STREET_ADMIN, street=two_streets["440803001"][0].community.street)
    out = tmp_path / "网格.geojson"
    stdout = io.StringIO()
    call_command("export_units", str(out), "--level", "grid", "--user", "jiedao1", stdout=stdout)
    assert exported_codes(out) == ["440803001001001", "440803001001002"]
    assert "jiedao1 的管辖范围" in stdout.getvalue()

    # Named in the audit log: who, which file, and that the export was scoped (filed under
    # the street so its administrators see it).
    row = AuditEvent.objects.get(action=AuditEvent.Action.EXPORT)
    assert (row.actor_id, row.actor_name) == (admin.pk, "jiedao1")
    assert row.object_type == "grid.GridCell"
    assert row.changes["file"] == "网格.geojson"
    assert row.changes["count"] == 2
    assert row.changes["whole_database"] is False
    assert row.street_id == two_streets["440803001"][0].community.street_id
    assert "限操作人管辖范围" in row.summary


def test_every_level_is_scoped(two_streets, tmp_path):
    user_with(username="shequ", role=Role.COMMUNITY_ADMIN, community=two_streets["440803002"][0].community)
    for level, expected in (
        ("street", ["440803002"]),
        ("community", ["440803002001"]),
        ("grid", ["440803002001001", "440803002001002"]),
    ):
        out = tmp_path / f"{level}.geojson"
        call_command("export_units", str(out), "--level", level, "--user", "shequ", stdout=io.StringIO())
        assert exported_codes(out) == expected, level


def test_a_grid_worker_exports_only_their_grid(two_streets, tmp_path):
    user_with(username="wanggeyuan", role=Role.GRID_WORKER, grid_cell=two_streets["440803001"][1])
    out = tmp_path / "mine.geojson"
    call_command("export_units", str(out), "--level", "grid", "--user", "wanggeyuan", stdout=io.StringIO())
    assert exported_codes(out) == ["440803001001002"]


def test_an_unknown_user_is_refused_and_nothing_is_written(two_streets, tmp_path):
    out = tmp_path / "out.geojson"
    with pytest.raises(CommandError, match="用户不存在或已停用：nobody"):
        call_command("export_units", str(out), "--level", "grid", "--user", "nobody", stdout=io.StringIO())
    assert not out.exists()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT).exists()


def test_a_deactivated_user_is_refused_like_an_unknown_one(two_streets, tmp_path):
    gone = user_with(username="lizhi", role=Role.STREET_ADMIN, street=two_streets["440803001"][0].community.street)
    gone.is_active = False
    gone.save(update_fields=["is_active"])
    out = tmp_path / "out.geojson"
    with pytest.raises(CommandError, match="用户不存在或已停用：lizhi"):
        call_command("export_units", str(out), "--level", "grid", "--user", "lizhi", stdout=io.StringIO())
    assert not out.exists()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT).exists()


def test_a_user_with_no_reach_is_refused_and_nothing_is_written(two_streets, tmp_path):
    user_with(username="xinren")
    out = tmp_path / "out.geojson"
    with pytest.raises(CommandError, match=r"\[reach_empty\]"):
        call_command("export_units", str(out), "--level", "grid", "--user", "xinren", stdout=io.StringIO())
    assert not out.exists()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT).exists()


def test_a_community_outside_the_reach_reads_like_a_missing_one(two_streets, tmp_path):
    user_with(username="jiedao1", role=Role.STREET_ADMIN, street=two_streets["440803001"][0].community.street)
    out = tmp_path / "out.geojson"
    for code in ("440803002001", "440803999001"):  # the other street's; no such community
        with pytest.raises(CommandError, match=rf"\[community_unknown\].*{code}"):
            call_command(
                "export_units", str(out), "--level", "grid", "--user", "jiedao1", "--community", code,
                stdout=io.StringIO(),
            )
    assert not out.exists()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT).exists()


def test_without_user_it_is_the_operators_whole_database_export(two_streets, tmp_path):
    out = tmp_path / "all.geojson"
    stdout = io.StringIO()
    call_command("export_units", str(out), "--level", "grid", stdout=stdout)
    assert len(exported_codes(out)) == 4
    assert "全库" in stdout.getvalue()
    row = AuditEvent.objects.get(action=AuditEvent.Action.EXPORT)
    assert row.actor_id is None
    assert row.actor_name == f"命令行 export_units（{getpass.getuser()}）"
    assert row.changes["whole_database"] is True
    assert row.street_id is None
    assert "全库" in row.summary


def test_the_help_says_who_each_command_is_for():
    from grid.management.commands import export_units, import_units

    assert "运维" in import_units.Command.help and "不限管辖范围" in import_units.Command.help
    assert "全库" in export_units.Command.help and "--user" in export_units.Command.help
