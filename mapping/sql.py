"""The coverage-gap statements: raw SQL, because every kind is one set-based statement over a set
of communities that the ORM cannot say (INSERT … SELECT with LATERAL joins, ST_Dump of unions,
geography buffers, a merge that returns what it did per kind). Values only as parameters; table
names from the models' Meta, so a rename cannot silently break a statement.

How a recompute runs (mapping.services.gaps_recompute calls these in one transaction):
1. `lock_communities`: advisory locks that make two recomputes of one community wait for each
   other (see there), then `clock_timestamp()` as the moment of the run;
2. `stage_create` + `fallback_stage`: a temporary `gap_stage` (what is uncovered now) and
   `gap_fallback` (each community's organisation and its street's working committee, 兜底);
3. one `stage_*` statement per kind fills `gap_stage`;
4. `building_status_refresh`: the buildings tile's per-building facts (mapping.tile_models) and
   the data versions they were read at;
5. `merge_stage`: open gaps still staged are updated in place (`since` kept), open gaps of these
   communities no longer staged are resolved (never deleted), staged gaps with no open row are
   inserted. Each step returns its count per kind, and the communities whose gaps changed;
6. their data versions are bumped (grid.sql.bump_data_versions, so the map's caches miss) and
   `building_status_carry` keeps their building facts current across that bump.

Definitions shared with orgs (read orgs/rules.py and the admin's cadre list before changing one):
- an enterprise "should form" its own organisation with `enterprise_members_for_own_org` (3) or
  more FULL members working there and no own organisation; with fewer and neither a joint branch
  nor an instructor it is uncovered (rules.check_enterprises);
- a stationed cadre is behind when this month's on-site days (distinct local dates with an
  on-site check-in) are below `cadre_pace_share` (0.8) × required days × the share of the month
  gone by today (the admin's "进度落后" flag), counting only postings in force today.
- "current" grid cells are those with an open-ended boundary version, as for building assignment
  (grid.sql.assign_buildings_to_grids).
- a residential building is one of kind residential or mixed with households (the demo's events
  and the visit coverage use the same); it counts as visited when any visit names it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from grid.models import Building, Community, GridBoundary, GridCell, ServiceCentre
from mapping.models import BuildingStatus, BuildingStatusVersion, Gap, GridCellStatus
from orgs.models import (
    Enterprise,
    GridWorker,
    PartyMember,
    PartyOrganisation,
    StationContact,
    StationedCadre,
    Visit,
)

GAP = Gap._meta.db_table
COMMUNITY = Community._meta.db_table
CELL = GridCell._meta.db_table
BOUNDARY = GridBoundary._meta.db_table
BUILDING = Building._meta.db_table
CENTRE = ServiceCentre._meta.db_table
ORG = PartyOrganisation._meta.db_table
ORG_BLD = PartyOrganisation.buildings.through._meta.db_table
MEMBER = PartyMember._meta.db_table
ENTERPRISE = Enterprise._meta.db_table
WORKER = GridWorker._meta.db_table
WORKER_CELL = GridWorker.grid_cells.through._meta.db_table
CADRE = StationedCadre._meta.db_table
CONTACT = StationContact._meta.db_table
VISIT = Visit._meta.db_table
BUILDING_STATUS = BuildingStatus._meta.db_table
BUILDING_STATUS_VERSION = BuildingStatusVersion._meta.db_table
CELL_STATUS = GridCellStatus._meta.db_table

K = Gap.Kind
S = Gap.Severity

# Advisory-lock namespace of gap recomputes (the first key of the two-key form): "gaps".
LOCK_NAMESPACE = 0x67617073
# Key 0 of the namespace stands for "every community": a full recompute takes it exclusively, a
# partial one shares it, so a full run holds one lock instead of one per community.
ALL_COMMUNITIES = 0

# A member's name as the map shows it: the surname and one star per further character (张**).
MASKED_NAME = "left({n}, 1) || repeat('*', greatest(char_length({n}) - 1, 1))"

# The stage row's columns, in the order every stage_* statement selects them.
STAGE_COLUMNS = (
    "kind, subject_type, subject_id, subject_code, subject_label, community_id, grid_cell_id, geom, "
    "severity, responsible_org_id, responsible_label, figures"
)


def _rows(sql: str, params: Any) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _execute(sql: str, params: Any = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


# --------------------------------------------------------------------------------------------
# Locks, stage, fallback organisations
# --------------------------------------------------------------------------------------------


def lock_communities(community_ids: Sequence[int] | None) -> tuple[list[int], datetime]:
    """Serialise recomputes per community until the transaction ends; returns the communities'
    ids (all of them for None) and the moment the run counts from.

    Advisory locks, not SELECT … FOR UPDATE on the community rows: every write to a community bumps
    its data_version (an UPDATE of that row), so a row lock held for a whole recompute would stall
    every service writing there; an advisory lock stops only another recompute. Taken in id order
    (a sorted subquery feeds the lock calls in order), so two recomputes of overlapping sets wait
    instead of deadlocking. The moment is `clock_timestamp()` read after the locks are granted:
    a recompute that waited never stamps `resolved_at` earlier than the `since` its predecessor
    wrote (now() would be the start of a transaction that began before the predecessor's).
    """
    with connection.cursor() as cursor:
        if community_ids is None:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_NAMESPACE, ALL_COMMUNITIES])
            cursor.execute(f'SELECT id FROM "{COMMUNITY}" ORDER BY id')  # noqa: S608 - name from the model
            ids = [row[0] for row in cursor.fetchall()]
        else:
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", [LOCK_NAMESPACE, ALL_COMMUNITIES])
            cursor.execute(
                f"""
                SELECT pg_advisory_xact_lock(%s, s.id::int)
                FROM (SELECT id FROM "{COMMUNITY}" WHERE id = ANY(%s) ORDER BY id) s
                """,  # noqa: S608 - name from the model
                [LOCK_NAMESPACE, list(community_ids)],
            )
            cursor.execute(
                f'SELECT id FROM "{COMMUNITY}" WHERE id = ANY(%s) ORDER BY id',  # noqa: S608
                [list(community_ids)],
            )
            ids = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT clock_timestamp()")
        at = cursor.fetchone()[0]
    return ids, at


def stage_create(community_ids: Sequence[int]) -> None:
    """The temporary tables of one recompute (dropped at commit; emptied if one transaction runs
    two recomputes): `gap_stage`, keyed like an open gap so a kind that staged one subject twice
    fails loudly, and `gap_fallback`, each community's 兜底 organisations."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE TEMP TABLE IF NOT EXISTS gap_stage (
                kind text NOT NULL, subject_type text NOT NULL, subject_id bigint NOT NULL,
                subject_code text NOT NULL, subject_label text NOT NULL, community_id bigint NOT NULL,
                grid_cell_id bigint, geom geometry(Geometry, 4326) NOT NULL, severity smallint NOT NULL,
                responsible_org_id bigint, responsible_label text NOT NULL, figures jsonb NOT NULL,
                PRIMARY KEY (kind, subject_type, subject_id)
            ) ON COMMIT DROP
            """
        )
        cursor.execute(
            """
            CREATE TEMP TABLE IF NOT EXISTS gap_fallback (
                community_id bigint PRIMARY KEY, street_id bigint NOT NULL,
                org_id bigint, org_label text NOT NULL,
                committee_id bigint, committee_label text NOT NULL,
                community_geom geometry(MultiPolygon, 4326) NOT NULL
            ) ON COMMIT DROP
            """
        )
        cursor.execute("TRUNCATE gap_stage, gap_fallback")
        # The community organisation ("the community organisation" of the table), else the
        # street's working committee; the committee alone for what falls to the street. The
        # constraints allow at most one of each, so the joins cannot multiply rows.
        cursor.execute(
            f"""
            INSERT INTO gap_fallback
            SELECT c.id, c.street_id,
                   COALESCE(co.id, sc.id), COALESCE(co.name, sc.name, '（未设党组织）'),
                   sc.id, COALESCE(sc.name, '（未设街道党工委）'), c.geom
            FROM "{COMMUNITY}" c
            LEFT JOIN "{ORG}" co ON co.kind = 'community_org' AND co.community_id = c.id
            LEFT JOIN "{ORG}" sc ON sc.kind = 'street_committee' AND sc.street_id = c.street_id
            WHERE c.id = ANY(%s)
            """,  # noqa: S608 - names from models; values are parameters
            [list(community_ids)],
        )
        cursor.execute("ANALYZE gap_fallback")


def _stage(sql: str, params: dict[str, Any]) -> int:
    return _execute(f"INSERT INTO gap_stage ({STAGE_COLUMNS})\n{sql}", params)


# The current boundary of a grid cell; a cell without one is retired or not drawn yet.
_CURRENT_CELLS = f"""
    SELECT g.id, g.code, g.name, g.community_id, gb.geom
    FROM "{CELL}" g JOIN "{BOUNDARY}" gb ON gb.cell_id = g.id AND upper_inf(gb.valid)
    WHERE g.community_id = ANY(%(ids)s)
