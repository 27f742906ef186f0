"""The planners' statements: raw SQL, because each reads a draft's shapes against every building,
enterprise, member and gap of a community in one set-based statement (LATERAL picks of the best
cell, ST_Dump, geography areas, json_agg of the answer) that the ORM cannot say. Values only as
parameters; table names from the models' Meta.

Where the shapes come from. Every statement reads a relation `cells (code, cell_id, geom)`: a
draft's cells (`draft_cells`) or the boundaries in force today (`today_cells`), so checking a draft
and checking today's grid (to compare against it) are the same statement.

How a building is placed. As the grid service places it (grid.sql.assign_buildings_to_grids): in
the cell holding the largest share of its footprint, ties to the lower code. Here the share itself
is wanted (a building cut by a boundary is reported), so it is measured: ST_Area on geography of
the intersection over the footprint's, skipped (share 1) where one cell covers the footprint,
which is most buildings. "Today" is the building's stored grid cell, what the map shows now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection

from grid.models import Building, GridBoundary, GridCell
from mapping.models import Gap
from mapping.plans_models import PlanCell
from orgs.models import Enterprise, GridWorker, PartyMember, PartyOrganisation

PLAN_CELL = PlanCell._meta.db_table
BOUNDARY = GridBoundary._meta.db_table
CELL = GridCell._meta.db_table
BUILDING = Building._meta.db_table
WORKER = GridWorker._meta.db_table
WORKER_CELL = GridWorker.grid_cells.through._meta.db_table
MEMBER = PartyMember._meta.db_table
ORG = PartyOrganisation._meta.db_table
ORG_BLD = PartyOrganisation.buildings.through._meta.db_table
ENTERPRISE = Enterprise._meta.db_table
GAP = Gap._meta.db_table

# GeoJSON coordinates to 7 decimals (~1 cm): enough to draw, a third of the text of full doubles.
GEOJSON_DIGITS = 7


@dataclass(frozen=True)
class Cells:
    """A `cells (code, cell_id, geom)` relation and its parameters (see the module docstring)."""

    sql: str
    params: dict[str, Any]


def draft_cells(plan_id: int) -> Cells:
    return Cells(
        f'SELECT pc.code, pc.cell_id, pc.geom FROM "{PLAN_CELL}" pc WHERE pc.plan_id = %(plan_id)s',  # noqa: S608
        {"plan_id": plan_id},
    )


def today_cells(community_id: int) -> Cells:
    """The community's cells with a boundary in force (an open-ended version), as the gap and the
    building assignment statements define "current"."""
    return Cells(
        f"""SELECT c.code, c.id AS cell_id, gb.geom FROM "{CELL}" c
            JOIN "{BOUNDARY}" gb ON gb.cell_id = c.id AND upper_inf(gb.valid)
            WHERE c.community_id = %(today_community_id)s""",  # noqa: S608 - names from models
        {"today_community_id": community_id},
    )


def _one(sql: str, params: dict[str, Any]) -> tuple[Any, ...]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return tuple(row)


# Each building of the community with today's cell and the draft's (module docstring). Needs the
# `cells` CTE and %(community_id)s.
_PLACED = f"""
    placed AS (
        SELECT b.id, b.code, b.name, b.households, b.geom, b.point,
               t.code AS today_code, pick.code AS draft_code,
               COALESCE(pick.share, 0) AS share, COALESCE(pick.candidates, 0) AS candidates
        FROM "{BUILDING}" b
        LEFT JOIN "{CELL}" t ON t.id = b.grid_cell_id
        LEFT JOIN LATERAL (
            SELECT s.code, s.share, count(*) OVER () AS candidates
            FROM (
                SELECT c.code,
                       CASE WHEN ST_CoveredBy(b.geom, c.geom) THEN 1.0
                            ELSE ST_Area(ST_Intersection(b.geom, c.geom)::geography)
                                 / NULLIF(ST_Area(b.geom::geography), 0) END AS share
                FROM cells c
                WHERE c.geom && b.geom AND ST_Intersects(c.geom, b.geom)
            ) s
            ORDER BY s.share DESC NULLS LAST, s.code
            LIMIT 1
        ) pick ON true
        WHERE b.community_id = %(community_id)s
    )
