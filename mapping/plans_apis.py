"""The planners' API under /api/plans/: drafts, edits with undo/redo, checks, preview, apply, copy,
compare, revert. Thin: each view parses, fetches the plan through the one guard
(mapping.plans_access.plan_get: missing and not-yours are the same 404), calls one service or
selector (mapping.plans, plans_checks, plans_preview) and renders.

Only roles with `edit_space` (planners, street administrators) see drafts, for the communities
they hold whole; writes need the same capability (403 without it).

Shapes are GeoJSON in WGS-84; an edit may say `crs` (gcj02, bd09, cgcs2000, EPSG:n) for shapes
drawn on a Chinese web map. Errors are {code, message, ...}: 400 for a refused edit or bad input
(codes listed per operation), 404 not_found, 409 for plan_stale / plan_not_draft /
plan_edit_conflict.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from edge.api import (
    PAGE_PARAMETERS,
    READ_ERRORS,
    ListPagination,
    ReachAPIView,
    list_page,
    parse_body,
    parse_query,
    write_errors,
)
from edge.errors import DomainError
from mapping import plans, plans_access, plans_checks, plans_preview, plans_sql
from mapping.plans_models import Plan, PlanEdit

TAG = "网格调整方案"
CAPABILITY = plans_access.CAPABILITY

CONFLICT = {409: OpenApiResponse(description="方案已变化：{code: plan_stale|plan_not_draft|plan_edit_conflict, message}")}
EDIT_CODES = (
    "plan_edit_unknown, plan_cell_unknown, plan_cell_locked, plan_cell_would_vanish, plan_cells_not_adjacent, "
    "plan_split_line_invalid, plan_shape_outside_community, plan_building_unknown, plan_building_not_in_cell, "
    "plan_edit_noop, plan_codes_exhausted, plan_nothing_to_undo, plan_nothing_to_redo, geometry_type, "
    "geometry_invalid, geometry_empty, coords_out_of_range, crs_unknown, value_invalid"
)
OBJECT = OpenApiTypes.OBJECT


class PlanSerializer(serializers.ModelSerializer):
    """一个网格调整方案（草稿、已应用或已放弃）。"""

    state_display = serializers.CharField(source="get_state_display", read_only=True)
    origin_display = serializers.CharField(source="get_origin_display", read_only=True)
    community_code = serializers.CharField(source="community.code", read_only=True)
    community_name = serializers.CharField(source="community.name", read_only=True)
    origin_plan_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = Plan
        fields = [
            "id",
            "name",
            "state",
            "state_display",
            "origin",
            "origin_display",
            "origin_plan_id",
            "origin_date",
            "community_code",
            "community_name",
            "created_by_name",
            "created_at",
            "updated_at",
            "cursor",
            "based_on_version",
            "applied_at",
            "applied_by_name",
            "valid_from",
            "reason",
            "result",
        ]
        read_only_fields = fields


def _detail(plan: Plan) -> dict[str, Any]:
    last = PlanEdit.objects.filter(plan=plan).order_by("-seq").values_list("seq", flat=True).first() or 0
    return {
        **PlanSerializer(plan).data,
        "can_undo": plan.state == Plan.State.DRAFT and plan.cursor > 0,
        "can_redo": plan.state == Plan.State.DRAFT and last > plan.cursor,
        "edits": last,
        "stale": plan.state == Plan.State.DRAFT and plans.plan_is_stale(plan),
        "cells": plans_sql.plan_cells_geojson(plan.pk),
    }


class _PlanApi(ReachAPIView):
    write_capability = CAPABILITY

    def plan(self, pk: int) -> Plan:
        return plans_access.plan_get(self.reach, pk)


class PlanListApi(_PlanApi):
    pagination_class = ListPagination  # so that the schema documents the page envelope
    class FilterSerializer(serializers.Serializer):
        community = serializers.CharField(required=False, max_length=12, help_text="社区编码")
        state = serializers.ChoiceField(choices=Plan.State.choices, required=False, help_text="状态")

    class CreateSerializer(serializers.Serializer):
        community = serializers.CharField(max_length=12, help_text="社区编码")
        name = serializers.CharField(max_length=100, help_text="方案名称")
        as_of = serializers.DateField(
            required=False, help_text="从该日生效的网格边界开始（恢复到某日）；缺省为现行网格"
        )
        file = serializers.FileField(
            required=False,
            help_text="从上传的网格文件开始（multipart/form-data）：GeoJSON、压缩的 Shapefile（.zip）、GeoPackage、"
            "FlatGeobuf 或 CSV（WKT 列），每个要素一个网格，编码列 code（15位），名称列 name",
        )
        crs = serializers.CharField(required=False, max_length=32, help_text="文件坐标系（wgs84、gcj02、bd09、EPSG:n）")
        layer = serializers.CharField(required=False, max_length=100, help_text="文件图层名")
        code_field = serializers.CharField(required=False, max_length=64, default="code")
        name_field = serializers.CharField(required=False, max_length=64, default="name")

    @extend_schema(
        tags=[TAG],
        summary="网格调整方案列表",
        description="当前账号可规划社区的方案（规划人员、街道管理员），按更新时间倒序。",
        parameters=[FilterSerializer, *PAGE_PARAMETERS],
        responses={200: PlanSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        filters = parse_query(self.FilterSerializer, request)
        qs = plans_access.plans_in_reach(self.reach, Plan.objects.select_related("community"))
        if "community" in filters:
            qs = qs.filter(community__code=filters["community"])
        if "state" in filters:
            qs = qs.filter(state=filters["state"])
        return list_page(request=request, view=self, queryset=qs, serializer_class=PlanSerializer)

    @extend_schema(
        tags=[TAG],
        summary="新建方案草稿",
        description=(
            "从现行网格、某日的网格（as_of）或上传的网格文件（file，multipart）开始一个草稿。"
            "上传文件逐要素检查，有错误则不建立方案，返回 plan_upload_rejected 与 issues"
            "（index 要素序号、code、error_code、message、severity）。"
        ),
        request={"application/json": CreateSerializer, "multipart/form-data": CreateSerializer},
        responses={
            201: OpenApiResponse(OBJECT, description="方案（同详情），上传时另含 warnings"),
            **write_errors(
                capability=CAPABILITY,
                codes="reference_not_found, plan_name_required, plan_nothing_on_date, plan_upload_rejected, "
                "code_format, code_parent_mismatch, code_taken, geometry_*",
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = parse_body(self.CreateSerializer, request)
        community = plans_access.community_for_planning(self.reach, data["community"])
        warnings: list[dict[str, Any]] = []
        if data.get("file") is not None:
            upload = data["file"]
            plan, warnings = plans.plan_create_from_file(
                community=community,
                name=data["name"],
                file=upload,
                filename=upload.name or "",
                crs=data.get("crs"),
                layer=data.get("layer"),
                code_field=data["code_field"],
                name_field=data["name_field"],
            )
        else:
            plan = plans.plan_create(community=community, name=data["name"], as_of=data.get("as_of"))
        return Response({**_detail(plan), "warnings": warnings}, status=status.HTTP_201_CREATED)


class PlanDetailApi(_PlanApi):
    class RenameSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100, help_text="方案名称")

    @extend_schema(
        tags=[TAG],
        summary="方案详情",
        description="方案及其网格（cells：GeoJSON FeatureCollection，属性 code、name、locked、new），"
        "撤销/重做是否可用，stale：起草后社区网格边界是否已被修改（已过时的草稿不能应用）。",
        responses={200: OpenApiResponse(OBJECT), **READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(_detail(self.plan(pk)))

    @extend_schema(
        tags=[TAG],
        summary="重命名草稿",
        request=RenameSerializer,
        responses={200: OpenApiResponse(OBJECT), **write_errors(capability=CAPABILITY, codes="plan_name_required"),
                   **CONFLICT},
    )
    def patch(self, request: Request, pk: int) -> Response:
        data = parse_body(self.RenameSerializer, request)
        return Response(_detail(plans.plan_rename(plan=self.plan(pk), name=data["name"])))

    @extend_schema(
        tags=[TAG],
        summary="放弃草稿",
        description="草稿标记为已放弃（保留记录，不能再编辑或应用）。",
        request=None,
        responses={200: OpenApiResponse(OBJECT), **write_errors(capability=CAPABILITY, codes="—"), **CONFLICT},
    )
    def delete(self, request: Request, pk: int) -> Response:
        return Response(_detail(plans.plan_abandon(plan=self.plan(pk))))


class EditLogSerializer(serializers.ModelSerializer):
    kind_display = serializers.CharField(source="get_kind_display", read_only=True)

    class Meta:
        model = PlanEdit
        fields = ["seq", "kind", "kind_display", "summary", "payload", "created_by_name", "created_at"]
        read_only_fields = fields


class PlanEditsApi(_PlanApi):
    class EditSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=PlanEdit.Kind.choices, help_text="操作类型")
        payload = serializers.DictField(
            help_text=(
                "reshape {code, geometry, neighbours?: yield|keep}；draw {geometry, name?, neighbours?}；"
                "split {code, line, name?}；merge {code（保留）, other（并入后撤销）}；"
                "move_building {building（楼栋编码）, to（相邻网格编码）}；lock / unlock {code | codes | all: true}。"
                "geometry 为 GeoJSON 面，line 为 GeoJSON 线；neighbours 缺省 yield：相邻网格让出被覆盖的部分"
            )
        )
        cursor = serializers.IntegerField(
            required=False, min_value=0, help_text="客户端所见的编辑位置；与服务器不同则 409 plan_edit_conflict"
        )
        crs = serializers.CharField(required=False, max_length=32, help_text="几何坐标系，缺省 WGS-84")

    @extend_schema(
        tags=[TAG],
        summary="编辑记录",
        description="草稿的全部编辑步骤（含已撤销、可重做的步骤：seq 大于方案 cursor 者）。",
        responses={200: EditLogSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        plan = self.plan(pk)
        return Response(EditLogSerializer(PlanEdit.objects.filter(plan=plan).order_by("seq"), many=True).data)

    @extend_schema(
        tags=[TAG],
        summary="编辑草稿",
        description=(
            "一步编辑：调整边界、新绘网格、沿线拆分、合并、楼栋换网格、锁定/解锁。"
            "返回 plan（cursor、can_undo、can_redo）、edit、changed（变化网格的 GeoJSON 要素，移出方案者为 null）"
            "和 checks（实时检查：summary、cells、problems，problems 带 GeoJSON 几何）。"
        ),
        request=EditSerializer,
        responses={200: OpenApiResponse(OBJECT), **write_errors(capability=CAPABILITY, codes=EDIT_CODES), **CONFLICT},
    )
    def post(self, request: Request, pk: int) -> Response:
        data = parse_body(self.EditSerializer, request)
        answer = plans.plan_edit(
            plan=self.plan(pk),
            kind=data["kind"],
            payload=data["payload"],
            cursor=data.get("cursor"),
            crs=data.get("crs"),
        )
        return Response(answer)


class CursorSerializer(serializers.Serializer):
    cursor = serializers.IntegerField(
        required=False, min_value=0, help_text="客户端所见的编辑位置；与服务器不同则 409 plan_edit_conflict"
    )


class PlanUndoApi(_PlanApi):
    @extend_schema(
        tags=[TAG],
        summary="撤销",
        description="撤销最近一步编辑；返回内容同“编辑草稿”。",
        request=CursorSerializer,
        responses={200: OpenApiResponse(OBJECT), **write_errors(capability=CAPABILITY, codes="plan_nothing_to_undo"),
                   **CONFLICT},
    )
    def post(self, request: Request, pk: int) -> Response:
        data = parse_body(CursorSerializer, request)
        return Response(plans.plan_undo(plan=self.plan(pk), cursor=data.get("cursor")))


class PlanRedoApi(_PlanApi):
    @extend_schema(
        tags=[TAG],
        summary="重做",
        description="重做最近撤销的一步；新的编辑会清除可重做的步骤。返回内容同“编辑草稿”。",
        request=CursorSerializer,
        responses={200: OpenApiResponse(OBJECT), **write_errors(capability=CAPABILITY, codes="plan_nothing_to_redo"),
                   **CONFLICT},
    )
    def post(self, request: Request, pk: int) -> Response:
        data = parse_body(CursorSerializer, request)
        return Response(plans.plan_redo(plan=self.plan(pk), cursor=data.get("cursor")))


class PlanChecksApi(_PlanApi):
    @extend_schema(
        tags=[TAG],
        summary="实时检查",
        description=(
            "草稿的检查：网格覆盖社区（无缝隙、无重叠、不出界、不分块）、每栋楼只在一个网格内、"
            "每格户数在范围内（及偏差）、每格有网格员、紧凑度（Polsby-Popper）、相对现行网格调整的户数。"
        ),
        responses={200: OpenApiResponse(OBJECT), **READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(plans_checks.plan_checks(plan=self.plan(pk)))


class PlanPreviewApi(_PlanApi):
    @extend_schema(
        tags=[TAG],
        summary="应用前影响预览",
        description=(
            "应用后哪些楼栋、户数、党员（按居住地）、楼栋党小组、两新组织、网格员、现存缺口从哪个网格到哪个网格；"
            "哪些网格党支部失去或获得网格；会新增和消除哪些覆盖缺口（按草稿试算）；调整前后的网格（GeoJSON）。"
        ),
        responses={200: OpenApiResponse(OBJECT), **READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(plans_preview.plan_preview(plan=self.plan(pk)))


class PlanApplyApi(_PlanApi):
    class ApplySerializer(serializers.Serializer):
        valid_from = serializers.DateField(required=False, help_text="生效日期，缺省为今天")
        reason = serializers.CharField(max_length=500, help_text="调整事由（必填，记入审计）")

    @extend_schema(
        tags=[TAG],
        summary="应用方案",
        description=(
            "一个事务：新网格建立、被合并网格撤销、边界新版本自 valid_from 起生效、楼栋重新归属、覆盖缺口随后重算。"
            "起草后社区网格已被修改（如另一方案刚刚应用）则 409 plan_stale，什么都不写。"
        ),
        request=ApplySerializer,
        responses={
            200: OpenApiResponse(OBJECT),
            **write_errors(
                capability=CAPABILITY,
                codes="plan_reason_required, boundary_conflict, grid_overlap, grid_outside_community, code_taken",
            ),
            **CONFLICT,
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        data = parse_body(self.ApplySerializer, request)
        result = plans.plan_apply(
            plan=self.plan(pk), valid_from=data.get("valid_from") or timezone.localdate(), reason=data["reason"]
        )
        return Response(result)


class NameSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, max_length=100, help_text="新方案名称（可省略）")


class PlanCopyApi(_PlanApi):
    @extend_schema(
        tags=[TAG],
        summary="复制方案",
        description="以该方案当前的网格建立新草稿（不含编辑记录）。",
        request=NameSerializer,
        responses={201: OpenApiResponse(OBJECT), **write_errors(capability=CAPABILITY, codes="—")},
    )
    def post(self, request: Request, pk: int) -> Response:
        data = parse_body(NameSerializer, request)
        copy = plans.plan_copy(plan=self.plan(pk), name=data.get("name", ""))
        return Response(_detail(copy), status=status.HTTP_201_CREATED)


class PlanRevertApi(_PlanApi):
    @extend_schema(
        tags=[TAG],
        summary="恢复已应用的方案",
        description="以一个已应用方案的网格建立新草稿；应用该草稿即恢复到那时的网格（作为新的方案记录）。"
        "恢复到某日的网格：POST /api/plans/ 带 as_of。",
        request=NameSerializer,
        responses={201: OpenApiResponse(OBJECT), **write_errors(capability=CAPABILITY, codes="plan_not_applied")},
    )
    def post(self, request: Request, pk: int) -> Response:
        data = parse_body(NameSerializer, request)
        draft = plans.plan_revert(plan=self.plan(pk), name=data.get("name", ""))
        return Response(_detail(draft), status=status.HTTP_201_CREATED)


class PlanCompareApi(_PlanApi):
    class CompareSerializer(serializers.Serializer):
        other = serializers.IntegerField(required=False, min_value=1, help_text="另一方案编号；缺省与现行网格比较")

    @extend_schema(
        tags=[TAG],
        summary="方案比较",
        description="两个方案（或方案与现行网格）逐网格的面积、户数及差值，以及两边的检查得分。",
        parameters=[CompareSerializer],
        responses={200: OpenApiResponse(OBJECT), **READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        query = parse_query(self.CompareSerializer, request)
        plan = self.plan(pk)
        other = self.plan(query["other"]) if "other" in query else None
        if other is not None and other.community_id != plan.community_id:
            raise DomainError("只能比较同一社区的方案", code="plan_other_community", detail={"field": "other"})
        return Response(plans_preview.plans_compare(plan=plan, other=other))
