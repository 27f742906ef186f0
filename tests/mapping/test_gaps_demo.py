"""The demo street's deliberate gaps (data/demo_orgs.py, data/demo_events.py) are all found.

The module fixture builds the demo scale once inside a transaction rolled back at the end (as
tests/data/test_make_demo_orgs.py does), regenerates the same data set in memory to learn where
the deliberate gaps are (the generator is deterministic for a seed and a day), and recomputes.
TODAY is the last day of a month: the cadre pace then asks for 80 % of the month's days, which the
deliberately idle cadre (half the required days) misses and every other cadre meets.
"""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import transaction

from data import demo_events, demo_orgs, demo_space
from data.demo import demo_build
from grid.models import Building, GridCell
from mapping.models import Gap
from mapping.services import gaps_recompute
from orgs import pii
from orgs.models import Enterprise, PartyMember, StationedCadre

SEED = 7
TODAY = date(2026, 3, 31)
AT = datetime.combine(TODAY, time(12), tzinfo=ZoneInfo("Asia/Shanghai"))
K = Gap.Kind
pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        demo_build(scale="demo", seed=SEED, today=TODAY)
        space = demo_space.build_space(scale="demo", seed=SEED)
        orgs = demo_orgs.build_orgs(space=space, today=TODAY, rules=settings.WANGGE_RULES)
        events = demo_events.build_events(space=space, orgs=orgs, today=TODAY)
        counts = gaps_recompute(community_ids=None, at=AT)
        again = gaps_recompute(community_ids=None, at=AT)
        yield {"deliberate": orgs.deliberate, "events": events, "counts": counts, "again": again}
        transaction.set_rollback(True)


def open_subjects(kind: str) -> set[int]:
    return set(Gap.objects.filter(kind=kind, resolved_at__isnull=True).values_list("subject_id", flat=True))


def ids(model, field: str, values) -> set[int]:
    found = dict(model.objects.filter(**{f"{field}__in": list(values)}).values_list(field, "id"))
    assert set(found) == set(values), "the deliberate subjects are in the database"
    return set(found.values())


def test_grid_gaps_are_exactly_the_deliberate_ones(demo):
    d = demo["deliberate"]
    assert d["grids_without_branch"] and d["grids_without_worker"]
    assert open_subjects(K.GRID_WITHOUT_BRANCH) == ids(GridCell, "code", d["grids_without_branch"])
    assert open_subjects(K.GRID_WITHOUT_WORKER) == ids(GridCell, "code", d["grids_without_worker"])
    # Grids without a worker get no visits at all: under any visit rate.
    assert ids(GridCell, "code", d["grids_without_worker"]) <= open_subjects(K.GRID_LOW_VISIT_RATE)


def test_building_and_member_gaps_include_the_deliberate_ones(demo):
    d = demo["deliberate"]
    assert ids(Building, "code", d["buildings_without_group"]) <= open_subjects(K.BUILDING_WITHOUT_GROUP)
    unattached = ids(PartyMember, "id_number_hash", [pii.id_number_hash(n) for n in d["members_without_org"]])
    assert unattached == open_subjects(K.MEMBER_UNATTACHED)
    lost = set(PartyMember.objects.filter(category="lost_contact").values_list("id", flat=True))
    assert lost and lost == open_subjects(K.MEMBER_LOST_CONTACT)


def test_enterprise_gaps_are_exactly_the_deliberate_ones(demo):
    d = demo["deliberate"]
    assert open_subjects(K.ENTERPRISE_SHOULD_FORM_ORG) == ids(Enterprise, "credit_code", d["enterprises_needs_org"])
    assert open_subjects(K.ENTERPRISE_UNCOVERED) == ids(Enterprise, "credit_code", d["enterprises_uncovered"])


def test_visit_gaps_are_exactly_the_buildings_left_unvisited(demo):
    events = demo["events"]
    assert events.unvisited_buildings and events.neglected_grids
    assert open_subjects(K.BUILDING_UNVISITED) == ids(Building, "code", events.unvisited_buildings)
    # Every neglected grid shows its unvisited buildings.
    neglected = ids(GridCell, "code", events.neglected_grids)
    with_unvisited = set(
        Gap.objects.filter(kind=K.BUILDING_UNVISITED, grid_cell__in=neglected).values_list("grid_cell", flat=True)
    )
    assert with_unvisited == neglected


def test_the_idle_cadres_are_found_and_no_other(demo):
    below = demo["events"].cadres_below
    assert below
    idle = {
        StationedCadre.objects.get(community__code=code, name=name).id for code, name in below
    }
    assert open_subjects(K.CADRE_SHORT_OF_DAYS) == idle


def test_the_demo_street_is_a_clean_partition_and_a_second_run_changes_nothing(demo):
    assert not Gap.objects.filter(kind__in=[K.AREA_NOT_GRIDDED, K.AREA_MULTI_GRIDDED]).exists()
    assert demo["again"]["opened"] == 0 and demo["again"]["resolved"] == 0
    assert demo["again"]["still_open"] == demo["counts"]["opened"] == Gap.objects.count()