"""  # noqa: S608 - names from models


def cell_measures(*, cells: Cells, community_id: int, tolerance_m2: float, share_min: float) -> dict[str, Any]:
    """The live checks' figures of one set of cells, in one statement (mapping.plans_checks):

    - `cells`: per cell its area and perimeter on the spheroid (m², m), how many of its pieces
      are larger than the partition tolerance (a cell in one piece has one), a point on its
      surface (for the display order), the buildings and households placed in it, the households
      that come into it and leave it against today's grid, and its active grid workers;
    - `buildings`: buildings not wholly in one cell (largest share below `share_min`): in no
      cell, partly outside every cell, or cut by a boundary, with their footprint as GeoJSON;
    - `totals`: buildings, households, households placed in another cell than today.
    """
    sql = f"""
        WITH cells AS MATERIALIZED ({cells.sql}),
        {_PLACED},
        per_cell AS (
            SELECT c.code, c.cell_id,
                   ST_Area(c.geom::geography) AS area_m2,
                   ST_Perimeter(c.geom::geography) AS perimeter_m,
                   (SELECT count(*) FROM ST_Dump(c.geom) d
                    WHERE ST_Area(d.geom::geography) > %(tolerance_m2)s) AS pieces,
                   ST_X(ST_PointOnSurface(c.geom)) AS lon, ST_Y(ST_PointOnSurface(c.geom)) AS lat,
                   count(p.id) AS buildings,
                   COALESCE(sum(p.households), 0) AS households,
                   COALESCE(sum(p.households) FILTER (
                       WHERE p.today_code IS NOT NULL AND p.today_code <> c.code), 0) AS households_in,
                   (SELECT COALESCE(sum(q.households), 0) FROM placed q
                    WHERE q.today_code = c.code AND q.draft_code IS DISTINCT FROM c.code) AS households_out,
                   (SELECT count(*) FROM "{WORKER_CELL}" x JOIN "{WORKER}" w ON w.id = x.gridworker_id
                    WHERE x.gridcell_id = c.cell_id AND w.active) AS workers
            FROM cells c LEFT JOIN placed p ON p.draft_code = c.code
            GROUP BY c.code, c.cell_id, c.geom
        )
        SELECT
            (SELECT COALESCE(json_agg(row_to_json(pc) ORDER BY pc.code), '[]') FROM per_cell pc),
            (SELECT COALESCE(json_agg(json_build_object(
                        'id', p.id, 'code', p.code, 'name', p.name, 'households', p.households,
                        'cell', p.draft_code, 'share', round(p.share::numeric, 4),
                        'candidates', p.candidates,
                        'geometry', ST_AsGeoJSON(p.geom, {GEOJSON_DIGITS})::json) ORDER BY p.code), '[]')
             FROM placed p WHERE p.share < %(share_min)s),
            (SELECT json_build_object(
                        'buildings', count(*),
                        'households', COALESCE(sum(p.households), 0),
                        'households_moved', COALESCE(sum(p.households) FILTER (
                            WHERE p.today_code IS NOT NULL AND p.today_code IS DISTINCT FROM p.draft_code), 0),
                        'buildings_moved', count(*) FILTER (
                            WHERE p.today_code IS NOT NULL AND p.today_code IS DISTINCT FROM p.draft_code))
             FROM placed p)
    """  # noqa: S608 - names from models; values are parameters
    row = _one(
        sql,
        {
            **cells.params,
            "community_id": community_id,
            "tolerance_m2": tolerance_m2,
            "share_min": share_min,
        },
    )
    return {"cells": row[0], "buildings": row[1], "totals": row[2]}


def building_cell(*, cells: Cells, community_id: int, building_code: str) -> tuple[int, str | None, Any] | None:
    """(id, draft cell code, footprint as hex EWKB) of one building of the community, or None."""
    sql = f"""
        WITH cells AS MATERIALIZED ({cells.sql}), {_PLACED}
        SELECT p.id, p.draft_code, ST_AsEWKB(p.geom) FROM placed p WHERE p.code = %(building_code)s
    """  # noqa: S608 - names from models; values are parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, {**cells.params, "community_id": community_id, "building_code": building_code})
        row = cursor.fetchone()
    return None if row is None else (row[0], row[1], bytes(row[2]))


def impact(*, cells: Cells, community_id: int) -> dict[str, Any]:
    """What a draft moves, in one statement (mapping.plans_preview): people and organisations.

    - `buildings`: each building whose cell changes (today -> draft), with its households, the
      party members living there and the building groups it belongs to;
    - `flows`: the same summed per (from, to) pair: buildings, households, members;
    - `groups`: building groups (楼栋党小组) with a building that moves, where each of their buildings
      ends up, and whether the group ends up split across cells;
    - `enterprises`: enterprises whose cell changes: by their building when they have one, else
      by their point (as the gap statements and orgs.access place them);
    - `gaps`: open coverage gaps whose subject (a building, a member by residence, an enterprise)
      moves to another cell;
    - `cells`: today's cells with their draft fate: kept, retired (no longer in the draft), and
      the draft's new codes; with each today cell's grid branch and active workers.
    """
    sql = f"""
        WITH cells AS MATERIALIZED ({cells.sql}),
        {_PLACED},
        today AS MATERIALIZED (
            SELECT c.id, c.code, gb.geom FROM "{CELL}" c
            JOIN "{BOUNDARY}" gb ON gb.cell_id = c.id AND upper_inf(gb.valid)
            WHERE c.community_id = %(community_id)s
        ),
        moved AS (
            SELECT p.* FROM placed p WHERE p.today_code IS DISTINCT FROM p.draft_code
        ),
        moved_detail AS (
            SELECT m.id, m.code, m.name, m.households, m.today_code, m.draft_code, m.share,
                   (SELECT count(*) FROM "{MEMBER}" pm WHERE pm.residence_building_id = m.id) AS members,
                   (SELECT COALESCE(json_agg(json_build_object('id', o.id, 'name', o.name) ORDER BY o.id), '[]')
                    FROM "{ORG_BLD}" x JOIN "{ORG}" o ON o.id = x.partyorganisation_id
                    WHERE x.building_id = m.id AND o.kind = 'building_group') AS groups
            FROM moved m
        ),
        ent AS (
            SELECT e.id, e.name, e.building_id,
                   COALESCE(pb.today_code, pt.code) AS today_code,
                   CASE WHEN e.building_id IS NOT NULL THEN pb.draft_code ELSE pd.code END AS draft_code
            FROM "{ENTERPRISE}" e
            LEFT JOIN placed pb ON pb.id = e.building_id
            LEFT JOIN LATERAL (
                SELECT t.code FROM today t WHERE e.building_id IS NULL AND ST_Covers(t.geom, e.geom)
                ORDER BY t.code LIMIT 1
            ) pt ON true
            LEFT JOIN LATERAL (
                SELECT c.code FROM cells c WHERE e.building_id IS NULL AND ST_Covers(c.geom, e.geom)
                ORDER BY c.code LIMIT 1
            ) pd ON true
            WHERE e.community_id = %(community_id)s
        ),
        group_buildings AS (
            SELECT o.id, o.name, p.code AS building, p.today_code, p.draft_code
            FROM "{ORG}" o
            JOIN "{ORG_BLD}" x ON x.partyorganisation_id = o.id
            JOIN placed p ON p.id = x.building_id
            WHERE o.kind = 'building_group'
        ),
        fates AS (
            SELECT t.id, t.code, (t.code IN (SELECT code FROM cells)) AS kept FROM today t
        )
        SELECT
            (SELECT COALESCE(json_agg(json_build_object(
                        'id', d.id, 'code', d.code, 'name', d.name, 'households', d.households,
                        'from', d.today_code, 'to', d.draft_code, 'members', d.members,
                        'groups', d.groups) ORDER BY d.code), '[]')
             FROM moved_detail d),
            (SELECT COALESCE(json_agg(f ORDER BY f."from" NULLS FIRST, f."to" NULLS FIRST), '[]') FROM (
                SELECT d.today_code AS "from", d.draft_code AS "to", count(*) AS buildings,
                       sum(d.households) AS households, sum(d.members) AS members
                FROM moved_detail d GROUP BY d.today_code, d.draft_code) f),
            (SELECT COALESCE(json_agg(g ORDER BY g.id), '[]') FROM (
                SELECT gb.id, gb.name,
                       json_agg(json_build_object('building', gb.building, 'from', gb.today_code,
                                                  'to', gb.draft_code) ORDER BY gb.building) AS buildings,
                       count(DISTINCT gb.draft_code) > 1 AS split
                FROM group_buildings gb
                GROUP BY gb.id, gb.name
                HAVING bool_or(gb.today_code IS DISTINCT FROM gb.draft_code)) g),
            (SELECT COALESCE(json_agg(json_build_object(
                        'id', e.id, 'name', e.name, 'from', e.today_code, 'to', e.draft_code) ORDER BY e.id), '[]')
             FROM ent e WHERE e.today_code IS DISTINCT FROM e.draft_code),
            (SELECT COALESCE(json_agg(json_build_object(
                        'id', g.id, 'kind', g.kind, 'subject_type', g.subject_type, 'subject_id', g.subject_id,
                        'subject_code', g.subject_code, 'subject_label', g.subject_label,
                        'from', gc.code, 'to', s.to_code) ORDER BY g.id), '[]')
             FROM "{GAP}" g
             LEFT JOIN "{CELL}" gc ON gc.id = g.grid_cell_id
             CROSS JOIN LATERAL (
                SELECT CASE g.subject_type
                    WHEN %(subject_building)s THEN (SELECT p.draft_code FROM placed p WHERE p.id = g.subject_id)
                    WHEN %(subject_member)s THEN (
                        SELECT p.draft_code FROM "{MEMBER}" pm JOIN placed p ON p.id = pm.residence_building_id
                        WHERE pm.id = g.subject_id)
                    WHEN %(subject_enterprise)s THEN (SELECT e.draft_code FROM ent e WHERE e.id = g.subject_id)
                END AS to_code,
                g.subject_type IN (%(subject_building)s, %(subject_enterprise)s)
                    OR (g.subject_type = %(subject_member)s AND EXISTS (
                        SELECT 1 FROM "{MEMBER}" pm WHERE pm.id = g.subject_id
                          AND pm.residence_building_id IS NOT NULL)) AS placed_by_space
             ) s
             WHERE g.community_id = %(community_id)s AND g.resolved_at IS NULL AND s.placed_by_space
               AND gc.code IS DISTINCT FROM s.to_code),
            (SELECT COALESCE(json_agg(json_build_object(
                        'id', f.id, 'code', f.code, 'kept', f.kept,
                        'branch', (SELECT json_build_object('id', o.id, 'name', o.name) FROM "{ORG}" o
                                   WHERE o.kind = 'grid_branch' AND o.grid_cell_id = f.id),
                        'workers', (SELECT COALESCE(json_agg(json_build_object('id', w.id, 'name', w.name)
                                                             ORDER BY w.id), '[]')
                                    FROM "{WORKER_CELL}" x JOIN "{WORKER}" w ON w.id = x.gridworker_id
                                    WHERE x.gridcell_id = f.id AND w.active)) ORDER BY f.code), '[]')
             FROM fates f),
            (SELECT COALESCE(json_agg(c.code ORDER BY c.code), '[]') FROM cells c
             WHERE c.code NOT IN (SELECT code FROM today))
    """  # noqa: S608 - names from models; values are parameters
    row = _one(
        sql,
        {
            **cells.params,
            "community_id": community_id,
            "subject_building": Gap.SUBJECT_BUILDING,
            "subject_member": Gap.SUBJECT_MEMBER,
            "subject_enterprise": Gap.SUBJECT_ENTERPRISE,
        },
    )
    keys = ("buildings", "flows", "groups", "enterprises", "gaps", "today_cells", "new_cells")
    return dict(zip(keys, row, strict=True))


def cells_geojson(cells: Cells) -> dict[str, Any]:
    """A FeatureCollection of the cells (code as id and property), for the before/after map."""
    sql = f"""
        WITH cells AS ({cells.sql})
        SELECT json_build_object('type', 'FeatureCollection', 'features', COALESCE(json_agg(json_build_object(
            'type', 'Feature', 'id', c.code,
            'geometry', ST_AsGeoJSON(c.geom, {GEOJSON_DIGITS})::json,
            'properties', json_build_object('code', c.code)) ORDER BY c.code), '[]'))
        FROM cells c
    """  # noqa: S608 - names from models; values are parameters
    return _one(sql, cells.params)[0]


# --------------------------------------------------------------------------------------------
# The dry run: the draft written into the live tables, inside a transaction the caller rolls back
# --------------------------------------------------------------------------------------------


def draft_into_live(*, plan_id: int, community_id: int) -> None:
    """Make the draft's shapes the community's boundaries in force, set-based, WITHOUT any of the
    grid service's checks, versions or audit: only for the preview's dry run, which calls this
    inside a transaction it rolls back (mapping.plans_preview), so that the gap statements run
    unchanged on the draft. Never call it in a transaction that commits.

    Retired cells (today's, not in the draft) stop being current (their version is cut to one
    day); kept cells get the draft shape in place; a draft code with no GridCell gets one; every
    draft cell without a current version gets one from today.
    """
    params = {"plan_id": plan_id, "community_id": community_id}
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE "{BOUNDARY}" gb SET valid = daterange(lower(gb.valid), lower(gb.valid) + 1, '[)')
            FROM "{CELL}" c
            WHERE c.id = gb.cell_id AND c.community_id = %(community_id)s AND upper_inf(gb.valid)
              AND NOT EXISTS (SELECT 1 FROM "{PLAN_CELL}" pc WHERE pc.plan_id = %(plan_id)s AND pc.code = c.code)
            """,  # noqa: S608 - names from models; values are parameters
            params,
        )
        cursor.execute(
            f"""
            UPDATE "{BOUNDARY}" gb SET geom = pc.geom
            FROM "{PLAN_CELL}" pc JOIN "{CELL}" c ON c.code = pc.code
            WHERE pc.plan_id = %(plan_id)s AND gb.cell_id = c.id AND upper_inf(gb.valid)
            """,  # noqa: S608 - names from models; values are parameters
            params,
        )
        cursor.execute(
            f"""
            INSERT INTO "{CELL}" (code, community_id, name, responsible_body, created_at, updated_at)
            SELECT pc.code, %(community_id)s, pc.name, '', now(), now() FROM "{PLAN_CELL}" pc
            WHERE pc.plan_id = %(plan_id)s AND NOT EXISTS (SELECT 1 FROM "{CELL}" c WHERE c.code = pc.code)
            """,  # noqa: S608 - names from models; values are parameters
            params,
        )
        cursor.execute(
            f"""
            INSERT INTO "{BOUNDARY}" (cell_id, geom, valid, note, created_at)
            SELECT c.id, pc.geom, daterange(current_date, NULL, '[)'), '', now()
            FROM "{PLAN_CELL}" pc JOIN "{CELL}" c ON c.code = pc.code
            WHERE pc.plan_id = %(plan_id)s
              AND NOT EXISTS (SELECT 1 FROM "{BOUNDARY}" gb WHERE gb.cell_id = c.id AND upper_inf(gb.valid))
            """,  # noqa: S608 - names from models; values are parameters
            params,
        )


