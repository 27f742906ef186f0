"""The street office's exports (issue 10): the gap list (Excel, GeoJSON), the indicator table
(Excel) and the offline map of a grid cell or a community (one HTML file, mapping.offline_map).

Every export is a read scoped by the caller's reach through the same guards and selectors as the
API (mapping.selectors.gap_list, mapping.indicators.indicator_unit_get, grid.access, orgs.access)
and one audited action: the file is built first and the audit row (action `export`, with the
filters and the count) is written in the same transaction, so a failed export leaves no claim of
one and a finished one is always on record. The views (mapping.export_views) parse, call one
function here and return the bytes.

Spreadsheets are written the way a street office keeps its lists: a title row naming the unit,
a line saying when, by whom and with which filters, a frozen header, widths that fit. Text cells
are always text, never formulas (a name such as "=HYPERLINK(…)" stays a name: CSV/formula
injection), and times are local (Asia/Shanghai), as the office reads them.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.contrib.gis.db.models import Collect
from django.contrib.gis.db.models.functions import AsGeoJSON, Centroid, GeomOutputGeoFunc, PointOnSurface
from django.contrib.gis.geos import Polygon
from django.contrib.postgres.aggregates import StringAgg
from django.db import transaction
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, NullIf
from django.utils import timezone
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

from edge.errors import DomainError, NotInReach
from grid.access import Reach, buildings_in_reach, communities_in_reach, grid_cells_in_reach, streets_in_reach
from grid.audit import audit_record
from grid.models import AuditEvent, Building, Community, GridBoundary, GridCell, Street
from mapping import indicators, indicators_sql, offline_map, selectors
from mapping.indicators import IndicatorUnit
from mapping.models import Gap, IndicatorSnapshot
from orgs.access import party_orgs_in_reach
from orgs.models import PartyMember, PartyOrganisation, Visit

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
GEOJSON = "application/geo+json"
HTML = "text/html; charset=utf-8"
UnitType = IndicatorSnapshot.UnitType
UNIT_TYPE_LABELS = dict(UnitType.choices)


@dataclass(frozen=True)
class ExportFile:
    """A finished export: the bytes, the name to save it under, and how many records it holds."""

    content: bytes
    filename: str
    content_type: str
    count: int


# --------------------------------------------------------------------------------------------
# Shared: names, times, the audit row
# --------------------------------------------------------------------------------------------

# Characters Windows refuses in file names (a USB stick is FAT or NTFS).
_UNSAFE_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f]+')


def _file_name(*parts: str, suffix: str, at: datetime) -> str:
    stem = "_".join(p for p in (_UNSAFE_NAME.sub("", part).strip() for part in parts) if p)
    return f"{stem}_{timezone.localtime(at):%Y%m%d-%H%M}.{suffix}"


def _local(at: datetime) -> str:
    return f"{timezone.localtime(at):%Y-%m-%d %H:%M}"


def _audit_export(
    *, object_type: str, object_id: str, summary: str, changes: dict[str, Any], street_id: int | None
) -> None:
    audit_record(
        action=AuditEvent.Action.EXPORT,
        object_type=object_type,
        object_id=object_id,
        summary=summary,
        changes=changes,
        street_id=street_id,
    )


def _one_street_id(reach: Reach) -> int | None:
    """The street of an export that spans the reach: its one street, or none when it spans several."""
    ids = list(streets_in_reach(reach).order_by("id").values_list("id", flat=True)[:2])
    return ids[0] if len(ids) == 1 else None


def _reach_label(reach: Reach) -> str:
    """The units the user holds, as a title names them ("海滨街道", "海滨社区、宝满社区等3个单元")."""
    if reach.everything:
        return "全部街道"
    labels = [
        *Street.objects.filter(id__in=reach.street_ids).order_by("code").values_list("name", flat=True),
        *Community.objects.filter(id__in=reach.community_ids).order_by("code").values_list("name", flat=True),
        *(
            f"{community}{cell}"
            for community, cell in GridCell.objects.filter(id__in=reach.grid_cell_ids)
            .order_by("code")
            .values_list("community__name", "name")
        ),
    ]
    if len(labels) > 3:
        return f"{'、'.join(labels[:3])}等{len(labels)}个单元"
    return "、".join(labels) or "（无）"


# --------------------------------------------------------------------------------------------
# Spreadsheet helpers (openpyxl's write-only mode: a street's thousands of rows stay cheap)
# --------------------------------------------------------------------------------------------

_THIN = Side(style="thin", color="999999")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_TITLE_FONT = Font(bold=True, size=15)
_NOTE_FONT = Font(size=10, color="555555")
_HEAD_FONT = Font(bold=True)
_HEAD_FILL = PatternFill("solid", fgColor="DDEBF7")
_CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)
_WRAP = Alignment(vertical="top", wrap_text=True)
_TOP = Alignment(vertical="top")
PERCENT = "0.0%"
DATETIME = "yyyy-mm-dd hh:mm"


def _cell(ws: Any, value: Any, **style: Any) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=value)
    if isinstance(value, str):
        cell.data_type = "s"  # text, never a formula ("=…" in a name stays a name)
    for name, setting in style.items():
        setattr(cell, name, setting)
    return cell


def _sheet_head(
    ws: Any, *, title: str, note: str, widths: Sequence[float], header_rows: int, frozen_columns: int = 0
) -> None:
    """Title and note rows merged across the table, column widths, the header (and the first
    `frozen_columns`) frozen. Write-only sheets write their view with the first row: this comes first."""
    last = get_column_letter(len(widths))
    for i, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = f"{get_column_letter(frozen_columns + 1)}{3 + header_rows}"
    ws.merged_cells.add(f"A1:{last}1")
    ws.merged_cells.add(f"A2:{last}2")
    ws.row_dimensions[1].height = 26
    ws.append(
        [_cell(ws, title, font=_TITLE_FONT, alignment=Alignment(horizontal="center", vertical="center"))]
    )
    ws.append([_cell(ws, note, font=_NOTE_FONT, alignment=Alignment(vertical="center"))])


def _header(ws: Any, labels: Iterable[str]) -> None:
    ws.append(
        [
            _cell(ws, label, font=_HEAD_FONT, fill=_HEAD_FILL, alignment=_CENTER, border=_BORDER)
            for label in labels
        ]
    )


def _workbook_bytes(wb: Workbook) -> bytes:
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# The gap list
# --------------------------------------------------------------------------------------------

# The columns, as a street office heads its 缺口台账, with their widths in characters.
GAP_COLUMNS: tuple[tuple[str, float], ...] = (
    ("序号", 6),
    ("街道", 12),
    ("社区", 12),
    ("网格", 16),
    ("类型", 24),
    ("对象", 22),
    ("兜底责任组织", 26),
    ("发现时间", 17),
    ("已持续天数", 11),
    ("严重程度", 9),
    ("说明", 60),
    ("对象编码", 18),
    ("网格编码", 17),
)
RESOLVED_COLUMN = ("消除时间", 17)

# The figures of a gap (mapping.sql writes them) in words, in this order; keys not listed here
# (internal ones such as placed_by, pace_share) are left out of the text.
_PERCENT_FIGURES = {"rate", "rate_min", "share"}
FIGURE_LABELS: dict[str, tuple[str, str]] = {
    "members": ("党员", "人"),
    "full_members": ("正式党员", "人"),
    "members_living": ("居住党员", "人"),
    "threshold": ("组建标准", "人"),
    "employees": ("从业人员", "人"),
    "joint_branch": ("纳入联合党支部", ""),
    "instructor": ("派有党建指导员", ""),
    "status": ("党员状态", ""),
    "category": ("党员类别", ""),
    "has_organisation": ("已编入党组织", ""),
    "buildings": ("楼栋", "栋"),
    "households": ("户数", "户"),
    "households_visited": ("近期已走访", "户"),
    "buildings_visited": ("已走访楼栋", "栋"),
    "rate": ("走访率", ""),
    "rate_min": ("最低要求", ""),
    "interval_days": ("走访周期", "天"),
    "last_visit_on": ("上次走访", ""),
    "days_since_last_visit": ("距上次走访", "天"),
    "month": ("月份", ""),
    "on_site_days": ("本月在岗", "天"),
    "required_days": ("每月应驻", "天"),
    "expected_by_today": ("按进度应驻", "天"),
    "area_m2": ("面积", "平方米"),
    "parts": ("片数", "处"),
    "share": ("占社区面积", ""),
    "centres_in_reach": ("服务半径内党群服务中心", "个"),
    "reach_m": ("服务半径", "米"),
    "grid_cells": ("涉及网格", ""),
}
_CHOICE_LABELS: dict[str, dict[str, str]] = {
    "status": dict(PartyMember.Status.choices),
    "category": dict(PartyMember.Category.choices),
}


def gap_figures_text(kind: str, figures: dict[str, Any]) -> str:
    """A gap's figures as the 说明 column reads them: "党员：4人；正式党员：3人；组建标准：3人"."""
    parts = []
    for key, (label, unit) in FIGURE_LABELS.items():
        if key not in figures or figures[key] is None:
            if key == "last_visit_on" and kind == Gap.Kind.BUILDING_UNVISITED:
                parts.append("上次走访：从未走访")
            continue
        value = figures[key]
        if isinstance(value, bool):
            text = "是" if value else "否"
        elif key in _PERCENT_FIGURES and isinstance(value, int | float):
            text = f"{value * 100:.1f}%"
        elif key in _CHOICE_LABELS:
            text = _CHOICE_LABELS[key].get(str(value), str(value))
        elif isinstance(value, list):
            text = "、".join(str(v) for v in value) if value else "无"
        else:
            text = f"{value}{unit}"
        parts.append(f"{label}：{text}")
    return "；".join(parts)


