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

from collections.abc import Sequence

from django.db import connection

from grid.models import Building, Community, GridBoundary, GridBoundaryPart, GridCell, ServiceCentre, Street
from grid.sql import copy_rows

STREET = Street._meta.db_table
COMMUNITY = Community._meta.db_table
CELL = GridCell._meta.db_table
BOUNDARY = GridBoundary._meta.db_table
PART = GridBoundaryPart._meta.db_table
BUILDING = Building._meta.db_table
CENTRE = ServiceCentre._meta.db_table

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


def stage(table: str, columns: Sequence[str], rows: list[Sequence[object]]) -> int:
    """Create (or empty) one of the temporary stage tables and COPY `rows` into it."""
    with connection.cursor() as cursor:
        # Temporary and dropped at commit: concurrent runs never see each other's stages.
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} ({_STAGES[table]}) ON COMMIT DROP")
        cursor.execute(f"TRUNCATE {table}")
    n = copy_rows(table, columns, rows)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")
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


def _upsert(statement: str) -> tuple[int, int, list[int]]:
    """Run one upsert that RETURNs (inserted?, community id); count inserts and updates."""
    with connection.cursor() as cursor:
        cursor.execute(statement)
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
