"""The rules the system can check (DOMAIN.md), thresholds from settings.WANGGE_RULES.

Each check is one set-based query (or two: the violations and the map of who answers for them);
none issues a query per organisation. `rules_check` is what the command and the API call: it
returns plain dataclasses whose `as_dict()` is JSON-ready with stable codes.

Who answers (`responsible_org`): for an organisation's own shortcomings, its superior (the body
that must urge it: 督促); for a place (a community's staffing, an enterprise without a party
organisation), the community organisation there, and where there is none the street working
committee (兜底管理).
"""

from __future__ import annotations

import math
from calendar import monthrange
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any, cast

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from grid.models import Community, Street
from orgs import sql
from orgs.models import Enterprise, PartyMember, PartyOrganisation

Kind = PartyOrganisation.Kind
Level = PartyOrganisation.Level
_LEVEL_RANK: dict[str, int] = {Level.BRANCH: 0, Level.GENERAL_BRANCH: 1, Level.COMMITTEE: 2}


@dataclass(frozen=True)
class RuleViolation:
    rule_code: str
    subject_type: str  # "org" | "community" | "enterprise" | "street"
    subject_id: int
    subject_name: str
    responsible_org_id: int | None
    responsible_org_name: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["detail"] = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in self.detail.items()}
        return data


def month_elapsed_share(today: date) -> float:
    """The share of `today`'s month already over: whole days before today over the month's days.

    A stationed cadre's pace is judged on days that have ended, so nobody is "behind" on the 1st
    and a snapshot taken in the small hours does not count the day just begun as missed. The gap
    computation, the indicators and the admin's cadre list all use this one share."""
    return (today.day - 1) / monthrange(today.year, today.month)[1]


def cadre_behind_pace(*, done: int, required: int, today: date) -> bool:
    """Below `cadre_pace_share` (80 %) of an even pace to the month's requirement by today."""
    return done < float(settings.WANGGE_RULES["cadre_pace_share"]) * required * month_elapsed_share(today)


def _rules() -> dict[str, Any]:
    return settings.WANGGE_RULES


class _Responsible:
    """Who answers for a place: the community's organisation, else the street committee (兜底).

    Loaded with one query per rules run, then looked up in memory.
    """

    def __init__(self, street_id: int | None) -> None:
        orgs = PartyOrganisation.objects.filter(kind__in=[Kind.STREET_COMMITTEE, Kind.COMMUNITY_ORG])
        if street_id is not None:
            orgs = orgs.filter(street_id=street_id)
        self.by_community: dict[int, tuple[int, str]] = {}
        self.by_street: dict[int, tuple[int, str]] = {}
        for org_id, name, kind, community_id, st_id in orgs.values_list(
            "id", "name", "kind", "community_id", "street_id"
        ):
            if kind == Kind.COMMUNITY_ORG:
                self.by_community[community_id] = (org_id, name)
            else:
                self.by_street[st_id] = (org_id, name)

    def for_place(self, community_id: int | None, street_id: int | None) -> tuple[int | None, str]:
        if community_id is not None and community_id in self.by_community:
            return self.by_community[community_id]
        if street_id is not None and street_id in self.by_street:
            org_id, name = self.by_street[street_id]
            return org_id, f"{name}（兜底）"
        return None, "（未设党组织）"


def _superior(row: dict[str, Any]) -> tuple[int | None, str]:
    """The body that must urge an organisation: its parent; the root answers for itself."""
    if row["parent_id"] is None:
        return row["id"], str(row["name"])
    return row["parent_id"], str(row["parent_name"])


