"""The roster import refuses what a clerk would refuse (orgs.plausibility): an ID number whose birth
date is impossible or in the future, a phone that is no phone, a join date in the future or before
the member turned 18, a birth date that is not the ID number's. Each bad row is reported with its
row, column, code and Chinese message; nothing is written unless --partial, which writes the rest."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from grid.models import AuditEvent
from orgs import pii
from orgs.models import PartyMember
from orgs.plausibility import anniversary
from orgs.roster import members_import
from tests.orgs.test_roster import row, write_csv, write_xlsx
from tests.orgs_factories import CommunityOrgFactory, GridBranchFactory, make_id_number

pytestmark = pytest.mark.django_db


@pytest.fixture
def branch(space):
    org = CommunityOrgFactory(community=space.a, code="ORG-A", name="甲社区党委")
    return GridBranchFactory(grid_cell=space.a1, parent=org, code="GB-A1", name="甲一网格党支部")


def _rows():
    today = timezone.localdate()
    tomorrow = today + timedelta(days=1)
    child = anniversary(today, -10)
    return [
        row(1),  # row 2: fine (born 1980-01-01 per make_id_number)
        row(2, 身份证号=make_id_number(2, birth="19990231")),  # row 3: no 31 February
        row(3, 身份证号=make_id_number(3, birth=f"{tomorrow:%Y%m%d}")),  # row 4: born tomorrow
        row(4, 联系电话="12345678901"),  # row 5: no such mobile prefix
        row(5, 入党时间=tomorrow.isoformat()),  # row 6
        row(6, 入党时间="1997-12-31"),  # row 7: the day before the 18th birthday
        row(7, 出生日期="1981-01-01"),  # row 8: the ID number says 1980-01-01
        row(8, 身份证号=make_id_number(8, birth=f"{child:%Y%m%d}"), 入党时间=""),  # row 9: ten years old
        row(9, 联系电话="0759-1234567", 入党时间="1998-01-01"),  # row 10: fine (a fixed line, 18 that day)
    ]


EXPECTED = {
    (3, "身份证号", "id_number_invalid"),
    (4, "身份证号", "id_number_invalid"),
    (5, "联系电话", "phone_invalid"),
    (6, "入党时间", "joined_on_future"),
    (7, "入党时间", "joined_under_age"),
    (8, "出生日期", "birth_date_mismatch"),
    (9, "身份证号", "birth_date_implausible"),
}


def test_implausible_rows_are_reported_and_nothing_is_written(branch, tmp_path):
    report = members_import(path=write_xlsx(tmp_path / "名册.xlsx", _rows()))
    assert {(e.row, e.column, e.code) for e in report.errors} == EXPECTED
    by_row = {e.row: e.message for e in report.errors}
    assert "19990231" in by_row[3] and "晚于今天" in by_row[4] and "未满18周岁" in by_row[7]
    assert "第7行【入党时间】" in str(next(e for e in report.errors if e.row == 7))
    assert not report.written and "未写入任何数据" in report.summary()
    assert PartyMember.objects.count() == 0
    assert not AuditEvent.objects.filter(action="import").exists()


def test_with_partial_the_plausible_rows_land(branch, tmp_path):
    report = members_import(path=write_csv(tmp_path / "名册.csv", _rows()), partial=True)
    assert {(e.row, e.column, e.code) for e in report.errors} == EXPECTED
    assert report.written and report.created == 2
    assert set(PartyMember.objects.values_list("name", flat=True)) == {"张1", "张9"}
    landline = PartyMember.objects.get(name="张9")
    assert pii.pii_reveal(landline.phone_cipher) == "07591234567"
    assert AuditEvent.objects.get(action="import").changes["bad_rows"] == len(EXPECTED)


def test_the_command_refuses_the_file_and_names_row_and_column(branch, tmp_path, capsys):
    path = write_csv(tmp_path / "c.csv", [row(1), row(2, 入党时间="1990-01-01")])
    with pytest.raises(CommandError, match="未写入"):
        call_command("import_members", str(path))
    assert "第3行【入党时间】" in capsys.readouterr().err
    assert PartyMember.objects.count() == 0
    call_command("import_members", str(path), "--partial")
    assert list(PartyMember.objects.values_list("name", flat=True)) == ["张1"]
