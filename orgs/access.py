"""Who reaches which organisations and people: a grid Reach turned into querysets of this app.

Every orgs selector, API view, roster export and admin list filters through these functions.
Organisations are placed by the unit they hang on (street committee → street, community
organisation → community, grid branch → grid cell, building group → its buildings, enterprise
organisation → its premises); people by where they live and the organisation they belong to.

Two readings of "an organisation in reach":
- for listing organisations (`party_orgs_in_reach`), a grid worker also sees the organisations
  above their grid (their community's organisation and the street working committee): names of
  the chain of command, which they need to work, not data about other grids;
- for scoping people (`strict=True`), only organisations whose unit lies wholly inside the reach
  count, so a grid worker does not see, through the community organisation, the members of the
  neighbouring grid.

Capabilities depend on where: `capability_reach` narrows a reach to the units where the user holds
a role granting the capability (a community secretary of A who is a grid worker in B may see
personal data in A only). Unmasked personal data is only ever produced by `members_pii_visible`,
which writes the read_pii audit row naming whom it was revealed about.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from django.db.models import Exists, Model, OuterRef, Q, QuerySet

from edge.errors import NotInReach, OutsideEditReach
from grid import access as grid_access
from grid.access import CAPABILITIES, Reach
from grid.audit import audit_record
from grid.models import AuditEvent, Building, Community, GridBoundary
from orgs.models import (
    Cadre,
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

M = TypeVar("M", bound=Model)
Kind = PartyOrganisation.Kind


def capability_reach(reach: Reach, capability: str) -> Reach:
    """The part of `reach` where the user holds a role granting `capability` (empty if none)."""
    return roles_reach(reach, CAPABILITIES[capability])


def _whole_community_q(reach: Reach, prefix: str) -> Q:
    """Communities covered whole by the reach (not merely seen because a grid lies in them)."""
    return Q(**{f"{prefix}street_id__in": reach.street_ids}) | Q(**{f"{prefix}id__in": reach.community_ids})


def communities_wholly_in_reach(reach: Reach, qs: QuerySet[Community] | None = None) -> QuerySet[Community]:
    """Communities the reach covers whole: where community-wide data (staffing, cadres) may be seen."""
    qs = Community.objects.all() if qs is None else qs
    if reach.everything:
        return qs
    return qs.filter(_whole_community_q(reach, ""))


def enterprises_in_reach(reach: Reach, qs: QuerySet[Enterprise] | None = None) -> QuerySet[Enterprise]:
    """Enterprises by their community; for a grid reach, those whose building (or, without one,
    whose point) lies in the reach's grid cells today."""
    qs = Enterprise.objects.all() if qs is None else qs
    if reach.everything:
        return qs
    if reach.is_empty:
        return qs.none()
    q = _whole_community_q(reach, "community__")
    if reach.grid_cell_ids:
        covering = GridBoundary.objects.filter(
            cell_id__in=reach.grid_cell_ids, valid__upper_inf=True, geom__covers=OuterRef("geom")
        )
        q |= Q(building__grid_cell_id__in=reach.grid_cell_ids) | (
            Q(building__isnull=True) & Q(Exists(covering))
        )
    return qs.filter(q)


