"""Writes to enterprises and social organisations (两新组织): located by their point, once, in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.gis.geos import Point
from django.db import transaction

from grid.access import Reach
from grid.audit import audit_record
from grid.changes import communities_changed
from grid.models import STORAGE_SRID, AuditEvent, Building, Community
from orgs import plausibility, sql
from orgs.errors import OrgError, TreeMismatch
from orgs.models import (
    Cadre,
    Enterprise,
    PartyOrganisation,
)
from orgs.services.common import (
    audit,
    changed_fields,
    community_street_id,
    ensure_editable,
    locked_for_update,
    snapshot,
)
from orgs.services.organisations import Kind

# ---------------------------------------------------------------------------------------------
# Enterprises (两新组织)


def _enterprise_point(point: Point | None, building: Building | None) -> Point:
    if point is None:
        if building is None:
            raise OrgError("两新组织必须给出位置或所在楼栋", code="enterprise_location_missing")
        return Building.objects.values_list("point", flat=True).get(pk=building.pk)
    if point.srid not in (None, STORAGE_SRID):
        # Conversion from GCJ-02 etc. happens once, at the edge (grid/coords.py); not here.
        raise OrgError(f"位置坐标系应为 EPSG:{STORAGE_SRID}", code="crs_mismatch")
    return Point(point.x, point.y, srid=STORAGE_SRID)


def _check_enterprise_links(enterprise: Enterprise) -> None:
    street_id = enterprise.community.street_id if enterprise.community else None
    branch = enterprise.covering_joint_branch
    if branch is not None:
        if branch.kind != Kind.JOINT_BRANCH:
            raise OrgError("覆盖的党组织必须是联合党支部", code="enterprise_joint_branch_kind")
        if branch.street_id != street_id:
            raise TreeMismatch("联合党支部与两新组织不在同一街道", code="enterprise_joint_branch_street")
    if enterprise.instructor is not None and enterprise.instructor.street_id != street_id:
        raise TreeMismatch("党建指导员与两新组织不在同一街道", code="enterprise_instructor_street")


def enterprise_check(
    *,
    point: Point | None,
    building: Building | None,
    covering_joint_branch: PartyOrganisation | None = None,
    instructor: Cadre | None = None,
) -> None:
    """Raise an OrgError unless an enterprise placed by this point (or, without one, its
    building) with these links may be written: a community covers it, and its joint branch and
    instructor belong to that community's street.

    Pure: reads only; the admin's form calls it. The community is the one `sql.enterprises_locate`
    would choose (covering, lowest code first); the write itself still places it in SQL."""
    located = _enterprise_point(point, building)
    community = Community.objects.filter(geom__covers=located).order_by("code").first()
    if community is None:
        raise OrgError("该位置不在任何社区范围内", code="enterprise_outside_communities")
    _check_enterprise_links(
        Enterprise(community=community, covering_joint_branch=covering_joint_branch, instructor=instructor)
    )


def _locate_and_check(enterprise: Enterprise) -> Enterprise:
    sql.enterprises_locate([enterprise.pk])
    enterprise.refresh_from_db(fields=["community"])
    if enterprise.community_id is None:
        raise OrgError(f"“{enterprise.name}”的位置不在任何社区范围内", code="enterprise_outside_communities")
    _check_enterprise_links(enterprise)
    return enterprise


@transaction.atomic
def enterprise_create(
    *,
    reach: Reach | None = None,
    name: str,
    kind: str = Enterprise.Kind.ENTERPRISE,
    credit_code: str = "",
    point: Point | None = None,
    building: Building | None = None,
    employee_count: int = 0,
    covering_joint_branch: PartyOrganisation | None = None,
    instructor: Cadre | None = None,
) -> Enterprise:
    """Create an enterprise/social organisation; its community is found from its point (or building)."""
    credit_code = plausibility.check_credit_code(credit_code) if credit_code.strip() else ""
    if credit_code and Enterprise.objects.filter(credit_code=credit_code).exists():
        raise OrgError(f"统一社会信用代码 {credit_code} 已登记", code="enterprise_credit_code_taken")
    enterprise = Enterprise.objects.create(
        name=name,
        kind=kind,
        credit_code=credit_code,
        building=building,
        geom=_enterprise_point(point, building),
        employee_count=employee_count,
        covering_joint_branch=covering_joint_branch,
        instructor=instructor,
    )
    enterprise = _locate_and_check(enterprise)
    audit(
        AuditEvent.Action.CREATE,
        enterprise,
        f"新增两新组织“{enterprise.name}”",
        changes=snapshot(enterprise, sorted(ENTERPRISE_FIELDS | {"community"})),
        street_id=community_street_id(enterprise.community_id),
    )
    communities_changed([enterprise.community_id])
    ensure_editable(reach, enterprise)
    return enterprise


ENTERPRISE_FIELDS = {
    "name",
    "kind",
    "credit_code",
    "building",
    "employee_count",
    "covering_joint_branch",
    "instructor",
}


@transaction.atomic
def enterprise_update(
    *, reach: Reach | None = None, enterprise: Enterprise, point: Point | None = None, **changes: Any
) -> Enterprise:
    locked = locked_for_update(
        enterprise, changes, allowed=ENTERPRISE_FIELDS, code="enterprise_field_unknown", reach=reach
    )
    watched = sorted(set(changes) | {"community"})
    before = snapshot(locked, watched)
    before_geom = locked.geom.ewkt
    for field, value in changes.items():
        setattr(locked, field, value)
    if "credit_code" in changes:
        code = (locked.credit_code or "").strip()
        locked.credit_code = plausibility.check_credit_code(code) if code else ""
        if (
            locked.credit_code
            and Enterprise.objects.filter(credit_code=locked.credit_code).exclude(pk=locked.pk).exists()
        ):
            raise OrgError(
                f"统一社会信用代码 {locked.credit_code} 已登记", code="enterprise_credit_code_taken"
            )
    if point is not None or "building" in changes:
        locked.geom = _enterprise_point(point, locked.building if point is None else None)
    locked.save()
    locked = _locate_and_check(locked)
    diff = changed_fields(before, snapshot(locked, watched))
    if locked.geom.ewkt != before_geom:
        diff["geom"] = [before_geom, locked.geom.ewkt]
    audit(
        AuditEvent.Action.UPDATE,
        locked,
        f"修改两新组织“{locked.name}”",
        changes=diff,
        street_id=community_street_id(locked.community_id),
    )
    communities_changed([before["community"], locked.community_id])
    ensure_editable(reach, locked)
    return locked


@transaction.atomic
def enterprises_locate(*, enterprise_ids: Sequence[int] | None = None) -> int:
    """Recompute enterprises' communities from their points (all when None)."""
    return sql.enterprises_locate(enterprise_ids)


