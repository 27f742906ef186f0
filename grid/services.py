"""Every write to space goes through these functions: one transaction each, set-based SQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from django.contrib.gis.geos import GEOSGeometry, MultiPolygon, Polygon
from django.db import transaction
from django.db.backends.postgresql.psycopg_any import DateRange

from grid import sql
from grid.audit import audit_record
from grid.errors import BoundaryConflict, InvalidGeometry, UnknownUnit
from grid.models import STORAGE_SRID, GridBoundary, GridCell


@dataclass(frozen=True)
class BoundaryWriteResult:
    """What one boundary write did, per staged cell, plus the buildings that changed grid."""

    created: int = 0
    redrawn: int = 0
    corrected: int = 0
    unchanged: int = 0
    buildings_moved: int = 0
    changed_boundary_ids: list[int] = field(default_factory=list)


def as_multipolygon(geom: GEOSGeometry, *, label: str = "") -> MultiPolygon:
    """Normalise a polygonal geometry for storage: MultiPolygon, EPSG:4326, valid, not empty.

    Repair (make_valid) is the import edge's job, where it can be reported; here an invalid shape
    is refused so nothing half-right is stored.
    """
    if geom.srid not in (None, STORAGE_SRID):
        raise InvalidGeometry(
            f"{label}坐标系应为 EPSG:{STORAGE_SRID}，收到 EPSG:{geom.srid}", code="crs_mismatch"
        )
    if isinstance(geom, Polygon):
        geom = MultiPolygon(geom, srid=STORAGE_SRID)
    if not isinstance(geom, MultiPolygon):
        raise InvalidGeometry(
            f"{label}边界应为面（Polygon/MultiPolygon），收到 {geom.geom_type}", code="geometry_type"
        )
    if geom.empty:
        raise InvalidGeometry(f"{label}边界为空", code="geometry_empty")
    if not geom.valid:
        raise InvalidGeometry(f"{label}边界无效：{geom.valid_reason}", code="geometry_invalid")
    geom.srid = STORAGE_SRID
    return geom


@transaction.atomic
def grid_boundaries_set(
    *, shapes: Mapping[int, GEOSGeometry], valid_from: date, note: str = ""
) -> BoundaryWriteResult:
    """Make `shapes` (grid cell id -> boundary) the boundaries in force from `valid_from` on.

    The previous version of each redrawn cell stays queryable, closed the day before. Buildings of
    the touched communities are reassigned in the same transaction, so no reader ever sees a
    building in a grid whose boundary no longer holds it.
    """
    if not shapes:
        return BoundaryWriteResult()
    cells = {
        c.id: c
        for c in GridCell.objects.select_for_update()
        .filter(id__in=list(shapes))
        .only("id", "code", "community_id")
    }
    missing = sorted(set(shapes) - set(cells))
    if missing:
        raise UnknownUnit(f"网格不存在：{missing[:10]}", detail={"missing": missing})
    rows = []
    for cell_id, geom in shapes.items():
        rows.append((cell_id, as_multipolygon(geom, label=f"网格 {cells[cell_id].code} ").ewkt))

    sql.create_boundary_stage()
    sql.copy_rows("boundary_stage", ["cell_id", "geom"], rows)
    later = sql.stage_cells_with_later_versions(valid_from=valid_from)
    if later:
        raise BoundaryConflict(
            f"以下网格已有晚于 {valid_from} 生效的边界版本，不能改写：{'、'.join(later[:10])}",
            detail={"cells": later},
        )
    applied = sql.apply_boundary_stage(valid_from=valid_from, note=note)
    changed_ids: list[int] = applied["changed_boundary_ids"]  # type: ignore[assignment]
    sql.rebuild_boundary_parts(changed_ids)

    community_ids = sorted({cells[cid].community_id for cid in shapes})
    moved = sql.assign_buildings_to_grids(community_ids) if changed_ids else 0
    if changed_ids:
        sql.bump_data_versions(community_ids)
        audit_record(
            action="update",
            object_type="grid.GridBoundary",
            object_id=",".join(sorted(cells[cid].code for cid in shapes))[:64],
            summary=f"网格边界自 {valid_from} 起生效：新建 {applied['created']}，重绘 {applied['redrawn']}，"
            f"更正 {applied['corrected']}，楼栋变更网格 {moved}",
            changes={
                "cells": sorted(cells[cid].code for cid in shapes),
                "valid_from": valid_from.isoformat(),
                "note": note,
            },
        )
    return BoundaryWriteResult(
        created=int(applied["created"]),  # type: ignore[call-overload]
        redrawn=int(applied["redrawn"]),  # type: ignore[call-overload]
        corrected=int(applied["corrected"]),  # type: ignore[call-overload]
        unchanged=int(applied["unchanged"]),  # type: ignore[call-overload]
        buildings_moved=moved,
        changed_boundary_ids=changed_ids,
    )


def grid_boundary_set(
    *, cell: GridCell, geom: GEOSGeometry, valid_from: date, note: str = ""
) -> GridBoundary:
    """Redraw one grid cell from `valid_from` on; returns the version now in force."""
    grid_boundaries_set(shapes={cell.id: geom}, valid_from=valid_from, note=note)
    return GridBoundary.objects.get(cell=cell, valid__upper_inf=True)


@transaction.atomic
def grid_cell_retire(*, cell: GridCell, valid_to: date) -> None:
    """End a grid cell on `valid_to` (merged into neighbours, say). Its history stays queryable."""
    current = GridBoundary.objects.select_for_update().filter(cell=cell, valid__upper_inf=True).first()
    if current is None:
        raise BoundaryConflict(f"网格 {cell.code} 没有现行边界")
    if current.valid.lower >= valid_to:
        raise BoundaryConflict(
            f"网格 {cell.code} 的现行边界自 {current.valid.lower} 起生效，撤销日期必须更晚"
        )
    current.valid = DateRange(current.valid.lower, valid_to, "[)")
    current.save(update_fields=["valid"])
    sql.assign_buildings_to_grids([cell.community_id])
    sql.bump_data_versions([cell.community_id])
    audit_record(
        action="update",
        object_type="grid.GridCell",
        object_id=cell.code,
        summary=f"网格 {cell.code} 自 {valid_to} 起撤销",
        changes={"valid_to": valid_to.isoformat()},
    )


@transaction.atomic
def buildings_reassign(*, community_ids: Sequence[int] | None = None) -> int:
    """Recompute every building's grid in these communities (all when None). Idempotent."""
    moved = sql.assign_buildings_to_grids(community_ids)
    if moved and community_ids:
        sql.bump_data_versions(community_ids)
    return moved
