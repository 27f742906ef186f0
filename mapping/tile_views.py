"""`/tiles/{layer}/{z}/{x}/{y}.mvt`: the map's vector tiles over HTTP (mapping.tiles does the work).

Signed in as for the API (session or token; 401/403 otherwise, in the API's error shape); a tile
is binary `application/vnd.mapbox-vector-tile`, an error is JSON whatever the client accepts
(MapLibre asks for any type). `Cache-Control: private, no-cache`: no shared cache may keep one
user's tile, and the browser revalidates every time, so a fix shows on the next pan, for the
price of a 304 when nothing changed.

A page pans through hundreds of tiles, most of them cached. TileCacheMiddleware answers those
before Django loads the session and the user, from Redis alone (three round trips, no SQL):
- who is asking: after the view signed a caller in (DRF, session or token) it keeps their user
  and reach under a hash of the credential for CALLER_SECONDS, with the roles epoch the reach
  was read under (grid.reach_cache); a grant or revoke replaces the epoch, so the next request
  goes through the view again. What the TTL bounds: a token deleted, a session ended or a user
  made inactive is still answered from cache for up to CALLER_SECONDS (tiles only: every other
  endpoint signs in each time);
- what the tile depends on: mapping.tiles.cached_only (versions and the set of communities from
  Redis, then the tile itself);
- anything missing, or anything else (a chosen visit period, a layer with extras, another
  credential, a bad address): the request goes on to the view, which answers as it always did,
  reusing what the middleware read (read before the database, as the view would have) and
  sending its Redis writes (the tile, the caller, the reach, the communities' set and versions)
  as one pipeline when the response is ready: four round trips for a tile rendered from scratch.
A matching If-None-Match is a 304 from the same look-ups.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import NoReverseMatch, path, re_path, reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from redis.exceptions import RedisError
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request

from edge.api import UNAUTHENTICATED_RESPONSE, ReachAPIView, parse_query
from edge.errors import DomainError
from grid import fastcache, reach_cache
from grid import versions as community_versions
from grid.access import Reach
from mapping import tiles

# How long a signed-in caller is recognised by their credential alone (module docstring).
CALLER_SECONDS = 30


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


def tile_response(request: HttpRequest, tile: tiles.Tile) -> HttpResponse:
    """The tile as this request asked for it: gzip or not, 304 when its tag matches."""
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


# --- signed-in callers, recognised by their credential (module docstring) ---------------------------


def _credential(request: HttpRequest) -> str | None:
    """The credential DRF would sign this request in with: a token (DRF's TokenAuthentication
    reads the Authorization header first), else the session cookie. Any other Authorization
    scheme: None (the view decides)."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        parts = header.split()
        if len(parts) == 2 and parts[0].lower() == "token":
            return f"token:{parts[1]}"
        return None
    session = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    return f"session:{session}" if session else None


def _caller_key(credential: str) -> str:
    return "tiles:caller:" + hashlib.sha256(credential.encode()).hexdigest()[:40]


def _remember_caller(request: Request, reach: Reach, epoch: str | None, batch: fastcache.Batch) -> None:
    """After DRF signed the request in by token or session: keep who it was (module docstring)."""
    if epoch is None:
        return
    authenticator = request.successful_authenticator
    if isinstance(authenticator, TokenAuthentication):
        credential = f"token:{request.auth.key}"
    elif isinstance(authenticator, SessionAuthentication):
        cookie = request._request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        if not cookie:
            return
        credential = f"session:{cookie}"
    else:
        return
    batch.set(_caller_key(credential), (request.user.pk, epoch, reach), timeout=CALLER_SECONDS)