def enterprises_follow_outlines(*, community_ids: Sequence[int]) -> int:
    """Move the enterprises whose community a change of these outlines changed; returns how many.

    An outline listener (settings.WANGGE_OUTLINE_LISTENERS, called by grid.changes inside the
    transaction that changed the outlines), so an edit in the admin, an import or a planner's
    redraw cannot leave an enterprise in a community whose outline no longer holds it. An
    enterprise that no outline covers any more keeps no community (and shows as such) rather than
    blocking the space edit. The communities enterprises moved into are marked changed too.
    """
    candidates = sql.enterprises_near_outlines(community_ids)
    if not candidates:
        return 0
    before = dict(candidates)
    moved = sql.enterprises_locate(list(before))
    if not moved:
        return 0
    after = dict(Enterprise.objects.filter(pk__in=list(before)).values_list("pk", "community_id"))
    changed = {pk: (before[pk], after[pk]) for pk in before if before[pk] != after[pk]}
    communities_changed({c for pair in changed.values() for c in pair} - set(community_ids))
    audit_record(
        action=AuditEvent.Action.UPDATE,
        object_type=Enterprise._meta.label,
        object_id=str(next(iter(changed))) if len(changed) == 1 else "",
        summary=f"社区边界调整后，{len(changed)}个两新组织的所在社区随之更新",
        changes={"community": {str(pk): list(pair) for pk, pair in sorted(changed.items())}},
    )
    return len(changed)
