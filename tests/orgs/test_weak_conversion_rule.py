"""软弱涣散党组织转化率 ≥ 90% per street, over the rectifications flagged in the last three years
that are due (converted, or open for more than a year); the street working committee answers for
a street below the target."""

from datetime import date

import pytest

from orgs.models import Rectification
from orgs.rules import rules_check
from tests.orgs_factories import community_org_for, grid_branch_for, street_committee_for

TODAY = date(2025, 6, 1)
pytestmark = pytest.mark.django_db


def _rectify(org, flagged_on: date, converted_on: date | None) -> None:
    # Set up history directly: several closed spells of one organisation are allowed, one open one.
    Rectification.objects.create(
        org=org, flagged_on=flagged_on, reasons="软弱涣散", converted_on=converted_on
    )


def _conversion(violations):
    return [v for v in violations if v.rule_code == "weak_org_conversion_low"]


@pytest.fixture
def orgs(space):
    return {
        "committee": street_committee_for(space.street),
        "a": community_org_for(space.a),
        "a1": grid_branch_for(space.a1),
        "b1": grid_branch_for(space.b1),
    }


def test_a_street_below_ninety_percent_is_flagged_to_its_working_committee(space, orgs, settings):
    # 10 due in the window, 8 converted by TODAY (80 %): below the target.
    for i in range(8):
        _rectify(orgs["a1"], date(2023, 1, 1 + i), date(2023, 6, 1 + i))
    _rectify(orgs["b1"], date(2024, 3, 1), None)
    _rectify(orgs["a"], date(2024, 3, 1), date(2025, 9, 1))  # converted after TODAY: not yet
    # Flagged three months ago, still in its rectification period: not counted yet.
    _rectify(orgs["a1"], date(2025, 3, 1), None)
    (v,) = _conversion(rules_check(street=space.street, today=TODAY))
    assert (v.subject_type, v.subject_id, v.responsible_org_id) == (
        "org",
        orgs["committee"].pk,
        orgs["committee"].pk,
    )
    assert v.detail["flagged"] == 10 and v.detail["converted"] == 8 and v.detail["rate"] == 0.8
    assert v.detail["window_years"] == 3 and v.detail["since"] == date(2022, 6, 1)
    assert v.detail["due_days"] == 365
    assert "80%" in v.message and "90%" in v.message
    # The target comes from settings.
    settings.WANGGE_RULES = {**settings.WANGGE_RULES, "weak_org_conversion_target": 0.8}
    assert _conversion(rules_check(street=space.street, today=TODAY)) == []


def test_a_street_at_the_target_or_with_old_failures_only_is_not_flagged(space, orgs):
    # Exactly 90 % in the window.
    for i in range(9):
        _rectify(orgs["a1"], date(2024, 1, 1 + i), date(2024, 6, 1 + i))
    _rectify(orgs["b1"], date(2024, 3, 1), None)
    # Flagged four years ago and never converted: outside the three-year window.
    _rectify(orgs["a"], date(2021, 3, 1), None)
    assert _conversion(rules_check(street=space.street, today=TODAY)) == []


def test_a_street_with_no_rectifications_has_no_rate(space, orgs):
    assert _conversion(rules_check(street=space.street, today=TODAY)) == []
