"""Celery tasks of the gap recompute: thin, take ids, call the one service, safe to run twice.

`queue_gap_recompute` is the listener the project names in settings.WANGGE_CHANGE_LISTENERS:
grid.changes calls it after every commit that changed communities. A burst of writes to one
community (a synced batch, an import, an admin saving a form set) must cost one recompute, not
one per write, so the queue is collapsed in Redis:

- per community a key `gaps:queued:<id>` is added with SET NX (Django's cache.add) and a TTL;
  only the writes that added a key send a task, and only for those communities, with a countdown
  of DEBOUNCE_SECONDS: every write to the same community in that window finds its key and sends
  nothing;
- the task deletes its communities' keys *before* it recomputes. A write committed after the
  delete queues a new task (it may find its change already counted: harmless, the recompute is
  idempotent); a write committed before the delete was committed before the recompute reads, so
  it is counted. No change is ever left uncounted;
- the TTL (QUEUED_TTL_SECONDS) only bounds how long a lost task (a worker killed, a broker
  flushed) can mute a community; the nightly full run catches anything older.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from celery import shared_task
from django.core.cache import cache
from django.db import OperationalError
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from mapping import services

logger = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 5
QUEUED_TTL_SECONDS = 120


def _queued_key(community_id: int) -> str:
    return f"gaps:queued:{community_id}"


def queue_gap_recompute(*, community_ids: Iterable[int]) -> list[int]:
    """Queue a recompute of these communities unless one is already queued for them; returns the
    ids that were queued now (the listener of grid.changes, called after commit).

    Redis unreachable: the write that called this has committed, so failing its request would
    say it did not; the error is logged and the nightly run recomputes the community.
    """
    ids = sorted({int(c) for c in community_ids})
    try:
        fresh = [c for c in ids if cache.add(_queued_key(c), 1, timeout=QUEUED_TTL_SECONDS)]
        if fresh:
            recompute_gaps.apply_async(args=[fresh], countdown=DEBOUNCE_SECONDS)
    except (RedisError, BrokerError):
        logger.exception("覆盖缺口重新计算未能排队（社区 %s），将由夜间全量计算补上", ids)
        return []
    return fresh


@shared_task(
    time_limit=600,
    soft_time_limit=540,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def recompute_gaps(community_ids: Sequence[int]) -> dict[str, int]:
    cache.delete_many([_queued_key(int(c)) for c in community_ids])
    return services.gaps_recompute(community_ids=list(community_ids))


@shared_task(time_limit=1800, soft_time_limit=1700, autoretry_for=(OperationalError,), max_retries=2)
def recompute_all_gaps() -> dict[str, int]:
    """The nightly sweep: every community in one transaction (what no listener heard of, e.g. an
    edit made with psql, and the day's date: visits age out of their window at midnight)."""
    return services.gaps_recompute(community_ids=None)
