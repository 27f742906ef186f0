"""{% inbox_badge %}: the signed-in user's unread messages in a page's header (dashboard, ledger,
tablet). Rendered with the page from the partial index of unread rows; orgs/inbox_badge.js then
keeps it current by asking /api/inbox/ (same origin) every minute and on focus."""

from __future__ import annotations

from typing import Any

from django import template
from django.templatetags.static import static
from django.utils.html import format_html
from django.utils.safestring import SafeString

from orgs.inbox_selectors import notification_unread_count

register = template.Library()


@register.simple_tag(takes_context=True)
def inbox_badge(context: dict[str, Any]) -> SafeString | str:
    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return ""
    unread = notification_unread_count(user=request.user)
    return format_html(
        '<a class="inbox-badge" id="inbox-badge" href="/ledger/#inbox" title="站内消息"'
        ' data-unread-url="/api/inbox/?unread=true&amp;page_size=1">消息 <b id="inbox-unread"{}>{}</b></a>'
        '<script src="{}" defer></script>',
        "" if unread else " hidden",
        unread,
        static("orgs/inbox_badge.js"),
    )
