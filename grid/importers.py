"""Import spatial units (streets, communities, grids, buildings, service centres) from files.

The edge of the data path (DESIGN.md): read a file (GeoJSON, Shapefile as .shp or zipped,
GeoPackage, FlatGeobuf, CSV with a WKT or lon/lat column), take its coordinate system (a declared
one wins; else the file's own; GeoJSON is WGS-84 by definition; a CSV or a .shp without .prj
must be declared), convert exactly once to WGS-84, check, repair what shapely can repair, then
write the good features in one transaction with COPY + set-based upserts. Nothing below this
module sees GCJ-02, BD-09 or a file format.

All or nothing: when any feature is rejected, nothing is written and ImportRejected (code
``import_rejected``) carries the per-feature report, unless ``partial=True``, in which case the
good features are written and the report still lists the rejected ones.

Error codes (stable, machine-readable; messages are Chinese):

Whole file (ImportRejected.code, also the single issue's error_code; index is None):
    file_unreadable    not a readable geodata/CSV file (random bytes, truncated JSON, missing file)
    file_empty         no features
    file_too_large     larger than MAX_FILE_BYTES
    archive_too_large  zip whose declared uncompressed size or ratio is beyond the limits (zip bomb)
    layer_missing      --layer not in the file
    field_missing      the code or name column (or CSV geometry columns) not in the file
    geometry_missing   the file has no geometry column at all
    crs_missing        no --crs and the file declares none (CSV, .shp without .prj, …)
    crs_unknown        --crs (or the file's CRS) cannot be converted
    level_unknown      not one of LEVELS
Per feature, errors (the feature is rejected):
    code_missing, code_format, code_duplicate (every feature sharing a code is rejected),
    geometry_missing, geometry_empty, geometry_type, geometry_invalid (make_valid left nothing
    usable, or WKT that does not parse), coords_out_of_range (outside China's rough box after
    conversion: projected metres or swapped lat/lon declared as degrees), parent_unknown,
    value_invalid (negative households, non-integer floors, unknown kind, text too long, …)
Partition (grid.partition; each community's grids are judged on the whole file at once, with the
stored cells the file does not name; these reject the file even with ``partial``):
    grid_outside_community  a grid feature leaves its community, or a community feature's new
                            outline leaves a stored grid outside (on the community feature)
    grid_overlap            two grids overlap: one issue on each grid feature of the pair
Warnings about no single feature (index None, the community's code):
    community_not_covered   part of a community lies in no grid after the import
Per feature, warnings (the feature is written):
    geometry_repaired  repaired with shapely.make_valid; the message names the original defect
    name_defaulted     empty name, the code is used as the name

Attribute columns (ASCII, at most 10 characters, so a shapefile keeps them; the exporter writes
the first spelling, the importer also accepts the longer aliases):
    community: residents; grid: resp_body|responsible_body;
    building: address, kind, households, floors, comm_code|community_code;
    service_centre: address, level, radius_m|service_radius_m, strt_code|street_code,
    comm_code|community_code.
An optional column that is absent, or blank for a feature, keeps the stored value on update
(the model default on create): an import never blanks data it does not carry.
"""

from __future__ import annotations

import math
import re
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors
import pyogrio.raw
import pyproj
import shapely
from django.contrib.gis.geos import GEOSGeometry
from django.db import transaction
from django.db.models import Model
from django.utils import timezone
from shapely.geometry.base import BaseGeometry

from grid import coords, import_sql, services, sql
from grid.audit import audit_record
from grid.changes import communities_changed
from grid.errors import GridError, PartitionInvalid
from grid.models import (
    PARENT_CODE_LENGTH,
    STORAGE_SRID,
    AuditEvent,
    Building,
    Community,
    GridBoundary,
    GridCell,
    ServiceCentre,
    Street,
    community_code_validator,
    grid_code_validator,
    street_code_validator,
    unit_code_validator,
)

# Guards against files that would exhaust memory. Module constants (not settings) so a test can
# lower them; the limits are generous for a district's worth of buildings.
MAX_FILE_BYTES = 200 * 1024 * 1024
MAX_ARCHIVE_UNCOMPRESSED_BYTES = 1024 * 1024 * 1024
# Real zipped shapefiles compress 2–10×; a ratio far beyond that on a large archive is a bomb.
MAX_ARCHIVE_RATIO = 100
ARCHIVE_RATIO_FLOOR_BYTES = 10 * 1024 * 1024

CSV_WKT_COLUMNS = ("wkt", "WKT", "geometry", "geom")
CSV_LON_COLUMNS = ("lon", "lng", "longitude", "经度")
CSV_LAT_COLUMNS = ("lat", "latitude", "纬度")
CSV_ENCODINGS = ("utf-8-sig", "gb18030")  # Excel in China saves CSV as GBK