def check_levels(*, street_id: int | None, today: date, who: _Responsible) -> list[RuleViolation]:
    """A branch needs 3+ full members; ~50+ members suit a general branch, 100+ a committee; a
    level whose next step's threshold is exceeded twice over is "小马拉大车"."""
    rules = _rules()
    minimum = int(rules["branch_min_full_members"])
    general, committee = int(rules["general_branch_members"]), int(rules["committee_members"])
    out: list[RuleViolation] = []
    for row in sql.org_member_counts(street_id=street_id, levels=list(_LEVEL_RANK)):
        members, full = int(row["members"]), int(row["full_members"])
        level = str(row["level"])
        resp = _superior(row)
        base = {"org_id": row["id"], "name": str(row["name"]), "resp": resp}
        detail = {"level": level, "members": members, "full_members": full}
        if full < minimum:
            out.append(
                _org_violation(
                    "org_too_few_full_members",
                    base,
                    detail | {"required": minimum},
                    f"{row['name']}仅有正式党员{full}名，设立党支部至少需要{minimum}名正式党员",
                )
            )
        suggested = (
            Level.COMMITTEE
            if members >= committee
            else Level.GENERAL_BRANCH
            if members >= general
            else Level.BRANCH
        )
        if _LEVEL_RANK[suggested] <= _LEVEL_RANK[level]:
            continue
        next_threshold = general if level == Level.BRANCH else committee
        detail |= {"suggested_level": str(suggested), "next_level_threshold": next_threshold}
        if members >= 2 * next_threshold:
            out.append(
                _org_violation(
                    "org_level_far_below_size",
                    base,
                    detail,
                    f"{row['name']}有党员{members}名，仍为{Level(level).label}，属“小马拉大车”，"
                    f"应升格为{Level(suggested).label}",
                )
            )
        else:
            out.append(
                _org_violation(
                    "org_level_below_size",
                    base,
                    detail,
                    f"{row['name']}有党员{members}名，达到{Level(suggested).label}设置标准，"
                    f"建议由{Level(level).label}升格",
                )
            )
    return out


def _org_violation(code: str, base: dict[str, Any], detail: dict[str, Any], message: str) -> RuleViolation:
    resp_id, resp_name = base["resp"]
    return RuleViolation(code, "org", base["org_id"], base["name"], resp_id, resp_name, message, detail)


def check_terms(*, street_id: int | None, today: date, who: _Responsible) -> list[RuleViolation]:
    """按期换届督促提醒: terms ending within the reminder windows (90, 30 days), and overdue ones."""
    windows = sorted(int(d) for d in _rules()["term_reminder_days"])
    out: list[RuleViolation] = []
    for row in sql.org_terms_ending_by(street_id=street_id, until=today + timedelta(days=windows[-1])):
        ends = cast(date, row["term_ends_on"])
        days_left = (ends - today).days
        base = {"org_id": row["id"], "name": str(row["name"]), "resp": _superior(row)}
        detail: dict[str, Any] = {
            "term_ends_on": ends,
            "days_left": days_left,
            "term_years": row["term_years"],
        }
        if days_left < 0:
            out.append(
                _org_violation(
                    "org_term_overdue",
                    base,
                    detail,
                    f"{row['name']}本届任期已于{ends:%Y年%m月%d日}届满，逾期{-days_left}天未换届",
                )
            )
        else:
            window = next(w for w in windows if days_left <= w)
            out.append(
                _org_violation(
                    "org_term_expiring",
                    base,
                    detail | {"window_days": window},
                    f"{row['name']}本届任期将于{ends:%Y年%m月%d日}届满（还有{days_left}天），请按期换届",
                )
            )
    return out


def check_enlarged_committees(
    *, street_id: int | None, today: date, who: _Responsible
) -> list[RuleViolation]:
    """大工委 9–15 seats with ≥ 1/3 resident-unit heads; 大党委 7–11 seats."""
    rules = _rules()
    share = float(rules["big_working_committee_resident_unit_share"])
    # The size rule of each body: its code, its name, and the configured bounds.
    working_committee = ("big_working_committee_size", "大工委", *rules["big_working_committee_size"])
    party_committee = ("big_party_committee_size", "大党委", *rules["big_party_committee_size"])
    orgs = PartyOrganisation.objects.filter(is_enlarged=True)
    if street_id is not None:
        orgs = orgs.filter(street_id=street_id)
    rows = orgs.annotate(
        seat_count=Count("seats"), head_count=Count("seats", filter=Q(seats__is_resident_unit_head=True))
    ).values("id", "name", "kind", "parent_id", "seat_count", "head_count")
    out: list[RuleViolation] = []
    for row in rows:
        n, heads = row["seat_count"], row["head_count"]
        base = {"org_id": row["id"], "name": row["name"], "resp": (row["id"], row["name"])}
        street = row["kind"] == Kind.STREET_COMMITTEE
        code, body, low, high = working_committee if street else party_committee
        if not low <= n <= high:
            out.append(
                _org_violation(
                    code,
                    base,
                    {"seats": n, "min": low, "max": high},
                    f"{row['name']}（{body}）现有委员{n}名，应为{low}–{high}名",
                )
            )
        if street and n and heads < share * n - 1e-9:
            out.append(
                _org_violation(
                    "big_working_committee_resident_share",
                    base,
                    {"seats": n, "resident_unit_heads": heads, "share": share},
                    f"{row['name']}（大工委）驻区单位党组织负责人兼职委员{heads}名，"
                    f"不足委员总数的{_fraction(share)}",
                )
            )
    return out


