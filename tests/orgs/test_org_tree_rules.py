"""The organisation tree agrees with space: the database refuses what a row can say, the service
refuses what spans rows, each with a stable code and nothing written."""

import pytest
from django.db import IntegrityError, transaction

from orgs import services
from orgs.errors import AttachmentInvalid, OrgError, TreeMismatch
from orgs.models import PartyOrganisation
from tests.orgs_factories import (
    BuildingGroupFactory,
    GridBranchFactory,
    community_org_for,
    grid_branch_for,
    street_committee_for,
)

Kind = PartyOrganisation.Kind
Level = PartyOrganisation.Level


@pytest.mark.django_db
def test_a_tree_that_follows_space_is_accepted(space):
    committee = street_committee_for(space.street)
    org_a = community_org_for(space.a)
    branch = GridBranchFactory(grid_cell=space.a1)
    group = BuildingGroupFactory(buildings=[space.house_a1])

    assert org_a.parent == committee and org_a.street == space.street
    assert branch.parent == org_a
    assert group.parent == branch and list(group.buildings.all()) == [space.house_a1]
    assert org_a.term_years == 5 and branch.term_years == 3  # defaults from settings.WANGGE_RULES


@pytest.mark.django_db
def test_grid_branch_without_a_grid_is_refused_by_service_and_database(space):
    org_a = community_org_for(space.a)
    before = PartyOrganisation.objects.count()

    with pytest.raises(AttachmentInvalid) as err:
        services.party_org_create(
            kind=Kind.GRID_BRANCH, level=Level.BRANCH, name="无网格支部", code="X1", parent=org_a
        )
    assert err.value.code == "org_grid_cell_required"
    assert PartyOrganisation.objects.count() == before

    # Even around the service, the CHECK constraint holds.
    with pytest.raises(IntegrityError), transaction.atomic():
        PartyOrganisation.objects.create(
            kind=Kind.GRID_BRANCH,
            level=Level.BRANCH,
            name="绕过",
            code="X2",
            parent=org_a,
            street=space.street,
            term_years=3,
        )
    assert PartyOrganisation.objects.count() == before


@pytest.mark.django_db
def test_grid_branch_on_another_communitys_grid_is_refused_and_nothing_written(space):
    org_a = community_org_for(space.a)
    before = PartyOrganisation.objects.count()

    with pytest.raises(TreeMismatch) as err:
        services.party_org_create(
            kind=Kind.GRID_BRANCH,
            level=Level.BRANCH,
            name="错挂支部",
            code="X3",
            parent=org_a,
            grid_cell=space.b1,
        )

    assert err.value.code == "org_grid_outside_parent_community"
    assert "不在上级社区党组织所在社区内" in err.value.message
    assert PartyOrganisation.objects.count() == before
    assert not PartyOrganisation.objects.filter(code="X3").exists()


@pytest.mark.django_db
def test_building_group_with_a_building_of_another_grid_is_refused(space):
    branch = grid_branch_for(space.a1)
    before = PartyOrganisation.objects.count()

    with pytest.raises(TreeMismatch) as err:
        services.party_org_create(
            kind=Kind.BUILDING_GROUP,
            level=Level.GROUP,
            name="跨网格小组",
            code="X4",
            parent=branch,
            buildings=[space.house_a1, space.house_a2],
        )

    assert err.value.code == "org_buildings_outside_parent_grid"
    assert err.value.detail["buildings"] == [space.house_a2.code]
    assert PartyOrganisation.objects.count() == before


@pytest.mark.django_db
def test_building_group_needs_buildings(space):
    branch = grid_branch_for(space.a1)
    with pytest.raises(AttachmentInvalid) as err:
        services.party_org_create(
            kind=Kind.BUILDING_GROUP, level=Level.GROUP, name="空小组", code="X5", parent=branch
        )
    assert err.value.code == "org_buildings_required"


