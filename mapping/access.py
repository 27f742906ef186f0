"""Who sees which coverage gaps: the only way a queryset of gaps is scoped to a user.

Built from grid.access.Reach like every other scope: street reach sees every gap of its streets'
communities, community reach every gap of its communities (area gaps and stationed cadres
included), grid reach the gaps lying in its grid cells only (a grid worker sees the buildings,
members and enterprises of their grids, not the community's uncovered areas or its cadres).
"""

from __future__ import annotations

from django.db.models import QuerySet

from grid.access import Reach
from mapping.models import Gap


def gaps_in_reach(reach: Reach, qs: QuerySet[Gap] | None = None) -> QuerySet[Gap]:
    qs = Gap.objects.all() if qs is None else qs
    if not reach.can_read():
        return qs.none()
    return qs.filter(reach.place_q())
