"""Planners' drafts: every write (start, copy, revert, edit, undo, redo, rename, abandon, apply).

The rules, once (mapping.plans_models says what is stored):

- Nothing live changes until `plan_apply`. A draft's cells are its own rows; every other write
  here touches only the plan's rows. The API fetches the plan with the guard of
  mapping.plans_access and calls one of these; each is one transaction.
- Each edit (`plan_edit`: reshape, draw, split, merge, move_building, lock, unlock) locks the plan
  row, computes the new shapes of the cells it touches (mapping.plans_geometry), refuses as a
  whole with a stable code (plan_cell_locked when it would touch a locked cell, geometry_* for a
  bad shape, …), then writes the cells, drops the undone tail of the log and appends one
  PlanEdit with the touched cells before and after. The answer carries the live checks of the
  draft after the edit (mapping.plans_checks). Undo and redo replay `before` / `after`.
  A caller may pass the cursor it last saw: a different one means another tab edited the draft
  in between (plan_edit_conflict, 409), so no edit is made against a draft the planner did not see.
- Drawn shapes are clipped to the community's outline. A drawn or reshaped cell takes its area
  from the neighbours it overlaps (`neighbours: "yield"`, the default), so the draft stays a
  partition; `"keep"` leaves the overlap for the checks to show. A neighbour that would vanish
  is refused (merge it instead).
- Apply (`plan_apply`): one transaction that locks the plan, then the community row (the one
  point every apply to that community passes, so two applies queue), refuses a plan whose
  community's boundaries changed since it started (plan_stale, 409: a second planner is told,
  never overwrites the first), then through grid.services only: creates the new codes
  (grid_cell_create), retires the cells the draft dropped (grid_cell_retire), writes every shape
  from `valid_from` (grid_boundaries_set: versions, partition refusals, buildings reassigned);
  the branches and workers left on a retired cell are named in the result and the audit row.
  The boundary writes say "communities changed", which queues the gap recompute after commit.
- History: an applied plan is kept with who, when and why; the boundaries as of any date stay
  queryable (GridBoundary versions); field events keep the cell they were recorded in.
  Reverting is a new draft from an applied plan's shapes or the boundaries as of a date, applied
  like any other.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import IO, Any

import shapely
from django.contrib.gis.geos import GEOSGeometry
from django.db import transaction
from django.utils import timezone
from shapely.geometry.base import BaseGeometry

from edge.errors import Conflict, DomainError
from grid import coords, importers
from grid import services as grid_services
from grid.audit import audit_record, current_actor
from grid.models import Community, GridBoundary, GridCell, grid_code_validator
from mapping import plans_geometry as geo
from mapping import plans_sql
from mapping.plans_checks import plan_checks
from mapping.plans_models import Plan, PlanCell, PlanEdit
from orgs.models import GridWorker, PartyOrganisation

MAX_NAME = 100
GRID_CODE = r"\d{15}"  # grid.models.grid_code_validator: community code + 3 digits


# --------------------------------------------------------------------------------------------
# Cell states: what one code of a draft holds, and its JSON form in the edit log
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellState:
    """One cell of a draft while an edit works on it (shapely shape, EPSG:4326)."""

    code: str
    name: str
    shape: BaseGeometry
    locked: bool = False
    cell_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "geom": shapely.to_wkb(self.shape, hex=True),
            "locked": self.locked,
            "cell_id": self.cell_id,
        }

    @classmethod
    def from_json(cls, code: str, data: Mapping[str, Any] | None) -> CellState | None:
        if data is None:
            return None
        return cls(
            code=code,
            name=data["name"],
            shape=shapely.from_wkb(data["geom"]),
            locked=data["locked"],
            cell_id=data["cell_id"],
        )


def _cells_of(plan: Plan) -> dict[str, CellState]:
    return {
        pc.code: CellState(pc.code, pc.name, geo.to_shapely(pc.geom), pc.locked, pc.cell_id)
        for pc in PlanCell.objects.filter(plan=plan)
    }


def _cells_write(plan: Plan, states: Mapping[str, CellState | None]) -> None:
    """Make the plan's cells of these codes what `states` says (None: the code leaves the draft)."""
    gone = [code for code, s in states.items() if s is None]
    if gone:
        PlanCell.objects.filter(plan=plan, code__in=gone).delete()
    kept = {code: s for code, s in states.items() if s is not None}
    existing = {pc.code: pc for pc in PlanCell.objects.filter(plan=plan, code__in=list(kept))}
    changed: list[PlanCell] = []
    created: list[PlanCell] = []
    for code, s in kept.items():
        geom = geo.to_geos(s.shape, label=f"网格 {code} ")
        pc = existing.get(code) or PlanCell(plan=plan, code=code)
        pc.name, pc.geom, pc.locked, pc.cell_id = s.name, geom, s.locked, s.cell_id
        (changed if pc.pk else created).append(pc)
    if changed:
        PlanCell.objects.bulk_update(changed, ["name", "geom", "locked", "cell"])
    if created:
        PlanCell.objects.bulk_create(created)


