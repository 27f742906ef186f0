"""The offline map (网格作战图) as one HTML file: folium, with every asset inlined.

It must open from a USB stick on a machine with no server and no network (government intranets are
often cut off, DOMAIN.md). folium's default template loads Leaflet, jQuery, Bootstrap, Font Awesome
and Glyphicons from CDNs (`folium.Map.default_js` / `default_css`); `OfflineMap` empties both
lists and the page carries Leaflet's own JS and CSS (set-up installs them in the static files,
vendor/leaflet) as inline <script>/<style> blocks, its control images as data: URIs. Nothing else
from folium that needs jQuery or a CDN is used: no Popup (it parses its HTML with jQuery), no
Icon (Font Awesome / Glyphicon fonts), no plugins; points are CircleMarkers and labels are
Leaflet tooltips.

The data is inlined as GeoJSON, one layer per kind of thing. folium is known to fail when a page
inlines a large layer (folium #1399: 150k markers, a 135 MB blank page; #787: gigabytes of
memory), so this map is built for one grid cell or one community only (a few hundred buildings,
well under a megabyte); the street and district maps are the dashboard's vector tiles.

This module renders; it reads nothing from the database (mapping.exports selects the features,
scoped by the caller's reach, and audits the export). Every text that ends up as HTML is escaped:
the title and legend here, labels and details in the page's script (`wgBind`), because Leaflet
inserts tooltip and popup strings as innerHTML.
"""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import folium
from django.contrib.staticfiles import finders
from folium.utilities import JsCode
from jinja2 import Template

from edge.errors import DomainError

# Where set-up puts Leaflet (ops/lib/setup.sh → ops/static_vendor/leaflet, served as vendor/).
LEAFLET_JS = "vendor/leaflet/leaflet.js"
LEAFLET_CSS = "vendor/leaflet/leaflet.css"

# Below this zoom the labels of building groups are hidden: at a whole community's zoom they
# would cover each other and the buildings (Leaflet places labels without collision checks).
MINOR_LABELS_FROM_ZOOM = 18
FONT = '"PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif'

# Building status → (legend text, fill colour). The statuses are the buildings tile layer's.
BUILDING_STATUS: dict[str, tuple[str, str]] = {
    "members_without_group": ("有党员未建党小组", "#d7301f"),
    "not_visited": ("超期未走访", "#fd8d3c"),
    "has_group": ("已建楼栋党小组", "#3182bd"),
    "other": ("其他楼栋", "#bdbdbd"),
}
# Organisation kind → (legend text, fill colour, radius in pixels).
ORG_STYLE: dict[str, tuple[str, str, int]] = {
    "grid_branch": ("网格党支部", "#b10026", 9),
    "building_group": ("楼栋党小组", "#fc4e2a", 6),
}
# Gap severity (mapping.models.Gap.Severity) → (legend text, colour).
GAP_SEVERITY: dict[int, tuple[str, str]] = {
    3: ("严重缺口", "#67000d"),
    2: ("一般缺口", "#e31a1c"),
    1: ("提示", "#feb24c"),
}


class OfflineAssetsMissing(DomainError):
    """Leaflet is not installed in the static files: a server set-up problem, not the caller's."""

    code = "offline_assets_missing"
    status = 503


class OfflineMap(folium.Map):
    """folium's Map without its CDN links: the page gets Leaflet inline instead (`_inline_assets`)."""

    default_js: list[tuple[str, str]] = []
    default_css: list[tuple[str, str]] = []


@dataclass(frozen=True)
class MapFeature:
    """One thing drawn: a GeoJSON geometry (WGS-84), what its style depends on, a permanent label
    and the details shown on hover (or on click when it has a label). Texts are plain text."""

    geometry: dict[str, Any]
    style_key: str = ""
    label: str = ""
    title: str = ""
    details: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class MapContent:
    """What the map shows, selected and scoped by mapping.exports."""

    title: str
    subtitle: str
    outline: MapFeature
    cells: list[MapFeature] = field(default_factory=list)
    buildings: list[MapFeature] = field(default_factory=list)
    organisations: list[MapFeature] = field(default_factory=list)
    gap_areas: list[MapFeature] = field(default_factory=list)
    gap_points: list[MapFeature] = field(default_factory=list)
    # (min lon, min lat, max lon, max lat) of the unit.
    bounds: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    basemap_url: str = ""
    basemap_attribution: str = ""


