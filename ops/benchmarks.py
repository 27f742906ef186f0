"""Benchmarks on the district-scale data set: each measured against its limit in the same run.

Run with `ops/bench` (its own database, wangge_bench). Prints a Markdown table for BENCHMARKS.md.
The standalone modules (ops/bench_tiles.py, ops/bench_page.py, ops/bench_plans.py,
ops/bench_rebalance.py) run as subprocesses on the same database; their rows join the table.
Every row pairs what the system does with the floor it cannot beat (raw COPY, a hand-written SQL
statement doing the same spatial work), so the ratio, not the seconds, is what to watch.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ops.settings")
django.setup()

from django.contrib.gis.geos import GEOSGeometry, Point  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from grid import selectors, services  # noqa: E402
from grid.models import Building, GridBoundary, GridCell  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
rows: list[tuple[str, str, str, str]] = []


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def best_of(n: int, fn: Callable[[], object]) -> float:
    return min(timed(fn)[0] for _ in range(n))


def row(what: str, ours: float, limit_name: str, limit: float, unit: str = "s") -> None:
    fmt = (lambda v: f"{v * 1000:.2f} ms") if unit == "ms" else (lambda v: f"{v:.2f} s")
    rows.append((what, fmt(ours), f"{limit_name}: {fmt(limit)}", f"{ours / limit:.1f}×" if limit else "–"))


def scalar(sql: str, params: list | None = None) -> Any:  # whatever the column holds
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchone()[0]


def bench_make_demo(scale: str) -> None:
    def run() -> None:
        # A subprocess, as an operator runs it: includes Django start-up and every stage.
        subprocess.run(  # noqa: S603 - fixed argv
            [sys.executable, "manage.py", "make_demo", "--scale", scale, "--seed", "7"],
            cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
        )

    seconds, _ = timed(run)
    again, _ = timed(run)
    n_buildings = Building.objects.count()
    # The floor for writing those buildings: copy the finished rows server-side into an unlogged
    # table of the same shape (no generation, no spatial assignment, no constraint checks).
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_building_copy")
        cursor.execute(
            "CREATE UNLOGGED TABLE bench_building_copy AS SELECT id, code, name, address, kind, community_id, "
            "grid_cell_id, households, floors, geom, created_at, updated_at FROM grid_building LIMIT 0"
        )
    buf = tempfile.SpooledTemporaryFile(max_size=512 * 1024 * 1024)  # noqa: SIM115
    with connection.cursor() as cursor:
        with cursor.cursor.copy(
            "COPY (SELECT id, code, name, address, kind, community_id, grid_cell_id, households, floors, geom, "
            "created_at, updated_at FROM grid_building) TO STDOUT"
        ) as copy:
            for chunk in copy:
                buf.write(chunk)

    def raw_copy() -> None:
        buf.seek(0)
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE bench_building_copy")
            with cursor.cursor.copy("COPY bench_building_copy FROM STDIN") as copy:
                while data := buf.read(1 << 20):
                    copy.write(data)

    copy_seconds = best_of(3, raw_copy)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_building_copy")
    counts = (
        f"{scalar('SELECT count(*) FROM grid_street')} streets, {scalar('SELECT count(*) FROM grid_community')} "
        f"communities, {GridCell.objects.count()} grids, {n_buildings} buildings"
    )
    members = scalar("SELECT count(*) FROM orgs_partymember")
    events = f"{scalar('SELECT count(*) FROM orgs_visit')} visits, {scalar('SELECT count(*) FROM orgs_stationcontact')} contacts"
    row(f"`make_demo --scale {scale}`, first build ({counts}, {members} members, {events})", seconds,
        f"raw COPY of its {n_buildings} building rows", copy_seconds)
    row(f"`make_demo --scale {scale}` again (idempotent: nothing changes)", again,
        f"raw COPY of its {n_buildings} building rows", copy_seconds)


def bench_point_lookup(n_points: int) -> None:
    # Points where people are: building positions, nudged so most do not sit on a vertex.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ST_X(point) + 0.00002, ST_Y(point) + 0.00001 FROM grid_building ORDER BY md5(code) LIMIT %s",
            [n_points],
        )
        coords = cursor.fetchall()
    today = selectors.today()
    points = [Point(x, y, srid=4326) for x, y in coords]

    def ours() -> None:
        for p in points:
            selectors.grid_cell_at(point=p, on_date=today)

    def raw_parts() -> None:
        with connection.cursor() as cursor:
            for x, y in coords:
                cursor.execute(
                    "SELECT gb.cell_id FROM grid_gridboundarypart p JOIN grid_gridboundary gb ON gb.id = p.boundary_id "
                    "WHERE ST_Covers(p.geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) AND gb.valid @> %s::date "
                    "ORDER BY gb.cell_id LIMIT 1",
                    [x, y, today],
                )
                cursor.fetchone()

    def raw_whole() -> None:
        with connection.cursor() as cursor:
            for x, y in coords:
                cursor.execute(
                    "SELECT gb.cell_id FROM grid_gridboundary gb "
                    "WHERE ST_Covers(gb.geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) AND gb.valid @> %s::date "
                    "ORDER BY gb.cell_id LIMIT 1",
                    [x, y, today],
                )
                cursor.fetchone()

    t_ours = best_of(2, ours) / n_points
    t_parts = best_of(2, raw_parts) / n_points
    t_whole = best_of(2, raw_whole) / n_points
    row(f"point → grid, `grid_cell_at` (SQL on subdivided parts + ORM fetch of the cell), per lookup, {n_points} points", t_ours,
        "hand-written SQL on the same parts", t_parts, unit="ms")
    row("point → grid, hand-written SQL on whole boundaries (no subdivision), per lookup", t_whole,
        "hand-written SQL on subdivided parts", t_parts, unit="ms")


def bench_reassign() -> None:
    n = Building.objects.count()

    def full() -> None:
        with transaction.atomic():
            Building.objects.update(grid_cell=None)
            services.buildings_reassign(community_ids=None)

    t_full = best_of(1, full)
    t_noop = best_of(2, lambda: services.buildings_reassign(community_ids=None))
    # The floor: the spatial join alone, every building against the boundaries it touches.
    t_join = best_of(2, lambda: scalar(
        "SELECT count(*) FROM grid_building b JOIN grid_gridboundary gb ON upper_inf(gb.valid) "
        "AND gb.geom && b.geom AND ST_Intersects(gb.geom, b.geom)"
    ))
    def write_only() -> None:
        # The same rows written from a precomputed answer: the floor of any reassignment.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE bench_answer AS SELECT id, grid_cell_id FROM grid_building")
            cursor.execute("UPDATE grid_building SET grid_cell_id = NULL")
            cursor.execute(
                "UPDATE grid_building b SET grid_cell_id = a.grid_cell_id FROM bench_answer a WHERE a.id = b.id"
            )
            transaction.set_rollback(True)

    t_write = best_of(1, write_only)
    row(f"reassign all {n} buildings to grids from scratch (one UPDATE)", t_full,
        "clearing and writing the same answers without any spatial work", t_write)
    row("reassign again, nothing changed (idempotent run)", t_noop, "the bare ST_Intersects join", t_join)


def bench_redraw() -> None:
    """A planner redraws one community's grids: version, check the partition, subdivide, reassign,
    in one transaction. The redraw hands a 30 m strip of one cell to a neighbour (a change the
    partition checks accept), with every other cell of the community written unchanged."""
    community_id = scalar("SELECT community_id FROM grid_gridcell ORDER BY code LIMIT 1")
    cells = list(GridBoundary.objects.filter(cell__community_id=community_id, valid__upper_inf=True))
    shapes: dict[int, GEOSGeometry] = {b.cell_id: b.geom for b in cells}
    giver = cells[0]
    taker = next(b for b in cells[1:] if b.geom.distance(giver.geom) == 0)
    strip = giver.geom.intersection(taker.geom.buffer(0.0003))
    shapes[giver.cell_id] = giver.geom.difference(strip)
    shapes[taker.cell_id] = taker.geom.union(strip)
    from datetime import timedelta

    def redraw() -> None:
        with transaction.atomic():
            services.grid_boundaries_set(shapes=shapes, valid_from=selectors.today() + timedelta(days=1))
            transaction.set_rollback(True)

    t = best_of(3, redraw)
    n_b = Building.objects.filter(community_id=community_id).count()
    t_floor = best_of(3, lambda: scalar(
        "SELECT count(*) FROM grid_building b JOIN grid_gridboundary gb ON upper_inf(gb.valid) "
        "AND gb.geom && b.geom AND ST_Intersects(gb.geom, b.geom) WHERE b.community_id = %s", [community_id]
    ))
    row(f"redraw one community's {len(cells)} grids ({n_b} buildings): check + version + subdivide + reassign", t,
        "the bare join of its buildings", t_floor, unit="ms")


def bench_import() -> None:
    """Re-import the district's buildings from a GeoPackage in GCJ-02, as a street office would
    send them (convert, validate, stage, upsert, reassign), against raw COPY of the same rows."""
    from grid.exporters import units_export
    from grid.importers import units_import

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "buildings.gpkg"
        t_export, _ = timed(lambda: units_export(level="building", path=path, crs="gcj02"))
        n = Building.objects.count()

        def reimport() -> None:
            with transaction.atomic():
                units_import(level="building", path=path, crs="gcj02")
                transaction.set_rollback(True)

        t_import = best_of(1, reimport)
    buf = tempfile.SpooledTemporaryFile(max_size=512 * 1024 * 1024)  # noqa: SIM115
    cols = "code, name, address, kind, community_id, households, floors, geom, created_at, updated_at"
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY (SELECT {cols} FROM grid_building) TO STDOUT") as copy:
            for chunk in copy:
                buf.write(chunk)

    def raw_copy() -> None:
        buf.seek(0)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE bench_b AS SELECT " + cols + " FROM grid_building LIMIT 0")
            with cursor.cursor.copy("COPY bench_b FROM STDIN") as copy:
                while data := buf.read(1 << 20):
                    copy.write(data)
            transaction.set_rollback(True)

    t_copy = best_of(3, raw_copy)
    row(f"`import_units --level building` of {n} footprints from GCJ-02 GeoPackage (nothing changed)", t_import,
        "raw COPY of the same rows", t_copy)
    row(f"`export_units --level building` of {n} footprints to GCJ-02 GeoPackage", t_export,
        "raw COPY of the same rows", t_copy)


def bench_sync(n_items: int = 500) -> None:
    """A tablet syncs a full batch of visits through the API (parse, per-item checks, place as of
    the day, one INSERT … ON CONFLICT), then resends it (all duplicates), against a hand-written
    INSERT of the same rows with every lookup already done."""
    import json
    import uuid

    from django.contrib.auth import get_user_model
    from django.utils import timezone
    from rest_framework.test import APIClient

    user, _ = get_user_model().objects.get_or_create(
        username="bench_sync", defaults={"is_superuser": True, "is_staff": True}
    )
    client = APIClient()
    client.force_authenticate(user)
    buildings = list(
        Building.objects.filter(grid_cell__isnull=False)
        .order_by("code")
        .values("id", "code", "point", "community_id", "grid_cell_id")[:n_items]
    )
    when = timezone.localtime().replace(microsecond=0).isoformat()

    def batch() -> list[dict]:
        return [
            {
                "id": str(uuid.uuid4()),
                "occurred_at": when,
                "kind": "household",
                "building": b["code"],
                "household": "1-101",
                "position": {"type": "Point", "coordinates": [b["point"].x + 0.0001, b["point"].y]},
                "accuracy_m": 10,
                "summary": "入户走访，了解家庭情况",
            }
            for b in buildings
        ]

    def post(items: list[dict]) -> dict:
        response = client.post("/api/sync/visits/", {"items": items}, format="json")
        if response.status_code != 200:
            raise SystemExit(f"sync failed: {response.status_code} {response.content[:300]!r}")
        return response.json()

    def expect(result: dict, status: str) -> None:
        if result[status] != len(buildings):
            raise SystemExit(f"sync answered {result} (expected all {status})")

    def first_sync() -> None:
        with transaction.atomic():
            expect(post(batch()), "created")
            transaction.set_rollback(True)

    def resend() -> None:
        items = batch()
        with transaction.atomic():
            post(items)
            t, result = timed(lambda: post(items))
            expect(result, "duplicate")  # type: ignore[arg-type]
            resend_times.append(t)
            transaction.set_rollback(True)

    def raw_insert() -> None:
        rows = [
            {"id": str(uuid.uuid4()), "community_id": b["community_id"], "grid_cell_id": b["grid_cell_id"],
             "building_id": b["id"], "lon": b["point"].x, "lat": b["point"].y}
            for b in buildings
        ]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO orgs_visit (id, occurred_at, received_at, reporter_id, reporter_name, captured_lon,
                    captured_lat, captured_crs, accuracy_m, point, place, community_id, grid_cell_id,
                    building_id, summary, payload_hash, kind, household)
                SELECT i.id, now(), now(), %s, 'bench', i.lon, i.lat, 'wgs84', 10,
                       ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326), ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326),
                       i.community_id, i.grid_cell_id, i.building_id, '入户走访，了解家庭情况', '', 'household', '1-101'
                FROM jsonb_to_recordset(%s::jsonb)
                     AS i(id uuid, community_id int, grid_cell_id int, building_id int, lon float8, lat float8)
                """,
                [user.pk, json.dumps(rows)],
            )
            transaction.set_rollback(True)

    resend_times: list[float] = []
    t_first = best_of(3, first_sync)
    for _ in range(3):
        resend()
    t_floor = best_of(3, raw_insert)
    n = len(buildings)
    row(f"sync a batch of {n} visits through the API (new: checks, place as of the day, insert, audit)",
        t_first, f"hand-written INSERT of the same {n} rows, lookups done", t_floor, unit="ms")
    row(f"resend the same {n} visits (all duplicates, nothing written)", min(resend_times),
        f"hand-written INSERT of the same {n} rows, lookups done", t_floor, unit="ms")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _first_street_with_buildings() -> tuple[int, str]:
    first = Building.objects.order_by("community__street__code").values_list(
        "community__street_id", "community__street__code"
    ).first()
    if first is None:
        raise SystemExit("no buildings: build the data set first (ops/bench, then --skip-build --only geojson)")
    return first


