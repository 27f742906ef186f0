"""The vector-tile statements: raw SQL, because a tile is one `ST_AsMVT` aggregate over
`ST_AsMVTGeom` rows cut to `ST_TileEnvelope(z, x, y)`, which the ORM cannot say, and because the
caller's reach must filter inside that same statement (a row outside it must never reach the
aggregate). Values only as parameters; table names from the models' Meta.

Shared by every statement (mapping.tiles builds the parameters):
- the tile's envelope is computed once and transformed to the storage SRID once (`BOX`, with the
  MVT buffer as margin): rows are picked with `geom && BOX` on the gist index, and only the rows
  picked are transformed to Web Mercator for `ST_AsMVTGeom`. ST_TileEnvelope and ST_Transform are
  immutable, so with the parameters bound as literals the planner folds `BOX` into a constant
  and estimates the index scan from the real box;
- polygons are simplified with a zoom-dependent tolerance (half a screen pixel of the tile,
  `%(tolerance)s` metres) and those smaller than a pixel (`%(min_size)s` degrees) are dropped at
  the zooms where they would vanish, before any transform;
- the reach is three id arrays and a flag (`%(everything)s`, `%(streets)s`, `%(communities)s`,
  `%(cells)s`), read with the same semantics as grid.access and orgs.access (see `REACH_*`).

A layer's statement returns one bytea: the tile of that layer ('' when nothing is in it).
"""

from __future__ import annotations

from typing import Any

from django.db import connection

from grid.models import Building, Community, GridBoundary, GridCell, ServiceCentre, Street
from mapping.models import BuildingStatus, BuildingStatusVersion, Gap, GridCellStatus
from orgs.models import PartyMember, PartyOrganisation, StationContact, Visit

STREET = Street._meta.db_table
COMMUNITY = Community._meta.db_table
CELL = GridCell._meta.db_table
BOUNDARY = GridBoundary._meta.db_table
BUILDING = Building._meta.db_table
CENTRE = ServiceCentre._meta.db_table
GAP = Gap._meta.db_table
ORG = PartyOrganisation._meta.db_table
ORG_BLD = PartyOrganisation.buildings.through._meta.db_table
MEMBER = PartyMember._meta.db_table
VISIT = Visit._meta.db_table
CONTACT = StationContact._meta.db_table
STATUS = BuildingStatus._meta.db_table
STATUS_VERSION = BuildingStatusVersion._meta.db_table
CELL_STATUS = GridCellStatus._meta.db_table

# MVT geometry space: 4096 units a side, 64 units of buffer so lines and labels cross tile edges.
EXTENT = 4096
BUFFER = 64

ENV = "ST_TileEnvelope(%(z)s, %(x)s, %(y)s)"
BOX = f"ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => {BUFFER / EXTENT}), 4326)"


def _mercator(expr: str) -> str:
    """`expr` (EPSG:4326) in Web Mercator metres.

    ST_Transform costs ~11 µs a geometry here (PROJ per call, measured on 3,500 building
    footprints: 40 ms of a 90 ms tile), ST_Affine well under 1 µs. Inside one tile Mercator is
    x = R·lon exactly and y ≈ y(lat0) + R·sec(lat0)·(lat − lat0) to second order; mapping.tiles
    computes the coefficients around the tile's centre and asks for the exact transform
    (`%(exact)s`) wherever the neglected term could reach half an MVT unit (low zooms, high
    latitudes). The CASE is on a literal, so the planner keeps only one branch.
    """
    return (
        f"(CASE WHEN %(exact)s THEN ST_Transform({expr}, 3857) "
        f"ELSE ST_SetSRID(ST_Affine({expr}, %(kx)s, 0, 0, %(ky)s, 0, %(y0)s), 3857) END)"
    )


def _mvt_geom(expr: str) -> str:
    return f"ST_AsMVTGeom({_mercator(expr)}, {ENV}, {EXTENT}, {BUFFER}, true)"


