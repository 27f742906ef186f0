"""Raw SQL the ORM cannot say well. Each statement says why it is raw; values only as parameters.

Tree reads: the organisation tree is walked with recursive CTEs over the `parent_id` index. Why
this and not nested sets / MPTT, a materialised path (ltree) or a closure table: a street's tree
is small (hundreds to a few thousand nodes) and shallow (street → community → grid → building,
≤ 6 levels), so a recursive walk is a few milliseconds, and it keeps no derived state: a
re-parenting is one UPDATE of one row, with nothing (lft/rgt numbers, paths, closure rows) that
can drift from the truth when someone edits a row outside the service. Every read is one query.
`UNION` (not `UNION ALL`) in the descendant walk makes even a corrupt cycle terminate; the
ancestor walk carries its depth and stops at MAX_DEPTH for the same reason.

Table names come from the models' Meta so a rename cannot silently break these statements.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import Any

from django.conf import settings
from django.db import connection

from grid.models import Building, Community, GridCell, Street
from grid.sql import cell_on_day_sql, community_at_sql
from orgs.models import (
    ALLOWED_PARENT_KINDS,
    Cadre,
    CommitteeSeat,
    Enterprise,
    GridWorker,
    PartyMember,
    PartyOrganisation,
    StationContact,
)

ORG = PartyOrganisation._meta.db_table
MEMBER = PartyMember._meta.db_table
ENTERPRISE = Enterprise._meta.db_table
COMMUNITY = Community._meta.db_table
CELL = GridCell._meta.db_table
CONTACT = StationContact._meta.db_table
STREET = Street._meta.db_table
BUILDING = Building._meta.db_table
ORG_BLD = PartyOrganisation.buildings.through._meta.db_table
CADRE = Cadre._meta.db_table
WORKER = GridWorker._meta.db_table
WORKER_CELL = GridWorker.grid_cells.through._meta.db_table
SEAT = CommitteeSeat._meta.db_table
SEAT_COMM = CommitteeSeat.liaison_communities.through._meta.db_table

MAX_DEPTH = 32

# Ids of an organisation and all its descendants. Used as `id__in=RawSQL(...)` so the caller
# keeps a composable queryset and the database still does the whole walk in the one query.
SUBTREE_IDS = f"""
    WITH RECURSIVE sub(id) AS (
        SELECT id FROM "{ORG}" WHERE id = %s
        UNION
        SELECT c.id FROM "{ORG}" c JOIN sub ON c.parent_id = sub.id
    )
    SELECT id FROM sub
"""  # noqa: S608 - table name from the model

# An organisation's ancestors, root first, as full rows (for Manager.raw) with their distance.
ANCESTORS = f"""
    WITH RECURSIVE anc(id, parent_id, depth) AS (
        SELECT id, parent_id, 0 FROM "{ORG}" WHERE id = %s
        UNION ALL
        SELECT p.id, p.parent_id, anc.depth + 1
        FROM "{ORG}" p JOIN anc ON p.id = anc.parent_id
        WHERE anc.depth < {MAX_DEPTH}
    )
    SELECT o.*, anc.depth AS distance FROM anc JOIN "{ORG}" o ON o.id = anc.id
    WHERE anc.depth > 0
    ORDER BY anc.depth DESC
