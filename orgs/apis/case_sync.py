"""POST /api/sync/cases/: cases raised on the tablet (usually from a visit), synced exactly once
by the tablet's UUID; the batch shape and the answers are those of the visit sync (events.py)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from edge.api import DocumentedPointField, ReachAPIView
from grid.models import unit_code_validator
from orgs import access, sync
from orgs.apis.events import SYNC_ERRORS, SyncResultSerializer, _batch, _DateTimeField, _FloatField, _raw_id
from orgs.services.case_sync import CaseItem, cases_sync
from orgs.sync import ItemResult, Position

TAG = "民情事项"


class CaseItemSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="平板生成的事项编号（UUID），重发时保持不变")
    reported_at = _DateTimeField(help_text="上报时间（ISO 8601）")
    category = serializers.IntegerField(min_value=1, max_value=2_147_483_647, help_text="事项类别编号")
    description = serializers.CharField(max_length=2000, help_text="问题描述")
    visit = serializers.UUIDField(required=False, allow_null=True, help_text="来源走访记录编号（先同步走访）")
    position = DocumentedPointField(required=False, help_text="事项位置（GeoJSON 点，坐标系见 crs）")
    crs = serializers.CharField(required=False, default="wgs84", max_length=64, help_text="position 的坐标系")
    accuracy_m = _FloatField(required=False, allow_null=True, min_value=0, max_value=100_000, help_text="定位精度（米）")
    building = serializers.CharField(
        required=False, allow_blank=True, max_length=32, validators=[unit_code_validator], help_text="涉及楼栋编码"
    )
    address = serializers.CharField(required=False, allow_blank=True, max_length=200, help_text="地址描述")
    resident_name = serializers.CharField(required=False, allow_blank=True, max_length=32, help_text="反映人")
    resident_phone = serializers.CharField(required=False, allow_blank=True, max_length=32, help_text="联系电话")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "position" not in attrs and not attrs.get("building") and not attrs.get("visit"):
            raise serializers.ValidationError({"position": "须有定位、涉及楼栋或来源走访记录"})
        return attrs


def _items(raw_items: list[Any]) -> tuple[list[CaseItem], list[ItemResult]]:
    """Each item alone: a malformed one is refused by itself with its field errors."""
    items: list[CaseItem] = []
    refused: list[ItemResult] = []
    seen: set[str] = set()
    validator = CaseItemSerializer()
    for index, raw in enumerate(raw_items):
        try:
            data = validator.run_validation(raw)
        except serializers.ValidationError as exc:
            result = sync.rejected(index, _raw_id(raw), "invalid_input", "事项内容有误")
            result.errors = dict(exc.detail) if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
            refused.append(result)
            continue
        key = str(data["id"])
        if key in seen:
            refused.append(sync.rejected(index, key, "sync_id_repeated", "同一批次中事项编号重复"))
            continue
        seen.add(key)
        position = None
        if "position" in data:
            lon, lat = data["position"]
            position = Position(lon=lon, lat=lat, crs=data.get("crs") or "wgs84", accuracy_m=data.get("accuracy_m"))
        items.append(
            CaseItem(
                index=index,
                id=data["id"],
                reported_at=data["reported_at"],
                category_id=data["category"],
                description=data["description"],
                position=position,
                building_code=data.get("building") or "",
                visit_id=data.get("visit"),
                address=data.get("address") or "",
                resident_name=data.get("resident_name") or "",
                resident_phone=data.get("resident_phone") or "",
            )
        )
    return items, refused


class CaseSyncApi(ReachAPIView):
    write_capability = "log_events"

    @extend_schema(
        tags=[TAG],
        summary="同步平板上报的民情事项（离线上报，按事项编号只保存一次）",
        description="每条事项各自处理，结果逐条返回（created、duplicate、rejected）。拒收代码：invalid_input、"
        "sync_id_repeated、sync_id_conflict、not_found（类别、走访记录或楼栋不存在或无权访问），以及采集事项的"
        "代码（case_category_inactive、case_time_in_future、case_outside_grids、case_outside_reach 等）。"
        "事项照片在事项同步后按事项编号上传（POST /api/photos/）。",
        request=inline_serializer("CaseSyncBatch", {"items": CaseItemSerializer(many=True)}),
        responses={200: SyncResultSerializer, **SYNC_ERRORS},
    )
    def post(self, request: Request) -> Response:
        items, refused = _items(_batch(request))
        reach = access.capability_reach(self.reach, "log_events")
        return Response(cases_sync(reach=reach, user=request.user, items=items, refused=refused).as_dict())