Progress = Callable[[str], None]


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureIssue:
    """One finding: `index` is the feature's 1-based position in the file (None: the whole file)."""

    index: int | None
    code: str | None
    error_code: str
    message: str
    severity: str = "error"  # "error" (rejected) or "warning" (written, e.g. repaired)

    def as_text(self) -> str:
        where = "文件" if self.index is None else f"第 {self.index} 个要素"
        if self.code:
            where += f"（编码 {self.code}）"
        tag = "错误" if self.severity == "error" else "提示"
        return f"{tag} {where} [{self.error_code}] {self.message}"


@dataclass
class ImportReport:
    level: str
    path: str
    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    issues: list[FeatureIssue] = field(default_factory=list)

    @property
    def errors(self) -> list[FeatureIssue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[FeatureIssue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def repaired(self) -> int:
        return sum(1 for i in self.issues if i.error_code == "geometry_repaired")

    @property
    def rejected(self) -> int:
        return len({i.index for i in self.errors})

    def summary(self) -> str:
        return (
            f"新增 {self.created}、更新 {self.updated}、未变 {self.unchanged}、"
            f"修复 {self.repaired}、拒绝 {self.rejected}"
        )


class ImportRejected(GridError):
    """The file, or some of its features, cannot be imported; nothing was written."""

    code = "import_rejected"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        issues: list[FeatureIssue] | None = None,
        report: ImportReport | None = None,
    ) -> None:
        self.issues = issues or []
        self.report = report
        super().__init__(message, code=code, detail={"issues": [asdict(i) for i in self.issues]})


def _reject_file(error_code: str, message: str) -> ImportRejected:
    return ImportRejected(message, code=error_code, issues=[FeatureIssue(None, None, error_code, message)])


# --------------------------------------------------------------------------------------------
# Levels
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attr:
    """An optional attribute column: `key` is the stage column and the exported name."""

    key: str
    aliases: tuple[str, ...]
    kind: str  # "text" | "int" | "choice"
    label: str
    max_length: int = 0
    minimum: int = 0
    maximum: int = 2**31 - 1
    choices: Mapping[str, str] = field(default_factory=dict)  # folded spelling -> stored value


def _choices(text_choices: Any) -> dict[str, str]:
    # Accept the stored value and the Chinese label ("residential" or "住宅").
    out = {str(v).lower(): str(v) for v in text_choices.values}
    out.update({str(label): str(v) for v, label in text_choices.choices})
    return out


ADDRESS = Attr("address", ("address",), "text", "地址", max_length=200)
COMM_CODE = Attr("comm_code", ("comm_code", "community_code"), "text", "社区编码", max_length=12)


@dataclass(frozen=True)
class LevelSpec:
    name: str
    label: str
    code_regex: re.Pattern[str]
    code_message: str
    geometry: str  # "multipolygon" | "polygon" | "point"
    attrs: tuple[Attr, ...] = ()


def _spec(name: str, label: str, validator: Any, geometry: str, attrs: tuple[Attr, ...] = ()) -> LevelSpec:
    # The model's own validator: one definition of a valid code.
    return LevelSpec(name, label, validator.regex, str(validator.message), geometry, attrs)


LEVELS: dict[str, LevelSpec] = {
    "street": _spec("street", "街道", street_code_validator, "multipolygon"),
    "community": _spec(
        "community",
        "社区",
        community_code_validator,
        "multipolygon",
        (Attr("residents", ("residents",), "int", "常住人口"),),
    ),
    "grid": _spec(
        "grid",
        "网格",
        grid_code_validator,
        "multipolygon",
        (Attr("resp_body", ("resp_body", "responsible_body"), "text", "责任主体", max_length=128),),
    ),
    "building": _spec(
        "building",
        "楼栋",
        unit_code_validator,
        "polygon",
        (
            ADDRESS,
            Attr("kind", ("kind",), "choice", "类型", choices=_choices(Building.Kind)),
            Attr("households", ("households",), "int", "户数"),
            Attr("floors", ("floors",), "int", "层数", minimum=1, maximum=32767),
            COMM_CODE,
        ),
    ),
    "service_centre": _spec(
        "service_centre",
        "党群服务中心",
        unit_code_validator,
        "point",
        (
            ADDRESS,
            Attr("level", ("level",), "choice", "级别", choices=_choices(ServiceCentre.Level)),
            Attr("radius_m", ("radius_m", "service_radius_m"), "int", "服务半径"),
            Attr("strt_code", ("strt_code", "street_code"), "text", "街道编码", max_length=9),
            COMM_CODE,
        ),
    ),
}
NAME_MAX_LENGTH = 64
# C0 control characters other than tab and line breaks: never meant in a name or an address, and
# PostgreSQL text cannot hold NUL at all (COPY would fail after the checks passed the feature).
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


@dataclass
class Source:
    """What a file holds, format-free: attribute columns, geometries (None where missing) and CRS."""

    frame: pd.DataFrame
    geoms: np.ndarray
    crs: pyproj.CRS | None
    default_crs: str | None = None  # what the format itself implies (GeoJSON: WGS-84)
    bad_geometry: dict[int, str] = field(default_factory=dict)  # row -> why it did not parse


def _check_size(path: Path) -> None:
    if not path.is_file():
        raise _reject_file("file_unreadable", f"文件不存在：{path.name}")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise _reject_file(
            "file_too_large", f"文件过大（{size / 1048576:.1f} MB），上限 {MAX_FILE_BYTES / 1048576:.0f} MB"
        )


def _check_archive(path: Path) -> None:
    """Refuse zip bombs by the sizes the archive declares, before GDAL inflates anything."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise _reject_file("file_unreadable", f"无法打开压缩包：{exc}") from exc
    unpacked = sum(i.file_size for i in infos)
    packed = max(sum(i.compress_size for i in infos), 1)
    too_big = unpacked > MAX_ARCHIVE_UNCOMPRESSED_BYTES
    too_dense = unpacked > ARCHIVE_RATIO_FLOOR_BYTES and unpacked > MAX_ARCHIVE_RATIO * packed
    if too_big or too_dense:
        raise _reject_file(
            "archive_too_large",
            f"压缩包解压后 {unpacked / 1048576:.1f} MB（压缩比 {unpacked / packed:.0f}），超过上限，拒绝读取",
        )


def _first(columns: Iterable[str], candidates: Iterable[str]) -> str | None:
    cols = list(columns)
    return next((c for c in candidates if c in cols), None)


def _read_csv_frame(path: Path) -> pd.DataFrame:
    for encoding in CSV_ENCODINGS:
        try:
            # dtype=str keeps codes as written ("007" stays "007").
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)
        except UnicodeDecodeError:
            continue
        except pd.errors.EmptyDataError as exc:
            raise _reject_file("file_empty", "CSV 文件为空") from exc
        except pd.errors.ParserError as exc:
            raise _reject_file("file_unreadable", f"CSV 无法解析：{exc}") from exc
    raise _reject_file("file_unreadable", "CSV 编码无法识别（应为 UTF-8 或 GBK）")


def _read_csv(path: Path) -> Source:
    frame = _read_csv_frame(path)
    wkt_col = _first(frame.columns, CSV_WKT_COLUMNS)
    lon_col = _first(frame.columns, CSV_LON_COLUMNS)
    lat_col = _first(frame.columns, CSV_LAT_COLUMNS)
    bad: dict[int, str] = {}
    if wkt_col:
        text = frame[wkt_col].str.strip()
        geoms = shapely.from_wkt(text.where(text != "", None).to_numpy(dtype=object), on_invalid="ignore")
        for i in np.flatnonzero((text != "").to_numpy() & shapely.is_missing(geoms)):
            bad[int(i)] = f"WKT 无法解析：{text.iloc[i][:40]}"
        frame = frame.drop(columns=[wkt_col])
    elif lon_col and lat_col:
        lon = pd.to_numeric(frame[lon_col].str.strip(), errors="coerce").to_numpy(dtype=float)
        lat = pd.to_numeric(frame[lat_col].str.strip(), errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(lon) & np.isfinite(lat)
        geoms = np.full(len(frame), None, dtype=object)
        geoms[ok] = shapely.points(lon[ok], lat[ok])
        given = ((frame[lon_col].str.strip() != "") | (frame[lat_col].str.strip() != "")).to_numpy()
        for i in np.flatnonzero(given & ~ok):
            bad[int(i)] = f"经纬度不是数字：{frame[lon_col].iloc[i]}, {frame[lat_col].iloc[i]}"
        frame = frame.drop(columns=[lon_col, lat_col])
    else:
        raise _reject_file(
            "field_missing", "CSV 缺少几何列：需要 wkt（或 geometry）列，或经度 lon/lng 与纬度 lat 列"
        )
    return Source(frame=frame, geoms=np.asarray(geoms, dtype=object), crs=None, bad_geometry=bad)


def _read_ogr(path: Path, layer: str | None) -> Source:
    if layer is not None:
        try:
            names = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
        except pyogrio.errors.DataSourceError as exc:
            raise _reject_file("file_unreadable", f"无法读取文件：{exc}") from exc
        if layer not in names:
            raise _reject_file("layer_missing", f"文件中没有图层“{layer}”，现有图层：{'、'.join(names)}")
    try:
        # "ignore": a geometry GEOS cannot build (an unclosed ring, a ring of 2 points) becomes
        # None here and is reported per feature below, instead of failing the whole read.
        frame = pyogrio.read_dataframe(path, layer=layer, on_invalid="ignore")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise _reject_file(
            "file_unreadable", f"无法读取文件（不是可识别的地理数据格式或内容已损坏）：{exc}"
        ) from exc
    except (pyogrio.errors.FieldError, pyogrio.errors.GeometryError, UnicodeDecodeError, ValueError) as exc:
        raise _reject_file("file_unreadable", f"文件内容无法解析：{exc}") from exc
    if "geometry" not in frame.columns:
        if len(frame) == 0:
            raise _reject_file("file_empty", "文件中没有要素")
        raise _reject_file("geometry_missing", "文件没有几何字段")
    geoms = np.asarray(frame.geometry.array, dtype=object)
    is_geojson = path.suffix.lower() in (".geojson", ".json")
    return Source(
        frame=pd.DataFrame(frame.drop(columns="geometry")),
        geoms=geoms,
        crs=frame.crs,
        default_crs=coords.WGS84 if is_geojson else None,
        bad_geometry=_unbuildable_geometries(path, layer, geoms),
    )


def _unbuildable_geometries(path: Path, layer: str | None, geoms: np.ndarray) -> dict[int, str]:
    """Rows whose file has a geometry that GEOS could not build (None after reading, WKB present)."""
    missing = np.flatnonzero(shapely.is_missing(geoms))
    if missing.size == 0:
        return {}
    # Only on this rare path: read the raw WKB again to tell "no geometry" from "unbuildable".
    _meta, _fids, wkb, _fields = pyogrio.raw.read(path, layer=layer, columns=[])
    return {
        int(i): "几何无法构建（如环未闭合、环少于4个点或坐标无效）" for i in missing if wkb[i] is not None
    }


def source_read(*, path: Path, layer: str | None = None) -> Source:
    """Read any supported file into a Source, or raise ImportRejected with a whole-file code."""
    _check_size(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        source = _read_csv(path)
    else:
        if suffix == ".zip":
            _check_archive(path)
        source = _read_ogr(path, layer)
    if len(source.frame) == 0:
        raise _reject_file("file_empty", "文件中没有要素")
    return source


# --------------------------------------------------------------------------------------------
# Coordinates
# --------------------------------------------------------------------------------------------


def _declared_crs(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return coords.parse_crs(text)
    except coords.UnknownCRS as exc:
        raise _reject_file("crs_unknown", exc.message) from exc


def _source_crs(source: Source, declared: str | None) -> str | pyproj.CRS:
    """The CRS to convert from: declared, else the file's own, else the format's; else reject."""
    if declared:
        return declared
    if source.crs is not None:
        epsg = source.crs.to_epsg()
        return f"EPSG:{epsg}" if epsg else source.crs
    if source.default_crs:
        return source.default_crs
    raise _reject_file(
        "crs_missing",
        "文件没有声明坐标系，请用 --crs 指定（wgs84、cgcs2000、gcj02、bd09 或 EPSG:代码）",
    )


def _to_wgs84(geoms: np.ndarray, crs: str | pyproj.CRS) -> np.ndarray:
    """Convert all geometries in one vectorised call; Z is dropped (storage is 2-D)."""
    flat = shapely.force_2d(geoms)
    if isinstance(crs, str):
        try:
            return np.asarray(coords.geometry_to_wgs84(flat, crs), dtype=object)
        except coords.UnknownCRS as exc:
            raise _reject_file("crs_unknown", exc.message) from exc
    try:
        transformer = pyproj.Transformer.from_crs(crs, coords.WGS84, always_xy=True)
    except pyproj.exceptions.CRSError as exc:
        raise _reject_file("crs_unknown", f"文件的坐标系无法转换：{exc}") from exc
    return np.asarray(
        shapely.transform(flat, lambda xy: np.column_stack(transformer.transform(*xy.T))), dtype=object
    )


def _outside_china(geoms: np.ndarray) -> set[int]:
    """Rows with any vertex outside China's rough box (or not finite) after conversion."""
    xy, rows = shapely.get_coordinates(geoms, return_index=True)
    if len(xy) == 0:
        return set()
    inside = np.asarray(coords.inside_china(xy[:, 0], xy[:, 1]))
    return {int(r) for r in np.unique(rows[~inside])}


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


class _Bad(Exception):  # noqa: N818 - internal control flow, never escapes this module
    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


@dataclass
class Feature:
    """A feature that passed: WGS-84 geometry ready for storage and parsed attributes."""

    index: int
    code: str
    name: str
    geom: BaseGeometry
    attrs: dict[str, object]


def _is_blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str):
        return value.strip() == ""
    return bool(pd.api.types.is_scalar(value) and pd.isna(value))


