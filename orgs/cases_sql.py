"""Raw SQL of the residents' cases that the ORM cannot say. Each statement says why it is raw;
values only as parameters, table names from the models.

The reach-scoped set of cases is always passed in as a queryset (`scoped`) and embedded as a
subquery with its own parameters, so these statements never re-implement who sees what
(orgs.access.cases_in_reach stays the one rule).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import QuerySet

from grid.models import GridCell
from orgs.cases_models import Case, CaseCategory, CaseTransition

CASE = Case._meta.db_table
TRANSITION = CaseTransition._meta.db_table
CATEGORY = CaseCategory._meta.db_table
CELL = GridCell._meta.db_table

# Metres per degree of latitude, rounded down so that a box built from it is never too small.
_M_PER_DEG_LAT = 110_000.0


def _subquery(scoped: QuerySet) -> tuple[str, tuple[Any, ...]] | None:
    """The SQL of `scoped.values("id")`, or None when the ORM already knows it is empty."""
    try:
        sql, params = scoped.order_by().values("id").query.sql_with_params()
    except EmptyResultSet:
        return None
    return sql, tuple(params)


def cases_within(
    *, scoped: QuerySet[Case], lon: float, lat: float, radius_m: float, limit: int
) -> list[tuple[int, float]]:
    """(id, distance in metres) of the cases of `scoped` within `radius_m` of a WGS-84 point,
    nearest first and, at equal distance, newest first (FixMyStreet's Nearby order).

    Raw because the ORM's `dwithin` on a geographic column takes degrees, not metres, and its
    geography cast cannot be combined with the index: the statement first keeps the cases in a
    box (`&&` on the geometry, the GiST index) a little larger than the circle, then measures
    exactly on the spheroid (ST_DWithin / ST_Distance on geography).
    """
    inner = _subquery(scoped)
    if inner is None:
        return []
    inner_sql, inner_params = inner
    dlat = radius_m / _M_PER_DEG_LAT
    dlon = dlat / max(math.cos(math.radians(lat)), 0.01)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH pt AS (SELECT ST_SetSRID(ST_MakePoint(%s, %s), 4326) AS g)
            SELECT c.id, ST_Distance(c.place::geography, pt.g::geography) AS metres
            FROM "{CASE}" c, pt
            WHERE c.place && ST_MakeEnvelope(%s, %s, %s, %s, 4326)
              AND ST_DWithin(c.place::geography, pt.g::geography, %s)
              AND c.id IN ({inner_sql})
            ORDER BY metres, c.reported_at DESC, c.id DESC
            LIMIT %s
            """,  # noqa: S608 - table name from the model, the subquery is the ORM's own SQL
            [lon, lat, lon - dlon, lat - dlat, lon + dlon, lat + dlat, radius_m, *inner_params, limit],
        )
        return [(row[0], float(row[1])) for row in cursor.fetchall()]


