"""Writing the audit log. Services call `audit_record` inside their own transaction, so a write
and its audit row commit or roll back together.

Who and from where come from the request when there is one: the middleware in ops puts them in a
context variable, because threading the request through every service signature would tie
services to HTTP. Commands and tasks set their own actor with `acting_as`.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from grid.models import AuditEvent


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    name: str
    ip: str | None = None


SYSTEM = Actor(user_id=None, name="system")
_current: contextvars.ContextVar[Actor] = contextvars.ContextVar("wangge_actor", default=SYSTEM)


def current_actor() -> Actor:
    return _current.get()


@contextlib.contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    token = _current.set(actor)
    try:
        yield actor
    finally:
        _current.reset(token)


def command_actor(command: str) -> Actor:
    """Who runs a management command: the operating-system account, since there is no login."""
    import getpass

    try:
        account = getpass.getuser()
    except (KeyError, OSError):
        account = "unknown"
    return Actor(user_id=None, name=f"命令行 {command}（{account}）")


def actor_for_user(user: Any, ip: str | None = None) -> Actor:
    if user is None or not getattr(user, "is_authenticated", False):
        return Actor(user_id=None, name="anonymous", ip=ip)
    return Actor(user_id=user.pk, name=user.get_username(), ip=ip)


def client_ip(request: Any) -> str | None:
    """The client's address. Behind the intranet reverse proxy the first X-Forwarded-For hop is
    the client, trusted only when the operator says a proxy is in front (USE_X_FORWARDED_FOR)."""
    from django.conf import settings

    if getattr(settings, "USE_X_FORWARDED_FOR", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip() or None
    return request.META.get("REMOTE_ADDR") or None


def set_actor_from_request(request: Any) -> None:
    """Re-resolve the actor once DRF has authenticated (token and basic auth happen in the view,
    after the middleware ran). The middleware's reset restores the outer value afterwards."""
    _current.set(actor_for_user(getattr(request, "user", None), client_ip(request)))


def audit_record(
    *,
    action: str,
    object_type: str,
    object_id: object = "",
    summary: str = "",
    changes: dict[str, Any] | None = None,
    reason: str = "",
    street_id: int | None = None,
    actor: Actor | None = None,
) -> AuditEvent:
    actor = actor or current_actor()
    return AuditEvent.objects.create(
        actor_id=actor.user_id,
        actor_name=actor.name[:150],
        action=action,
        object_type=object_type[:64],
        object_id=str(object_id)[:64],
        summary=summary[:500],
        changes=changes or {},
        reason=reason[:500],
        ip=actor.ip,
        street_id=street_id,
    )
