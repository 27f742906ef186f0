"""Writes to the residents' cases (民情台账): raising a case, moving it along the loop, escalating
the overdue ones, and the street office's categories and working calendar.

The rules of the loop, stated once (the table itself is orgs.cases_models.FLOW):

- One call per transition (`case_transition`): it locks the case, checks in this order who may act
  (a case outside the caller's reach is "not found", a role that cannot take this action is 403
  `case_action_forbidden`), that the caller saw the current version (409 `case_stale`), and that the
  action is allowed from the current state (400 `case_transition_not_allowed`); then it writes the
  case, one CaseTransition row and one audit row in the same transaction. A refusal writes nothing.
- Every transition bumps `version`; a client that names the version it saw (`expected_version`)
  never applies an action over one it did not see (the tablet's stale edit, two clerks at once).
  The 督办 sweep does not bump it: an escalation is no reason to refuse the handler's next step.
- Each open state has a deadline: the category's limit for that step, counted in working hours on
  the calendar (orgs.calendar, holidays as data), or in continuous hours for an urgent category.
  签收处理 keeps the deadline set at 派遣 (处置时限 covers both). A step finished after its deadline
  is marked overdue on its transition and on the case (`ever_overdue`, which 按期办结率 reads).
- 派遣 routes to the grid's responsible body, else the category's default body, else the
  territorial unit (属地兜底: the community's party organisation, then the street working
  committee, else the community by name): never nobody. A dispatcher may name the body instead.
- Overdue cases are escalated (督办) by `cases_escalate_overdue`: to the assignee's parent
  organisation, then one level further up after each further step limit, to the street working
  committee at most; each escalation is a visible transition with its level. The write is a
  conditional UPDATE, so a sweep run twice (or two at once) escalates nothing twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from edge.errors import Conflict, DomainError, NotInReach, OutsideEditReach, reference_not_found
from grid import coords
from grid.access import Reach
from grid.audit import audit_record
from grid.changes import communities_changed
from grid.models import AuditEvent, Building, Community
from orgs import access, cases_sql, pii, sql
from orgs import cases_selectors as selectors
from orgs.calendar import WorkDays, deadline_after
from orgs.cases_models import (
    FLOW,
    MAX_DUPLICATE_RADIUS_M,
    POSITION_REQUIRED,
    REASON_REQUIRED,
    STEP_LIMIT_FIELD,
    Case,
    CaseCategory,
    CaseTransition,
    WorkCalendarDay,
)
from orgs.models import PartyOrganisation, StationContact, Visit
from orgs.sync import Position

__all__ = [
    "CATEGORY_FIELDS",
    "CaseCreated",
    "Position",
    "case_category_create",
    "case_category_update",
    "case_create",
    "case_transition",
    "cases_escalate_overdue",
    "work_calendar_day_delete",
    "work_calendar_day_set",
]

S = Case.State
A = CaseTransition.Action
EVERYTHING = Reach(everything=True)
SYSTEM_NAME = "系统（超期督办）"
# A device clock this far ahead of the server is still believed (as for synced events).
CLOCK_SKEW = timedelta(minutes=10)


@dataclass(frozen=True)
class CaseCreated:
    case: Case
    # Open cases of the same category nearby that the caller may see: (case, metres), nearest first.
    likely_duplicates: list[tuple[Case, float]]


# --------------------------------------------------------------------------------------------
# Shared steps


def _actor_name(user: Any) -> str:
    if user is None:
        return SYSTEM_NAME
    return (user.get_full_name() or user.get_username())[:150]


@dataclass(frozen=True)
class _Converted:
    lon: float  # WGS-84
    lat: float
    crs: str
    captured: Position


def _convert(position: Position) -> _Converted:
    """Convert a captured position to WGS-84 once, refusing what cannot be a place in China."""
    crs = coords.parse_crs(position.crs)
    coords.check_in_range(position.lon, position.lat, crs)
    lon, lat = coords.to_wgs84(position.lon, position.lat, crs)
    if not coords.inside_china(float(lon), float(lat)):
        raise DomainError(
            f"定位 ({position.lon}, {position.lat}) 不在中国境内，请检查坐标系或经纬度是否写反",
            code="coords_outside_china",
            detail={"field": "position"},
        )
    if position.accuracy_m is not None and position.accuracy_m < 0:
        raise DomainError("定位精度不能为负数", code="invalid_input", detail={"field": "accuracy_m"})
    return _Converted(lon=float(lon), lat=float(lat), crs=crs, captured=position)


def _step_deadline(case: Case, state: str, start: datetime, days: WorkDays) -> datetime:
    hours: Decimal = getattr(case.category, STEP_LIMIT_FIELD[state])
    return deadline_after(start, hours, urgent=case.category.urgent, days=days)


def _territorial(case: Case) -> tuple[PartyOrganisation | None, str, str]:
    """属地兜底: the community's party organisation, then the street working committee, else the
    community by name (a street with no organisation tree yet still gets an answer)."""
    community_org = PartyOrganisation.objects.filter(
        kind=PartyOrganisation.Kind.COMMUNITY_ORG, community_id=case.community_id
    ).first()
    if community_org is not None:
        return community_org, community_org.name, Case.Route.COMMUNITY
    committee = PartyOrganisation.objects.filter(
        kind=PartyOrganisation.Kind.STREET_COMMITTEE, street_id=case.street_id
    ).first()
    if committee is not None:
        return committee, committee.name, Case.Route.STREET
    name = Community.objects.values_list("name", flat=True).get(pk=case.community_id)
    return None, f"{name}（属地兜底）", Case.Route.COMMUNITY


def case_route(case: Case) -> tuple[PartyOrganisation | None, str, str]:
    """Whom a case is dispatched to, and why: (organisation or None, body name, route)."""
    if case.grid_cell_id is not None:
        body = case.grid_cell.responsible_body if case.grid_cell else ""
        if body:
            return None, body, Case.Route.GRID
    if case.category.default_body:
        return None, case.category.default_body, Case.Route.CATEGORY
    return _territorial(case)


# --------------------------------------------------------------------------------------------
# Raising a case


@transaction.atomic
def case_create(
    *,
    reach: Reach | None,
    user: Any,
    category: CaseCategory,
    description: str,
    source: str,
    position: Position | None = None,
    building: Building | None = None,
    address: str = "",
    resident_name: str = "",
    resident_phone: str = "",
    reported_at: datetime | None = None,
    source_visit: Visit | None = None,
    source_contact: StationContact | None = None,
    client_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> CaseCreated:
    """Raise a case (采集) at `position` (as captured) or, without one, at `building`.

    The case counts in the grid cell and community holding its place on the day it was raised; the
    caller must log events there (`reach`; None is a trusted caller: the demo, an import). Answers
    the new case and the open cases of its category nearby that the caller may see (likely
    duplicates, to link with 重复). `resident_phone` is a clear value; only cipher and hash are kept.
    """
    now = now or timezone.now()
    reported_at = reported_at or now
    if not description.strip():
        raise DomainError("请填写问题描述", code="case_description_required", detail={"field": "description"})
    if not category.active:
        raise DomainError(f"事项类别「{category.name}」已停用", code="case_category_inactive", detail={"field": "category"})
    if source not in Case.Source.values:
        raise DomainError(f"未知的事项来源：{source}", code="invalid_input", detail={"field": "source"})
    if reported_at > now + CLOCK_SKEW:
        raise DomainError("上报时间晚于服务器当前时间", code="case_time_in_future", detail={"field": "reported_at"})
    converted = _convert(position) if position is not None else None
    if converted is not None:
        lon, lat = converted.lon, converted.lat
    elif building is not None:
        lon, lat = building.point.x, building.point.y
    else:
        raise DomainError("请提供事项位置或涉及的楼栋", code="case_place_required", detail={"field": "position"})

    day = timezone.localdate(reported_at)
    cell_id, community_id, street_id = sql.places_on_days([(0, lon, lat, day)]).get(0, (None, None, None))
    if community_id is None and building is not None and converted is None:
        community_id, cell_id = building.community_id, building.grid_cell_id
        street_id = Community.objects.values_list("street_id", flat=True).get(pk=community_id)
    if community_id is None or street_id is None:
        raise DomainError(
            "事项位置不在任何社区或网格范围内，请检查定位或选择涉及的楼栋",
            code="case_outside_grids",
            detail={"field": "position"},
        )
    if reach is not None and not access.case_place_in(
        access.capability_reach(reach, "log_events"),
        street_id=street_id,
        community_id=community_id,
        grid_cell_id=cell_id,
    ):
        raise OutsideEditReach("事项位置不在您负责的网格或社区内", code="case_outside_reach")

    phone = pii.seal_phone(resident_phone) if resident_phone else None
    days = selectors.work_days()
    case = Case(
        client_id=client_id,
        source=source,
        source_visit=source_visit,
        source_contact=source_contact,
        category=category,
        description=description.strip(),
        address=address,
        captured_lon=converted.captured.lon if converted else None,
        captured_lat=converted.captured.lat if converted else None,
        captured_crs=converted.crs if converted else "",
        accuracy_m=converted.captured.accuracy_m if converted else None,
        point=_point(lon, lat) if converted else None,
        place=_point(lon, lat),
        street_id=street_id,
        community_id=community_id,
        grid_cell_id=cell_id,
        building=building,
        resident_name=resident_name,
        resident_phone_cipher=phone.cipher if phone else "",
        resident_phone_hash=phone.hash if phone else None,
        reporter=user,
        reporter_name=_actor_name(user),
        reported_at=reported_at,
        state=S.REPORTED,
        step_started_at=now,
    )
    case.deadline = case.next_escalation_at = _step_deadline(case, S.REPORTED, now, days)
    try:
        with transaction.atomic():
            case.save()
    except IntegrityError as exc:
        # The only unique column a caller supplies is the tablet's id: a second copy of a case
        # synced concurrently.
        raise Conflict("该事项已同步过（客户端编号重复）", code="case_client_id_conflict") from exc
    CaseTransition.objects.create(
        case=case,
        action=A.REPORT,
        from_state="",
        to_state=S.REPORTED,
        at=now,
        actor=user,
        actor_name=case.reporter_name,
        reason=case.description[:200],
        captured_lon=case.captured_lon,
        captured_lat=case.captured_lat,
        captured_crs=case.captured_crs,
        accuracy_m=case.accuracy_m,
        position=case.point,
        deadline=case.deadline,
        version=case.version,
    )
    audit_record(
        action=AuditEvent.Action.CREATE,
        object_type=Case._meta.label,
        object_id=case.pk,
        summary=f"采集民情事项 #{case.pk}（{category.name}）",
        changes={
            "category": category.pk,
            "source": source,
            "grid_cell": cell_id,
            "community": community_id,
            "resident_phone": "已填写" if phone else "",
        },
        street_id=street_id,
    )
    communities_changed([community_id])
    duplicates = selectors.cases_nearby(
        reach=reach or EVERYTHING, lon=lon, lat=lat, category=category, exclude_id=case.pk
    )
    return CaseCreated(case=case, likely_duplicates=duplicates)


def _point(lon: float, lat: float) -> Any:
    from django.contrib.gis.geos import Point

    return Point(lon, lat, srid=4326)


# --------------------------------------------------------------------------------------------
# Moving a case along the loop


def _not_allowed(case: Case, action: str) -> DomainError:
    allowed = [a for a, moves in FLOW.items() if case.state in moves]
    labels = dict(A.choices)
    return DomainError(
        f"事项当前状态为「{case.get_state_display()}」，不能「{labels.get(action, action)}」"
        + (f"；可执行：{'、'.join(labels[a] for a in allowed)}" if allowed else "；事项已办结"),
        code="case_transition_not_allowed",
        detail={"state": case.state, "action": action, "allowed": allowed},
    )


def _lock(case_ids: list[int]) -> dict[int, Case]:
    """Lock the cases in id order (two merges crossing each other cannot deadlock)."""
    rows = (
        Case.objects.select_for_update(of=("self",))
        .select_related("category", "grid_cell")
        .filter(pk__in=case_ids)
        .order_by("pk")
    )
    return {c.pk: c for c in rows}


@transaction.atomic
def case_transition(
    *,
    reach: Reach | None,
    user: Any,
    case: Case | int,
    action: str,
    reason: str = "",
    position: Position | None = None,
    expected_version: int | None = None,
    merge_into: Case | int | None = None,
    assignee_org: PartyOrganisation | None = None,
    assignee_name: str = "",
    now: datetime | None = None,
) -> Case:
    """Take `action` on `case` (see the module's rules). `merge_into` names the open case a 重复
    merges into; `assignee_org` / `assignee_name` name the body of a 派遣 instead of the routing.
    `reach=None` is a trusted caller (the demo); `user=None` the system."""
    now = now or timezone.now()
    case_id = case if isinstance(case, int) else case.pk
    labels = dict(A.choices)
    if action not in FLOW:
        raise DomainError(f"未知的动作：{action}", code="case_action_unknown", detail={"field": "action"})
    target_id = merge_into if isinstance(merge_into, int) or merge_into is None else merge_into.pk
    locked = _lock([case_id] + ([target_id] if target_id is not None and target_id != case_id else []))
    current = locked.get(case_id)
    if current is None:
        raise NotInReach
    converted = _check_transition(
        reach, current, action, reason=reason.strip(), position=position, expected_version=expected_version
    )
    reason = reason.strip()
    before = {"state": current.state, "assignee_name": current.assignee_name, "version": current.version}
    from_state, to_state = current.state, FLOW[action][current.state]
    row = _transition_row(current, action, to_state, user=user, reason=reason, converted=converted, now=now)

    if action == A.DISPATCH:
        _dispatch(reach, current, row, assignee_org=assignee_org, assignee_name=assignee_name)
    elif action == A.MERGE:
        _merge(reach, current, row, locked.get(target_id) if target_id is not None else None, target_id)
    elif action == A.SEND_BACK and to_state in (S.REPORTED, S.REGISTERED):
        # Back before 派遣: whoever is dispatched next is routed again.
        current.assignee_org, current.assignee_name, current.assignee_route = None, "", ""

    _advance(current, action, to_state, now=now, overdue=row.overdue)
    current.save(
        update_fields=[
            "state",
            "step_started_at",
            "deadline",
            "next_escalation_at",
            "closed_at",
            "assignee_org",
            "assignee_name",
            "assignee_route",
            "merged_into",
            "ever_overdue",
            "version",
            "updated_at",
        ]
    )
    row.deadline = current.deadline
    row.version = current.version
    row.save()
    audit_record(
        action=AuditEvent.Action.UPDATE,
        object_type=Case._meta.label,
        object_id=current.pk,
        summary=f"民情事项 #{current.pk}：{labels[action]}（{S(from_state).label} → {S(to_state).label}）",
        changes={
            "state": [before["state"], to_state],
            "version": [before["version"], current.version],
            **({"assignee_name": [before["assignee_name"], current.assignee_name]} if action == A.DISPATCH else {}),
            **({"merged_into": current.merged_into_id} if action == A.MERGE else {}),
        },
        reason=reason,
        street_id=current.street_id,
    )
    communities_changed([current.community_id])
    return current


def _check_transition(
    reach: Reach | None,
    current: Case,
    action: str,
    *,
    reason: str,
    position: Position | None,
    expected_version: int | None,
) -> _Converted | None:
    """The refusals of a transition, in the order of the module's rules; the converted position."""
    labels = dict(A.choices)
    if reach is not None:
        access.ensure_case_action(
            reach, current, roles=access.case_action_roles(action, current.state), action_label=labels[action]
        )
    if expected_version is not None and expected_version != current.version:
        raise Conflict(
            f"该事项已被他人更新（当前版本 {current.version}，您看到的是 {expected_version}），请刷新后再操作",
            code="case_stale",
            detail={"version": current.version},
        )
    if current.state not in FLOW[action]:
        raise _not_allowed(current, action)
    if action in REASON_REQUIRED and not reason:
        raise DomainError(f"「{labels[action]}」须填写说明", code="case_reason_required", detail={"field": "reason"})
    converted = _convert(position) if position is not None else None
    if action in POSITION_REQUIRED and converted is None:
        raise DomainError("核查须在现场记录定位", code="case_position_required", detail={"field": "position"})
    return converted


def _transition_row(
    case: Case, action: str, to_state: str, *, user: Any, reason: str, converted: _Converted | None, now: datetime
) -> CaseTransition:
    row = CaseTransition(
        case=case,
        action=action,
        from_state=case.state,
        to_state=to_state,
        at=now,
        actor=user,
        actor_name=_actor_name(user),
        reason=reason,
        overdue=case.deadline is not None and now > case.deadline,
    )
    if converted is not None:
        row.captured_lon, row.captured_lat = converted.captured.lon, converted.captured.lat
        row.captured_crs, row.accuracy_m = converted.crs, converted.captured.accuracy_m
        row.position = _point(converted.lon, converted.lat)
        # How far from the case the action was recorded (a 核查 made from the office shows here).
        row.distance_to_case_m = _distance_m(row.position, case.place)
    return row


def _advance(case: Case, action: str, to_state: str, *, now: datetime, overdue: bool) -> None:
    """The case's new state, its step's deadline (kept by 签收处理), closing time and version."""
    case.state = to_state
    if to_state in Case.FINAL_STATES:
        case.deadline = case.next_escalation_at = None
        case.closed_at = now
    elif action != A.START:
        case.step_started_at = now
        case.deadline = case.next_escalation_at = _step_deadline(case, to_state, now, selectors.work_days())
    case.ever_overdue = case.ever_overdue or overdue
    case.version += 1


def _distance_m(a: Any, b: Any) -> float:
    from pyproj import Geod

    return float(Geod(ellps="WGS84").inv(a.x, a.y, b.x, b.y)[2])


def _dispatch(
    reach: Reach | None,
    case: Case,
    row: CaseTransition,
    *,
    assignee_org: PartyOrganisation | None,
    assignee_name: str,
) -> None:
    route: str
    if assignee_org is not None:
        if reach is not None and not access.party_orgs_in_reach(reach).filter(pk=assignee_org.pk).exists():
            raise reference_not_found("assignee_org", assignee_org.pk)
        org, name, route = assignee_org, assignee_org.name, Case.Route.MANUAL
    elif assignee_name.strip():
        org, name, route = None, assignee_name.strip()[:128], Case.Route.MANUAL
    else:
        org, name, route = case_route(case)
    case.assignee_org, case.assignee_name, case.assignee_route = org, name, route
    row.assignee_org, row.assignee_name = org, name
    if not row.reason:
        row.reason = f"派遣至{name}（{Case.Route(route).label}）"


def _merge(reach: Reach | None, case: Case, row: CaseTransition, target: Case | None, target_id: int | None) -> None:
    if target_id is None:
        raise DomainError("请指定合并到的事项", code="case_merge_target_required", detail={"field": "merge_into"})
    if target is None or (reach is not None and not access.cases_in_reach(reach).filter(pk=target_id).exists()):
        raise reference_not_found("merge_into", target_id)
    if target.pk == case.pk:
        raise DomainError("事项不能合并到自身", code="case_merge_target_invalid", detail={"field": "merge_into"})
    if not target.is_open:
        raise DomainError(
            f"事项 #{target.pk} 已办结（{target.get_state_display()}），不能作为合并目标",
            code="case_merge_target_invalid",
            detail={"field": "merge_into"},
        )
    case.merged_into = target
    row.merged_into = target
    if not row.reason:
        row.reason = f"与事项 #{target.pk} 重复"


# --------------------------------------------------------------------------------------------
# 督办: the overdue sweep


def _chains(rows: list[dict[str, Any]]) -> dict[int, list[tuple[int, str]]]:
    """Per case, the bodies above its assignee, nearest first: (organisation id, name)."""
    streets = {r["street_id"] for r in rows}
    orgs = {
        o["id"]: o
        for o in PartyOrganisation.objects.filter(street_id__in=streets).values(
            "id", "parent_id", "kind", "community_id", "street_id", "name"
        )
    }
    community_org = {o["community_id"]: o["id"] for o in orgs.values() if o["kind"] == PartyOrganisation.Kind.COMMUNITY_ORG}
    committee = {o["street_id"]: o["id"] for o in orgs.values() if o["kind"] == PartyOrganisation.Kind.STREET_COMMITTEE}
    out: dict[int, list[tuple[int, str]]] = {}
    for r in rows:
        chain: list[int] = []
        if r["assignee_org_id"] in orgs:
            parent = orgs[r["assignee_org_id"]]["parent_id"]
            while parent is not None and parent in orgs and parent not in chain:
                chain.append(parent)
                parent = orgs[parent]["parent_id"]
            chain = chain or [r["assignee_org_id"]]  # the street committee itself: nobody above
        elif r["assignee_route"] in (Case.Route.CATEGORY, Case.Route.MANUAL):
            # A street department (城管执法中队, 环卫所…) answers to the street.
            chain = [c for c in (committee.get(r["street_id"]),) if c is not None]
        else:
            # Not yet dispatched, or a grid's own body: the community first, then the street.
            chain = [c for c in (community_org.get(r["community_id"]), committee.get(r["street_id"])) if c is not None]
        out[r["id"]] = [(o, orgs[o]["name"]) for o in chain]
    return out


def _escalate_batch(now: datetime, batch: int, days: WorkDays) -> tuple[int, int]:
    """One batch of due cases in one transaction; returns (escalated, claimed)."""
    hours_fields = sorted(set(STEP_LIMIT_FIELD.values()))
    with transaction.atomic():
        # SKIP LOCKED: a case a person is moving right now is left for the next run.
        rows = list(
            Case.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(next_escalation_at__lte=now, state__in=Case.OPEN_STATES)
            .order_by("next_escalation_at", "id")
            .values(
                "id",
                "state",
                "escalation_level",
                "escalated_to_id",
                "next_escalation_at",
                "deadline",
                "assignee_org_id",
                "assignee_route",
                "community_id",
                "street_id",
                "version",
                "category__urgent",
                *(f"category__{f}" for f in hours_fields),
            )[:batch]
        )
        if not rows:
            return 0, 0
        chains = _chains(rows)
        updates: list[dict[str, Any]] = []
        planned: dict[int, CaseTransition] = {}
        for r in rows:
            chain = chains[r["id"]]
            level, due = r["escalation_level"], r["next_escalation_at"]
            if not chain:
                # No organisation above anyone here (a street without its tree): counted as overdue,
                # not escalated; nothing to wake for until the next step.
                updates.append(_update(r, level, r["escalated_to_id"], None, now))
                continue
            if level < len(chain):
                # One level up; the next level after one more step limit, if there is one.
                new_level = level + 1
                target_id, target_name = chain[level]
                step_hours = r[f"category__{STEP_LIMIT_FIELD[r['state']]}"]
                next_due = (
                    deadline_after(due, step_hours, urgent=r["category__urgent"], days=days)
                    if new_level < len(chain)
                    else None
                )
            else:
                # Already at the top (escalated in an earlier step): escalated there again, once.
                new_level, (target_id, target_name), next_due = level, chain[-1], None
            updates.append(_update(r, new_level, target_id, next_due, now))
            step = S(r["state"]).label
            planned[r["id"]] = CaseTransition(
                case_id=r["id"],
                action=A.ESCALATE,
                from_state=r["state"],
                to_state=r["state"],
                at=now,
                actor=None,
                actor_name=SYSTEM_NAME,
                reason=f"「{step}」超过时限（{timezone.localtime(r['deadline']):%Y-%m-%d %H:%M}），督办至{target_name}",
                assignee_org_id=target_id,
                assignee_name=target_name,
                escalation_level=new_level,
                deadline=r["deadline"],
                overdue=True,
                version=r["version"],
            )
        done = cases_sql.escalations_apply(updates)
        written = [planned[i] for i in done if i in planned]
        CaseTransition.objects.bulk_create(written)
        if written:
            audit_record(
                action=AuditEvent.Action.UPDATE,
                object_type=Case._meta.label,
                object_id=written[0].case_id if len(written) == 1 else f"{len(written)}件",
                summary=f"超期督办 {len(written)} 件民情事项",
                changes={"escalated": sorted(t.case_id for t in written)},
            )
            escalated = set(done)
            communities_changed({r["community_id"] for r in rows if r["id"] in escalated})
        return len(written), len(rows)


def _update(r: dict[str, Any], level: int, target: int | None, next_due: datetime | None, now: datetime) -> dict[str, Any]:
    return {
        "id": r["id"],
        "state": r["state"],
        "level": r["escalation_level"],
        "due": r["next_escalation_at"].isoformat(),
        "new_level": level,
        "escalated_to_id": target,
        "next_due": next_due.isoformat() if next_due else None,
        "now": now.isoformat(),
    }


def cases_escalate_overdue(*, now: datetime | None = None, batch: int | None = None) -> dict[str, int]:
    """Escalate (督办) every open case whose step is past its due time, in batches of `batch`
    cases, each batch its own transaction. Idempotent: a case is escalated once per due time, and
    its next due time moves on (one more step limit) or is cleared at the top. Returns
    {"escalated": n, "claimed": m} (claimed includes cases with no body above to escalate to)."""
    now = now or timezone.now()
    batch = batch or int(settings.WANGGE_CASES["escalation_batch"])
    days = selectors.work_days()
    escalated = claimed = 0
    for _ in range(10_000):
        n, seen = _escalate_batch(now, batch, days)
        escalated, claimed = escalated + n, claimed + seen
        if seen < batch:
            break
    return {"escalated": escalated, "claimed": claimed}


# --------------------------------------------------------------------------------------------
# The street office's tables: categories and the working calendar


def _ensure_street_admin(reach: Reach | None, what: str) -> None:
    """Categories and the calendar serve every street alike: kept by street administrators."""
    if reach is None or reach.everything:
        return
    if "street_admin" not in reach.roles:
        raise OutsideEditReach(f"只有街道管理员可以维护{what}", code="outside_edit_reach")


CATEGORY_FIELDS = frozenset(
    {
        "code",
        "name",
        "group",
        "default_body",
        "register_hours",
        "dispatch_hours",
        "handle_hours",
        "verify_hours",
        "close_hours",
        "urgent",
        "duplicate_radius_m",
        "active",
        "sort_order",
    }
)


def _check_category(category: CaseCategory) -> None:
    for name in ("register_hours", "dispatch_hours", "handle_hours", "verify_hours", "close_hours"):
        value = getattr(category, name)
        if value is None or Decimal(str(value)) <= 0:
            label = getattr(CaseCategory._meta.get_field(name), "verbose_name", name)
            raise DomainError(f"{label}必须大于0", code="case_category_hours_positive", detail={"field": name})
    if not 1 <= int(category.duplicate_radius_m) <= MAX_DUPLICATE_RADIUS_M:
        raise DomainError(
            f"疑似重复半径应在1–{MAX_DUPLICATE_RADIUS_M}米之间",
            code="case_category_radius_range",
            detail={"field": "duplicate_radius_m"},
        )
    clash = CaseCategory.objects.exclude(pk=category.pk).filter(name=category.name).exists()
    if clash or CaseCategory.objects.exclude(pk=category.pk).filter(code=category.code).exists():
        raise DomainError(
            "类别名称或编码已存在", code="case_category_duplicate", detail={"field": "name" if clash else "code"}
        )


def _category_snapshot(category: CaseCategory) -> dict[str, Any]:
    return {name: str(getattr(category, name)) for name in sorted(CATEGORY_FIELDS)}


@transaction.atomic
def case_category_create(*, reach: Reach | None, **fields: Any) -> CaseCategory:
    _ensure_street_admin(reach, "事项类别")
    unknown = set(fields) - CATEGORY_FIELDS
    if unknown:
        raise DomainError(f"不能设置字段：{'、'.join(sorted(unknown))}", code="case_category_field_unknown")
    category = CaseCategory(**fields)
    _check_category(category)
    category.save()
    audit_record(
        action=AuditEvent.Action.CREATE,
        object_type=CaseCategory._meta.label,
        object_id=category.pk,
        summary=f"新增事项类别“{category.name}”",
        changes=_category_snapshot(category),
    )
    return category


@transaction.atomic
def case_category_update(*, reach: Reach | None, category: CaseCategory, **changes: Any) -> CaseCategory:
    """Change a category; open cases keep the deadlines already set (the new limits apply from
    their next step)."""
    _ensure_street_admin(reach, "事项类别")
    unknown = set(changes) - CATEGORY_FIELDS
    if unknown:
        raise DomainError(f"不能修改字段：{'、'.join(sorted(unknown))}", code="case_category_field_unknown")
    locked = CaseCategory.objects.select_for_update().get(pk=category.pk)
    before = _category_snapshot(locked)
    for name, value in changes.items():
        setattr(locked, name, value)
    _check_category(locked)
    after = _category_snapshot(locked)
    diff = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    if not diff:
        return locked
    locked.save()
    audit_record(
        action=AuditEvent.Action.UPDATE,
        object_type=CaseCategory._meta.label,
        object_id=locked.pk,
        summary=f"修改事项类别“{locked.name}”",
        changes=diff,
    )
    return locked


@transaction.atomic
def work_calendar_day_set(*, reach: Reach | None, day: Any, is_workday: bool, note: str = "") -> WorkCalendarDay:
    """Enter or correct one day of the calendar (a holiday, or a make-up working day). Deadlines
    already set keep their value; new ones count the corrected calendar."""
    _ensure_street_admin(reach, "工作日历")
    row = WorkCalendarDay.objects.select_for_update().filter(date=day).first()
    before = None if row is None else [row.is_workday, row.note]
    if row is None:
        row = WorkCalendarDay(date=day)
    if before == [is_workday, note]:
        return row
    row.is_workday, row.note = is_workday, note
    row.save()
    audit_record(
        action=AuditEvent.Action.CREATE if before is None else AuditEvent.Action.UPDATE,
        object_type=WorkCalendarDay._meta.label,
        object_id=row.pk,
        summary=f"工作日历 {row.date}：{'上班' if is_workday else '放假'} {note}".strip(),
        changes={"date": str(row.date), "is_workday": [before[0] if before else None, is_workday], "note": note},
    )
    return row


@transaction.atomic
def work_calendar_day_delete(*, reach: Reach | None, day: WorkCalendarDay) -> None:
    """Remove an entry: the day follows the weekday rule again."""
    _ensure_street_admin(reach, "工作日历")
    row = WorkCalendarDay.objects.select_for_update().filter(pk=day.pk).first()
    if row is None:
        return
    audit_record(
        action=AuditEvent.Action.DELETE,
        object_type=WorkCalendarDay._meta.label,
        object_id=row.pk,
        summary=f"删除工作日历 {row.date}（{row.note}）",
        changes={"date": str(row.date), "is_workday": row.is_workday, "note": row.note},
    )
    row.delete()