# The tile itself (no buffer) in the storage SRID: a constant, like BOX.
INSIDE = "ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4326)"


def _mvt_footprint(alias: str) -> str:
    """ST_AsMVTGeom of a building footprint, without its clipping where there is nothing to clip.

    ST_AsMVTGeom runs wagyu on every polygon, to clip it and to make it valid: 2.2 µs a footprint,
    10 of a dense z14 tile's 25 ms. A footprint whose box lies inside the tile needs no clipping,
    and a small polygon snapped to the tile's grid stays valid (the smallest drawn, `_big_enough`,
    spans 8 units), so for those the same result is computed directly: one ST_Affine from degrees
    (or, where the affine Mercator is not exact enough, from ST_Transform's metres) to tile units
    with y pointing down, ST_SnapToGrid to whole units (the rounding ST_AsMVTGeom uses; it drops
    repeated points too) and the exterior ring turned as the MVT spec wants (positive area in tile
    units: ST_ForcePolygonCCW, since PostGIS reads the flipped y as pointing up). The vertices
    and their order are ST_AsMVTGeom's; the ring may start at another vertex (tested). The
    coefficients (`%(tile_*)s`) come from mapping.tiles.tile_parameters.
    """
    geom = f"{alias}.geom"
    to_tile = (
        f"(CASE WHEN %(exact)s "
        f"THEN ST_Affine(ST_Transform({geom}, 3857), %(tile_s)s, 0, 0, -%(tile_s)s, %(tile_x0)s, %(tile_y0)s) "
        f"ELSE ST_Affine({geom}, %(tile_a)s, 0, 0, %(tile_e)s, %(tile_x0)s, %(tile_yd)s) END)"
    )
    return (
        f"CASE WHEN {geom} @ {INSIDE} THEN ST_ForcePolygonCCW(ST_SnapToGrid({to_tile}, 1)) "
        f"ELSE {_mvt_geom(geom)} END"
    )


def _mvt_polygon(expr: str) -> str:
    # Simplified in metres, the tolerance a fraction of a pixel at this zoom. ST_Simplify, not
    # ST_SimplifyPreserveTopology: the latter goes through GEOS and cost 7 of a z12 grid tile's
    # 21 ms; what ST_Simplify may leave invalid, ST_AsMVTGeom's own clipping (wagyu) makes valid.
    return f"ST_AsMVTGeom(ST_Simplify({_mercator(expr)}, %(tolerance)s), {ENV}, {EXTENT}, {BUFFER}, true)"


def _big_enough(alias: str) -> str:
    # The bbox is stored with the geometry: no GEOS call. A feature narrower than a pixel both
    # ways would be one pixel or nothing; dropping it spares its transform.
    return (
        f"greatest(ST_XMax({alias}.geom) - ST_XMin({alias}.geom), "
        f"ST_YMax({alias}.geom) - ST_YMin({alias}.geom)) >= %(min_size)s"
    )


# --- reach, as grid.access.Reach and orgs.access read it -----------------------------------------

# Communities the reach covers whole (grid.access.Reach.place_q's first two terms).
_WHOLE_COMMUNITIES = f"""
    SELECT rc.id FROM "{COMMUNITY}" rc
    WHERE rc.street_id = ANY(%(streets)s::bigint[]) OR rc.id = ANY(%(communities)s::bigint[])
"""  # noqa: S608 - names from models


def reach_place(alias: str, *, community: str = "community_id", cell: str = "grid_cell_id") -> str:
    """Things that sit in a community and maybe a grid cell (Reach.place_q): all of a community
    reached whole, only those of one's own grid cells otherwise."""
    return (
        f"(%(everything)s OR {alias}.{community} IN ({_WHOLE_COMMUNITIES}) "
        f"OR {alias}.{cell} = ANY(%(cells)s::bigint[]))"
    )


