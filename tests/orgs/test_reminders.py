"""Reminders into the inbox: case steps near their deadline and overdue, stationed cadres behind
their days on site, organisation terms lapsing and overdue, buildings due for a visit. Each is sent
once per subject and period: every sweep run twice sends nothing the second time; through a real
Celery worker too."""

from __future__ import annotations

from datetime import date, timedelta
from uuid import uuid4

import pytest
from celery.contrib.testing.worker import start_worker
from django.utils import timezone

from grid.models import AuditEvent
from ops.celery import app
from orgs import tasks
from orgs.cases_models import Case
from orgs.inbox_models import Notification
from orgs.models import PartyOrganisation, StationContact, Visit
from orgs.services import cases_escalate_overdue, inbox
from tests.orgs.cases_world import MONDAY, Ledger, at, ledger_fixture  # noqa: F401 - fixture
from tests.orgs_factories import StationedCadreFactory
from tests.people import user_with

K = Notification.Kind


def _inbox(kind: str) -> set[tuple[int, int, str]]:
    return set(Notification.objects.filter(kind=kind).values_list("user_id", "subject_id", "period"))


@pytest.mark.django_db
def test_a_case_step_is_announced_when_near_and_when_overdue_once_each(ledger: Ledger):
    case = ledger.raise_case()  # 立案 due 10:00: the community admin takes it
    audit = AuditEvent.objects.count()
    assert inbox.reminders_cases_due(now=MONDAY) == {"case_due_soon": 1, "case_overdue": 0}
    assert _inbox(K.CASE_DUE_SOON) == {(ledger.admin_a.pk, case.pk, "2026-03-02T10:00")}
    note = Notification.objects.get()
    assert "即将到期" in note.title and "待立案" in note.body and note.link == f"/ledger/?case={case.pk}"
    assert AuditEvent.objects.count() == audit + 1
    # Run again: nothing new, no audit row.
    assert inbox.reminders_cases_due(now=MONDAY) == {"case_due_soon": 0, "case_overdue": 0}
    assert AuditEvent.objects.count() == audit + 1

    # Past the deadline and escalated to the community organisation: its admin hears once.
    cases_escalate_overdue(now=at(2026, 3, 2, 10, 5))
    assert inbox.reminders_cases_due(now=at(2026, 3, 2, 10, 5)) == {"case_due_soon": 0, "case_overdue": 1}
    assert inbox.reminders_cases_due(now=at(2026, 3, 2, 14)) == {"case_due_soon": 0, "case_overdue": 0}
    # Escalated on to the street committee: the street admin hears too, the community admin not again.
    cases_escalate_overdue(now=at(2026, 3, 2, 11, 1))
    assert inbox.reminders_cases_due(now=at(2026, 3, 2, 11, 5)) == {"case_due_soon": 0, "case_overdue": 1}
    assert _inbox(K.CASE_OVERDUE) == {
        (ledger.admin_a.pk, case.pk, "2026-03-02T10:00"),
        (ledger.street_admin.pk, case.pk, "2026-03-02T10:00"),
    }
    # Nobody in grid A2 or community B, and no read-only leader, was told.
    told = set(Notification.objects.values_list("user_id", flat=True))
    assert told.isdisjoint({ledger.worker_a2.pk, ledger.admin_b.pk, ledger.leader.pk})


@pytest.mark.django_db
def test_a_dispatched_case_is_announced_to_those_on_site_and_a_new_step_is_a_new_reminder(ledger: Ledger):
    case = ledger.raise_case()
    ledger.act(case, "accept", now=at(2026, 3, 2, 9, 10))
    case = ledger.act(case, "dispatch", now=at(2026, 3, 2, 9, 20))
    assert case.state == Case.State.DISPATCHED
    # The 处置 step (7.5 working hours) ends Tuesday 9:20; four working hours before it is Monday 15:50.
    assert inbox.reminders_cases_due(now=at(2026, 3, 2, 14)) == {"case_due_soon": 0, "case_overdue": 0}
    sent = inbox.reminders_cases_due(now=at(2026, 3, 2, 16))
    assert sent == {"case_due_soon": 2, "case_overdue": 0}
    # 签收处理 is done on site: the grid's worker and the community admin, not the other grid.
    assert {u for u, _, _ in _inbox(K.CASE_DUE_SOON)} == {ledger.worker_a1.pk, ledger.admin_a.pk}
    assert inbox.reminders_cases_due(now=at(2026, 3, 2, 17)) == {"case_due_soon": 0, "case_overdue": 0}


