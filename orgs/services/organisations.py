"""Writes to the organisation tree and an organisation's own records: create, update, weak-organisation
rectification, star ratings, enlarged-committee seats.

Every write to organisations and people goes through these functions: one transaction each.

The database's CHECK constraints guard what one row can say (which attachment column a kind
needs); `party_org_check` guards what spans rows — the tree agrees with space:
- a community organisation hangs under its street's working committee;
- a grid branch's grid lies in its parent community organisation's community;
- a building group's buildings lie in its parent grid branch's grid;
- premises and resident units under a community organisation lie in that community.
The same function serves the admin's form validation, so people see the same Chinese message and
stable code that an API client gets.

Every write records one audit row (grid.audit) in its own transaction: personal data appears in
it only as "changed", never as a value.

Races: a write locks the parent row (SELECT ... FOR UPDATE) before checking against it, and an
update locks the row itself, so a concurrent re-attachment of the parent cannot slip between the
check and the write. The kind hierarchy (a child's allowed parent kinds are all "higher" kinds)
makes a cycle impossible, so no ancestor walk is needed on re-parenting."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

from django.conf import settings
from django.db import IntegrityError, transaction

from grid.access import Reach
from grid.audit import audit_value
from grid.changes import communities_changed
from grid.models import AuditEvent, Building, Community, GridCell, Street
from orgs.errors import AttachmentInvalid, OrgError, TreeMismatch
from orgs.models import (
    ALLOWED_PARENT_KINDS,
    CommitteeSeat,
    Enterprise,
    PartyMember,
    PartyOrganisation,
    Rectification,
    StarRating,
)
from orgs.services.common import (
    UNSET,
    audit,
    changed_fields,
    ensure_editable,
    locked_for_update,
    org_community_ids,
    snapshot,
)

Kind = PartyOrganisation.Kind
Level = PartyOrganisation.Level

_ORG_LEVELS = {Level.COMMITTEE, Level.GENERAL_BRANCH, Level.BRANCH}
ALLOWED_LEVELS: dict[str, Collection[str]] = {
    Kind.STREET_COMMITTEE: {Level.WORKING_COMMITTEE},
    Kind.COMMUNITY_ORG: _ORG_LEVELS,
    Kind.GRID_BRANCH: _ORG_LEVELS,
    Kind.BUILDING_GROUP: {Level.GROUP},
    Kind.ENTERPRISE_ORG: _ORG_LEVELS,
    Kind.RESIDENT_UNIT_ORG: _ORG_LEVELS,
    Kind.JOINT_BRANCH: {Level.GENERAL_BRANCH, Level.BRANCH},
}
# Attachment columns each kind requires; all other attachment columns must be empty.
REQUIRED_ATTACHMENT: dict[str, set[str]] = {
    Kind.STREET_COMMITTEE: set(),
    Kind.COMMUNITY_ORG: {"community"},
    Kind.GRID_BRANCH: {"grid_cell"},
    Kind.BUILDING_GROUP: {"buildings"},
    Kind.ENTERPRISE_ORG: {"premises"},
    Kind.RESIDENT_UNIT_ORG: {"community"},
    Kind.JOINT_BRANCH: set(),
}
OPTIONAL_ATTACHMENT: dict[str, set[str]] = {Kind.JOINT_BRANCH: {"community"}}
_ATTACHMENT_LABELS = {
    "community": "所在社区",
    "grid_cell": "所在网格",
    "premises": "所在两新组织",
    "buildings": "楼栋",
}
ORG_FIELDS = {
    "parent",
    "kind",
    "level",
    "name",
    "code",
    "street",
    "community",
    "grid_cell",
    "premises",
    "unit_name",
    "founded_on",
    "term_started_on",
    "term_years",
    "secretary",
    "is_enlarged",
}


def default_term_years(kind: str) -> int:
    rules = settings.WANGGE_RULES
    if kind in (Kind.COMMUNITY_ORG, Kind.STREET_COMMITTEE):
        return int(rules["term_years_community"])
    return int(rules["term_years_branch"])


def _kind_label(kind: str) -> str:
    return Kind(kind).label


def _org_communities(*org_ids: int) -> set[int]:
    return org_community_ids(PartyOrganisation.objects.filter(pk__in=org_ids))


# ---------------------------------------------------------------------------------------------
# Party organisations


def _check_row(org: PartyOrganisation, buildings: Sequence[Building] | None) -> None:
    """What the CHECK constraints also say, with a Chinese message instead of an IntegrityError."""
    if org.kind not in ALLOWED_LEVELS:
        raise AttachmentInvalid(f"未知的党组织类别：{org.kind}", code="org_kind_invalid")
    if org.level not in ALLOWED_LEVELS[org.kind]:
        allowed_labels = "、".join(Level(x).label for x in sorted(ALLOWED_LEVELS[org.kind]))
        raise AttachmentInvalid(
            f"{_kind_label(org.kind)}的层级只能是：{allowed_labels}",
            code="org_level_invalid",
            detail={"level": org.level},
        )
    required = REQUIRED_ATTACHMENT[org.kind]
    allowed = required | OPTIONAL_ATTACHMENT.get(org.kind, set())
    present = {f for f in ("community", "grid_cell", "premises") if getattr(org, f"{f}_id") is not None}
    if buildings is not None and len(buildings) > 0:
        present.add("buildings")
    for field in sorted(required - present):
        raise AttachmentInvalid(
            f"{_kind_label(org.kind)}必须指定{_ATTACHMENT_LABELS[field]}",
            code=f"org_{field}_required",
            detail={"field": field},
        )
    extra = present - allowed
    if extra:
        labels = "、".join(_ATTACHMENT_LABELS[f] for f in sorted(extra))
        raise AttachmentInvalid(
            f"{_kind_label(org.kind)}不能挂接{labels}",
            code="org_attachment_extra",
            detail={"fields": sorted(extra)},
        )
    if org.kind == Kind.RESIDENT_UNIT_ORG and not org.unit_name.strip():
        raise AttachmentInvalid("驻区单位党组织必须填写驻区单位名称", code="org_unit_name_required")
    if org.is_enlarged and org.kind not in (Kind.STREET_COMMITTEE, Kind.COMMUNITY_ORG):
        raise AttachmentInvalid("只有街道党工委和社区党组织可以设为大工委/大党委", code="org_enlarged_kind")
    if org.term_years is not None and not 1 <= org.term_years <= 10:
        raise AttachmentInvalid("任期应为1–10年", code="org_term_years_invalid")


def _check_uniques(org: PartyOrganisation) -> None:
    others = PartyOrganisation.objects.exclude(pk=org.pk) if org.pk else PartyOrganisation.objects.all()
    if others.filter(code=org.code).exists():
        raise OrgError(f"组织编码 {org.code} 已被使用", code="org_code_taken")
    if org.kind == Kind.STREET_COMMITTEE and others.filter(kind=org.kind, street_id=org.street_id).exists():
        raise OrgError("该街道已有街道党工委", code="org_street_committee_exists")
    if (
        org.kind == Kind.COMMUNITY_ORG
        and others.filter(kind=org.kind, community_id=cast(int, org.community_id)).exists()
    ):
        raise OrgError("该社区已有社区党组织", code="org_community_taken")
    if org.kind == Kind.GRID_BRANCH and others.filter(kind=org.kind, grid_cell_id=org.grid_cell_id).exists():
        raise OrgError("该网格已有网格党支部", code="org_grid_taken")
    if org.kind == Kind.ENTERPRISE_ORG and others.filter(kind=org.kind, premises_id=org.premises_id).exists():
        raise OrgError("该两新组织已有自己的党组织", code="org_premises_taken")


def _check_parent(org: PartyOrganisation, parent: PartyOrganisation | None) -> None:
    if org.kind == Kind.STREET_COMMITTEE:
        if parent is not None:
            raise TreeMismatch("街道党工委是组织树的根，不能有上级党组织", code="org_root_has_parent")
        if org.street_id is None:
            raise AttachmentInvalid("街道党工委必须指定所属街道", code="org_street_required")
        return
    if parent is None:
        raise TreeMismatch(f"{_kind_label(org.kind)}必须指定上级党组织", code="org_parent_required")
    if parent.kind not in ALLOWED_PARENT_KINDS[org.kind]:
        allowed = "、".join(_kind_label(k) for k in sorted(ALLOWED_PARENT_KINDS[org.kind]))
        raise TreeMismatch(
            f"{_kind_label(org.kind)}的上级只能是{allowed}，不能是{_kind_label(parent.kind)}",
            code="org_parent_kind",
            detail={"parent_kind": parent.kind},
        )
    if org.street_id != parent.street_id:
        raise TreeMismatch("党组织必须与上级党组织属于同一街道", code="org_street_mismatch")


def _check_space(
    org: PartyOrganisation, parent: PartyOrganisation | None, buildings: Sequence[Building] | None
) -> None:
    """The tree agrees with space: the unit an org hangs on lies inside its parent's unit."""
    if org.community_id is not None:
        community = Community.objects.only("street_id", "name").get(pk=org.community_id)
        if community.street_id != org.street_id:
            raise TreeMismatch(f"社区“{community.name}”不属于本街道", code="org_community_outside_street")
    parent_community = (
        parent.community_id if parent is not None and parent.kind == Kind.COMMUNITY_ORG else None
    )
    if org.kind == Kind.GRID_BRANCH:
        cell = GridCell.objects.select_related("community").get(pk=cast(int, org.grid_cell_id))
        if parent is not None and cell.community_id != parent.community_id:
            raise TreeMismatch(
                f"网格“{cell.name}”位于社区“{cell.community.name}”，不在上级社区党组织所在社区内",
                code="org_grid_outside_parent_community",
                detail={"grid_cell": cell.code, "community": cell.community.code},
            )
    elif org.kind == Kind.BUILDING_GROUP and parent is not None and buildings:
        outside = [b.code for b in buildings if b.grid_cell_id != parent.grid_cell_id]
        if outside:
            raise TreeMismatch(
                f"楼栋 {'、'.join(outside[:10])} 不在上级网格党支部所在网格内",
                code="org_buildings_outside_parent_grid",
                detail={"buildings": outside},
            )
    elif org.kind == Kind.ENTERPRISE_ORG:
        premises = Enterprise.objects.select_related("community").get(pk=cast(int, org.premises_id))
        if premises.community is None or premises.community.street_id != org.street_id:
            raise TreeMismatch(f"两新组织“{premises.name}”不在本街道内", code="org_premises_outside_street")
        if parent_community is not None and premises.community_id != parent_community:
            raise TreeMismatch(
                f"两新组织“{premises.name}”不在上级社区党组织所在社区内",
                code="org_premises_outside_parent_community",
            )
    elif org.kind in (Kind.RESIDENT_UNIT_ORG, Kind.JOINT_BRANCH):
        if parent_community is not None and org.community_id not in (None, parent_community):
            raise TreeMismatch("所在社区与上级社区党组织所在社区不一致", code="org_community_outside_parent")