# Communities seen at all: reached whole, or holding one of the reach's grid cells
# (Reach.community_q: a grid worker sees their community's name and outline, not its data).
_SEEN_COMMUNITIES = f"""
    {_WHOLE_COMMUNITIES}
    UNION ALL SELECT rg.community_id FROM "{CELL}" rg WHERE rg.id = ANY(%(cells)s::bigint[])
"""  # noqa: S608 - names from models

# Streets seen wholly or in part (Reach.street_ids_seen).
_SEEN_STREETS = f"""
    SELECT unnest(%(streets)s::bigint[])
    UNION ALL SELECT rs.street_id FROM "{COMMUNITY}" rs WHERE rs.id = ANY(%(communities)s::bigint[])
    UNION ALL SELECT rsc.street_id FROM "{CELL}" rsg JOIN "{COMMUNITY}" rsc ON rsc.id = rsg.community_id
        WHERE rsg.id = ANY(%(cells)s::bigint[])
"""  # noqa: S608 - names from models


def _tile(layer: str, rows: str, *, order: str = "t.id", feature_id: bool = True) -> str:
    # Ordered, so the same rows always make the same bytes (and the same ETag). Rows whose
    # geometry ST_AsMVTGeom dropped (outside the tile, under a unit) are skipped by the aggregate's
    # FILTER, not by a WHERE: the planner would push a WHERE into the scan and compute every
    # row's ST_AsMVTGeom twice. OFFSET 0 keeps the rows a subquery for the same reason: flattened
    # into the aggregate, `t.geom` is the ST_AsMVTGeom expression itself, evaluated once for the
    # FILTER and once for the row (EXPLAIN VERBOSE shows it twice; a quarter of a dense tile).
    id_args = ", 'id'" if feature_id else ""
    return f"""
        SELECT coalesce(
            ST_AsMVT(t, '{layer}', {EXTENT}, 'geom'{id_args} ORDER BY {order}) FILTER (WHERE t.geom IS NOT NULL),
            ''::bytea
        )
        FROM ({rows} OFFSET 0) t
    """  # noqa: S608 - layer names, columns and statements from this module; values are parameters


# --- the layers -----------------------------------------------------------------------------------

# Grid cells by their boundary in force (open-ended version, as grid.sql's building assignment and
# the gap statements read "current"), with what an indicator shading needs at hand. The feature id
# is the cell id, so the page can shade cells by an indicator with feature-state, no refetch. The
# counts of buildings and households come from GridCellStatus where the community's rows are
# current (as the buildings' facts, below), else from the cell's buildings.
GRID_CELLS = _tile(
    "grid_cells",
    f"""
    SELECT g.id, g.code, g.name, c.code AS community_code, c.name AS community_name,
           coalesce(nullif(g.responsible_body, ''), c.name || '（属地兜底）') AS responsible,
           bs.buildings, bs.households,
           {_mvt_polygon("gb.geom")} AS geom
    FROM "{BOUNDARY}" gb
    JOIN "{CELL}" g ON g.id = gb.cell_id
    JOIN "{COMMUNITY}" c ON c.id = g.community_id
    LEFT JOIN "{STATUS_VERSION}" sv ON sv.community_id = c.id AND sv.data_version = c.data_version
    LEFT JOIN LATERAL (
        SELECT cs.cell_id, cs.buildings, cs.households
        FROM "{CELL_STATUS}" cs WHERE cs.cell_id = g.id AND sv.community_id IS NOT NULL
        OFFSET 0
    ) cs ON true
    CROSS JOIN LATERAL (
        SELECT cs.buildings::bigint, cs.households::bigint WHERE cs.cell_id IS NOT NULL
        UNION ALL
        SELECT (SELECT count(*) FROM "{BUILDING}" b WHERE b.grid_cell_id = g.id),
               (SELECT coalesce(sum(b.households), 0) FROM "{BUILDING}" b WHERE b.grid_cell_id = g.id)
        WHERE cs.cell_id IS NULL
    ) bs(buildings, households)
    WHERE gb.geom && {BOX} AND upper_inf(gb.valid) AND {_big_enough("gb")}
      AND (%(everything)s OR g.community_id IN ({_WHOLE_COMMUNITIES}) OR g.id = ANY(%(cells)s::bigint[]))
    """,  # noqa: S608 - names from models; values are parameters
)

