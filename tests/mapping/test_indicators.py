"""Every indicator on a small hand-built scene whose right answer is known, per grid cell,
community and street; an empty community; the daily snapshot (idempotent, history over days).

    X,Y               X+0.005             X+0.01               X+0.05
     +------------------+------------------+     ...     +----------+
     | A1: branch       | A2: no branch    |             | E: empty |
     |  h1 10 hh, group |  h3 30 hh        |             |          |
     |  h2 20 hh        |  F2 joint branch |             |          |
     |  shop: F1 own org|  F3 instructor   |             |          |
     |  F4 nothing      |                  |             |          |
     +------------------+------------------+             +----------+

Street S: communities A (grid cells A1, A2, and A0 which has no boundary, so is not current) and
E (nothing at all). The day is AT's (2026-03-16, noon in Shanghai): 16 of March's 31 days.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.contrib.gis.geos import Point

from grid.models import Building, Community, GridCell, Street
from grid.services import buildings_reassign
from mapping import indicators
from mapping.models import Gap, IndicatorSnapshot
from orgs import services as org_services
from orgs.models import Enterprise, PartyMember, PartyOrganisation, StationContact, StationedCadre, Visit
from tests.factories import (
    ORIGIN,
    BuildingFactory,
    CommunityFactory,
    GridCellFactory,
    StreetFactory,
    multi,
    rect,
    square,
)
from tests.orgs_factories import (
    BuildingGroupFactory,
    CadreFactory,
    CommunityOrgFactory,
    EnterpriseFactory,
    GridBranchFactory,
    PartyMemberFactory,
    StationedCadreFactory,
    StreetCommitteeFactory,
)

pytestmark = pytest.mark.django_db

X, Y = ORIGIN
SHANGHAI = ZoneInfo("Asia/Shanghai")
AT = datetime(2026, 3, 16, 12, 0, tzinfo=SHANGHAI)
DAY = AT.date()

Kind = PartyOrganisation.Kind
Level = PartyOrganisation.Level


@dataclass
class IScene:
    street: Street
    a: Community
    e: Community
    a0: GridCell
    a1: GridCell
    a2: GridCell
    h1: Building
    a2_branch_parent: PartyOrganisation


def _user() -> User:
    return User.objects.get_or_create(username="indicator-events")[0]


def visit(building: Building, when: datetime, *, grid_cell: GridCell | None = None) -> Visit:
    """A visit naming `building`, counted in `grid_cell` (default: the building's cell today)."""
    return Visit.objects.create(
        id=uuid.uuid4(),
        occurred_at=when,
        reporter=_user(),
        reporter_name="测试网格员",
        place=building.point,
        community=building.community,
        grid_cell=grid_cell or building.grid_cell,
        building=building,
        kind=Visit.Kind.HOUSEHOLD,
        household="101室",
        payload_hash="x" * 64,
    )


def check_in(cadre: StationedCadre, when: datetime, *, on_site: bool = True) -> StationContact:
    return StationContact.objects.create(
        id=uuid.uuid4(),
        occurred_at=when,
        reporter=_user(),
        reporter_name=cadre.name,
        place=cadre.community.geom.point_on_surface,
        community=cadre.community,
        kind=StationContact.Kind.CHECK_IN,
        cadre=cadre,
        on_site=on_site,
        payload_hash="x" * 64,
    )


def gap(
    kind: str,
    community: Community,
    cell: GridCell | None,
    since: datetime,
    *,
    subject_id: int,
    resolved_at: datetime | None = None,
) -> Gap:
    return Gap.objects.create(
        kind=kind,
        subject_type="test",
        subject_id=subject_id,
        community=community,
        grid_cell=cell,
        geom=community.geom.point_on_surface,
        since=since,
        resolved_at=resolved_at,
        computed_at=since,
    )


def build_scene() -> IScene:
    street = StreetFactory(geom=multi(rect(X, Y, X + 0.06, Y + 0.01)))
    committee = StreetCommitteeFactory(street=street)
    a = CommunityFactory(street=street, geom=multi(rect(X, Y, X + 0.01, Y + 0.01)))
    e = CommunityFactory(street=street, geom=multi(rect(X + 0.05, Y, X + 0.06, Y + 0.01)))
    a_org = CommunityOrgFactory(community=a, parent=committee)

    h1 = BuildingFactory(community=a, geom=square(X + 0.001, Y + 0.001, 0.0003), households=10)
    h2 = BuildingFactory(community=a, geom=square(X + 0.002, Y + 0.004, 0.0003), households=20)
    h3 = BuildingFactory(community=a, geom=square(X + 0.007, Y + 0.002, 0.0003), households=30)
    shop = BuildingFactory(
        community=a, geom=square(X + 0.003, Y + 0.007, 0.0003), households=0, kind=Building.Kind.COMMERCIAL
    )
    a1 = GridCellFactory(community=a, boundary=rect(X, Y, X + 0.005, Y + 0.01))
    a2 = GridCellFactory(community=a, boundary=rect(X + 0.005, Y, X + 0.01, Y + 0.01))
    a0 = GridCellFactory(community=a)  # never drawn: not a current grid cell
    buildings_reassign()
    for b in (h1, h2, h3, shop):
        b.refresh_from_db()
    assert (h1.grid_cell, h2.grid_cell, h3.grid_cell, shop.grid_cell) == (a1, a1, a2, a1)

    # Grid branches: A1 has one, A2 none -> A: 1 of 2 current cells.
    a1_branch = GridBranchFactory(grid_cell=a1, parent=a_org)
    # h1: 3 residents and a group; h2: 3 residents, no group; h3: 1 resident.
    group_h1 = BuildingGroupFactory(buildings=[h1], parent=a1_branch)
    PartyMemberFactory(residence_building=h1, organisation=group_h1)
    PartyMemberFactory(residence_building=h1, organisation=a1_branch)
    PartyMemberFactory(residence_building=h1, organisation=group_h1, status=PartyMember.Status.PROBATIONARY)
    PartyMemberFactory(residence_building=h2, organisation=a1_branch)
    PartyMemberFactory(residence_building=h2, organisation=a1_branch)
    PartyMemberFactory(residence_building=h2, organisation=None)
    PartyMemberFactory(residence_building=h3, organisation=None)
    # No residence: reported to A (counts for A, no grid cell), attached to A's organisation.
    PartyMemberFactory(reported_community=a, organisation=a_org)
    # Placed nowhere else, so where their organisation sits: a resident unit's member living
    # outside the street (A, no grid cell) and one of A1's branch (A1).
    resident_unit = org_services.party_org_create(
        kind=Kind.RESIDENT_UNIT_ORG,
        level=Level.BRANCH,
        name="区税务局党支部",
        code="IND00003",
        street=street,
        parent=a_org,
        community=a,
        unit_name="区税务局",
    )
    PartyMemberFactory(organisation=resident_unit)
    PartyMemberFactory(organisation=a1_branch)

    # Enterprises: F1 own org at the shop (A1); F4 nothing (A1); F2 joint branch, F3 instructor (A2).
    f1 = EnterpriseFactory(name="自建公司", building=shop)
    f1_org = org_services.party_org_create(
        kind=Kind.ENTERPRISE_ORG,
        level=Level.BRANCH,
        name="自建公司党支部",
        code="IND00001",
        street=street,
        parent=a_org,
        premises=f1,
    )
    # Works at F1 and lives nowhere we know: placed at F1's building (A1), attached.
    PartyMemberFactory(work_enterprise=f1, organisation=f1_org)
    EnterpriseFactory(name="空白公司", point=Point(X + 0.004, Y + 0.009, srid=4326))
    joint = org_services.party_org_create(
        kind=Kind.JOINT_BRANCH,
        level=Level.BRANCH,
        name="联合党支部",
        code="IND00002",
        street=street,
        parent=a_org,
        community=a,
    )
    EnterpriseFactory(
        name="联建公司", point=Point(X + 0.006, Y + 0.008, srid=4326), covering_joint_branch=joint
    )
    EnterpriseFactory(
        name="指导员公司",
        point=Point(X + 0.007, Y + 0.008, srid=4326),
        instructor=CadreFactory(street=street),
    )
    assert Enterprise.objects.filter(community=a).count() == 4

    # Visits. The window starts at local midnight 60 days before the day: 2026-01-15 00:00.
    local = SHANGHAI
    visit(h1, AT - timedelta(days=10))
    visit(h2, datetime(2026, 1, 15, 8, 0, tzinfo=local))  # first morning of the window: counts
    visit(h3, datetime(2026, 1, 14, 23, 0, tzinfo=local))  # the evening before: does not
    # Made five days ago where h1's place then lay in A2 (before a redraw): h1 is visited (its
    # households count for A1, where it is today), the visit itself counts in A2.
    visit(h1, AT - timedelta(days=5), grid_cell=a2)

    # Stationed cadres of A: 8 + 10 days a month; by the 16th of 31 the pace asks 18 × 16/31.
    jan1 = date(2026, 1, 1)
    c1 = StationedCadreFactory(community=a, period_start=jan1, required_days_per_month=8)
    check_in(c1, datetime(2026, 3, 1, 0, 30, tzinfo=local))  # 1 March local (28 Feb in UTC)
    check_in(c1, datetime(2026, 3, 2, 9, 0, tzinfo=local))
    check_in(c1, datetime(2026, 3, 2, 15, 0, tzinfo=local))  # same day: one day
    check_in(c1, datetime(2026, 3, 3, 9, 0, tzinfo=local))
    check_in(c1, datetime(2026, 3, 5, 9, 0, tzinfo=local), on_site=False)  # off site: no
    check_in(c1, datetime(2026, 2, 28, 23, 30, tzinfo=local))  # last month: no
    c2 = StationedCadreFactory(community=a, period_start=jan1, required_days_per_month=10)
    for d in (4, 6, 9, 10):
        check_in(c2, datetime(2026, 3, d, 9, 0, tzinfo=local))
    ended = StationedCadreFactory(community=a, period_start=jan1, period_end=date(2026, 2, 28))
    check_in(ended, datetime(2026, 3, 2, 9, 0, tzinfo=local))  # posting over: not counted
    StationedCadreFactory(community=a, period_start=date(2026, 3, 20))  # not yet in post

    # Gaps (written directly: the recompute is tested in test_gaps_*). Ages in whole days.
    gap(Gap.Kind.GRID_WITHOUT_BRANCH, a, a2, AT - timedelta(days=10), subject_id=1)
    gap(Gap.Kind.BUILDING_WITHOUT_GROUP, a, a1, AT - timedelta(days=4), subject_id=2)
    gap(Gap.Kind.MEMBER_UNATTACHED, a, a1, AT - timedelta(days=2), subject_id=3)
    gap(Gap.Kind.MEMBER_UNATTACHED, a, a2, AT - timedelta(days=30), subject_id=4)
    gap(Gap.Kind.AREA_NOT_GRIDDED, a, None, AT - timedelta(days=1), subject_id=5)
    # Closed three days ago: not open today, open five days ago.
    gap(
        Gap.Kind.MEMBER_UNATTACHED,
        a,
        a1,
        AT - timedelta(days=20),
        subject_id=6,
        resolved_at=AT - timedelta(days=3),
    )
    return IScene(street, a, e, a0, a1, a2, h1, a_org)


@pytest.fixture
def iscene() -> IScene:
    return build_scene()


def unit_of(obj: Street | Community | GridCell) -> indicators.IndicatorUnit:
    from grid.access import Reach

    return indicators.indicator_unit_get(
        reach=Reach(everything=True, roles=frozenset({"street_admin"})), code=obj.code
    )


def rate(value: float | None, numerator: float, denominator: float) -> dict[str, Any]:
    return {"value": value, "numerator": numerator, "denominator": denominator}


NULL = rate(None, 0, 0)

EXPECTED_A1 = {
    "enterprise_org_coverage": rate(0.5, 1, 2),
    "enterprise_work_coverage": rate(0.5, 1, 2),
    "enterprise_own_org_rate": rate(0.5, 1, 2),
    "grid_branch_coverage": rate(1, 1, 1),
    "building_group_coverage": rate(0.5, 1, 2),
    "member_management_rate": rate(0.875, 7, 8),
    "household_visit_coverage": rate(1, 30, 30),
    "cadre_attendance": NULL,  # cadres serve the community, not a grid cell
    "visits_in_window": 2,
    "open_gaps": {
        "open": 2,
        "median_age_days": 3.0,
        "by_kind": {
            "building_without_group": {"open": 1, "median_age_days": 4.0},
            "member_unattached": {"open": 1, "median_age_days": 2.0},
        },
    },
}
EXPECTED_A2 = {
    "enterprise_org_coverage": rate(0.5, 1, 2),
    "enterprise_work_coverage": rate(1, 2, 2),
    "enterprise_own_org_rate": rate(0, 0, 2),
    "grid_branch_coverage": rate(0, 0, 1),
    "building_group_coverage": NULL,  # no building with 3 residents
    "member_management_rate": rate(0, 0, 1),
    "household_visit_coverage": rate(0, 0, 30),
    "cadre_attendance": NULL,
    "visits_in_window": 1,
    "open_gaps": {
        "open": 2,
        "median_age_days": 20.0,
        "by_kind": {
            "grid_without_branch": {"open": 1, "median_age_days": 10.0},
            "member_unattached": {"open": 1, "median_age_days": 30.0},
        },
    },
}
EXPECTED_A = {
    "enterprise_org_coverage": rate(0.5, 2, 4),
    "enterprise_work_coverage": rate(0.75, 3, 4),
    "enterprise_own_org_rate": rate(0.25, 1, 4),
    "grid_branch_coverage": rate(0.5, 1, 2),  # A0 has no boundary: not current
    "building_group_coverage": rate(0.5, 1, 2),
    "member_management_rate": rate(0.8182, 9, 11),
    "household_visit_coverage": rate(0.5, 30, 60),
    # 3 + 4 on-site days / (8 + 10) × 15/31 (days of March over by the 16th) = 8.71 required so far
    "cadre_attendance": rate(0.8037, 7, 8.71),
    "visits_in_window": 3,
    "open_gaps": {
        "open": 5,
        "median_age_days": 4.0,  # 1, 2, 4, 10, 30
        "by_kind": {
            "area_not_gridded": {"open": 1, "median_age_days": 1.0},
            "building_without_group": {"open": 1, "median_age_days": 4.0},
            "grid_without_branch": {"open": 1, "median_age_days": 10.0},
            "member_unattached": {"open": 2, "median_age_days": 16.0},
        },
    },
}
EXPECTED_EMPTY = indicators.empty_figures()


def test_every_indicator_of_a_grid_cell_community_and_street(iscene):
    w = iscene
    assert indicators.indicators_compute(unit=unit_of(w.a1), at=AT) == EXPECTED_A1
    assert indicators.indicators_compute(unit=unit_of(w.a2), at=AT) == EXPECTED_A2
    assert indicators.indicators_compute(unit=unit_of(w.a), at=AT) == EXPECTED_A
    # The street is A plus the empty E: the same figures.
    assert indicators.indicators_compute(unit=unit_of(w.street), at=AT) == EXPECTED_A


def test_an_empty_community_has_null_rates_not_a_division_by_zero(iscene):
    figures = indicators.indicators_compute(unit=unit_of(iscene.e), at=AT)
    assert figures == EXPECTED_EMPTY
    assert all(
        figures[key]["value"] is None and figures[key]["denominator"] == 0 for key in indicators.FORMULAS
    )


def test_a_grid_cell_without_a_boundary_is_computed_when_asked(iscene):
    figures = indicators.indicators_compute(unit=unit_of(iscene.a0), at=AT)
    assert figures == EXPECTED_EMPTY


def test_gap_ages_and_openness_are_read_from_history_for_an_earlier_day(iscene):
    """Five days before AT: the gap closed three days ago was open, those found since were not."""
    at = AT - timedelta(days=5)
    gaps = indicators.indicators_compute(unit=unit_of(iscene.a), at=at)["open_gaps"]
    # grid_without_branch found 16 March - 10 = 6 March: 5 days; member gaps 30 and 20 days old.
    assert gaps == {
        "open": 3,
        "median_age_days": 15.0,
        "by_kind": {
            "grid_without_branch": {"open": 1, "median_age_days": 5.0},
            "member_unattached": {"open": 2, "median_age_days": 20.0},
        },
    }


def _snapshot_rows() -> list[tuple]:
    return list(
        IndicatorSnapshot.objects.order_by("id").values_list(
            "id", "unit_type", "unit_id", "unit_code", "day", "figures", "computed_at"
        )
    )


def test_snapshot_writes_every_unit_once_and_a_rerun_changes_nothing(iscene, django_assert_max_num_queries):
    w = iscene
    with django_assert_max_num_queries(6):
        counts = indicators.indicator_snapshots_take(day=DAY, at=AT)
    # S, A, E, A1, A2 (A0 is not current).
    assert counts == {"communities": 2, "units": 5, "written": 5}
    rows = _snapshot_rows()
    assert {(r[1], r[3]) for r in rows} == {
        ("street", w.street.code),
        ("community", w.a.code),
        ("community", w.e.code),
        ("grid_cell", w.a1.code),
        ("grid_cell", w.a2.code),
    }
    by_code = {r[3]: r for r in rows}
    assert by_code[w.a1.code][5] == EXPECTED_A1
    assert by_code[w.a.code][5] == EXPECTED_A
    assert by_code[w.e.code][5] == EXPECTED_EMPTY
    assert {r[6] for r in rows} == {AT}

    # Again, later the same day, nothing changed: no row written, not even computed_at.
    again = indicators.indicator_snapshots_take(day=DAY, at=AT + timedelta(hours=1))
    assert again == {"communities": 2, "units": 5, "written": 0}
    assert _snapshot_rows() == rows


def test_a_rerun_after_a_change_updates_the_days_rows_in_place(iscene):
    w = iscene
    indicators.indicator_snapshots_take(day=DAY, at=AT)
    before = {r[3]: r for r in _snapshot_rows()}
    GridBranchFactory(grid_cell=w.a2, parent=w.a2_branch_parent)
    later = AT + timedelta(hours=2)
    counts = indicators.indicator_snapshots_take(day=DAY, at=later)
    # A2, A and S change; E and A1 do not.
    assert counts["written"] == 3
    after = {r[3]: r for r in _snapshot_rows()}
    assert {code: r[0] for code, r in after.items()} == {code: r[0] for code, r in before.items()}
    assert after[w.a2.code][5]["grid_branch_coverage"] == rate(1, 1, 1)
    assert after[w.a.code][5]["grid_branch_coverage"] == rate(1, 2, 2)
    assert after[w.a2.code][6] == later
    assert after[w.a1.code][6] == AT


def test_snapshot_of_some_streets_only(iscene):
    other = StreetFactory(geom=multi(rect(X + 0.1, Y, X + 0.11, Y + 0.01)))
    CommunityFactory(street=other, geom=multi(rect(X + 0.1, Y, X + 0.11, Y + 0.01)))
    counts = indicators.indicator_snapshots_take(day=DAY, street_ids=[other.pk], at=AT)
    assert counts == {"communities": 1, "units": 2, "written": 2}
    assert set(IndicatorSnapshot.objects.values_list("unit_code", flat=True)) == {
        other.code,
        Community.objects.get(street=other).code,
    }
    assert indicators.indicator_snapshots_take(day=DAY, street_ids=[], at=AT)["written"] == 0


def test_history_over_several_days(iscene):
    w = iscene
    for back in (3, 2, 1, 0):
        indicators.indicator_snapshots_take(day=DAY - timedelta(days=back), at=AT - timedelta(days=back))
    unit = unit_of(w.a)
    history = indicators.indicator_history(unit=unit, date_from=DAY - timedelta(days=2), date_to=DAY)
    assert [s.day for s in history] == [DAY - timedelta(days=2), DAY - timedelta(days=1), DAY]
    # The trend, each day as its snapshot saw it: the gap closed on AT - 3 days is gone from all
    # three; the area gap found on AT - 1 day joins the four open on AT - 2.
    assert [s.figures["open_gaps"]["open"] for s in history] == [4, 5, 5]
    assert history[-1].figures == EXPECTED_A
    assert IndicatorSnapshot.objects.filter(unit_type="community", unit_id=w.a.pk).count() == 4
