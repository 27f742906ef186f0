"""Raw SQL of the unit importer (grid/importers.py): a staging table, parent linking, upserts.

Why raw: the importer loads a whole file with COPY into a temporary table, links every staged
row to its parent in one UPDATE per rule (including a spatial rule), and writes with
`INSERT … SELECT … ON CONFLICT (code) DO UPDATE … RETURNING (xmax = 0)`, which tells created from
updated rows and skips unchanged ones in the same statement. The ORM has none of these.

Column and table names come from code (the models' Meta and the fixed column lists below), never
from a file; values travel only as parameters or through COPY.
"""

from collections.abc import Sequence
from typing import Any

from django.db import connection

from grid.models import Building, Community, GridBoundary, GridCell, ServiceCentre, Street

STAGE = "unit_import_stage"
STREET = Street._meta.db_table
COMMUNITY = Community._meta.db_table
CELL = GridCell._meta.db_table
BUILDING = Building._meta.db_table
CENTRE = ServiceCentre._meta.db_table
BOUNDARY = GridBoundary._meta.db_table

# Per level: the geometry type of the stage and the extra columns (values from the file, then the
# parent ids the SQL resolves). Names here are the attribute keys of grid.importers.LEVELS.
STAGE_COLUMNS: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "street": ("MultiPolygon", ()),
    "community": ("MultiPolygon", (("residents", "bigint"), ("street_id", "bigint"))),
    "grid": ("MultiPolygon", (("resp_body", "text"), ("community_id", "bigint"))),
    "building": (
        "Polygon",
        (
            ("address", "text"),
            ("kind", "text"),
            ("households", "bigint"),
            ("floors", "bigint"),
            ("comm_code", "text"),
            ("community_id", "bigint"),
        ),
    ),
    "service_centre": (
        "Point",
        (
            ("address", "text"),
            ("level", "text"),
            ("radius_m", "bigint"),
            ("strt_code", "text"),
            ("comm_code", "text"),
            ("street_id", "bigint"),
            ("community_id", "bigint"),
        ),
    ),
}

Reject = tuple[int, str, str]  # (feature index, code, Chinese message)


def stage_create(level: str) -> str:
    """A fresh temporary stage for one import, dropped at commit (or with a rolled-back savepoint).

    Dropped first rather than `IF NOT EXISTS`: two imports of different levels may run in one
    transaction (a test, a future batch API) and each needs its own columns.
    """
    geom_type, extra = STAGE_COLUMNS[level]
    extra_sql = "".join(f", {name} {sqltype}" for name, sqltype in extra)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {STAGE}")
        cursor.execute(
            f"CREATE TEMP TABLE {STAGE} (idx integer PRIMARY KEY, code text NOT NULL UNIQUE, "
            f"name text NOT NULL, geom geometry({geom_type}, 4326) NOT NULL{extra_sql}) ON COMMIT DROP"
        )
    return STAGE


def stage_input_columns(level: str) -> list[str]:
    """The stage columns filled from the file (the rest are resolved by SQL)."""
    _, extra = STAGE_COLUMNS[level]
    return ["idx", "code", "name", "geom"] + [n for n, _ in extra if not n.endswith("_id")]


def stage_discard(indexes: Sequence[int]) -> None:
    """Drop rejected rows so that `--partial` writes the good ones only."""
    if indexes:
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {STAGE} WHERE idx = ANY(%s)", [list(indexes)])  # noqa: S608


def _rejects(sql: str, params: Sequence[Any] = ()) -> list[Reject]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(int(r[0]), r[1], r[2]) for r in cursor.fetchall()]


# --------------------------------------------------------------------------------------------
# Parent linking. Each returns the staged rows that found no parent, with the reason in Chinese.
# --------------------------------------------------------------------------------------------


def link_by_code_prefix(*, parent_table: str, column: str, prefix_len: int, label: str) -> list[Reject]:
    """community -> street by code[:9], grid -> community by code[:12]: the code says the parent."""
    with connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE {STAGE} s SET {column} = p.id FROM "{parent_table}" p '  # noqa: S608
            f"WHERE p.code = left(s.code, %s)",
            [prefix_len],
        )
    return _rejects(
        f"SELECT idx, code, '{label} ' || left(code, %s) || ' 不存在（按编码前 {prefix_len} 位查找）' "  # noqa: S608
        f"FROM {STAGE} WHERE {column} IS NULL ORDER BY idx",
        [prefix_len],
    )


