"""Benchmark of the map's vector tiles on the district-scale data set (issue 10, "Measured").

    .venv/bin/python -m ops.bench_tiles --database-url postgis://…/wangge_bench \\
        --redis-url redis://127.0.0.1:6379/15 [--http] [--tipg-python /work/tipg-venv/bin/python]

A fixed list of z12–z17 tiles over the district (the tiles holding a fixed sample of buildings,
by md5 of their code), for each layer measured:

- ours, uncached: the tile through Django (session sign-in, reach, version look-up, statement,
  Redis write) with the cache emptied before each request;
- ours, warm: the same request again, answered from Redis (goal ≥ 20× the uncached rate);
- the bare statement: the layer's ST_AsMVT statement run directly (what the SQL itself costs);
- the floor: a plain ST_AsMVT of the same table (geometry and four columns, no reach, no
  status), what a generic tile server runs;
- with --tipg-python: tipg (PyPI) serving the same table and the same tiles on 127.0.0.1.

In-process (the Django test client) by default; with --http ours is served by gunicorn (one
sync worker) on 127.0.0.1 and asked over HTTP like tipg (one uvicorn worker), one request at a
time, a new connection each. Within each repeat the paths are timed in turn on the same tile, so
load on the machine falls on all of them alike. Prints a Markdown table (rows as
ops/benchmarks.py writes them) and, with --json, the raw figures.

Writes to the database it is given: a user `bench_tiles` holding the leader role on every street
(so every tile is scoped through 20 street ids, as a district leader's would be) and its token.
Needs the district data (`manage.py make_demo --scale district`) and, for the gaps layer,
`manage.py compute_gaps`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ZOOMS = range(12, 18)
PER_ZOOM = 12

# tipg's name for a table, and the columns asked of it (like ours: code, name, households and two ids).
TIPG_TABLES = {
    "buildings": ("public.grid_building", "code,name,households,grid_cell_id,community_id"),
    "grid_cells": ("public.grid_gridboundary", "cell_id,valid"),
}
FLOORS = {
    "buildings": ("grid_building", "b.id, b.code, b.name, b.households, b.grid_cell_id"),
    "grid_cells": ("grid_gridboundary", "b.id, b.cell_id, b.note"),
}


@dataclass
class Samples:
    seconds: list[float] = field(default_factory=list)
    zooms: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)

    def add(self, z: int, seconds: float, size: int) -> None:
        self.zooms.append(z)
        self.seconds.append(seconds)
        self.sizes.append(size)

    def from_zoom(self, z: int) -> Samples:
        """The samples of tiles at zoom `z` and deeper."""
        out = Samples()
        for zoom, seconds, size in zip(self.zooms, self.seconds, self.sizes, strict=True):
            if zoom >= z:
                out.add(zoom, seconds, size)
        return out

    @property
    def bytes(self) -> int:
        return sum(self.sizes)

    @property
    def rate(self) -> float:
        return len(self.seconds) / sum(self.seconds) if self.seconds else 0.0

    @property
    def p95_ms(self) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)] * 1000

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.seconds) * 1000


def _setup(database_url: str | None, redis_url: str | None) -> None:
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    if redis_url:
        os.environ["REDIS_URL"] = redis_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ops.settings")
    import django

    django.setup()


def tile_list() -> list[tuple[int, int, int]]:
    """The fixed list: per zoom, the tiles of a fixed sample of buildings, at most PER_ZOOM."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT ST_X(point), ST_Y(point) FROM grid_building ORDER BY md5(code) LIMIT 2000")
        points = cursor.fetchall()
    if not points:
        raise SystemExit("没有楼栋数据：请先运行 manage.py make_demo --scale district")
    out: list[tuple[int, int, int]] = []
    for z in ZOOMS:
        seen: list[tuple[int, int, int]] = []
        for lon, lat in points:
            n = 2**z
            t = (
                z,
                int((lon + 180) / 360 * n),
                int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n),
            )
            if t not in seen:
                seen.append(t)
            if len(seen) == PER_ZOOM:
                break
        out.extend(seen)
    return out