def _fraction(share: float) -> str:
    return "三分之一" if abs(share - 1 / 3) < 1e-6 else f"{share:.0%}"


def check_staffing(*, street_id: int | None, today: date, who: _Responsible) -> list[RuleViolation]:
    """At least one full-time community worker per 1,000 residents, never fewer than 5."""
    rules = _rules()
    per, floor = int(rules["residents_per_fulltime_worker"]), int(rules["min_fulltime_workers_per_community"])
    communities = Community.objects.all()
    if street_id is not None:
        communities = communities.filter(street_id=street_id)
    rows = communities.annotate(
        full_time=Count("grid_workers", filter=Q(grid_workers__full_time=True, grid_workers__active=True))
    ).values("id", "name", "street_id", "residents", "full_time")
    out: list[RuleViolation] = []
    for row in rows:
        required = max(floor, math.ceil(row["residents"] / per))
        if row["full_time"] >= required:
            continue
        resp_id, resp_name = who.for_place(row["id"], row["street_id"])
        out.append(
            RuleViolation(
                "community_staffing_short",
                "community",
                row["id"],
                row["name"],
                resp_id,
                resp_name,
                f"{row['name']}常住人口{row['residents']}人，专职社区工作者{row['full_time']}名，应不少于{required}名",
                {"residents": row["residents"], "full_time_workers": row["full_time"], "required": required},
            )
        )
    return out


def check_enterprises(*, street_id: int | None, today: date, who: _Responsible) -> list[RuleViolation]:
    """两新组织: 3+ full members and no own organisation should form one; fewer and neither a joint
    branch nor an instructor covering them is a blank spot (党建空白点)."""
    threshold = int(_rules()["enterprise_members_for_own_org"])
    enterprises = Enterprise.objects.all()
    if street_id is not None:
        enterprises = enterprises.filter(community__street_id=street_id)
    rows = (
        enterprises.annotate(
            full_members=Count("members", filter=Q(members__status=PartyMember.Status.FULL)),
            has_own_org=Exists(
                PartyOrganisation.objects.filter(premises_id=OuterRef("pk"), kind=Kind.ENTERPRISE_ORG)
            ),
        )
        .filter(has_own_org=False)
        .values(
            "id",
            "name",
            "community_id",
            "community__street_id",
            "full_members",
            "covering_joint_branch_id",
            "instructor_id",
        )
    )
    out: list[RuleViolation] = []
    for row in rows:
        resp_id, resp_name = who.for_place(row["community_id"], row["community__street_id"])
        n = row["full_members"]
        detail = {"full_members": n, "threshold": threshold}
        if n >= threshold:
            out.append(
                RuleViolation(
                    "enterprise_needs_own_org",
                    "enterprise",
                    row["id"],
                    row["name"],
                    resp_id,
                    resp_name,
                    f"{row['name']}有正式党员{n}名，尚未单独组建党组织",
                    detail,
                )
            )
        elif row["covering_joint_branch_id"] is None and row["instructor_id"] is None:
            out.append(
                RuleViolation(
                    "enterprise_uncovered",
                    "enterprise",
                    row["id"],
                    row["name"],
                    resp_id,
                    resp_name,
                    f"{row['name']}未建党组织，也未纳入联合党支部、未派党建指导员（党建空白点）",
                    detail,
                )
            )
    return out