def link_buildings() -> list[Reject]:
    """Building -> community: the named community when the file has one, else the community whose
    code is the building code's 12-digit prefix, else the community that covers the footprint's
    point on surface (the same point the model stores; lowest code wins on a shared edge)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE {STAGE} s SET community_id = c.id FROM "{COMMUNITY}" c '  # noqa: S608
            "WHERE s.comm_code IS NOT NULL AND c.code = s.comm_code"
        )
        cursor.execute(
            f'UPDATE {STAGE} s SET community_id = c.id FROM "{COMMUNITY}" c '  # noqa: S608
            "WHERE s.comm_code IS NULL AND length(s.code) >= 12 AND c.code = left(s.code, 12)"
        )
        cursor.execute(
            f"""
            UPDATE {STAGE} s SET community_id = (
                SELECT c.id FROM "{COMMUNITY}" c
                WHERE ST_Covers(c.geom, ST_PointOnSurface(s.geom)) ORDER BY c.code LIMIT 1
            )
            WHERE s.comm_code IS NULL AND s.community_id IS NULL
            """  # noqa: S608
        )
    return _rejects(
        f"""
        SELECT idx, code, CASE WHEN comm_code IS NOT NULL THEN '社区 ' || comm_code || ' 不存在'
                              ELSE '找不到所属社区：编码前 12 位不是已有社区，也没有社区边界覆盖该楼栋' END
        FROM {STAGE} WHERE community_id IS NULL ORDER BY idx
        """  # noqa: S608
    )


def link_service_centres() -> list[Reject]:
    """Service centre -> community and street: named codes first, then the covering polygons.

    The level, when the file does not give it (nor an earlier import), is "community" if a
    community covers the centre and "street" otherwise. A street-level centre needs no community.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE {STAGE} s SET community_id = c.id FROM "{COMMUNITY}" c '  # noqa: S608
            "WHERE c.code = s.comm_code"
        )
        cursor.execute(
            f'UPDATE {STAGE} s SET street_id = t.id FROM "{STREET}" t WHERE t.code = s.strt_code'  # noqa: S608
        )
        cursor.execute(
            f'UPDATE {STAGE} s SET level = e.level FROM "{CENTRE}" e '  # noqa: S608
            "WHERE s.level IS NULL AND e.code = s.code"
        )
        cursor.execute(
            f"""
            UPDATE {STAGE} s SET community_id = (
                SELECT c.id FROM "{COMMUNITY}" c
                WHERE ST_Covers(c.geom, s.geom) AND (s.street_id IS NULL OR c.street_id = s.street_id)
                ORDER BY c.code LIMIT 1
            )
            WHERE s.comm_code IS NULL AND s.level IS DISTINCT FROM 'street'
            """  # noqa: S608
        )
        cursor.execute(
            f"UPDATE {STAGE} SET level = CASE WHEN community_id IS NULL THEN 'street' ELSE 'community' END "  # noqa: S608
            "WHERE level IS NULL"
        )
        cursor.execute(
            f'UPDATE {STAGE} s SET street_id = c.street_id FROM "{COMMUNITY}" c '  # noqa: S608
            "WHERE s.street_id IS NULL AND s.strt_code IS NULL AND c.id = s.community_id"
        )
        cursor.execute(
            f"""
            UPDATE {STAGE} s SET street_id = (
                SELECT t.id FROM "{STREET}" t WHERE ST_Covers(t.geom, s.geom) ORDER BY t.code LIMIT 1
            )
            WHERE s.street_id IS NULL AND s.strt_code IS NULL
            """  # noqa: S608
        )
    return _rejects(
        f"""
        SELECT s.idx, s.code, CASE
            WHEN s.strt_code IS NOT NULL AND s.street_id IS NULL THEN '街道 ' || s.strt_code || ' 不存在'
            WHEN s.comm_code IS NOT NULL AND s.community_id IS NULL THEN '社区 ' || s.comm_code || ' 不存在'
            WHEN s.street_id IS NULL THEN '找不到所属街道：没有街道边界覆盖该位置'
            WHEN s.level <> 'street' AND s.community_id IS NULL THEN '社区级/服务站须属于某个社区，但没有社区覆盖该位置'
            ELSE '社区 ' || c.code || ' 不属于街道 ' || t.code END
        FROM {STAGE} s
        LEFT JOIN "{COMMUNITY}" c ON c.id = s.community_id
        LEFT JOIN "{STREET}" t ON t.id = s.street_id
        WHERE s.street_id IS NULL
           OR (s.level <> 'street' AND s.community_id IS NULL)
           OR (s.comm_code IS NOT NULL AND s.community_id IS NULL)
           OR (c.id IS NOT NULL AND c.street_id <> s.street_id)
        ORDER BY s.idx
        """  # noqa: S608
    )


