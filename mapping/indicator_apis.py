"""Read API of the indicators: `GET /api/indicators/?unit=CODE[&from=YYYY-MM-DD&to=YYYY-MM-DD]`.

The unit's indicators now (computed live: one statement, the figures today's snapshot holds) and
its daily snapshots between `from` and `to`. Scoped by reach (mapping.indicators.indicator_unit_get):
a unit outside it answers 404 `not_found` exactly like a code that does not exist. The formula of
every figure is in the schema (mapping.indicators.FORMULAS).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from edge.api import READ_ERRORS, ReachAPIView, parse_query
from edge.errors import DomainError
from mapping import indicators
from mapping.models import Gap, IndicatorSnapshot

TAG = "覆盖指标"
# Without `from`, the history covers the 30 days up to `to`; a longer span than two years is
# refused rather than answered with thousands of rows (ask year by year).
DEFAULT_HISTORY_DAYS = 30
MAX_HISTORY_DAYS = 731


# --------------------------------------------------------------------------------------------
# Input: `from` is a Python keyword, so the serializer's fields are given as a mapping
# --------------------------------------------------------------------------------------------

IndicatorQuerySerializer: type[serializers.Serializer] = type(
    "IndicatorQuerySerializer",
    (serializers.Serializer,),
    {
        "unit": serializers.CharField(
            max_length=32, help_text="单元编码：街道（9位）、社区（12位）或网格（15位）"
        ),
        "from": serializers.DateField(
            required=False, help_text=f"历史起始日期 YYYY-MM-DD（含）；不填为 to 之前{DEFAULT_HISTORY_DAYS}天"
        ),
        "to": serializers.DateField(required=False, help_text="历史截止日期 YYYY-MM-DD（含）；不填为今天"),
    },
)


# --------------------------------------------------------------------------------------------
# Output: each figure with its formula as help text
# --------------------------------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.NUMBER)
class NumberField(serializers.Field):
    """A number as computed (a count stays an integer, a pace keeps its decimals)."""

    def to_representation(self, value: Any) -> Any:
        return value


class RateSerializer(serializers.Serializer):
    value = NumberField(allow_null=True, help_text=indicators.RATE_NULL_HELP)
    numerator = NumberField(help_text="分子")
    denominator = NumberField(help_text="分母；为0时 value 为 null")


class GapKindSerializer(serializers.Serializer):
    open = serializers.IntegerField(help_text="未消除的缺口数")
    median_age_days = NumberField(allow_null=True, help_text="已存在天数的中位数")


class OpenGapsSerializer(serializers.Serializer):
    open = serializers.IntegerField(help_text="未消除的缺口总数")
    median_age_days = NumberField(
        allow_null=True, help_text="已存在天数（当日减发现日，按整天）的中位数；没有缺口时为 null"
    )
    by_kind = serializers.DictField(
        child=GapKindSerializer(),
        help_text="按缺口类型（"
        + "、".join(f"{k.value} {k.label}" for k in Gap.Kind)
        + "）；只列出有缺口的类型",
    )


def _rate_field(key: str) -> RateSerializer:
    name, formula = indicators.FORMULAS[key]
    return RateSerializer(help_text=f"{name} = {formula}")


IndicatorFiguresSerializer: type[serializers.Serializer] = type(
    "IndicatorFiguresSerializer",
    (serializers.Serializer,),
    {
        **{key: _rate_field(key) for key in indicators.FORMULAS},
        "visits_in_window": serializers.IntegerField(help_text=indicators.VISITS_IN_WINDOW_HELP),
        "open_gaps": OpenGapsSerializer(help_text=indicators.OPEN_GAPS_HELP),
    },
)


class IndicatorUnitSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=IndicatorSnapshot.UnitType.choices, help_text="单元类型")
    code = serializers.CharField(help_text="单元编码")
    name = serializers.CharField(help_text="单元名称")


class IndicatorDaySerializer(serializers.Serializer):
    day = serializers.DateField(help_text="快照日期")
    computed_at = serializers.DateTimeField(help_text="该日指标的计算时间")
    indicators = IndicatorFiguresSerializer(source="figures", help_text="当日的指标（口径同上）")


class IndicatorsOutputSerializer(serializers.Serializer):
    unit = IndicatorUnitSerializer()
    computed_at = serializers.DateTimeField(help_text="当前指标的计算时间（实时计算）")
    indicators = IndicatorFiguresSerializer(help_text="当前指标")
    history_from = serializers.DateField(help_text="历史起始日期（含）")
    history_to = serializers.DateField(help_text="历史截止日期（含）")
    history = IndicatorDaySerializer(many=True, help_text="每日快照（由早到晚）；未生成快照的日子不列出")


class IndicatorsApi(ReachAPIView):
    @extend_schema(
        tags=[TAG],
        summary="覆盖指标及每日历史",
        description=(
            "一个街道、社区或网格的覆盖指标（两新组织组织覆盖率与工作覆盖率、单独组建率、网格党支部覆盖率、"
            "楼栋党小组覆盖率、党员纳入组织管理率、入户走访覆盖率、驻点干部在岗率、未消除缺口）及其每日快照。"
            "每项比率给出分子、分母；分母为0（如空社区）时比值为 null。楼栋按当前所在网格计，走访次数按发生时所在网格计。"
            "街道指标需有该街道的角色，社区指标需有该社区或其街道的角色；不在您范围内的单元与不存在的编码一样返回 404。"
        ),
        parameters=[IndicatorQuerySerializer],
        responses={
            200: IndicatorsOutputSerializer,
            **READ_ERRORS,
            400: OpenApiResponse(
                description="参数有误：code 为 invalid_input（缺少 unit 或日期格式不对，errors 指明参数）、"
                "date_range_reversed（from 晚于 to）或 date_range_too_long（超过"
                f"{MAX_HISTORY_DAYS}天）"
            ),
            404: OpenApiResponse(description="单元不存在或不在您的范围内：{code: not_found, message}"),
        },
    )
    def get(self, request: Request) -> Response:
        params = parse_query(IndicatorQuerySerializer, request)
        date_to = params.get("to") or timezone.localdate()
        date_from = params.get("from") or days_before(date_to, DEFAULT_HISTORY_DAYS - 1)
        check_history_range(date_from, date_to)
        unit = indicators.indicator_unit_get(reach=self.reach, code=params["unit"])
        at = timezone.now()
        body: dict[str, Any] = {
            "unit": {"type": unit.type, "code": unit.code, "name": unit.name},
            "computed_at": at,
            "indicators": indicators.indicators_compute(unit=unit, at=at),
            "history_from": date_from,
            "history_to": date_to,
            "history": indicators.indicator_history(unit=unit, date_from=date_from, date_to=date_to),
        }
        return Response(IndicatorsOutputSerializer(body).data)


def days_before(day: date, days: int) -> date:
    try:
        return day - timedelta(days=days)
    except OverflowError:  # to=0001-01-05: the history starts where the calendar does
        return date.min


def check_history_range(date_from: date, date_to: date) -> None:
    if date_from > date_to:
        raise DomainError(
            f"历史起始日期 {date_from} 晚于截止日期 {date_to}",
            code="date_range_reversed",
            detail={"from": str(date_from), "to": str(date_to)},
        )
    if (date_to - date_from).days + 1 > MAX_HISTORY_DAYS:
        raise DomainError(
            f"历史区间最长{MAX_HISTORY_DAYS}天，请分段查询",
            code="date_range_too_long",
            detail={"max_days": MAX_HISTORY_DAYS},
        )
