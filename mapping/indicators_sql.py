"""The indicator statements: raw SQL, because every indicator of every unit (street, community,
grid cell) comes out of one statement with GROUPING SETS, which the ORM cannot say. An ORM
version would be one aggregate query per indicator and per level of unit (8 indicators × 3
levels), each re-reading the same tables. Values only as parameters; table names from the
models' Meta, so a rename cannot silently break a statement.

How it reads (the formulas themselves are written down in mapping.indicators, once):
- `comm`: the communities whose data is read; every unit is computed from whole communities,
  so a street's figures are only ever written when all its communities were read;
- one CTE per family of facts (enterprises, current grid cells, buildings with members, members,
  residential buildings, visits, stationed cadres, gaps), each a base set of rows carrying
  (street_id, community_id, grid_cell_id) and aggregated once with
  `GROUP BY GROUPING SETS ((street_id), (community_id), (grid_cell_id))`: one pass gives the
  three levels. Rows without a grid cell (a building outside every grid, a cadre, an area gap)
  count for their community and street and fall into a NULL grid group that no unit matches;
- `units` lists the units, and each family is LEFT JOINed on (unit_type, unit_id): a unit with no
  rows in a family gets zero counts and a null rate, never a division by zero.

Where things count (the same placements as the gaps in mapping/sql.py, so a unit's "missing"
share of an indicator and its open gaps of the matching kind tell the same story):
- buildings and what hangs on them count in the grid cell that holds the building TODAY
  (Building.grid_cell), whatever cell held it when a visit was made;
- an enterprise counts in its building's grid cell, else the current grid cell of its community
  covering its point (as orgs.access.enterprises_in_reach scopes it);
- a member counts where mapping.sql places them: the building they live in, else the community
  they reported to (双报到, no grid cell), else their workplace; a member placed nowhere by these
  counts where their organisation sits (e.g. a 驻区单位 member living outside the street). That last
  step only ever adds attached members (an unattached one has no organisation), so the members a
  unit misses are still exactly its open member_unattached gaps;
- a visit, counted as such (`visits_in_window`), counts where it happened (Visit.grid_cell and
  Visit.community: the cell that held its place on its day);
- stationed cadres serve a whole community: they count for the community and street only.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import connection

from grid.models import Building, Community, GridBoundary, GridCell, Street
from mapping import sql as gap_sql
from mapping.models import Gap, IndicatorSnapshot
from orgs.models import Enterprise, PartyMember, PartyOrganisation, StationContact, StationedCadre, Visit

SNAPSHOT = IndicatorSnapshot._meta.db_table
GAP = Gap._meta.db_table
STREET = Street._meta.db_table
COMMUNITY = Community._meta.db_table
CELL = GridCell._meta.db_table
BOUNDARY = GridBoundary._meta.db_table
BUILDING = Building._meta.db_table
ORG = PartyOrganisation._meta.db_table
ORG_BLD = PartyOrganisation.buildings.through._meta.db_table
MEMBER = PartyMember._meta.db_table
ENTERPRISE = Enterprise._meta.db_table
CADRE = StationedCadre._meta.db_table
CONTACT = StationContact._meta.db_table
VISIT = Visit._meta.db_table

# The unit a GROUPING SETS row belongs to: the level is the one column grouped by.
_UNIT = """
    CASE WHEN GROUPING(grid_cell_id) = 0 THEN 'grid_cell'
         WHEN GROUPING(community_id) = 0 THEN 'community' ELSE 'street' END AS unit_type,
    CASE WHEN GROUPING(grid_cell_id) = 0 THEN grid_cell_id
         WHEN GROUPING(community_id) = 0 THEN community_id ELSE street_id END AS unit_id
