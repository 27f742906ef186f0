"""Residents' cases of the demo data set (民情台账): a year of cases before `today` in every street,
generated in memory from the space and the organisation side, staged with COPY and written
set-based inside demo._write.

What it makes, per grid and day, about CASES_PER_HOUSEHOLD_YEAR cases per household a year:
* categories with their seasons (Zhanjiang: 积水内涝 in the rainy and typhoon months, 绿化损毁 after
  the typhoons, 噪声扰民 in summer, 占道经营 and 安全隐患 before the Spring Festival, 困难帮扶 in
  January and February, 违法搭建 in spring); fewer cases at weekends, most of them by the 12345 hotline;
* sources: grid workers' visits and stationed cadres' contacts (with a captured position, mostly
  GCJ-02), the hotline, the street office's counter and imports (at the building's address);
* the loop as the services run it, with each step's time a share of the category's limit on the
  working calendar (holidays from orgs.WorkCalendarDay): most steps in time, some late (overdue,
  escalated 督办 exactly as orgs.services.cases_escalate_overdue would), a few stuck long past their
  deadline, some declined (不予立案), some sent back by the body (非本单位职责) or failing the
  on-site re-check (核查不通过), and duplicates raised by the hotline hours after a first report,
  merged (重复) into it while it is open;
* repeat places: a few market and shop fronts per street with 暴露垃圾 or 占道经营 every week or two.
Cases raised lately are still open in whatever step the simulation reached by midnight before
`today`.

Idempotent: a case's `client_id` is a uuid5 of its whole content (and of the case it was merged
into), so the same seed and day give the same ids, and a re-run inserts and deletes nothing. A
case whose content changed (a step happened since yesterday) gets a new id: the old row is deleted
and the new one inserted. Only cases of the demo account are replaced; cases raised by real
accounts stay, unless what they point at is deleted by the build (as for field events).
"""

# Table names in the statements below come from the models' Meta, never from input; values are
# always parameters (as in data/sql.py). Hence the file-wide S608 exemption.
# ruff: noqa: S608

from __future__ import annotations

import bisect
import hashlib
import uuid
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from django.conf import settings
from django.db import connection

from data.demo_orgs import DemoOrgs, _one_name
from data.demo_space import DemoSpace, _Rand
from grid import coords
from grid.models import Building, Community, GridCell, Street
from grid.sql import cell_on_day_sql, community_at_sql
from orgs import cases_selectors, services
from orgs.calendar import WorkDays, deadline_after
from orgs.cases_models import STEP_LIMIT_FIELD, Case, CaseCategory, CaseTransition
from orgs.models import PartyOrganisation, StationContact, Visit

# Fixed forever: changing it changes every demo case id.
CASE_NAMESPACE = uuid.UUID("9c2f6a1e-3d4b-4f8a-b7e5-1a2c3d4e5f60")
WINDOW_DAYS = 365
CASES_PER_HOUSEHOLD_YEAR = 0.22
WEEKDAY_FACTOR = (1.12, 1.12, 1.12, 1.12, 1.12, 0.7, 0.7)
DECLINE_SHARE = 0.05
SEND_BACK_SHARE = 0.05  # the body sends it back at 派遣
RECHECK_FAIL_SHARE = 0.04  # 核查不通过
LATE_SHARE = 0.02  # per step: about one case in ten has a step late
STUCK_SHARE = 0.03  # one step far past its deadline (some still open and overdue today)
DUPLICATE_SHARE = 0.04
HOTSPOTS_PER_STREET = 3
SWEEP_DELAY = timedelta(minutes=5)  # the beat sweep runs every ten minutes

_M_PER_DEG = 111_320.0

