"""The cases admin: categories and the working calendar kept by street administrators through the
services (audited, refusals as form errors), cases read-only and scoped by reach."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from edge.errors import DomainError, OutsideEditReach
from grid.models import AuditEvent
from orgs import services
from orgs.cases_models import CaseCategory, WorkCalendarDay
from tests.orgs.cases_world import Ledger, ledger_fixture  # noqa: F401 - fixture
from tests.people import signed_in

pytestmark = pytest.mark.django_db


def _staff(user, perms: str = "all"):
    group, created = Group.objects.get_or_create(name=f"cases-admin-{perms}")
    if created:
        qs = Permission.objects.filter(content_type__app_label="orgs")
        group.permissions.set(qs if perms == "all" else qs.filter(codename__startswith="view_"))
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    user.groups.add(group)
    return signed_in(user)


def _form(category: CaseCategory, **changes) -> dict:
    data = {
        name: getattr(category, name)
        for name in ("code", "name", "group", "default_body", "register_hours", "dispatch_hours", "handle_hours",
                     "verify_hours", "close_hours", "duplicate_radius_m", "sort_order")
    }
    data |= {"urgent": "on" if category.urgent else "", "active": "on" if category.active else ""}
    data |= changes
    return {k: v for k, v in data.items() if v != ""}


def test_a_street_admin_edits_a_category_through_the_service(ledger: Ledger):
    client = _staff(ledger.street_admin)
    url = reverse("admin:orgs_casecategory_change", args=[ledger.rubbish.pk])
    before = AuditEvent.objects.filter(object_type="orgs.CaseCategory").count()
    response = client.post(url, _form(ledger.rubbish, handle_hours="15"))
    assert response.status_code == 302, response.content.decode()[:2000]
    ledger.rubbish.refresh_from_db()
    assert ledger.rubbish.handle_hours == Decimal("15.0")
    row = AuditEvent.objects.filter(object_type="orgs.CaseCategory").order_by("-id").first()
    assert row.changes == {"handle_hours": ["7.5", "15"]}
    assert AuditEvent.objects.filter(object_type="orgs.CaseCategory").count() == before + 1
    # A refusal is a form error and changes nothing.
    refused = client.post(url, _form(ledger.rubbish, duplicate_radius_m="5000"))
    assert refused.status_code == 200 and "1–1000" in refused.content.decode()
    ledger.rubbish.refresh_from_db()
    assert ledger.rubbish.duplicate_radius_m == 250


def test_only_street_admins_keep_the_tables(ledger: Ledger):
    client = _staff(ledger.admin_a)
    url = reverse("admin:orgs_casecategory_change", args=[ledger.rubbish.pk])
    assert client.get(url).status_code == 200  # may look
    response = client.post(url, _form(ledger.rubbish, handle_hours="1"))
    assert response.status_code == 403
    ledger.rubbish.refresh_from_db()
    assert ledger.rubbish.handle_hours == Decimal("7.5")
    with pytest.raises(OutsideEditReach):
        services.case_category_update(reach=ledger.reach(ledger.admin_a), category=ledger.rubbish, urgent=True)
    with pytest.raises(OutsideEditReach):
        services.work_calendar_day_set(reach=ledger.reach(ledger.admin_a), day=date(2027, 2, 9), is_workday=False)


def test_the_calendar_is_kept_as_data(ledger: Ledger):
    client = _staff(ledger.street_admin)
    # The 2027 notice's bridging day, entered once it is published.
    response = client.post(
        reverse("admin:orgs_workcalendarday_add"), {"date": "2027-02-09", "note": "春节调休"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    day = WorkCalendarDay.objects.get(date=date(2027, 2, 9))
    assert not day.is_workday
    assert AuditEvent.objects.filter(object_type="orgs.WorkCalendarDay", object_id=str(day.pk)).exists()
    delete = reverse("admin:orgs_workcalendarday_delete", args=[day.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert not WorkCalendarDay.objects.filter(date=date(2027, 2, 9)).exists()


def test_the_seeded_calendar_and_categories():
    # From the State Council's notices: 2026's Spring Festival block and its make-up Saturdays.
    days = dict(WorkCalendarDay.objects.values_list("date", "is_workday"))
    assert all(days[date(2026, 2, d)] is False for d in range(15, 24))
    assert days[date(2026, 2, 14)] is True and days[date(2026, 2, 28)] is True
    assert days[date(2025, 10, 8)] is False and days[date(2025, 10, 11)] is True
    assert days[date(2027, 2, 5)] is False  # 2027: statutory days only, until its notice
    names = set(CaseCategory.objects.values_list("name", flat=True))
    assert {"暴露垃圾", "道路不洁", "违法搭建", "占道经营", "噪声扰民", "路灯损坏", "井盖缺失", "绿化损毁",
            "邻里纠纷", "物业问题", "安全隐患", "其他"} <= names
    limits = dict(CaseCategory.objects.values_list("name", "handle_hours"))
    assert limits["道路不洁"] == Decimal("5.0") and limits["违法搭建"] == Decimal("112.5")


def test_cases_are_read_only_in_the_admin(ledger: Ledger):
    case = ledger.raise_case()
    client = _staff(ledger.street_admin)
    page = client.get(reverse("admin:orgs_case_change", args=[case.pk]))
    assert page.status_code == 200 and "小区门口垃圾堆放两天无人清运" in page.content.decode()
    assert client.get(reverse("admin:orgs_case_add")).status_code == 403
    other = _staff(ledger.worker_a2, perms="view")
    assert other.get(reverse("admin:orgs_case_change", args=[case.pk])).status_code == 302  # not found


def test_category_service_refusals():
    with pytest.raises(DomainError) as clash:
        services.case_category_create(reach=None, code="SR01", name="新类别", handle_hours=1)
    assert clash.value.code == "case_category_duplicate"
    with pytest.raises(DomainError) as hours:
        services.case_category_create(reach=None, code="ZZ01", name="新类别", handle_hours=0)
    assert hours.value.code == "case_category_hours_positive"
