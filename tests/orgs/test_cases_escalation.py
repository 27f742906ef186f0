"""督办: a case past its step's deadline is escalated to the body above its assignee, visibly, once
per due time; the sweep run twice (or racing) escalates nothing twice; through a real worker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.utils import timezone

from grid.models import AuditEvent
from ops.celery import app
from orgs import cases_selectors as selectors
from orgs import cases_sql, services, tasks
from orgs.cases_models import Case, CaseTransition
from tests.orgs.cases_world import MONDAY, Ledger, at, ledger_fixture, snapshot  # noqa: F401 - fixture

A = CaseTransition.Action
S = Case.State


def _escalations(case: Case) -> list[tuple[int, str]]:
    return list(
        case.transitions.filter(action=A.ESCALATE).order_by("id").values_list("escalation_level", "assignee_name")
    )


@pytest.mark.django_db
def test_an_unregistered_case_climbs_from_the_community_to_the_street_once_per_due_time(ledger: Ledger):
    case = ledger.raise_case()  # 立案 due 10:00; nobody assigned yet: the community, then the street
    assert services.cases_escalate_overdue(now=at(2026, 3, 2, 9, 59)) == {"escalated": 0, "claimed": 0}

    audit_before = AuditEvent.objects.count()
    assert services.cases_escalate_overdue(now=at(2026, 3, 2, 10, 5))["escalated"] == 1
    case.refresh_from_db()
    assert (case.escalation_level, case.escalated_to, case.ever_overdue) == (1, ledger.org_a, True)
    assert case.next_escalation_at == at(2026, 3, 2, 11)  # one more 立案 limit
    assert case.version == 1  # an escalation does not make the handler's next step stale
    assert _escalations(case) == [(1, ledger.org_a.name)]
    row = case.transitions.get(action=A.ESCALATE)
    assert (row.from_state, row.to_state, row.overdue, row.actor) == (S.REPORTED, S.REPORTED, True, None)
    assert "超过时限" in row.reason
    assert AuditEvent.objects.count() == audit_before + 1

    # Run again at the same time: nothing new, nothing written.
    before = snapshot()
    assert services.cases_escalate_overdue(now=at(2026, 3, 2, 10, 5)) == {"escalated": 0, "claimed": 0}
    assert snapshot() == before

    assert services.cases_escalate_overdue(now=at(2026, 3, 2, 11, 1))["escalated"] == 1
    case.refresh_from_db()
    assert (case.escalation_level, case.escalated_to, case.next_escalation_at) == (2, ledger.committee, None)
    # The top is reached: later runs leave it alone.
    assert services.cases_escalate_overdue(now=at(2026, 3, 9, 9))["escalated"] == 0
    assert _escalations(case) == [(1, ledger.org_a.name), (2, ledger.committee.name)]
    # Still counted as overdue in the ledger and the statistics.
    reach = ledger.reach(ledger.street_admin)
    assert list(selectors.case_list(reach=reach, overdue=True, now=at(2026, 3, 9, 9))) == [case]
    stats = selectors.case_statistics(reach=reach, since=MONDAY.date(), until=MONDAY.date(), now=at(2026, 3, 9, 9))
    assert stats["totals"]["escalated"] == 1 and stats["totals"]["overdue_now"] == 1


@pytest.mark.django_db
def test_a_dispatched_case_goes_to_the_assignees_parent(ledger: Ledger):
    # Dispatched to the community organisation (属地兜底): its parent is the street committee.
    case = ledger.raise_case(by=ledger.admin_a, category=ledger.neighbours)
    case = ledger.act(ledger.act(case, A.ACCEPT), A.DISPATCH, now=at(2026, 3, 2, 9, 10))
    assert case.assignee_org == ledger.org_a and case.deadline == at(2026, 3, 9, 9, 10)  # 5 工作日
    assert services.cases_escalate_overdue(now=at(2026, 3, 9, 9, 11))["escalated"] == 1
    case.refresh_from_db()
    assert (case.escalation_level, case.escalated_to, case.next_escalation_at) == (1, ledger.committee, None)

    # Dispatched to a street department (the category's body): the street answers for it.
    other = ledger.act(ledger.act(ledger.raise_case(), A.ACCEPT), A.DISPATCH)
    assert other.assignee_route == Case.Route.CATEGORY
    services.cases_escalate_overdue(now=at(2026, 3, 3, 10))
    other.refresh_from_db()
    assert (other.escalation_level, other.escalated_to) == (1, ledger.committee)


@pytest.mark.django_db
def test_a_new_step_past_its_deadline_is_escalated_again_at_the_top(ledger: Ledger):
    case = ledger.raise_case(by=ledger.admin_a, category=ledger.neighbours)
    services.cases_escalate_overdue(now=at(2026, 3, 2, 10, 5))
    services.cases_escalate_overdue(now=at(2026, 3, 2, 11, 5))
    case.refresh_from_db()
    assert case.escalation_level == 2
    # 立案 at last: a new step with its own deadline and due time; the level stays.
    case = ledger.act(case, A.ACCEPT, now=at(2026, 3, 2, 11, 30))
    # 派遣 within 1 working hour: half an hour before lunch, half an hour after.
    assert (case.escalation_level, case.next_escalation_at) == (2, at(2026, 3, 2, 14, 30))
    assert services.cases_escalate_overdue(now=at(2026, 3, 2, 14, 31))["escalated"] == 1
    assert services.cases_escalate_overdue(now=at(2026, 3, 2, 18, 0))["escalated"] == 0
    case.refresh_from_db()
    assert case.escalation_level == 2 and case.next_escalation_at is None
    assert _escalations(case)[-1] == (2, ledger.committee.name)


@pytest.mark.django_db
def test_the_write_is_conditional_on_what_was_read(ledger: Ledger):
    """The claim pattern: an escalation computed from a stale read (the case moved, or another
    sweep got there first) updates no row."""
    case = ledger.raise_case()
    stale = {
        "id": case.pk,
        "state": S.REPORTED,
        "level": 0,
        "due": case.next_escalation_at.isoformat(),
        "new_level": 1,
        "escalated_to_id": ledger.org_a.pk,
        "next_due": None,
        "now": at(2026, 3, 2, 10, 5).isoformat(),
    }
    ledger.act(case, A.ACCEPT)  # moved on since the read
    assert cases_sql.escalations_apply([stale]) == []
    case.refresh_from_db()
    assert case.escalation_level == 0


@pytest.mark.django_db
def test_closed_cases_are_never_escalated(ledger: Ledger):
    case = ledger.act(ledger.raise_case(), A.DECLINE, reason="重复上报")
    assert case.next_escalation_at is None
    assert services.cases_escalate_overdue(now=at(2026, 4, 1, 9))["claimed"] == 0


@pytest.mark.django_db
def test_the_sweep_works_in_batches(ledger: Ledger):
    for n in range(5):
        ledger.raise_case(position=ledger.position_in("a1", dx=n * 3))
    assert services.cases_escalate_overdue(now=at(2026, 3, 2, 10, 5), batch=2) == {"escalated": 5, "claimed": 5}
    assert CaseTransition.objects.filter(action=A.ESCALATE).count() == 5


def test_the_sweep_is_on_the_beat():
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "orgs.tasks.escalate_overdue_cases"]
    assert len(entries) == 1 and entries[0]["schedule"].total_seconds() <= 15 * 60


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_the_task_through_a_real_worker_twice(ledger: Ledger):
    # The worker escalates as of its own clock: urgent cases (continuous hours) raised 90 minutes
    # ago are half an hour past their 1-hour 立案 limit, and their next due time is half an hour
    # ahead, so the second run finds nothing due.
    raised = timezone.now() - timedelta(minutes=90)
    ledger.raise_case(category=ledger.manhole, now=raised)
    ledger.raise_case(by=ledger.admin_a, cell="a2", category=ledger.manhole, now=raised)
    app.control.purge()
    with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING", shutdown_timeout=10):
        first = tasks.escalate_overdue_cases.delay().get(timeout=30)
        second = tasks.escalate_overdue_cases.delay().get(timeout=30)
    assert first["escalated"] == 2
    assert second["escalated"] == 0
    assert list(Case.objects.order_by("pk").values_list("escalation_level", flat=True)) == [1, 1]
    assert CaseTransition.objects.filter(action=A.ESCALATE).count() == 2
