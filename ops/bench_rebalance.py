"""Benchmark of the suggested rebalance (issue 11, "Measured"), beside two baselines in the same run.

    .venv/bin/python -m ops.bench_rebalance --database-url postgis://…/wangge_bench \\
        [--spopt-python /work/spopt-venv/bin/python] [--spopt-limit 40] [--limit N] [--json out.json]

Communities measured, one by one:
- a synthetic community of ~5,000 households in ~800 buildings and 12 cells drawn as a jittered
  4 × 3 lattice, so several cells are out of range (built in memory, numpy, no database);
- every community of the database as it is (the demo generator draws every grid in range: this
  measures the "nothing to do" path), the same community with its housing changed: a third of
  its cells gain 25–50 % households, a third lose 20–40 % (in memory, a fixed function of the
  community's code; nothing is written), and the same community as if it had no grid yet (the
  fresh partition; "households kept" means nothing there).

Methods, each on the same units (buildings with their territories, mapping.rebalance.build_units):
- ours: mapping.rebalance.rebalance (load from PostgreSQL + units + search, timed end to end);
- split-by-count: buildings sorted west→east and cut into runs of equal households, as many runs
  as ours has cells (the baseline a spreadsheet gives);
- spopt max-p (PySAL; installed in a separate venv, run as a subprocess on the same units, their
  centroids as attributes, threshold = households_min): only the minimum, no maximum, no memory
  of today's cells.
Measured per method: time per community (p50, p95, max), share of cells in range (cells holding a
building above the maximum are infeasible and left out, and named), share of contiguous cells
(connected in the unit graph), households kept in their cell (a method's cells matched one-to-one
to today's by the households they share), mean Polsby-Popper of the cells (union of territories).
Prints a Markdown table (the rows of ops/benchmarks.py's shape) and, with --json, every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely

SPOPT_SCRIPT = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import geopandas as gpd
import numpy as np
from libpysal.weights import W
from spopt.region import MaxPHeuristic
jobs = json.load(sys.stdin)
out = []
for job in jobs:
    n = len(job["households"])
    neighbours = {i: [] for i in range(n)}
    for i, j in job["edges"]:
        neighbours[i].append(j)
        neighbours[j].append(i)
    xy = np.array(job["xy"], dtype=float).reshape(-1, 2)
    gdf = gpd.GeoDataFrame(
        {"households": job["households"], "x": xy[:, 0], "y": xy[:, 1]},
        geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]),
    )
    np.random.seed(job["seed"])
    started = time.perf_counter()
    try:
        model = MaxPHeuristic(gdf, W(neighbours, silence_warnings=True), ["x", "y"], "households",
                              job["threshold"], top_n=2, max_iterations_construction=job["construction"],
                              max_iterations_sa=job["sa"])
        model.solve()
        labels = [int(v) for v in model.labels_]
        error = None
    except Exception as exc:  # a baseline that fails is reported, not fatal
        labels, error = None, repr(exc)[:200]
    out.append({"key": job["key"], "seconds": time.perf_counter() - started, "labels": labels, "error": error})
json.dump(out, sys.stdout)
"""


def _setup(database_url: str | None) -> None:
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ops.settings")
    import django

    django.setup()


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] if ordered else float("nan")


# --------------------------------------------------------------------------------------------
# Communities
# --------------------------------------------------------------------------------------------


