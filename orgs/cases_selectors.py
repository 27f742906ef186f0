"""Reads of the residents' cases: the ledger list, one case with its timeline, likely duplicates,
statistics. Every read is scoped by the caller's reach through orgs.access.cases_in_reach; each
costs a constant number of queries whatever the number of rows."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, F, Prefetch, Q, QuerySet
from django.utils import timezone

from grid.access import Reach
from grid.audit import audit_record
from grid.models import AuditEvent
from orgs import access, cases_sql, pii
from orgs.calendar import WorkDays, parse_periods
from orgs.cases_models import FLOW, Case, CaseCategory, CaseTransition, WorkCalendarDay

OPEN = list(Case.OPEN_STATES)


def work_days() -> WorkDays:
    """The working calendar: the holidays and make-up days kept as data, the working periods from
    settings.WANGGE_CASES. One small query (a few dozen rows a year)."""
    overrides = dict(WorkCalendarDay.objects.values_list("date", "is_workday"))
    return WorkDays(overrides=overrides, periods=parse_periods(settings.WANGGE_CASES["working_periods"]))


def case_category_list(*, active_only: bool = True) -> QuerySet[CaseCategory]:
    qs = CaseCategory.objects.all()
    return qs.filter(active=True) if active_only else qs


# --------------------------------------------------------------------------------------------
# The ledger


def case_list(
    *,
    reach: Reach,
    category: int | None = None,
    state: str | None = None,
    grid: str | None = None,
    community: str | None = None,
    source: str | None = None,
    overdue: bool | None = None,
    escalated: bool | None = None,
    since: date | None = None,
    until: date | None = None,
    now: datetime | None = None,
) -> QuerySet[Case]:
    """The cases the caller may see, newest first, filtered. `overdue`: open and past the current
    step's deadline now; `escalated`: ever escalated (督办). Dates are local days of `reported_at`."""
    qs = access.cases_in_reach(reach, Case.objects.all())
    if category is not None:
        qs = qs.filter(category_id=category)
    if state:
        qs = qs.filter(state=state)
    if grid:
        qs = qs.filter(grid_cell__code=grid)
    if community:
        qs = qs.filter(community__code=community)
    if source:
        qs = qs.filter(source=source)
    if overdue is not None:
        late = Q(state__in=OPEN, deadline__lt=now or timezone.now())
        qs = qs.filter(late) if overdue else qs.exclude(late)
    if escalated is not None:
        qs = qs.filter(escalation_level__gt=0) if escalated else qs.filter(escalation_level=0)
    if since:
        qs = qs.filter(reported_at__gte=_day_start(since))
    if until:
        qs = qs.filter(reported_at__lt=_day_start(until + timedelta(days=1)))
    return qs.order_by("-reported_at", "-id")


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, datetime.min.time()))


def case_detail(*, reach: Reach, case_id: int) -> Case:
    """One case with what its page shows (category, place, assignee, timeline): NotInReach for
    missing and forbidden alike. Three queries: the case with its joins, the timeline, duplicates."""
    qs = Case.objects.select_related(
        "category", "street", "community", "grid_cell", "building", "assignee_org", "escalated_to", "merged_into"
    ).prefetch_related(
        Prefetch("transitions", queryset=CaseTransition.objects.order_by("at", "id")),
        Prefetch("duplicates", queryset=Case.objects.only("id", "merged_into_id", "reported_at").order_by("id")),
    )
    return access.case_get(reach, case_id, qs)


def case_timeline(*, reach: Reach, case_id: int) -> QuerySet[CaseTransition]:
    case = access.case_get(reach, case_id)
    return CaseTransition.objects.filter(case=case).order_by("at", "id")


def case_allowed_actions(*, reach: Reach, case: Case) -> list[str]:
    """The actions the caller may take on `case` now (its state and the caller's roles there);
    the page shows these buttons and no others. 督办 is the system's, never offered."""
    if not case.is_open:
        return []
    place = {"street_id": case.street_id, "community_id": case.community_id, "grid_cell_id": case.grid_cell_id}
    out = []
    for action, moves in FLOW.items():
        if case.state not in moves:
            continue
        roles = access.case_action_roles(action, case.state)
        if access.case_place_in(access.roles_reach(reach, roles), **place):
            out.append(action)
    return out


def case_resident_phone(*, reach: Reach, case: Case, purpose: str = "事项详情") -> tuple[str, bool]:
    """The resident's phone as this caller may see it: (text, unmasked). Clear only for view_pii
    over the case's place, and then with a read_pii audit row, written before the data leaves."""
    if not case.resident_phone_cipher:
        return "", False
    clear = pii.pii_reveal(case.resident_phone_cipher)
    pii_reach = access.capability_reach(reach, "view_pii")
    place = {"street_id": case.street_id, "community_id": case.community_id, "grid_cell_id": case.grid_cell_id}
    if not access.case_place_in(pii_reach, **place):
        return pii.mask_phone(clear), False
    audit_record(
        action=AuditEvent.Action.READ_PII,
        object_type=Case._meta.label,
        object_id=case.pk,
        summary=f"{purpose}：查看事项 #{case.pk} 反映人联系电话",
        street_id=case.street_id,
    )
    return clear, True


# --------------------------------------------------------------------------------------------
# Likely duplicates