"""  # noqa: S608 - names from models

# A grid cell's grid branch, for what falls to "the grid branch, else the community organisation".
_BRANCH_OF = f"""
    LEFT JOIN LATERAL (
        SELECT o.id, o.name FROM "{ORG}" o WHERE o.kind = 'grid_branch' AND o.grid_cell_id = {{cell}}
    ) br ON true
"""  # noqa: S608 - names from models


# --------------------------------------------------------------------------------------------
# Grid cells: no branch, no worker, low visit rate
# --------------------------------------------------------------------------------------------


def stage_grids_without_branch(p: dict[str, Any]) -> int:
    """Current grid cells with no grid party branch. Serious where 3+ members (the branch minimum)
    already live in the cell: a branch could be formed today."""
    return _stage(
        f"""
        SELECT %(kind)s, %(cell_type)s, g.id, g.code, g.name, g.community_id, g.id, g.geom,
               CASE WHEN n.members >= %(branch_min)s THEN {S.SERIOUS} ELSE {S.WARNING} END,
               f.org_id, f.org_label,
               jsonb_build_object('buildings', n.buildings, 'households', n.households,
                                  'members_living', n.members)
        FROM ({_CURRENT_CELLS}) g
        JOIN gap_fallback f ON f.community_id = g.community_id
        CROSS JOIN LATERAL (
            SELECT count(*) AS buildings, COALESCE(sum(b.households), 0) AS households,
                   COALESCE(sum((SELECT count(*) FROM "{MEMBER}" m WHERE m.residence_building_id = b.id)), 0)
                       AS members
            FROM "{BUILDING}" b WHERE b.grid_cell_id = g.id
        ) n
        WHERE NOT EXISTS (SELECT 1 FROM "{ORG}" o WHERE o.kind = 'grid_branch' AND o.grid_cell_id = g.id)
        """,  # noqa: S608 - names from models; values are parameters
        p | {"kind": K.GRID_WITHOUT_BRANCH, "cell_type": Gap.SUBJECT_GRID_CELL},
    )


def stage_grids_without_worker(p: dict[str, Any]) -> int:
    """Current grid cells that no active grid worker is assigned to. Serious where people live."""
    return _stage(
        f"""
        SELECT %(kind)s, %(cell_type)s, g.id, g.code, g.name, g.community_id, g.id, g.geom,
               CASE WHEN n.households > 0 THEN {S.SERIOUS} ELSE {S.WARNING} END,
               f.org_id, f.org_label,
               jsonb_build_object('buildings', n.buildings, 'households', n.households)
        FROM ({_CURRENT_CELLS}) g
        JOIN gap_fallback f ON f.community_id = g.community_id
        CROSS JOIN LATERAL (
            SELECT count(*) AS buildings, COALESCE(sum(b.households), 0) AS households
            FROM "{BUILDING}" b WHERE b.grid_cell_id = g.id
        ) n
        WHERE NOT EXISTS (
            SELECT 1 FROM "{WORKER_CELL}" x JOIN "{WORKER}" w ON w.id = x.gridworker_id AND w.active
            WHERE x.gridcell_id = g.id
        )
        """,  # noqa: S608 - names from models; values are parameters
        p | {"kind": K.GRID_WITHOUT_WORKER, "cell_type": Gap.SUBJECT_GRID_CELL},
    )


# A residential building (see the module docstring) and whether a visit named it in the window.
_RESIDENTIAL = "b.kind IN ('residential', 'mixed') AND b.households > 0"
_LAST_VISIT = f"""
    LEFT JOIN LATERAL (
        SELECT max(v.occurred_at) AS at FROM "{VISIT}" v WHERE v.building_id = b.id
    ) lv ON true