# code -> (share of cases, {month: seasonal factor}); shares sum to 1.
SEASONS: dict[str, tuple[float, dict[int, float]]] = {
    "SR01": (0.19, {2: 1.3, 6: 1.2, 7: 1.2, 8: 1.2, 9: 1.2}),
    "SR02": (0.11, {}),
    "SR03": (0.05, {}),
    "SR04": (0.03, {}),
    "JM01": (0.11, {1: 1.4, 2: 1.3, 6: 1.2, 7: 1.2, 8: 1.2}),
    "JM02": (0.06, {}),
    "JM03": (0.07, {}),
    "SG01": (0.03, {3: 1.6, 4: 1.6, 5: 1.4}),
    "SG02": (0.06, {6: 1.6, 7: 1.7, 8: 1.7, 9: 1.3}),
    "SS01": (0.04, {11: 1.3, 12: 1.4, 1: 1.4, 2: 1.2}),
    "SS02": (0.015, {}),
    "SS03": (0.03, {7: 1.5, 8: 1.6, 9: 1.6, 10: 1.4}),
    "YL01": (0.025, {8: 2.5, 9: 2.8, 10: 2.0}),
    "TF01": (0.03, {1: 1.8, 2: 1.8, 7: 1.5, 8: 1.5, 9: 1.5}),
    "TF02": (0.02, {5: 3.0, 6: 4.0, 7: 4.0, 8: 4.5, 9: 4.0, 10: 1.5, 11: 0.2, 12: 0.1, 1: 0.1, 2: 0.1, 3: 0.2}),
    "SH01": (0.05, {7: 1.3, 8: 1.3}),
    "SH02": (0.06, {}),
    "SH03": (0.02, {1: 2.5, 2: 2.5}),
    "QT01": (0.035, {}),
}
# Categories at a building (the resident's door) rather than out in the street.
AT_DOOR = {"SH01", "SH02", "SH03", "SG02"}
NO_DUPLICATES = {"SH01", "SH02", "SH03"}
DESCRIPTIONS: dict[str, list[str]] = {
    "SR01": ["小区门口垃圾堆放两天无人清运", "垃圾桶满溢，周边散落生活垃圾", "路边有人倾倒装修垃圾", "绿化带内堆放大量垃圾"],
    "SR02": ["路面有大面积污渍未清扫", "人行道落叶、纸屑较多", "菜市场门口地面脏乱"],
    "SR03": ["电线杆上张贴小广告", "楼道墙面被喷涂办证广告", "公交站牌被乱张贴"],
    "SR04": ["商铺招牌破损有坠落风险", "未经审批设置户外广告牌"],
    "JM01": ["流动摊贩在人行道占道经营", "早市摊点占用机动车道", "水果摊占道影响通行"],
    "JM02": ["餐馆在店外摆放桌椅经营", "维修店在门前人行道作业"],
    "JM03": ["共享单车乱停放堵塞人行道", "电动车停放占用盲道"],
    "SG01": ["楼顶违规加建彩钢棚", "一楼住户违规扩建围墙", "天台违章搭建房屋"],
    "SG02": ["夜间施工噪声扰民", "广场舞音响音量过大", "商铺大音量播放促销广播"],
    "SS01": ["路灯不亮已有三天", "小区道路路灯闪烁", "路灯灯杆倾斜"],
    "SS02": ["人行道井盖缺失，存在安全隐患", "雨水井盖破损下陷"],
    "SS03": ["路面坑洼积水", "人行道地砖松动破损"],
    "YL01": ["台风后行道树倒伏未清理", "绿化带被踩踏破坏", "树枝断裂悬挂在路边"],
    "TF01": ["楼道堆放杂物堵塞消防通道", "电动车在楼道内充电", "老旧电线裸露有触电风险"],
    "TF02": ["暴雨后路口积水严重", "地下车库入口积水"],
    "SH01": ["邻居装修噪音及漏水纠纷", "楼上住户高空抛物引发矛盾", "相邻住户因停车位发生纠纷"],
    "SH02": ["小区电梯故障多日未修", "物业服务不到位，卫生差", "小区门禁损坏"],
    "SH03": ["独居老人生活困难需帮扶", "困难家庭申请临时救助", "残疾人家庭反映出行困难"],
    "QT01": ["居民咨询社区办事流程", "反映小区周边停车难", "建议增设休闲座椅"],
}
SOURCES = [("visit", 0.40), ("hotline", 0.28), ("counter", 0.12), ("station_contact", 0.12), ("import", 0.08)]
DECLINE_REASONS = ["不属于受理范围", "问题已自行解决", "信息不全，无法核实"]
SEND_BACK_REASONS = ["非本单位职责，申请退回", "问题位置不在本单位辖区，申请退回"]
RECHECK_REASONS = ["现场核查问题未解决", "现场仍有遗留，需继续处理"]
FEEDBACK_NOTES = ["已处理完毕", "已安排人员清理", "已现场整改", "已协调解决"]
MANUAL_BODIES = ["区城管局", "区住建局", "区水务局", "供电所", "区交通运输局"]
# Used when the database lacks a category (a test database emptied by a transactional test).
FALLBACK_CATEGORIES: dict[str, tuple[str, str, str, float, bool, int]] = {
    "SR01": ("市容环境", "暴露垃圾", "街道环卫所", 7.5, False, 250),
    "SR02": ("市容环境", "道路不洁", "街道环卫所", 5, False, 250),
    "SR03": ("市容环境", "乱张贴乱涂写", "街道城管执法中队", 7.5, False, 100),
    "SR04": ("市容环境", "违规户外广告", "街道城管执法中队", 37.5, False, 250),
    "JM01": ("街面秩序", "占道经营", "街道城管执法中队", 4, False, 100),
    "JM02": ("街面秩序", "店外经营", "街道城管执法中队", 7.5, False, 100),
    "JM03": ("街面秩序", "非机动车乱停放", "街道城管执法中队", 4, False, 100),
    "SG01": ("施工管理", "违法搭建", "街道城管执法中队", 112.5, False, 100),
    "SG02": ("施工管理", "噪声扰民", "街道综合行政执法队", 15, False, 250),
    "SS01": ("设施管理", "路灯损坏", "区路灯管理所", 22.5, False, 250),
    "SS02": ("设施管理", "井盖缺失", "区市政设施维护中心", 2, True, 100),
    "SS03": ("设施管理", "道路破损", "区市政设施维护中心", 37.5, False, 250),
    "YL01": ("园林绿化", "绿化损毁", "街道园林绿化站", 37.5, False, 250),
    "TF01": ("突发事件", "安全隐患", "街道应急管理办公室", 4, True, 250),
    "TF02": ("突发事件", "积水内涝", "街道应急管理办公室", 2, True, 500),
    "SH01": ("社会事务", "邻里纠纷", "", 37.5, False, 50),
    "SH02": ("社会事务", "物业问题", "", 37.5, False, 50),
    "SH03": ("社会事务", "困难帮扶", "", 37.5, False, 50),
    "QT01": ("其他", "其他", "", 37.5, False, 250),
}

S = Case.State
A = CaseTransition.Action

CASE_COLUMNS = [
    "client_id", "category_code", "source", "description", "address", "building_code", "lon", "lat",
    "captured_lon", "captured_lat", "captured_crs", "accuracy_m", "resident_name", "reporter_name", "reported_at",
    "state", "step_started_at", "deadline", "assignee_org_code", "assignee_name", "assignee_route",
    "escalation_level", "escalated_to_code", "next_escalation_at", "ever_overdue", "version",
    "merged_into_client_id", "closed_at",
]
TRANSITION_COLUMNS = [
    "case_client_id", "seq", "action", "from_state", "to_state", "at", "actor_name", "reason", "captured_lon",
    "captured_lat", "captured_crs", "accuracy_m", "lon", "lat", "assignee_org_code", "assignee_name",
    "escalation_level", "deadline", "overdue", "version", "merged_into_client_id",
]


@dataclass(frozen=True)
class Category:
    code: str
    name: str
    default_body: str
    limits: dict[str, Decimal]  # state -> hours of its step
    urgent: bool

    @property
    def seconds(self) -> dict[str, int]:
        return self._seconds  # type: ignore[attr-defined,no-any-return]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_seconds", {s: int(h * 3600) for s, h in self.limits.items()})


@dataclass
class DemoCases:
    # COPY text lines of the stages (CASE_COLUMNS, TRANSITION_COLUMNS), one per case / transition.
    cases: list[str] = field(default_factory=list)
    transitions: list[str] = field(default_factory=list)
    missing_categories: list[str] = field(default_factory=list)  # codes to create before writing
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoCasesSummary:
    counts: dict[str, int]


# ------------------------------------------------------------------------------------------------
# The loop of one case, as the services would have run it
# ------------------------------------------------------------------------------------------------


_M64 = (1 << 64) - 1


def _mix64(z: int) -> int:
    """splitmix64's finaliser (as data.demo_orgs): a well-mixed 64-bit hash of a 64-bit integer."""
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


class _Draws:
    """Uniform draws in [0, 1) that depend only on (seed, case key, stream). The key is hashed once
    per case and each draw costs one mix: a district year has ~200,000 cases of ~30 draws each."""

    def __init__(self, seed: int) -> None:
        self._seed = _mix64(seed & _M64)
        self._streams: dict[str, int] = {}

    def of(self, key: tuple[int, ...]) -> Any:
        h = self._seed
        for k in key:
            h = _mix64(h ^ (int(k) & _M64))
        streams = self._streams

        def draw(stream: str) -> float:
            s = streams.get(stream)
            if s is None:
                s = streams[stream] = _mix64(zlib.crc32(stream.encode()))
            return (_mix64(h ^ s) >> 11) * (1.0 / (1 << 53))

        return draw


