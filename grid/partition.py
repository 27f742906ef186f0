"""Do a community's grid cells partition it? The one check of every boundary write, and of planners'
live drafts.

DOMAIN.md: "grids partition a community: no gaps, no overlaps". Three findings, each with a stable
code, a Chinese message naming the cells, its area in m² and the offending geometry (EPSG:4326):

- ``grid_outside_community`` (error): part of a cell lies outside the community's outline;
- ``grid_overlap`` (error): two cells share area; a point there would be in two grids;
- ``community_not_covered`` (warning): part of the community lies in no cell. A warning, not a
  refusal: a community is drawn cell by cell (the admin adds one version at a time), so a gap is
  work not done yet, while a leak or an overlap is a contradiction a reader would see;
- ``geometry_invalid`` (error): a shape that is not a valid polygon (a planner's draft); it is
  left out of the other checks, which cannot measure it.

Tolerance. Outlines drawn by hand or traced from different surveys never match to the millimetre:
a piece (one connected part of a leak, an overlap or a gap) smaller than
``settings.WANGGE_PARTITION["tolerance_m2"]`` is not reported. Pieces, not totals: ten slivers of
20 m² along a shared street are one sloppy edge, not a 200 m² overlap.

Measuring. Areas in m² in a local frame: longitude and latitude scaled by the WGS-84 radii of
curvature at the outline's centre (an equirectangular projection). Across a community's few
kilometres its area error stays far below 1 %, which a tolerance does not notice; and since it is
affine, shapes keep their topology, so overlays may be computed in it and mapped back exactly.

Why shapely. Debian's PostGIS 3.3 has no coverage functions (ST_CoverageInvalidEdges came with
3.4); shapely ≥ 2.1 wraps GEOS's CoverageValidator. ``coverage_is_valid`` is the fast path: cells
whose shared edges carry the same vertices (the demo's, an import of a clean file) overlap nowhere,
so the pairwise overlay is skipped. Otherwise ``coverage_invalid_edges`` gives, per cell, the edges
that do not match a neighbour's (or leave gaps narrower than ``gap_width_m``): they are returned in
the report for a map to draw, while the overlap areas decide what is refused.

The API takes shapes, not rows, so a planner's unsaved draft is checked exactly as a stored
write: ``partition_check(community=..., cells={code: shape})`` returns a `PartitionReport`; the
services (grid.services) load the shapes in force and refuse on its errors.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from django.conf import settings
from django.contrib.gis.geos import GEOSGeometry

from grid.models import STORAGE_SRID, Community

OUTSIDE = "grid_outside_community"
OVERLAP = "grid_overlap"
NOT_COVERED = "community_not_covered"
INVALID = "geometry_invalid"

DEFAULTS: dict[str, float] = {"tolerance_m2": 100.0, "gap_width_m": 2.0}

# WGS-84: semi-major axis and first eccentricity squared.
_A = 6_378_137.0
_E2 = 0.006_694_379_990_14


def partition_settings() -> dict[str, float]:
    return {**DEFAULTS, **getattr(settings, "WANGGE_PARTITION", {})}


@dataclass(frozen=True)
class PartitionProblem:
    """One finding. `cells` are the cell codes (or a planner's keys) concerned, sorted."""

    code: str
    severity: str  # "error" | "warning"
    message: str
    community: str
    cells: tuple[str, ...]
    area_m2: float
    geom: GEOSGeometry | None

    @property
    def wkt(self) -> str:
        if self.geom is None:
            return ""
        # 7 decimals of a degree is about 1 cm: enough to draw, short enough to send.
        return str(shapely.to_wkt(shapely.from_wkb(bytes(self.geom.wkb)), rounding_precision=7))

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "community": self.community,
            "cells": list(self.cells),
            "area_m2": round(self.area_m2, 1),
            "wkt": self.wkt,
        }


