"""API of field events: the tablets' sync endpoints and the scoped lists of what was logged.

POST /api/sync/visits/ and /api/sync/station-contacts/ take {"items": [...]} (at most
WANGGE_SYNC["max_items"]) and answer 200 with one result per item: created, duplicate or
rejected with a stable code (see orgs/sync.py for the rules). Only the envelope can fail as a
whole (400): a body that is not {"items": [list]} or holds too many items. Writing needs the
`log_events` capability, and each item is checked against the reach of the caller's event-logging
roles only (a planner who is also a grid worker logs in the grid, not across the street).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from edge.api import (
    BBOX_PARAMETER,
    PAGE_PARAMETERS,
    READ_ERRORS,
    UNAUTHENTICATED_RESPONSE,
    DocumentedPointField,
    FeaturePagination,
    ReachAPIView,
    StrictInBBoxFilter,
    parse_body,
    parse_query,
)
from edge.errors import DomainError
from grid.models import unit_code_validator
from orgs import access, selectors, sync
from orgs.models import StationContact, Visit
from orgs.sync import EventItem, ItemResult, Position

TAG_EVENTS = "走访与驻点联系"

# --------------------------------------------------------------------------------------------
# Items as the tablet sends them
# --------------------------------------------------------------------------------------------


class _FloatField(serializers.FloatField):
    def to_internal_value(self, data: Any) -> float:
        try:
            return super().to_internal_value(data)
        except OverflowError:
            self.fail("invalid")


class _DateTimeField(serializers.DateTimeField):
    def to_internal_value(self, value: Any) -> Any:
        try:
            return super().to_internal_value(value)
        except OverflowError:
            # DRF catches it for times with an offset, not when it makes a local time aware
            # ("0001-01-01T00:00:00").
            self.fail("overflow")


class EventItemSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="平板生成的记录编号（UUID），重发同一记录时保持不变")
    occurred_at = _DateTimeField(help_text="发生时间（ISO 8601，建议带时区，如 2026-11-20T09:30:00+08:00）")
    position = DocumentedPointField(required=False, help_text="采集定位（GeoJSON 点，坐标系见 crs）")
    crs = serializers.CharField(
        required=False,
        default="wgs84",
        max_length=64,
        help_text="position 的坐标系：wgs84（默认）、gcj02（高德/腾讯）、bd09（百度）、cgcs2000 或 EPSG:代码",
    )
    accuracy_m = _FloatField(
        required=False, allow_null=True, min_value=0, max_value=100_000, help_text="定位精度（米）"
    )
    building = serializers.CharField(
        required=False, allow_blank=True, max_length=32, validators=[unit_code_validator], help_text="楼栋编码"
    )
    summary = serializers.CharField(required=False, allow_blank=True, max_length=2000, help_text="情况记录")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "position" not in attrs and not self.has_subject(attrs):
            raise serializers.ValidationError({"position": "须有定位或走访对象（楼栋/两新组织）"})
        return attrs

    def has_subject(self, attrs: dict[str, Any]) -> bool:
        return bool(attrs.get("building"))


class VisitItemSerializer(EventItemSerializer):
    kind = serializers.ChoiceField(choices=Visit.Kind.choices, help_text="走访类型")
    household = serializers.CharField(
        required=False, allow_blank=True, max_length=32, help_text="户（门牌/房号），入户走访时填写"
    )
    enterprise = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=2_147_483_647, help_text="两新组织编号"
    )

    def has_subject(self, attrs: dict[str, Any]) -> bool:
        return bool(attrs.get("building") or attrs.get("enterprise"))

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        kind = attrs["kind"]
        if kind in sync.VISIT_KINDS_NEEDING_BUILDING and not attrs.get("building"):
            raise serializers.ValidationError({"building": "入户走访和楼栋巡查须填写楼栋编码"})
        if kind == Visit.Kind.ENTERPRISE and not attrs.get("enterprise"):
            raise serializers.ValidationError({"enterprise": "两新组织走访须填写两新组织编号"})
        return attrs


class ContactItemSerializer(EventItemSerializer):
    kind = serializers.ChoiceField(choices=StationContact.Kind.choices, help_text="类型：驻点签到或联系群众")
    contact_name = serializers.CharField(required=False, allow_blank=True, max_length=32, help_text="联系对象")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if attrs["kind"] in (StationContact.Kind.CHECK_IN, StationContact.Kind.CHECK_OUT) and "position" not in attrs:
            raise serializers.ValidationError({"position": "驻点签到、签退须有定位"})
        return attrs


class SyncBatchSerializer(serializers.Serializer):
    # Items unchecked here: each is parsed alone by _items, so one that is not even an object is
    # refused by itself instead of failing the whole batch.
    items = serializers.ListField(allow_empty=True, help_text="记录列表（每批最多 500 条）；每条的字段见下")


def _batch(request: Request) -> list[Any]:
    batch = parse_body(SyncBatchSerializer, request)
    limit = settings.WANGGE_SYNC["max_items"]
    if len(batch["items"]) > limit:
        # Its own code, so a tablet knows to split the batch rather than show an input error.
        raise DomainError(
            f"每批最多 {limit} 条，请分批同步", code="sync_batch_too_large", detail={"max_items": limit}
        )
    return batch["items"]


class ItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="该记录在 items 中的位置（从 0 起）")
    id = serializers.CharField(help_text="记录编号；无法解析时为空")
    status = serializers.ChoiceField(
        choices=[(sync.CREATED, "已保存"), (sync.DUPLICATE, "重复（此前已保存）"), (sync.REJECTED, "拒收")]
    )
    code = serializers.CharField(required=False, help_text="拒收原因代码")
    message = serializers.CharField(required=False, help_text="拒收原因（中文）")
    on_site = serializers.BooleanField(required=False, help_text="驻点签到/签退：是否证明在驻点社区内")
    note = serializers.CharField(required=False, help_text="驻点签到/签退：给干部的说明（中文）")
    # DRF's metaclass pops declared fields off the class, so this field does not shadow the
    # Serializer.errors property; the stubs see a class attribute.
    errors = serializers.DictField(  # type: ignore[assignment]  # stubs: declared fields are popped
        required=False, help_text="字段错误（code 为 invalid_input 时）"
    )


class SyncResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    duplicate = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = ItemResultSerializer(many=True)


@dataclass(frozen=True)
class ParsedItem:
    """One item of a sync batch that passed its serializer: where it stood, its data, its raw
    JSON (for the payload hash) and its position as captured."""

    index: int
    data: dict[str, Any]
    raw: Any
    position: Position | None


def parse_items(
    serializer_class: type[serializers.Serializer], raw_items: list[Any], *, noun: str
) -> tuple[list[ParsedItem], list[ItemResult]]:
    """Parse each item of a sync batch alone: a malformed one, or one repeating an id of the same
    batch, is refused by itself with its field errors; the others come back in order. `noun`
    names the items in the refusals ("记录", "事项")."""
    parsed: list[ParsedItem] = []
    refused: list[ItemResult] = []
    seen: set[str] = set()
    # One unbound serializer validates every item, as DRF's ListSerializer does with its child:
    # a serializer per item would deep-copy its fields each time, which measured two thirds of
    # a 500-item batch's time.
    validator = serializer_class()
    for index, raw in enumerate(raw_items):
        try:
            data = validator.run_validation(raw)
        except serializers.ValidationError as exc:
            result = sync.rejected(index, _raw_id(raw), "invalid_input", f"{noun}内容有误")
            detail = exc.detail
            result.errors = dict(detail) if isinstance(detail, dict) else {"non_field_errors": detail}
            refused.append(result)
            continue
        key = str(data["id"])
        if key in seen:
            refused.append(sync.rejected(index, key, "sync_id_repeated", f"同一批次中{noun}编号重复"))
            continue
        seen.add(key)
        position = None
        if "position" in data:
            lon, lat = data["position"]
            position = Position(lon=lon, lat=lat, crs=data.get("crs") or "wgs84", accuracy_m=data.get("accuracy_m"))
        parsed.append(ParsedItem(index=index, data=data, raw=raw, position=position))
    return parsed, refused


def _items(
    serializer_class: type[EventItemSerializer], raw_items: list[dict[str, Any]]
) -> tuple[list[EventItem], list[ItemResult]]:
    """The batch's items as the sync takes them (see parse_items for the refusals)."""
    parsed, refused = parse_items(serializer_class, raw_items, noun="记录")
    items = [
        EventItem(
            index=p.index,
            id=p.data["id"],
            # USE_TZ: DRF has made a time without offset aware in Asia/Shanghai, the tablet's
            # local time.
            occurred_at=p.data["occurred_at"],
            kind=p.data["kind"],
            payload_hash=sync.payload_hash(p.raw),
            position=p.position,
            building_code=p.data.get("building") or "",
            summary=p.data.get("summary") or "",
            enterprise_id=p.data.get("enterprise"),
            household=p.data.get("household") or "",
            contact_name=p.data.get("contact_name") or "",
        )
        for p in parsed
    ]
    return items, refused


