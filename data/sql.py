"""Raw SQL of the demo generator. Each statement says why it is raw; values only as parameters.

The generator writes up to ~100,000 buildings, so rows are staged with COPY into temporary tables
and applied with one set-based statement per table: `INSERT … SELECT … ON CONFLICT (code) DO UPDATE
… WHERE … IS DISTINCT FROM …`. The WHERE makes a re-run with the same seed touch nothing (no
updated_at churn, no data_version bump), and geometry is staged as hex EWKB so it round-trips
bit-exactly and the comparison is exact.
"""

# Table names in these statements come from the models' Meta, never from input; values are
# always parameters. Hence the file-wide S608 exemption.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.db import connection
from django.db.backends.utils import CursorWrapper

from grid.models import Building, Community, GridBoundary, GridBoundaryPart, GridCell, ServiceCentre, Street
from grid.sql import cell_on_day_sql, community_at_sql, copy_rows
from orgs.models import (
    Cadre,
    CommitteeSeat,
    Enterprise,
    GridWorker,
    PartyMember,
    PartyOrganisation,
    Rectification,
    StarRating,
    StationContact,
    StationedCadre,
    Visit,
)

STREET = Street._meta.db_table
COMMUNITY = Community._meta.db_table
CELL = GridCell._meta.db_table
BOUNDARY = GridBoundary._meta.db_table
PART = GridBoundaryPart._meta.db_table
BUILDING = Building._meta.db_table
CENTRE = ServiceCentre._meta.db_table

# Parameters of one statement: positional (%s) or named (%(name)s).
SQLParams = Sequence[Any] | Mapping[str, Any]

_STAGES = {
    "demo_street_stage": "code text PRIMARY KEY, name text, district_adcode text, geom geometry(MultiPolygon, 4326)",
    "demo_community_stage": "code text PRIMARY KEY, street_code text, name text, residents integer, "
    "geom geometry(MultiPolygon, 4326)",
    "demo_cell_stage": "code text PRIMARY KEY, community_code text, name text",
    "demo_building_stage": "code text PRIMARY KEY, name text, address text, kind text, community_code text, "
    "households integer, floors smallint, geom geometry(Polygon, 4326)",
    "demo_centre_stage": "code text PRIMARY KEY, name text, level text, street_code text, community_code text, "
    "address text, service_radius_m integer, geom geometry(Point, 4326)",
}


def stage(table: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    """Create (or empty) one of the temporary stage tables and COPY `rows` into it."""
    with connection.cursor() as cursor:
        # Temporary and dropped at commit: concurrent runs never see each other's stages.
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} ({_STAGES[table]}) ON COMMIT DROP")
        cursor.execute(f"TRUNCATE {table}")
    n = copy_rows(table, columns, rows)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")
    return n


def stage_plain(table: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    """Like `stage`, for rows of plain values (str, int, float, None) the generator made itself, whose
    strings hold no tab, newline or backslash: they are written as COPY text directly, ~3x faster
    than adapting 100,000 × 16 values one by one."""
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} ({_STAGES[table]}) ON COMMIT DROP")
        cursor.execute(f"TRUNCATE {table}")
    cols = ", ".join(f'"{c}"' for c in columns)
    n = 0
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        lines: list[str] = []
        for row in rows:
            lines.append("\t".join("\\N" if v is None else str(v) for v in row))
            if len(lines) == 10_000:
                copy.write("\n".join(lines) + "\n")
                n += len(lines)
                lines.clear()
        if lines:
            copy.write("\n".join(lines) + "\n")
            n += len(lines)
    # Not analysed here: the insert analyses what is left of it after dropping the stored rows.
    return n


def delete_stale(*, managed_street_codes: list[str]) -> dict[str, int]:
    """Delete what an earlier run (other scale or seed) left under the generator's streets and the
    new data set no longer has. Raw because the stale set is "not in the stage", a join to a
    temporary table, and because 100,000 buildings are one DELETE, not a Python collector.

    Order matters: the foreign keys are checked at commit, but children go first anyway so a
    reference from outside (an organisation on a building, say) fails loudly at commit.
    """
    scope_streets = f'SELECT id FROM "{STREET}" WHERE code = ANY(%(codes)s)'
    scope_comms = f'SELECT id FROM "{COMMUNITY}" WHERE street_id IN ({scope_streets})'
    stale_cells = (
        f'SELECT c.id FROM "{CELL}" c WHERE c.community_id IN ({scope_comms}) '
        "AND NOT EXISTS (SELECT 1 FROM demo_cell_stage s WHERE s.code = c.code)"
    )
    statements = [
        ("service_centres", f'DELETE FROM "{CENTRE}" t WHERE t.street_id IN ({scope_streets}) '
                    "AND NOT EXISTS (SELECT 1 FROM demo_centre_stage s WHERE s.code = t.code)"),
        ("buildings", f'DELETE FROM "{BUILDING}" t WHERE t.community_id IN ({scope_comms}) '
                      "AND NOT EXISTS (SELECT 1 FROM demo_building_stage s WHERE s.code = t.code)"),
        ("_unlink", f'UPDATE "{BUILDING}" SET grid_cell_id = NULL WHERE grid_cell_id IN ({stale_cells})'),
        ("_parts", f'DELETE FROM "{PART}" WHERE boundary_id IN '
                   f'(SELECT id FROM "{BOUNDARY}" WHERE cell_id IN ({stale_cells}))'),
        ("boundaries", f'DELETE FROM "{BOUNDARY}" WHERE cell_id IN ({stale_cells})'),
        ("grid_cells", f'DELETE FROM "{CELL}" WHERE id IN ({stale_cells})'),
        ("communities", f'DELETE FROM "{COMMUNITY}" t WHERE t.street_id IN ({scope_streets}) '
                        "AND NOT EXISTS (SELECT 1 FROM demo_community_stage s WHERE s.code = t.code)"),
        ("streets", f'DELETE FROM "{STREET}" t WHERE t.code = ANY(%(codes)s) '
                    "AND NOT EXISTS (SELECT 1 FROM demo_street_stage s WHERE s.code = t.code)"),
    ]
    counts: dict[str, int] = {}
    with connection.cursor() as cursor:
        for name, statement in statements:
            cursor.execute(statement, {"codes": managed_street_codes})  # noqa: S608 - names from models
            if not name.startswith("_"):
                counts[name] = cursor.rowcount
    return counts


def _upsert(statement: str, params: SQLParams = ()) -> tuple[int, int, list[int]]:
    """Run one upsert that RETURNs (inserted?, community id); count inserts and updates."""
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        rows = cursor.fetchall()
    inserted = sum(1 for r in rows if r[0])
    return inserted, len(rows) - inserted, sorted({r[1] for r in rows if r[1] is not None})


