"""Grid workers and stationed cadres."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from edge.api import (
    NOT_FOUND,
    PAGE_PARAMETERS,
    READ_ERRORS,
    ListPagination,
    ReachAPIView,
    one_referenced,
    parse_body,
    parse_query,
)
from edge.errors import reference_not_found
from grid import access as grid_access
from orgs import access, pii, selectors, services
from orgs.apis.common import TAG_PEOPLE, WRITE_ERRORS
from orgs.models import (
    GridWorker,
    PartyOrganisation,
)

Kind = PartyOrganisation.Kind

# --------------------------------------------------------------------------------------------
# Grid workers and stationed cadres
# --------------------------------------------------------------------------------------------


class GridCellRefSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="网格编码")
    name = serializers.CharField(help_text="网格名称")


class WorkerOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="网格员编号")
    name = serializers.CharField(help_text="姓名")
    community_code = serializers.CharField(source="community.code", help_text="所属社区编码")
    community_name = serializers.CharField(source="community.name", help_text="所属社区名称")
    grid_cells = GridCellRefSerializer(many=True, help_text="负责网格")
    full_time = serializers.BooleanField(help_text="是否专职社区工作者")
    active = serializers.BooleanField(help_text="是否在岗")
    phone = serializers.SerializerMethodField(help_text="联系电话（无查看权限时脱敏）")
    pii_masked = serializers.SerializerMethodField(help_text="电话是否已脱敏")

    def get_phone(self, obj: GridWorker) -> str:
        clear = pii.pii_reveal(obj.phone_cipher)
        return clear if obj.pk in self.context.get("pii_visible", ()) else pii.mask_phone(clear)

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_pii_masked(self, obj: GridWorker) -> bool:
        return obj.pk not in self.context.get("pii_visible", ())


class WorkerInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=32, help_text="姓名")
    community = serializers.CharField(max_length=12, help_text="所属社区编码")
    grid_cells = serializers.ListField(
        child=serializers.CharField(max_length=15),
        required=False,
        max_length=200,
        help_text="负责网格编码（须在所属社区内）",
    )
    full_time = serializers.BooleanField(required=False, help_text="是否专职社区工作者，默认是")
    active = serializers.BooleanField(required=False, help_text="是否在岗（仅修改时）")
    phone = serializers.CharField(
        required=False, allow_blank=True, max_length=32, help_text="联系电话；修改时给出空字符串表示清除"
    )


def _worker_references(reach: grid_access.Reach, data: dict[str, Any]) -> dict[str, Any]:
    """Community and grids looked up where the caller may edit: a worker's grids must also lie in
    the worker's community (the service's rule), so together they stay inside the caller's reach."""
    edit = access.capability_reach(reach, "edit_orgs")
    out = dict(data)
    if "community" in data:
        out["community"] = one_referenced(access.communities_wholly_in_reach(edit), "community", code=data["community"])
    if "grid_cells" in data:
        codes = list(dict.fromkeys(data["grid_cells"]))
        found = list(grid_access.grid_cells_in_reach(edit).filter(code__in=codes))
        missing = sorted(set(codes) - {c.code for c in found})
        if missing:
            raise reference_not_found("grid_cells", "、".join(missing))
        out["grid_cells"] = found
    return out


def _worker_output(worker: GridWorker) -> dict[str, Any]:
    # Masked, as a member write answers: the writer typed the phone.
    fresh = selectors.grid_worker_list(reach=grid_access.Reach(everything=True)).get(pk=worker.pk)
    return dict(WorkerOutputSerializer(fresh).data)


