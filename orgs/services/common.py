"""Helpers every orgs service shares: the audit row's snapshot and diff, street look-ups, PII sealing."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any

from grid.access import Reach
from grid.audit import audit_record
from grid.models import Building, Community
from orgs import access
from orgs.models import (
    PartyMember,
    PartyOrganisation,
)


def plain(value: Any) -> Any:
    """A field value as JSON: related objects by id, dates as ISO text, decimals as text."""
    if hasattr(value, "pk"):
        return value.pk
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def snapshot(obj: Any, fields: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in fields:
        field = obj._meta.get_field(name)
        out[name] = getattr(obj, field.attname) if field.is_relation else plain(getattr(obj, name))
    return out


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {k: [before[k], after[k]] for k in after if before.get(k) != after[k]}


def audit(
    action: str,
    obj: Any,
    summary: str,
    *,
    changes: dict[str, Any] | None = None,
    street_id: int | None = None,
) -> None:
    audit_record(
        action=action,
        object_type=obj._meta.label,
        object_id=obj.pk,
        summary=summary,
        changes=changes,
        street_id=street_id,
    )


def community_street_id(community_id: int | None) -> int | None:
    if community_id is None:
        return None
    return Community.objects.values_list("street_id", flat=True).filter(pk=community_id).first()


def member_street_id(member: PartyMember) -> int | None:
    if member.organisation_id is not None:
        return (
            PartyOrganisation.objects.values_list("street_id", flat=True)
            .filter(pk=member.organisation_id)
            .first()
        )
    if member.residence_building_id is not None:
        return (
            Building.objects.values_list("community__street_id", flat=True)
            .filter(pk=member.residence_building_id)
            .first()
        )
    return None


class _Unset:
    pass


UNSET: Any = _Unset()


def apply_pii(obj: Any, field: str, value: str | None, sealer: Any) -> None:
    """Seal a clear value into `<field>_cipher`/`<field>_hash`; "" or None clears both."""
    if value:
        sealed = sealer(value)
        setattr(obj, f"{field}_cipher", sealed.cipher)
        setattr(obj, f"{field}_hash", sealed.hash)
    else:
        setattr(obj, f"{field}_cipher", "")
        setattr(obj, f"{field}_hash", None)


def ensure_editable(reach: Reach | None, obj: Any) -> None:
    """Inside a write: refuse it whole (OutsideEditReach, 403) unless the caller may edit `obj` as
    the write left it. `reach=None` is a trusted caller (the demo generator, an operator's import)."""
    if reach is not None:
        access.ensure_editable(reach, obj)