# --------------------------------------------------------------------------------------------
# Shapes that did not really change
# --------------------------------------------------------------------------------------------

# 1e-9° is about 0.1 mm: below anything a survey or a map resolves, above the noise that a text
# format (GeoJSON writes 15 significant digits) or a GCJ-02 round trip adds to a coordinate.
SAME_SHAPE_GRID_DEG = 1e-9

# Where each level keeps its current shape, by code. Table names from the models' Meta.
_STORED_SHAPE = {
    "street": f'SELECT code, geom FROM "{STREET}"',  # noqa: S608
    "community": f'SELECT code, geom FROM "{COMMUNITY}"',  # noqa: S608
    "building": f'SELECT code, geom FROM "{BUILDING}"',  # noqa: S608
    "service_centre": f'SELECT code, geom FROM "{CENTRE}"',  # noqa: S608
    "grid": (
        f'SELECT c.code, gb.geom FROM "{CELL}" c '  # noqa: S608
        f'JOIN "{BOUNDARY}" gb ON gb.cell_id = c.id AND upper_inf(gb.valid)'
    ),
}


def stage_adopt_stored_shapes(level: str) -> int:
    """Replace each staged shape by the stored one when the two agree to SAME_SHAPE_GRID_DEG.

    The upserts and the boundary service compare shapes exactly (ST_Equals); without this a
    re-import of an exported file would count float noise as a redraw and version it. Compared
    on both sides reduced to the grid (ST_ReducePrecision keeps them valid), so a reversed ring
    (shapefiles) with noise still counts as the same shape.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {STAGE} s SET geom = t.geom
            FROM ({_STORED_SHAPE[level]}) t
            WHERE t.code = s.code AND t.geom && ST_Expand(s.geom, %(tol)s)
              AND NOT ST_OrderingEquals(t.geom, s.geom)
              AND ST_Equals(ST_ReducePrecision(t.geom, %(tol)s), ST_ReducePrecision(s.geom, %(tol)s))
            """,  # noqa: S608
            {"tol": SAME_SHAPE_GRID_DEG},
        )
        return cursor.rowcount


# --------------------------------------------------------------------------------------------
# Upserts. Each returns [(id, created)] for the rows it inserted or changed; unchanged rows (the
# WHERE of DO UPDATE is false) are not returned, so re-importing a file touches nothing.
# Optional attributes missing from the file (NULL in the stage) keep the stored value, else the
# model default: the LEFT JOIN on the existing row feeds COALESCE before the conflict.
# ST_Equals, not `=`: a shape is unchanged when it covers the same points, whatever its vertex
# order or ring orientation (a shapefile round trip reverses rings).
# --------------------------------------------------------------------------------------------


def _upsert(sql: str) -> list[tuple[int, bool, int | None]]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [(int(r[0]), bool(r[1]), r[2]) for r in cursor.fetchall()]


def upsert_streets() -> list[tuple[int, bool, int | None]]:
    return _upsert(
        f"""
        INSERT INTO "{STREET}" AS t (code, name, district_adcode, geom, created_at, updated_at)
        SELECT s.code, s.name, left(s.code, 6), s.geom, now(), now() FROM {STAGE} s
        ON CONFLICT (code) DO UPDATE
        SET name = EXCLUDED.name, district_adcode = EXCLUDED.district_adcode, geom = EXCLUDED.geom,
            updated_at = now()
        WHERE (t.name, t.district_adcode) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.district_adcode)
           OR NOT ST_Equals(t.geom, EXCLUDED.geom)
        RETURNING t.id, (t.xmax = 0), NULL::bigint
        """  # noqa: S608
    )


def upsert_communities() -> list[tuple[int, bool, int | None]]:
    # data_version is not touched here: the importer announces every community returned through
    # grid.changes.communities_changed, which bumps it (and moves what the outline places).
    return _upsert(
        f"""
        INSERT INTO "{COMMUNITY}" AS t
            (code, street_id, name, residents, geom, data_version, created_at, updated_at)
        SELECT s.code, s.street_id, s.name, COALESCE(s.residents, e.residents, 0), s.geom, 0, now(), now()
        FROM {STAGE} s LEFT JOIN "{COMMUNITY}" e ON e.code = s.code
        ON CONFLICT (code) DO UPDATE
        SET street_id = EXCLUDED.street_id, name = EXCLUDED.name, residents = EXCLUDED.residents,
            geom = EXCLUDED.geom, updated_at = now()
        WHERE (t.street_id, t.name, t.residents) IS DISTINCT FROM
              (EXCLUDED.street_id, EXCLUDED.name, EXCLUDED.residents)
           OR NOT ST_Equals(t.geom, EXCLUDED.geom)
        RETURNING t.id, (t.xmax = 0), t.id
        """  # noqa: S608
    )