def party_orgs_in_reach(
    reach: Reach, qs: QuerySet[PartyOrganisation] | None = None, *, strict: bool = False
) -> QuerySet[PartyOrganisation]:
    """Organisations whose unit lies in the reach. `strict=False` adds the street and community
    organisations above a grid reach (see the module docstring)."""
    qs = PartyOrganisation.objects.all() if qs is None else qs
    if reach.everything:
        return qs
    if reach.is_empty:
        return qs.none()
    street_level = Q(kind=Kind.STREET_COMMITTEE) | Q(kind=Kind.JOINT_BRANCH, community__isnull=True)
    community_level = Q(
        kind__in=[Kind.COMMUNITY_ORG, Kind.RESIDENT_UNIT_ORG, Kind.JOINT_BRANCH], community__isnull=False
    )
    if strict:
        streets = Q(street_id__in=reach.street_ids)
        communities = _whole_community_q(reach, "community__")
    else:
        streets = Q(street_id__in=reach.street_ids_seen())
        communities = reach.community_q(prefix="community__")
    buildings = Building.objects.filter(party_groups=OuterRef("pk")).filter(reach.place_q())
    return qs.filter(
        (street_level & streets)
        | (community_level & communities)
        | (Q(kind=Kind.GRID_BRANCH) & reach.grid_cell_q(prefix="grid_cell__"))
        | (Q(kind=Kind.BUILDING_GROUP) & Q(Exists(buildings)))
        | (Q(kind=Kind.ENTERPRISE_ORG) & Q(premises__in=enterprises_in_reach(reach).values("pk")))
    )


def party_members_in_reach(reach: Reach, qs: QuerySet[PartyMember] | None = None) -> QuerySet[PartyMember]:
    """Members living in the reach, belonging to an organisation wholly in it, or having reported
    (双报到) to a community wholly in it."""
    qs = PartyMember.objects.all() if qs is None else qs
    if reach.everything:
        return qs
    if reach.is_empty:
        return qs.none()
    residence = reach.place_q(
        community="residence_building__community", grid_cell="residence_building__grid_cell"
    )
    orgs = party_orgs_in_reach(reach, strict=True).values("pk")
    reported = _whole_community_q(reach, "reported_community__")
    return qs.filter(residence | Q(organisation__in=orgs) | reported)


def grid_workers_in_reach(reach: Reach, qs: QuerySet[GridWorker] | None = None) -> QuerySet[GridWorker]:
    """Workers of communities wholly in reach; for a grid reach, those assigned to its grids."""
    qs = GridWorker.objects.all() if qs is None else qs
    if reach.everything:
        return qs
    if reach.is_empty:
        return qs.none()
    q = _whole_community_q(reach, "community__")
    if reach.grid_cell_ids:
        assigned = GridWorker.grid_cells.through.objects.filter(
            gridworker_id=OuterRef("pk"), gridcell_id__in=reach.grid_cell_ids
        )
        q |= Q(Exists(assigned))
    return qs.filter(q)


def stationed_cadres_in_reach(
    reach: Reach, qs: QuerySet[StationedCadre] | None = None
) -> QuerySet[StationedCadre]:
    """Stationed cadres serve a whole community: seen by those whose reach covers it whole."""
    qs = StationedCadre.objects.all() if qs is None else qs
    if reach.everything:
        return qs
    return qs.filter(_whole_community_q(reach, "community__"))


def cadres_in_reach(reach: Reach, qs: QuerySet[Cadre] | None = None) -> QuerySet[Cadre]:
    """Street officials: seen by everyone whose reach touches their street."""
    qs = Cadre.objects.all() if qs is None else qs
    if reach.everything:
        return qs
    if reach.is_empty:
        return qs.none()
    return qs.filter(street_id__in=reach.street_ids_seen())


def visits_in_reach(reach: Reach, qs: QuerySet[Visit] | None = None) -> QuerySet[Visit]:
    """Visits by the community and grid cell that held them on their day."""
    qs = Visit.objects.all() if qs is None else qs
    if reach.everything:
        return qs
    if reach.is_empty:
        return qs.none()
    return qs.filter(reach.place_q())


def station_contacts_in_reach(
    reach: Reach, qs: QuerySet[StationContact] | None = None
) -> QuerySet[StationContact]:
    """Station work serves a whole community, like the cadres doing it (stationed_cadres_in_reach)."""
    qs = StationContact.objects.all() if qs is None else qs
    if reach.everything:
        return qs
    return qs.filter(_whole_community_q(reach, "community__"))