def boundaries_in_force(community_id: int) -> tuple[list[int], str]:
    """The ids of the community's boundary versions in force (sorted) and an md5 of their ids,
    start dates and shapes: what a draft is based on, and what tells that it is stale. The shapes
    count because a version corrected on its own start date keeps its id (grid.sql)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT COALESCE(array_agg(gb.id ORDER BY gb.id), '{{}}'),
                       md5(COALESCE(string_agg(gb.id || ':' || lower(gb.valid) || ':'
                                               || encode(ST_AsEWKB(gb.geom), 'hex'), ',' ORDER BY gb.id), ''))
                FROM "{BOUNDARY}" gb JOIN "{CELL}" c ON c.id = gb.cell_id
                WHERE c.community_id = %s AND upper_inf(gb.valid)""",  # noqa: S608 - names from models
            [community_id],
        )
        ids, digest = cursor.fetchone()
    return list(ids), digest


def next_free_sequences(*, community_id: int, community_code: str, plan_id: int, count: int) -> Sequence[str]:
    """`count` new grid codes for a draft: the community's code plus the next 3-digit sequence
    numbers no grid cell of the community (live or retired) and no cell of this draft uses.
    Fewer when the 999 numbers run out."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT %(prefix)s || lpad(n::text, 3, '0')
            FROM generate_series(
                (SELECT COALESCE(max(right(code, 3)::int), 0) + 1 FROM (
                    SELECT code FROM "{CELL}" WHERE community_id = %(community_id)s
                    UNION ALL SELECT code FROM "{PLAN_CELL}" WHERE plan_id = %(plan_id)s) used
                 WHERE code LIKE %(prefix_like)s),
                999) n
            WHERE NOT EXISTS (SELECT 1 FROM "{CELL}" c WHERE c.code = %(prefix)s || lpad(n::text, 3, '0'))
            ORDER BY n
            LIMIT %(count)s
            """,  # noqa: S608 - names from models; values are parameters
            {
                "prefix": community_code,
                "prefix_like": community_code + "%",
                "community_id": community_id,
                "plan_id": plan_id,
                "count": count,
            },
        )
        return [row[0] for row in cursor.fetchall()]