def upsert_grid_cells() -> list[tuple[int, bool, int | None]]:
    """The cells' identity and attributes; their shapes go through grid.services (versioned)."""
    return _upsert(
        f"""
        INSERT INTO "{CELL}" AS t (code, community_id, name, responsible_body, created_at, updated_at)
        SELECT s.code, s.community_id, s.name, COALESCE(s.resp_body, e.responsible_body, ''), now(), now()
        FROM {STAGE} s LEFT JOIN "{CELL}" e ON e.code = s.code
        ON CONFLICT (code) DO UPDATE
        SET community_id = EXCLUDED.community_id, name = EXCLUDED.name,
            responsible_body = EXCLUDED.responsible_body, updated_at = now()
        WHERE (t.community_id, t.name, t.responsible_body) IS DISTINCT FROM
              (EXCLUDED.community_id, EXCLUDED.name, EXCLUDED.responsible_body)
        RETURNING t.id, (t.xmax = 0), t.community_id
        """  # noqa: S608
    )


def staged_cell_shapes() -> dict[int, str]:
    """Cell id -> staged shape (hex EWKB) of every staged grid cell (after the upsert all exist).

    Read back from the stage rather than taken from the file: the stage holds the stored shape
    where the file's differs only by noise (stage_adopt_stored_shapes)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.id, encode(ST_AsEWKB(s.geom), 'hex') FROM {STAGE} s JOIN \"{CELL}\" c ON c.code = s.code"  # noqa: S608
        )
        return {int(pk): ewkb for pk, ewkb in cursor.fetchall()}


def upsert_buildings() -> list[tuple[int, bool, int | None]]:
    # grid_cell_id is left to grid.services.buildings_reassign (largest footprint share);
    # `point` is generated by the database from geom.
    return _upsert(
        f"""
        INSERT INTO "{BUILDING}" AS t
            (code, name, address, kind, community_id, households, floors, geom, created_at, updated_at)
        SELECT s.code, s.name, COALESCE(s.address, e.address, ''), COALESCE(s.kind, e.kind, 'residential'),
               s.community_id, COALESCE(s.households, e.households, 0), COALESCE(s.floors, e.floors, 1),
               s.geom, now(), now()
        FROM {STAGE} s LEFT JOIN "{BUILDING}" e ON e.code = s.code
        ON CONFLICT (code) DO UPDATE
        SET name = EXCLUDED.name, address = EXCLUDED.address, kind = EXCLUDED.kind,
            community_id = EXCLUDED.community_id, households = EXCLUDED.households,
            floors = EXCLUDED.floors, geom = EXCLUDED.geom, updated_at = now()
        WHERE (t.name, t.address, t.kind, t.community_id, t.households, t.floors) IS DISTINCT FROM
              (EXCLUDED.name, EXCLUDED.address, EXCLUDED.kind, EXCLUDED.community_id,
               EXCLUDED.households, EXCLUDED.floors)
           OR NOT ST_Equals(t.geom, EXCLUDED.geom)
        RETURNING t.id, (t.xmax = 0), t.community_id
        """  # noqa: S608
    )


def upsert_service_centres() -> list[tuple[int, bool, int | None]]:
    return _upsert(
        f"""
        INSERT INTO "{CENTRE}" AS t
            (code, name, level, street_id, community_id, address, service_radius_m, geom,
             created_at, updated_at)
        SELECT s.code, s.name, s.level, s.street_id, s.community_id, COALESCE(s.address, e.address, ''),
               COALESCE(s.radius_m, e.service_radius_m, 1000), s.geom, now(), now()
        FROM {STAGE} s LEFT JOIN "{CENTRE}" e ON e.code = s.code
        ON CONFLICT (code) DO UPDATE
        SET name = EXCLUDED.name, level = EXCLUDED.level, street_id = EXCLUDED.street_id,
            community_id = EXCLUDED.community_id, address = EXCLUDED.address,
            service_radius_m = EXCLUDED.service_radius_m, geom = EXCLUDED.geom, updated_at = now()
        WHERE (t.name, t.level, t.street_id, t.community_id, t.address, t.service_radius_m)
              IS DISTINCT FROM
              (EXCLUDED.name, EXCLUDED.level, EXCLUDED.street_id, EXCLUDED.community_id,
               EXCLUDED.address, EXCLUDED.service_radius_m)
           OR NOT ST_Equals(t.geom, EXCLUDED.geom)
        RETURNING t.id, (t.xmax = 0), t.community_id
        """  # noqa: S608
    )
