"""Errors the orgs services raise: a stable machine code plus a message in Chinese for people.

They subclass grid's GridError so the API's error handler (ops/api_errors.py) answers them with
400 and their code, and so callers can catch every domain error with one except clause.
"""

from grid.errors import GridError


class OrgError(GridError):
    code = "org_error"


class TreeMismatch(OrgError):
    """The organisation tree disagrees with space (a grid branch on another community's grid...)."""

    code = "org_tree_mismatch"


class AttachmentInvalid(OrgError):
    """An organisation is not attached to the unit its kind requires."""

    code = "org_attachment_invalid"


class DuplicatePerson(OrgError):
    code = "person_duplicate"


class PiiInvalid(OrgError):
    code = "pii_invalid"