def _check_children(org: PartyOrganisation) -> None:
    """On an update: the direct children must still agree with this org's kind, street and unit."""
    children = PartyOrganisation.objects.filter(parent_id=org.pk)
    allowed_child_kinds = [k for k, parents in ALLOWED_PARENT_KINDS.items() if org.kind in parents]
    if children.exclude(kind__in=allowed_child_kinds).exists():
        raise TreeMismatch(
            f"现有下级党组织不能挂在{_kind_label(org.kind)}之下", code="org_children_kind_conflict"
        )
    if children.exclude(street_id=org.street_id).exists():
        raise TreeMismatch("现有下级党组织属于其他街道", code="org_children_street_conflict")
    if org.kind == Kind.COMMUNITY_ORG:
        if (
            children.filter(kind=Kind.GRID_BRANCH)
            .exclude(grid_cell__community_id=cast(int, org.community_id))
            .exists()
        ):
            raise TreeMismatch(
                "现有下级网格党支部的网格不在新的所在社区内", code="org_children_outside_community"
            )
        if (
            children.filter(kind=Kind.ENTERPRISE_ORG)
            .exclude(premises__community_id=cast(int, org.community_id))
            .exists()
            or children.filter(kind__in=[Kind.RESIDENT_UNIT_ORG, Kind.JOINT_BRANCH], community__isnull=False)
            .exclude(community_id=cast(int, org.community_id))
            .exists()
        ):
            raise TreeMismatch("现有下级党组织不在新的所在社区内", code="org_children_outside_community")
    if org.kind == Kind.GRID_BRANCH:
        stray = Building.objects.filter(party_groups__parent_id=org.pk).exclude(grid_cell_id=org.grid_cell_id)
        if stray.exists():
            raise TreeMismatch("现有下级楼栋党小组的楼栋不在新的所在网格内", code="org_children_outside_grid")


