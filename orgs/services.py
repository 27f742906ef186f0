"""Every write to organisations and people goes through these functions: one transaction each.

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
makes a cycle impossible, so no ancestor walk is needed on re-parenting.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

from django.conf import settings
from django.contrib.gis.geos import Point
from django.db import IntegrityError, transaction

from grid.audit import audit_record
from grid.models import STORAGE_SRID, AuditEvent, Building, Community, GridCell, Street
from orgs import pii, sql
from orgs.errors import AttachmentInvalid, DuplicatePerson, OrgError, TreeMismatch
from orgs.models import (
    ALLOWED_PARENT_KINDS,
    Cadre,
    CommitteeSeat,
    Enterprise,
    GridWorker,
    PartyMember,
    PartyOrganisation,
    Rectification,
    StarRating,
    StationedCadre,
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


# ---------------------------------------------------------------------------------------------
# Audit


def _plain(value: Any) -> Any:
    """A field value as JSON: related objects by id, dates as ISO text, decimals as text."""
    if hasattr(value, "pk"):
        return value.pk
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _snapshot(obj: Any, fields: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in fields:
        field = obj._meta.get_field(name)
        out[name] = getattr(obj, field.attname) if field.is_relation else _plain(getattr(obj, name))
    return out


def _diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {k: [before[k], after[k]] for k in after if before.get(k) != after[k]}


def _audit(
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


def _community_street_id(community_id: int | None) -> int | None:
    if community_id is None:
        return None
    return Community.objects.values_list("street_id", flat=True).filter(pk=community_id).first()


def _member_street_id(member: PartyMember) -> int | None:
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
        if children.filter(kind=Kind.GRID_BRANCH).exclude(grid_cell__community_id=cast(int, org.community_id)).exists():
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
    changes = _snapshot(org, sorted(ORG_FIELDS))
    if building_list:
        changes["buildings"] = sorted(b.pk for b in building_list)
    _audit(AuditEvent.Action.CREATE, org, f"新增党组织“{org.name}”", changes=changes, street_id=org.street_id)
    return org


@transaction.atomic
def party_org_update(
    *, org: PartyOrganisation, buildings: Iterable[Building] | None = None, **changes: Any
) -> PartyOrganisation:
    """Change fields of `org` (any of ORG_FIELDS; `buildings` replaces the set when given)."""
    unknown = set(changes) - ORG_FIELDS
    if unknown:
        raise OrgError(f"不能修改字段：{'、'.join(sorted(unknown))}", code="org_field_unknown")
    locked = PartyOrganisation.objects.select_for_update().get(pk=org.pk)
    before = _snapshot(locked, changes)
    old_buildings = sorted(locked.buildings.values_list("pk", flat=True)) if buildings is not None else []
    for field, value in changes.items():
        setattr(locked, field, value)
    if "term_years" in changes and not changes["term_years"]:
        locked.term_years = default_term_years(locked.kind)
    building_list = list(buildings) if buildings is not None else None
    _save_org(locked, building_list, update_fields=None)
    diff = _diff(before, _snapshot(locked, changes))
    if building_list is not None and sorted(b.pk for b in building_list) != old_buildings:
        diff["buildings"] = [old_buildings, sorted(b.pk for b in building_list)]
    _audit(
        AuditEvent.Action.UPDATE,
        locked,
        f"修改党组织“{locked.name}”",
        changes=diff,
        street_id=locked.street_id,
    )
    return locked


@transaction.atomic
def party_org_flag_weak(
    *, org: PartyOrganisation, flagged_on: date, reasons: str, measures: str = ""
) -> Rectification:
    """Flag an organisation 软弱涣散 and open its rectification record."""
    locked = PartyOrganisation.objects.select_for_update().get(pk=org.pk)
    if locked.rectifications.filter(converted_on__isnull=True).exists():
        raise OrgError(f"“{locked.name}”已在整顿中", code="rectification_open_exists")
    rect = Rectification.objects.create(org=locked, flagged_on=flagged_on, reasons=reasons, measures=measures)
    locked.weak = True
    locked.save(update_fields=["weak", "updated_at"])
    _audit(
        AuditEvent.Action.CREATE,
        rect,
        f"认定“{locked.name}”为软弱涣散党组织",
        changes={"org": locked.pk, "flagged_on": flagged_on.isoformat(), "reasons": reasons},
        street_id=locked.street_id,
    )
    return rect


@transaction.atomic
def rectification_convert(*, rectification: Rectification, converted_on: date) -> Rectification:
    """Record that a weak organisation has been converted (转化); its flag is cleared."""
    rect = Rectification.objects.select_for_update().get(pk=rectification.pk)
    if rect.converted_on is not None:
        raise OrgError("该整顿已记录转化", code="rectification_already_converted")
    if converted_on < rect.flagged_on:
        raise OrgError("转化日期不能早于认定日期", code="rectification_date_order")
    rect.converted_on = converted_on
    rect.save(update_fields=["converted_on"])
    PartyOrganisation.objects.filter(pk=rect.org_id).update(weak=False)
    org_name, street_id = PartyOrganisation.objects.values_list("name", "street_id").get(pk=rect.org_id)
    _audit(
        AuditEvent.Action.UPDATE,
        rect,
        f"“{org_name}”整顿转化",
        changes={"converted_on": [None, converted_on.isoformat()]},
        street_id=street_id,
    )
    return rect


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
    org: PartyOrganisation,
    year: int,
    score: Decimal,
    satisfaction_score: Decimal,
    stars: int | None = None,
) -> StarRating:
    """Record (or correct) an organisation's rating for `year`; stars follow the total if not given."""
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
    _audit(
        AuditEvent.Action.CREATE if created else AuditEvent.Action.UPDATE,
        rating,
        f"“{org.name}”{year}年度星级评定：{rating.stars}星",
        changes={"year": year, **{k: _plain(v) for k, v in values.items()}},
        street_id=org.street_id,
    )
    return rating


