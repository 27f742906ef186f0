"""Coordinate systems at the import edge: WGS-84, CGCS2000, GCJ-02, BD-09 and EPSG codes.

Everything the project stores is WGS-84 lon/lat (CGCS2000 is taken as identical, see below), but
the data people bring comes from Chinese web maps: AMap/Tencent publish GCJ-02 ("Mars
coordinates", an obfuscated WGS-84) and Baidu publishes BD-09 (a second obfuscation on top of
GCJ-02). Neither is a real datum, so PROJ/pyproj cannot convert them; this module implements the
published formulas, vectorised with numpy so a whole geometry converts in one call.

Pure Python + numpy/pyproj/shapely on purpose: no Django here, so importers, management commands
and tests can all use it without settings.

Conventions
-----------
* Axis order is always (lon, lat), like GeoJSON and ``always_xy=True`` in pyproj.
* Point functions accept floats or numpy arrays (broadcast together). Two scalars in give two
  Python floats out; anything with a dimension gives float64 arrays out.
* Canonical CRS tokens (what :func:`parse_crs` returns): real geodetic systems are named by their
  EPSG code ("EPSG:4326" for WGS-84, "EPSG:4490" for CGCS2000, "EPSG:n" for anything else), and the
  two obfuscated systems, which have no EPSG code, are "gcj02" and "bd09". One spelling per CRS
  means tokens can be stored and compared as plain strings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Final, TypeVar, cast

import numpy as np
import numpy.typing as npt
import pyproj
import shapely
from pyproj.exceptions import CRSError
from shapely.geometry.base import BaseGeometry

from edge.errors import DomainError

__all__ = [
    "BD09",
    "CGCS2000",
    "GCJ02",
    "SUPPORTED_CRS",
    "WGS84",
    "CoordinatesOutOfRange",
    "UnknownCRS",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "check_in_range",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "geodesic_area_m2",
    "geodesic_length_m",
    "geometry_to_wgs84",
    "inside_china",
    "parse_crs",
    "to_wgs84",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

FloatArray = npt.NDArray[np.float64]
# A coordinate is a float or a float array; the constrained TypeVar lets a type checker see that
# floats in give floats out and arrays in give arrays out.
Coord = TypeVar("Coord", float, FloatArray)
G = TypeVar("G", bound=BaseGeometry)

# --------------------------------------------------------------------------------------------
# Canonical CRS tokens
# --------------------------------------------------------------------------------------------

WGS84: Final = "EPSG:4326"
CGCS2000: Final = "EPSG:4490"
GCJ02: Final = "gcj02"
BD09: Final = "bd09"

# The names people may declare, for help texts and API docs. "EPSG:n" stands for any EPSG code
# that pyproj knows and that describes horizontal positions.
SUPPORTED_CRS: Final[tuple[str, ...]] = ("wgs84", "cgcs2000", "gcj02", "bd09", "EPSG:n")

# Both are treated as WGS-84 lon/lat with no transformation: CGCS2000 and WGS-84 (G1150 and later)
# agree at the centimetre level, far below what community grid data can resolve, and PROJ itself
# uses a ballpark (identity) transformation between them.
_GEOGRAPHIC_IDENTITY: Final = frozenset({WGS84, CGCS2000})
# Systems whose numbers must be lon/lat degrees; the range check below applies to them directly.
_DEGREE_SYSTEMS: Final = frozenset({WGS84, CGCS2000, GCJ02, BD09})


# Domain errors (edge.errors has no Django in it, so this module stays pure) and ValueErrors, so
# numeric callers that only know ValueError still catch them.
class UnknownCRS(DomainError, ValueError):
    """The declared coordinate system is not one we can convert from."""

    code = "crs_unknown"


class CoordinatesOutOfRange(DomainError, ValueError):
    """Some coordinates cannot be lon/lat degrees in the declared system."""

    code = "coords_out_of_range"


# --------------------------------------------------------------------------------------------
# Array plumbing
# --------------------------------------------------------------------------------------------


def _as_arrays(lon: float | FloatArray, lat: float | FloatArray) -> tuple[FloatArray, FloatArray, bool]:
    """Broadcast inputs to float64 arrays and remember whether the caller gave two scalars."""
    lon_a = np.asarray(lon, dtype=np.float64)
    lat_a = np.asarray(lat, dtype=np.float64)
    scalar = lon_a.ndim == 0 and lat_a.ndim == 0
    lon_b, lat_b = np.broadcast_arrays(lon_a, lat_a)
    # broadcast_arrays returns read-only views; copy so later in-place work is safe.
    return np.array(lon_b, dtype=np.float64), np.array(lat_b, dtype=np.float64), scalar


def _out(lon: FloatArray, lat: FloatArray, scalar: bool) -> tuple[Coord, Coord]:
    # The ignores are inherent: which branch runs is decided at run time by the inputs' shape,
    # which the constrained TypeVar describes to callers but cannot narrow in here.
    if scalar:
        return float(lon), float(lat)  # type: ignore[return-value]
    return lon, lat  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# WGS-84 <-> GCJ-02
# --------------------------------------------------------------------------------------------

# Constants of the published GCJ-02 algorithm: the Krasovsky 1940 ellipsoid (a, e^2). They are
# part of the obfuscation itself, so they must stay exactly as published even though the
# coordinates are WGS-84.
_GCJ_A: Final = 6378245.0
_GCJ_EE: Final = 0.00669342162296594323

# The rough "is this China" box every public implementation uses. GCJ-02 is only applied inside
# it; outside, GCJ-02 numbers are WGS-84 numbers. It is deliberately the same crude box (it
# includes parts of neighbouring countries) because that is what the map providers' SDKs do.
_CHINA_LON_MIN: Final = 72.004
_CHINA_LON_MAX: Final = 137.8347
_CHINA_LAT_MIN: Final = 0.8293
_CHINA_LAT_MAX: Final = 55.8271

# Inverses are solved by fixed-point iteration. 1e-10 degrees is about 11 micrometres, two orders
# of magnitude under the 1 mm we promise; the offset's Jacobian is ~1e-2 or smaller, so each step
# gains about two digits and a handful of steps suffice. The bound only guards against pathological
# input (NaN, points right at the box edge) looping forever.
_INVERSE_TOL_DEG: Final = 1e-10
_INVERSE_MAX_ITER: Final = 30


def _inside_china_arr(lon: FloatArray, lat: FloatArray) -> npt.NDArray[np.bool_]:
    return (
        (lon >= _CHINA_LON_MIN) & (lon <= _CHINA_LON_MAX) & (lat >= _CHINA_LAT_MIN) & (lat <= _CHINA_LAT_MAX)
    )


def inside_china(lon: float | FloatArray, lat: float | FloatArray) -> bool | npt.NDArray[np.bool_]:
    """Whether points fall in the rough China box that decides where GCJ-02 applies.

    Importers use it as a plausibility check: data declared GCJ-02/BD-09 that lies outside the box
    is almost always swapped lat/lon or projected metres declared as degrees.
    """
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    mask = _inside_china_arr(lon_a, lat_a)
    return bool(mask) if scalar else mask


def _gcj_offset(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The published GCJ-02 offset (degrees) at WGS-84 (lon, lat), without the China test."""
    x = lon - 105.0
    y = lat - 35.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    # The periodic terms shared by both polynomials.
    common = (20.0 * np.sin(6.0 * x * math.pi) + 20.0 * np.sin(2.0 * x * math.pi)) * 2.0 / 3.0

    d_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
    d_lat = d_lat + common
    d_lat = d_lat + (20.0 * np.sin(y * math.pi) + 40.0 * np.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    d_lat = d_lat + (160.0 * np.sin(y / 12.0 * math.pi) + 320.0 * np.sin(y * math.pi / 30.0)) * 2.0 / 3.0

    d_lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
    d_lon = d_lon + common
    d_lon = d_lon + (20.0 * np.sin(x * math.pi) + 40.0 * np.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    d_lon = d_lon + (150.0 * np.sin(x / 12.0 * math.pi) + 300.0 * np.sin(x / 30.0 * math.pi)) * 2.0 / 3.0

    # The polynomials give metres-ish values; scale them to degrees with the meridian and
    # parallel radii of curvature of the Krasovsky ellipsoid at this latitude.
    rad_lat = lat / 180.0 * math.pi
    magic = 1.0 - _GCJ_EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_GCJ_A * (1.0 - _GCJ_EE)) / (magic * sqrt_magic) * math.pi)
    d_lon = (d_lon * 180.0) / (_GCJ_A / sqrt_magic * np.cos(rad_lat) * math.pi)
    return d_lon, d_lat