def upsert_streets() -> tuple[int, int, list[int]]:
    # (xmax = 0) is true for a freshly inserted row and false for an updated one.
    return _upsert(f"""
        INSERT INTO "{STREET}" AS t (code, name, district_adcode, geom, created_at, updated_at)
        SELECT code, name, district_adcode, geom, now(), now() FROM demo_street_stage
        ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, district_adcode = EXCLUDED.district_adcode,
            geom = EXCLUDED.geom, updated_at = now()
        WHERE (t.name, t.district_adcode, t.geom) IS DISTINCT FROM
              (EXCLUDED.name, EXCLUDED.district_adcode, EXCLUDED.geom)
        RETURNING (xmax = 0), NULL::bigint
    """)  # noqa: S608


def upsert_communities() -> tuple[int, int, list[int]]:
    return _upsert(f"""
        INSERT INTO "{COMMUNITY}" AS t (code, street_id, name, residents, geom, data_version, created_at, updated_at)
        SELECT s.code, st.id, s.name, s.residents, s.geom, 0, now(), now()
        FROM demo_community_stage s JOIN "{STREET}" st ON st.code = s.street_code
        ON CONFLICT (code) DO UPDATE SET street_id = EXCLUDED.street_id, name = EXCLUDED.name,
            residents = EXCLUDED.residents, geom = EXCLUDED.geom, updated_at = now(),
            data_version = t.data_version + 1
        WHERE (t.street_id, t.name, t.residents, t.geom) IS DISTINCT FROM
              (EXCLUDED.street_id, EXCLUDED.name, EXCLUDED.residents, EXCLUDED.geom)
        RETURNING (xmax = 0), t.id
    """)  # noqa: S608


def upsert_cells() -> tuple[int, int, list[int]]:
    return _upsert(f"""
        INSERT INTO "{CELL}" AS t (code, community_id, name, responsible_body, created_at, updated_at)
        SELECT s.code, c.id, s.name, '', now(), now()
        FROM demo_cell_stage s JOIN "{COMMUNITY}" c ON c.code = s.community_code
        ON CONFLICT (code) DO UPDATE SET community_id = EXCLUDED.community_id, name = EXCLUDED.name,
            updated_at = now()
        WHERE (t.community_id, t.name) IS DISTINCT FROM (EXCLUDED.community_id, EXCLUDED.name)
        RETURNING (xmax = 0), t.community_id
    """)  # noqa: S608


def upsert_buildings() -> tuple[int, int, list[int]]:
    # grid_cell is left alone here: the grid service assigns it from the boundaries afterwards.
    return _upsert(f"""
        INSERT INTO "{BUILDING}" AS t (code, name, address, kind, community_id, households, floors, geom,
                                       created_at, updated_at)
        SELECT s.code, s.name, s.address, s.kind, c.id, s.households, s.floors, s.geom, now(), now()
        FROM demo_building_stage s JOIN "{COMMUNITY}" c ON c.code = s.community_code
        ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, address = EXCLUDED.address, kind = EXCLUDED.kind,
            community_id = EXCLUDED.community_id, households = EXCLUDED.households, floors = EXCLUDED.floors,
            geom = EXCLUDED.geom, updated_at = now()
        WHERE (t.name, t.address, t.kind, t.community_id, t.households, t.floors, t.geom) IS DISTINCT FROM
              (EXCLUDED.name, EXCLUDED.address, EXCLUDED.kind, EXCLUDED.community_id, EXCLUDED.households,
               EXCLUDED.floors, EXCLUDED.geom)
        RETURNING (xmax = 0), t.community_id
    """)  # noqa: S608


def upsert_centres() -> tuple[int, int, list[int]]:
    return _upsert(f"""
        INSERT INTO "{CENTRE}" AS t (code, name, level, street_id, community_id, address, service_radius_m, geom,
                                     created_at, updated_at)
        SELECT s.code, s.name, s.level, st.id, c.id, s.address, s.service_radius_m, s.geom, now(), now()
        FROM demo_centre_stage s
        JOIN "{STREET}" st ON st.code = s.street_code
        LEFT JOIN "{COMMUNITY}" c ON c.code = s.community_code
        ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, level = EXCLUDED.level,
            street_id = EXCLUDED.street_id, community_id = EXCLUDED.community_id, address = EXCLUDED.address,
            service_radius_m = EXCLUDED.service_radius_m, geom = EXCLUDED.geom, updated_at = now()
        WHERE (t.name, t.level, t.street_id, t.community_id, t.address, t.service_radius_m, t.geom)
              IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.level, EXCLUDED.street_id, EXCLUDED.community_id,
                                EXCLUDED.address, EXCLUDED.service_radius_m, EXCLUDED.geom)
        RETURNING (xmax = 0), t.community_id
    """)  # noqa: S608


def ids_by_code(table: str, codes: list[str]) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT code, id FROM "{table}" WHERE code = ANY(%s)', [codes])  # noqa: S608
        return dict(cursor.fetchall())


# ------------------------------------------------------------------------------------------------
# The organisation side (data/demo_orgs.py): same pattern, keyed by stable codes. Tables without a
# code are keyed by what the generator keeps unique: members by the keyed hash of the ID number,
# grid workers by the hash of their phone, cadres and stationed cadres by (place, name), seats by
# (organisation, name), rectifications by (organisation, flagged date), ratings by (organisation,
# year). Personal data is compared by hash, never by cipher text (Fernet tokens differ per call).
# ------------------------------------------------------------------------------------------------

ORG = PartyOrganisation._meta.db_table
ORG_BLD = PartyOrganisation.buildings.through._meta.db_table
MEMBER = PartyMember._meta.db_table
ENT = Enterprise._meta.db_table
CADRE = Cadre._meta.db_table
WORKER = GridWorker._meta.db_table
WORKER_CELL = GridWorker.grid_cells.through._meta.db_table
STATIONED = StationedCadre._meta.db_table
SEAT = CommitteeSeat._meta.db_table
SEAT_COMM = CommitteeSeat.liaison_communities.through._meta.db_table
RECT = Rectification._meta.db_table
RATING = StarRating._meta.db_table

