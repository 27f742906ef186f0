"""Every write to space goes through these functions: one transaction each, with its audit row.

Units (streets, communities, grid cells, buildings, service centres) are created, updated and
deleted here and nowhere else: the admin calls these functions, the importer writes the same rules
set-based (grid.importers). Each write:

- checks the values by the model's own field rules, the code conventions (a unit's code starts
  with its parent's: `code_parent_check`) and, for outlines, the partition of the community
  (grid.partition), raising a GridError with a stable code and a Chinese message;
- writes with `save(update_fields=...)` and its audit row in the same transaction
  (grid.audit.audited_update for updates);
- says which communities changed (grid.changes.communities_changed), with outlines=True when a
  community's outline moved, so caches and what is placed by the outline follow in the same commit.

Each `*_check` function holds the rules of one kind of write without writing; the write calls it
under its lock, and a form may call it first to show a refusal next to the field.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, TypeVar

from django.contrib.gis.geos import GEOSGeometry, MultiPolygon, Point, Polygon
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.backends.postgresql.psycopg_any import DateRange
from django.db.models import ProtectedError, RestrictedError

from grid import partition, sql
from grid.audit import audit_record, audit_value, audited_update, same_value
from grid.changes import communities_changed
from grid.errors import (
    BoundaryConflict,
    CodeParentMismatch,
    GridError,
    InvalidGeometry,
    PartitionInvalid,
    UnknownUnit,
)
from grid.models import (
    PARENT_CODE_LENGTH,
    STORAGE_SRID,
    Building,
    Community,
    GridBoundary,
    GridCell,
    ServiceCentre,
    Street,
)

# --------------------------------------------------------------------------------------------
# Shared checks
# --------------------------------------------------------------------------------------------


def _geometry_common(geom: GEOSGeometry, label: str) -> None:
    if geom.srid not in (None, STORAGE_SRID):
        raise InvalidGeometry(
            f"{label}坐标系应为 EPSG:{STORAGE_SRID}，收到 EPSG:{geom.srid}", code="crs_mismatch"
        )
    if geom.empty:
        raise InvalidGeometry(f"{label}边界为空", code="geometry_empty")


G = TypeVar("G", bound=GEOSGeometry)


def _geometry_valid(geom: G, label: str) -> G:
    if not geom.valid:
        raise InvalidGeometry(f"{label}边界无效：{geom.valid_reason}", code="geometry_invalid")
    geom.srid = STORAGE_SRID
    return geom


def as_multipolygon(geom: GEOSGeometry, *, label: str = "") -> MultiPolygon:
    """Normalise a polygonal geometry for storage: MultiPolygon, EPSG:4326, valid, not empty.

    Repair (make_valid) is the import edge's job, where it can be reported; here an invalid shape
    is refused so nothing half-right is stored.
    """
    _geometry_common(geom, label)
    if isinstance(geom, Polygon):
        geom = MultiPolygon(geom, srid=geom.srid)
    if not isinstance(geom, MultiPolygon):
        raise InvalidGeometry(
            f"{label}边界应为面（Polygon/MultiPolygon），收到 {geom.geom_type}", code="geometry_type"
        )
    return _geometry_valid(geom, label)


def as_polygon(geom: GEOSGeometry, *, label: str = "") -> Polygon:
    """A building footprint: one polygon (a one-part MultiPolygon is taken), valid, EPSG:4326."""
    _geometry_common(geom, label)
    if isinstance(geom, MultiPolygon) and len(geom) == 1:
        geom = Polygon(*geom[0], srid=geom.srid)
    if not isinstance(geom, Polygon):
        raise InvalidGeometry(f"{label}轮廓应为单个面（Polygon），收到 {geom.geom_type}", code="geometry_type")
    return _geometry_valid(geom, label)


def as_point(geom: GEOSGeometry, *, label: str = "") -> Point:
    _geometry_common(geom, label)
    if not isinstance(geom, Point):
        raise InvalidGeometry(f"{label}位置应为点（Point），收到 {geom.geom_type}", code="geometry_type")
    return _geometry_valid(geom, label)


def _fields_check(model: type[models.Model], values: Mapping[str, Any]) -> None:
    """The model's own field rules (code formats, lengths, choices, minimums) as a GridError."""
    names = set(values) - {"geom"}
    try:
        model(**{k: v for k, v in values.items() if k in names}).clean_fields(
            exclude=[f.name for f in model._meta.fields if f.name not in names]
        )
    except ValidationError as exc:
        name, errors = next(iter(exc.error_dict.items()))
        error = errors[0]
        label = getattr(model._meta.get_field(name), "verbose_name", name)
        raise GridError(
            f"{label}：{error.messages[0]}", code=error.code or "value_invalid", detail={"field": name}
        ) from exc


