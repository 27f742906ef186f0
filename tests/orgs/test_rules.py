"""Each rule: a case that triggers it, one that does not, thresholds from settings.WANGGE_RULES."""

from datetime import date

import pytest

from orgs import services
from orgs.models import PartyMember
from orgs.rules import rules_check
from tests.factories import StreetFactory
from tests.orgs_factories import (
    CadreFactory,
    CommitteeSeatFactory,
    EnterpriseFactory,
    GridWorkerFactory,
    community_org_for,
    grid_branch_for,
    street_committee_for,
)

TODAY = date(2025, 6, 1)


def _members(org=None, *, full=0, probationary=0, enterprise=None):
    PartyMember.objects.bulk_create(
        [
            PartyMember(
                name=f"党员{i}", gender="male", status="full", organisation=org, work_enterprise=enterprise
            )
            for i in range(full)
        ]
        + [
            PartyMember(
                name=f"预备{i}",
                gender="female",
                status="probationary",
                organisation=org,
                work_enterprise=enterprise,
            )
            for i in range(probationary)
        ]
    )


def _codes(violations, subject_id, subject_type="org"):
    return {v.rule_code for v in violations if v.subject_id == subject_id and v.subject_type == subject_type}


def _one(violations, code, subject_id):
    found = [v for v in violations if v.rule_code == code and v.subject_id == subject_id]
    assert len(found) == 1, violations
    return found[0]


@pytest.mark.django_db
def test_branch_needs_three_full_members(space):
    small, ok = grid_branch_for(space.a1), grid_branch_for(space.a2)
    _members(small, full=2, probationary=3)
    _members(ok, full=3)
    found = rules_check(street=space.street, today=TODAY)
    v = _one(found, "org_too_few_full_members", small.pk)
    assert v.detail["full_members"] == 2 and v.responsible_org_id == small.parent_id
    assert "正式党员2名" in v.message
    assert "org_too_few_full_members" not in _codes(found, ok.pk)


@pytest.mark.django_db
def test_member_count_suggests_a_higher_level_and_far_below_is_small_horse(space, settings):
    big, huge = grid_branch_for(space.a1), grid_branch_for(space.a2)
    _members(big, full=50)
    _members(huge, full=100)
    found = rules_check(street=space.street, today=TODAY)
    assert _one(found, "org_level_below_size", big.pk).detail["suggested_level"] == "general_branch"
    v = _one(found, "org_level_far_below_size", huge.pk)
    assert "小马拉大车" in v.message and v.detail["suggested_level"] == "committee"
    # The community org counts its whole subtree (150 members) and is a 党委 already: no suggestion.
    org_a = community_org_for(space.a)
    assert not _codes(found, org_a.pk) & {"org_level_below_size", "org_level_far_below_size"}

    settings.WANGGE_RULES = {**settings.WANGGE_RULES, "general_branch_members": 60}
    found = rules_check(street=space.street, today=TODAY)
    assert not _codes(found, big.pk) & {"org_level_below_size", "org_level_far_below_size"}


@pytest.mark.django_db
def test_term_reminders_at_90_and_30_days_and_overdue(space):
    orgs = {
        "far": grid_branch_for(space.a1),  # ends in 200 days
        "d90": grid_branch_for(space.a2),  # ends in 60 days
        "d30": community_org_for(space.b),  # 5-year term, ends in 20 days
        "late": grid_branch_for(space.b1),  # ended 10 days ago
    }
    starts = {
        "far": date(2022, 12, 18),
        "d90": date(2022, 7, 31),
        "d30": date(2020, 6, 21),
        "late": date(2022, 5, 22),
    }
    for key, org in orgs.items():
        services.party_org_update(org=org, term_started_on=starts[key])
    found = rules_check(street=space.street, today=TODAY)
    assert not _codes(found, orgs["far"].pk) & {"org_term_expiring", "org_term_overdue"}
    assert _one(found, "org_term_expiring", orgs["d90"].pk).detail == {
        "term_ends_on": date(2025, 7, 31),
        "days_left": 60,
        "term_years": 3,
        "window_days": 90,
    }
    assert _one(found, "org_term_expiring", orgs["d30"].pk).detail["window_days"] == 30
    late = _one(found, "org_term_overdue", orgs["late"].pk)
    assert late.detail["days_left"] == -10 and "逾期10天" in late.message
    # A later "today" moves the far one into the 90-day window.
    assert "org_term_expiring" in _codes(
        rules_check(street=space.street, today=date(2025, 10, 1)), orgs["far"].pk
    )