"""  # noqa: S608 - names from models


def stage_grids_low_visit_rate(p: dict[str, Any]) -> int:
    """Current grid cells whose households visited in the window (the households of residential
    buildings a visit named since `window_start`) are under `visit_rate_min` of all households of
    their residential buildings. Cells without households have no rate. Serious below half the
    minimum."""
    return _stage(
        f"""
        SELECT %(kind)s, %(cell_type)s, g.id, g.code, g.name, g.community_id, g.id, g.geom,
               CASE WHEN r.visited < %(rate_min)s / 2.0 * r.households THEN {S.SERIOUS} ELSE {S.WARNING} END,
               COALESCE(br.id, f.org_id), COALESCE(br.name, f.org_label),
               jsonb_build_object(
                   'households', r.households, 'households_visited', r.visited,
                   'rate', round(r.visited::numeric / r.households, 4), 'rate_min', %(rate_min)s,
                   'buildings', r.buildings, 'buildings_visited', r.buildings_visited,
                   'interval_days', %(interval_days)s)
        FROM ({_CURRENT_CELLS}) g
        JOIN gap_fallback f ON f.community_id = g.community_id
        {_BRANCH_OF.format(cell="g.id")}
        CROSS JOIN LATERAL (
            SELECT COALESCE(sum(b.households), 0) AS households,
                   COALESCE(sum(b.households) FILTER (WHERE lv.at >= %(window_start)s), 0) AS visited,
                   count(*) AS buildings,
                   count(*) FILTER (WHERE lv.at >= %(window_start)s) AS buildings_visited
            FROM "{BUILDING}" b
            {_LAST_VISIT}
            WHERE b.grid_cell_id = g.id AND {_RESIDENTIAL}
        ) r
        WHERE r.households > 0 AND r.visited < %(rate_min)s * r.households
        """,  # noqa: S608 - names from models; values are parameters
        p | {"kind": K.GRID_LOW_VISIT_RATE, "cell_type": Gap.SUBJECT_GRID_CELL},
    )


# --------------------------------------------------------------------------------------------
# Buildings: members without a group, not visited
# --------------------------------------------------------------------------------------------


def stage_buildings_without_group(p: dict[str, Any]) -> int:
    """Buildings where `group_min_members` or more party members live (by residence, any status)
    and no building group covers them. Serious at twice the threshold."""
    return _stage(
        f"""
        SELECT %(kind)s, %(building_type)s, b.id, b.code, b.name, b.community_id, b.grid_cell_id, b.point,
               CASE WHEN n.members >= 2 * %(group_min)s THEN {S.SERIOUS} ELSE {S.WARNING} END,
               COALESCE(br.id, f.org_id), COALESCE(br.name, f.org_label),
               jsonb_build_object('members', n.members, 'full_members', n.full_members,
                                  'households', b.households, 'threshold', %(group_min)s)
        FROM (
            SELECT m.residence_building_id AS building_id, count(*) AS members,
                   count(*) FILTER (WHERE m.status = 'full') AS full_members
            FROM "{MEMBER}" m JOIN "{BUILDING}" b ON b.id = m.residence_building_id
            WHERE b.community_id = ANY(%(ids)s)
            GROUP BY m.residence_building_id
            HAVING count(*) >= %(group_min)s
        ) n
        JOIN "{BUILDING}" b ON b.id = n.building_id
        JOIN gap_fallback f ON f.community_id = b.community_id
        {_BRANCH_OF.format(cell="b.grid_cell_id")}
        WHERE NOT EXISTS (
            SELECT 1 FROM "{ORG_BLD}" x JOIN "{ORG}" o ON o.id = x.partyorganisation_id
            WHERE x.building_id = b.id AND o.kind = 'building_group'
        )
        """,  # noqa: S608 - names from models; values are parameters
        p | {"kind": K.BUILDING_WITHOUT_GROUP, "building_type": Gap.SUBJECT_BUILDING},
    )


def stage_buildings_unvisited(p: dict[str, Any]) -> int:
    """Residential buildings no visit named since `window_start` (the local day `interval_days`
    before today). Serious when never visited or not for twice the interval."""
    return _stage(
        f"""
        SELECT %(kind)s, %(building_type)s, b.id, b.code, b.name, b.community_id, b.grid_cell_id, b.point,
               CASE WHEN lv.at IS NULL OR %(today)s - (lv.at AT TIME ZONE %(tz)s)::date > 2 * %(interval_days)s
                    THEN {S.SERIOUS} ELSE {S.WARNING} END,
               COALESCE(br.id, f.org_id), COALESCE(br.name, f.org_label),
               jsonb_build_object(
                   'last_visit_on', (lv.at AT TIME ZONE %(tz)s)::date,
                   'days_since_last_visit', %(today)s - (lv.at AT TIME ZONE %(tz)s)::date,
                   'households', b.households, 'interval_days', %(interval_days)s)
        FROM "{BUILDING}" b
        JOIN gap_fallback f ON f.community_id = b.community_id
        {_LAST_VISIT}
        {_BRANCH_OF.format(cell="b.grid_cell_id")}
        WHERE b.community_id = ANY(%(ids)s) AND {_RESIDENTIAL}
          AND (lv.at IS NULL OR lv.at < %(window_start)s)
        """,  # noqa: S608 - names from models; values are parameters
        p | {"kind": K.BUILDING_UNVISITED, "building_type": Gap.SUBJECT_BUILDING},
    )


# --------------------------------------------------------------------------------------------
# Members: unattached, lost contact
# --------------------------------------------------------------------------------------------

# Where a member is placed: the building they live in; else the community they reported to
# (双报到 is to the community of residence); else the premises they work at. `lives` says whether
# the place is where they live, which decides who answers for an unattached member.
_MEMBER_PLACE = f"""
    SELECT m.id, m.name, m.status, m.category, m.organisation_id,
           COALESCE(b.community_id, m.reported_community_id, e.community_id) AS community_id,
           CASE WHEN b.id IS NOT NULL THEN b.grid_cell_id
                WHEN m.reported_community_id IS NULL THEN eb.grid_cell_id END AS grid_cell_id,
           COALESCE(b.point, ST_PointOnSurface(rc.geom), e.geom) AS geom,
           CASE WHEN b.id IS NOT NULL THEN 'residence'
                WHEN m.reported_community_id IS NOT NULL THEN 'reported_community'
                ELSE 'work_enterprise' END AS placed_by,
           (b.id IS NOT NULL OR m.reported_community_id IS NOT NULL) AS lives
    FROM "{MEMBER}" m
    LEFT JOIN "{BUILDING}" b ON b.id = m.residence_building_id
    LEFT JOIN "{COMMUNITY}" rc ON rc.id = m.reported_community_id
    LEFT JOIN "{ENTERPRISE}" e ON e.id = m.work_enterprise_id
    LEFT JOIN "{BUILDING}" eb ON eb.id = e.building_id
    WHERE {{where}}
