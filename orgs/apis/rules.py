"""Rule violations (orgs.rules) about what the caller reaches."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from edge.api import (
    NOT_FOUND,
    PAGE_PARAMETERS,
    READ_ERRORS,
    ListPagination,
    ReachAPIView,
    parse_query,
)
from grid import access as grid_access
from grid.models import Street
from orgs import selectors
from orgs.apis.common import TAG_RULES
from orgs.models import (
    PartyOrganisation,
)
from orgs.rules import RULE_CODES

Kind = PartyOrganisation.Kind

# --------------------------------------------------------------------------------------------
# Rule violations
# --------------------------------------------------------------------------------------------


class ViolationSerializer(serializers.Serializer):
    rule_code = serializers.CharField(help_text="规则代码（稳定），如 org_term_overdue")
    rule_label = serializers.CharField(help_text="规则名称（中文）")
    subject_type = serializers.CharField(help_text="对象类型：org、community 或 enterprise")
    subject_id = serializers.IntegerField(help_text="对象编号")
    subject_name = serializers.CharField(help_text="对象名称")
    responsible_org_id = serializers.IntegerField(allow_null=True, help_text="责任党组织编号")
    responsible_org_name = serializers.CharField(help_text="责任党组织名称（兜底时注明）")
    message = serializers.CharField(help_text="说明（中文）")
    detail = serializers.DictField(help_text="明细（人数、阈值、日期等）")


class ViolationListApi(ReachAPIView):
    pagination_class = ListPagination  # so that the schema documents the page envelope

    class FilterSerializer(serializers.Serializer):
        street = serializers.CharField(
            required=False, max_length=9, help_text="街道编码；不填为账号范围内的全部街道"
        )
        date = serializers.DateField(required=False, help_text="按此日期检查（YYYY-MM-DD），默认今天")

    @extend_schema(
        tags=[TAG_RULES],
        summary="规则检查结果",
        description="党组织设置、换届、大工委/大党委、社区工作者配备和两新组织覆盖规则的违规项（分页），"
        "只含当前账号范围内的对象。",
        parameters=[FilterSerializer, *PAGE_PARAMETERS],
        responses={200: ViolationSerializer(many=True), **READ_ERRORS, **NOT_FOUND},
    )
    def get(self, request: Request) -> Response:
        f = parse_query(self.FilterSerializer, request)
        street: Street | None = None
        if f.get("street"):
            street = grid_access.get_in_reach(self.reach, Street.objects.all(), code=f["street"])
        rows = [
            v.as_dict() | {"rule_label": RULE_CODES.get(v.rule_code, v.rule_code)}
            for v in selectors.rule_violations(reach=self.reach, street=street, today=f.get("date"))
        ]
        paginator = ListPagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(ViolationSerializer(page, many=True).data)