def _normalise_code(value: object) -> str | None:
    """Codes as text: numeric columns (DataV's adcode is a JSON number) lose their ".0"."""
    if _is_blank(value):
        return None
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    return str(value).strip()


def _parse_int(attr: Attr, value: object) -> int:
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise _Bad("value_invalid", f"{attr.label}（{attr.key}）应为整数，收到“{value}”") from None
    elif isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
    else:
        raise _Bad("value_invalid", f"{attr.label}（{attr.key}）应为整数，收到“{value}”")
    if not number.is_integer():
        raise _Bad("value_invalid", f"{attr.label}（{attr.key}）应为整数，收到 {value}")
    if not attr.minimum <= number <= attr.maximum:
        raise _Bad(
            "value_invalid",
            f"{attr.label}（{attr.key}）应在 {attr.minimum}–{attr.maximum} 之间，收到 {value}",
        )
    return int(number)


def _parse_attr(attr: Attr, value: object) -> object:
    if _is_blank(value):
        return None
    if attr.kind == "int":
        return _parse_int(attr, value)
    text = _normalise_code(value) or ""
    if attr.kind == "choice":
        stored = attr.choices.get(text) or attr.choices.get(text.lower())
        if stored is None:
            allowed = "、".join(sorted(set(attr.choices.values())))
            raise _Bad("value_invalid", f"{attr.label}（{attr.key}）“{text}”无效，可用：{allowed}")
        return stored
    if len(text) > attr.max_length:
        raise _Bad("value_invalid", f"{attr.label}（{attr.key}）超过 {attr.max_length} 字")
    if CONTROL_CHARS.search(text):
        raise _Bad("value_invalid", f"{attr.label}（{attr.key}）含不可见的控制字符")
    return text


