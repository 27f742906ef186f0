"""POST /api/plans/suggest/: a new draft from the suggested rebalance of a community (issue 11).

Thin: parses, finds the community through the planners' guard (mapping.plans_access: only roles
with edit_space, for communities they plan whole; any other community is reference_not_found),
calls the one service (mapping.rebalance_services.plan_suggest) and answers the draft as
POST /api/plans/ does, plus the suggestion: its figures, cells, the buildings it moves and the
cases it could not bring into range, named.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from edge.api import ReachAPIView, parse_body, write_errors
from mapping import plans, plans_access, plans_sql
from mapping.plans_apis import CONFLICT, TAG, PlanSerializer
from mapping.rebalance_services import plan_suggest


class PlanSuggestApi(ReachAPIView):
    write_capability = plans_access.CAPABILITY

    class SuggestInputSerializer(serializers.Serializer):
        community = serializers.CharField(max_length=12, help_text="社区编码")
        name = serializers.CharField(required=False, max_length=100, help_text="方案名称（缺省“调整建议（日期）”）")
        seed = serializers.IntegerField(
            required=False, default=0, min_value=0, max_value=2**31 - 1,
            help_text="随机种子：同一数据、同一种子得到同一建议",
        )
        locked = serializers.ListField(
            child=serializers.CharField(max_length=15), required=False, default=list,
            help_text="不调整的网格编码（在草稿中锁定）",
        )

    @extend_schema(
        tags=[TAG],
        summary="生成调整建议草稿",
        description=(
            "从现行网格出发，以最小改动使每个网格的户数落在设定范围内（WANGGE_PLANNING households_min–max）："
            "网格连片、尽量紧凑，尽量多的住户留在原网格；没有网格的社区按每格约中值户数新划。"
            "结果建为新的方案草稿（来源“调整建议”），可继续编辑后应用。"
            "返回方案（同新建方案）及 suggestion：summary（网格数、在范围内的网格数、保留在原网格的户数及比例、"
            "调整的楼栋和户数、平均紧凑度、耗时）、cells、moves（楼栋从哪格到哪格）、findings（无法满足的情况："
            "building_too_large 单栋超上限、building_isolated 飞地楼栋、households_total_infeasible 总户数无法分格、"
            "cell_out_of_range 未能调整到范围内）、notes。"
        ),
        request=SuggestInputSerializer,
        responses={
            201: OpenApiResponse(OpenApiTypes.OBJECT, description="方案（同详情）及 suggestion"),
            **write_errors(
                capability=plans_access.CAPABILITY,
                codes="reference_not_found, plan_name_required, value_invalid, plan_codes_exhausted, "
                "plan_suggest_geometry_failed, geometry_*",
            ),
            **CONFLICT,
        },
    )
    def post(self, request: Request) -> Response:
        data = parse_body(self.SuggestInputSerializer, request)
        community = plans_access.community_for_planning(self.reach, data["community"])
        plan, suggestion = plan_suggest(
            community=community, name=data.get("name", ""), seed=data["seed"], locked=data["locked"]
        )
        body = {
            **PlanSerializer(plan).data,
            "can_undo": False,
            "can_redo": False,
            "edits": 0,
            "stale": plans.plan_is_stale(plan),
            "cells": plans_sql.plan_cells_geojson(plan.pk),
            "suggestion": suggestion.as_dict(),
        }
        return Response(body, status=status.HTTP_201_CREATED)


urlpatterns = [path("plans/suggest/", PlanSuggestApi.as_view(), name="plan-suggest")]
