"""What every app's API shares: the reach-aware view, query-string and body parsing, pagination,
the bbox filter, GeoJSON fields and the OpenAPI descriptions of the common answers.

A view parses with a nested serializer (`parse_query`, `parse_body`), asks a selector or calls one
service, and renders. It never writes, never opens a transaction: the service is the action.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date
from functools import cache
from typing import Any, Protocol

from django.conf import settings
from django.contrib.gis.geos import Polygon
from django.db.models import QuerySet
from django.utils.module_loading import import_string
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_gis.filters import InBBoxFilter
from rest_framework_gis.pagination import GeoJsonPagination

from edge.errors import DomainError, NotInReach


class ReachLike(Protocol):
    """What the edge needs of a user's reach (grid.access.Reach is the one implementation)."""

    def can(self, capability: str) -> bool: ...

    def can_read(self) -> bool: ...


@cache
def _resolvers() -> tuple[Callable[[Any], Any], Callable[[Request], None]]:
    # Wired by the project (ops/settings.py): the edge stands below the apps and names none of them.
    return (
        import_string(settings.WANGGE_REACH_OF_REQUEST),
        import_string(settings.WANGGE_AUDIT_ACTOR_FROM_REQUEST),
    )


def reach_of_request(request: Any) -> Any:
    """The reach of the request's user (computed once per request by the resolver)."""
    return _resolvers()[0](request)


class ReachAPIView(APIView):
    """An API view whose querysets are scoped by the caller's reach.

    Subclasses call `self.reach` in their selectors; `NotInReach` becomes the same 404 for missing
    and forbidden objects. A user without any reading role gets 403 on every endpoint.
    """

    # Capability needed for unsafe methods (POST, PUT, PATCH, DELETE); None = read-only view.
    write_capability: str | None = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        _resolvers()[1](request)
        reach = self.reach
        if not reach.can_read():
            raise exceptions.PermissionDenied("您的账号没有可访问的网格范围")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            if self.write_capability is None or not reach.can(self.write_capability):
                raise exceptions.PermissionDenied("您的角色不能执行此操作")

    @property
    def reach(self) -> Any:
        return reach_of_request(self.request)

    def handle_exception(self, exc: Exception) -> Any:
        if isinstance(exc, NotInReach):
            exc = exceptions.NotFound(NotInReach.message)
        return super().handle_exception(exc)


# --------------------------------------------------------------------------------------------
# Parsing: query strings and bodies
# --------------------------------------------------------------------------------------------


def parse_query(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    """Validate the query string; a bad value is a 400 `invalid_input` naming the parameter."""
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def parse_body(
    serializer_class: type[serializers.Serializer], request: Request, *, partial: bool = False
) -> dict[str, Any]:
    """Validate the request body; a bad value is a 400 `invalid_input` naming the field."""
    serializer = serializer_class(data=request.data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def invalid(field: str, message: str) -> exceptions.ValidationError:
    return exceptions.ValidationError({field: [message]})


def one_referenced(qs: QuerySet, field: str, **lookup: Any) -> Any:
    """The object a write refers to, looked up in a queryset already scoped to the caller's
    reach; missing and out of reach are the same `reference_not_found`."""
    obj = qs.filter(**lookup).first()
    if obj is None:
        raise _reference_not_found(field, next(iter(lookup.values())))
    return obj


def _reference_not_found(field: str, value: object) -> DomainError:
    return DomainError(
        f"{field} 指向的对象不存在或无权访问：{value}", code="reference_not_found", detail={"field": field}
    )


class MonthField(serializers.DateField):
    """A month as "YYYY-MM" (a full date is accepted and taken as its month)."""

    def to_internal_value(self, value: Any) -> date:
        text = str(value).strip()
        if len(text) == 7 and text[4] == "-":
            text += "-01"
        return super().to_internal_value(text).replace(day=1)

    def to_representation(self, value: Any) -> Any:
        return value.strftime("%Y-%m") if value else None


class GeoJSONPointField(serializers.Field):
    """A GeoJSON Point {"type": "Point", "coordinates": [lon, lat]} in the request's `crs`."""

    default_error_messages = {
        # Braces doubled: DRF formats error messages with str.format.
        "invalid": '应为 GeoJSON 点：{{"type": "Point", "coordinates": [经度, 纬度]}}',
    }

    def to_internal_value(self, data: Any) -> tuple[float, float]:
        if not isinstance(data, dict) or data.get("type") != "Point":
            self.fail("invalid")
        pair = data.get("coordinates")
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in pair)
        ):
            self.fail("invalid")
        try:
            lon, lat = float(pair[0]), float(pair[1])
        except OverflowError:
            # A JSON integer of hundreds of digits has no float: invalid, not a 500.
            self.fail("invalid")
        if not (math.isfinite(lon) and math.isfinite(lat)):
            self.fail("invalid")
        return lon, lat

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(
    {
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": ["Point"]},
            "coordinates": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
        },
        "required": ["type", "coordinates"],
    }
)
class DocumentedPointField(GeoJSONPointField):
    pass


# --------------------------------------------------------------------------------------------
# Pagination and the bbox filter
# --------------------------------------------------------------------------------------------


class ChinesePageErrors:
    """A page number that is no page ("abc", 0, past the end) stays DRF's 404, said in Chinese."""

    invalid_page_message = "页码 {page_number} 无效或超出范围"