SCOPES: dict[type[Model], Any] = {
    PartyOrganisation: party_orgs_in_reach,
    PartyMember: party_members_in_reach,
    Enterprise: enterprises_in_reach,
    GridWorker: grid_workers_in_reach,
    StationedCadre: stationed_cadres_in_reach,
    Cadre: cadres_in_reach,
    Visit: visits_in_reach,
    StationContact: station_contacts_in_reach,
}


def scope(reach: Reach, qs: QuerySet[M]) -> QuerySet[M]:
    return grid_access.scope(reach, qs, SCOPES)


def get_in_reach(reach: Reach, qs: QuerySet[M], **lookup: Any) -> M:
    """Fetch one object the user may see; NotInReach for missing and forbidden alike."""
    return grid_access.get_in_reach(reach, qs, SCOPES, **lookup)


# --- guards: the only ways to fetch one object for reading its records or for editing ----------


def org_for_records(reach: Reach, org_id: int) -> PartyOrganisation:
    """An organisation whose own records (seats, rectifications, star ratings) the caller may see.

    Strict reach, as for the people of an organisation: a grid worker sees the names of the
    community and street organisations above their grid, not their ratings or rectifications.
    """
    if not reach.can_read():
        raise NotInReach
    qs = party_orgs_in_reach(reach, PartyOrganisation.objects.select_related("street"), strict=True)
    org = qs.filter(pk=org_id).first()
    if org is None:
        raise NotInReach
    return org


def _org_record_get(reach: Reach, qs: QuerySet[M], pk: int) -> M:
    """A record hanging on an organisation (seat, rectification), seen like org_for_records."""
    if not reach.can_read():
        raise NotInReach
    obj = qs.filter(pk=pk, org__in=party_orgs_in_reach(reach, strict=True).values("pk")).first()
    if obj is None:
        raise NotInReach
    return obj


def committee_seat_get(reach: Reach, seat_id: int, qs: QuerySet[CommitteeSeat] | None = None) -> CommitteeSeat:
    qs = CommitteeSeat.objects.select_related("org") if qs is None else qs
    return _org_record_get(reach, qs, seat_id)


def rectification_get(reach: Reach, rectification_id: int) -> Rectification:
    return _org_record_get(reach, Rectification.objects.select_related("org"), rectification_id)


def _editable_orgs(reach: Reach, qs: QuerySet[PartyOrganisation]) -> QuerySet[PartyOrganisation]:
    return party_orgs_in_reach(reach, qs, strict=True)


def _editable_workers(reach: Reach, qs: QuerySet[GridWorker]) -> QuerySet[GridWorker]:
    # A worker is staff of a whole community: editable where that community is wholly in reach.
    return qs.filter(community__in=communities_wholly_in_reach(reach))


def _editable_cadres(reach: Reach, qs: QuerySet[Cadre]) -> QuerySet[Cadre]:
    # Street officials are the street's staff: edited by those who hold the whole street.
    return qs if reach.everything else qs.filter(street_id__in=reach.street_ids)


def _editable_org_records(reach: Reach, qs: QuerySet[M]) -> QuerySet[M]:
    return qs.filter(org__in=party_orgs_in_reach(reach, strict=True).values("pk"))


# Where the `edit_orgs` part of a reach may write each kind of object.
EDIT_SCOPES: dict[type[Model], Any] = {
    PartyOrganisation: _editable_orgs,
    PartyMember: party_members_in_reach,
    Enterprise: enterprises_in_reach,
    GridWorker: _editable_workers,
    StationedCadre: stationed_cadres_in_reach,
    Cadre: _editable_cadres,
    CommitteeSeat: _editable_org_records,
    Rectification: _editable_org_records,
    StarRating: _editable_org_records,
}
_EDIT_NOUNS = {
    PartyOrganisation: "该党组织",
    PartyMember: "该党员",
    Enterprise: "该两新组织（按其位置）",
    GridWorker: "该网格员",
    StationedCadre: "该驻点干部",
    Cadre: "该街道干部",
    CommitteeSeat: "该委员席位",
    Rectification: "该整顿记录",
    StarRating: "该星级评定",
}


