"""Every orgs service that changes what a community holds says so once (grid.changes): the data
versions of exactly the communities touched go up, and after the commit the listeners (the gap
recompute) hear of them in one call."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest
from django.test import override_settings

from grid.models import Community
from orgs import services
from orgs.errors import OrgError
from tests.orgs_factories import (
    CadreFactory,
    EnterpriseFactory,
    GridWorkerFactory,
    PartyMemberFactory,
    StationedCadreFactory,
    community_org_for,
    grid_branch_for,
    street_committee_for,
)

pytestmark = pytest.mark.django_db

HEARD: list[list[int]] = []


def listener(*, community_ids: list[int]) -> None:
    HEARD.append(community_ids)


def _versions() -> dict[int, int]:
    return dict(Community.objects.values_list("pk", "data_version"))


def _changed(
    write: Callable[[], object], django_capture_on_commit_callbacks
) -> tuple[set[int], list[list[int]]]:
    """The communities whose version `write` bumped, and what the listener heard after commit."""
    HEARD.clear()
    before = _versions()
    with override_settings(WANGGE_CHANGE_LISTENERS=[f"{__name__}.listener"]):
        with django_capture_on_commit_callbacks(execute=True):
            write()
    after = _versions()
    return {pk for pk in after if after[pk] != before.get(pk)}, list(HEARD)


def test_organisation_writes_name_their_communities(space, django_capture_on_commit_callbacks):
    s = space
    org_a = community_org_for(s.a)
    bumped, heard = _changed(lambda: grid_branch_for(s.a1), django_capture_on_commit_callbacks)
    assert bumped == {s.a.pk} and heard == [[s.a.pk]]
    # The working committee answers for every community of its street (兜底).
    committee = street_committee_for(s.street)
    bumped, heard = _changed(
        lambda: services.party_org_update(org=committee, name="新名称"), django_capture_on_commit_callbacks
    )
    assert bumped == {s.a.pk, s.b.pk} and heard == [sorted([s.a.pk, s.b.pk])]
    bumped, heard = _changed(
        lambda: services.party_org_flag_weak(org=org_a, flagged_on=date(2024, 1, 1), reasons="x"),
        django_capture_on_commit_callbacks,
    )
    assert bumped == {s.a.pk} and len(heard) == 1
    bumped, heard = _changed(
        lambda: services.star_rating_record(
            org=org_a, year=2024, score=Decimal(90), satisfaction_score=Decimal(90)
        ),
        django_capture_on_commit_callbacks,
    )
    assert bumped == {s.a.pk} and len(heard) == 1


def test_people_and_enterprise_writes_name_the_communities_before_and_after(
    space, django_capture_on_commit_callbacks
):
    s = space
    member = PartyMemberFactory(residence_building=s.house_a1)
    bumped, heard = _changed(
        lambda: services.party_member_update(member=member, residence_building=s.house_b1),
        django_capture_on_commit_callbacks,
    )
    assert bumped == {s.a.pk, s.b.pk} and heard == [sorted([s.a.pk, s.b.pk])]

    worker = GridWorkerFactory(community=s.a)
    bumped, heard = _changed(
        lambda: services.grid_worker_update(worker=worker, community=s.b, grid_cells=[s.b1]),
        django_capture_on_commit_callbacks,
    )
    assert bumped == {s.a.pk, s.b.pk} and len(heard) == 1

    enterprise = EnterpriseFactory(community=s.a)
    bumped, heard = _changed(
        lambda: services.enterprise_update(enterprise=enterprise, point=s.b.geom.point_on_surface),
        django_capture_on_commit_callbacks,
    )
    assert bumped == {s.a.pk, s.b.pk} and len(heard) == 1

    posting = StationedCadreFactory(community=s.b)
    bumped, heard = _changed(
        lambda: services.stationed_cadre_delete(cadre=posting), django_capture_on_commit_callbacks
    )
    assert bumped == {s.b.pk} and len(heard) == 1


def test_a_refused_write_bumps_nothing_and_tells_no_one(space, django_capture_on_commit_callbacks):
    org_a = community_org_for(space.a)  # not enlarged
    before = _versions()
    HEARD.clear()
    with override_settings(WANGGE_CHANGE_LISTENERS=[f"{__name__}.listener"]):
        with django_capture_on_commit_callbacks(execute=True), pytest.raises(OrgError):
            services.committee_seat_create(org=org_a, person_name="甲")
    assert _versions() == before and HEARD == []


def test_a_street_official_is_data_of_no_community(space, django_capture_on_commit_callbacks):
    cadre = CadreFactory(street=space.street)
    bumped, heard = _changed(
        lambda: services.cadre_update(cadre=cadre, unit_name="组织办"), django_capture_on_commit_callbacks
    )
    assert bumped == set() and heard == []
