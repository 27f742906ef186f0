"""Errors the grid services raise: a stable machine code plus a message in Chinese for people."""

from edge.errors import DomainError


class GridError(DomainError):
    code = "grid_error"


class InvalidGeometry(GridError):
    code = "geometry_invalid"


class BoundaryConflict(GridError):
    code = "boundary_conflict"


class UnknownUnit(GridError):
    code = "unit_unknown"