def _polygonal_part(geom: BaseGeometry) -> BaseGeometry | None:
    """The polygonal part of make_valid's output (it may add collapsed lines or points)."""
    if isinstance(geom, shapely.Polygon | shapely.MultiPolygon):
        return geom if not geom.is_empty else None
    if isinstance(geom, shapely.GeometryCollection):
        polys = [
            g for g in geom.geoms if isinstance(g, shapely.Polygon | shapely.MultiPolygon) and not g.is_empty
        ]
        if polys:
            return shapely.union_all(polys)
    return None


def _repair(geom: BaseGeometry) -> tuple[BaseGeometry, str | None]:
    """A valid polygonal geometry and, when it had to be repaired, what was wrong."""
    if geom.is_valid:
        return geom, None
    reason = shapely.is_valid_reason(geom)
    # "structure" keeps the area a person drew (rings unioned, holes subtracted) and drops
    # collapsed parts; "linework" would turn doubly covered areas into holes.
    fixed = _polygonal_part(shapely.make_valid(geom, method="structure", keep_collapsed=False))
    if fixed is None or not fixed.is_valid:
        raise _Bad("geometry_invalid", f"几何无效且无法修复：{reason}")
    return fixed, reason


def _shape_polygon(spec: LevelSpec, geom: BaseGeometry, repaired: bool) -> BaseGeometry:
    if spec.geometry == "multipolygon":
        return geom if isinstance(geom, shapely.MultiPolygon) else shapely.MultiPolygon([geom])
    if isinstance(geom, shapely.MultiPolygon):
        if len(geom.geoms) != 1:
            code = "geometry_invalid" if repaired else "geometry_type"
            raise _Bad(code, f"{spec.label}轮廓应为单个面，收到 {len(geom.geoms)} 个面的 MultiPolygon")
        return geom.geoms[0]
    return geom


