"""`/tiles/{layer}/{z}/{x}/{y}.mvt`: the map's vector tiles over HTTP (mapping.tiles does the work).

Signed in as for the API (session or token; 401/403 otherwise, in the API's error shape); a tile
is binary `application/vnd.mapbox-vector-tile`, an error is JSON whatever the client accepts
(MapLibre asks for any type). `Cache-Control: private, no-cache`: no shared cache may keep one
user's tile, and the browser revalidates every time, so a fix shows on the next pan, for the
price of a 304 when nothing changed.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse, JsonResponse
from django.urls import path, re_path
from django.utils.cache import patch_vary_headers
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request

from edge.api import UNAUTHENTICATED_RESPONSE, ReachAPIView, parse_query
from mapping import tiles


class JSONErrorsOnly(BaseContentNegotiation):
    """A tile is written as bytes by the view; what DRF renders is only ever an error, as JSON."""

    def select_parser(self, request: Any, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Any, renderers: Any, format_suffix: Any = None) -> Any:
        return renderers[0], renderers[0].media_type


class VisitPeriodSerializer(serializers.Serializer):
    since = serializers.DateField(required=False)
    until = serializers.DateField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        since, until = attrs.get("since"), attrs.get("until")
        if since and until and since > until:
            raise serializers.ValidationError({"since": ["开始日期不能晚于结束日期"]})
        return attrs


def _accepts_gzip(accept_encoding: str) -> bool:
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() in ("gzip", "*"):
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _matches(if_none_match: str, etag: str) -> bool:
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


class TileView(ReachAPIView):
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONErrorsOnly

    @extend_schema(
        operation_id="tile_retrieve",
        tags=["地图瓦片"],
        summary="矢量瓦片",
        description=(
            "Mapbox Vector Tile（MVT），按调用者的可访问范围裁剪：范围外的要素不会出现在瓦片中。"
            "图层：" + "、".join(f"{name}（{layer.title}）" for name, layer in tiles.LAYERS.items()) + "。"
            "走访和驻点图层可用 since/until 选择日期范围（默认为走访周期内）。"
            "响应带 ETag，可用 If-None-Match 重新验证（304）；接受 gzip 时以 gzip 压缩返回。"
        ),
        parameters=[
            OpenApiParameter("layer", OpenApiTypes.STR, OpenApiParameter.PATH, enum=sorted(tiles.LAYERS)),
            OpenApiParameter(
                "z", OpenApiTypes.INT, OpenApiParameter.PATH, description=f"缩放级别 0–{tiles.MAX_ZOOM}"
            ),
            OpenApiParameter("x", OpenApiTypes.INT, OpenApiParameter.PATH, description="列号 0 至 2^z−1"),
            OpenApiParameter("y", OpenApiTypes.INT, OpenApiParameter.PATH, description="行号 0 至 2^z−1"),
            VisitPeriodSerializer,
        ],
        responses={
            (200, tiles.CONTENT_TYPE): OpenApiResponse(
                OpenApiTypes.BINARY, description="MVT 瓦片（可能为空）"
            ),
            304: OpenApiResponse(description="瓦片未变化（If-None-Match 与 ETag 相同）"),
            400: OpenApiResponse(
                description="瓦片地址或日期有误：{code: tile_out_of_range|invalid_input, message}"
            ),
            401: UNAUTHENTICATED_RESPONSE,
            403: OpenApiResponse(description="没有可访问的范围：{code: permission_denied, message}"),
            404: OpenApiResponse(description="没有该图层：{code: tile_layer_unknown, message, layers}"),
        },
    )
    def get(self, request: Request, layer: str, z: str, x: str, y: str) -> HttpResponse:
        address = tiles.tile_address(layer=layer, z=z, x=x, y=y)
        period = parse_query(VisitPeriodSerializer, request) if address.layer.takes_period else {}
        tile = tiles.tile_for(reach=self.reach, address=address, **period)
        gzipped = bool(tile.gzipped) and _accepts_gzip(request.headers.get("Accept-Encoding", ""))
        etag = tile.etag if gzipped else tile.etag_identity
        if _matches(request.headers.get("If-None-Match", ""), etag):
            response = HttpResponse(status=304)
        elif gzipped:
            response = HttpResponse(tile.gzipped, content_type=tiles.CONTENT_TYPE)
            response["Content-Encoding"] = "gzip"
        else:
            response = HttpResponse(tile.body, content_type=tiles.CONTENT_TYPE)
        response["ETag"] = etag
        response["Cache-Control"] = "private, no-cache"
        patch_vary_headers(response, ["Cookie", "Authorization", "Accept-Encoding"])
        return response


def tile_path_unknown(request: Any, rest: str = "") -> JsonResponse:
    """Any other path under /tiles/ (a part missing, no .mvt): the API's 404, not an HTML page."""
    return JsonResponse(
        {"code": "not_found", "message": "瓦片地址应为 /tiles/{图层}/{z}/{x}/{y}.mvt"}, status=404
    )


# Included by ops/urls.py at tiles/. z, x and y are taken as text so that a bad value is the
# tile's own 400 with its code, not the URL resolver's HTML 404.
urlpatterns = [
    path("<str:layer>/<str:z>/<str:x>/<str:y>.mvt", TileView.as_view(), name="tile"),
    re_path(r"^(?P<rest>.*)$", tile_path_unknown),
]