"""  # noqa: S608 - table name and a constant


def _street_filter(alias: str, street_id: int | None) -> tuple[str, list[Any]]:
    if street_id is None:
        return "", []
    return f" AND {alias}.street_id = %s", [street_id]


def org_member_counts(*, street_id: int | None, levels: Sequence[str]) -> list[dict[str, Any]]:
    """Members (all, and full only) of each organisation at `levels`, counting its whole subtree.

    A 党委's members are those of its branches and groups too, so a per-org Count is not enough:
    this builds the (ancestor, descendant) pairs of the candidate orgs with one recursive CTE and
    counts members in the same statement.
    """
    where, params = _street_filter("o", street_id)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH RECURSIVE closure(ancestor_id, id) AS (
                SELECT o.id, o.id FROM "{ORG}" o WHERE o.level = ANY(%s){where}
                UNION
                SELECT cl.ancestor_id, c.id FROM "{ORG}" c JOIN closure cl ON c.parent_id = cl.id
            )
            SELECT o.id, o.name, o.kind, o.level, o.parent_id, p.name AS parent_name,
                   count(m.id) AS members,
                   count(m.id) FILTER (WHERE m.status = 'full') AS full_members
            FROM closure cl
            JOIN "{ORG}" o ON o.id = cl.ancestor_id
            LEFT JOIN "{ORG}" p ON p.id = o.parent_id
            LEFT JOIN "{MEMBER}" m ON m.organisation_id = cl.id
            GROUP BY o.id, p.id
            ORDER BY o.code
            """,  # noqa: S608 - table names from models; values are parameters
            [list(levels), *params],
        )
        cols = [c.name for c in cursor.description]
        return [dict(zip(cols, row, strict=True)) for row in cursor.fetchall()]


def org_terms_ending_by(*, street_id: int | None, until: date) -> list[dict[str, Any]]:
    """Organisations whose current term ends on or before `until` (overdue ones included).

    Raw because the end of a term is `start + term_years years` (a per-row interval), which the
    ORM has no expression for; `make_interval` keeps 29 February terms honest.
    """
    where, params = _street_filter("o", street_id)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT * FROM (
                SELECT o.id, o.name, o.kind, o.parent_id, p.name AS parent_name, o.term_started_on,
                       o.term_years,
                       (o.term_started_on + make_interval(years => o.term_years))::date AS term_ends_on
                FROM "{ORG}" o LEFT JOIN "{ORG}" p ON p.id = o.parent_id
                WHERE o.term_started_on IS NOT NULL{where}
            ) t
            WHERE t.term_ends_on <= %s
            ORDER BY t.term_ends_on, t.id
            """,  # noqa: S608 - table name from the model; values are parameters
            [*params, until],
        )
        cols = [c.name for c in cursor.description]
        return [dict(zip(cols, row, strict=True)) for row in cursor.fetchall()]


def enterprises_near_outlines(community_ids: Sequence[int]) -> list[tuple[int, int | None]]:
    """(id, community_id) of the enterprises a change of these communities' outlines can move:
    those placed in one of them today, and those whose point one of them now covers.

    A UNION of two index-backed semi-joins (community_id, then the gist index on the outline)
    rather than `community_id = ANY OR ST_Covers(...)`, which would scan every enterprise.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT e.id, e.community_id FROM "{ENTERPRISE}" e WHERE e.community_id = ANY(%s)
            UNION
            SELECT e.id, e.community_id FROM "{ENTERPRISE}" e
            JOIN "{COMMUNITY}" c ON c.id = ANY(%s) AND ST_Covers(c.geom, e.geom)
            """,  # noqa: S608 - table names from models; values are parameters
            [list(community_ids), list(community_ids)],
        )
        return list(cursor.fetchall())


def enterprises_locate(enterprise_ids: Sequence[int] | None) -> int:
    """Set each enterprise's community to the one whose boundary covers its point, set-based.

    ST_Covers (not Contains) so a point on a boundary still belongs somewhere; where two
    communities share that edge the lower code wins, so the answer is stable. Returns the number
    of rows whose community changed.
    """
    where = "WHERE e.id = ANY(%s)" if enterprise_ids is not None else ""
    params: list[Any] = [list(enterprise_ids)] if enterprise_ids is not None else []
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH located AS (
                SELECT e.id, (
                    SELECT c.id FROM "{COMMUNITY}" c
                    WHERE ST_Covers(c.geom, e.geom)
                    ORDER BY c.code LIMIT 1
                ) AS community_id
                FROM "{ENTERPRISE}" e {where}
            )
            UPDATE "{ENTERPRISE}" e SET community_id = located.community_id
            FROM located
            WHERE e.id = located.id AND e.community_id IS DISTINCT FROM located.community_id
            """,  # noqa: S608 - table names from models; values are parameters
            params,
        )
        return cursor.rowcount