def _wgs_to_gcj_arr(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    d_lon, d_lat = _gcj_offset(lon, lat)
    inside = _inside_china_arr(lon, lat)
    # Per element: only points inside the box get the offset.
    return np.where(inside, lon + d_lon, lon), np.where(inside, lat + d_lat, lat)


def _gcj_to_wgs_arr(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    # The China test is made on the GCJ input: a GCJ point outside the box was never offset. For
    # points inside we solve w + offset(w) == g. That is exact wherever g and its WGS-84 point lie
    # on the same side of the box edge; only within an offset's width (~500 m) of the edge, which
    # runs through open sea and remote border land, can no exact inverse exist.
    inside = _inside_china_arr(lon, lat)

    # Start from the classic one-step inverse, then iterate w <- w - (f(w) - g). f(w) - w is the
    # smooth, slowly varying offset, so this fixed-point map is a strong contraction.
    d_lon, d_lat = _gcj_offset(lon, lat)
    w_lon, w_lat = lon - d_lon, lat - d_lat
    for _ in range(_INVERSE_MAX_ITER):
        d_lon, d_lat = _gcj_offset(w_lon, w_lat)
        r_lon = w_lon + d_lon - lon
        r_lat = w_lat + d_lat - lat
        w_lon = w_lon - r_lon
        w_lat = w_lat - r_lat
        # nanmax: NaN input stays NaN and must not keep the loop alive or stop it early.
        worst = _nanmax_abs(r_lon, r_lat, inside)
        if worst < _INVERSE_TOL_DEG:
            break
    return np.where(inside, w_lon, lon), np.where(inside, w_lat, lat)


def _nanmax_abs(a: FloatArray, b: FloatArray, mask: npt.NDArray[np.bool_]) -> float:
    """Largest |residual| over masked elements, ignoring NaN; 0.0 when nothing is left to solve."""
    if not mask.any():
        return 0.0
    stacked = np.abs(np.concatenate([a[mask].ravel(), b[mask].ravel()]))
    finite = stacked[np.isfinite(stacked)]
    return float(finite.max()) if finite.size else 0.0


def wgs84_to_gcj02(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """WGS-84 -> GCJ-02 with the published formula (identity outside the China box)."""
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    return _out(*_wgs_to_gcj_arr(lon_a, lat_a), scalar)


def gcj02_to_wgs84(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """GCJ-02 -> WGS-84, the exact inverse of :func:`wgs84_to_gcj02` (round trip well under 1 mm).

    The common one-step inverse (subtract the offset computed at the GCJ point) is off by up to a
    few metres; that is visible at the scale of a building, so we iterate instead.
    """
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    return _out(*_gcj_to_wgs_arr(lon_a, lat_a), scalar)


# --------------------------------------------------------------------------------------------
# GCJ-02 <-> BD-09
# --------------------------------------------------------------------------------------------

# Baidu's published constant: the formula perturbs the polar form of (lon, lat) with terms
# periodic in 3000/180 * pi.
_X_PI: Final = math.pi * 3000.0 / 180.0
_BD_DLON: Final = 0.0065
_BD_DLAT: Final = 0.006


def _gcj_to_bd_arr(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + _BD_DLON, z * np.sin(theta) + _BD_DLAT


def _bd_to_gcj_one_step(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    # The widely copied approximate inverse (errors of a few decimetres); used as the start value.
    x = lon - _BD_DLON
    y = lat - _BD_DLAT
    z = np.hypot(x, y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def _bd_to_gcj_arr(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    g_lon, g_lat = _bd_to_gcj_one_step(lon, lat)
    everywhere = np.ones(lon.shape, dtype=bool)
    for _ in range(_INVERSE_MAX_ITER):
        b_lon, b_lat = _gcj_to_bd_arr(g_lon, g_lat)
        r_lon = b_lon - lon
        r_lat = b_lat - lat
        g_lon = g_lon - r_lon
        g_lat = g_lat - r_lat
        if _nanmax_abs(r_lon, r_lat, everywhere) < _INVERSE_TOL_DEG:
            break
    return g_lon, g_lat


def gcj02_to_bd09(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """GCJ-02 -> BD-09 with Baidu's published formula.

    Applied everywhere, with no China test, as in the reference implementations this module is
    tested against (wandergis/coordtransform and its many ports): BD-09 data only ever comes from
    Baidu, and a global, smooth formula keeps the pair exactly invertible.
    """
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    return _out(*_gcj_to_bd_arr(lon_a, lat_a), scalar)


def bd09_to_gcj02(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """BD-09 -> GCJ-02, iterated to invert :func:`gcj02_to_bd09` exactly (round trip < 1 mm)."""
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    return _out(*_bd_to_gcj_arr(lon_a, lat_a), scalar)


def wgs84_to_bd09(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """WGS-84 -> BD-09 (via GCJ-02)."""
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    return _out(*_gcj_to_bd_arr(*_wgs_to_gcj_arr(lon_a, lat_a)), scalar)


def bd09_to_wgs84(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """BD-09 -> WGS-84 (via GCJ-02), exact inverse of :func:`wgs84_to_bd09`."""
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    return _out(*_gcj_to_wgs_arr(*_bd_to_gcj_arr(lon_a, lat_a)), scalar)


# --------------------------------------------------------------------------------------------
# CRS vocabulary
# --------------------------------------------------------------------------------------------

# Keys are user spellings folded by _fold (lower case, no spaces, hyphens, underscores or dots).
_ALIASES: Final[dict[str, str]] = {
    "wgs84": WGS84,
    "wgs1984": WGS84,
    "crs84": WGS84,
    "ogc:crs84": WGS84,
    "urn:ogc:def:crs:ogc:13:crs84": WGS84,  # GeoJSON 2008 "crs" member, dots folded away
    "cgcs2000": CGCS2000,
    "gcj02": GCJ02,
    "gcj": GCJ02,
    "mars": GCJ02,
    "bd09": BD09,
    "bd09ll": BD09,  # Baidu's own name for BD-09 lon/lat
    "baidu": BD09,
}
# "EPSG:4326", "epsg:4490", "EPSG::4490", bare "4490", and the OGC URN form with or without a
# database version ("urn:ogc:def:crs:EPSG::4326", "urn:ogc:def:crs:EPSG:6.6:4326"; dots are folded).
_EPSG_RE: Final = re.compile(r"^(?:urn:ogc:def:crs:)?(?:epsg:(?:\d*:)?)?(\d{4,6})$")


def _fold(text: str) -> str:
    return re.sub(r"[\s\-_.]", "", text).lower()


def _unknown(text: str, reason: str) -> UnknownCRS:
    return UnknownCRS(
        f"无法识别的坐标系“{text}”：{reason}。可用：wgs84、cgcs2000、gcj02、bd09 或 EPSG:代码。",
        detail={"crs": text, "supported": list(SUPPORTED_CRS)},
    )


@lru_cache(maxsize=256)
def parse_crs(text: str) -> str:
    """Normalise a user-declared CRS to its canonical token.

    Returns "EPSG:4326" (WGS-84), "EPSG:4490" (CGCS2000), "gcj02", "bd09" or "EPSG:n" for another
    EPSG code that pyproj knows and that describes horizontal positions. Anything else raises
    :class:`UnknownCRS` (code ``crs_unknown``). Cached: pyproj's database look-up is the slow part
    and importers call this once per file or feature.
    """
    if not isinstance(text, str) or not text.strip():
        raise _unknown(str(text), "未声明坐标系")
    folded = _fold(text)
    if folded in _ALIASES:
        return _ALIASES[folded]
    match = _EPSG_RE.match(folded)
    if match is None:
        raise _unknown(text, "不是已知名称，也不是 EPSG 代码")
    code = int(match.group(1))
    try:
        crs = pyproj.CRS.from_user_input(f"EPSG:{code}")
    except CRSError as exc:
        raise _unknown(text, f"EPSG:{code} 不存在") from exc
    # Vertical-only or engineering systems parse fine in pyproj but cannot place a map feature.
    if not (crs.is_geographic or crs.is_projected):
        raise _unknown(text, f"EPSG:{code} 不是平面/经纬度坐标系")
    return f"EPSG:{code}"


@lru_cache(maxsize=64)
def _transformer_to_wgs84(crs: str) -> pyproj.Transformer:
    # Transformer construction costs milliseconds (database search); transforming is cheap.
    # pyproj >= 3.1 Transformers are safe to share between threads (each thread gets its own
    # PROJ context), so one cache serves the whole process.
    return pyproj.Transformer.from_crs(crs, WGS84, always_xy=True)


def to_wgs84(lon: Coord, lat: Coord, crs: str) -> tuple[Coord, Coord]:
    """Convert points from any supported CRS to WGS-84 lon/lat.

    ``crs`` may be any spelling :func:`parse_crs` accepts. For projected EPSG codes ``lon``/``lat``
    are the easting/northing (x, y) in that CRS's units.
    """
    token = parse_crs(crs)
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    if token in _GEOGRAPHIC_IDENTITY:
        out_lon, out_lat = lon_a, lat_a
    elif token == GCJ02:
        out_lon, out_lat = _gcj_to_wgs_arr(lon_a, lat_a)
    elif token == BD09:
        out_lon, out_lat = _gcj_to_wgs_arr(*_bd_to_gcj_arr(lon_a, lat_a))
    else:
        x, y = _transformer_to_wgs84(token).transform(lon_a, lat_a)
        out_lon, out_lat = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return _out(out_lon, out_lat, scalar)


def _vertex_fn(token: str) -> Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]:
    def convert(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        # shapely hands us 1-d arrays; to_wgs84 keeps them arrays (never scalars) and float64.
        out_x, out_y = to_wgs84(x, y, token)
        return np.asarray(out_x, dtype=np.float64), np.asarray(out_y, dtype=np.float64)

    return convert


def geometry_to_wgs84(geom: G, crs: str) -> G:
    """Convert every vertex of a shapely geometry (any type, incl. collections) to WGS-84.

    One vectorised call over all vertices via ``shapely.transform``. Vertex count and ring
    structure are preserved; Z values, if any, are kept unchanged. Note that converting can in
    principle change validity of nearly-degenerate input: the offsets differ by micrometres
    between vertices a metre apart, so callers still validate after converting.
    """
    token = parse_crs(crs)
    if token in _GEOGRAPHIC_IDENTITY:
        return geom
    # include_z=None keeps 3-D geometries 3-D; the transformation only touches x and y.
    fn = _vertex_fn(token)

    def convert(x: FloatArray, y: FloatArray, z: FloatArray | None = None) -> tuple[FloatArray, ...]:
        out_x, out_y = fn(x, y)
        return (out_x, out_y) if z is None else (out_x, out_y, z)

    return cast(G, shapely.transform(geom, convert, include_z=None, interleaved=False))


def check_in_range(lon: float | FloatArray, lat: float | FloatArray, crs: str) -> None:
    """Reject coordinates that cannot be lon/lat in the declared CRS.

    For the degree systems (wgs84, cgcs2000, gcj02, bd09) every point must have a finite lon in
    [-180, 180] and lat in [-90, 90]; this catches projected metres declared as degrees and many
    swapped lat/lon files (lat > 90). For other EPSG codes the points are converted and the
    WGS-84 result must be finite and in range, which catches coordinates far outside the CRS's
    domain. Raises :class:`CoordinatesOutOfRange` (code ``coords_out_of_range``).
    """
    token = parse_crs(crs)
    lon_a, lat_a, _ = _as_arrays(lon, lat)
    if token not in _DEGREE_SYSTEMS:
        lon_a, lat_a, _ = _as_arrays(*to_wgs84(lon_a, lat_a, token))
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(lon_a) & np.isfinite(lat_a)
        ok &= (lon_a >= -180.0) & (lon_a <= 180.0) & (lat_a >= -90.0) & (lat_a <= 90.0)
    bad = np.flatnonzero(~ok)
    if bad.size:
        first = int(bad[0])
        # Report the point as the caller gave it, not its WGS-84 conversion.
        orig_lon, orig_lat, _ = _as_arrays(lon, lat)
        raise CoordinatesOutOfRange(
            f"有 {bad.size} 个坐标超出 {token} 的经纬度范围（经度 -180~180，纬度 -90~90），"
            f"第一个是 ({orig_lon.ravel()[first]}, {orig_lat.ravel()[first]})；"
            "请检查经纬度是否写反，或坐标系是否声明错误。",
            detail={"crs": token, "count": int(bad.size), "first_index": first},
        )


# --------------------------------------------------------------------------------------------
# Geodesic measures
# --------------------------------------------------------------------------------------------

# One ellipsoid object for the process; Geod is cheap but stateless, so sharing is safe.
_GEOD: Final = pyproj.Geod(ellps="WGS84")


def _orient_ccw(geom: BaseGeometry) -> BaseGeometry:
    # pyproj's area is signed (CCW positive) and it adds hole areas with their own sign, so holes
    # are only subtracted when they run opposite to the shell. Normalise first instead of
    # trusting the file's winding order (DataV and many GIS exports do not follow RFC 7946).
    oriented: BaseGeometry = shapely.orient_polygons(geom, exterior_cw=False)
    return oriented


def geodesic_area_m2(geom: BaseGeometry) -> float:
    """Geodesic area in square metres on the WGS-84 ellipsoid (input lon/lat in WGS-84).

    Always positive; holes are subtracted; non-areal geometries have area 0.
    """
    if geom.is_empty:
        return 0.0
    area, _ = _GEOD.geometry_area_perimeter(_orient_ccw(geom))
    return abs(float(area))


def geodesic_length_m(geom: BaseGeometry) -> float:
    """Geodesic length in metres on the WGS-84 ellipsoid (input lon/lat in WGS-84).

    Lines: their length. Polygons: the perimeter, counting hole boundaries too (the same
    definition as shapely's planar ``length``); pyproj alone would only count the shell.
    Collections: the sum over their parts. Points: 0.
    """
    if geom.is_empty:
        return 0.0
    if isinstance(geom, shapely.Polygon):
        return float(sum(_GEOD.geometry_length(ring) for ring in (geom.exterior, *geom.interiors)))
    if isinstance(geom, shapely.MultiPolygon | shapely.GeometryCollection):
        return float(sum(geodesic_length_m(part) for part in geom.geoms))
    return float(_GEOD.geometry_length(geom))
