"""Downloads of the street office's page (/dashboard/export/…): the gap list as Excel or GeoJSON,
the indicator table as Excel, the offline map of a grid cell or community as one HTML file.

Thin: each view parses its query string, calls one function of mapping.exports (which scopes by
the caller's reach and writes the audit row) and answers the bytes as an attachment. Signed in as
for the API (session or token): anonymous is a 401, a user without a reading role a 403, a unit
outside the reach a 404 like a missing one, a bad parameter a 400 with a stable code and a Chinese
message, all in the API's error shape (JSON, whatever the browser accepts).

These are page downloads, not API operations: they stay out of the OpenAPI schema.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request

from edge.api import ReachAPIView, parse_bbox, parse_query
from mapping import exports, indicators
from mapping.apis import GapListApi
from mapping.indicator_apis import (
    DEFAULT_HISTORY_DAYS,
    IndicatorQuerySerializer,
    check_history_range,
    days_before,
)


class _ErrorsAsJSON(BaseContentNegotiation):
    """The file is written by the view; what DRF renders is only ever an error, as JSON (a browser
    following a download link asks for text/html, which would otherwise be a 406)."""

    def select_parser(self, request: Any, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Any, renderers: Any, format_suffix: Any = None) -> Any:
        return renderers[0], renderers[0].media_type


def attachment(file: exports.ExportFile) -> HttpResponse:
    """The file as a download. The name is Chinese: RFC 6266/5987 `filename*` carries it in UTF-8,
    and an ASCII `filename` stands in for clients that know only that form."""
    response = HttpResponse(file.content, content_type=file.content_type)
    ascii_name = "wangge-export." + file.filename.rsplit(".", 1)[-1]
    response["Content-Disposition"] = (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(file.filename)}"
    )
    response["Content-Length"] = str(len(file.content))
    response["X-Export-Count"] = str(file.count)
    # One user's reach in the file: no shared cache may keep it.
    response["Cache-Control"] = "private, no-store"
    return response


@extend_schema(exclude=True)
class _ExportView(ReachAPIView):
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _ErrorsAsJSON


# A unit code's length says its level (CJ/T 349: 6-digit area + 3 street + 3 community + 3 grid).
_UNIT_FILTER_BY_LENGTH = {9: "street", 12: "community", 15: "grid_cell"}


class GapExportFilterSerializer(GapListApi.FilterSerializer):
    """The filters of GET /api/gaps/, and `unit`: the code of the street, community or grid cell
    the page shows (the dashboard's own parameter), the same as giving it as street, community
    or grid_cell. The page's other state in the query string (layers, map view…) is ignored."""

    unit = serializers.CharField(
        required=False, max_length=15, help_text="单元编码：街道9位、社区12位或网格15位"
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unit = attrs.pop("unit", None)
        if unit:
            level = _UNIT_FILTER_BY_LENGTH.get(len(unit)) if unit.isascii() and unit.isdigit() else None
            if level is None:
                raise serializers.ValidationError(
                    {"unit": ["应为街道（9位）、社区（12位）或网格（15位）编码"]}
                )
            if attrs.get(level, unit) != unit:
                raise serializers.ValidationError({"unit": [f"与 {level} 参数指向不同的单元"]})
            attrs[level] = unit
        return attrs


def _gap_filters(request: Request) -> tuple[dict[str, Any], Any]:
    return parse_query(GapExportFilterSerializer, request), parse_bbox(request.query_params.get("in_bbox"))


class GapsXlsxExportView(_ExportView):
    """覆盖缺口清单 (Excel): the filters of GET /api/gaps/ (or the page's unit), the whole list."""

    def get(self, request: Request) -> HttpResponse:
        filters, bbox = _gap_filters(request)
        return attachment(exports.gaps_xlsx_export(reach=self.reach, filters=filters, bbox=bbox))


class GapsGeoJsonExportView(_ExportView):
    """覆盖缺口清单 (GeoJSON): the same list, each gap a feature."""

    def get(self, request: Request) -> HttpResponse:
        filters, bbox = _gap_filters(request)
        return attachment(exports.gaps_geojson_export(reach=self.reach, filters=filters, bbox=bbox))


class IndicatorsXlsxExportView(_ExportView):
    """覆盖指标 (Excel): ?unit=CODE[&from=&to=], the unit with its children and its daily history;
    the parameters and their answers are those of GET /api/indicators/."""

    def get(self, request: Request) -> HttpResponse:
        params = parse_query(IndicatorQuerySerializer, request)
        date_to = params.get("to") or timezone.localdate()
        date_from = params.get("from") or days_before(date_to, DEFAULT_HISTORY_DAYS - 1)
        check_history_range(date_from, date_to)
        unit = indicators.indicator_unit_get(reach=self.reach, code=params["unit"])
        return attachment(exports.indicators_xlsx_export(unit=unit, date_from=date_from, date_to=date_to))


class OfflineMapExportView(_ExportView):
    """网格作战图 (offline HTML): ?unit=CODE of a grid cell or a community."""

    class UnitSerializer(serializers.Serializer):
        unit = serializers.CharField(max_length=32, help_text="网格（15位）或社区（12位）编码")

    def get(self, request: Request) -> HttpResponse:
        params = parse_query(self.UnitSerializer, request)
        unit = exports.offline_map_unit_get(reach=self.reach, code=params["unit"])
        return attachment(exports.offline_map_export(reach=self.reach, unit=unit))
