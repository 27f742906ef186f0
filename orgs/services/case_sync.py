"""Cases raised on the tablet (offline, usually from a visit), synced exactly once.

The rules of orgs/sync.py: the tablet gives each case its UUID when it is raised; a batch is sent
again whole after a lost answer; the server answers each item created, duplicate (already held
under that id, same reporter and content) or rejected with a stable code and a Chinese message;
one item's refusal never stops the others. A case names the visit it came from by the visit's
UUID: the tablet syncs visits before cases, so the visit is on the server first.

Each case goes through the ledger's own create service (orgs.services.cases.case_create), which
routes it, counts its deadline and writes its audit row; a batch holds a few cases at most (one
worker's day), so calling it once per item is the set-based choice's equal here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction

from edge.errors import DomainError
from grid.access import Reach, buildings_in_reach
from orgs import access
from orgs.cases_models import Case, CaseCategory
from orgs.services.cases import case_create
from orgs.sync import CREATED, DUPLICATE, ItemResult, Position, SyncResult, rejected

__all__ = ["CaseItem", "cases_sync"]


@dataclass(frozen=True)
class CaseItem:
    """One case of a batch, as the edge parsed it (shape checked, nothing looked up yet)."""

    index: int
    id: uuid.UUID
    reported_at: datetime
    category_id: int
    description: str
    position: Position | None = None
    building_code: str = ""
    visit_id: uuid.UUID | None = None
    address: str = ""
    resident_name: str = ""
    resident_phone: str = ""


def _same(case: Case, item: CaseItem, user: Any) -> bool:
    """Whether the held case is this item sent again (not another case under a reused id)."""
    return (
        case.reporter_id == user.pk
        and case.category_id == item.category_id
        and case.description == item.description.strip()
        and case.source_visit_id == item.visit_id
    )


def cases_sync(
    *, reach: Reach, user: Any, items: Sequence[CaseItem], refused: Sequence[ItemResult] = ()
) -> SyncResult:
    """Raise the cases of a batch sent by `user`, each at most once. `reach`: where the caller logs
    events (the create service checks each case's place against it again)."""
    result = SyncResult(results=list(refused))
    # What is already held and what the items name: one query each, whatever the batch.
    held = {c.client_id: c for c in Case.objects.filter(client_id__in=[i.id for i in items])}
    categories = {c.pk: c for c in CaseCategory.objects.filter(pk__in={i.category_id for i in items})}
    visit_ids = {i.visit_id for i in items if i.visit_id is not None}
    visits = {v.pk: v for v in access.visits_in_reach(reach).filter(pk__in=visit_ids)}
    codes = {i.building_code for i in items if i.building_code}
    buildings = {b.code: b for b in buildings_in_reach(reach).filter(code__in=codes)}
    for item in items:
        result.results.append(_one(reach, user, item, held, categories, visits, buildings))
    return result


@dataclass
class _Resolved:
    category: CaseCategory
    visit: Any
    building: Any
    position: Position | None


def _resolve(
    item: CaseItem,
    categories: dict[int, CaseCategory],
    visits: dict[uuid.UUID, Any],
    buildings: dict[str, Any],
) -> _Resolved | ItemResult:
    """What the item names, looked up in the caller's reach (missing and forbidden read alike)."""
    category = categories.get(item.category_id)
    if category is None:
        return rejected(item.index, item.id, "not_found", f"事项类别 {item.category_id} 不存在")
    visit = visits.get(item.visit_id) if item.visit_id is not None else None
    if item.visit_id is not None and visit is None:
        return rejected(item.index, item.id, "not_found", f"走访记录 {item.visit_id} 不存在或不在您负责的范围内")
    building = buildings.get(item.building_code) if item.building_code else None
    if item.building_code and building is None:
        return rejected(item.index, item.id, "not_found", f"楼栋 {item.building_code} 不存在或不在您负责的范围内")
    # Without its own position or building, a case from a visit stands where the visit counts.
    position = item.position
    if position is None and building is None and visit is not None:
        building = visit.building
        if building is None:
            position = Position(lon=visit.place.x, lat=visit.place.y, crs="wgs84", accuracy_m=visit.accuracy_m)
    return _Resolved(category, visit, building, position)


def _one(
    reach: Reach,
    user: Any,
    item: CaseItem,
    held: dict[uuid.UUID | None, Case],
    categories: dict[int, CaseCategory],
    visits: dict[uuid.UUID, Any],
    buildings: dict[str, Any],
) -> ItemResult:
    case = held.get(item.id)
    if case is not None:
        if _same(case, item, user):
            return ItemResult(index=item.index, id=str(item.id), status=DUPLICATE)
        return rejected(item.index, item.id, "sync_id_conflict", "该事项编号已被其他内容使用，请重新上报")
    found = _resolve(item, categories, visits, buildings)
    if isinstance(found, ItemResult):
        return found
    try:
        with transaction.atomic():
            case_create(
                reach=reach,
                user=user,
                category=found.category,
                description=item.description,
                source=Case.Source.VISIT,
                position=found.position,
                building=found.building,
                address=item.address,
                resident_name=item.resident_name,
                resident_phone=item.resident_phone,
                reported_at=item.reported_at,
                source_visit=found.visit,
                client_id=item.id,
            )
    except DomainError as exc:
        if exc.code == "case_client_id_conflict":
            # The same batch sent twice at once: the other request stored it first.
            again = Case.objects.filter(client_id=item.id).first()
            if again is not None and _same(again, item, user):
                return ItemResult(index=item.index, id=str(item.id), status=DUPLICATE)
            return rejected(item.index, item.id, "sync_id_conflict", "该事项编号已被其他内容使用，请重新上报")
        return rejected(item.index, item.id, exc.code, exc.message)
    return ItemResult(index=item.index, id=str(item.id), status=CREATED)
