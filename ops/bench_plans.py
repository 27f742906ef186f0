"""Benchmark of the planners' drafts (mapping/plans*.py) on a community of the size the issue names:
~800 buildings, ~5,000 households, 12 grid cells (4 × 3 blocks of about 400 m).

Measures, each repeated:
- the live checks alone (mapping.plans_checks.plan_checks) — goal < 200 ms — on a clean draft and
  on one with an overlap (the partition check's pairwise overlay);
- one edit with its checks, as the API answers it (mapping.plans.plan_edit: reshape a cell so its
  neighbour yields a strip, then back);
- undo with its checks;
- the impact preview (mapping.plans_preview.plan_preview, with the gap dry run);
- applying a draft (mapping.plans.plan_apply: versions, building reassignment, audit).

Run against a migrated database of its own (nothing is kept: everything runs in one transaction
that is rolled back at the end):

    DATABASE_URL=postgis://…/wangge_plans .venv/bin/python -m ops.bench_plans [--repeat 20]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ops.settings")
django.setup()

from django.contrib.gis.geos import MultiPolygon, Polygon  # noqa: E402
from django.db import transaction  # noqa: E402
from django.test import override_settings  # noqa: E402

from grid import services as grid_services  # noqa: E402
from grid.models import Building, Community, GridCell  # noqa: E402
from mapping import plans, plans_checks, plans_preview  # noqa: E402
from orgs import services as org_services  # noqa: E402

X0, Y0 = 110.40, 21.19
COLS, ROWS = 4, 3
BLOCK = 0.004  # degrees, ~415 m east-west, ~445 m north-south
BUILDINGS = 800
FOOTPRINT = 0.00012  # ~12 m


def rect(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    return Polygon(((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)), srid=4326)


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def scene(rng: random.Random) -> tuple[Community, list[GridCell]]:
    """A street, one community of 4 × 3 blocks, one cell per block, 800 buildings on a jittered
    grid inside the blocks (none across a block edge), a worker per cell."""
    width, height = COLS * BLOCK, ROWS * BLOCK
    street = grid_services.street_create(
        code="440803990", name="基准街道", geom=MultiPolygon(rect(X0, Y0, X0 + width, Y0 + height), srid=4326)
    )
    community = grid_services.community_create(
        code="440803990001", street=street, name="基准社区",
        geom=MultiPolygon(rect(X0, Y0, X0 + width, Y0 + height), srid=4326),
    )
    cells = []
    shapes = {}
    for row in range(ROWS):
        for col in range(COLS):
            n = row * COLS + col + 1
            cell = grid_services.grid_cell_create(code=f"{community.code}{n:03d}", community=community, name=f"第{n}网格")
            cells.append(cell)
            x, y = X0 + col * BLOCK, Y0 + (ROWS - 1 - row) * BLOCK
            shapes[cell.pk] = rect(x, y, x + BLOCK, y + BLOCK)
    grid_services.grid_boundaries_set(shapes=shapes, valid_from=date(2024, 1, 1))
    per_block = BUILDINGS // (COLS * ROWS) + 1
    side = int(per_block**0.5) + 1
    step = BLOCK / (side + 1)
    rows = []
    for b in range(BUILDINGS):
        block, k = divmod(b, per_block)
        col, row = block % COLS, block // COLS
        bx = X0 + col * BLOCK + step * (k % side + 0.6) + rng.uniform(-step / 5, step / 5)
        by = Y0 + row * BLOCK + step * (k // side + 0.6) + rng.uniform(-step / 5, step / 5)
        rows.append(
            Building(
                code=f"BENCH{b:04d}", name=f"{b}栋", community=community, households=rng.randint(3, 9),
                geom=rect(bx, by, bx + FOOTPRINT, by + FOOTPRINT),
            )
        )
    Building.objects.bulk_create(rows)
    grid_services.buildings_reassign(community_ids=[community.pk])
    for cell in cells:
        org_services.grid_worker_create(name=f"{cell.name}网格员", community=community, grid_cells=[cell])
    return community, cells


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def report(name: str, ms: list[float]) -> None:
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    say(f"| {name} | {len(ms)} | {statistics.median(ms):.0f} | {p95:.0f} | {ms[-1]:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    rng = random.Random(args.seed)  # noqa: S311 - a reproducible scene, not a secret
    # No Celery here: the gap recompute a boundary write queues after commit is not wanted (and
    # nothing commits).
    with override_settings(WANGGE_CHANGE_LISTENERS=[]), transaction.atomic():
        community, cells = scene(rng)
        households = sum(Building.objects.filter(community=community).values_list("households", flat=True))
        say(f"community: {BUILDINGS} buildings, {households} households, {len(cells)} cells")
        plan = plans.plan_create(community=community, name="基准方案")
        first, second = cells[0], cells[1]  # side by side in the top row
        x0, y0, x1, y1 = first.boundaries.get().geom.extent
        wide = {"type": "Polygon", "coordinates": [[[x0, y0], [x1 + 0.0006, y0], [x1 + 0.0006, y1], [x0, y1], [x0, y0]]]}
        back = {"type": "Polygon", "coordinates": [[[x1 + 0.0006, y0], [x1 + BLOCK, y0], [x1 + BLOCK, y1],
                                                   [x1 + 0.0006, y1], [x1 + 0.0006, y0]]]}
        say("| measure | n | median ms | p95 ms | max ms |")
        say("|---|---|---|---|---|")
        report("live checks (plan_checks)", timed(lambda: plans_checks.plan_checks(plan=plan), args.repeat))
        toggle = {"n": 0}

        def edit() -> None:
            # Alternately widen the first cell into the second and give the strip back.
            toggle["n"] += 1
            if toggle["n"] % 2:
                plans.plan_edit(plan=plan, kind="reshape", payload={"code": first.code, "geometry": wide})
            else:
                x = {"code": second.code, "geometry": {"type": "Polygon", "coordinates": [[
                    [x1, y0], [x1 + BLOCK, y0], [x1 + BLOCK, y1], [x1, y1], [x1, y0]]]}}
                plans.plan_edit(plan=plan, kind="reshape", payload=x)

        report("edit + checks (reshape, neighbour yields)", timed(edit, args.repeat))
        report("undo + checks", timed(lambda: plans.plan_undo(plan=plan), min(args.repeat, toggle["n"])))
        plans.plan_edit(plan=plan, kind="reshape", payload={"code": second.code, "geometry": back})
        plans.plan_edit(plan=plan, kind="reshape", payload={"code": first.code, "geometry": wide})
        report("impact preview (with gap dry run)", timed(lambda: plans_preview.plan_preview(plan=plan), 5))
        # Checks of a draft that is not a clean coverage (an overlap: the pairwise overlay runs).
        overlap = plans.plan_copy(plan=plan)
        plans.plan_edit(plan=overlap, kind="reshape",
                        payload={"code": second.code, "geometry": back | {"coordinates": [[
                            [x1, y0], [x1 + BLOCK, y0], [x1 + BLOCK, y1], [x1, y1], [x1, y0]]]}, "neighbours": "keep"})
        report("live checks, draft with an overlap", timed(lambda: plans_checks.plan_checks(plan=overlap), args.repeat))
        plan.refresh_from_db()
        # Apply five drafts one after the other (each from the grid the previous one left), each
        # moving a strip of buildings between the first two cells and back.
        applied: list[float] = []
        moved: list[int] = []
        for n in range(5):
            draft = plan if n == 0 else plans.plan_create(community=community, name=f"基准方案{n}")
            if n:
                full = {"type": "Polygon", "coordinates": [[[x1, y0], [x1 + BLOCK, y0], [x1 + BLOCK, y1], [x1, y1], [x1, y0]]]}
                plans.plan_edit(plan=draft, kind="reshape",
                                payload={"code": (second if n % 2 else first).code, "geometry": full if n % 2 else wide})
            start = time.perf_counter()
            result = plans.plan_apply(plan=draft, valid_from=date(2025, 1, 1 + n), reason="基准")
            applied.append((time.perf_counter() - start) * 1000)
            moved.append(result["buildings_moved"])
        report("apply (versions, building reassignment, audit)", applied)
        say(f"buildings moved per apply: {moved}")
        transaction.set_rollback(True)


if __name__ == "__main__":
    main()