def _shape_point(spec: LevelSpec, geom: BaseGeometry) -> BaseGeometry:
    if isinstance(geom, shapely.MultiPoint) and len(geom.geoms) == 1:
        return geom.geoms[0]
    if not isinstance(geom, shapely.Point):
        raise _Bad("geometry_type", f"{spec.label}位置应为点（Point），收到 {geom.geom_type}")
    return geom


def _check_geometry(
    spec: LevelSpec, geom: BaseGeometry | None, out_of_range: bool
) -> tuple[BaseGeometry, str | None]:
    """The geometry ready for storage and the defect repaired, if any; or _Bad."""
    if geom is None:
        raise _Bad("geometry_missing", "缺少几何")
    if geom.is_empty:
        raise _Bad("geometry_empty", "几何为空")
    polygonal = isinstance(geom, shapely.Polygon | shapely.MultiPolygon)
    if spec.geometry != "point" and not polygonal:
        raise _Bad("geometry_type", f"{spec.label}边界应为面（Polygon/MultiPolygon），收到 {geom.geom_type}")
    if out_of_range:
        raise _Bad(
            "coords_out_of_range",
            "坐标超出中国范围（换算为 WGS-84 后）：请检查坐标系声明，是否把投影坐标（米）当作经纬度，或经纬度写反",
        )
    if spec.geometry == "point":
        return _shape_point(spec, geom), None
    fixed, reason = _repair(geom)
    return _shape_polygon(spec, fixed, reason is not None), reason


