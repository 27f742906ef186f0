"""The inbox (站内消息): sending reminders and marking them read.

Sending is idempotent by construction: every insert is ON CONFLICT DO NOTHING on the UNIQUE (user,
kind, subject, period) of orgs.inbox_models.Notification, so the beat's sweeps can run twice,
overlap or be retried and each reminder still lands once per subject and period. Each sweep is
one statement (orgs.inbox_sql) and one audit row when it sent anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from edge.errors import DomainError
from grid.audit import Actor, acting_as, audit_record
from orgs import cases_selectors, inbox_sql
from orgs.access import case_action_roles
from orgs.calendar import add_working_time
from orgs.cases_models import FLOW, Case
from orgs.inbox_models import Notification
from orgs.models import PartyOrganisation
from orgs.rules import _Responsible, check_terms, month_elapsed_share

__all__ = [
    "notification_mark_read",
    "notify",
    "reminders_buildings_visit_due",
    "reminders_cadres_behind_pace",
    "reminders_cases_due",
    "reminders_org_terms",
]

SWEEP_ACTOR = Actor(user_id=None, name="系统提醒")
# A step due within this many working hours (continuous hours for an urgent category) is "near".
CASE_DUE_SOON_HOURS = 4
MAX_MARK_READ = 500


class NotificationNotFound(DomainError):
    """An id that is not one of the caller's messages: missing and another user's alike."""

    code = "notification_not_found"
    status = 404


def notify(
    *,
    user_ids: Iterable[int],
    kind: str,
    subject_type: str,
    subject_id: int,
    period: str,
    title: str,
    body: str,
    link: str = "",
    now: datetime | None = None,
) -> int:
    """Send one message to every user in `user_ids` (one statement); those who already have it
    for this subject and period get nothing new. Returns how many were sent."""
    now = now or timezone.now()
    rows = [
        {
            "user_id": uid,
            "kind": kind,
            "subject_type": subject_type,
            "subject_id": subject_id,
            "period": period,
            "title": title,
            "body": body,
            "link": link,
        }
        for uid in sorted(set(user_ids))
    ]
    return inbox_sql.insert_rows(rows, now=now)


def notification_mark_read(
    *, user: Any, ids: Iterable[int] | None = None, now: datetime | None = None
) -> int:
    """Mark the user's messages `ids` read (all unread ones when ids is None). An id that is not
    the user's own is refused as a whole (`notification_not_found`), nothing marked."""
    now = now or timezone.now()
    with transaction.atomic():
        mine = Notification.objects.filter(user=user)
        if ids is not None:
            wanted = set(ids)
            if len(wanted) > MAX_MARK_READ:
                raise DomainError(f"一次最多标记{MAX_MARK_READ}条消息", code="notification_too_many")
            found = set(mine.filter(pk__in=wanted).values_list("pk", flat=True))
            if found != wanted:
                raise NotificationNotFound("消息不存在或不属于您", detail={"ids": sorted(wanted - found)})
            mine = mine.filter(pk__in=wanted)
        changed = mine.filter(read_at__isnull=True).update(read_at=now)
        if changed:
            audit_record(
                action="update",
                object_type="orgs.notification",
                object_id=user.pk,
                summary=f"标记{changed}条消息为已读",
            )
    return changed


def _sweep_audit(summary: str, sent: int) -> None:
    if sent:
        with acting_as(SWEEP_ACTOR):
            audit_record(action="create", object_type="orgs.notification", summary=f"{summary}：发送{sent}条")


def _local_now(now: datetime | None) -> datetime:
    return timezone.localtime(now or timezone.now())


def reminders_cases_due(*, now: datetime | None = None) -> dict[str, int]:
    """督办提醒: open case steps due within CASE_DUE_SOON_HOURS working hours, and overdue ones, to
    whoever takes the step's next action where the case is, and (overdue) to the 督办 body."""
    now = _local_now(now)
    days = cases_selectors.work_days()
    # The roles that may take each open state's forward action (the access rule, as data).
    forward = {
        from_state: action
        for action, moves in FLOW.items()
        for from_state, to in moves.items()
        if action not in ("send_back", "merge", "decline")
    }
    step_roles = [
        (state, role)
        for state, action in forward.items()
        for role in sorted(case_action_roles(action, state))
    ]
    labels = [(s.value, s.label) for s in Case.State]
    with transaction.atomic():
        sent = inbox_sql.insert_case_reminders(
            now=now,
            working_horizon=add_working_time(now, timedelta(hours=CASE_DUE_SOON_HOURS), days=days),
            urgent_horizon=now + timedelta(hours=CASE_DUE_SOON_HOURS),
            step_roles=step_roles,
            state_labels=labels,
        )
        _sweep_audit("事项到期提醒", sum(sent.values()))
    return sent