def _fields_known(changes: Mapping[str, Any], allowed: Collection[str], what: str) -> None:
    unknown = sorted(set(changes) - set(allowed))
    if unknown:
        raise GridError(f"{what}不能修改字段：{'、'.join(unknown)}", code="field_unknown")


def _code_free(model: type[models.Model], code: str, stored: Any) -> None:
    """The code is no other unit's (`stored`: the unit being changed, None when creating)."""
    if stored is not None and stored.code == code:
        return
    if model._default_manager.filter(code=code).exclude(pk=stored.pk if stored else None).exists():
        label = model._meta.verbose_name
        raise GridError(f"{label}编码 {code} 已存在", code="code_taken", detail={"field": "code"})


def code_parent_check(*, level: str, code: str, parent_code: str, parent_label: str) -> None:
    """A unit's code starts with its parent's (grid.models.PARENT_CODE_LENGTH): the rule by which
    the importer finds the parent, refused here on every other path."""
    if code[: PARENT_CODE_LENGTH[level]] != parent_code:
        raise CodeParentMismatch(
            f"编码 {code} 应以所属{parent_label}的编码 {parent_code} 开头",
            detail={"field": "code", "code": code, "parent_code": parent_code},
        )


def _children_keep_prefix(*, old_code: str, new_code: str, children: models.QuerySet, what: str) -> None:
    if new_code != old_code and children.exists():
        raise CodeParentMismatch(
            f"{what}下已有下级单元，其编码以 {old_code} 开头：不能把编码改为 {new_code}",
            detail={"field": "code", "code": new_code, "parent_code": old_code},
        )


def _audit_created(obj: models.Model, fields: Sequence[str], summary: str, street_id: int | None) -> None:
    audit_record(
        action="create",
        object_type=obj._meta.label,
        object_id=obj.pk,
        summary=summary,
        changes={name: audit_value(getattr(obj, name)) for name in fields},
        street_id=street_id,
    )


def _delete(obj: models.Model, *, summary: str, street_id: int | None) -> None:
    """Delete one unit with its audit row; a unit others still point at is refused, not cascaded."""
    snapshot = {"code": getattr(obj, "code", ""), "name": getattr(obj, "name", "")}
    pk = obj.pk
    try:
        obj.delete()
    except (ProtectedError, RestrictedError) as exc:
        # Raised by the collector before any row is deleted: nothing to undo.
        used_by = sorted({o._meta.verbose_name for o in exc.args[1]})[:5]
        raise GridError(
            f"{obj._meta.verbose_name}“{snapshot['name']}”仍被{'、'.join(map(str, used_by))}引用，不能删除",
            code="unit_in_use",
        ) from exc
    audit_record(
        action="delete",
        object_type=obj._meta.label,
        object_id=pk,
        summary=summary,
        changes=snapshot,
        street_id=street_id,
    )


# --------------------------------------------------------------------------------------------
# 街道
# --------------------------------------------------------------------------------------------

STREET_FIELDS = frozenset({"code", "name", "district_adcode", "geom"})


def street_check(*, street: Street | None, code: str, district_adcode: str) -> None:
    """A street's code: free, starting with its district's adcode, fixed once communities hang on it."""
    _code_free(Street, code, street)
    code_parent_check(level="street", code=code, parent_code=district_adcode, parent_label="区县")
    if street is not None:
        _children_keep_prefix(
            old_code=street.code, new_code=code, children=street.communities.all(), what="街道"
        )


