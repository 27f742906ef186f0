"""The indicators and the gaps tell one story, and the nightly snapshot counts the nightly recompute.

On the gap scene of tests/mapping/conftest.py, after a real recompute: in every unit, what a rate
misses is exactly the open gaps of the matching kind (same placements, same thresholds), and the
snapshot taken while a full recompute runs waits for it (two real connections).
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q

from mapping import indicators
from mapping.models import Gap, IndicatorSnapshot
from mapping.services import gaps_recompute
from tests.mapping.conftest import AT, Scene

K = Gap.Kind
# Rate → the gap kind counting what it misses, one gap per missing subject.
MISSING = {
    "grid_branch_coverage": K.GRID_WITHOUT_BRANCH,
    "building_group_coverage": K.BUILDING_WITHOUT_GROUP,
    "member_management_rate": K.MEMBER_UNATTACHED,
}


def _unit_q(snapshot: IndicatorSnapshot) -> Q:
    return {
        "street": Q(community__street_id=snapshot.unit_id),
        "community": Q(community_id=snapshot.unit_id),
        "grid_cell": Q(grid_cell_id=snapshot.unit_id),
    }[snapshot.unit_type]


@pytest.mark.django_db
def test_what_each_rate_misses_is_the_open_gaps_of_its_kind(scene: Scene):
    gaps_recompute(community_ids=None, at=AT)
    indicators.indicator_snapshots_take(day=AT.date(), at=AT)
    snapshots = list(IndicatorSnapshot.objects.all())
    assert {s.unit_type for s in snapshots} == {"street", "community", "grid_cell"}
    rate_min = settings.WANGGE_RULES["grid_visit_rate_min"]
    checked = 0
    for snap in snapshots:
        open_gaps = Gap.objects.filter(_unit_q(snap), resolved_at__isnull=True)
        figures = snap.figures
        for key, kind in MISSING.items():
            missing = figures[key]["denominator"] - figures[key]["numerator"]
            assert missing == open_gaps.filter(kind=kind).count(), (snap, key)
            checked += missing
        assert figures["open_gaps"]["open"] == open_gaps.count(), snap
        by_kind = {k: v["open"] for k, v in figures["open_gaps"]["by_kind"].items()}
        assert by_kind == {k: n for k in K.values if (n := open_gaps.filter(kind=k).count())}, snap
        if snap.unit_type == "grid_cell":
            visits = figures["household_visit_coverage"]["value"]
            low = visits is not None and visits < rate_min
            assert low == open_gaps.filter(kind=K.GRID_LOW_VISIT_RATE).exists(), snap
    assert checked > 0, "the scene should miss something"


def _waiting_on_an_advisory_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_the_snapshot_waits_for_a_running_full_recompute_and_counts_its_gaps(scene: Scene):
    recomputed, release = threading.Event(), threading.Event()
    outcome: dict = {}

    def run(key: str, target) -> threading.Thread:
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

    def nightly_recompute() -> dict:
        with transaction.atomic():
            counts = gaps_recompute(community_ids=None, at=AT)
            recomputed.set()
            release.wait(10)
        return counts

    def snapshot() -> dict:
        return indicators.indicator_snapshots_take(day=AT.date(), at=AT + timedelta(minutes=30))

    one = run("recompute", nightly_recompute)
    assert recomputed.wait(30), outcome
    two = run("snapshot", snapshot)
    deadline = time.monotonic() + 5
    while not _waiting_on_an_advisory_lock() and time.monotonic() < deadline:
        time.sleep(0.02)
    blocked = _waiting_on_an_advisory_lock()
    assert "snapshot" not in outcome, "the snapshot ran while the recompute held every community"
    release.set()
    one.join(30)
    two.join(30)
    assert "recompute_error" not in outcome and "snapshot_error" not in outcome, outcome
    assert blocked, "the snapshot should have waited for the recompute"
    street = IndicatorSnapshot.objects.get(unit_type="street", unit_id=scene.street.pk)
    assert outcome["recompute"]["opened"] > 0
    assert street.figures["open_gaps"]["open"] == outcome["recompute"]["opened"]


# --- the task and its schedule ------------------------------------------------------------------


def _crontab_minutes(task: str) -> int:
    (entry,) = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == task]
    schedule = entry["schedule"]
    (hour,), (minute,) = schedule.hour, schedule.minute
    return hour * 60 + minute


def test_the_nightly_snapshot_is_scheduled_after_the_nightly_recompute_and_registered():
    from ops.celery import app

    snapshot = _crontab_minutes("mapping.indicator_tasks.take_indicator_snapshots")
    assert snapshot > _crontab_minutes("mapping.tasks.recompute_all_gaps")
    # Autodiscovery imports tasks.py only: the worker finds this module through CELERY_IMPORTS.
    assert "mapping.indicator_tasks" in app.conf.imports
    app.loader.import_default_modules()
    assert "mapping.indicator_tasks.take_indicator_snapshots" in app.tasks


@pytest.mark.django_db
def test_the_task_twice_writes_nothing_the_second_time(scene: Scene):
    from mapping.indicator_tasks import take_indicator_snapshots

    first = take_indicator_snapshots.apply().get()
    assert first["written"] == first["units"] > 0
    rows = list(IndicatorSnapshot.objects.order_by("id").values_list("id", "figures", "computed_at"))
    assert take_indicator_snapshots.apply().get()["written"] == 0
    assert list(IndicatorSnapshot.objects.order_by("id").values_list("id", "figures", "computed_at")) == rows
    only_a = take_indicator_snapshots.apply(args=[[scene.street.id]]).get()
    assert only_a["written"] == 0 and only_a["units"] == first["units"]


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_the_real_worker_takes_the_snapshot(scene: Scene):
    from celery.contrib.testing.worker import start_worker

    from mapping.indicator_tasks import take_indicator_snapshots
    from ops.celery import app

    app.control.purge()
    with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING", shutdown_timeout=10):
        result = take_indicator_snapshots.delay([scene.street.id]).get(timeout=60)
    assert result["written"] == result["units"] == IndicatorSnapshot.objects.count() > 0