# Buildings with a status to style by. The definitions are the gap statements' (mapping.sql):
# members by residence (any status) against `group_min`; a building group is an organisation of
# kind building_group naming the building; residential = residential or mixed with households,
# visited = a visit named it since `window_start`. One status, most pressing first; the booleans
# beside it let a style pick either.
#
# The facts per building come from BuildingStatus, which the gap recompute writes, wherever its
# community's rows are current (BuildingStatusVersion holds the community's data version they
# were read at: one index probe per community, memoised); elsewhere (a write since the last
# recompute, no recompute yet, a row missing) they are looked up here, per building, as the
# recompute does. The two branches of `st` carry one-time filters, so a building runs only one.
BUILDINGS = _tile(
    "buildings",
    f"""
    SELECT b.id, b.code, b.name, b.households, g.code AS grid_code, c.code AS community_code,
           CASE WHEN st.members >= %(group_min)s AND NOT st.has_group THEN 'members_without_group'
                WHEN res.residential AND (st.at IS NULL OR st.at < %(window_start)s) THEN 'not_visited'
                WHEN st.has_group THEN 'has_group'
                ELSE 'other' END AS status,
           st.has_group, st.members,
           res.residential AND (st.at IS NULL OR st.at < %(window_start)s) AS unvisited,
           to_char(st.at AT TIME ZONE %(tz)s, 'YYYY-MM-DD') AS last_visit,
           {_mvt_footprint("b")} AS geom
    FROM "{BUILDING}" b
    JOIN "{COMMUNITY}" c ON c.id = b.community_id
    LEFT JOIN "{CELL}" g ON g.id = b.grid_cell_id
    LEFT JOIN "{STATUS_VERSION}" sv ON sv.community_id = c.id AND sv.data_version = c.data_version
    -- A LATERAL kept from being flattened (OFFSET 0): one index probe per building. As a plain
    -- join the planner, which underestimates the rows the reach leaves, hashes all of the table.
    LEFT JOIN LATERAL (
        SELECT s.building_id, s.members, s.has_group, s.last_visit_at
        FROM "{STATUS}" s WHERE s.building_id = b.id AND sv.community_id IS NOT NULL
        OFFSET 0
    ) s ON true
    CROSS JOIN LATERAL (
        SELECT b.kind IN ('residential', 'mixed') AND b.households > 0 AS residential
    ) res
    CROSS JOIN LATERAL (
        SELECT s.members::bigint, s.has_group, s.last_visit_at WHERE s.building_id IS NOT NULL
        UNION ALL
        SELECT (SELECT count(*) FROM "{MEMBER}" pm WHERE pm.residence_building_id = b.id),
               EXISTS (
                   SELECT FROM "{ORG_BLD}" x JOIN "{ORG}" o ON o.id = x.partyorganisation_id
                   WHERE x.building_id = b.id AND o.kind = 'building_group'
               ),
               (SELECT max(v.occurred_at) FROM "{VISIT}" v WHERE v.building_id = b.id)
        WHERE s.building_id IS NULL
    ) st(members, has_group, at)
    WHERE b.geom && {BOX} AND {_big_enough("b")} AND {reach_place("b")}
    """,  # noqa: S608 - names from models; values are parameters
)