def party_org_check(
    *, org: PartyOrganisation, buildings: Sequence[Building] | None = None, check_children: bool = True
) -> None:
    """Raise an OrgError if `org` (saved or not) with these buildings may not be written.

    Pure: reads only. The admin calls it from form validation; the services call it before saving.
    `buildings=None` means "unchanged" for a saved org (its current buildings are used).
    """
    if buildings is None and org.pk and org.kind == Kind.BUILDING_GROUP:
        buildings = list(org.buildings.all())
    parent = PartyOrganisation.objects.get(pk=org.parent_id) if org.parent_id else None
    if parent is not None and org.street_id is None:
        org.street_id = parent.street_id
    _check_row(org, buildings)
    _check_parent(org, parent)
    _check_uniques(org)
    _check_space(org, parent, buildings)
    if org.pk and check_children:
        _check_children(org)


def _save_org(
    org: PartyOrganisation, buildings: Sequence[Building] | None, *, update_fields: list[str] | None
) -> None:
    if org.parent_id:
        # Lock the parent so its attachment cannot change between our check and our write.
        PartyOrganisation.objects.select_for_update().filter(pk=org.parent_id).values_list("pk").first()
    party_org_check(org=org, buildings=buildings)
    try:
        with transaction.atomic():
            org.save(update_fields=update_fields)
    except IntegrityError as exc:
        # A concurrent writer took the code or the unit between our check and our insert.
        raise OrgError("党组织与现有记录冲突，请刷新后重试", code="org_conflict") from exc
    if buildings is not None:
        org.buildings.set(buildings)


