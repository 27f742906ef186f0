"""Vector tiles of the street office's map: the layers, and the one read that answers a tile.

A tile is `/tiles/{layer}/{z}/{x}/{y}.mvt`, built in PostGIS (mapping.tiles_sql) for the caller's
reach and cached in Redis. The rules:

- Scoped in the statement: the reach goes into the SQL as id arrays, read as grid.access and
  orgs.access read it, so a grid worker's tile of a neighbouring grid is empty, not filtered
  after the fact. Tile servers (martin, tipg, pg_tileserv) leave this to a proxy; here no row
  outside the reach ever reaches ST_AsMVT.
- Cached by what it depends on, never by time: the key holds the layer, z/x/y, the parsed query
  (only the parameters the layer reads: a cache-busting `?t=` adds nothing), the reach's
  signature (two users with different reach never share a tile; two with the same reach do), the
  data versions of the communities the tile meets, what no version covers (street-level centres,
  streets: one statement, for those two layers only) and, for layers that depend on the date
  (visit windows, the age of gaps), the local day. A write bumps the versions of its communities
  in its own transaction (grid.changes), and so does the gap recompute when it changes a
  community's gaps, so the next request after the commit misses exactly the tiles that show
  those communities; every other tile is answered from Redis without running its statement
  (martin's cache has no invalidation at all: its issues #288 and #1707).
- A cache hit asks the database nothing: the versions are read from Redis's copies
  (grid.versions, raised after each commit, the database read when a copy is missing), the set
  of communities a tile meets is kept per tile under the outlines epoch (`_touched`), and the
  caller's reach per user under the roles epoch (grid.reach_cache). mapping.tile_views answers a
  signed-in caller's repeat requests from these alone (`cached_only`), before Django's session
  and sign-in machinery runs.
- Redis down: tiles are rendered uncached and the error logged; the map keeps working.
- ETag is a hash of the bytes, so a re-rendered tile that did not change keeps its ETag and the
  browser's revalidation (Cache-Control: private, no-cache) answers 304. Tiles are cached and
  sent gzip-compressed to clients that accept it (every browser), each encoding with its own tag.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from isal import igzip
from redis.exceptions import RedisError

from edge.errors import DomainError
from grid import fastcache
from grid import versions as community_versions
from grid.access import Reach
from mapping import tiles_sql

logger = logging.getLogger(__name__)

MAX_ZOOM = 20
# Bump when a layer's properties or geometry change: every tile cached before is then never read.
TILE_FORMAT = 2
# Keys of old versions are never read again; the TTL only returns their memory.
CACHE_SECONDS = 24 * 3600
# The set of communities a tile meets, kept under the outlines epoch (grid.versions). The TTL bounds
# what a community created or deleted without grid.changes (a bulk loader, community_delete) can
# leave out of the set.
TOUCHED_SECONDS = 600
# The page draws 512-pixel tiles (MapLibre's vector default): 8 MVT units to a pixel.
TILE_PIXELS = 512
# Polygons under this many pixels both ways are dropped; simplification tolerance in pixels.
MIN_FEATURE_PIXELS = 1
SIMPLIFY_PIXELS = 0.5
# Below a layer's points_from_zoom, its points are counted per square of CLUSTER_PIXELS pixels
# (tiles_sql.VISITS_CLUSTERED, GAPS_CLUSTERED): a heat map or a count badge needs no more.
CLUSTER_PIXELS = 8
# The affine stand-in for ST_Transform (tiles_sql._mercator) is used while its error stays under
# this many MVT units.
AFFINE_MAX_ERROR_UNITS = 0.5
# Web Mercator's world width in metres.
WORLD_M = 2 * math.pi * 6378137.0
CONTENT_TYPE = "application/vnd.mapbox-vector-tile"


class TileLayerUnknown(DomainError):
    code = "tile_layer_unknown"
    status = 404


class TileOutOfRange(DomainError):
    code = "tile_out_of_range"
    status = 400


@dataclass(frozen=True)
class Layer:
    name: str
    title: str
    statement: str
    # Besides the communities' data versions, what the tile depends on: "centres", "streets".
    depends: frozenset[str] = frozenset()
    # Whether the local date changes the tile (visit windows, ages in days).
    dated: bool = False
    # Below min_zoom the tile is empty without a query: footprints there are a pixel or less, and
    # what the map says about them at that scale is in the grid cells and the gaps.
    min_zoom: int = 0
    # Below points_from_zoom, `clustered` (points counted per square) answers instead.
    clustered: str | None = None
    points_from_zoom: int = 0
    # Whether the layer reads ?since=&until= (a visit period).
    takes_period: bool = False

    def statement_at(self, z: int) -> str:
        if self.clustered is not None and z < self.points_from_zoom:
            return self.clustered
        return self.statement


LAYERS: dict[str, Layer] = {
    layer.name: layer
    for layer in (
        Layer("grid_cells", "网格", tiles_sql.GRID_CELLS),
        Layer("buildings", "楼栋", tiles_sql.BUILDINGS, dated=True, min_zoom=14),
        Layer(
            "gaps",
            "覆盖缺口",
            tiles_sql.GAPS,
            dated=True,
            clustered=tiles_sql.GAPS_CLUSTERED,
            points_from_zoom=14,
        ),
        Layer(
            "visits",
            "走访",
            tiles_sql.VISITS,
            dated=True,
            clustered=tiles_sql.VISITS_CLUSTERED,
            points_from_zoom=15,
            takes_period=True,
        ),
        Layer(
            "station_contacts",
            "驻点签到与联系",
            tiles_sql.STATION_CONTACTS,
            dated=True,
            clustered=tiles_sql.STATION_CONTACTS_CLUSTERED,
            points_from_zoom=15,
            takes_period=True,
        ),
        Layer("service_centres", "党群服务中心", tiles_sql.SERVICE_CENTRES, depends=frozenset({"centres"})),
        Layer("communities", "社区", tiles_sql.COMMUNITIES),
        Layer("streets", "街道", tiles_sql.STREETS, depends=frozenset({"streets"})),
    )
}


@dataclass(frozen=True)
class TileAddress:
    layer: Layer
    z: int
    x: int
    y: int

    def __str__(self) -> str:
        return f"{self.layer.name}/{self.z}/{self.x}/{self.y}"


def tile_address(*, layer: str, z: str | int, x: str | int, y: str | int) -> TileAddress:
    """The tile a URL names, or the error the client gets: an unknown layer is 404
    `tile_layer_unknown`; z outside 0..MAX_ZOOM, or x/y outside 0..2^z-1, or anything not an
    integer, is 400 `tile_out_of_range`."""
    found = LAYERS.get(layer)
    if found is None:
        raise TileLayerUnknown(f"没有名为“{layer}”的图层", detail={"layers": sorted(LAYERS)})
    try:
        zi, xi, yi = (int(str(v), 10) for v in (z, x, y))
    except ValueError:
        zi = xi = yi = -1
    if not 0 <= zi <= MAX_ZOOM or not (0 <= xi < 2**zi and 0 <= yi < 2**zi):
        raise TileOutOfRange(
            f"瓦片地址无效：z 应为 0–{MAX_ZOOM}，x、y 应为 0 至 2^z−1 的整数",
            detail={"z": str(z)[:12], "x": str(x)[:12], "y": str(y)[:12]},
        )
    return TileAddress(found, zi, xi, yi)


@dataclass(frozen=True)
class Tile:
    """A tile as cached: gzip-compressed (tiles shrink ~3×, and browsers take gzip), with an
    entity tag per representation (`etag` for the gzip bytes, `etag_identity` for the plain)."""

    gzipped: bytes
    digest: str
    cached: bool

    @property
    def body(self) -> bytes:
        return gzip.decompress(self.gzipped) if self.gzipped else b""

    @property
    def etag(self) -> str:
        return f'"{self.digest}-gz"'

    @property
    def etag_identity(self) -> str:
        return f'"{self.digest}"'


def _compressed(body: bytes) -> Tile:
    # ISA-L's gzip (isal.igzip), level 1: 0.9 ms for a dense 300 kB z14 building tile where zlib's
    # level 1 took 3.2 (a tenth of the tile's time), and a little smaller. Any gzip reader reads
    # it. mtime=0: the same bytes always compress to the same bytes.
    digest = hashlib.blake2b(body, digest_size=16).hexdigest()
    return Tile(
        gzipped=igzip.compress(body, compresslevel=1, mtime=0) if body else b"", digest=digest, cached=False
    )


EMPTY = _compressed(b"")


def reach_signature(reach: Reach) -> str:
    """Equal for two reaches exactly when they hold the same units and roles (not the user)."""
    parts = {
        "everything": reach.everything,
        "streets": sorted(reach.street_ids),
        "communities": sorted(reach.community_ids),
        "cells": sorted(reach.grid_cell_ids),
        "roles": sorted(reach.roles),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def _tile_lat(y: int, z: int) -> float:
    """Latitude in degrees of the north edge of tile row `y` at zoom `z`."""
    return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / 2**z))))


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def tile_parameters(
    *, reach: Reach, address: TileAddress, today: date, since: date | None = None, until: date | None = None
) -> dict[str, Any]:
    """The statement's parameters: the tile, its zoom's tolerances, the reach, the rules and the day.

    Visits default to the visit interval ending today, the window the gap recompute counts; a
    window runs from the local midnight of `since` to the local midnight after `until`.
    """
    rules = settings.WANGGE_RULES
    z = address.z
    tile_deg = 360.0 / 2**z
    pixel_m = WORLD_M / 2**z / TILE_PIXELS
    # Mercator inside the tile as an affine map (tiles_sql._mercator): x = kx·lon exactly, y by the
    # secant through the tile's north and south edges, exact on both edges, so a polygon crossing
    # from one tile into the next meets itself; in between it errs by at most ⅛·R·sec·tan·span²
    # (span: the tile's height in radians, with its buffer), and where that could reach
    # AFFINE_MAX_ERROR_UNITS the exact transform is used instead.
    radius = WORLD_M / (2 * math.pi)
    tile_m = WORLD_M / 2**z
    north, south = (_tile_lat(address.y + d, z) for d in (0, 1))
    y_north = WORLD_M / 2 - address.y * tile_m
    x_west = -WORLD_M / 2 + address.x * tile_m
    units = tiles_sql.EXTENT / tile_m
    ky = tile_m / (north - south)
    lat0 = math.radians((north + south) / 2)
    span = math.radians(north - south) * (1 + 2 * tiles_sql.BUFFER / tiles_sql.EXTENT)
    error_units = radius * abs(math.tan(lat0)) / math.cos(lat0) * span**2 / 8 / (tile_m / tiles_sql.EXTENT)
    interval = int(rules["visit_interval_days"])
    start, end = _period(today=today, since=since, until=until)
    return {
        "z": z,
        "x": address.x,
        "y": address.y,
        "tolerance": SIMPLIFY_PIXELS * pixel_m,
        "min_size": MIN_FEATURE_PIXELS * tile_deg / TILE_PIXELS,
        "cluster": CLUSTER_PIXELS * pixel_m,
        "exact": error_units > AFFINE_MAX_ERROR_UNITS,
        "kx": radius * math.radians(1),
        "ky": ky,
        "y0": y_north - ky * north,
        # Straight to tile units (tiles_sql._mvt_footprint): x from the tile's west edge, y down
        # from its north edge, EXTENT units a tile; from metres (tile_s) or from degrees.
        "tile_s": units,
        "tile_x0": -x_west * units,
        "tile_y0": y_north * units,
        "tile_a": radius * math.radians(1) * units,
        "tile_e": -ky * units,
        "tile_yd": ky * north * units,
        "everything": reach.everything,
        "streets": sorted(reach.street_ids),
        "communities": sorted(reach.community_ids),
        "cells": sorted(reach.grid_cell_ids),
        "tz": str(timezone.get_current_timezone()),
        "today": today,
        "window_start": _local_midnight(today - timedelta(days=interval)),
        "group_min": int(rules["building_group_min_members"]),
        "start": _local_midnight(start),
        "end": _local_midnight(end + timedelta(days=1)),
        "since": start,
        "until": end,
    }


def _period(*, today: date, since: date | None, until: date | None) -> tuple[date, date]:
    """A visit period: by default the visit interval ending today."""
    interval = int(settings.WANGGE_RULES["visit_interval_days"])
    return since or today - timedelta(days=interval), until or today


def _cache_key(
    *,
    address: TileAddress,
    reach: Reach,
    today: date,
    versions: Mapping[int, int],
    extras: tuple[str, ...] = (),
    since: date | None = None,
    until: date | None = None,
) -> str:
    layer = address.layer
    start, end = _period(today=today, since=since, until=until)
    parts = {
        "query": {"since": start.isoformat(), "until": end.isoformat()} if layer.takes_period else {},
        "reach": reach_signature(reach),
        "versions": ",".join(f"{c}:{v}" for c, v in sorted(versions.items())),
        "extras": extras,
        "day": today.isoformat() if layer.dated else "",
    }
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:40]
    return f"tiles:{TILE_FORMAT}:{address}:{digest}"


def touched_key(address: TileAddress) -> str:
    """Where the set of communities the tile at `address` meets is kept (any layer: same box)."""
    return f"tiles:touched:{address.z}/{address.x}/{address.y}"


def _touched_entry(entry: Any, epoch: Any) -> tuple[int, ...] | None:
    """The community ids of a touched_key entry, if it was stored under the current epoch."""
    if isinstance(epoch, str) and isinstance(entry, tuple) and len(entry) == 2 and entry[0] == epoch:
        return tuple(entry[1])
    return None


def _versions(
    address: TileAddress, params: dict[str, Any], known: Mapping[str, Any] | None, batch: fastcache.Batch
) -> dict[int, int]:
    """The communities the tile meets and their data versions: from Redis, else the database.
    `known`: the outlines epoch and touched entry as this request already read them, if it did.

    The epoch is read before the database, so a set read while an outline change commits is
    stored under the epoch that change replaces, and never used."""
    key = touched_key(address)
    try:
        if known is not None and community_versions.OUTLINES_KEY in known:
            found = known
        else:
            found = fastcache.get_many([community_versions.OUTLINES_KEY, key])
        epoch = community_versions.outlines_epoch(
            known=found.get(community_versions.OUTLINES_KEY), batch=batch
        )
    except RedisError:
        logger.exception("瓦片缓存不可用，直接读取社区版本")
        return tiles_sql.touched_communities(params)
    ids = _touched_entry(found.get(key), epoch)
    if ids is not None:
        return community_versions.community_versions(ids)
    touched = tiles_sql.touched_communities(params)
    community_versions.versions_seen(touched, batch=batch)
    batch.set(key, (epoch, tuple(sorted(touched))), timeout=TOUCHED_SECONDS)
    return touched


def _cache_get(key: str) -> Any:
    try:
        return fastcache.get(key)
    except RedisError:
        logger.exception("瓦片缓存不可用，直接生成瓦片")
        return None


def tile_for(
    *,
    reach: Reach,
    address: TileAddress,
    since: date | None = None,
    until: date | None = None,
    today: date | None = None,
    known: Mapping[str, Any] | None = None,
    batch: fastcache.Batch | None = None,
) -> Tile:
    """The tile at `address` as `reach` sees it: from Redis when nothing it shows has changed,
    else rendered by its statement and cached. Callers check `reach.can_read()` first.

    `known`: what this request already read from Redis (TileCacheMiddleware's look-up); `batch`:
    where the writes go (sent by the caller; without one they are sent before returning)."""
    if address.z < address.layer.min_zoom:
        return EMPTY
    if batch is None:
        own = fastcache.Batch()
        try:
            return tile_for(
                reach=reach, address=address, since=since, until=until, today=today, known=known, batch=own
            )
        finally:
            own.send()
    today = today or timezone.localdate()
    params = tile_parameters(reach=reach, address=address, today=today, since=since, until=until)
    depends = address.layer.depends
    # Versions first, body second: a write committed between the two is then in the body and
    # the body is cached under the older versions, a key no later request computes. The other
    # order could cache the data before the write under the versions after it, for good.
    versions = _versions(address, params, known, batch)
    extras = (
        tiles_sql.tile_extras(
            params | {"with_centres": "centres" in depends, "with_streets": "streets" in depends}
        )
        if depends
        else ()
    )
    key = _cache_key(
        address=address, reach=reach, today=today, versions=versions, extras=extras, since=since, until=until
    )
    hit = _cache_get(key)
    if hit is not None:
        digest, gzipped = hit
        return Tile(gzipped=gzipped, digest=digest, cached=True)
    tile = _compressed(tiles_sql.tile_body(address.layer.statement_at(address.z), params))
    batch.set(key, (tile.digest, tile.gzipped), timeout=CACHE_SECONDS)
    return tile


def cached_only(*, reach: Reach, address: TileAddress, found: Mapping[str, Any], today: date) -> Tile | None:
    """The tile at `address` (default query) from Redis alone, or None when anything it depends
    on is not there: then `tile_for` answers. `found`: what a get_many of OUTLINES_KEY and
    `touched_key(address)` returned. Layers with extras (read in the database) are never here.
    Raises RedisError."""
    layer = address.layer
    if layer.depends:
        return None
    if address.z < layer.min_zoom:
        return EMPTY
    ids = _touched_entry(found.get(touched_key(address)), found.get(community_versions.OUTLINES_KEY))
    if ids is None:
        return None
    keys = {community_versions.version_key(c): c for c in ids}
    copies = fastcache.get_many(list(keys))
    if len(copies) != len(keys) or not all(isinstance(v, int) for v in copies.values()):
        return None
    versions = {keys[k]: v for k, v in copies.items()}
    hit = fastcache.get(_cache_key(address=address, reach=reach, today=today, versions=versions))
    if hit is None:
        return None
    digest, gzipped = hit
    return Tile(gzipped=gzipped, digest=digest, cached=True)


def tile_render(*, reach: Reach, address: TileAddress, today: date | None = None) -> bytes:
    """The tile's bytes straight from its statement, no cache and no version look-up (benchmarks)."""
    if address.z < address.layer.min_zoom:
        return b""
    params = tile_parameters(reach=reach, address=address, today=today or timezone.localdate())
    return tiles_sql.tile_body(address.layer.statement_at(address.z), params)
