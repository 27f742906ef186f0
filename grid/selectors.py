"""Reads of space. Point lookups go through the subdivided boundary parts (small polygons, fast)."""

from __future__ import annotations

from datetime import date

from django.contrib.gis.geos import Point
from django.db.models import QuerySet
from django.utils import timezone

from grid.models import STORAGE_SRID, Building, GridBoundary, GridBoundaryPart, GridCell


def today() -> date:
    return timezone.localdate()


def grid_cell_at(*, point: Point, on_date: date | None = None) -> GridCell | None:
    """The grid cell whose boundary covered `point` on `on_date` (today by default).

    ST_Covers, not ST_Contains: a point exactly on an edge still belongs to a grid. Where it lies on
    the shared edge of two grids the lower code wins, so the answer is stable.
    """
    on_date = on_date or today()
    if point.srid is None:
        point = Point(point.x, point.y, srid=STORAGE_SRID)
    cell_id = (
        GridBoundaryPart.objects.filter(geom__covers=point, boundary__valid__contains=on_date)
        .order_by("boundary__cell__code")
        .values_list("boundary__cell_id", flat=True)
        .first()
    )
    return GridCell.objects.select_related("community").get(id=cell_id) if cell_id else None


def grid_boundaries_as_of(*, on_date: date | None = None) -> QuerySet[GridBoundary]:
    """The boundary versions in force on `on_date`; current ones when no date is given."""
    qs = GridBoundary.objects.select_related("cell", "cell__community")
    if on_date is None:
        return qs.filter(valid__upper_inf=True)
    return qs.filter(valid__contains=on_date)


def grid_cell_history(*, cell: GridCell) -> QuerySet[GridBoundary]:
    return GridBoundary.objects.filter(cell=cell).order_by("valid")


def buildings_without_grid() -> QuerySet[Building]:
    return Building.objects.filter(grid_cell__isnull=True)