"""  # noqa: S608 - names from models


def stage_members(p: dict[str, Any]) -> int:
    """Members attached to no organisation (the community organisation where they live answers,
    else the street committee), and lost-contact members (their organisation answers, else as for
    an unattached one). A member placed nowhere (no residence, report or workplace in any
    community) cannot be mapped and is left out. The name is masked; no ID number or phone."""
    return _stage(
        f"""
        SELECT CASE WHEN k.lost THEN %(lost)s ELSE %(unattached)s END, %(member_type)s, m.id, '',
               {MASKED_NAME.format(n="m.name")}, m.community_id, m.grid_cell_id, m.geom,
               CASE WHEN k.lost THEN {S.SERIOUS} ELSE {S.WARNING} END,
               CASE WHEN k.lost AND o.id IS NOT NULL THEN o.id
                    WHEN m.lives THEN f.org_id ELSE f.committee_id END,
               CASE WHEN k.lost AND o.id IS NOT NULL THEN o.name
                    WHEN m.lives THEN f.org_label ELSE f.committee_label END,
               jsonb_build_object('status', m.status, 'category', m.category, 'placed_by', m.placed_by,
                                  'has_organisation', m.organisation_id IS NOT NULL)
        FROM ({_MEMBER_PLACE.format(where="(m.organisation_id IS NULL OR m.category = 'lost_contact')")}) m
        JOIN gap_fallback f ON f.community_id = m.community_id
        LEFT JOIN "{ORG}" o ON o.id = m.organisation_id
        CROSS JOIN LATERAL (VALUES (false), (true)) k(lost)
        WHERE m.geom IS NOT NULL
          AND CASE WHEN k.lost THEN m.category = 'lost_contact' ELSE m.organisation_id IS NULL END
        """,  # noqa: S608 - names from models; values are parameters
        p
        | {
            "lost": K.MEMBER_LOST_CONTACT,
            "unattached": K.MEMBER_UNATTACHED,
            "member_type": Gap.SUBJECT_MEMBER,
        },
    )


# --------------------------------------------------------------------------------------------
# Enterprises (两新组织)
# --------------------------------------------------------------------------------------------


def stage_enterprises(p: dict[str, Any]) -> int:
    """Enterprises without their own organisation: with `enterprise_min` or more full members they
    should form one (their joint branch answers, else the community organisation; serious at twice
    the threshold); with fewer and neither a joint branch nor an instructor they are a blank spot
    (党建空白点). The grid cell is the current cell of the community covering the point."""
    return _stage(
        f"""
        SELECT CASE WHEN n.full_members >= %(enterprise_min)s THEN %(should_form)s ELSE %(uncovered)s END,
               %(enterprise_type)s, e.id, e.credit_code, e.name, e.community_id, cell.id, e.geom,
               CASE WHEN n.full_members >= 2 * %(enterprise_min)s THEN {S.SERIOUS} ELSE {S.WARNING} END,
               CASE WHEN n.full_members >= %(enterprise_min)s THEN COALESCE(j.id, f.org_id) ELSE f.org_id END,
               CASE WHEN n.full_members >= %(enterprise_min)s THEN COALESCE(j.name, f.org_label)
                    ELSE f.org_label END,
               jsonb_build_object('full_members', n.full_members, 'members', n.members,
                                  'employees', e.employee_count, 'threshold', %(enterprise_min)s,
                                  'joint_branch', j.id IS NOT NULL, 'instructor', e.instructor_id IS NOT NULL)
        FROM "{ENTERPRISE}" e
        JOIN gap_fallback f ON f.community_id = e.community_id
        LEFT JOIN "{ORG}" j ON j.id = e.covering_joint_branch_id
        CROSS JOIN LATERAL (
            SELECT count(*) FILTER (WHERE m.status = 'full') AS full_members, count(*) AS members
            FROM "{MEMBER}" m WHERE m.work_enterprise_id = e.id
        ) n
        LEFT JOIN LATERAL (
            SELECT g.id FROM "{BOUNDARY}" gb JOIN "{CELL}" g ON g.id = gb.cell_id
            WHERE upper_inf(gb.valid) AND g.community_id = e.community_id AND ST_Covers(gb.geom, e.geom)
            ORDER BY g.code LIMIT 1
        ) cell ON true
        WHERE e.community_id = ANY(%(ids)s)
          AND NOT EXISTS (SELECT 1 FROM "{ORG}" o WHERE o.kind = 'enterprise_org' AND o.premises_id = e.id)
          AND (n.full_members >= %(enterprise_min)s
               OR (e.covering_joint_branch_id IS NULL AND e.instructor_id IS NULL))
        """,  # noqa: S608 - names from models; values are parameters
        p
        | {
            "should_form": K.ENTERPRISE_SHOULD_FORM_ORG,
            "uncovered": K.ENTERPRISE_UNCOVERED,
            "enterprise_type": Gap.SUBJECT_ENTERPRISE,
        },
    )


# --------------------------------------------------------------------------------------------
# Stationed cadres
# --------------------------------------------------------------------------------------------


def stage_cadres_short_of_days(p: dict[str, Any]) -> int:
    """Stationed cadres in post today whose on-site days this month lag the even pace (module
    docstring). The street's working committee answers. Serious below half the pace."""
    return _stage(
        f"""
        SELECT %(kind)s, %(cadre_type)s, s.id, '', s.name, s.community_id, NULL,
               ST_PointOnSurface(f.community_geom),
               CASE WHEN d.days < 0.5 * d.expected THEN {S.SERIOUS} ELSE {S.WARNING} END,
               f.committee_id, f.committee_label,
               jsonb_build_object('month', %(month)s, 'on_site_days', d.days,
                                  'required_days', s.required_days_per_month,
                                  'expected_by_today', round(d.expected::numeric, 2),
                                  'pace_share', %(pace_share)s)
        FROM "{CADRE}" s
        JOIN gap_fallback f ON f.community_id = s.community_id
        CROSS JOIN LATERAL (
            SELECT count(DISTINCT (k.occurred_at AT TIME ZONE %(tz)s)::date) AS days,
                   %(pace_share)s * s.required_days_per_month * %(month_share)s AS expected
            FROM "{CONTACT}" k
            WHERE k.cadre_id = s.id AND k.kind = 'check_in' AND k.on_site
              AND k.occurred_at >= %(month_start)s AND k.occurred_at < %(month_end)s
        ) d
        WHERE s.community_id = ANY(%(ids)s)
          AND s.period_start <= %(today)s AND (s.period_end IS NULL OR s.period_end >= %(today)s)
          AND d.days < d.expected
        """,  # noqa: S608 - names from models; values are parameters
        p | {"kind": K.CADRE_SHORT_OF_DAYS, "cadre_type": Gap.SUBJECT_CADRE},
    )