def editable_q(reach: Reach, qs: QuerySet[M]) -> QuerySet[M]:
    """`qs` narrowed to what the caller may edit (the `edit_orgs` part of their reach)."""
    return EDIT_SCOPES[qs.model](capability_reach(reach, "edit_orgs"), qs)


def ensure_editable(reach: Reach, obj: Model) -> None:
    """Raise OutsideEditReach unless the caller may edit `obj` as it is in the database now.

    Called by the API before a write (on the object fetched with the read guard, so a missing or
    unseen object is already a 404) and by the services after it, inside their transaction (where
    the result landed), so a write that would move something out of the writer's reach is
    refused whole."""
    model = type(obj)
    if not editable_q(reach, model._default_manager.filter(pk=obj.pk)).exists():
        raise OutsideEditReach(f"{_EDIT_NOUNS[model]}不在您可维护的范围内")


def get_editable(reach: Reach, qs: QuerySet[M], **lookup: Any) -> M:
    """Fetch one object to edit: NotInReach (404) when the caller cannot see it, OutsideEditReach
    (403) when they can see but not edit it."""
    obj = get_in_reach(reach, qs, **lookup)
    ensure_editable(reach, obj)
    return obj


# --- personal data ----------------------------------------------------------------------------


def _pii_visible(reach: Reach, model: type[Model], ids: set[int]) -> set[int]:
    if not ids:
        return set()
    pii_reach = capability_reach(reach, "view_pii")
    if pii_reach.everything:
        return set(ids)
    if pii_reach.is_empty:
        return set()
    return set(scope(pii_reach, model._default_manager.filter(pk__in=ids)).values_list("pk", flat=True))


def pii_visible(
    *, reach: Reach, objects: Iterable[PartyMember | GridWorker], purpose: str = "API 查询"
) -> set[int]:
    """The ids among `objects` whose ID number and phone this user may see unmasked.

    Unmasked only where the user holds a role with `view_pii` over the object's place; one query
    for the whole page, and one read_pii audit row naming every object revealed (written before
    the data leaves, so a failed audit write means no data).
    """
    objects = list(objects)
    if not objects:
        return set()
    model = type(objects[0])
    visible = _pii_visible(reach, model, {o.pk for o in objects})
    if visible:
        label = model._meta.label
        noun, key = ("党员", "member_ids") if model is PartyMember else ("网格员", "worker_ids")
        ids = sorted(visible)
        audit_record(
            action=AuditEvent.Action.READ_PII,
            object_type=label,
            object_id=ids[0] if len(ids) == 1 else "",
            summary=f"{purpose}：查看{len(ids)}名{noun}的身份证号/联系电话",
            changes={key: ids},
        )
    return visible


def roster_export_unmasked(*, user: Any, reach: Reach, members: QuerySet[PartyMember]) -> bool:
    """The one masking rule of every roster export (API and `export_members --user`): clear ID
    numbers and phones only with the export permission AND view_pii over every member exported;
    one member outside the view_pii part of the reach masks the whole file."""
    if not user.has_perm("grid.export_personal_data"):
        return False
    pii_members = party_members_in_reach(capability_reach(reach, "view_pii")).values("pk")
    return not members.exclude(pk__in=pii_members).exists()


# --- residents' cases (民情事项) ---------------------------------------------------------------
# A case sits where it was raised: its street, community and the grid cell that held its place on
# the day (stored on the row, so scoping is three indexed columns, no spatial test). Who may act
# on it depends on the action: the street and community offices run the loop (立案, 派遣, 结案, 重复);
# whoever logs events in the place records what happens on site (处理, 反馈, 核查).

from orgs.cases_models import Case, CaseTransition  # noqa: E402 - appended section

CASE_COORDINATOR_ROLES = frozenset({"street_admin", "community_admin"})
CASE_FIELD_ROLES = CAPABILITIES["log_events"]