def _box_of_buildings(street_id: int, *, at_least: int) -> tuple[float, float, float, float]:
    """A box around a building in the middle of the street, grown until it holds `at_least`."""
    buildings = Building.objects.filter(community__street_id=street_id).order_by("code")
    centre = buildings[buildings.count() // 2].point
    half = 0.0005
    while True:
        box = (centre.x - half * 1.5, centre.y - half, centre.x + half * 1.5, centre.y + half)
        n = scalar(
            "SELECT count(*) FROM grid_building b JOIN grid_community c ON c.id = b.community_id "
            "WHERE c.street_id = %s AND b.geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)",
            [street_id, *box],
        )
        if n >= at_least or half > 0.02:  # type: ignore[operator]
            return box
        half *= 1.1


def bench_geojson(repeats: int = 200) -> None:
    """A street administrator's map read: the buildings in a box (~150 at district scale) through
    the API, with PostgreSQL writing the GeoJSON (edge.geojson), against the same statements run
    directly with psycopg (no Django: the "psql" figure), and against the serializer path it
    replaced. The three are timed in turn within each repeat, so load on the machine falls on all
    of them alike; p50 and p95 over `repeats`."""
    from unittest import mock

    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    import grid.apis
    from edge.api import feature_page
    from grid.models import Role, RoleAssignment

    street_id, street_code = _first_street_with_buildings()
    user, _ = get_user_model().objects.get_or_create(username="bench_street_admin")
    RoleAssignment.objects.get_or_create(user=user, role=Role.STREET_ADMIN, street_id=street_id)
    client = APIClient()
    client.force_authenticate(user)
    box = _box_of_buildings(street_id, at_least=140)
    # One page holds them all, as a map client asks.
    url = "/api/buildings/?in_bbox=" + ",".join(f"{v:.6f}" for v in box) + "&page_size=1000"

    def serializer_path(*, request: object, view: object, queryset: object, layout: object) -> object:
        return feature_page(request=request, view=view, queryset=queryset,  # type: ignore[arg-type]
                            serializer_class=layout.serializer)  # type: ignore[attr-defined]

    def get() -> bytes:
        response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"bbox read failed: {response.status_code} {response.content[:300]!r}")
        return response.content

    # The statements the new path sends, as literal SQL (what one would paste into psql).
    statements: list[tuple[str, object]] = []

    def capture(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        statements.append((sql, params))
        return execute(sql, params, many, context)

    def old() -> None:
        with mock.patch.object(grid.apis, "feature_collection_page", serializer_path):
            get()

    with connection.execute_wrapper(capture):
        body = get()
    new_statements, statements[:] = statements[:], []
    with connection.execute_wrapper(capture):
        old()
    old_statements = statements[:]
    features = len(json.loads(body)["features"])
    connection.ensure_connection()
    raw = connection.connection  # psycopg's own connection: no Django between us and PostgreSQL
    with raw.cursor() as cursor:
        literal = [cursor.mogrify(sql, params) for sql, params in new_statements]
        old_literal = [cursor.mogrify(sql, params) for sql, params in old_statements]

    def run(sqls: list[str]) -> Callable[[], None]:
        def direct() -> None:
            with raw.cursor() as cursor:
                for sql in sqls:
                    cursor.execute(sql)
                    cursor.fetchall()

        return direct

    direct, old_direct = run(literal), run(old_literal)
    times: dict[str, list[float]] = {"new": [], "old": [], "direct": [], "old_direct": []}
    for _ in range(20):  # warm-up: plans, caches, connections
        get()
        old()
        direct()
        old_direct()
    # What the warm-up left (Django, the app, caches) is frozen out of the collector's reach, as a
    # pre-forking server does: a full collection caused by one path's garbage then costs the
    # next path little, and no sample pays for the whole heap.
    gc.collect()
    gc.freeze()
    for _ in range(repeats):
        for name, fn in (("new", get), ("old", old), ("direct", direct), ("old_direct", old_direct)):
            times[name].append(timed(fn)[0])
    gc.unfreeze()
    p = {k: (percentile(v, 0.5), percentile(v, 0.95)) for k, v in times.items()}
    what = (f"street admin's bbox read of {features} buildings (street {street_code}), "
            f"`GET /api/buildings/?in_bbox=…`, PostgreSQL writes the GeoJSON")
    floor = f"the same {len(literal)} statements (role lookup; count and features) run directly (psycopg)"
    row(f"{what}, p50 of {repeats}", p["new"][0], f"{floor}, p50", p["direct"][0], unit="ms")
    row(f"{what}, p95 of {repeats}", p["new"][1], f"{floor}, p95", p["direct"][1], unit="ms")
    row(f"the same read through the serializer path it replaced, p50 of {repeats}", p["old"][0],
        f"{floor}, p50", p["direct"][0], unit="ms")
    row(f"the same read through the serializer path it replaced, p95 of {repeats}", p["old"][1],
        f"{floor}, p95", p["direct"][1], unit="ms")
    row(f"the serializer path's own {len(old_literal)} statements (role lookup, COUNT, rows) run directly, p50",
        p["old_direct"][0], f"{floor}, p50", p["direct"][0], unit="ms")


# --------------------------------------------------------------------------------------------
# Coverage gaps (issue 9)
# --------------------------------------------------------------------------------------------


def _staged_only(community_ids: list[int] | None) -> None:
    """The recompute's kind statements alone (lock, stage tables, one INSERT … SELECT per kind),
    rolled back: the same staged answer with no per-building status refresh and no merge into the
    gap history. The floor a recompute cannot beat while it computes every kind in SQL."""
    from mapping import services as gap_services
    from mapping import sql as gap_sql

    with transaction.atomic():
        ids, at = gap_sql.lock_communities(community_ids)
        gap_sql.stage_create(ids)
        params = gap_services._parameters(community_ids=ids, at=at)  # noqa: SLF001 - the same values
        for stage in gap_sql.STAGES:
            stage(params)
        transaction.set_rollback(True)


def bench_gaps(tries: int = 20) -> None:
    """Full recompute at district scale (the nightly run), beside its kind statements alone; one
    community after one change; and a visit synced through the API to its building_unvisited gap
    resolved by the real Celery worker (the debounced listener of grid.changes)."""
    from mapping import services as gap_services

    t_first, counts = timed(lambda: gap_services.gaps_recompute(community_ids=None))
    opened = counts["opened"]  # type: ignore[index]
    t_full = best_of(2, lambda: gap_services.gaps_recompute(community_ids=None))
    t_stage = best_of(2, lambda: _staged_only(None))
    n_open = scalar("SELECT count(*) FROM mapping_gap WHERE resolved_at IS NULL")
    n_comm = scalar("SELECT count(*) FROM grid_community")
    row(f"gaps: first full recompute of all {n_comm} communities after the build (opens {opened} gaps)", t_first,
        "the kind statements alone (stage, no status refresh, no merge)", t_stage)
    row(f"gaps: full recompute, district ({n_open} open gaps kept, the nightly run); goal < 10 s, ≤ 1.2× floor",
        t_full, "the kind statements alone (stage, no status refresh, no merge)", t_stage)

    # One change in one community (a building's households), then that community recomputed.
    community_id, building_id = Building.objects.filter(kind="residential", households__gt=0).order_by(
        "code").values_list("community_id", "id")[0]
    n_b = Building.objects.filter(community_id=community_id).count()

    def one_change() -> float:
        with transaction.atomic():
            Building.objects.filter(id=building_id).update(households=0)
            seconds, _ = timed(lambda: gap_services.gaps_recompute(community_ids=[community_id]))
            transaction.set_rollback(True)
        return seconds

    t_one = min(one_change() for _ in range(3))
    t_one_stage = best_of(3, lambda: _staged_only([community_id]))
    row(f"gaps: incremental recompute of one community ({n_b} buildings) after one change; goal < 1/50 of full "
        f"({t_full / 50 * 1000:.0f} ms)", t_one, "its kind statements alone", t_one_stage, unit="ms")
    _bench_gaps_celery(tries)


def _bench_gaps_celery(tries: int) -> None:
    import uuid

    import redis
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.utils import timezone
    from rest_framework.test import APIClient

    from mapping.models import Gap
    from mapping.tasks import DEBOUNCE_SECONDS

    # The bench's own Redis database: nothing queued by the build (make_demo's writes) may sit in
    # front of the tries, nor a stale debounce key mute one.
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    worker = subprocess.Popen(  # noqa: S603 - fixed argv
        [str(Path(sys.executable).with_name("celery")), "-A", "ops", "worker", "--concurrency", "1",
         "--loglevel", "warning", "--without-heartbeat", "--without-mingle", "--without-gossip"],
        cwd=ROOT, env=dict(os.environ), stdout=subprocess.DEVNULL,
    )
    try:
        from ops.celery import app

        deadline = time.monotonic() + 90
        while not app.control.inspect(timeout=1).ping():
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the Celery worker did not start")
        user, _ = get_user_model().objects.get_or_create(
            username="bench_sync", defaults={"is_superuser": True, "is_staff": True}
        )
        client = APIClient()
        client.force_authenticate(user)
        # One unvisited building per community, in different communities: each try its own
        # debounce window, none waiting on another's recompute.
        gaps = list(
            Gap.objects.filter(kind=Gap.Kind.BUILDING_UNVISITED, resolved_at__isnull=True)
            .order_by("community_id", "subject_code").distinct("community_id")
            .values_list("id", "subject_id", "subject_code", "community_id")[:tries]
        )
        points = dict(Building.objects.filter(id__in=[g[1] for g in gaps]).values_list("id", "point"))
        delays: list[float] = []
        recompute: list[float] = []
        for gap_id, building_id, code, _community in gaps:
            p = points[building_id]
            item = {"id": str(uuid.uuid4()), "occurred_at": timezone.localtime().replace(microsecond=0).isoformat(),
                    "kind": "household", "building": code, "household": "1-101",
                    "position": {"type": "Point", "coordinates": [p.x, p.y]}, "accuracy_m": 10,
                    "summary": "入户走访，了解家庭情况"}
            started = time.perf_counter()
            response = client.post("/api/sync/visits/", {"items": [item]}, format="json")
            if response.status_code != 200 or response.json().get("created") != 1:
                raise SystemExit(f"sync failed: {response.status_code} {response.content[:300]!r}")
            synced = time.perf_counter()
            limit = time.monotonic() + 60
            while Gap.objects.filter(id=gap_id, resolved_at__isnull=True).exists():
                if time.monotonic() > limit:
                    raise SystemExit(f"gap {gap_id} not resolved within 60 s")
                time.sleep(0.02)
            done = time.perf_counter()
            delays.append(done - started)
            recompute.append(done - synced - DEBOUNCE_SECONDS)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    n = len(delays)
    for q, name in ((0.5, "p50"), (0.95, "p95")):
        rows.append((
            f"gaps: a visit synced through the API (one item) to its `building_unvisited` gap resolved by the "
            f"Celery worker, end to end, {name} of {n} tries in {n} communities",
            f"{percentile(delays, q):.2f} s",
            f"the listener's debounce alone: {DEBOUNCE_SECONDS:.2f} s (after the sync returned and the debounce: "
            f"queue, worker, one-community recompute, 20 ms poll, {name} {percentile(recompute, q):.2f} s)",
            f"{percentile(delays, q) / DEBOUNCE_SECONDS:.2f}× the debounce",
        ))


# --------------------------------------------------------------------------------------------
# Indicators
# --------------------------------------------------------------------------------------------


def bench_indicators(repeats: int = 10) -> None:
    """The live indicators of one street (one statement, as the dashboard asks) and the daily
    snapshot of every street, community and grid cell (one INSERT … SELECT … ON CONFLICT), each
    beside a floor: the bare counts of the rows the indicators read."""
    from django.utils import timezone

    from grid.models import Community, Street
    from mapping import indicators, indicators_sql

    street = Street.objects.order_by("code").first()
    ids = tuple(Community.objects.filter(street=street).order_by("id").values_list("id", flat=True))
    unit = indicators.IndicatorUnit("street", street.id, street.code, street.name, ids)  # type: ignore[union-attr]
    live = [timed(lambda: indicators.indicators_compute(unit=unit))[0] for _ in range(repeats)]
    floor_sql = (
        "SELECT (SELECT count(*) FROM grid_building WHERE community_id = ANY(%(ids)s)), "
        "(SELECT count(*) FROM orgs_visit WHERE community_id = ANY(%(ids)s) AND occurred_at >= now() - interval '60 days'), "
        "(SELECT count(*) FROM mapping_gap WHERE community_id = ANY(%(ids)s) AND resolved_at IS NULL), "
        "(SELECT count(*) FROM grid_gridcell WHERE community_id = ANY(%(ids)s))"
    )

    def counts(community_ids: list[int]) -> None:
        with connection.cursor() as cursor:
            cursor.execute(floor_sql, {"ids": community_ids})
            cursor.fetchall()

    t_floor = best_of(repeats, lambda: counts(list(ids)))
    row(f"indicators: live figures of one street ({len(ids)} communities, one statement), p50 of {repeats}",
        percentile(live, 0.5), "counting the buildings, visits in window, open gaps and cells they read", t_floor,
        unit="ms")
    all_ids = list(Community.objects.values_list("id", flat=True))

    def snapshot() -> dict[str, int]:
        with transaction.atomic():
            result = indicators.indicator_snapshots_take(day=timezone.localdate())
            transaction.set_rollback(True)
        return result

    t_snap, result = timed(snapshot)
    t_select = best_of(1, lambda: indicators_sql.indicator_rows(indicators.indicator_parameters(
        community_ids=all_ids, day=timezone.localdate(), at=timezone.now())))
    row(f"indicators: daily snapshot of all {result['units']} units (streets, communities, grid cells), "  # type: ignore[index]
        "written", t_snap, "the same figures computed, nothing written", t_select)


# --------------------------------------------------------------------------------------------
# The residents' cases ledger (issue 12)
# --------------------------------------------------------------------------------------------


def bench_ledger(repeats: int = 100) -> None:
    """A street admin's case list through the API (first page, newest first), the duplicate
    lookup a new case makes, and the escalation sweep (and the inbox's reminder sweep when the
    code has one), each beside a hand-written floor."""
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    from grid.access import reach_for_user
    from grid.models import Role, RoleAssignment
    from orgs import cases_selectors
    from orgs.cases_models import Case, CaseCategory

    n_cases = Case.objects.count()
    if not n_cases:
        rows.append(("ledger: no cases in the data set", "–", "–", "–"))
        return
    street_id = Case.objects.values("community__street_id").order_by("community__street_id").first()[
        "community__street_id"]  # type: ignore[index]
    # A user of its own: one street, as a street administrator holds.
    user, _ = get_user_model().objects.get_or_create(username="bench_ledger_admin")
    RoleAssignment.objects.get_or_create(user=user, role=Role.STREET_ADMIN, street_id=street_id)
    client = APIClient()
    client.force_authenticate(user)
    in_street = Case.objects.filter(community__street_id=street_id).count()

    def get() -> None:
        response = client.get("/api/cases/")
        if response.status_code != 200:
            raise SystemExit(f"case list failed: {response.status_code} {response.content[:300]!r}")

    def floor() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.*, ST_AsGeoJSON(c.place) FROM orgs_case c JOIN grid_community m ON m.id = c.community_id "
                "WHERE m.street_id = %s ORDER BY c.reported_at DESC, c.id DESC LIMIT 100", [street_id])
            cursor.fetchall()
            cursor.execute("SELECT count(*) FROM orgs_case c JOIN grid_community m ON m.id = c.community_id "
                           "WHERE m.street_id = %s", [street_id])
            cursor.fetchall()

    for _ in range(10):
        get()
        floor()
    t_list, t_floor = [], []
    for _ in range(repeats):
        t_list.append(timed(get)[0])
        t_floor.append(timed(floor)[0])
    row(f"ledger: street admin's case list (`GET /api/cases/`, first page, {in_street} cases in the street, "
        f"{n_cases} in the district), p95 of {repeats}; goal < 50 ms", percentile(t_list, 0.95),
        "hand-written page (100 rows with GeoJSON + count, same order), p95", percentile(t_floor, 0.95), unit="ms")

    # The duplicate lookup of a new case: open cases of its category near its point.
    reach = reach_for_user(user)
    sample = list(Case.objects.filter(community__street_id=street_id).order_by("id")
                  .values_list("category_id", "place")[:200])
    categories = CaseCategory.objects.in_bulk({c for c, _ in sample})

    def lookups() -> None:
        for category_id, place in sample:
            cases_selectors.cases_nearby(reach=reach, lon=place.x, lat=place.y, category=categories[category_id])

    def floor_lookups() -> None:
        with connection.cursor() as cursor:
            for category_id, place in sample:
                cursor.execute(
                    "SELECT id FROM orgs_case WHERE category_id = %s AND state = ANY(%s) "
                    "AND ST_DWithin(place::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, %s) LIMIT 10",
                    [category_id, list(cases_selectors.OPEN), place.x, place.y,
                     categories[category_id].duplicate_radius_m])
                cursor.fetchall()

    t_dup = best_of(2, lookups) / len(sample)
    t_dup_floor = best_of(2, floor_lookups) / len(sample)
    row(f"ledger: duplicate lookup per new case (`cases_nearby`: reach, category, radius; {len(sample)} points)",
        t_dup, "ST_DWithin on geography over the category's open cases, no reach", t_dup_floor, unit="ms")

    _ledger_sweeps()