# ---------------------------------------------------------------------------------------------
# Enterprises (两新组织)


def _enterprise_point(point: Point | None, building: Building | None) -> Point:
    if point is None:
        if building is None:
            raise OrgError("两新组织必须给出位置或所在楼栋", code="enterprise_location_missing")
        return Building.objects.values_list("point", flat=True).get(pk=building.pk)
    if point.srid not in (None, STORAGE_SRID):
        # Conversion from GCJ-02 etc. happens once, at the edge (grid/coords.py); not here.
        raise OrgError(f"位置坐标系应为 EPSG:{STORAGE_SRID}", code="crs_mismatch")
    return Point(point.x, point.y, srid=STORAGE_SRID)


def _check_enterprise_links(enterprise: Enterprise) -> None:
    street_id = enterprise.community.street_id if enterprise.community else None
    branch = enterprise.covering_joint_branch
    if branch is not None:
        if branch.kind != Kind.JOINT_BRANCH:
            raise OrgError("覆盖的党组织必须是联合党支部", code="enterprise_joint_branch_kind")
        if branch.street_id != street_id:
            raise TreeMismatch("联合党支部与两新组织不在同一街道", code="enterprise_joint_branch_street")
    if enterprise.instructor is not None and enterprise.instructor.street_id != street_id:
        raise TreeMismatch("党建指导员与两新组织不在同一街道", code="enterprise_instructor_street")


def _locate_and_check(enterprise: Enterprise) -> Enterprise:
    sql.enterprises_locate([enterprise.pk])
    enterprise.refresh_from_db(fields=["community"])
    if enterprise.community_id is None:
        raise OrgError(f"“{enterprise.name}”的位置不在任何社区范围内", code="enterprise_outside_communities")
    _check_enterprise_links(enterprise)
    return enterprise


