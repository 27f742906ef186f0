"""The member roster: import from the street office's xlsx/csv (per-row report, all-or-nothing
unless --partial, idempotent upsert by ID number), export masked unless permitted, both audited."""

import csv
from datetime import date

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from openpyxl import Workbook, load_workbook

from grid.models import AuditEvent, Role
from orgs import pii
from orgs.models import PartyMember
from orgs.roster import HEADERS, members_import
from tests.orgs_factories import CommunityOrgFactory, GridBranchFactory, make_id_number
from tests.people import grant

pytestmark = pytest.mark.django_db


@pytest.fixture
def tree(space):
    org_a = CommunityOrgFactory(community=space.a, code="ORG-A", name="甲社区党委")
    branch = GridBranchFactory(grid_cell=space.a1, parent=org_a, code="GB-A1", name="甲一网格党支部")
    space.house_a1.address = "霞山区甲一路1号"
    space.house_a1.save(update_fields=["address"])
    return {"space": space, "org_a": org_a, "branch": branch}


def row(n: int, **over) -> dict:
    base = {
        "姓名": f"张{n}",
        "性别": "男",
        "出生日期": "",
        "身份证号": make_id_number(n),
        "联系电话": f"1381234{n:04d}",
        "所在党组织": "GB-A1",
        "居住地址/楼栋编码": "",
        "党员类别": "在职",
        "党员状态": "正式党员",
        "入党时间": "2005-07-01",
        "工作单位": "湛江某公司",
        "报到社区": "",
        "党费缴至": "2024-06",
    }
    return base | over


def write_xlsx(path, rows, headers=HEADERS):
    wb = Workbook()
    ws = wb.active
    ws.append(headers)
    for r in rows:
        ws.append([r.get(h, "") for h in headers])
    wb.save(path)
    return path