def _check_code(spec: LevelSpec, code: str | None, counts: Counter[str]) -> str:
    if not code:
        raise _Bad("code_missing", "缺少编码")
    if not spec.code_regex.match(code):
        raise _Bad("code_format", f"编码“{code}”格式错误：{spec.code_message}")
    if counts[code] > 1:
        raise _Bad("code_duplicate", f"编码“{code}”在文件中出现 {counts[code]} 次")
    return code


@dataclass
class _Columns:
    code: str
    name: str
    attrs: dict[str, str]  # attr key -> column in the file


def _columns(spec: LevelSpec, frame: pd.DataFrame, code_field: str, name_field: str) -> _Columns:
    for column, what in ((code_field, "编码"), (name_field, "名称")):
        if column not in frame.columns:
            available = "、".join(map(str, frame.columns)) or "（无）"
            raise _reject_file("field_missing", f"缺少{what}字段“{column}”，文件中的字段：{available}")
    attrs = {}
    for attr in spec.attrs:
        found = _first(frame.columns, attr.aliases)
        if found:
            attrs[attr.key] = found
    return _Columns(code_field, name_field, attrs)


def _check_feature(
    spec: LevelSpec, row: Mapping[str, object], geom: BaseGeometry | None, cols: _Columns, ctx: _Context
) -> tuple[Feature | None, list[FeatureIssue]]:
    index = ctx.row + 1
    code = _normalise_code(row[cols.code])
    errors: list[FeatureIssue] = []
    warnings: list[FeatureIssue] = []

    def fail(bad: _Bad) -> None:
        errors.append(FeatureIssue(index, code, bad.error_code, bad.message))

    try:
        _check_code(spec, code, ctx.counts)
    except _Bad as bad:
        fail(bad)
    stored: BaseGeometry | None = None
    try:
        if ctx.row in ctx.bad_geometry:
            raise _Bad("geometry_invalid", ctx.bad_geometry[ctx.row])
        stored, defect = _check_geometry(spec, geom, ctx.row in ctx.out_of_range)
        if defect:
            warnings.append(
                FeatureIssue(
                    index, code, "geometry_repaired", f"几何已自动修复（原问题：{defect}）", "warning"
                )
            )
    except _Bad as bad:
        fail(bad)
    name = _normalise_code(row[cols.name]) or ""
    if len(name) > NAME_MAX_LENGTH:
        fail(_Bad("value_invalid", f"名称超过 {NAME_MAX_LENGTH} 字"))
    elif CONTROL_CHARS.search(name):
        fail(_Bad("value_invalid", "名称含不可见的控制字符"))
    elif not name and code:
        name = code
        warnings.append(FeatureIssue(index, code, "name_defaulted", "名称为空，以编码作为名称", "warning"))
    attrs: dict[str, object] = {}
    for attr in spec.attrs:
        try:
            attrs[attr.key] = _parse_attr(attr, row[cols.attrs[attr.key]]) if attr.key in cols.attrs else None
        except _Bad as bad:
            fail(bad)
    if errors or stored is None or code is None:
        return None, errors + warnings
    return Feature(index, code, name, stored, attrs), warnings


@dataclass
class _Context:
    counts: Counter[str]
    out_of_range: set[int]
    bad_geometry: dict[int, str]
    row: int = 0


def features_check(
    *, spec: LevelSpec, source: Source, geoms: np.ndarray, code_field: str, name_field: str
) -> tuple[list[Feature], list[FeatureIssue]]:
    """Validate every feature (geometries already WGS-84); all issues, not just the first."""
    cols = _columns(spec, source.frame, code_field, name_field)
    wanted = [cols.code, cols.name, *cols.attrs.values()]
    records = source.frame[list(dict.fromkeys(wanted))].to_dict("records")
    codes = [_normalise_code(r[cols.code]) for r in records]
    ctx = _Context(Counter(c for c in codes if c), _outside_china(geoms), source.bad_geometry)
    good: list[Feature] = []
    issues: list[FeatureIssue] = []
    for row, (record, geom) in enumerate(zip(records, geoms, strict=True)):
        ctx.row = row
        feature, found = _check_feature(spec, record, geom, cols, ctx)
        issues.extend(found)
        if feature is not None:
            good.append(feature)
    return good, issues


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


@dataclass
class _Written:
    created: int = 0
    updated: int = 0
    rejects: list[FeatureIssue] = field(default_factory=list)
    warnings: list[FeatureIssue] = field(default_factory=list)
    touched_ids: list[int] = field(default_factory=list)
    refused: bool = False  # a partition refusal: the file is rejected even with `partial`