def gap_export_queryset(*, reach: Reach, filters: dict[str, Any], bbox: Polygon | None) -> QuerySet[Gap]:
    """The gaps of the list the user sees: `selectors.gap_list` with the API's filters (kind,
    street, community, grid_cell, since_before, resolved) and its bbox rule (extent overlaps),
    each with the fallback organisation's current name (else the label the recompute wrote)."""
    qs = selectors.gap_list(reach=reach, **filters)
    if bbox is not None:
        qs = qs.filter(geom__bboverlaps=bbox)
    return qs.annotate(
        responsible=Coalesce(
            F("responsible_org__name"), NullIf(F("responsible_label"), Value("")), Value("")
        ),
    )


def _gap_record(gap: Gap, *, number: int, today: date, resolved: bool) -> dict[str, Any]:
    since = timezone.localtime(gap.since)
    record: dict[str, Any] = {
        "序号": number,
        "街道": gap.community.street.name,
        "社区": gap.community.name,
        "网格": gap.grid_cell.name if gap.grid_cell else "",
        "类型": gap.get_kind_display(),
        "对象": gap.subject_label or gap.subject_code,
        "兜底责任组织": gap.responsible,  # type: ignore[attr-defined]
        "发现时间": since,
        "已持续天数": (
            (timezone.localtime(gap.resolved_at).date() if gap.resolved_at else today) - since.date()
        ).days,
        "严重程度": gap.get_severity_display(),
        "说明": gap_figures_text(gap.kind, gap.figures or {}),
        "对象编码": gap.subject_code,
        "网格编码": gap.grid_cell.code if gap.grid_cell else "",
    }
    if resolved:
        record[RESOLVED_COLUMN[0]] = timezone.localtime(gap.resolved_at) if gap.resolved_at else None
    return record


