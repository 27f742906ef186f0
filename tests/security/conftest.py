"""A two-grid world for the reach proofs: every thing in it is labelled with the place it belongs to,
so a test can ask "which identifiers must user U never see" without a hand-kept list per endpoint.

Street S has community C1 (grids A and B side by side) and community C2 (grid C); street S2 far
to the east has community D1 with grid D. Each grid holds two buildings, a grid branch, a building
group, two members living there, an enterprise, a grid worker, a rectification and a star rating
of its branch. Above them: street committees, community organisations, service centres, stationed
cadres and a street cadre.

Places (what `Thing.place` names):
- "A", "B", "C", "D": inside that grid;
- "S", "C1", "C2", "S2", "D1": the unit itself and what hangs on it as a name in the chain of
  command (its organisation, a street-level service centre);
- "C1*", "C2*", "D1*": community-wide data (stationed cadres), seen only with whole-community reach;
- "C1P", "C2P", "D1P": planners' drafts of that community, seen only by roles that plan it
  (edit_space over the whole community: the street's planner and street administrator).

Field events (visits, station contacts) and the photos of the visits have the tablet's UUID as id,
unique across everything; the `<str:pk>` routes that take one (a visit, a photo) are tried with it.

Every model gets its own id range (see `_separate_id_ranges`), so an id names exactly one thing:
a test can try every id of grid B against every `<int:pk>` route without a B member's id
coinciding with an A enterprise's.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.contrib.gis.geos import Point
from django.db import connection
from django.db.models import Model
from PIL import Image

from grid.access import Reach
from grid.models import (
    Building,
    Community,
    GridBoundary,
    GridCell,
    Role,
    ServiceCentre,
    Street,
)
from grid.services import buildings_reassign
from mapping import plans as plan_services
from mapping.models import Gap
from mapping.plans_models import Plan, PlanCell, PlanEdit
from mapping.services import gaps_recompute
from orgs import services as org_services
from orgs.models import (
    Cadre,
    Case,
    CaseTransition,
    CommitteeSeat,
    Enterprise,
    GridWorker,
    PartyMember,
    PartyOrganisation,
    Rectification,
    StarRating,
    StationContact,
    StationedCadre,
    Visit,
)
from orgs.photos_models import Photo
from orgs.services import photos as photo_services
from tests.factories import (
    ORIGIN,
    BuildingFactory,
    CommunityFactory,
    GridCellFactory,
    ServiceCentreFactory,
    StreetFactory,
    multi,
    rect,
    square,
)
from tests.orgs.cases_world import categories
from tests.orgs_factories import (
    BuildingGroupFactory,
    CommunityOrgFactory,
    EnterpriseFactory,
    GridBranchFactory,
    GridWorkerFactory,
    PartyMemberFactory,
    StationedCadreFactory,
    StreetCommitteeFactory,
    make_id_number,
)
from tests.people import grant

X, Y = ORIGIN

ID_RANGES: list[type[Model]] = [
    Street,
    Community,
    GridCell,
    GridBoundary,
    Building,
    ServiceCentre,
    PartyOrganisation,
    PartyMember,
    Enterprise,
    GridWorker,
    StationedCadre,
    Cadre,
    Rectification,
    StarRating,
    CommitteeSeat,
    Gap,
    Case,
    CaseTransition,
]
# Keyed by the tablet's UUID: no sequence to move, but part of every "nothing was written" check.
EVENT_MODELS: list[type[Model]] = [Visit, StationContact, Photo]
# Planners' drafts (mapping.plans): their own id blocks, and part of every "nothing written" check.
ID_RANGES += [Plan, PlanCell, PlanEdit]

# Which places each role's user must see, and which they must never see.
VISIBLE = {
    "worker_a": {"A", "S", "C1"},
    "community_admin": {"A", "B", "S", "C1", "C1*"},
    "street_admin": {"A", "B", "C", "S", "C1", "C1*", "C2", "C2*", "C1P", "C2P"},
}
ALL_PLACES = {"A", "B", "C", "D", "S", "C1", "C1*", "C2", "C2*", "S2", "D1", "D1*", "C1P", "C2P", "D1P"}
FORBIDDEN = {
    "worker_a": ALL_PLACES - VISIBLE["worker_a"],
    "community_admin": ALL_PLACES - VISIBLE["community_admin"],
    "street_admin": ALL_PLACES - VISIBLE["street_admin"],
}


@dataclass(frozen=True)
class Thing:
    model: type[Model]
    pk: int | uuid.UUID
    code: str | None
    place: str
    label: str

    @property
    def identifiers(self) -> set[str]:
        return {str(self.pk)} | ({self.code} if self.code else set())


@dataclass
class SecurityWorld:
    things: list[Thing] = field(default_factory=list)
    users: dict[str, User] = field(default_factory=dict)
    units: dict[str, Model] = field(default_factory=dict)

    def add(self, obj: Model, place: str, *, code: str | None = None) -> Model:
        code = code if code is not None else getattr(obj, "code", None)
        self.things.append(Thing(type(obj), obj.pk, code or None, place, str(obj)))
        return obj

    def in_places(self, places: set[str]) -> list[Thing]:
        return [t for t in self.things if t.place in places]

    def of_model(self, model: type[Model], places: set[str]) -> list[Thing]:
        return [t for t in self.things if t.model is model and t.place in places]


def _separate_id_ranges() -> None:
    """Move each model's id sequence into its own block of ten million (only ever upwards)."""
    with connection.cursor() as cursor:
        for n, model in enumerate(ID_RANGES, start=1):
            table = model._meta.db_table
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), "
                "GREATEST(%s, nextval(pg_get_serial_sequence(%s, 'id'))))",
                [table, n * 10_000_000, table],
            )