@transaction.atomic
def street_create(*, code: str, name: str, geom: GEOSGeometry, district_adcode: str | None = None) -> Street:
    adcode = code[: PARENT_CODE_LENGTH["street"]] if district_adcode is None else district_adcode
    _fields_check(Street, {"code": code, "name": name, "district_adcode": adcode})
    street_check(street=None, code=code, district_adcode=adcode)
    street = Street(code=code, name=name, district_adcode=adcode, geom=as_multipolygon(geom, label="街道"))
    street.save()
    _audit_created(street, ["code", "name", "district_adcode"], f"新增街道“{name}”（{code}）", street.pk)
    return street


@transaction.atomic
def street_update(*, street: Street, **changes: Any) -> Street:
    """Change a street's fields (STREET_FIELDS); a street's outline places nothing, so no community
    is told."""
    _fields_known(changes, STREET_FIELDS, "街道")
    locked = Street.objects.select_for_update().get(pk=street.pk)
    values = {name: changes.get(name, getattr(locked, name)) for name in STREET_FIELDS}
    _fields_check(Street, {k: v for k, v in changes.items() if k != "geom"})
    if "geom" in changes:
        changes["geom"] = as_multipolygon(changes["geom"], label="街道")
    street_check(street=locked, code=values["code"], district_adcode=values["district_adcode"])
    audited_update(
        locked, fields=changes, summary=f"修改街道“{values['name']}”（{values['code']}）", street_id=locked.pk
    )
    return locked


@transaction.atomic
def street_delete(*, street: Street) -> None:
    _delete(street, summary=f"删除街道“{street.name}”（{street.code}）", street_id=None)


# --------------------------------------------------------------------------------------------
# 社区
# --------------------------------------------------------------------------------------------

COMMUNITY_FIELDS = frozenset({"code", "street", "name", "residents", "geom"})


def communities_partition_check(
    *, community_ids: Collection[int], outlines: Mapping[int, GEOSGeometry] | None = None
) -> None:
    """Refuse community outlines (`outlines`, else the stored ones) that leave part of a current
    grid cell outside (grid_outside_community). Gaps and overlaps among the cells are the cells'
    business: an outline edit neither causes nor mends them."""
    outlines = outlines or {}
    cells: dict[int, dict[str, GEOSGeometry]] = {}
    for community_id, code, geom in GridBoundary.objects.filter(
        cell__community_id__in=list(community_ids), valid__upper_inf=True
    ).values_list("cell__community_id", "cell__code", "geom"):
        cells.setdefault(community_id, {})[code] = geom
    if not cells:
        return
    blocking: list[partition.PartitionProblem] = []
    for community in Community.objects.filter(pk__in=list(cells)).only("id", "code", "name", "geom"):
        report = partition.partition_check(
            community=community, cells=cells[community.pk], outline=outlines.get(community.pk)
        )
        blocking += [p for p in report.errors if p.code == partition.OUTSIDE]
    _refuse(blocking)


def _refuse(problems: Sequence[partition.PartitionProblem]) -> None:
    if not problems:
        return
    shown = "；".join(p.message for p in problems[:5])
    more = f"；等共 {len(problems)} 处" if len(problems) > 5 else ""
    raise PartitionInvalid(
        f"{shown}{more}", code=problems[0].code, detail={"problems": [p.as_dict() for p in problems]}
    )


def community_check(
    *, community: Community | None, code: str, street: Street, geom: GEOSGeometry | None = None
) -> None:
    """A community's code: free, starting with its street's, fixed once grid cells hang on it; an
    outline (`geom`, when it is being set) must still hold every current grid cell."""
    _code_free(Community, code, community)
    code_parent_check(level="community", code=code, parent_code=street.code, parent_label="街道")
    if community is not None:
        _children_keep_prefix(
            old_code=community.code, new_code=code, children=community.grid_cells.all(), what="社区"
        )
        if geom is not None and not same_value(community.geom, geom):
            communities_partition_check(community_ids=[community.pk], outlines={community.pk: geom})


@transaction.atomic
def community_create(
    *, code: str, street: Street, name: str, geom: GEOSGeometry, residents: int = 0
) -> Community:
    _fields_check(Community, {"code": code, "street": street, "name": name, "residents": residents})
    community_check(community=None, code=code, street=street)
    community = Community(
        code=code, street=street, name=name, residents=residents, geom=as_multipolygon(geom, label="社区")
    )
    community.save()
    _audit_created(
        community, ["code", "street", "name", "residents"], f"新增社区“{name}”（{code}）", street.pk
    )
    # A new outline takes in what lies inside it (enterprises by their point): outlines=True.
    communities_changed([community.pk], outlines=True)
    return community