class WorkerListApi(ReachAPIView):
    pagination_class = ListPagination  # so that the schema documents the page envelope
    write_capability = "edit_orgs"

    class FilterSerializer(serializers.Serializer):
        community = serializers.CharField(
            required=False, max_length=12, help_text="只列出该社区（编码）的网格员"
        )
        grid = serializers.CharField(
            required=False, max_length=15, help_text="只列出负责该网格（编码）的网格员"
        )

    @extend_schema(
        tags=[TAG_PEOPLE],
        summary="网格员列表",
        description="当前账号范围内的网格员及其负责网格（分页）；电话脱敏规则同党员。",
        parameters=[FilterSerializer, *PAGE_PARAMETERS],
        responses={200: WorkerOutputSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        f = parse_query(self.FilterSerializer, request)
        qs = selectors.grid_worker_list(
            reach=self.reach, community_code=f.get("community"), grid_code=f.get("grid")
        )
        paginator = ListPagination()
        page = paginator.paginate_queryset(qs, request, view=self) or []
        visible = access.pii_visible(reach=self.reach, objects=page, purpose="网格员列表")
        data = WorkerOutputSerializer(page, many=True, context={"pii_visible": visible}).data
        return paginator.get_paginated_response(data)

    @extend_schema(
        tags=[TAG_PEOPLE],
        summary="新增网格员",
        description="所属社区须在您可维护的范围内；负责网格须在所属社区内（否则 worker_grid_outside_community）。",
        request=WorkerInputSerializer,
        responses={201: WorkerOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = _worker_references(self.reach, parse_body(WorkerInputSerializer, request))
        data.pop("active", None)
        worker = services.grid_worker_create(reach=self.reach, **data)
        return Response(_worker_output(worker), status=status.HTTP_201_CREATED)


class WorkerDetailApi(ReachAPIView):
    write_capability = "edit_orgs"

    @extend_schema(
        tags=[TAG_PEOPLE],
        summary="修改网格员",
        description="只修改给出的字段；grid_cells 给出时替换全部负责网格，须在（新的）所属社区内。",
        request=WorkerInputSerializer(partial=True),
        responses={200: WorkerOutputSerializer, **WRITE_ERRORS, **NOT_FOUND},
    )
    def patch(self, request: Request, pk: int) -> Response:
        worker = access.get_editable(self.reach, selectors.grid_worker_list(reach=self.reach), pk=pk)
        data = _worker_references(self.reach, parse_body(WorkerInputSerializer, request, partial=True))
        worker = services.grid_worker_update(reach=self.reach, worker=worker, **data)
        return Response(_worker_output(worker))

    @extend_schema(
        tags=[TAG_PEOPLE],
        summary="网格员详情",
        responses={200: WorkerOutputSerializer, **READ_ERRORS, **NOT_FOUND},
    )
    def get(self, request: Request, pk: int) -> Response:
        worker = selectors.grid_worker_get(reach=self.reach, worker_id=pk)
        visible = access.pii_visible(reach=self.reach, objects=[worker], purpose="网格员详情")
        return Response(WorkerOutputSerializer(worker, context={"pii_visible": visible}).data)


class CadreOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="驻点干部编号")
    name = serializers.CharField(help_text="姓名")
    community_code = serializers.CharField(source="community.code", help_text="驻点社区编码")
    community_name = serializers.CharField(source="community.name", help_text="驻点社区名称")
    period_start = serializers.DateField(help_text="驻点开始")
    period_end = serializers.DateField(allow_null=True, help_text="驻点结束；null 表示仍在驻点")
    required_days_per_month = serializers.IntegerField(help_text="每月应驻点天数")
    required_contacts_per_month = serializers.IntegerField(help_text="每月应联系群众次数")


class CadreListApi(ReachAPIView):
    pagination_class = ListPagination  # so that the schema documents the page envelope

    class FilterSerializer(serializers.Serializer):
        community = serializers.CharField(
            required=False, max_length=12, help_text="只列出驻该社区（编码）的干部"
        )
        date = serializers.DateField(required=False, help_text="只列出该日（YYYY-MM-DD）在驻点期内的干部")

    @extend_schema(
        tags=[TAG_PEOPLE],
        summary="驻点干部列表",
        description="当前账号整体管辖的社区中的驻点干部（分页）。",
        parameters=[FilterSerializer, *PAGE_PARAMETERS],
        responses={200: CadreOutputSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        f = parse_query(self.FilterSerializer, request)
        qs = selectors.stationed_cadre_list(
            reach=self.reach, community_code=f.get("community"), on_date=f.get("date")
        )
        paginator = ListPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(CadreOutputSerializer(page, many=True).data)


class CadreDetailApi(ReachAPIView):
    write_capability = "edit_orgs"

    class InputSerializer(serializers.Serializer):
        period_start = serializers.DateField(required=False, help_text="驻点开始")
        period_end = serializers.DateField(required=False, allow_null=True, help_text="驻点结束")
        required_days_per_month = serializers.IntegerField(
            required=False, min_value=0, max_value=31, help_text="每月应驻点天数"
        )
        required_contacts_per_month = serializers.IntegerField(
            # The column is a smallint: a larger number would be a database error (500), not a 400.
            required=False,
            min_value=0,
            max_value=32767,
            help_text="每月应联系群众次数",
        )

    @extend_schema(
        tags=[TAG_PEOPLE],
        summary="驻点干部详情",
        responses={200: CadreOutputSerializer, **READ_ERRORS, **NOT_FOUND},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(
            CadreOutputSerializer(selectors.stationed_cadre_get(reach=self.reach, cadre_id=pk)).data
        )

    @extend_schema(
        tags=[TAG_PEOPLE],
        summary="修改驻点干部",
        description="修改驻点期和每月任务（如结束驻点）。",
        request=InputSerializer,
        responses={200: CadreOutputSerializer, **WRITE_ERRORS, **NOT_FOUND},
    )
    def patch(self, request: Request, pk: int) -> Response:
        cadre = access.get_editable(self.reach, selectors.stationed_cadre_list(reach=self.reach), pk=pk)
        data = parse_body(self.InputSerializer, request, partial=True)
        cadre = services.stationed_cadre_update(reach=self.reach, cadre=cadre, **data)
        return Response(CadreOutputSerializer(cadre).data)


