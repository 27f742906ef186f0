"""Benchmark of the dashboard page (issue 10, "Measured"): a street administrator opens /dashboard/
in headless Chromium at district scale; bytes transferred before the first map render and the
time to it, beside the same street's layers inlined by folium (the offline map's builder).

    DATABASE_URL=postgis://…/wangge_bench .venv/bin/python -m ops.bench_page [--loads 5]

The page is served by gunicorn (3 workers, as ops/up) on 127.0.0.1 with static files as in
production (ops/bench_settings.py: WhiteNoise, compressed, collected into a temporary directory).
Each load is a fresh browser context (empty cache): log in through the sign-in form, then open
the dashboard and wait for the page's own first-render mark (MapLibre's first `idle`,
window.dashboard.firstRenderMs, milliseconds from the navigation's start). Bytes are Playwright's
request sizes (headers + body as transferred) of every request finished by then, from the login
form's submission on. Prints rows of ops/benchmarks.py's table.

Writes a user `bench_page` (street administrator of the first street, by code) to the database.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-page-password"  # noqa: S105 - a benchmark user on the benchmark database


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ops.settings")
    import django

    django.setup()


def street_admin() -> tuple[Any, int, str]:
    from django.contrib.auth import get_user_model

    from grid.models import Role, RoleAssignment, Street

    street = Street.objects.order_by("code").first()
    if street is None:
        raise SystemExit("没有街道数据：请先运行 manage.py make_demo --scale district")
    user, _ = get_user_model().objects.get_or_create(username="bench_page")
    user.set_password(PASSWORD)
    user.is_staff = True  # the sign-in form is the admin's, which takes staff accounts only
    user.save()
    RoleAssignment.objects.get_or_create(user=user, role=Role.STREET_ADMIN, street_id=street.id, revoked_at=None)
    return user, street.id, street.code


def folium_street(user: Any, street_id: int) -> tuple[float, int, int]:
    """The street's layers (outline, grid cells, buildings, organisations, gaps) in one folium
    page, built as the offline map builds a community's: (seconds, bytes, buildings)."""
    from django.utils import timezone

    from grid.access import reach_for_user
    from grid.models import Community
    from mapping import exports, offline_map
    from mapping.indicators import IndicatorUnit

    started = time.perf_counter()
    reach = reach_for_user(user)
    at = timezone.now()
    merged: offline_map.MapContent | None = None
    for c in Community.objects.filter(street_id=street_id).order_by("code"):
        content, _ = exports.offline_map_content(
            reach=reach, unit=IndicatorUnit("community", c.id, c.code, c.name, (c.id,)), at=at
        )
        if merged is None:
            merged = content
            continue
        for part in ("cells", "buildings", "organisations", "gap_areas", "gap_points"):
            getattr(merged, part).extend(getattr(content, part))
        a, b = merged.bounds, content.bounds
        merged = dataclasses.replace(merged, bounds=(min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])))
    if merged is None:
        raise SystemExit("the street has no communities")
    page = offline_map.offline_map_html(merged).encode("utf-8")
    return time.perf_counter() - started, len(page), len(merged.buildings)


def _serve(static_root: str) -> tuple[subprocess.Popen, int]:
    env = dict(os.environ) | {"DJANGO_SETTINGS_MODULE": "ops.bench_settings", "WANGGE_BENCH_STATIC_ROOT": static_root}
    subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    port = _free_port()
    server = subprocess.Popen(  # noqa: S603 - fixed argv
        [sys.executable, "-m", "gunicorn", "ops.wsgi", "-w", "3", "-b", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=5).read()  # noqa: S310 - local
            return server, port
        except OSError:
            time.sleep(0.5)
    server.terminate()
    raise SystemExit("gunicorn did not answer")


def loads(base: str, username: str, n: int) -> list[dict[str, Any]]:
    from playwright.sync_api import sync_playwright

    from tests.browser import browser_session, launch

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            return [_one_load(browser_session(browser, base_url=base), username) for _ in range(n)]
        finally:
            browser.close()


def _one_load(opened: Any, username: str) -> dict[str, Any]:
    with opened as session:
        page = session.page
        session.goto("/admin/login/?next=/dashboard/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        finished: list[Any] = []
        counting = {"on": True}

        def record(request: Any) -> None:
            if counting["on"]:
                finished.append(request)

        page.on("requestfinished", record)
        page.click("input[type=submit]")
        page.wait_for_selector('body[data-map-ready="1"]', state="attached", timeout=60_000)
        counting["on"] = False
        first_ms = page.evaluate("() => window.dashboard.firstRenderMs")
        sizes = [(r.url, r.sizes()) for r in finished]
        if session.external_requests():
            raise SystemExit(f"requests left the machine: {session.external_requests()[:3]}")

    def weight(part: str = "") -> int:
        return sum(s["responseBodySize"] + s["responseHeadersSize"] for u, s in sizes if part in u)

    return {"ms": first_ms, "bytes": weight(), "tiles": weight("/tiles/"), "static": weight("/static/"),
            "requests": len(sizes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loads", type=int, default=5)
    args = parser.parse_args()
    _setup()
    user, street_id, street_code = street_admin()
    t_folium, folium_bytes, n_buildings = folium_street(user, street_id)
    with tempfile.TemporaryDirectory() as static_root:
        server, port = _serve(static_root)
        try:
            results = loads(f"http://127.0.0.1:{port}", user.username, args.loads)
        finally:
            server.terminate()
            server.wait(timeout=30)
    ms = statistics.median(r["ms"] for r in results)
    worst = max(r["ms"] for r in results)
    b = statistics.median(r["bytes"] for r in results)
    r0 = results[len(results) // 2]
    print("| what | ours | limit in the same run | ratio |")  # noqa: T201 - a CLI report
    print("|---|---|---|---|")  # noqa: T201
    print(f"| page: bytes transferred before the first map render, street admin of {street_code} (cold cache, "  # noqa: T201
          f"median of {len(results)}: {r0['requests']} requests, static {r0['static'] / 1e6:.2f} MB, tiles "
          f"{r0['tiles'] / 1e6:.2f} MB); goal < 1 MB | {b / 1e6:.2f} MB | the same street's layers inlined by folium "
          f"({n_buildings} buildings, built in {t_folium:.1f} s): {folium_bytes / 1e6:.2f} MB | {b / folium_bytes:.2f}× |")
    print(f"| page: time to first rendered map (MapLibre's first idle, from navigation start), median of "  # noqa: T201
          f"{len(results)} (max {worst / 1000:.2f} s); goal < 1.5 s | {ms / 1000:.2f} s | goal: 1.50 s | "
          f"{ms / 1500:.2f}× the goal |")


if __name__ == "__main__":
    main()
