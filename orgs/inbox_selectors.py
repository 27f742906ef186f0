"""Reads of the inbox: always the signed-in user's own messages, never anyone else's."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from orgs.inbox_models import Notification


def notification_list(*, user: Any, unread: bool | None = None) -> QuerySet[Notification]:
    qs = Notification.objects.filter(user=user)
    if unread is True:
        qs = qs.filter(read_at__isnull=True)
    elif unread is False:
        qs = qs.filter(read_at__isnull=False)
    return qs.order_by("-created_at", "-id")


def notification_unread_count(*, user: Any) -> int:
    """Served by the partial index of unread rows: cheap enough for every page's header."""
    if user is None or not getattr(user, "is_authenticated", False):
        return 0
    return Notification.objects.filter(user=user, read_at__isnull=True).count()
