"""Writes of the mapping app: the coverage-gap recompute (the only writer of mapping.Gap)."""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from grid import sql as grid_sql
from mapping import sql
from mapping.models import Gap
from orgs.rules import month_elapsed_share

OUTCOMES = ("opened", "still_open", "resolved")


def _parameters(*, community_ids: Sequence[int], at: datetime) -> dict[str, Any]:
    """The values every gap statement may use: thresholds from settings.WANGGE_RULES and the
    day, visit window and month as seen in the project's time zone at `at`."""
    rules = settings.WANGGE_RULES
    tz = timezone.get_current_timezone()
    today = timezone.localtime(at, tz).date()
    interval = int(rules["visit_interval_days"])
    month_start = today.replace(day=1)
    month_days = calendar.monthrange(today.year, today.month)[1]
    month_end = month_start + timedelta(days=month_days)
    return {
        "ids": list(community_ids),
        "tz": str(tz),
        "today": today,
        "interval_days": interval,
        # Visited "within 60 days" counts whole local days: a visit on the morning of the 60th
        # day before today still counts.
        "window_start": _local_midnight(today - timedelta(days=interval), tz),
        "rate_min": float(rules["grid_visit_rate_min"]),
        "reach_m": float(rules["service_centre_reach_m"]),
        "tolerance_m2": float(rules["gap_area_tolerance_m2"]),
        "group_min": int(rules["building_group_min_members"]),
        "branch_min": int(rules["branch_min_full_members"]),
        "enterprise_min": int(rules["enterprise_members_for_own_org"]),
        "pace_share": float(rules["cadre_pace_share"]),
        "month": f"{today:%Y-%m}",
        "month_start": _local_midnight(month_start, tz),
        "month_end": _local_midnight(month_end, tz),
        "month_share": month_elapsed_share(today),
    }


def _local_midnight(day: date, tz: Any) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz)


@transaction.atomic
def gaps_recompute(*, community_ids: Sequence[int] | None, at: datetime | None = None) -> dict[str, int]:
    """Recompute the coverage gaps of these communities (all when None) in one transaction.

    Stages what is uncovered now (one statement per kind, mapping.sql), writes the buildings
    tile's per-building facts (mapping.tile_models), then opens new gaps (`since` = the run's
    moment), updates the open ones still uncovered (`since` kept) and resolves the open ones no
    longer uncovered (`resolved_at`; rows are never deleted), and bumps the data version of the
    communities whose open gaps changed, so cached map tiles showing them miss. Two
    recomputes of one community wait for each other; a second run finds nothing to open or
    resolve. `at` (default: the database clock once the locks are held) is injectable for tests
    and replays and must not precede the last run's.

    Returns counts, JSON-ready for a task result: "communities", "opened", "still_open",
    "resolved", and per kind "<outcome>.<kind>" where not zero.
    """
    ids, locked_at = sql.lock_communities(community_ids)
    at = at or locked_at
    counts: dict[str, int] = {"communities": len(ids), **dict.fromkeys(OUTCOMES, 0)}
    if not ids:
        return counts
    sql.stage_create(ids)
    params = _parameters(community_ids=ids, at=at)
    for stage in sql.STAGES:
        stage(params)
    sql.building_status_refresh(ids, every_community=community_ids is None)
    merged = sql.merge_stage(community_ids=ids, at=at)
    for outcome in OUTCOMES:
        for kind, n in sorted(merged.counts[outcome].items()):
            counts[outcome] += n
            counts[f"{outcome}.{kind}"] = n
    # The map's tiles key on data versions: where the gaps now read differently, the versions
    # move. Not grid.changes.communities_changed: its listeners would queue this recompute again.
    # Last, so the communities' rows stay locked only until the commit right after.
    bumped = grid_sql.bump_data_versions(merged.changed_communities)
    sql.building_status_carry(bumped)
    return counts


def counts_by_kind(counts: dict[str, int]) -> dict[str, dict[str, int]]:
    """{kind: {outcome: n}} for every kind, from gaps_recompute's flat counts (for reports)."""
    return {kind: {o: counts.get(f"{o}.{kind}", 0) for o in OUTCOMES} for kind in Gap.Kind.values}
