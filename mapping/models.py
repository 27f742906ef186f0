"""Coverage gaps (兜底管理): what no party organisation or worker covers yet, and who answers for it.

A gap row is derived data: `mapping.services.gaps_recompute` writes every row, set-based, from the
organisation and space tables. Its identity is (kind, subject_type, subject_id); while it stays
open its row is updated in place (`since` kept), and when its subject no longer qualifies the row
is closed (`resolved_at`), never deleted, so "gaps closed this month" and "how long gaps stay
open" can be answered. A gap that comes back later is a new row: history shows both spells. The
database allows one open row per subject (a partial unique constraint), so two recomputes racing
cannot open the same gap twice.

The subject of an area kind (`area_*`) is the community itself: one open area gap of a kind per
community, its geometry the uncovered part.
"""

from django.contrib.gis.db import models
from django.db.models import Q

from grid.models import STORAGE_SRID, Community, GridCell
from orgs.models import PartyOrganisation


class Gap(models.Model):
    """覆盖缺口: one spell of one subject being uncovered, from `since` to `resolved_at`."""

    class Kind(models.TextChoices):
        GRID_WITHOUT_BRANCH = "grid_without_branch", "网格未建党支部"
        GRID_WITHOUT_WORKER = "grid_without_worker", "网格无在岗网格员"
        BUILDING_WITHOUT_GROUP = "building_without_group", "楼栋有党员未建党小组"
        MEMBER_UNATTACHED = "member_unattached", "党员未纳入组织管理"
        MEMBER_LOST_CONTACT = "member_lost_contact", "失联党员"
        ENTERPRISE_SHOULD_FORM_ORG = "enterprise_should_form_org", "两新组织应单独组建党组织"
        ENTERPRISE_UNCOVERED = "enterprise_uncovered", "两新组织党建空白点"
        BUILDING_UNVISITED = "building_unvisited", "楼栋超期未走访"
        GRID_LOW_VISIT_RATE = "grid_low_visit_rate", "网格入户走访率偏低"
        CADRE_SHORT_OF_DAYS = "cadre_short_of_days", "驻点干部在岗天数不足"
        AREA_BEYOND_SERVICE_CENTRE = "area_beyond_service_centre", "党群服务中心服务范围外区域"
        AREA_NOT_GRIDDED = "area_not_gridded", "未划入网格区域"
        AREA_MULTI_GRIDDED = "area_multi_gridded", "多个网格重叠区域"

    class Severity(models.IntegerChoices):
        NOTICE = 1, "提示"
        WARNING = 2, "一般"
        SERIOUS = 3, "严重"

    # Subject types: "app_label.Model" of the uncovered thing, stable across renames of its rows.
    SUBJECT_GRID_CELL = "grid.GridCell"
    SUBJECT_BUILDING = "grid.Building"
    SUBJECT_COMMUNITY = "grid.Community"
    SUBJECT_MEMBER = "orgs.PartyMember"
    SUBJECT_ENTERPRISE = "orgs.Enterprise"
    SUBJECT_CADRE = "orgs.StationedCadre"

    kind = models.CharField("缺口类型", max_length=32, choices=Kind.choices)
    subject_type = models.CharField("对象类型", max_length=32)
    subject_id = models.BigIntegerField("对象编号")
    subject_code = models.CharField("对象编码", max_length=64, blank=True)
    # What the map shows; a member's name is masked here (张**), never stored in clear.
    subject_label = models.CharField("对象名称", max_length=100, blank=True)
    community = models.ForeignKey(
        Community, verbose_name="社区", on_delete=models.CASCADE, related_name="gaps"
    )
    grid_cell = models.ForeignKey(
        GridCell,
        verbose_name="所在网格",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="gaps",
        help_text="对象当前所在的网格；区域类缺口及未入网格的对象为空",
    )
    geom = models.GeometryField("位置/范围", srid=STORAGE_SRID)
    severity = models.PositiveSmallIntegerField("严重程度", choices=Severity.choices, default=Severity.WARNING)
    # Null only where no organisation exists at all (a street without a working committee).
    responsible_org = models.ForeignKey(
        PartyOrganisation,
        verbose_name="兜底党组织",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="fallback_gaps",
    )
    responsible_label = models.CharField("兜底责任主体", max_length=120, blank=True)
    since = models.DateTimeField("发现时间")
    resolved_at = models.DateTimeField("消除时间", null=True, blank=True)
    computed_at = models.DateTimeField("计算时间")
    figures = models.JSONField("依据数据", default=dict, blank=True)

    class Meta:
        verbose_name = "覆盖缺口"
        verbose_name_plural = "覆盖缺口"
        ordering = ["-since", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "subject_type", "subject_id"],
                condition=Q(resolved_at__isnull=True),
                name="gap_one_open_per_subject",
                violation_error_code="gap_one_open_per_subject",
                violation_error_message="该对象已有同类未消除的缺口",
            ),
            models.CheckConstraint(
                condition=Q(resolved_at__isnull=True) | Q(resolved_at__gte=models.F("since")),
                name="gap_resolved_after_since",
            ),
            models.CheckConstraint(condition=Q(geom__isvalid=True), name="gap_geom_valid"),
            models.CheckConstraint(condition=Q(severity__gte=1, severity__lte=3), name="gap_severity_range"),
        ]
        indexes = [
            # The map and the summary read a community's (or a street's) open gaps.
            models.Index(fields=["community", "kind"], condition=Q(resolved_at__isnull=True), name="gap_open_community"),
            models.Index(fields=["grid_cell"], condition=Q(resolved_at__isnull=True), name="gap_open_grid"),
            models.Index(fields=["kind", "since"], name="gap_kind_since"),
            # "Closed this month" and the age of closed gaps.
            models.Index(fields=["resolved_at"], condition=Q(resolved_at__isnull=False), name="gap_resolved"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}：{self.subject_label or self.subject_code or self.subject_id}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class IndicatorSnapshot(models.Model):
    """指标日快照: one day's indicators of one unit (street, community or grid cell), so a trend over
    months can be drawn. Written only by `mapping.indicators.indicator_snapshots_take`, one row per
    (unit, day): taking the day's snapshot again overwrites that day's row (the latest figures of
    the day win), never adds a second one.

    The unit is (type, id) rather than three foreign keys: a snapshot is history and must outlive
    the unit's row; `unit_code` is kept beside it so old rows still say which unit they were (a grid
    cell keeps its code across redraws). `figures` is the JSON of `mapping.indicators` (each rate
    with its numerator and denominator, the open gaps by kind), as the API answers it.
    """

    class UnitType(models.TextChoices):
        STREET = "street", "街道"
        COMMUNITY = "community", "社区"
        GRID_CELL = "grid_cell", "网格"

    unit_type = models.CharField("单元类型", max_length=16, choices=UnitType.choices)
    unit_id = models.BigIntegerField("单元编号")
    unit_code = models.CharField("单元编码", max_length=15)
    day = models.DateField("日期")
    figures = models.JSONField("指标", default=dict)
    computed_at = models.DateTimeField("计算时间")

    class Meta:
        verbose_name = "指标日快照"
        verbose_name_plural = "指标日快照"
        ordering = ["unit_type", "unit_id", "day"]
        constraints = [
            # The target of the snapshot's INSERT … ON CONFLICT, and what makes a rerun idempotent.
            models.UniqueConstraint(
                fields=["unit_type", "unit_id", "day"],
                name="indicatorsnapshot_one_per_unit_day",
                violation_error_code="indicatorsnapshot_one_per_unit_day",
                violation_error_message="该单元当天已有指标快照",
            ),
            models.CheckConstraint(
                condition=Q(unit_type__in=["street", "community", "grid_cell"]),
                name="indicatorsnapshot_unit_type",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_unit_type_display()} {self.unit_code} {self.day}"


# Planners' drafts (issue 11) live in their own module; imported here so Django finds the models.
from mapping.plans_models import Plan, PlanCell, PlanEdit  # noqa: E402, F401

# The buildings tile's precomputed statuses (mapping.tile_models), written by the gap recompute.
from mapping.tile_models import BuildingStatus, BuildingStatusVersion, GridCellStatus  # noqa: E402, F401, I001