# --------------------------------------------------------------------------------------------
# Assets
# --------------------------------------------------------------------------------------------


def _static_file(path: str) -> Path:
    found = finders.find(path)
    if not found:
        raise OfflineAssetsMissing(
            "服务器缺少离线地图所需的 Leaflet 文件，请管理员运行安装脚本（ops/up）后重试",
            detail={"file": path},
        )
    return Path(found if isinstance(found, str) else found[0])


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


@cache
def _leaflet_assets() -> tuple[str, str]:
    """Leaflet's JS and CSS, the CSS's images (layer switcher, default marker) as data: URIs so
    that a page opened from file:// asks for nothing. Read once per process."""
    js_path, css_path = _static_file(LEAFLET_JS), _static_file(LEAFLET_CSS)
    js = js_path.read_text(encoding="utf-8")
    css = css_path.read_text(encoding="utf-8")

    def inline(match: re.Match[str]) -> str:
        image = css_path.parent / match.group(1)
        return f"url({_data_uri(image)})" if image.is_file() else match.group(0)

    css = re.sub(r"url\((images/[\w.-]+\.png)\)", inline, css)
    # Its comments are notes on browser bugs (with links to their trackers): not needed offline.
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    # Inline blocks end at the first "</script" or "</style" whatever the context.
    if "</script" in js.lower() or "</style" in css.lower():
        raise OfflineAssetsMissing("Leaflet 文件无法内嵌（含结束标记）", detail={"file": LEAFLET_JS})
    return js, css


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

# How a feature's label and details become Leaflet tooltips: a permanent one for the label, the
# details on hover, or on click (popup) when a label is shown. Properties are compact (`l` label,
# `t` title, `v` the values in the order of the layer's field names, `k` the style key), and the
# HTML is made here, escaping every text: Leaflet inserts tooltip strings as innerHTML.
_PAGE_JS = """
<script>
function wgEsc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
        return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
}
function wgBind(feature, layer, fields, dir, cls, minorKeys) {
    var p = feature.properties, rows = "";
    (p.v || []).forEach(function (v, i) {
        if (v !== "" && v !== null) { rows += "<tr><th>" + wgEsc(fields[i]) + "</th><td>" + wgEsc(v) + "</td></tr>"; }
    });
    var info = (p.t ? "<b>" + wgEsc(p.t) + "</b>" : "") + (rows ? "<table>" + rows + "</table>" : "");
    if (p.l) {
        layer.bindTooltip(wgEsc(p.l), {permanent: true, direction: dir, offset: {right: [8, 0], top: [0, -8]}[dir] || [0, 0],
            className: "wg-label " + cls + (minorKeys.indexOf(p.k) >= 0 ? " wg-label-minor" : "")});
    }
    if (info) {
        if (p.l) { layer.bindPopup(info); } else { layer.bindTooltip(info, {sticky: true, className: "wg-info"}); }
    }
}
</script>
"""


class _PageScript(folium.MacroElement):
    """The page's own script after the map's: hides minor labels when zoomed out."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function (map) {
            function zoomed() {
                map.getContainer().classList.toggle("wg-zoomed-out", map.getZoom() < {{ this.minor_from }});
            }
            map.on("zoomend", zoomed);
            zoomed();
        })({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, minor_from: int) -> None:
        super().__init__()
        self._name = "PageScript"
        self.minor_from = int(minor_from)


def _collection(features: list[MapFeature]) -> tuple[dict[str, Any], list[str]]:
    """The layer's FeatureCollection and its field names (every feature of a layer has the same)."""
    fields = [name for name, _value in features[0].details]
    out = []
    for i, f in enumerate(features, start=1):
        if [name for name, _value in f.details] != fields:
            raise ValueError(f"features of one layer must have the same details: {fields}")
        props: dict[str, Any] = {"k": f.style_key, "v": [value for _name, value in f.details]}
        if f.label:
            props["l"] = f.label
        if f.title:
            props["t"] = f.title
        out.append({"type": "Feature", "id": i, "geometry": f.geometry, "properties": props})
    return {"type": "FeatureCollection", "features": out}, fields


