"""Reads of the mapping app: coverage gaps for the map and their counts by unit."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from grid.access import Reach, grid_cells_in_reach
from grid.models import Community, GridCell, Street
from mapping.access import gaps_in_reach
from mapping.models import Gap


def gap_list(
    *,
    reach: Reach,
    kind: str | None = None,
    street: str | None = None,
    community: str | None = None,
    grid_cell: str | None = None,
    since_before: date | None = None,
    resolved: bool = False,
) -> QuerySet[Gap]:
    """Gaps in reach, newest first: open ones (`resolved` false) or the closed history (true).
    Units by code; `since_before` keeps gaps first found before that local day (the old ones)."""
    qs = gaps_in_reach(reach).filter(resolved_at__isnull=not resolved)
    if kind:
        qs = qs.filter(kind=kind)
    if street:
        qs = qs.filter(community__street__code=street)
    if community:
        qs = qs.filter(community__code=community)
    if grid_cell:
        qs = qs.filter(grid_cell__code=grid_cell)
    if since_before:
        tz = timezone.get_current_timezone()
        qs = qs.filter(since__lt=datetime.combine(since_before, time.min, tzinfo=tz))
    return qs.select_related("community__street", "grid_cell").order_by("-since", "id")


def _whole_streets(reach: Reach) -> QuerySet[Street]:
    return Street.objects.all() if reach.everything else Street.objects.filter(id__in=reach.street_ids)


def _whole_communities(reach: Reach) -> QuerySet[Community]:
    if reach.everything:
        return Community.objects.all()
    return Community.objects.filter(Q(street_id__in=reach.street_ids) | Q(id__in=reach.community_ids))


def gap_summary(
    *, reach: Reach, kind: str | None = None, street: str | None = None, community: str | None = None
) -> dict[str, Any]:
    """Open gaps counted by kind for every unit the caller holds wholly: their streets, their
    communities and the current grid cells in reach (a grid worker gets rows for their grids only,
    never a community total that would count other grids' gaps). Units without gaps are listed
    with zeros. Six queries whatever the size."""
    gaps = gap_list(reach=reach, kind=kind, street=street, community=community).order_by()
    streets = _whole_streets(reach)
    communities = _whole_communities(reach)
    cells = grid_cells_in_reach(reach, GridCell.objects.filter(boundaries__valid__upper_inf=True))
    if street:
        streets = streets.filter(code=street)
        communities = communities.filter(street__code=street)
        cells = cells.filter(community__street__code=street)
    if community:
        streets = streets.filter(communities__code=community)
        communities = communities.filter(code=community)
        cells = cells.filter(community__code=community)
    units: list[dict[str, Any]] = []
    for level, qs, key in (
        ("street", streets, "community__street_id"),
        ("community", communities, "community_id"),
        ("grid_cell", cells, "grid_cell_id"),
    ):
        counts: dict[int, dict[str, int]] = defaultdict(dict)
        for row in gaps.values(key, "kind").annotate(n=Count("id")):
            counts[row[key]][row["kind"]] = row["n"]
        for unit_id, code, name in qs.order_by("code").values_list("id", "code", "name").distinct():
            by_kind = counts.get(unit_id, {})
            units.append(
                {"level": level, "code": code, "name": name, "open": sum(by_kind.values()), "by_kind": by_kind}
            )
    return {"kinds": [{"kind": k, "label": label} for k, label in Gap.Kind.choices], "units": units}
