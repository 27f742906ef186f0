"""Planners' drafts of a community's grid (网格调整方案): nothing here is live until it is applied.

A Plan is one planner's redraw of one community. It starts from the boundaries in force (or an
uploaded file, an earlier applied plan, the boundaries as of a date, a suggestion) and records
what it started from (`based_on_boundaries`, `based_on_version`): applying refuses a plan whose
community's boundaries changed since (mapping.plans.plan_apply, code plan_stale).

Its cells (PlanCell) are the draft's current shapes, one row per grid code: an existing code keeps
its GridCell, a new code gets one when the plan is applied; a current cell the draft no longer
has (merged away) is retired on apply. Its edits (PlanEdit) are the ordered log of the editing
session with the touched cells before and after each, so the session can be undone and redone
to any point: `Plan.cursor` is how many edits are in effect; a new edit after an undo drops the
undone tail. The log is also the record of who changed the draft when; applying writes the
audit row (grid.audit) and keeps the plan, with who, when and why, for good.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.gis.db import models
from django.contrib.postgres.fields import ArrayField
from django.db.models import Q

from grid.models import STORAGE_SRID, Community, GridCell


class Plan(models.Model):
    """网格调整方案: a draft redraw of one community's grid cells, applied at most once."""

    class State(models.TextChoices):
        DRAFT = "draft", "草稿"
        APPLIED = "applied", "已应用"
        ABANDONED = "abandoned", "已放弃"

    class Origin(models.TextChoices):
        TODAY = "today", "现行网格"
        AS_OF = "as_of", "某日网格"
        UPLOAD = "upload", "上传文件"
        COPY = "copy", "复制方案"
        REVERT = "revert", "恢复已应用方案"
        SUGGESTION = "suggestion", "调整建议"

    community = models.ForeignKey(Community, verbose_name="社区", on_delete=models.PROTECT, related_name="plans")
    name = models.CharField("方案名称", max_length=100)
    state = models.CharField("状态", max_length=16, choices=State.choices, default=State.DRAFT)
    origin = models.CharField("来源", max_length=16, choices=Origin.choices, default=Origin.TODAY)
    origin_plan = models.ForeignKey(
        "self", verbose_name="来源方案", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    origin_date = models.DateField("来源日期", null=True, blank=True, help_text="从某日网格开始时的日期")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name="创建人", on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    # Kept as text too: the plan still says who after the account is gone.
    created_by_name = models.CharField("创建人名称", max_length=150, blank=True)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)
    updated_at = models.DateTimeField("更新时间", auto_now=True)
    # What the draft started from: the community's boundary versions in force then (ids and a
    # digest of their shapes), and its data version. The digest decides staleness (another plan or
    # an admin redraw changed a boundary); the version only says whether anything at all changed
    # since (visits bump it too).
    based_on_boundaries = ArrayField(models.BigIntegerField(), verbose_name="起始边界版本", default=list)
    # md5 of those versions' ids, start dates and shapes: a shape corrected in place (same id) is a
    # change too (mapping.plans_sql.boundaries_in_force).
    based_on_digest = models.CharField("起始边界摘要", max_length=32, blank=True)
    based_on_version = models.PositiveBigIntegerField("起始数据版本", default=0)
    cursor = models.PositiveIntegerField("编辑位置", default=0, help_text="生效的编辑步数（撤销后减少）")
    applied_at = models.DateTimeField("应用时间", null=True, blank=True)
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name="应用人", on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    applied_by_name = models.CharField("应用人名称", max_length=150, blank=True)
    valid_from = models.DateField("生效日期", null=True, blank=True)
    reason = models.CharField("调整事由", max_length=500, blank=True)
    # What applying did (cells redrawn, created, retired; buildings moved; branches and workers
    # left on a retired cell), as the apply answered it.
    result = models.JSONField("应用结果", default=dict, blank=True)

    class Meta:
        verbose_name = "网格调整方案"
        verbose_name_plural = "网格调整方案"
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(state="applied")
                | (Q(applied_at__isnull=False) & Q(valid_from__isnull=False) & ~Q(reason="")),
                name="plan_applied_has_when_and_why",
            ),
            models.CheckConstraint(
                condition=Q(state__in=["draft", "applied", "abandoned"]), name="plan_state_known"
            ),
        ]
        indexes = [models.Index(fields=["community", "state"], name="plan_community_state")]

    def __str__(self) -> str:
        return f"{self.name}（{self.get_state_display()}）"


class PlanCell(models.Model):
    """One grid cell of a draft: its code (existing or new), its shape, whether it is locked."""

    plan = models.ForeignKey(Plan, verbose_name="方案", on_delete=models.CASCADE, related_name="cells")
    code = models.CharField("网格编码", max_length=15)
    # The existing grid cell of this code; null for a code the plan creates (set when applied).
    cell = models.ForeignKey(
        GridCell, verbose_name="网格", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    name = models.CharField("名称", max_length=64)
    geom = models.MultiPolygonField("边界", srid=STORAGE_SRID)
    locked = models.BooleanField("锁定", default=False)

    class Meta:
        verbose_name = "方案网格"
        verbose_name_plural = "方案网格"
        ordering = ["plan", "code"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "code"], name="plancell_one_per_code"),
            models.CheckConstraint(condition=Q(code__regex=r"^\d{15}$"), name="plancell_code_format"),
            models.CheckConstraint(condition=Q(geom__isvalid=True), name="plancell_geom_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class PlanEdit(models.Model):
    """One step of a draft's editing session, with the touched cells before and after it.

    `before` / `after`: {code: null (absent) or {"name", "geom" (hex EWKB), "locked", "cell_id"}}:
    undo writes `before` back, redo `after`. Steps after the plan's cursor are undone (redo-able)
    until a new edit drops them.
    """

    class Kind(models.TextChoices):
        RESHAPE = "reshape", "调整边界"
        DRAW = "draw", "新绘网格"
        SPLIT = "split", "拆分网格"
        MERGE = "merge", "合并网格"
        MOVE_BUILDING = "move_building", "楼栋换网格"
        LOCK = "lock", "锁定网格"
        UNLOCK = "unlock", "解除锁定"

    plan = models.ForeignKey(Plan, verbose_name="方案", on_delete=models.CASCADE, related_name="edits")
    seq = models.PositiveIntegerField("步骤")
    kind = models.CharField("操作", max_length=16, choices=Kind.choices)
    payload = models.JSONField("参数", default=dict)
    summary = models.CharField("说明", max_length=200, blank=True)
    before = models.JSONField("操作前", default=dict)
    after = models.JSONField("操作后", default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name="操作人", on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    created_by_name = models.CharField("操作人名称", max_length=150, blank=True)
    created_at = models.DateTimeField("时间", auto_now_add=True)

    class Meta:
        verbose_name = "方案编辑步骤"
        verbose_name_plural = "方案编辑步骤"
        ordering = ["plan", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "seq"], name="planedit_one_per_step"),
            models.CheckConstraint(condition=Q(seq__gte=1), name="planedit_seq_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.plan_id}#{self.seq} {self.get_kind_display()}"