def _raw_id(raw: Any) -> str:
    value = raw.get("id") if isinstance(raw, dict) else None
    return value[:64] if isinstance(value, str) else ""


SYNC_ERRORS = {
    400: OpenApiResponse(
        description="整批无法处理：{code, message, ...}，如请求体不是 {items: [...]}（invalid_input）、"
        "条数超过上限（sync_batch_too_large，max_items 为上限）或无法解析（malformed_request）；"
        "单条记录的问题不在此列，见 200 的 results"
    ),
    401: UNAUTHENTICATED_RESPONSE,
    403: OpenApiResponse(description="角色不能记录走访/驻点联系（需 log_events）：{code: permission_denied}"),
    413: OpenApiResponse(description="请求内容过大：{code: payload_too_large}"),
}
SYNC_DESCRIPTION = (
    "每条记录各自处理，结果逐条返回（status：created 已保存、duplicate 此前已保存、rejected 拒收）。"
    "拒收代码：invalid_input（字段有误，见 errors）、sync_id_repeated（同批编号重复）、"
    "sync_id_conflict（编号已被其他内容或其他账号使用）、sync_time_in_future、sync_time_too_old、"
    "crs_unknown、coords_out_of_range、coords_outside_china、not_found（对象不存在或无权访问）、"
    "sync_outside_reach、sync_outside_grids、sync_subject_elsewhere{extra}。"
    "记录人取自登录账号，不能由记录指定；网格和社区按发生当天的边界确定。"
)


