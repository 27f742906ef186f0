"""Errors the orgs services raise: a stable machine code plus a message in Chinese for people.

They are DomainErrors (edge.errors): the API answers them with 400 and their code, and callers
catch every domain error with one except clause.
"""

from edge.errors import DomainError


class OrgError(DomainError):
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
