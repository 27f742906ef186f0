"""Helpers every orgs service shares: the audit row's snapshot and diff, street look-ups, PII sealing."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any, TypeVar

from django.db.models import Model, Q, QuerySet

from grid.access import Reach
from grid.audit import audit_record, audit_value
from grid.models import Building, Community
from orgs import access
from orgs.errors import OrgError
from orgs.models import (
    PartyMember,
    PartyOrganisation,
)

M = TypeVar("M", bound=Model)


def snapshot(obj: Any, fields: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in fields:
        field = obj._meta.get_field(name)
        out[name] = getattr(obj, field.attname) if field.is_relation else audit_value(getattr(obj, name))
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


def _org_places(orgs: QuerySet[PartyOrganisation], *, street_wide: bool) -> Q:
    places = (
        Q(pk__in=orgs.values("community_id"))
        | Q(pk__in=orgs.values("grid_cell__community_id"))
        | Q(pk__in=orgs.values("premises__community_id"))
        | Q(pk__in=Building.objects.filter(party_groups__in=orgs.values("pk")).values("community_id"))
    )
    if street_wide:
        street_level = Q(kind=PartyOrganisation.Kind.STREET_COMMITTEE) | Q(
            kind=PartyOrganisation.Kind.JOINT_BRANCH, community__isnull=True
        )
        places |= Q(street_id__in=orgs.filter(street_level).values("street_id"))
    return places


def org_community_ids(orgs: QuerySet[PartyOrganisation]) -> set[int]:
    """The communities whose data these organisations are part of, in one query: the community
    each hangs on, directly or through its grid, premises or buildings; a street-level
    organisation (the working committee, a joint branch without a community) counts for every
    community of its street, since it answers for their gaps (兜底)."""
    return set(Community.objects.filter(_org_places(orgs, street_wide=True)).values_list("pk", flat=True))


def member_community_ids(members: QuerySet[PartyMember]) -> set[int]:
    """The communities members count in, in one query: where they live, reported to (双报到) and
    work, and where their organisation hangs (not its whole street: a working committee's member
    is not data of every community)."""
    orgs = PartyOrganisation.objects.filter(pk__in=members.values("organisation_id"))
    places = (
        Q(pk__in=members.values("residence_building__community_id"))
        | Q(pk__in=members.values("reported_community_id"))
        | Q(pk__in=members.values("work_enterprise__community_id"))
        | _org_places(orgs, street_wide=False)
    )
    return set(Community.objects.filter(places).values_list("pk", flat=True))


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


def locked_for_update(
    obj: M, changes: Mapping[str, Any], *, allowed: Collection[str], code: str, reach: Reach | None
) -> M:
    """How every update service starts: refuse a field it does not change (with `code`, the
    service's own), lock the row, and refuse a caller who may not edit it as stored."""
    unknown = set(changes) - set(allowed)
    if unknown:
        raise OrgError(f"不能修改字段：{'、'.join(sorted(unknown))}", code=code)
    locked = type(obj)._default_manager.select_for_update().get(pk=obj.pk)
    ensure_editable(reach, locked)
    return locked


def ensure_editable(reach: Reach | None, obj: Any) -> None:
    """Inside a write: refuse it whole (OutsideEditReach, 403) unless the caller may edit `obj` as
    the write left it. `reach=None` is a trusted caller (the demo generator, an operator's import)."""
    if reach is None:
        return
    access.ensure_editable(reach, obj)
