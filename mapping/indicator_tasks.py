"""Celery task of the daily indicator snapshot: thin, calls the one service, safe to run twice.

Its own module beside mapping/tasks.py (the gap recompute's), registered through
settings.CELERY_IMPORTS. Beat runs it nightly after the nightly gap recompute
(settings.CELERY_BEAT_SCHEDULE); should that still be running, the service waits for it
(mapping.indicators_sql.wait_for_full_gap_recompute).
"""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from mapping import indicators


@shared_task(time_limit=1800, soft_time_limit=1700, autoretry_for=(OperationalError,), max_retries=2)
def take_indicator_snapshots(street_ids: list[int] | None = None) -> dict[str, int]:
    """Today's snapshot (local date) of every unit, or of these streets' units. A rerun on the
    same day rewrites only rows whose figures changed."""
    return indicators.indicator_snapshots_take(day=timezone.localdate(), street_ids=street_ids)
