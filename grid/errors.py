"""Errors the grid services raise: a stable machine code plus a message in Chinese for people."""


class GridError(Exception):
    code = "grid_error"

    def __init__(self, message: str, *, code: str | None = None, detail: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.detail = detail or {}


class InvalidGeometry(GridError):
    code = "geometry_invalid"


class BoundaryConflict(GridError):
    code = "boundary_conflict"


class UnknownUnit(GridError):
    code = "unit_unknown"