@transaction.atomic
def party_org_create(
    *,
    reach: Reach | None = None,
    kind: str,
    level: str,
    name: str,
    code: str,
    parent: PartyOrganisation | None = None,
    street: Street | None = None,
    community: Community | None = None,
    grid_cell: GridCell | None = None,
    premises: Enterprise | None = None,
    buildings: Iterable[Building] = (),
    unit_name: str = "",
    founded_on: date | None = None,
    term_started_on: date | None = None,
    term_years: int | None = None,
    secretary: PartyMember | None = None,
    is_enlarged: bool = False,
) -> PartyOrganisation:
    """Create an organisation under `parent` (the street is taken from the parent when omitted)."""
    org = PartyOrganisation(
        kind=kind,
        level=level,
        name=name,
        code=code,
        parent=parent,
        street=street if street is not None else (parent.street if parent is not None else None),
        community=community,
        grid_cell=grid_cell,
        premises=premises,
        unit_name=unit_name,
        founded_on=founded_on,
        term_started_on=term_started_on,
        term_years=term_years or default_term_years(kind),
        secretary=secretary,
        is_enlarged=is_enlarged,
    )
    building_list = list(buildings)
    _save_org(org, building_list, update_fields=None)
    changes = snapshot(org, sorted(ORG_FIELDS))
    if building_list:
        changes["buildings"] = sorted(b.pk for b in building_list)
    audit(AuditEvent.Action.CREATE, org, f"新增党组织“{org.name}”", changes=changes, street_id=org.street_id)
    communities_changed(_org_communities(org.pk))
    ensure_editable(reach, org)
    return org


@transaction.atomic
def party_org_update(
    *,
    reach: Reach | None = None,
    org: PartyOrganisation,
    buildings: Iterable[Building] | None = None,
    **changes: Any,
) -> PartyOrganisation:
    """Change fields of `org` (any of ORG_FIELDS; `buildings` replaces the set when given)."""
    locked = locked_for_update(
        org, changes, allowed=ORG_FIELDS, code="org_field_unknown", reach=reach
    )
    before = snapshot(locked, changes)
    communities_before = _org_communities(locked.pk)
    old_buildings = sorted(locked.buildings.values_list("pk", flat=True)) if buildings is not None else []
    for field, value in changes.items():
        setattr(locked, field, value)
    if "term_years" in changes and not changes["term_years"]:
        locked.term_years = default_term_years(locked.kind)
    building_list = list(buildings) if buildings is not None else None
    _save_org(locked, building_list, update_fields=None)
    diff = changed_fields(before, snapshot(locked, changes))
    if building_list is not None and sorted(b.pk for b in building_list) != old_buildings:
        diff["buildings"] = [old_buildings, sorted(b.pk for b in building_list)]
    audit(
        AuditEvent.Action.UPDATE,
        locked,
        f"修改党组织“{locked.name}”",
        changes=diff,
        street_id=locked.street_id,
    )
    communities_changed(communities_before | _org_communities(locked.pk))
    ensure_editable(reach, locked)
    return locked


