"""Photos of visits and cases (走访/事项照片), taken on the tablet and uploaded after their record.

The tablet gives each photo its UUID when it is taken; the upload is keyed by it, so a retried
upload is answered "duplicate" and never stored twice (the same rule as the field events). The
file lives in the configured storage (STORAGES["default"]) under a name no one can guess, and is
only ever served through the API, which checks the caller's reach over the photo's visit or case.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

__all__ = ["Photo"]


class Photo(models.Model):
    """One photo of one visit or one case."""

    class Format(models.TextChoices):
        JPEG = "JPEG", "JPEG"
        PNG = "PNG", "PNG"
        WEBP = "WEBP", "WebP"

    id = models.UUIDField("客户端编号", primary_key=True, editable=False)
    visit = models.ForeignKey(
        "orgs.Visit", verbose_name="走访记录", on_delete=models.CASCADE, null=True, blank=True, related_name="photos"
    )
    case = models.ForeignKey(
        "orgs.Case", verbose_name="民情事项", on_delete=models.CASCADE, null=True, blank=True, related_name="photos"
    )
    file = models.FileField("文件", upload_to="photos/%Y/%m/", max_length=200)
    format = models.CharField("格式", max_length=8, choices=Format.choices)
    width = models.PositiveIntegerField("宽（像素）")
    height = models.PositiveIntegerField("高（像素）")
    size_bytes = models.PositiveIntegerField("大小（字节）")
    # SHA-256 of the bytes as uploaded: a resent id with other bytes is a conflict, not a duplicate.
    upload_hash = models.CharField(max_length=64, editable=False)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name="上传人", on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField("上传时间", auto_now_add=True)

    class Meta:
        verbose_name = "照片"
        verbose_name_plural = "照片"
        ordering = ["uploaded_at"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(visit__isnull=False) & Q(case__isnull=True)) | (Q(visit__isnull=True) & Q(case__isnull=False)),
                name="photo_one_subject",
            ),
        ]

    def __str__(self) -> str:
        return f"照片 {self.id}"