# --------------------------------------------------------------------------------------------
# Areas: beyond every service centre, not gridded, gridded twice
# --------------------------------------------------------------------------------------------


def _stage_area(kind: str, area_sql: str, p: dict[str, Any]) -> int:
    """Stage one area gap per community from `area_sql`, a query of (community_id, geom, extra
    jsonb). The area is cut into its polygons; pieces of `tolerance_m2` or less (slivers of
    floating-point noise along shared edges) are dropped, the rest kept as one multipolygon.
    Areas on the spheroid (geography), in m². Serious when it is a quarter of the community."""
    return _stage(
        f"""
        WITH area AS ({area_sql}),
        pieces AS (
            SELECT a.community_id, d.geom, ST_Area(d.geom::geography) AS m2
            FROM area a CROSS JOIN LATERAL ST_Dump(ST_CollectionExtract(ST_MakeValid(a.geom), 3)) d
        ),
        kept AS (
            SELECT community_id, ST_Multi(ST_Union(geom)) AS geom, sum(m2) AS m2, count(*) AS parts
            FROM pieces WHERE m2 > %(tolerance_m2)s GROUP BY community_id
        )
        SELECT %(kind)s, %(community_type)s, c.id, c.code, c.name, c.id, NULL, k.geom,
               CASE WHEN k.m2 >= 0.25 * ST_Area(c.geom::geography) THEN {S.SERIOUS} ELSE {S.WARNING} END,
               f.org_id, f.org_label,
               jsonb_build_object('area_m2', round(k.m2::numeric), 'parts', k.parts,
                                  'share', round((k.m2 / NULLIF(ST_Area(c.geom::geography), 0))::numeric, 4))
               || a.extra
        FROM kept k
        JOIN area a ON a.community_id = k.community_id
        JOIN "{COMMUNITY}" c ON c.id = k.community_id
        JOIN gap_fallback f ON f.community_id = c.id
        """,  # noqa: S608 - names from models; values are parameters
        p | {"kind": kind, "community_type": Gap.SUBJECT_COMMUNITY},
    )