@transaction.atomic
def enterprise_create(
    *,
    name: str,
    kind: str = Enterprise.Kind.ENTERPRISE,
    credit_code: str = "",
    point: Point | None = None,
    building: Building | None = None,
    employee_count: int = 0,
    covering_joint_branch: PartyOrganisation | None = None,
    instructor: Cadre | None = None,
) -> Enterprise:
    """Create an enterprise/social organisation; its community is found from its point (or building)."""
    credit_code = credit_code.strip().upper()
    if credit_code and Enterprise.objects.filter(credit_code=credit_code).exists():
        raise OrgError(f"统一社会信用代码 {credit_code} 已登记", code="enterprise_credit_code_taken")
    enterprise = Enterprise.objects.create(
        name=name,
        kind=kind,
        credit_code=credit_code,
        building=building,
        geom=_enterprise_point(point, building),
        employee_count=employee_count,
        covering_joint_branch=covering_joint_branch,
        instructor=instructor,
    )
    enterprise = _locate_and_check(enterprise)
    _audit(
        AuditEvent.Action.CREATE,
        enterprise,
        f"新增两新组织“{enterprise.name}”",
        changes=_snapshot(enterprise, sorted(ENTERPRISE_FIELDS | {"community"})),
        street_id=_community_street_id(enterprise.community_id),
    )
    return enterprise


ENTERPRISE_FIELDS = {
    "name",
    "kind",
    "credit_code",
    "building",
    "employee_count",
    "covering_joint_branch",
    "instructor",
}


@transaction.atomic
def enterprise_update(*, enterprise: Enterprise, point: Point | None = None, **changes: Any) -> Enterprise:
    unknown = set(changes) - ENTERPRISE_FIELDS
    if unknown:
        raise OrgError(f"不能修改字段：{'、'.join(sorted(unknown))}", code="enterprise_field_unknown")
    locked = Enterprise.objects.select_for_update().get(pk=enterprise.pk)
    watched = sorted(set(changes) | {"community"})
    before = _snapshot(locked, watched)
    before_geom = locked.geom.ewkt
    for field, value in changes.items():
        setattr(locked, field, value)
    if "credit_code" in changes:
        locked.credit_code = (locked.credit_code or "").strip().upper()
        if (
            locked.credit_code
            and Enterprise.objects.filter(credit_code=locked.credit_code).exclude(pk=locked.pk).exists()
        ):
            raise OrgError(
                f"统一社会信用代码 {locked.credit_code} 已登记", code="enterprise_credit_code_taken"
            )
    if point is not None or "building" in changes:
        locked.geom = _enterprise_point(point, locked.building if point is None else None)
    locked.save()
    locked = _locate_and_check(locked)
    diff = _diff(before, _snapshot(locked, watched))
    if locked.geom.ewkt != before_geom:
        diff["geom"] = [before_geom, locked.geom.ewkt]
    _audit(
        AuditEvent.Action.UPDATE,
        locked,
        f"修改两新组织“{locked.name}”",
        changes=diff,
        street_id=_community_street_id(locked.community_id),
    )
    return locked


@transaction.atomic
def enterprises_locate(*, enterprise_ids: Sequence[int] | None = None) -> int:
    """Recompute enterprises' communities from their points (all when None), after a boundary change."""
    return sql.enterprises_locate(enterprise_ids)


# ---------------------------------------------------------------------------------------------
# People


class _Unset:
    pass


UNSET: Any = _Unset()


def _apply_pii(obj: Any, field: str, value: str | None, sealer: Any) -> None:
    """Seal a clear value into `<field>_cipher`/`<field>_hash`; "" or None clears both."""
    if value:
        sealed = sealer(value)
        setattr(obj, f"{field}_cipher", sealed.cipher)
        setattr(obj, f"{field}_hash", sealed.hash)
    else:
        setattr(obj, f"{field}_cipher", "")
        setattr(obj, f"{field}_hash", None)


