"""Party organisations: list, detail, create, update, subtree and ancestors."""

from __future__ import annotations

from typing import Any

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
from grid.models import unit_code_validator
from orgs import access, selectors, services
from orgs.apis.common import TAG_ORGS, WRITE_ERRORS
from orgs.models import (
    PartyOrganisation,
)

Kind = PartyOrganisation.Kind

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
    # DRF's metaclass pops declared fields off the class: no clash with Field.parent (the stubs see one).
    parent = serializers.IntegerField(  # type: ignore[assignment]  # stubs: declared fields are popped
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
        parent = serializers.IntegerField(  # type: ignore[assignment]  # stubs: declared fields are popped
            required=False, help_text="只列出该党组织的直接下级"
        )

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
        org = services.party_org_create(reach=self.reach, **data)
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
        org = access.get_editable(self.reach, selectors.party_org_list(reach=self.reach), pk=pk)
        data = _org_references(self.reach, parse_body(OrgInputSerializer, request, partial=True))
        buildings = data.pop("buildings", None)
        org = services.party_org_update(reach=self.reach, org=org, buildings=buildings, **data)
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