def stage_areas_beyond_service_centre(p: dict[str, Any]) -> int:
    """The part of each community farther than `reach_m` from every service centre (of any level
    and any street: the nearest may stand across the street line). Buffers on the geography type
    (metres); a community with no centre in reach is wholly beyond."""
    area = f"""
        SELECT f.community_id,
               CASE WHEN r.covered IS NULL THEN f.community_geom
                    ELSE ST_Difference(f.community_geom, r.covered) END AS geom,
               jsonb_build_object('centres_in_reach', COALESCE(r.n, 0), 'reach_m', %(reach_m)s) AS extra
        FROM gap_fallback f
        LEFT JOIN LATERAL (
            SELECT ST_Union(ST_Buffer(sc.geom::geography, %(reach_m)s, 'quad_segs=16')::geometry) AS covered,
                   count(*) AS n
            FROM "{CENTRE}" sc
            WHERE ST_DWithin(sc.geom::geography, f.community_geom::geography, %(reach_m)s)
        ) r ON true
    """  # noqa: S608 - names from models
    return _stage_area(K.AREA_BEYOND_SERVICE_CENTRE, area, p)


def stage_areas_not_gridded(p: dict[str, Any]) -> int:
    """The part of each community that no current grid cell of it covers."""
    area = f"""
        SELECT f.community_id,
               CASE WHEN u.geom IS NULL THEN f.community_geom
                    ELSE ST_Difference(f.community_geom, u.geom) END AS geom,
               jsonb_build_object('grid_cells', COALESCE(u.n, 0)) AS extra
        FROM gap_fallback f
        LEFT JOIN LATERAL (
            SELECT ST_Union(gb.geom) AS geom, count(*) AS n
            FROM "{BOUNDARY}" gb JOIN "{CELL}" g ON g.id = gb.cell_id
            WHERE upper_inf(gb.valid) AND g.community_id = f.community_id
        ) u ON true
    """  # noqa: S608 - names from models
    return _stage_area(K.AREA_NOT_GRIDDED, area, p)


def stage_areas_multi_gridded(p: dict[str, Any]) -> int:
    """The part of each community covered by two or more of its current grid cells: the union of
    the pairwise overlaps (interiors meeting: 'T********'; cells that only share an edge do not)."""
    area = f"""
        WITH cur AS ({_CURRENT_CELLS})
        SELECT a.community_id, ST_Union(ST_Intersection(a.geom, b.geom)) AS geom,
               jsonb_build_object('grid_cells', (
                   SELECT jsonb_agg(DISTINCT x ORDER BY x) FROM unnest(array_agg(a.code) || array_agg(b.code)) x
               )) AS extra
        FROM cur a JOIN cur b ON b.community_id = a.community_id AND a.id < b.id
        WHERE a.geom && b.geom AND ST_Relate(a.geom, b.geom, 'T********')
        GROUP BY a.community_id
    """  # noqa: S608 - names from models
    return _stage_area(K.AREA_MULTI_GRIDDED, area, p)


