"""Indicators of coverage (覆盖率指标) per street, community and grid cell, and their daily snapshot.

The formulas, once (FORMULAS below is the same text, shown in the API schema). Every rate is
{value, numerator, denominator}; value = numerator / denominator rounded to 4 places, and null
when the denominator is 0 (the unit has nothing to measure: an empty community has no rates, not
a division by zero, nor a misleading 0 or 100 %).

- enterprise_org_coverage 两新组织组织覆盖率 = 两新组织 with their own party organisation or
  covered by a joint branch (联合党支部) / all 两新组织 of the unit;
- enterprise_work_coverage 两新组织工作覆盖率 = those with their own organisation, a joint branch or
  a party-building instructor (党建指导员) / all. Its complement is exactly what orgs.rules and the
  gaps call a blank spot (enterprise_uncovered: no own organisation, no joint branch, no instructor);
- enterprise_own_org_rate 单独组建率 = those with their own party organisation / all (DOMAIN.md:
  "the rate of organisations with their own party org");
- grid_branch_coverage 网格党支部覆盖率 = current grid cells with a grid branch / current grid cells
  ("current": an open-ended boundary version; for a grid cell it is 1 or 0, null when retired);
- building_group_coverage 楼栋党小组覆盖率 = buildings where `building_group_min_members` (3) or more
  party members live (by residence, any status) that a building group covers / such buildings;
- member_management_rate 党员纳入组织管理率 = members attached to an organisation / all members
  placed in the unit (placed where they live, else the community they reported to, else their
  workplace, as the gaps place them; else where their organisation sits);
- household_visit_coverage 入户走访覆盖率 = households of residential buildings (residential or mixed,
  with households) that a visit named within `visit_interval_days` (60) whole local days before
  the day / households of residential buildings. The same window and buildings as the gaps
  building_unvisited and grid_low_visit_rate (below `grid_visit_rate_min` a grid is a gap);
- cadre_attendance 驻点干部在岗率 = on-site days this month of the stationed cadres in post on the day
  (distinct local dates with an on-site check-in, from the 1st to the day) / the days required so
  far (each cadre's required days per month × day of month / days in month: the even pace of the
  admin's cadre list). Cadres serve a whole community: a grid cell has none (null). Above 1 means
  ahead of pace;
- visits_in_window 走访次数 = visits made in the unit in the same window, counted where they
  happened (the grid cell and community that held the place on the visit's day);
- open_gaps 未消除缺口 = gaps (mapping.Gap) open at the end of the day, by kind, and the median of
  their ages in whole days (the day minus the local date they were first found). For today,
  open means resolved_at IS NULL; for an earlier day it is read from the gaps' history.

Buildings (and what hangs on them) count in the grid cell that holds them today
(Building.grid_cell); see mapping.indicators_sql for every placement and why one statement.

Only the time-based figures (visit window, month pace, gap history) can be computed for a past
day: organisations and members have no history. So a day's snapshot is taken on that day, and
the nightly task takes today's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from edge.errors import NotInReach
from grid.access import Reach, grid_cells_in_reach
from grid.models import Community, Street
from mapping import indicators_sql
from mapping.models import IndicatorSnapshot
from orgs.access import communities_wholly_in_reach
from orgs.rules import month_elapsed_share

UnitType = IndicatorSnapshot.UnitType

# The thresholds the formulas name, as configured (the schema states the numbers in force).
_VISIT_DAYS = int(settings.WANGGE_RULES["visit_interval_days"])
_GROUP_MIN = int(settings.WANGGE_RULES["building_group_min_members"])

# key → (Chinese name, formula): the docstring above in the words the API schema shows.
FORMULAS: dict[str, tuple[str, str]] = {
    "enterprise_org_coverage": (
        "两新组织党的组织覆盖率",
        "单独建立党组织或纳入联合党支部的两新组织数 ÷ 两新组织总数",
    ),
    "enterprise_work_coverage": (
        "两新组织党的工作覆盖率",
        "单独建立党组织、纳入联合党支部或派有党建指导员的两新组织数 ÷ 两新组织总数",
    ),
    "enterprise_own_org_rate": ("两新组织单独组建率", "单独建立党组织的两新组织数 ÷ 两新组织总数"),
    "grid_branch_coverage": (
        "网格党支部覆盖率",
        "建有网格党支部的现行网格数 ÷ 现行网格数（现行：边界版本未失效；单个网格为1或0）",
    ),
    "building_group_coverage": (
        "楼栋党小组覆盖率",
        f"居住党员达到{_GROUP_MIN}名（不论正式、预备）且已建楼栋党小组的楼栋数 ÷ 居住党员达到{_GROUP_MIN}名的楼栋数",
    ),
    "member_management_rate": (
        "党员纳入组织管理率",
        "已编入党组织的党员数 ÷ 党员总数（党员按居住楼栋计入，无居住楼栋的按双报到社区，再按所在两新组织，"
        "再按所在党组织的位置）",
    ),
    "household_visit_coverage": (
        "入户走访覆盖率",
        f"近{_VISIT_DAYS}天（含当天，按整天计）有走访记录的住宅楼栋户数之和 ÷ 住宅楼栋户数之和（楼栋按当前所在网格计）",
    ),
    "cadre_attendance": (
        "驻点干部在岗率",
        "当日在岗驻点干部本月（1日至当日）在驻点社区签到的天数之和 ÷ 截至当日应驻点天数之和"
        "（每人每月应驻点天数 × 当日日数 ÷ 本月天数）；驻点干部驻社区，网格为空；大于1表示进度超前",
    ),
}
VISITS_IN_WINDOW_HELP = f"近{_VISIT_DAYS}天（含当天）在本单元内发生的走访次数（按走访当天所在的网格、社区计）"
OPEN_GAPS_HELP = "当日结束时（今天为此刻）未消除的覆盖缺口数，及其已存在天数的中位数；分类型列出"
RATE_NULL_HELP = "比值（保留4位小数）；分母为0（本单元没有可统计的对象，如空社区）时为 null"

_UNIT_BY_CODE_LENGTH: dict[int, str] = {9: UnitType.STREET, 12: UnitType.COMMUNITY, 15: UnitType.GRID_CELL}


@dataclass(frozen=True)
class IndicatorUnit:
    """A street, community or grid cell whose indicators are asked, and the communities it reads."""

    type: str
    id: int
    code: str
    name: str
    community_ids: tuple[int, ...]


# --------------------------------------------------------------------------------------------
# Guard
# --------------------------------------------------------------------------------------------


def indicator_unit_get(*, reach: Reach, code: str) -> IndicatorUnit:
    """The unit with this code (a 9-digit street, 12-digit community or 15-digit grid code) if its
    indicators are in the caller's reach; NotInReach (404) for a missing code and for one out of
    reach alike.

    Indicators are figures about everything in the unit, so the unit must be wholly in reach: a
    street for its street roles, a community for roles over it or its street (not for a grid
    worker, who sees the community's outline but not its data), a grid cell for any reach that
    covers it.
    """
    if not reach.can_read():
        raise NotInReach
    kind = _UNIT_BY_CODE_LENGTH.get(len(code)) if code.isascii() and code.isdigit() else None
    if kind == UnitType.STREET:
        street = Street.objects.filter(code=code).values("id", "name").first()
        if street is None or not (reach.everything or street["id"] in reach.street_ids):
            raise NotInReach
        ids = tuple(
            Community.objects.filter(street_id=street["id"]).order_by("id").values_list("id", flat=True)
        )
        return IndicatorUnit(kind, street["id"], code, street["name"], ids)
    if kind == UnitType.COMMUNITY:
        community = communities_wholly_in_reach(reach).filter(code=code).values("id", "name").first()
        if community is None:
            raise NotInReach
        return IndicatorUnit(kind, community["id"], code, community["name"], (community["id"],))
    if kind == UnitType.GRID_CELL:
        cell = grid_cells_in_reach(reach).filter(code=code).values("id", "name", "community_id").first()
        if cell is None:
            raise NotInReach
        return IndicatorUnit(kind, cell["id"], code, cell["name"], (cell["community_id"],))
    raise NotInReach


# --------------------------------------------------------------------------------------------
# Reads
# --------------------------------------------------------------------------------------------


def indicator_parameters(
    *, community_ids: tuple[int, ...] | list[int], day: date, at: datetime, unit: IndicatorUnit | None = None
) -> dict[str, Any]:
    """Thresholds from settings.WANGGE_RULES and the windows of `day` in the project's time zone:
    the visit window starts at local midnight `visit_interval_days` before the day (whole days,
    as the gaps count them), everything ends at the end of the day, or at `at` if earlier."""
    rules = settings.WANGGE_RULES
    tz = timezone.get_current_timezone()
    day_end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
    return {
        "ids": list(community_ids),
        "unit_type": unit.type if unit else None,
        "unit_id": unit.id if unit else None,
        "tz": str(tz),
        "day": day,
        "day_end": day_end,
        "at": at,
        "as_of": min(at, day_end),
        "window_start": datetime.combine(
            day - timedelta(days=int(rules["visit_interval_days"])), time.min, tzinfo=tz
        ),
        "month_start": datetime.combine(day.replace(day=1), time.min, tzinfo=tz),
        "month_share": month_elapsed_share(day),
        "group_min": int(rules["building_group_min_members"]),
    }


def indicators_compute(*, unit: IndicatorUnit, at: datetime | None = None) -> dict[str, Any]:
    """The unit's indicators now (live, one statement): the figures a snapshot of today would
    hold. `unit` comes from indicator_unit_get, which has checked the reach."""
    at = at or timezone.now()
    day = timezone.localtime(at).date()
    if not unit.community_ids:  # a street with no communities yet: nothing to read
        return empty_figures()
    rows = indicators_sql.indicator_rows(
        indicator_parameters(community_ids=unit.community_ids, day=day, at=at, unit=unit)
    )
    return rows[0][4]


def empty_figures() -> dict[str, Any]:
    """The figures of a unit with nothing in it: every rate null over a zero denominator."""
    return {
        **{key: {"value": None, "numerator": 0, "denominator": 0} for key in FORMULAS},
        "visits_in_window": 0,
        "open_gaps": {"open": 0, "median_age_days": None, "by_kind": {}},
    }


def indicator_history(*, unit: IndicatorUnit, date_from: date, date_to: date) -> list[IndicatorSnapshot]:
    """The unit's daily snapshots from `date_from` to `date_to` (both included), oldest first."""
    return list(
        IndicatorSnapshot.objects.filter(
            unit_type=unit.type, unit_id=unit.id, day__gte=date_from, day__lte=date_to
        ).order_by("day")
    )


# --------------------------------------------------------------------------------------------
# Write: the daily snapshot
# --------------------------------------------------------------------------------------------


@transaction.atomic
def indicator_snapshots_take(
    *, day: date, street_ids: list[int] | None = None, at: datetime | None = None
) -> dict[str, int]:
    """Write `day`'s snapshot of every street, community and current grid cell of these streets
    (all when None): one INSERT … ON CONFLICT DO UPDATE, so taking it again the same day replaces
    the day's rows (unchanged rows are left alone) and never adds a second one.

    Meant for today (the nightly task): organisations and members have no history, so a past
    day's snapshot would mix today's organisations with that day's windows. Returns
    {"communities", "units", "written"} (written: rows inserted or changed).
    """
    at = at or timezone.now()
    qs = Community.objects.order_by("id")
    if street_ids is not None:
        qs = qs.filter(street_id__in=street_ids)
    community_ids = list(qs.values_list("id", flat=True))
    if not community_ids:
        return {"communities": 0, "units": 0, "written": 0}
    indicators_sql.wait_for_full_gap_recompute()
    units, written = indicators_sql.snapshots_write(indicator_parameters(community_ids=community_ids, day=day, at=at))
    return {"communities": len(community_ids), "units": units, "written": written}