def _layer(
    m: folium.Map,
    name: str,
    features: list[MapFeature],
    styles: dict[str, dict[str, Any]],
    *,
    marker: folium.CircleMarker | None = None,
    label_dir: str = "center",
    label_cls: str = "",
    minor_keys: tuple[str, ...] = (),
) -> None:
    if not features:
        return
    data, fields = _collection(features)
    args = ", ".join(
        json.dumps(a, ensure_ascii=False) for a in (fields, label_dir, label_cls, list(minor_keys))
    )
    folium.GeoJson(
        data,
        name=name,
        style_function=lambda feat: styles[feat["properties"]["k"]],
        marker=marker,
        on_each_feature=JsCode(f"function (feature, layer) {{ wgBind(feature, layer, {args}); }}"),
    ).add_to(m)


def _legend_html(content: MapContent) -> str:
    def swatch(style: str) -> str:
        return f'<i style="{style}"></i>'

    def counted(features: list[MapFeature]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for f in features:
            counts[f.style_key] = counts.get(f.style_key, 0) + 1
        return counts

    rows = [f"{swatch('border:3px solid #08306b')}本单元边界"]
    if content.cells:
        rows.append(f"{swatch('border:2px dashed #4292c6')}网格（{len(content.cells)}）")
    buildings = counted(content.buildings)
    rows += [
        f"{swatch(f'background:{colour};border:1px solid #555')}{html.escape(text)}（{buildings.get(key, 0)}）"
        for key, (text, colour) in BUILDING_STATUS.items()
    ]
    orgs = counted(content.organisations)
    rows += [
        f"{swatch(f'background:{colour};border-radius:50%')}{html.escape(text)}（{orgs.get(key, 0)}）"
        for key, (text, colour, _radius) in ORG_STYLE.items()
    ]
    gaps = counted([*content.gap_points, *content.gap_areas])
    rows += [
        f"{swatch(f'background:#fff;border:3px solid {colour};border-radius:50%')}{html.escape(text)}"
        f"（{gaps.get(str(severity), 0)}）"
        for severity, (text, colour) in GAP_SEVERITY.items()
    ]
    body = "".join(f"<div>{r}</div>" for r in rows)
    return (
        f'<div class="wg-title"><h1>{html.escape(content.title)}</h1>'
        f"<div>{html.escape(content.subtitle)}</div></div>"
        f'<div class="wg-legend"><b>图例</b>{body}'
        '<div class="wg-note">悬停查看详情，点击党组织查看信息；虚线框为范围类缺口</div></div>'
    )


_PAGE_CSS = f"""
<style>
  body, .leaflet-container {{ font-family: {FONT}; }}
  .leaflet-container {{ background: #f4f1ea; }}
  .wg-title {{ position: fixed; top: 10px; left: 50%; transform: translateX(-50%); z-index: 1000;
    background: rgba(255,255,255,.92); padding: 6px 14px; border-radius: 6px;
    box-shadow: 0 1px 4px rgba(0,0,0,.3); text-align: center; font-size: 13px; color: #333; }}
  .wg-title h1 {{ margin: 0 0 2px; font-size: 18px; color: #b10026; }}
  .wg-legend {{ position: fixed; bottom: 16px; right: 10px; z-index: 1000; background: rgba(255,255,255,.94);
    padding: 8px 10px; border-radius: 6px; box-shadow: 0 1px 4px rgba(0,0,0,.3); font-size: 12px;
    line-height: 20px; color: #222; }}
  .wg-legend i {{ display: inline-block; width: 14px; height: 14px; margin-right: 6px; vertical-align: -3px;
    box-sizing: border-box; }}
  .wg-note {{ color: #777; margin-top: 4px; }}
  .wg-label {{ background: rgba(255,255,255,.85); border: 0; box-shadow: none; padding: 0 3px;
    font-size: 12px; color: #08306b; font-weight: bold; }}
  .wg-label::before {{ display: none; }}
  .wg-label-org {{ color: #7f0000; }}
  .wg-label-minor {{ font-weight: normal; }}
  .wg-zoomed-out .wg-label-minor {{ display: none; }}
  .wg-info table {{ border-collapse: collapse; }}
  .wg-info th, .leaflet-popup-content th {{ text-align: left; padding-right: 8px; color: #555; font-weight: normal; }}
  @media print {{ .leaflet-control-container {{ display: none; }} }}
</style>
"""


def offline_map_html(content: MapContent) -> str:
    """The whole page. Raises OfflineAssetsMissing when Leaflet is not installed."""
    js, css = _leaflet_assets()
    min_lon, min_lat, max_lon, max_lat = content.bounds
    m = OfflineMap(
        location=[(min_lat + max_lat) / 2, (min_lon + max_lon) / 2],
        zoom_start=16,
        tiles=None,
        control_scale=True,
        attributionControl=bool(content.basemap_url),
        maxZoom=20,
        minZoom=10,
    )
    root: Any = m.get_root()  # a branca Figure (typed as Element)
    root.title = html.escape(content.title)
    root.header.add_child(folium.Element(f"<style>{css}</style>"), name="leaflet_css")
    root.header.add_child(folium.Element(f"<script>{js}</script>"), name="leaflet_js")
    root.header.add_child(folium.Element(_PAGE_CSS), name="wangge_css")
    root.header.add_child(folium.Element(_PAGE_JS), name="wangge_js")
    root.html.add_child(folium.Element(_legend_html(content)), name="wangge_legend")

    if content.basemap_url:
        # Optional and off by default: it shows only where the intranet tile server answers, and
        # a file opened from a USB stick must ask for nothing unless the user turns it on.
        folium.TileLayer(
            tiles=content.basemap_url,
            attr=html.escape(content.basemap_attribution or "底图"),
            name="底图（需连接内网）",
            overlay=True,
            show=False,
            max_zoom=20,
        ).add_to(m)

    cell_style = {
        "": {"className": "wg-cell", "color": "#4292c6", "weight": 1.5, "dashArray": "6 4", "fill": False}
    }
    # Above the centre: a grid branch's marker and label sit on the cell's centre.
    _layer(m, "网格", content.cells, cell_style, label_dir="top", label_cls="wg-label-cell")
    outline_style = {"": {"className": "wg-outline", "color": "#08306b", "weight": 3, "fill": False}}
    _layer(m, "边界", [content.outline], outline_style, label_cls="wg-label-unit")
    building_styles = {
        key: {
            "className": "wg-building",
            "color": "#555",
            "weight": 0.6,
            "fillColor": colour,
            "fillOpacity": 0.75,
        }
        for key, (_text, colour) in BUILDING_STATUS.items()
    }
    _layer(m, "楼栋（按状态着色）", content.buildings, building_styles)
    gap_area_styles = {
        str(sev): {
            "className": "wg-gap wg-gap-area",
            "color": colour,
            "weight": 2.5,
            "dashArray": "4 4",
            "fillColor": colour,
            "fillOpacity": 0.06,
        }
        for sev, (_text, colour) in GAP_SEVERITY.items()
    }
    _layer(m, "缺口（范围）", content.gap_areas, gap_area_styles)
    gap_point_styles = {
        str(sev): {
            "className": "wg-gap wg-gap-point",
            "color": colour,
            "weight": 3,
            "fill": True,
            "fillColor": "#ffffff",
            "fillOpacity": 0.7,
            "radius": 7,
        }
        for sev, (_text, colour) in GAP_SEVERITY.items()
    }
    _layer(m, "缺口（对象）", content.gap_points, gap_point_styles, marker=folium.CircleMarker(radius=7))
    org_styles = {
        key: {
            "className": "wg-org",
            "color": "#ffffff",
            "weight": 1.5,
            "fill": True,
            "fillColor": colour,
            "fillOpacity": 1,
            "radius": radius,
        }
        for key, (_text, colour, radius) in ORG_STYLE.items()
    }
    _layer(
        m,
        "党组织",
        content.organisations,
        org_styles,
        marker=folium.CircleMarker(radius=6),
        label_dir="right",
        label_cls="wg-label-org",
        minor_keys=("building_group",),
    )
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    m.fit_bounds([[min_lat, min_lon], [max_lat, max_lon]], padding=(20, 20))
    _PageScript(MINOR_LABELS_FROM_ZOOM).add_to(m)
    page = root.render()
    # folium's figure has no language attribute; browsers pick CJK fonts and screen readers the
    # voice by it.
    return page.replace("<html>", '<html lang="zh-CN">', 1)
