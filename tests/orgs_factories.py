"""factory_boy factories for orgs models. Every create goes through orgs.services, so factories can
never build a tree that disagrees with space or store a clear ID number."""

from datetime import date

import factory

from orgs import pii, services
from orgs.models import (
    Cadre,
    CommitteeSeat,
    Enterprise,
    GridWorker,
    PartyMember,
    PartyOrganisation,
    StationedCadre,
)
from tests.factories import CommunityFactory, GridCellFactory, StreetFactory

Kind = PartyOrganisation.Kind
Level = PartyOrganisation.Level


def make_id_number(n: int, *, area: str = "440803", birth: str = "19800101") -> str:
    """A well-formed 18-character ID number (correct check character), distinct per `n`."""
    first17 = f"{area}{birth}{n % 1000:03d}"
    return first17 + pii.id_number_check_digit(first17)


def street_committee_for(street) -> PartyOrganisation:
    existing = PartyOrganisation.objects.filter(kind=Kind.STREET_COMMITTEE, street=street).first()
    return existing or StreetCommitteeFactory(street=street)


def community_org_for(community) -> PartyOrganisation:
    existing = PartyOrganisation.objects.filter(kind=Kind.COMMUNITY_ORG, community=community).first()
    return existing or CommunityOrgFactory(community=community)


def grid_branch_for(cell) -> PartyOrganisation:
    existing = PartyOrganisation.objects.filter(kind=Kind.GRID_BRANCH, grid_cell=cell).first()
    return existing or GridBranchFactory(grid_cell=cell)


class _ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return services.party_org_create(**kwargs)


class StreetCommitteeFactory(_ServiceFactory):
    class Meta:
        model = PartyOrganisation

    kind = Kind.STREET_COMMITTEE
    level = Level.WORKING_COMMITTEE
    street = factory.SubFactory(StreetFactory)
    name = factory.LazyAttribute(lambda o: f"{o.street.name}党工委")
    code = factory.Sequence(lambda n: f"SC{n:05d}")


class CommunityOrgFactory(_ServiceFactory):
    class Meta:
        model = PartyOrganisation

    kind = Kind.COMMUNITY_ORG
    level = Level.COMMITTEE
    community = factory.SubFactory(CommunityFactory)
    parent = factory.LazyAttribute(lambda o: street_committee_for(o.community.street))
    name = factory.LazyAttribute(lambda o: f"{o.community.name}党委")
    code = factory.Sequence(lambda n: f"CO{n:05d}")


class GridBranchFactory(_ServiceFactory):
    class Meta:
        model = PartyOrganisation

    kind = Kind.GRID_BRANCH
    level = Level.BRANCH
    grid_cell = factory.SubFactory(GridCellFactory)
    parent = factory.LazyAttribute(lambda o: community_org_for(o.grid_cell.community))
    name = factory.LazyAttribute(lambda o: f"{o.grid_cell.name}党支部")
    code = factory.Sequence(lambda n: f"GB{n:05d}")


class BuildingGroupFactory(_ServiceFactory):
    """Pass `buildings=[...]` (all in one grid); the parent is that grid's branch."""

    class Meta:
        model = PartyOrganisation

    kind = Kind.BUILDING_GROUP
    level = Level.GROUP
    parent = factory.LazyAttribute(lambda o: grid_branch_for(o.buildings[0].grid_cell))
    name = factory.Sequence(lambda n: f"第{n + 1}楼栋党小组")
    code = factory.Sequence(lambda n: f"BG{n:05d}")


class CadreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cadre

    name = factory.Sequence(lambda n: f"干部{n + 1}")
    street = factory.SubFactory(StreetFactory)
    unit_name = "街道党建办"


class EnterpriseFactory(factory.django.DjangoModelFactory):
    """An enterprise at a point inside `community` (a new one by default)."""

    class Meta:
        model = Enterprise

    name = factory.Sequence(lambda n: f"测试企业{n + 1}")
    kind = Enterprise.Kind.ENTERPRISE
    employee_count = 20

    @classmethod
    def _create(cls, model_class, *args, community=None, point=None, **kwargs):
        if point is None and kwargs.get("building") is None:
            community = community or CommunityFactory()
            point = community.geom.point_on_surface
        return services.enterprise_create(point=point, **kwargs)


class PartyMemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PartyMember

    name = factory.Sequence(lambda n: f"党员{n + 1}")
    gender = PartyMember.Gender.MALE
    status = PartyMember.Status.FULL
    category = PartyMember.Category.EMPLOYED
    joined_on = date(2010, 7, 1)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return services.party_member_create(**kwargs)


class GridWorkerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GridWorker

    name = factory.Sequence(lambda n: f"网格员{n + 1}")
    community = factory.SubFactory(CommunityFactory)
    full_time = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return services.grid_worker_create(**kwargs)


class StationedCadreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StationedCadre

    name = factory.Sequence(lambda n: f"驻点干部{n + 1}")
    community = factory.SubFactory(CommunityFactory)
    period_start = date(2024, 1, 1)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return services.stationed_cadre_create(**kwargs)


class CommitteeSeatFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CommitteeSeat

    person_name = factory.Sequence(lambda n: f"委员{n + 1}")
    unit_name = "驻区单位"
    is_resident_unit_head = False

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return services.committee_seat_create(**kwargs)
