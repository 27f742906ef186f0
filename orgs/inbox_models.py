"""The in-app inbox (站内消息): reminders the beat sends to each user.

A reminder is about one subject (a case step, a stationed cadre, an organisation's term, a grid
worker's buildings) in one period (the step's deadline, the week, the term window, the day). The
UNIQUE (user, kind, subject, period) is what makes every reminder sweep idempotent: the services
insert with ON CONFLICT DO NOTHING, so a re-run, an overlapping run or a retried task sends nothing
twice. Rows are only ever marked read, never edited otherwise.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

__all__ = ["Notification"]


class Notification(models.Model):
    """One message in one user's inbox."""

    class Kind(models.TextChoices):
        CASE_DUE_SOON = "case_due_soon", "事项即将到期"
        CASE_OVERDUE = "case_overdue", "事项已超期"
        CADRE_BEHIND_PACE = "cadre_behind_pace", "驻点进度落后"
        ORG_TERM_EXPIRING = "org_term_expiring", "任期即将届满"
        ORG_TERM_OVERDUE = "org_term_overdue", "任期逾期未换届"
        BUILDINGS_VISIT_DUE = "buildings_visit_due", "楼栋待走访"

    class Subject(models.TextChoices):
        CASE = "case", "民情事项"
        CADRE = "cadre", "驻点干部"
        ORG = "org", "党组织"
        USER = "user", "本人"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="接收人",
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    kind = models.CharField("类型", max_length=32, choices=Kind.choices)
    subject_type = models.CharField("对象类型", max_length=16, choices=Subject.choices)
    subject_id = models.BigIntegerField("对象编号")
    # Which occurrence this reminder is about (a step's deadline, a week, a day): a new period is
    # a new reminder, the same one is never sent again.
    period = models.CharField("周期", max_length=40)
    title = models.CharField("标题", max_length=200)
    body = models.TextField("内容")
    link = models.CharField("链接", max_length=300, blank=True)
    created_at = models.DateTimeField("发送时间")
    read_at = models.DateTimeField("已读时间", null=True, blank=True)

    class Meta:
        verbose_name = "站内消息"
        verbose_name_plural = "站内消息"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind", "subject_type", "subject_id", "period"],
                name="notification_once_per_period",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-created_at", "-id"], name="notification_user_time"),
            # Every page's header asks for the unread count: only unread rows are in this index.
            models.Index(fields=["user"], condition=Q(read_at__isnull=True), name="notification_user_unread"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.title}"