@pytest.mark.django_db
def test_a_cadre_behind_their_days_on_site_is_reminded_once_a_week(ledger: Ledger):
    s = ledger.space
    cadre_user = user_with("stationed_cadre", community=s.a)
    late = StationedCadreFactory(community=s.a, user=cadre_user, required_days_per_month=8)
    keeping_up = StationedCadreFactory(community=s.a, required_days_per_month=8)
    for day in range(2, 8):  # six days on site in March: ahead of an even pace on the 20th
        StationContact.objects.create(
            id=uuid4(),
            payload_hash="x" * 64,
            occurred_at=at(2026, 3, day, 9),
            reporter=cadre_user,
            reporter_name="驻点干部",
            kind=StationContact.Kind.CHECK_IN,
            place=s.house_a1.point,
            community=s.a,
            grid_cell=s.a1,
            cadre=keeping_up,
            on_site=True,
        )
    now = at(2026, 3, 20, 8, 5)
    assert inbox.reminders_cadres_behind_pace(now=now) == 2
    assert _inbox(K.CADRE_BEHIND_PACE) == {
        (cadre_user.pk, late.pk, "2026-W12"),
        (ledger.street_admin.pk, late.pk, "2026-W12"),
    }
    assert "本月已在岗驻点0天" in Notification.objects.filter(user=cadre_user).get().body
    assert inbox.reminders_cadres_behind_pace(now=now + timedelta(hours=6)) == 0
    assert inbox.reminders_cadres_behind_pace(now=now + timedelta(days=7)) == 2  # the next week


@pytest.mark.django_db
def test_terms_lapsing_and_overdue_are_announced_once_per_window_to_the_admins(ledger: Ledger):
    today = date(2026, 3, 2)
    PartyOrganisation.objects.update(term_started_on=None)
    # org A's term ends in 20 days (the 30-day window); the street committee's ended a month ago.
    PartyOrganisation.objects.filter(pk=ledger.org_a.pk).update(
        term_started_on=date(2021, 3, 22), term_years=5
    )
    PartyOrganisation.objects.filter(pk=ledger.committee.pk).update(
        term_started_on=date(2021, 2, 2), term_years=5
    )
    assert inbox.reminders_org_terms(now=at(2026, 3, 2, 8, 10), today=today) == 3
    assert _inbox(K.ORG_TERM_EXPIRING) == {
        (ledger.admin_a.pk, ledger.org_a.pk, "30d:2026-03-22"),
        (ledger.street_admin.pk, ledger.org_a.pk, "30d:2026-03-22"),
    }
    assert _inbox(K.ORG_TERM_OVERDUE) == {
        (ledger.street_admin.pk, ledger.committee.pk, "overdue:2026-02-02:2026-03")
    }
    assert inbox.reminders_org_terms(now=at(2026, 3, 3, 8, 10), today=date(2026, 3, 3)) == 0
    # A month later the overdue term is announced again; org A's is overdue now, a new reminder.
    assert inbox.reminders_org_terms(now=at(2026, 4, 2, 8, 10), today=date(2026, 4, 2)) == 3


def _visit(ledger: Ledger, building, when) -> Visit:
    return Visit.objects.create(
        id=uuid4(),
        payload_hash="x" * 64,
        occurred_at=when,
        reporter=ledger.worker_a1,
        reporter_name="网格员",
        kind=Visit.Kind.HOUSEHOLD,
        place=building.point,
        community=building.community,
        grid_cell=building.grid_cell,
        building=building,
    )


@pytest.mark.django_db
def test_buildings_due_for_a_visit_make_one_message_per_worker_per_day(ledger: Ledger):
    s = ledger.space
    _visit(ledger, s.house_a1, at(2026, 2, 20, 10))  # visited 10 days ago: not due
    _visit(ledger, s.house_a2, at(2025, 12, 1, 10))  # 91 days ago: due
    now = at(2026, 3, 2, 8, 15)
    assert inbox.reminders_buildings_visit_due(now=now) == 1
    assert _inbox(K.BUILDINGS_VISIT_DUE) == {(ledger.worker_a2.pk, ledger.worker_a2.pk, "2026-03-02")}
    note = Notification.objects.get()
    assert note.title == "1栋楼待走访" and "超过60天未走访" in note.body
    assert inbox.reminders_buildings_visit_due(now=now + timedelta(hours=4)) == 0
    assert inbox.reminders_buildings_visit_due(now=now + timedelta(days=1)) == 1


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_the_reminder_tasks_through_a_real_worker_send_nothing_twice(ledger: Ledger):
    case = ledger.raise_case(now=timezone.now() - timedelta(days=3))  # long past its 立案 limit
    _visit(ledger, ledger.space.house_a1, timezone.now() - timedelta(days=90))
    with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING", shutdown_timeout=10):
        first = [
            tasks.remind_cases_due.delay().get(timeout=30),
            tasks.remind_buildings_visit_due.delay().get(timeout=30),
        ]
        rows = Notification.objects.count()
        second = [
            tasks.remind_cases_due.delay().get(timeout=30),
            tasks.remind_buildings_visit_due.delay().get(timeout=30),
        ]
        for task in (tasks.remind_cadres_behind_pace, tasks.remind_org_terms):
            task.delay().get(timeout=30)
    assert first == [{"case_due_soon": 0, "case_overdue": 1}, 2]  # grids A1 (visit too old) and A2
    assert second == [{"case_due_soon": 0, "case_overdue": 0}, 0]
    assert Notification.objects.count() == rows
    assert Notification.objects.filter(kind=K.CASE_OVERDUE, subject_id=case.pk, user=ledger.admin_a).exists()
