"""{% planning_link %}: the link to the planners' page, for users who may plan (the dashboard's header)."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from grid.access import reach_of_request
from mapping import plans_access

register = template.Library()


@register.simple_tag(takes_context=True)
def planning_link(context: dict[str, Any]) -> SafeString | str:
    """A link to /planning/ when the signed-in user plans some community (planners, street
    administrators); nothing otherwise, so nobody is shown a page that refuses them."""
    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return ""
    if not plans_access.communities_plannable(reach_of_request(request)).exists():
        return ""
    return format_html('<a class="planning-link" href="{}">网格规划</a>', reverse("planning"))
