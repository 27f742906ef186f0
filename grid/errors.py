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


class CodeParentMismatch(GridError):
    """A unit's code does not start with its parent's code (see grid.models.PARENT_CODE_LENGTH)."""

    code = "code_parent_mismatch"


class PartitionInvalid(GridError):
    """A boundary write would leave a grid cell outside its community or overlapping a neighbour.

    `code` is the first finding's (grid_outside_community, grid_overlap); detail["problems"]
    lists every finding (grid.partition.PartitionProblem.as_dict), with cells and geometry."""

    code = "partition_invalid"
