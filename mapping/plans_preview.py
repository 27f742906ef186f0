"""What a draft would change, before it is applied: people and organisations, not area shares.

`plan_preview` answers, for a draft as it stands:
- which buildings move from which cell to which, with their households and the party members
  living there, summed per (from, to) flow with the grid workers of both cells (who hands over
  to whom); the building groups (楼栋党小组) concerned and whether
  they end up split; the enterprises whose cell changes; the open gaps whose subject moves
  (mapping.plans_sql.impact, one statement);
- the fate of today's cells: kept (reshaped or not), retired (their grid branch loses its grid,
  their workers their cell: to be re-attached), and the draft's new cells (no branch, no worker
  yet); the cells that take over a retired cell's area, whose branch gains it;
- the gaps the redraw would open and resolve: a dry run of the gap computation on the draft
  (`gaps_dry_run`);
- the boundaries before and after, as GeoJSON.

The dry run. The gap statements (mapping.sql) read the boundaries in force and the buildings'
cells from the live tables. Rather than a second copy of thirteen statements that read a draft,
the draft is written into the live tables inside a savepoint (mapping.plans_sql.draft_into_live,
then the grid service's own building assignment), the real recompute runs there, and what it
opened and resolved is read back before the savepoint is rolled back. Nothing of it survives:
other transactions never see the rows (they are never committed), and the rollback undoes the
boundaries, the buildings' cells and the gap rows alike. The recompute's advisory lock makes a
preview wait for a running recompute of the community, as a second recompute would.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.gis.db.models.functions import AsGeoJSON
from django.db import transaction

from grid import partition
from grid import sql as grid_sql
from grid.models import GridCell
from mapping import plans_sql
from mapping.models import Gap
from mapping.plans import plan_is_stale
from mapping.plans_checks import plan_checks, today_checks
from mapping.plans_models import Plan
from mapping.services import gaps_recompute


def _gap_rows(qs: Any) -> list[dict[str, Any]]:
    rows = qs.annotate(geometry=AsGeoJSON("geom", precision=plans_sql.GEOJSON_DIGITS)).values(
        "kind", "subject_type", "subject_id", "subject_code", "subject_label", "grid_cell__code", "geometry"
    )
    return [
        {
            "kind": r["kind"],
            "kind_label": Gap.Kind(r["kind"]).label,
            "subject_type": r["subject_type"],
            "subject_id": r["subject_id"],
            "subject_code": r["subject_code"],
            "subject_label": r["subject_label"],
            "cell": r["grid_cell__code"],
            "geometry": json.loads(r["geometry"]),
        }
        for r in rows.order_by("kind", "subject_type", "subject_id")
    ]


def gaps_dry_run(*, plan: Plan) -> dict[str, list[dict[str, Any]]]:
    """The gaps a recompute would open and resolve if the draft were in force (module docstring).
    A gap of a subject whose id the dry run made up (a new cell) is named by its code only."""
    community_id = plan.community_id
    codes = set(plan.cells.values_list("code", flat=True))
    new_codes = codes - set(GridCell.objects.filter(code__in=codes).values_list("code", flat=True))
    open_before = set(
        Gap.objects.filter(community_id=community_id, resolved_at__isnull=True).values_list("id", flat=True)
    )
    with transaction.atomic():
        plans_sql.draft_into_live(plan_id=plan.pk, community_id=community_id)
        grid_sql.assign_buildings_to_grids([community_id])
        gaps_recompute(community_ids=[community_id])
        opened = _gap_rows(
            Gap.objects.filter(community_id=community_id, resolved_at__isnull=True).exclude(id__in=open_before)
        )
        resolved = _gap_rows(Gap.objects.filter(id__in=open_before, resolved_at__isnull=False))
        transaction.set_rollback(True)
    for gap in opened:
        if gap["subject_type"] == Gap.SUBJECT_GRID_CELL and gap["subject_code"] in new_codes:
            gap["subject_id"] = None
    return {"opened": opened, "resolved": resolved}


def _cell_fates(plan: Plan, today: list[dict[str, Any]], cells: plans_sql.Cells) -> dict[str, Any]:
    """Branches and workers by the fate of their cell."""
    retired = [c for c in today if not c["kept"]]
    takers = plans_sql.takers_of(
        cells=cells, community_id=plan.community_id, codes=[c["code"] for c in retired],
        tolerance_m2=partition.partition_settings()["tolerance_m2"],
    )
    branches = []
    for c in today:
        if c["branch"] is None:
            continue
        if not c["kept"]:
            status = "loses_grid"
        elif any(c["code"] in t for t in takers.values()):
            status = "gains_territory"
        else:
            continue
        branches.append({**c["branch"], "cell": c["code"], "status": status,
                         "takes_from": sorted(r for r, t in takers.items() if c["code"] in t)})
    workers = [
        {**w, "cell": c["code"], "status": "cell_retired", "area_goes_to": takers.get(c["code"], [])}
        for c in retired
        for w in c["workers"]
    ]
    return {
        "retired": [{"code": c["code"], "area_goes_to": takers.get(c["code"], [])} for c in retired],
        "branches": branches,
        "workers": workers,
        "cells_without_branch": sorted(c["code"] for c in today if c["kept"] and c["branch"] is None),
    }


def plan_preview(*, plan: Plan) -> dict[str, Any]:
    """The impact of applying the draft now (module docstring). Reads only; the dry run rolls back."""
    cells = plans_sql.draft_cells(plan.pk)
    moved = plans_sql.impact(cells=cells, community_id=plan.community_id)
    fates = _cell_fates(plan, moved["today_cells"], cells)
    changed = plans_sql.changed_codes(cells=cells, community_id=plan.community_id)
    # Who hands over to whom: the active workers of each flow's cell today and of the cell it
    # goes to (a new cell has none yet).
    workers = {c["code"]: c["workers"] for c in moved["today_cells"]}
    flows = [
        {**f, "workers_from": workers.get(f["from"], []), "workers_to": workers.get(f["to"], [])}
        for f in moved["flows"]
    ]
    return {
        "plan": plan.pk,
        "cursor": plan.cursor,
        "stale": plan_is_stale(plan),
        "summary": {
            "buildings_moved": len(moved["buildings"]),
            "households_moved": sum(int(f["households"]) for f in flows),
            "members_moved": sum(int(f["members"]) for f in flows),
            "enterprises_moved": len(moved["enterprises"]),
            "groups_concerned": len(moved["groups"]),
            "groups_split": sum(1 for g in moved["groups"] if g["split"]),
            "open_gaps_moving": len(moved["gaps"]),
            "cells_created": len(moved["new_cells"]),
            "cells_retired": len(fates["retired"]),
            "cells_reshaped": len(changed),
        },
        "flows": flows,
        "buildings": moved["buildings"],
        "groups": moved["groups"],
        "enterprises": moved["enterprises"],
        "open_gaps_moving": moved["gaps"],
        "created": moved["new_cells"],
        "reshaped": changed,
        **fates,
        "gaps": gaps_dry_run(plan=plan),
        "before": plans_sql.cells_geojson(plans_sql.today_cells(plan.community_id)),
        "after": plans_sql.cells_geojson(cells),
    }


def _side(report: dict[str, Any]) -> dict[str, Any]:
    return {"summary": report["summary"], "cells": {c["code"]: c for c in report["cells"]}}


def plans_compare(*, plan: Plan, other: Plan | None) -> dict[str, Any]:
    """Two drafts of one community side by side (`other` None: today's grid): per cell code its
    area and households in each and the differences, and the check scores of each."""
    left = _side(plan_checks(plan=plan))
    right = _side(plan_checks(plan=other) if other is not None else today_checks(community=plan.community))
    rows = []
    for code in sorted(set(left["cells"]) | set(right["cells"])):
        a, b = left["cells"].get(code), right["cells"].get(code)
        rows.append(
            {
                "code": code,
                "area_m2": [a and a["area_m2"], b and b["area_m2"]],
                "households": [a and a["households"], b and b["households"]],
                "area_m2_difference": round((a["area_m2"] if a else 0) - (b["area_m2"] if b else 0), 1),
                "households_difference": (a["households"] if a else 0) - (b["households"] if b else 0),
                "in": [a is not None, b is not None],
            }
        )
    return {
        "plans": [plan.pk, other.pk if other is not None else None],
        "names": [plan.name, other.name if other is not None else "现行网格"],
        "scores": [left["summary"], right["summary"]],
        "cells": rows,
    }