# Open gaps: each says its kind, how serious, who answers for it (the fallback organisation's
# current name, else the label the recompute wrote) and how long it has been open, in local days.
_GAP_COLUMNS = """
    gp.kind, gp.severity, gp.subject_code, gp.subject_label,
    coalesce(o.name, nullif(gp.responsible_label, '')) AS responsible,
    to_char(gp.since AT TIME ZONE %(tz)s, 'YYYY-MM-DD') AS since,
    %(today)s - (gp.since AT TIME ZONE %(tz)s)::date AS age_days,
    c.code AS community_code, g.code AS grid_code
"""
_GAPS_FROM = f"""
    FROM "{GAP}" gp
    JOIN "{COMMUNITY}" c ON c.id = gp.community_id
    LEFT JOIN "{CELL}" g ON g.id = gp.grid_cell_id
    LEFT JOIN "{ORG}" o ON o.id = gp.responsible_org_id
    WHERE gp.geom && {BOX} AND gp.resolved_at IS NULL AND {reach_place("gp")}
"""  # noqa: S608 - names from models; values are parameters
_IS_POINT = "GeometryType(gp.geom) IN ('POINT', 'MULTIPOINT')"

GAPS = _tile(
    "gaps",
    f"""
    SELECT gp.id, 1 AS count, {_GAP_COLUMNS},
           CASE WHEN {_IS_POINT} THEN {_mvt_geom("gp.geom")} ELSE {_mvt_polygon("gp.geom")} END AS geom
    {_GAPS_FROM}
    """,  # noqa: S608 - names from models; values are parameters
)

# Below the zoom where each point gap is its own feature (mapping.tiles.Layer.points_from_zoom),
# point gaps of one kind are counted per `cluster` metres square: `count`, the worst severity and
# the oldest age; a square holding one gap keeps all of its properties. Area gaps stay whole.
GAPS_CLUSTERED = _tile(
    "gaps",
    f"""
    SELECT gp.kind, max(gp.severity) AS severity, count(*) AS count,
           max(%(today)s - (gp.since AT TIME ZONE %(tz)s)::date) AS age_days,
           CASE WHEN count(*) = 1 THEN min(gp.id) END AS id,
           CASE WHEN count(*) = 1 THEN min(gp.subject_code) END AS subject_code,
           CASE WHEN count(*) = 1 THEN min(gp.subject_label) END AS subject_label,
           CASE WHEN count(*) = 1 THEN min(coalesce(o.name, nullif(gp.responsible_label, ''))) END
               AS responsible,
           CASE WHEN count(*) = 1 THEN to_char(min(gp.since) AT TIME ZONE %(tz)s, 'YYYY-MM-DD') END AS since,
           ST_AsMVTGeom(sq.cell, {ENV}, {EXTENT}, {BUFFER}, true) AS geom
    FROM "{GAP}" gp
    LEFT JOIN "{ORG}" o ON o.id = gp.responsible_org_id
    CROSS JOIN LATERAL (SELECT ST_SnapToGrid({_mercator("gp.geom")}, %(cluster)s) AS cell) sq
    WHERE gp.geom && {BOX} AND gp.resolved_at IS NULL AND {reach_place("gp")} AND {_IS_POINT}
    GROUP BY gp.kind, sq.cell
    UNION ALL
    SELECT gp.kind, gp.severity, 1, %(today)s - (gp.since AT TIME ZONE %(tz)s)::date, gp.id,
           gp.subject_code, gp.subject_label, coalesce(o.name, nullif(gp.responsible_label, '')),
           to_char(gp.since AT TIME ZONE %(tz)s, 'YYYY-MM-DD'), {_mvt_polygon("gp.geom")}
    {_GAPS_FROM} AND NOT {_IS_POINT} AND {_big_enough("gp")}
    """,  # noqa: S608 - names from models; values are parameters
    order="t.kind, t.geom",
    feature_id=False,
)