def _default_name(code: str) -> str:
    return f"第{int(code[-3:])}网格"


# --------------------------------------------------------------------------------------------
# Starting a draft
# --------------------------------------------------------------------------------------------


def _name_check(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise DomainError("请填写方案名称", code="plan_name_required", detail={"field": "name"})
    if len(name) > MAX_NAME:
        raise DomainError(f"方案名称不能超过 {MAX_NAME} 字", code="value_invalid", detail={"field": "name"})
    return name


def _codes_check(community: Community, codes: Collection[str]) -> None:
    """Every code is a grid code of this community (15 digits starting with its code)."""
    for code in sorted(codes):
        if not re.fullmatch(GRID_CODE, code):
            raise DomainError(
                f"网格编码“{code}”格式错误：{grid_code_validator.message}", code="code_format",
                detail={"code": code},
            )
        grid_services.code_parent_check(
            level="grid", code=code, parent_code=community.code, parent_label="社区"
        )
    foreign = sorted(
        GridCell.objects.filter(code__in=list(codes)).exclude(community=community).values_list("code", flat=True)
    )
    if foreign:
        raise DomainError(f"网格编码属于其他社区：{'、'.join(foreign[:10])}", code="code_taken",
                          detail={"codes": foreign})


def _audit_plan(plan: Plan, *, action: str, summary: str, changes: dict[str, Any] | None = None,
                reason: str = "") -> None:
    audit_record(
        action=action,
        object_type="mapping.Plan",
        object_id=plan.pk,
        summary=summary[:500],
        changes=changes or {},
        reason=reason,
        street_id=plan.community.street_id,
    )


@transaction.atomic
def plan_create_from_shapes(
    *,
    community: Community,
    name: str,
    shapes: Mapping[str, GEOSGeometry],
    new_shapes: Sequence[GEOSGeometry] = (),
    names: Mapping[str, str] | None = None,
    locked: Collection[str] = (),
    origin: str = Plan.Origin.SUGGESTION,
    origin_plan: Plan | None = None,
    origin_date: date | None = None,
    based_on_plan: Plan | None = None,
) -> Plan:
    """A new draft of `community` with these cells: `shapes` by code (existing or new codes of
    the community), `new_shapes` given the next free codes. The one constructor of drafts: the
    suggested rebalance, an upload, a copy and a revert all end here.

    Refused whole (nothing written): a code of another format or community (code_format,
    code_parent_mismatch, code_taken), a shape that is not a valid polygon (geometry_*).
    The draft records the boundaries in force now (what it is based on, see plan_apply), or,
    with `based_on_plan`, what that draft was based on (a copy is the same redraw).
    """
    name = _name_check(name)
    names = names or {}
    _codes_check(community, shapes)
    known = dict(GridCell.objects.filter(community=community, code__in=list(shapes)).values_list("code", "id"))
    cell_names = dict(GridCell.objects.filter(community=community, code__in=list(shapes)).values_list("code", "name"))
    stored = {code: grid_services.as_multipolygon(g, label=f"网格 {code} ") for code, g in shapes.items()}
    extra = [grid_services.as_multipolygon(g, label="新网格 ") for g in new_shapes]
    if based_on_plan is not None:
        ids, digest = based_on_plan.based_on_boundaries, based_on_plan.based_on_digest
        version = based_on_plan.based_on_version
    else:
        ids, digest = plans_sql.boundaries_in_force(community.pk)
        version = Community.objects.filter(pk=community.pk).values_list("data_version", flat=True)[0]
    actor = current_actor()
    plan = Plan.objects.create(
        community=community,
        name=name,
        origin=origin,
        origin_plan=origin_plan,
        origin_date=origin_date,
        created_by_id=actor.user_id,
        created_by_name=actor.name[:150],
        based_on_boundaries=ids,
        based_on_digest=digest,
        based_on_version=version,
    )
    PlanCell.objects.bulk_create(
        PlanCell(
            plan=plan,
            code=code,
            cell_id=known.get(code),
            name=(names.get(code) or cell_names.get(code) or _default_name(code))[:64],
            geom=geom,
            locked=code in locked,
        )
        for code, geom in stored.items()
    )
    if extra:
        codes = _new_codes(plan, len(extra))
        PlanCell.objects.bulk_create(
            PlanCell(plan=plan, code=code, name=_default_name(code), geom=geom)
            for code, geom in zip(codes, extra, strict=True)
        )
    _audit_plan(
        plan,
        action="create",
        summary=f"新建网格调整方案“{name}”（{community.name}，{plan.get_origin_display()}）",
        changes={"community": community.code, "origin": origin, "cells": len(stored) + len(extra)},
    )
    return plan


def _new_codes(plan: Plan, count: int) -> list[str]:
    community = plan.community
    codes = list(
        plans_sql.next_free_sequences(
            community_id=community.pk, community_code=community.code, plan_id=plan.pk, count=count
        )
    )
    if len(codes) < count:
        raise DomainError("本社区的网格序号（001–999）已用完", code="plan_codes_exhausted")
    return codes


def plan_create(*, community: Community, name: str, as_of: date | None = None) -> Plan:
    """A draft from the boundaries in force today, or from those in force on `as_of` (a revert to
    a date: cells retired since come back, cells made since are left out)."""
    if as_of is None:
        versions = GridBoundary.objects.filter(cell__community=community, valid__upper_inf=True)
        origin = Plan.Origin.TODAY
    else:
        versions = GridBoundary.objects.filter(cell__community=community, valid__contains=as_of)
        origin = Plan.Origin.AS_OF
        if not versions.exists():
            raise DomainError(f"{as_of} 时本社区没有网格边界", code="plan_nothing_on_date",
                              detail={"field": "as_of"})
    shapes = dict(versions.values_list("cell__code", "geom"))
    return plan_create_from_shapes(
        community=community, name=name, shapes=shapes, origin=origin, origin_date=as_of
    )


class UploadRejected(DomainError):
    """An uploaded file of grids cannot start a draft; detail["issues"] lists every finding."""

    code = "plan_upload_rejected"


def plan_create_from_file(
    *,
    community: Community,
    name: str,
    file: IO[bytes] | Path,
    filename: str = "",
    crs: str | None = None,
    layer: str | None = None,
    code_field: str = "code",
    name_field: str = "name",
) -> tuple[Plan, list[dict[str, Any]]]:
    """A draft from a GeoJSON / Shapefile (zipped) / GeoPackage / FlatGeobuf / CSV of the
    community's grids, read, converted and checked exactly as `import_units --level grid` does
    (grid.importers: the file's CRS or `crs`, make_valid repairs reported, per-feature codes),
    plus: every feature's code is a grid code of this community (code_parent_mismatch).

    Returns the plan and the warnings (geometry_repaired, name_defaulted). Refused whole with
    plan_upload_rejected and every issue ({index, code, error_code, message, severity}) when the
    file or any feature is bad; nothing is written.
    """
    name = _name_check(name)
    with tempfile.TemporaryDirectory(prefix="wangge-plan-") as tmp:
        if isinstance(file, Path):
            path = file
        else:
            suffix = Path(filename or "upload.geojson").suffix.lower() or ".geojson"
            path = Path(tmp) / f"upload{suffix}"
            with path.open("wb") as out:
                for chunk in iter(lambda: file.read(1 << 20), b""):
                    out.write(chunk)
        try:
            declared = importers._declared_crs(crs)
            source = importers.source_read(path=path, layer=layer)
            geoms = importers._to_wgs84(source.geoms, importers._source_crs(source, declared))
            features, issues = importers.features_check(
                spec=importers.LEVELS["grid"], source=source, geoms=geoms, code_field=code_field,
                name_field=name_field,
            )
        except importers.ImportRejected as exc:
            raise UploadRejected(exc.message, detail={"issues": exc.detail["issues"]}) from exc
    found = [issue.__dict__ for issue in issues]
    for f in features:
        if not f.code.startswith(community.code):
            found.append(
                importers.FeatureIssue(
                    f.index, f.code, "code_parent_mismatch", f"编码 {f.code} 不属于社区 {community.code}"
                ).__dict__
            )
    errors = [i for i in found if i["severity"] == "error"]
    if errors:
        bad = len({i["index"] for i in errors})
        raise UploadRejected(
            f"{bad} 个要素未通过检查，未建立方案", detail={"issues": sorted(found, key=lambda i: (i["index"] or 0))}
        )
    good = {f.code: f for f in features}
    plan = plan_create_from_shapes(
        community=community,
        name=name,
        shapes={code: GEOSGeometry(shapely.to_wkb(f.geom, hex=True), srid=4326) for code, f in good.items()},
        names={code: f.name for code, f in good.items()},
        origin=Plan.Origin.UPLOAD,
    )
    return plan, [i for i in found if i["severity"] == "warning"]


def plan_copy(*, plan: Plan, name: str = "") -> Plan:
    """A new draft with `plan`'s cells as they stand (not its edit log). A copy of a draft keeps
    what the draft was based on (it is the same redraw); a copy of an applied or abandoned plan is
    based on today's boundaries."""
    plan = Plan.objects.select_related("community").get(pk=plan.pk)  # its state as stored now
    cells = PlanCell.objects.filter(plan=plan)
    return plan_create_from_shapes(
        community=plan.community,
        name=name or f"{plan.name}（副本）"[:MAX_NAME],
        shapes={pc.code: pc.geom for pc in cells},
        names={pc.code: pc.name for pc in cells},
        locked={pc.code for pc in cells if pc.locked},
        origin=Plan.Origin.COPY,
        origin_plan=plan,
        based_on_plan=plan if plan.state == Plan.State.DRAFT else None,
    )


def plan_revert(*, plan: Plan, name: str = "") -> Plan:
    """A new draft from the shapes an applied plan put in force: applying it reverts to them."""
    plan = Plan.objects.select_related("community").get(pk=plan.pk)  # its state as stored now
    if plan.state != Plan.State.APPLIED:
        raise DomainError("只能恢复已应用的方案", code="plan_not_applied")
    cells = PlanCell.objects.filter(plan=plan)
    return plan_create_from_shapes(
        community=plan.community,
        name=name or f"恢复：{plan.name}"[:MAX_NAME],
        shapes={pc.code: pc.geom for pc in cells},
        names={pc.code: pc.name for pc in cells},
        origin=Plan.Origin.REVERT,
        origin_plan=plan,
    )


def _draft_locked(plan: Plan, cursor: int | None = None) -> Plan:
    locked = Plan.objects.select_for_update().select_related("community").get(pk=plan.pk)
    if locked.state != Plan.State.DRAFT:
        raise Conflict(f"方案已{locked.get_state_display()}，不能再修改", code="plan_not_draft",
                       detail={"state": locked.state})
    if cursor is not None and cursor != locked.cursor:
        raise Conflict(
            "方案已在别处修改（编辑位置已变化），请刷新后再操作",
            code="plan_edit_conflict",
            detail={"cursor": locked.cursor},
        )
    return locked


@transaction.atomic
def plan_rename(*, plan: Plan, name: str) -> Plan:
    name = _name_check(name)
    locked = _draft_locked(plan)
    if locked.name != name:
        old = locked.name
        locked.name = name
        locked.save(update_fields=["name", "updated_at"])
        _audit_plan(locked, action="update", summary=f"方案“{old}”改名为“{name}”", changes={"name": [old, name]})
    return locked


@transaction.atomic
def plan_abandon(*, plan: Plan) -> Plan:
    """Set a draft aside for good (kept, never applied)."""
    locked = _draft_locked(plan)
    locked.state = Plan.State.ABANDONED
    locked.save(update_fields=["state", "updated_at"])
    _audit_plan(locked, action="update", summary=f"放弃网格调整方案“{locked.name}”",
                changes={"state": ["draft", "abandoned"]})
    return locked


# --------------------------------------------------------------------------------------------
# Edits
# --------------------------------------------------------------------------------------------


@dataclass
class EditContext:
    plan: Plan
    cells: dict[str, CellState]
    outline: BaseGeometry
    crs: str

    def cell(self, code: Any, field: str = "code") -> CellState:
        if not isinstance(code, str) or code not in self.cells:
            raise DomainError(f"方案中没有网格 {code}", code="plan_cell_unknown", detail={"field": field})
        return self.cells[code]


Changes = dict[str, CellState | None]


def _yield_to(ctx: EditContext, shape: BaseGeometry, keep: Collection[str]) -> Changes:
    """Neighbours (all cells but `keep`) give up what `shape` takes of them."""
    changes: Changes = {}
    for code, other in ctx.cells.items():
        if code in keep or not geo.overlaps(other.shape, shape):
            continue
        rest = geo.tidy(shapely.difference(other.shape, shape))
        if rest.is_empty:
            raise DomainError(
                f"网格 {code} 将被完全覆盖；如要并入请使用“合并网格”",
                code="plan_cell_would_vanish",
                detail={"cells": [code]},
            )
        changes[code] = replace(other, shape=rest)
    return changes


def _neighbours_mode(payload: Mapping[str, Any]) -> str:
    mode = payload.get("neighbours", "yield")
    if mode not in ("yield", "keep"):
        raise DomainError("neighbours 应为 yield 或 keep", code="value_invalid", detail={"field": "neighbours"})
    return str(mode)


def _drawn(ctx: EditContext, payload: Mapping[str, Any], *, cell: str | None = None) -> BaseGeometry:
    """The drawn shape: snapped onto the other cells' outlines, clipped to the community."""
    drawn = geo.polygonal(geo.parse_geojson(payload.get("geometry"), crs=ctx.crs))
    others = [c.shape for code, c in ctx.cells.items() if code != cell]
    return geo.clip(geo.snapped(drawn, [*others, ctx.outline]), ctx.outline)


def _edit_reshape(ctx: EditContext, payload: Mapping[str, Any]) -> tuple[Changes, str]:
    cell = ctx.cell(payload.get("code"))
    shape = _drawn(ctx, payload, cell=cell.code)
    changes: Changes = {cell.code: replace(cell, shape=shape)}
    if _neighbours_mode(payload) == "yield":
        changes.update(_yield_to(ctx, shape, keep={cell.code}))
    return changes, f"调整网格 {cell.code} 的边界"


def _edit_draw(ctx: EditContext, payload: Mapping[str, Any]) -> tuple[Changes, str]:
    shape = _drawn(ctx, payload)
    (code,) = _new_codes(ctx.plan, 1)
    name = _optional_name(payload) or _default_name(code)
    changes: Changes = {code: CellState(code=code, name=name, shape=shape)}
    if _neighbours_mode(payload) == "yield":
        changes.update(_yield_to(ctx, shape, keep={code}))
    return changes, f"新绘网格 {code}"


def _optional_name(payload: Mapping[str, Any]) -> str:
    name = payload.get("name") or ""
    if not isinstance(name, str) or len(name.strip()) > 64:
        raise DomainError("网格名称应为不超过64字的文字", code="value_invalid", detail={"field": "name"})
    return name.strip()


def _edit_split(ctx: EditContext, payload: Mapping[str, Any]) -> tuple[Changes, str]:
    cell = ctx.cell(payload.get("code"))
    line = geo.parse_geojson(payload.get("line"), crs=ctx.crs, field="line")
    larger, smaller = geo.split_in_two(cell.shape, line)
    (code,) = _new_codes(ctx.plan, 1)
    name = _optional_name(payload) or _default_name(code)
    return (
        {cell.code: replace(cell, shape=larger), code: CellState(code=code, name=name, shape=smaller)},
        f"沿分割线拆分网格 {cell.code}，新网格 {code}",
    )


def _edit_merge(ctx: EditContext, payload: Mapping[str, Any]) -> tuple[Changes, str]:
    keep = ctx.cell(payload.get("code"))
    other = ctx.cell(payload.get("other"), field="other")
    if keep.code == other.code:
        raise DomainError("不能把网格与自身合并", code="value_invalid", detail={"field": "other"})
    if not geo.adjacent(keep.shape, other.shape):
        raise DomainError(
            f"网格 {keep.code} 与 {other.code} 不相邻，不能合并",
            code="plan_cells_not_adjacent",
            detail={"cells": [keep.code, other.code]},
        )
    merged = geo.tidy(shapely.union_all([keep.shape, other.shape]))
    return (
        {keep.code: replace(keep, shape=merged), other.code: None},
        f"合并网格 {other.code} 到 {keep.code}（{other.code} 应用后撤销）",
    )


def _edit_move_building(ctx: EditContext, payload: Mapping[str, Any]) -> tuple[Changes, str]:
    target = ctx.cell(payload.get("to"), field="to")
    code = payload.get("building")
    found = (
        plans_sql.building_cell(
            cells=plans_sql.draft_cells(ctx.plan.pk), community_id=ctx.plan.community_id, building_code=code
        )
        if isinstance(code, str)
        else None
    )
    if found is None:
        raise DomainError(f"本社区没有楼栋 {code}", code="plan_building_unknown", detail={"field": "building"})
    _, source_code, footprint_wkb = found
    if source_code is None:
        raise DomainError(f"楼栋 {code} 不在方案的任何网格内", code="plan_building_not_in_cell",
                          detail={"field": "building"})
    if source_code == target.code:
        raise DomainError(f"楼栋 {code} 已在网格 {target.code} 内", code="plan_edit_noop")
    source = ctx.cells[source_code]
    if not geo.adjacent(source.shape, target.shape):
        raise DomainError(
            f"网格 {target.code} 与楼栋所在的网格 {source_code} 不相邻",
            code="plan_cells_not_adjacent",
            detail={"cells": [source_code, target.code]},
        )
    footprint = shapely.from_wkb(footprint_wkb)
    changes = _yield_to(ctx, footprint, keep={target.code})
    changes[target.code] = replace(
        target, shape=geo.tidy(shapely.union_all([target.shape, footprint]))
    )
    return changes, f"楼栋 {code} 从网格 {source_code} 调整到 {target.code}"


def _lock_codes(ctx: EditContext, payload: Mapping[str, Any]) -> list[str]:
    if payload.get("all") is True:
        return sorted(ctx.cells)
    codes = payload.get("codes", [payload.get("code")] if "code" in payload else None)
    if not isinstance(codes, list) or not codes:
        raise DomainError("请指定要锁定或解锁的网格（code、codes 或 all）", code="value_invalid",
                          detail={"field": "codes"})
    return [ctx.cell(c, field="codes").code for c in codes]


def _edit_lock(ctx: EditContext, payload: Mapping[str, Any], *, locked: bool) -> tuple[Changes, str]:
    codes = [c for c in _lock_codes(ctx, payload) if ctx.cells[c].locked != locked]
    if not codes:
        raise DomainError("所选网格已是该状态", code="plan_edit_noop")
    verb = "锁定" if locked else "解除锁定"
    return {c: replace(ctx.cells[c], locked=locked) for c in codes}, f"{verb}网格 {'、'.join(codes)}"


EDITS: dict[str, Callable[[EditContext, Mapping[str, Any]], tuple[Changes, str]]] = {
    PlanEdit.Kind.RESHAPE: _edit_reshape,
    PlanEdit.Kind.DRAW: _edit_draw,
    PlanEdit.Kind.SPLIT: _edit_split,
    PlanEdit.Kind.MERGE: _edit_merge,
    PlanEdit.Kind.MOVE_BUILDING: _edit_move_building,
    PlanEdit.Kind.LOCK: lambda ctx, p: _edit_lock(ctx, p, locked=True),
    PlanEdit.Kind.UNLOCK: lambda ctx, p: _edit_lock(ctx, p, locked=False),
}
LOCKING = frozenset({PlanEdit.Kind.LOCK, PlanEdit.Kind.UNLOCK})


def _cell_feature(plan: Plan, code: str) -> dict[str, Any] | None:
    pc = PlanCell.objects.filter(plan=plan, code=code).first()
    if pc is None:
        return None
    return {
        "type": "Feature",
        "id": code,
        "geometry": json.loads(pc.geom.json),
        "properties": {"code": code, "name": pc.name, "locked": pc.locked, "new": pc.cell_id is None},
    }


def _answer(plan: Plan, edit: PlanEdit | None, touched: Collection[str]) -> dict[str, Any]:
    last = PlanEdit.objects.filter(plan=plan).order_by("-seq").values_list("seq", flat=True).first() or 0
    return {
        "plan": {"id": plan.pk, "cursor": plan.cursor, "can_undo": plan.cursor > 0, "can_redo": last > plan.cursor},
        "edit": None
        if edit is None
        else {"seq": edit.seq, "kind": edit.kind, "summary": edit.summary, "cells": sorted(touched)},
        "changed": {code: _cell_feature(plan, code) for code in sorted(touched)},
        "checks": plan_checks(plan=plan),
    }


@transaction.atomic
def plan_edit(
    *, plan: Plan, kind: str, payload: Mapping[str, Any], cursor: int | None = None, crs: str | None = None
) -> dict[str, Any]:
    """Apply one edit to a draft (see the module docstring); returns the edit, the changed cells
    (GeoJSON features, null for a code that left the draft) and the live checks."""
    handler = EDITS.get(kind)
    if handler is None:
        raise DomainError(f"未知的编辑操作：{kind}", code="plan_edit_unknown", detail={"field": "kind"})
    if not isinstance(payload, Mapping):
        raise DomainError("payload 应为对象", code="value_invalid", detail={"field": "payload"})
    locked_plan = _draft_locked(plan, cursor)
    try:
        token = coords.parse_crs(crs) if crs else coords.WGS84
    except coords.UnknownCRS as exc:
        raise DomainError(exc.message, code="crs_unknown", detail={"field": "crs"}) from exc
    ctx = EditContext(
        plan=locked_plan,
        cells=_cells_of(locked_plan),
        outline=geo.to_shapely(locked_plan.community.geom),
        crs=token,
    )
    try:
        changes, summary = handler(ctx, payload)
    except shapely.errors.GEOSException as exc:
        # GEOS gave up on the overlay (a pathological drawing): a refusal, not a server error.
        raise DomainError(f"几何运算失败，请重新绘制：{exc}", code="geometry_invalid") from exc
    if kind not in LOCKING:
        held = sorted(code for code in changes if code in ctx.cells and ctx.cells[code].locked)
        if held:
            raise DomainError(
                f"网格 {'、'.join(held)} 已锁定，不能修改", code="plan_cell_locked", detail={"cells": held}
            )
    before = {code: (ctx.cells[code].as_json() if code in ctx.cells else None) for code in changes}
    after = {code: (s.as_json() if s is not None else None) for code, s in changes.items()}
    _cells_write(locked_plan, changes)
    PlanEdit.objects.filter(plan=locked_plan, seq__gt=locked_plan.cursor).delete()
    actor = current_actor()
    edit = PlanEdit.objects.create(
        plan=locked_plan,
        seq=locked_plan.cursor + 1,
        kind=kind,
        payload=dict(payload),
        summary=summary[:200],
        before=before,
        after=after,
        created_by_id=actor.user_id,
        created_by_name=actor.name[:150],
    )
    locked_plan.cursor = edit.seq
    locked_plan.save(update_fields=["cursor", "updated_at"])
    return _answer(locked_plan, edit, changes)


def _replay(plan: Plan, *, undo: bool, cursor: int | None) -> dict[str, Any]:
    locked = _draft_locked(plan, cursor)
    seq = locked.cursor if undo else locked.cursor + 1
    edit = PlanEdit.objects.filter(plan=locked, seq=seq).first() if seq > 0 else None
    if edit is None:
        raise DomainError("没有可撤销的操作" if undo else "没有可重做的操作",
                          code="plan_nothing_to_undo" if undo else "plan_nothing_to_redo")
    states = edit.before if undo else edit.after
    _cells_write(locked, {code: CellState.from_json(code, data) for code, data in states.items()})
    locked.cursor = seq - 1 if undo else seq
    locked.save(update_fields=["cursor", "updated_at"])
    return _answer(locked, edit, states)


@transaction.atomic
def plan_undo(*, plan: Plan, cursor: int | None = None) -> dict[str, Any]:
    """Undo the last edit in effect (the edit log keeps it for redo until a new edit)."""
    return _replay(plan, undo=True, cursor=cursor)


@transaction.atomic
def plan_redo(*, plan: Plan, cursor: int | None = None) -> dict[str, Any]:
    return _replay(plan, undo=False, cursor=cursor)


# --------------------------------------------------------------------------------------------
# Apply
# --------------------------------------------------------------------------------------------


def plan_is_stale(plan: Plan) -> bool:
    """Whether the community's boundaries changed since the draft started (see plan_apply)."""
    return plans_sql.boundaries_in_force(plan.community_id)[1] != plan.based_on_digest


@transaction.atomic
def plan_apply(*, plan: Plan, valid_from: date, reason: str) -> dict[str, Any]:
    """Put a draft in force from `valid_from` (see the module docstring). Returns what it did:
    cells created / redrawn / retired, buildings moved, the branches and workers left on a retired
    cell, and the partition warnings (community_not_covered) the grid service reported.

    Refused, nothing written: no reason (plan_reason_required); not a draft (plan_not_draft, 409);
    the community's boundaries changed since the draft started (plan_stale, 409); a date before a
    version in force (boundary_conflict); a partition the grid service refuses (grid_overlap,
    grid_outside_community), as its own error.
    """
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("请填写调整事由", code="plan_reason_required", detail={"field": "reason"})
    locked = _draft_locked(plan)
    # The serialisation point of every apply to this community: a second apply waits here for the
    # first to commit, then sees its boundaries (READ COMMITTED: the next statement reads afresh).
    community = Community.objects.select_for_update().get(pk=locked.community_id)
    ids, digest = plans_sql.boundaries_in_force(community.pk)
    if digest != locked.based_on_digest:
        raise Conflict(
            "本社区的网格边界在方案起草后已被修改（可能另一方案刚刚应用），请复制方案或重新起草后再应用",
            code="plan_stale",
            detail={"based_on": locked.based_on_boundaries, "in_force": ids},
        )
    cells = list(PlanCell.objects.filter(plan=locked))
    codes = {pc.code for pc in cells}
    in_force = {
        c.code: c
        for c in GridCell.objects.filter(
            community=community, boundaries__valid__upper_inf=True
        ).only("id", "code", "name", "community_id")
    }
    retired = [c for code, c in sorted(in_force.items()) if code not in codes]
    existing = dict(GridCell.objects.filter(code__in=list(codes)).values_list("code", "id"))
    created: list[str] = []
    for pc in cells:
        if pc.code not in existing:
            pc.cell = grid_services.grid_cell_create(code=pc.code, community=community, name=pc.name)
            created.append(pc.code)
        elif pc.cell_id != existing[pc.code]:
            pc.cell_id = existing[pc.code]
    # Retire first: a merged-away cell still in force would overlap its survivor's new shape.
    for cell in retired:
        grid_services.grid_cell_retire(cell=cell, valid_to=valid_from)
    write = grid_services.grid_boundaries_set(
        shapes={pc.cell_id: pc.geom for pc in cells if pc.cell_id is not None},
        valid_from=valid_from,
        note=f"网格调整方案：{locked.name}"[:200],
    )
    PlanCell.objects.bulk_update(cells, ["cell"])
    retired_ids = [c.pk for c in retired]
    branches = list(
        PartyOrganisation.objects.filter(kind=PartyOrganisation.Kind.GRID_BRANCH, grid_cell_id__in=retired_ids)
        .order_by("id")
        .values("id", "name", "grid_cell__code")
    )
    workers = list(
        GridWorker.objects.filter(active=True, grid_cells__in=retired_ids)
        .distinct()
        .order_by("id")
        .values("id", "name")
    )
    result = {
        "valid_from": valid_from.isoformat(),
        "created": created,
        "retired": [c.code for c in retired],
        "redrawn": write.redrawn + write.corrected,
        "unchanged": write.unchanged,
        "buildings_moved": write.buildings_moved,
        "branches_without_grid": [
            {"id": b["id"], "name": b["name"], "cell": b["grid_cell__code"]} for b in branches
        ],
        "workers_on_retired_cells": workers,
        "warnings": [p.as_dict() for p in write.warnings],
    }
    actor = current_actor()
    locked.state = Plan.State.APPLIED
    locked.applied_at = timezone.now()
    locked.applied_by_id = actor.user_id
    locked.applied_by_name = actor.name[:150]
    locked.valid_from = valid_from
    locked.reason = reason[:500]
    locked.result = result
    locked.save(
        update_fields=["state", "applied_at", "applied_by", "applied_by_name", "valid_from", "reason", "result",
                       "updated_at"]
    )
    _audit_plan(
        locked,
        action="update",
        summary=f"应用网格调整方案“{locked.name}”（{community.name}），自 {valid_from} 起生效：新建 "
        f"{len(created)}、撤销 {len(retired)}、重绘 {result['redrawn']}，楼栋变更网格 {write.buildings_moved}"
        + (f"；{len(branches)} 个网格党支部失去网格，需重新挂靠" if branches else ""),
        changes={k: v for k, v in result.items() if k != "warnings"},
        reason=reason,
    )
    return {"plan": locked.pk, **result}
