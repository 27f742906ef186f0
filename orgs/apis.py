"""API of organisations and people: party organisations, members, grid workers, stationed cadres,
enterprises and rule violations, each scoped by the caller's reach (orgs.access).

Thin: each method parses with a nested serializer, calls a selector or one service, renders with a
nested output serializer. Writes need the `edit_orgs` capability (ReachAPIView); what they refer to
(parent, community, grid, buildings, premises) is looked up inside the caller's editing reach, and
the result must lie inside it too, or the whole write is rolled back. Refusals of the tree and
space rules come from the services as 400 with their stable code. Personal data is masked unless
the caller holds `view_pii` over that person; every unmasked answer is audited (read_pii).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from django.contrib.gis.geos import Point
from django.db import transaction
from django.db.models import Prefetch, Q, QuerySet
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from edge.api import (
    BBOX_PARAMETER,
    NOT_FOUND,
    PAGE_PARAMETERS,
    READ_ERRORS,
    UNAUTHENTICATED_RESPONSE,
    DocumentedPointField,
    FeaturePagination,
    ListPagination,
    MonthField,
    ReachAPIView,
    StrictInBBoxFilter,
    one_referenced,
    parse_body,
    parse_query,
    write_errors,
)
from edge.errors import DomainError, reference_not_found
from grid import access as grid_access
from grid import coords
from grid.models import STORAGE_SRID, Community, Street, unit_code_validator
from orgs import access, pii, roster, selectors, services
from orgs.models import (
    CommitteeSeat,
    Enterprise,
    GridWorker,
    PartyMember,
    PartyOrganisation,
    Rectification,
    StarRating,
    StationedCadre,
)
from orgs.rules import RULE_CODES

TAG_ORGS = "党组织"
TAG_PEOPLE = "党员与工作人员"
TAG_ENTERPRISES = "两新组织"
TAG_RULES = "规则检查"

Kind = PartyOrganisation.Kind


# --------------------------------------------------------------------------------------------
# Edge helpers
# --------------------------------------------------------------------------------------------


WRITE_ERRORS = write_errors(
    capability="edit_orgs",
    codes="如 invalid_input、org_parent_kind、org_grid_outside_parent_community、reference_not_found",
)


# --------------------------------------------------------------------------------------------
# Party organisations
# --------------------------------------------------------------------------------------------


class OrgRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="党组织编号")
    code = serializers.CharField(help_text="组织编码")
    name = serializers.CharField(help_text="名称")


class OrgOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="党组织编号")
    code = serializers.CharField(help_text="组织编码")
    name = serializers.CharField(help_text="名称")
    kind = serializers.CharField(help_text="类别")
    kind_display = serializers.CharField(source="get_kind_display", help_text="类别（中文）")
    level = serializers.CharField(help_text="层级")
    level_display = serializers.CharField(source="get_level_display", help_text="层级（中文）")
    parent = OrgRefSerializer(allow_null=True, help_text="上级党组织；街道党工委为 null")
    street_code = serializers.CharField(source="street.code", help_text="所属街道编码")
    community_code = serializers.CharField(
        source="community.code", allow_null=True, help_text="挂接的社区编码（社区党组织、驻区单位党组织等）"
    )
    grid_code = serializers.CharField(
        source="grid_cell.code", allow_null=True, help_text="挂接的网格编码（网格党支部）"
    )
    building_codes = serializers.SerializerMethodField(help_text="挂接的楼栋编码（楼栋党小组）")
    premises_id = serializers.IntegerField(allow_null=True, help_text="所在两新组织编号（两新组织党组织）")
    premises_name = serializers.CharField(
        source="premises.name", allow_null=True, help_text="所在两新组织名称"
    )
    unit_name = serializers.CharField(help_text="驻区单位名称")
    founded_on = serializers.DateField(allow_null=True, help_text="成立日期")
    term_started_on = serializers.DateField(allow_null=True, help_text="本届开始日期")
    term_years = serializers.IntegerField(help_text="任期（年）")
    is_enlarged = serializers.BooleanField(help_text="是否大工委/大党委")
    weak = serializers.BooleanField(help_text="是否软弱涣散（整顿中）")

    @extend_schema_field({"type": "array", "items": {"type": "string"}})
    def get_building_codes(self, obj: PartyOrganisation) -> list[str]:
        # Prefetched by the selector: sorted here rather than queried again.
        return sorted(b.code for b in obj.buildings.all())


class AncestorSerializer(OrgRefSerializer):
    kind = serializers.CharField(help_text="类别")
    level = serializers.CharField(help_text="层级")
    distance = serializers.IntegerField(help_text="相隔层数：1 为直接上级")


def _org_output(org: PartyOrganisation) -> dict[str, Any]:
    fresh = selectors.party_org_list(reach=grid_access.Reach(everything=True)).get(pk=org.pk)
    return dict(OrgOutputSerializer(fresh).data)


class OrgInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Kind.choices, help_text="类别")
    level = serializers.ChoiceField(choices=PartyOrganisation.Level.choices, help_text="层级")
    name = serializers.CharField(max_length=100, help_text="名称")
    code = serializers.CharField(
        max_length=32, validators=[unit_code_validator], help_text="组织编码（唯一）"
    )
    parent = serializers.IntegerField(
        required=False, allow_null=True, help_text="上级党组织编号；街道党工委不填"
    )
    street = serializers.CharField(
        required=False, allow_blank=True, max_length=9, help_text="所属街道编码；不填取上级党组织的街道"
    )
    community = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=12, help_text="挂接社区编码"
    )
    grid_cell = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=15, help_text="挂接网格编码"
    )
    buildings = serializers.ListField(
        child=serializers.CharField(max_length=32), required=False, help_text="楼栋编码（楼栋党小组）"
    )
    premises = serializers.IntegerField(required=False, allow_null=True, help_text="所在两新组织编号")
    unit_name = serializers.CharField(
        required=False, allow_blank=True, max_length=100, help_text="驻区单位名称"
    )
    founded_on = serializers.DateField(required=False, allow_null=True, help_text="成立日期")
    term_started_on = serializers.DateField(required=False, allow_null=True, help_text="本届开始日期")
    term_years = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=10, help_text="任期（年）；不填按规则默认"
    )
    is_enlarged = serializers.BooleanField(required=False, help_text="是否大工委/大党委")


def _org_references(reach: grid_access.Reach, data: dict[str, Any]) -> dict[str, Any]:
    """Turn the codes and ids of an org input into objects, each looked up inside the reach."""
    edit = access.capability_reach(reach, "edit_orgs")
    out: dict[str, Any] = {}
    if "parent" in data:
        out["parent"] = (
            one_referenced(access.party_orgs_in_reach(reach), "parent", pk=data["parent"])
            if data["parent"] is not None
            else None
        )
    if data.get("street"):
        out["street"] = one_referenced(grid_access.streets_in_reach(reach), "street", code=data["street"])
    for field, qs in (
        ("community", access.communities_wholly_in_reach(edit)),
        ("grid_cell", grid_access.grid_cells_in_reach(edit)),
    ):
        if field in data:
            out[field] = one_referenced(qs, field, code=data[field]) if data[field] else None
    if "premises" in data:
        out["premises"] = (
            one_referenced(access.enterprises_in_reach(edit), "premises", pk=data["premises"])
            if data["premises"] is not None
            else None
        )
    if "buildings" in data:
        codes = list(dict.fromkeys(data["buildings"]))
        found = list(grid_access.buildings_in_reach(edit).filter(code__in=codes))
        missing = sorted(set(codes) - {b.code for b in found})
        if missing:
            raise reference_not_found("buildings", "、".join(missing))
        out["buildings"] = found
    for field in (
        "kind",
        "level",
        "name",
        "code",
        "unit_name",
        "founded_on",
        "term_started_on",
        "term_years",
    ):
        if field in data:
            out[field] = data[field]
    if "is_enlarged" in data:
        out["is_enlarged"] = data["is_enlarged"]
    return out


def _check_org_editable(reach: grid_access.Reach, org_id: int) -> None:
    edit = access.capability_reach(reach, "edit_orgs")
    if not access.party_orgs_in_reach(
        edit, PartyOrganisation.objects.filter(pk=org_id), strict=True
    ).exists():
        raise DomainError("该党组织不在您可维护的范围内", code="org_outside_reach")


class OrgListApi(ReachAPIView):
    pagination_class = ListPagination  # so that the schema documents the page envelope
    write_capability = "edit_orgs"

    class FilterSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=Kind.choices, required=False, help_text="按类别筛选")
        community = serializers.CharField(
            required=False,
            max_length=12,
            help_text="只列出该社区（编码）内的党组织（含网格党支部、楼栋党小组等）",
        )
        street = serializers.CharField(required=False, max_length=9, help_text="只列出该街道（编码）的党组织")
        parent = serializers.IntegerField(required=False, help_text="只列出该党组织的直接下级")

    @extend_schema(
        tags=[TAG_ORGS],
        summary="党组织列表",
        description="当前账号范围内的党组织（分页），可按类别、社区、街道和上级筛选。网格员可见本网格的组织及其上级社区、街道组织。",
        parameters=[FilterSerializer, *PAGE_PARAMETERS],
        responses={200: OrgOutputSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        f = parse_query(self.FilterSerializer, request)
        qs = selectors.party_org_list(
            reach=self.reach,
            kind=f.get("kind"),
            community_code=f.get("community"),
            street_code=f.get("street"),
            parent_id=f.get("parent"),
        )
        paginator = ListPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(OrgOutputSerializer(page, many=True).data)

    @extend_schema(
        tags=[TAG_ORGS],
        summary="新建党组织",
        description="在上级党组织下新建党组织。组织树须与空间一致（如网格党支部的网格须在上级社区党组织的社区内），"
        "违反时返回 400 和稳定代码，不写入任何数据。",
        request=OrgInputSerializer,
        responses={201: OrgOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = _org_references(self.reach, parse_body(OrgInputSerializer, request))
        with transaction.atomic():
            org = services.party_org_create(**data)
            _check_org_editable(self.reach, org.pk)
        return Response(_org_output(org), status=status.HTTP_201_CREATED)


class OrgDetailApi(ReachAPIView):
    write_capability = "edit_orgs"

    @extend_schema(
        tags=[TAG_ORGS],
        summary="党组织详情",
        responses={200: OrgOutputSerializer, **READ_ERRORS, **NOT_FOUND},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(OrgOutputSerializer(selectors.party_org_get(reach=self.reach, org_id=pk)).data)

    @extend_schema(
        tags=[TAG_ORGS],
        summary="修改党组织",
        description="只修改给出的字段；buildings 给出时替换楼栋党小组的全部楼栋。规则同新建。",
        request=OrgInputSerializer(partial=True),
        responses={200: OrgOutputSerializer, **WRITE_ERRORS, **NOT_FOUND},
    )
    def patch(self, request: Request, pk: int) -> Response:
        org = selectors.party_org_get(reach=self.reach, org_id=pk)
        _check_org_editable(self.reach, org.pk)
        data = _org_references(self.reach, parse_body(OrgInputSerializer, request, partial=True))
        buildings = data.pop("buildings", None)
        with transaction.atomic():
            org = services.party_org_update(org=org, buildings=buildings, **data)
            _check_org_editable(self.reach, org.pk)
        return Response(_org_output(org))


class OrgSubtreeApi(ReachAPIView):
    pagination_class = ListPagination  # so that the schema documents the page envelope

    @extend_schema(
        tags=[TAG_ORGS],
        summary="党组织及其全部下级",
        description="该党组织及其所有下级（递归），限当前账号可见的部分，按编码排序（分页）。",
        parameters=PAGE_PARAMETERS,
        responses={200: OrgOutputSerializer(many=True), **READ_ERRORS, **NOT_FOUND},
    )
    def get(self, request: Request, pk: int) -> Response:
        org = selectors.party_org_get(reach=self.reach, org_id=pk)
        qs = selectors.party_org_subtree_in_reach(reach=self.reach, org=org)
        paginator = ListPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(OrgOutputSerializer(page, many=True).data)


class OrgAncestorsApi(ReachAPIView):
    @extend_schema(
        tags=[TAG_ORGS],
        summary="党组织的上级链",
        description="从街道党工委到直接上级，依次列出（只含编号、编码、名称、类别和层级）。",
        responses={200: AncestorSerializer(many=True), **READ_ERRORS, **NOT_FOUND},
    )
    def get(self, request: Request, pk: int) -> Response:
        org = selectors.party_org_get(reach=self.reach, org_id=pk)
        # The chain of command above an org one may see is shown as names only: a grid worker
        # needs to know whom their branch answers to.
        return Response(AncestorSerializer(selectors.party_org_ancestors(org=org), many=True).data)


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


def _check_member_editable(reach: grid_access.Reach, member_id: int) -> None:
    """A member written through the API must stay where the writer can see and edit them."""
    edit = access.capability_reach(reach, "edit_orgs")
    if not access.party_members_in_reach(edit, PartyMember.objects.filter(pk=member_id)).exists():
        raise DomainError("党员须属于您可维护范围内的党组织或居住楼栋", code="member_outside_reach")


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
        with transaction.atomic():
            member = services.party_member_create(**data)
            _check_member_editable(self.reach, member.pk)
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
        member = selectors.party_member_get(reach=self.reach, member_id=pk)
        _check_member_editable(self.reach, member.pk)
        data = _member_references(self.reach, parse_body(MemberInputSerializer, request, partial=True))
        pii_changes = {k: data.pop(k) for k in ("id_number", "phone") if k in data}
        with transaction.atomic():
            member = services.party_member_update(member=member, **pii_changes, **data)
            _check_member_editable(self.reach, member.pk)
        return Response(_member_output(member))


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


def _check_worker_editable(reach: grid_access.Reach, worker_id: int) -> None:
    edit = access.capability_reach(reach, "edit_orgs")
    editable = access.communities_wholly_in_reach(edit).filter(grid_workers__pk=worker_id)
    if not editable.exists():
        raise DomainError("该网格员不在您可维护的范围内", code="worker_outside_reach")


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
        worker = services.grid_worker_create(**data)
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
        worker = selectors.grid_worker_get(reach=self.reach, worker_id=pk)
        _check_worker_editable(self.reach, worker.pk)
        data = _worker_references(self.reach, parse_body(WorkerInputSerializer, request, partial=True))
        with transaction.atomic():
            worker = services.grid_worker_update(worker=worker, **data)
            _check_worker_editable(self.reach, worker.pk)
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
        edit = access.capability_reach(self.reach, "edit_orgs")
        cadre = selectors.stationed_cadre_get(reach=self.reach, cadre_id=pk)
        if not access.stationed_cadres_in_reach(edit, StationedCadre.objects.filter(pk=pk)).exists():
            raise exceptions.PermissionDenied("该驻点干部不在您可维护的范围内")
        data = parse_body(self.InputSerializer, request, partial=True)
        cadre = services.stationed_cadre_update(cadre=cadre, **data)
        return Response(CadreOutputSerializer(cadre).data)


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
        required=False, allow_blank=True, max_length=18, help_text="统一社会信用代码"
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


def _check_enterprise_editable(reach: grid_access.Reach, enterprise_id: int) -> None:
    edit = access.capability_reach(reach, "edit_orgs")
    if not access.enterprises_in_reach(edit, Enterprise.objects.filter(pk=enterprise_id)).exists():
        raise DomainError("两新组织的位置须在您可维护的范围内", code="enterprise_outside_reach")


def _enterprise_output(enterprise: Enterprise) -> dict[str, Any]:
    fresh = selectors.enterprise_list(reach=grid_access.Reach(everything=True)).get(pk=enterprise.pk)
    return dict(EnterpriseFeatureSerializer(fresh).data)


ENTERPRISE_WRITE_ERRORS = {
    **WRITE_ERRORS,
    400: OpenApiResponse(
        description="输入有误：{code, message, ...}，code 如 invalid_input、crs_unknown、coords_out_of_range、"
        "enterprise_outside_communities、enterprise_outside_reach、enterprise_credit_code_taken、reference_not_found"
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
        with transaction.atomic():
            enterprise = services.enterprise_create(**data)
            _check_enterprise_editable(self.reach, enterprise.pk)
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
        enterprise = selectors.enterprise_get(reach=self.reach, enterprise_id=pk)
        _check_enterprise_editable(self.reach, enterprise.pk)
        data = _enterprise_references(self.reach, parse_body(EnterpriseInputSerializer, request, partial=True))
        with transaction.atomic():
            enterprise = services.enterprise_update(enterprise=enterprise, **data)
            _check_enterprise_editable(self.reach, enterprise.pk)
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


# --------------------------------------------------------------------------------------------
# Data about one organisation: committee seats, rectifications, star ratings
# --------------------------------------------------------------------------------------------


def _org_for_data(reach: grid_access.Reach, org_id: int) -> PartyOrganisation:
    """An organisation whose own records (seats, rectifications, ratings) the caller may see.

    Strict reach, as for the people of an organisation: a grid worker sees the names of the
    community and street organisations above their grid, not their ratings or rectifications.
    """
    if not reach.can_read():
        raise grid_access.NotInReach
    qs = access.party_orgs_in_reach(reach, PartyOrganisation.objects.select_related("street"), strict=True)
    org = qs.filter(pk=org_id).first()
    if org is None:
        raise grid_access.NotInReach
    return org


class SeatOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="席位编号")
    org_id = serializers.IntegerField(help_text="大工委/大党委（党组织）编号")
    person_name = serializers.CharField(help_text="委员姓名")
    unit_name = serializers.CharField(help_text="所在单位")
    is_resident_unit_head = serializers.BooleanField(help_text="是否驻区单位党组织负责人（兼职委员）")
    liaison_community_codes = serializers.SerializerMethodField(help_text="分片联系社区编码")
    liaison_units = serializers.CharField(help_text="分片联系单位")

    @extend_schema_field({"type": "array", "items": {"type": "string"}})
    def get_liaison_community_codes(self, obj: CommitteeSeat) -> list[str]:
        return sorted(c.code for c in obj.liaison_communities.all())


class SeatInputSerializer(serializers.Serializer):
    person_name = serializers.CharField(max_length=32, help_text="委员姓名")
    unit_name = serializers.CharField(required=False, allow_blank=True, max_length=100, help_text="所在单位")
    is_resident_unit_head = serializers.BooleanField(
        required=False, help_text="是否驻区单位党组织负责人（计入大工委兼职委员比例）"
    )
    liaison_communities = serializers.ListField(
        child=serializers.CharField(max_length=12),
        required=False,
        max_length=100,
        help_text="分片联系社区编码（须在本街道内）",
    )
    liaison_units = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, help_text="分片联系单位"
    )


def _seats() -> QuerySet[CommitteeSeat]:
    return CommitteeSeat.objects.prefetch_related(
        Prefetch("liaison_communities", queryset=Community.objects.only("id", "code"))
    ).order_by("person_name", "id")


def _seat_get(reach: grid_access.Reach, seat_id: int) -> CommitteeSeat:
    if not reach.can_read():
        raise grid_access.NotInReach
    orgs = access.party_orgs_in_reach(reach, strict=True).values("pk")
    seat = _seats().filter(pk=seat_id, org__in=orgs).select_related("org").first()
    if seat is None:
        raise grid_access.NotInReach
    return seat


class OrgSeatListApi(ReachAPIView):
    write_capability = "edit_orgs"

    @extend_schema(
        tags=[TAG_ORGS],
        summary="大工委/大党委委员列表",
        description="该党组织（大工委/大党委）的全部委员席位，含兼职委员和分片联系的社区；非扩大的党组织为空列表。",
        responses={200: SeatOutputSerializer(many=True), **READ_ERRORS, **NOT_FOUND},
    )
    def get(self, request: Request, pk: int) -> Response:
        org = _org_for_data(self.reach, pk)
        return Response(SeatOutputSerializer(_seats().filter(org=org), many=True).data)

    @extend_schema(
        tags=[TAG_ORGS],
        summary="新增大工委/大党委委员",
        description="党组织须为大工委/大党委（否则 seat_org_not_enlarged），分片联系社区须在本街道内"
        "（seat_liaison_outside_street）且在您可维护的范围内。",
        request=SeatInputSerializer,
        responses={201: SeatOutputSerializer, **WRITE_ERRORS, **NOT_FOUND},
    )
    def post(self, request: Request, pk: int) -> Response:
        org = _org_for_data(self.reach, pk)
        _check_org_editable(self.reach, org.pk)
        data = parse_body(SeatInputSerializer, request)
        if "liaison_communities" in data:
            edit = access.capability_reach(self.reach, "edit_orgs")
            codes = list(dict.fromkeys(data["liaison_communities"]))
            found = list(grid_access.communities_in_reach(edit).filter(code__in=codes))
            missing = sorted(set(codes) - {c.code for c in found})
            if missing:
                raise reference_not_found("liaison_communities", "、".join(missing))
            data["liaison_communities"] = found
        seat = services.committee_seat_create(org=org, **data)
        return Response(SeatOutputSerializer(_seats().get(pk=seat.pk)).data, status=status.HTTP_201_CREATED)


class SeatDetailApi(ReachAPIView):
    write_capability = "edit_orgs"

    @extend_schema(
        tags=[TAG_ORGS],
        summary="大工委/大党委委员席位",
        responses={200: SeatOutputSerializer, **READ_ERRORS, **NOT_FOUND},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(SeatOutputSerializer(_seat_get(self.reach, pk)).data)

    @extend_schema(
        tags=[TAG_ORGS],
        summary="删除大工委/大党委委员",
        description="删除记入审计日志（含被删委员的姓名和单位）。",
        responses={204: None, **WRITE_ERRORS, **NOT_FOUND},
    )
    def delete(self, request: Request, pk: int) -> Response:
        seat = _seat_get(self.reach, pk)
        _check_org_editable(self.reach, seat.org_id)
        services.committee_seat_delete(seat=seat)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RectificationOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="整顿记录编号")
    org_id = serializers.IntegerField(help_text="党组织编号")
    org_name = serializers.CharField(source="org.name", help_text="党组织名称")
    flagged_on = serializers.DateField(help_text="认定日期")
    reasons = serializers.CharField(help_text="软弱涣散表现")
    measures = serializers.CharField(help_text="整顿措施")
    converted_on = serializers.DateField(allow_null=True, help_text="转化日期；null 表示仍在整顿")


class RectificationInputSerializer(serializers.Serializer):
    flagged_on = serializers.DateField(help_text="认定日期")
    reasons = serializers.CharField(max_length=5000, help_text="软弱涣散表现")
    measures = serializers.CharField(required=False, allow_blank=True, max_length=5000, help_text="整顿措施")


class OrgRectificationListApi(ReachAPIView):
    write_capability = "edit_orgs"

    @extend_schema(
        tags=[TAG_ORGS],
        summary="软弱涣散整顿记录",
        description="该党组织的软弱涣散认定与转化记录，最近认定的在前。",
        responses={200: RectificationOutputSerializer(many=True), **READ_ERRORS, **NOT_FOUND},
    )
    def get(self, request: Request, pk: int) -> Response:
        org = _org_for_data(self.reach, pk)
        rows = Rectification.objects.filter(org=org).select_related("org").order_by("-flagged_on", "-id")
        return Response(RectificationOutputSerializer(rows, many=True).data)

    @extend_schema(
        tags=[TAG_ORGS],
        summary="认定软弱涣散党组织",
        description="开启一次整顿，党组织标为软弱涣散；已在整顿中时返回 rectification_open_exists。",
        request=RectificationInputSerializer,
        responses={201: RectificationOutputSerializer, **WRITE_ERRORS, **NOT_FOUND},
    )
    def post(self, request: Request, pk: int) -> Response:
        org = _org_for_data(self.reach, pk)
        _check_org_editable(self.reach, org.pk)
        rect = services.party_org_flag_weak(org=org, **parse_body(RectificationInputSerializer, request))
        return Response(RectificationOutputSerializer(rect).data, status=status.HTTP_201_CREATED)


class RectificationDetailApi(ReachAPIView):
    write_capability = "edit_orgs"

    class ConvertInputSerializer(serializers.Serializer):
        converted_on = serializers.DateField(help_text="转化日期（不早于认定日期）")

    def _get(self, pk: int) -> Rectification:
        if not self.reach.can_read():
            raise grid_access.NotInReach
        orgs = access.party_orgs_in_reach(self.reach, strict=True).values("pk")
        rect = Rectification.objects.select_related("org").filter(pk=pk, org__in=orgs).first()
        if rect is None:
            raise grid_access.NotInReach
        return rect

    @extend_schema(
        tags=[TAG_ORGS],
        summary="整顿记录详情",
        responses={200: RectificationOutputSerializer, **READ_ERRORS, **NOT_FOUND},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(RectificationOutputSerializer(self._get(pk)).data)

    @extend_schema(
        tags=[TAG_ORGS],
        summary="记录整顿转化",
        description="记录转化日期，党组织的软弱涣散标记随之清除；已转化的返回 rectification_already_converted。",
        request=ConvertInputSerializer,
        responses={200: RectificationOutputSerializer, **WRITE_ERRORS, **NOT_FOUND},
    )
    def patch(self, request: Request, pk: int) -> Response:
        rect = self._get(pk)
        _check_org_editable(self.reach, rect.org_id)
        data = parse_body(self.ConvertInputSerializer, request)
        rect = services.rectification_convert(rectification=rect, converted_on=data["converted_on"])
        return Response(RectificationOutputSerializer(self._get(rect.pk)).data)


class StarRatingOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="评定编号")
    org_id = serializers.IntegerField(help_text="党组织编号")
    year = serializers.IntegerField(help_text="年度")
    stars = serializers.IntegerField(help_text="星级（1–5）")
    score = serializers.DecimalField(max_digits=5, decimal_places=2, help_text="量化指标得分")
    satisfaction_score = serializers.DecimalField(max_digits=5, decimal_places=2, help_text="群众满意度得分")
    total_score = serializers.DecimalField(
        max_digits=5, decimal_places=2, help_text="综合得分（群众满意度占40%）"
    )


class StarRatingInputSerializer(serializers.Serializer):
    year = serializers.IntegerField(min_value=1949, max_value=2100, help_text="年度")
    score = serializers.DecimalField(
        max_digits=5, decimal_places=2, min_value=0, max_value=100, help_text="量化指标得分（0–100）"
    )
    satisfaction_score = serializers.DecimalField(
        max_digits=5, decimal_places=2, min_value=0, max_value=100, help_text="群众满意度得分（0–100）"
    )
    stars = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=5, help_text="星级；不填按综合得分确定"
    )


class OrgStarRatingListApi(ReachAPIView):
    write_capability = "edit_orgs"

    @extend_schema(
        tags=[TAG_ORGS],
        summary="星级评定",
        description="该党组织各年度的星级评定，最近年度在前。",
        responses={200: StarRatingOutputSerializer(many=True), **READ_ERRORS, **NOT_FOUND},
    )
    def get(self, request: Request, pk: int) -> Response:
        org = _org_for_data(self.reach, pk)
        rows = StarRating.objects.filter(org=org).order_by("-year")
        return Response(StarRatingOutputSerializer(rows, many=True).data)

    @extend_schema(
        tags=[TAG_ORGS],
        summary="记录星级评定",
        description="记录（或更正）一个年度的评定：综合得分按群众满意度40%计算，星级不填时按综合得分确定。"
        "新增返回 201，更正已有年度返回 200。",
        request=StarRatingInputSerializer,
        responses={
            201: StarRatingOutputSerializer,
            200: StarRatingOutputSerializer,
            **WRITE_ERRORS,
            **NOT_FOUND,
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        org = _org_for_data(self.reach, pk)
        _check_org_editable(self.reach, org.pk)
        data = parse_body(StarRatingInputSerializer, request)
        existed = StarRating.objects.filter(org=org, year=data["year"]).exists()
        rating = services.star_rating_record(org=org, **data)
        code = status.HTTP_200_OK if existed else status.HTTP_201_CREATED
        return Response(StarRatingOutputSerializer(rating).data, status=code)


# --------------------------------------------------------------------------------------------
# Personal-data export
# --------------------------------------------------------------------------------------------

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXPORT_TYPES = {"xlsx": XLSX, "csv": "text/csv; charset=utf-8"}


def members_to_export(
    *, reach: grid_access.Reach, community: Community | None = None
) -> QuerySet[PartyMember]:
    """The members a roster export by `reach` holds: those in reach, optionally of one community
    (living there, or in an organisation of it), as `export_members --community` selects them."""
    members = access.party_members_in_reach(reach)
    if community is not None:
        members = members.filter(
            Q(residence_building__community=community)
            | Q(organisation__community=community)
            | Q(organisation__grid_cell__community=community)
        )
    return members.distinct()


def export_unmasked(*, user: Any, reach: grid_access.Reach, members: QuerySet[PartyMember]) -> bool:
    """Clear ID numbers and phones only with the export permission AND view_pii over every member
    exported: one member outside the view_pii part of the reach masks the whole file."""
    if not user.has_perm("grid.export_personal_data"):
        return False
    pii_members = access.party_members_in_reach(access.capability_reach(reach, "view_pii")).values("pk")
    return not members.exclude(pk__in=pii_members).exists()


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
        members = members_to_export(reach=self.reach, community=community)
        unmasked = export_unmasked(user=request.user, reach=self.reach, members=members)
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