@transaction.atomic
def community_update(*, community: Community, **changes: Any) -> Community:
    """Change a community's fields (COMMUNITY_FIELDS). A new outline must hold its grid cells."""
    _fields_known(changes, COMMUNITY_FIELDS, "社区")
    locked = Community.objects.select_for_update(of=("self",)).select_related("street").get(pk=community.pk)
    values = {name: changes.get(name, getattr(locked, name)) for name in COMMUNITY_FIELDS}
    _fields_check(Community, {k: v for k, v in changes.items() if k != "geom"})
    if "geom" in changes:
        changes["geom"] = as_multipolygon(changes["geom"], label="社区")
    community_check(community=locked, code=values["code"], street=values["street"], geom=changes.get("geom"))
    old_street_id = locked.street_id
    diff = audited_update(
        locked,
        fields=changes,
        summary=f"修改社区“{values['name']}”（{values['code']}）",
        street_id=values["street"].pk,
    )
    if diff:
        communities_changed([locked.pk], outlines="geom" in diff)
        if "street" in diff:
            # The old street's administrators lose sight of it: their log says where it went.
            audit_record(
                action="update",
                object_type=Community._meta.label,
                object_id=locked.pk,
                summary=f"社区“{locked.name}”（{locked.code}）移出本街道",
                changes={"street": diff["street"]},
                street_id=old_street_id,
            )
    return locked


@transaction.atomic
def community_delete(*, community: Community) -> None:
    pk = community.pk
    _delete(community, summary=f"删除社区“{community.name}”（{community.code}）", street_id=community.street_id)
    # Its outline is gone: the map's per-tile community sets must forget it now, not on expiry.
    communities_changed([pk], outlines=True)


# --------------------------------------------------------------------------------------------
# 网格 (identity and attributes; the shape is versioned below)
# --------------------------------------------------------------------------------------------

GRID_CELL_FIELDS = frozenset({"name", "responsible_body"})


def grid_cell_check(*, cell: GridCell | None, code: str, community: Community) -> None:
    """A grid's code: free and starting with its community's code."""
    _code_free(GridCell, code, cell)
    code_parent_check(level="grid", code=code, parent_code=community.code, parent_label="社区")


@transaction.atomic
def grid_cell_create(*, code: str, community: Community, name: str, responsible_body: str = "") -> GridCell:
    """A new grid cell, without a shape: its first boundary is a version (grid_boundaries_set)."""
    values = {"code": code, "community": community, "name": name, "responsible_body": responsible_body}
    _fields_check(GridCell, values)
    grid_cell_check(cell=None, code=code, community=community)
    cell = GridCell(**values)
    cell.save()
    _audit_created(cell, list(values), f"新增网格“{name}”（{code}）", community.street_id)
    communities_changed([community.pk])
    return cell


@transaction.atomic
def grid_cell_update(*, cell: GridCell, **changes: Any) -> GridCell:
    """Rename a grid or change its responsible body. The code is its identity across redraws and its
    community holds its buildings: both are fixed once it exists."""
    if {"code", "community"} & set(changes):
        raise GridError("网格编码和所属社区在网格建立后不能修改", code="field_readonly")
    _fields_known(changes, GRID_CELL_FIELDS, "网格")
    locked = GridCell.objects.select_for_update().select_related("community").get(pk=cell.pk)
    _fields_check(GridCell, changes)
    diff = audited_update(
        locked,
        fields=changes,
        summary=f"修改网格“{changes.get('name', locked.name)}”（{locked.code}）",
        street_id=locked.community.street_id,
    )
    if diff:
        communities_changed([locked.community_id])
    return locked