# Rectifications counted for the conversion rate: those flagged in the last three years. Three is
# one branch committee term (term_years_branch): the rate then speaks of the organisations the
# current committees run, and old successes do not mask recent failures. Override with
# WANGGE_RULES["weak_org_window_years"].
WEAK_ORG_WINDOW_YEARS = 3
# A rectification still open counts against the rate only once its rectification period (one
# year) is over: counting one flagged last month would make a street's rate fall the day it
# honestly flags a weak organisation. Override with WANGGE_RULES["weak_org_conversion_due_days"].
WEAK_ORG_DUE_DAYS = 365


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def check_weak_conversion(*, street_id: int | None, today: date, who: _Responsible) -> list[RuleViolation]:
    """软弱涣散党组织转化率: of the rectifications flagged in the window and due (converted, or
    open past their rectification period), the share converted by `today` must reach
    weak_org_conversion_target (90%); the street working committee answers."""
    rules = _rules()
    target = float(rules["weak_org_conversion_target"])
    years = int(rules.get("weak_org_window_years", WEAK_ORG_WINDOW_YEARS))
    due_days = int(rules.get("weak_org_conversion_due_days", WEAK_ORG_DUE_DAYS))
    since = _years_before(today, years)
    streets = Street.objects.all() if street_id is None else Street.objects.filter(pk=street_id)
    rect = "party_organisations__rectifications__"
    converted = Q(**{f"{rect}converted_on__lte": today})
    window = Q(**{f"{rect}flagged_on__gte": since, f"{rect}flagged_on__lte": today})
    due = converted | Q(**{f"{rect}flagged_on__lte": today - timedelta(days=due_days)})
    rows = (
        streets.annotate(
            flagged=Count("party_organisations__rectifications", filter=window & due),
            converted=Count("party_organisations__rectifications", filter=window & converted),
        )
        .filter(flagged__gt=0)
        .values("id", "name", "flagged", "converted")
    )
    out: list[RuleViolation] = []
    for row in rows:
        rate = row["converted"] / row["flagged"]
        if rate >= target - 1e-9:
            continue
        org_id = who.by_street.get(row["id"], (None, ""))[0]
        org_name = who.by_street.get(row["id"], (None, "（未设街道党工委）"))[1]
        detail = {
            "flagged": row["flagged"],
            "converted": row["converted"],
            "rate": round(rate, 4),
            "target": target,
            "since": since,
            "window_years": years,
            "due_days": due_days,
        }
        message = (
            f"{row['name']}近{years}年认定软弱涣散党组织{row['flagged']}个，已转化{row['converted']}个，"
            f"转化率{rate:.0%}，低于{target:.0%}的目标"
        )
        if org_id is None:
            # No working committee to hang it on: the street itself is the subject.
            out.append(
                RuleViolation(
                    "weak_org_conversion_low",
                    "street",
                    row["id"],
                    row["name"],
                    None,
                    org_name,
                    message,
                    detail,
                )
            )
        else:
            out.append(
                RuleViolation(
                    "weak_org_conversion_low", "org", org_id, org_name, org_id, org_name, message, detail
                )
            )
    return out


CHECKS: list[Callable[..., list[RuleViolation]]] = [
    check_levels,
    check_terms,
    check_enlarged_committees,
    check_staffing,
    check_enterprises,
    check_weak_conversion,
]

RULE_CODES = {
    "org_too_few_full_members": "正式党员不足",
    "org_level_below_size": "建议升格",
    "org_level_far_below_size": "小马拉大车",
    "org_term_expiring": "任期即将届满",
    "org_term_overdue": "逾期未换届",
    "big_working_committee_size": "大工委人数",
    "big_working_committee_resident_share": "大工委驻区单位委员比例",
    "big_party_committee_size": "大党委人数",
    "community_staffing_short": "专职社区工作者不足",
    "enterprise_needs_own_org": "应单独组建党组织",
    "enterprise_uncovered": "两新组织党建空白",
    "weak_org_conversion_low": "软弱涣散党组织转化率偏低",
}


def rules_check(*, street: Street | None = None, today: date | None = None) -> list[RuleViolation]:
    """Every rule's violations, for one street or all. `today` is injectable for tests and replays."""
    today = today or timezone.localdate()
    street_id = street.pk if street is not None else None
    who = _Responsible(street_id)
    violations: list[RuleViolation] = []
    for check in CHECKS:
        violations.extend(check(street_id=street_id, today=today, who=who))
    return violations
