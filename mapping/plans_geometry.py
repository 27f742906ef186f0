"""The geometry of a planner's edits, on a handful of shapes at a time (shapely, in EPSG:4326).

Why shapely and not SQL: an edit touches two or three cells of one draft, already in memory, and
splitting along a drawn line is shapely's `split` (PostGIS's ST_Split gives the same pieces); the
result goes back through grid.services.as_multipolygon, the one gate of a stored shape. Each
function raises a DomainError with a stable code; nothing here reads or writes the database.

Areas for thresholds are measured in a local metric frame: degrees² scaled by the metres of a
degree at the shape's latitude (the partition check's frame, grid.partition); across one
community this is far within the precision a threshold needs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import shapely
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import split as shapely_split

from edge.errors import DomainError
from grid import coords
from grid.errors import InvalidGeometry
from grid.models import STORAGE_SRID
from grid.services import as_multipolygon

# Pieces of a cell smaller than this after an edit are floating-point debris of a difference (a
# sliver along a shared edge), not territory: they are dropped so a cell does not become "two
# pieces" because of 1e-12 degrees.
SPECK_M2 = 1.0
# Two cells are neighbours when they share an edge longer than this (a shared corner is not one).
SHARED_EDGE_M = 1.0
# Results are kept on a grid of 1e-9° (~0.1 mm): a difference of two shapes whose edges differ in
# the 15th digit (a GeoJSON round trip) otherwise leaves a zero-width spike along the edge, which
# doubles a cell's perimeter without adding area.
PRECISION_DEG = 1e-9
# A drawn vertex this close to an existing cell's outline (~1 cm) is moved onto it, so a drawn edge
# meant to follow a neighbour's follows it exactly.
SNAP_DEG = 1e-7
_METRES_PER_DEGREE = 111_320.0


def metres_per_degree(lat: float) -> tuple[float, float]:
    """Metres of a degree of longitude and of latitude at `lat` (spherical; threshold precision)."""
    return _METRES_PER_DEGREE * math.cos(math.radians(lat)), _METRES_PER_DEGREE


def area_m2(geom: BaseGeometry) -> float:
    if geom.is_empty:
        return 0.0
    kx, ky = metres_per_degree(geom.centroid.y)
    return float(geom.area) * kx * ky


def to_shapely(geom: GEOSGeometry) -> BaseGeometry:
    return shapely.from_wkb(bytes(geom.wkb))


def to_geos(geom: BaseGeometry, *, label: str = "") -> MultiPolygon:
    """A shapely result as a storable MultiPolygon (grid.services.as_multipolygon's checks)."""
    return as_multipolygon(GEOSGeometry(shapely.to_wkb(geom, hex=True), srid=STORAGE_SRID), label=label)


def parse_geojson(value: Any, *, crs: str = coords.WGS84, field: str = "geometry") -> BaseGeometry:
    """A GeoJSON geometry object from a request, converted to WGS-84 (geometry_* codes)."""
    if not isinstance(value, dict) or "type" not in value:
        raise InvalidGeometry(f"{field} 应为 GeoJSON 几何对象", code="geometry_type", detail={"field": field})
    try:
        geom = shapely.geometry.shape(value)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, shapely.errors.ShapelyError) as exc:
        raise InvalidGeometry(
            f"{field} 不是有效的 GeoJSON 几何：{exc}", code="geometry_invalid", detail={"field": field}
        ) from exc
    if geom.is_empty:
        raise InvalidGeometry(f"{field} 为空", code="geometry_empty", detail={"field": field})
    xy = shapely.get_coordinates(geom)
    if not all(math.isfinite(v) for v in xy.ravel()):
        raise InvalidGeometry(f"{field} 含无效坐标", code="geometry_invalid", detail={"field": field})
    if crs != coords.WGS84:
        geom = coords.geometry_to_wgs84(geom, crs)
        xy = shapely.get_coordinates(geom)
    if len(xy) and not np.all(coords.inside_china(xy[:, 0], xy[:, 1])):
        raise InvalidGeometry(
            f"{field} 坐标超出中国范围：请检查坐标系（crs）和经纬度顺序",
            code="coords_out_of_range",
            detail={"field": field},
        )
    return geom


def polygonal(geom: BaseGeometry, *, field: str = "geometry") -> BaseGeometry:
    """The polygonal part of `geom`, valid (a self-intersecting drawing is refused, not guessed)."""
    if isinstance(geom, shapely.GeometryCollection):
        parts = [g for g in geom.geoms if isinstance(g, shapely.Polygon | shapely.MultiPolygon)]
        geom = shapely.union_all(parts) if parts else shapely.Polygon()
    if not isinstance(geom, shapely.Polygon | shapely.MultiPolygon):
        raise InvalidGeometry(
            f"{field} 应为面（Polygon/MultiPolygon），收到 {geom.geom_type}",
            code="geometry_type",
            detail={"field": field},
        )
    if not geom.is_valid:
        raise InvalidGeometry(
            f"{field} 无效：{shapely.is_valid_reason(geom)}", code="geometry_invalid", detail={"field": field}
        )
    return geom


