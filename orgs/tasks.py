"""Celery tasks of the orgs app: thin, each calls one service and is safe to run twice.

`escalate_overdue_cases` runs from beat every ten minutes (settings.CELERY_BEAT_SCHEDULE). The
service claims due cases with SKIP LOCKED and writes each escalation with a conditional UPDATE, so
a run that overlaps the previous one, or a retry after a lost connection, escalates nothing twice.
"""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from orgs.services import inbox
from orgs.services.cases import cases_escalate_overdue


@shared_task(
    time_limit=300,
    soft_time_limit=240,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def escalate_overdue_cases() -> dict[str, int]:
    """督办: escalate every open case past its step's due time (the time is the worker's now)."""
    return cases_escalate_overdue()


# Reminders into the inbox (orgs.services.inbox). Each sweep is one INSERT … ON CONFLICT DO
# NOTHING on (user, kind, subject, period): a re-run, an overlap or a retry sends nothing twice.
_REMINDER_TASK = {
    "time_limit": 300,
    "soft_time_limit": 240,
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "max_retries": 3,
}


@shared_task(**_REMINDER_TASK)
def remind_cases_due() -> dict[str, int]:
    """Case steps due within four working hours, and overdue ones, to their handlers (and 督办 body)."""
    return inbox.reminders_cases_due()


@shared_task(**_REMINDER_TASK)
def remind_cadres_behind_pace() -> int:
    """Stationed cadres behind their month's days on site, to the cadre and the street admins."""
    return inbox.reminders_cadres_behind_pace()


@shared_task(**_REMINDER_TASK)
def remind_org_terms() -> int:
    """Organisation terms lapsing within 90/30 days and overdue, to the community/street admins."""
    return inbox.reminders_org_terms()


@shared_task(**_REMINDER_TASK)
def remind_buildings_visit_due() -> int:
    """Buildings due for a visit: one message per grid worker per day with the count."""
    return inbox.reminders_buildings_visit_due()