_STAGES.update({
    "demo_cadre_stage": "street_code text, name text, unit_name text, PRIMARY KEY (street_code, name)",
    "demo_ent_stage": "credit_code text PRIMARY KEY, name text, kind text, building_code text, employee_count integer, "
    "joint_code text, instructor_street text, instructor_name text",
    "demo_org_stage": "code text PRIMARY KEY, kind text, level text, name text, street_code text, parent_code text, "
    "community_code text, grid_code text, premises text, unit_name text, founded_on date, term_started_on date, "
    "term_years smallint, is_enlarged boolean, depth smallint, secretary_hash text",
    "demo_org_bld_stage": "org_code text, building_code text, PRIMARY KEY (org_code, building_code)",
    "demo_member_stage": "id_hash text PRIMARY KEY, id_cipher text, phone_hash text, phone_cipher text, name text, "
    "gender text, birth_date date, joined_on date, status text, category text, building_code text, org_code text, "
    "work_unit text, enterprise text, reported_community text, reported_on date, dues date",
    "demo_worker_stage": "phone_hash text PRIMARY KEY, phone_cipher text, name text, community_code text, "
    "full_time boolean",
    "demo_worker_cell_stage": "phone_hash text, grid_code text, PRIMARY KEY (phone_hash, grid_code)",
    "demo_stationed_stage": "community_code text, name text, period_start date, days smallint, contacts smallint, "
    "PRIMARY KEY (community_code, name)",
    "demo_seat_stage": "org_code text, person_name text, unit_name text, is_head boolean, liaison_units text, "
    "PRIMARY KEY (org_code, person_name)",
    "demo_seat_comm_stage": "org_code text, person_name text, community_code text, "
    "PRIMARY KEY (org_code, person_name, community_code)",
    "demo_rect_stage": "org_code text, flagged_on date, reasons text, measures text, converted_on date, "
    "PRIMARY KEY (org_code, flagged_on)",
    "demo_rating_stage": "org_code text, year smallint, stars smallint, score numeric(5,2), "
    "satisfaction numeric(5,2), total numeric(5,2), PRIMARY KEY (org_code, year)",
})

# What the generator owns: everything hanging on its streets. Anything in scope that the new data
# set does not hold is stale and deleted, like the space's rows.
_S_STREETS = f'SELECT id FROM "{STREET}" WHERE code = ANY(%(codes)s)'
_S_COMMS = f'SELECT id FROM "{COMMUNITY}" WHERE street_id IN ({_S_STREETS})'
_S_BLDS = f'SELECT id FROM "{BUILDING}" WHERE community_id IN ({_S_COMMS})'
_S_ORGS = f'SELECT id FROM "{ORG}" WHERE street_id IN ({_S_STREETS})'
_S_CADRES = f'SELECT id FROM "{CADRE}" WHERE street_id IN ({_S_STREETS})'
# A UNION of semi-joins, never `a IN (…) OR b IN (…)`: an OR of subqueries plans as a SubPlan
# per row, which is hashed only while the planner believes the ids fit in work_mem. With 94,000
# buildings, or with statistics that say "empty" while the transaction holds thousands of rows
# (see hold_statistics), it becomes a rescan per row: quadratic, once measured as a CI run that
# never ended.
_S_ENTS = (f'SELECT id FROM "{ENT}" WHERE community_id IN ({_S_COMMS}) '
           f'UNION SELECT id FROM "{ENT}" WHERE building_id IN ({_S_BLDS}) '
           f'UNION SELECT id FROM "{ENT}" WHERE covering_joint_branch_id IN ({_S_ORGS}) '
           f'UNION SELECT id FROM "{ENT}" WHERE instructor_id IN ({_S_CADRES})')
_S_MEMBERS = (f'SELECT id FROM "{MEMBER}" WHERE organisation_id IN ({_S_ORGS}) '
              f'UNION SELECT id FROM "{MEMBER}" WHERE residence_building_id IN ({_S_BLDS}) '
              f'UNION SELECT id FROM "{MEMBER}" WHERE reported_community_id IN ({_S_COMMS}) '
              f'UNION SELECT id FROM "{MEMBER}" WHERE work_enterprise_id IN ({_S_ENTS})')


def member_hashes_in_db(id_hashes: list[str]) -> dict[str, str | None]:
    """id hash -> phone hash of the members that already exist: only new or changed values need
    encrypting (Fernet is ~85 µs a value, and a re-run must not rewrite cipher text)."""
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT id_number_hash, phone_hash FROM "{MEMBER}" WHERE id_number_hash = ANY(%s)',
                       [id_hashes])
        return dict(cursor.fetchall())


def worker_hashes_in_db(phone_hashes: list[str]) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT phone_hash FROM "{WORKER}" WHERE phone_hash = ANY(%s)', [phone_hashes])
        return {r[0] for r in cursor.fetchall()}


