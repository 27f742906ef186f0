"""Reads of organisations and people. Tree reads are one recursive query each (see orgs/sql.py)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from orgs import pii, sql
from orgs.models import PartyMember, PartyOrganisation


def party_org_subtree(
    *, org: PartyOrganisation | int, include_self: bool = True
) -> QuerySet[PartyOrganisation]:
    """`org` and all its descendants, as a queryset (filter, count, annotate it further).

    Evaluating it is one query: the recursive walk runs inside the `id IN (...)` subquery.
    """
    org_id = org if isinstance(org, int) else org.pk
    qs = PartyOrganisation.objects.filter(id__in=RawSQL(sql.SUBTREE_IDS, [org_id]))  # noqa: S611 - constant SQL
    return qs if include_self else qs.exclude(pk=org_id)


def party_org_ancestors(*, org: PartyOrganisation | int) -> list[PartyOrganisation]:
    """The chain above `org`, root (the street working committee) first; each carries `distance`."""
    org_id = org if isinstance(org, int) else org.pk
    return list(PartyOrganisation.objects.raw(sql.ANCESTORS, [org_id]))


def party_member_by_id_number(*, id_number: str) -> PartyMember | None:
    """Exact look-up through the keyed hash: the clear value is never compared in the database."""
    return PartyMember.objects.filter(id_number_hash=pii.id_number_hash(id_number)).first()


def party_members_by_phone(*, phone: str) -> QuerySet[PartyMember]:
    return PartyMember.objects.filter(phone_hash=pii.phone_hash(phone))
