"""The live checks of a draft: run after every edit and answered with it (mapping.plans).

One registry of checks, as Districtr keeps its plan metrics (a key, a function of one context):
the context is measured once (the partition in shapely through grid.partition, everything about
buildings and households in one SQL statement, mapping.plans_sql.cell_measures) and each check
turns it into problems. A check never fails on a half-finished draft: a draft is allowed to be
wrong, the checks say where.

Problems: {code, severity, message (Chinese), cells, buildings, area_m2, geometry (GeoJSON, for
the map)}. Severity "error" for what the grid service refuses on apply (grid_overlap,
grid_outside_community, geometry_invalid): applying such a draft is refused with the same code.
Everything else is a "warning": the planner decides.

| code | severity | what |
|---|---|---|
| grid_overlap, grid_outside_community, geometry_invalid | error | grid.partition |
| community_not_covered | warning | grid.partition: part of the community in no cell |
| plan_cell_not_contiguous | warning | a cell in more than one piece (pieces above the tolerance) |
| building_not_in_cell | warning | a building no cell touches |
| building_split | warning | a building cut by a boundary: no cell holds `building_share_min` of it |
| households_out_of_range | warning | a cell's households outside [households_min, households_max] |
| cell_without_worker | warning | a cell with no active grid worker (every new cell) |
| cell_not_compact | warning | Polsby-Popper below `compactness_min` |

Per cell: area and perimeter (m, on the spheroid), Polsby-Popper 4πA/P², pieces, buildings,
households with the deviation from the range (0 inside it, else how far outside, signed),
households coming in and going out against today's grid, workers, and the display order:
numbered west→east in rows north→south (DB11/T 2157's reading order; codes never change).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.gis.geos import GEOSGeometry

from grid import partition
from grid.models import Community, GridBoundary
from mapping import plans_sql
from mapping.plans_models import Plan, PlanCell

DEFAULTS: dict[str, float] = {
    "households_min": 300,
    "households_max": 500,
    "building_share_min": 0.95,
    "compactness_min": 0.2,
}

NOT_CONTIGUOUS = "plan_cell_not_contiguous"
BUILDING_NOT_IN_CELL = "building_not_in_cell"
BUILDING_SPLIT = "building_split"
HOUSEHOLDS_OUT_OF_RANGE = "households_out_of_range"
CELL_WITHOUT_WORKER = "cell_without_worker"
CELL_NOT_COMPACT = "cell_not_compact"


def planning_settings() -> dict[str, float]:
    return {**DEFAULTS, **getattr(settings, "WANGGE_PLANNING", {})}


@dataclass(frozen=True)
class CellShape:
    code: str
    name: str
    geom: GEOSGeometry
    locked: bool = False
    cell_id: int | None = None


@dataclass
class Context:
    """What the checks read: the community, the shapes, their measures, the thresholds."""

    community: Community
    shapes: Mapping[str, CellShape]
    measures: dict[str, Any]
    partition: partition.PartitionReport
    conf: dict[str, float]
    cells: dict[str, dict[str, Any]] = field(default_factory=dict)


def _geojson(geom: GEOSGeometry | None) -> Any:
    return None if geom is None else json.loads(geom.json)


def _problem(
    code: str,
    severity: str,
    message: str,
    *,
    cells: list[str] | tuple[str, ...] = (),
    buildings: list[str] = (),  # type: ignore[assignment]
    area_m2: float | None = None,
    geometry: Any = None,
) -> dict[str, Any]:
    return {
        "code": code,
        "severity": severity,
        "message": message,
        "cells": list(cells),
        "buildings": list(buildings),
        "area_m2": None if area_m2 is None else round(area_m2, 1),
        "geometry": geometry,
    }


# --- the checks ---------------------------------------------------------------------------------


def check_partition(ctx: Context) -> list[dict[str, Any]]:
    """The cells tile the community (grid.partition, the boundary writer's own check)."""
    return [
        _problem(p.code, p.severity, p.message, cells=p.cells, area_m2=p.area_m2, geometry=_geojson(p.geom))
        for p in ctx.partition.problems
    ]


def check_contiguity(ctx: Context) -> list[dict[str, Any]]:
    return [
        _problem(
            NOT_CONTIGUOUS,
            "warning",
            f"网格 {code} 由 {cell['pieces']} 块不相连的区域组成",
            cells=[code],
            geometry=_geojson(ctx.shapes[code].geom),
        )
        for code, cell in ctx.cells.items()
        if cell["pieces"] > 1
    ]


def check_buildings(ctx: Context) -> list[dict[str, Any]]:
    """Every building in exactly one cell, by footprint share."""
    share_min = ctx.conf["building_share_min"]
    out = []
    for b in ctx.measures["buildings"]:
        label = f"楼栋 {b['name']}（{b['code']}）"
        if b["cell"] is None:
            out.append(
                _problem(BUILDING_NOT_IN_CELL, "warning", f"{label}不在任何网格内", buildings=[b["code"]],
                         geometry=b["geometry"])
            )
        else:
            where = "跨越网格边界" if b["candidates"] > 1 else "部分在网格之外"
            out.append(
                _problem(
                    BUILDING_SPLIT,
                    "warning",
                    f"{label}{where}：最大份额 {float(b['share']):.0%} 在网格 {b['cell']}（应不低于 {share_min:.0%}）",
                    cells=[b["cell"]],
                    buildings=[b["code"]],
                    geometry=b["geometry"],
                )
            )
    return out


def check_households(ctx: Context) -> list[dict[str, Any]]:
    low, high = ctx.conf["households_min"], ctx.conf["households_max"]
    return [
        _problem(
            HOUSEHOLDS_OUT_OF_RANGE,
            "warning",
            f"网格 {code} 有 {cell['households']} 户，{'少于' if cell['deviation'] < 0 else '多于'}"
            f"{low:.0f}–{high:.0f} 户的范围 {abs(cell['deviation'])} 户",
            cells=[code],
            geometry=_geojson(ctx.shapes[code].geom),
        )
        for code, cell in ctx.cells.items()
        if cell["deviation"] != 0
    ]


def check_workers(ctx: Context) -> list[dict[str, Any]]:
    return [
        _problem(
            CELL_WITHOUT_WORKER,
            "warning",
            f"网格 {code} 没有在岗网格员" + ("（新网格）" if cell["new"] else ""),
            cells=[code],
            geometry=_geojson(ctx.shapes[code].geom),
        )
        for code, cell in ctx.cells.items()
        if cell["workers"] == 0
    ]


def check_compactness(ctx: Context) -> list[dict[str, Any]]:
    floor = ctx.conf["compactness_min"]
    return [
        _problem(
            CELL_NOT_COMPACT,
            "warning",
            f"网格 {code} 形状过于狭长或曲折（紧凑度 {cell['polsby_popper']:.2f}，低于 {floor:.2f}）",
            cells=[code],
            geometry=_geojson(ctx.shapes[code].geom),
        )
        for code, cell in ctx.cells.items()
        if cell["polsby_popper"] is not None and cell["polsby_popper"] < floor
    ]


@dataclass(frozen=True)
class Check:
    key: str
    run: Callable[[Context], list[dict[str, Any]]]


CHECKS: tuple[Check, ...] = (
    Check("partition", check_partition),
    Check("contiguity", check_contiguity),
    Check("buildings", check_buildings),
    Check("households", check_households),
    Check("workers", check_workers),
    Check("compactness", check_compactness),
)


# --- running them -------------------------------------------------------------------------------


def _deviation(households: int, low: float, high: float) -> int:
    if households < low:
        return int(households - low)
    if households > high:
        return int(households - high)
    return 0


def _display_order(cells: list[dict[str, Any]]) -> list[str]:
    """Codes in reading order: rows north→south, west→east within a row. A cell joins the row of
    the row's first (northernmost) cell while its point lies within that cell's latitude span."""
    rest = sorted(cells, key=lambda c: (-c["lat"], c["lon"]))
    order: list[str] = []
    while rest:
        first = rest[0]
        row = [c for c in rest if c["lat"] >= first["south"]]
        order += [c["code"] for c in sorted(row, key=lambda c: c["lon"])]
        rest = [c for c in rest if c["lat"] < first["south"]]
    return order


def _cells_figures(ctx: Context) -> dict[str, dict[str, Any]]:
    low, high = ctx.conf["households_min"], ctx.conf["households_max"]
    rows = []
    for m in ctx.measures["cells"]:
        shape = ctx.shapes[m["code"]]
        area, perimeter = float(m["area_m2"]), float(m["perimeter_m"])
        households = int(m["households"])
        rows.append(
            {
                "code": m["code"],
                "name": shape.name,
                "new": shape.cell_id is None,
                "locked": shape.locked,
                "area_m2": round(area, 1),
                "perimeter_m": round(perimeter, 1),
                "polsby_popper": round(4 * math.pi * area / perimeter**2, 4) if perimeter > 0 else None,
                "pieces": int(m["pieces"]),
                "buildings": int(m["buildings"]),
                "households": households,
                "deviation": _deviation(households, low, high),
                "households_in": int(m["households_in"]),
                "households_out": int(m["households_out"]),
                "workers": int(m["workers"]),
                "lon": m["lon"],
                "lat": m["lat"],
                "south": shape.geom.extent[1],
            }
        )
    order = {code: n for n, code in enumerate(_display_order(rows), start=1)}
    figures = {}
    for row in sorted(rows, key=lambda r: order[r["code"]]):
        figures[row["code"]] = {
            **{k: v for k, v in row.items() if k not in ("lon", "lat", "south")},
            "in_range": row["deviation"] == 0,
            "order": order[row["code"]],
        }
    return figures


def checks_run(*, community: Community, shapes: Mapping[str, CellShape], cells: plans_sql.Cells) -> dict[str, Any]:
    """Run every check on `shapes` (code -> CellShape), whose SQL relation is `cells`."""
    started = time.perf_counter()
    conf = planning_settings()
    measures = plans_sql.cell_measures(
        cells=cells,
        community_id=community.pk,
        tolerance_m2=partition.partition_settings()["tolerance_m2"],
        share_min=conf["building_share_min"],
    )
    report = partition.partition_check(community=community, cells={c: s.geom for c, s in shapes.items()})
    ctx = Context(community=community, shapes=shapes, measures=measures, partition=report, conf=conf)
    ctx.cells = _cells_figures(ctx)
    problems = [p for check in CHECKS for p in check.run(ctx)]
    errors = sum(1 for p in problems if p["severity"] == "error")
    scores = [c["polsby_popper"] for c in ctx.cells.values() if c["polsby_popper"] is not None]
    totals = measures["totals"]
    return {
        "ok": errors == 0,
        "summary": {
            "cells": len(ctx.cells),
            "cells_in_range": sum(1 for c in ctx.cells.values() if c["in_range"]),
            "buildings": totals["buildings"],
            "households": totals["households"],
            "buildings_moved": totals["buildings_moved"],
            "households_moved": totals["households_moved"],
            "polsby_popper_mean": round(sum(scores) / len(scores), 4) if scores else None,
            "errors": errors,
            "warnings": len(problems) - errors,
        },
        "settings": {**conf, "tolerance_m2": partition.partition_settings()["tolerance_m2"]},
        "cells": list(ctx.cells.values()),
        "problems": problems,
        "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
    }


def plan_shapes(plan: Plan) -> dict[str, CellShape]:
    return {
        code: CellShape(code=code, name=name, geom=geom, locked=locked, cell_id=cell_id)
        for code, name, geom, locked, cell_id in PlanCell.objects.filter(plan=plan).values_list(
            "code", "name", "geom", "locked", "cell_id"
        )
    }


def today_shapes(community: Community) -> dict[str, CellShape]:
    return {
        code: CellShape(code=code, name=name, geom=geom, cell_id=cell_id)
        for code, name, geom, cell_id in GridBoundary.objects.filter(
            cell__community=community, valid__upper_inf=True
        ).values_list("cell__code", "cell__name", "geom", "cell_id")
    }


def plan_checks(*, plan: Plan) -> dict[str, Any]:
    """The live checks of a draft as it stands (its cells at the cursor)."""
    report = checks_run(community=plan.community, shapes=plan_shapes(plan), cells=plans_sql.draft_cells(plan.pk))
    return {"plan": plan.pk, "cursor": plan.cursor, **report}


def today_checks(*, community: Community) -> dict[str, Any]:
    """The same checks on the community's boundaries in force: what a draft is compared with."""
    return checks_run(
        community=community, shapes=today_shapes(community), cells=plans_sql.today_cells(community.pk)
    )
