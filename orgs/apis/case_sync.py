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
from orgs import access
from orgs.apis.events import (
    SYNC_ERRORS,
    SyncResultSerializer,
    _batch,
    _DateTimeField,
    _FloatField,
    parse_items,
)
from orgs.services.case_sync import CaseItem, cases_sync
from orgs.sync import ItemResult

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
    """The batch's cases as the ledger takes them (events.parse_items refuses the malformed)."""
    parsed, refused = parse_items(CaseItemSerializer, raw_items, noun="事项")
    items = [
        CaseItem(
            index=p.index,
            id=p.data["id"],
            reported_at=p.data["reported_at"],
            category_id=p.data["category"],
            description=p.data["description"],
            position=p.position,
            building_code=p.data.get("building") or "",
            visit_id=p.data.get("visit"),
            address=p.data.get("address") or "",
            resident_name=p.data.get("resident_name") or "",
            resident_phone=p.data.get("resident_phone") or "",
        )
        for p in parsed
    ]
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