"""
_BY_UNIT = "GROUP BY GROUPING SETS ((street_id), (community_id), (grid_cell_id))"


def _rate(numerator: str, denominator: str, *, digits: int = 0) -> str:
    """{value, numerator, denominator}: value null when the denominator is zero (nothing to
    measure), rounded to 4 places; missing counts (no rows in the family) read as zero."""
    num = f"COALESCE({numerator}, 0)"
    den = f"COALESCE({denominator}, 0)"
    # numeric throughout: round(x, n) has no double precision form, and the cadre pace is one.
    den_out = f"round({den}::numeric, {digits})" if digits else den
    return (
        f"jsonb_build_object('value', round({num}::numeric / NULLIF({den}::numeric, 0), 4), "
        f"'numerator', {num}, 'denominator', {den_out})"
    )


INDICATORS_SQL = f"""
WITH comm AS MATERIALIZED (
    SELECT c.id, c.street_id FROM "{COMMUNITY}" c WHERE c.id = ANY(%(ids)s)
),
-- Current grid cells: those with an open-ended boundary version (as mapping.sql and
-- grid.sql.assign_buildings_to_grids read "current").
cur AS MATERIALIZED (
    SELECT g.id, g.community_id, c.street_id
    FROM "{CELL}" g JOIN comm c ON c.id = g.community_id
    WHERE EXISTS (SELECT 1 FROM "{BOUNDARY}" gb WHERE gb.cell_id = g.id AND upper_inf(gb.valid))
),
units AS (
    SELECT 'street'::text AS unit_type, s.id AS unit_id, s.code, s.name
    FROM "{STREET}" s WHERE s.id IN (SELECT street_id FROM comm)
    UNION ALL
    SELECT 'community', c.id, c.code, c.name FROM "{COMMUNITY}" c WHERE c.id IN (SELECT id FROM comm)
    UNION ALL
    -- Current cells, and the asked one even when retired (its figures are then mostly empty).
    SELECT 'grid_cell', g.id, g.code, g.name FROM "{CELL}" g
    WHERE g.id IN (SELECT id FROM cur)
       OR (%(unit_type)s::text = 'grid_cell' AND g.id = %(unit_id)s::bigint)
),
ent AS (
    SELECT {_UNIT}, count(*) AS enterprises,
           count(*) FILTER (WHERE own) AS own_org,
           count(*) FILTER (WHERE own OR joint) AS org_covered,
           count(*) FILTER (WHERE own OR joint OR instructor) AS work_covered
    FROM (
        SELECT c.street_id, e.community_id, COALESCE(b.grid_cell_id, pt.id) AS grid_cell_id,
               EXISTS (SELECT 1 FROM "{ORG}" o WHERE o.kind = 'enterprise_org' AND o.premises_id = e.id) AS own,
               e.covering_joint_branch_id IS NOT NULL AS joint,
               e.instructor_id IS NOT NULL AS instructor
        FROM "{ENTERPRISE}" e
        JOIN comm c ON c.id = e.community_id
        LEFT JOIN "{BUILDING}" b ON b.id = e.building_id
        LEFT JOIN LATERAL (
            SELECT g.id FROM "{BOUNDARY}" gb JOIN "{CELL}" g ON g.id = gb.cell_id
            WHERE b.id IS NULL AND upper_inf(gb.valid) AND g.community_id = e.community_id
              AND ST_Covers(gb.geom, e.geom)
            ORDER BY g.code LIMIT 1
        ) pt ON true
    ) x
    {_BY_UNIT}
),
cells AS (
    SELECT {_UNIT}, count(*) AS cells, count(*) FILTER (WHERE branch) AS with_branch
    FROM (
        SELECT cur.street_id, cur.community_id, cur.id AS grid_cell_id,
               EXISTS (SELECT 1 FROM "{ORG}" o WHERE o.kind = 'grid_branch' AND o.grid_cell_id = cur.id) AS branch
        FROM cur
    ) x
    {_BY_UNIT}
),
grouped AS (
    SELECT {_UNIT}, count(*) AS buildings, count(*) FILTER (WHERE grouped) AS with_group
    FROM (
        SELECT c.street_id, b.community_id, b.grid_cell_id,
               EXISTS (
                   SELECT 1 FROM "{ORG_BLD}" x JOIN "{ORG}" o ON o.id = x.partyorganisation_id
                   WHERE x.building_id = b.id AND o.kind = 'building_group'
               ) AS grouped
        FROM "{BUILDING}" b JOIN comm c ON c.id = b.community_id
        WHERE (SELECT count(*) FROM "{MEMBER}" m WHERE m.residence_building_id = b.id) >= %(group_min)s
    ) x
    {_BY_UNIT}
),
mem AS (
    SELECT {_UNIT}, count(*) AS members, count(*) FILTER (WHERE attached) AS attached
    FROM (
        SELECT c.street_id, p.community_id, p.grid_cell_id, p.attached
        FROM (
            SELECT COALESCE(b.community_id, m.reported_community_id, e.community_id,
                            o.community_id, og.community_id, oe.community_id) AS community_id,
                   CASE WHEN b.id IS NOT NULL THEN b.grid_cell_id
                        WHEN m.reported_community_id IS NOT NULL THEN NULL
                        WHEN e.community_id IS NOT NULL THEN eb.grid_cell_id
                        ELSE o.grid_cell_id END AS grid_cell_id,
                   m.organisation_id IS NOT NULL AS attached
            FROM "{MEMBER}" m
            LEFT JOIN "{BUILDING}" b ON b.id = m.residence_building_id
            LEFT JOIN "{ENTERPRISE}" e ON e.id = m.work_enterprise_id
            LEFT JOIN "{BUILDING}" eb ON eb.id = e.building_id
            -- Last: where their organisation sits (its community, its grid cell's, its premises').
            LEFT JOIN "{ORG}" o ON o.id = m.organisation_id
            LEFT JOIN "{CELL}" og ON og.id = o.grid_cell_id
            LEFT JOIN "{ENTERPRISE}" oe ON oe.id = o.premises_id
        ) p
        JOIN comm c ON c.id = p.community_id
    ) x
    {_BY_UNIT}
),
homes AS (
    SELECT {_UNIT}, sum(households) AS households,
           sum(households) FILTER (WHERE visited) AS households_visited,
           count(*) AS buildings, count(*) FILTER (WHERE visited) AS buildings_visited
    FROM (
        SELECT c.street_id, b.community_id, b.grid_cell_id, b.households,
               EXISTS (
                   SELECT 1 FROM "{VISIT}" v
                   WHERE v.building_id = b.id AND v.occurred_at >= %(window_start)s AND v.occurred_at < %(day_end)s
               ) AS visited
        FROM "{BUILDING}" b JOIN comm c ON c.id = b.community_id
        WHERE b.kind IN ('residential', 'mixed') AND b.households > 0
    ) x
    {_BY_UNIT}
),
visits AS (
    SELECT {_UNIT}, count(*) AS visits
    FROM (
        SELECT c.street_id, v.community_id, v.grid_cell_id
        FROM "{VISIT}" v JOIN comm c ON c.id = v.community_id
        WHERE v.occurred_at >= %(window_start)s AND v.occurred_at < %(day_end)s
    ) x
    {_BY_UNIT}
),
cadres AS (
    SELECT {_UNIT}, count(*) AS cadres, sum(days) AS days, sum(required) AS required
    FROM (
        SELECT c.street_id, s.community_id, NULL::bigint AS grid_cell_id,
               s.required_days_per_month * %(month_share)s AS required,
               (
                   SELECT count(DISTINCT (k.occurred_at AT TIME ZONE %(tz)s)::date) FROM "{CONTACT}" k
                   WHERE k.cadre_id = s.id AND k.kind = 'check_in' AND k.on_site
                     AND k.occurred_at >= %(month_start)s AND k.occurred_at < %(day_end)s
               ) AS days
        FROM "{CADRE}" s JOIN comm c ON c.id = s.community_id
        WHERE s.period_start <= %(day)s AND (s.period_end IS NULL OR s.period_end >= %(day)s)
    ) x
    {_BY_UNIT}
),
-- Gaps open at the end of the day (or now, for today): since before it, not resolved by then.
-- For today that is exactly "resolved_at IS NULL"; for a past day it is read from the history
-- the gap rows keep. Age in whole local days, so two runs on one day agree.
gap_rows AS (
    SELECT c.street_id, g.community_id, g.grid_cell_id, g.kind,
           %(day)s::date - (g.since AT TIME ZONE %(tz)s)::date AS age_days
    FROM "{GAP}" g JOIN comm c ON c.id = g.community_id
    WHERE g.since <= %(as_of)s AND (g.resolved_at IS NULL OR g.resolved_at > %(as_of)s)
),
gaps_all AS (
    SELECT {_UNIT}, count(*) AS open,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY age_days) AS median_age
    FROM gap_rows
    {_BY_UNIT}
),
gaps_kind AS (
    SELECT unit_type, unit_id,
           jsonb_object_agg(kind, jsonb_build_object('open', open,
                                                     'median_age_days', round(median_age::numeric, 1))) AS by_kind
    FROM (
        SELECT {_UNIT}, kind, count(*) AS open,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY age_days) AS median_age
        FROM gap_rows
        GROUP BY GROUPING SETS ((street_id, kind), (community_id, kind), (grid_cell_id, kind))
    ) k
    GROUP BY unit_type, unit_id
)
SELECT u.unit_type, u.unit_id, u.code, u.name, jsonb_build_object(
    'enterprise_org_coverage', {_rate("ent.org_covered", "ent.enterprises")},
    'enterprise_work_coverage', {_rate("ent.work_covered", "ent.enterprises")},
    'enterprise_own_org_rate', {_rate("ent.own_org", "ent.enterprises")},
    'grid_branch_coverage', {_rate("cells.with_branch", "cells.cells")},
    'building_group_coverage', {_rate("grouped.with_group", "grouped.buildings")},
    'member_management_rate', {_rate("mem.attached", "mem.members")},
    'household_visit_coverage', {_rate("homes.households_visited", "homes.households")},
    'cadre_attendance', {_rate("cadres.days", "cadres.required", digits=2)},
    'visits_in_window', COALESCE(visits.visits, 0),
    'open_gaps', jsonb_build_object(
        'open', COALESCE(gaps_all.open, 0),
        'median_age_days', round(gaps_all.median_age::numeric, 1),
        'by_kind', COALESCE(gaps_kind.by_kind, '{{}}'::jsonb))
) AS figures
FROM units u
LEFT JOIN ent ON ent.unit_type = u.unit_type AND ent.unit_id = u.unit_id
LEFT JOIN cells ON cells.unit_type = u.unit_type AND cells.unit_id = u.unit_id
LEFT JOIN grouped ON grouped.unit_type = u.unit_type AND grouped.unit_id = u.unit_id
LEFT JOIN mem ON mem.unit_type = u.unit_type AND mem.unit_id = u.unit_id
LEFT JOIN homes ON homes.unit_type = u.unit_type AND homes.unit_id = u.unit_id
LEFT JOIN visits ON visits.unit_type = u.unit_type AND visits.unit_id = u.unit_id
LEFT JOIN cadres ON cadres.unit_type = u.unit_type AND cadres.unit_id = u.unit_id
LEFT JOIN gaps_all ON gaps_all.unit_type = u.unit_type AND gaps_all.unit_id = u.unit_id
LEFT JOIN gaps_kind ON gaps_kind.unit_type = u.unit_type AND gaps_kind.unit_id = u.unit_id
WHERE %(unit_type)s::text IS NULL OR (u.unit_type = %(unit_type)s::text AND u.unit_id = %(unit_id)s::bigint)
"""  # noqa: S608 - names from models; values are parameters


def indicator_rows(params: dict[str, Any]) -> list[tuple[str, int, str, str, dict[str, Any]]]:
    """(unit_type, unit_id, code, name, figures) of the units of `params["ids"]` (only the one
    named by unit_type/unit_id when given), ordered street, community, grid cell, by code."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT * FROM ({INDICATORS_SQL}) r "  # noqa: S608 - the statement above
            "ORDER BY array_position(ARRAY['street', 'community', 'grid_cell'], r.unit_type), r.code",
            params,
        )
        # Django's psycopg setup hands jsonb over as text (its JSONField decodes it); so do we.
        return [(t, i, code, name, json.loads(figures)) for t, i, code, name, figures in cursor.fetchall()]


