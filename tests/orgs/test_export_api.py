"""POST /api/members/export/: the roster as a file, scoped by reach, masked unless the caller has the
export permission AND view_pii over everyone in it, never without a reason, always audited."""

import csv
import io

import openpyxl
import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from grid.models import AuditEvent, Role
from orgs import pii
from orgs.roster import HEADERS
from tests.orgs.reach_world import PHONE, world_fixture  # noqa: F401 - fixture
from tests.orgs_factories import make_id_number
from tests.people import api_client, grant, user_with

pytestmark = [pytest.mark.django_db]
URL = "/api/members/export/"




def allow_export(user):
    user.user_permissions.add(Permission.objects.get(codename="export_personal_data"))
    return type(user).objects.get(pk=user.pk)  # fresh: permissions are cached per instance


def rows_of(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Disposition"].startswith("attachment; filename=")
    if response["Content-Type"].startswith("text/csv"):
        lines = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    else:
        sheet = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True).active
        lines = [[c if c is not None else "" for c in row] for row in sheet.iter_rows(values_only=True)]
    assert lines[0] == HEADERS  # the import's headers: an export re-imports
    return [dict(zip(HEADERS, line, strict=True)) for line in lines[1:]]


def last_export() -> AuditEvent:
    return AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT).latest("id")


def test_without_the_permission_the_export_is_masked_and_audited(world):
    street_admin = user_with(Role.STREET_ADMIN, street=world.space.street)
    response = api_client(street_admin).post(URL, {"reason": "年度党员统计"}, format="json")
    rows = rows_of(response)
    assert {r["姓名"] for r in rows} == {"甲一", "甲二", "乙一", "甲社区"}
    a1 = next(r for r in rows if r["姓名"] == "甲一")
    assert a1["身份证号"] == pii.mask_id_number(make_id_number(1)) != make_id_number(1)
    assert a1["联系电话"] == pii.mask_phone(PHONE) != PHONE
    row = last_export()
    assert (row.actor_id, row.reason, row.street_id) == (
        street_admin.pk,
        "年度党员统计",
        world.space.street.pk,
    )
    assert row.changes["count"] == 4 and row.changes["unmasked"] is False


def test_with_the_permission_and_view_pii_everywhere_the_export_is_clear(world):
    admin_a = allow_export(user_with(Role.COMMUNITY_ADMIN, community=world.space.a))
    response = api_client(admin_a).post(URL, {"reason": "换届核对", "format": "csv"}, format="json")
    assert response["Content-Type"].startswith("text/csv")
    rows = rows_of(response)
    assert {r["姓名"] for r in rows} == {"甲一", "甲二", "甲社区"}  # community A only
    assert next(r for r in rows if r["姓名"] == "甲一")["身份证号"] == make_id_number(1)
    assert last_export().changes["unmasked"] is True


def test_the_permission_alone_does_not_unmask_people_outside_view_pii(world):
    s = world.space
    # Community admin of A (view_pii over A) and leader of the whole street (no view_pii): the
    # export holds B's members too, so it is masked as a whole.
    user = user_with(Role.COMMUNITY_ADMIN, community=s.a)
    grant(user, Role.LEADER, street=s.street)
    user = allow_export(user)
    rows = rows_of(api_client(user).post(URL, {"reason": "核对"}, format="json"))
    assert {r["姓名"] for r in rows} == {"甲一", "甲二", "乙一", "甲社区"}
    assert next(r for r in rows if r["姓名"] == "甲一")["身份证号"] != make_id_number(1)
    assert last_export().changes["unmasked"] is False
    # Limited to community A, everyone in the file is under view_pii: clear.
    rows = rows_of(api_client(user).post(URL, {"reason": "核对", "community": s.a.code}, format="json"))
    assert {r["姓名"] for r in rows} == {"甲一", "甲二", "甲社区"}
    assert next(r for r in rows if r["姓名"] == "甲一")["身份证号"] == make_id_number(1)


def test_a_reason_is_required_and_a_refusal_writes_no_audit_row(world):
    street_admin = allow_export(user_with(Role.STREET_ADMIN, street=world.space.street))
    client = api_client(street_admin)
    before = AuditEvent.objects.count()
    for body in ({}, {"reason": ""}, {"reason": "   "}, {"format": "csv"}):
        response = client.post(URL, body, format="json")
        assert response.status_code == 400, body
        assert response.json()["code"] == "reason_required"
    response = client.post(URL, {"reason": "x", "format": "pdf"}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "invalid_input"
    assert AuditEvent.objects.count() == before


def test_exports_are_scoped_by_reach(world):
    s = world.space
    admin_a = allow_export(user_with(Role.COMMUNITY_ADMIN, community=s.a))
    before = AuditEvent.objects.count()
    response = api_client(admin_a).post(URL, {"reason": "越权", "community": s.b.code}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "reference_not_found"
    for role, unit in ((Role.GRID_WORKER, {"grid_cell": s.a1}), (Role.LEADER, {"street": s.street})):
        response = api_client(user_with(role, **unit)).post(URL, {"reason": "导出"}, format="json")
        assert response.status_code == 403, role
    assert APIClient().post(URL, {"reason": "导出"}, format="json").status_code == 401
    assert AuditEvent.objects.count() == before


def test_the_command_follows_the_same_masking_rule_as_the_api(world, tmp_path):
    """`export_members --user` used to unmask on the export permission alone."""
    from django.core.management import call_command

    s = world.space
    user = user_with(Role.COMMUNITY_ADMIN, community=s.a)
    grant(user, Role.LEADER, street=s.street)
    user = allow_export(user)
    for community, clear in ((None, False), (s.a.code, True)):
        out = tmp_path / f"roster-{community}.xlsx"
        args = ["export_members", str(out), "--reason", "核对", "--user", user.username]
        call_command(*args, *(["--community", community] if community else []), stdout=io.StringIO())
        sheet = openpyxl.load_workbook(out, read_only=True).active
        rows = [dict(zip(HEADERS, r, strict=True)) for r in list(sheet.iter_rows(values_only=True))[1:]]
        first = next(r for r in rows if r["姓名"] == "甲一")
        assert (first["身份证号"] == make_id_number(1)) is clear
        assert last_export().changes["unmasked"] is clear