def _check_member(member: PartyMember) -> None:
    if member.id_number_hash:
        dup = PartyMember.objects.filter(id_number_hash=member.id_number_hash)
        if member.pk:
            dup = dup.exclude(pk=member.pk)
        if dup.exists():
            raise DuplicatePerson("该身份证号已登记为党员，不能重复录入", code="member_duplicate_id_number")
    if member.reported_on and member.reported_community_id is None:
        raise OrgError("填写报到日期时必须指定双报到社区", code="member_reported_community_required")
    if member.dues_paid_through is not None:
        member.dues_paid_through = member.dues_paid_through.replace(day=1)


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
    _apply_pii(member, "id_number", id_number, pii.seal_id_number)
    _apply_pii(member, "phone", phone, pii.seal_phone)
    _save_member(member)
    changes = _snapshot(member, sorted(MEMBER_FIELDS))
    changes |= {"id_number": "已填写" if id_number else "", "phone": "已填写" if phone else ""}
    _audit(
        AuditEvent.Action.CREATE,
        member,
        f"新增党员“{member.name}”",
        changes=changes,
        street_id=_member_street_id(member),
    )
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
    *, member: PartyMember, id_number: str | None = UNSET, phone: str | None = UNSET, **changes: Any
) -> PartyMember:
    """Change a member. Pass `id_number`/`phone` only to replace them ("" clears)."""
    unknown = set(changes) - MEMBER_FIELDS
    if unknown:
        raise OrgError(f"不能修改字段：{'、'.join(sorted(unknown))}", code="member_field_unknown")
    locked = PartyMember.objects.select_for_update().get(pk=member.pk)
    before = _snapshot(locked, changes)
    old_hashes = {"id_number": locked.id_number_hash, "phone": locked.phone_hash}
    for field, value in changes.items():
        setattr(locked, field, value)
    if id_number is not UNSET:
        _apply_pii(locked, "id_number", id_number, pii.seal_id_number)
    if phone is not UNSET:
        _apply_pii(locked, "phone", phone, pii.seal_phone)
    _save_member(locked)
    diff = _diff(before, _snapshot(locked, changes))
    for field, old_hash in old_hashes.items():
        # The audit log says that personal data changed, never what it was or became.
        if getattr(locked, f"{field}_hash") != old_hash:
            diff[field] = "已修改"
    _audit(
        AuditEvent.Action.UPDATE,
        locked,
        f"修改党员“{locked.name}”",
        changes=diff,
        street_id=_member_street_id(locked),
    )
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
    _apply_pii(worker, "phone", phone, pii.seal_phone)
    worker.save()
    worker.grid_cells.set(cells)
    changes = _snapshot(worker, ["name", "community", "full_time", "user", "active"])
    changes |= {"grid_cells": sorted(c.pk for c in cells), "phone": "已填写" if phone else ""}
    _audit(
        AuditEvent.Action.CREATE,
        worker,
        f"新增网格员“{worker.name}”",
        changes=changes,
        street_id=community.street_id,
    )
    return worker


@transaction.atomic
def grid_worker_update(
    *,
    worker: GridWorker,
    phone: str | None = UNSET,
    grid_cells: Iterable[GridCell] | None = None,
    **changes: Any,
) -> GridWorker:
    unknown = set(changes) - {"name", "community", "full_time", "user", "active"}
    if unknown:
        raise OrgError(f"不能修改字段：{'、'.join(sorted(unknown))}", code="worker_field_unknown")
    locked = GridWorker.objects.select_for_update().get(pk=worker.pk)
    before = _snapshot(locked, changes)
    old_cells = sorted(locked.grid_cells.values_list("pk", flat=True))
    old_phone = locked.phone_hash
    for field, value in changes.items():
        setattr(locked, field, value)
    cells = list(grid_cells) if grid_cells is not None else list(locked.grid_cells.all())
    grid_worker_check_cells(community_id=locked.community_id, cells=cells)
    if phone is not UNSET:
        _apply_pii(locked, "phone", phone, pii.seal_phone)
    locked.save()
    locked.grid_cells.set(cells)
    diff = _diff(before, _snapshot(locked, changes))
    if sorted(c.pk for c in cells) != old_cells:
        diff["grid_cells"] = [old_cells, sorted(c.pk for c in cells)]
    if locked.phone_hash != old_phone:
        diff["phone"] = "已修改"
    _audit(
        AuditEvent.Action.UPDATE,
        locked,
        f"修改网格员“{locked.name}”",
        changes=diff,
        street_id=_community_street_id(locked.community_id),
    )
    return locked


@transaction.atomic
def cadre_create(*, name: str, street: Street, unit_name: str = "", user: Any = None) -> Cadre:
    cadre = Cadre.objects.create(name=name, street=street, unit_name=unit_name, user=user)
    _audit(
        AuditEvent.Action.CREATE,
        cadre,
        f"新增干部“{cadre.name}”",
        changes=_snapshot(cadre, ["name", "street", "unit_name", "user"]),
        street_id=street.pk,
    )
    return cadre


