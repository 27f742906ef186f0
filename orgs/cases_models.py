"""Residents' cases (民情事项) and the ledger they form (民情台账).

A case follows the 数字城管 loop: 采集 → 立案 → 派遣 → 处理 → 反馈 → 核查 → 结案, with 不予立案 at 立案,
退回 (one step back, with a reason) and 重复 (merged into another open case) where they apply. The
state lives on the case; every change of it is one `CaseTransition` row (who, when, from → to,
why, and for a 核查 the position where the re-check was made), written by the one service
`orgs.services.case_transition` together with the audit row. Overdue escalation (督办) is a
transition too (from and to the same state), written by `cases_escalate_overdue`.

What hangs on a case later (the tablet, the inbox): photos as their own model with a foreign key
to the case (and optionally to the transition they document), a synced case keyed by the
tablet's `client_id`, and stale edits refused through `version`, which every transition bumps.

Places are kept as on the events (orgs.models.FieldEvent): the position as captured (values,
coordinate system, accuracy) beside its WGS-84 conversion, and `place`, where the case counts;
the grid cell and community are those holding `place` on the day the case was raised.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.gis.db import models
from django.db.models import Q

from grid.models import STORAGE_SRID, Building, Community, GridCell, Street, TimestampedModel

__all__ = ["Case", "CaseCategory", "CaseTransition", "WorkCalendarDay"]

MAX_DUPLICATE_RADIUS_M = 1000  # FixMyStreet's cap for inspectors: farther is another place


class WorkCalendarDay(models.Model):
    """One day that does not follow the weekday rule: a public holiday (or a day of its block), or a
    make-up working day (调休). Days not listed are worked Monday to Friday."""

    date = models.DateField("日期", unique=True)
    is_workday = models.BooleanField("是否上班", help_text="勾选：调休上班日；不勾选：放假")
    note = models.CharField("说明", max_length=100, blank=True, help_text="如：春节、国庆节调休上班")

    class Meta:
        verbose_name = "工作日历"
        verbose_name_plural = "工作日历（节假日与调休）"
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d} {'上班' if self.is_workday else '放假'} {self.note}".strip()


class CaseCategory(TimestampedModel):
    """事项类别, kept by the street office: who answers by default, the time limit of each step in
    working hours (continuous hours when urgent) and the radius within which a new case of the
    same category is offered as a likely duplicate."""

    code = models.CharField("类别编码", max_length=16, unique=True)
    name = models.CharField("类别名称", max_length=32, unique=True)
    group = models.CharField("大类", max_length=32, blank=True)
    default_body = models.CharField(
        "默认责任单位", max_length=128, blank=True, help_text="网格未指定责任主体时派遣至此；留空则由属地社区兜底"
    )
    register_hours = models.DecimalField("立案时限（工作时）", max_digits=6, decimal_places=1, default=1)
    dispatch_hours = models.DecimalField("派遣时限（工作时）", max_digits=6, decimal_places=1, default=1)
    handle_hours = models.DecimalField(
        "处置时限（工作时）",
        max_digits=6,
        decimal_places=1,
        help_text="按工作时计；1个工作日即一天的工作时段（默认8:30–12:00、14:00–18:00，共7.5工作时）",
    )
    verify_hours = models.DecimalField("核查时限（工作时）", max_digits=6, decimal_places=1, default=4)
    close_hours = models.DecimalField("结案时限（工作时）", max_digits=6, decimal_places=1, default=2)
    urgent = models.BooleanField("紧急", default=False, help_text="紧急类别按自然小时连续计时，不扣除休息日")
    duplicate_radius_m = models.PositiveIntegerField(
        "疑似重复半径（米）", default=250, help_text=f"同类未办结事项在此距离内提示疑似重复，最大{MAX_DUPLICATE_RADIUS_M}米"
    )
    active = models.BooleanField("启用", default=True)
    sort_order = models.PositiveSmallIntegerField("排序", default=0)

    class Meta:
        verbose_name = "事项类别"
        verbose_name_plural = "事项类别"
        ordering = ["sort_order", "code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(register_hours__gt=0)
                & Q(dispatch_hours__gt=0)
                & Q(handle_hours__gt=0)
                & Q(verify_hours__gt=0)
                & Q(close_hours__gt=0),
                name="casecategory_hours_positive",
                violation_error_code="case_category_hours_positive",
                violation_error_message="各环节时限必须大于0",
            ),
            models.CheckConstraint(
                condition=Q(duplicate_radius_m__gte=1, duplicate_radius_m__lte=MAX_DUPLICATE_RADIUS_M),
                name="casecategory_radius_range",
                violation_error_code="case_category_radius_range",
                violation_error_message=f"疑似重复半径应在1–{MAX_DUPLICATE_RADIUS_M}米之间",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Case(TimestampedModel):
    """民情事项: one problem a resident raised, followed to its end."""

    class Source(models.TextChoices):
        VISIT = "visit", "网格员走访"
        STATION_CONTACT = "station_contact", "驻点联系"
        COUNTER = "counter", "街道窗口"
        HOTLINE = "hotline", "12345热线"
        IMPORT = "import", "批量导入"

    class State(models.TextChoices):
        REPORTED = "reported", "待立案"
        REGISTERED = "registered", "已立案待派遣"
        DISPATCHED = "dispatched", "已派遣待处理"
        IN_PROGRESS = "in_progress", "处理中"
        FEEDBACK = "feedback", "已反馈待核查"
        VERIFIED = "verified", "已核查待结案"
        CLOSED = "closed", "已结案"
        REJECTED = "rejected", "不予立案"
        MERGED = "merged", "重复（已合并）"

    class Route(models.TextChoices):
        GRID = "grid", "网格责任主体"
        CATEGORY = "category", "类别默认责任单位"
        COMMUNITY = "community", "属地兜底（社区）"
        STREET = "street", "属地兜底（街道）"
        MANUAL = "manual", "指定派遣"

    # The tablet's id of a case raised offline (synced exactly once); null for other entries.
    client_id = models.UUIDField("客户端编号", unique=True, null=True, blank=True, editable=False)
    source = models.CharField("来源", max_length=16, choices=Source.choices)
    source_visit = models.ForeignKey(
        "orgs.Visit", verbose_name="来源走访", on_delete=models.SET_NULL, null=True, blank=True, related_name="cases"
    )
    source_contact = models.ForeignKey(
        "orgs.StationContact",
        verbose_name="来源驻点联系",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="cases",
    )
    category = models.ForeignKey(CaseCategory, verbose_name="类别", on_delete=models.PROTECT, related_name="cases")
    description = models.TextField("问题描述")
    address = models.CharField("地址描述", max_length=200, blank=True)
    # The place
    captured_lon = models.FloatField("采集经度", null=True, blank=True)
    captured_lat = models.FloatField("采集纬度", null=True, blank=True)
    captured_crs = models.CharField("采集坐标系", max_length=16, blank=True)
    accuracy_m = models.FloatField("定位精度（米）", null=True, blank=True)
    point = models.PointField("定位（WGS-84）", srid=STORAGE_SRID, null=True, blank=True)
    place = models.PointField("事项位置", srid=STORAGE_SRID)
    street = models.ForeignKey(Street, verbose_name="街道", on_delete=models.PROTECT, related_name="+")
    community = models.ForeignKey(Community, verbose_name="社区", on_delete=models.PROTECT, related_name="+")
    grid_cell = models.ForeignKey(
        GridCell, verbose_name="网格", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Who and what it concerns
    building = models.ForeignKey(
        Building, verbose_name="涉及楼栋", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resident_name = models.CharField("反映人/涉及居民", max_length=32, blank=True)
    resident_phone_cipher = models.TextField("联系电话（密文）", blank=True, editable=False)
    resident_phone_hash = models.CharField("联系电话索引", max_length=64, null=True, blank=True, editable=False)
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name="采集人账号", on_delete=models.PROTECT, related_name="+"
    )
    reporter_name = models.CharField("采集人", max_length=150)
    reported_at = models.DateTimeField("上报时间")
    # The loop
    state = models.CharField("状态", max_length=16, choices=State.choices, default=State.REPORTED)
    step_started_at = models.DateTimeField("本环节开始")
    deadline = models.DateTimeField("本环节时限", null=True, blank=True)
    assignee_org = models.ForeignKey(
        "orgs.PartyOrganisation",
        verbose_name="承办党组织",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    assignee_name = models.CharField("承办单位", max_length=128, blank=True)
    assignee_route = models.CharField("派遣依据", max_length=16, choices=Route.choices, blank=True)
    escalation_level = models.PositiveSmallIntegerField("督办层级", default=0, help_text="0 表示未督办")
    escalated_to = models.ForeignKey(
        "orgs.PartyOrganisation",
        verbose_name="督办单位",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    # When the overdue sweep next escalates this case: the step's deadline, then one more step
    # limit after each escalation; null when closed or already escalated to the top.
    next_escalation_at = models.DateTimeField("下次督办时间", null=True, blank=True, editable=False)
    ever_overdue = models.BooleanField("曾超期", default=False, help_text="任一环节超过时限；按期办结率据此计算")
    version = models.PositiveIntegerField("版本", default=1, editable=False)
    merged_into = models.ForeignKey(
        "self", verbose_name="合并至", on_delete=models.PROTECT, null=True, blank=True, related_name="duplicates"
    )
    closed_at = models.DateTimeField("办结时间", null=True, blank=True, help_text="结案、不予立案或合并的时间")

    OPEN_STATES = (
        State.REPORTED,
        State.REGISTERED,
        State.DISPATCHED,
        State.IN_PROGRESS,
        State.FEEDBACK,
        State.VERIFIED,
    )
    FINAL_STATES = (State.CLOSED, State.REJECTED, State.MERGED)
    ASSIGNED_STATES = (State.DISPATCHED, State.IN_PROGRESS, State.FEEDBACK, State.VERIFIED, State.CLOSED)

    class Meta:
        verbose_name = "民情事项"
        verbose_name_plural = "民情事项"
        ordering = ["-reported_at", "-id"]
        indexes = [
            models.Index(fields=["street", "-reported_at", "-id"], name="case_street_reported"),
            models.Index(fields=["community", "-reported_at"], name="case_community_reported"),
            models.Index(fields=["grid_cell", "-reported_at"], name="case_grid_reported"),
            models.Index(fields=["category", "state"], name="case_category_state"),
            models.Index(fields=["closed_at"], name="case_closed_at"),
            # The overdue sweep's claim: only cases still due for an escalation are in it.
            models.Index(
                fields=["next_escalation_at"],
                condition=Q(next_escalation_at__isnull=False),
                name="case_next_escalation",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(Q(captured_lon__isnull=True) & Q(captured_lat__isnull=True) & Q(point__isnull=True))
                | (Q(captured_lon__isnull=False) & Q(captured_lat__isnull=False) & Q(point__isnull=False)),
                name="case_position_whole",
                violation_error_code="case_position_whole",
                violation_error_message="采集坐标与转换后的定位必须同时填写",
            ),
            models.CheckConstraint(
                condition=Q(accuracy_m__isnull=True) | Q(accuracy_m__gte=0),
                name="case_accuracy_nonnegative",
                violation_error_code="case_accuracy_nonnegative",
                violation_error_message="定位精度不能为负数",
            ),
            models.CheckConstraint(
                condition=(Q(state="merged") & Q(merged_into__isnull=False))
                | (~Q(state="merged") & Q(merged_into__isnull=True)),
                name="case_merged_has_target",
                violation_error_code="case_merged_has_target",
                violation_error_message="只有已合并的事项指向另一事项",
            ),
            models.CheckConstraint(
                condition=~Q(merged_into=models.F("id")),
                name="case_not_merged_into_itself",
                violation_error_code="case_not_merged_into_itself",
                violation_error_message="事项不能合并到自身",
            ),
            models.CheckConstraint(
                condition=(Q(state__in=["closed", "rejected", "merged"]) & Q(closed_at__isnull=False, deadline__isnull=True))
                | (~Q(state__in=["closed", "rejected", "merged"]) & Q(closed_at__isnull=True, deadline__isnull=False)),
                name="case_deadline_while_open",
                violation_error_code="case_deadline_while_open",
                violation_error_message="未办结的事项有本环节时限，办结的事项有办结时间",
            ),
            models.CheckConstraint(
                condition=~Q(state__in=["dispatched", "in_progress", "feedback", "verified", "closed"])
                | ~Q(assignee_name=""),
                name="case_assigned_has_body",
                violation_error_code="case_assigned_has_body",
                violation_error_message="已派遣的事项必须有承办单位",
            ),
            models.CheckConstraint(
                condition=Q(escalation_level=0) | Q(escalated_to__isnull=False),
                name="case_escalation_has_body",
                violation_error_code="case_escalation_has_body",
                violation_error_message="督办的事项必须有督办单位",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.category.name}（{self.get_state_display()}）"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES


class CaseTransition(models.Model):
    """One step of a case's timeline: who did what, when, from which state to which, and why."""

    class Action(models.TextChoices):
        REPORT = "report", "采集"
        ACCEPT = "accept", "立案"
        DECLINE = "decline", "不予立案"
        DISPATCH = "dispatch", "派遣"
        START = "start", "签收处理"
        FEEDBACK = "feedback", "反馈"
        VERIFY = "verify", "核查"
        CLOSE = "close", "结案"
        SEND_BACK = "send_back", "退回"
        MERGE = "merge", "重复"
        ESCALATE = "escalate", "督办"

    case = models.ForeignKey(Case, verbose_name="事项", on_delete=models.CASCADE, related_name="transitions")
    action = models.CharField("动作", max_length=16, choices=Action.choices)
    from_state = models.CharField("原状态", max_length=16, choices=Case.State.choices, blank=True)
    to_state = models.CharField("新状态", max_length=16, choices=Case.State.choices)
    at = models.DateTimeField("时间")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="操作人账号",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_name = models.CharField("操作人", max_length=150)
    reason = models.TextField("说明", blank=True)
    # Where it was done: required for 核查 (an on-site re-check), kept whenever the device sent one.
    captured_lon = models.FloatField("采集经度", null=True, blank=True)
    captured_lat = models.FloatField("采集纬度", null=True, blank=True)
    captured_crs = models.CharField("采集坐标系", max_length=16, blank=True)
    accuracy_m = models.FloatField("定位精度（米）", null=True, blank=True)
    position = models.PointField("定位（WGS-84）", srid=STORAGE_SRID, null=True, blank=True)
    distance_to_case_m = models.FloatField("距事项位置（米）", null=True, blank=True)
    # Whom the case went to (派遣) or was escalated to (督办), as it was then.
    assignee_org = models.ForeignKey(
        "orgs.PartyOrganisation",
        verbose_name="承办/督办党组织",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    assignee_name = models.CharField("承办/督办单位", max_length=128, blank=True)
    escalation_level = models.PositiveSmallIntegerField("督办层级", null=True, blank=True)
    merged_into = models.ForeignKey(
        Case, verbose_name="合并至", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    deadline = models.DateTimeField("新环节时限", null=True, blank=True)
    # The step this transition ended was finished after its deadline (按期办结率, 超期环节).
    overdue = models.BooleanField("超期", default=False)
    version = models.PositiveIntegerField("事项版本")

    class Meta:
        verbose_name = "事项流转记录"
        verbose_name_plural = "事项流转记录"
        ordering = ["case", "at", "id"]
        indexes = [models.Index(fields=["case", "at"], name="casetransition_case_at")]
        constraints = [
            # Two writers that both read version n cannot both write transition n + 1 (the
            # service's row lock already serialises them; this is the database's word on it).
            # Escalations keep the version: a 督办 is no reason to refuse the handler's edit.
            models.UniqueConstraint(
                fields=["case", "version"],
                condition=~Q(action="escalate"),
                name="casetransition_one_per_version",
            ),
            models.CheckConstraint(
                condition=(Q(captured_lon__isnull=True) & Q(captured_lat__isnull=True) & Q(position__isnull=True))
                | (Q(captured_lon__isnull=False) & Q(captured_lat__isnull=False) & Q(position__isnull=False)),
                name="casetransition_position_whole",
            ),
            models.CheckConstraint(
                condition=~Q(action="verify") | Q(position__isnull=False),
                name="casetransition_verify_has_position",
                violation_error_code="case_position_required",
                violation_error_message="核查必须记录现场定位",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.case_id} {self.get_action_display()} {self.at:%Y-%m-%d %H:%M}"


# --- the loop, as data: services apply it, selectors show it, tests walk it ------------------
_S = Case.State
_A = CaseTransition.Action

# action -> {from state: to state}. 退回 goes back exactly one step; 重复 applies before a case is
# dispatched (afterwards a body is working on it, and 退回 comes first).
FLOW: dict[str, dict[str, str]] = {
    _A.ACCEPT: {_S.REPORTED: _S.REGISTERED},
    _A.DECLINE: {_S.REPORTED: _S.REJECTED},
    _A.DISPATCH: {_S.REGISTERED: _S.DISPATCHED},
    _A.START: {_S.DISPATCHED: _S.IN_PROGRESS},
    _A.FEEDBACK: {_S.IN_PROGRESS: _S.FEEDBACK},
    _A.VERIFY: {_S.FEEDBACK: _S.VERIFIED},
    _A.CLOSE: {_S.VERIFIED: _S.CLOSED},
    _A.SEND_BACK: {
        _S.REGISTERED: _S.REPORTED,
        _S.DISPATCHED: _S.REGISTERED,
        _S.IN_PROGRESS: _S.DISPATCHED,
        _S.FEEDBACK: _S.IN_PROGRESS,  # 核查不通过: back to the body that handled it
        _S.VERIFIED: _S.FEEDBACK,
    },
    _A.MERGE: {_S.REPORTED: _S.MERGED, _S.REGISTERED: _S.MERGED},
}
# What a person must say: why not, why back, what was done, why a duplicate.
REASON_REQUIRED = frozenset({_A.DECLINE, _A.SEND_BACK, _A.FEEDBACK})
# 核查 is a re-check on site: the position is part of it.
POSITION_REQUIRED = frozenset({_A.VERIFY})
# The category's limit that runs while a case is in each open state. 签收处理 keeps the deadline
# set at 派遣: 处置时限 covers both waiting for the body and its work.
STEP_LIMIT_FIELD: dict[str, str] = {
    _S.REPORTED: "register_hours",
    _S.REGISTERED: "dispatch_hours",
    _S.DISPATCHED: "handle_hours",
    _S.IN_PROGRESS: "handle_hours",
    _S.FEEDBACK: "verify_hours",
    _S.VERIFIED: "close_hours",
}