def _ledger_sweeps() -> None:
    from django.utils import timezone

    from orgs import cases_selectors
    from orgs.cases_models import Case
    from orgs.services import cases as case_services

    now = timezone.now()
    overdue = Case.objects.filter(state__in=cases_selectors.OPEN, deadline__lt=now).count()

    def sweep() -> dict[str, int]:
        with transaction.atomic():
            result = case_services.cases_escalate_overdue(now=now)
            transaction.set_rollback(True)
        return result

    t_sweep, swept = timed(sweep)
    t_sweep_floor = best_of(1, lambda: scalar(
        "SELECT count(*) FROM (SELECT id FROM orgs_case WHERE state = ANY(%s) AND deadline < %s FOR UPDATE) s",
        [list(cases_selectors.OPEN), now]))
    claimed, escalated = swept["claimed"], swept["escalated"]  # type: ignore[index]
    row(f"ledger: escalation sweep over the district ({overdue} open cases past their step's deadline; "
        f"{claimed} claimed, {escalated} escalated; rolled back)", t_sweep,
        "locking the same overdue rows (one SELECT … FOR UPDATE)", t_sweep_floor)
    try:
        from orgs.services import inbox
    except ImportError:
        rows.append(("ledger: reminder sweep: no reminder service in this tree", "–", "–", "–"))
        return

    def reminders() -> dict[str, int]:
        with transaction.atomic():
            result = inbox.reminders_cases_due(now=now)
            transaction.set_rollback(True)
        return result

    t_rem, sent = timed(reminders)
    n_sent = sum(sent.values())  # type: ignore[attr-defined]
    row(f"ledger: case reminder sweep (`reminders_cases_due`, {n_sent} notifications; rolled back)",
        t_rem, "locking the same overdue rows (one SELECT … FOR UPDATE)", t_sweep_floor)