def _stage(level: str, features: list[Feature]) -> None:
    import_sql.stage_create(level)
    columns = import_sql.stage_input_columns(level)
    extra = columns[4:]

    def rows() -> Iterable[list[object]]:
        for f in features:
            # Hex EWKB: exact doubles (WKT would round) and the SRID in one value.
            ewkb = shapely.to_wkb(shapely.set_srid(f.geom, STORAGE_SRID), hex=True, include_srid=True)
            yield [f.index, f.code, f.name, ewkb, *(f.attrs.get(k) for k in extra)]

    sql.copy_rows(import_sql.STAGE, columns, rows())


_LINKERS: dict[str, Callable[[], list[import_sql.Reject]]] = {
    "street": list,
    # The parent is the unit whose code is the prefix (grid.models.PARENT_CODE_LENGTH): by
    # construction an imported code starts with its parent's, the rule the services enforce.
    "community": lambda: import_sql.link_by_code_prefix(
        parent_table=import_sql.STREET,
        column="street_id",
        prefix_len=PARENT_CODE_LENGTH["community"],
        label="街道",
    ),
    "grid": lambda: import_sql.link_by_code_prefix(
        parent_table=import_sql.COMMUNITY,
        column="community_id",
        prefix_len=PARENT_CODE_LENGTH["grid"],
        label="社区",
    ),
    "building": import_sql.link_buildings,
    "service_centre": import_sql.link_service_centres,
}
_UPSERTS: dict[str, Callable[[], list[tuple[int, bool, int | None]]]] = {
    "street": import_sql.upsert_streets,
    "community": import_sql.upsert_communities,
    "grid": import_sql.upsert_grid_cells,
    "building": import_sql.upsert_buildings,
    "service_centre": import_sql.upsert_service_centres,
}


def _partition_issues(
    exc: PartitionInvalid, features: list[Feature], *, by_community: bool
) -> list[FeatureIssue]:
    """One issue per feature a partition refusal names: the grid features of the cells concerned
    (both cells of an overlap), or the community features whose outline left cells outside."""
    index = {f.code: f.index for f in features}
    issues = []
    for problem in exc.detail.get("problems", []):
        codes = [problem["community"]] if by_community else problem["cells"]
        named = [c for c in codes if c in index] or [None]
        for code in named:
            at = index.get(code) if code else None
            issues.append(FeatureIssue(at, code, problem["code"], problem["message"]))
    return issues


def _write_grids(valid_from: date, note: str) -> tuple[set[int], list[FeatureIssue]]:
    """Versioned boundaries via the grid service, every staged shape in one call (so each
    community's partition is judged on the whole file's cells). Returns the ids of cells whose
    shape changed, and the partition findings that do not refuse the file, as warnings about no
    single feature (a community left with a gap, stored cells that already overlapped)."""
    shapes = {pk: GEOSGeometry(ewkb) for pk, ewkb in import_sql.staged_cell_shapes().items()}
    result = services.grid_boundaries_set(shapes=shapes, valid_from=valid_from, note=note)
    changed = set(
        GridBoundary.objects.filter(id__in=result.changed_boundary_ids).values_list("cell_id", flat=True)
    )
    warnings = [FeatureIssue(None, p.community, p.code, p.message, "warning") for p in result.warnings]
    return changed, warnings


def _after_upsert(level: str, changed: list[tuple[int, bool, int | None]]) -> None:
    """Tell the communities what changed in them (grid.changes): their caches key on it, and a
    moved community outline moves what its outline places (outlines=True)."""
    touched = sorted({community for _, _, community in changed if community is not None})
    if level == "building" and touched:
        services.buildings_reassign(community_ids=touched)
    if level != "street":
        communities_changed(touched, outlines=level == "community")


def _write(
    spec: LevelSpec, features: list[Feature], *, partial: bool, rejected: bool, valid_from: date, note: str
) -> _Written:
    """Stage, link parents, upsert. Call inside a transaction; raising rolls all of it back.

    When features are rejected (`rejected`: already by the checks) and `partial` is off, only
    stage and link, so that parent problems are reported too; the caller then raises. A partition
    refusal (`refused`) is per feature but rejects the file even with `partial`: which of two
    overlapping cells is wrong is a person's call, not the importer's.
    """
    _stage(spec.name, features)
    rejects = [FeatureIssue(idx, code, "parent_unknown", msg) for idx, code, msg in _LINKERS[spec.name]()]
    out = _Written(rejects=rejects)
    if (rejected or rejects) and not partial:
        return out
    import_sql.stage_discard([r.index for r in rejects if r.index is not None])
    import_sql.stage_adopt_stored_shapes(spec.name)
    changed = _UPSERTS[spec.name]()
    created = {pk for pk, is_new, _ in changed if is_new}
    updated = {pk for pk, is_new, _ in changed if not is_new}
    try:
        if spec.name == "community":
            services.communities_partition_check(community_ids=sorted(created | updated))
        if spec.name == "grid":
            redrawn, out.warnings = _write_grids(valid_from, note)
            updated |= redrawn - created
    except PartitionInvalid as exc:
        out.rejects += _partition_issues(exc, features, by_community=spec.name == "community")
        out.refused = True
        return out
    _after_upsert(spec.name, changed)
    out.created, out.updated = len(created), len(updated)
    out.touched_ids = sorted(created | updated)
    return out