def _events(layer: str, table: str, reach: str, columns: str) -> tuple[str, str]:
    """A layer of field events of the period: one point each with its local day, kind and
    `columns`, and the counted form below the layer's `points_from_zoom` (per `cluster` metres
    square, a few pixels: a district tile carries a few thousand weighted points instead of every
    event). `count` is the heat weight at every zoom. Events have UUIDs, no integer feature id."""
    where = f"""
        v.place && {BOX} AND v.occurred_at >= %(start)s AND v.occurred_at < %(end)s AND {reach}
    """  # noqa: S608 - names from models; values are parameters
    points = _tile(
        layer,
        f"""
        SELECT 1 AS count, to_char(v.occurred_at AT TIME ZONE %(tz)s, 'YYYY-MM-DD') AS day, v.kind,
               {columns} {_mvt_geom("v.place")} AS geom
        FROM "{table}" v
        WHERE {where}
        """,  # noqa: S608 - names from models; values are parameters
        order="t.day, t.kind, t.geom",
        feature_id=False,
    )
    counted = _tile(
        layer,
        f"""
        SELECT count(*) AS count, to_char(max(v.occurred_at) AT TIME ZONE %(tz)s, 'YYYY-MM-DD') AS day,
               ST_AsMVTGeom(sq.cell, {ENV}, {EXTENT}, {BUFFER}, true) AS geom
        FROM "{table}" v
        CROSS JOIN LATERAL (SELECT ST_SnapToGrid({_mercator("v.place")}, %(cluster)s) AS cell) sq
        WHERE {where}
        GROUP BY sq.cell
        """,  # noqa: S608 - names from models; values are parameters
        order="t.geom",
        feature_id=False,
    )
    return points, counted


# Visits of the period for the heat map, scoped as orgs.access.visits_in_reach (by the community
# and grid cell that held them on their day).
VISITS, VISITS_CLUSTERED = _events("visits", VISIT, reach_place("v"), "")
# Stationed cadres' check-ins and contacts, scoped as orgs.access.station_contacts_in_reach:
# station work serves a whole community, so only a community reached whole shows it.
STATION_CONTACTS, STATION_CONTACTS_CLUSTERED = _events(
    "station_contacts",
    CONTACT,
    f"(%(everything)s OR v.community_id IN ({_WHOLE_COMMUNITIES}))",
    "v.on_site,",
)

# Service centres, scoped as grid.access.service_centres_in_reach: a street-level centre serves
# its whole street, so everyone who sees part of the street sees it.
SERVICE_CENTRES = _tile(
    "service_centres",
    f"""
    SELECT sc.id, sc.code, sc.name, sc.level, sc.service_radius_m AS radius_m,
           c.code AS community_code, {_mvt_geom("sc.geom")} AS geom
    FROM "{CENTRE}" sc
    LEFT JOIN "{COMMUNITY}" c ON c.id = sc.community_id
    WHERE sc.geom && {BOX}
      AND (%(everything)s
           OR sc.street_id = ANY(%(streets)s::bigint[])
           OR sc.community_id IN ({_SEEN_COMMUNITIES})
           OR (sc.level = 'street' AND sc.street_id IN ({_SEEN_STREETS})))
    """,  # noqa: S608 - names from models; values are parameters
)


def _outlines(layer: str, table: str, columns: str, seen: str) -> str:
    # Each unit twice: its outline (role "outline") and one label point inside it (role "label"),
    # which lands in one tile only, so a label is drawn once, not once per tile the unit crosses.
    return _tile(
        layer,
        f"""
        SELECT {columns}, 'outline' AS role, {_mvt_polygon("u.geom")} AS geom
        FROM "{table}" u
        WHERE u.geom && {BOX} AND {_big_enough("u")} AND (%(everything)s OR u.id IN ({seen}))
        UNION ALL
        SELECT {columns}, 'label' AS role, {_mvt_geom("lp.point")} AS geom
        FROM "{table}" u
        CROSS JOIN LATERAL (SELECT ST_PointOnSurface(u.geom) AS point) lp
        WHERE u.geom && {BOX} AND {_big_enough("u")} AND lp.point && {BOX}
          AND (%(everything)s OR u.id IN ({seen}))
        """,  # noqa: S608 - names from models; values are parameters
        order="t.code, t.role",
        feature_id=False,
    )