def _fmt(value: Any) -> str:
    return "\\N" if value is None else str(value)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


class _Life:
    """One case's timeline, step by step; stops at `now` (what has not happened yet stays undone)."""

    def __init__(self, gen: _CaseGen, case: dict[str, Any], cat: Category) -> None:
        self.g, self.c, self.cat = gen, case, cat
        self.rows: list[dict[str, Any]] = []
        self.state: str = S.REPORTED
        self.version = 1
        self.level = 0
        self.escalated_to = ""
        self.ever_overdue = False
        self.assignee = ("", "", "")  # org code, name, route
        self.closed_at: datetime | None = None
        self.merged_into = ""
        self.step_started: datetime = case["reported"]
        self.deadline: datetime | None = self._due(S.REPORTED, case["reported"])
        self.next_due: datetime | None = self.deadline
        self.stopped = False
        self._row(A.REPORT, "", S.REPORTED, case["reported"], case["reporter_name"], case["description"][:200])

    def _due(self, state: str, start: datetime, factor: float = 1.0) -> datetime:
        # Whole seconds, like the service's limits (factor 1 gives exactly the service's deadline).
        amount = timedelta(seconds=round(self.cat.seconds[state] * factor))
        return deadline_after(start, amount, urgent=self.cat.urgent, days=self.g.days)

    def after(self, state: str, factor: float, start: datetime | None = None) -> datetime:
        """A moment `factor` × the limit of `state`'s step after `start` (default: the step's start)."""
        return self._due(state, start or self.step_started, factor)

    def _chain(self) -> list[tuple[str, str]]:
        community_org = self.g.community_org.get(self.c["community_code"])
        committee = self.g.committee[self.c["street_code"]]
        if self.state in (S.REPORTED, S.REGISTERED):
            return [o for o in (community_org, committee) if o is not None]
        return [committee]

    def _escalate_until(self, end: datetime) -> None:
        while self.next_due is not None and self.next_due + SWEEP_DELAY <= end:
            chain = self._chain()
            at = self.next_due + SWEEP_DELAY
            if self.level < len(chain):
                self.level += 1
                target = chain[self.level - 1]
                nd = self._due(self.state, self.next_due) if self.level < len(chain) else None
            else:
                target, nd = chain[-1], None
            step = S(self.state).label
            self._row(A.ESCALATE, self.state, self.state, at, "系统（超期督办）",
                      f"「{step}」超过时限（{self.deadline:%Y-%m-%d %H:%M}），督办至{target[1]}",
                      assignee=(target[0], target[1]), level=self.level, deadline=self.deadline, overdue=True)
            self.escalated_to, self.ever_overdue, self.next_due = target[0], True, nd

    def _row(self, action: str, from_state: str, to_state: str, at: datetime, actor: str, reason: str, *,
             assignee: tuple[str, str] = ("", ""), level: int | None = None, deadline: datetime | None = None,
             overdue: bool = False, position: list[Any] | None = None, merged_into: str = "") -> None:
        self.rows.append({
            "seq": len(self.rows), "action": action, "from_state": from_state, "to_state": to_state, "at": at,
            "actor_name": actor, "reason": reason, "position": position, "assignee_org_code": assignee[0],
            "assignee_name": assignee[1], "escalation_level": level, "deadline": deadline, "overdue": overdue,
            "version": self.version, "merged_into": merged_into,
        })

    def go(self, action: str, to_state: str, at: datetime, actor: str, reason: str = "", *,
           position: list[Any] | None = None, assignee: tuple[str, str, str] | None = None,
           merged_into: str = "") -> bool:
        """Take `action` at `at`; False (and the case stays where it is) when `at` is not past yet."""
        if self.stopped or at >= self.g.now:
            self.stopped = True
            return False
        self._escalate_until(at)
        overdue = self.deadline is not None and at > self.deadline
        self.ever_overdue = self.ever_overdue or overdue
        from_state = self.state
        if assignee is not None:
            self.assignee = assignee
        elif action == A.SEND_BACK and to_state in (S.REPORTED, S.REGISTERED):
            self.assignee = ("", "", "")
        self.state, self.version = to_state, self.version + 1
        if to_state in Case.FINAL_STATES:
            self.deadline = self.next_due = None
            self.closed_at = at
        elif action != A.START:
            self.step_started = at
            self.deadline = self.next_due = self._due(to_state, at)
        if action == A.MERGE:
            self.merged_into = merged_into
        self._row(action, from_state, to_state, at, actor, reason, position=position,
                  assignee=(self.assignee[0], self.assignee[1]) if action == A.DISPATCH else ("", ""),
                  deadline=self.deadline, overdue=overdue, merged_into=merged_into)
        return True

    def finish(self) -> None:
        if self.state in Case.OPEN_STATES:
            self._escalate_until(self.g.now)


# ------------------------------------------------------------------------------------------------
# Generation
# ------------------------------------------------------------------------------------------------


