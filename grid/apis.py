"""Read API of space: GeoJSON features of streets, communities, grid cells, buildings and service
centres, each scoped by the caller's reach (ReachAPIView, grid.access). One class per operation;
each view parses its query string with a nested serializer, asks a selector and renders the rows.
Errors use the project-wide shape {"code", "message", ...}; missing and out-of-reach objects get the
same 404.
"""

from __future__ import annotations

import math
from typing import Any

from django.contrib.gis.geos import Point
from django.db.models import BooleanField, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Coalesce, Concat, NullIf
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from edge.api import (
    BBOX_PARAMETER,
    NOT_FOUND,
    PAGE_PARAMETERS,
    READ_ERRORS,
    UNAUTHENTICATED_RESPONSE,
    FeaturePagination,
    ReachAPIView,
    invalid,
    parse_query,
)
from edge.geojson import FeatureLayout, choice_label, feature_collection_page, point_coordinates
from grid import coords, selectors
from grid.models import Building, Community, GridBoundary, ServiceCentre, Street

TAG = "空间单元"

def _not_found(what: str, code: str) -> exceptions.NotFound:
    # The same answer for missing and outside the caller's reach, so codes cannot be probed.
    return exceptions.NotFound(f"{what} {code} 不存在或无权访问")


# --------------------------------------------------------------------------------------------
# Feature serializers (output only), shared by the list and detail operations of one entity
# --------------------------------------------------------------------------------------------


class StreetFeatureSerializer(GeoFeatureModelSerializer):
    id = serializers.CharField(source="code", read_only=True, help_text="街道编码")

    class Meta:
        model = Street
        geo_field = "geom"
        id_field = "id"
        fields = ["id", "code", "name", "district_adcode"]


class CommunityFeatureSerializer(GeoFeatureModelSerializer):
    id = serializers.CharField(source="code", read_only=True, help_text="社区编码")
    street_code = serializers.CharField(source="street.code", read_only=True, help_text="所属街道编码")
    street_name = serializers.CharField(source="street.name", read_only=True, help_text="所属街道名称")

    class Meta:
        model = Community
        geo_field = "geom"
        id_field = "id"
        fields = ["id", "code", "name", "street_code", "street_name", "residents", "data_version"]


class GridCellFeatureSerializer(GeoFeatureModelSerializer):
    """网格及其在所查日期生效的边界版本。"""

    id = serializers.CharField(source="cell.code", read_only=True, help_text="网格编码")
    code = serializers.CharField(source="cell.code", read_only=True, help_text="网格编码（15位）")
    name = serializers.CharField(source="cell.name", read_only=True, help_text="网格名称")
    community_code = serializers.CharField(
        source="cell.community.code", read_only=True, help_text="所属社区编码"
    )
    responsible_body = serializers.CharField(
        source="cell.responsible_body_or_territorial",
        read_only=True,
        help_text="责任主体；未指定时为属地社区（属地兜底）",
    )
    responsible_body_is_fallback = serializers.SerializerMethodField(help_text="责任主体是否为属地兜底")
    version_id = serializers.IntegerField(source="id", read_only=True, help_text="边界版本编号")
    valid_from = serializers.DateField(source="valid.lower", read_only=True, help_text="本版本生效日期（含）")
    valid_to = serializers.DateField(
        source="valid.upper",
        read_only=True,
        allow_null=True,
        help_text="本版本失效日期（不含）；现行版本为 null",
    )
    building_count = serializers.IntegerField(read_only=True, help_text="楼栋数（按当前归属）")
    household_count = serializers.IntegerField(read_only=True, help_text="户数（按当前归属）")

    class Meta:
        model = GridBoundary
        geo_field = "geom"
        id_field = "id"
        fields = [
            "id",
            "code",
            "name",
            "community_code",
            "responsible_body",
            "responsible_body_is_fallback",
            "version_id",
            "valid_from",
            "valid_to",
            "building_count",
            "household_count",
        ]

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_responsible_body_is_fallback(self, obj: GridBoundary) -> bool:
        return not obj.cell.responsible_body