# --------------------------------------------------------------------------------------------
# 网格边界 (versioned shapes)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoundaryWriteResult:
    """What one boundary write did, per staged cell, plus the buildings that changed grid.

    `warnings`: partition findings that do not refuse the write, above all the parts of a community
    no cell covers (community_not_covered), and errors among cells the write did not change."""

    created: int = 0
    redrawn: int = 0
    corrected: int = 0
    unchanged: int = 0
    buildings_moved: int = 0
    changed_boundary_ids: list[int] = field(default_factory=list)
    warnings: list[partition.PartitionProblem] = field(default_factory=list)


@dataclass(frozen=True)
class BoundaryCheck:
    """A boundary write that passed every check: the cells, their shapes ready for storage."""

    cells: dict[int, GridCell]
    shapes: dict[int, MultiPolygon]
    warnings: list[partition.PartitionProblem]


def grid_boundaries_check(
    *, shapes: Mapping[int, GEOSGeometry], valid_from: date, lock: bool = False
) -> BoundaryCheck:
    """Everything grid_boundaries_set refuses, without writing (a form calls it to show the refusal).

    In order: unknown cells (unit_unknown), shapes (geometry_*), a later version already written
    (boundary_conflict), then the partition of each community touched (grid.partition): the staged
    shapes together with the neighbours' versions in force from `valid_from` on, checked as one set
    so that a whole community imported at once is judged as a whole. Refused: a changed cell that
    leaves its community or overlaps another cell (PartitionInvalid, code grid_outside_community or
    grid_overlap). A neighbour version starting later is checked on its own start date too.
    """
    cells_qs = GridCell.objects.select_for_update() if lock else GridCell.objects.all()
    cells = {c.id: c for c in cells_qs.filter(id__in=list(shapes)).only("id", "code", "community_id")}
    missing = sorted(set(shapes) - set(cells))
    if missing:
        raise UnknownUnit(f"网格不存在：{missing[:10]}", detail={"missing": missing})
    staged = {cid: as_multipolygon(geom, label=f"网格 {cells[cid].code} ") for cid, geom in shapes.items()}
    later = sorted(
        GridBoundary.objects.filter(
            cell_id__in=list(staged), valid__upper_inf=True, valid__startswith__gt=valid_from
        ).values_list("cell__code", flat=True)
    )
    if later:
        raise BoundaryConflict(
            f"以下网格已有晚于 {valid_from} 生效的边界版本，不能改写：{'、'.join(later[:10])}",
            detail={"cells": later},
        )
    warnings = _partition_of_write(cells, staged, valid_from)
    return BoundaryCheck(cells=cells, shapes=staged, warnings=warnings)


def _partition_of_write(
    cells: Mapping[int, GridCell], staged: Mapping[int, MultiPolygon], valid_from: date
) -> list[partition.PartitionProblem]:
    """Check the partitions a write leaves (see grid_boundaries_check); return the non-refusals."""
    community_ids = {c.community_id for c in cells.values()}
    new: dict[int, dict[str, GEOSGeometry]] = {cid: {} for cid in community_ids}
    for cell_id, geom in staged.items():
        new[cells[cell_id].community_id][cells[cell_id].code] = geom
    # Every version in force on or after valid_from in these communities: the staged cells' current
    # ones (to tell a changed shape from a re-sent one) and the neighbours'.
    versions = GridBoundary.objects.filter(
        cell__community_id__in=community_ids, valid__overlap=DateRange(valid_from, None, "[)")
    ).values_list("cell_id", "cell__code", "cell__community_id", "valid", "geom")
    neighbours: dict[int, list[tuple[str, DateRange, GEOSGeometry]]] = {cid: [] for cid in community_ids}
    changed: set[str] = {cells[cid].code for cid in staged}
    for cell_id, code, community_id, valid, geom in versions:
        if cell_id in staged:
            if valid.upper_inf and geom.equals(staged[cell_id]):
                changed.discard(code)
        else:
            neighbours[community_id].append((code, valid, geom))

    refused: list[partition.PartitionProblem] = []
    kept: list[partition.PartitionProblem] = []
    for community in Community.objects.filter(pk__in=community_ids).only("id", "code", "name", "geom"):
        mine = neighbours[community.pk]
        days = sorted({valid_from} | {v.lower for _, v, _ in mine if v.lower > valid_from})
        for day in days:
            in_force = {
                code: geom for code, v, geom in mine if v.lower <= day and (v.upper is None or day < v.upper)
            }
            report = partition.partition_check(community=community, cells={**in_force, **new[community.pk]})
            blocking = report.blocking(changed)
            if day != valid_from:
                blocking = [replace(p, message=f"自 {day} 起：{p.message}") for p in blocking]
            refused += blocking
            if day == valid_from:
                kept += [p for p in report.problems if p not in blocking]
    _refuse(refused)
    return kept