STAGES = (
    stage_grids_without_branch,
    stage_grids_without_worker,
    stage_grids_low_visit_rate,
    stage_buildings_without_group,
    stage_buildings_unvisited,
    stage_members,
    stage_enterprises,
    stage_cadres_short_of_days,
    stage_areas_beyond_service_centre,
    stage_areas_not_gridded,
    stage_areas_multi_gridded,
)


# --------------------------------------------------------------------------------------------
# Building statuses for the map (mapping.tile_models)
# --------------------------------------------------------------------------------------------


def building_status_refresh(community_ids: Sequence[int], *, every_community: bool) -> int:
    """Write the buildings tile's facts of these communities' buildings (BuildingStatus), the grid
    cells tile's counts of their cells (GridCellStatus) and the data version they were read at
    (BuildingStatusVersion). Returns the buildings whose facts changed.

    One statement, so the facts and the versions come from one snapshot: a write committed after
    it bumped its community past the recorded version, and the tile computes that community's
    statuses itself until the next recompute (mapping.tile_models). Per building the lookups of
    the tile and of the building gaps above (members by residence, a building group naming it,
    the latest visit), each an index probe in a LATERAL; rows whose facts did not change are left
    alone, so a second run writes nothing. `every_community` (the full run) also drops the rows of
    buildings, cells and communities that no longer exist.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH fresh AS (
                SELECT b.id AS building_id, m.members, grp.has_group, lv.at AS last_visit_at
                FROM "{BUILDING}" b
                CROSS JOIN LATERAL (
                    SELECT count(*) AS members FROM "{MEMBER}" pm WHERE pm.residence_building_id = b.id
                ) m
                CROSS JOIN LATERAL (
                    SELECT count(*) > 0 AS has_group
                    FROM "{ORG_BLD}" x JOIN "{ORG}" o ON o.id = x.partyorganisation_id
                    WHERE x.building_id = b.id AND o.kind = 'building_group'
                ) grp
                {_LAST_VISIT}
                WHERE b.community_id = ANY(%(ids)s)
            ), written AS (
                INSERT INTO "{BUILDING_STATUS}" AS st (building_id, members, has_group, last_visit_at)
                SELECT building_id, members, has_group, last_visit_at FROM fresh
                ON CONFLICT (building_id) DO UPDATE
                SET members = EXCLUDED.members, has_group = EXCLUDED.has_group,
                    last_visit_at = EXCLUDED.last_visit_at
                WHERE (st.members, st.has_group, st.last_visit_at)
                      IS DISTINCT FROM (EXCLUDED.members, EXCLUDED.has_group, EXCLUDED.last_visit_at)
                RETURNING 1
            ), cells AS (
                INSERT INTO "{CELL_STATUS}" AS cs (cell_id, buildings, households)
                SELECT g.id, count(b.id), coalesce(sum(b.households), 0)
                FROM "{CELL}" g LEFT JOIN "{BUILDING}" b ON b.grid_cell_id = g.id
                WHERE g.community_id = ANY(%(ids)s)
                GROUP BY g.id
                ON CONFLICT (cell_id) DO UPDATE
                SET buildings = EXCLUDED.buildings, households = EXCLUDED.households
                WHERE (cs.buildings, cs.households) IS DISTINCT FROM (EXCLUDED.buildings, EXCLUDED.households)
            ), recorded AS (
                INSERT INTO "{BUILDING_STATUS_VERSION}" AS sv (community_id, data_version)
                SELECT c.id, c.data_version FROM "{COMMUNITY}" c WHERE c.id = ANY(%(ids)s)
                ON CONFLICT (community_id) DO UPDATE SET data_version = EXCLUDED.data_version
                WHERE sv.data_version <> EXCLUDED.data_version
            )
            SELECT count(*) FROM written
            """,  # noqa: S608 - names from models; values are parameters
            {"ids": list(community_ids)},
        )
        changed = int(cursor.fetchone()[0])
        if every_community:
            cursor.execute(
                f"""
                DELETE FROM "{BUILDING_STATUS}" st
                WHERE NOT EXISTS (SELECT 1 FROM "{BUILDING}" b WHERE b.id = st.building_id)
                """  # noqa: S608 - names from models
            )
            cursor.execute(
                f"""
                DELETE FROM "{CELL_STATUS}" cs
                WHERE NOT EXISTS (SELECT 1 FROM "{CELL}" g WHERE g.id = cs.cell_id)
                """  # noqa: S608 - names from models
            )
            cursor.execute(
                f"""
                DELETE FROM "{BUILDING_STATUS_VERSION}" sv
                WHERE NOT EXISTS (SELECT 1 FROM "{COMMUNITY}" c WHERE c.id = sv.community_id)
                """  # noqa: S608 - names from models
            )
    return changed