class _CaseGen:
    def __init__(self, space: DemoSpace, orgs: DemoOrgs, today: date, categories: dict[str, Category],
                 days: WorkDays) -> None:
        self.space, self.orgs, self.seed = space, orgs, space.seed
        self.tz = ZoneInfo(settings.TIME_ZONE)
        self.now = datetime.combine(today, time.min, tzinfo=self.tz)
        self.end = (today - timedelta(days=1)).toordinal()
        self.start = self.end - WINDOW_DAYS + 1
        self.rand = _Rand(space.seed)
        self.one = _Rand(space.seed).one
        self.draws = _Draws(space.seed)
        self.cats, self.days = categories, days
        b = space.buildings
        pts = shapely.get_coordinates(shapely.point_on_surface(b.geom))
        self.blon, self.blat = pts[:, 0], pts[:, 1]
        self.by_grid: dict[str, list[int]] = defaultdict(list)
        for i, g in enumerate(b.grid_code):
            if g:
                self.by_grid[g].append(i)
        self.community_of_grid = {g.code: g.community_code for g in space.grids}
        self.community_name = {c.code: c.name for c in space.communities}
        self.street_name = {s.code: s.name for s in space.streets}
        self.worker: dict[str, str] = {}
        for w in orgs.workers:
            for g in w.grids:
                self.worker.setdefault(g, w.name)
        self.cadre: dict[str, str] = {}
        for s in orgs.stationed:
            self.cadre.setdefault(s.community_code, s.name)
        self.community_org = {o.community_code: (o.code, o.name) for o in orgs.orgs if o.kind == "community_org"}
        self.committee = {o.street_code: (o.code, o.name) for o in orgs.orgs if o.kind == "street_committee"}
        codes = list(SEASONS)
        self.codes = codes
        shares = np.array([SEASONS[c][0] for c in codes])
        self.month_weights = {
            m: shares * np.array([SEASONS[c][1].get(m, 1.0) for c in codes]) for m in range(1, 13)
        }
        self.month_cum = {m: list(np.cumsum(w) / w.sum()) for m, w in self.month_weights.items()}
        self._cums: dict[str, tuple[list[int], list[float]]] = {}
        # Captured positions still in WGS-84, [lon, lat, ...] lists converted to GCJ-02 in place.
        self._to_gcj: list[list[Any]] = []
        self.out = DemoCases()

    # -- where and what ----------------------------------------------------------------------------

    def _slots(self) -> list[tuple[str, int, int]]:
        """(grid, day ordinal, k) of every case, Poisson per grid and day (inverse transform of one
        keyed uniform, so a day's cases do not depend on the window)."""
        b = self.space.buildings
        grids = sorted(g for g in self.by_grid if g in self.community_of_grid and g[:9] in self.committee)
        hh = np.array([max(1, int(b.households[self.by_grid[g]].sum())) for g in grids], dtype=np.float64)
        days = np.arange(self.start, self.end + 1, dtype=np.int64)
        months = np.array([date.fromordinal(int(d)).month for d in days])
        base = np.array([self.month_weights[m].sum() for m in months])
        wd = np.array([WEEKDAY_FACTOR[(int(d) - 1) % 7] for d in days])
        lam = (CASES_PER_HOUSEHOLD_YEAR / 365.0) * hh[:, None] * (base * wd)[None, :]
        gkeys = np.array([int(g) for g in grids], dtype=np.int64)
        u = self.rand.u("case:n", gkeys[:, None], days[None, :])
        n = np.zeros_like(lam, dtype=np.int64)
        p = np.exp(-lam)
        cdf = p.copy()
        for k in range(1, 12):
            more = u > cdf
            if not more.any():
                break
            n += more
            p = p * lam / k
            cdf = cdf + p
        out = []
        for gi, di in zip(*np.nonzero(n), strict=True):
            for k in range(int(n[gi, di])):
                out.append((grids[gi], int(days[di]), k))
        return out

    def _grid_cum(self, grid: str) -> tuple[list[int], list[float]]:
        """The grid's buildings and their cumulative share of its households (cached)."""
        found = self._cums.get(grid)
        if found is None:
            members = self.by_grid[grid]
            weights = np.maximum(self.space.buildings.households[members].astype(np.float64), 1.0)
            found = self._cums[grid] = (members, list(np.cumsum(weights) / weights.sum()))
        return found

    def _convert_captured(self) -> None:
        """What AMap tablets report: every pending position as GCJ-02, 7 decimals, in one call."""
        if not self._to_gcj:
            return
        lon = np.array([p[0] for p in self._to_gcj])
        lat = np.array([p[1] for p in self._to_gcj])
        g_lon, g_lat = coords.wgs84_to_gcj02(lon, lat)
        for p, x, y in zip(self._to_gcj, np.round(g_lon, 7).tolist(), np.round(g_lat, 7).tolist(), strict=True):
            p[0], p[1] = x, y
        self._to_gcj.clear()

    def _place(self, d: Any, bi: int, spread: float) -> tuple[float, float]:
        metres = spread * d("case:off")
        angle = 2 * np.pi * d("case:ang")
        lat = self.blat[bi] + metres * np.sin(angle) / _M_PER_DEG
        lon = self.blon[bi] + metres * np.cos(angle) / (_M_PER_DEG * np.cos(np.radians(self.blat[bi])))
        return float(lon), float(lat)

    def _when(self, source: str, day: int, d: Any) -> datetime:
        if source == "hotline":
            minutes = 8 * 60 + int(14 * 60 * d("case:time"))
        else:
            minutes = 8 * 60 + 30 + int(9 * 60 * d("case:time"))
            if 12 * 60 <= minutes < 14 * 60:
                minutes += 120
            minutes = min(minutes, 17 * 60 + 55)
        return datetime.combine(date.fromordinal(day), time.min, tzinfo=self.tz) + timedelta(minutes=minutes)

    def _source(self, day: int, grid: str, d: Any) -> str:
        weekend = (day - 1) % 7 >= 5
        u = d("case:src")
        if weekend:
            return "hotline" if u < 0.85 or grid not in self.worker else "visit"
        acc, chosen = 0.0, SOURCES[-1][0]
        for name, share in SOURCES:
            acc += share
            if u < acc:
                chosen = name
                break
        if chosen == "visit" and grid not in self.worker:
            return "hotline"
        return chosen

    def _case(self, grid: str, day: int, key: tuple[int, ...], *, code: str | None = None,
              bi: int | None = None, source: str | None = None, spread: float | None = None) -> dict[str, Any]:
        b, d = self.space.buildings, self.draws.of(key)
        if code is None:
            cum = self.month_cum[date.fromordinal(day).month]
            code = self.codes[min(len(self.codes) - 1, bisect.bisect_right(cum, d("case:cat")))]
        if bi is None:
            members, cum = self._grid_cum(grid)
            bi = members[min(len(members) - 1, bisect.bisect_right(cum, d("case:bld")))]
        source = source or self._source(day, grid, d)
        community = self.community_of_grid[grid]
        street = grid[:9]
        lon, lat = self._place(d, bi, spread if spread is not None else (6 if code in AT_DOOR else 45))
        captured: list[Any] = [None, None, "", None]
        if source in ("visit", "station_contact"):
            gcj = d("case:crs") < 0.85
            captured = [round(lon, 7), round(lat, 7), "gcj02" if gcj else "wgs84", round(5 + 25 * d("case:acc") ** 2, 1)]
            if gcj:
                self._to_gcj.append(captured)  # converted for all cases at once (coords is vectorised)
        else:
            # Entered at the office from an address: the case stands at the building.
            lon, lat = float(self.blon[bi]), float(self.blat[bi])
        reporter = {
            "visit": self.worker.get(grid, "网格员"),
            "station_contact": self.cadre.get(community, "驻点干部"),
            "hotline": "12345热线转办",
            "counter": f"{self.street_name[street]}服务窗口",
            "import": "数字城管平台导入",
        }[source]
        texts = DESCRIPTIONS[code]
        resident = ""
        if source in ("hotline", "counter") and d("case:res") < 0.7:
            # _one_name draws through a callable (stream, *keys); this case's draws take the stream only.
            draws_of_case: Any = lambda stream, *_keys: d(stream)  # noqa: E731
            resident = _one_name(draws_of_case, "case:name", d("case:g") < 0.5)
        return {
            "key": key, "d": d, "grid": grid, "community_code": community, "street_code": street, "code": code,
            "source": source, "building": b.code[bi], "address": f"{b.address[bi]}附近" if b.address[bi] else "",
            "lon": lon, "lat": lat, "captured": captured, "resident": resident, "reporter_name": reporter,
            "reported": self._when(source, day, d), "bi": bi,
            "description": texts[min(len(texts) - 1, int(len(texts) * d("case:txt")))],
        }

    # -- the loop ---------------------------------------------------------------------------------

    @staticmethod
    def _factor(d: Any, stream: str, *, lo: float = 0.1, hi: float = 0.8, late: float = LATE_SHARE) -> float:
        """A step's time as a share of its limit: mostly in time, late with probability `late`."""
        u = d(stream)
        if u < late:
            return 1.15 + 2.5 * (u / late)
        return lo + (hi - lo) * ((u - late) / (1 - late))

    def _onsite(self, case: dict[str, Any], stream: str) -> list[Any]:
        """A re-check's position near the case, as an AMap tablet reports it (GCJ-02). The stored
        WGS-84 point is the true one: the service's inverse of the rounded value differs by < 1 cm."""
        draw = case["d"]
        lon, lat = self._place(lambda s: draw(f"{stream}:{s}"), case["bi"], 25)
        onsite = [lon, lat, "gcj02", round(5 + 15 * draw(f"{stream}:acc"), 1), lon, lat]
        self._to_gcj.append(onsite)
        return onsite

    def _route(self, case: dict[str, Any], cat: Category) -> tuple[str, str, str]:
        if cat.default_body:
            return "", cat.default_body, Case.Route.CATEGORY
        org = self.community_org.get(case["community_code"])
        if org is not None:
            return org[0], org[1], Case.Route.COMMUNITY
        committee = self.committee[case["street_code"]]
        return committee[0], committee[1], Case.Route.STREET

    def _live(self, case: dict[str, Any]) -> _Life:
        d, cat = case["d"], self.cats[case["code"]]
        life = _Life(self, case, cat)
        office = f"{self.street_name[case['street_code']]}网格化服务管理中心"
        stuck = int(6 * d("case:stuck:step")) if d("case:stuck") < STUCK_SHARE else -1

        def factor(step: int, stream: str, **kw: Any) -> float:
            if step == stuck:
                return 6 + 20 * d("case:stuck:f")
            return self._factor(d, stream, **kw)

        if d("case:decline") < DECLINE_SHARE:
            reason = DECLINE_REASONS[int(len(DECLINE_REASONS) * d("case:dr"))]
            life.go(A.DECLINE, S.REJECTED, life.after(S.REPORTED, factor(0, "s0")), office, reason)
            return life
        if not life.go(A.ACCEPT, S.REGISTERED, life.after(S.REPORTED, factor(0, "s0")), office):
            return life
        route = self._route(case, cat)
        if not life.go(A.DISPATCH, S.DISPATCHED, life.after(S.REGISTERED, factor(1, "s1")), office,
                       f"派遣至{route[1]}", assignee=route):
            return life
        if d("case:back") < SEND_BACK_SHARE:
            at = life.after(S.DISPATCHED, 0.03 + 0.12 * d("case:back:f"))
            reason = SEND_BACK_REASONS[int(len(SEND_BACK_REASONS) * d("case:back:r"))]
            if not life.go(A.SEND_BACK, S.REGISTERED, at, route[1], reason):
                return life
            body = MANUAL_BODIES[int(len(MANUAL_BODIES) * d("case:back:b"))]
            route = ("", body, Case.Route.MANUAL)
            if not life.go(A.DISPATCH, S.DISPATCHED, life.after(S.REGISTERED, factor(1, "s1b")), office,
                           f"改派至{body}", assignee=route):
                return life
        self._handled(life, case, route, office, factor)
        return life

    def _handled(self, life: _Life, case: dict[str, Any], route: tuple[str, str, str], office: str,
                 factor: Any) -> None:
        """From 派遣 to 结案: the body's work, its feedback, the on-site re-check (failing now and
        then), and the close."""
        d = case["d"]
        field_actor = self.worker.get(case["grid"], "网格员")
        dispatched = life.step_started
        start = life.after(S.DISPATCHED, 0.02 + 0.15 * d("case:start"))
        if not life.go(A.START, S.IN_PROGRESS, start, route[1]):
            return
        handle = max(factor(2, "s2", lo=0.3, hi=0.95, late=LATE_SHARE * (2 if case["code"] == "SG01" else 1)),
                     0.2 + 0.15 * d("case:start"))
        note = FEEDBACK_NOTES[int(len(FEEDBACK_NOTES) * d("case:fb"))]
        if not life.go(A.FEEDBACK, S.FEEDBACK, life.after(S.DISPATCHED, handle, dispatched), route[1], note):
            return
        if d("case:recheck") < RECHECK_FAIL_SHARE:
            onsite = self._onsite(case, "rc")
            reason = RECHECK_REASONS[int(len(RECHECK_REASONS) * d("case:rc:r"))]
            if not life.go(A.SEND_BACK, S.IN_PROGRESS, life.after(S.FEEDBACK, factor(3, "s3b")), field_actor,
                           reason, position=onsite):
                return
            again = life.after(S.IN_PROGRESS, 0.2 + 0.4 * d("case:rc:f"))
            if not life.go(A.FEEDBACK, S.FEEDBACK, again, route[1], "已再次处理"):
                return
        onsite = self._onsite(case, "vf")
        if not life.go(A.VERIFY, S.VERIFIED, life.after(S.FEEDBACK, factor(3, "s3")), field_actor,
                       "现场核查，问题已解决", position=onsite):
            return
        life.go(A.CLOSE, S.CLOSED, life.after(S.VERIFIED, factor(4, "s4")), office, "结案")

    def _duplicate(self, original: dict[str, Any], life: _Life) -> tuple[dict[str, Any], _Life] | None:
        key, d = original["key"], original["d"]
        if original["code"] in NO_DUPLICATES or d("case:dup") >= DUPLICATE_SHARE:
            return None
        dkey = (*key, 9)
        dup = self._case(original["grid"], original["reported"].toordinal(), dkey, code=original["code"],
                         bi=original["bi"], source="hotline", spread=0)
        dup["reported"] = original["reported"] + timedelta(hours=1 + 5 * d("case:dup:h"))
        if dup["reported"] >= self.now:
            return None
        dlife = _Life(self, dup, self.cats[dup["code"]])
        office = f"{self.street_name[dup['street_code']]}网格化服务管理中心"
        at = dlife.after(S.REPORTED, 0.2 + 0.6 * d("case:dup:m"))
        if life.closed_at is None or life.closed_at > at:  # the first report is still open then
            dlife.go(A.MERGE, S.MERGED, at, office, "与已受理事项重复，予以合并", merged_into=original["client_id"])
        else:
            dlife.go(A.DECLINE, S.REJECTED, at, office, "经核实问题已处理完毕")
        return dup, dlife

    def _hotspots(self) -> list[tuple[str, int, tuple[int, ...], int, str]]:
        """Extra cases at a few shop and market fronts per street: (grid, day, key, building, code)."""
        b, one = self.space.buildings, self.one
        by_street: dict[str, list[int]] = defaultdict(list)
        for i, (kind, grid) in enumerate(zip(b.kind, b.grid_code, strict=True)):
            if kind in ("commercial", "mixed") and grid in self.community_of_grid and grid[:9] in self.committee:
                by_street[grid[:9]].append(i)
        out: list[tuple[str, int, tuple[int, ...], int, str]] = []
        for street, members in sorted(by_street.items()):
            spots = sorted(members, key=lambda i: one("case:hot", zlib_key(b.code[i]), int(street)))
            for n, bi in enumerate(spots[:HOTSPOTS_PER_STREET]):
                period = 9 + int(7 * one("case:hot:p", int(street), n))
                first = self.start + int(period * one("case:hot:ph", int(street), n))
                code = "SR01" if n % 2 == 0 else "JM01"
                for day in range(first, self.end + 1, period):
                    out.append((b.grid_code[bi], day, (int(street), n, day, 7), bi, code))
        return out

    def build(self) -> DemoCases:
        self.out.counts = {"overdue_open": 0, "escalated": 0, "sent_back": 0}
        made: list[tuple[dict[str, Any], _Life]] = []
        for grid, day, k in self._slots():
            case = self._case(grid, day, (int(grid), day, k))
            made.append((case, self._live(case)))
        for grid, day, key, bi, code in self._hotspots():
            case = self._case(grid, day, key, code=code, bi=bi, spread=18)
            made.append((case, self._live(case)))
        self._convert_captured()
        dups = []
        for case, life in made:
            life.finish()
            case["client_id"] = self._emit(case, life)
        for case, life in made:
            found = self._duplicate(case, life)
            if found is not None:
                dup, dlife = found
                dlife.finish()
                dup["client_id"] = self._emit(dup, dlife)
                dups.append(dup)
        self.out.counts |= {
            "cases": len(self.out.cases),
            "transitions": len(self.out.transitions),
            "duplicates": len(dups),
        }
        return self.out

    def _emit(self, case: dict[str, Any], life: _Life) -> str:
        """Stage lines (COPY text) of a case and its timeline; the id is a hash of all of them."""
        c_lon, c_lat, c_crs, acc = case["captured"]
        is_open = life.state in Case.OPEN_STATES
        body = [
            case["code"], case["source"], case["description"], case["address"], case["building"], case["lon"],
            case["lat"], c_lon, c_lat, c_crs, acc, case["resident"], case["reporter_name"], _iso(case["reported"]),
            life.state, _iso(life.step_started), _iso(life.deadline), life.assignee[0], life.assignee[1],
            life.assignee[2], life.level, life.escalated_to, _iso(life.next_due if is_open else None),
            life.ever_overdue, life.version, life.merged_into or None, _iso(life.closed_at),
        ]
        body_line = "\t".join(map(_fmt, body))
        lines = []
        for r in life.rows:
            # One f-string per row (a district year has 1.4 million); \\N is COPY's NULL.
            pos = r["position"]
            where = "\\N\t\\N\t\t\\N\t\\N\t\\N" if pos is None else "\t".join(map(str, pos))
            level = "\\N" if r["escalation_level"] is None else r["escalation_level"]
            deadline = "\\N" if r["deadline"] is None else r["deadline"].isoformat()
            merged = r["merged_into"] or "\\N"
            lines.append(
                f"{r['seq']}\t{r['action']}\t{r['from_state']}\t{r['to_state']}\t{r['at'].isoformat()}\t"
                f"{r['actor_name']}\t{r['reason']}\t{where}\t{r['assignee_org_code']}\t{r['assignee_name']}\t"
                f"{level}\t{deadline}\t{r['overdue']}\t{r['version']}\t{merged}"
            )
        identity = f"{self.seed}|{case['key']}|{body_line}|" + "\n".join(lines)
        digest = hashlib.sha1(CASE_NAMESPACE.bytes + identity.encode(), usedforsecurity=False).digest()
        client_id = str(uuid.UUID(bytes=digest[:16], version=5))
        self.out.cases.append(f"{client_id}\t{body_line}")
        self.out.transitions.extend(f"{client_id}\t{line}" for line in lines)
        counts = self.out.counts
        counts[f"state_{life.state}"] = counts.get(f"state_{life.state}", 0) + 1
        counts["overdue_open"] += int(is_open and life.deadline is not None and life.deadline < self.now)
        counts["escalated"] += int(life.level > 0)
        counts["sent_back"] += int(any(r["action"] == A.SEND_BACK for r in life.rows))
        return client_id