def write_csv(path, rows, encoding="utf-8-sig", headers=HEADERS):
    with open(path, "w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(headers)
        for r in rows:
            writer.writerow([r.get(h, "") for h in headers])
    return path


def codes(report) -> set[tuple[int, str]]:
    return {(e.row, e.code) for e in report.errors}


def test_xlsx_import_creates_members_with_encrypted_personal_data(tree, tmp_path):
    space = tree["space"]
    path = write_xlsx(
        tmp_path / "名册.xlsx",
        [
            row(1, **{"居住地址/楼栋编码": "霞山区甲一路1号"}),
            row(2, 所在党组织="甲社区党委", 党员类别="离退休"),
        ],
    )
    report = members_import(path=path)
    assert report.errors == [] and (report.created, report.updated) == (2, 0)
    first = PartyMember.objects.get(id_number_hash=pii.id_number_hash(make_id_number(1)))
    assert first.residence_building == space.house_a1 and first.organisation == tree["branch"]
    assert first.birth_date == date(1980, 1, 1)  # taken from the ID number
    assert first.dues_paid_through == date(2024, 6, 1)
    assert pii.pii_reveal(first.phone_cipher) == "13812340001"
    second = PartyMember.objects.get(name="张2")
    assert second.organisation == tree["org_a"] and second.category == PartyMember.Category.RETIRED
    event = AuditEvent.objects.get(action="import")
    assert event.changes["created"] == 2 and event.changes["file"] == "名册.xlsx"


def test_reimporting_the_same_file_changes_nothing(tree, tmp_path):
    path = write_csv(tmp_path / "roster.csv", [row(1), row(2)])
    members_import(path=path)
    stamps = dict(PartyMember.objects.values_list("pk", "updated_at"))
    ciphers = dict(PartyMember.objects.values_list("pk", "phone_cipher"))
    again = members_import(path=path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert dict(PartyMember.objects.values_list("pk", "updated_at")) == stamps
    assert dict(PartyMember.objects.values_list("pk", "phone_cipher")) == ciphers
    # A changed row updates that member only, matched by the ID number.
    changed = members_import(path=write_csv(tmp_path / "v2.csv", [row(1, 党员类别="流动党员"), row(2)]))
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 1)
    assert PartyMember.objects.get(name="张1").category == PartyMember.Category.MOBILE


def test_gbk_csv_is_read(tree, tmp_path):
    path = write_csv(tmp_path / "gbk.csv", [row(3, 姓名="欧阳娜娜", 性别="女")], encoding="gbk")
    report = members_import(path=path)
    assert report.errors == [] and PartyMember.objects.get().name == "欧阳娜娜"


def test_each_bad_row_is_reported_and_nothing_is_written(tree, tmp_path):
    bad_id = make_id_number(9)[:-1] + ("0" if make_id_number(9)[-1] != "0" else "1")
    rows = [
        row(1),  # row 2: fine
        row(2, 姓名=""),  # row 3
        row(3, 身份证号=bad_id),  # row 4
        row(4, 身份证号=make_id_number(1)),  # row 5: same person as row 2
        row(5, 联系电话="12345"),  # row 6
        row(6, 入党时间="2005-13-40"),  # row 7
        row(7, 所在党组织="不存在的支部"),  # row 8
        row(8, **{"居住地址/楼栋编码": "无此楼"}),  # row 9
        row(9, 党员类别="积极分子"),  # row 10
        row(10, 党员状态="发展对象"),  # row 11
        row(11, 党费缴至="去年"),  # row 12
    ]
    report = members_import(path=write_xlsx(tmp_path / "bad.xlsx", rows))
    assert codes(report) == {
        (3, "value_missing"),
        (4, "id_number_invalid"),
        (5, "id_number_duplicate"),
        (6, "phone_invalid"),
        (7, "date_invalid"),
        (8, "org_unknown"),
        (9, "building_unknown"),
        (10, "category_unknown"),
        (11, "status_unknown"),
        (12, "date_invalid"),
    }
    by_row = {e.row: e for e in report.errors}
    assert by_row[8].column == "所在党组织" and "不存在的支部" in by_row[8].message
    assert not report.written and PartyMember.objects.count() == 0
    assert not AuditEvent.objects.filter(action="import").exists()


def test_partial_writes_the_good_rows(tree, tmp_path):
    path = write_csv(tmp_path / "p.csv", [row(1), row(2, 联系电话="abc"), row(3)])
    report = members_import(path=path, partial=True)
    assert codes(report) == {(3, "phone_invalid")}
    assert report.written and report.created == 2
    assert set(PartyMember.objects.values_list("name", flat=True)) == {"张1", "张3"}


def test_missing_header_refuses_the_file(tree, tmp_path):
    headers = [h for h in HEADERS if h != "身份证号"]
    report = members_import(path=write_xlsx(tmp_path / "h.xlsx", [row(1)], headers=headers))
    assert codes(report) == {(1, "header_missing")}
    assert PartyMember.objects.count() == 0


def test_formulas_are_refused(tree, tmp_path):
    path = tmp_path / "f.xlsx"
    write_xlsx(path, [row(1), row(2)])
    wb = load_workbook(path)
    wb.active["D3"] = '=CONCATENATE("44080319800101","0028")'
    wb.save(path)
    report = members_import(path=path)
    assert codes(report) == {(3, "formula_not_allowed")}
    assert report.errors[0].column == "身份证号"
    assert PartyMember.objects.count() == 0


def test_an_existing_member_of_another_street_is_a_duplicate_within_a_street_import(tree, tmp_path):
    from tests.orgs_factories import PartyMemberFactory

    other = CommunityOrgFactory()
    PartyMemberFactory(organisation=other, id_number=make_id_number(1))
    report = members_import(path=write_csv(tmp_path / "s.csv", [row(1)]), street=tree["space"].street)
    assert codes(report) == {(2, "id_number_duplicate")}


def test_command_reports_rows_and_fails_without_partial(tree, tmp_path, capsys):
    path = write_csv(tmp_path / "c.csv", [row(1), row(2, 性别="未知")])
    with pytest.raises(CommandError, match="未写入"):
        call_command("import_members", str(path))
    assert "第3行【性别】" in capsys.readouterr().err
    call_command("import_members", str(path), "--partial", "--street", tree["space"].street.code)
    assert PartyMember.objects.count() == 1


# --- export -------------------------------------------------------------------------------------


def _exporter(with_permission: bool, street) -> User:
    user = User.objects.create_user(username="clerk" + ("_p" if with_permission else ""))
    grant(user, Role.STREET_ADMIN, street=street)
    if with_permission:
        user.user_permissions.add(Permission.objects.get(codename="export_personal_data"))
    return user


def test_export_masked_without_permission_and_audited(tree, tmp_path):
    members_import(path=write_csv(tmp_path / "in.csv", [row(1), row(2)]))
    out = tmp_path / "out.xlsx"
    call_command("export_members", str(out), "--reason", "年度党员统计")
    ws = load_workbook(out).active
    values = list(ws.values)
    assert list(values[0]) == HEADERS and len(values) == 3
    assert values[1][3] == make_id_number(1)[:6] + "********" + make_id_number(1)[-4:]
    assert values[1][4] == "138****0001"
    event = AuditEvent.objects.get(action="export")
    assert (
        event.reason == "年度党员统计" and event.changes["unmasked"] is False and event.changes["count"] == 2
    )


def test_export_unmasked_with_permission_reimports_unchanged(tree, tmp_path):
    members_import(path=write_csv(tmp_path / "in.csv", [row(1), row(2)]))
    user = _exporter(with_permission=True, street=tree["space"].street)
    out = tmp_path / "out.csv"
    call_command(
        "export_members",
        str(out),
        "--reason",
        "换届选举",
        "--user",
        user.username,
        "--community",
        tree["space"].a.code,
    )
    text = out.read_text(encoding="utf-8-sig")
    assert make_id_number(1) in text and "13812340001" in text
    assert AuditEvent.objects.get(action="export").changes["unmasked"] is True
    again = members_import(path=out)
    assert again.errors == [] and again.unchanged == 2


def test_export_without_permission_user_is_masked_and_reason_is_required(tree, tmp_path):
    members_import(path=write_csv(tmp_path / "in.csv", [row(1)]))
    user = _exporter(with_permission=False, street=tree["space"].street)
    out = tmp_path / "out.csv"
    with pytest.raises(CommandError):
        call_command("export_members", str(out), "--reason", "  ", "--user", user.username)
    assert not AuditEvent.objects.filter(action="export").exists()
    call_command("export_members", str(out), "--reason", "核对", "--user", user.username)
    text = out.read_text(encoding="utf-8-sig")
    assert "张1" in text and make_id_number(1) not in text and "138****0001" in text
    assert AuditEvent.objects.get(action="export").actor_id == user.pk


def test_export_is_limited_to_the_users_reach(tree, tmp_path):
    members_import(path=write_csv(tmp_path / "in.csv", [row(1)]))
    stranger = User.objects.create_user(username="stranger")
    stranger.user_permissions.add(Permission.objects.get(codename="export_personal_data"))
    out = tmp_path / "out.csv"
    call_command("export_members", str(out), "--reason", "核对", "--user", stranger.username)
    assert out.read_text(encoding="utf-8-sig").strip().splitlines() == [",".join(HEADERS)]