@transaction.atomic
def stationed_cadre_create(
    *,
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
    _check_stationed(cadre)
    cadre.save()
    _audit(
        AuditEvent.Action.CREATE,
        cadre,
        f"新增驻点干部“{cadre.name}”",
        changes=_snapshot(cadre, sorted(STATIONED_FIELDS)),
        street_id=community.street_id,
    )
    return cadre


STATIONED_FIELDS = {
    "name",
    "community",
    "period_start",
    "period_end",
    "required_days_per_month",
    "required_contacts_per_month",
    "user",
}


def _check_stationed(cadre: StationedCadre) -> None:
    if cadre.period_end is not None and cadre.period_end < cadre.period_start:
        raise OrgError("驻点结束日期不能早于开始日期", code="stationed_period_order")
    if not 0 <= cadre.required_days_per_month <= 31:
        raise OrgError("每月应驻点天数应在0–31之间", code="stationed_days_range")
    if cadre.required_contacts_per_month < 0:
        raise OrgError("每月应联系群众次数不能为负数", code="stationed_contacts_range")


@transaction.atomic
def stationed_cadre_update(*, cadre: StationedCadre, **changes: Any) -> StationedCadre:
    """Change a posting: its period (e.g. ending it), duties, community or login."""
    unknown = set(changes) - STATIONED_FIELDS
    if unknown:
        raise OrgError(f"不能修改字段：{'、'.join(sorted(unknown))}", code="stationed_field_unknown")
    locked = StationedCadre.objects.select_for_update().get(pk=cadre.pk)
    before = _snapshot(locked, changes)
    for field, value in changes.items():
        setattr(locked, field, value)
    _check_stationed(locked)
    locked.save()
    _audit(
        AuditEvent.Action.UPDATE,
        locked,
        f"修改驻点干部“{locked.name}”",
        changes=_diff(before, _snapshot(locked, changes)),
        street_id=_community_street_id(locked.community_id),
    )
    return locked


@transaction.atomic
def committee_seat_create(
    *,
    org: PartyOrganisation,
    person_name: str,
    unit_name: str = "",
    is_resident_unit_head: bool = False,
    liaison_communities: Iterable[Community] = (),
    liaison_units: str = "",
) -> CommitteeSeat:
    """Add a member to an enlarged committee (大工委/大党委) with the places they liaise with."""
    if not org.is_enlarged:
        raise OrgError(f"“{org.name}”不是大工委/大党委，不能设兼职委员", code="seat_org_not_enlarged")
    communities = list(liaison_communities)
    outside = [c.name for c in communities if c.street_id != org.street_id]
    if outside:
        raise TreeMismatch(
            f"分片联系社区 {'、'.join(outside)} 不在本街道内", code="seat_liaison_outside_street"
        )
    seat = CommitteeSeat.objects.create(
        org=org,
        person_name=person_name,
        unit_name=unit_name,
        is_resident_unit_head=is_resident_unit_head,
        liaison_units=liaison_units,
    )
    seat.liaison_communities.set(communities)
    _audit(
        AuditEvent.Action.CREATE,
        seat,
        f"“{org.name}”新增委员“{person_name}”",
        changes={
            "org": org.pk,
            "person_name": person_name,
            "unit_name": unit_name,
            "is_resident_unit_head": is_resident_unit_head,
            "liaison_communities": sorted(c.pk for c in communities),
        },
        street_id=org.street_id,
    )
    return seat


@transaction.atomic
def committee_seat_delete(*, seat: CommitteeSeat) -> None:
    """Remove a member from an enlarged committee; the audit row keeps who held the seat."""
    locked = CommitteeSeat.objects.select_for_update().select_related("org").get(pk=seat.pk)
    communities = sorted(locked.liaison_communities.values_list("pk", flat=True))
    _audit(
        AuditEvent.Action.DELETE,
        locked,
        f"“{locked.org.name}”删除委员“{locked.person_name}”",
        changes={
            "org": locked.org_id,
            "person_name": locked.person_name,
            "unit_name": locked.unit_name,
            "is_resident_unit_head": locked.is_resident_unit_head,
            "liaison_communities": communities,
        },
        street_id=locked.org.street_id,
    )
    locked.delete()