@pytest.mark.django_db
def test_parent_kind_and_root_rules(space):
    committee = street_committee_for(space.street)
    with pytest.raises(TreeMismatch) as err:
        services.party_org_create(
            kind=Kind.GRID_BRANCH,
            level=Level.BRANCH,
            name="越级支部",
            code="X6",
            parent=committee,
            grid_cell=space.a1,
        )
    assert err.value.code == "org_parent_kind"

    with pytest.raises(OrgError) as err:
        services.party_org_create(
            kind=Kind.STREET_COMMITTEE,
            level=Level.WORKING_COMMITTEE,
            name="第二个党工委",
            code="X7",
            street=space.street,
        )
    assert err.value.code == "org_street_committee_exists"

    with pytest.raises(IntegrityError), transaction.atomic():
        PartyOrganisation.objects.create(
            kind=Kind.COMMUNITY_ORG,
            level=Level.COMMITTEE,
            name="无上级",
            code="X8",
            street=space.street,
            community=space.b,
            term_years=5,
        )


@pytest.mark.django_db
def test_grid_branch_may_not_take_the_community_column(space):
    org_a = community_org_for(space.a)
    with pytest.raises(AttachmentInvalid) as err:
        services.party_org_create(
            kind=Kind.GRID_BRANCH,
            level=Level.BRANCH,
            name="多挂接",
            code="X9",
            parent=org_a,
            grid_cell=space.a1,
            community=space.a,
        )
    assert err.value.code == "org_attachment_extra"


@pytest.mark.django_db
def test_one_branch_per_grid(space):
    grid_branch_for(space.a1)
    with pytest.raises(OrgError) as err:
        GridBranchFactory(grid_cell=space.a1)
    assert err.value.code == "org_grid_taken"


@pytest.mark.django_db
def test_moving_a_community_org_away_from_its_branches_is_refused(space):
    org_a = community_org_for(space.a)
    grid_branch_for(space.a1)

    with pytest.raises(TreeMismatch) as err:
        services.party_org_update(org=org_a, community=space.b)

    assert err.value.code == "org_children_outside_community"
    org_a.refresh_from_db()
    assert org_a.community == space.a


@pytest.mark.django_db
def test_update_keeps_agreement_and_writes(space):
    branch = grid_branch_for(space.a1)
    services.party_org_update(org=branch, grid_cell=space.a2, name="改挂支部")
    branch.refresh_from_db()
    assert branch.grid_cell == space.a2 and branch.name == "改挂支部"


@pytest.mark.django_db
def test_the_whole_street_check_finds_what_the_service_would_refuse(space):
    """orgs.sql.org_tree_violations, for bulk writers that bypass the per-row service (the demo
    generator): zero on a tree built through the service, and it names each rule a row written
    around the service breaks."""
    from orgs.sql import org_tree_violations

    street_committee_for(space.street)
    community_org_for(space.a)
    community_org_for(space.b)
    branch = GridBranchFactory(grid_cell=space.a1)
    group = BuildingGroupFactory(buildings=[space.house_a1])
    codes = [space.street.code]

    def broken() -> dict[str, int]:
        return {k: v for k, v in org_tree_violations(street_codes=codes).items() if v}

    assert broken() == {}
    # Around the service: the branch moves onto community B's grid, the group gains a building
    # of another grid, and the group hangs straight under the community organisation.
    PartyOrganisation.objects.filter(pk=branch.pk).update(grid_cell=space.b1)
    assert broken() == {"grid_outside_parent_community": 1, "building_outside_parent_grid": 1}
    PartyOrganisation.objects.filter(pk=branch.pk).update(grid_cell=space.a1)
    group.buildings.add(space.house_a2)
    assert broken() == {"building_outside_parent_grid": 1}
    group.buildings.remove(space.house_a2)
    PartyOrganisation.objects.filter(pk=group.pk).update(parent=branch.parent)
    assert set(broken()) == {"parent_kind_or_street", "building_outside_parent_grid"}
    # The service says the same of that tree.
    group.refresh_from_db()
    with pytest.raises(OrgError):
        services.party_org_check(org=group)
