"""Reads of space. Point lookups go through the subdivided boundary parts (small polygons, fast)."""

from __future__ import annotations

from datetime import date

from django.contrib.gis.geos import Point
from django.db.models import Count, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from grid import access, sql
from grid.access import Reach
from grid.models import (
    STORAGE_SRID,
    Building,
    Community,
    GridBoundary,
    GridCell,
    ServiceCentre,
    Street,
)


def today() -> date:
    return timezone.localdate()


def grid_cell_at(*, point: Point, on_date: date | None = None) -> GridCell | None:
    """The grid cell whose boundary covered `point` on `on_date` (today by default).

    ST_Covers, not ST_Contains: a point exactly on an edge still belongs to a grid. Where it lies on
    the shared edge of two grids the lower code wins, so the answer is stable.
    """
    on_date = on_date or today()
    x, y = point.x, point.y
    if point.srid not in (None, STORAGE_SRID):
        stored = Point(point.x, point.y, srid=point.srid)
        stored.transform(STORAGE_SRID)
        x, y = stored.x, stored.y
    cell_id = sql.grid_cell_id_at(lon=x, lat=y, on_date=on_date)
    if cell_id is None:
        return None
    # The community's outline is large; callers want its name and code, not its shape.
    return GridCell.objects.select_related("community").defer("community__geom").get(id=cell_id)


def grid_boundaries_as_of(*, on_date: date | None = None) -> QuerySet[GridBoundary]:
    """The boundary versions in force on `on_date`; current ones when no date is given."""
    qs = GridBoundary.objects.select_related("cell", "cell__community")
    if on_date is None:
        return qs.filter(valid__upper_inf=True)
    return qs.filter(valid__contains=on_date)


def grid_cell_history(*, cell: GridCell) -> QuerySet[GridBoundary]:
    """Every boundary version of `cell` (fetched in reach by the caller), oldest first."""
    return GridBoundary.objects.filter(cell=cell).select_related("cell").order_by("valid")


def buildings_without_grid() -> QuerySet[Building]:
    return Building.objects.filter(grid_cell__isnull=True)


# --------------------------------------------------------------------------------------------
# Reads for the API, scoped by the caller's reach (grid.access). Each returns a queryset whose rows
# carry everything their serializer shows (select_related / annotations), so a page costs the same
# queries for 1 row or 100. The *_get functions answer None for "missing" and "not yours" alike.
# --------------------------------------------------------------------------------------------


def _with_building_counts(qs: QuerySet[GridBoundary]) -> QuerySet[GridBoundary]:
    """Annotate each version with its cell's building and household counts.

    Correlated subqueries rather than a JOIN + GROUP BY: they do not multiply the boundary rows and
    leave the geometry column out of any GROUP BY. Counts follow the buildings' current grid
    assignment (the only one stored), also for past versions.
    """
    per_cell = Building.objects.filter(grid_cell_id=OuterRef("cell_id")).order_by().values("grid_cell_id")
    return qs.annotate(
        building_count=Coalesce(Subquery(per_cell.annotate(n=Count("id")).values("n")), 0),
        household_count=Coalesce(Subquery(per_cell.annotate(n=Sum("households")).values("n")), 0),
    )


def street_list(*, reach: Reach) -> QuerySet[Street]:
    return access.streets_in_reach(reach).order_by("code")


def street_get(*, reach: Reach, code: str) -> Street | None:
    return street_list(reach=reach).filter(code=code).first()


def community_list(*, reach: Reach, street_code: str | None = None) -> QuerySet[Community]:
    qs = access.communities_in_reach(reach, Community.objects.select_related("street")).order_by("code")
    if street_code:
        qs = qs.filter(street__code=street_code)
    return qs


def community_get(*, reach: Reach, code: str) -> Community | None:
    return community_list(reach=reach).filter(code=code).first()


def grid_cell_get(*, reach: Reach, code: str) -> GridCell | None:
    return (
        access.grid_cells_in_reach(reach, GridCell.objects.select_related("community"))
        .filter(code=code)
        .first()
    )


def grid_cell_features(
    *,
    reach: Reach,
    on_date: date | None = None,
    community_code: str | None = None,
    cell_ids: list[int] | None = None,
) -> QuerySet[GridBoundary]:
    """Grid cells as drawn on `on_date` (current versions when None): one boundary version per
    cell, with the cell, its community and building/household counts. Cells without a version in
    force that day have no shape then and are left out."""
    qs = access.grid_boundaries_in_reach(reach, grid_boundaries_as_of(on_date=on_date))
    if community_code:
        qs = qs.filter(cell__community__code=community_code)
    if cell_ids is not None:
        qs = qs.filter(cell_id__in=cell_ids)
    return _with_building_counts(qs).order_by("cell__code")


def grid_cell_feature_get(*, reach: Reach, code: str, on_date: date | None = None) -> GridBoundary | None:
    return grid_cell_features(reach=reach, on_date=on_date).filter(cell__code=code).first()


def building_list(
    *, reach: Reach, community_code: str | None = None, grid_code: str | None = None
) -> QuerySet[Building]:
    qs = access.buildings_in_reach(reach, Building.objects.select_related("community", "grid_cell")).order_by(
        "code"
    )
    if community_code:
        qs = qs.filter(community__code=community_code)
    if grid_code:
        qs = qs.filter(grid_cell__code=grid_code)
    return qs


def building_get(*, reach: Reach, code: str) -> Building | None:
    return building_list(reach=reach).filter(code=code).first()


def service_centre_list(
    *, reach: Reach, street_code: str | None = None, community_code: str | None = None
) -> QuerySet[ServiceCentre]:
    qs = access.service_centres_in_reach(
        reach, ServiceCentre.objects.select_related("street", "community")
    ).order_by("code")
    if street_code:
        qs = qs.filter(street__code=street_code)
    if community_code:
        qs = qs.filter(community__code=community_code)
    return qs