def building_status_carry(versions: dict[int, int]) -> None:
    """The recompute's own bump (`versions`: community id → the version it bumped to) changes no
    building fact: where the recorded version was the one just before it, the rows stay current.

    Where another write committed between the facts' snapshot and the bump, the recorded version
    is older than that and stays behind, so the tile keeps computing that community itself. The
    bump holds the communities' rows locked until the commit, so no write can come in between it
    and this statement.
    """
    if not versions:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE "{BUILDING_STATUS_VERSION}" sv SET data_version = bumped.version
            FROM unnest(%s::bigint[], %s::bigint[]) AS bumped(community_id, version)
            WHERE sv.community_id = bumped.community_id AND sv.data_version = bumped.version - 1
            """,  # noqa: S608 - names from models; values are parameters
            [list(versions), list(versions.values())],
        )


# --------------------------------------------------------------------------------------------
# Merge
# --------------------------------------------------------------------------------------------

_SAME_SUBJECT = "g.kind = s.kind AND g.subject_type = s.subject_type AND g.subject_id = s.subject_id"


# What a still-open gap shows besides its moment: when none of it changed, the row is only
# stamped with the run's moment (computed_at) and no map needs to know.
_SHOWN = (
    "subject_code, subject_label, community_id, grid_cell_id, geom, severity, responsible_org_id, "
    "responsible_label, figures"
)


@dataclass(frozen=True)
class Merged:
    """What merge_stage did: {"still_open"|"resolved"|"opened": {kind: count}}, and the communities
    whose open gaps now read differently (opened, resolved, or changed in what they show, both
    the community a gap left and the one it joined): their data versions must move."""

    counts: dict[str, dict[str, int]]
    changed_communities: list[int]


def merge_stage(*, community_ids: Sequence[int], at: datetime) -> Merged:
    """Make the open gaps of `community_ids` what `gap_stage` says, keeping history.

    - still open: the open row of a staged subject is updated in place, wherever it was (a member
      who moved house takes their open gap along); `since` never changes;
    - resolved: an open row of these communities whose subject is not staged gets `resolved_at`;
    - opened: a staged subject with no open row gets a new row, `since` = `at`. ON CONFLICT on the
      partial unique index is the last guard: the advisory locks already keep two recomputes of
      one community apart.

    Each statement returns per row its kind, the community before and after and whether what the
    row shows changed. PostgreSQL 15 has no RETURNING old.*: the still-open UPDATE joins the gap
    table a second time (`was`), which reads the row as the statement's snapshot saw it.
    """
    counts: dict[str, dict[str, int]] = {}
    changed: set[int] = set()
    params = {"at": at, "ids": list(community_ids)}
    shown_before = ", ".join(f"was.{c.strip()}" for c in _SHOWN.split(","))
    shown_staged = ", ".join(f"s.{c.strip()}" for c in _SHOWN.split(","))
    statements = {
        "still_open": f"""
            UPDATE "{GAP}" g SET
                subject_code = s.subject_code, subject_label = s.subject_label,
                community_id = s.community_id, grid_cell_id = s.grid_cell_id, geom = s.geom,
                severity = s.severity, responsible_org_id = s.responsible_org_id,
                responsible_label = s.responsible_label, figures = s.figures, computed_at = %(at)s
            FROM gap_stage s, "{GAP}" was
            WHERE g.resolved_at IS NULL AND {_SAME_SUBJECT} AND was.id = g.id
            RETURNING g.kind, was.community_id AS before, g.community_id AS after,
                      ({shown_before}) IS DISTINCT FROM ({shown_staged}) AS changed
        """,  # noqa: S608 - names from models; values are parameters
        "resolved": f"""
            UPDATE "{GAP}" g SET resolved_at = %(at)s, computed_at = %(at)s
            WHERE g.resolved_at IS NULL AND g.community_id = ANY(%(ids)s)
              AND NOT EXISTS (SELECT 1 FROM gap_stage s WHERE {_SAME_SUBJECT})
            RETURNING g.kind, g.community_id AS before, g.community_id AS after, true AS changed
        """,  # noqa: S608 - names from models; values are parameters
        "opened": f"""
            INSERT INTO "{GAP}" ({STAGE_COLUMNS}, since, resolved_at, computed_at)
            SELECT {", ".join(f"s.{c.strip()}" for c in STAGE_COLUMNS.split(","))}, %(at)s, NULL, %(at)s
            FROM gap_stage s
            WHERE NOT EXISTS (SELECT 1 FROM "{GAP}" g WHERE g.resolved_at IS NULL AND {_SAME_SUBJECT})
            ORDER BY s.kind, s.subject_type, s.subject_id
            ON CONFLICT (kind, subject_type, subject_id) WHERE resolved_at IS NULL DO NOTHING
            RETURNING kind, community_id AS before, community_id AS after, true AS changed
        """,  # noqa: S608 - names from models; values are parameters
    }
    for outcome, statement in statements.items():
        rows = _rows(
            f"""
            WITH done AS ({statement})
            SELECT kind, count(*),
                   coalesce(array_agg(DISTINCT before) FILTER (WHERE changed), '{{}}')
                   || coalesce(array_agg(DISTINCT after) FILTER (WHERE changed), '{{}}')
            FROM done GROUP BY kind
            """,  # noqa: S608 - statements from this function
            params,
        )
        counts[outcome] = {kind: n for kind, n, _ in rows}
        changed.update(c for _, _, communities in rows for c in communities)
    return Merged(counts=counts, changed_communities=sorted(changed))