def synthetic_community(seed: int = 7) -> Any:
    """~5,000 households in ~800 buildings (a 32 × 25 lattice, 20 × 14 m footprints 36 m apart,
    log-normal households) and 12 cells as a 4 × 3 lattice whose lines are shifted at random, so
    cells differ in size and several are out of range."""
    from mapping.rebalance import BuildingsIn, CellIn, Frame, RebalanceInput

    rng = np.random.default_rng(seed)
    cols, rows, step = 32, 25, 36.0
    width, height = cols * step, rows * step
    x0, y0 = 110.40, 21.19
    frame = Frame.around(shapely.box(x0, y0, x0 + 0.01, y0 + 0.008))
    # Lattice positions in metres around (x0, y0), then to degrees with the frame.
    gx, gy = np.meshgrid(np.arange(cols), np.arange(rows), indexing="ij")
    cx = gx.ravel() * step + step / 2 + rng.uniform(-4, 4, gx.size)
    cy = gy.ravel() * step + step / 2 + rng.uniform(-4, 4, gy.size)
    w, h = rng.uniform(14, 22, gx.size), rng.uniform(10, 16, gx.size)
    footprints_m = shapely.box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    households = np.maximum(1, np.round(rng.lognormal(np.log(5.2), 0.55, gx.size))).astype(np.int64)
    households = np.round(households * 5000 / households.sum()).astype(np.int64)
    xs = np.sort(np.concatenate([[0.0, width], rng.uniform(0.18, 0.82, 3) * width]))
    xs[1:-1] = np.sort(width * (np.arange(1, 4) / 4 + rng.uniform(-0.07, 0.07, 3)))
    ys = np.array([0.0, height * (1 / 3 + rng.uniform(-0.08, 0.08)), height * (2 / 3 + rng.uniform(-0.08, 0.08)), height])
    cells_m: list[Any] = []
    codes: list[str] = []
    for i in range(4):
        for j in range(3):
            cells_m.append(shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1]))
            codes.append(f"440803999001{len(codes) + 1:03d}")
    tree = shapely.STRtree(np.array(cells_m, dtype=object))
    p_idx, c_idx = tree.query(shapely.points(cx, cy), predicate="intersects")
    today = np.full(gx.size, -1)
    today[p_idx[::-1]] = c_idx[::-1]

    origin = frame.to_metres(shapely.Point(x0, y0))

    def degrees(g: Any) -> Any:
        return frame.to_degrees(shapely.transform(g, lambda xy: xy + (origin.x, origin.y)))

    return RebalanceInput(
        outline=degrees(shapely.box(0, 0, width, height)),
        cells=[CellIn(code=code, shape=degrees(c)) for code, c in zip(codes, cells_m, strict=True)],
        buildings=BuildingsIn(
            codes=[f"SYN{k:04d}" for k in range(gx.size)], names=[f"合成{k}栋" for k in range(gx.size)],
            households=households, footprints=degrees(footprints_m), today=today,
        ),
    )


def without_grid(data: Any) -> Any:
    """`data` as if the community had no grid yet: the suggestion is a fresh partition."""
    from mapping.rebalance import BuildingsIn, RebalanceInput

    b = data.buildings
    return RebalanceInput(
        outline=data.outline, cells=[],
        buildings=BuildingsIn(codes=b.codes, names=b.names, households=b.households, footprints=b.footprints,
                              today=np.full(len(b), -1)),
    )