COMMUNITIES = _outlines("communities", COMMUNITY, "u.code, u.name", _SEEN_COMMUNITIES)
STREETS = _outlines("streets", STREET, "u.code, u.name", _SEEN_STREETS)


# --- what a cached tile depends on ------------------------------------------------------------------

# The communities whose outline meets the tile (with the buffer) and their data versions: every
# service bumps a community's version when anything in it changes (grid.changes), the gap
# recompute when its gaps change, and everything a tile shows lies in the communities it meets,
# so these pairs change exactly when the tile may. mapping.tiles keeps the set per tile in Redis
# (under the outlines epoch) and the versions come from Redis too (grid.versions): this statement
# runs only when Redis lacks them.
TOUCHED = f"""
    SELECT tc.id, tc.data_version FROM "{COMMUNITY}" tc
    WHERE tc.geom && {BOX} AND ST_Intersects(tc.geom, {BOX})
    ORDER BY tc.id
"""  # noqa: S608 - names from models; values are parameters

# What no community version covers, asked only by the layers that show it (their cache hits pay
# this one statement):
# - service centres: a street-level centre belongs to no community; count and latest change of
#   the centres in the box;
# - streets: their outlines and names belong to no community; id and last change of each.
# A CASE skips the subquery a layer does not need.
EXTRAS = f"""
    SELECT
        CASE WHEN %(with_centres)s THEN (
            SELECT count(*) || ':' || coalesce(max(vs.updated_at)::text, '')
            FROM "{CENTRE}" vs WHERE vs.geom && {BOX}
        ) END,
        CASE WHEN %(with_streets)s THEN (
            SELECT coalesce(string_agg(vt.id || ':' || vt.updated_at::text, ',' ORDER BY vt.id), '')
            FROM "{STREET}" vt WHERE vt.geom && {BOX} AND ST_Intersects(vt.geom, {BOX})
        ) END
"""  # noqa: S608 - names from models; values are parameters


def touched_communities(params: dict[str, Any]) -> dict[int, int]:
    """The communities the tile at params' z/x/y meets, with their data versions (TOUCHED)."""
    with connection.cursor() as cursor:
        cursor.execute(TOUCHED, params)
        return {int(i): int(v) for i, v in cursor.fetchall()}


def tile_extras(params: dict[str, Any]) -> tuple[str, ...]:
    """EXTRAS for the tile at params' z/x/y, as strings for a cache key."""
    with connection.cursor() as cursor:
        cursor.execute(EXTRAS, params)
        row = cursor.fetchone()
    return tuple("" if v is None else str(v) for v in row)


def tile_body(statement: str, params: dict[str, Any]) -> bytes:
    """Run one layer's statement; the MVT bytes ('' for an empty tile).

    JIT is off for the whole connection (DATABASES OPTIONS in ops/settings.py): the laterals of a
    dense tile pushed its estimate over jit_above_cost, and compiling cost ~20 ms of a tile that
    runs in 10–40 ms. Parallel workers are off for this statement only: the planner asks for a
    Gather on the dense z14 building tiles (EXPLAIN), and for a few thousand rows starting workers
    costs more than they save on the 2-core servers this runs on, which answer several tiles at
    once. `SET LOCAL` goes in the same query string as the statement, one round trip: sent
    together (Django's client-side binding uses the simple query protocol) they run as one implicit
    transaction, which the SET LOCAL ends with; inside an atomic block, to that transaction's end.
    """
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL max_parallel_workers_per_gather = 0; {statement}", params)
        cursor.nextset()
        row = cursor.fetchone()
    return bytes(row[0]) if row and row[0] is not None else b""
