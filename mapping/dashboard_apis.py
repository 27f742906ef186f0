"""The two reads the street office's page needs beyond the existing API (thin; mapping.dashboard
does the work):

- `GET /api/search/?q=` finds units, buildings, organisations and enterprises in the caller's
  reach by code or name, at most 20, each with its extent to zoom to;
- `GET /api/indicators/grid-cells/` gives the live indicators of every grid cell in reach at once,
  keyed by the cell id the vector tiles carry (the map shades cells with feature-state).
"""

from __future__ import annotations

from typing import Any

from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from edge.api import READ_ERRORS, ReachAPIView, parse_query
from mapping import dashboard
from mapping.indicator_apis import IndicatorFiguresSerializer

TAG = "看板"


# `label` and `context` are also attributes of a DRF field and serializer: the fields are given as
# a mapping (the metaclass takes them out of the class body either way).
SearchHitSerializer: type[serializers.Serializer] = type(
    "SearchHitSerializer",
    (serializers.Serializer,),
    {
        "type": serializers.ChoiceField(choices=list(dashboard.SEARCH_KINDS.items()), help_text="对象类型"),
        "type_display": serializers.CharField(help_text="对象类型（中文）"),
        "code": serializers.CharField(help_text="编码（两新组织为统一社会信用代码，可为空）"),
        "label": serializers.CharField(help_text="名称"),
        "context": serializers.CharField(help_text="补充说明：所属街道/社区，党组织的类别"),
        "bbox": serializers.ListField(
            child=serializers.FloatField(),
            allow_null=True,
            min_length=4,
            max_length=4,
            help_text="外接矩形 [最小经度, 最小纬度, 最大经度, 最大纬度]（WGS-84），用于缩放地图；无位置时为 null",
        ),
    },
)


class SearchOutputSerializer(serializers.Serializer):
    results = SearchHitSerializer(many=True)


class SearchApi(ReachAPIView):
    class InputSerializer(serializers.Serializer):
        q = serializers.CharField(
            max_length=64,
            help_text="编码开头或名称中的文字，至少1个字符（首尾空格不计）",
        )

    @extend_schema(
        tags=[TAG],
        summary="按编码或名称搜索",
        description=(
            "在当前账号范围内按编码（从开头匹配）或名称（包含）搜索街道、社区、网格、楼栋、党组织和两新组织，"
            f"最多{dashboard.SEARCH_LIMIT}条，先列大的单元。每条带外接矩形，便于地图缩放。"
        ),
        parameters=[InputSerializer],
        responses={
            200: SearchOutputSerializer,
            **READ_ERRORS,
            400: OpenApiResponse(
                description="q 为空或超过64个字符：{code: invalid_input, errors: {q: [...]}}"
            ),
        },
    )
    def get(self, request: Request) -> Response:
        q = parse_query(self.InputSerializer, request)["q"]
        return Response({"results": dashboard.search(reach=self.reach, q=q)})


class GridCellIndicatorsSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="网格编号（矢量瓦片 grid_cells 图层的要素 id）")
    code = serializers.CharField(help_text="网格编码")
    name = serializers.CharField(help_text="网格名称")
    indicators = IndicatorFiguresSerializer(help_text="当前指标，口径同 /api/indicators/")


class GridCellIndicatorsOutputSerializer(serializers.Serializer):
    results = GridCellIndicatorsSerializer(many=True)


class GridCellIndicatorsApi(ReachAPIView):
    class FilterSerializer(serializers.Serializer):
        street = serializers.CharField(required=False, max_length=9, help_text="只列出该街道（编码）的网格")
        community = serializers.CharField(
            required=False, max_length=12, help_text="只列出该社区（编码）的网格"
        )

    @extend_schema(
        tags=[TAG],
        summary="范围内各网格的当前指标",
        description=(
            "当前账号范围内每个现行网格的覆盖指标（实时计算，口径同 /api/indicators/），一次返回，"
            "供地图按指标给网格着色。id 与矢量瓦片中网格要素的 id 相同。"
        ),
        parameters=[FilterSerializer],
        responses={200: GridCellIndicatorsOutputSerializer, **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        params: dict[str, Any] = parse_query(self.FilterSerializer, request)
        rows = dashboard.grid_cell_indicators(reach=self.reach, **params)
        return Response({"results": GridCellIndicatorsSerializer(rows, many=True).data})


# Included by ops/urls.py under api/ (so the reach walk of tests/security proves them).
urlpatterns = [
    path("search/", SearchApi.as_view(), name="search"),
    path("indicators/grid-cells/", GridCellIndicatorsApi.as_view(), name="indicators-grid-cells"),
]