@transaction.atomic
def party_org_flag_weak(
    *, reach: Reach | None = None, org: PartyOrganisation, flagged_on: date, reasons: str, measures: str = ""
) -> Rectification:
    """Flag an organisation 软弱涣散 and open its rectification record."""
    locked = PartyOrganisation.objects.select_for_update().get(pk=org.pk)
    ensure_editable(reach, locked)
    if locked.rectifications.filter(converted_on__isnull=True).exists():
        raise OrgError(f"“{locked.name}”已在整顿中", code="rectification_open_exists")
    rect = Rectification.objects.create(org=locked, flagged_on=flagged_on, reasons=reasons, measures=measures)
    locked.weak = True
    locked.save(update_fields=["weak", "updated_at"])
    audit(
        AuditEvent.Action.CREATE,
        rect,
        f"认定“{locked.name}”为软弱涣散党组织",
        changes={"org": locked.pk, "flagged_on": flagged_on.isoformat(), "reasons": reasons},
        street_id=locked.street_id,
    )
    communities_changed(_org_communities(locked.pk))
    ensure_editable(reach, rect)
    return rect


def rectification_check(*, rectification: Rectification, converted_on: date) -> None:
    """Raise an OrgError unless `rectification` (as stored) may be recorded converted on that day.

    Pure: reads only; the admin's form calls it, the services before writing."""
    if rectification.converted_on is not None:
        raise OrgError("该整顿已记录转化", code="rectification_already_converted")
    if converted_on < rectification.flagged_on:
        raise OrgError("转化日期不能早于认定日期", code="rectification_date_order")


@transaction.atomic
def rectification_convert(
    *, reach: Reach | None = None, rectification: Rectification, converted_on: date
) -> Rectification:
    """Record that a weak organisation has been converted (转化); its flag is cleared."""
    return rectification_update(reach=reach, rectification=rectification, converted_on=converted_on)


@transaction.atomic
def rectification_update(
    *,
    reach: Reach | None = None,
    rectification: Rectification,
    reasons: str = UNSET,
    measures: str = UNSET,
    converted_on: date | None = UNSET,
) -> Rectification:
    """Correct a rectification's reasons (软弱涣散表现) and measures (整顿措施), and record its
    conversion (转化) when `converted_on` is given, in one write and one audit row.

    The organisation, the day it was flagged and a recorded conversion are not edited: a flag
    made in error is deleted (`rectification_delete`), which the audit log keeps."""
    rect = Rectification.objects.select_for_update().get(pk=rectification.pk)
    ensure_editable(reach, rect)
    texts = {name: value for name, value in (("reasons", reasons), ("measures", measures)) if value is not UNSET}
    before = snapshot(rect, [*texts, "converted_on"])
    for name, value in texts.items():
        setattr(rect, name, value)
    converting: date | None = None if converted_on is UNSET else converted_on
    if converting is not None:
        rectification_check(rectification=rect, converted_on=converting)
        rect.converted_on = converting
    rect.save(update_fields=[*texts, "converted_on"])
    org_name, street_id = PartyOrganisation.objects.values_list("name", "street_id").get(pk=rect.org_id)
    if converting is not None:
        PartyOrganisation.objects.filter(pk=rect.org_id).update(weak=False)
        communities_changed(_org_communities(rect.org_id))
    audit(
        AuditEvent.Action.UPDATE,
        rect,
        f"“{org_name}”整顿转化" if converting is not None else f"修改“{org_name}”整顿记录",
        changes=changed_fields(before, snapshot(rect, [*texts, "converted_on"])),
        street_id=street_id,
    )
    ensure_editable(reach, rect)
    return rect


