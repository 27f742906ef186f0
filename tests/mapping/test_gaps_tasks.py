"""The gap recompute kept current through Celery: grid.changes.communities_changed → after commit
the listener mapping.tasks.queue_gap_recompute → one task per burst → the real worker recomputes.
Tasks run twice change nothing the second time."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import before_task_publish
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from grid.changes import communities_changed
from grid.models import Role
from mapping import tasks
from mapping.models import Gap
from mapping.services import gaps_recompute
from ops.celery import app
from orgs import services as org_services
from tests.mapping.conftest import Scene
from tests.people import api_client, user_with

K = Gap.Kind


@pytest.fixture
def published():
    """Names of the tasks sent to the broker during the test."""
    sent: Counter[str] = Counter()

    def count(sender=None, **_kwargs):
        sent[sender] += 1

    before_task_publish.connect(count, weak=False)
    yield sent
    before_task_publish.disconnect(count)


@pytest.fixture
def clean_queue(scene: Scene):
    """Our own Redis database: no queued marks and no messages left by earlier tests."""
    cache.delete_many([tasks._queued_key(c.id) for c in (scene.a, scene.b, scene.c)])
    app.control.purge()
    yield
    cache.delete_many([tasks._queued_key(c.id) for c in (scene.a, scene.b, scene.c)])
    app.control.purge()


def test_the_change_listener_is_wired():
    assert "mapping.tasks.queue_gap_recompute" in settings.WANGGE_CHANGE_LISTENERS
    nightly = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "mapping.tasks.recompute_all_gaps"]
    assert len(nightly) == 1 and nightly[0]["schedule"].hour == {3}


@pytest.mark.django_db
def test_the_task_twice_changes_nothing_the_second_time(scene: Scene, clean_queue):
    s = scene
    first = tasks.recompute_gaps.apply(args=[[s.a.id]]).get()
    before = list(Gap.objects.order_by("id").values_list("id", "since", "resolved_at", "figures"))
    second = tasks.recompute_gaps.apply(args=[[s.a.id]]).get()
    assert first["opened"] > 0 and second["opened"] == 0 and second["resolved"] == 0
    assert list(Gap.objects.order_by("id").values_list("id", "since", "resolved_at", "figures")) == before
    assert tasks.recompute_all_gaps.apply().get()["opened"] == 4  # B's and C's area gaps


@pytest.mark.django_db
def test_a_burst_of_changes_to_one_community_queues_one_task(scene: Scene, clean_queue, published):
    s = scene
    for _ in range(10):
        tasks.queue_gap_recompute(community_ids=[s.a.id])
    assert published["mapping.tasks.recompute_gaps"] == 1
    # A new community in the next burst is queued; the one already queued is not.
    assert tasks.queue_gap_recompute(community_ids=[s.a.id, s.b.id]) == [s.b.id]
    assert published["mapping.tasks.recompute_gaps"] == 2
    # Once the task has started (it forgets its marks first), the next change queues again.
    tasks.recompute_gaps.apply(args=[[s.a.id]])
    assert tasks.queue_gap_recompute(community_ids=[s.a.id]) == [s.a.id]
    assert published["mapping.tasks.recompute_gaps"] == 3


@pytest.mark.django_db
def test_an_unreachable_redis_never_fails_the_write_that_committed(scene: Scene, caplog):
    unreachable = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
    with override_settings(CACHES=unreachable):
        assert tasks.queue_gap_recompute(community_ids=[scene.a.id]) == []
    assert "夜间全量计算" in caplog.text


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_changes_committed_in_a_burst_reach_the_real_worker_as_one_recompute(
    scene: Scene, clean_queue, published, monkeypatch
):
    s = scene
    monkeypatch.setattr(tasks, "DEBOUNCE_SECONDS", 1)
    with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING", shutdown_timeout=10):
        # Five writes to A in quick succession, each its own transaction (as five API calls).
        for _ in range(5):
            with transaction.atomic():
                communities_changed([s.a.id])
        # A change rolled back queues nothing.
        with transaction.atomic():
            communities_changed([s.b.id])
            transaction.set_rollback(True)
        workerless = Gap.objects.filter(kind=K.GRID_WITHOUT_WORKER, subject_id=s.a2.id)
        deadline = time.monotonic() + 30
        while not workerless.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert workerless.get().resolved_at is None
        assert published["mapping.tasks.recompute_gaps"] == 1
        # A2's worker back at work: the service's transaction says A changed (called here too, so
        # the test does not depend on which services call it yet); one more task.
        with transaction.atomic():
            org_services.grid_worker_update(worker=s.worker_a2, active=True)
            communities_changed([s.a.id])
        deadline = time.monotonic() + 30
        gap = workerless.get()
        while gap.resolved_at is None and time.monotonic() < deadline:
            time.sleep(0.2)
            gap.refresh_from_db()
        assert gap.resolved_at is not None
    assert published["mapping.tasks.recompute_gaps"] == 2  # one per burst
    assert not Gap.objects.filter(community=s.b).exists()


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_a_visit_synced_by_a_tablet_resolves_its_building_gap_through_the_real_worker(
    scene: Scene, clean_queue, monkeypatch
):
    """The issue's end-to-end path: POST /api/sync/visits/ → orgs.sync calls communities_changed →
    after commit the listener queues → the worker recomputes A → h1's building_unvisited gap is
    resolved (its last visit, 10 days before AT, is months old by the real clock)."""
    s = scene
    monkeypatch.setattr(tasks, "DEBOUNCE_SECONDS", 0)
    user = user_with(Role.GRID_WORKER, grid_cell=s.a1)
    org_services.grid_worker_update(worker=s.worker_a1, user=user)
    gaps_recompute(community_ids=[s.a.id])
    gap = Gap.objects.get(kind=K.BUILDING_UNVISITED, subject_id=s.h1.id, resolved_at__isnull=True)
    cache.delete_many([tasks._queued_key(s.a.id)])
    item = {
        "id": str(uuid.uuid4()),
        "occurred_at": (timezone.localtime() - timedelta(minutes=5)).isoformat(),
        "kind": "household",
        "building": s.h1.code,
        "household": "301室",
    }
    with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING", shutdown_timeout=10):
        response = api_client(user).post("/api/sync/visits/", {"items": [item]}, format="json")
        assert response.status_code == 200 and response.json()["created"] == 1, response.content
        deadline = time.monotonic() + 30
        while gap.resolved_at is None and time.monotonic() < deadline:
            time.sleep(0.1)
            gap.refresh_from_db()
    assert gap.resolved_at is not None
    assert not Gap.objects.filter(kind=K.BUILDING_UNVISITED, subject_id=s.h1.id, resolved_at__isnull=True).exists()