def _populate_orgs(
    world: SecurityWorld,
    *,
    cell: GridCell,
    houses: tuple[Building, Building],
    parent: PartyOrganisation,
    place: str,
    x0: float,
    seq: int,
) -> None:
    """A branch, a group, two members, an enterprise, a worker, a rectification and a rating in
    `cell` (whose boundary spans x0 … x0 + 0.01), beside its two buildings."""
    h1, h2 = houses
    h1.refresh_from_db()
    h2.refresh_from_db()
    assert h1.grid_cell_id == cell.pk and h2.grid_cell_id == cell.pk
    world.add(cell, place)
    world.add(GridBoundary.objects.get(cell=cell), place, code="")
    world.add(h1, place)
    world.add(h2, place)
    branch = world.add(GridBranchFactory(grid_cell=cell, parent=parent), place)
    group = world.add(BuildingGroupFactory(buildings=[h1], parent=branch), place)
    world.units[f"branch_{place}"] = branch
    world.units[f"house_{place}"] = h1
    m1 = PartyMemberFactory(
        name=f"{place}党员一",
        organisation=group,
        residence_building=h1,
        id_number=make_id_number(seq * 10 + 1),
        phone=f"138{seq:04d}0001",
    )
    m2 = PartyMemberFactory(
        name=f"{place}党员二",
        organisation=branch,
        residence_building=h2,
        id_number=make_id_number(seq * 10 + 2),
    )
    world.add(m1, place, code="")
    world.add(m2, place, code="")
    world.units[f"member_{place}"] = m1
    firm = EnterpriseFactory(name=f"{place}企业", point=Point(x0 + 0.004, Y + 0.008, srid=4326))
    world.add(firm, place, code="")
    world.units[f"firm_{place}"] = firm
    worker = GridWorkerFactory(
        name=f"{place}网格员", community=cell.community, grid_cells=[cell], phone=f"139{seq:04d}0000"
    )
    world.add(worker, place, code="")
    world.units[f"worker_{place}"] = worker
    visit = Visit.objects.create(
        id=uuid.uuid5(EVENT_NAMESPACE, f"visit-{place}"),
        occurred_at=EVENT_TIME,
        reporter=_event_reporter(),
        reporter_name=f"{place}网格员",
        place=h1.point,
        community=cell.community,
        grid_cell=cell,
        building=h1,
        kind=Visit.Kind.HOUSEHOLD,
        worker=worker,
        household="1-101",
        payload_hash="0" * 64,
    )
    world.add(visit, place, code="")
    world.units[f"visit_{place}"] = visit
    world.add(
        org_services.party_org_flag_weak(org=branch, flagged_on=date(2025, 1, 1), reasons="组织生活不规范"),
        place,
        code="",
    )
    world.add(
        org_services.star_rating_record(
            org=branch, year=2024, score=Decimal("80"), satisfaction_score=Decimal("90")
        )[0],
        place,
        code="",
    )


EVENT_NAMESPACE = uuid.UUID("6f1d2c1e-5b7a-4e0e-9a57-0c3c0e9b1a01")
EVENT_TIME = datetime(2025, 6, 2, 10, 0, tzinfo=UTC)


