"""The organisation side of the demo data set, generated in memory from the space (data/demo_space).

What it makes for every street of the space: the party organisation tree (街道党工委 as 大工委,
社区党组织 with some 大党委, 网格党支部, 楼栋党小组, 两新组织党组织, 驻区单位党组织, 联合党支部),
the 两新组织 in commercial, mixed and industrial buildings, party members living in residential
buildings and working in the enterprises and resident units, grid workers, stationed cadres,
party-building instructors, committee seats, weak-organisation rectifications and star ratings.

Deliberate gaps and rule violations, so the map and `check_rules` have something to show (each
one a small minority, at fixed places chosen by the seed):
* ~10 % of grids without a grid branch; buildings with 3+ members but no building group;
* enterprises with 3+ full members and no own organisation; small ones covered by nothing;
* members with no organisation (half of the lost-contact ones, newly moved-in ones);
* per street one 网格党支部 with far too many members (小马拉大车), terms that end within 30 and
  90 days and one overdue, one community short of full-time community workers, weak
  organisations under rectification; at district scale one street's 大工委 has too few
  resident-unit heads.

Randomness is the space's counter-based hash keyed by stable codes (street, building, grid,
enterprise), never a sequence: a street's people and organisations depend only on the seed and
that street, so 海滨街道 comes out identical at both scales. Ages, join dates and founding dates
are fixed; dates that must sit at a distance from today (terms, dues, rectifications) follow the
first day of the current month, and only the deliberately expiring terms follow `today` itself, so
a re-run on the same day changes nothing.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

import numpy as np

from data import demo_names as names
from data.demo_space import DemoSpace, _Rand
from orgs import sql as org_sql
from orgs.models import Enterprise, PartyMember, PartyOrganisation
from orgs.services import star_total, stars_for_total

Kind = PartyOrganisation.Kind
Level = PartyOrganisation.Level
Category = PartyMember.Category

# Ages and join dates are counted back from this fixed day, so they never drift between runs.
REF_DATE = date(2025, 7, 1)
# Share of residents who are party members living in the street (workplace members come on top):
# ~2,200 members in all for 海滨街道 and ~110,000 for the district.
RESIDENT_MEMBER_RATE = 0.037
# The 小马拉大车 grid: an old work-unit compound with many retired members.
CROWDED_GRID_FACTOR = 2.6
GRID_GAP_SHARE = 0.10
OWN_GROUP_SHARE = 0.88  # buildings with 3+ members that have their own group
SMALL_CHUNK_GROUP_SHARE = 0.90  # runs of small buildings that share a group
WORKERLESS_GRID_SHARE = 0.08
DISTRICT_VIOLATION_STREET = "440803001"  # its 大工委 has too few resident-unit heads

_MOBILE_PREFIXES = ["138", "139", "137", "135", "136", "150", "151", "158", "159", "188", "187", "182",
                    "183", "186", "185", "133", "189", "180", "177", "176"]
_WORKER_PREFIX = "199"  # grid workers: a prefix no member number uses, so phones never collide


# ------------------------------------------------------------------------------------------------
# What the generator returns
# ------------------------------------------------------------------------------------------------


@dataclass
class OrgRow:
    code: str
    kind: str
    level: str
    name: str
    street_code: str
    parent_code: str | None
    community_code: str | None = None
    grid_code: str | None = None
    premises: str | None = None  # the enterprise's credit code
    unit_name: str = ""
    founded_on: date | None = None
    term_started_on: date | None = None
    term_years: int = 3
    is_enlarged: bool = False
    buildings: list[str] = field(default_factory=list)
    secretary: str | None = None  # the member's clear ID number


@dataclass(slots=True)
class MemberRow:
    id_number: str
    phone: str
    name: str
    gender: str
    birth_date: date
    joined_on: date
    status: str
    category: str
    building: str | None
    org: str | None
    work_unit: str = ""
    enterprise: str | None = None  # credit code
    reported_community: str | None = None
    reported_on: date | None = None
    dues_paid_through: date | None = None
    street_code: str = ""


@dataclass
class EnterpriseRow:
    credit_code: str
    name: str
    kind: str
    building: str
    community_code: str
    street_code: str
    employee_count: int
    role: str  # own_org | needs_org | joint | instructor | uncovered (for tests and the summary)
    members: int = 0  # party members working there
    joint_code: str | None = None
    instructor: str | None = None  # the cadre's name (unique within the street)


@dataclass
class WorkerRow:
    phone: str
    name: str
    community_code: str
    full_time: bool
    grids: list[str]


@dataclass
class StationedRow:
    community_code: str
    name: str
    period_start: date
    required_days: int
    required_contacts: int


@dataclass
class SeatRow:
    org_code: str
    person_name: str
    unit_name: str
    is_resident_unit_head: bool
    liaison_communities: list[str]
    liaison_units: str = ""


@dataclass
class RectificationRow:
    org_code: str
    flagged_on: date
    reasons: str
    measures: str
    converted_on: date | None


@dataclass
class RatingRow:
    org_code: str
    year: int
    stars: int
    score: Decimal
    satisfaction_score: Decimal
    total_score: Decimal


@dataclass
class DemoOrgs:
    cadres: list[tuple[str, str, str]]  # street code, name, unit name
    enterprises: list[EnterpriseRow]
    orgs: list[OrgRow]
    members: list[MemberRow]
    workers: list[WorkerRow]
    stationed: list[StationedRow]
    seats: list[SeatRow]
    rectifications: list[RectificationRow]
    ratings: list[RatingRow]
    # Where the deliberate gaps and violations are, by code (for the summary and the tests).
    deliberate: dict[str, list[str]]


# ------------------------------------------------------------------------------------------------
# Small deterministic helpers
# ------------------------------------------------------------------------------------------------


def _k(code: str) -> int:
    """A stable integer key for a code that may hold letters (credit codes)."""
    return zlib.crc32(code.encode())


_M64 = (1 << 64) - 1


def _mix64(z: int) -> int:
    # demo_space's splitmix64 finaliser on Python ints: the same numbers, ~40x faster for scalars.
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


class _One:
    """Scalar draws equal to `_Rand(seed).one(stream, *keys)`, without numpy's per-call overhead."""

    def __init__(self, rand: _Rand) -> None:
        self._seed = int(rand._seed)
        self._streams: dict[str, int] = {}

    def __call__(self, stream: str, *keys: int) -> float:
        h = self._streams.get(stream)
        if h is None:
            h = self._streams[stream] = _mix64(self._seed ^ zlib.crc32(stream.encode()))
        for key in keys:
            h = _mix64(h ^ (int(key) & _M64))
        return (h >> 11) * (1.0 / (1 << 53))