# --------------------------------------------------------------------------------------------
# Field events (orgs/sync.py)
# --------------------------------------------------------------------------------------------


def places_on_days(
    places: Sequence[tuple[int, float | None, float | None, date]],
) -> dict[int, tuple[int | None, int | None, int | None]]:
    """For each (key, lon, lat, day): (grid cell, community, street) holding the point that day.

    One statement for a whole batch (grid.sql's lookup, LATERAL per point). A point in no grid
    cell that day still gets the community covering it, so an event in a community's ungridded
    corner is not lost.
    """
    rows = [{"key": k, "lon": lon, "lat": lat, "day": d.isoformat()} for k, lon, lat, d in places]
    if not rows:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH item AS (
                SELECT i.key, ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326) AS pt, i.day
                FROM jsonb_to_recordset(%s::jsonb) AS i(key int, lon float8, lat float8, day date)
            )
            SELECT item.key, cell.cell_id,
                   COALESCE(cell.community_id, com.id), COALESCE(cm.street_id, com.street_id)
            FROM item
            LEFT JOIN LATERAL ({cell_on_day_sql(point="item.pt", day="item.day")}) cell ON true
            LEFT JOIN "{COMMUNITY}" cm ON cm.id = cell.community_id
            LEFT JOIN LATERAL ({community_at_sql(point="item.pt", guard="cell.cell_id IS NULL")}) com ON true
            """,  # noqa: S608 - table names from models; values are parameters
            [json.dumps(rows)],
        )
        return {key: (cell, community, street) for key, cell, community, street in cursor.fetchall()}


_EVENT_COLUMNS = {
    "id": "uuid",
    "occurred_at": "timestamptz",
    "reporter_id": "integer",
    "reporter_name": "text",
    "captured_lon": "float8",
    "captured_lat": "float8",
    "captured_crs": "text",
    "accuracy_m": "float8",
    "community_id": "integer",
    "grid_cell_id": "integer",
    "building_id": "integer",
    "summary": "text",
    "kind": "text",
    "payload_hash": "text",
}


def insert_field_events(table: str, rows: Sequence[dict[str, Any]], *, extra_columns: dict[str, str]) -> set[str]:
    """Insert a batch of events; a row whose id exists is skipped. Returns the ids inserted.

    Raw for `ON CONFLICT (id) DO NOTHING … RETURNING`, which the ORM's bulk_create cannot
    combine (it does not say which rows were inserted), and to build the points and the distance
    to the subject (geography, metres) in the database.
    """
    if not rows:
        return set()
    columns = {**_EVENT_COLUMNS, **extra_columns}
    record = ", ".join(f"{name} {kind}" for name, kind in columns.items())
    names = ", ".join(f'"{name}"' for name in columns)
    values = ", ".join(f"i.{name}" for name in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH item AS (
                SELECT i.*, ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326) AS point,
                       ST_SetSRID(ST_MakePoint(i.place_lon, i.place_lat), 4326) AS place
                FROM jsonb_to_recordset(%s::jsonb)
                     AS i({record}, lon float8, lat float8, place_lon float8, place_lat float8,
                          has_subject boolean)
            )
            INSERT INTO "{table}" ({names}, "point", "place", "distance_to_subject_m", "received_at")
            SELECT {values}, i.point, i.place,
                   CASE WHEN i.has_subject AND i.point IS NOT NULL
                        THEN ST_Distance(i.point::geography, i.place::geography) END,
                   now()
            FROM item i
            -- A total order: two batches sharing ids take their row locks in the same order, so
            -- concurrent retries wait for each other instead of deadlocking.
            ORDER BY i.occurred_at, i.id
            ON CONFLICT (id) DO NOTHING
            RETURNING id
            """,  # noqa: S608 - table and column names from code; values are parameters
            [json.dumps(list(rows))],
        )
        return {str(row[0]) for row in cursor.fetchall()}


