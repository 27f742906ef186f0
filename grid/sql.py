"""Raw SQL the ORM cannot say well. Each statement says why it is raw; values only as parameters.

Table names come from the models' Meta so a rename cannot silently break these statements.
"""

from collections.abc import Iterable, Sequence
from datetime import date

from django.db import connection

from grid.models import Building, Community, GridBoundary, GridBoundaryPart, GridCell
from grid.versions import versions_committed

BOUNDARY = GridBoundary._meta.db_table
PART = GridBoundaryPart._meta.db_table
CELL = GridCell._meta.db_table
BUILDING = Building._meta.db_table
COMMUNITY = Community._meta.db_table

# ~128 vertices a piece: the size PostGIS documents as the sweet spot for point-in-polygon.
SUBDIVIDE_MAX_VERTICES = 128


def copy_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    """Bulk-load rows with COPY (far faster than INSERT for thousands of rows). Returns the count.

    Geometry values are passed as EWKT/EWKB hex text; PostgreSQL casts them on the way in.
    """
    cols = ", ".join(f'"{c}"' for c in columns)
    n = 0
    with connection.cursor() as cursor:
        # psycopg 3 cursor under Django's wrapper: it has the COPY protocol.
        with cursor.cursor.copy(f'COPY "{table}" ({cols}) FROM STDIN') as copy:  # noqa: S608 - names from code
            for row in rows:
                copy.write_row(row)
                n += 1
    return n


def create_boundary_stage() -> str:
    """A temporary table that holds the shapes of one boundary write until it is applied."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS boundary_stage "
            "(cell_id bigint PRIMARY KEY, geom geometry(MultiPolygon, 4326) NOT NULL) ON COMMIT DROP"
        )
        cursor.execute("TRUNCATE boundary_stage")
    return "boundary_stage"


def apply_boundary_stage(*, valid_from: date, note: str) -> dict[str, object]:
    """Turn staged shapes into boundary versions effective from `valid_from`, set-based.

    Per staged cell exactly one of:
    - unchanged: the current version already has this shape (ST_Equals) -> nothing happens, so
      importing the same file twice makes no new versions;
    - corrected: the current version starts on `valid_from` -> its shape is replaced in place;
    - redrawn: the current version starts earlier -> it is closed at `valid_from` and a new one
      opens there;
    - new: the cell has no current version -> one opens at `valid_from`.
    Returns the counts and the ids of the boundary rows whose shape is new (their parts need
    rebuilding).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT count(*) FROM boundary_stage s
            JOIN "{BOUNDARY}" gb ON gb.cell_id = s.cell_id AND upper_inf(gb.valid)
            WHERE ST_Equals(gb.geom, s.geom)
            """  # noqa: S608
        )
        unchanged = cursor.fetchone()[0]
        cursor.execute(
            f"""
            DELETE FROM boundary_stage s USING "{BOUNDARY}" gb
            WHERE gb.cell_id = s.cell_id AND upper_inf(gb.valid) AND ST_Equals(gb.geom, s.geom)
            """  # noqa: S608
        )
        cursor.execute(
            f"""
            UPDATE "{BOUNDARY}" gb SET geom = s.geom, note = %s
            FROM boundary_stage s
            WHERE gb.cell_id = s.cell_id AND upper_inf(gb.valid) AND lower(gb.valid) = %s
            RETURNING gb.id
            """,  # noqa: S608
            [note, valid_from],
        )
        corrected_ids = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            f"""
            UPDATE "{BOUNDARY}" gb SET valid = daterange(lower(gb.valid), %s, '[)')
            FROM boundary_stage s
            WHERE gb.cell_id = s.cell_id AND upper_inf(gb.valid) AND lower(gb.valid) < %s
            RETURNING gb.id
            """,  # noqa: S608
            [valid_from, valid_from],
        )
        closed = cursor.rowcount
        cursor.execute(
            f"""
            INSERT INTO "{BOUNDARY}" (cell_id, geom, valid, note, created_at)
            SELECT s.cell_id, s.geom, daterange(%s, NULL, '[)'), %s, now()
            FROM boundary_stage s
            WHERE NOT EXISTS (
                SELECT 1 FROM "{BOUNDARY}" gb WHERE gb.cell_id = s.cell_id AND upper_inf(gb.valid)
            )
            RETURNING id
            """,  # noqa: S608
            [valid_from, note],
        )
        created_ids = [row[0] for row in cursor.fetchall()]
    return {
        "unchanged": unchanged,
        "corrected": len(corrected_ids),
        "created": len(created_ids) - closed,
        "redrawn": closed,
        "changed_boundary_ids": corrected_ids + created_ids,
    }


def rebuild_boundary_parts(boundary_ids: Sequence[int]) -> int:
    """Replace the subdivided copies of these boundaries. Set-returning ST_Subdivide in one INSERT."""
    if not boundary_ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f'DELETE FROM "{PART}" WHERE boundary_id = ANY(%s)', [list(boundary_ids)])  # noqa: S608
        cursor.execute(
            f"""
            INSERT INTO "{PART}" (boundary_id, geom)
            SELECT gb.id, ST_Subdivide(gb.geom, %s)::geometry(Polygon, 4326)
            FROM "{BOUNDARY}" gb WHERE gb.id = ANY(%s)
            """,  # noqa: S608
            [SUBDIVIDE_MAX_VERTICES, list(boundary_ids)],
        )
        return cursor.rowcount


def assign_buildings_to_grids(community_ids: Sequence[int] | None) -> int:
    """Give each building of these communities (all when None) the current grid of its community
    that holds the largest share of its footprint; buildings no grid touches get NULL.

    Raw because a LATERAL pick-the-best subquery inside UPDATE … FROM has no ORM form. The LATERAL
    form matters: written as a CTE with DISTINCT ON, PostgreSQL materialised the CTE, lost its row
    estimate and joined every building with every grid cell (60 s for 94k buildings; 9 s this
    way, one GiST probe per building — see BENCHMARKS.md).
    Areas are compared in degrees²: only their order matters, and within one building the
    cos(latitude) factor is the same for every candidate. Buildings wholly inside one boundary
    skip the costly ST_Intersection. Returns how many buildings changed grid.
    """
    where = "s.community_id = ANY(%(ids)s)" if community_ids is not None else "TRUE"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE "{BUILDING}" b SET grid_cell_id = best.cell_id
            FROM (
                SELECT s.id, pick.cell_id
                FROM "{BUILDING}" s
                LEFT JOIN LATERAL (
                    SELECT gb.cell_id
                    FROM "{BOUNDARY}" gb
                    JOIN "{CELL}" c ON c.id = gb.cell_id AND c.community_id = s.community_id
                    WHERE upper_inf(gb.valid) AND gb.geom && s.geom AND ST_Intersects(gb.geom, s.geom)
                    -- One candidate (most buildings): no geometry work at all. CASE evaluates
                    -- lazily, so the area is computed only where grids compete for a footprint.
                    ORDER BY CASE WHEN count(*) OVER () = 1 THEN 0
                                  WHEN ST_CoveredBy(s.geom, gb.geom) THEN -ST_Area(s.geom)
                                  ELSE -ST_Area(ST_Intersection(s.geom, gb.geom)) END,
                             gb.cell_id
                    LIMIT 1
                ) pick ON TRUE
                WHERE {where}
            ) best
            WHERE b.id = best.id AND b.grid_cell_id IS DISTINCT FROM best.cell_id
            """,  # noqa: S608 - table names from models, filter chosen from two literals
            {"ids": list(community_ids) if community_ids is not None else None},
        )
        return cursor.rowcount


