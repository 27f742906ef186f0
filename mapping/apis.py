"""Read API of coverage gaps (兜底管理): the map's features and the counts by unit, scoped by the
caller's reach (mapping.access). Gaps are written only by the recompute (mapping.services); there
is nothing to POST here. Personal data never appears: a member's gap carries the masked name and
the member's id, its figures no ID number or phone.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from edge.api import BBOX_PARAMETER, PAGE_PARAMETERS, READ_ERRORS, ReachAPIView, feature_page, parse_query
from mapping import selectors
from mapping.models import Gap

TAG = "覆盖缺口"

FIGURES_HELP = (
    "计算依据（随类型而异），例如 members 党员数、full_members 正式党员数、households 户数、"
    "households_visited 近期已走访户数、rate 走访率、days_since_last_visit 距上次走访天数、"
    "on_site_days 本月在岗驻点天数、expected_by_today 按进度应驻天数、area_m2 面积（平方米）、"
    "share 占社区面积比例、grid_cells 涉及网格编码"
)


class GapFeatureSerializer(GeoFeatureModelSerializer):
    """一个覆盖缺口：对象的位置（点）或未覆盖的范围（面）。"""

    kind_display = serializers.CharField(source="get_kind_display", read_only=True, help_text="缺口类型（中文）")
    subject_type = serializers.CharField(
        read_only=True,
        help_text="对象类型：grid.GridCell 网格、grid.Building 楼栋、grid.Community 社区（区域类缺口）、"
        "orgs.PartyMember 党员、orgs.Enterprise 两新组织、orgs.StationedCadre 驻点干部",
    )
    subject_label = serializers.CharField(read_only=True, help_text="对象名称；党员姓名已脱敏（如 张**）")
    community_code = serializers.CharField(source="community.code", read_only=True, help_text="所在社区编码")
    community_name = serializers.CharField(source="community.name", read_only=True, help_text="所在社区名称")
    street_code = serializers.CharField(source="community.street.code", read_only=True, help_text="所在街道编码")
    grid_code = serializers.CharField(
        source="grid_cell.code", read_only=True, allow_null=True, help_text="当前所在网格编码；区域类缺口等为 null"
    )
    severity_display = serializers.CharField(
        source="get_severity_display", read_only=True, help_text="严重程度（中文）"
    )
    responsible_org_id = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="兜底党组织编号；该处没有任何党组织时为 null"
    )
    responsible_label = serializers.CharField(read_only=True, help_text="兜底责任党组织名称")
    figures = serializers.SerializerMethodField(help_text=FIGURES_HELP)

    class Meta:
        model = Gap
        geo_field = "geom"
        id_field = "id"
        fields = [
            "id",
            "kind",
            "kind_display",
            "subject_type",
            "subject_id",
            "subject_code",
            "subject_label",
            "community_code",
            "community_name",
            "street_code",
            "grid_code",
            "severity",
            "severity_display",
            "responsible_org_id",
            "responsible_label",
            "since",
            "resolved_at",
            "computed_at",
            "figures",
        ]

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_figures(self, obj: Gap) -> dict[str, Any]:
        return obj.figures


class GapListApi(ReachAPIView):
    bbox_filter_field = "geom"
    bbox_filter_include_overlapping = True

    class FilterSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=Gap.Kind.choices, required=False, help_text="缺口类型")
        street = serializers.CharField(required=False, max_length=9, help_text="街道编码")
        community = serializers.CharField(required=False, max_length=12, help_text="社区编码")
        grid_cell = serializers.CharField(required=False, max_length=15, help_text="网格编码（缺口当前所在网格）")
        since_before = serializers.DateField(
            required=False, help_text="只列出在此日期之前发现的缺口（YYYY-MM-DD），用于查看久未消除的缺口"
        )
        resolved = serializers.BooleanField(
            required=False, default=False, help_text="false（默认）：现存缺口；true：已消除的历史缺口"
        )

    @extend_schema(
        tags=[TAG],
        summary="覆盖缺口列表",
        description=(
            "当前账号范围内的覆盖缺口（兜底管理），GeoJSON FeatureCollection（分页，按发现时间倒序）。"
            "网格员只看到所负责网格内的缺口；社区、街道管理员看到所辖范围的全部缺口（含区域类缺口和驻点干部）。"
            "每个缺口带兜底责任党组织、发现时间 since、消除时间 resolved_at 和计算依据 figures。"
        ),
        parameters=[FilterSerializer, BBOX_PARAMETER, *PAGE_PARAMETERS],
        responses={200: GapFeatureSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        filters = parse_query(self.FilterSerializer, request)
        qs = selectors.gap_list(reach=self.reach, **filters)
        return feature_page(request=request, view=self, queryset=qs, serializer_class=GapFeatureSerializer)


_UNIT_FIELDS: dict[str, serializers.Field] = {
    "level": serializers.ChoiceField(choices=["street", "community", "grid_cell"], help_text="单元层级"),
    "code": serializers.CharField(help_text="单元编码"),
    "name": serializers.CharField(help_text="单元名称"),
    "open": serializers.IntegerField(help_text="现存缺口总数"),
    "by_kind": serializers.DictField(child=serializers.IntegerField(), help_text="按缺口类型计数（无则不列）"),
}


class GapSummaryApi(ReachAPIView):
    class FilterSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=Gap.Kind.choices, required=False, help_text="只统计该类型")
        street = serializers.CharField(required=False, max_length=9, help_text="街道编码")
        community = serializers.CharField(required=False, max_length=12, help_text="社区编码")

    @extend_schema(
        tags=[TAG],
        summary="覆盖缺口统计",
        description=(
            "现存缺口按类型、按单元计数：账号完整管辖的街道、社区，以及范围内的现行网格（无缺口的单元计为0）。"
            "网格员只得到所负责网格的统计。"
        ),
        parameters=[FilterSerializer],
        responses={
            200: inline_serializer(
                "GapSummary",
                {
                    "kinds": inline_serializer(
                        "GapKindLabel",
                        {"kind": serializers.CharField(help_text="类型代码"), "label": serializers.CharField()},
                        many=True,
                    ),
                    "units": inline_serializer("GapSummaryUnit", _UNIT_FIELDS, many=True),
                },
            ),
            **READ_ERRORS,
        },
    )
    def get(self, request: Request) -> Response:
        filters = parse_query(self.FilterSerializer, request)
        return Response(selectors.gap_summary(reach=self.reach, **filters))
