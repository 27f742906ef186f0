"""Celery tasks of the orgs app: thin, each calls one service and is safe to run twice.

`escalate_overdue_cases` runs from beat every ten minutes (settings.CELERY_BEAT_SCHEDULE). The
service claims due cases with SKIP LOCKED and writes each escalation with a conditional UPDATE, so
a run that overlaps the previous one, or a retry after a lost connection, escalates nothing twice.
"""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

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
