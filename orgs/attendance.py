"""A stationed cadre's attendance (驻点出勤; the seeds' "手机定位…实时监管驻社区干部出勤"): on-site dwell
per day from check-ins, repeated check-ins and check-outs, and the month against the requirement.

- A check-in or check-out is on site when the circle of its reported accuracy lies within the
  community grown by WANGGE_RULES["attendance_tolerance_m"] (orgs.sql.mark_contacts_on_site).
- Dwell: from an on-site check-in to the next event of the same local day when that event is on
  site too and is a check-out, or a check-in within WANGGE_RULES["attendance_max_gap_minutes"]
  (the tablet checks in again every `attendance_heartbeat_minutes` while the page is open; a
  longer silence is not presence). Time after a check-out or an off-site event does not count.
- A day is attended when its dwell reaches WANGGE_RULES["attendance_min_dwell_minutes"].

One statement per read (window functions over the cadre's events of the month).
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from edge.errors import NotInReach
from orgs import access
from orgs.models import StationContact, StationedCadre
from orgs.rules import month_elapsed_share

CONTACT = StationContact._meta.db_table
PRESENCE_KINDS = (StationContact.Kind.CHECK_IN, StationContact.Kind.CHECK_OUT)


def presence_notes(ids: Sequence[str]) -> dict[str, tuple[bool, str]]:
    """For new check-ins and check-outs among `ids`: (on site, what to tell the cadre in Chinese)."""
    if not ids:
        return {}
    tolerance = int(settings.WANGGE_RULES["attendance_tolerance_m"])
    rows = StationContact.objects.filter(pk__in=list(ids), kind__in=PRESENCE_KINDS).values_list(
        "id", "kind", "on_site", "accuracy_m"
    )
    out: dict[str, tuple[bool, str]] = {}
    for pk, kind, on_site, accuracy in rows:
        label = "签到" if kind == StationContact.Kind.CHECK_IN else "签退"
        if on_site:
            note = f"{label}有效：您在驻点社区范围内" + (f"（定位精度约 {accuracy:.0f} 米）" if accuracy else "")
        elif accuracy and accuracy > tolerance:
            note = (
                f"定位精度约 {accuracy:.0f} 米，误差太大，不能证明您在驻点社区内，本次{label}不计出勤；"
                "请到开阔处、打开卫星定位（GPS）后重新签到"
            )
        else:
            note = f"{label}位置不在驻点社区范围内（已含 {tolerance} 米容差），本次{label}不计出勤"
        out[str(pk)] = (bool(on_site), note)
    return out


def _month_bounds(month: date) -> tuple[date, date]:
    first = month.replace(day=1)
    return first, first + timedelta(days=calendar.monthrange(first.year, first.month)[1])


def _dwell_by_day(cadre_id: int, first: date, after: date) -> dict[date, dict[str, Any]]:
    tz = timezone.get_current_timezone()
    start = datetime.combine(first, time.min, tzinfo=tz)
    end = datetime.combine(after, time.min, tzinfo=tz)
    with connection.cursor() as cursor:
        # Each event with the next one of the same local day (LEAD over the day's events): the
        # interval counts as presence when both ends are on site and the next is a check-out or a
        # check-in within the allowed gap. Grouped by day in the same statement.
        cursor.execute(
            f"""
            WITH ev AS (
                SELECT k.kind, k.on_site, k.occurred_at,
                       (k.occurred_at AT TIME ZONE %(tz)s)::date AS day,
                       LEAD(k.occurred_at) OVER w AS next_at,
                       LEAD(k.kind) OVER w AS next_kind,
                       LEAD(k.on_site) OVER w AS next_on_site
                FROM "{CONTACT}" k
                WHERE k.cadre_id = %(cadre)s AND k.kind = ANY(%(kinds)s)
                  AND k.occurred_at >= %(start)s AND k.occurred_at < %(end)s
                WINDOW w AS (PARTITION BY (k.occurred_at AT TIME ZONE %(tz)s)::date ORDER BY k.occurred_at, k.id)
            )
            SELECT day,
                   count(*) FILTER (WHERE kind = 'check_in') AS check_ins,
                   count(*) FILTER (WHERE kind = 'check_in' AND on_site) AS on_site_check_ins,
                   count(*) FILTER (WHERE kind = 'check_out') AS check_outs,
                   min(occurred_at) FILTER (WHERE on_site) AS first_on_site,
                   max(occurred_at) FILTER (WHERE on_site) AS last_on_site,
                   COALESCE(sum(EXTRACT(EPOCH FROM next_at - occurred_at)) FILTER (
                       WHERE kind = 'check_in' AND on_site AND next_on_site
                         AND (next_kind = 'check_out' OR next_at - occurred_at <= make_interval(mins => %(gap)s))
                   ), 0) / 60.0 AS dwell_minutes
            FROM ev GROUP BY day ORDER BY day
            """,  # noqa: S608 - table name from the model; values are parameters
            {
                "tz": str(tz),
                "cadre": cadre_id,
                "kinds": list(PRESENCE_KINDS),
                "start": start,
                "end": end,
                "gap": int(settings.WANGGE_RULES["attendance_max_gap_minutes"]),
            },
        )
        columns = [c.name for c in cursor.description]
        return {row[0]: dict(zip(columns, row, strict=True)) for row in cursor.fetchall()}


def cadre_attendance_month(*, cadre: StationedCadre, month: date, today: date | None = None) -> dict[str, Any]:
    """The cadre's month: each day of the posting in the month with its check-ins, on-site dwell
    (minutes) and whether it is attended; the totals against the monthly requirement and the even
    pace to date (as the gaps count it: WANGGE_RULES["cadre_pace_share"] of the requirement times
    the share of the month elapsed)."""
    rules = settings.WANGGE_RULES
    today = today or timezone.localdate()
    first, after = _month_bounds(month)
    found = _dwell_by_day(cadre.pk, first, after)
    min_dwell = int(rules["attendance_min_dwell_minutes"])
    tz = timezone.get_current_timezone()
    days = []
    # The calendar of the month (at most 31 entries), filled from the one statement above.
    for n in range((after - first).days):
        day = first + timedelta(days=n)
        in_post = cadre.period_start <= day and (cadre.period_end is None or day <= cadre.period_end)
        row = found.get(day, {})
        dwell = round(float(row.get("dwell_minutes") or 0), 1)
        days.append(
            {
                "date": day.isoformat(),
                "in_post": in_post,
                "check_ins": int(row.get("check_ins") or 0),
                "on_site_check_ins": int(row.get("on_site_check_ins") or 0),
                "check_outs": int(row.get("check_outs") or 0),
                "first_on_site": _local_time(row.get("first_on_site"), tz),
                "last_on_site": _local_time(row.get("last_on_site"), tz),
                "dwell_minutes": dwell,
                "attended": in_post and dwell >= min_dwell,
            }
        )
    attended = sum(1 for d in days if d["attended"])
    required = cadre.required_days_per_month
    if after <= today:
        share = 1.0
    elif first > today:
        share = 0.0
    else:
        share = month_elapsed_share(today)
    expected = round(float(rules["cadre_pace_share"]) * required * share, 2)
    return {
        "cadre_id": cadre.pk,
        "cadre_name": cadre.name,
        "community": cadre.community.name,
        "month": f"{first:%Y-%m}",
        "min_dwell_minutes": min_dwell,
        "tolerance_m": int(rules["attendance_tolerance_m"]),
        "required_days": required,
        "attended_days": attended,
        "expected_by_today": expected,
        "behind": attended < expected,
        "days": days,
    }


def _local_time(value: datetime | None, tz: Any) -> str | None:
    return timezone.localtime(value, tz).strftime("%H:%M") if value else None


def attendance_cadre_get(reach: Any, user: Any, cadre_id: int) -> StationedCadre:
    """The one way to fetch a posting for its attendance: those whose reach covers its community
    whole, and the cadre themself. NotInReach for missing and forbidden alike."""
    own = Q(user_id=user.pk) if getattr(user, "pk", None) else Q(pk__in=[])
    seen = access.stationed_cadres_in_reach(reach).values("pk")
    cadre = (
        StationedCadre.objects.filter(Q(pk__in=seen) | own, pk=cadre_id).select_related("community").first()
    )
    if cadre is None:
        raise NotInReach
    return cadre