def delete_stale_orgs(*, managed_street_codes: list[str]) -> dict[str, int]:
    """Delete the organisation-side rows under the generator's streets that the new data set does
    not hold. Runs before the space's delete_stale, while the old streets still exist to scope by.
    Raw for the same reasons as delete_stale: "not in the stage" is a join to a temporary table."""
    stale_members = (f'SELECT m.id FROM "{MEMBER}" m WHERE m.id IN ({_S_MEMBERS}) AND NOT EXISTS '
                     "(SELECT 1 FROM demo_member_stage s WHERE s.id_hash = m.id_number_hash)")
    statements = [
        ("star_ratings", f'DELETE FROM "{RATING}" r USING "{ORG}" o WHERE r.org_id = o.id AND o.id IN ({_S_ORGS}) '
                         "AND NOT EXISTS (SELECT 1 FROM demo_rating_stage s WHERE s.org_code = o.code AND s.year = r.year)"),
        ("rectifications", f'DELETE FROM "{RECT}" r USING "{ORG}" o WHERE r.org_id = o.id AND o.id IN ({_S_ORGS}) '
                           "AND NOT EXISTS (SELECT 1 FROM demo_rect_stage s WHERE s.org_code = o.code "
                           "AND s.flagged_on = r.flagged_on)"),
        ("seat_communities", f'DELETE FROM "{SEAT_COMM}" x USING "{SEAT}" st, "{ORG}" o, "{COMMUNITY}" c '
                             f"WHERE x.committeeseat_id = st.id AND st.org_id = o.id AND c.id = x.community_id "
                             f"AND o.id IN ({_S_ORGS}) AND NOT EXISTS (SELECT 1 FROM demo_seat_comm_stage s "
                             "WHERE s.org_code = o.code AND s.person_name = st.person_name AND s.community_code = c.code)"),
        ("committee_seats", f'DELETE FROM "{SEAT}" st USING "{ORG}" o WHERE st.org_id = o.id AND o.id IN ({_S_ORGS}) '
                            "AND NOT EXISTS (SELECT 1 FROM demo_seat_stage s WHERE s.org_code = o.code "
                            "AND s.person_name = st.person_name)"),
        ("org_buildings", f'DELETE FROM "{ORG_BLD}" x USING "{ORG}" o, "{BUILDING}" b '
                          f"WHERE x.partyorganisation_id = o.id AND b.id = x.building_id AND o.id IN ({_S_ORGS}) "
                          "AND NOT EXISTS (SELECT 1 FROM demo_org_bld_stage s WHERE s.org_code = o.code "
                          "AND s.building_code = b.code)"),
        # A stale member may be the secretary of an organisation that stays: let go first.
        ("_secretaries", f'UPDATE "{ORG}" SET secretary_id = NULL WHERE secretary_id IN ({stale_members})'),
        ("party_members", f'DELETE FROM "{MEMBER}" WHERE id IN ({stale_members})'),
        ("worker_cells", f'DELETE FROM "{WORKER_CELL}" x USING "{WORKER}" w, "{CELL}" g '
                         f"WHERE x.gridworker_id = w.id AND g.id = x.gridcell_id AND w.community_id IN ({_S_COMMS}) "
                         "AND NOT EXISTS (SELECT 1 FROM demo_worker_cell_stage s WHERE s.phone_hash = w.phone_hash "
                         "AND s.grid_code = g.code)"),
        ("grid_workers", f'DELETE FROM "{WORKER}" w WHERE w.community_id IN ({_S_COMMS}) AND NOT EXISTS '
                         "(SELECT 1 FROM demo_worker_stage s WHERE s.phone_hash = w.phone_hash)"),
        ("stationed_cadres", f'DELETE FROM "{STATIONED}" t USING "{COMMUNITY}" c WHERE c.id = t.community_id '
                             f"AND c.id IN ({_S_COMMS}) AND NOT EXISTS (SELECT 1 FROM demo_stationed_stage s "
                             "WHERE s.community_code = c.code AND s.name = t.name)"),
        ("enterprises", f'DELETE FROM "{ENT}" e WHERE e.id IN ({_S_ENTS}) AND NOT EXISTS '
                        "(SELECT 1 FROM demo_ent_stage s WHERE s.credit_code = e.credit_code)"),
        ("party_orgs", f'DELETE FROM "{ORG}" o WHERE o.id IN ({_S_ORGS}) AND NOT EXISTS '
                       "(SELECT 1 FROM demo_org_stage s WHERE s.code = o.code)"),
        ("cadres", f'DELETE FROM "{CADRE}" t USING "{STREET}" st WHERE st.id = t.street_id AND st.id IN ({_S_STREETS}) '
                   "AND NOT EXISTS (SELECT 1 FROM demo_cadre_stage s WHERE s.street_code = st.code AND s.name = t.name)"),
    ]
    counts: dict[str, int] = {}
    with connection.cursor() as cursor:
        for name, statement in statements:
            cursor.execute(statement, {"codes": managed_street_codes})
            if not name.startswith("_"):
                counts[name] = cursor.rowcount
    return counts


