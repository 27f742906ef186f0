"""`/tiles/{layer}/{z}/{x}/{y}.mvt`: the map's vector tiles over HTTP (mapping.tiles does the work).

Signed in as for the API (session or token; 401/403 otherwise, in the API's error shape); a tile
is binary `application/vnd.mapbox-vector-tile`, an error is JSON whatever the client accepts
(MapLibre asks for any type). `Cache-Control: private, no-cache`: no shared cache may keep one
user's tile, and the browser revalidates every time, so a fix shows on the next pan, for the
price of a 304 when nothing changed.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.urls import path
from django.utils.cache import patch_vary_headers
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request

from edge.api import ReachAPIView, parse_query
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


# Included by ops/urls.py at tiles/. z, x and y are taken as text so that a bad value is the
# tile's own 400 with its code, not the URL resolver's HTML 404.
urlpatterns = [
    path("<str:layer>/<str:z>/<str:x>/<str:y>.mvt", TileView.as_view(), name="tile"),
]