def zlib_key(text: str) -> int:
    return zlib.crc32(text.encode())


def _categories() -> tuple[dict[str, Category], list[str]]:
    """The categories the demo uses, from the database (the street office's limits), or the
    fallback values for any the database lacks (created by `ensure_categories` before writing)."""
    stored = {c.code: c for c in CaseCategory.objects.filter(code__in=list(SEASONS))}
    out: dict[str, Category] = {}
    missing = []
    for code, (_group, name, body, handle, urgent, _radius) in FALLBACK_CATEGORIES.items():
        row = stored.get(code)
        if row is None:
            missing.append(code)
            hours = {"register_hours": Decimal(1), "dispatch_hours": Decimal(1), "handle_hours": Decimal(str(handle)),
                     "verify_hours": Decimal(4), "close_hours": Decimal(2)}
            out[code] = Category(code, name, body, {s: hours[f] for s, f in STEP_LIMIT_FIELD.items()}, urgent)
        else:
            out[code] = Category(code, row.name, row.default_body,
                                 {s: getattr(row, f) for s, f in STEP_LIMIT_FIELD.items()}, row.urgent)
    return out, missing


def build_cases(*, space: DemoSpace, orgs: DemoOrgs, today: date) -> DemoCases:
    """Generate (in memory; reads only the categories and the working calendar) a year of cases."""
    categories, missing = _categories()
    gen = _CaseGen(space, orgs, today, categories, cases_selectors.work_days())
    out = gen.build()
    out.missing_categories = missing
    return out