def cases_nearby(
    *,
    reach: Reach,
    lon: float,
    lat: float,
    category: CaseCategory,
    radius_m: float | None = None,
    exclude_id: int | None = None,
) -> list[tuple[Case, float]]:
    """Open cases of `category` the caller may see within the category's duplicate radius (or
    `radius_m`, capped at settings.WANGGE_CASES["nearby_max_m"]) of a WGS-84 point, with their
    distance in metres: nearest first, then newest. Two queries (the spatial search, the rows)."""
    cap = float(settings.WANGGE_CASES["nearby_max_m"])
    radius = min(float(radius_m if radius_m is not None else category.duplicate_radius_m), cap)
    scoped = access.cases_in_reach(reach, Case.objects.filter(category=category, state__in=OPEN))
    if exclude_id is not None:
        scoped = scoped.exclude(pk=exclude_id)
    found = cases_sql.cases_within(
        scoped=scoped, lon=lon, lat=lat, radius_m=radius, limit=int(settings.WANGGE_CASES["nearby_limit"])
    )
    rows = Case.objects.select_related("category", "grid_cell").in_bulk([pk for pk, _ in found])
    return [(rows[pk], metres) for pk, metres in found if pk in rows]


# --------------------------------------------------------------------------------------------
# Statistics


def _counts(qs: QuerySet[Case], group: str, *, since: datetime, until: datetime, now: datetime) -> QuerySet:
    in_period = Q(reported_at__gte=since, reported_at__lt=until)
    closed = Q(state=Case.State.CLOSED, closed_at__gte=since, closed_at__lt=until)
    return (
        qs.values(group)
        .annotate(
            opened=Count("id", filter=in_period),
            closed=Count("id", filter=closed),
            closed_on_time=Count("id", filter=closed & Q(ever_overdue=False)),
            open_now=Count("id", filter=Q(state__in=OPEN)),
            overdue_now=Count("id", filter=Q(state__in=OPEN, deadline__lt=now)),
            escalated=Count("id", filter=in_period & Q(escalation_level__gt=0)),
        )
        .filter(Q(opened__gt=0) | Q(closed__gt=0) | Q(open_now__gt=0))
        .order_by(group)
    )


def _rate(on_time: int, closed: int) -> float | None:
    return round(on_time / closed, 4) if closed else None


def case_statistics(*, reach: Reach, since: date, until: date, now: datetime | None = None) -> dict[str, Any]:
    """The ledger's figures for the local days [since, until] (both included), by category and by
    grid cell, for the cases the caller may see:

    - opened: raised in the period; closed: 结案 in the period; 按期办结率 = closed with no step
      over its deadline / closed (null when none closed); open_now / overdue_now: as of `now`;
      escalated: raised in the period and escalated (督办) since;
    - median hours each state lasted (wall-clock), per category and over all, for the cases raised
      in the period;
    - repeat places: WANGGE_CASES["repeat_place_min_cases"]+ cases of one category within
      ["repeat_place_radius_m"] of each other in the ["repeat_place_days"] days up to `until`.
    Five queries whatever the number of cases.
    """
    now = now or timezone.now()
    start, end = _day_start(since), _day_start(until + timedelta(days=1))
    scoped = access.cases_in_reach(reach, Case.objects.all())
    touching = scoped.filter(
        Q(reported_at__gte=start, reported_at__lt=end)
        | Q(closed_at__gte=start, closed_at__lt=end)
        | Q(state__in=OPEN)
    )
    labels = dict(Case.State.choices)

    categories = {c.pk: c for c in CaseCategory.objects.all()}
    medians: dict[int | None, dict[str, float]] = defaultdict(dict)
    step_rows = cases_sql.step_medians(scoped=scoped.filter(reported_at__gte=start, reported_at__lt=end))
    for row in step_rows:
        medians[row["category_id"]][row["state"]] = row["median_hours"]

    by_category = []
    for row in _counts(touching, "category_id", since=start, until=end, now=now):
        cat = categories.get(row["category_id"])
        by_category.append(
            {
                "category_id": row["category_id"],
                "category_name": cat.name if cat else "",
                **{k: row[k] for k in ("opened", "closed", "closed_on_time", "open_now", "overdue_now", "escalated")},
                "on_time_rate": _rate(row["closed_on_time"], row["closed"]),
                "median_hours_by_state": medians.get(row["category_id"], {}),
            }
        )
    by_grid = []
    grid_rows = _counts(touching.annotate(grid_code=F("grid_cell__code")), "grid_code", since=start, until=end, now=now)
    for row in grid_rows:
        by_grid.append(
            {
                "grid_code": row["grid_code"],
                **{k: row[k] for k in ("opened", "closed", "closed_on_time", "open_now", "overdue_now", "escalated")},
                "on_time_rate": _rate(row["closed_on_time"], row["closed"]),
            }
        )
    totals = {
        k: sum(r[k] for r in by_category)
        for k in ("opened", "closed", "closed_on_time", "open_now", "overdue_now", "escalated")
    }
    totals["on_time_rate"] = _rate(totals["closed_on_time"], totals["closed"])
    cfg = settings.WANGGE_CASES
    repeat = cases_sql.repeat_places(
        scoped=scoped,
        since=end - timedelta(days=int(cfg["repeat_place_days"])),
        until=end,
        radius_m=float(cfg["repeat_place_radius_m"]),
        min_cases=int(cfg["repeat_place_min_cases"]),
    )
    return {
        "since": since,
        "until": until,
        "totals": totals,
        "median_hours_by_state": [
            {"state": state, "state_display": labels.get(state, state), "median_hours": hours}
            for state, hours in sorted(medians.get(None, {}).items(), key=lambda kv: list(labels).index(kv[0]))
        ],
        "by_category": by_category,
        "by_grid": by_grid,
        "repeat_places": repeat,
    }
