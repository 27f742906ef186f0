"""The ledger list as Excel (民情台账导出): the cases the caller sees under the page's filters, one
row each, audited like the dashboard's exports (one AuditEvent of action export: who, what, how
many, under which filters)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from openpyxl import Workbook

from grid.access import Reach
from grid.audit import audit_record
from grid.models import AuditEvent
from orgs import cases_selectors as selectors
from orgs.cases_models import Case

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_ROWS = 50_000  # a district year is ~200k cases: a street's year fits, the district must filter
COLUMNS = [
    ("编号", 8),
    ("上报时间", 17),
    ("类别", 12),
    ("状态", 12),
    ("来源", 11),
    ("社区", 14),
    ("网格", 17),
    ("地址", 24),
    ("问题描述", 40),
    ("承办单位", 20),
    ("本环节时限", 17),
    ("超期", 6),
    ("督办层级", 8),
    ("办结时间", 17),
]


@dataclass(frozen=True)
class LedgerFile:
    content: bytes
    filename: str
    count: int


def _wall(value: datetime | None) -> datetime | None:
    # Excel has no time zones: the local wall-clock time, as the office reads it.
    return None if value is None else timezone.localtime(value).replace(tzinfo=None, second=0, microsecond=0)


@transaction.atomic
def ledger_xlsx_export(*, reach: Reach, filters: dict[str, Any], at: datetime | None = None) -> LedgerFile:
    at = at or timezone.now()
    qs = selectors.case_list(reach=reach, now=at, **filters)
    rows = list(
        qs.select_related(None)
        .order_by("-reported_at", "-id")
        .values(
            "id",
            "reported_at",
            "category__name",
            "state",
            "source",
            "community__name",
            "grid_cell__code",
            "address",
            "description",
            "assignee_name",
            "deadline",
            "escalation_level",
            "closed_at",
        )[: MAX_ROWS + 1]
    )
    if len(rows) > MAX_ROWS:
        from edge.errors import DomainError

        raise DomainError(f"导出超过{MAX_ROWS}条，请缩小筛选范围", code="export_too_large")
    states, sources = dict(Case.State.choices), dict(Case.Source.choices)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("民情台账")
    for index, (_label, width) in enumerate(COLUMNS):
        ws.column_dimensions[chr(ord("A") + index)].width = width
    ws.append([f"民情台账（导出时间：{timezone.localtime(at):%Y-%m-%d %H:%M}，共{len(rows)}条）"])
    ws.append([label for label, _w in COLUMNS])
    late = Q(state__in=Case.OPEN_STATES, deadline__lt=at)
    overdue_ids = set(qs.filter(late).values_list("id", flat=True)) if rows else set()
    for r in rows:
        ws.append(
            [
                r["id"],
                _wall(r["reported_at"]),
                r["category__name"],
                states.get(r["state"], r["state"]),
                sources.get(r["source"], r["source"]),
                r["community__name"],
                r["grid_cell__code"] or "",
                r["address"],
                r["description"],
                r["assignee_name"],
                _wall(r["deadline"]),
                "是" if r["id"] in overdue_ids else "",
                r["escalation_level"] or "",
                _wall(r["closed_at"]),
            ]
        )
    buffer = io.BytesIO()
    wb.save(buffer)
    shown = {
        k: (v.isoformat() if hasattr(v, "isoformat") else v)
        for k, v in filters.items()
        if v not in (None, "")
    }
    audit_record(
        action=AuditEvent.Action.EXPORT,
        object_type=Case._meta.label,
        summary=f"导出民情台账（Excel）{len(rows)}条",
        changes={"filters": shown, "count": len(rows), "format": "xlsx"},
        street_id=next(iter(reach.street_ids), None) if len(reach.street_ids) == 1 else None,
    )

    return LedgerFile(buffer.getvalue(), f"民情台账_{timezone.localtime(at):%Y%m%d-%H%M}.xlsx", len(rows))