def snapshots_write(params: dict[str, Any]) -> tuple[int, int]:
    """Write the day's snapshot of every unit of `params["ids"]` in one statement; returns (units
    computed, rows inserted or changed).

    INSERT … SELECT … ON CONFLICT DO UPDATE (raw: the ORM's bulk_create cannot take its rows from
    a SELECT, and would need every figure in Python first): a second run on the same day updates
    the row in place, and leaves it untouched (computed_at included) when its figures did not
    change, so a rerun writes nothing. Two runs racing on one unit and day serialise on the
    unique index instead of adding a second row.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH r AS ({INDICATORS_SQL}),
            w AS (
                INSERT INTO "{SNAPSHOT}" (unit_type, unit_id, unit_code, day, figures, computed_at)
                SELECT r.unit_type, r.unit_id, r.code, %(day)s, r.figures, %(at)s FROM r
                ON CONFLICT (unit_type, unit_id, day) DO UPDATE
                    SET unit_code = EXCLUDED.unit_code, figures = EXCLUDED.figures,
                        computed_at = EXCLUDED.computed_at
                    WHERE "{SNAPSHOT}".figures IS DISTINCT FROM EXCLUDED.figures
                       OR "{SNAPSHOT}".unit_code IS DISTINCT FROM EXCLUDED.unit_code
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM r), (SELECT count(*) FROM w)
            """,  # noqa: S608 - names from models; values are parameters
            params,
        )
        units, written = cursor.fetchone()
        return int(units), int(written)


def wait_for_full_gap_recompute() -> None:
    """Wait until no full gap recompute is running, and keep one from starting until this
    transaction ends: the shared form of the lock a full recompute takes exclusively
    (mapping.sql.lock_communities). The nightly snapshot is scheduled after the nightly recompute;
    should that still be running, the snapshot waits for it instead of counting yesterday's gaps,
    and its statements, which start after the lock is granted, read the recompute's result."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock_shared(%s, %s)", [gap_sql.LOCK_NAMESPACE, gap_sql.ALL_COMMUNITIES]
        )
