"""API of the residents' cases (民情台账) under /api/cases/.

- GET  /api/cases/                    the ledger: GeoJSON FeatureCollection (one feature per case at
                                      its place), newest first, paginated, filtered; written by
                                      PostgreSQL (edge.geojson). Times are ISO 8601 in UTC.
- POST /api/cases/                    raise a case (采集); answers it with the likely duplicates.
- GET  /api/cases/{id}/               one case with its timeline and the actions the caller may take.
- GET  /api/cases/{id}/transitions/   the timeline alone.
- POST /api/cases/{id}/transitions/   one step of the loop {action, reason, position, crs,
                                      accuracy_m, expected_version, merge_into, assignee_org,
                                      assignee_name}; 409 `case_stale` when expected_version is not
                                      the case's version.
- GET  /api/cases/nearby/             open cases of a category near a point (likely duplicates).
- GET  /api/cases/statistics/         figures by category and grid, medians per step, repeat places.
- GET  /api/cases/categories/         the street office's categories with their time limits.

Thin: parse, call one selector or one service, render. Writing needs `log_events`; which action a
role may take where is the service's rule (orgs.access.case_action_roles). A case outside the
caller's reach answers 404 exactly like a missing one.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.db.models import BooleanField, ExpressionWrapper, Q
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
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
    ReachAPIView,
    invalid,
    one_referenced,
    parse_body,
    parse_query,
)
from edge.errors import DomainError, NotInReach
from edge.geojson import FeatureLayout, choice_label, feature_collection_page
from grid import access as grid_access
from grid import coords
from grid.models import unit_code_validator
from orgs import access, services, sql
from orgs import cases_selectors as selectors
from orgs.apis.events import EventFilterSerializer
from orgs.cases_models import FLOW, Case, CaseCategory, CaseTransition
from orgs.sync import Position

TAG = "民情台账"
CASE_CODES = (
    "case_transition_not_allowed、case_action_forbidden、case_reason_required、case_position_required、"
    "case_merge_target_required、case_merge_target_invalid、case_outside_reach、case_outside_grids、"
    "case_place_required、case_description_required、case_category_inactive、case_time_in_future、"
    "crs_unknown、coords_out_of_range、coords_outside_china、phone_invalid、reference_not_found、invalid_input"
)
WRITE_ERRORS = {
    400: OpenApiResponse(description=f"输入有误或违反规则：{{code, message, ...}}，code 为稳定的机器代码（{CASE_CODES}）"),
    401: UNAUTHENTICATED_RESPONSE,
    403: OpenApiResponse(
        description="角色不能执行此操作（写入需 log_events；立案、派遣、结案、重复需街道或社区管理员）："
        "{code: permission_denied | case_action_forbidden | case_outside_reach, message}"
    ),
    404: NOT_FOUND[404],
}
CONFLICT = {
    409: OpenApiResponse(
        description="事项已被他人更新：{code: case_stale, message, version}，version 为事项当前版本，刷新后再操作"
    )
}

# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "properties": {
            "type": {"type": "string", "enum": ["Point"]},
            "coordinates": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
        },
    }
)
class PointOutField(serializers.Field):
    """A stored WGS-84 point as a GeoJSON point (null when absent)."""

    def to_representation(self, value: Any) -> Any:
        return None if value is None else {"type": "Point", "coordinates": [value.x, value.y]}


class CaseFeatureSerializer(GeoFeatureModelSerializer):
    """Describes a feature of the ledger list (the SQL layout below writes the same fields)."""

    category_id = serializers.IntegerField(help_text="类别编号")
    category_name = serializers.CharField(source="category.name", help_text="类别")
    state_display = serializers.CharField(source="get_state_display", help_text="状态（中文）")
    source_display = serializers.CharField(source="get_source_display", help_text="来源（中文）")
    grid_code = serializers.CharField(source="grid_cell.code", allow_null=True, help_text="上报当天所在网格编码")
    community_code = serializers.CharField(source="community.code", help_text="社区编码")
    overdue = serializers.BooleanField(help_text="未办结且已超过本环节时限")

    class Meta:
        model = Case
        geo_field = "place"
        id_field = "id"
        fields = [
            "id",
            "category_id",
            "category_name",
            "state",
            "state_display",
            "source",
            "source_display",
            "description",
            "address",
            "reported_at",
            "deadline",
            "overdue",
            "escalation_level",
            "assignee_name",
            "grid_code",
            "community_code",
            "reporter_name",
            "version",
        ]


def _case_feature(now: Any) -> FeatureLayout:
    return FeatureLayout(
        serializer=CaseFeatureSerializer,
        id="id",
        geometry="place",
        properties={
            "id": "id",
            "category_id": "category_id",
            "category_name": "category__name",
            "state": "state",
            "state_display": choice_label("state", Case.State.choices),
            "source": "source",
            "source_display": choice_label("source", Case.Source.choices),
            "description": "description",
            "address": "address",
            "reported_at": "reported_at",
            "deadline": "deadline",
            "overdue": ExpressionWrapper(
                Q(state__in=Case.OPEN_STATES, deadline__lt=now), output_field=BooleanField()
            ),
            "escalation_level": "escalation_level",
            "assignee_name": "assignee_name",
            "grid_code": "grid_cell__code",
            "community_code": "community__code",
            "reporter_name": "reporter_name",
            "version": "version",
        },
    )


class TransitionSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="流转记录编号")
    action = serializers.CharField(help_text="动作")
    action_display = serializers.CharField(source="get_action_display", help_text="动作（中文）")
    from_state = serializers.CharField(help_text="原状态（采集时为空）")
    to_state = serializers.CharField(help_text="新状态")
    at = serializers.DateTimeField(help_text="时间")
    actor_name = serializers.CharField(help_text="操作人")
    reason = serializers.CharField(help_text="说明")
    position = PointOutField(help_text="记录定位（WGS-84；核查必有）")
    accuracy_m = serializers.FloatField(allow_null=True, help_text="定位精度（米）")
    distance_to_case_m = serializers.FloatField(allow_null=True, help_text="定位距事项位置（米）")
    assignee_name = serializers.CharField(help_text="派遣/督办至")
    escalation_level = serializers.IntegerField(allow_null=True, help_text="督办层级（督办记录）")
    deadline = serializers.DateTimeField(allow_null=True, help_text="新环节时限")
    overdue = serializers.BooleanField(help_text="上一环节是否超期完成")
    version = serializers.IntegerField(help_text="此后的事项版本")


class CaseDetailSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="事项编号")
    version = serializers.IntegerField(help_text="版本：流转时作为 expected_version 提交")
    state = serializers.CharField(help_text="状态")
    state_display = serializers.CharField(source="get_state_display", help_text="状态（中文）")
    source = serializers.CharField(help_text="来源")  # type: ignore[assignment]  # stubs: declared fields are popped
    source_display = serializers.CharField(source="get_source_display", help_text="来源（中文）")
    category_id = serializers.IntegerField(help_text="类别编号")
    category_name = serializers.CharField(source="category.name", help_text="类别")
    description = serializers.CharField(help_text="问题描述")
    address = serializers.CharField(help_text="地址描述")
    place = PointOutField(help_text="事项位置（WGS-84）")
    captured_lon = serializers.FloatField(allow_null=True, help_text="采集经度（原坐标系）")
    captured_lat = serializers.FloatField(allow_null=True, help_text="采集纬度（原坐标系）")
    captured_crs = serializers.CharField(help_text="采集坐标系")
    accuracy_m = serializers.FloatField(allow_null=True, help_text="定位精度（米）")
    street_code = serializers.CharField(source="street.code", help_text="街道编码")
    community_code = serializers.CharField(source="community.code", help_text="社区编码")
    community_name = serializers.CharField(source="community.name", help_text="社区")
    grid_code = serializers.CharField(source="grid_cell.code", allow_null=True, help_text="上报当天所在网格编码")
    grid_name = serializers.CharField(source="grid_cell.name", allow_null=True, help_text="网格")
    building_code = serializers.CharField(source="building.code", allow_null=True, help_text="涉及楼栋编码")
    resident_name = serializers.CharField(help_text="反映人/涉及居民")
    resident_phone = serializers.SerializerMethodField(help_text="联系电话（无查看权限时脱敏）")
    resident_phone_masked = serializers.SerializerMethodField(help_text="电话是否已脱敏")
    reporter_name = serializers.CharField(help_text="采集人")
    reported_at = serializers.DateTimeField(help_text="上报时间")
    step_started_at = serializers.DateTimeField(help_text="本环节开始")
    deadline = serializers.DateTimeField(allow_null=True, help_text="本环节时限（办结后为空）")
    overdue = serializers.SerializerMethodField(help_text="未办结且已超过本环节时限")
    ever_overdue = serializers.BooleanField(help_text="曾有环节超期")
    assignee_org_id = serializers.IntegerField(allow_null=True, help_text="承办党组织编号")
    assignee_name = serializers.CharField(help_text="承办单位")
    assignee_route = serializers.CharField(help_text="派遣依据：grid/category/community/street/manual")
    escalation_level = serializers.IntegerField(help_text="督办层级（0 未督办）")
    escalated_to_name = serializers.CharField(source="escalated_to.name", allow_null=True, help_text="督办单位")
    merged_into_id = serializers.SerializerMethodField(help_text="合并至的事项编号（不在您范围内时为空）")
    duplicate_ids = serializers.SerializerMethodField(help_text="合并到本事项的重复事项编号（您范围内的）")
    closed_at = serializers.DateTimeField(allow_null=True, help_text="办结时间")
    allowed_actions = serializers.SerializerMethodField(help_text="您现在可以执行的动作")
    timeline = TransitionSerializer(source="transitions.all", many=True, help_text="流转记录（时间顺序）")

    def get_resident_phone(self, obj: Case) -> str:
        return self.context["phone"][0]

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_resident_phone_masked(self, obj: Case) -> bool:
        return bool(obj.resident_phone_cipher) and not self.context["phone"][1]

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_overdue(self, obj: Case) -> bool:
        return obj.is_open and obj.deadline is not None and obj.deadline < timezone.now()

    @extend_schema_field({"type": "integer", "nullable": True})
    def get_merged_into_id(self, obj: Case) -> int | None:
        return obj.merged_into_id if obj.merged_into_id in self.context["visible"] else None

    @extend_schema_field({"type": "array", "items": {"type": "integer"}})
    def get_duplicate_ids(self, obj: Case) -> list[int]:
        return [d.pk for d in obj.duplicates.all() if d.pk in self.context["visible"]]

    @extend_schema_field({"type": "array", "items": {"type": "string", "enum": list(FLOW)}})
    def get_allowed_actions(self, obj: Case) -> list[str]:
        return self.context["allowed"]


class NearbyCaseSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="事项编号")
    category_id = serializers.IntegerField(help_text="类别编号")
    category_name = serializers.CharField(source="category.name", help_text="类别")
    state = serializers.CharField(help_text="状态")
    state_display = serializers.CharField(source="get_state_display", help_text="状态（中文）")
    description = serializers.CharField(help_text="问题描述")
    reported_at = serializers.DateTimeField(help_text="上报时间")
    grid_code = serializers.CharField(source="grid_cell.code", allow_null=True, help_text="网格编码")
    place = PointOutField(help_text="事项位置（WGS-84）")
    distance_m = serializers.SerializerMethodField(help_text="距离（米）")

    @extend_schema_field(OpenApiTypes.FLOAT)
    def get_distance_m(self, obj: Case) -> float:
        return round(self.context["distances"][obj.pk], 1)


def _nearby_data(found: list[tuple[Case, float]]) -> list[Any]:
    cases = [c for c, _ in found]
    return list(NearbyCaseSerializer(cases, many=True, context={"distances": {c.pk: m for c, m in found}}).data)


class CaseCreatedSerializer(CaseDetailSerializer):
    likely_duplicates = serializers.SerializerMethodField(help_text="疑似重复：附近同类未办结事项（由近到远）")

    @extend_schema_field(NearbyCaseSerializer(many=True))
    def get_likely_duplicates(self, obj: Case) -> list[Any]:
        return self.context["duplicates"]


class CategorySerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="类别编号")
    code = serializers.CharField(help_text="类别编码")
    name = serializers.CharField(help_text="类别名称")
    active = serializers.BooleanField(help_text="是否启用")
    group = serializers.CharField(help_text="大类")
    default_body = serializers.CharField(help_text="默认责任单位（空：属地兜底）")
    register_hours = serializers.FloatField(help_text="立案时限（工作时）")
    dispatch_hours = serializers.FloatField(help_text="派遣时限（工作时）")
    handle_hours = serializers.FloatField(help_text="处置时限（工作时）")
    verify_hours = serializers.FloatField(help_text="核查时限（工作时）")
    close_hours = serializers.FloatField(help_text="结案时限（工作时）")
    urgent = serializers.BooleanField(help_text="紧急：按自然小时连续计时")
    duplicate_radius_m = serializers.IntegerField(help_text="疑似重复半径（米）")


def _detail(reach: Any, case_id: int, *, duplicates: list[Any] | None = None) -> dict[str, Any]:
    """One case as the API shows it: its timeline, what the caller may do, and ids of other cases
    only when the caller may see them."""
    case = selectors.case_detail(reach=reach, case_id=case_id)
    others = {case.merged_into_id, *(d.pk for d in case.duplicates.all())} - {None}
    visible = set(access.cases_in_reach(reach).filter(pk__in=others).values_list("pk", flat=True)) if others else set()
    context = {
        "phone": selectors.case_resident_phone(reach=reach, case=case),
        "visible": visible,
        "allowed": selectors.case_allowed_actions(reach=reach, case=case),
    }
    if duplicates is not None:
        context["duplicates"] = duplicates
        return dict(CaseCreatedSerializer(case, context=context).data)
    return dict(CaseDetailSerializer(case, context=context).data)


# --------------------------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------------------------


class _PositionInput(serializers.Serializer):
    position = DocumentedPointField(required=False, help_text="定位（GeoJSON 点，坐标系见 crs）")
    crs = serializers.CharField(
        required=False,
        default="wgs84",
        max_length=64,
        help_text="position 的坐标系：wgs84（默认）、gcj02（高德/腾讯）、bd09（百度）、cgcs2000 或 EPSG:代码",
    )
    accuracy_m = serializers.FloatField(
        required=False, allow_null=True, min_value=0, max_value=100_000, help_text="定位精度（米）"
    )


def _position(data: dict[str, Any]) -> Position | None:
    if data.get("position") is None:
        return None
    lon, lat = data["position"]
    return Position(lon=lon, lat=lat, crs=data.get("crs") or "wgs84", accuracy_m=data.get("accuracy_m"))


class CaseInputSerializer(_PositionInput):
    category = serializers.IntegerField(help_text="类别编号（见 /api/cases/categories/）")
    description = serializers.CharField(max_length=2000, help_text="问题描述")
    source = serializers.ChoiceField(choices=Case.Source.choices, help_text="来源")  # type: ignore[assignment]
    building = serializers.CharField(
        required=False, allow_blank=True, max_length=32, validators=[unit_code_validator], help_text="涉及楼栋编码"
    )
    address = serializers.CharField(required=False, allow_blank=True, max_length=200, help_text="地址描述")
    resident_name = serializers.CharField(required=False, allow_blank=True, max_length=32, help_text="反映人/涉及居民")
    resident_phone = serializers.CharField(required=False, allow_blank=True, max_length=32, help_text="联系电话（加密保存）")
    reported_at = serializers.DateTimeField(required=False, help_text="上报时间（默认当前时间）")


class TransitionInputSerializer(_PositionInput):
    action = serializers.ChoiceField(
        choices=[(a, CaseTransition.Action(a).label) for a in FLOW],
        help_text="accept 立案、decline 不予立案、dispatch 派遣、start 签收处理、feedback 反馈、verify 核查（须 position）、"
        "close 结案、send_back 退回（须 reason）、merge 重复（须 merge_into）",
    )
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, help_text="说明")
    expected_version = serializers.IntegerField(
        required=False, min_value=1, help_text="您看到的事项版本；与当前版本不符时拒绝（409 case_stale）"
    )
    merge_into = serializers.IntegerField(required=False, min_value=1, help_text="重复：合并到的事项编号")
    assignee_org = serializers.IntegerField(required=False, min_value=1, help_text="派遣：指定承办党组织编号")
    assignee_name = serializers.CharField(required=False, allow_blank=True, max_length=128, help_text="派遣：指定承办单位名称")


def _category(value: int) -> CaseCategory:
    category = CaseCategory.objects.filter(pk=value).first()
    if category is None:
        raise DomainError(f"category 指向的类别不存在：{value}", code="reference_not_found", detail={"field": "category"})
    return category


# --------------------------------------------------------------------------------------------
# Operations
# --------------------------------------------------------------------------------------------


class CaseListApi(ReachAPIView):
    bbox_filter_field = "place"
    bbox_filter_include_overlapping = True
    pagination_class = FeaturePagination
    write_capability = "log_events"

    class FilterSerializer(serializers.Serializer):
        category = serializers.IntegerField(required=False, help_text="类别编号")
        state = serializers.ChoiceField(choices=Case.State.choices, required=False, help_text="状态")
        grid = serializers.CharField(required=False, max_length=15, help_text="网格编码（上报当天所在网格）")
        community = serializers.CharField(required=False, max_length=12, help_text="社区编码")
        source = serializers.ChoiceField(  # type: ignore[assignment]  # stubs: declared fields are popped
            choices=Case.Source.choices, required=False, help_text="来源"
        )
        overdue = serializers.BooleanField(
            required=False, allow_null=True, default=None, help_text="true：未办结且已超过本环节时限"
        )
        escalated = serializers.BooleanField(required=False, allow_null=True, default=None, help_text="true：已督办")
        since = serializers.DateField(required=False, help_text="上报日期起（含）")
        until = serializers.DateField(required=False, help_text="上报日期止（含）")

        validate = EventFilterSerializer.validate  # until not before since, said the same way

    @extend_schema(
        tags=[TAG],
        summary="民情事项列表（台账）",
        description="当前账号范围内的民情事项，GeoJSON FeatureCollection（分页，按上报时间倒序），位置为事项位置；"
        "时间为 UTC 的 ISO 8601。overdue=true 列出超期未办结的事项。",
        parameters=[FilterSerializer, BBOX_PARAMETER, *PAGE_PARAMETERS],
        responses={200: CaseFeatureSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request) -> HttpResponse:
        f = parse_query(self.FilterSerializer, request)
        now = timezone.now()
        qs = selectors.case_list(reach=self.reach, now=now, **f)
        return feature_collection_page(request=request, view=self, queryset=qs, layout=_case_feature(now))

    @extend_schema(
        tags=[TAG],
        summary="采集民情事项",
        description="在定位（position + crs）或涉及楼栋处登记事项；事项计入上报当天该位置所在的网格。"
        "须在您记录走访的网格或社区内。返回事项及附近同类未办结的疑似重复事项（likely_duplicates）。",
        request=CaseInputSerializer,
        responses={201: CaseCreatedSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = parse_body(CaseInputSerializer, request)
        log_reach = access.capability_reach(self.reach, "log_events")
        building = None
        if data.get("building"):
            building = one_referenced(
                grid_access.buildings_in_reach(log_reach), "building", code=data["building"]
            )
        created = services.case_create(
            reach=self.reach,
            user=request.user,
            category=_category(data["category"]),
            description=data["description"],
            source=data["source"],
            position=_position(data),
            building=building,
            address=data.get("address") or "",
            resident_name=data.get("resident_name") or "",
            resident_phone=data.get("resident_phone") or "",
            reported_at=data.get("reported_at"),
        )
        body = _detail(self.reach, created.case.pk, duplicates=_nearby_data(created.likely_duplicates))
        return Response(body, status=status.HTTP_201_CREATED)


class CaseDetailApi(ReachAPIView):
    @extend_schema(
        tags=[TAG],
        summary="民情事项详情",
        description="事项及其全部流转记录（timeline）和您现在可执行的动作（allowed_actions）。"
        "反映人电话默认脱敏，街道、社区管理员可见明文（记入审计日志）。",
        responses={200: CaseDetailSerializer, **READ_ERRORS, **NOT_FOUND},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(_detail(self.reach, pk))


class CaseTransitionsApi(ReachAPIView):
    write_capability = "log_events"

    @extend_schema(
        tags=[TAG],
        summary="民情事项流转记录",
        description="事项的流转记录（时间顺序），含督办记录。",
        responses={200: TransitionSerializer(many=True), **READ_ERRORS, **NOT_FOUND},
    )
    def get(self, request: Request, pk: int) -> Response:
        rows = selectors.case_timeline(reach=self.reach, case_id=pk)
        return Response(TransitionSerializer(rows, many=True).data)

    @extend_schema(
        tags=[TAG],
        summary="事项流转（立案、派遣、处理、反馈、核查、结案、退回、重复）",
        description="一次请求一个动作。动作须是当前状态允许的（否则 case_transition_not_allowed，返回 allowed）；"
        "退回、不予立案、反馈须填写 reason；核查须提交现场定位 position；重复须提交 merge_into。"
        "提交 expected_version 时，与事项当前版本不符则拒绝（409 case_stale）。被拒绝时不写入任何内容。",
        request=TransitionInputSerializer,
        responses={200: CaseDetailSerializer, **WRITE_ERRORS, **CONFLICT},
    )
    def post(self, request: Request, pk: int) -> Response:
        case = access.case_get(self.reach, pk)
        data = parse_body(TransitionInputSerializer, request)
        org = None
        if data.get("assignee_org") is not None:
            org = one_referenced(access.party_orgs_in_reach(self.reach), "assignee_org", pk=data["assignee_org"])
        services.case_transition(
            reach=self.reach,
            user=request.user,
            case=case,
            action=data["action"],
            reason=data.get("reason") or "",
            position=_position(data),
            expected_version=data.get("expected_version"),
            merge_into=data.get("merge_into"),
            assignee_org=org,
            assignee_name=data.get("assignee_name") or "",
        )
        return Response(_detail(self.reach, case.pk))


class NearbyResponseSerializer(serializers.Serializer):
    radius_m = serializers.FloatField(help_text="实际查找半径（米）")
    results = NearbyCaseSerializer(many=True, help_text="由近到远，同距离时新上报的在前")


class CaseNearbyApi(ReachAPIView):
    class FilterSerializer(serializers.Serializer):
        lon = serializers.FloatField(help_text="经度（坐标系见 crs）")
        lat = serializers.FloatField(help_text="纬度")
        crs = serializers.CharField(required=False, default="wgs84", max_length=64, help_text="坐标系，默认 wgs84")
        category = serializers.IntegerField(help_text="类别编号")
        radius_m = serializers.IntegerField(
            required=False, min_value=1, max_value=1000, help_text="查找半径（米），默认为该类别的疑似重复半径，最大1000"
        )
        exclude = serializers.IntegerField(required=False, help_text="排除的事项编号（如正在查看的事项）")

    @extend_schema(
        tags=[TAG],
        summary="附近的同类未办结事项（疑似重复）",
        description="登记前提示疑似重复：该类别未办结事项中距该点在半径内的（您范围内的），由近到远。"
        "该点不在您范围内的任何网格或社区时返回404（与不存在相同）。",
        parameters=[FilterSerializer],
        responses={200: NearbyResponseSerializer, **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        f = parse_query(self.FilterSerializer, request)
        try:
            crs = coords.parse_crs(f["crs"])
            coords.check_in_range(f["lon"], f["lat"], crs)
            lon, lat = (float(v) for v in coords.to_wgs84(f["lon"], f["lat"], crs))
        except (coords.UnknownCRS, coords.CoordinatesOutOfRange) as exc:
            raise invalid("lon", exc.message) from exc
        cell, community, street = sql.places_on_days([(0, lon, lat, timezone.localdate())]).get(0, (None, None, None))
        if not access.case_place_in(self.reach, street_id=street, community_id=community, grid_cell_id=cell):
            raise NotInReach
        category = _category(f["category"])
        found = selectors.cases_nearby(
            reach=self.reach, lon=lon, lat=lat, category=category, radius_m=f.get("radius_m"), exclude_id=f.get("exclude")
        )
        radius = min(float(f.get("radius_m") or category.duplicate_radius_m), 1000.0)
        return Response({"radius_m": radius, "results": _nearby_data(found)})


class CountsSerializer(serializers.Serializer):
    opened = serializers.IntegerField(help_text="期间上报")
    closed = serializers.IntegerField(help_text="期间结案")
    closed_on_time = serializers.IntegerField(help_text="期间按期结案（无环节超期）")
    on_time_rate = serializers.FloatField(allow_null=True, help_text="按期办结率 = 按期结案 / 结案（无结案时为空）")
    open_now = serializers.IntegerField(help_text="当前未办结")
    overdue_now = serializers.IntegerField(help_text="当前超期未办结")
    escalated = serializers.IntegerField(help_text="期间上报且已督办")


class CategoryCountsSerializer(CountsSerializer):
    category_id = serializers.IntegerField(help_text="类别编号")
    category_name = serializers.CharField(help_text="类别")
    median_hours_by_state = serializers.DictField(
        child=serializers.FloatField(), help_text="各状态停留时长中位数（小时，自然时间），键为状态"
    )


class GridCountsSerializer(CountsSerializer):
    grid_code = serializers.CharField(allow_null=True, help_text="网格编码（不在任何网格时为空）")


class StepMedianSerializer(serializers.Serializer):
    state = serializers.CharField(help_text="状态")
    state_display = serializers.CharField(help_text="状态（中文）")
    median_hours = serializers.FloatField(help_text="停留时长中位数（小时）")


class RepeatPlaceSerializer(serializers.Serializer):
    category_id = serializers.IntegerField(help_text="类别编号")
    category_name = serializers.CharField(help_text="类别")
    count = serializers.IntegerField(help_text="事项数")
    lon = serializers.FloatField(help_text="中心经度（WGS-84）")
    lat = serializers.FloatField(help_text="中心纬度（WGS-84）")
    first_reported_at = serializers.DateTimeField(help_text="最早上报")
    last_reported_at = serializers.DateTimeField(help_text="最近上报")
    grid_code = serializers.CharField(allow_null=True, help_text="网格编码")
    case_ids = serializers.ListField(child=serializers.IntegerField(), help_text="最近的至多20件事项编号")


class StatisticsSerializer(serializers.Serializer):
    since = serializers.DateField(help_text="统计起始日（含）")
    until = serializers.DateField(help_text="统计截止日（含）")
    totals = CountsSerializer(help_text="合计")
    median_hours_by_state = StepMedianSerializer(many=True, help_text="各状态停留时长中位数（全部类别）")
    by_category = CategoryCountsSerializer(many=True, help_text="按类别")
    by_grid = GridCountsSerializer(many=True, help_text="按网格")
    repeat_places = RepeatPlaceSerializer(many=True, help_text="重复发生点位：近90天同类3件以上、彼此50米内")


class CaseStatisticsApi(ReachAPIView):
    class FilterSerializer(serializers.Serializer):
        since = serializers.DateField(required=False, help_text="起始日期（含），默认本年1月1日")
        until = serializers.DateField(required=False, help_text="截止日期（含），默认今天")

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            today = timezone.localdate()
            since, until = attrs.get("since") or date(today.year, 1, 1), attrs.get("until") or today
            if since > until:
                raise serializers.ValidationError({"until": "截止日期不能早于起始日期"})
            if until - since > timedelta(days=3660):
                raise serializers.ValidationError({"since": "统计期间不能超过10年"})
            return {"since": since, "until": until}

    @extend_schema(
        tags=[TAG],
        summary="民情事项统计",
        description="按类别和网格：期间上报、结案、按期办结率、当前超期、督办；各状态停留时长中位数；重复发生点位。",
        parameters=[FilterSerializer],
        responses={200: StatisticsSerializer, **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        f = parse_query(self.FilterSerializer, request)
        return Response(StatisticsSerializer(selectors.case_statistics(reach=self.reach, **f)).data)


class CaseCategoryListApi(ReachAPIView):
    class FilterSerializer(serializers.Serializer):
        include_inactive = serializers.BooleanField(
            required=False, default=False, help_text="true：也列出已停用的类别（查看历史事项时用）"
        )

    @extend_schema(
        tags=[TAG],
        summary="事项类别",
        description="街道办维护的事项类别及各环节时限（工作时）、疑似重复半径；默认只列启用的类别。",
        parameters=[FilterSerializer],
        responses={200: CategorySerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        f = parse_query(self.FilterSerializer, request)
        rows = selectors.case_category_list(active_only=not f["include_inactive"])
        return Response(CategorySerializer(rows, many=True).data)


__all__ = [
    "CaseCategoryListApi",
    "CaseDetailApi",
    "CaseListApi",
    "CaseNearbyApi",
    "CaseStatisticsApi",
    "CaseTransitionsApi",
]