def _pick(u: float, seq: list) -> object:
    return seq[min(len(seq) - 1, int(u * len(seq)))]


def _days(d: date, n: float) -> date:
    return d + timedelta(days=int(n))


def _years_before(d: date, years: int) -> date:
    return d.replace(year=d.year - years, day=28) if (d.month, d.day) == (2, 29) else d.replace(year=d.year - years)


def _month_shift(d: date, months: int) -> date:
    m = d.year * 12 + d.month - 1 + months
    return date(m // 12, m % 12 + 1, 1)


_SURNAME_CUM = np.cumsum([w for _s, w in names.SURNAMES]) / sum(w for _s, w in names.SURNAMES)


def _person_names(rand: _Rand, stream: str, male: np.ndarray, *keys: object) -> list[str]:
    """Names for a vector of people: weighted surname, one or two given characters by gender."""
    s = np.searchsorted(_SURNAME_CUM, rand.u(f"{stream}:sur", *keys), side="right")
    two = rand.u(f"{stream}:two", *keys) < 0.72
    g1, g2 = rand.u(f"{stream}:g1", *keys), rand.u(f"{stream}:g2", *keys)
    out = []
    for i in range(len(male)):
        own = names.GIVEN_MALE if male[i] else names.GIVEN_FEMALE
        first = _pick(float(g1[i]), names.GIVEN_ANY + own if two[i] else own)
        given = f"{first}{_pick(float(g2[i]), own)}" if two[i] else first
        out.append(names.SURNAMES[min(int(s[i]), len(names.SURNAMES) - 1)][0] + str(given))
    return out


def _one_name(one: _One, stream: str, male: bool, *keys: int) -> str:
    """One name, drawn like `_person_names` draws a vector of them."""
    s = int(np.searchsorted(_SURNAME_CUM, one(f"{stream}:sur", *keys), side="right"))
    own = names.GIVEN_MALE if male else names.GIVEN_FEMALE
    if one(f"{stream}:two", *keys) < 0.72:
        given = f"{_pick(one(f'{stream}:g1', *keys), names.GIVEN_ANY + own)}{_pick(one(f'{stream}:g2', *keys), own)}"
    else:
        given = str(_pick(one(f"{stream}:g1", *keys), own))
    return names.SURNAMES[min(s, len(names.SURNAMES) - 1)][0] + given


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _id_check(first17: str) -> str:
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def credit_code(prefix2: str, body8: str) -> str:
    """A 统一社会信用代码 (GB 32100) with a valid organisation-code check (GB 11714) and check char."""
    c9 = 11 - sum(int(c) * w for c, w in zip(body8, (3, 7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
    first17 = f"{prefix2}440803{body8}{'X' if c9 == 10 else '0' if c9 == 11 else c9}"
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return first17 + _USCC_CHARS[(31 - total % 31) % 31]


class _Ids:
    """Synthetic 身份证号 of one street: 440803 + birth date + sequence + check character.

    The sequence's first two digits are street number × 4 + a per-(birth date, gender) counter, so
    numbers are unique across the district without looking at other streets; on a fifth person
    of the same day and gender the birth date moves by a day.
    """

    def __init__(self, street_code: str) -> None:
        self.street_no = int(street_code[-3:])
        self.used: Counter[tuple[int, bool]] = Counter()

    def make(self, birth: date, male: bool, u: float) -> tuple[str, date]:
        while self.used[(birth.toordinal(), male)] >= 4:
            birth += timedelta(days=1)
        k = self.used[(birth.toordinal(), male)]
        self.used[(birth.toordinal(), male)] += 1
        last = (1, 3, 5, 7, 9)[int(u * 5)] if male else (0, 2, 4, 6, 8)[int(u * 5)]
        first17 = f"440803{birth:%Y%m%d}{self.street_no * 4 + k:02d}{last}"
        return first17 + _id_check(first17), birth


def _level_for(members: int) -> str:
    if members >= 100:
        return Level.COMMITTEE
    if members >= 50:
        return Level.GENERAL_BRANCH
    return Level.BRANCH


# Keyed by level (OrgRow.level is a plain str; a Level member hashes and compares as its value).
_SUFFIX: dict[str, str] = {Level.COMMITTEE: "委员会", Level.GENERAL_BRANCH: "总支部委员会", Level.BRANCH: "支部委员会"}
_GRID_SUFFIX: dict[str, str] = {Level.COMMITTEE: "党委", Level.GENERAL_BRANCH: "党总支", Level.BRANCH: "党支部"}


def _unit_of(org: OrgRow, code: str | None) -> str:
    """The unit an organisation's kind promises it (a community org its community, a grid branch
    its grid, an enterprise org its premises): the generator sets them together."""
    if code is None:
        raise RuntimeError(f"演示数据生成错误：党组织 {org.code} 缺少所属单位")
    return code


# ------------------------------------------------------------------------------------------------
# One street
# ------------------------------------------------------------------------------------------------


class _Street:
    """Everything of one street; appends to the shared output lists."""

    def __init__(self, gen: _Gen, street_code: str, street_name: str) -> None:
        self.g = gen
        self.rand = gen.rand
        self.one = gen.one
        self.code = street_code
        self.key = int(street_code)
        self.name = street_name
        self.stem = street_name.removesuffix("街道")
        self.ids = _Ids(street_code)
        self.phone_seq = 0
        self.worker_seq = 0
        self.comms = [c for c in gen.space.communities if c.street_code == street_code]
        self.comm_name = {c.code: c.name for c in self.comms}
        self.grids = [g for g in gen.space.grids if g.community_code[:9] == street_code]
        self.orgs: dict[str, OrgRow] = {}
        self.members: list[MemberRow] = []
        self.deliberate: dict[str, list[str]] = defaultdict(list)

    # -- people ----------------------------------------------------------------------------------

    def _phone(self, u: float) -> str:
        self.phone_seq += 1
        return f"{_pick(u, _MOBILE_PREFIXES)}{self.ids.street_no:02d}{self.phone_seq:06d}"

    def _person(self, *, name: str, male: bool, age: float, u_birth: float, u_join: float, u_id: float,
                u_phone: float, probationary: bool, category: str, building: str | None, org: str | None,
                work_unit: str = "", enterprise: str | None = None) -> MemberRow:
        anchor = self.g.month_start
        birth = REF_DATE - timedelta(days=int(age * 365.25 + u_birth * 365))
        id_number, birth = self.ids.make(birth, male, u_id)
        if probationary:
            joined = anchor - timedelta(days=30 + int(u_join * 300))
        else:
            join_age = 18 + (min(age, 60) - 18) * 0.75 * u_join
            joined = min(birth + timedelta(days=int(join_age * 365.25)), REF_DATE - timedelta(days=400))
            # Never before the 18th birthday (orgs.plausibility): int() above can fall a day short.
            joined = max(joined, _years_before(birth, -18))
        member = MemberRow(
            id_number=id_number, phone=self._phone(u_phone), name=name,
            gender=PartyMember.Gender.MALE if male else PartyMember.Gender.FEMALE,
            birth_date=birth, joined_on=joined,
            status=PartyMember.Status.PROBATIONARY if probationary else PartyMember.Status.FULL,
            category=category, building=building, org=org, work_unit=work_unit, enterprise=enterprise,
            street_code=self.code,
        )
        self.members.append(member)
        return member

    def residents(self) -> list[tuple[MemberRow, str, str, bool]]:
        """Members living in the street's residential and mixed buildings (vectorised draws).
        Returns (member, building code, grid code, left unattached); organisations come later."""
        space, rand = self.g.space, self.rand
        b = space.buildings
        comm_ratio = {c.code: c.residents / max(c.households, 1) for c in self.comms}
        idx = [i for i in self.g.buildings_of[self.code]
               if b.kind[i] in ("residential", "mixed") and b.households[i] > 0]
        if not idx:
            return []
        codes = np.array([int(b.code[i]) for i in idx], dtype=np.int64)
        hh = b.households[idx].astype(np.float64)
        ratio = np.array([comm_ratio[b.community_code[i]] for i in idx])
        crowded = np.array([b.grid_code[i] == self.crowded_grid for i in idx])
        expected = hh * ratio * RESIDENT_MEMBER_RATE * (0.5 + rand.u("member_density", codes))
        expected[crowded] *= CROWDED_GRID_FACTOR
        n = np.floor(expected + rand.u("member_round", codes)).astype(np.int64)
        bk = np.repeat(codes, n)
        k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        where = np.repeat(np.arange(len(idx)), n)
        u_cat = rand.u("m_cat", bk, k)
        u_age = rand.u("m_age", bk, k)
        male = rand.u("m_gender", bk, k) < np.where(u_cat < 0.35, 0.60, 0.66)
        person_names = _person_names(rand, "m_name", male, bk, k)
        draws = {s: rand.u(f"m_{s}", bk, k) for s in ("birth", "join", "id", "phone", "prob", "work",
                                                      "report", "rdate", "dues", "new", "lost", "wu")}
        out = []
        for j in range(len(bk)):
            uc, ua = float(u_cat[j]), float(u_age[j])
            if uc < 0.35:
                category, age = Category.RETIRED, 60 + 28 * ua**1.3
            elif uc < 0.38:
                category, age = Category.MOBILE, 22 + 28 * ua
            elif uc < 0.39:
                category, age = Category.LOST_CONTACT, 25 + 35 * ua
            elif uc < 0.42:
                category, age = Category.OTHER, 19 + 30 * ua
            else:
                category, age = Category.EMPLOYED, 23 + 36 * ua
            probationary = float(draws["prob"][j]) < 0.13 and age < 45
            i = idx[where[j]]
            m = self._person(
                name=person_names[j], male=bool(male[j]), age=age, u_birth=float(draws["birth"][j]),
                u_join=float(draws["join"][j]), u_id=float(draws["id"][j]), u_phone=float(draws["phone"][j]),
                probationary=probationary, category=category, building=b.code[i], org=None,
            )
            if category == Category.EMPLOYED and float(draws["work"][j]) < 0.6:
                m.work_unit = self.g.work_unit(float(draws["wu"][j]))
                if float(draws["report"][j]) < 1 / 3:
                    m.reported_community = b.community_code[i]
                    m.reported_on = REF_DATE - timedelta(days=int(200 + 1800 * float(draws["rdate"][j])))
            m.dues_paid_through = self.g.dues(category, float(draws["dues"][j]))
            # Gaps: half of the lost-contact members and the newly moved-in ones have no organisation.
            unattached = (category == Category.LOST_CONTACT and float(draws["lost"][j]) < 0.5) or (
                category in (Category.EMPLOYED, Category.RETIRED) and float(draws["new"][j]) < 0.015
            )
            out.append((m, b.code[i], b.grid_code[i], unattached))
        return out

    def workplace(self, count: int, stream: str, key: int, *, work_unit: str, org: str | None,
                  enterprise: str | None, full_first: int, retired_share: float = 0.0) -> list[MemberRow]:
        """Members working (not living) here: an enterprise's or a resident unit's staff. Scalar
        draws: these come a few at a time, where numpy's per-call overhead would dominate."""
        one = self.one
        out = []
        for j in range(count):
            male = one(f"{stream}:gender", key, j) < 0.62
            retired = one(f"{stream}:ret", key, j) < retired_share
            ua = one(f"{stream}:age", key, j)
            age = 60 + 15 * ua if retired else 23 + 32 * ua
            probationary = j >= full_first and one(f"{stream}:prob", key, j) < 0.12 and age < 45
            category = Category.RETIRED if retired else Category.EMPLOYED
            m = self._person(name=_one_name(one, f"{stream}:name", male, key, j), male=male, age=age,
                             u_birth=one(f"{stream}:birth", key, j), u_join=one(f"{stream}:join", key, j),
                             u_id=one(f"{stream}:id", key, j), u_phone=one(f"{stream}:phone", key, j),
                             probationary=probationary, category=category, building=None, org=org,
                             work_unit=work_unit, enterprise=enterprise)
            m.dues_paid_through = self.g.dues(category, one(f"{stream}:dues", key, j))
            out.append(m)
        return out

    # -- the tree --------------------------------------------------------------------------------

    def _org(self, row: OrgRow) -> OrgRow:
        self.orgs[row.code] = row
        return row

    def build(self) -> None:
        space = self.g.space
        # The crowded grid (小马拉大车): the street's grid with most households.
        self.crowded_grid = max(self.grids, key=lambda g: (g.households, g.code)).code
        gaps = {g.code for g in self.grids
                if self.one("grid_gap", int(g.code)) < GRID_GAP_SHARE and g.code != self.crowded_grid}
        if not gaps:
            spare = sorted((g for g in self.grids if g.code != self.crowded_grid),
                           key=lambda g: self.one("grid_gap", int(g.code)))
            gaps = {spare[0].code}
        self.deliberate["grids_without_branch"] = sorted(gaps)
        self.deliberate["crowded_grid_branch"] = [f"P{self.crowded_grid}"]

        top = self._org(OrgRow(f"P{self.code}", Kind.STREET_COMMITTEE, Level.WORKING_COMMITTEE,
                               f"中共湛江市霞山区{self.name}工作委员会", self.code, None, is_enlarged=True,
                               term_years=5))
        for c in self.comms:
            self._org(OrgRow(f"P{c.code}", Kind.COMMUNITY_ORG, Level.BRANCH, "", self.code, top.code,
                             community_code=c.code, term_years=5))
        for g in self.grids:
            if g.code not in gaps:
                self._org(OrgRow(f"P{g.code}", Kind.GRID_BRANCH, Level.BRANCH, "", self.code,
                                 f"P{g.community_code}", grid_code=g.code))

        residents = self.residents()
        self._building_groups(residents)
        for m, _b, grid, unattached in residents:
            if unattached:
                self.deliberate["members_without_org"].append(m.id_number)
                continue
            if m.org is None:
                m.org = f"P{grid}" if f"P{grid}" in self.orgs else f"P{grid[:12]}"
        self._enterprises()
        self._resident_units(space)
        self._workplace_members()
        self._levels_and_names()
        self._secretaries()
        self._terms_and_records()
        self._seats()

    def _building_groups(self, residents: list[tuple[MemberRow, str, str, bool]]) -> None:
        by_building: dict[str, list[MemberRow]] = defaultdict(list)
        grid_of: dict[str, str] = {}
        for m, b, grid, unattached in residents:
            if not unattached:
                by_building[b].append(m)
            grid_of[b] = grid
        by_grid: dict[str, list[str]] = defaultdict(list)
        for b in sorted(by_building):
            by_grid[grid_of[b]].append(b)
        for grid, blds in by_grid.items():
            branch = f"P{grid}"
            if branch not in self.orgs:
                continue
            chunk: list[str] = []
            for b in blds:
                n = len(by_building[b])
                if n >= 3:
                    if self.one("own_group", int(b)) < OWN_GROUP_SHARE:
                        self._group(branch, [b], by_building)
                    else:
                        self.deliberate["buildings_without_group"].append(b)
                    continue
                chunk.append(b)
                if sum(len(by_building[x]) for x in chunk) >= 3 or len(chunk) == 6:
                    if sum(len(by_building[x]) for x in chunk) >= 3 and \
                            self.one("chunk_group", int(chunk[0])) < SMALL_CHUNK_GROUP_SHARE:
                        self._group(branch, chunk, by_building)
                    chunk = []

    def _group(self, branch: str, blds: list[str], by_building: dict[str, list[MemberRow]]) -> None:
        bname = self.g.building_name
        name = f"{bname[blds[0]]}党小组" if len(blds) == 1 else f"{bname[blds[0]]}等{len(blds)}栋楼党小组"
        code = f"PG{blds[0]}"
        self._org(OrgRow(code, Kind.BUILDING_GROUP, Level.GROUP, name, self.code, branch, buildings=list(blds)))
        for b in blds:
            for m in by_building[b]:
                m.org = code

    def _enterprises(self) -> None:
        rows = self._enterprise_rows()
        self._ensure_each_gap(rows)
        self._joint_branches(rows)
        self._instructors_and_orgs(rows)
        self.enterprises = rows
        self.g.enterprise_name.update({e.credit_code: e.name for e in rows})

    def _enterprise_name(self, kind: str, social: bool, u: list[float], seen: set[str]) -> str:
        for attempt in range(8):
            stem = _pick((u[1] + attempt * 0.137) % 1, names.ENTERPRISE_STEMS)
            if kind == "industrial":
                name = f"湛江市{stem}{_pick(u[2], names.FACTORY_TRADES)}有限公司"
            elif social:
                name = f"霞山区{stem}{_pick(u[2], names.SOCIAL_ORG_NAMES)}"
            else:
                name = f"湛江{stem}{_pick(u[2], names.ENTERPRISE_TRADES)}{_pick(u[3], names.ENTERPRISE_FORMS)}"
            if name not in seen:
                break
        seen.add(name)
        return name

    def _enterprise_rows(self) -> list[EnterpriseRow]:
        """Enterprises in commercial (1–2 each), mixed (some) and industrial (one each) buildings,
        each with a role: own org, should form one (gap), joint branch, instructor, or nothing (gap)."""
        b = self.g.space.buildings
        seen: set[str] = set()
        rows: list[EnterpriseRow] = []
        seq = 0
        for i in self.g.buildings_of[self.code]:
            cc = b.community_code[i]
            if b.kind[i] not in ("commercial", "mixed", "industrial"):
                continue
            bk = int(b.code[i])
            kind = b.kind[i]
            n = 1 if kind == "industrial" else (1 + (self.one("ent_n", bk) < 0.5)) if kind == "commercial" \
                else int(self.one("ent_n", bk) < 0.15)
            for j in range(n):
                seq += 1
                u = [self.one(f"ent_{s}", bk, j) for s in ("kind", "stem", "trade", "form", "role", "cover", "size")]
                social = kind != "industrial" and u[0] < 0.15
                name = self._enterprise_name(kind, social, u, seen)
                body = f"{self.ids.street_no:02d}{seq:06d}"
                code = credit_code("52" if social else "91", body)
                if kind == "industrial" and u[4] < 0.7:
                    role, size = "own_org", (80 + int(320 * u[6]), 8 + int(32 * u[6]))
                elif u[4] < 0.10:
                    role, size = "own_org", (20 + int(280 * u[6]), 3 + int(17 * u[6]))
                elif u[4] < 0.14:
                    role, size = "needs_org", (15 + int(65 * u[6]), 3 + int(3 * u[6]))
                else:
                    role = "joint" if u[5] < 0.2 else "instructor" if u[5] < 0.95 else "uncovered"
                    size = (3 + int(37 * u[6]), 0 if u[6] < 0.4 else 1 if u[6] < 0.75 else 2)
                kind_value = Enterprise.Kind.SOCIAL_ORG if social else Enterprise.Kind.ENTERPRISE
                rows.append(EnterpriseRow(code, name, kind_value, b.code[i], cc, self.code, size[0], role, size[1]))
        return rows

    def _ensure_each_gap(self, rows: list[EnterpriseRow]) -> None:
        """Every street shows each enterprise gap at least once."""
        for role, members in (("needs_org", 3), ("uncovered", None)):
            if rows and not any(r.role == role for r in rows):
                r = next((r for r in rows if r.role == "instructor"), None)
                if r is not None:
                    r.role = role
                    if members:
                        r.members = members

    def _joint_branches(self, rows: list[EnterpriseRow]) -> None:
        """One joint branch per community with 3+ candidates; the others get an instructor."""
        by_comm: dict[str, list[EnterpriseRow]] = defaultdict(list)
        for r in rows:
            if r.role == "joint":
                by_comm[r.community_code].append(r)
        for cc, group in sorted(by_comm.items()):
            if len(group) < 3:
                for r in group:
                    r.role = "instructor"
                continue
            code = f"PJ{cc}"
            self._org(OrgRow(code, Kind.JOINT_BRANCH, Level.BRANCH, "", self.code, f"P{cc}", community_code=cc))
            for r in group:
                r.joint_code = code
                r.members = max(1, r.members)

    def _instructors_and_orgs(self, rows: list[EnterpriseRow]) -> None:
        self.cadres = [(self.code, _one_name(self.one, "cadre", i % 3 != 0, self.key, i), f"{self.name}党建工作指导员")
                       for i in range(4)]
        seen_c: set[str] = set()
        for i, (_s, nm, _u) in enumerate(self.cadres):
            if nm in seen_c:
                self.cadres[i] = (self.code, f"{nm}{'甲乙丙丁'[i]}", _u)
            seen_c.add(self.cadres[i][1])
        for r in rows:
            if r.role == "instructor":
                r.instructor = str(_pick(self.one("instructor", _k(r.credit_code)), [c[1] for c in self.cadres]))
            if r.role == "own_org":
                # Factories' organisations answer to the street committee directly (非公企业党组织).
                parent = f"P{self.code}" if r.employee_count >= 80 and r.members >= 8 else f"P{r.community_code}"
                self._org(OrgRow(f"PE{r.credit_code}", Kind.ENTERPRISE_ORG, Level.BRANCH, "", self.code, parent,
                                 premises=r.credit_code))
            self.deliberate[f"enterprises_{r.role}"].append(r.credit_code)

    def _resident_units(self, space: DemoSpace) -> None:
        templates = sorted(range(len(names.RESIDENT_UNITS)), key=lambda t: self.one("unit_pick", self.key, t))
        n = 5 + int(3 * self.one("unit_n", self.key))
        public = sorted({space.buildings.community_code[i] for i in self.g.buildings_of[self.code]
                         if space.buildings.kind[i] == "public"})
        self.units: list[tuple[str, str, int]] = []
        for i, t in enumerate(templates[:n]):
            tpl, lo, hi = names.RESIDENT_UNITS[t]
            unit = tpl.format(s=self.stem, n=self.ids.street_no + 2 * i + 1)
            pool = public or [c.code for c in self.comms]
            cc = str(_pick(self.one("unit_comm", self.key, i), pool))
            size = lo + int((hi - lo + 1) * self.one("unit_size", self.key, i))
            code = f"PR{self.code}{i + 1:02d}"
            self._org(OrgRow(code, Kind.RESIDENT_UNIT_ORG, Level.BRANCH, "", self.code, f"P{self.code}",
                             community_code=cc, unit_name=unit))
            self.units.append((code, unit, size))

    def _workplace_members(self) -> None:
        """Members working (not living) in the street's enterprises and resident units."""
        for r in self.enterprises:
            n = r.members
            if not n:
                continue
            org = {"own_org": f"PE{r.credit_code}", "joint": r.joint_code}.get(r.role) or f"P{r.community_code}"
            self.workplace(n, "ent_member", _k(r.credit_code), work_unit=r.name, org=org,
                           enterprise=r.credit_code, full_first=3 if r.role in ("own_org", "needs_org") else 1)
        for i, (code, unit, size) in enumerate(self.units):
            self.workplace(size, "unit_member", self.key * 100 + i, work_unit=unit, org=code, enterprise=None,
                           full_first=3, retired_share=0.08)

    def _subtree_counts(self, *, full_only: bool) -> Counter[str]:
        """Members of each organisation's whole subtree, as orgs.sql.org_member_counts counts them."""
        direct = Counter(m.org for m in self.members
                         if m.org and (not full_only or m.status == PartyMember.Status.FULL))
        total: Counter[str] = Counter()
        for code, n in direct.items():
            c: str | None = code
            while c is not None:
                total[c] += n
                c = self.orgs[c].parent_code
        return total

    def _levels_and_names(self) -> None:
        """Each level follows its member count (the rule check_levels applies), except the
        deliberate 小马拉大车 branch; names follow the level."""
        comm_name = self.comm_name
        total = self._subtree_counts(full_only=False)
        for o in self.orgs.values():
            if o.kind in (Kind.STREET_COMMITTEE, Kind.BUILDING_GROUP):
                continue
            o.level = Level.BRANCH if o.code == f"P{self.crowded_grid}" else _level_for(total[o.code])
            if o.kind == Kind.COMMUNITY_ORG:
                o.name = f"中共霞山区{self.name}{comm_name[_unit_of(o, o.community_code)]}{_SUFFIX[o.level]}"
            elif o.kind == Kind.GRID_BRANCH:
                grid = self.g.grid_by_code[_unit_of(o, o.grid_code)]
                o.name = f"{comm_name[grid.community_code]}{grid.name}{_GRID_SUFFIX[o.level]}"
            elif o.kind == Kind.ENTERPRISE_ORG:
                o.name = f"中共{self.g.enterprise_name[_unit_of(o, o.premises)]}{_SUFFIX[o.level]}"
            elif o.kind == Kind.RESIDENT_UNIT_ORG:
                o.name = f"中共{o.unit_name}{_SUFFIX[o.level]}"
            elif o.kind == Kind.JOINT_BRANCH:
                o.name = f"中共{comm_name[_unit_of(o, o.community_code)]}两新组织联合支部委员会"
        # Guard the generator's own promise: every branch-level org has 3+ full members.
        full = self._subtree_counts(full_only=True)
        thin = [o.code for o in self.orgs.values()
                if o.level not in (Level.GROUP, Level.WORKING_COMMITTEE) and full[o.code] < 3]
        if thin:
            raise RuntimeError(f"演示数据生成错误：党组织正式党员不足3名：{thin[:5]}")

    def _secretaries(self) -> None:
        first_full: dict[str, MemberRow] = {}
        for m in self.members:
            if m.org and m.status == PartyMember.Status.FULL and m.org not in first_full and m.category != Category.LOST_CONTACT:
                first_full[m.org] = m
        for o in self.orgs.values():
            secretary = first_full.get(o.code)
            if secretary is None and o.kind == Kind.COMMUNITY_ORG:
                secretary = next((first_full[c.code] for c in self.orgs.values()
                                  if c.parent_code == o.code and c.kind == Kind.GRID_BRANCH and c.code in first_full),
                                 None)
            o.secretary = secretary.id_number if secretary else None
        self.secretary_name = {o.code: first_full[o.code].name for o in self.orgs.values() if o.code in first_full}

    def _terms_and_records(self) -> None:
        g = self.g
        anchor, today = g.month_start, g.today
        branches = sorted((o for o in self.orgs.values()
                           if o.kind == Kind.GRID_BRANCH and o.code != f"P{self.crowded_grid}"),
                          key=lambda o: self.one("deliberate", int(o.code[1:])))
        special = {}
        if len(branches) >= 7:
            special = {branches[0].code: -(20 + int(40 * self.one("term_overdue", self.key))),
                       branches[1].code: 8 + int(20 * self.one("term_30a", self.key)),
                       branches[2].code: 10 + int(18 * self.one("term_30b", self.key)),
                       branches[3].code: 40 + int(45 * self.one("term_90a", self.key)),
                       branches[4].code: 45 + int(40 * self.one("term_90b", self.key))}
            self.deliberate["term_overdue"] = [branches[0].code]
            self.deliberate["term_expiring"] = [b.code for b in branches[1:5]]
        for o in self.orgs.values():
            if o.kind == Kind.BUILDING_GROUP:
                continue
            ty = 5 if o.kind in (Kind.STREET_COMMITTEE, Kind.COMMUNITY_ORG) else 3
            o.term_years = ty
            if o.code in special:
                ends = today + timedelta(days=special[o.code])
            else:
                ends = anchor + timedelta(days=150 + int((ty * 365 - 200) * self.one("term", _k(o.code))))
            o.term_started_on = _years_before(ends, ty)
            founded = date(1990, 1, 1) + timedelta(days=int(10_000 * self.one("founded", _k(o.code))))
            o.founded_on = min(founded, o.term_started_on)
        # 软弱涣散: the overdue branch and one more are being rectified; one was converted last year.
        if len(branches) >= 7:
            for j, b in enumerate([branches[0], branches[5]]):
                self.g.rectifications.append(RectificationRow(
                    b.code, _month_shift(anchor, -(2 + j * 2)), names.WEAK_REASONS[2 if j == 0 else j % 5],
                    names.WEAK_MEASURES[j % 3], None))
            flagged = date(today.year - 1, 3 + int(6 * self.one("rect_conv", self.key)), 10)
            self.g.rectifications.append(RectificationRow(
                branches[6].code, flagged, names.WEAK_REASONS[1], names.WEAK_MEASURES[1],
                min(flagged + timedelta(days=150), anchor)))
            self.deliberate["weak_orgs"] = [branches[0].code, branches[5].code]
        weak = set(self.deliberate["weak_orgs"]) | ({branches[6].code} if len(branches) >= 7 else set())
        for o in self.orgs.values():
            if o.kind not in (Kind.COMMUNITY_ORG, Kind.GRID_BRANCH, Kind.ENTERPRISE_ORG):
                continue
            for year in (today.year - 2, today.year - 1):
                k = _k(o.code)
                lo = 45 if o.code in weak and year == today.year - 1 else 62
                score = Decimal(str(round(lo + (98 - lo) * self.one("score", k, year), 1)))
                sat = Decimal(str(round(lo + 3 + (97 - lo) * self.one("satisfaction", k, year), 1)))
                total = star_total(score=score, satisfaction_score=sat)
                self.g.ratings.append(RatingRow(o.code, year, stars_for_total(total), score.quantize(Decimal("0.01")),
                                                sat.quantize(Decimal("0.01")), total))

    def _seats(self) -> None:
        comms = [c.code for c in self.comms]
        n = 9 + int(7 * self.one("dgw_n", self.key))
        heads = min(len(self.units), math.ceil(n / 3) + (self.one("dgw_heads", self.key) < 0.5))
        if self.code == DISTRICT_VIOLATION_STREET:
            heads = math.ceil(n / 3) - 2
            self.deliberate["big_committee_short_of_heads"] = [f"P{self.code}"]
        seats: list[SeatRow] = []
        taken: set[str] = set()

        def seat(org: str, person: str, unit: str, head: bool, liaison: list[str], units: str = "") -> None:
            while person in taken:
                person += "（兼）" if "（" not in person else "1"
            taken.add(person)
            seats.append(SeatRow(org, person, unit, head, liaison, units))

        top = f"P{self.code}"
        for i, (code, unit, _size) in enumerate(self.units[:heads]):
            seat(top, self.secretary_name.get(code, _one_name(self.one, "seat", True, self.key, i)), unit, True,
                 [str(_pick(self.one("liaison", self.key, i), comms))])
        for i in range(n - heads):
            person = _one_name(self.one, "dgw", i % 3 != 2, self.key, i)
            unit = f"{self.name}党工委" if i < 4 else str(_pick(self.one("dgw_unit", self.key, i), [
                e.name for e in self.enterprises if e.role == "own_org"] or [f"{self.name}办事处"]))
            liaison = sorted({str(_pick(self.one("liaison2", self.key, i, j), comms)) for j in range(2)})
            seat(top, person, unit, False, liaison)
        # 大党委 for about half the communities (at least one per street).
        enlarged = [c for c in comms if self.one("dadw", int(c)) < 0.5] or comms[:1]
        for cc in enlarged:
            taken = set()
            org = self.orgs[f"P{cc}"]
            org.is_enlarged = True
            m = 7 + int(5 * self.one("dadw_n", int(cc)))
            sec = self.secretary_name.get(org.code) or _one_name(self.one, "dadw_sec", True, int(cc))
            seat(org.code, sec, org.name, False, [cc])
            local = [(u, c) for c, u, _s in self.units if self.orgs[c].community_code == cc]
            local += [(e.name, f"PE{e.credit_code}") for e in self.enterprises
                      if e.role == "own_org" and e.community_code == cc]
            for i in range(m - 1):
                if i < len(local):
                    unit, code = local[i]
                    person = self.secretary_name.get(code) or _one_name(self.one, "dadw_p", True, int(cc), i)
                    seat(org.code, person, unit, code.startswith("PR"), [cc], unit)
                else:
                    seat(org.code, _one_name(self.one, "dadw_p", i % 2 == 0, int(cc), i),
                         f"{self.comm_name[cc]}居民委员会", False, [cc])
        self.g.seats.extend(seats)

    def staff(self) -> None:
        """Grid workers, full-time community workers and stationed cadres."""
        rules = self.g.rules
        short = str(_pick(self.one("short_comm", self.key), [c.code for c in self.comms]))
        self.deliberate["community_short_of_staff"] = [short]
        for c in self.comms:
            required = max(int(rules["min_fulltime_workers_per_community"]),
                           math.ceil(c.residents / int(rules["residents_per_fulltime_worker"])))
            target = required - 2 if c.code == short else required + int(self.one("staff_extra", int(c.code)) < 0.3)
            workers: list[WorkerRow] = []
            for g in (g for g in self.grids if g.community_code == c.code):
                if self.one("workerless", int(g.code)) < WORKERLESS_GRID_SHARE:
                    self.deliberate["grids_without_worker"].append(g.code)
                    continue
                workers.append(self._worker(c.code, self.one("fulltime", int(g.code)) >= 0.12, [g.code]))
            full = [w for w in workers if w.full_time]
            for w in full[target:]:  # more grid workers than the target: the rest are part-time
                w.full_time = False
            for _ in range(max(0, target - len(full))):
                workers.append(self._worker(c.code, True, []))
            self.g.workers.extend(workers)
            for j in range(1 + (self.one("stationed_n", int(c.code)) < 0.5)):
                nm = _one_name(self.one, "stationed", j == 0, int(c.code), j)
                self.g.stationed.append(StationedRow(
                    c.code, nm if j == 0 or nm != self.g.stationed[-1].name else f"{nm}（二）",
                    date(self.g.today.year, 1, 1), 6 + int(5 * self.one("st_days", int(c.code), j)),
                    8 + int(8 * self.one("st_contacts", int(c.code), j))))

    def _worker(self, community: str, full_time: bool, grids: list[str]) -> WorkerRow:
        self.worker_seq += 1
        k = self.key * 1000 + self.worker_seq
        name = _one_name(self.one, "worker", self.one("worker_gender", k) < 0.4, k)
        return WorkerRow(f"{_WORKER_PREFIX}{self.ids.street_no:02d}{self.worker_seq:06d}", name, community,
                         full_time, grids)


# ------------------------------------------------------------------------------------------------
# The whole set
# ------------------------------------------------------------------------------------------------


class _Gen:
    def __init__(self, space: DemoSpace, today: date, rules: dict) -> None:
        self.space = space
        self.rand = _Rand(space.seed)
        self.one = _One(self.rand)
        self.buildings_of: dict[str, list[int]] = defaultdict(list)
        for i, cc in enumerate(space.buildings.community_code):
            self.buildings_of[cc[:9]].append(i)
        self.today = today
        self.month_start = today.replace(day=1)
        self.rules = rules
        self.grid_by_code = {g.code: g for g in space.grids}
        b = space.buildings
        self.building_name = dict(zip(b.code, b.name, strict=True))
        self.enterprise_name: dict[str, str] = {}
        self.workers: list[WorkerRow] = []
        self.stationed: list[StationedRow] = []
        self.seats: list[SeatRow] = []
        self.rectifications: list[RectificationRow] = []
        self.ratings: list[RatingRow] = []
        self._units = [f"湛江{s}{t}有限公司" for s in names.ENTERPRISE_STEMS[:12] for t in names.ENTERPRISE_TRADES[:6]]
        self._units += ["湛江市霞山区人民政府", "湛江海关", "湛江市第一中学", "广东医科大学附属医院", "湛江港集团",
                        "中国南方电网湛江供电局", "湛江市公安局", "中国石化湛江东兴石油化工有限公司"]

    def work_unit(self, u: float) -> str:
        return str(_pick(u, self._units))

    def dues(self, category: str, u: float) -> date:
        if category == Category.LOST_CONTACT:
            return _month_shift(self.month_start, -(12 + int(18 * u)))
        if u < 0.07:
            return _month_shift(self.month_start, -(2 + int(5 * u / 0.07)))
        return _month_shift(self.month_start, 0 if u < 0.6 else -1)


def build_orgs(*, space: DemoSpace, today: date, rules: dict) -> DemoOrgs:
    """Generate (in memory, no database) the organisation side of `space` as of `today`."""
    gen = _Gen(space, today, rules)
    out = DemoOrgs([], [], [], [], [], [], [], [], [], defaultdict(list))
    for s in space.streets:
        street = _Street(gen, s.code, s.name)
        street.build()
        street.staff()
        out.cadres.extend(street.cadres)
        out.enterprises.extend(street.enterprises)
        out.orgs.extend(street.orgs.values())
        out.members.extend(street.members)
        for k, v in street.deliberate.items():
            out.deliberate[k].extend(v)
    out.workers, out.stationed, out.seats = gen.workers, gen.stationed, gen.seats
    out.rectifications, out.ratings = gen.rectifications, gen.ratings
    out.deliberate = dict(out.deliberate)
    return out



# ------------------------------------------------------------------------------------------------
# Writing (inside demo._write's transaction)
# ------------------------------------------------------------------------------------------------


class DemoOrgsError(RuntimeError):
    """The written organisation side breaks a rule orgs.services enforces; the run is rolled back."""

    code = "demo_orgs_invalid"


@dataclass(frozen=True)
class DemoOrgsSummary:
    counts: dict[str, int]  # rows per kind in the data set
    gaps: dict[str, int]  # deliberate gaps and violations per kind
    codes: dict[str, str]  # places the lead's demo users and docs can point at


def _depths(orgs: list[OrgRow]) -> dict[str, int]:
    parent = {o.code: o.parent_code for o in orgs}
    depth: dict[str, int] = {}
    for code in parent:
        d, c = 0, parent[code]
        while c is not None:
            d, c = d + 1, parent[c]
        depth[code] = d
    return depth


def orgs_stage(data: DemoOrgs) -> None:
    """COPY the organisation side into the temporary stages. Personal data is sealed with orgs.pii
    here, and only where the stored row lacks it or holds another value."""
    from data import sql as demo_sql
    from orgs import pii

    demo_sql.stage("demo_cadre_stage", ["street_code", "name", "unit_name"], data.cadres)
    demo_sql.stage(
        "demo_ent_stage",
        ["credit_code", "name", "kind", "building_code", "employee_count", "joint_code", "instructor_street",
         "instructor_name"],
        [(e.credit_code, e.name, e.kind, e.building, e.employee_count, e.joint_code,
          e.street_code if e.instructor else None, e.instructor) for e in data.enterprises],
    )
    id_hash = {m.id_number: pii.keyed_hash(m.id_number) for m in data.members}
    depth = _depths(data.orgs)
    demo_sql.stage(
        "demo_org_stage",
        ["code", "kind", "level", "name", "street_code", "parent_code", "community_code", "grid_code", "premises",
         "unit_name", "founded_on", "term_started_on", "term_years", "is_enlarged", "depth", "secretary_hash"],
        [(o.code, o.kind, o.level, o.name, o.street_code, o.parent_code, o.community_code, o.grid_code, o.premises,
          o.unit_name, o.founded_on, o.term_started_on, o.term_years, o.is_enlarged, depth[o.code],
          id_hash[o.secretary] if o.secretary else None) for o in data.orgs],
    )
    demo_sql.stage("demo_org_bld_stage", ["org_code", "building_code"],
                   [(o.code, b) for o in data.orgs for b in o.buildings])

    stored = demo_sql.member_hashes_in_db(list(id_hash.values()))

    def member_row(m: MemberRow) -> tuple:
        h, ph = id_hash[m.id_number], pii.keyed_hash(m.phone)
        known = h in stored
        return (h, "" if known else pii.seal(m.id_number).cipher, ph,
                "" if known and stored[h] == ph else pii.seal(m.phone).cipher,
                m.name, m.gender, m.birth_date, m.joined_on, m.status, m.category, m.building, m.org, m.work_unit,
                m.enterprise, m.reported_community, m.reported_on, m.dues_paid_through)

    demo_sql.stage(
        "demo_member_stage",
        ["id_hash", "id_cipher", "phone_hash", "phone_cipher", "name", "gender", "birth_date", "joined_on", "status",
         "category", "building_code", "org_code", "work_unit", "enterprise", "reported_community", "reported_on",
         "dues"],
        (member_row(m) for m in data.members),
    )
    w_hash = {w.phone: pii.keyed_hash(w.phone) for w in data.workers}
    known_workers = demo_sql.worker_hashes_in_db(list(w_hash.values()))
    demo_sql.stage(
        "demo_worker_stage", ["phone_hash", "phone_cipher", "name", "community_code", "full_time"],
        [(w_hash[w.phone], "" if w_hash[w.phone] in known_workers else pii.seal(w.phone).cipher, w.name,
          w.community_code, w.full_time) for w in data.workers],
    )
    demo_sql.stage("demo_worker_cell_stage", ["phone_hash", "grid_code"],
                   [(w_hash[w.phone], g) for w in data.workers for g in w.grids])
    demo_sql.stage("demo_stationed_stage", ["community_code", "name", "period_start", "days", "contacts"],
                   [(s.community_code, s.name, s.period_start, s.required_days, s.required_contacts)
                    for s in data.stationed])
    demo_sql.stage("demo_seat_stage", ["org_code", "person_name", "unit_name", "is_head", "liaison_units"],
                   [(s.org_code, s.person_name, s.unit_name, s.is_resident_unit_head, s.liaison_units)
                    for s in data.seats])
    demo_sql.stage("demo_seat_comm_stage", ["org_code", "person_name", "community_code"],
                   [(s.org_code, s.person_name, c) for s in data.seats for c in s.liaison_communities])
    demo_sql.stage("demo_rect_stage", ["org_code", "flagged_on", "reasons", "measures", "converted_on"],
                   [(r.org_code, r.flagged_on, r.reasons, r.measures, r.converted_on) for r in data.rectifications])
    demo_sql.stage("demo_rating_stage", ["org_code", "year", "stars", "score", "satisfaction", "total"],
                   [(r.org_code, r.year, r.stars, r.score, r.satisfaction_score, r.total_score) for r in data.ratings])


def orgs_upsert(data: DemoOrgs, *, managed_street_codes: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """Apply the stages in dependency order; returns (created, updated) per table. Raises
    DemoOrgsError when the written tree disagrees with space (the caller's transaction rolls back)."""
    from data import sql as demo_sql

    created: dict[str, int] = {}
    updated: dict[str, int] = {}
    created["cadres"], updated["cadres"] = demo_sql.upsert_cadres()
    created["enterprises"], updated["enterprises"] = demo_sql.upsert_enterprises()
    created["party_orgs"] = updated["party_orgs"] = 0
    for depth in range(max(_depths(data.orgs).values(), default=-1) + 1):
        c, u = demo_sql.upsert_orgs(depth)
        created["party_orgs"] += c
        updated["party_orgs"] += u
    updated["enterprises"] += demo_sql.link_joint_branches()
    created["org_buildings"] = demo_sql.insert_org_buildings()
    created["party_members"], updated["party_members"] = demo_sql.upsert_members()
    created["grid_workers"], updated["grid_workers"] = demo_sql.upsert_workers()
    created["worker_cells"] = demo_sql.insert_worker_cells()
    created["stationed_cadres"], updated["stationed_cadres"] = demo_sql.upsert_stationed()
    created["committee_seats"], updated["committee_seats"] = demo_sql.upsert_seats()
    created["seat_communities"] = demo_sql.insert_seat_communities()
    created["rectifications"], updated["rectifications"] = demo_sql.upsert_rectifications()
    created["star_ratings"], updated["star_ratings"] = demo_sql.upsert_ratings()
    updated["party_orgs"] += demo_sql.set_secretaries_and_weak(managed_street_codes=managed_street_codes)
    bad = {k: v for k, v in org_sql.org_tree_violations(street_codes=managed_street_codes).items() if v}
    if bad:
        raise DemoOrgsError(f"组织树与空间不一致，未写入任何数据：{bad}")
    return created, updated


def orgs_summary(data: DemoOrgs, space: DemoSpace) -> DemoOrgsSummary:
    kinds = Counter(o.kind for o in data.orgs)
    counts = {f"org:{k}": kinds.get(k, 0) for k in Kind.values}
    counts |= {
        "party_members": len(data.members),
        "probationary": sum(1 for m in data.members if m.status == PartyMember.Status.PROBATIONARY),
        "double_reported": sum(1 for m in data.members if m.reported_community),
        "enterprises": len(data.enterprises),
        "grid_workers": len(data.workers),
        "full_time_workers": sum(1 for w in data.workers if w.full_time),
        "stationed_cadres": len(data.stationed),
        "cadres": len(data.cadres),
        "committee_seats": len(data.seats),
        "rectifications": len(data.rectifications),
        "star_ratings": len(data.ratings),
    }
    counts |= {f"category:{k}": v for k, v in sorted(Counter(m.category for m in data.members).items())}
    d = data.deliberate
    gaps = {k: len(v) for k, v in d.items() if not k.startswith("enterprises_") or k in (
        "enterprises_needs_org", "enterprises_uncovered")}
    # Codes for demo logins and walkthroughs: the demo street, its first community, a grid there
    # with a branch and a worker, and a grid without a branch.
    street = names.HAIBIN_CODE
    gap_grids = set(d.get("grids_without_branch", []))
    workerless = set(d.get("grids_without_worker", []))
    grids = [g.code for g in space.grids if g.community_code.startswith(street)]
    codes = {
        "street": street,
        "community": next(c.code for c in space.communities if c.street_code == street),
        "grid": next(g for g in grids if g not in gap_grids and g not in workerless),
        "grid_without_branch": next(g for g in grids if g in gap_grids),
        "community_short_of_staff": next(c for c in d.get("community_short_of_staff", []) if c.startswith(street)),
    }
    return DemoOrgsSummary(counts=counts, gaps=gaps, codes=codes)
