"""Party members: list, detail, create, update, and the roster export."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from edge.api import (
    NOT_FOUND,
    PAGE_PARAMETERS,
    READ_ERRORS,
    UNAUTHENTICATED_RESPONSE,
    ListPagination,
    MonthField,
    ReachAPIView,
    one_referenced,
    parse_body,
    parse_query,
)
from edge.errors import DomainError
from grid import access as grid_access
from orgs import access, pii, roster, selectors, services
from orgs.apis.common import TAG_PEOPLE, WRITE_ERRORS
from orgs.apis.organisations import OrgRefSerializer
from orgs.models import (
    PartyMember,
    PartyOrganisation,
)

Kind = PartyOrganisation.Kind

# --------------------------------------------------------------------------------------------
# Party members
# --------------------------------------------------------------------------------------------


class MemberOutputSerializer(serializers.Serializer):
    """A member; id_number and phone are masked unless `pii_masked` is false."""

    id = serializers.IntegerField(help_text="党员编号")
    name = serializers.CharField(help_text="姓名")
    gender = serializers.CharField(help_text="性别")
    gender_display = serializers.CharField(source="get_gender_display", help_text="性别（中文）")
    birth_date = serializers.DateField(allow_null=True, help_text="出生日期")
    joined_on = serializers.DateField(allow_null=True, help_text="入党日期")
    status = serializers.CharField(help_text="党员身份")
    status_display = serializers.CharField(source="get_status_display", help_text="党员身份（中文）")
    category = serializers.CharField(help_text="类别")
    category_display = serializers.CharField(source="get_category_display", help_text="类别（中文）")
    organisation = OrgRefSerializer(allow_null=True, help_text="所在党组织；null 表示未纳入组织管理")
    residence_building_code = serializers.CharField(
        source="residence_building.code", allow_null=True, help_text="居住楼栋编码"
    )
    community_code = serializers.CharField(
        source="residence_building.community.code", allow_null=True, help_text="居住社区编码"
    )
    grid_code = serializers.CharField(
        source="residence_building.grid_cell.code", allow_null=True, help_text="居住网格编码"
    )
    id_number = serializers.SerializerMethodField(help_text="身份证号（无查看权限时脱敏）")
    phone = serializers.SerializerMethodField(help_text="联系电话（无查看权限时脱敏）")
    pii_masked = serializers.SerializerMethodField(help_text="身份证号和电话是否已脱敏")
    work_unit = serializers.CharField(help_text="工作单位")
    reported_community_code = serializers.CharField(
        source="reported_community.code", allow_null=True, help_text="双报到社区编码"
    )
    reported_on = serializers.DateField(allow_null=True, help_text="报到日期")
    dues_paid_through = MonthField(allow_null=True, help_text="党费缴至（YYYY-MM）")

    def _unmasked(self, obj: PartyMember) -> bool:
        return obj.pk in self.context.get("pii_visible", ())

    def get_id_number(self, obj: PartyMember) -> str:
        clear = pii.pii_reveal(obj.id_number_cipher)
        return clear if self._unmasked(obj) else pii.mask_id_number(clear)

    def get_phone(self, obj: PartyMember) -> str:
        clear = pii.pii_reveal(obj.phone_cipher)
        return clear if self._unmasked(obj) else pii.mask_phone(clear)

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_pii_masked(self, obj: PartyMember) -> bool:
        return not self._unmasked(obj)


class MemberInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=32, help_text="姓名")
    gender = serializers.ChoiceField(choices=PartyMember.Gender.choices, help_text="性别")
    status = serializers.ChoiceField(choices=PartyMember.Status.choices, required=False, help_text="党员身份")
    category = serializers.ChoiceField(choices=PartyMember.Category.choices, required=False, help_text="类别")
    birth_date = serializers.DateField(required=False, allow_null=True, help_text="出生日期")
    joined_on = serializers.DateField(required=False, allow_null=True, help_text="入党日期")
    organisation = serializers.IntegerField(required=False, allow_null=True, help_text="所在党组织编号")
    residence_building = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=32, help_text="居住楼栋编码"
    )
    id_number = serializers.CharField(
        required=False, allow_blank=True, max_length=32, help_text="身份证号（18位，校验码须正确）"
    )
    phone = serializers.CharField(required=False, allow_blank=True, max_length=32, help_text="联系电话")
    work_unit = serializers.CharField(required=False, allow_blank=True, max_length=100, help_text="工作单位")
    reported_community = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=12, help_text="双报到社区编码"
    )
    reported_on = serializers.DateField(required=False, allow_null=True, help_text="报到日期")
    dues_paid_through = MonthField(required=False, allow_null=True, help_text="党费缴至（YYYY-MM）")


def _member_references(reach: grid_access.Reach, data: dict[str, Any]) -> dict[str, Any]:
    edit = access.capability_reach(reach, "edit_orgs")
    out = dict(data)
    if "organisation" in data:
        out["organisation"] = (
            one_referenced(access.party_orgs_in_reach(edit, strict=True), "organisation", pk=data["organisation"])
            if data["organisation"] is not None
            else None
        )
    if "residence_building" in data:
        out["residence_building"] = (
            one_referenced(grid_access.buildings_in_reach(edit), "residence_building", code=data["residence_building"])
            if data["residence_building"]
            else None
        )
    if "reported_community" in data:
        out["reported_community"] = (
            one_referenced(
                grid_access.communities_in_reach(reach), "reported_community", code=data["reported_community"]
            )
            if data["reported_community"]
            else None
        )
    return out


def _member_output(member: PartyMember) -> dict[str, Any]:
    # A write answers masked: the writer typed the values; echoing them needs no read_pii row.
    fresh = selectors.party_member_list(reach=grid_access.Reach(everything=True)).get(pk=member.pk)
    return dict(MemberOutputSerializer(fresh).data)


class MemberListApi(ReachAPIView):
    pagination_class = ListPagination  # so that the schema documents the page envelope
    write_capability = "edit_orgs"

    class FilterSerializer(serializers.Serializer):
        organisation = serializers.IntegerField(required=False, help_text="只列出该党组织（编号）的党员")
        community = serializers.CharField(
            required=False, max_length=12, help_text="只列出居住在该社区（编码）的党员"
        )
        grid = serializers.CharField(
            required=False, max_length=15, help_text="只列出居住在该网格（编码）的党员"
        )
        category = serializers.ChoiceField(
            choices=PartyMember.Category.choices, required=False, help_text="按类别筛选"
        )
        status = serializers.ChoiceField(
            choices=PartyMember.Status.choices, required=False, help_text="按身份筛选"
        )

    @extend_schema(
        tags=[TAG_PEOPLE],
        summary="党员列表",
        description="当前账号范围内的党员（分页）。身份证号和联系电话默认脱敏；街道、社区管理员在其管辖范围内可见明文，"
        "每次明文查看都记入审计日志（read_pii）。",
        parameters=[FilterSerializer, *PAGE_PARAMETERS],
        responses={200: MemberOutputSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        f = parse_query(self.FilterSerializer, request)
        qs = selectors.party_member_list(
            reach=self.reach,
            organisation_id=f.get("organisation"),
            community_code=f.get("community"),
            grid_code=f.get("grid"),
            category=f.get("category"),
            status=f.get("status"),
        )
        paginator = ListPagination()
        page = paginator.paginate_queryset(qs, request, view=self) or []
        visible = access.pii_visible(reach=self.reach, objects=page, purpose="党员列表")
        data = MemberOutputSerializer(page, many=True, context={"pii_visible": visible}).data
        return paginator.get_paginated_response(data)

    @extend_schema(
        tags=[TAG_PEOPLE],
        summary="新增党员",
        description="党员须属于可维护范围内的党组织或居住楼栋；身份证号按哈希查重（重复返回 member_duplicate_id_number）。",
        request=MemberInputSerializer,
        responses={201: MemberOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = _member_references(self.reach, parse_body(MemberInputSerializer, request))
        member = services.party_member_create(reach=self.reach, **data)
        return Response(_member_output(member), status=status.HTTP_201_CREATED)


class MemberDetailApi(ReachAPIView):
    write_capability = "edit_orgs"

    @extend_schema(
        tags=[TAG_PEOPLE],
        summary="党员详情",
        description="有查看权限时返回明文身份证号和电话，并记入审计日志（read_pii）。",
        responses={200: MemberOutputSerializer, **READ_ERRORS, **NOT_FOUND},
    )
    def get(self, request: Request, pk: int) -> Response:
        member = selectors.party_member_get(reach=self.reach, member_id=pk)
        visible = access.pii_visible(reach=self.reach, objects=[member], purpose="党员详情")
        return Response(MemberOutputSerializer(member, context={"pii_visible": visible}).data)

    @extend_schema(
        tags=[TAG_PEOPLE],
        summary="修改党员",
        description="只修改给出的字段；id_number、phone 给出空字符串表示清除。",
        request=MemberInputSerializer(partial=True),
        responses={200: MemberOutputSerializer, **WRITE_ERRORS, **NOT_FOUND},
    )
    def patch(self, request: Request, pk: int) -> Response:
        member = access.get_editable(self.reach, selectors.party_member_list(reach=self.reach), pk=pk)
        data = _member_references(self.reach, parse_body(MemberInputSerializer, request, partial=True))
        member = services.party_member_update(reach=self.reach, member=member, **data)
        return Response(_member_output(member))


# --------------------------------------------------------------------------------------------
# Personal-data export
# --------------------------------------------------------------------------------------------

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXPORT_TYPES = {"xlsx": XLSX, "csv": "text/csv; charset=utf-8"}


class MemberExportApi(ReachAPIView):
    # Exporting the roster is handling personal data in bulk: the roles that may see it (street
    # and community admins) may export, masked unless they also hold the export permission.
    write_capability = "view_pii"

    class ExportInputSerializer(serializers.Serializer):
        reason = serializers.CharField(
            required=False, allow_blank=True, max_length=500, help_text="导出事由（必填，记入审计日志）"
        )
        format = serializers.ChoiceField(
            choices=[("xlsx", "Excel"), ("csv", "CSV")], required=False, default="xlsx", help_text="文件格式"
        )
        community = serializers.CharField(
            required=False,
            allow_blank=True,
            max_length=12,
            help_text="只导出该社区（编码）的党员；不填为全部范围",
        )

    @extend_schema(
        tags=[TAG_PEOPLE],
        summary="导出党员名册",
        description="按当前账号范围导出党员名册（表头同导入，可回导）。须填写事由（否则 reason_required）；"
        "身份证号和电话仅当账号有“可导出个人信息”权限且对全部导出对象有查看权限时为明文，否则脱敏。"
        "每次导出记入审计日志（事由、人数、是否明文）。",
        request=ExportInputSerializer,
        responses={
            (200, XLSX): OpenApiResponse(OpenApiTypes.BINARY, description="党员名册（附件）"),
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.BINARY, description="党员名册（附件，UTF-8 带 BOM）"
            ),
            400: OpenApiResponse(
                description="输入有误：{code, message}，code 如 reason_required、invalid_input、reference_not_found"
            ),
            401: UNAUTHENTICATED_RESPONSE,
            403: OpenApiResponse(description="角色不能导出个人信息（需街道或社区管理员）：{code, message}"),
        },
    )
    def post(self, request: Request) -> HttpResponse:
        data = parse_body(self.ExportInputSerializer, request)
        reason = (data.get("reason") or "").strip()
        if not reason:
            raise DomainError("导出个人信息必须填写事由", code="reason_required")
        community = None
        if data.get("community"):
            community = one_referenced(
                grid_access.communities_in_reach(self.reach), "community", code=data["community"]
            )
        members = selectors.members_for_export(reach=self.reach, community=community)
        unmasked = access.roster_export_unmasked(user=request.user, reach=self.reach, members=members)
        fmt = data.get("format") or "xlsx"
        street_ids = list(grid_access.streets_in_reach(self.reach).values_list("pk", flat=True)[:2])
        street_id = community.street_id if community else (street_ids[0] if len(street_ids) == 1 else None)
        with tempfile.TemporaryDirectory(prefix="wangge-export-") as tmp:
            path = Path(tmp) / f"party-members.{fmt}"
            count = roster.members_export(
                members=members,
                path=path,
                reason=reason,
                unmasked=unmasked,
                street_id=street_id,
                scope=f"社区 {community.code}" if community else "API 导出",
            )
            content = path.read_bytes()
        response = HttpResponse(content, content_type=EXPORT_TYPES[fmt])
        stamp = timezone.localdate().strftime("%Y%m%d")
        response["Content-Disposition"] = f'attachment; filename="party-members-{stamp}.{fmt}"'
        response["X-Export-Count"] = str(count)
        response["X-Export-Masked"] = "0" if unmasked else "1"
        return response