class ListPagination(ChinesePageErrors, PageNumberPagination):
    """?page=&page_size= (default 100, at most 1000); answers {count, next, previous, results}."""

    page_size_query_param = "page_size"
    max_page_size = 1000

    def paginate_queryset(
        self, queryset: QuerySet | Sequence[Any], request: Request, view: APIView | None = None
    ) -> list[Any] | None:
        # Pages a queryset or a plain list alike (Django's Paginator slices either).
        return super().paginate_queryset(queryset, request, view)  # type: ignore[arg-type]  # stubs: QuerySet only


class FeaturePagination(ChinesePageErrors, GeoJsonPagination):
    """A page of features as a FeatureCollection with count/next/previous; ?page=&page_size=."""

    # A map of one street has a few thousand buildings; anything larger is an export, not a page.
    max_page_size = 1000

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        # `schema` is the FeatureCollection component (type + features); a page is that plus the
        # paging members. The library's own version still requires "results", which we never send.
        return {
            "allOf": [
                schema,
                {
                    "type": "object",
                    "required": ["count", "next", "previous"],
                    "properties": {
                        "count": {"type": "integer", "description": "符合条件的要素总数", "example": 123},
                        "next": {
                            "type": "string",
                            "format": "uri",
                            "nullable": True,
                            "description": "下一页地址",
                        },
                        "previous": {
                            "type": "string",
                            "format": "uri",
                            "nullable": True,
                            "description": "上一页地址",
                        },
                    },
                },
            ]
        }


class StrictInBBoxFilter(InBBoxFilter):
    """?in_bbox=minlon,minlat,maxlon,maxlat; features whose extent overlaps the box.

    The library accepts NaN, infinities and reversed corners, which end as a database error or an
    empty answer the client cannot explain; here they are a 400 saying what is wrong.
    """

    def get_filter_bbox(self, request: Request) -> Polygon | None:
        return parse_bbox(request.query_params.get(self.bbox_param), param=self.bbox_param)


def parse_bbox(text: str | None, *, param: str = "in_bbox") -> Polygon | None:
    """"minlon,minlat,maxlon,maxlat" (WGS-84) as a polygon; None when absent; 400 when malformed."""
    if text is None or text == "":
        return None
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise invalid(param, "应为4个数字：最小经度,最小纬度,最大经度,最大纬度")
    min_lon, min_lat, max_lon, max_lat = values
    if not (-180 <= min_lon < max_lon <= 180 and -90 <= min_lat < max_lat <= 90):
        raise invalid(param, "经纬度超出范围，或最小值不小于最大值")
    return Polygon.from_bbox((min_lon, min_lat, max_lon, max_lat))


def feature_page(
    *, request: Request, view: APIView, queryset: QuerySet, serializer_class: type[serializers.Serializer]
) -> Response:
    """Filter by bbox (on the view's `bbox_filter_field`), paginate and render a FeatureCollection."""
    queryset = StrictInBBoxFilter().filter_queryset(request, queryset, view)
    paginator = FeaturePagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    serializer = serializer_class(page, many=True, context={"request": request})
    return paginator.get_paginated_response(serializer.data)


def list_page(
    *,
    request: Request,
    view: APIView,
    queryset: QuerySet,
    serializer_class: type[serializers.Serializer],
    context: dict[str, Any] | None = None,
) -> Response:
    """Paginate a plain list and render {count, next, previous, results}."""
    paginator = ListPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    serializer = serializer_class(page, many=True, context={"request": request, **(context or {})})
    return paginator.get_paginated_response(serializer.data)


# --------------------------------------------------------------------------------------------
# OpenAPI descriptions of the common parameters and answers
# --------------------------------------------------------------------------------------------

BBOX_PARAMETER = OpenApiParameter(
    "in_bbox",
    OpenApiTypes.STR,
    description="按范围筛选：最小经度,最小纬度,最大经度,最大纬度（WGS-84），返回外接矩形与之相交的要素",
    examples=[],
)
PAGE_PARAMETERS = [
    OpenApiParameter("page", OpenApiTypes.INT, description="页码，从1开始"),
    OpenApiParameter("page_size", OpenApiTypes.INT, description="每页条数，默认100，最多1000"),
]
UNAUTHENTICATED_RESPONSE = OpenApiResponse(
    description="未登录、令牌无效或已注销：{code: not_authenticated|authentication_failed, message}"
)
READ_ERRORS = {
    400: OpenApiResponse(description="参数有误：{code, message, errors}"),
    401: UNAUTHENTICATED_RESPONSE,
    404: OpenApiResponse(description="页码无效或超出范围，或对象不存在：{code: not_found, message}"),
    403: OpenApiResponse(description="未登录或没有可访问的范围：{code, message}"),
}
NOT_FOUND = {404: OpenApiResponse(description="对象不存在或无权访问：{code: not_found, message}")}


def write_errors(*, capability: str, codes: str) -> dict[int, OpenApiResponse]:
    """The answers of a write: 400 with the listed stable codes, 401, 403 without `capability`."""
    return {
        400: OpenApiResponse(description=f"输入有误或违反规则：{{code, message, ...}}，code 为稳定的机器代码（{codes}）"),
        401: UNAUTHENTICATED_RESPONSE,
        403: OpenApiResponse(description=f"角色不能执行此操作（需 {capability}）：{{code: permission_denied, message}}"),
        404: NOT_FOUND[404],
    }
