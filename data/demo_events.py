"""Field events of the demo data set: visits (走访) by grid workers and station contacts (驻点联系)
by stationed cadres over the 60 days before `today`, generated in memory from the space and the
organisation side, staged with COPY and written set-based (data/sql.py) inside demo._write.

What it makes, per street:
* every residential or mixed building of a grid that has a grid worker is visited 1–4 times in the
  window (more often the more households it has), mostly 入户走访 with a room number, some 楼栋巡查;
  enterprises in those grids get 两新组织走访, and each worker logs a few 其他 rounds with no subject;
* positions are captured a few metres from the subject (accuracy 5–30 m, mostly GCJ-02 as AMap
  tablets report, some raw GPS), and ~1.5 % far away (300–800 m) so "不在现场" has examples;
* working hours 08:30–18:00 local, weekdays; a visit that falls on a weekend mostly moves to the
  Monday after;
* stationed cadres check in at their community's 党群服务中心 on about their required days per
  month (weekdays), a few times from elsewhere (off site), and contact residents on site days;
  one cadre per street checks in on about half the required days.

Deliberate gaps: grids without a worker get no visits at all, and in ~10 % of the other grids
about a third of the residential buildings are never visited; one cadre per street below the
required days.

Stable in time, not only for a seed: a subject's visits fall on absolute days (a fixed period and
phase per building), so tomorrow's run drops the day that left the window and adds yesterday, and
leaves the rest alone. Ids are uuid5 of a fixed namespace and the event's identity (seed, subject,
scheduled day), so a re-run on the same day produces the same ids and inserts nothing; the stage
carries a payload hash of the content, and a stored demo event whose hash differs is replaced.
"""

from __future__ import annotations

import hashlib
import uuid
import zlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial

import numpy as np
import shapely
from django.contrib.auth import get_user_model

from data.demo_orgs import DemoOrgs, StationedRow, _One, _one_name
from data.demo_space import DemoSpace, _Rand
from grid import coords
from orgs import pii

# Fixed forever: changing it changes every demo event id.
EVENT_NAMESPACE = uuid.UUID("3b8f2d64-5a1c-4e7b-9f0d-6c2e8a41b5d7")
WINDOW_DAYS = 60
# The demo's people have no accounts, and reporter is a PROTECT foreign key to a user. One inactive
# account with no usable password owns every demo event: nobody can sign in as it, it belongs to no
# street (so no street clean-up ever has to delete it), and it marks which events the generator
# made, so a re-run replaces only those and leaves events synced by real accounts in the demo
# street alone (ops/up runs make_demo at every start). A worker's own account is deliberately not
# used even where one is linked: it would be shown as the author of records it never synced.
# reporter_name carries the worker's or cadre's name, which is what the map shows.
REPORTER_USERNAME = "demo-events"
REPORTER_DISPLAY = "演示数据"

WORK_START_MIN = 8 * 60 + 30
WORK_END_MIN = 18 * 60
WEEKEND_KEEP = 0.10  # share of weekend-scheduled visits that stay on the weekend
# Days between visits of one subject -> 1, 2, 3 or 4 visits in 60 days. 57, not 60: with a
# weekend shift of at most two days, a 60-day window always holds at least one visit.
PERIODS = np.array([57, 30, 20, 15], dtype=np.int64)
NEGLECTED_GRID_SHARE = 0.10
NEGLECTED_BUILDING_SHARE = 0.35
INSPECTION_SHARE = 0.15  # 楼栋巡查 instead of 入户走访
SECOND_VISIT_SHARE = 0.1  # small buildings visited twice in the window
ENTERPRISE_VISITED_SHARE = 0.5
OTHER_PERIOD = 30
FAR_SHARE = 0.015
GCJ_SHARE = 0.85
CHECKIN_OFF_SITE_SHARE = 0.35  # cadre-months with one extra check-in from outside the community
_M_PER_DEG = 111_320.0