def cell_on_day_sql(*, point: str, day: str, guard: str = "true") -> str:
    """A subquery for a LATERAL join: `cell_id`, `community_id` and `code` of the grid cell whose
    boundary version in force on `day` covers `point` (SQL expressions of the outer query).

    The one statement of "which grid held this point that day" that every path uses: the single
    lookup below, a synced batch of events (orgs.sql) and the demo's events (data.sql). ST_Covers
    on the subdivided parts, so a point on an edge still belongs somewhere; on a shared edge the
    lower code wins, so the answer is stable. `guard` skips the lookup for rows that do not need
    it (a one-time filter, not a join condition, so no geometry is tested for them). Its own
    aliases are prefixed (cod_) so they never shadow the outer query's.
    """
    return f"""
        SELECT cod_b.cell_id, cod_c.community_id, cod_c.code
        FROM "{PART}" cod_p
        JOIN "{BOUNDARY}" cod_b ON cod_b.id = cod_p.boundary_id
        JOIN "{CELL}" cod_c ON cod_c.id = cod_b.cell_id
        WHERE ({guard}) AND ST_Covers(cod_p.geom, {point}) AND cod_b.valid @> {day}
        ORDER BY cod_c.code
        LIMIT 1
    """  # noqa: S608 - table names from models, expressions from code


def community_at_sql(*, point: str, guard: str = "true") -> str:
    """A subquery for a LATERAL join: `id` and `street_id` of the community covering `point`
    (lowest code on a shared edge): the fallback for a place in no grid cell."""
    return f"""
        SELECT ca_c.id, ca_c.street_id FROM "{COMMUNITY}" ca_c
        WHERE ({guard}) AND ST_Covers(ca_c.geom, {point})
        ORDER BY ca_c.code
        LIMIT 1
    """  # noqa: S608 - table names from models, expressions from code


def grid_cell_id_at(*, lon: float, lat: float, on_date: date) -> int | None:
    """The id of the grid cell whose boundary version in force on `on_date` covers the point.

    Raw because this is the hot path of every geotagged event: the ORM form of the same lookup
    (four joined models, GEOS adaptation, model instances) measured 4.6 ms a call against 0.8 ms
    for this two-table statement (BENCHMARKS.md).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            cell_on_day_sql(point="ST_SetSRID(ST_MakePoint(%s, %s), 4326)", day="%s::date"),
            [lon, lat, on_date],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def bump_data_versions(community_ids: Sequence[int]) -> dict[int, int]:
    """Map caches key on a community's data version; bumping it invalidates exactly those caches.
    Returns the new versions; Redis's copies (grid.versions) follow them after the commit."""
    if not community_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE "{COMMUNITY}" SET data_version = data_version + 1 WHERE id = ANY(%s) RETURNING id, data_version',  # noqa: S608
            [list(community_ids)],
        )
        versions = {int(i): int(v) for i, v in cursor.fetchall()}
    versions_committed(versions)
    return versions