class GridCellVersionSerializer(GeoFeatureModelSerializer):
    """网格的一个边界版本（历史）。"""

    id = serializers.IntegerField(read_only=True, help_text="边界版本编号")
    code = serializers.CharField(source="cell.code", read_only=True, help_text="网格编码")
    valid_from = serializers.DateField(source="valid.lower", read_only=True, help_text="生效日期（含）")
    valid_to = serializers.DateField(
        source="valid.upper", read_only=True, allow_null=True, help_text="失效日期（不含）；现行版本为 null"
    )
    is_current = serializers.SerializerMethodField(help_text="是否现行版本")

    class Meta:
        model = GridBoundary
        geo_field = "geom"
        id_field = "id"
        fields = ["id", "code", "valid_from", "valid_to", "is_current", "note", "created_at"]

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_is_current(self, obj: GridBoundary) -> bool:
        return obj.valid.upper_inf


class BuildingFeatureSerializer(GeoFeatureModelSerializer):
    id = serializers.CharField(source="code", read_only=True, help_text="楼栋编码")
    point = serializers.SerializerMethodField(help_text="楼栋位置 [经度, 纬度]（占地轮廓内的一点）")
    grid_code = serializers.CharField(
        source="grid_cell.code",
        read_only=True,
        allow_null=True,
        help_text="所属网格编码；未落入任何网格时为 null",
    )
    community_code = serializers.CharField(source="community.code", read_only=True, help_text="所属社区编码")
    kind_display = serializers.CharField(source="get_kind_display", read_only=True, help_text="类型（中文）")

    class Meta:
        model = Building
        geo_field = "geom"
        id_field = "id"
        fields = [
            "id",
            "code",
            "name",
            "address",
            "kind",
            "kind_display",
            "point",
            "grid_code",
            "community_code",
            "households",
            "floors",
        ]

    @extend_schema_field({"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2})
    def get_point(self, obj: Building) -> list[float] | None:
        return [obj.point.x, obj.point.y] if obj.point else None


class ServiceCentreFeatureSerializer(GeoFeatureModelSerializer):
    id = serializers.CharField(source="code", read_only=True, help_text="服务中心编码")
    level_display = serializers.CharField(
        source="get_level_display", read_only=True, help_text="级别（中文）"
    )
    street_code = serializers.CharField(source="street.code", read_only=True, help_text="所属街道编码")
    community_code = serializers.CharField(
        source="community.code", read_only=True, allow_null=True, help_text="所属社区编码；街道级为 null"
    )

    class Meta:
        model = ServiceCentre
        geo_field = "geom"
        id_field = "id"
        fields = [
            "id",
            "code",
            "name",
            "level",
            "level_display",
            "street_code",
            "community_code",
            "address",
            "service_radius_m",
        ]


# --------------------------------------------------------------------------------------------
# The same features written by PostgreSQL, for the list operations (edge.geojson): each layout
# names, in the serializer's order, the column or expression behind each of its fields.
# --------------------------------------------------------------------------------------------

STREET_FEATURE = FeatureLayout(
    serializer=StreetFeatureSerializer,
    id="code",
    properties={"code": "code", "name": "name", "district_adcode": "district_adcode"},
)

COMMUNITY_FEATURE = FeatureLayout(
    serializer=CommunityFeatureSerializer,
    id="code",
    properties={
        "code": "code",
        "name": "name",
        "street_code": "street__code",
        "street_name": "street__name",
        "residents": "residents",
        "data_version": "data_version",
    },
)

GRID_CELL_FEATURE = FeatureLayout(
    serializer=GridCellFeatureSerializer,
    id="cell__code",
    properties={
        "code": "cell__code",
        "name": "cell__name",
        "community_code": "cell__community__code",
        # GridCell.responsible_body_or_territorial, in SQL.
        "responsible_body": Coalesce(
            NullIf("cell__responsible_body", Value("")),
            Concat("cell__community__name", Value("（属地兜底）")),
        ),
        "responsible_body_is_fallback": ExpressionWrapper(
            Q(cell__responsible_body=""), output_field=BooleanField()
        ),
        "version_id": "id",
        "valid_from": F("valid__startswith"),
        "valid_to": F("valid__endswith"),
        "building_count": "building_count",
        "household_count": "household_count",
    },
)

BUILDING_FEATURE = FeatureLayout(
    serializer=BuildingFeatureSerializer,
    id="code",
    properties={
        "code": "code",
        "name": "name",
        "address": "address",
        "kind": "kind",
        "kind_display": choice_label("kind", Building.Kind.choices),
        "point": point_coordinates("point"),
        "grid_code": "grid_cell__code",
        "community_code": "community__code",
        "households": "households",
        "floors": "floors",
    },
)

SERVICE_CENTRE_FEATURE = FeatureLayout(
    serializer=ServiceCentreFeatureSerializer,
    id="code",
    properties={
        "code": "code",
        "name": "name",
        "level": "level",
        "level_display": choice_label("level", ServiceCentre.Level.choices),
        "street_code": "street__code",
        "community_code": "community__code",
        "address": "address",
        "service_radius_m": "service_radius_m",
    },
)


# --------------------------------------------------------------------------------------------
# Operations
# --------------------------------------------------------------------------------------------


class CodeDetailApi(ReachAPIView):
    """A view addressed by a unit code in its path (<str:code>)."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # PostgreSQL text cannot hold NUL ("%00" in the URL): such a code names nothing, and asking
        # the database would be an error (500) instead of the 404 it is.
        if "\x00" in kwargs.get("code", ""):
            raise _not_found("对象", kwargs["code"].replace("\x00", ""))


class FeatureListApi(ReachAPIView):
    """A page of units as a GeoJSON FeatureCollection; ?in_bbox= keeps those whose outline meets
    the box."""

    bbox_filter_field = "geom"
    bbox_filter_include_overlapping = True
    pagination_class = FeaturePagination


class UnitDetailApi(CodeDetailApi):
    """One unit by its code, as a GeoJSON Feature: `fetch` looks for it in the caller's reach, and
    missing or out of reach is the same 404 naming `unit_name`. Subclasses document their GET with
    extend_schema_view."""

    unit_name = "对象"
    feature_serializer: type[GeoFeatureModelSerializer]

    def fetch(self, code: str) -> Any:
        raise NotImplementedError

    def get(self, request: Request, code: str) -> Response:
        unit = self.fetch(code)
        if unit is None:
            raise _not_found(self.unit_name, code)
        return Response(self.feature_serializer(unit).data)


class StreetListApi(FeatureListApi):

    @extend_schema(
        tags=[TAG],
        summary="街道列表",
        description="全部街道的边界，GeoJSON FeatureCollection（分页）。",
        parameters=[BBOX_PARAMETER, *PAGE_PARAMETERS],
        responses={200: StreetFeatureSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request) -> HttpResponse:
        return feature_collection_page(
            request=request, view=self, queryset=selectors.street_list(reach=self.reach), layout=STREET_FEATURE
        )


@extend_schema_view(
    get=extend_schema(
        tags=[TAG],
        summary="街道详情",
        description="按街道编码（9位）取一个街道，GeoJSON Feature。",
        responses={200: StreetFeatureSerializer, **READ_ERRORS, **NOT_FOUND},
    )
)
class StreetDetailApi(UnitDetailApi):
    unit_name = "街道"
    feature_serializer = StreetFeatureSerializer

    def fetch(self, code: str) -> Street | None:
        return selectors.street_get(reach=self.reach, code=code)


class CommunityListApi(FeatureListApi):

    class FilterSerializer(serializers.Serializer):
        street = serializers.CharField(required=False, max_length=9, help_text="只列出该街道（编码）下的社区")

    @extend_schema(
        tags=[TAG],
        summary="社区列表",
        description="社区边界，GeoJSON FeatureCollection（分页），可按街道和范围筛选。",
        parameters=[FilterSerializer, BBOX_PARAMETER, *PAGE_PARAMETERS],
        responses={200: CommunityFeatureSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request) -> HttpResponse:
        filters = parse_query(self.FilterSerializer, request)
        qs = selectors.community_list(reach=self.reach, street_code=filters.get("street"))
        return feature_collection_page(request=request, view=self, queryset=qs, layout=COMMUNITY_FEATURE)


@extend_schema_view(
    get=extend_schema(
        tags=[TAG],
        summary="社区详情",
        description="按社区编码（12位）取一个社区，GeoJSON Feature。",
        responses={200: CommunityFeatureSerializer, **READ_ERRORS, **NOT_FOUND},
    )
)
class CommunityDetailApi(UnitDetailApi):
    unit_name = "社区"
    feature_serializer = CommunityFeatureSerializer

    def fetch(self, code: str) -> Community | None:
        return selectors.community_get(reach=self.reach, code=code)


class GridCellListApi(FeatureListApi):

    class FilterSerializer(serializers.Serializer):
        community = serializers.CharField(
            required=False, max_length=12, help_text="只列出该社区（编码）下的网格"
        )
        as_of = serializers.DateField(
            required=False, help_text="日期 YYYY-MM-DD：返回当天生效的边界版本；不填为现行边界"
        )

    @extend_schema(
        tags=[TAG],
        summary="网格列表",
        description=(
            "网格及其边界，GeoJSON FeatureCollection（分页）。每个网格取指定日期生效的边界版本，"
            "当天没有生效边界的网格不列出。属性含责任主体（未指定时为属地兜底）、楼栋数和户数。"
        ),
        parameters=[FilterSerializer, BBOX_PARAMETER, *PAGE_PARAMETERS],
        responses={200: GridCellFeatureSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request) -> HttpResponse:
        filters = parse_query(self.FilterSerializer, request)
        qs = selectors.grid_cell_features(
            reach=self.reach, on_date=filters.get("as_of"), community_code=filters.get("community")
        )
        return feature_collection_page(request=request, view=self, queryset=qs, layout=GRID_CELL_FEATURE)


class GridCellDetailApi(CodeDetailApi):
    class FilterSerializer(serializers.Serializer):
        as_of = serializers.DateField(
            required=False, help_text="日期 YYYY-MM-DD：取当天生效的边界版本；不填为现行边界"
        )

    @extend_schema(
        tags=[TAG],
        summary="网格详情",
        description="按网格编码（15位）取网格及其在指定日期生效的边界，GeoJSON Feature；当天没有生效边界时为 404。",
        parameters=[FilterSerializer],
        responses={200: GridCellFeatureSerializer, **READ_ERRORS, **NOT_FOUND},
    )
    def get(self, request: Request, code: str) -> Response:
        filters = parse_query(self.FilterSerializer, request)
        feature = selectors.grid_cell_feature_get(reach=self.reach, code=code, on_date=filters.get("as_of"))
        if feature is None:
            if selectors.grid_cell_get(reach=self.reach, code=code) is None:
                raise _not_found("网格", code)
            raise exceptions.NotFound(f"网格 {code} 在 {filters.get('as_of') or '今天'} 没有生效的边界")
        return Response(GridCellFeatureSerializer(feature).data)


class GridCellHistoryApi(CodeDetailApi):
    @extend_schema(
        tags=[TAG],
        summary="网格边界历史",
        description="一个网格的全部边界版本（由早到晚），GeoJSON FeatureCollection；每个版本带生效和失效日期。",
        responses={200: GridCellVersionSerializer(many=True), **READ_ERRORS, **NOT_FOUND},
    )
    def get(self, request: Request, code: str) -> Response:
        cell = selectors.grid_cell_get(reach=self.reach, code=code)
        if cell is None:
            raise _not_found("网格", code)
        versions = selectors.grid_cell_history(cell=cell)
        return Response(GridCellVersionSerializer(versions, many=True).data)


class GridCellAtApi(ReachAPIView):
    class InputSerializer(serializers.Serializer):
        lon = serializers.FloatField(help_text="经度（按 crs 声明的坐标系）")
        lat = serializers.FloatField(help_text="纬度（按 crs 声明的坐标系）")
        crs = serializers.CharField(
            required=False,
            default="wgs84",
            max_length=64,
            help_text="坐标系：wgs84（GPS，默认）、gcj02（高德/腾讯）、bd09（百度）、cgcs2000，或 EPSG:代码",
        )
        date = serializers.DateField(
            required=False, help_text="日期 YYYY-MM-DD：查那天的网格划分；不填为今天"
        )

    @extend_schema(
        tags=[TAG],
        summary="按位置查网格",
        description=(
            "给出一个点（可为 GCJ-02、BD-09 等坐标系，服务端换算为 WGS-84）和日期，返回当天覆盖该点的网格"
            "（点在边界线上也算）。不在您可访问的任何网格内时返回 404。"
        ),
        parameters=[InputSerializer],
        responses={
            200: GridCellFeatureSerializer,
            400: OpenApiResponse(
                description="坐标或坐标系有误：code 为 invalid_input、crs_unknown 或 coords_out_of_range"
            ),
            401: UNAUTHENTICATED_RESPONSE,
            403: READ_ERRORS[403],
            404: OpenApiResponse(description="该点当天不在您可访问的任何网格内：{code: not_found, message}"),
        },
    )
    def get(self, request: Request) -> Response:
        params = parse_query(self.InputSerializer, request)
        lon, lat, crs = params["lon"], params["lat"], params["crs"]
        if not (math.isfinite(lon) and math.isfinite(lat)):
            raise invalid("lon" if not math.isfinite(lon) else "lat", "坐标必须是有限数字")
        # UnknownCRS and CoordinatesOutOfRange become 400 with their code (ops.api_errors).
        coords.check_in_range(lon, lat, crs)
        wgs_lon, wgs_lat = coords.to_wgs84(lon, lat, crs)
        on_date = params.get("date") or selectors.today()
        cell = selectors.grid_cell_at(point=Point(float(wgs_lon), float(wgs_lat), srid=4326), on_date=on_date)
        feature = (
            selectors.grid_cell_features(reach=self.reach, on_date=on_date, cell_ids=[cell.id]).first()
            if cell is not None
            else None
        )
        if feature is None:
            raise exceptions.NotFound(
                f"该位置（经度 {wgs_lon:.6f}，纬度 {wgs_lat:.6f}）在 {on_date} 不属于您可访问的任何网格"
            )
        return Response(GridCellFeatureSerializer(feature).data)


class BuildingListApi(FeatureListApi):

    class FilterSerializer(serializers.Serializer):
        community = serializers.CharField(
            required=False, max_length=12, help_text="只列出该社区（编码）的楼栋"
        )
        grid = serializers.CharField(required=False, max_length=15, help_text="只列出该网格（编码）的楼栋")

    @extend_schema(
        tags=[TAG],
        summary="楼栋列表",
        description="楼栋占地轮廓，GeoJSON FeatureCollection（分页），可按社区、网格和范围筛选。",
        parameters=[FilterSerializer, BBOX_PARAMETER, *PAGE_PARAMETERS],
        responses={200: BuildingFeatureSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request) -> HttpResponse:
        filters = parse_query(self.FilterSerializer, request)
        qs = selectors.building_list(
            reach=self.reach, community_code=filters.get("community"), grid_code=filters.get("grid")
        )
        return feature_collection_page(request=request, view=self, queryset=qs, layout=BUILDING_FEATURE)


@extend_schema_view(
    get=extend_schema(
        tags=[TAG],
        summary="楼栋详情",
        description="按楼栋编码取一个楼栋，GeoJSON Feature（几何为占地轮廓）。",
        responses={200: BuildingFeatureSerializer, **READ_ERRORS, **NOT_FOUND},
    )
)
class BuildingDetailApi(UnitDetailApi):
    unit_name = "楼栋"
    feature_serializer = BuildingFeatureSerializer

    def fetch(self, code: str) -> Building | None:
        return selectors.building_get(reach=self.reach, code=code)


class ServiceCentreListApi(FeatureListApi):

    class FilterSerializer(serializers.Serializer):
        street = serializers.CharField(
            required=False, max_length=9, help_text="只列出该街道（编码）的服务中心"
        )
        community = serializers.CharField(
            required=False, max_length=12, help_text="只列出该社区（编码）的服务中心"
        )

    @extend_schema(
        tags=[TAG],
        summary="党群服务中心列表",
        description="党群服务中心位置，GeoJSON FeatureCollection（分页），属性含级别和服务半径（米）。",
        parameters=[FilterSerializer, BBOX_PARAMETER, *PAGE_PARAMETERS],
        responses={200: ServiceCentreFeatureSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request) -> HttpResponse:
        filters = parse_query(self.FilterSerializer, request)
        qs = selectors.service_centre_list(
            reach=self.reach, street_code=filters.get("street"), community_code=filters.get("community")
        )
        return feature_collection_page(request=request, view=self, queryset=qs, layout=SERVICE_CENTRE_FEATURE)
