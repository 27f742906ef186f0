"""Granting and revoking roles: who may hand out which reach, and the audit row of every change.

A role is reach: granting one is as sensitive as any write, so each grant and revoke is one
transaction with its audit row (action grant / revoke), and the grantor's own reach bounds it:
- superusers grant anything;
- a street admin (manage_users over a street) grants any place role over that street or a unit
  inside it, never the system-wide operator role;
- an operator (manage_users, no place) manages accounts, not places: only the operator role.

These two services are the only writers of role assignments, so they are where the cached
reaches of the map's tiles are dropped (grid.reach_cache.roles_changed).
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from grid.access import CAPABILITIES, Reach
from grid.audit import actor_for_user, audit_record
from grid.errors import GridError
from grid.models import AuditEvent, Community, GridCell, Role, RoleAssignment, Street
from grid.reach_cache import roles_changed

MANAGE = "manage_users"


def _manage_street_ids(reach: Reach) -> frozenset[int]:
    """Streets where the grantor holds a role with manage_users (a street admin of a single
    community manages nothing: roles are handed out by the street)."""
    granting = CAPABILITIES[MANAGE]
    return frozenset(
        unit_id
        for (kind, unit_id), roles in reach.unit_roles.items()
        if kind == "street" and roles & granting
    )


def role_assignments_manageable(
    *, reach: Reach, qs: QuerySet[RoleAssignment] | None = None
) -> QuerySet[RoleAssignment]:
    """The assignments `reach` may see and revoke in the admin."""
    qs = RoleAssignment.objects.all() if qs is None else qs
    if reach.everything:
        return qs
    if not reach.can(MANAGE):
        return qs.none()
    streets = _manage_street_ids(reach)
    q = (
        Q(street_id__in=streets)
        | Q(community__street_id__in=streets)
        | Q(grid_cell__community__street_id__in=streets)
    )
    if Role.OPERATOR in reach.roles:
        q |= Q(role=Role.OPERATOR)
    return qs.filter(q)


def _unit_street_id(
    street: Street | None, community: Community | None, grid_cell: GridCell | None
) -> int | None:
    if street is not None:
        return street.pk
    if community is not None:
        return community.street_id
    if grid_cell is not None:
        return Community.objects.filter(pk=grid_cell.community_id).values_list("street_id", flat=True).first()
    return None


def role_grant_check(
    *,
    role: str,
    user: Any = None,
    street: Street | None = None,
    community: Community | None = None,
    grid_cell: GridCell | None = None,
    by: Reach | None = None,
) -> None:
    """Refuse a grant that is malformed, already held, or beyond the grantor's reach (`by`;
    None = the system acting, e.g. a management command)."""
    if role not in Role.values:
        raise GridError(f"未知角色：{role}", code="role_unknown")
    units = [u for u in (street, community, grid_cell) if u is not None]
    if role == Role.OPERATOR and units:
        raise GridError("系统运维角色不对应任何街道、社区或网格", code="role_unit_invalid")
    if role != Role.OPERATOR and len(units) != 1:
        raise GridError("请选择且只选择一个街道、社区或网格", code="role_unit_invalid")
    if (
        user is not None
        and RoleAssignment.objects.filter(
            user=user,
            role=role,
            street=street,
            community=community,
            grid_cell=grid_cell,
            revoked_at__isnull=True,
        ).exists()
    ):
        raise GridError("该用户已拥有这一授权", code="role_duplicate")
    if by is None or by.everything:
        return
    if not by.can(MANAGE):
        raise GridError("您的角色不能授予或撤销角色", code="role_not_allowed")
    if role == Role.OPERATOR:
        if Role.OPERATOR not in by.roles:
            raise GridError("只有系统运维可以授予系统运维角色", code="role_not_allowed")
        return
    if _unit_street_id(street, community, grid_cell) not in _manage_street_ids(by):
        raise GridError("只能在您管理的街道范围内授予角色", code="role_outside_reach")


def _describe(assignment: RoleAssignment) -> dict[str, Any]:
    unit_kind, unit = next(
        (
            (k, u)
            for k, u in (
                ("street", assignment.street),
                ("community", assignment.community),
                ("grid_cell", assignment.grid_cell),
            )
            if u is not None
        ),
        ("system", None),
    )
    return {
        "user_id": assignment.user_id,
        "username": assignment.user.get_username(),
        "role": assignment.role,
        "unit_kind": unit_kind,
        "unit_id": unit.pk if unit is not None else None,
        "unit_code": getattr(unit, "code", None),
    }


@transaction.atomic
def role_grant(
    *,
    user: Any,
    role: str,
    street: Street | None = None,
    community: Community | None = None,
    grid_cell: GridCell | None = None,
    reason: str = "",
    by: Reach | None = None,
) -> RoleAssignment:
    """Give `user` `role` over one unit, checked against the grantor's reach `by`."""
    role_grant_check(user=user, role=role, street=street, community=community, grid_cell=grid_cell, by=by)
    try:
        with transaction.atomic():
            assignment = RoleAssignment.objects.create(
                user=user, role=role, street=street, community=community, grid_cell=grid_cell
            )
    except IntegrityError as exc:
        # A concurrent identical grant won the partial unique index between check and insert.
        raise GridError("该用户已拥有这一授权", code="role_duplicate") from exc
    roles_changed()
    unit = street or community or grid_cell
    audit_record(
        action=AuditEvent.Action.GRANT,
        object_type=RoleAssignment._meta.label,
        object_id=assignment.pk,
        summary=f"授予 {user.get_username()} {assignment.get_role_display()}（{unit or '全系统'}）",
        changes=_describe(assignment),
        reason=reason,
        street_id=_unit_street_id(street, community, grid_cell),
    )
    return assignment


