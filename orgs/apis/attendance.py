"""GET /api/stationed-cadres/{id}/attendance/?month=YYYY-MM: a stationed cadre's attendance by day
and for the month (orgs/attendance.py states the rules)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from edge.api import NOT_FOUND, READ_ERRORS, MonthField, ReachAPIView, parse_query
from orgs.attendance import attendance_cadre_get, cadre_attendance_month

DAY = inline_serializer(
    "AttendanceDay",
    {
        "date": serializers.DateField(),
        "in_post": serializers.BooleanField(help_text="当天在驻点期内"),
        "check_ins": serializers.IntegerField(help_text="签到次数"),
        "on_site_check_ins": serializers.IntegerField(help_text="有效（在驻点社区内）签到次数"),
        "check_outs": serializers.IntegerField(help_text="签退次数"),
        "first_on_site": serializers.CharField(allow_null=True, help_text="首次在岗时间 HH:MM"),
        "last_on_site": serializers.CharField(allow_null=True, help_text="最后在岗时间 HH:MM"),
        "dwell_minutes": serializers.FloatField(help_text="在岗时长（分钟）"),
        "attended": serializers.BooleanField(help_text="在岗时长达到要求，计为出勤"),
    },
    many=True,
)


class CadreAttendanceApi(ReachAPIView):
    class QuerySerializer(serializers.Serializer):
        month = MonthField(required=False, help_text="月份 YYYY-MM（默认本月）")

    @extend_schema(
        tags=["驻点干部"],
        summary="驻点干部出勤（按日、按月）",
        description="签到或签退的定位精度范围整体落在驻点社区（含容差 tolerance_m）内才有效；"
        "有效签到到下一次有效签退（或间隔不超过规定时长的下一次签到）之间计为在岗时长；"
        "当天在岗时长达到 min_dwell_minutes 计为出勤。本人及范围覆盖驻点社区的用户可见。",
        parameters=[QuerySerializer],
        responses={
            200: inline_serializer(
                "CadreAttendance",
                {
                    "cadre_id": serializers.IntegerField(),
                    "cadre_name": serializers.CharField(),
                    "community": serializers.CharField(),
                    "month": serializers.CharField(),
                    "min_dwell_minutes": serializers.IntegerField(),
                    "tolerance_m": serializers.IntegerField(),
                    "required_days": serializers.IntegerField(help_text="每月应驻点天数"),
                    "attended_days": serializers.IntegerField(help_text="本月出勤天数"),
                    "expected_by_today": serializers.FloatField(help_text="按进度截至今天应出勤天数"),
                    "behind": serializers.BooleanField(help_text="进度落后"),
                    "days": DAY,
                },
            ),
            **READ_ERRORS,
            **NOT_FOUND,
        },
    )
    def get(self, request: Request, pk: int) -> Response:
        query: dict[str, Any] = parse_query(self.QuerySerializer, request)
        cadre = attendance_cadre_get(self.reach, request.user, pk)
        month = query.get("month") or timezone.localdate().replace(day=1)
        return Response(cadre_attendance_month(cadre=cadre, month=month))