def field_event_owners(table: str, ids: Sequence[str]) -> dict[str, tuple[int, str]]:
    """(reporter, payload hash) of the events among `ids` that exist: to tell a duplicate from a
    replay with other content or by another account."""
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT id, reporter_id, payload_hash FROM "{table}" WHERE id = ANY(%s::uuid[])',  # noqa: S608
            [list(ids)],
        )
        return {str(i): (reporter, digest) for i, reporter, digest in cursor.fetchall()}


def mark_contacts_on_site(ids: Sequence[str]) -> int:
    """A station contact is on site when the circle of its reported accuracy around the captured
    position lies within its community grown by WANGGE_RULES["attendance_tolerance_m"]: a coarse
    fix (hundreds of metres) proves nothing. Without a reported accuracy the point alone decides
    (older clients and imports). Buffers on geography: metres on the ground at any latitude."""
    if not ids:
        return 0
    tolerance = float(settings.WANGGE_RULES["attendance_tolerance_m"])
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE "{CONTACT}" e SET on_site = ST_Covers(
                ST_Buffer(c.geom::geography, %(tolerance)s)::geometry,
                CASE WHEN e.accuracy_m > 0 THEN ST_Buffer(e.point::geography, e.accuracy_m)::geometry
                     ELSE e.point END)
            FROM "{COMMUNITY}" c
            WHERE e.id = ANY(%(ids)s::uuid[]) AND c.id = e.community_id AND e.point IS NOT NULL
            """,  # noqa: S608 - table names from models
            {"ids": list(ids), "tolerance": tolerance},
        )
        return cursor.rowcount


# --------------------------------------------------------------------------------------------
# Tree integrity of whole streets
# --------------------------------------------------------------------------------------------

_S_STREETS = f'SELECT id FROM "{STREET}" WHERE code = ANY(%(codes)s)'  # noqa: S608 - names from models
_S_COMMS = f'SELECT id FROM "{COMMUNITY}" WHERE street_id IN ({_S_STREETS})'  # noqa: S608 - names from models
_S_ORGS = f'SELECT id FROM "{ORG}" WHERE street_id IN ({_S_STREETS})'  # noqa: S608 - names from models


def org_tree_violations(*, street_codes: Sequence[str]) -> dict[str, int]:
    """The cross-row rules that orgs.services.party_org_check enforces one write at a time,
    counted for every organisation (and the enterprises, workers and seats) of these streets, one
    statement each. For bulk writers that bypass the per-row service (the demo generator) and
    for an integrity check of a whole street. The kinds' parent rule comes from the same table
    as the service's (ALLOWED_PARENT_KINDS), the rest mirror its _check_space."""
    allowed_pairs = ", ".join(
        f"('{child}', '{parent}')" for child, parents in ALLOWED_PARENT_KINDS.items() for parent in sorted(parents)
    )
    checks = {
        "parent_kind_or_street": f"""
            SELECT count(*) FROM "{ORG}" o JOIN "{ORG}" p ON p.id = o.parent_id WHERE o.id IN ({_S_ORGS}) AND (
              o.street_id <> p.street_id
              OR (o.kind, p.kind) NOT IN ({allowed_pairs}))""",  # noqa: S608 - names from models, kinds from code; values are parameters
        "community_outside_street": f"""
            SELECT count(*) FROM "{ORG}" o JOIN "{COMMUNITY}" c ON c.id = o.community_id
            WHERE o.id IN ({_S_ORGS}) AND c.street_id <> o.street_id""",  # noqa: S608 - names from models, kinds from code; values are parameters
        "grid_outside_parent_community": f"""
            SELECT count(*) FROM "{ORG}" o JOIN "{ORG}" p ON p.id = o.parent_id JOIN "{CELL}" g ON g.id = o.grid_cell_id
            WHERE o.id IN ({_S_ORGS}) AND o.kind = 'grid_branch' AND g.community_id <> p.community_id""",  # noqa: S608 - names from models, kinds from code; values are parameters
        "building_outside_parent_grid": f"""
            SELECT count(*) FROM "{ORG}" o JOIN "{ORG}" p ON p.id = o.parent_id
            JOIN "{ORG_BLD}" x ON x.partyorganisation_id = o.id JOIN "{BUILDING}" b ON b.id = x.building_id
            WHERE o.id IN ({_S_ORGS}) AND o.kind = 'building_group' AND b.grid_cell_id IS DISTINCT FROM p.grid_cell_id""",  # noqa: S608 - names from models, kinds from code; values are parameters
        "group_without_building": f"""
            SELECT count(*) FROM "{ORG}" o WHERE o.id IN ({_S_ORGS}) AND o.kind = 'building_group'
              AND NOT EXISTS (SELECT 1 FROM "{ORG_BLD}" x WHERE x.partyorganisation_id = o.id)""",  # noqa: S608 - names from models, kinds from code; values are parameters
        "premises_outside": f"""
            SELECT count(*) FROM "{ORG}" o JOIN "{ORG}" p ON p.id = o.parent_id JOIN "{ENTERPRISE}" e ON e.id = o.premises_id
            LEFT JOIN "{COMMUNITY}" c ON c.id = e.community_id
            WHERE o.id IN ({_S_ORGS}) AND (c.street_id IS DISTINCT FROM o.street_id
              OR (p.kind = 'community_org' AND e.community_id IS DISTINCT FROM p.community_id))""",  # noqa: S608 - names from models, kinds from code; values are parameters
        "unit_outside_parent_community": f"""
            SELECT count(*) FROM "{ORG}" o JOIN "{ORG}" p ON p.id = o.parent_id
            WHERE o.id IN ({_S_ORGS}) AND o.kind IN ('resident_unit_org', 'joint_branch')
              AND p.kind = 'community_org' AND o.community_id IS NOT NULL AND o.community_id <> p.community_id""",  # noqa: S608 - names from models, kinds from code; values are parameters
        "enterprise_links_street": f"""
            SELECT count(*) FROM "{ENTERPRISE}" e JOIN "{COMMUNITY}" c ON c.id = e.community_id
            LEFT JOIN "{ORG}" j ON j.id = e.covering_joint_branch_id LEFT JOIN "{CADRE}" i ON i.id = e.instructor_id
            WHERE c.street_id IN ({_S_STREETS}) AND ((j.id IS NOT NULL AND (j.kind <> 'joint_branch'
              OR j.street_id <> c.street_id)) OR (i.id IS NOT NULL AND i.street_id <> c.street_id))""",  # noqa: S608 - names from models, kinds from code; values are parameters
        "worker_cell_outside_community": f"""
            SELECT count(*) FROM "{WORKER_CELL}" x JOIN "{WORKER}" w ON w.id = x.gridworker_id
            JOIN "{CELL}" g ON g.id = x.gridcell_id
            WHERE w.community_id IN ({_S_COMMS}) AND g.community_id <> w.community_id""",  # noqa: S608 - names from models, kinds from code; values are parameters
        "seat_on_plain_org_or_outside": f"""
            SELECT count(*) FROM "{SEAT}" t JOIN "{ORG}" o ON o.id = t.org_id
            LEFT JOIN "{SEAT_COMM}" x ON x.committeeseat_id = t.id LEFT JOIN "{COMMUNITY}" c ON c.id = x.community_id
            WHERE o.id IN ({_S_ORGS}) AND (NOT o.is_enlarged OR c.street_id <> o.street_id)""",  # noqa: S608 - names from models, kinds from code; values are parameters
    }
    out: dict[str, int] = {}
    with connection.cursor() as cursor:
        for name, statement in checks.items():
            cursor.execute(statement, {"codes": list(street_codes)})
            out[name] = cursor.fetchone()[0]
    return out
