"""Correcting a synced visit (走访记录更正): the edit names the version it replaces; a stale edit
is refused with 409 and never applied over a newer one.

The check and the write are one conditional UPDATE (WHERE version = the named one): of two edits
racing on one version exactly one matches, whatever the timing, without holding a lock across the
request. Only what the worker wrote may change (summary, household); where and when the visit
counts came from the device and the boundaries of its day, and stay as synced.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.db.models import F

from edge.errors import Conflict, DomainError, NotInReach, OutsideEditReach
from grid.access import Reach
from grid.audit import audit_record
from grid.models import AuditEvent
from orgs import access
from orgs.models import Visit

__all__ = ["VISIT_EDITABLE", "visit_correct"]

VISIT_EDITABLE = ("summary", "household")
_MAX = {"summary": 2000, "household": 32}


@transaction.atomic
def visit_correct(
    *, reach: Reach, user: Any, visit_id: uuid.UUID, expected_version: int, changes: dict[str, Any]
) -> Visit:
    """Apply `changes` to the visit if it is still at `expected_version`; answers it as stored.

    Refusals write nothing: not_found (missing or not in reach), outside_edit_reach (seen, not
    logged at), visit_field_not_editable, invalid_input, visit_stale (409: a newer version exists).
    """
    visit = access.visits_in_reach(reach).filter(pk=visit_id).select_related("community").first()
    if visit is None:
        raise NotInReach
    if not access.visits_in_reach(access.capability_reach(reach, "log_events")).filter(pk=visit_id).exists():
        raise OutsideEditReach("该走访记录不在您负责的网格内，不能更正", code="outside_edit_reach")
    unknown = sorted(set(changes) - set(VISIT_EDITABLE))
    if unknown:
        raise DomainError(
            f"只能更正情况记录和户（门牌/房号），不能修改：{'、'.join(unknown)}",
            code="visit_field_not_editable",
            detail={"fields": unknown},
        )
    clean: dict[str, str] = {}
    for name, value in changes.items():
        if not isinstance(value, str) or len(value.strip()) > _MAX[name]:
            raise DomainError(f"{name} 须为不超过 {_MAX[name]} 字的文本", code="invalid_input", detail={"field": name})
        clean[name] = value.strip()
    before = {name: getattr(visit, name) for name in clean}
    updated = Visit.objects.filter(pk=visit_id, version=expected_version).update(
        version=F("version") + 1, **clean
    )
    if updated == 0:
        current = Visit.objects.values_list("version", flat=True).get(pk=visit_id)
        raise Conflict(
            f"该走访记录已被更正过（当前为第 {current} 版，您修改的是第 {expected_version} 版），请刷新后重新更正",
            code="visit_stale",
            detail={"version": current},
        )
    visit.refresh_from_db()
    audit_record(
        action=AuditEvent.Action.UPDATE,
        object_type=Visit._meta.label,
        object_id=visit.pk,
        summary=f"更正走访记录（第 {expected_version} 版 → 第 {visit.version} 版）",
        changes={name: [before[name], clean[name]] for name in clean if before[name] != clean[name]},
        street_id=visit.community.street_id,
    )
    return visit
