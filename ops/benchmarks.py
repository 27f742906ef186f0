"""Benchmarks on the district-scale data set: each measured against its limit in the same run.

Run with `ops/bench` (its own database, wangge_bench). Prints a Markdown table for BENCHMARKS.md.
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


BENCHES = ["make_demo", "points", "reassign", "redraw", "import", "sync", "geojson"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="district", choices=["demo", "district"])
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--skip-build", action="store_true", help="reuse the data already in wangge_bench")
    parser.add_argument("--only", choices=BENCHES, action="append",
                        help="run only these benchmarks (repeatable); with --skip-build, no rebuild")
    parser.add_argument("--repeats", type=int, default=200, help="repeats of the geojson read")
    args = parser.parse_args()
    chosen = set(args.only or BENCHES)
    if not args.skip_build and "make_demo" in chosen:
        bench_make_demo(args.scale)
    if "points" in chosen:
        bench_point_lookup(args.points)
    if "reassign" in chosen:
        bench_reassign()
    if "redraw" in chosen:
        bench_redraw()
    if "import" in chosen:
        bench_import()
    if "sync" in chosen:
        bench_sync()
    if "geojson" in chosen:
        bench_geojson(args.repeats)
    command = "ops/bench " + " ".join(sys.argv[1:]) if sys.argv[1:] else f"ops/bench --scale {args.scale}"
    print(f"Machine: {os.cpu_count()} cores, {platform.python_version()}, "
          f"{scalar('SELECT postgis_lib_version()')} PostGIS; command: `{command}`\n")
    print("| what | ours | limit in the same run | ratio |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
