"""Two recomputes of one community at once, on two real connections (threads), as in
tests/orgs/test_sync.py: the second waits for the first, then sees what the first committed and
what changed meanwhile; overlapping sets in opposite orders do not deadlock."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction

from mapping import sql
from mapping.models import Gap
from mapping.services import gaps_recompute
from orgs import services as org_services
from tests.mapping.conftest import AT, Scene

K = Gap.Kind


def _waiting_on_an_advisory_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
        )
        return cursor.fetchone()[0] > 0


def _run(target, outcome: dict, key: str) -> threading.Thread:
    def body() -> None:
        try:
            outcome[key] = target()
        except Exception as exc:  # noqa: BLE001 - reported by the assertions
            outcome[f"{key}_error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=body)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_the_second_recompute_waits_for_the_first_and_sees_what_changed_meanwhile(scene: Scene):
    """While a recompute computes (it holds the community's advisory lock), a writer is not
    stalled and a second recompute waits; once the first is done, the second sees both what the
    first committed (nothing opened twice) and the write made meanwhile. The recompute's own
    version bump is its last statement, right before its commit (mapping.services), so the hold
    here stops at the lock: a test transaction kept open past the bump would stall the writer on
    the community row, which no real recompute does."""
    s = scene
    opened = gaps_recompute(community_ids=[s.a.id], at=AT)["opened"]
    holding, release = threading.Event(), threading.Event()
    outcome: dict = {}

    def first() -> dict:
        with transaction.atomic():
            sql.lock_communities([s.a.id])
            holding.set()
            release.wait(10)
        return {}

    def second() -> dict:
        return gaps_recompute(community_ids=[s.a.id], at=AT + timedelta(minutes=1))

    one = _run(first, outcome, "first")
    assert holding.wait(10), outcome
    # A2 gets an active worker while the community is held: committed at once.
    started = time.monotonic()
    org_services.grid_worker_update(worker=s.worker_a2, active=True)
    assert time.monotonic() - started < 5, "a recompute's lock stalled a writer"
    two = _run(second, outcome, "second")
    deadline = time.monotonic() + 5
    while not _waiting_on_an_advisory_lock() and time.monotonic() < deadline:
        time.sleep(0.02)
    blocked = _waiting_on_an_advisory_lock()
    assert "second" not in outcome, "the second recompute ran while the first held the community"
    release.set()
    one.join(15)
    two.join(15)
    assert "first_error" not in outcome and "second_error" not in outcome, outcome
    assert blocked, "the second recompute should have waited for the first"
    # The second saw the earlier rows (nothing opened twice) and the worker (that gap resolved).
    assert outcome["second"]["opened"] == 0
    assert outcome["second"]["resolved"] == 1 and outcome["second"]["resolved.grid_without_worker"] == 1
    assert outcome["second"]["still_open"] == opened - 1
    assert Gap.objects.count() == opened
    assert Gap.objects.filter(resolved_at__isnull=True).count() == opened - 1


@pytest.mark.django_db(transaction=True)
def test_overlapping_recomputes_in_opposite_orders_both_finish(scene: Scene):
    s = scene
    start = threading.Barrier(3)
    outcome: dict = {}

    def run(ids: list[int], minutes: int):
        def target() -> dict:
            start.wait(5)
            return gaps_recompute(community_ids=ids, at=AT + timedelta(minutes=minutes))

        return target

    threads = [
        _run(run([s.a.id, s.b.id, s.c.id], 0), outcome, "abc"),
        _run(run([s.c.id, s.b.id, s.a.id], 0), outcome, "cba"),
        _run(run(None, 0), outcome, "all"),  # type: ignore[arg-type]
    ]
    for t in threads:
        t.join(30)
    assert not [k for k in outcome if k.endswith("_error")], outcome
    assert {k for k in outcome} == {"abc", "cba", "all"}
    # One of them opened every gap; the others found them open. One open row per subject.
    assert sorted(o["opened"] for o in outcome.values())[:2] == [0, 0]
    keys = list(Gap.objects.values_list("kind", "subject_type", "subject_id"))
    assert len(keys) == len(set(keys)) == max(o["opened"] for o in outcome.values())
