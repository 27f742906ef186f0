"""An organisation's own records: enlarged-committee seats, rectifications of weak
organisations, star ratings. Seen with the organisation's strict reach (orgs.access.org_for_records)."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from edge.api import (
    NOT_FOUND,
    READ_ERRORS,
    ReachAPIView,
    parse_body,
)
from edge.errors import reference_not_found
from grid import access as grid_access
from grid.models import Community
from orgs import access, services
from orgs.apis.common import TAG_ORGS, WRITE_ERRORS
from orgs.models import (
    CommitteeSeat,
    PartyOrganisation,
    Rectification,
    StarRating,
)

Kind = PartyOrganisation.Kind

# --------------------------------------------------------------------------------------------
# Data about one organisation: committee seats, rectifications, star ratings
# --------------------------------------------------------------------------------------------


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


class OrgSeatListApi(ReachAPIView):
    write_capability = "edit_orgs"

    @extend_schema(
        tags=[TAG_ORGS],
        summary="大工委/大党委委员列表",
        description="该党组织（大工委/大党委）的全部委员席位，含兼职委员和分片联系的社区；非扩大的党组织为空列表。",
        responses={200: SeatOutputSerializer(many=True), **READ_ERRORS, **NOT_FOUND},
    )
    def get(self, request: Request, pk: int) -> Response:
        org = access.org_for_records(self.reach, pk)
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
        org = access.org_for_records(self.reach, pk)
        access.ensure_editable(self.reach, org)
        data = parse_body(SeatInputSerializer, request)
        if "liaison_communities" in data:
            edit = access.capability_reach(self.reach, "edit_orgs")
            codes = list(dict.fromkeys(data["liaison_communities"]))
            found = list(grid_access.communities_in_reach(edit).filter(code__in=codes))
            missing = sorted(set(codes) - {c.code for c in found})
            if missing:
                raise reference_not_found("liaison_communities", "、".join(missing))
            data["liaison_communities"] = found
        seat = services.committee_seat_create(reach=self.reach, org=org, **data)
        return Response(SeatOutputSerializer(_seats().get(pk=seat.pk)).data, status=status.HTTP_201_CREATED)


class SeatDetailApi(ReachAPIView):
    write_capability = "edit_orgs"

    @extend_schema(
        tags=[TAG_ORGS],
        summary="大工委/大党委委员席位",
        responses={200: SeatOutputSerializer, **READ_ERRORS, **NOT_FOUND},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(SeatOutputSerializer(access.committee_seat_get(self.reach, pk, _seats())).data)

    @extend_schema(
        tags=[TAG_ORGS],
        summary="删除大工委/大党委委员",
        description="删除记入审计日志（含被删委员的姓名和单位）。",
        responses={204: None, **WRITE_ERRORS, **NOT_FOUND},
    )
    def delete(self, request: Request, pk: int) -> Response:
        seat = access.committee_seat_get(self.reach, pk)
        access.ensure_editable(self.reach, seat)
        services.committee_seat_delete(reach=self.reach, seat=seat)
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
        org = access.org_for_records(self.reach, pk)
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
        org = access.org_for_records(self.reach, pk)
        access.ensure_editable(self.reach, org)
        rect = services.party_org_flag_weak(
            reach=self.reach, org=org, **parse_body(RectificationInputSerializer, request)
        )
        return Response(RectificationOutputSerializer(rect).data, status=status.HTTP_201_CREATED)


class RectificationDetailApi(ReachAPIView):
    write_capability = "edit_orgs"

    class ConvertInputSerializer(serializers.Serializer):
        converted_on = serializers.DateField(help_text="转化日期（不早于认定日期）")

    @extend_schema(
        tags=[TAG_ORGS],
        summary="整顿记录详情",
        responses={200: RectificationOutputSerializer, **READ_ERRORS, **NOT_FOUND},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(RectificationOutputSerializer(access.rectification_get(self.reach, pk)).data)

    @extend_schema(
        tags=[TAG_ORGS],
        summary="记录整顿转化",
        description="记录转化日期，党组织的软弱涣散标记随之清除；已转化的返回 rectification_already_converted。",
        request=ConvertInputSerializer,
        responses={200: RectificationOutputSerializer, **WRITE_ERRORS, **NOT_FOUND},
    )
    def patch(self, request: Request, pk: int) -> Response:
        rect = access.rectification_get(self.reach, pk)
        access.ensure_editable(self.reach, rect)
        data = parse_body(self.ConvertInputSerializer, request)
        rect = services.rectification_convert(
            reach=self.reach, rectification=rect, converted_on=data["converted_on"]
        )
        return Response(RectificationOutputSerializer(rect).data)


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
        org = access.org_for_records(self.reach, pk)
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
        org = access.org_for_records(self.reach, pk)
        access.ensure_editable(self.reach, org)
        data = parse_body(StarRatingInputSerializer, request)
        rating, created = services.star_rating_record(reach=self.reach, org=org, **data)
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(StarRatingOutputSerializer(rating).data, status=code)