@pytest.mark.django_db
def test_big_working_committee_size_and_resident_unit_share(space):
    committee = street_committee_for(space.street)
    services.party_org_update(org=committee, is_enlarged=True)
    committee.refresh_from_db()
    for i in range(8):
        CommitteeSeatFactory(org=committee, is_resident_unit_head=i < 3)
    found = rules_check(street=space.street, today=TODAY)
    assert _one(found, "big_working_committee_size", committee.pk).detail["seats"] == 8
    assert "big_working_committee_resident_share" not in _codes(found, committee.pk)

    CommitteeSeatFactory(org=committee, is_resident_unit_head=False)
    CommitteeSeatFactory(org=committee, is_resident_unit_head=False)  # 10 seats, 3 heads < 1/3
    found = rules_check(street=space.street, today=TODAY)
    assert "big_working_committee_size" not in _codes(found, committee.pk)
    assert (
        _one(found, "big_working_committee_resident_share", committee.pk).detail["resident_unit_heads"] == 3
    )


@pytest.mark.django_db
def test_big_party_committee_size(space):
    org_a = community_org_for(space.a)
    services.party_org_update(org=org_a, is_enlarged=True)
    org_a.refresh_from_db()
    for _ in range(6):
        CommitteeSeatFactory(org=org_a)
    assert "big_party_committee_size" in _codes(rules_check(street=space.street, today=TODAY), org_a.pk)
    CommitteeSeatFactory(org=org_a)
    assert "big_party_committee_size" not in _codes(rules_check(street=space.street, today=TODAY), org_a.pk)


@pytest.mark.django_db
def test_community_staffing(space, settings):
    org_a = community_org_for(space.a)
    for _ in range(4):
        GridWorkerFactory(community=space.a)
    GridWorkerFactory(community=space.a, full_time=False)
    for _ in range(5):
        GridWorkerFactory(community=space.b)
    found = rules_check(street=space.street, today=TODAY)
    v = _one(found, "community_staffing_short", space.a.pk)
    assert v.detail == {"residents": 3000, "full_time_workers": 4, "required": 5}
    assert v.responsible_org_id == org_a.pk
    assert "community_staffing_short" not in _codes(found, space.b.pk, "community")

    space.b.residents = 7200  # one per 1,000 residents: 8 needed
    space.b.save(update_fields=["residents"])
    found = rules_check(street=space.street, today=TODAY)
    assert _one(found, "community_staffing_short", space.b.pk).detail["required"] == 8
    # No community org in B: the street committee answers (兜底) — only when it exists.
    street_committee_for(space.street)
    v = _one(rules_check(street=space.street, today=TODAY), "community_staffing_short", space.b.pk)
    assert v.responsible_org_name.endswith("（兜底）")

    settings.WANGGE_RULES = {**settings.WANGGE_RULES, "min_fulltime_workers_per_community": 4}
    assert "community_staffing_short" not in _codes(
        rules_check(street=space.street, today=TODAY), space.a.pk, "community"
    )


@pytest.mark.django_db
def test_enterprises_without_own_org(space):
    org_a = community_org_for(space.a)
    big = EnterpriseFactory(community=space.a)
    small = EnterpriseFactory(community=space.a)
    instructed = EnterpriseFactory(community=space.a, instructor=CadreFactory(street=space.street))
    owning = EnterpriseFactory(community=space.a)
    _members(full=3, enterprise=big)
    _members(full=2, probationary=2, enterprise=small)
    _members(full=1, enterprise=instructed)
    _members(full=4, enterprise=owning)
    services.party_org_create(
        kind="enterprise_org", level="branch", name="企业支部", code="EO1", parent=org_a, premises=owning
    )

    found = rules_check(street=space.street, today=TODAY)
    v = _one(found, "enterprise_needs_own_org", big.pk)
    assert v.responsible_org_id == org_a.pk and v.detail["full_members"] == 3
    assert _codes(found, small.pk, "enterprise") == {"enterprise_uncovered"}
    assert _codes(found, instructed.pk, "enterprise") == set()
    assert _codes(found, owning.pk, "enterprise") == set()


@pytest.mark.django_db
def test_rules_check_scopes_by_street(space):
    other = community_org_for(space.a)
    _members(other, full=1)
    assert rules_check(street=StreetFactory(), today=TODAY) == []
    assert any(v.subject_id == other.pk for v in rules_check(today=TODAY))