@transaction.atomic
def role_revoke(*, assignment: RoleAssignment, reason: str = "", by: Reach | None = None) -> bool:
    """End an assignment (the row stays for the record). False, and no audit row, if it had
    already ended: a repeated revoke changes nothing."""
    if (
        by is not None
        and not role_assignments_manageable(
            reach=by, qs=RoleAssignment.objects.filter(pk=assignment.pk)
        ).exists()
    ):
        raise GridError("该授权不在您管理的范围内", code="role_outside_reach")
    now = timezone.now()
    # Conditional UPDATE: of two concurrent revokes, exactly one changes the row and audits it.
    changed = RoleAssignment.objects.filter(pk=assignment.pk, revoked_at__isnull=True).update(revoked_at=now)
    if not changed:
        return False
    roles_changed()
    assignment.revoked_at = now
    audit_record(
        action=AuditEvent.Action.REVOKE,
        object_type=RoleAssignment._meta.label,
        object_id=assignment.pk,
        summary=f"撤销 {assignment}",
        changes=_describe(assignment),
        reason=reason,
        street_id=_unit_street_id(assignment.street, assignment.community, assignment.grid_cell),
    )
    return True


# --------------------------------------------------------------------------------------------
# API tokens (tablets and scripted clients): one service per write, each with its audit row
# --------------------------------------------------------------------------------------------


@transaction.atomic
def api_token_issue(*, user: Any, ip: str | None = None) -> str:
    """The user's API token (made on first sign-in, the same one after), with the login audit row."""
    from rest_framework.authtoken.models import Token

    token, _ = Token.objects.get_or_create(user=user)
    audit_record(
        action="login",
        object_type="auth.User",
        object_id=user.pk,
        summary="平板令牌登录",
        actor=actor_for_user(user, ip),
    )
    return str(token.key)


@transaction.atomic
def api_token_revoke(*, user: Any) -> bool:
    """Delete the user's token (signing every device of theirs out); False if there was none."""
    from rest_framework.authtoken.models import Token

    deleted, _ = Token.objects.filter(user=user).delete()
    audit_record(
        action="revoke",
        object_type="authtoken.Token",
        object_id=user.pk,
        summary="注销平板令牌" if deleted else "注销（无有效令牌）",
    )
    return bool(deleted)