def housing_changed(data: Any, key: str) -> Any:
    """`data` with a third of its cells' households up 25–50 % and a third down 20–40 % (a fixed
    function of `key`), so several cells leave the range."""
    from mapping.rebalance import BuildingsIn, RebalanceInput

    rng = np.random.default_rng(zlib.crc32(key.encode()))
    k = len(data.cells)
    factor = np.ones(max(k, 1))
    if k:
        order = rng.permutation(k)
        factor[order[: k // 3]] = rng.uniform(1.25, 1.5, k // 3)
        factor[order[k // 3: 2 * k // 3]] = rng.uniform(0.6, 0.8, 2 * k // 3 - k // 3)
    b = data.buildings
    per_building = np.where(b.today >= 0, factor[np.maximum(b.today, 0)], 1.0)
    households = np.round(b.households * per_building).astype(np.int64)
    return RebalanceInput(
        outline=data.outline, cells=data.cells,
        buildings=BuildingsIn(codes=b.codes, names=b.names, households=households, footprints=b.footprints,
                              today=b.today),
    )


# --------------------------------------------------------------------------------------------
# Measures of one labelling of the units
# --------------------------------------------------------------------------------------------


@dataclass
class Measure:
    seconds: float
    cells: int = 0
    cells_feasible: int = 0
    in_range: int = 0
    contiguous: int = 0
    households_today: int = 0
    kept: int = 0
    pp: list[float] = field(default_factory=list)
    infeasible: list[str] = field(default_factory=list)
    # At most this many households can stay: today's cells' total excess over the maximum and
    # total shortfall under the minimum must move at least (the larger of the two).
    kept_bound: int = 0


def measure(units: Any, labels: Sequence[Any], seconds: float, lo: int, hi: int, too_large: set[int]) -> Measure:
    """The figures of one assignment of `units` (labels per unit, any hashable)."""
    from mapping.rebalance import polsby_popper

    by_label: dict[Any, list[int]] = {}
    for v, lab in enumerate(labels):
        by_label.setdefault(lab, []).append(v)
    m = Measure(seconds=seconds, cells=len(by_label))
    for members in by_label.values():
        households = int(units.households[members].sum())
        feasible = not (set(members) & too_large)
        m.cells_feasible += feasible
        m.in_range += feasible and lo <= households <= hi
        m.contiguous += _connected(units, members)
        score = polsby_popper(shapely.union_all(units.regions[members]))
        if score is not None:
            m.pp.append(score)
    # Households kept: each method's cells matched one-to-one to today's cells, greedily by the
    # households they share (ours keeps today's codes, so its matching is the identity).
    shared: dict[tuple[Any, int], int] = {}
    for v, lab in enumerate(labels):
        t = int(units.today[v])
        if t >= 0:
            shared[(lab, t)] = shared.get((lab, t), 0) + int(units.households[v])
            m.households_today += int(units.households[v])
    used_labels: set[Any] = set()
    used_today: set[int] = set()
    for (lab, t), hh in sorted(shared.items(), key=lambda kv: -kv[1]):
        if lab not in used_labels and t not in used_today:
            used_labels.add(lab)
            used_today.add(t)
            m.kept += hh
    return m


def _connected(units: Any, members: list[int]) -> bool:
    pool = set(members)
    seen = {members[0]}
    stack = [members[0]]
    while stack:
        v = stack.pop()
        for w in units.neighbours[v]:
            if w in pool and w not in seen:
                seen.add(w)
                stack.append(w)
    return len(seen) == len(pool)


def split_by_count(units: Any, k: int) -> list[int]:
    """The baseline: units sorted west→east, cut into k runs of equal households."""
    order = np.argsort(units.centroids[:, 0], kind="stable")
    cumulative = np.cumsum(units.households[order])
    total = max(int(cumulative[-1]), 1) if len(cumulative) else 1
    run = np.minimum((cumulative - units.households[order] / 2) * k // total, k - 1).astype(int)
    labels = np.empty(units.n, dtype=int)
    labels[order] = run
    return labels.tolist()


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


@dataclass
class Case:
    key: str
    group: str
    data: Any
    load_s: float


def cases(limit: int | None) -> list[Case]:
    from grid.models import Community
    from mapping.rebalance_sql import community_load

    synthetic = synthetic_community()
    out = [Case("合成社区（5,000 户）", "synthetic", synthetic, 0.0),
           Case("合成社区（5,000 户）", "no grid yet (fresh partition)", without_grid(synthetic), 0.0)]
    communities = Community.objects.order_by("code")
    for community in communities[:limit] if limit else communities:
        started = time.perf_counter()
        data = community_load(community)
        load_s = time.perf_counter() - started
        if len(data.buildings) == 0:
            continue
        out.append(Case(community.code, "as is", data, load_s))
        out.append(Case(community.code, "housing changed", housing_changed(data, community.code), load_s))
        out.append(Case(community.code, "no grid yet (fresh partition)", without_grid(data), load_s))
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    from mapping.plans_checks import planning_settings
    from mapping.rebalance import Rules, build_units, rebalance

    conf = planning_settings()
    lo, hi = int(conf["households_min"]), int(conf["households_max"])
    rules = Rules(households_min=lo, households_max=hi, seed=args.seed)
    results: dict[str, dict[str, list[Any]]] = {}
    findings: list[dict[str, Any]] = []
    spopt_jobs: list[dict[str, Any]] = []
    units_of: dict[tuple[str, str], Any] = {}
    too_large_of: dict[tuple[str, str], set[int]] = {}
    for case in cases(args.limit):
        started = time.perf_counter()
        ours = rebalance(case.data, rules)
        seconds = time.perf_counter() - started + case.load_s
        units = build_units(case.data)
        too_large = {v for v in range(units.n) if any(case.data.buildings.households[bi] > hi for bi in units.buildings[v])}
        units_of[(case.group, case.key)] = units
        too_large_of[(case.group, case.key)] = too_large
        group = results.setdefault(case.group, {})
        mine = measure(units, ours.unit_keys, seconds, lo, hi, too_large)
        placed = units.today >= 0
        per_cell = np.bincount(units.today[placed], weights=units.households[placed], minlength=len(case.data.cells))
        must_move = max(np.maximum(per_cell - hi, 0).sum(), np.maximum(lo - per_cell, 0).sum()) if len(per_cell) else 0
        mine.kept_bound = int(mine.households_today - must_move)
        group.setdefault("ours", []).append(mine)
        started = time.perf_counter()
        baseline = split_by_count(units, max(ours.summary["cells"], 1))
        group.setdefault("split-by-count", []).append(
            measure(units, baseline, time.perf_counter() - started, lo, hi, too_large))
        for f in ours.findings:
            findings.append({"group": case.group, "community": case.key, **f.as_dict()})
        if case.group in ("synthetic", "housing changed") and len(spopt_jobs) < args.spopt_limit:
            spopt_jobs.append({
                "key": f"{case.group}|{case.key}", "households": units.households.tolist(),
                "xy": units.centroids.ravel().tolist(), "edges": units.edges.tolist(), "threshold": lo,
                "seed": args.seed, "construction": args.spopt_construction, "sa": args.spopt_sa,
            })
        progress = (f"{case.group:16s} {case.key:24s} {seconds * 1000:8.1f} ms  {ours.summary['feasible_in_range']}/"
                    f"{ours.summary['cells_feasible']} in range  kept {ours.summary['kept_share']}  "
                    f"{ours.summary['stopped']}")
        print(progress, file=sys.stderr)  # noqa: T201 - progress of a CLI run
    spopt_note = "not run (no --spopt-python)"
    if args.spopt_python and spopt_jobs:
        answer = subprocess.run(  # noqa: S603 - a fixed script, our own interpreter path
            [args.spopt_python, "-c", SPOPT_SCRIPT], input=json.dumps(spopt_jobs), capture_output=True, text=True,
            check=False, timeout=args.spopt_timeout,
        )
        if answer.returncode != 0:
            spopt_note = f"failed: {answer.stderr.strip()[-300:]}"
        else:
            errors = 0
            for item in json.loads(answer.stdout):
                group, key = item["key"].split("|", 1)
                if item["labels"] is None:
                    errors += 1
                    continue
                results[group].setdefault("spopt max-p", []).append(
                    measure(units_of[(group, key)], item["labels"], item["seconds"], lo, hi, too_large_of[(group, key)]))
            spopt_note = (f"{len(spopt_jobs)} communities (the synthetic one and the first changed ones), "
                          f"construction {args.spopt_construction} × SA {args.spopt_sa} iterations"
                          + (f", {errors} failed" if errors else ""))
    return {"results": results, "findings": findings, "spopt": spopt_note, "range": [lo, hi]}


def table(report: dict[str, Any]) -> str:
    lines = [
        "| communities | method | n | time p50 / p95 / max | cells in range (feasible) | contiguous | households kept | mean Polsby-Popper |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for group, methods in report["results"].items():
        for method, ms in methods.items():
            secs = [m.seconds for m in ms]
            feasible = sum(m.cells_feasible for m in ms)
            in_range = sum(m.in_range for m in ms)
            cells = sum(m.cells for m in ms)
            contiguous = sum(m.contiguous for m in ms)
            today = sum(m.households_today for m in ms)
            kept = sum(m.kept for m in ms)
            pp = [p for m in ms for p in m.pp]
            bound = sum(m.kept_bound for m in ms)
            kept_text = f"{kept / today:.1%}" if today else "–"
            if method == "ours" and today:
                kept_text += f" (at most {bound / today:.1%})"
            lines.append(
                f"| {group} | {method} | {len(ms)} | {percentile(secs, 0.5) * 1000:.0f} / {percentile(secs, 0.95) * 1000:.0f}"
                f" / {max(secs) * 1000:.0f} ms | {in_range}/{feasible} = {in_range / max(feasible, 1):.1%} | "
                f"{contiguous}/{cells} = {contiguous / max(cells, 1):.1%} | {kept_text} | "
                f"{sum(pp) / max(len(pp), 1):.3f} |"
            )
    kinds: dict[str, int] = {}
    for f in report["findings"]:
        kinds[f["code"]] = kinds.get(f["code"], 0) + 1
    lines.append("")
    lines.append(f"Range {report['range'][0]}–{report['range'][1]} households. spopt max-p: {report['spopt']}.")
    lines.append("Findings of ours (named cases): " + (", ".join(f"{k} × {v}" for k, v in sorted(kinds.items())) or "none"))
    for f in report["findings"][:12]:
        lines.append(f"- {f['group']} {f['community']}: {f['code']}: {f['message']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="the database with the district data (default: DATABASE_URL)")
    parser.add_argument("--limit", type=int, help="only the first N communities by code")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spopt-python", help="python of a separate venv with spopt installed")
    parser.add_argument("--spopt-limit", type=int, default=40, help="communities given to max-p (it is slow)")
    parser.add_argument("--spopt-construction", type=int, default=99, help="max-p construction iterations")
    parser.add_argument("--spopt-sa", type=int, default=10, help="max-p simulated-annealing iterations")
    parser.add_argument("--spopt-timeout", type=int, default=3000)
    parser.add_argument("--json", help="write every figure here")
    args = parser.parse_args()
    _setup(args.database_url)
    report = run(args)
    print(table(report))  # noqa: T201 - a CLI report
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({**report, "results": {g: {k: [m.__dict__ for m in v] for k, v in ms.items()}
                                             for g, ms in report["results"].items()}}, out, ensure_ascii=False)


if __name__ == "__main__":
    main()