def _event_reporter() -> User:
    # The account that synced the world's events: it holds no role, so it sees nothing itself.
    return User.objects.get_or_create(username="event_reporter")[0]


def user_for(username: str, role: str | None, **unit: Model) -> User:
    # No password: hashing costs ~0.3 s each; tests log in with force_login / force_authenticate.
    user = User.objects.create_user(username=username)
    if role is not None:
        grant(user, role, **unit)
    return user


def _add_visit_photos(world: SecurityWorld, places: list[str]) -> None:
    """One photo of each grid's visit, uploaded through the service (decoded, stored, audited) by
    the events' account; its reach is made whole so that grid D, outside every user of the world,
    gets one too. The file goes to the storage the tests point at a temporary MEDIA_ROOT."""
    reporter = _event_reporter()
    uploader = Reach(everything=True, roles=frozenset(Role), user_id=reporter.pk)
    for n, place in enumerate(places):
        png = io.BytesIO()
        Image.new("RGB", (4, 3), (n * 40, 120, 0)).save(png, "PNG")
        photo = photo_services.photo_upload(
            reach=uploader,
            user=reporter,
            photo_id=uuid.uuid5(EVENT_NAMESPACE, f"photo-{place}"),
            content=png.getvalue(),
            visit_id=world.units[f"visit_{place}"].pk,
        ).photo
        world.add(photo, place, code="")
        world.units[f"photo_{place}"] = photo


