"""Reads for the tablet page's "today's work" (今日工作): the buildings due for a visit in the
worker's grids and the worker's open cases with their deadlines.

"Due for a visit" is the coverage gaps' `building_unvisited` rule (mapping/), restated here because
orgs sits below mapping and may not import it: a residential or mixed building with households
that no visit named since local midnight `visit_interval_days` whole days before today. Each read
is one query, scoped by the caller's reach.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone

from grid.access import Reach, buildings_in_reach
from grid.models import Building
from orgs import access
from orgs.cases_models import Case
from orgs.models import Visit

# Open cases shown on the tablet: the nearest deadlines first; a grid holds a few dozen at most.
TABLET_MAX_CASES = 100


def visit_window_start(today: date) -> datetime:
    """Local midnight `visit_interval_days` before `today`: a visit on that morning still counts
    (whole local days, as the gaps count them)."""
    days = int(settings.WANGGE_RULES["visit_interval_days"])
    return datetime.combine(today - timedelta(days=days), time.min, tzinfo=timezone.get_current_timezone())


def buildings_due_for_visit(*, reach: Reach, at: datetime | None = None, limit: int = 3000) -> list[dict[str, Any]]:
    """The buildings in `reach` due for a visit at `at` (now): code, label, households, WGS-84
    position and the last visit's local date (None when never visited), longest unvisited first."""
    today = timezone.localdate(at or timezone.now())
    last_visit = Subquery(
        Visit.objects.filter(building=OuterRef("pk")).order_by("-occurred_at").values("occurred_at")[:1]
    )
    qs = (
        buildings_in_reach(reach)
        .filter(kind__in=[Building.Kind.RESIDENTIAL, Building.Kind.MIXED], households__gt=0)
        .annotate(last_visit=last_visit)
        .filter(Q(last_visit__isnull=True) | Q(last_visit__lt=visit_window_start(today)))
        .order_by(F("last_visit").asc(nulls_first=True), "code")
        .values("code", "name", "address", "households", "point", "last_visit")[:limit]
    )
    return [
        {
            "code": row["code"],
            "label": f"{row['name']} {row['address']}".strip(),
            "households": row["households"],
            "lon": round(row["point"].x, 6),
            "lat": round(row["point"].y, 6),
            "last_visit": timezone.localdate(row["last_visit"]).isoformat() if row["last_visit"] else None,
        }
        for row in qs
    ]


def open_cases_for_tablet(*, reach: Reach, at: datetime | None = None) -> list[dict[str, Any]]:
    """The open cases in `reach` (a grid worker's: their grids'), nearest deadline first, with
    what the tablet shows of each. No resident's phone: the page is kept on the device."""
    now = at or timezone.now()
    qs = (
        access.cases_in_reach(reach, Case.objects.filter(state__in=Case.OPEN_STATES))
        .order_by(F("deadline").asc(nulls_last=True), "id")
        .values("id", "state", "description", "address", "deadline", "category__name", "escalation_level")
    )[:TABLET_MAX_CASES]
    states = dict(Case.State.choices)
    return [
        {
            "id": row["id"],
            "category": row["category__name"],
            "state": states.get(row["state"], row["state"]),
            "description": row["description"][:80],
            "address": row["address"],
            "deadline": timezone.localtime(row["deadline"]).strftime("%Y-%m-%d %H:%M") if row["deadline"] else None,
            "overdue": bool(row["deadline"] and row["deadline"] < now),
            "escalated": row["escalation_level"] > 0,
        }
        for row in qs
    ]