def escalations_apply(rows: Sequence[dict[str, Any]]) -> list[int]:
    """Apply computed escalations, each only if the case is still as it was read; returns the ids
    escalated.

    Raw because one UPDATE … FROM a JSON record set writes the whole batch in one statement, and
    its WHERE makes each row's write conditional (Healthchecks' "claim" pattern): a case whose
    state, level or due time changed since it was read (a transition committed in between, or
    another sweep that got there first) is left alone, so no case is escalated twice for one due
    time. Each row: id, state, level (before), due (next_escalation_at before), new_level,
    escalated_to_id, next_due (or null), now.
    """
    if not rows:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE "{CASE}" c
            SET escalation_level = r.new_level,
                escalated_to_id = r.escalated_to_id,
                next_escalation_at = r.next_due,
                ever_overdue = true,
                updated_at = r.now
            FROM jsonb_to_recordset(%s::jsonb) AS r(
                id bigint, state text, level int, due timestamptz, new_level int,
                escalated_to_id bigint, next_due timestamptz, now timestamptz
            )
            WHERE c.id = r.id
              AND c.state = r.state
              AND c.escalation_level = r.level
              AND c.next_escalation_at = r.due
            RETURNING c.id
            """,  # noqa: S608 - table name from the model; values are parameters
            [json.dumps(list(rows), default=str)],
        )
        return [row[0] for row in cursor.fetchall()]


def step_medians(*, scoped: QuerySet[Case]) -> list[dict[str, Any]]:
    """Per category and state: how long the cases of `scoped` stayed in that state (median hours,
    wall-clock) and how many stays were measured; the category is NULL in the all-categories row.

    Raw because the time in a state is the gap to the next transition of the same case (a window
    function, lead() over each case's timeline) and the median is an ordered-set aggregate
    (percentile_cont), with GROUPING SETS for the per-category rows and the total in one pass.
    Escalations are not steps (the state does not change) and are left out.
    """
    inner = _subquery(scoped)
    if inner is None:
        return []
    inner_sql, inner_params = inner
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH stay AS (
                SELECT c.category_id, t.to_state,
                       lead(t.at) OVER (PARTITION BY t.case_id ORDER BY t.at, t.id) - t.at AS spent
                FROM "{TRANSITION}" t
                JOIN "{CASE}" c ON c.id = t.case_id
                WHERE t.action <> 'escalate' AND t.case_id IN ({inner_sql})
            )
            SELECT category_id, to_state,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM spent)) / 3600.0,
                   count(*)
            FROM stay
            WHERE spent IS NOT NULL
            GROUP BY GROUPING SETS ((category_id, to_state), (to_state))
            """,  # noqa: S608 - table names from the models, the subquery is the ORM's own SQL
            list(inner_params),
        )
        return [
            {"category_id": cat, "state": state, "median_hours": round(float(med), 2), "count": n}
            for cat, state, med, n in cursor.fetchall()
        ]


def repeat_places(
    *, scoped: QuerySet[Case], since: datetime, until: datetime, radius_m: float, min_cases: int, limit: int = 50
) -> list[dict[str, Any]]:
    """Places where `min_cases` or more cases of one category were raised within `radius_m` of each
    other between `since` and `until` (重复发生点位): DBSCAN clusters of the cases of `scoped`.

    Raw because clustering is a window function (ST_ClusterDBSCAN) PostGIS has and the ORM does
    not. DBSCAN works in the units of the geometry, so the points are projected to Web Mercator
    and the radius scaled by its factor at the set's mean latitude (1 / cos φ; across a district
    the factor varies by well under 1 %). A cluster is a chain of cases each with min_cases
    neighbours (itself included) within the radius, plus the cases at its edge.
    """
    inner = _subquery(scoped)
    if inner is None:
        return []
    inner_sql, inner_params = inner
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH c AS (
                SELECT id, category_id, grid_cell_id, place, reported_at
                FROM "{CASE}"
                WHERE reported_at >= %s AND reported_at < %s AND id IN ({inner_sql})
            ),
            eps AS (SELECT %s / cos(radians(avg(ST_Y(place)))) AS metres FROM c),
            k AS (
                SELECT c.*, ST_ClusterDBSCAN(ST_Transform(c.place, 3857), eps := eps.metres, minpoints := %s)
                       OVER (PARTITION BY c.category_id) AS cluster
                FROM c, eps
            )
            SELECT k.category_id, min(cat.name), count(*),
                   ST_X(ST_Centroid(ST_Collect(k.place))), ST_Y(ST_Centroid(ST_Collect(k.place))),
                   min(k.reported_at), max(k.reported_at),
                   (array_agg(cell.code ORDER BY cell.code) FILTER (WHERE cell.code IS NOT NULL))[1],
                   (array_agg(k.id ORDER BY k.reported_at DESC))[1:20]
            FROM k
            JOIN "{CATEGORY}" cat ON cat.id = k.category_id
            LEFT JOIN "{CELL}" cell ON cell.id = k.grid_cell_id
            WHERE k.cluster IS NOT NULL
            GROUP BY k.category_id, k.cluster
            HAVING count(*) >= %s
            ORDER BY count(*) DESC, max(k.reported_at) DESC
            LIMIT %s
            """,  # noqa: S608 - table names from the models, the subquery is the ORM's own SQL
            [since, until, *inner_params, radius_m, min_cases, min_cases, limit],
        )
        return [
            {
                "category_id": cat,
                "category_name": name,
                "count": n,
                "lon": lon,
                "lat": lat,
                "first_reported_at": first,
                "last_reported_at": last,
                "grid_code": grid,
                "case_ids": list(ids),
            }
            for cat, name, n, lon, lat, first, last, grid, ids in cursor.fetchall()
        ]