def cases_summary(data: DemoCases) -> DemoCasesSummary:
    return DemoCasesSummary(counts=dict(data.counts))


# ------------------------------------------------------------------------------------------------
# Writing (inside demo._write's transaction). Raw SQL for the reasons data/sql.py gives: stale
# rows are "not in the stage" (a join to a temporary table), and thousands of cases are one
# INSERT … SELECT, each placed in the grid cell holding it on its day (grid.sql.cell_on_day_sql).
# ------------------------------------------------------------------------------------------------

CASE = Case._meta.db_table
TRANSITION = CaseTransition._meta.db_table
CATEGORY = CaseCategory._meta.db_table
ORG = PartyOrganisation._meta.db_table
STREET = Street._meta.db_table
COMMUNITY = Community._meta.db_table
CELL = GridCell._meta.db_table
BUILDING = Building._meta.db_table
VISIT = Visit._meta.db_table
CONTACT = StationContact._meta.db_table

CASE_TABLES = (CASE, TRANSITION)


def hold_statistics() -> None:
    """The case tables' share of data.sql.hold_statistics: autovacuum keeps off them until the
    build's transaction ends (it cannot see its rows), and they are analysed as they are now."""
    with connection.cursor() as cursor:
        cursor.execute("LOCK TABLE " + ", ".join(f'"{t}"' for t in CASE_TABLES) + " IN SHARE UPDATE EXCLUSIVE MODE")
        for table in CASE_TABLES:
            cursor.execute(f'ANALYZE "{table}"')