def _count(statement: str, params: SQLParams = ()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def upsert_cadres() -> tuple[int, int]:
    # No unique key on (street, name) in the model: update the matching rows, insert the rest.
    updated = _count(f"""
        UPDATE "{CADRE}" t SET unit_name = s.unit_name, updated_at = now()
        FROM demo_cadre_stage s JOIN "{STREET}" st ON st.code = s.street_code
        WHERE t.street_id = st.id AND t.name = s.name AND t.unit_name IS DISTINCT FROM s.unit_name""")
    created = _count(f"""
        INSERT INTO "{CADRE}" (name, street_id, unit_name, created_at, updated_at)
        SELECT s.name, st.id, s.unit_name, now(), now()
        FROM demo_cadre_stage s JOIN "{STREET}" st ON st.code = s.street_code
        WHERE NOT EXISTS (SELECT 1 FROM "{CADRE}" t WHERE t.street_id = st.id AND t.name = s.name)""")
    return created, updated


def upsert_enterprises() -> tuple[int, int]:
    # The premises point is the building's ST_PointOnSurface and its community the building's:
    # the same answer orgs.sql.enterprises_locate gives (the point lies inside the building, the
    # building inside one community). A joint branch that does not exist yet (first run) is linked
    # by link_joint_branches after the organisations are written.
    created, updated, _ = _upsert(f"""
        INSERT INTO "{ENT}" AS t (name, kind, credit_code, building_id, geom, community_id, employee_count,
                                  covering_joint_branch_id, instructor_id, created_at, updated_at)
        SELECT s.name, s.kind, s.credit_code, b.id, b.point, b.community_id, s.employee_count, j.id, cd.id, now(), now()
        FROM demo_ent_stage s
        JOIN "{BUILDING}" b ON b.code = s.building_code
        LEFT JOIN "{ORG}" j ON j.code = s.joint_code
        LEFT JOIN "{STREET}" ist ON ist.code = s.instructor_street
        LEFT JOIN "{CADRE}" cd ON cd.street_id = ist.id AND cd.name = s.instructor_name
        ON CONFLICT (credit_code) WHERE NOT (credit_code = '') DO UPDATE SET name = EXCLUDED.name,
            kind = EXCLUDED.kind, building_id = EXCLUDED.building_id, geom = EXCLUDED.geom,
            community_id = EXCLUDED.community_id, employee_count = EXCLUDED.employee_count,
            covering_joint_branch_id = EXCLUDED.covering_joint_branch_id, instructor_id = EXCLUDED.instructor_id,
            updated_at = now()
        WHERE (t.name, t.kind, t.building_id, t.geom, t.community_id, t.employee_count, t.covering_joint_branch_id,
               t.instructor_id) IS DISTINCT FROM
              (EXCLUDED.name, EXCLUDED.kind, EXCLUDED.building_id, EXCLUDED.geom, EXCLUDED.community_id,
               EXCLUDED.employee_count, EXCLUDED.covering_joint_branch_id, EXCLUDED.instructor_id)
        RETURNING (xmax = 0), NULL::bigint
    """)
    return created, updated


def link_joint_branches() -> int:
    return _count(f"""
        UPDATE "{ENT}" e SET covering_joint_branch_id = j.id, updated_at = now()
        FROM demo_ent_stage s LEFT JOIN "{ORG}" j ON j.code = s.joint_code
        WHERE e.credit_code = s.credit_code AND e.covering_joint_branch_id IS DISTINCT FROM j.id""")


def upsert_orgs(depth: int) -> tuple[int, int]:
    """One level of the tree: parents (one level up) exist, so the parent id is a join. The CHECK
    constraints (attachment per kind, root is the street committee) hold row by row; the rules
    that span rows are checked afterwards by orgs.sql.org_tree_violations."""
    created, updated, _ = _upsert(f"""
        INSERT INTO "{ORG}" AS t (parent_id, kind, level, name, code, street_id, community_id, grid_cell_id,
                                  premises_id, unit_name, founded_on, term_started_on, term_years, is_enlarged,
                                  weak, created_at, updated_at)
        SELECT p.id, s.kind, s.level, s.name, s.code, st.id, c.id, g.id, e.id, s.unit_name, s.founded_on,
               s.term_started_on, s.term_years, s.is_enlarged, false, now(), now()
        FROM demo_org_stage s
        JOIN "{STREET}" st ON st.code = s.street_code
        LEFT JOIN "{ORG}" p ON p.code = s.parent_code
        LEFT JOIN "{COMMUNITY}" c ON c.code = s.community_code
        LEFT JOIN "{CELL}" g ON g.code = s.grid_code
        LEFT JOIN "{ENT}" e ON e.credit_code = s.premises
        WHERE s.depth = %s
        ON CONFLICT (code) DO UPDATE SET parent_id = EXCLUDED.parent_id, kind = EXCLUDED.kind,
            level = EXCLUDED.level, name = EXCLUDED.name, street_id = EXCLUDED.street_id,
            community_id = EXCLUDED.community_id, grid_cell_id = EXCLUDED.grid_cell_id,
            premises_id = EXCLUDED.premises_id, unit_name = EXCLUDED.unit_name, founded_on = EXCLUDED.founded_on,
            term_started_on = EXCLUDED.term_started_on, term_years = EXCLUDED.term_years,
            is_enlarged = EXCLUDED.is_enlarged, updated_at = now()
        WHERE (t.parent_id, t.kind, t.level, t.name, t.street_id, t.community_id, t.grid_cell_id, t.premises_id,
               t.unit_name, t.founded_on, t.term_started_on, t.term_years, t.is_enlarged) IS DISTINCT FROM
              (EXCLUDED.parent_id, EXCLUDED.kind, EXCLUDED.level, EXCLUDED.name, EXCLUDED.street_id,
               EXCLUDED.community_id, EXCLUDED.grid_cell_id, EXCLUDED.premises_id, EXCLUDED.unit_name,
               EXCLUDED.founded_on, EXCLUDED.term_started_on, EXCLUDED.term_years, EXCLUDED.is_enlarged)
        RETURNING (xmax = 0), NULL::bigint
    """, [depth])
    return created, updated


def insert_org_buildings() -> int:
    return _count(f"""
        INSERT INTO "{ORG_BLD}" (partyorganisation_id, building_id)
        SELECT o.id, b.id FROM demo_org_bld_stage s
        JOIN "{ORG}" o ON o.code = s.org_code JOIN "{BUILDING}" b ON b.code = s.building_code
        ON CONFLICT DO NOTHING""")


def hold_statistics() -> None:
    """Keep autovacuum from re-analysing the build's tables until this transaction ends, then
    analyse them as they are now.

    Autovacuum cannot see this transaction's rows: analysing a table mid-build, it writes "empty"
    (or a smaller data set's counts) into pg_class, in place, over what analyze() just measured,
    and every later join picks nested loops over thousands of rows it believes are one. After a
    rolled-back build (a failed run, or a test) the dead rows invite exactly that. Autovacuum
    skips a table whose SHARE UPDATE EXCLUSIVE lock it cannot take; readers and writers (row
    locks) are not blocked by it, only VACUUM, ANALYZE and index builds of other sessions."""
    tables = BUILD_TABLES
    with connection.cursor() as cursor:
        cursor.execute("LOCK TABLE " + ", ".join(f'"{t}"' for t in tables) + " IN SHARE UPDATE EXCLUSIVE MODE")
    analyze(tables)


def analyze(tables: Sequence[str]) -> None:
    """Refresh the planner's statistics of tables this transaction has just filled. Autovacuum
    cannot see uncommitted rows: after a demo build it may have analysed 1,300 buildings, and the
    district build's joins over 94,000 of them then pick nested loops (once measured: the
    organisation stage at 165 s instead of 8 s). ANALYZE samples, so this takes well under a second."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + ", ".join(f'"{t}"' for t in tables))


def upsert_members() -> tuple[int, int]:
    # An empty staged cipher means "unchanged, keep the stored one" (see member_hashes_in_db).
    analyze([ORG, ENT])
    created, updated, _ = _upsert(f"""
        INSERT INTO "{MEMBER}" AS t (name, gender, birth_date, joined_on, status, category, id_number_cipher,
                                     id_number_hash, phone_cipher, phone_hash, work_unit, reported_on,
                                     dues_paid_through, reported_community_id, residence_building_id,
                                     work_enterprise_id, organisation_id, created_at, updated_at)
        SELECT s.name, s.gender, s.birth_date, s.joined_on, s.status, s.category, s.id_cipher, s.id_hash,
               s.phone_cipher, s.phone_hash, s.work_unit, s.reported_on, s.dues, rc.id, b.id, e.id, o.id, now(), now()
        FROM demo_member_stage s
        LEFT JOIN "{COMMUNITY}" rc ON rc.code = s.reported_community
        LEFT JOIN "{BUILDING}" b ON b.code = s.building_code
        LEFT JOIN "{ENT}" e ON e.credit_code = s.enterprise
        LEFT JOIN "{ORG}" o ON o.code = s.org_code
        ON CONFLICT (id_number_hash) WHERE id_number_hash IS NOT NULL DO UPDATE SET name = EXCLUDED.name,
            gender = EXCLUDED.gender, birth_date = EXCLUDED.birth_date, joined_on = EXCLUDED.joined_on,
            status = EXCLUDED.status, category = EXCLUDED.category,
            id_number_cipher = coalesce(nullif(EXCLUDED.id_number_cipher, ''), t.id_number_cipher),
            phone_cipher = coalesce(nullif(EXCLUDED.phone_cipher, ''), t.phone_cipher),
            phone_hash = EXCLUDED.phone_hash, work_unit = EXCLUDED.work_unit, reported_on = EXCLUDED.reported_on,
            dues_paid_through = EXCLUDED.dues_paid_through, reported_community_id = EXCLUDED.reported_community_id,
            residence_building_id = EXCLUDED.residence_building_id,
            work_enterprise_id = EXCLUDED.work_enterprise_id, organisation_id = EXCLUDED.organisation_id,
            updated_at = now()
        WHERE (t.name, t.gender, t.birth_date, t.joined_on, t.status, t.category, t.phone_hash, t.work_unit,
               t.reported_on, t.dues_paid_through, t.reported_community_id, t.residence_building_id,
               t.work_enterprise_id, t.organisation_id) IS DISTINCT FROM
              (EXCLUDED.name, EXCLUDED.gender, EXCLUDED.birth_date, EXCLUDED.joined_on, EXCLUDED.status,
               EXCLUDED.category, EXCLUDED.phone_hash, EXCLUDED.work_unit, EXCLUDED.reported_on,
               EXCLUDED.dues_paid_through, EXCLUDED.reported_community_id, EXCLUDED.residence_building_id,
               EXCLUDED.work_enterprise_id, EXCLUDED.organisation_id)
        RETURNING (xmax = 0), NULL::bigint
    """)
    return created, updated


def set_secretaries_and_weak(*, managed_street_codes: list[str]) -> int:
    """Secretaries (members exist only now) and the weak flag (an open rectification), per org."""
    n = _count(f"""
        UPDATE "{ORG}" o SET secretary_id = m.id, updated_at = now()
        FROM demo_org_stage s LEFT JOIN "{MEMBER}" m ON m.id_number_hash = s.secretary_hash
        WHERE o.code = s.code AND o.secretary_id IS DISTINCT FROM m.id""")
    n += _count(f"""
        UPDATE "{ORG}" o SET weak = x.open, updated_at = now()
        FROM (SELECT o2.id, EXISTS (SELECT 1 FROM "{RECT}" r WHERE r.org_id = o2.id AND r.converted_on IS NULL) AS open
              FROM "{ORG}" o2 WHERE o2.id IN ({_S_ORGS})) x
        WHERE o.id = x.id AND o.weak IS DISTINCT FROM x.open""", {"codes": managed_street_codes})
    return n


def upsert_workers() -> tuple[int, int]:
    updated = _count(f"""
        UPDATE "{WORKER}" t SET name = s.name, community_id = c.id, full_time = s.full_time, active = true,
            updated_at = now()
        FROM demo_worker_stage s JOIN "{COMMUNITY}" c ON c.code = s.community_code
        WHERE t.phone_hash = s.phone_hash
          AND (t.name, t.community_id, t.full_time, t.active) IS DISTINCT FROM (s.name, c.id, s.full_time, true)""")
    created = _count(f"""
        INSERT INTO "{WORKER}" (name, phone_cipher, phone_hash, full_time, community_id, active, created_at, updated_at)
        SELECT s.name, s.phone_cipher, s.phone_hash, s.full_time, c.id, true, now(), now()
        FROM demo_worker_stage s JOIN "{COMMUNITY}" c ON c.code = s.community_code
        WHERE NOT EXISTS (SELECT 1 FROM "{WORKER}" t WHERE t.phone_hash = s.phone_hash)""")
    return created, updated


def insert_worker_cells() -> int:
    return _count(f"""
        INSERT INTO "{WORKER_CELL}" (gridworker_id, gridcell_id)
        SELECT w.id, g.id FROM demo_worker_cell_stage s
        JOIN "{WORKER}" w ON w.phone_hash = s.phone_hash JOIN "{CELL}" g ON g.code = s.grid_code
        ON CONFLICT DO NOTHING""")


def upsert_stationed() -> tuple[int, int]:
    updated = _count(f"""
        UPDATE "{STATIONED}" t SET period_start = s.period_start, period_end = NULL,
            required_days_per_month = s.days, required_contacts_per_month = s.contacts, updated_at = now()
        FROM demo_stationed_stage s JOIN "{COMMUNITY}" c ON c.code = s.community_code
        WHERE t.community_id = c.id AND t.name = s.name
          AND (t.period_start, t.period_end, t.required_days_per_month, t.required_contacts_per_month)
              IS DISTINCT FROM (s.period_start, NULL::date, s.days, s.contacts)""")
    created = _count(f"""
        INSERT INTO "{STATIONED}" (name, community_id, period_start, required_days_per_month,
                                   required_contacts_per_month, created_at, updated_at)
        SELECT s.name, c.id, s.period_start, s.days, s.contacts, now(), now()
        FROM demo_stationed_stage s JOIN "{COMMUNITY}" c ON c.code = s.community_code
        WHERE NOT EXISTS (SELECT 1 FROM "{STATIONED}" t WHERE t.community_id = c.id AND t.name = s.name)""")
    return created, updated


def upsert_seats() -> tuple[int, int]:
    updated = _count(f"""
        UPDATE "{SEAT}" t SET unit_name = s.unit_name, is_resident_unit_head = s.is_head,
            liaison_units = s.liaison_units
        FROM demo_seat_stage s JOIN "{ORG}" o ON o.code = s.org_code
        WHERE t.org_id = o.id AND t.person_name = s.person_name
          AND (t.unit_name, t.is_resident_unit_head, t.liaison_units) IS DISTINCT FROM
              (s.unit_name, s.is_head, s.liaison_units)""")
    created = _count(f"""
        INSERT INTO "{SEAT}" (org_id, person_name, unit_name, is_resident_unit_head, liaison_units)
        SELECT o.id, s.person_name, s.unit_name, s.is_head, s.liaison_units
        FROM demo_seat_stage s JOIN "{ORG}" o ON o.code = s.org_code
        WHERE NOT EXISTS (SELECT 1 FROM "{SEAT}" t WHERE t.org_id = o.id AND t.person_name = s.person_name)""")
    return created, updated


def insert_seat_communities() -> int:
    return _count(f"""
        INSERT INTO "{SEAT_COMM}" (committeeseat_id, community_id)
        SELECT t.id, c.id FROM demo_seat_comm_stage s
        JOIN "{ORG}" o ON o.code = s.org_code
        JOIN "{SEAT}" t ON t.org_id = o.id AND t.person_name = s.person_name
        JOIN "{COMMUNITY}" c ON c.code = s.community_code
        ON CONFLICT DO NOTHING""")


def upsert_rectifications() -> tuple[int, int]:
    updated = _count(f"""
        UPDATE "{RECT}" t SET reasons = s.reasons, measures = s.measures, converted_on = s.converted_on
        FROM demo_rect_stage s JOIN "{ORG}" o ON o.code = s.org_code
        WHERE t.org_id = o.id AND t.flagged_on = s.flagged_on
          AND (t.reasons, t.measures, t.converted_on) IS DISTINCT FROM (s.reasons, s.measures, s.converted_on)""")
    created = _count(f"""
        INSERT INTO "{RECT}" (org_id, flagged_on, reasons, measures, converted_on)
        SELECT o.id, s.flagged_on, s.reasons, s.measures, s.converted_on
        FROM demo_rect_stage s JOIN "{ORG}" o ON o.code = s.org_code
        WHERE NOT EXISTS (SELECT 1 FROM "{RECT}" t WHERE t.org_id = o.id AND t.flagged_on = s.flagged_on)""")
    return created, updated


def upsert_ratings() -> tuple[int, int]:
    created, updated, _ = _upsert(f"""
        INSERT INTO "{RATING}" AS t (org_id, year, stars, score, satisfaction_score, total_score)
        SELECT o.id, s.year, s.stars, s.score, s.satisfaction, s.total
        FROM demo_rating_stage s JOIN "{ORG}" o ON o.code = s.org_code
        ON CONFLICT (org_id, year) DO UPDATE SET stars = EXCLUDED.stars, score = EXCLUDED.score,
            satisfaction_score = EXCLUDED.satisfaction_score, total_score = EXCLUDED.total_score
        WHERE (t.stars, t.score, t.satisfaction_score, t.total_score) IS DISTINCT FROM
              (EXCLUDED.stars, EXCLUDED.score, EXCLUDED.satisfaction_score, EXCLUDED.total_score)
        RETURNING (xmax = 0), NULL::bigint
    """)
    return created, updated


# ------------------------------------------------------------------------------------------------
# Field events (data/demo_events.py): visits and station contacts, keyed by their uuid5 id. Rows
# are inserted with ON CONFLICT (id) DO NOTHING, like a tablet's retried batch; where a row is,
# what grid cell and community hold it on its day, the distance to the subject and on_site are
# computed here, in the database, the way orgs.sql computes them for synced events.
# ------------------------------------------------------------------------------------------------

VISIT = Visit._meta.db_table
CONTACT = StationContact._meta.db_table

SPACE_TABLES = (STREET, COMMUNITY, CELL, BUILDING, BOUNDARY, PART, CENTRE)
ORG_TABLES = (ORG, ORG_BLD, MEMBER, ENT, CADRE, WORKER, WORKER_CELL, STATIONED, SEAT, SEAT_COMM, RECT, RATING)
EVENT_TABLES = (VISIT, CONTACT)
# Every table a build writes (see hold_statistics).
BUILD_TABLES = SPACE_TABLES + ORG_TABLES + EVENT_TABLES


def _event_stage(subject: dict[str, str]) -> str:
    """Columns of an event stage. The payload hash is computed by the stage itself from every
    value (md5 because a generated column needs an immutable function and PostgreSQL has no
    immutable text-to-bytea for sha256; it only tells a changed demo event from an unchanged one)."""
    columns = {"day": "date", "minute": "smallint", "kind": "text", **subject, "lon": "float8", "lat": "float8",
               "captured_lon": "float8", "captured_lat": "float8", "captured_crs": "text", "accuracy_m": "float8",
               "summary": "text", "reporter_name": "text"}
    values = " || '|' || ".join(
        "(day - DATE '2000-01-01')::text" if name == "day" else f"coalesce({name}::text, '')" for name in columns)
    body = ", ".join(f"{name} {kind}" for name, kind in columns.items())
    return f"id uuid PRIMARY KEY, {body}, payload_hash text GENERATED ALWAYS AS (md5({values})) STORED"


_STAGES.update({
    "demo_visit_stage": _event_stage({"building_code": "text", "enterprise_code": "text", "worker_hash": "text",
                                      "household": "text"}),
    "demo_contact_stage": _event_stage({"community_code": "text", "cadre_name": "text", "building_code": "text",
                                        "contact_name": "text"}),
})

# The rows the space and organisation clean-ups are about to delete (same conditions as in
# delete_stale and delete_stale_orgs): an event pointing at one of them must go first, whoever
# logged it, or the PROTECT foreign keys stop the clean-up.
_GONE_COMMS = (f'SELECT c.id FROM "{COMMUNITY}" c WHERE c.street_id IN ({_S_STREETS}) '
               "AND NOT EXISTS (SELECT 1 FROM demo_community_stage s WHERE s.code = c.code)")
_GONE_CELLS = (f'SELECT g.id FROM "{CELL}" g WHERE g.community_id IN ({_S_COMMS}) '
               "AND NOT EXISTS (SELECT 1 FROM demo_cell_stage s WHERE s.code = g.code)")
_GONE_WORKERS = (f'SELECT w.id FROM "{WORKER}" w WHERE w.community_id IN ({_S_COMMS}) '
                 "AND NOT EXISTS (SELECT 1 FROM demo_worker_stage s WHERE s.phone_hash = w.phone_hash)")
_GONE_CADRES = (f'SELECT t.id FROM "{STATIONED}" t JOIN "{COMMUNITY}" c ON c.id = t.community_id '
                f"WHERE c.id IN ({_S_COMMS}) AND NOT EXISTS (SELECT 1 FROM demo_stationed_stage s "
                "WHERE s.community_code = c.code AND s.name = t.name)")


def delete_stale_events(*, managed_street_codes: list[str], reporter_id: int) -> tuple[dict[str, int], list[int]]:
    """Delete the demo's events (reported by the demo account, in the managed streets) that the new
    data set does not hold or holds with other content, and any event pointing at a community, grid
    cell, worker or cadre the clean-ups will delete. Runs before every other clean-up. Returns the
    counts and the communities that lost events (their caches key on the data version)."""
    stage_of = {VISIT: "demo_visit_stage", CONTACT: "demo_contact_stage"}
    gone = {VISIT: f"worker_id IN ({_GONE_WORKERS})", CONTACT: f"cadre_id IN ({_GONE_CADRES})"}
    counts: dict[str, int] = {}
    communities: set[int] = set()
    with connection.cursor() as cursor:
        for name, table in (("visits", VISIT), ("station_contacts", CONTACT)):
            # Two statements, not one with OR: each is then a plain anti-join or semi-join.
            cursor.execute(f"""
                DELETE FROM "{table}" e WHERE e.reporter_id = %(reporter)s AND e.community_id IN ({_S_COMMS})
                  AND NOT EXISTS (SELECT 1 FROM {stage_of[table]} s WHERE s.id = e.id AND s.payload_hash = e.payload_hash)
                RETURNING e.community_id""", {"codes": managed_street_codes, "reporter": reporter_id})
            rows = cursor.fetchall()
            cursor.execute(f"""
                DELETE FROM "{table}" e WHERE e.id IN (
                  SELECT id FROM "{table}" WHERE community_id IN ({_GONE_COMMS})
                  UNION SELECT id FROM "{table}" WHERE grid_cell_id IN ({_GONE_CELLS})
                  UNION SELECT id FROM "{table}" WHERE {gone[table]})
                RETURNING e.community_id""", {"codes": managed_street_codes})
            rows += cursor.fetchall()
            counts[name] = len(rows)
            communities.update(r[0] for r in rows)
    return counts, sorted(communities)


def _located_insert(*, p: str, table: str, columns: str, values: str) -> str:
    """INSERT … SELECT of staged events, `p` being the staged rows with building_id, place and day.

    The grid cell is the one holding the place on the event's day (grid.sql.cell_on_day_sql, as
    for a synced batch), with the community covering the place as fallback for a place in no grid
    cell (grid.sql.community_at_sql). For
    events at a building the lookup runs once per building over all its boundary versions and
    each event then takes the version valid on its day: buildings are visited several times, and
    at district scale that saves a third of ~100,000 point-in-polygon tests. Rows are inserted
    in building order, which keeps the spatial indexes' inserts local.
    """
    return f"""
        WITH p AS ({p}),
        located AS (
            SELECT x.building_id, gb.valid, gb.cell_id, c.community_id, c.code
            FROM (SELECT DISTINCT ON (building_id) building_id, place FROM p WHERE building_id IS NOT NULL) x
            JOIN "{PART}" pt ON ST_Covers(pt.geom, x.place)
            JOIN "{BOUNDARY}" gb ON gb.id = pt.boundary_id
            JOIN "{CELL}" c ON c.id = gb.cell_id
        ),
        q AS (
            SELECT DISTINCT ON (p.id) p.*, COALESCE(l.cell_id, cell.cell_id) AS cell_id,
                   COALESCE(l.community_id, cell.community_id) AS cell_community_id
            FROM p
            LEFT JOIN located l ON l.building_id = p.building_id AND l.valid @> p.day
            LEFT JOIN LATERAL ({cell_on_day_sql(point="p.place", day="p.day", guard="p.building_id IS NULL")}) cell
                ON true
            ORDER BY p.id, l.code
        )
        INSERT INTO "{table}" ({columns}, occurred_at, received_at, reporter_id, point, place, grid_cell_id)
        SELECT {values}, (q.day + make_interval(mins => q.minute)) AT TIME ZONE %(tz)s, now(), %(reporter)s,
               q.point, q.place, q.cell_id
        FROM q
        LEFT JOIN LATERAL ({community_at_sql(point="q.place", guard="q.cell_id IS NULL")}) com ON true
        ORDER BY q.building_code, q.day, q.minute
        ON CONFLICT (id) DO NOTHING
        RETURNING community_id"""


def _no_jit(cursor: CursorWrapper) -> None:
    # The planner's cost for 100,000 LATERAL lookups turns JIT on, which then spends more time
    # compiling (~1 s) than it saves. Transaction-local: the setting ends with the demo build.
    cursor.execute("SELECT set_config('jit', 'off', true)")


def _unstage_stored(stage_table: str, table: str) -> int:
    """Drop from the stage what is stored already (delete_stale_events removed what differs), then
    re-analyse: a re-run then looks up nothing, and the planner knows how many rows are new. With
    a NOT EXISTS inside the insert instead, it guesses one row and nests loops over 100,000.

    When rows are left, the organisation tables they join are analysed too (the space's were after
    its write, see `analyze`): with a demo scale's statistics, a first district build's insert
    takes three times as long."""
    with connection.cursor() as cursor:
        cursor.execute(f'DELETE FROM {stage_table} s USING "{table}" e WHERE e.id = s.id')
        cursor.execute(f"ANALYZE {stage_table}")
        cursor.execute(f"SELECT count(*) FROM {stage_table}")
        left = cursor.fetchone()[0]
    if left:
        analyze([ENT, WORKER, STATIONED])
    return left


_SHARED = ("id, reporter_name, captured_lon, captured_lat, captured_crs, accuracy_m, building_id, "
           "distance_to_subject_m, summary, payload_hash, kind")
_POINT = "ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326)"

_INSERT_VISITS = _located_insert(
    p=f"""
        SELECT s.*, b.id AS building_id, e.id AS enterprise_id, w.id AS worker_id,
               COALESCE(b.community_id, e.community_id) AS subject_community_id,
               w.community_id AS worker_community_id,
               {_POINT} AS point, COALESCE(b.point, e.geom, {_POINT}) AS place
        FROM demo_visit_stage s
        LEFT JOIN "{BUILDING}" b ON b.code = s.building_code
        LEFT JOIN "{ENT}" e ON e.credit_code = s.enterprise_code
        LEFT JOIN "{WORKER}" w ON w.phone_hash = s.worker_hash""",
    table=VISIT,
    columns=f"{_SHARED}, community_id, worker_id, household, enterprise_id",
    values="""q.id, q.reporter_name, q.captured_lon, q.captured_lat, q.captured_crs, q.accuracy_m, q.building_id,
              CASE WHEN q.building_id IS NOT NULL OR q.enterprise_id IS NOT NULL
                   THEN ST_Distance(q.point::geography, q.place::geography) END,
              q.summary, q.payload_hash, q.kind,
              COALESCE(q.subject_community_id, q.cell_community_id, com.id, q.worker_community_id),
              q.worker_id, q.household, q.enterprise_id""",
)

_INSERT_CONTACTS = _located_insert(
    p=f"""
        SELECT s.*, t.id AS cadre_id, c.id AS community_id, ST_Covers(c.geom, {_POINT}) AS on_site,
               b.id AS building_id, {_POINT} AS point, COALESCE(b.point, {_POINT}) AS place
        FROM demo_contact_stage s
        JOIN "{COMMUNITY}" c ON c.code = s.community_code
        JOIN "{STATIONED}" t ON t.community_id = c.id AND t.name = s.cadre_name
        LEFT JOIN "{BUILDING}" b ON b.code = s.building_code""",
    table=CONTACT,
    columns=f"{_SHARED}, community_id, cadre_id, contact_name, on_site",
    values="""q.id, q.reporter_name, q.captured_lon, q.captured_lat, q.captured_crs, q.accuracy_m, q.building_id,
              CASE WHEN q.building_id IS NOT NULL THEN ST_Distance(q.point::geography, q.place::geography) END,
              q.summary, q.payload_hash, q.kind, q.community_id, q.cadre_id, q.contact_name, q.on_site""",
)


def insert_visits(*, reporter_id: int, time_zone: str) -> tuple[int, list[int]]:
    """Insert the staged visits not stored yet. The place is the visited building (or premises),
    else the captured point; the community is the subject's, else the one holding the place; the
    distance to the subject is in metres on the spheroid. Returns (inserted, their communities)."""
    _unstage_stored("demo_visit_stage", VISIT)
    with connection.cursor() as cursor:
        _no_jit(cursor)
        cursor.execute(_INSERT_VISITS, {"tz": time_zone, "reporter": reporter_id})
        rows = cursor.fetchall()
    return len(rows), sorted({r[0] for r in rows})


def insert_contacts(*, reporter_id: int, time_zone: str) -> tuple[int, list[int]]:
    """Insert the staged station contacts not stored yet. A contact belongs to its cadre's
    community; its place is the building of the contact, else the captured point; on_site says
    whether the captured point lies in that community (as orgs.sql.mark_contacts_on_site)."""
    _unstage_stored("demo_contact_stage", CONTACT)
    with connection.cursor() as cursor:
        _no_jit(cursor)
        cursor.execute(_INSERT_CONTACTS, {"tz": time_zone, "reporter": reporter_id})
        rows = cursor.fetchall()
    return len(rows), sorted({r[0] for r in rows})
