"""Enterprises and social organisations (两新组织), as GeoJSON."""

from __future__ import annotations

from typing import Any

from django.contrib.gis.geos import Point
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from edge.api import (
    BBOX_PARAMETER,
    NOT_FOUND,
    PAGE_PARAMETERS,
    READ_ERRORS,
    DocumentedPointField,
    FeaturePagination,
    ReachAPIView,
    StrictInBBoxFilter,
    one_referenced,
    parse_body,
    parse_query,
)
from grid import access as grid_access
from grid import coords
from grid.models import STORAGE_SRID
from orgs import access, selectors, services
from orgs.apis.common import TAG_ENTERPRISES, WRITE_ERRORS
from orgs.models import (
    Enterprise,
    PartyOrganisation,
)

Kind = PartyOrganisation.Kind

# --------------------------------------------------------------------------------------------
# Enterprises (GeoJSON)
# --------------------------------------------------------------------------------------------


class EnterpriseFeatureSerializer(GeoFeatureModelSerializer):
    kind_display = serializers.CharField(source="get_kind_display", read_only=True, help_text="类型（中文）")
    community_code = serializers.CharField(
        source="community.code", read_only=True, allow_null=True, help_text="所在社区编码"
    )
    building_code = serializers.CharField(
        source="building.code", read_only=True, allow_null=True, help_text="所在楼栋编码"
    )
    has_own_org = serializers.BooleanField(read_only=True, help_text="是否已单独组建党组织")
    covering_joint_branch_id = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="覆盖的联合党支部编号"
    )
    instructor_name = serializers.CharField(
        source="instructor.name", read_only=True, allow_null=True, help_text="党建指导员"
    )

    class Meta:
        model = Enterprise
        geo_field = "geom"
        id_field = "id"
        fields = [
            "id",
            "name",
            "kind",
            "kind_display",
            "credit_code",
            "community_code",
            "building_code",
            "employee_count",
            "has_own_org",
            "covering_joint_branch_id",
            "instructor_name",
        ]


class EnterpriseInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="名称")
    kind = serializers.ChoiceField(choices=Enterprise.Kind.choices, required=False, help_text="类型")
    credit_code = serializers.CharField(
        required=False, allow_blank=True, max_length=32, help_text="统一社会信用代码（18位，校验码须正确）"
    )
    location = DocumentedPointField(
        required=False, help_text="位置（GeoJSON 点，坐标系见 crs）；不填则取所在楼栋的位置"
    )
    crs = serializers.CharField(
        required=False,
        default="wgs84",
        max_length=64,
        help_text="location 的坐标系：wgs84（默认）、gcj02（高德/腾讯）、bd09（百度）、cgcs2000 或 EPSG:代码",
    )
    building = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=32, help_text="所在楼栋编码"
    )
    employee_count = serializers.IntegerField(
        required=False, min_value=0, max_value=2_000_000_000, help_text="从业人数"
    )
    covering_joint_branch = serializers.IntegerField(
        required=False, allow_null=True, help_text="覆盖的联合党支部编号"
    )
    instructor = serializers.IntegerField(required=False, allow_null=True, help_text="党建指导员（干部）编号")


def _enterprise_references(reach: grid_access.Reach, data: dict[str, Any]) -> dict[str, Any]:
    """References looked up inside the editing reach; the location converted once to WGS-84."""
    edit = access.capability_reach(reach, "edit_orgs")
    out = {k: v for k, v in data.items() if k not in ("location", "crs")}
    if "location" in data:
        lon, lat = data["location"]
        crs = data.get("crs") or "wgs84"
        # UnknownCRS and CoordinatesOutOfRange answer 400 with their codes (ops.api_errors).
        coords.check_in_range(lon, lat, crs)
        wgs_lon, wgs_lat = coords.to_wgs84(lon, lat, crs)
        out["point"] = Point(float(wgs_lon), float(wgs_lat), srid=STORAGE_SRID)
    if "building" in data:
        out["building"] = (
            one_referenced(grid_access.buildings_in_reach(edit), "building", code=data["building"])
            if data["building"]
            else None
        )
    if "covering_joint_branch" in data:
        branches = access.party_orgs_in_reach(edit, strict=True).filter(kind=Kind.JOINT_BRANCH)
        value = data["covering_joint_branch"]
        out["covering_joint_branch"] = one_referenced(branches, "covering_joint_branch", pk=value) if value else None
    if "instructor" in data:
        value = data["instructor"]
        out["instructor"] = one_referenced(access.cadres_in_reach(edit), "instructor", pk=value) if value else None
    return out