_STAGE_SQL = {
    "demo_case_stage": (
        "client_id uuid PRIMARY KEY, category_code text, source text, description text, address text, "
        "building_code text, lon float8, lat float8, captured_lon float8, captured_lat float8, captured_crs text, "
        "accuracy_m float8, resident_name text, reporter_name text, reported_at timestamptz, state text, "
        "step_started_at timestamptz, deadline timestamptz, assignee_org_code text, assignee_name text, "
        "assignee_route text, escalation_level int, escalated_to_code text, next_escalation_at timestamptz, "
        "ever_overdue boolean, version int, merged_into_client_id uuid, closed_at timestamptz"
    ),
    "demo_case_transition_stage": (
        "case_client_id uuid, seq int, action text, from_state text, to_state text, at timestamptz, "
        "actor_name text, reason text, captured_lon float8, captured_lat float8, captured_crs text, "
        "accuracy_m float8, lon float8, lat float8, assignee_org_code text, assignee_name text, "
        "escalation_level int, deadline timestamptz, overdue boolean, version int, merged_into_client_id uuid, "
        "PRIMARY KEY (case_client_id, seq)"
    ),
}


def _stage(table: str, columns: list[str], lines: list[str]) -> None:
    """COPY lines of plain generated values (no tab, newline or backslash in any text) into a
    temporary table."""
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} ({_STAGE_SQL[table]}) ON COMMIT DROP")
        cursor.execute(f"TRUNCATE {table}")
        with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for start in range(0, len(lines), 20_000):
                copy.write("\n".join(lines[start:start + 20_000]) + "\n")
        cursor.execute(f"ANALYZE {table}")


def cases_stage(data: DemoCases) -> None:
    _stage("demo_case_stage", CASE_COLUMNS, data.cases)
    _stage("demo_case_transition_stage", TRANSITION_COLUMNS, data.transitions)


def ensure_categories(data: DemoCases) -> int:
    """Create the categories the database lacks (through the service, audited). Returns how many."""
    for code in data.missing_categories:
        group, name, body, handle, urgent, radius = FALLBACK_CATEGORIES[code]
        if CaseCategory.objects.filter(name=name).exists():
            continue
        services.case_category_create(reach=None, code=code, group=group, name=name, default_body=body,
                                      handle_hours=handle, urgent=urgent, duplicate_radius_m=radius)
    return len(data.missing_categories)


def _delete(gone_sql: str, params: dict[str, Any]) -> tuple[int, list[int]]:
    """Delete the cases `gone_sql` selects (ids), the cases merged into them and their timelines;
    returns (count, their communities)."""
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS demo_case_gone")
        cursor.execute(f"CREATE TEMP TABLE demo_case_gone ON COMMIT DROP AS {gone_sql}", params)
        # A merge target must be open, so merges never chain: one level of "merged into" suffices.
        cursor.execute(f"""INSERT INTO demo_case_gone SELECT c.id FROM "{CASE}" c
                           WHERE c.merged_into_id IN (SELECT id FROM demo_case_gone)
                             AND c.id NOT IN (SELECT id FROM demo_case_gone)""")
        cursor.execute(f'DELETE FROM "{TRANSITION}" WHERE case_id IN (SELECT id FROM demo_case_gone)')
        cursor.execute(f'UPDATE "{TRANSITION}" SET merged_into_id = NULL '
                       "WHERE merged_into_id IN (SELECT id FROM demo_case_gone)")
        cursor.execute(f'DELETE FROM "{CASE}" WHERE id IN (SELECT id FROM demo_case_gone) RETURNING community_id')
        rows = cursor.fetchall()
    return len(rows), sorted({r[0] for r in rows})


def delete_stale_cases(*, managed_street_codes: list[str], reporter_id: int) -> tuple[int, list[int]]:
    """Delete the demo's cases in the managed streets that the new data set does not hold (their
    content changed, or another seed or scale). Runs with the events' clean-up, before the others."""
    return _delete(
        f"""SELECT c.id FROM "{CASE}" c
            WHERE c.reporter_id = %(reporter)s
              AND c.street_id IN (SELECT id FROM "{STREET}" WHERE code = ANY(%(codes)s))
              AND NOT EXISTS (SELECT 1 FROM demo_case_stage s WHERE s.client_id = c.client_id)""",
        {"codes": managed_street_codes, "reporter": reporter_id},
    )