@transaction.atomic
def rectification_delete(*, reach: Reach | None = None, rectification: Rectification) -> None:
    """Remove a rectification recorded in error; the organisation stays flagged weak only while
    another rectification of it is still open. The audit row keeps what was removed."""
    ensure_editable(reach, rectification)
    rect = Rectification.objects.select_for_update().get(pk=rectification.pk)
    org = PartyOrganisation.objects.select_for_update().get(pk=rect.org_id)
    audit(
        AuditEvent.Action.DELETE,
        rect,
        f"删除“{org.name}”的整顿记录（{rect.flagged_on.isoformat()}认定）",
        changes=snapshot(rect, ["org", "flagged_on", "reasons", "measures", "converted_on"]),
        street_id=org.street_id,
    )
    rect.delete()
    org.weak = org.rectifications.filter(converted_on__isnull=True).exists()
    org.save(update_fields=["weak", "updated_at"])
    communities_changed(_org_communities(org.pk))


def star_total(*, score: Decimal, satisfaction_score: Decimal) -> Decimal:
    """综合得分: resident satisfaction weighs 40% (DOMAIN.md), the quantified indicators the rest."""
    weight = Decimal(str(settings.WANGGE_RULES.get("star_satisfaction_weight", 0.4)))
    total = score * (1 - weight) + satisfaction_score * weight
    return total.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def stars_for_total(total: Decimal) -> int:
    for stars, floor in ((5, 90), (4, 80), (3, 70), (2, 60)):
        if total >= floor:
            return stars
    return 1


@transaction.atomic
def star_rating_record(
    *,
    reach: Reach | None = None,
    org: PartyOrganisation,
    year: int,
    score: Decimal,
    satisfaction_score: Decimal,
    stars: int | None = None,
) -> tuple[StarRating, bool]:
    """Record (or correct) an organisation's rating for `year`; stars follow the total if not given.

    Returns the rating and whether it was created (not a correction). The row lock of
    update_or_create and the (org, year) unique constraint decide a race between two clerks, so
    the answer is never computed from a look-up made before the write."""
    score, satisfaction_score = Decimal(str(score)), Decimal(str(satisfaction_score))
    for value in (score, satisfaction_score):
        if not Decimal(0) <= value <= Decimal(100):
            raise OrgError("得分应在0–100之间", code="rating_score_range")
    if stars is not None and not 1 <= stars <= 5:
        raise OrgError("星级应为1–5", code="rating_stars_range")
    total = star_total(score=score, satisfaction_score=satisfaction_score)
    values = {
        "score": score,
        "satisfaction_score": satisfaction_score,
        "total_score": total,
        "stars": stars or stars_for_total(total),
    }
    rating, created = StarRating.objects.update_or_create(org=org, year=year, defaults=values)
    audit(
        AuditEvent.Action.CREATE if created else AuditEvent.Action.UPDATE,
        rating,
        f"“{org.name}”{year}年度星级评定：{rating.stars}星",
        changes={"year": year, **{k: audit_value(v) for k, v in values.items()}},
        street_id=org.street_id,
    )
    communities_changed(_org_communities(org.pk))
    ensure_editable(reach, rating)
    return rating, created


@transaction.atomic
def star_rating_delete(*, reach: Reach | None = None, rating: StarRating) -> None:
    """Remove a rating recorded in error (a wrong score is corrected by recording it again)."""
    ensure_editable(reach, rating)
    locked = StarRating.objects.select_for_update().select_related("org").get(pk=rating.pk)
    audit(
        AuditEvent.Action.DELETE,
        locked,
        f"删除“{locked.org.name}”{locked.year}年度星级评定",
        changes=snapshot(locked, ["org", "year", "stars", "score", "satisfaction_score", "total_score"]),
        street_id=locked.org.street_id,
    )
    locked.delete()
    communities_changed(_org_communities(locked.org_id))


SEAT_FIELDS = {"org", "person_name", "unit_name", "is_resident_unit_head", "liaison_units"}


def committee_seat_check(*, org: PartyOrganisation, liaison_communities: Iterable[Community] = ()) -> None:
    """Raise an OrgError unless a seat of `org` may liaise with these communities: the
    organisation is an enlarged committee (大工委/大党委) and the communities lie in its street.

    Pure: reads nothing beyond its arguments; the admin's forms call it, the services before writing."""
    if not org.is_enlarged:
        raise OrgError(
            f"“{org.name}”不是大工委/大党委，不能设兼职委员",
            code="seat_org_not_enlarged",
            detail={"field": "org"},
        )
    outside = [c.name for c in liaison_communities if c.street_id != org.street_id]
    if outside:
        raise TreeMismatch(
            f"分片联系社区 {'、'.join(outside)} 不在本街道内",
            code="seat_liaison_outside_street",
            detail={"field": "liaison_communities"},
        )