HOUSEHOLD_NOTES = [
    "入户了解家庭人员变动情况，已更新台账", "走访独居老人，身体状况良好", "宣传反诈知识，发放宣传资料",
    "了解居民就业情况，登记求职意向", "宣传垃圾分类，居民表示支持", "收集居民对小区停车管理的意见",
    "核实出租屋租住人员信息", "居民反映楼道照明损坏，已上报物业", "走访困难家庭，了解救助需求",
    "宣传医保缴费政策", "居民反映下水道堵塞，已联系物业处理", "入户走访，无异常情况",
]
BUILDING_NOTES = [
    "楼栋巡查：楼道堆放杂物，已提醒清理", "楼栋巡查：消防通道畅通", "楼栋巡查：电动车楼道充电，已劝离",
    "楼栋巡查：外墙瓷砖松动，已上报", "楼栋巡查：无异常",
]
ENTERPRISE_NOTES = [
    "走访企业，了解经营和用工情况", "宣传安全生产，检查消防设施", "了解企业党员情况，动员组织关系转入",
    "企业反映门前占道经营问题，已转城管", "走访商户，宣传门前三包",
]
OTHER_NOTES = [
    "巡查背街小巷，发现共享单车乱停放，已通知运营方", "巡查发现井盖破损，已上报", "巡查路段环境卫生",
    "参加社区议事协商会", "协助开展防汛安全排查",
]
CONTACT_NOTES = [
    "了解居民诉求：小区加装电梯", "居民反映噪音扰民问题，已协调", "联系困难群众，送去慰问品",
    "听取居民对社区服务的意见建议", "居民咨询养老服务政策，已解答", "居民反映路灯不亮，已转相关部门",
]


@dataclass
class DemoEvents:
    """Column-wise stage rows (see data.sql _STAGES), plus what the summary and tests need."""

    visits: list[tuple] = field(default_factory=list)
    contacts: list[tuple] = field(default_factory=list)
    # Where the deliberate gaps are, by code.
    neglected_grids: list[str] = field(default_factory=list)
    unvisited_buildings: list[str] = field(default_factory=list)
    cadres_below: list[tuple[str, str]] = field(default_factory=list)  # (community code, name)
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoEventsSummary:
    counts: dict[str, int]
    gaps: dict[str, int]
    cadres_below: list[tuple[str, str]]  # (community code, name): for walkthroughs and the tests


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------


def _weekday(ordinal: np.ndarray) -> np.ndarray:
    return (ordinal - 1) % 7  # date.fromordinal(1) is a Monday