def tidy(geom: BaseGeometry) -> BaseGeometry:
    """An edit's result as stored: on the PRECISION_DEG grid, polygonal, without specks."""
    return without_specks(shapely.set_precision(polygonal_or_empty(geom), PRECISION_DEG))


def snapped(geom: BaseGeometry, others: list[BaseGeometry]) -> BaseGeometry:
    """A drawn shape with its vertices near the other cells' outlines moved onto them."""
    if not others:
        return geom
    fixed = shapely.make_valid(shapely.snap(geom, shapely.union_all([o.boundary for o in others]), SNAP_DEG))
    return polygonal_or_empty(fixed)


def without_specks(geom: BaseGeometry) -> BaseGeometry:
    """`geom`'s polygons larger than SPECK_M2 (see there); empty when none is."""
    parts = [p for p in shapely.get_parts(polygonal_or_empty(geom)) if area_m2(p) > SPECK_M2]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def polygonal_or_empty(geom: BaseGeometry) -> BaseGeometry:
    if isinstance(geom, shapely.Polygon | shapely.MultiPolygon):
        return geom
    parts = [g for g in shapely.get_parts(geom) if isinstance(g, shapely.Polygon | shapely.MultiPolygon)]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def clip(geom: BaseGeometry, outline: BaseGeometry) -> BaseGeometry:
    """What of a drawn shape lies in the community (a planner traces the outline roughly)."""
    inside = shapely.make_valid(shapely.intersection(geom, outline))
    if area_m2(polygonal_or_empty(inside)) == 0:
        raise DomainError("所画范围不在本社区内", code="plan_shape_outside_community")
    clipped = tidy(inside)
    if clipped.is_empty:
        raise InvalidGeometry(f"所画范围过小（不足 {SPECK_M2:.0f} 平方米）", code="geometry_empty")
    return clipped


def overlaps(a: BaseGeometry, b: BaseGeometry) -> bool:
    """Whether the interiors of `a` and `b` share more than a speck."""
    return bool(a.intersects(b)) and area_m2(shapely.intersection(a, b)) > SPECK_M2


def adjacent(a: BaseGeometry, b: BaseGeometry) -> bool:
    """Whether two cells are neighbours: they share an edge (or overlap), not merely a corner.

    Measured as the length of the common part of the two outlines (grown by a few centimetres,
    so edges traced separately that miss each other by survey noise still meet)."""
    if overlaps(a, b):
        return True
    kx, _ = metres_per_degree(a.centroid.y)
    eps = 0.05 / kx
    contact = shapely.intersection(a.buffer(eps), b.buffer(eps))
    if contact.is_empty:
        return False
    # The contact strip is ~2·eps wide: its area over its width is the shared length.
    return area_m2(contact) / (2 * 0.05) > SHARED_EDGE_M


def split_in_two(cell: BaseGeometry, line: BaseGeometry) -> tuple[BaseGeometry, BaseGeometry]:
    """Cut `cell` along `line` into exactly two cells: (larger, smaller).

    A multi-part cell is cut in the one part the line crosses; its other parts stay with the
    larger piece. Refused (plan_split_line_invalid) when the line does not cut a part in two
    from edge to edge, cuts more than one part, or leaves a piece no larger than a speck.
    """
    if not isinstance(line, shapely.LineString | shapely.MultiLineString):
        raise InvalidGeometry(f"分割线应为线（LineString），收到 {line.geom_type}", code="geometry_type",
                              detail={"field": "line"})
    parts = list(shapely.get_parts(cell))
    cut: list[tuple[int, list[BaseGeometry]]] = []
    for i, part in enumerate(parts):
        pieces = [p for p in shapely.get_parts(shapely_split(part, line)) if area_m2(p) > 0]
        if len(pieces) > 1:
            cut.append((i, pieces))
    if len(cut) != 1 or len(cut[0][1]) != 2:
        raise DomainError(
            "分割线须从网格边界一侧完整穿到另一侧，并把网格分成两块",
            code="plan_split_line_invalid",
            detail={"pieces": 1 + sum(len(p) - 1 for _, p in cut)},
        )
    index, (a, b) = cut[0]
    if min(area_m2(a), area_m2(b)) <= SPECK_M2:
        raise DomainError("分割后有一块几乎没有面积", code="plan_split_line_invalid", detail={"pieces": 2})
    larger, smaller = (a, b) if a.area >= b.area else (b, a)
    rest = [p for i, p in enumerate(parts) if i != index]
    return tidy(shapely.union_all([larger, *rest])), tidy(smaller)
