"""Writes to people: party members, grid workers, street cadres and stationed cadres."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from grid.access import Reach
from grid.changes import communities_changed
from grid.models import AuditEvent, Building, Community, GridCell, Street
from orgs import pii, plausibility
from orgs.errors import DuplicatePerson, OrgError, TreeMismatch
from orgs.models import (
    Cadre,
    Enterprise,
    GridWorker,
    PartyMember,
    PartyOrganisation,
    StationedCadre,
)
from orgs.services.common import (
    UNSET,
    apply_pii,
    audit,
    changed_fields,
    community_street_id,
    ensure_editable,
    locked_for_update,
    member_community_ids,
    member_street_id,
    snapshot,
)

# ---------------------------------------------------------------------------------------------
# People


def party_member_check(*, member: PartyMember, id_number: str | None = None) -> None:
    """Raise an OrgError unless `member` (saved or not) may be written: one record per ID number,
    and a report date (双报到) only with the community reported to.

    `id_number` is a clear replacement value (None: the member's stored one, "": cleared). Pure:
    reads only; the admin's form calls it, the services before writing."""
    if id_number is None:
        id_hash = member.id_number_hash
    else:
        id_hash = pii.id_number_hash(id_number) if id_number else None
    if id_hash:
        dup = PartyMember.objects.filter(id_number_hash=id_hash)
        if member.pk:
            dup = dup.exclude(pk=member.pk)
        if dup.exists():
            raise DuplicatePerson("该身份证号已登记为党员，不能重复录入", code="member_duplicate_id_number")
    if member.reported_on and member.reported_community_id is None:
        raise OrgError("填写报到日期时必须指定双报到社区", code="member_reported_community_required")


def _check_member(member: PartyMember) -> None:
    party_member_check(member=member)
    if member.dues_paid_through is not None:
        member.dues_paid_through = member.dues_paid_through.replace(day=1)


def _members(*member_ids: int) -> set[int]:
    return member_community_ids(PartyMember.objects.filter(pk__in=member_ids))


def _check_member_dates(member: PartyMember, *, id_number: str | None) -> None:
    """Birth and join dates a clerk would accept (orgs.plausibility), the birth date taken from
    the ID number when none is given, as the roster import does."""
    today = timezone.localdate()
    normalised = pii.normalise_id_number(id_number) if id_number else None
    if member.birth_date is None and normalised:
        member.birth_date = plausibility.id_number_birth_date(normalised)
    if member.birth_date is not None:
        plausibility.check_birth_date(member.birth_date, today=today, id_number=normalised)
    if member.joined_on is not None:
        plausibility.check_join_date(member.joined_on, birth_date=member.birth_date, today=today)


def _save_member(member: PartyMember) -> PartyMember:
    _check_member(member)
    try:
        with transaction.atomic():
            member.save()
    except IntegrityError as exc:
        # Two clerks entering the same person at once: the partial unique index on the hash wins.
        raise DuplicatePerson(
            "该身份证号已登记为党员，不能重复录入", code="member_duplicate_id_number"
        ) from exc
    return member


@transaction.atomic
def party_member_create(
    *,
    reach: Reach | None = None,
    name: str,
    gender: str,
    status: str = PartyMember.Status.FULL,
    category: str = PartyMember.Category.EMPLOYED,
    birth_date: date | None = None,
    joined_on: date | None = None,
    organisation: PartyOrganisation | None = None,
    residence_building: Building | None = None,
    id_number: str = "",
    phone: str = "",
    work_unit: str = "",
    work_enterprise: Enterprise | None = None,
    reported_community: Community | None = None,
    reported_on: date | None = None,
    dues_paid_through: date | None = None,
) -> PartyMember:
    """Register a member. `id_number` and `phone` are clear values; only cipher and hash are stored."""
    member = PartyMember(
        name=name,
        gender=gender,
        status=status,
        category=category,
        birth_date=birth_date,
        joined_on=joined_on,
        organisation=organisation,
        residence_building=residence_building,
        work_unit=work_unit,
        work_enterprise=work_enterprise,
        reported_community=reported_community,
        reported_on=reported_on,
        dues_paid_through=dues_paid_through,
    )
    _check_member_dates(member, id_number=id_number)
    apply_pii(member, "id_number", id_number, pii.seal_id_number)
    apply_pii(member, "phone", phone, pii.seal_phone)
    _save_member(member)
    changes = snapshot(member, sorted(MEMBER_FIELDS))
    changes |= {"id_number": "已填写" if id_number else "", "phone": "已填写" if phone else ""}
    audit(
        AuditEvent.Action.CREATE,
        member,
        f"新增党员“{member.name}”",
        changes=changes,
        street_id=member_street_id(member),
    )
    communities_changed(_members(member.pk))
    ensure_editable(reach, member)
    return member


MEMBER_FIELDS = {
    "name",
    "gender",
    "status",
    "category",
    "birth_date",
    "joined_on",
    "organisation",
    "residence_building",
    "work_unit",
    "work_enterprise",
    "reported_community",
    "reported_on",
    "dues_paid_through",
}


@transaction.atomic
def party_member_update(
    *,
    reach: Reach | None = None,
    member: PartyMember,
    id_number: str | None = UNSET,
    phone: str | None = UNSET,
    **changes: Any,
) -> PartyMember:
    """Change a member. Pass `id_number`/`phone` only to replace them ("" clears)."""
    locked = locked_for_update(
        member, changes, allowed=MEMBER_FIELDS, code="member_field_unknown", reach=reach
    )
    before = snapshot(locked, changes)
    communities_before = _members(locked.pk)
    old_hashes = {"id_number": locked.id_number_hash, "phone": locked.phone_hash}
    for field, value in changes.items():
        setattr(locked, field, value)
    # Only what this call changes is checked, so an old record with odd dates stays editable.
    if id_number is not UNSET or {"birth_date", "joined_on"} & set(changes):
        _check_member_dates(locked, id_number=id_number if id_number is not UNSET else None)
    if id_number is not UNSET:
        apply_pii(locked, "id_number", id_number, pii.seal_id_number)
    if phone is not UNSET:
        apply_pii(locked, "phone", phone, pii.seal_phone)
    _save_member(locked)
    diff = changed_fields(before, snapshot(locked, changes))
    for field, old_hash in old_hashes.items():
        # The audit log says that personal data changed, never what it was or became.
        if getattr(locked, f"{field}_hash") != old_hash:
            diff[field] = "已修改"
    audit(
        AuditEvent.Action.UPDATE,
        locked,
        f"修改党员“{locked.name}”",
        changes=diff,
        street_id=member_street_id(locked),
    )
    communities_changed(communities_before | _members(locked.pk))
    ensure_editable(reach, locked)
    return locked


def grid_worker_check_cells(*, community_id: int, cells: Sequence[GridCell]) -> None:
    """A worker's grids must lie in the worker's community."""
    outside = [c.code for c in cells if c.community_id != community_id]
    if outside:
        raise TreeMismatch(
            f"网格 {'、'.join(outside[:10])} 不在网格员所属社区内",
            code="worker_grid_outside_community",
            detail={"grid_cells": outside},
        )


@transaction.atomic
def grid_worker_create(
    *,
    reach: Reach | None = None,
    name: str,
    community: Community,
    full_time: bool = True,
    phone: str = "",
    grid_cells: Iterable[GridCell] = (),
    user: Any = None,
) -> GridWorker:
    cells = list(grid_cells)
    grid_worker_check_cells(community_id=community.pk, cells=cells)
    worker = GridWorker(name=name, community=community, full_time=full_time, user=user)
    apply_pii(worker, "phone", phone, pii.seal_phone)
    worker.save()
    worker.grid_cells.set(cells)
    changes = snapshot(worker, ["name", "community", "full_time", "user", "active"])
    changes |= {"grid_cells": sorted(c.pk for c in cells), "phone": "已填写" if phone else ""}
    audit(
        AuditEvent.Action.CREATE,
        worker,
        f"新增网格员“{worker.name}”",
        changes=changes,
        street_id=community.street_id,
    )
    communities_changed([community.pk])
    ensure_editable(reach, worker)
    return worker


@transaction.atomic
def grid_worker_update(
    *,
    reach: Reach | None = None,
    worker: GridWorker,
    phone: str | None = UNSET,
    grid_cells: Iterable[GridCell] | None = None,
    **changes: Any,
) -> GridWorker:
    locked = locked_for_update(
        worker, changes, allowed={"name", "community", "full_time", "user", "active"}, code="worker_field_unknown", reach=reach
    )
    before = snapshot(locked, changes)
    old_cells = sorted(locked.grid_cells.values_list("pk", flat=True))
    old_phone = locked.phone_hash
    old_community_id = locked.community_id
    for field, value in changes.items():
        setattr(locked, field, value)
    cells = list(grid_cells) if grid_cells is not None else list(locked.grid_cells.all())
    grid_worker_check_cells(community_id=locked.community_id, cells=cells)
    if phone is not UNSET:
        apply_pii(locked, "phone", phone, pii.seal_phone)
    locked.save()
    locked.grid_cells.set(cells)
    diff = changed_fields(before, snapshot(locked, changes))
    if sorted(c.pk for c in cells) != old_cells:
        diff["grid_cells"] = [old_cells, sorted(c.pk for c in cells)]
    if locked.phone_hash != old_phone:
        diff["phone"] = "已修改"
    audit(
        AuditEvent.Action.UPDATE,
        locked,
        f"修改网格员“{locked.name}”",
        changes=diff,
        street_id=community_street_id(locked.community_id),
    )
    communities_changed([old_community_id, locked.community_id])
    ensure_editable(reach, locked)
    return locked


CADRE_FIELDS = {"name", "street", "unit_name", "user"}


@transaction.atomic
def cadre_create(
    *, reach: Reach | None = None, name: str, street: Street, unit_name: str = "", user: Any = None
) -> Cadre:
    cadre = Cadre.objects.create(name=name, street=street, unit_name=unit_name, user=user)
    audit(
        AuditEvent.Action.CREATE,
        cadre,
        f"新增干部“{cadre.name}”",
        changes=snapshot(cadre, sorted(CADRE_FIELDS)),
        street_id=street.pk,
    )
    ensure_editable(reach, cadre)
    return cadre


@transaction.atomic
def cadre_update(*, reach: Reach | None = None, cadre: Cadre, **changes: Any) -> Cadre:
    """Change a street official's name, unit, street or login (any of CADRE_FIELDS).

    A street official is data of no community of their own; the enterprises they instruct
    (党建指导员) check that they share a street, so a move to another street is refused while
    they instruct any."""
    locked = locked_for_update(
        cadre, changes, allowed=CADRE_FIELDS, code="cadre_field_unknown", reach=reach
    )
    before = snapshot(locked, changes)
    for field, value in changes.items():
        setattr(locked, field, value)
    if locked.street_id != before.get("street", locked.street_id) and Enterprise.objects.filter(
        instructor=locked
    ).exclude(community__street_id=locked.street_id).exists():
        raise TreeMismatch(
            "该干部是其他街道两新组织的党建指导员，请先调整指导员再变更街道", code="cadre_instructs_elsewhere"
        )
    locked.save()
    audit(
        AuditEvent.Action.UPDATE,
        locked,
        f"修改干部“{locked.name}”",
        changes=changed_fields(before, snapshot(locked, changes)),
        street_id=locked.street_id,
    )
    ensure_editable(reach, locked)
    return locked


@transaction.atomic
def cadre_delete(*, reach: Reach | None = None, cadre: Cadre) -> None:
    """Remove a street official; the enterprises they instructed lose their instructor (which
    their communities' gaps then show). The audit row keeps who it was."""
    ensure_editable(reach, cadre)
    locked = Cadre.objects.select_for_update().get(pk=cadre.pk)
    instructed = Enterprise.objects.filter(instructor=locked)
    communities = set(instructed.values_list("community_id", flat=True))
    audit(
        AuditEvent.Action.DELETE,
        locked,
        f"删除干部“{locked.name}”",
        changes={
            **snapshot(locked, sorted(CADRE_FIELDS)),
            "instructed_enterprises": sorted(instructed.values_list("pk", flat=True)),
        },
        street_id=locked.street_id,
    )
    locked.delete()
    communities_changed(communities)


STATIONED_FIELDS = {
    "name",
    "community",
    "period_start",
    "period_end",
    "required_days_per_month",
    "required_contacts_per_month",
    "user",
}


def stationed_cadre_check(*, cadre: StationedCadre) -> None:
    """Raise an OrgError unless the posting `cadre` (saved or not) may be written.

    Pure; the admin's form calls it, the services before writing."""
    if cadre.period_end is not None and cadre.period_end < cadre.period_start:
        raise OrgError("驻点结束日期不能早于开始日期", code="stationed_period_order")
    if not 0 <= cadre.required_days_per_month <= 31:
        raise OrgError("每月应驻点天数应在0–31之间", code="stationed_days_range")
    if cadre.required_contacts_per_month < 0:
        raise OrgError("每月应联系群众次数不能为负数", code="stationed_contacts_range")


@transaction.atomic
def stationed_cadre_create(
    *,
    reach: Reach | None = None,
    name: str,
    community: Community,
    period_start: date,
    period_end: date | None = None,
    required_days_per_month: int = 8,
    required_contacts_per_month: int = 10,
    user: Any = None,
) -> StationedCadre:
    cadre = StationedCadre(
        name=name,
        community=community,
        period_start=period_start,
        period_end=period_end,
        required_days_per_month=required_days_per_month,
        required_contacts_per_month=required_contacts_per_month,
        user=user,
    )
    stationed_cadre_check(cadre=cadre)
    cadre.save()
    audit(
        AuditEvent.Action.CREATE,
        cadre,
        f"新增驻点干部“{cadre.name}”",
        changes=snapshot(cadre, sorted(STATIONED_FIELDS)),
        street_id=community.street_id,
    )
    communities_changed([community.pk])
    ensure_editable(reach, cadre)
    return cadre


@transaction.atomic
def stationed_cadre_update(
    *, reach: Reach | None = None, cadre: StationedCadre, **changes: Any
) -> StationedCadre:
    """Change a posting: its period (e.g. ending it), duties, community or login."""
    locked = locked_for_update(
        cadre, changes, allowed=STATIONED_FIELDS, code="stationed_field_unknown", reach=reach
    )
    before = snapshot(locked, changes)
    old_community_id = locked.community_id
    for field, value in changes.items():
        setattr(locked, field, value)
    stationed_cadre_check(cadre=locked)
    locked.save()
    audit(
        AuditEvent.Action.UPDATE,
        locked,
        f"修改驻点干部“{locked.name}”",
        changes=changed_fields(before, snapshot(locked, changes)),
        street_id=community_street_id(locked.community_id),
    )
    communities_changed([old_community_id, locked.community_id])
    ensure_editable(reach, locked)
    return locked


@transaction.atomic
def stationed_cadre_delete(*, reach: Reach | None = None, cadre: StationedCadre) -> None:
    """Remove a posting entered in error. A posting with check-ins or contacts is history: it is
    ended (period_end), not deleted."""
    ensure_editable(reach, cadre)
    locked = StationedCadre.objects.select_for_update().get(pk=cadre.pk)
    if locked.contacts.exists():
        raise OrgError(
            f"“{locked.name}”已有驻点联系记录，不能删除；请填写驻点结束日期", code="stationed_has_contacts"
        )
    audit(
        AuditEvent.Action.DELETE,
        locked,
        f"删除驻点干部“{locked.name}”",
        changes=snapshot(locked, sorted(STATIONED_FIELDS)),
        street_id=community_street_id(locked.community_id),
    )
    locked.delete()
    communities_changed([locked.community_id])