@transaction.atomic
def grid_boundaries_set(
    *, shapes: Mapping[int, GEOSGeometry], valid_from: date, note: str = ""
) -> BoundaryWriteResult:
    """Make `shapes` (grid cell id -> boundary) the boundaries in force from `valid_from` on.

    The one writer of grid boundaries (admin, import, demo, planners). Refused as
    grid_boundaries_check says, with nothing written. The previous version of each redrawn cell
    stays queryable, closed the day before. Buildings of the touched communities are reassigned in
    the same transaction, so no reader ever sees a building in a grid whose boundary no longer
    holds it.
    """
    if not shapes:
        return BoundaryWriteResult()
    checked = grid_boundaries_check(shapes=shapes, valid_from=valid_from, lock=True)
    cells = checked.cells
    sql.create_boundary_stage()
    sql.copy_rows("boundary_stage", ["cell_id", "geom"], [(cid, g.ewkt) for cid, g in checked.shapes.items()])
    applied = sql.apply_boundary_stage(valid_from=valid_from, note=note)
    changed_ids: list[int] = applied["changed_boundary_ids"]  # type: ignore[assignment]
    sql.rebuild_boundary_parts(changed_ids)

    community_ids = sorted({cells[cid].community_id for cid in shapes})
    moved = sql.assign_buildings_to_grids(community_ids) if changed_ids else 0
    if changed_ids:
        communities_changed(community_ids)
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
                "warnings": [p.code for p in checked.warnings],
            },
        )
    return BoundaryWriteResult(
        created=int(applied["created"]),  # type: ignore[call-overload]
        redrawn=int(applied["redrawn"]),  # type: ignore[call-overload]
        corrected=int(applied["corrected"]),  # type: ignore[call-overload]
        unchanged=int(applied["unchanged"]),  # type: ignore[call-overload]
        buildings_moved=moved,
        changed_boundary_ids=changed_ids,
        warnings=checked.warnings,
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
    communities_changed([cell.community_id])
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
        communities_changed(community_ids)
    return moved


# --------------------------------------------------------------------------------------------
# 楼栋
# --------------------------------------------------------------------------------------------

BUILDING_FIELDS = frozenset({"code", "name", "address", "kind", "community", "households", "floors", "geom"})


def building_check(*, building: Building | None, code: str) -> None:
    """A building's code is free-form (letters, digits; the demo uses its community's code plus a
    sequence, surveys their own numbers): it must only be free."""
    _code_free(Building, code, building)


@transaction.atomic
def building_create(
    *,
    code: str,
    name: str,
    community: Community,
    geom: GEOSGeometry,
    address: str = "",
    kind: str = Building.Kind.RESIDENTIAL,
    households: int = 0,
    floors: int = 1,
) -> Building:
    """A new building, assigned to the grid holding most of its footprint in the same transaction."""
    values = {
        "code": code,
        "name": name,
        "community": community,
        "address": address,
        "kind": kind,
        "households": households,
        "floors": floors,
    }
    _fields_check(Building, values)
    building_check(building=None, code=code)
    building = Building(**values, geom=as_polygon(geom, label="楼栋"))
    building.save()
    sql.assign_buildings_to_grids([community.pk])
    _audit_created(building, list(values), f"新增楼栋“{name}”（{code}）", community.street_id)
    communities_changed([community.pk])
    building.refresh_from_db()  # the grid and the point are the database's
    return building


@transaction.atomic
def building_update(*, building: Building, **changes: Any) -> Building:
    """Change a building (BUILDING_FIELDS); a new footprint or community re-runs the grid assignment."""
    _fields_known(changes, BUILDING_FIELDS, "楼栋")
    locked = Building.objects.select_for_update().get(pk=building.pk)
    _fields_check(Building, {k: v for k, v in changes.items() if k != "geom"})
    if "geom" in changes:
        changes["geom"] = as_polygon(changes["geom"], label="楼栋")
    building_check(building=locked, code=changes.get("code", locked.code))
    old_community_id = locked.community_id
    community = changes.get("community", locked.community)
    diff = audited_update(
        locked,
        fields=changes,
        summary=f"修改楼栋“{changes.get('name', locked.name)}”（{changes.get('code', locked.code)}）",
        street_id=community.street_id,
    )
    if diff:
        touched = sorted({old_community_id, community.pk})
        if {"geom", "community"} & set(diff):
            sql.assign_buildings_to_grids(touched)
        communities_changed(touched)
        locked.refresh_from_db()
    return locked


@transaction.atomic
def building_delete(*, building: Building) -> None:
    community_id = building.community_id
    _delete(
        building,
        summary=f"删除楼栋“{building.name}”（{building.code}）",
        street_id=Community.objects.filter(pk=community_id).values_list("street_id", flat=True).first(),
    )
    communities_changed([community_id])


# --------------------------------------------------------------------------------------------
# 党群服务中心
# --------------------------------------------------------------------------------------------

SERVICE_CENTRE_FIELDS = frozenset(
    {"code", "name", "level", "street", "community", "address", "service_radius_m", "geom"}
)


def service_centre_check(
    *, centre: ServiceCentre | None, code: str, level: str, street: Street, community: Community | None
) -> None:
    """A centre's code is free-form and free; its community, when it has one, lies in its street;
    below street level it must have one (as the importer links them)."""
    _code_free(ServiceCentre, code, centre)
    if community is None and level != ServiceCentre.Level.STREET:
        raise GridError(
            "社区级党群服务中心和网格/小区服务站须属于某个社区",
            code="centre_community_required",
            detail={"field": "community"},
        )
    if community is not None and community.street_id != street.pk:
        raise GridError(
            f"社区 {community.code} 不属于街道 {street.code}",
            code="community_not_in_street",
            detail={"field": "community"},
        )


@transaction.atomic
def service_centre_create(
    *,
    code: str,
    name: str,
    level: str,
    street: Street,
    geom: GEOSGeometry,
    community: Community | None = None,
    address: str = "",
    service_radius_m: int = 1000,
) -> ServiceCentre:
    values = {
        "code": code,
        "name": name,
        "level": level,
        "street": street,
        "community": community,
        "address": address,
        "service_radius_m": service_radius_m,
    }
    _fields_check(ServiceCentre, values)
    service_centre_check(centre=None, code=code, level=level, street=street, community=community)
    centre = ServiceCentre(**values, geom=as_point(geom, label="党群服务中心"))
    centre.save()
    _audit_created(centre, list(values), f"新增党群服务中心“{name}”（{code}）", street.pk)
    communities_changed([community.pk if community else None])
    return centre


@transaction.atomic
def service_centre_update(*, centre: ServiceCentre, **changes: Any) -> ServiceCentre:
    _fields_known(changes, SERVICE_CENTRE_FIELDS, "党群服务中心")
    locked = (
        ServiceCentre.objects.select_for_update(of=("self",))
        .select_related("street", "community")
        .get(pk=centre.pk)
    )
    values = {name: changes.get(name, getattr(locked, name)) for name in SERVICE_CENTRE_FIELDS}
    _fields_check(ServiceCentre, {k: v for k, v in changes.items() if k != "geom"})
    if "geom" in changes:
        changes["geom"] = as_point(changes["geom"], label="党群服务中心")
    service_centre_check(
        centre=locked,
        code=values["code"],
        level=values["level"],
        street=values["street"],
        community=values["community"],
    )
    old_community_id = locked.community_id
    diff = audited_update(
        locked,
        fields=changes,
        summary=f"修改党群服务中心“{values['name']}”（{values['code']}）",
        street_id=values["street"].pk,
    )
    if diff:
        communities_changed([old_community_id, locked.community_id])
    return locked


@transaction.atomic
def service_centre_delete(*, centre: ServiceCentre) -> None:
    community_id = centre.community_id
    _delete(centre, summary=f"删除党群服务中心“{centre.name}”（{centre.code}）", street_id=centre.street_id)
    communities_changed([community_id])
