"""Export spatial units to GeoJSON, GeoPackage, Shapefile (a .shp set or zipped) or CSV (WKT).

The attribute names are the ones grid/importers.py reads (ASCII, at most 10 characters so a
shapefile keeps them), so an exported file imports back unchanged. Geometries leave storage in
WGS-84 and are converted once, here, to the requested system. GCJ-02 and BD-09 have no EPSG code:
GeoPackage and Shapefile exports in them carry no CRS (a re-import must declare --crs), GeoJSON
and CSV never carry one.

Given a Reach, an export holds only the units that reach sees (grid.access), as the API and the
admin would show them; without one it is the operator's export of the whole database. Either way
the audit row says which.
"""

from __future__ import annotations

import tempfile
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyogrio
import shapely
from django.db.models import Model, QuerySet
from django.utils import timezone

from grid import access, coords, selectors
from grid.access import NotInReach, Reach
from grid.audit import audit_record
from grid.errors import GridError
from grid.importers import LEVEL_MODELS, LEVELS
from grid.models import AuditEvent, Building, Community, ServiceCentre, Street

FORMATS = ("geojson", "gpkg", "shp", "csv")
_EXTENSIONS = {
    ".geojson": "geojson",
    ".json": "geojson",
    ".gpkg": "gpkg",
    ".shp": "shp",
    ".zip": "shp",
    ".csv": "csv",
}
_DRIVERS = {"geojson": "GeoJSON", "gpkg": "GPKG", "shp": "ESRI Shapefile"}
_GEOMETRY_TYPES = {"multipolygon": "MultiPolygon", "polygon": "Polygon", "point": "Point"}
EXPORT_CRS = ("wgs84", "cgcs2000", "gcj02", "bd09")


class ExportFailed(GridError):
    code = "export_failed"


@dataclass(frozen=True)
class ExportResult:
    path: Path
    count: int
    format: str
    crs: str


# --------------------------------------------------------------------------------------------
# Coordinates
# --------------------------------------------------------------------------------------------


def _vertex_fn(crs: str) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None:
    if crs == coords.GCJ02:
        return coords.wgs84_to_gcj02
    if crs == coords.BD09:
        return coords.wgs84_to_bd09
    return None  # WGS-84 and CGCS2000 are stored as is


