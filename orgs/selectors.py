"""Reads of organisations and people. Tree reads are one recursive query each (see orgs/sql.py)."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.db.models.expressions import RawSQL

from grid import access as grid_access
from grid.access import Reach
from grid.models import Building, Community, GridCell, Street
from orgs import access, pii, sql
from orgs.models import (
    Enterprise,
    GridWorker,
    PartyMember,
    PartyOrganisation,
    StationContact,
    StationedCadre,
    Visit,
)
from orgs.rules import RuleViolation, rules_check


def party_org_subtree(
    *, org: PartyOrganisation | int, include_self: bool = True
) -> QuerySet[PartyOrganisation]:
    """`org` and all its descendants, as a queryset (filter, count, annotate it further).

    Evaluating it is one query: the recursive walk runs inside the `id IN (...)` subquery.
    """
    org_id = org if isinstance(org, int) else org.pk
    qs = PartyOrganisation.objects.filter(id__in=RawSQL(sql.SUBTREE_IDS, [org_id]))  # noqa: S611 - constant SQL
    return qs if include_self else qs.exclude(pk=org_id)


def party_org_ancestors(*, org: PartyOrganisation | int) -> list[PartyOrganisation]:
    """The chain above `org`, root (the street working committee) first; each carries `distance`."""
    org_id = org if isinstance(org, int) else org.pk
    return list(PartyOrganisation.objects.raw(sql.ANCESTORS, [org_id]))


def party_member_by_id_number(*, id_number: str) -> PartyMember | None:
    """Exact look-up through the keyed hash: the clear value is never compared in the database."""
    return PartyMember.objects.filter(id_number_hash=pii.id_number_hash(id_number)).first()


def party_members_by_phone(*, phone: str) -> QuerySet[PartyMember]:
    return PartyMember.objects.filter(phone_hash=pii.phone_hash(phone))


# ---------------------------------------------------------------------------------------------
# Reads scoped by a user's reach (API, exports). Each returns a queryset whose evaluation is a
# constant number of queries whatever the number of rows (related rows joined or prefetched).


def party_org_list(
    *,
    reach: Reach,
    kind: str | None = None,
    community_code: str | None = None,
    street_code: str | None = None,
    parent_id: int | None = None,
) -> QuerySet[PartyOrganisation]:
    """Organisations in reach; `community_code` keeps those in that community at any level
    (its own organisation, grid branches, building groups, enterprise organisations there)."""
    qs = access.party_orgs_in_reach(
        reach,
        PartyOrganisation.objects.select_related(
            "street", "parent", "community", "grid_cell", "premises"
        ).prefetch_related(Prefetch("buildings", queryset=Building.objects.only("id", "code"))),
    )
    if kind:
        qs = qs.filter(kind=kind)
    if street_code:
        qs = qs.filter(street__code=street_code)
    if parent_id is not None:
        qs = qs.filter(parent_id=parent_id)
    if community_code:
        in_community = Building.objects.filter(party_groups=OuterRef("pk"), community__code=community_code)
        qs = qs.filter(
            Q(community__code=community_code)
            | Q(grid_cell__community__code=community_code)
            | Q(premises__community__code=community_code)
            | Q(Exists(in_community))
        )
    return qs.order_by("code")


def party_org_get(*, reach: Reach, org_id: int) -> PartyOrganisation:
    """One organisation in reach; NotInReach for missing and forbidden alike."""
    return access.get_in_reach(reach, party_org_list(reach=reach), pk=org_id)


def party_org_subtree_in_reach(*, reach: Reach, org: PartyOrganisation) -> QuerySet[PartyOrganisation]:
    """The organisations below `org` (and itself) that the user may see."""
    return party_org_list(reach=reach).filter(
        id__in=RawSQL(sql.SUBTREE_IDS, [org.pk])  # noqa: S611 - constant SQL, value as parameter
    )


def party_member_list(
    *,
    reach: Reach,
    organisation_id: int | None = None,
    community_code: str | None = None,
    grid_code: str | None = None,
    category: str | None = None,
    status: str | None = None,
) -> QuerySet[PartyMember]:
    qs = access.party_members_in_reach(
        reach,
        PartyMember.objects.select_related(
            "organisation",
            "residence_building__community",
            "residence_building__grid_cell",
            "reported_community",
        ),
    )
    if organisation_id is not None:
        qs = qs.filter(organisation_id=organisation_id)
    if community_code:
        qs = qs.filter(residence_building__community__code=community_code)
    if grid_code:
        qs = qs.filter(residence_building__grid_cell__code=grid_code)
    if category:
        qs = qs.filter(category=category)
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("name", "id")


def party_member_get(*, reach: Reach, member_id: int) -> PartyMember:
    return access.get_in_reach(reach, party_member_list(reach=reach), pk=member_id)


def grid_worker_list(
    *, reach: Reach, community_code: str | None = None, grid_code: str | None = None
) -> QuerySet[GridWorker]:
    qs = access.grid_workers_in_reach(
        reach,
        GridWorker.objects.select_related("community").prefetch_related(
            Prefetch("grid_cells", queryset=GridCell.objects.only("id", "code", "name").order_by("code"))
        ),
    )
    if community_code:
        qs = qs.filter(community__code=community_code)
    if grid_code:
        qs = qs.filter(grid_cells__code=grid_code)
    return qs.order_by("community__code", "name", "id")


def grid_worker_get(*, reach: Reach, worker_id: int) -> GridWorker:
    return access.get_in_reach(reach, grid_worker_list(reach=reach), pk=worker_id)


def stationed_cadre_list(
    *, reach: Reach, community_code: str | None = None, on_date: date | None = None
) -> QuerySet[StationedCadre]:
    """Postings in reach; `on_date` keeps those running that day."""
    qs = access.stationed_cadres_in_reach(reach, StationedCadre.objects.select_related("community"))
    if community_code:
        qs = qs.filter(community__code=community_code)
    if on_date is not None:
        qs = qs.filter(Q(period_end__isnull=True) | Q(period_end__gte=on_date), period_start__lte=on_date)
    return qs.order_by("community__code", "name", "id")


def stationed_cadre_get(*, reach: Reach, cadre_id: int) -> StationedCadre:
    return access.get_in_reach(reach, stationed_cadre_list(reach=reach), pk=cadre_id)


def enterprise_list(
    *, reach: Reach, community_code: str | None = None, kind: str | None = None
) -> QuerySet[Enterprise]:
    qs = access.enterprises_in_reach(
        reach,
        Enterprise.objects.select_related(
            "community", "building", "instructor", "covering_joint_branch"
        ).annotate(
            has_own_org=Exists(
                PartyOrganisation.objects.filter(
                    premises=OuterRef("pk"), kind=PartyOrganisation.Kind.ENTERPRISE_ORG
                )
            )
        ),
    )
    if community_code:
        qs = qs.filter(community__code=community_code)
    if kind:
        qs = qs.filter(kind=kind)
    return qs.order_by("name", "id")


def enterprise_get(*, reach: Reach, enterprise_id: int) -> Enterprise:
    return access.get_in_reach(reach, enterprise_list(reach=reach), pk=enterprise_id)


def rule_violations(
    *, reach: Reach, street: Street | None = None, today: date | None = None
) -> list[RuleViolation]:
    """The rule violations (orgs.rules) about subjects in reach: organisations the user sees,
    communities they cover whole, enterprises in their reach. One rules run per street in reach."""
    if street is not None:
        streets: list[Street | None] = [street]
    elif reach.everything:
        streets = [None]
    else:
        streets = list(grid_access.streets_in_reach(reach).order_by("code"))
    found = [v for s in streets for v in rules_check(street=s, today=today)]
    if reach.everything or not found:
        return found
    by_type: dict[str, set[int]] = {"org": set(), "community": set(), "enterprise": set()}
    for v in found:
        by_type.setdefault(v.subject_type, set()).add(v.subject_id)
    allowed = {
        "org": set(
            access.party_orgs_in_reach(
                reach, PartyOrganisation.objects.filter(pk__in=by_type["org"])
            ).values_list("pk", flat=True)
        ),
        "community": set(
            access.communities_wholly_in_reach(
                reach, Community.objects.filter(pk__in=by_type["community"])
            ).values_list("pk", flat=True)
        ),
        "enterprise": set(
            access.enterprises_in_reach(
                reach, Enterprise.objects.filter(pk__in=by_type["enterprise"])
            ).values_list("pk", flat=True)
        ),
    }
    return [v for v in found if v.subject_id in allowed.get(v.subject_type, set())]


def _event_list(
    qs: QuerySet,
    *,
    community: str | None = None,
    grid_cell: str | None = None,
    since: date | None = None,
    until: date | None = None,
    kind: str | None = None,
    on_site: bool | None = None,
) -> QuerySet:
    """Field events newest first; `grid_cell` is the grid that held the event on its day,
    `since`/`until` are local dates, `on_site` applies to station contacts only."""
    qs = qs.select_related("community", "grid_cell", "building")
    if community:
        qs = qs.filter(community__code=community)
    if grid_cell:
        qs = qs.filter(grid_cell__code=grid_cell)
    if since:
        qs = qs.filter(occurred_at__date__gte=since)
    if until:
        qs = qs.filter(occurred_at__date__lte=until)
    if kind:
        qs = qs.filter(kind=kind)
    if on_site is not None:
        qs = qs.filter(on_site=on_site)
    return qs.order_by("-occurred_at", "id")


def visit_list(*, reach: Reach, **filters: Any) -> QuerySet[Visit]:
    """Visits in reach (by the community and grid that held them on their day); filters as
    `_event_list`."""
    return _event_list(access.visits_in_reach(reach), **filters)


def station_contact_list(*, reach: Reach, **filters: Any) -> QuerySet[StationContact]:
    """Check-ins and contacts of stationed cadres in communities wholly in reach; filters as
    `_event_list`."""
    return _event_list(access.station_contacts_in_reach(reach), **filters)


def members_for_export(*, reach: Reach, community: Community | None = None) -> QuerySet[PartyMember]:
    """The members a roster export by `reach` holds: those in reach, optionally of one community
    (living there, or in an organisation of it). The API and `export_members --user` both use it."""
    members = access.party_members_in_reach(reach)
    if community is not None:
        members = members.filter(
            Q(residence_building__community=community)
            | Q(organisation__community=community)
            | Q(organisation__grid_cell__community=community)
        )
    return members.distinct()