def delete_dangling_cases() -> tuple[int, list[int]]:
    """After the space and organisation clean-ups (foreign keys are checked at commit): delete any
    case, whoever raised it, whose place or body was deleted, and clear what was only a reference
    (a building, a source event, an organisation named in a timeline row)."""
    counts = _delete(
        f"""SELECT c.id FROM "{CASE}" c
            WHERE NOT EXISTS (SELECT 1 FROM "{STREET}" x WHERE x.id = c.street_id)
               OR NOT EXISTS (SELECT 1 FROM "{COMMUNITY}" x WHERE x.id = c.community_id)
               OR (c.grid_cell_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "{CELL}" x WHERE x.id = c.grid_cell_id))
               OR (c.assignee_org_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "{ORG}" x WHERE x.id = c.assignee_org_id))
               OR (c.escalated_to_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "{ORG}" x WHERE x.id = c.escalated_to_id))""",
        {},
    )
    with connection.cursor() as cursor:
        for column, table in (("building_id", BUILDING), ("source_visit_id", VISIT), ("source_contact_id", CONTACT)):
            cursor.execute(f'UPDATE "{CASE}" c SET {column} = NULL WHERE c.{column} IS NOT NULL '
                           f'AND NOT EXISTS (SELECT 1 FROM "{table}" x WHERE x.id = c.{column})')
        cursor.execute(f'UPDATE "{TRANSITION}" t SET assignee_org_id = NULL WHERE t.assignee_org_id IS NOT NULL '
                       f'AND NOT EXISTS (SELECT 1 FROM "{ORG}" x WHERE x.id = t.assignee_org_id)')
    return counts


_INSERT_CASES = f"""
    WITH s AS (
        SELECT st.*, ST_SetSRID(ST_MakePoint(st.lon, st.lat), 4326) AS place,
               (st.reported_at AT TIME ZONE %(tz)s)::date AS day, cat.id AS category_id,
               b.id AS building_id, b.community_id AS building_community_id
        FROM demo_case_stage st
        JOIN "{CATEGORY}" cat ON cat.code = st.category_code
        LEFT JOIN "{BUILDING}" b ON b.code = st.building_code
        WHERE NOT EXISTS (SELECT 1 FROM "{CASE}" c WHERE c.client_id = st.client_id)
          AND (st.merged_into_client_id IS NULL) = %(plain)s
    ),
    q AS (
        SELECT s.*, cell.cell_id, COALESCE(cell.community_id, com.id, s.building_community_id) AS community_id
        FROM s
        LEFT JOIN LATERAL ({cell_on_day_sql(point="s.place", day="s.day")}) cell ON true
        LEFT JOIN LATERAL ({community_at_sql(point="s.place", guard="cell.cell_id IS NULL")}) com ON true
    )
    INSERT INTO "{CASE}" (
        client_id, source, category_id, description, address, captured_lon, captured_lat, captured_crs,
        accuracy_m, point, place, street_id, community_id, grid_cell_id, building_id, resident_name,
        resident_phone_cipher, resident_phone_hash, reporter_id, reporter_name, reported_at, state,
        step_started_at, deadline, assignee_org_id, assignee_name, assignee_route, escalation_level,
        escalated_to_id, next_escalation_at, ever_overdue, version, merged_into_id, closed_at,
        created_at, updated_at)
    SELECT q.client_id, q.source, q.category_id, q.description, q.address, q.captured_lon, q.captured_lat,
           q.captured_crs, q.accuracy_m,
           CASE WHEN q.captured_lon IS NOT NULL THEN q.place END, q.place, cm.street_id, q.community_id,
           q.cell_id, q.building_id, q.resident_name, '', NULL, %(reporter)s, q.reporter_name, q.reported_at,
           q.state, q.step_started_at, q.deadline, ao.id, q.assignee_name, q.assignee_route, q.escalation_level,
           eo.id, q.next_escalation_at, q.ever_overdue, q.version, target.id, q.closed_at, now(), now()
    FROM q
    JOIN "{COMMUNITY}" cm ON cm.id = q.community_id
    LEFT JOIN "{ORG}" ao ON ao.code = NULLIF(q.assignee_org_code, '')
    LEFT JOIN "{ORG}" eo ON eo.code = NULLIF(q.escalated_to_code, '')
    LEFT JOIN "{CASE}" target ON target.client_id = q.merged_into_client_id
    ORDER BY q.reported_at
    ON CONFLICT (client_id) DO NOTHING
    RETURNING id, community_id"""

_INSERT_TRANSITIONS = f"""
    INSERT INTO "{TRANSITION}" (
        case_id, action, from_state, to_state, at, actor_id, actor_name, reason, captured_lon, captured_lat,
        captured_crs, accuracy_m, position, distance_to_case_m, assignee_org_id, assignee_name, escalation_level,
        merged_into_id, deadline, overdue, version)
    SELECT c.id, t.action, t.from_state, t.to_state, t.at, NULL, t.actor_name, t.reason, t.captured_lon,
           t.captured_lat, COALESCE(t.captured_crs, ''), t.accuracy_m, p.position,
           CASE WHEN p.position IS NOT NULL THEN ST_Distance(p.position::geography, c.place::geography) END,
           o.id, t.assignee_name, t.escalation_level, target.id, t.deadline, t.overdue, t.version
    FROM demo_case_transition_stage t
    JOIN "{CASE}" c ON c.client_id = t.case_client_id
    CROSS JOIN LATERAL (SELECT CASE WHEN t.lon IS NOT NULL
                                    THEN ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326) END AS position) p
    LEFT JOIN "{ORG}" o ON o.code = NULLIF(t.assignee_org_code, '')
    LEFT JOIN "{CASE}" target ON target.client_id = t.merged_into_client_id
    WHERE c.id = ANY(%(ids)s)
    ORDER BY c.id, t.seq"""


def insert_cases(*, reporter_id: int, time_zone: str) -> tuple[int, list[int]]:
    """Insert the staged cases not stored yet, then their timelines: first the cases merged into
    nothing, then the duplicates (their targets are in by then). Returns (inserted, communities)."""
    ids: list[int] = []
    communities: set[int] = set()
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('jit', 'off', true)")
        for plain in (True, False):
            cursor.execute(_INSERT_CASES, {"tz": time_zone, "reporter": reporter_id, "plain": plain})
            for case_id, community_id in cursor.fetchall():
                ids.append(case_id)
                communities.add(community_id)
        if ids:
            cursor.execute(_INSERT_TRANSITIONS, {"ids": ids})
    return len(ids), sorted(communities)