@dataclass(frozen=True)
class PartitionReport:
    """The findings for one community. `mismatched_edges`: cell -> the edges of its boundary
    that do not match a neighbour's (coverage_invalid_edges), only when the coverage is not clean."""

    community: str
    problems: tuple[PartitionProblem, ...] = ()
    mismatched_edges: Mapping[str, GEOSGeometry] = field(default_factory=dict)

    @property
    def errors(self) -> list[PartitionProblem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[PartitionProblem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def blocking(self, changed: Collection[str]) -> list[PartitionProblem]:
        """The errors a write of the cells `changed` must be refused for: those involving one of them.

        An error among cells the write leaves alone (data stored before this check existed) is the
        caller's to report, not a reason to refuse an unrelated redraw."""
        return [p for p in self.errors if set(p.cells) & set(changed)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "community": self.community,
            "ok": self.ok,
            "problems": [p.as_dict() for p in self.problems],
            "mismatched_edges": {
                code: str(shapely.to_wkt(shapely.from_wkb(bytes(g.wkb)), rounding_precision=7))
                for code, g in sorted(self.mismatched_edges.items())
            },
        }


@dataclass(frozen=True)
class _LocalFrame:
    """An equirectangular frame in metres around (lon0, lat0); affine, so exact both ways."""

    lon0: float
    lat0: float
    kx: float  # metres per degree of longitude
    ky: float  # metres per degree of latitude

    @classmethod
    def around(cls, geom: shapely.Geometry) -> _LocalFrame:
        centre = shapely.centroid(geom)
        lat = math.radians(centre.y)
        w = 1 - _E2 * math.sin(lat) ** 2
        meridional = _A * (1 - _E2) / w**1.5
        prime_vertical = _A / math.sqrt(w)
        deg = math.pi / 180
        return cls(centre.x, centre.y, prime_vertical * math.cos(lat) * deg, meridional * deg)

    def to_metres(self, geoms: Any) -> Any:
        return shapely.transform(geoms, lambda xy: (xy - (self.lon0, self.lat0)) * (self.kx, self.ky))

    def to_geos(self, geom: shapely.Geometry) -> GEOSGeometry:
        degrees = shapely.transform(geom, lambda xy: xy / (self.kx, self.ky) + (self.lon0, self.lat0))
        return GEOSGeometry(shapely.to_wkb(degrees, hex=True), srid=STORAGE_SRID)


def _shapely(geom: GEOSGeometry | shapely.Geometry) -> shapely.Geometry:
    if isinstance(geom, GEOSGeometry):
        return shapely.from_wkb(bytes(geom.wkb))
    return geom


def _pieces_above(geom: shapely.Geometry, tolerance_m2: float) -> tuple[shapely.Geometry | None, float, int]:
    """The polygonal pieces of `geom` (metric) larger than the tolerance: union, area, count."""
    parts = shapely.get_parts(geom)
    if len(parts) == 0:
        return None, 0.0, 0
    areas = shapely.area(parts)  # lines and points (touching shapes) have area 0
    kept = parts[areas > tolerance_m2]
    if len(kept) == 0:
        return None, 0.0, 0
    return shapely.union_all(kept), float(areas[areas > tolerance_m2].sum()), len(kept)


def partition_check(
    *,
    community: Community,
    cells: Mapping[str, GEOSGeometry | shapely.Geometry],
    outline: GEOSGeometry | shapely.Geometry | None = None,
    tolerance_m2: float | None = None,
    gap_width_m: float | None = None,
) -> PartitionReport:
    """Check that `cells` (code -> shape in EPSG:4326) partition `community`.

    `outline` replaces the community's stored outline (an outline being edited); the tolerances
    default to settings.WANGGE_PARTITION. Reads nothing from the database.
    """
    conf = partition_settings()
    tol = conf["tolerance_m2"] if tolerance_m2 is None else tolerance_m2
    gap_width = conf["gap_width_m"] if gap_width_m is None else gap_width_m
    label = f"{community.code}（{community.name}）" if community.name else community.code
    raw_outline = _shapely(outline if outline is not None else community.geom)
    frame = _LocalFrame.around(raw_outline)
    region = frame.to_metres(raw_outline)
    problems: list[PartitionProblem] = []

    def found(code: str, severity: str, message: str, who: tuple[str, ...], area: float, geom: Any) -> None:
        problems.append(
            PartitionProblem(
                code=code,
                severity=severity,
                message=message,
                community=community.code,
                cells=tuple(sorted(who)),
                area_m2=area,
                geom=None if geom is None else frame.to_geos(geom),
            )
        )

    codes: list[str] = []
    shapes: list[shapely.Geometry] = []
    for code in sorted(cells):
        shape = frame.to_metres(_shapely(cells[code]))
        if shape is None or shape.is_empty or not shape.is_valid:
            reason = "为空" if shape is None or shape.is_empty else shapely.is_valid_reason(shape)
            found(INVALID, "error", f"网格 {code} 的边界无效：{reason}", (code,), 0.0, None)
            continue
        codes.append(code)
        shapes.append(shape)
    geoms = np.array(shapes, dtype=object)

    # Leaks: what of each cell lies outside the outline.
    for code, leak in zip(codes, shapely.difference(geoms, region), strict=True):
        piece, area, _ = _pieces_above(leak, tol)
        if piece is not None:
            found(OUTSIDE, "error", f"网格 {code} 有约 {area:.0f} 平方米超出社区 {label}的边界", (code,), area, piece)

    # Overlaps, pairwise; skipped when the cells are a clean coverage (no overlap is possible).
    edges: dict[str, GEOSGeometry] = {}
    if len(geoms) > 1 and not shapely.coverage_is_valid(geoms, gap_width=gap_width):
        for code, line in zip(codes, shapely.coverage_invalid_edges(geoms, gap_width=gap_width), strict=True):
            if line is not None and not line.is_empty:
                edges[code] = frame.to_geos(line)
        left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
        pairs = left < right
        left, right = left[pairs], right[pairs]
        shared = shapely.intersection(geoms[left], geoms[right])
        for i, j, overlap in zip(left, right, shared, strict=True):
            piece, area, _ = _pieces_above(overlap, tol)
            if piece is not None:
                found(
                    OVERLAP,
                    "error",
                    f"网格 {codes[i]} 与网格 {codes[j]} 重叠约 {area:.0f} 平方米",
                    (codes[i], codes[j]),
                    area,
                    piece,
                )

    # Gaps: what of the outline no cell covers.
    covered = shapely.union_all(geoms) if len(geoms) else shapely.Polygon()
    piece, area, count = _pieces_above(shapely.difference(region, covered), tol)
    if piece is not None:
        found(
            NOT_COVERED,
            "warning",
            f"社区 {label} 有约 {area:.0f} 平方米（{count} 处）不属于任何网格",
            (),
            area,
            piece,
        )
    return PartitionReport(community=community.code, problems=tuple(problems), mismatched_edges=edges)
