"""Who sees and edits planners' drafts: the only way a plan is fetched for a user.

Drafts are planning work, not community data: only the roles that redraw space (capability
`edit_space`: planners and street administrators) see them, and only for communities they hold
whole with such a role (a planner of street S plans S's communities; a grid-level role plans
nothing, a draft being community-wide). Everyone else sees no plan at all, and a plan outside
one's planning reach answers exactly like a missing one (NotInReach, 404).
"""

from __future__ import annotations

from django.db.models import QuerySet

from edge.errors import NotInReach, reference_not_found
from grid.access import Reach
from grid.models import Community
from mapping.plans_models import Plan
from orgs.access import capability_reach, communities_wholly_in_reach

CAPABILITY = "edit_space"


def planning_reach(reach: Reach) -> Reach:
    """The part of `reach` where the user may plan (empty without edit_space)."""
    return capability_reach(reach, CAPABILITY)


def communities_plannable(reach: Reach, qs: QuerySet[Community] | None = None) -> QuerySet[Community]:
    qs = Community.objects.all() if qs is None else qs
    part = planning_reach(reach)
    if not part.everything and part.is_empty:
        return qs.none()
    return communities_wholly_in_reach(part, qs)


def plans_in_reach(reach: Reach, qs: QuerySet[Plan] | None = None) -> QuerySet[Plan]:
    qs = Plan.objects.all() if qs is None else qs
    return qs.filter(community__in=communities_plannable(reach).values("pk"))


def plan_get(reach: Reach, plan_id: int) -> Plan:
    """One plan the user may plan: NotInReach for missing and forbidden alike."""
    plan = plans_in_reach(reach, Plan.objects.select_related("community")).filter(pk=plan_id).first()
    if plan is None:
        raise NotInReach
    return plan


def community_for_planning(reach: Reach, code: str) -> Community:
    """The community a new draft is for, by code; reference_not_found when missing or not plannable."""
    community = communities_plannable(reach).filter(code=code).first()
    if community is None:
        raise reference_not_found("community", code)
    return community