def _schedule(rand: _Rand, stream: str, keys: np.ndarray, periods: np.ndarray, start: int, end: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Visits of subjects on absolute days: subject i every periods[i] days from its own phase.
    Returns (subject index, scheduled day, actual day) of the visits in [start, end], ordinals."""
    if not len(keys):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    phase = (rand.u(f"{stream}:phase", keys) * periods).astype(np.int64)
    first = start + (phase - start) % periods
    n = WINDOW_DAYS // int(periods.min()) + 1
    idx = np.repeat(np.arange(len(keys)), n)
    scheduled = first[idx] + np.tile(np.arange(n), len(keys)) * periods[idx]
    keep = scheduled <= end
    idx, scheduled = idx[keep], scheduled[keep]
    wd = _weekday(scheduled)
    move = (wd >= 5) & (rand.u(f"{stream}:weekend", keys[idx], scheduled) >= WEEKEND_KEEP)
    actual = np.where(move, scheduled + 7 - wd, scheduled)
    keep = actual <= end
    return idx[keep], scheduled[keep], actual[keep]


def _offset(lon: np.ndarray, lat: np.ndarray, metres: np.ndarray, angle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move points by `metres` towards `angle` (radians); local flat-earth, fine at these distances."""
    dlat = metres * np.sin(angle) / _M_PER_DEG
    dlon = metres * np.cos(angle) / (_M_PER_DEG * np.cos(np.radians(lat)))
    return lon + dlon, lat + dlat


def _capture(rand: _Rand, stream: str, keys: np.ndarray, days: np.ndarray, lon: np.ndarray, lat: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What a tablet reports for a true WGS-84 position: the value in its CRS (7 decimals, as the
    SDKs give), the CRS and an accuracy; plus the WGS-84 point converted back from that value, as
    the sync service would store it. Returns (wgs lon, wgs lat, captured lon, captured lat, crs,
    accuracy)."""
    gcj = rand.u(f"{stream}:crs", keys, days) < GCJ_SHARE
    g_lon, g_lat = coords.wgs84_to_gcj02(lon, lat)
    c_lon = np.where(gcj, g_lon, lon).round(7)
    c_lat = np.where(gcj, g_lat, lat).round(7)
    w_lon, w_lat = coords.gcj02_to_wgs84(c_lon, c_lat)
    w_lon, w_lat = np.where(gcj, w_lon, c_lon), np.where(gcj, w_lat, c_lat)
    accuracy = np.round(5 + 25 * rand.u(f"{stream}:acc", keys, days) ** 2, 1)
    crs = np.where(gcj, "gcj02", "wgs84")
    return w_lon, w_lat, c_lon, c_lat, crs, accuracy


def _pick(u: np.ndarray, seq: list[str]) -> list[str]:
    return [seq[i] for i in np.minimum((u * len(seq)).astype(np.int64), len(seq) - 1).tolist()]


_NS = EVENT_NAMESPACE.bytes


def event_id(identity: str) -> str:
    """str(uuid.uuid5(EVENT_NAMESPACE, identity)) without building a UUID object: ~5x faster,
    which matters for the district's 100,000 events."""
    h = hashlib.sha1(_NS + identity.encode(), usedforsecurity=False).digest()
    x = (bytes([h[0], h[1], h[2], h[3], h[4], h[5], (h[6] & 0x0F) | 0x50, h[7], (h[8] & 0x3F) | 0x80])
         + h[9:16]).hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


class _Days:
    """ISO text of day ordinals, cached: a window has 60 of them and the stage 100,000 rows."""

    def __init__(self) -> None:
        self._text: dict[int, str] = {}

    def __call__(self, ordinal: int) -> str:
        text = self._text.get(ordinal)
        if text is None:
            text = self._text[ordinal] = date.fromordinal(ordinal).isoformat()
        return text


# ------------------------------------------------------------------------------------------------
# Generation
# ------------------------------------------------------------------------------------------------


class _Gen:
    def __init__(self, space: DemoSpace, orgs: DemoOrgs, today: date) -> None:
        self.space, self.orgs, self.seed = space, orgs, space.seed
        self.rand = _Rand(space.seed)
        self.end = (today - timedelta(days=1)).toordinal()  # nothing in the future of any run that day
        self.start = self.end - WINDOW_DAYS + 1
        b = space.buildings
        self.bcode = np.array([int(c) for c in b.code], dtype=np.int64)
        self.index = {c: i for i, c in enumerate(b.code)}
        pts = shapely.get_coordinates(shapely.point_on_surface(b.geom))
        self.blon, self.blat = pts[:, 0], pts[:, 1]
        self.worker_of_grid: dict[str, tuple[str, str]] = {}  # grid -> (phone hash, name)
        for w in orgs.workers:
            if w.grids:
                h = pii.keyed_hash(w.phone)
                for g in w.grids:
                    self.worker_of_grid.setdefault(g, (h, w.name))
        self.day = _Days()
        self.out = DemoEvents()

    # -- visits ----------------------------------------------------------------------------------

    def _neglected(self) -> set[str]:
        """Per street the ~10 % of worked grids (at least one) with the lowest draw."""
        by_street: dict[str, list[str]] = defaultdict(list)
        for g in sorted(self.worker_of_grid):
            by_street[g[:9]].append(g)
        out: set[str] = set()
        for grids in by_street.values():
            n = max(1, round(NEGLECTED_GRID_SHARE * len(grids)))
            out.update(sorted(grids, key=lambda g: self.rand.one("ev_neglect", int(g)))[:n])
        return out

    def _emit_visits(self, stream: str, kinds: list[str], sub: np.ndarray, scheduled: np.ndarray,
                     actual: np.ndarray, keys: np.ndarray, lon: np.ndarray, lat: np.ndarray, far_ok: bool,
                     building: Sequence[str | None], enterprise: Sequence[str | None], worker: list[tuple[str, str]],
                     household: list[str], notes: list[str], identity: list[str]) -> None:
        rand = self.rand
        k = keys[sub]
        minutes = WORK_START_MIN + (rand.u(f"{stream}:time", k, scheduled) * (WORK_END_MIN - WORK_START_MIN)).astype(
            np.int64)
        near = 2 + 10 * rand.u(f"{stream}:jit", k, scheduled)
        far = (rand.u(f"{stream}:far", k, scheduled) < FAR_SHARE) if far_ok else np.zeros(len(sub), dtype=bool)
        metres = np.where(far, 300 + 500 * rand.u(f"{stream}:farm", k, scheduled), near)
        angle = 2 * np.pi * rand.u(f"{stream}:ang", k, scheduled)
        t_lon, t_lat = _offset(lon[sub], lat[sub], metres, angle)
        w_lon, w_lat, c_lon, c_lat, crs, acc = _capture(rand, stream, k, scheduled, t_lon, t_lat)
        seed, day, append = self.seed, self.day, self.out.visits.append
        for j, (i, sc, ac, mi, wx, wy, cx, cy, cr, ac_m) in enumerate(zip(
                sub.tolist(), scheduled.tolist(), actual.tolist(), minutes.tolist(), w_lon.tolist(), w_lat.tolist(),
                c_lon.tolist(), c_lat.tolist(), crs.tolist(), acc.tolist(), strict=True)):
            hash_hex, name = worker[i]
            append((event_id(f"{seed}|{identity[i]}|{sc}"), day(ac), mi, kinds[j], building[i], enterprise[i],
                    hash_hex, household[j], wx, wy, cx, cy, cr, ac_m, notes[j], name))

    def visits(self) -> None:
        b, rand = self.space.buildings, self.rand
        neglected = self._neglected()
        self.out.neglected_grids = sorted(neglected)
        hh = b.households.astype(np.int64)
        residential = np.array([k in ("residential", "mixed") for k in b.kind]) & (hh > 0)
        worked = np.array([g in self.worker_of_grid for g in b.grid_code])
        skipped = np.array([g in neglected for g in b.grid_code]) & (
            rand.u("ev_skip", self.bcode) < NEGLECTED_BUILDING_SHARE)
        chosen = np.flatnonzero(residential & worked & ~skipped)

        # Households decide how often: a tower every 15–20 days, a house or walk-up once or twice.
        keys = self.bcode[chosen]
        want = np.clip(1 + hh[chosen] // 60 + (rand.u("ev_often", keys) < SECOND_VISIT_SHARE), 1, 4)
        sub, sched, actual = _schedule(rand, "ev_b", keys, PERIODS[want - 1], self.start, self.end)
        k = keys[sub]
        bi = chosen[sub]
        inspect = rand.u("ev_b:insp", k, sched) < INSPECTION_SHARE
        floors = np.maximum(b.floors[bi].astype(np.int64), 1)
        floor = 1 + (rand.u("ev_b:floor", k, sched) * floors).astype(np.int64)
        rooms = np.maximum(1, -(-hh[bi] // floors))
        room = 1 + (rand.u("ev_b:room", k, sched) * rooms).astype(np.int64)
        household = ["" if insp or h <= 2 else f"{f}{r:02d}室"
                     for insp, h, f, r in zip(inspect.tolist(), hh[bi].tolist(), floor.tolist(), room.tolist(),
                                              strict=True)]
        note_u = rand.u("ev_b:note", k, sched)
        notes = [n1 if insp else n2 for insp, n1, n2 in zip(
            inspect.tolist(), _pick(note_u, BUILDING_NOTES), _pick(note_u, HOUSEHOLD_NOTES), strict=True)]
        kinds = ["building" if insp else "household" for insp in inspect.tolist()]
        codes = [b.code[i] for i in chosen.tolist()]
        self._emit_visits(
            "ev_b", kinds, sub, sched, actual, keys, self.blon[chosen], self.blat[chosen], True,
            building=codes, enterprise=[None] * len(chosen),
            worker=[self.worker_of_grid[b.grid_code[i]] for i in chosen.tolist()],
            household=household, notes=notes, identity=[f"visit|{c}" for c in codes])
        self.out.counts["visits_household"] = sum(1 for x in kinds if x == "household")
        self.out.counts["visits_building"] = sum(1 for x in kinds if x == "building")

        # Enterprises in worked grids; the premises are their building.
        ents = [e for e in self.orgs.enterprises if b.grid_code[self.index[e.building]] in self.worker_of_grid]
        ekeys = np.array([zlib.crc32(e.credit_code.encode()) for e in ents], dtype=np.int64)
        visited = rand.u("ev_e:visited", ekeys) < ENTERPRISE_VISITED_SHARE if len(ents) else np.zeros(0, bool)
        ents = [e for e, v in zip(ents, visited.tolist(), strict=True) if v]
        ekeys = ekeys[visited]
        bidx = np.array([self.index[e.building] for e in ents], dtype=np.int64)
        eper = np.where(rand.u("ev_e:often", ekeys) < 0.5, 30, 57) if len(ents) else np.zeros(0, np.int64)
        sub, sched, actual = _schedule(rand, "ev_e", ekeys, eper.astype(np.int64), self.start, self.end)
        self._emit_visits(
            "ev_e", ["enterprise"] * len(sub), sub, sched, actual, ekeys, self.blon[bidx], self.blat[bidx], True,
            building=[e.building for e in ents], enterprise=[e.credit_code for e in ents],
            worker=[self.worker_of_grid[b.grid_code[i]] for i in bidx.tolist()],
            household=[""] * len(sub), notes=_pick(rand.u("ev_e:note", ekeys[sub], sched), ENTERPRISE_NOTES),
            identity=[f"enterprise|{e.credit_code}" for e in ents])
        self.out.counts["visits_enterprise"] = len(sub)

        # A few rounds with no subject, near some building of the worker's grid.
        grids = sorted(self.worker_of_grid)
        grid_buildings: dict[str, list[int]] = defaultdict(list)
        for i, g in enumerate(b.grid_code):
            grid_buildings[g].append(i)
        gkeys = np.array([int(g) for g in grids], dtype=np.int64)
        sub, sched, actual = _schedule(rand, "ev_o", gkeys, np.full(len(grids), OTHER_PERIOD, np.int64),
                                       self.start, self.end)
        pick_u = rand.u("ev_o:where", gkeys[sub], sched)
        at = np.array([grid_buildings[grids[s]][int(u * len(grid_buildings[grids[s]]))]
                       for s, u in zip(sub.tolist(), pick_u.tolist(), strict=True)], dtype=np.int64)
        lon, lat = _offset(self.blon[at], self.blat[at], 15 + 25 * rand.u("ev_o:off", gkeys[sub], sched),
                           2 * np.pi * rand.u("ev_o:dir", gkeys[sub], sched))
        # One "subject" per visit here (positions differ per visit), so index by visit.
        n = len(sub)
        self._emit_visits(
            "ev_o", ["other"] * n, np.arange(n), sched, actual, gkeys[sub], lon, lat, False,
            building=[None] * n, enterprise=[None] * n, worker=[self.worker_of_grid[grids[s]] for s in sub.tolist()],
            household=[""] * n, notes=_pick(rand.u("ev_o:note", gkeys[sub], sched), OTHER_NOTES),
            identity=[f"other|{grids[s]}" for s in sub.tolist()])
        self.out.counts["visits_other"] = n
        # An enterprise visit to a skipped mixed building counts as a visit to it, too.
        visited_codes = {row[4] for row in self.out.visits}
        self.out.unvisited_buildings = [b.code[i] for i in np.flatnonzero(residential)
                                        if b.code[i] not in visited_codes]

    # -- station contacts ------------------------------------------------------------------------

    def contacts(self) -> None:
        one, b = _One(self.rand), self.space.buildings
        centre = {c.community_code: (c.geom.x, c.geom.y) for c in self.space.centres if c.community_code}
        comm_res: dict[str, list[int]] = defaultdict(list)
        for i, (cc, kind, h) in enumerate(zip(b.community_code, b.kind, b.households.tolist(), strict=True)):
            if kind in ("residential", "mixed") and h > 0:
                comm_res[cc].append(i)
        seq: Counter[str] = Counter()
        cadres: list[tuple[int, StationedRow]] = []
        for s in self.orgs.stationed:
            cadres.append((int(s.community_code) * 10 + seq[s.community_code], s))
            seq[s.community_code] += 1
        below: set[int] = set()
        by_street: dict[str, list[int]] = defaultdict(list)
        for key, s in cadres:
            by_street[s.community_code[:9]].append(key)
        for keys in by_street.values():
            below.add(min(keys, key=lambda k: one("ck_below", k)))
        self.out.cadres_below = [(s.community_code, s.name) for k, s in cadres if k in below]

        rows: list[dict] = []
        for key, s in cadres:
            first = max(self.start, s.period_start.toordinal())
            for month_start in _months(first, self.end):
                days = _month_weekdays(month_start)
                ranked = sorted(days, key=partial(one, "ck_day", key))
                m = month_start.year * 12 + month_start.month
                on = s.required_days + int(one("ck_extra", key, m) < 0.5)
                contacts = s.required_contacts + int(3 * one("ck_more", key, m))
                if key in below:
                    on, contacts = max(2, s.required_days // 2), s.required_contacts // 2
                off = int(one("ck_off", key, m) < CHECKIN_OFF_SITE_SHARE)
                for r, d in enumerate(ranked[:on + off]):
                    if first <= d <= self.end:
                        # The month's contacts spread over its on-site days; none from off site.
                        n = 0 if r >= on else contacts // on + int(r < contacts % on)
                        rows.append({"key": key, "cadre": s, "day": d, "off": r >= on, "contacts": n})
        self._emit_contacts(rows, one, centre, comm_res)

    def _emit_contacts(self, rows: list[dict], one: _One, centre: dict, comm_res: dict[str, list[int]]) -> None:
        events: list[tuple] = []  # (identity, day, minutes, kind, cadre, building idx, true lon, lat, name, note)
        for r in sorted(rows, key=lambda r: (r["key"], r["day"])):
            key, s, d = r["key"], r["cadre"], r["day"]
            cx, cy = centre[s.community_code]
            start = WORK_START_MIN + int(60 * one("ck_time", key, d))
            if r["off"]:
                lon, lat = _offset(np.array([cx]), np.array([cy]), np.array([1500 + 1500 * one("ck_far", key, d)]),
                                   np.array([2 * np.pi * one("ck_dir", key, d)]))
            else:
                lon, lat = _offset(np.array([cx]), np.array([cy]), np.array([3 + 12 * one("ck_jit", key, d)]),
                                   np.array([2 * np.pi * one("ck_dir", key, d)]))
            events.append((f"checkin|{s.community_code}|{s.name}|{d}", d, start, "check_in", s, None,
                           float(lon[0]), float(lat[0]), "", "驻点签到"))
            if r["off"] or not comm_res[s.community_code]:
                continue
            for n in range(r["contacts"]):
                res = comm_res[s.community_code]
                bi = res[int(one("ck_where", key, d, n) * len(res))]
                lon, lat = _offset(self.blon[bi:bi + 1], self.blat[bi:bi + 1], np.array([2 + 10 * one("ck_j", key, d, n)]),
                                   np.array([2 * np.pi * one("ck_a", key, d, n)]))
                minutes = min(WORK_END_MIN - 1, start + 30 + int(390 * one("ck_t", key, d, n)))
                name = _one_name(one, "ck_name", one("ck_g", key, d, n) < 0.5, key, d, n)
                note = CONTACT_NOTES[int(one("ck_note", key, d, n) * len(CONTACT_NOTES))]
                events.append((f"contact|{s.community_code}|{s.name}|{d}|{n}", d, minutes, "contact", s, bi,
                               float(lon[0]), float(lat[0]), name, note))
        if not events:
            return
        keys = np.array([zlib.crc32(e[0].encode()) for e in events], dtype=np.int64)
        days = np.array([e[1] for e in events], dtype=np.int64)
        w_lon, w_lat, c_lon, c_lat, crs, acc = _capture(
            self.rand, "ck", keys, days, np.array([e[6] for e in events]), np.array([e[7] for e in events]))
        b = self.space.buildings
        for j, (ident, d, minutes, kind, s, bi, _lon, _lat, name, note) in enumerate(events):
            self.out.contacts.append((
                event_id(f"{self.seed}|{ident}"), self.day(d), minutes, kind, s.community_code, s.name,
                None if bi is None else b.code[bi], float(w_lon[j]), float(w_lat[j]), float(c_lon[j]),
                float(c_lat[j]), str(crs[j]), float(acc[j]), name, note, s.name))
        kinds = Counter(e[3] for e in events)
        self.out.counts["check_ins"] = kinds["check_in"]
        self.out.counts["contacts"] = kinds["contact"]


def _months(first: int, last: int) -> list[date]:
    out: list[date] = []
    if first > last:
        return out
    d = date.fromordinal(first).replace(day=1)
    while d.toordinal() <= last:
        out.append(d)
        d = (d + timedelta(days=32)).replace(day=1)
    return out


def _month_weekdays(month_start: date) -> list[int]:
    """The month's Monday–Friday days (ordinals), the whole month: a cadre's days in a month are
    chosen among all of them, so they do not move as the window slides."""
    nxt = (month_start + timedelta(days=32)).replace(day=1)
    return [d for d in range(month_start.toordinal(), nxt.toordinal()) if (d - 1) % 7 < 5]


def build_events(*, space: DemoSpace, orgs: DemoOrgs, today: date) -> DemoEvents:
    """Generate (in memory, no database) the field events of the 60 days before `today`."""
    gen = _Gen(space, orgs, today)
    gen.visits()
    gen.contacts()
    out = gen.out
    out.counts["visits"] = len(out.visits)
    out.counts["station_contacts"] = len(out.contacts)
    return out


# ------------------------------------------------------------------------------------------------
# Writing (inside demo._write's transaction)
# ------------------------------------------------------------------------------------------------

# The stage computes the payload hash itself (a generated column, see data.sql), from all of these.
VISIT_COLUMNS = ["id", "day", "minute", "kind", "building_code", "enterprise_code", "worker_hash", "household",
                 "lon", "lat", "captured_lon", "captured_lat", "captured_crs", "accuracy_m", "summary",
                 "reporter_name"]
CONTACT_COLUMNS = ["id", "day", "minute", "kind", "community_code", "cadre_name", "building_code", "lon", "lat",
                   "captured_lon", "captured_lat", "captured_crs", "accuracy_m", "contact_name", "summary",
                   "reporter_name"]


def events_stage(data: DemoEvents) -> None:
    from data import sql as demo_sql

    demo_sql.stage_plain("demo_visit_stage", VISIT_COLUMNS, data.visits)
    demo_sql.stage_plain("demo_contact_stage", CONTACT_COLUMNS, data.contacts)


def events_reporter() -> int:
    """The id of the account that owns the demo events (see REPORTER_USERNAME), made on first use."""
    user, created = get_user_model().objects.get_or_create(
        username=REPORTER_USERNAME, defaults={"first_name": REPORTER_DISPLAY, "is_active": False})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user.pk


def events_summary(data: DemoEvents) -> DemoEventsSummary:
    return DemoEventsSummary(
        counts=dict(data.counts),
        gaps={"neglected_grids": len(data.neglected_grids), "unvisited_buildings": len(data.unvisited_buildings),
              "cadres_below_required_days": len(data.cadres_below)},
        cadres_below=list(data.cadres_below),
    )