# --------------------------------------------------------------------------------------------
# Offline map export (issue 10)
# --------------------------------------------------------------------------------------------


def bench_offline_map() -> None:
    """The offline map (网格作战图) of one community through its export URL, as a street admin
    downloads it: size and time, beside the community's buildings as bare GeoJSON from one
    statement (what the data alone weighs and costs)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from grid.models import Community, Role, RoleAssignment

    community = Community.objects.annotate(n=django.db.models.Count("buildings")).order_by("-n", "code")[
        Community.objects.count() // 2]
    user, _ = get_user_model().objects.get_or_create(username="bench_street_admin")
    RoleAssignment.objects.get_or_create(user=user, role=Role.STREET_ADMIN, street_id=community.street_id)
    client = Client()
    client.force_login(user)
    url = f"/dashboard/export/offline-map.html?unit={community.code}"

    def download() -> bytes:
        response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"offline map failed: {response.status_code} {response.content[:300]!r}")
        return b"".join(response.streaming_content) if response.streaming else response.content  # type: ignore[attr-defined]

    download()
    times, size = [], 0
    for _ in range(3):
        seconds, body = timed(download)
        times.append(seconds)
        size = len(body)  # type: ignore[arg-type]
    floor_sql = (
        "SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object("
        "'type', 'Feature', 'geometry', ST_AsGeoJSON(geom, 7)::json, 'properties', json_build_object("
        "'code', code, 'name', name, 'households', households))), '[]'))::text FROM grid_building WHERE community_id = %s"
    )
    t_floor = best_of(3, lambda: scalar(floor_sql, [community.id]))
    floor_size = len(scalar(floor_sql, [community.id]).encode())
    row(f"offline map export of one community ({community.n} buildings; `offline-map.html`): "  # type: ignore[attr-defined]
        f"{size / 1e6:.2f} MB", min(times), f"its buildings as bare GeoJSON, one statement ({floor_size / 1e6:.2f} MB)",
        t_floor)


# --------------------------------------------------------------------------------------------
# The standalone benchmark modules, run on the same database
# --------------------------------------------------------------------------------------------

extra: list[str] = []


def _module(module: str, args: list[str], *, timeout: int) -> str | None:
    """Run one of ops/bench_*.py on this run's database (DATABASE_URL, REDIS_URL as set by
    ops/bench); its stdout, or None with a row saying it failed."""
    started = time.perf_counter()
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv
            [sys.executable, "-m", module, *args], cwd=ROOT, env=dict(os.environ), capture_output=True,
            text=True, timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired:
        rows.append((f"`python -m {module}`: stopped after {timeout} s", "–", "–", "–"))
        return None
    if done.returncode != 0:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])[-300:].replace("|", "/")
        rows.append((f"`python -m {module}` failed (exit {done.returncode}): {tail}", "–", "–", "–"))
        return None
    print(f"{module}: {time.perf_counter() - started:.0f} s", file=sys.stderr)  # noqa: T201 - progress
    return done.stdout


def _table_rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines()
            if line.startswith("|") and not line.startswith("|---")]


def bench_tiles_module(repeats: int) -> None:
    tipg = Path("/work/tipg-venv/bin/python")
    args = ["--repeats", str(repeats), "--layers", "buildings,grid_cells", "--http"]
    if tipg.exists():
        args += ["--tipg-python", str(tipg)]
    out = _module("ops.bench_tiles", args, timeout=1800)
    if out is None:
        return
    for r in _table_rows(out)[1:]:
        rows.append(("tiles: " + r[0], *r[1:4]))  # type: ignore[arg-type]
    if not tipg.exists():
        rows.append(("tiles: tipg not measured (/work/tipg-venv absent)", "–", "–", "–"))


def bench_plans_module() -> None:
    out = _module("ops.bench_plans", ["--repeat", "20"], timeout=900)
    if out is None:
        return
    goals = {"live checks (plan_checks)": 0.2, "edit + checks (reshape, neighbour yields)": 0.2,
             "undo + checks": 0.2, "live checks, draft with an overlap": 0.2}
    scene = next((line for line in out.splitlines() if line.startswith("community:")), "")
    for name, n, p50, p95, worst in _table_rows(out)[1:]:
        goal = goals.get(name)
        rows.append((f"planning ({scene.removeprefix('community: ')}): {name}, n = {n}, p50 {p50} ms, max {worst} ms",
                     f"{float(p95):.2f} ms p95", f"goal: {goal * 1000:.0f} ms" if goal else "– (no goal set)",
                     f"{float(p95) / 1000 / goal:.2f}× the goal" if goal else "–"))


def bench_rebalance_module(spopt_limit: int) -> None:
    spopt = Path("/work/spopt-venv/bin/python")
    args = ["--spopt-limit", str(spopt_limit), "--spopt-timeout", "900"]
    if spopt.exists():
        args += ["--spopt-python", str(spopt)]
    out = _module("ops.bench_rebalance", args, timeout=2400)
    if out is None:
        return
    extra.append("Suggested rebalance (`python -m ops.bench_rebalance " + " ".join(args) + "`, same run):\n\n"
                 + out.strip() + ("" if spopt.exists() else "\n\nspopt not measured: /work/spopt-venv absent."))
    for r in _table_rows(out)[1:]:
        group, method, n, times = r[:4]
        if method != "ours":
            continue
        p95 = float(times.split("/")[1].strip())
        rows.append((f"rebalance, {group}: ours, n = {n}, time p95 (p50 / p95 / max {times}); cells in range {r[4]}, "
                     f"kept {r[6]}", f"{p95:.0f} ms", "goal: 2000 ms per community", f"{p95 / 2000:.2f}× the goal"))


def bench_page_module(loads: int) -> None:
    out = _module("ops.bench_page", ["--loads", str(loads)], timeout=900)
    if out is not None:
        rows.extend(tuple(r[:4]) for r in _table_rows(out)[1:])  # type: ignore[misc]


BENCHES = ["make_demo", "points", "reassign", "redraw", "import", "sync", "geojson", "gaps", "indicators",
           "ledger", "tiles", "page", "offline", "plans", "rebalance"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="district", choices=["demo", "district"])
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--skip-build", action="store_true", help="reuse the data already in wangge_bench")
    parser.add_argument("--only", choices=BENCHES, action="append",
                        help="run only these benchmarks (repeatable); with --skip-build, no rebuild")
    parser.add_argument("--repeats", type=int, default=200, help="repeats of the geojson read")
    parser.add_argument("--tries", type=int, default=20, help="tries of the visit → gap resolved path")
    parser.add_argument("--tile-repeats", type=int, default=3, help="repeats of the tile list")
    parser.add_argument("--loads", type=int, default=5, help="cold loads of the dashboard page")
    parser.add_argument("--spopt-limit", type=int, default=3, help="communities given to spopt max-p (slow: minutes each)")
    args = parser.parse_args()
    chosen = set(args.only or BENCHES)
    if not args.skip_build and "make_demo" in chosen:
        bench_make_demo(args.scale)
    # In this order: the gaps before the rest of the new rows (the build computes none, and the
    # tiles' gaps layer, the indicators and the page read them).
    runs: dict[str, Callable[[], None]] = {
        "points": lambda: bench_point_lookup(args.points),
        "reassign": bench_reassign,
        "redraw": bench_redraw,
        "import": bench_import,
        "sync": bench_sync,
        "geojson": lambda: bench_geojson(args.repeats),
        "gaps": lambda: bench_gaps(args.tries),
        "indicators": bench_indicators,
        "ledger": bench_ledger,
        "tiles": lambda: bench_tiles_module(args.tile_repeats),
        "page": lambda: bench_page_module(args.loads),
        "offline": bench_offline_map,
        "plans": bench_plans_module,
        "rebalance": lambda: bench_rebalance_module(args.spopt_limit),
    }
    for name, run in runs.items():
        if name in chosen:
            started = time.perf_counter()
            try:
                run()
            except Exception as exc:  # noqa: BLE001 - one benchmark failing must not lose the others' rows
                rows.append((f"`{name}` failed: {type(exc).__name__}: {str(exc)[:200]}".replace("|", "/"), "–", "–", "–"))
                connection.close()  # a broken transaction or connection is not carried into the next one
            print(f"{name}: {time.perf_counter() - started:.0f} s", file=sys.stderr)  # noqa: T201 - progress
    command = "ops/bench " + " ".join(sys.argv[1:]) if sys.argv[1:] else f"ops/bench --scale {args.scale}"
    print(f"Machine: {os.cpu_count()} cores, {platform.python_version()}, "
          f"{scalar('SELECT postgis_lib_version()')} PostGIS; command: `{command}`\n")
    print("| what | ours | limit in the same run | ratio |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    for block in extra:
        print("\n" + block)


if __name__ == "__main__":
    main()