def takers_of(*, cells: Cells, community_id: int, codes: Sequence[str], tolerance_m2: float) -> dict[str, list[str]]:
    """For each of these cells in force today (retired by the draft), the draft cells that take
    more than `tolerance_m2` of its area (on the spheroid): where its branch's territory goes."""
    if not codes:
        return {}
    sql = f"""
        WITH cells AS MATERIALIZED ({cells.sql})
        SELECT t.code, COALESCE(array_agg(c.code ORDER BY c.code) FILTER (WHERE c.code IS NOT NULL), '{{}}')
        FROM "{CELL}" t
        JOIN "{BOUNDARY}" gb ON gb.cell_id = t.id AND upper_inf(gb.valid)
        LEFT JOIN cells c ON c.geom && gb.geom AND ST_Intersects(c.geom, gb.geom)
             AND ST_Area(ST_Intersection(c.geom, gb.geom)::geography) > %(tolerance_m2)s
        WHERE t.community_id = %(community_id)s AND t.code = ANY(%(codes)s)
        GROUP BY t.code
    """  # noqa: S608 - names from models; values are parameters
    with connection.cursor() as cursor:
        cursor.execute(
            sql, {**cells.params, "community_id": community_id, "codes": list(codes), "tolerance_m2": tolerance_m2}
        )
        return {code: list(takers) for code, takers in cursor.fetchall()}