def _filters_text(filters: dict[str, Any], bbox: Polygon | None) -> str:
    names = {
        "kind": "类型",
        "street": "街道",
        "community": "社区",
        "grid_cell": "网格",
        "since_before": "发现早于",
    }
    kinds = dict(Gap.Kind.choices)
    parts = [
        f"{label}：{kinds.get(filters[key], filters[key]) if key == 'kind' else filters[key]}"
        for key, label in names.items()
        if filters.get(key)
    ]
    if bbox is not None:
        parts.append("范围：{:.6f},{:.6f},{:.6f},{:.6f}".format(*bbox.extent))
    return "；".join(parts) or "无"


def _gap_scope(reach: Reach, filters: dict[str, Any]) -> tuple[str, int | None]:
    """The narrowest unit the filters name, by its name where the user may see it (a code outside
    the reach is shown as typed: the list is then empty, and no name leaks), and its street."""
    if filters.get("grid_cell"):
        cell = (
            grid_cells_in_reach(reach)
            .filter(code=filters["grid_cell"])
            .select_related("community__street")
            .first()
        )
        if cell is not None:
            return f"{cell.community.street.name}{cell.community.name}{cell.name}", cell.community.street_id
        return f"网格{filters['grid_cell']}", None
    if filters.get("community"):
        community = (
            communities_in_reach(reach).filter(code=filters["community"]).select_related("street").first()
        )
        if community is not None:
            return f"{community.street.name}{community.name}", community.street_id
        return f"社区{filters['community']}", None
    if filters.get("street"):
        street = streets_in_reach(reach).filter(code=filters["street"]).first()
        if street is not None:
            return street.name, street.id
        return f"街道{filters['street']}", None
    return _reach_label(reach), _one_street_id(reach)


def _audit_changes(filters: dict[str, Any], bbox: Polygon | None, count: int, fmt: str) -> dict[str, Any]:
    shown = {
        k: (v.isoformat() if isinstance(v, date) else v) for k, v in filters.items() if v not in (None, "")
    }
    if bbox is not None:
        shown["in_bbox"] = ",".join(f"{v:.6f}" for v in bbox.extent)
    return {"format": fmt, "filters": shown, "count": count}


@transaction.atomic
def gaps_xlsx_export(
    *, reach: Reach, filters: dict[str, Any], bbox: Polygon | None = None, at: datetime | None = None
) -> ExportFile:
    """The gap list as Excel (one sheet, 覆盖缺口清单), audited."""
    at = at or timezone.now()
    today = timezone.localtime(at).date()
    resolved = bool(filters.get("resolved"))
    scope, street_id = _gap_scope(reach, filters)
    columns = [*GAP_COLUMNS, RESOLVED_COLUMN] if resolved else list(GAP_COLUMNS)
    what = "已消除缺口" if resolved else "覆盖缺口"
    gaps = list(gap_export_queryset(reach=reach, filters=filters, bbox=bbox))

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("覆盖缺口清单")
    _sheet_head(
        ws,
        title=f"{scope}{what}清单",
        note=f"导出时间：{_local(at)}　筛选：{_filters_text(filters, bbox)}　共{len(gaps)}条",
        widths=[w for _label, w in columns],
        header_rows=1,
    )
    ws.auto_filter.ref = f"A3:{get_column_letter(len(columns))}{3 + len(gaps)}"
    _header(ws, (label for label, _w in columns))
    for number, gap in enumerate(gaps, start=1):
        record = _gap_record(gap, number=number, today=today, resolved=resolved)
        row = []
        for label, _w in columns:
            value = record[label]
            if isinstance(value, datetime):
                # Excel has no time zones: the local wall-clock time, as the office reads it.
                wall = value.replace(tzinfo=None, second=0, microsecond=0)
                row.append(_cell(ws, wall, number_format=DATETIME, alignment=_TOP))
            else:
                row.append(_cell(ws, value, alignment=_WRAP if label == "说明" else _TOP))
        ws.append(row)
    content = _workbook_bytes(wb)

    _audit_export(
        object_type=Gap._meta.label,
        object_id=filters.get("grid_cell") or filters.get("community") or filters.get("street") or "",
        summary=f"导出{scope}{what}清单（Excel）{len(gaps)}条",
        changes=_audit_changes(filters, bbox, len(gaps), "xlsx"),
        street_id=street_id,
    )
    return ExportFile(content, _file_name(f"{what}清单", scope, suffix="xlsx", at=at), XLSX, len(gaps))