class _SyncApi(ReachAPIView):
    write_capability = "log_events"
    item_serializer: type[EventItemSerializer]
    service: Any

    def post(self, request: Request) -> Response:
        items, refused = _items(self.item_serializer, _batch(request))
        # Only the units where the caller logs events, not all they may read.
        reach = access.capability_reach(self.reach, "log_events")
        result = type(self).service(reach=reach, user=request.user, items=items, refused=refused)
        return Response(result.as_dict())


class VisitSyncApi(_SyncApi):
    item_serializer = VisitItemSerializer
    service = staticmethod(sync.visits_sync)

    @extend_schema(
        tags=[TAG_EVENTS],
        summary="同步走访记录（平板离线记录上传）",
        description=SYNC_DESCRIPTION.format(extra=""),
        request=inline_serializer("VisitSyncBatch", {"items": VisitItemSerializer(many=True)}),
        responses={200: SyncResultSerializer, **SYNC_ERRORS},
    )
    def post(self, request: Request) -> Response:
        return super().post(request)


class ContactSyncApi(_SyncApi):
    item_serializer = ContactItemSerializer
    service = staticmethod(sync.station_contacts_sync)

    @extend_schema(
        tags=[TAG_EVENTS],
        summary="同步驻点签到与联系群众记录",
        description=SYNC_DESCRIPTION.format(extra="、sync_not_stationed（当天没有驻点安排）"),
        request=inline_serializer("ContactSyncBatch", {"items": ContactItemSerializer(many=True)}),
        responses={200: SyncResultSerializer, **SYNC_ERRORS},
    )
    def post(self, request: Request) -> Response:
        return super().post(request)


# --------------------------------------------------------------------------------------------
# What was logged, scoped by reach (GeoJSON at the place where each event counts)
# --------------------------------------------------------------------------------------------