def geometries_from_wgs84(geoms: np.ndarray, crs: str) -> np.ndarray:
    """Convert stored WGS-84 geometries to `crs` (canonical token) in one vectorised call."""
    fn = _vertex_fn(crs)
    if fn is None:
        return geoms

    def convert(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out_x, out_y = fn(x, y)
        return np.asarray(out_x, dtype=np.float64), np.asarray(out_y, dtype=np.float64)

    return np.asarray(shapely.transform(geoms, convert, interleaved=False), dtype=object)


def _export_crs(text: str) -> str:
    try:
        token = coords.parse_crs(text)
    except coords.UnknownCRS as exc:
        raise ExportFailed(exc.message, code="crs_unknown") from exc
    if token not in (coords.WGS84, coords.CGCS2000, coords.GCJ02, coords.BD09):
        raise ExportFailed(f"导出只支持 {'、'.join(EXPORT_CRS)}，收到 {text}", code="crs_unknown")
    return token


def _format(path: Path, fmt: str | None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise ExportFailed(f"未知的导出格式“{fmt}”，可用：{'、'.join(FORMATS)}", code="format_unknown")
        return fmt
    found = _EXTENSIONS.get(path.suffix.lower())
    if found is None:
        raise ExportFailed(
            f"无法从文件名“{path.name}”判断格式，请用 --format 指定（{'、'.join(FORMATS)}）",
            code="format_unknown",
        )
    return found


# --------------------------------------------------------------------------------------------
# Rows per level: a list of attribute dicts and the stored geometries, in code order.
# --------------------------------------------------------------------------------------------

Rows = tuple[list[dict[str, Any]], list[Any]]
_M = TypeVar("_M", bound=Model)


def _in_reach(qs: QuerySet[_M], reach: Reach | None) -> QuerySet[_M]:
    return qs if reach is None else access.scope(reach, qs)


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _streets(community: str | None, as_of: date, reach: Reach | None) -> Rows:
    qs: QuerySet[Street] = _in_reach(Street.objects.order_by("code"), reach)
    if community:
        qs = qs.filter(communities__code=community)
    items = list(qs)
    return [{"code": s.code, "name": s.name, "district": s.district_adcode} for s in items], [
        s.geom for s in items
    ]


def _communities(community: str | None, as_of: date, reach: Reach | None) -> Rows:
    qs = _in_reach(Community.objects.select_related("street").order_by("code"), reach)
    if community:
        qs = qs.filter(code=community)
    items = list(qs)
    attrs = [
        {"code": c.code, "name": c.name, "strt_code": c.street.code, "residents": c.residents} for c in items
    ]
    return attrs, [c.geom for c in items]


def _grids(community: str | None, as_of: date, reach: Reach | None) -> Rows:
    qs = _in_reach(selectors.grid_boundaries_as_of(on_date=as_of).order_by("cell__code"), reach)
    if community:
        qs = qs.filter(cell__community__code=community)
    items = list(qs)
    attrs = [
        {
            "code": b.cell.code,
            "name": b.cell.name,
            "comm_code": b.cell.community.code,
            "resp_body": b.cell.responsible_body,
            "valid_from": _iso(b.valid.lower),
            "valid_to": _iso(b.valid.upper),
        }
        for b in items
    ]
    return attrs, [b.geom for b in items]


def _buildings(community: str | None, as_of: date, reach: Reach | None) -> Rows:
    qs = _in_reach(Building.objects.select_related("community", "grid_cell").order_by("code"), reach)
    if community:
        qs = qs.filter(community__code=community)
    items = list(qs)
    attrs = [
        {
            "code": b.code,
            "name": b.name,
            "comm_code": b.community.code,
            "grid_code": b.grid_cell.code if b.grid_cell else None,
            "households": b.households,
            "floors": b.floors,
            "kind": b.kind,
            "address": b.address,
        }
        for b in items
    ]
    return attrs, [b.geom for b in items]


def _service_centres(community: str | None, as_of: date, reach: Reach | None) -> Rows:
    qs = _in_reach(ServiceCentre.objects.select_related("street", "community").order_by("code"), reach)
    if community:
        qs = qs.filter(community__code=community)
    items = list(qs)
    attrs = [
        {
            "code": s.code,
            "name": s.name,
            "level": s.level,
            "strt_code": s.street.code,
            "comm_code": s.community.code if s.community else None,
            "address": s.address,
            "radius_m": s.service_radius_m,
        }
        for s in items
    ]
    return attrs, [s.geom for s in items]


_ROWS: dict[str, Callable[[str | None, date, Reach | None], Rows]] = {
    "street": _streets,
    "community": _communities,
    "grid": _grids,
    "building": _buildings,
    "service_centre": _service_centres,
}
_COLUMNS = {
    "street": ["code", "name", "district"],
    "community": ["code", "name", "strt_code", "residents"],
    "grid": ["code", "name", "comm_code", "resp_body", "valid_from", "valid_to"],
    "building": ["code", "name", "comm_code", "grid_code", "households", "floors", "kind", "address"],
    "service_centre": ["code", "name", "level", "strt_code", "comm_code", "address", "radius_m"],
}


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _write_csv(frame: pd.DataFrame, geoms: np.ndarray, path: Path) -> None:
    out = frame.copy()
    # Full precision (shapely rounds WKT to 6 decimals by default: ~0.1 m, visible on a footprint).
    out["wkt"] = shapely.to_wkt(geoms, rounding_precision=-1)
    # BOM: Excel, the tool most people open a CSV with here, reads UTF-8 only with it.
    out.to_csv(path, index=False, encoding="utf-8-sig")


def _write_ogr(
    frame: pd.DataFrame, geoms: np.ndarray, path: Path, fmt: str, crs: str, geometry_type: str
) -> None:
    import geopandas as gpd  # heavy; only exports need it

    epsg = crs if crs in (coords.WGS84, coords.CGCS2000) else None
    gdf = gpd.GeoDataFrame(frame, geometry=list(geoms), crs=epsg)
    options: dict[str, Any] = {"geometry_type": geometry_type}
    if fmt == "shp":
        options["encoding"] = "UTF-8"  # writes a .cpg so GIS tools read Chinese names right
    if fmt == "shp" and path.suffix.lower() == ".zip":
        _write_zipped_shapefile(gdf, path, options)
        return
    # Drivers would otherwise append a layer, refuse, or (shapefile) keep a stale .prj beside
    # a new file that has no CRS.
    stale = (
        [path.with_suffix(s) for s in (".shp", ".shx", ".dbf", ".prj", ".cpg")] if fmt == "shp" else [path]
    )
    for old in stale:
        old.unlink(missing_ok=True)
    _write_layer(gdf, path, _DRIVERS[fmt], options)


def _write_layer(gdf: Any, path: Path, driver: str, options: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        # GCJ-02/BD-09 have no EPSG code: writing no CRS is deliberate (see module docstring).
        warnings.filterwarnings("ignore", message="'crs' was not provided", category=UserWarning)
        pyogrio.write_dataframe(gdf, path, driver=driver, **options)


def _write_zipped_shapefile(gdf: Any, path: Path, options: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        shp = Path(tmp) / f"{path.stem}.shp"
        _write_layer(gdf, shp, "ESRI Shapefile", options)
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for member in sorted(Path(tmp).iterdir()):
                archive.write(member, arcname=member.name)


def _community_street_id(code: str, reach: Reach | None) -> int:
    """The street of the community an export is limited to. A missing community and one outside
    the reach are refused alike, as a fetch by id is (grid.access.get_in_reach)."""
    try:
        if reach is None:
            found = Community.objects.get(code=code)
        else:
            found = access.get_in_reach(reach, Community.objects.all(), code=code)
    except (Community.DoesNotExist, NotInReach):
        raise ExportFailed(f"社区不存在或不在管辖范围内：{code}", code="community_unknown") from None
    return found.street_id


def _only_street_in(reach: Reach) -> int | None:
    """The one street a scoped export can reach, so that street's administrators see its audit
    row; None when the reach spans several streets (the operator sees the row either way)."""
    if reach.everything:
        return None
    ids = list(Street.objects.filter(reach.street_q()).values_list("id", flat=True)[:2])
    return ids[0] if len(ids) == 1 else None


def units_export(
    *,
    level: str,
    path: str | Path,
    fmt: str | None = None,
    crs: str = "wgs84",
    as_of: date | None = None,
    community: str | None = None,
    reach: Reach | None = None,
) -> ExportResult:
    """Write the units of `level` to `path`. Grids: the boundaries in force on `as_of` (today).

    `community` limits the export to one community (for streets: the street holding it).
    `reach` limits it to what that user sees; None exports the whole database (an operator's
    command, audited as such). Every refusal comes before the file is opened.
    """
    spec = LEVELS.get(level)
    if spec is None:
        raise ExportFailed(f"未知的单元层级“{level}”，可用：{'、'.join(LEVELS)}", code="level_unknown")
    if reach is not None and not reach.can_read():
        raise ExportFailed("该用户没有可查看的管辖范围，无单元可导出", code="reach_empty")
    path = Path(path)
    fmt = _format(path, fmt)
    token = _export_crs(crs)
    street_id: int | None
    if community:
        street_id = _community_street_id(community, reach)
    else:
        street_id = _only_street_in(reach) if reach is not None else None
    attrs, stored = _ROWS[level](community, as_of or timezone.localdate(), reach)
    frame = pd.DataFrame(attrs, columns=_COLUMNS[level])
    wkb = [g.wkb.tobytes() if hasattr(g.wkb, "tobytes") else bytes(g.wkb) for g in stored]
    geoms = geometries_from_wgs84(np.asarray(shapely.from_wkb(wkb), dtype=object), token)
    if fmt == "csv":
        _write_csv(frame, geoms, path)
    else:
        _write_ogr(frame, geoms, path, fmt, token, _GEOMETRY_TYPES[spec.geometry])
    # After the file is written: a failed write leaves no claim of an export in the log.
    model = LEVEL_MODELS[level]
    audit_record(
        action=AuditEvent.Action.EXPORT,
        object_type=model._meta.label,
        object_id=community or "",
        summary=f"导出{spec.label}{len(frame)}个到 {path.name}（{fmt}，{token}，"
        f"{'限操作人管辖范围' if reach is not None else '全库'}）",
        changes={
            "file": path.name,
            "level": level,
            "format": fmt,
            "crs": token,
            "count": len(frame),
            "community": community,
            "as_of": _iso(as_of),
            "whole_database": reach is None,
        },
        street_id=street_id,
    )
    return ExportResult(path=path, count=len(frame), format=fmt, crs=token)