def _tile_path() -> re.Pattern[str] | None:
    """The tile URL as a pattern, from where the URLconf put the view (None if it did not)."""
    try:
        sample = reverse("tile", kwargs={"layer": "layer", "z": "0", "x": "0", "y": "0"})
    except NoReverseMatch:
        return None
    prefix = sample.removesuffix("layer/0/0/0.mvt")
    return re.compile(
        rf"^{re.escape(prefix)}(?P<layer>[a-z_]+)/(?P<z>\d{{1,2}})/(?P<x>\d{{1,7}})/(?P<y>\d{{1,7}})\.mvt$"
    )


def answer_from_cache(request: HttpRequest, path: re.Pattern[str]) -> HttpResponse | None:
    """The response to a tile request from Redis alone, or None (module docstring)."""
    match = path.match(request.path)
    if match is None:
        return None
    try:
        address = tiles.tile_address(**match.groupdict())
    except DomainError:
        return None
    if address.layer.depends or (
        address.layer.takes_period and ("since" in request.GET or "until" in request.GET)
    ):
        return None
    credential = _credential(request)
    if credential is None:
        return None
    caller_key = _caller_key(credential)
    try:
        keys = [
            caller_key,
            reach_cache.ROLES_EPOCH_KEY,
            community_versions.OUTLINES_KEY,
            tiles.touched_key(address),
        ]
        found = fastcache.get_many(keys)
        # What the view may use if this look-up falls short (None: asked, not there): read before
        # the database, as the view would have read them itself.
        request._tile_lookups = {k: found.get(k) for k in keys}  # type: ignore[attr-defined]
        caller = found.get(caller_key)
        if not (
            isinstance(caller, tuple)
            and len(caller) == 3
            and isinstance(found.get(reach_cache.ROLES_EPOCH_KEY), str)
            and caller[1] == found[reach_cache.ROLES_EPOCH_KEY]
            and isinstance(caller[2], Reach)
            and caller[2].can_read()
        ):
            return None
        tile = tiles.cached_only(reach=caller[2], address=address, found=found, today=timezone.localdate())
    except RedisError:
        return None
    return None if tile is None else tile_response(request, tile)


class TileCacheMiddleware:
    """Answers cached tiles before the session and sign-in middleware run (module docstring).
    In settings.MIDDLEWARE after SecurityMiddleware (its redirects and headers still apply) and
    before SessionMiddleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.path: re.Pattern[str] | None = None
        self.path_read = False

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "GET":
            if not self.path_read:
                # Not in __init__: the URLconf may not be loadable yet when the middleware is built.
                self.path, self.path_read = _tile_path(), True
            response = answer_from_cache(request, self.path) if self.path is not None else None
            if response is not None:
                return response
        return self.get_response(request)


class TileView(ReachAPIView):
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONErrorsOnly
    roles_epoch: str | None = None
    # Redis writes of this request, sent as one pipeline when the response is ready.
    batch: fastcache.Batch | None = None

    def _lookups(self) -> dict[str, Any] | None:
        return getattr(self.request._request, "_tile_lookups", None)

    def _batch(self) -> fastcache.Batch:
        if self.batch is None:
            self.batch = fastcache.Batch()
        return self.batch

    @property
    def reach(self) -> Any:
        # The caller's reach from grid.reach_cache (a tile's cache hit then asks the database
        # nothing beyond signing in), kept on the request as grid.access.reach_of_request does.
        found = getattr(self.request, "_wangge_reach", None)
        if found is None:
            known = (self._lookups() or {}).get(reach_cache.ROLES_EPOCH_KEY)
            found, self.roles_epoch = reach_cache.cached_reach(
                self.request.user, known=known, batch=self._batch()
            )
            self.request._wangge_reach = found  # type: ignore[attr-defined]
        return found

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        if self.batch is not None:
            self.batch.send()
        return super().finalize_response(request, response, *args, **kwargs)

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
        tile = tiles.tile_for(
            reach=self.reach, address=address, known=self._lookups(), batch=self._batch(), **period
        )
        _remember_caller(request, self.reach, self.roles_epoch, self._batch())
        return tile_response(request, tile)


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