class _EventFeatureSerializer(GeoFeatureModelSerializer):
    kind_display = serializers.CharField(source="get_kind_display", read_only=True, help_text="类型（中文）")
    community_code = serializers.CharField(source="community.code", read_only=True, help_text="社区编码")
    grid_cell_code = serializers.CharField(
        source="grid_cell.code", read_only=True, allow_null=True, help_text="发生当天所在网格编码"
    )
    building_code = serializers.CharField(
        source="building.code", read_only=True, allow_null=True, help_text="楼栋编码"
    )

    class Meta:
        geo_field = "place"
        id_field = "id"
        fields = [
            "id",
            "kind",
            "kind_display",
            "occurred_at",
            "received_at",
            "reporter_name",
            "community_code",
            "grid_cell_code",
            "building_code",
            "summary",
            "accuracy_m",
            "distance_to_subject_m",
        ]


class VisitFeatureSerializer(_EventFeatureSerializer):
    enterprise_id = serializers.IntegerField(read_only=True, allow_null=True, help_text="两新组织编号")

    class Meta(_EventFeatureSerializer.Meta):
        model = Visit
        fields = [*_EventFeatureSerializer.Meta.fields, "household", "enterprise_id"]


class ContactFeatureSerializer(_EventFeatureSerializer):
    cadre_id = serializers.IntegerField(read_only=True, help_text="驻点干部编号")

    class Meta(_EventFeatureSerializer.Meta):
        model = StationContact
        fields = [*_EventFeatureSerializer.Meta.fields, "cadre_id", "contact_name", "on_site"]


class EventFilterSerializer(serializers.Serializer):
    community = serializers.CharField(required=False, max_length=12, help_text="社区编码")
    grid_cell = serializers.CharField(required=False, max_length=15, help_text="网格编码（发生当天所在网格）")
    since = serializers.DateField(required=False, help_text="起始日期（含）")
    until = serializers.DateField(required=False, help_text="截止日期（含）")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("since") and attrs.get("until") and attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"until": "截止日期不能早于起始日期"})
        return attrs


class VisitListApi(ReachAPIView):
    bbox_filter_field = "place"
    bbox_filter_include_overlapping = True

    class FilterSerializer(EventFilterSerializer):
        kind = serializers.ChoiceField(choices=Visit.Kind.choices, required=False, help_text="走访类型")

    @extend_schema(
        tags=[TAG_EVENTS],
        summary="走访记录列表",
        description="当前账号范围内的走访记录，GeoJSON FeatureCollection（分页，按发生时间倒序），位置为计入位置。",
        parameters=[FilterSerializer, BBOX_PARAMETER, *PAGE_PARAMETERS],
        responses={200: VisitFeatureSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        f = parse_query(self.FilterSerializer, request)
        qs = selectors.visit_list(reach=self.reach, **f)
        qs = StrictInBBoxFilter().filter_queryset(request, qs, self)
        paginator = FeaturePagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(VisitFeatureSerializer(page, many=True).data)


class ContactListApi(ReachAPIView):
    bbox_filter_field = "place"
    bbox_filter_include_overlapping = True

    class FilterSerializer(EventFilterSerializer):
        kind = serializers.ChoiceField(choices=StationContact.Kind.choices, required=False, help_text="类型")
        on_site = serializers.BooleanField(required=False, allow_null=True, default=None, help_text="是否在驻点社区内")

    @extend_schema(
        tags=[TAG_EVENTS],
        summary="驻点签到与联系群众记录列表",
        description="范围内社区的驻点联系记录（驻点工作面向整个社区，需整社区的访问范围），GeoJSON（分页）。",
        parameters=[FilterSerializer, BBOX_PARAMETER, *PAGE_PARAMETERS],
        responses={200: ContactFeatureSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        f = parse_query(self.FilterSerializer, request)
        qs = selectors.station_contact_list(reach=self.reach, **f)
        qs = StrictInBBoxFilter().filter_queryset(request, qs, self)
        paginator = FeaturePagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(ContactFeatureSerializer(page, many=True).data)
