"""Who reaches which places. The only way a queryset of spatial units is scoped to a user.

A user's Reach is the union of their active RoleAssignments: whole streets, whole communities and
single grid cells. Every selector, API view, tile, export and admin list of this app filters
through the functions here; orgs and mapping build their own filters from the same Reach.

`get_in_reach` is the only way to fetch one object for a user: "missing" and "not yours" get the
same answer, so ids and codes outside one's reach cannot be probed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from django.core.exceptions import MultipleObjectsReturned, ObjectDoesNotExist
from django.db.models import Model, Q, QuerySet

from edge.errors import NotInReach
from grid.models import (
    Building,
    Community,
    GridBoundary,
    GridCell,
    Role,
    RoleAssignment,
    ServiceCentre,
    Street,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

__all__ = ["NotInReach", "Reach", "get_in_reach", "reach_for_user", "reach_of_request", "scope"]

M = TypeVar("M", bound=Model)

READ_ROLES = frozenset(Role) - {Role.OPERATOR}
# What each role may do besides reading inside its reach.
CAPABILITIES: dict[str, frozenset[str]] = {
    "edit_space": frozenset({Role.STREET_ADMIN, Role.PLANNER}),
    "edit_orgs": frozenset({Role.STREET_ADMIN, Role.COMMUNITY_ADMIN}),
    "log_events": frozenset(
        {Role.GRID_WORKER, Role.STATIONED_CADRE, Role.COMMUNITY_ADMIN, Role.STREET_ADMIN}
    ),
    "view_pii": frozenset({Role.STREET_ADMIN, Role.COMMUNITY_ADMIN}),
    "view_audit": frozenset({Role.STREET_ADMIN}),
    "manage_users": frozenset({Role.OPERATOR, Role.STREET_ADMIN}),
}


@dataclass(frozen=True)
class Reach:
    """The places one user's roles cover, and the roles they hold."""

    street_ids: frozenset[int] = frozenset()
    community_ids: frozenset[int] = frozenset()
    grid_cell_ids: frozenset[int] = frozenset()
    roles: frozenset[str] = frozenset()
    everything: bool = False
    user_id: int | None = None
    # Roles per unit, for capability checks that depend on where (e.g. a planner of street A is
    # not a planner of street B).
    unit_roles: dict[tuple[str, int], frozenset[str]] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_empty(self) -> bool:
        return not (self.everything or self.street_ids or self.community_ids or self.grid_cell_ids)

    def can(self, capability: str) -> bool:
        """Whether any of the user's roles grants `capability` (somewhere in their reach)."""
        if self.everything:
            return True
        return bool(self.roles & CAPABILITIES[capability])

    def can_read(self) -> bool:
        return self.everything or bool(self.roles & READ_ROLES)

    # --- filters: one Q per kind of unit, `prefix` for related lookups ("community__" …) ---

    def street_q(self, prefix: str = "") -> Q:
        if self.everything:
            return Q()
        return Q(**{f"{prefix}id__in": self.street_ids_seen()})

    def community_q(self, prefix: str = "") -> Q:
        if self.everything:
            return Q()
        # A grid worker sees the community their grid lies in (its name and outline), not its data.
        return (
            Q(**{f"{prefix}street_id__in": self.street_ids})
            | Q(**{f"{prefix}id__in": self.community_ids})
            | Q(
                **{
                    f"{prefix}id__in": GridCell.objects.filter(id__in=self.grid_cell_ids).values(
                        "community_id"
                    )
                }
            )
        )

    def street_ids_seen(self) -> Any:
        """Streets the user reaches wholly or in part, as a subquery (no join, no DISTINCT)."""
        return (
            Street.objects.filter(id__in=self.street_ids)
            .values("id")
            .union(Community.objects.filter(id__in=self.community_ids).values("street_id"))
            .union(GridCell.objects.filter(id__in=self.grid_cell_ids).values("community__street_id"))
        )

    def grid_cell_q(self, prefix: str = "") -> Q:
        if self.everything:
            return Q()
        return (
            Q(**{f"{prefix}community__street_id__in": self.street_ids})
            | Q(**{f"{prefix}community_id__in": self.community_ids})
            | Q(**{f"{prefix}id__in": self.grid_cell_ids})
        )

    def place_q(self, *, community: str = "community", grid_cell: str = "grid_cell") -> Q:
        """For things that sit in a community and maybe a grid cell (buildings, members, events):
        community-wide reach sees all of them; grid reach sees those in its grid cells only."""
        if self.everything:
            return Q()
        return (
            Q(**{f"{community}__street_id__in": self.street_ids})
            | Q(**{f"{community}_id__in": self.community_ids})
            | Q(**{f"{grid_cell}_id__in": self.grid_cell_ids})
        )


NO_REACH = Reach()