def cases_in_reach(reach: Reach, qs: QuerySet[Case] | None = None) -> QuerySet[Case]:
    """Cases by the street, community and grid cell that held them when raised: a grid worker
    sees their grids' cases, a community or street role the whole unit's."""
    qs = Case.objects.all() if qs is None else qs
    if reach.everything:
        return qs
    if reach.is_empty:
        return qs.none()
    return qs.filter(
        Q(street_id__in=reach.street_ids)
        | Q(community_id__in=reach.community_ids)
        | Q(grid_cell_id__in=reach.grid_cell_ids)
    )


def case_transitions_in_reach(reach: Reach, qs: QuerySet[CaseTransition] | None = None) -> QuerySet[CaseTransition]:
    qs = CaseTransition.objects.all() if qs is None else qs
    if reach.everything:
        return qs
    return qs.filter(case__in=cases_in_reach(reach).values("pk"))


SCOPES[Case] = cases_in_reach
SCOPES[CaseTransition] = case_transitions_in_reach


def case_get(reach: Reach, case_id: int, qs: QuerySet[Case] | None = None) -> Case:
    """The one way to fetch a case for a user: NotInReach for missing and forbidden alike."""
    if not reach.can_read():
        raise NotInReach
    qs = Case.objects.all() if qs is None else qs
    case = cases_in_reach(reach, qs).filter(pk=case_id).first()
    if case is None:
        raise NotInReach
    return case


def roles_reach(reach: Reach, roles: Iterable[str]) -> Reach:
    """The part of `reach` where the user holds one of `roles` (empty if none)."""
    if reach.everything:
        return reach
    wanted = frozenset(roles)
    units: dict[str, set[int]] = {"street": set(), "community": set(), "grid_cell": set()}
    unit_roles: dict[tuple[str, int], frozenset[str]] = {}
    for (kind, unit_id), held in reach.unit_roles.items():
        if held & wanted:
            units[kind].add(unit_id)
            unit_roles[(kind, unit_id)] = held & wanted
    return Reach(
        street_ids=frozenset(units["street"]),
        community_ids=frozenset(units["community"]),
        grid_cell_ids=frozenset(units["grid_cell"]),
        roles=reach.roles & wanted,
        user_id=reach.user_id,
        unit_roles=unit_roles,
    )


def case_place_in(reach: Reach, *, street_id: int | None, community_id: int | None, grid_cell_id: int | None) -> bool:
    """Whether a place (as a case stores it) lies in `reach`."""
    return (
        reach.everything
        or (street_id is not None and street_id in reach.street_ids)
        or (community_id is not None and community_id in reach.community_ids)
        or (grid_cell_id is not None and grid_cell_id in reach.grid_cell_ids)
    )


def ensure_case_action(reach: Reach, case: Case, *, roles: Iterable[str], action_label: str) -> None:
    """Raise unless the caller may take an action needing one of `roles` on `case` as it is in the
    database: NotInReach when they cannot see it at all (a grid worker and another grid's case),
    OutsideEditReach (403) when they see it but hold none of the roles over its place."""
    place = {"street_id": case.street_id, "community_id": case.community_id, "grid_cell_id": case.grid_cell_id}
    if not case_place_in(reach, **place):
        raise NotInReach
    if not case_place_in(roles_reach(reach, roles), **place):
        raise OutsideEditReach(f"您的角色不能对该事项执行「{action_label}」", code="case_action_forbidden")


def case_action_roles(action: str, from_state: str) -> frozenset[str]:
    """The roles that may take `action` on a case in `from_state`: the offices run the loop; what
    happens on site (签收处理, 反馈, 核查, and a failed 核查 sent back) is recorded by whoever logs
    events in the place."""
    if action in (CaseTransition.Action.START, CaseTransition.Action.FEEDBACK, CaseTransition.Action.VERIFY):
        return CASE_FIELD_ROLES
    if action == CaseTransition.Action.SEND_BACK and from_state == Case.State.FEEDBACK:
        return CASE_FIELD_ROLES
    return CASE_COORDINATOR_ROLES