def build_world(*, photos: bool = False) -> SecurityWorld:
    """The world; with `photos`, one photo of each grid's visit (the caller must point MEDIA_ROOT
    at a temporary directory, as the `sworld` fixtures do)."""
    _separate_id_ranges()
    w = SecurityWorld()
    s = StreetFactory(geom=multi(rect(X, Y, X + 0.03, Y + 0.01)))
    s2 = StreetFactory(geom=multi(rect(X + 0.05, Y, X + 0.06, Y + 0.01)))
    c1 = CommunityFactory(street=s, geom=multi(rect(X, Y, X + 0.02, Y + 0.01)))
    c2 = CommunityFactory(street=s, geom=multi(rect(X + 0.02, Y, X + 0.03, Y + 0.01)))
    d1 = CommunityFactory(street=s2, geom=multi(rect(X + 0.05, Y, X + 0.06, Y + 0.01)))
    cells = {
        "A": (GridCellFactory(community=c1, boundary=rect(X, Y, X + 0.01, Y + 0.01)), X),
        "B": (GridCellFactory(community=c1, boundary=rect(X + 0.01, Y, X + 0.02, Y + 0.01)), X + 0.01),
        "C": (GridCellFactory(community=c2, boundary=rect(X + 0.02, Y, X + 0.03, Y + 0.01)), X + 0.02),
        "D": (GridCellFactory(community=d1, boundary=rect(X + 0.05, Y, X + 0.06, Y + 0.01)), X + 0.05),
    }
    houses = {
        place: (
            BuildingFactory(community=cell.community, geom=square(x0 + 0.002, Y + 0.002, 0.0005)),
            BuildingFactory(community=cell.community, geom=square(x0 + 0.006, Y + 0.006, 0.0005)),
        )
        for place, (cell, x0) in cells.items()
    }
    buildings_reassign()

    w.units.update(
        street=s, street2=s2, c1=c1, c2=c2, d1=d1, **{f"cell_{p}": c for p, (c, _) in cells.items()}
    )
    for obj, place in ((s, "S"), (s2, "S2"), (c1, "C1"), (c2, "C2"), (d1, "D1")):
        w.add(obj, place)
    committee = w.add(StreetCommitteeFactory(street=s), "S")
    committee2 = w.add(StreetCommitteeFactory(street=s2), "S2")
    orgs = {
        "C1": w.add(CommunityOrgFactory(community=c1, parent=committee), "C1"),
        "C2": w.add(CommunityOrgFactory(community=c2, parent=committee), "C2"),
        "D1": w.add(CommunityOrgFactory(community=d1, parent=committee2), "D1"),
    }
    w.units.update(committee=committee, org_c1=orgs["C1"])
    parents = {"A": orgs["C1"], "B": orgs["C1"], "C": orgs["C2"], "D": orgs["D1"]}
    for n, (place, (cell, x0)) in enumerate(cells.items(), start=1):
        _populate_orgs(w, cell=cell, houses=houses[place], parent=parents[place], place=place, x0=x0, seq=n)
    if photos:
        _add_visit_photos(w, list(cells))

    centre_pt = square(X + 0.011, Y + 0.001, 0.001).centroid  # stands in grid B: level decides who sees it
    w.add(ServiceCentreFactory(street=s, level=ServiceCentre.Level.STREET, geom=centre_pt), "S")
    w.add(
        ServiceCentreFactory(street=s, community=c1, level=ServiceCentre.Level.COMMUNITY, geom=centre_pt),
        "C1",
    )
    w.add(
        ServiceCentreFactory(
            street=s,
            community=c2,
            level=ServiceCentre.Level.COMMUNITY,
            geom=square(X + 0.021, Y + 0.001, 0.001).centroid,
        ),
        "C2",
    )
    w.add(
        ServiceCentreFactory(
            street=s2, level=ServiceCentre.Level.STREET, geom=square(X + 0.051, Y + 0.001, 0.001).centroid
        ),
        "S2",
    )
    for community, place in ((c1, "C1*"), (c2, "C2*"), (d1, "D1*")):
        cadre = w.add(StationedCadreFactory(community=community), place, code="")
        contact = StationContact.objects.create(
            id=uuid.uuid5(EVENT_NAMESPACE, f"contact-{place}"),
            occurred_at=EVENT_TIME,
            reporter=_event_reporter(),
            reporter_name=f"{place}驻点干部",
            place=community.geom.point_on_surface,
            community=community,
            kind=StationContact.Kind.CONTACT,
            cadre=cadre,
            contact_name="群众",
            payload_hash="0" * 64,
        )
        w.add(contact, place, code="")
    w.add(org_services.cadre_create(name="街道干部", street=s2), "S2", code="")
    # One resident's case (民情事项) per grid, at its first building, raised by the events' account.
    category = categories()["暴露垃圾"]
    w.units["case_category"] = category
    for place in cells:
        case = org_services.case_create(
            reach=None,
            user=_event_reporter(),
            category=category,
            description=f"{place}网格垃圾堆放",
            source=Case.Source.VISIT,
            building=w.units[f"house_{place}"],
        ).case
        w.add(case, place, code="")
        w.units[f"case_{place}"] = case
    # The coverage gaps of this world (unvisited buildings, uncovered enterprises, idle cadres…),
    # so that /api/gaps/ is proven against real rows. A gap's own id names no thing of the world
    # (Gap has its own id range); what it names (subject, units, organisation) is checked.
    gaps_recompute(community_ids=None)
    # A planner's draft of each community (C1's with one edit), for the /api/plans/ routes.
    for community, place in ((c1, "C1P"), (c2, "C2P"), (d1, "D1P")):
        w.units[f"plan_{place}"] = w.add(plan_services.plan_create(community=community, name=f"{place}草稿"), place)
    plan_services.plan_edit(plan=w.units["plan_C1P"], kind="lock", payload={"code": cells["A"][0].code})

    w.users = {
        "worker_a": user_for("worker_a", Role.GRID_WORKER, grid_cell=cells["A"][0]),
        "community_admin": user_for("community_admin", Role.COMMUNITY_ADMIN, community=c1),
        "street_admin": user_for("street_admin", Role.STREET_ADMIN, street=s),
        "planner": user_for("planner", Role.PLANNER, street=s),
        "leader": user_for("leader", Role.LEADER, street=s),
        "operator": user_for("operator", Role.OPERATOR),
        "norole": user_for("norole", None),
        # Holds edit_orgs, but over C2 only: writes against grid B must fail as "not found".
        "writer_c2": user_for("writer_c2", Role.COMMUNITY_ADMIN, community=c2),
    }
    return w


@pytest.fixture
def private_media(settings, tmp_path):
    """The world's photo files live in a temporary MEDIA_ROOT, never in the project's media/."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def sworld(db, private_media) -> SecurityWorld:
    return build_world(photos=True)


STAFF_GROUP = "安全测试-只读"


def make_staff(user: User, *, perms: str = "view") -> User:
    """Staff status plus the grid/orgs/mapping model permissions through a group, as
    ensure_demo_users gives the demo street admin (`perms`: "view" or "all")."""
    name = f"{STAFF_GROUP}-{perms}"
    group, created = Group.objects.get_or_create(name=name)
    if created:
        qs = Permission.objects.filter(content_type__app_label__in=["grid", "orgs", "mapping"])
        if perms == "view":
            qs = qs.filter(codename__startswith="view_")
        group.permissions.set(qs)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    user.groups.add(group)
    return user