def changed_codes(*, cells: Cells, community_id: int) -> list[str]:
    """The draft cells whose code is in force today with another shape (redrawn), sorted."""
    sql = f"""
        WITH cells AS MATERIALIZED ({cells.sql})
        SELECT c.code FROM cells c
        JOIN "{CELL}" t ON t.code = c.code AND t.community_id = %(community_id)s
        JOIN "{BOUNDARY}" gb ON gb.cell_id = t.id AND upper_inf(gb.valid)
        WHERE NOT ST_Equals(c.geom, gb.geom)
        ORDER BY c.code
    """  # noqa: S608 - names from models; values are parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, {**cells.params, "community_id": community_id})
        return [row[0] for row in cursor.fetchall()]


def plan_cells_geojson(plan_id: int) -> dict[str, Any]:
    """A draft's cells as a FeatureCollection with what the planning page draws: code, name,
    locked, new (no grid cell of that code yet)."""
    sql = f"""
        SELECT json_build_object('type', 'FeatureCollection', 'features', COALESCE(json_agg(json_build_object(
            'type', 'Feature', 'id', pc.code,
            'geometry', ST_AsGeoJSON(pc.geom, {GEOJSON_DIGITS})::json,
            'properties', json_build_object('code', pc.code, 'name', pc.name, 'locked', pc.locked,
                                            'new', pc.cell_id IS NULL)) ORDER BY pc.code), '[]'))
        FROM "{PLAN_CELL}" pc WHERE pc.plan_id = %(plan_id)s
    """  # noqa: S608 - names from models; values are parameters
    return _one(sql, {"plan_id": plan_id})[0]