def reminders_cadres_behind_pace(*, now: datetime | None = None) -> int:
    """Stationed cadres behind their month's days on site (orgs.rules.cadre_behind_pace), to the
    cadre and the street admins; once per cadre and ISO week."""
    now = _local_now(now)
    today = now.date()
    first = today.replace(day=1)
    after = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    tz = timezone.get_current_timezone()
    year, week, _ = today.isocalendar()
    factor = float(settings.WANGGE_RULES["cadre_pace_share"]) * month_elapsed_share(today)
    with transaction.atomic():
        sent = inbox_sql.insert_cadre_reminders(
            now=now,
            month_start=datetime.combine(first, time.min, tzinfo=tz),
            next_month=datetime.combine(after, time.min, tzinfo=tz),
            today=today,
            factor=factor,
            period=f"{year}-W{week:02d}",
        )
        _sweep_audit("驻点进度提醒", sent)
    return sent


def reminders_org_terms(*, now: datetime | None = None, today: date | None = None) -> int:
    """按期换届提醒 from orgs.rules.check_terms: each lapsing term once per reminder window (90,
    30 days), an overdue one once a month, to its community's admins and its street's admins."""
    now = _local_now(now)
    today = today or now.date()
    violations = check_terms(street_id=None, today=today, who=_Responsible(None))
    if not violations:
        return 0
    places = {
        pk: (community_id, street_id)
        for pk, community_id, street_id in PartyOrganisation.objects.filter(
            pk__in=[v.subject_id for v in violations]
        ).values_list("pk", "community_id", "street_id")
    }
    admins = inbox_sql.admins_of_units(
        community_ids=[c for c, _ in places.values() if c is not None],
        street_ids=[s for _, s in places.values() if s is not None],
    )
    by_unit: dict[tuple[str, int], set[int]] = {}
    for user_id, kind, unit_id in admins:
        by_unit.setdefault((kind, unit_id), set()).add(user_id)
    rows = []
    for v in violations:
        community_id, street_id = places[v.subject_id]
        ends = v.detail["term_ends_on"]
        if v.rule_code == "org_term_overdue":
            period = f"overdue:{ends:%Y-%m-%d}:{today:%Y-%m}"
            title = f"{v.subject_name}逾期未换届"
        else:
            period = f"{v.detail['window_days']}d:{ends:%Y-%m-%d}"
            title = f"{v.subject_name}任期将于{v.detail['days_left']}天后届满"
        users = by_unit.get(("community", community_id), set()) | by_unit.get(("street", street_id), set())
        rows += [
            {
                "user_id": uid,
                "kind": v.rule_code,
                "subject_type": Notification.Subject.ORG,
                "subject_id": v.subject_id,
                "period": period,
                "title": title,
                "body": v.message,
                "link": f"/admin/orgs/partyorganisation/{v.subject_id}/change/",
            }
            for uid in sorted(users)
        ]
    with transaction.atomic():
        sent = inbox_sql.insert_rows(rows, now=now)
        _sweep_audit("换届提醒", sent)
    return sent


def reminders_buildings_visit_due(*, now: datetime | None = None) -> int:
    """Buildings not visited within WANGGE_RULES["visit_interval_days"]: one message per grid
    worker per day with the count over their grids (not one per building)."""
    now = _local_now(now)
    interval = int(settings.WANGGE_RULES["visit_interval_days"])
    with transaction.atomic():
        sent = inbox_sql.insert_visit_reminders(
            now=now,
            since=now - timedelta(days=interval),
            interval_days=interval,
            period=f"{now.date():%Y-%m-%d}",
        )
        _sweep_audit("走访提醒", sent)
    return sent