def _enterprise_output(enterprise: Enterprise) -> dict[str, Any]:
    fresh = selectors.enterprise_list(reach=grid_access.Reach(everything=True)).get(pk=enterprise.pk)
    return dict(EnterpriseFeatureSerializer(fresh).data)


ENTERPRISE_WRITE_ERRORS = {
    **WRITE_ERRORS,
    400: OpenApiResponse(
        description="输入有误：{code, message, ...}，code 如 invalid_input、crs_unknown、coords_out_of_range、"
        "enterprise_outside_communities、outside_edit_reach、credit_code_invalid、enterprise_credit_code_taken、reference_not_found"
    ),
}


class EnterpriseListApi(ReachAPIView):
    bbox_filter_field = "geom"
    write_capability = "edit_orgs"
    bbox_filter_include_overlapping = True

    class FilterSerializer(serializers.Serializer):
        community = serializers.CharField(
            required=False, max_length=12, help_text="只列出该社区（编码）的两新组织"
        )
        kind = serializers.ChoiceField(
            choices=Enterprise.Kind.choices, required=False, help_text="按类型筛选"
        )

    @extend_schema(
        tags=[TAG_ENTERPRISES],
        summary="两新组织列表",
        description="当前账号范围内的非公企业和社会组织位置，GeoJSON FeatureCollection（分页），属性含是否单独建党组织。",
        parameters=[FilterSerializer, BBOX_PARAMETER, *PAGE_PARAMETERS],
        responses={200: EnterpriseFeatureSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        f = parse_query(self.FilterSerializer, request)
        qs = selectors.enterprise_list(
            reach=self.reach, community_code=f.get("community"), kind=f.get("kind")
        )
        qs = StrictInBBoxFilter().filter_queryset(request, qs, self)
        paginator = FeaturePagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(EnterpriseFeatureSerializer(page, many=True).data)

    @extend_schema(
        tags=[TAG_ENTERPRISES],
        summary="新增两新组织",
        description="位置为 GeoJSON 点，可用 GCJ-02、BD-09 等坐标系（crs），服务端换算一次为 WGS-84；"
        "所在社区由位置自动确定，须在您可维护的范围内，否则不写入。",
        request=EnterpriseInputSerializer,
        responses={201: EnterpriseFeatureSerializer, **ENTERPRISE_WRITE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = _enterprise_references(self.reach, parse_body(EnterpriseInputSerializer, request))
        enterprise = services.enterprise_create(reach=self.reach, **data)
        return Response(_enterprise_output(enterprise), status=status.HTTP_201_CREATED)


class EnterpriseDetailApi(ReachAPIView):
    write_capability = "edit_orgs"

    @extend_schema(
        tags=[TAG_ENTERPRISES],
        summary="修改两新组织",
        description="只修改给出的字段；给出 location（及 crs）时改位置并重新确定所在社区。",
        request=EnterpriseInputSerializer(partial=True),
        responses={200: EnterpriseFeatureSerializer, **ENTERPRISE_WRITE_ERRORS, **NOT_FOUND},
    )
    def patch(self, request: Request, pk: int) -> Response:
        enterprise = access.get_editable(self.reach, selectors.enterprise_list(reach=self.reach), pk=pk)
        data = _enterprise_references(self.reach, parse_body(EnterpriseInputSerializer, request, partial=True))
        enterprise = services.enterprise_update(reach=self.reach, enterprise=enterprise, **data)
        return Response(_enterprise_output(enterprise))

    @extend_schema(
        tags=[TAG_ENTERPRISES],
        summary="两新组织详情",
        description="一个两新组织，GeoJSON Feature（几何为位置点）。",
        responses={200: EnterpriseFeatureSerializer, **READ_ERRORS, **NOT_FOUND},
    )
    def get(self, request: Request, pk: int) -> Response:
        enterprise = selectors.enterprise_get(reach=self.reach, enterprise_id=pk)
        return Response(EnterpriseFeatureSerializer(enterprise).data)


