"""Writing the audit log. Services call `audit_record` inside their own transaction, so a write
and its audit row commit or roll back together.

Who and from where come from the request when there is one: the middleware in ops puts them in a
context variable, because threading the request through every service signature would tie
services to HTTP. Commands and tasks set their own actor with `acting_as`.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.contrib.gis.geos import GEOSGeometry
from django.db import models

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


# --- the update skeleton every update service shares --------------------------------------------

# A geometry with more vertices than this is logged as a count, not as WKT: an outline can carry
# thousands, and the log is for who changed what, not a second copy of the shapes.
MAX_AUDITED_VERTICES = 20
# 1e-9 degree is about 0.1 mm: a geometry that moved less than that (a form's GeoJSON round trip)
# did not change.
SAME_GEOMETRY_DEG = 1e-9
REDACTED = "已修改"


def audit_value(value: Any) -> Any:
    """A field value as JSON for the audit log: related objects by id, dates as ISO text,
    decimals as text, small geometries as WKT and large ones as a vertex count."""
    if isinstance(value, GEOSGeometry):
        if value.num_coords <= MAX_AUDITED_VERTICES:
            return value.wkt
        return f"{value.geom_type}（{value.num_coords} 个顶点）"
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def same_value(before: Any, after: Any) -> bool:
    """Whether a field keeps its value: geometries compare by shape, within SAME_GEOMETRY_DEG."""
    if isinstance(before, GEOSGeometry) or isinstance(after, GEOSGeometry):
        if not (isinstance(before, GEOSGeometry) and isinstance(after, GEOSGeometry)):
            return False
        if before.srid and after.srid and before.srid != after.srid:
            return False
        # Same vertices within the noise of a text round trip, or the same point set (a ring
        # that starts elsewhere or runs the other way).
        return before.equals_exact(after, SAME_GEOMETRY_DEG) or before.equals(after)
    return before == after


def audited_update(
    obj: models.Model,
    *,
    fields: Mapping[str, Any],
    summary: str,
    object_type: str | None = None,
    street_id: int | None = None,
    redacted: Collection[str] = (),
    reason: str = "",
) -> dict[str, Any]:
    """Set `fields` on `obj`, save the ones whose value changed and write the audit row.

    The skeleton of every update service; call it inside the service's transaction, on a row the
    service has locked (select_for_update) and after its own checks:

    - a field is changed when its new value differs from the current one (related objects by id,
      geometries by shape: see `same_value`); unchanged fields are neither saved nor logged;
    - one `save(update_fields=[...changed, auto_now fields])`: a concurrent write of another
      column is not overwritten with a stale value;
    - one audit row (action "update", `object_type` defaults to the model's label, object id its
      pk, the id the admin's own audit looks for) with changes {field: [before, after]} as JSON
      (`audit_value`); a field named in `redacted` (personal data) is logged as "已修改" only.

    Returns the changes written (empty when nothing changed: then nothing is saved or logged, and
    the caller has nothing to announce).
    """
    current = {name: getattr(obj, name) for name in fields}
    changed = [name for name, value in fields.items() if not same_value(current[name], value)]
    if not changed:
        return {}
    for name in changed:
        setattr(obj, name, fields[name])
    meta = obj._meta
    auto_now = [f.name for f in meta.concrete_fields if getattr(f, "auto_now", False)]
    obj.save(update_fields=[meta.get_field(name).name for name in changed] + auto_now)
    diff: dict[str, Any] = {
        name: REDACTED if name in redacted else [audit_value(current[name]), audit_value(fields[name])]
        for name in changed
    }
    audit_record(
        action="update",
        object_type=object_type or meta.label,
        object_id=obj.pk,
        summary=summary,
        changes=diff,
        reason=reason,
        street_id=street_id,
    )
    return diff
