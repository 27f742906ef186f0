"""The ledger page's shell and its Excel export: only the caller's cases under the list's filters,
one audit row per export; a bad filter is a 400 with a stable code and writes no audit row."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from grid.models import AuditEvent
from tests.orgs.cases_world import MONDAY, Ledger, ledger_fixture  # noqa: F401 - fixture
from tests.people import api_client


@pytest.mark.django_db
def test_the_export_holds_the_callers_filtered_cases_and_is_audited(ledger: Ledger):
    mine = ledger.raise_case()
    ledger.raise_case(by=ledger.admin_a, cell="a2", category=ledger.neighbours)
    ledger.raise_case(by=ledger.admin_b, cell="b1")
    client = api_client(ledger.admin_a)
    before = AuditEvent.objects.count()

    answer = client.get(f"/ledger/export.xlsx?category={ledger.rubbish.pk}")
    assert answer.status_code == 200
    assert answer["X-Export-Count"] == "1"
    sheet = load_workbook(io.BytesIO(answer.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[1][:4] == ("编号", "上报时间", "类别", "状态")
    assert [r[0] for r in rows[2:]] == [mine.pk]
    assert rows[2][2:4] == ("暴露垃圾", "待立案")
    event = AuditEvent.objects.latest("pk")
    assert AuditEvent.objects.count() == before + 1
    assert (event.action, event.changes["count"], event.changes["filters"]) == (
        "export",
        1,
        {"category": ledger.rubbish.pk},
    )
    # Everything community A sees: two cases, not B's.
    assert client.get("/ledger/export.xlsx").headers["X-Export-Count"] == "2"


@pytest.mark.django_db
def test_a_bad_filter_is_refused_with_a_code_and_nothing_audited(ledger: Ledger):
    client = api_client(ledger.admin_a)
    before = AuditEvent.objects.count()
    answer = client.get("/ledger/export.xlsx?state=nonsense")
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_input"
    assert AuditEvent.objects.count() == before


@pytest.mark.django_db
def test_the_page_needs_a_reach_and_shows_the_inbox_count(ledger: Ledger, client):
    from grid.models import Role
    from orgs.services import inbox
    from tests.people import user_with

    assert client.get("/ledger/").status_code == 302  # to the sign-in page
    client.force_login(user_with(username="nobody"))
    assert client.get("/ledger/").status_code == 403
    user = user_with(Role.COMMUNITY_ADMIN, community=ledger.space.a)
    inbox.notify(
        user_ids=[user.pk],
        kind="case_overdue",
        subject_type="case",
        subject_id=1,
        period="p",
        title="t",
        body="b",
    )
    client.force_login(user)
    page = client.get("/ledger/").content.decode()
    assert 'id="inbox-unread">1</b>' in page and "民情台账" in page
    assert '<b id="inbox-unread">1</b>' in client.get("/dashboard/").content.decode()