def _rejected(report: ImportReport) -> ImportRejected:
    return ImportRejected(
        f"{report.rejected} 个要素未通过检查，整个文件未导入（可用 --partial 只导入合格要素）",
        issues=report.issues,
        report=report,
    )


def units_import(
    *,
    level: str,
    path: str | Path,
    crs: str | None = None,
    code_field: str = "code",
    name_field: str = "name",
    layer: str | None = None,
    valid_from: date | None = None,
    partial: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import one file of spatial units of `level`; see the module docstring for the rules.

    Returns the report (counts and per-feature issues). Raises ImportRejected (a GridError) when
    the file cannot be read, or when any feature is rejected and `partial` is false; in both
    cases nothing has been written.
    """
    say = progress or (lambda _text: None)
    spec = LEVELS.get(level)
    if spec is None:
        raise ImportRejected(f"未知的单元层级“{level}”，可用：{'、'.join(LEVELS)}", code="level_unknown")
    path = Path(path)
    declared = _declared_crs(crs)  # before reading: a typo in --crs should not cost a large read
    say(f"读取：{path.name}")
    source = source_read(path=path, layer=layer)
    source_crs = _source_crs(source, declared)
    geoms = _to_wgs84(source.geoms, source_crs)
    report = ImportReport(level=level, path=str(path), total=len(source.frame))
    say(f"校验：{report.total} 个要素")
    features, report.issues = features_check(
        spec=spec, source=source, geoms=geoms, code_field=code_field, name_field=name_field
    )
    say(f"写入：{len(features)} 个要素")
    note = f"导入 {path.name}"[:200]
    with transaction.atomic():
        written = _write(
            spec,
            features,
            partial=partial,
            rejected=bool(report.errors),
            valid_from=valid_from or timezone.localdate(),
            note=note,
        )
        report.issues = sorted(
            report.issues + written.rejects + written.warnings, key=lambda i: (i.index or 0, i.severity)
        )
        if report.errors and (written.refused or not partial):
            raise _rejected(report)
        report.created, report.updated = written.created, written.updated
        report.unchanged = report.total - report.rejected - report.created - report.updated
        crs_text = source_crs if isinstance(source_crs, str) else source_crs.to_string()
        _audit_import(spec, report, path=path, crs=crs_text, touched_ids=written.touched_ids)
    return report


# The audit row names the codes an import created or changed; a district-wide file touches tens of
# thousands, so the row lists the first ones and the count says how many there were.
MAX_AUDITED_CODES = 200
LEVEL_MODELS: dict[str, type[Model]] = {
    "street": Street,
    "community": Community,
    "grid": GridCell,
    "building": Building,
    "service_centre": ServiceCentre,
}


def _street_of_codes(level: str, codes: list[str]) -> int | None:
    """The street of every touched unit when it is one street (so its administrators see the row).

    Codes start with the 9-digit street code (building and centre codes need not: no street then).
    """
    if level not in ("street", "community", "grid") or not codes:
        return None
    prefixes = {c[:9] for c in codes}
    if len(prefixes) != 1:
        return None
    return Street.objects.filter(code=prefixes.pop()).values_list("pk", flat=True).first()


def _audit_import(
    spec: LevelSpec, report: ImportReport, *, path: Path, crs: str | None, touched_ids: list[int]
) -> None:
    model = LEVEL_MODELS[spec.name]
    codes = sorted(model._default_manager.filter(pk__in=touched_ids).values_list("code", flat=True))
    audit_record(
        action=AuditEvent.Action.IMPORT,
        object_type=model._meta.label,
        summary=f"导入{spec.label}文件 {path.name}：共{report.total}个要素，新增{report.created}，"
        f"更新{report.updated}，未变{report.unchanged}，拒绝{report.rejected}",
        changes={
            "file": path.name,
            "level": spec.name,
            "crs": crs,
            "total": report.total,
            "created": report.created,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "rejected": report.rejected,
            "repaired": report.repaired,
            "codes": codes[:MAX_AUDITED_CODES],
            "codes_truncated": len(codes) > MAX_AUDITED_CODES,
        },
        street_id=_street_of_codes(spec.name, codes),
    )