def _seat_snapshot(seat: CommitteeSeat, communities: Iterable[int]) -> dict[str, Any]:
    return {**snapshot(seat, sorted(SEAT_FIELDS)), "liaison_communities": sorted(communities)}


def _seat_communities(org_id: int, communities: Iterable[int]) -> set[int]:
    """A seat is data of its committee's communities and of those it liaises with (分片联系)."""
    return _org_communities(org_id) | set(communities)


@transaction.atomic
def committee_seat_create(
    *,
    reach: Reach | None = None,
    org: PartyOrganisation,
    person_name: str,
    unit_name: str = "",
    is_resident_unit_head: bool = False,
    liaison_communities: Iterable[Community] = (),
    liaison_units: str = "",
) -> CommitteeSeat:
    """Add a member to an enlarged committee (大工委/大党委) with the places they liaise with."""
    communities = list(liaison_communities)
    committee_seat_check(org=org, liaison_communities=communities)
    seat = CommitteeSeat.objects.create(
        org=org,
        person_name=person_name,
        unit_name=unit_name,
        is_resident_unit_head=is_resident_unit_head,
        liaison_units=liaison_units,
    )
    seat.liaison_communities.set(communities)
    community_ids = [c.pk for c in communities]
    audit(
        AuditEvent.Action.CREATE,
        seat,
        f"“{org.name}”新增委员“{person_name}”",
        changes=_seat_snapshot(seat, community_ids),
        street_id=org.street_id,
    )
    communities_changed(_seat_communities(org.pk, community_ids))
    ensure_editable(reach, seat)
    return seat


@transaction.atomic
def committee_seat_update(
    *,
    reach: Reach | None = None,
    seat: CommitteeSeat,
    liaison_communities: Iterable[Community] | None = None,
    **changes: Any,
) -> CommitteeSeat:
    """Change a seat (any of SEAT_FIELDS; `liaison_communities` replaces the set when given).

    The seat rules are checked on the seat as the write leaves it: moved to another committee,
    its liaison communities must lie in that committee's street."""
    locked = locked_for_update(
        seat, changes, allowed=SEAT_FIELDS, code="seat_field_unknown", reach=reach
    )
    old_communities = sorted(locked.liaison_communities.values_list("pk", flat=True))
    before = _seat_snapshot(locked, old_communities)
    old_org_id = locked.org_id
    for field, value in changes.items():
        setattr(locked, field, value)
    communities = (
        list(liaison_communities) if liaison_communities is not None else list(locked.liaison_communities.all())
    )
    org = PartyOrganisation.objects.select_for_update().get(pk=locked.org_id)
    committee_seat_check(org=org, liaison_communities=communities)
    locked.save()
    if liaison_communities is not None:
        locked.liaison_communities.set(communities)
    new_communities = [c.pk for c in communities]
    audit(
        AuditEvent.Action.UPDATE,
        locked,
        f"修改“{org.name}”委员“{locked.person_name}”",
        changes=changed_fields(before, _seat_snapshot(locked, new_communities)),
        street_id=org.street_id,
    )
    communities_changed(
        _seat_communities(old_org_id, old_communities) | _seat_communities(org.pk, new_communities)
    )
    ensure_editable(reach, locked)
    return locked


@transaction.atomic
def committee_seat_delete(*, reach: Reach | None = None, seat: CommitteeSeat) -> None:
    """Remove a member from an enlarged committee; the audit row keeps who held the seat."""
    ensure_editable(reach, seat)
    locked = CommitteeSeat.objects.select_for_update().select_related("org").get(pk=seat.pk)
    communities = sorted(locked.liaison_communities.values_list("pk", flat=True))
    audit(
        AuditEvent.Action.DELETE,
        locked,
        f"“{locked.org.name}”删除委员“{locked.person_name}”",
        changes=_seat_snapshot(locked, communities),
        street_id=locked.org.street_id,
    )
    communities_changed(_seat_communities(locked.org_id, communities))
    locked.delete()
