"""The errors every layer raises for people and clients: a stable machine code plus a Chinese
message. The API answers a DomainError with 400 and `{"code", "message", **detail}`
(edge.api_errors); the admin and the commands show its message."""

from __future__ import annotations


class DomainError(Exception):
    """A refusal by the rules of the domain (not a bug): the write it stopped changed nothing."""

    code = "domain_error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, detail: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.detail = detail or {}


class Conflict(DomainError):
    """The object changed under the caller, or another write holds it: 409, try again."""

    code = "conflict"
    status = 409


class OutsideEditReach(DomainError):
    """The caller may see the object (or would create it) but may not change it there: 403.

    The one answer of every "may this user edit it" check, before a write (the object) and inside
    the write (where the result lands), so a client branches on one code whatever it edits."""

    code = "outside_edit_reach"
    status = 403


class NotInReach(Exception):
    """Raised for a missing object and for one outside the user's reach alike (answered 404)."""

    code = "not_found"
    message = "对象不存在或无权访问"


def reference_not_found(field: str, value: object) -> DomainError:
    """A write names an object (parent, community, building...) the caller cannot see: missing
    and out-of-reach read the same, as for fetch-by-id."""
    return DomainError(
        f"{field} 指向的对象不存在或无权访问：{value}", code="reference_not_found", detail={"field": field}
    )