def reach_for_user(user: AbstractBaseUser | AnonymousUser | None) -> Reach:
    """The reach of `user` from their active role assignments. Superusers reach everything."""
    if user is None or not user.is_authenticated or not user.is_active:
        return NO_REACH
    if getattr(user, "is_superuser", False):
        return Reach(everything=True, roles=frozenset(Role), user_id=user.pk)
    rows = RoleAssignment.objects.filter(user_id=user.pk, revoked_at__isnull=True).values_list(
        "role", "street_id", "community_id", "grid_cell_id"
    )
    streets: set[int] = set()
    communities: set[int] = set()
    cells: set[int] = set()
    roles: set[str] = set()
    unit_roles: dict[tuple[str, int], set[str]] = {}
    for role, street_id, community_id, cell_id in rows:
        roles.add(role)
        for kind, unit_id, bucket in (
            ("street", street_id, streets),
            ("community", community_id, communities),
            ("grid_cell", cell_id, cells),
        ):
            if unit_id is not None:
                bucket.add(unit_id)
                unit_roles.setdefault((kind, unit_id), set()).add(role)
    return Reach(
        street_ids=frozenset(streets),
        community_ids=frozenset(communities),
        grid_cell_ids=frozenset(cells),
        roles=frozenset(roles),
        user_id=user.pk,
        unit_roles={k: frozenset(v) for k, v in unit_roles.items()},
    )


def reach_of_request(request: Any) -> Reach:
    """The reach of the request's user, computed once per request."""
    cached = getattr(request, "_wangge_reach", None)
    if cached is None:
        cached = reach_for_user(getattr(request, "user", None))
        request._wangge_reach = cached
    return cached


# --- scoped querysets of this app's models ---------------------------------------------------


def streets_in_reach(reach: Reach, qs: QuerySet[Street] | None = None) -> QuerySet[Street]:
    qs = Street.objects.all() if qs is None else qs
    return qs.filter(reach.street_q())


def communities_in_reach(reach: Reach, qs: QuerySet[Community] | None = None) -> QuerySet[Community]:
    qs = Community.objects.all() if qs is None else qs
    return qs.filter(reach.community_q())


def grid_cells_in_reach(reach: Reach, qs: QuerySet[GridCell] | None = None) -> QuerySet[GridCell]:
    qs = GridCell.objects.all() if qs is None else qs
    return qs.filter(reach.grid_cell_q())


def grid_boundaries_in_reach(
    reach: Reach, qs: QuerySet[GridBoundary] | None = None
) -> QuerySet[GridBoundary]:
    qs = GridBoundary.objects.all() if qs is None else qs
    return qs.filter(reach.grid_cell_q(prefix="cell__"))


def buildings_in_reach(reach: Reach, qs: QuerySet[Building] | None = None) -> QuerySet[Building]:
    qs = Building.objects.all() if qs is None else qs
    return qs.filter(reach.place_q())


def service_centres_in_reach(
    reach: Reach, qs: QuerySet[ServiceCentre] | None = None
) -> QuerySet[ServiceCentre]:
    qs = ServiceCentre.objects.all() if qs is None else qs
    if reach.everything:
        return qs
    # Street-level centres serve the whole street: everyone in the street sees them.
    return qs.filter(
        Q(street_id__in=reach.street_ids)
        | Q(community_id__in=reach.community_ids)
        | Q(community_id__in=GridCell.objects.filter(id__in=reach.grid_cell_ids).values("community_id"))
        | Q(level=ServiceCentre.Level.STREET, street_id__in=reach.street_ids_seen())
    )


SCOPES: dict[type[Model], Any] = {
    Street: streets_in_reach,
    Community: communities_in_reach,
    GridCell: grid_cells_in_reach,
    GridBoundary: grid_boundaries_in_reach,
    Building: buildings_in_reach,
    ServiceCentre: service_centres_in_reach,
}


def scope(reach: Reach, qs: QuerySet[M], scopes: Mapping[type[Model], Any] = SCOPES) -> QuerySet[M]:
    """Scope any queryset to `reach` through the app's table of scope functions (grid's by
    default; orgs passes its own). Used by the admin and generic views."""
    fn = scopes.get(qs.model)
    if fn is None:
        raise LookupError(f"no reach scope for {qs.model.__name__}")
    return fn(reach, qs)


def get_in_reach(
    reach: Reach, qs: QuerySet[M], scopes: Mapping[type[Model], Any] = SCOPES, **lookup: Any
) -> M:
    """Fetch one object the user may see; NotInReach for missing and forbidden alike."""
    if not reach.can_read():
        raise NotInReach
    try:
        return scope(reach, qs, scopes).get(**lookup)
    except (ObjectDoesNotExist, MultipleObjectsReturned, ValueError, TypeError) as exc:
        raise NotInReach from exc
