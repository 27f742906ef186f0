"""Pages of orgs for people (the admin aside): the tablet page where workers log visits, and its
service worker.

Thin: the page embeds what the worker may pick offline (the buildings of their logging reach) and
hands everything else to the sync API (orgs/apis/events.py), which checks each record again.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.views.generic import TemplateView

from grid.access import buildings_in_reach, reach_of_request
from orgs import access
from orgs.attendance import cadre_attendance_month
from orgs.cases_selectors import case_category_list
from orgs.models import StationContact, StationedCadre, Visit
from orgs.tablet_selectors import buildings_due_for_visit, open_cases_for_tablet

# The service worker's cache names start with this; the page deletes them on sign-out.
TABLET_CACHE_PREFIX = "wangge-tablet-"

# Buildings embedded in the page for offline picking; a grid worker's grids hold a few hundred.
# Beyond this (a street admin's whole street) the worker types the code instead.
TABLET_MAX_BUILDINGS = 3000


class TabletView(LoginRequiredMixin, TemplateView):
    """走访记录（平板）: log visits (and, for a stationed cadre, check-ins and contacts) with or
    without signal, sync them when online."""

    template_name = "orgs/tablet.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        reach = reach_of_request(self.request)
        if not reach.can("log_events"):
            raise PermissionDenied("您的角色不能记录走访")
        logging_reach = access.capability_reach(reach, "log_events")
        buildings = list(
            buildings_in_reach(logging_reach)
            .order_by("code")
            .values_list("code", "name", "address")[: TABLET_MAX_BUILDINGS + 1]
        )
        too_many = len(buildings) > TABLET_MAX_BUILDINGS
        user = self.request.user
        if not user.is_authenticated:  # LoginRequiredMixin has sent anonymous visitors to log in
            raise PermissionDenied("请先登录")
        today = timezone.localdate()
        posting = (
            StationedCadre.objects.filter(user=user, period_start__lte=today)
            .filter(Q(period_end__isnull=True) | Q(period_end__gte=today))
            .select_related("community")
            .first()
        )
        # The cadre's own month (the days so far that had any check-in, newest first).
        attendance = cadre_attendance_month(cadre=posting, month=today) if posting else None
        return {
            **super().get_context_data(**kwargs),
            "attendance": attendance,
            "attendance_days": [
                d for d in reversed(attendance["days"]) if d["date"] <= today.isoformat() and d["check_ins"]
            ] if attendance else [],
            "heartbeat_minutes": settings.WANGGE_RULES["attendance_heartbeat_minutes"],
            "buildings": [] if too_many else [
                {"code": code, "label": f"{name} {address}".strip()} for code, name, address in buildings
            ],
            "too_many_buildings": too_many,
            "kinds": Visit.Kind.choices,
            # A case raised from a visit picks its category (the street office's active list).
            "categories": list(case_category_list(active_only=True).values("id", "name")),
            # Enterprise visits pick from the enterprises of the logging reach (the sync checks again).
            "enterprises": list(
                access.enterprises_in_reach(logging_reach)
                .order_by("name", "id")
                .values("id", "name")[:TABLET_MAX_BUILDINGS]
            ),
            "queue_key": f"wangge.events.{self.request.user.pk}",
            "cache_prefix": TABLET_CACHE_PREFIX,
            # A stationed cadre also checks in and logs contacts with residents here.
            "posting": posting,
            "contact_kind": StationContact.Kind.CONTACT,
            # Today's work, embedded so the kept page shows it offline (tablet.js lists it, nearest
            # first once the device gives a position, and sketches it).
            "today": {
                "due": buildings_due_for_visit(reach=logging_reach, limit=TABLET_MAX_BUILDINGS),
                "cases": open_cases_for_tablet(reach=reach),
                "interval_days": settings.WANGGE_RULES["visit_interval_days"],
                "as_of": timezone.localtime().strftime("%Y-%m-%d %H:%M"),
            },
        }


class TabletServiceWorkerView(TemplateView):
    """The tablet page's service worker (orgs/templates/orgs/tablet-sw.js), served from the page's
    own path so that its scope covers /tablet/. Public: it holds no data, only where the page and
    its static files are, and browsers fetch it again to look for updates without a session."""

    template_name = "orgs/tablet-sw.js"
    content_type = "text/javascript; charset=utf-8"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        assets = [static("orgs/tablet.js"), static("orgs/tablet.css"), static("favicon.svg")]
        return {
            "page_url": reverse("tablet"),
            "cache_prefix": TABLET_CACHE_PREFIX,
            "assets": json.dumps(assets),
            # Hashed static names change with their content: a deployment gets a fresh cache.
            "version": hashlib.sha256("|".join(assets).encode()).hexdigest()[:12],
        }

    def render_to_response(self, context: dict[str, Any], **response_kwargs: Any) -> Any:
        response = super().render_to_response(context, **response_kwargs)
        # Browsers cap a worker's HTTP caching at a day anyway; always asking keeps updates prompt.
        response["Cache-Control"] = "no-cache"
        return response