@transaction.atomic
def gaps_geojson_export(
    *, reach: Reach, filters: dict[str, Any], bbox: Polygon | None = None, at: datetime | None = None
) -> ExportFile:
    """The same list as GeoJSON (RFC 7946, WGS-84, 6 decimals ≈ 0.1 m): each gap a feature whose
    properties are the spreadsheet's columns, times as local "YYYY-MM-DD HH:MM"; audited."""
    at = at or timezone.now()
    today = timezone.localtime(at).date()
    resolved = bool(filters.get("resolved"))
    scope, street_id = _gap_scope(reach, filters)
    what = "已消除缺口" if resolved else "覆盖缺口"
    qs = gap_export_queryset(reach=reach, filters=filters, bbox=bbox).annotate(
        geometry=AsGeoJSON("geom", precision=6)
    )
    features = []
    for number, gap in enumerate(qs, start=1):
        record = _gap_record(gap, number=number, today=today, resolved=resolved)
        properties = {k: (_local(v) if isinstance(v, datetime) else v) for k, v in record.items()}
        features.append(
            {"type": "Feature", "id": gap.id, "geometry": json.loads(gap.geometry), "properties": properties}  # type: ignore[attr-defined]
        )
    collection = {
        "type": "FeatureCollection",
        "name": f"{scope}{what}清单",
        "exported_at": _local(at),
        "features": features,
    }
    content = json.dumps(collection, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    _audit_export(
        object_type=Gap._meta.label,
        object_id=filters.get("grid_cell") or filters.get("community") or filters.get("street") or "",
        summary=f"导出{scope}{what}清单（GeoJSON）{len(features)}条",
        changes=_audit_changes(filters, bbox, len(features), "geojson"),
        street_id=street_id,
    )
    return ExportFile(
        content, _file_name(f"{what}清单", scope, suffix="geojson", at=at), GEOJSON, len(features)
    )


# --------------------------------------------------------------------------------------------
# The indicator table
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndicatorRow:
    type: str
    code: str
    name: str
    figures: dict[str, Any]


def indicator_table(*, unit: IndicatorUnit, at: datetime) -> list[IndicatorRow]:
    """The unit's indicators and its children's, ordered by code (a community followed by its grid
    cells): a street with its communities and their current grid cells, a community with its
    current grid cells, a grid cell alone. The figures are mapping.indicators' own: one statement
    over the unit's communities (GROUPING SETS give every level at once), the rows above the unit
    left out (a community's street row would count that community only)."""
    if unit.type == UnitType.GRID_CELL or not unit.community_ids:
        return [
            IndicatorRow(unit.type, unit.code, unit.name, indicators.indicators_compute(unit=unit, at=at))
        ]
    levels = {
        UnitType.STREET: {UnitType.STREET, UnitType.COMMUNITY, UnitType.GRID_CELL},
        UnitType.COMMUNITY: {UnitType.COMMUNITY, UnitType.GRID_CELL},
    }[UnitType(unit.type)]
    # indicators_compute answers one unit; the table needs every unit of the same communities, which
    # is the snapshot's statement without its unit filter: same parameters, same figures.
    params = indicators.indicator_parameters(
        community_ids=unit.community_ids, day=timezone.localtime(at).date(), at=at
    )
    rows = [
        IndicatorRow(kind, code, name, figures)
        for kind, unit_id, code, name, figures in indicators_sql.indicator_rows(params)
        if kind in levels and (kind != unit.type or unit_id == unit.id)
    ]
    return sorted(rows, key=lambda r: r.code)


_RATE_KEYS = tuple(indicators.FORMULAS)
_TAIL_COLUMNS = (("走访次数", 10), ("未消除缺口", 10), ("缺口存在天数中位数", 12))


def _figure_cells(ws: Any, figures: dict[str, Any]) -> list[WriteOnlyCell]:
    cells = []
    for key in _RATE_KEYS:
        rate = figures.get(key) or {}
        value = rate.get("value")
        cells.append(
            _cell(ws, value, number_format=PERCENT, border=_BORDER)
            if value is not None
            else _cell(ws, "—", alignment=Alignment(horizontal="center"), border=_BORDER)
        )
        cells.append(_cell(ws, rate.get("numerator", 0), border=_BORDER))
        cells.append(_cell(ws, rate.get("denominator", 0), border=_BORDER))
    gaps = figures.get("open_gaps") or {}
    median = gaps.get("median_age_days")
    cells += [
        _cell(ws, figures.get("visits_in_window", 0), border=_BORDER),
        _cell(ws, gaps.get("open", 0), border=_BORDER),
        _cell(ws, median if median is not None else "—", border=_BORDER),
    ]
    return cells


def _indicator_header(ws: Any, lead: Sequence[str], row: int) -> None:
    """Two header rows: each rate's name over its 比率/分子/分母, the other columns merged down."""
    first: list[str] = [*lead]
    second: list[str] = [""] * len(lead)
    for key in _RATE_KEYS:
        first += [indicators.FORMULAS[key][0], "", ""]
        second += ["比率", "分子", "分母"]
    first += [label for label, _w in _TAIL_COLUMNS]
    second += [""] * len(_TAIL_COLUMNS)
    _header(ws, first)
    _header(ws, second)
    for i in range(len(lead)):
        col = get_column_letter(i + 1)
        ws.merged_cells.add(f"{col}{row}:{col}{row + 1}")
    for n in range(len(_RATE_KEYS)):
        start = len(lead) + 1 + 3 * n
        ws.merged_cells.add(f"{get_column_letter(start)}{row}:{get_column_letter(start + 2)}{row}")
    tail = len(lead) + 3 * len(_RATE_KEYS)
    for i in range(len(_TAIL_COLUMNS)):
        col = get_column_letter(tail + 1 + i)
        ws.merged_cells.add(f"{col}{row}:{col}{row + 1}")


def _figure_widths(lead: Sequence[float]) -> list[float]:
    return [*lead, *[9.0, 7.0, 7.0] * len(_RATE_KEYS), *[w for _l, w in _TAIL_COLUMNS]]


@transaction.atomic
def indicators_xlsx_export(
    *, unit: IndicatorUnit, date_from: date, date_to: date, at: datetime | None = None
) -> ExportFile:
    """The indicator table of `unit` (from indicator_unit_get, which checked the reach) and its
    children, its daily history between the dates, and the formulas; audited."""
    at = at or timezone.now()
    table = indicator_table(unit=unit, at=at)
    history = indicators.indicator_history(unit=unit, date_from=date_from, date_to=date_to)
    kind = UNIT_TYPE_LABELS.get(unit.type, "")
    children = {"street": "，含下辖社区、网格", "community": "，含下辖网格"}.get(unit.type, "")

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("覆盖指标")
    lead = ("层级", "编码", "名称")
    _sheet_head(
        ws,
        title=f"{unit.name}覆盖指标（{kind}{children}）",
        note=f"统计时间：{_local(at)}（实时计算）　比率＝分子÷分母，分母为0时记“—”　口径见“指标口径”页",
        widths=_figure_widths((8, 17, 18)),
        header_rows=2,
        frozen_columns=3,
    )
    _indicator_header(ws, lead, 3)
    indent = {UnitType.STREET: 0, UnitType.COMMUNITY: 1, UnitType.GRID_CELL: 2}
    for row in table:
        ws.append(
            [
                _cell(ws, UNIT_TYPE_LABELS.get(row.type, row.type), border=_BORDER),
                _cell(ws, row.code, border=_BORDER),
                _cell(
                    ws,
                    row.name,
                    border=_BORDER,
                    alignment=Alignment(indent=indent.get(UnitType(row.type), 0)),
                ),
                *_figure_cells(ws, row.figures),
            ]
        )

    hs = wb.create_sheet("每日历史")
    _sheet_head(
        hs,
        title=f"{unit.name}覆盖指标每日历史",
        note=f"{date_from:%Y-%m-%d} 至 {date_to:%Y-%m-%d}，每日快照（未生成快照的日子不列出），共{len(history)}天",
        widths=_figure_widths((12,)),
        header_rows=2,
        frozen_columns=1,
    )
    _indicator_header(hs, ("日期",), 3)
    if not history:
        hs.append([_cell(hs, "该期间没有指标快照（快照每晚生成）", font=_NOTE_FONT)])
    for snapshot in history:
        hs.append(
            [
                _cell(hs, snapshot.day, number_format="yyyy-mm-dd", border=_BORDER),
                *_figure_cells(hs, snapshot.figures),
            ]
        )

    fs = wb.create_sheet("指标口径")
    _sheet_head(
        fs, title="指标口径", note="与系统 /api/indicators/ 接口的口径一致", widths=(26, 100), header_rows=1
    )
    _header(fs, ("指标", "口径"))
    for name, formula in [
        *indicators.FORMULAS.values(),
        ("走访次数", indicators.VISITS_IN_WINDOW_HELP),
        ("未消除缺口", indicators.OPEN_GAPS_HELP),
    ]:
        fs.append([_cell(fs, name, alignment=_TOP), _cell(fs, formula, alignment=_WRAP)])
    content = _workbook_bytes(wb)

    count = len(table)
    street_id = _unit_street_id(unit)
    _audit_export(
        object_type=IndicatorSnapshot._meta.label,
        object_id=unit.code,
        summary=f"导出{unit.name}覆盖指标（Excel）{count}个单元、{len(history)}天历史",
        changes={
            "format": "xlsx",
            "filters": {"unit": unit.code, "from": date_from.isoformat(), "to": date_to.isoformat()},
            "count": count,
            "history_days": len(history),
        },
        street_id=street_id,
    )
    return ExportFile(content, _file_name("覆盖指标", unit.name, suffix="xlsx", at=at), XLSX, count)


def _unit_street_id(unit: IndicatorUnit) -> int | None:
    if unit.type == UnitType.STREET:
        return unit.id
    if unit.community_ids:
        return Community.objects.filter(id=unit.community_ids[0]).values_list("street_id", flat=True).first()
    return None


# --------------------------------------------------------------------------------------------
# The offline map (网格作战图)
# --------------------------------------------------------------------------------------------

# Simplify to ~1 m (1e-5 degree) and keep 6 decimals (~0.1 m): a community's few hundred
# footprints stay a few hundred kilobytes, and nothing visible at street zoom is lost.
SIMPLIFY_DEGREES = 1e-5
PRECISION = 6
OFFLINE_UNIT_LENGTHS = {12: UnitType.COMMUNITY, 15: UnitType.GRID_CELL}


class SimplifyPreserveTopology(GeomOutputGeoFunc):
    """ST_SimplifyPreserveTopology: Django has no Simplify; this one never collapses a footprint."""

    function = "ST_SimplifyPreserveTopology"


def _geojson(expression: Any) -> AsGeoJSON:
    return AsGeoJSON(SimplifyPreserveTopology(expression, Value(SIMPLIFY_DEGREES)), precision=PRECISION)


def offline_map_unit_get(*, reach: Reach, code: str) -> IndicatorUnit:
    """The grid cell (15 digits) or community (12 digits) whose offline map is asked.

    A code of another shape is a 400 (`unit_invalid`); a unit that does not exist or is not wholly
    in the caller's reach is a 404 alike, by the indicators' guard (a grid worker holds their grid
    cells, not their community: its map shows the whole community's data)."""
    code = code.strip()
    if not (code.isascii() and code.isdigit() and len(code) in OFFLINE_UNIT_LENGTHS):
        raise DomainError(
            "作战图只能按社区（12位编码）或网格（15位编码）导出",
            code="unit_invalid",
            detail={"unit": code[:32]},
        )
    return indicators.indicator_unit_get(reach=reach, code=code)


def _map_buildings(reach: Reach, unit: IndicatorUnit, at: datetime) -> list[offline_map.MapFeature]:
    """The unit's buildings with the status the buildings tile layer styles them by (its
    definitions, mapping.tiles_sql.BUILDINGS): members living there (any status) at or above
    `building_group_min_members` without a building group; else residential (residential or mixed,
    with households) and not visited since local midnight `visit_interval_days` ago; else with a
    group; else other. Most pressing first."""
    rules = settings.WANGGE_RULES
    today = timezone.localtime(at).date()
    window_start = datetime.combine(
        today - timedelta(days=int(rules["visit_interval_days"])),
        time.min,
        tzinfo=timezone.get_current_timezone(),
    )
    members = (
        PartyMember.objects.filter(residence_building=OuterRef("pk"))
        .order_by()
        .values("residence_building")
        .annotate(n=Count("pk"))
        .values("n")
    )
    last_visit = (
        Visit.objects.filter(building=OuterRef("pk")).order_by("-occurred_at").values("occurred_at")[:1]
    )
    residential = Q(kind__in=[Building.Kind.RESIDENTIAL, Building.Kind.MIXED], households__gt=0)
    unvisited = residential & (Q(last_visit__isnull=True) | Q(last_visit__lt=window_start))
    qs = buildings_in_reach(reach)
    qs = (
        qs.filter(grid_cell_id=unit.id)
        if unit.type == UnitType.GRID_CELL
        else qs.filter(community_id=unit.id)
    )
    rows = (
        qs.annotate(
            members=Coalesce(Subquery(members, output_field=IntegerField()), 0),
            has_group=Exists(
                PartyOrganisation.objects.filter(
                    kind=PartyOrganisation.Kind.BUILDING_GROUP, buildings=OuterRef("pk")
                )
            ),
            last_visit=Subquery(last_visit),
            shape=_geojson("geom"),
        )
        .annotate(
            status=Case(
                When(
                    Q(members__gte=int(rules["building_group_min_members"]), has_group=False),
                    then=Value("members_without_group"),
                ),
                When(unvisited, then=Value("not_visited")),
                When(has_group=True, then=Value("has_group")),
                default=Value("other"),
                output_field=CharField(),
            )
        )
        .order_by("code")
        .values("code", "name", "households", "members", "last_visit", "status", "shape")
    )
    return [
        offline_map.MapFeature(
            geometry=json.loads(b["shape"]),
            style_key=b["status"],
            title=b["name"],
            details=(
                ("编码", b["code"]),
                ("状态", offline_map.BUILDING_STATUS[b["status"]][0]),
                ("户数", str(b["households"])),
                ("居住党员", f"{b['members']}人"),
                (
                    "上次走访",
                    f"{timezone.localtime(b['last_visit']):%Y-%m-%d}" if b["last_visit"] else "从未走访",
                ),
            ),
        )
        for b in rows
    ]


def _map_organisations(
    reach: Reach, unit: IndicatorUnit, cell_ids: list[int]
) -> list[offline_map.MapFeature]:
    """Grid branches at a point inside their cell, building groups at the centre of their buildings."""
    orgs = party_orgs_in_reach(reach)
    current = GridBoundary.objects.filter(cell_id=OuterRef("grid_cell_id"), valid__upper_inf=True)
    branches = (
        orgs.filter(kind=PartyOrganisation.Kind.GRID_BRANCH, grid_cell_id__in=cell_ids)
        .annotate(at=Subquery(current.annotate(p=PointOnSurface("geom")).values("p")[:1]))
        .filter(at__isnull=False)
        .annotate(shape=AsGeoJSON("at", precision=PRECISION))
        .order_by("code")
        .values("kind", "code", "name", "grid_cell__name", "shape")
    )
    place = Q(grid_cell_id=unit.id) if unit.type == UnitType.GRID_CELL else Q(community_id=unit.id)
    group_buildings = Building.objects.filter(place, party_groups=OuterRef("pk"))
    centre = (
        group_buildings.order_by().values("party_groups").annotate(c=Centroid(Collect("point"))).values("c")
    )
    groups = (
        orgs.filter(kind=PartyOrganisation.Kind.BUILDING_GROUP)
        .filter(Exists(group_buildings))
        .annotate(at=Subquery(centre))
        .annotate(
            shape=AsGeoJSON("at", precision=PRECISION),
            buildings_named=Subquery(_building_names(group_buildings)),
        )
        .order_by("code")
        .values("kind", "code", "name", "buildings_named", "shape")
    )
    kinds = dict(PartyOrganisation.Kind.choices)
    out = []
    for org in [*branches, *groups]:
        where = org.get("grid_cell__name") or org.get("buildings_named") or ""
        out.append(
            offline_map.MapFeature(
                geometry=json.loads(org["shape"]),
                style_key=org["kind"],
                label=org["name"],
                title=org["name"],
                details=(("类别", kinds[org["kind"]]), ("编码", org["code"]), ("所在", where)),
            )
        )
    return out


def _building_names(buildings: QuerySet[Building]) -> Any:
    """The names of a group's buildings in the unit, "1栋、2栋", as one subquery column."""
    return (
        buildings.order_by()
        .values("party_groups")
        .annotate(names=StringAgg("name", delimiter="、", order_by="code"))
        .values("names")
    )


def _map_gaps(
    reach: Reach, unit: IndicatorUnit, at: datetime
) -> tuple[list[offline_map.MapFeature], list[offline_map.MapFeature]]:
    """Open gaps of the unit (as /api/gaps/ lists them for the user): (areas, points)."""
    today = timezone.localtime(at).date()
    key = "grid_cell" if unit.type == UnitType.GRID_CELL else "community"
    qs = (
        gap_export_queryset(reach=reach, filters={key: unit.code}, bbox=None)
        .annotate(shape=_geojson("geom"))
        .order_by("-severity", "since", "id")
    )
    areas: list[offline_map.MapFeature] = []
    points: list[offline_map.MapFeature] = []
    for gap in qs:
        age = (today - timezone.localtime(gap.since).date()).days
        geometry = json.loads(gap.shape)  # type: ignore[attr-defined]
        feature = offline_map.MapFeature(
            geometry=geometry,
            style_key=str(gap.severity),
            title=gap.get_kind_display(),
            details=(
                ("对象", gap.subject_label or gap.subject_code),
                ("兜底责任组织", gap.responsible or "（无）"),  # type: ignore[attr-defined]
                ("已持续", f"{age}天"),
                ("发现时间", _local(gap.since)),
                ("严重程度", gap.get_severity_display()),
                ("说明", gap_figures_text(gap.kind, gap.figures or {})),
            ),
        )
        (points if geometry["type"] in ("Point", "MultiPoint") else areas).append(feature)
    return areas, points


def map_title(name: str) -> str:
    """The map's title: 海滨社区网格作战图, 龙腾名苑网格作战图 (not …网格网格作战图)."""
    return f"{name}作战图" if name.endswith("网格") else f"{name}网格作战图"


@dataclass(frozen=True)
class OfflineMapSummary:
    buildings: int
    organisations: int
    gaps: int
    cells: int


def offline_map_content(
    *, reach: Reach, unit: IndicatorUnit, at: datetime
) -> tuple[offline_map.MapContent, OfflineMapSummary]:
    """Everything the offline map of `unit` shows, each part read through the reach's guards."""
    if unit.type == UnitType.GRID_CELL:
        cell = (
            grid_cells_in_reach(reach)
            .filter(id=unit.id)
            .select_related("community__street")
            .annotate(
                shape=Subquery(
                    GridBoundary.objects.filter(cell_id=OuterRef("pk"), valid__upper_inf=True)
                    .annotate(s=_geojson("geom"))
                    .values("s")[:1]
                )
            )
            .first()
        )
        if cell is None or cell.shape is None:  # type: ignore[attr-defined]
            raise DomainError(f"网格 {unit.code} 已无现行边界，无法导出作战图", code="unit_without_outline")
        community, street = cell.community, cell.community.street
        outline_shape = cell.shape  # type: ignore[attr-defined]
        cells: list[offline_map.MapFeature] = []
        cell_ids = [cell.id]
        place = f"{street.name}{community.name}"
    else:
        community_row = (
            communities_in_reach(reach)
            .filter(id=unit.id)
            .select_related("street")
            .annotate(shape=_geojson("geom"))
            .first()
        )
        if community_row is None:  # indicator_unit_get found it a moment ago: deleted since
            raise NotInReach
        community, street = community_row, community_row.street
        outline_shape = community_row.shape  # type: ignore[attr-defined]
        current = (
            GridBoundary.objects.filter(
                cell__in=grid_cells_in_reach(reach).filter(community_id=unit.id), valid__upper_inf=True
            )
            .annotate(shape=_geojson("geom"))
            .order_by("cell__code")
            .values("cell_id", "cell__code", "cell__name", "cell__responsible_body", "shape")
        )
        cells = [
            offline_map.MapFeature(
                geometry=json.loads(c["shape"]),
                label=c["cell__name"],
                title=c["cell__name"],
                details=(
                    ("编码", c["cell__code"]),
                    ("责任主体", c["cell__responsible_body"] or f"{community.name}（属地兜底）"),
                ),
            )
            for c in current
        ]
        cell_ids = [c["cell_id"] for c in current]
        place = street.name
    outline_geometry = json.loads(outline_shape)
    buildings = _map_buildings(reach, unit, at)
    organisations = _map_organisations(reach, unit, cell_ids)
    gap_areas, gap_points = _map_gaps(reach, unit, at)
    content = offline_map.MapContent(
        title=map_title(unit.name),
        subtitle=f"{place}　编码 {unit.code}　导出时间 {_local(at)}",
        outline=offline_map.MapFeature(
            geometry=outline_geometry, title=unit.name, details=(("编码", unit.code),)
        ),
        cells=cells,
        buildings=buildings,
        organisations=organisations,
        gap_areas=gap_areas,
        gap_points=gap_points,
        bounds=_bounds(outline_geometry),
        basemap_url=getattr(settings, "BASEMAP_TILES_URL", "") or "",
        basemap_attribution=getattr(settings, "BASEMAP_ATTRIBUTION", "") or "",
    )
    summary = OfflineMapSummary(
        len(buildings), len(organisations), len(gap_areas) + len(gap_points), len(cells)
    )
    return content, summary


def _bounds(geometry: dict[str, Any]) -> tuple[float, float, float, float]:
    def points(coords: Any) -> Iterable[tuple[float, float]]:
        if coords and isinstance(coords[0], int | float):
            yield coords[0], coords[1]
        else:
            for part in coords:
                yield from points(part)

    xs, ys = zip(*points(geometry["coordinates"]), strict=True)
    return min(xs), min(ys), max(xs), max(ys)


@transaction.atomic
def offline_map_export(*, reach: Reach, unit: IndicatorUnit, at: datetime | None = None) -> ExportFile:
    """The offline map of `unit` (from offline_map_unit_get) as one self-contained HTML file; audited."""
    at = at or timezone.now()
    content, summary = offline_map_content(reach=reach, unit=unit, at=at)
    page = offline_map.offline_map_html(content).encode("utf-8")
    _audit_export(
        object_type=(GridCell if unit.type == UnitType.GRID_CELL else Community)._meta.label,
        object_id=unit.code,
        summary=f"导出{map_title(unit.name)}（离线HTML）：楼栋{summary.buildings}、党组织{summary.organisations}、缺口{summary.gaps}",
        changes={
            "format": "html",
            "filters": {"unit": unit.code},
            "count": summary.buildings + summary.organisations + summary.gaps,
            "buildings": summary.buildings,
            "organisations": summary.organisations,
            "gaps": summary.gaps,
            "grid_cells": summary.cells,
            "bytes": len(page),
        },
        street_id=_unit_street_id(unit),
    )
    return ExportFile(
        page, _file_name("网格作战图", unit.name, suffix="html", at=at), HTML, summary.buildings
    )
