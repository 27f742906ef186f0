"""Reads of the street office's page (/dashboard/): where a user lands, the units the page starts
from, the search box, and the indicator of every grid cell the map shades.

Everything is scoped through grid.access and orgs.access (the one way a queryset meets a user);
nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.gis.db.models import GeometryField
from django.contrib.gis.db.models.functions import Envelope
from django.db.models import F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from grid.access import (
    READ_ROLES,
    Reach,
    buildings_in_reach,
    communities_in_reach,
    grid_cells_in_reach,
    streets_in_reach,
)
from grid.models import STORAGE_SRID, Building, Community, GridBoundary, GridCell, Role, Street
from mapping import indicators, indicators_sql
from orgs.access import enterprises_in_reach, party_orgs_in_reach
from orgs.models import PartyOrganisation

# Roles whose own page is the tablet: they log visits in the field and read nothing wider.
FIELD_ROLES = frozenset({Role.GRID_WORKER, Role.STATIONED_CADRE})
SEARCH_LIMIT = 20

SEARCH_KINDS = {
    "street": "街道",
    "community": "社区",
    "grid_cell": "网格",
    "building": "楼栋",
    "organisation": "党组织",
    "enterprise": "两新组织",
}


# --------------------------------------------------------------------------------------------
# Where a signed-in user lands
# --------------------------------------------------------------------------------------------


def home_path(*, reach: Reach) -> str | None:
    """The page a user opens on `/` and after signing in; None when they have none (no role).

    Field roles alone go to the tablet; any wider reading role (street or community admin,
    leader, planner) to the dashboard, so a community secretary who is also a grid worker sees
    the map. Planners go to the planning page once it exists, the dashboard until then. The
    operator reads no data: the admin is their page. A superuser reaches everything: the map.
    """
    if reach.everything:
        return reverse("dashboard")
    wide = (reach.roles & READ_ROLES) - FIELD_ROLES
    if wide == {Role.PLANNER}:
        try:
            return reverse("planning")
        except NoReverseMatch:
            return reverse("dashboard")
    if wide:
        return reverse("dashboard")
    if reach.roles & FIELD_ROLES:
        return reverse("tablet")
    if Role.OPERATOR in reach.roles:
        return reverse("admin:index")
    return None


# --------------------------------------------------------------------------------------------
# The units the page starts from
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    type: str
    code: str
    name: str
    bbox: tuple[float, float, float, float] | None

    def as_json(self) -> dict[str, Any]:
        return {"type": self.type, "code": self.code, "name": self.name, "bbox": self.bbox}


def _bbox(box: Any) -> tuple[float, float, float, float] | None:
    return None if box is None else tuple(round(v, 6) for v in box.extent)  # type: ignore[return-value]


def _current_boundary(cell_ref: str) -> Subquery:
    # A cell's shape is its open-ended boundary version (grid.selectors.grid_boundaries_as_of).
    return Subquery(
        GridBoundary.objects.filter(cell_id=OuterRef(cell_ref), valid__upper_inf=True).values("geom")[:1],
        output_field=GeometryField(srid=STORAGE_SRID),
    )


def dashboard_roots(*, reach: Reach) -> list[Unit]:
    """The widest units held wholly, each with its extent: the streets of street roles (every
    street for a superuser), then communities not inside those streets, then grid cells not
    inside those communities. The page opens on the first and fits the map to all of them."""
    units: list[Unit] = []
    streets = Street.objects.all() if reach.everything else Street.objects.filter(id__in=reach.street_ids)
    for s in streets.annotate(box=Envelope("geom")).order_by("code").values("code", "name", "box"):
        units.append(Unit("street", s["code"], s["name"], _bbox(s["box"])))
    if reach.everything:
        return units
    communities = Community.objects.filter(id__in=reach.community_ids).exclude(street_id__in=reach.street_ids)
    for c in communities.annotate(box=Envelope("geom")).order_by("code").values("code", "name", "box"):
        units.append(Unit("community", c["code"], c["name"], _bbox(c["box"])))
    cells = (
        GridCell.objects.filter(id__in=reach.grid_cell_ids)
        .exclude(community__street_id__in=reach.street_ids)
        .exclude(community_id__in=reach.community_ids)
        .annotate(box=Envelope(_current_boundary("pk")))
    )
    for g in cells.order_by("code").values("code", "name", "box"):
        units.append(Unit("grid_cell", g["code"], g["name"], _bbox(g["box"])))
    return units


def extent_of(units: list[Unit]) -> tuple[float, float, float, float] | None:
    boxes = [u.bbox for u in units if u.bbox]
    if not boxes:
        return None
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


# --------------------------------------------------------------------------------------------
# Search
# --------------------------------------------------------------------------------------------


def _matching(qs: QuerySet[Any], q: str) -> QuerySet[Any]:
    # A code is typed from its start (440803006…); a name anywhere inside it (“海滨”).
    return qs.filter(Q(code__istartswith=q) | Q(name__icontains=q))


def search(*, reach: Reach, q: str, limit: int = SEARCH_LIMIT) -> list[dict[str, Any]]:
    """Units, buildings, organisations and enterprises in the reach whose code starts with `q` or
    whose name holds it; at most `limit`, the wider kinds first, each with its extent (bbox) to
    zoom to. One query per kind, each sliced to what is still missing."""
    found: list[dict[str, Any]] = []

    def take(
        kind: str, qs: QuerySet[Any], box: Any, context: Any = None, labels: dict[str, str] | None = None
    ) -> None:
        room = limit - len(found)
        if room <= 0:
            return
        rows = qs.annotate(box=Envelope(box), context=context or Value("")).order_by("code", "pk")
        for row in rows.values("code", "name", "box", "context")[:room]:
            found.append(
                {
                    "type": kind,
                    "type_display": SEARCH_KINDS[kind],
                    "code": row["code"],
                    "label": row["name"],
                    "context": (labels or {}).get(row["context"], row["context"]),
                    "bbox": _bbox(row["box"]),
                }
            )

    take("street", _matching(streets_in_reach(reach), q), F("geom"))
    take("community", _matching(communities_in_reach(reach), q), F("geom"), F("street__name"))
    take("grid_cell", _matching(grid_cells_in_reach(reach), q), _current_boundary("pk"), F("community__name"))
    take("building", _matching(buildings_in_reach(reach), q), F("geom"), F("community__name"))
    # An organisation is found where it hangs: its premises, grid cell, first building,
    # community or street, the most specific first.
    first_building = Subquery(
        Building.objects.filter(party_groups=OuterRef("pk")).order_by("code").values("geom")[:1],
        output_field=GeometryField(srid=STORAGE_SRID),
    )
    org_place = Coalesce(
        F("premises__geom"),
        _current_boundary("grid_cell_id"),
        first_building,
        F("community__geom"),
        F("street__geom"),
        output_field=GeometryField(srid=STORAGE_SRID),
    )
    take(
        "organisation",
        _matching(party_orgs_in_reach(reach), q),
        org_place,
        F("kind"),
        labels=dict(PartyOrganisation.Kind.choices),
    )
    # Enterprises have no code of ours: their unified social credit code stands in for one.
    firms = enterprises_in_reach(reach).filter(Q(credit_code__istartswith=q) | Q(name__icontains=q))
    take("enterprise", firms.annotate(code=F("credit_code")), F("geom"), F("community__name"))
    return found


# --------------------------------------------------------------------------------------------
# Indicators of every grid cell, for the map's shading
# --------------------------------------------------------------------------------------------


def grid_cell_indicators(
    *, reach: Reach, street: str | None = None, community: str | None = None
) -> list[dict[str, Any]]:
    """The live indicators of every current grid cell in the reach (optionally of one street or
    community), keyed by the cell id the vector tiles carry, so the page shades cells with
    feature-state and never refetches a tile when the user picks another indicator.

    One run of the indicators statement (mapping.indicators_sql) over the communities holding
    those cells: the figures /api/indicators/ gives one unit at a time, for all of them at once.
    """
    cells = grid_cells_in_reach(reach).filter(boundaries__valid__upper_inf=True)
    if street:
        cells = cells.filter(community__street__code=street)
    if community:
        cells = cells.filter(community__code=community)
    wanted = dict(cells.values_list("id", "community_id"))
    if not wanted:
        return []
    at = timezone.now()
    # indicator_parameters is the indicators module's own builder of the statement's windows and
    # thresholds: computing them again here could drift from what /api/indicators/ answers.
    params = indicators.indicator_parameters(
        community_ids=sorted(set(wanted.values())), day=timezone.localtime(at).date(), at=at
    )
    return [
        {"id": unit_id, "code": code, "name": name, "indicators": figures}
        for unit_type, unit_id, code, name, figures in indicators_sql.indicator_rows(params)
        if unit_type == "grid_cell" and unit_id in wanted
    ]