def bench_user() -> Any:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from grid.models import Role, RoleAssignment, Street

    user, _ = get_user_model().objects.get_or_create(username="bench_tiles")
    for street_id in Street.objects.values_list("id", flat=True):
        RoleAssignment.objects.get_or_create(
            user=user, role=Role.LEADER, street_id=street_id, revoked_at=None
        )
    Token.objects.get_or_create(user=user)
    return user


def _timed(fn: Callable[[], bytes]) -> tuple[float, bytes]:
    start = time.perf_counter()
    body = fn()
    return time.perf_counter() - start, body


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Chosen at start-up: another server on the machine may hold any fixed port.
OURS_PORT = _free_port()
TIPG_PORT = _free_port()


def _http_get(port: int, path: str, headers: dict[str, str]) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"GET {path} on :{port} answered {response.status}: {body[:300]!r}")
        return body
    finally:
        conn.close()


def _wait_for(port: int, path: str, headers: dict[str, str], process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        try:
            _http_get(port, path, headers)
            return
        except (OSError, SystemExit):
            time.sleep(0.5)
    raise SystemExit(f"{what} did not answer on 127.0.0.1:{port}")


def _start_ours(env: dict[str, str]) -> subprocess.Popen:
    # As served in production: DEBUG off (no query log kept per request).
    env = env | {"DEBUG": "0"}
    return subprocess.Popen(  # noqa: S603 - fixed argv
        [
            sys.executable,
            "-m",
            "gunicorn",
            "ops.wsgi",
            "-w",
            "1",
            "-b",
            f"127.0.0.1:{OURS_PORT}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )


def _start_tipg(python: str, env: dict[str, str]) -> subprocess.Popen:
    tipg_env = {
        "PATH": env.get("PATH", ""),
        "DATABASE_URL": env["DATABASE_URL"].replace("postgis://", "postgresql://", 1),
        "TIPG_DB_TABLES": json.dumps([t for t, _ in TIPG_TABLES.values()]),
        "TIPG_TILE_BUFFER": "64",  # ours: 64 of 4096, like martin's default
        "TIPG_DB_SPATIAL_EXTENT": "false",
        "TIPG_DB_DATETIME_EXTENT": "false",
    }
    return subprocess.Popen(  # noqa: S603 - fixed argv
        [
            python,
            "-m",
            "uvicorn",
            "tipg.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(TIPG_PORT),
            "--workers",
            "1",
            "--log-level",
            "warning",
        ],
        # A directory of its own: tipg reads a .env from its working directory.
        cwd=tempfile.mkdtemp(prefix="tipg-"),
        env=tipg_env,
    )


@dataclass
class _Runner:
    """The paths measured, each a function of one tile returning the bytes it got."""

    client: Any
    auth: dict[str, str]
    http: bool
    reach: Any

    def ours(self, url: str) -> bytes:
        if self.http:
            return _http_get(OURS_PORT, url, self.auth)
        response = self.client.get(url, HTTP_ACCEPT_ENCODING="gzip")
        if response.status_code != 200:
            raise SystemExit(f"{url}: {response.status_code} {response.content[:300]!r}")
        return response.content

    def statement(self, address: Any) -> bytes:
        from django.db import connection

        from mapping import tiles

        if address.z < address.layer.min_zoom:
            return b""
        params = tiles.tile_parameters(reach=self.reach, address=address, today=_today())
        with connection.cursor() as cursor:
            cursor.execute(address.layer.statement_at(address.z), params)
            return bytes(cursor.fetchone()[0])

    @staticmethod
    def floor(sql: str, z: int, x: int, y: int) -> bytes:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(sql, {"z": z, "x": x, "y": y})
            return bytes(cursor.fetchone()[0])


def _floor_sql(layer: str) -> str:
    table, columns = FLOORS.get(layer, FLOORS["buildings"])
    return (
        f"SELECT coalesce(ST_AsMVT(t, 'l', 4096, 'geom', 'id'), ''::bytea) FROM ("  # noqa: S608 - names from this module
        f"SELECT {columns}, ST_AsMVTGeom(ST_Transform(b.geom, 3857), ST_TileEnvelope(%(z)s, %(x)s, %(y)s), "
        f"4096, 64, true) AS geom FROM {table} b "
        f"WHERE b.geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 0.015625), 4326)) t"
    )


def _measure_tile(
    runner: _Runner,
    paths: dict[str, Samples],
    layer: str,
    tile: tuple[int, int, int],
    *,
    floor_sql: str,
    tipg: bool,
) -> None:
    from django.core.cache import cache

    from mapping import tiles

    z, x, y = tile
    url = f"/tiles/{layer}/{z}/{x}/{y}.mvt"
    cache.clear()
    seconds, body = _timed(lambda: runner.ours(url))
    paths["uncached"].add(z, seconds, len(body))
    seconds, warm = _timed(lambda: runner.ours(url))
    if warm != body:
        raise SystemExit(f"{url}: the warm answer differs from the uncached one")
    paths["warm"].add(z, seconds, len(warm))
    address = tiles.tile_address(layer=layer, z=z, x=x, y=y)
    paths["statement"].add(z, *_sized(_timed(lambda: runner.statement(address))))
    paths["floor"].add(z, *_sized(_timed(lambda: runner.floor(floor_sql, z, x, y))))
    if tipg and layer in TIPG_TABLES:
        table, props = TIPG_TABLES[layer]
        tipg_url = f"/collections/{table}/tiles/WebMercatorQuad/{z}/{x}/{y}?properties={props}"
        paths["tipg"].add(
            z, *_sized(_timed(lambda: _http_get(TIPG_PORT, tipg_url, {"Accept-Encoding": "gzip"})))
        )


def bench_tiles(
    *,
    layers: Iterable[str] = ("buildings", "grid_cells"),
    repeats: int = 3,
    http: bool = False,
    tipg_python: str | None = None,
) -> dict[str, dict[str, Samples]]:
    """Run the benchmark on the configured database; returns {layer: {path: Samples}}."""
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment
    from rest_framework.authtoken.models import Token

    from grid.access import reach_for_user

    setup_test_environment()
    user = bench_user()
    tiles_list = tile_list()
    client = Client()
    client.force_login(user)
    # As a browser asks: gzip accepted (ours and tipg both compress then).
    auth = {"Authorization": f"Token {Token.objects.get(user=user).key}", "Accept-Encoding": "gzip"}
    runner = _Runner(client=client, auth=auth, http=http, reach=reach_for_user(user))
    with connection.cursor() as cursor:
        # The bare statements run without JIT, as tiles_sql.tile_body runs them.
        cursor.execute("SET jit = off")
        cursor.execute("SET max_parallel_workers_per_gather = 0")

    processes: list[subprocess.Popen] = []
    z, x, y = tiles_list[0]
    try:
        if http:
            processes.append(_start_ours(dict(os.environ)))
            _wait_for(OURS_PORT, f"/tiles/streets/{z}/{x}/{y}.mvt", auth, processes[-1], "gunicorn")
        if tipg_python:
            processes.append(_start_tipg(tipg_python, dict(os.environ)))
            table = TIPG_TABLES["buildings"][0]
            _wait_for(
                TIPG_PORT,
                f"/collections/{table}/tiles/WebMercatorQuad/{z}/{x}/{y}",
                {},
                processes[-1],
                "tipg",
            )
        results: dict[str, dict[str, Samples]] = {}
        for layer in layers:
            paths = {name: Samples() for name in ("uncached", "warm", "statement", "floor", "tipg")}
            floor_sql = _floor_sql(layer)
            for _ in range(repeats):
                for tile in tiles_list:
                    _measure_tile(runner, paths, layer, tile, floor_sql=floor_sql, tipg=bool(tipg_python))
            results[layer] = paths
        return results
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
        cache.clear()


def _today() -> Any:
    from django.utils import timezone

    return timezone.localdate()


def _sized(timed: tuple[float, bytes]) -> tuple[float, int]:
    return timed[0], len(timed[1])


def table(results: dict[str, dict[str, Samples]], *, http: bool) -> list[tuple[str, str, str, str]]:
    """Rows (what, ours, limit in the same run, ratio) as ops/benchmarks.py prints them."""
    from mapping.tiles import LAYERS

    rows: list[tuple[str, str, str, str]] = []
    how = "over HTTP (gunicorn, 1 worker)" if http else "in-process (Django test client)"

    for name, all_paths in results.items():
        _rows_of(rows, name, all_paths, "z12–z17", how)
        min_zoom = LAYERS[name].min_zoom
        if min_zoom > 12:
            # Below its min zoom the layer answers an empty tile without a query: the figures
            # above flatter it; these are the tiles that hold footprints.
            _rows_of(
                rows, name, {k: s.from_zoom(min_zoom) for k, s in all_paths.items()}, f"z{min_zoom}–z17", how
            )
    return rows


def _fig(s: Samples) -> str:
    return f"{s.rate:.0f} tiles/s, p95 {s.p95_ms:.1f} ms"


def _ratio(a: float, b: float, suffix: str = "×") -> str:
    return f"{a / b:.1f}{suffix}" if b else "–"


def _rows_of(
    rows: list[tuple[str, str, str, str]], layer: str, paths: dict[str, Samples], zooms: str, how: str
) -> None:
    un, warm, st, fl, tp = (paths[k] for k in ("uncached", "warm", "statement", "floor", "tipg"))
    n = len(un.seconds)
    rows.append(
        (
            f"`{layer}` tiles {zooms} uncached, {n} requests {how}",
            _fig(un),
            f"its bare ST_AsMVT statement: {_fig(st)}",
            _ratio(st.rate, un.rate),
        )
    )
    rows.append(
        (
            f"`{layer}` the same tiles, warm cache",
            _fig(warm),
            f"uncached: {_fig(un)}",
            _ratio(warm.rate, un.rate, "× faster"),
        )
    )
    rows.append(
        (
            f"`{layer}` bare statement (reach, status, simplification)",
            _fig(st),
            f"plain ST_AsMVT of the table, no reach: {_fig(fl)}",
            _ratio(fl.rate, st.rate),
        )
    )
    if tp.seconds:
        rows.append(
            (
                f"`{layer}` uncached {how}",
                _fig(un),
                f"tipg, same table and tiles over HTTP: {_fig(tp)}",
                _ratio(un.rate, tp.rate, "× tipg's rate"),
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="the district database (default: DATABASE_URL)")
    parser.add_argument("--redis-url", help="a Redis database this run may empty (default: REDIS_URL)")
    parser.add_argument("--layers", default="buildings,grid_cells")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--http", action="store_true", help="serve ours with gunicorn on 127.0.0.1 and ask over HTTP"
    )
    parser.add_argument(
        "--tipg-python", help="python of a venv with tipg and uvicorn installed (never the project's)"
    )
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON too")
    args = parser.parse_args()
    _setup(args.database_url, args.redis_url)
    results = bench_tiles(
        layers=[name.strip() for name in args.layers.split(",") if name.strip()],
        repeats=args.repeats,
        http=args.http or bool(args.tipg_python),
        tipg_python=args.tipg_python,
    )
    rows = table(results, http=args.http or bool(args.tipg_python))
    print("| what | ours | limit in the same run | ratio |")  # noqa: T201 - a CLI report
    print("|---|---|---|---|")  # noqa: T201
    for row in rows:
        print("| " + " | ".join(row) + " |")  # noqa: T201
    if args.json:
        raw = {
            layer: {
                k: {
                    "n": len(s.seconds),
                    "rate": s.rate,
                    "p50_ms": s.p50_ms if s.seconds else None,
                    "p95_ms": s.p95_ms if s.seconds else None,
                    "bytes": s.bytes,
                }
                for k, s in paths.items()
            }
            for layer, paths in results.items()
        }
        print(json.dumps(raw, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
