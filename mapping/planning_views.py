"""The planners' page (/planning/<community>/): redraw a community's grid as a draft on the map.

Thin: the page draws everything from the planners' API (/api/plans/, mapping.plans_apis) and the
vector tiles, scoped by the same reach. The view only decides who may open the page (the roles
with `edit_space`, for the communities they plan whole: mapping.plans_access) and hands the page
its settings; every write goes through the API's services.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.gis.db.models.functions import AsGeoJSON, Envelope
from django.db.models import F
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.generic import TemplateView

from grid.access import Reach, reach_of_request
from mapping import plans_access
from mapping.plans_checks import planning_settings
from mapping.views import tile_url


def planning_communities(*, reach: Reach) -> list[dict[str, Any]]:
    """The communities the user plans (whole, with edit_space), by code, with their extents."""
    rows = (
        plans_access.communities_plannable(reach)
        .annotate(box=Envelope("geom"), street_name=F("street__name"))
        .order_by("code")
        .values("code", "name", "street_name", "box")
    )
    return [
        {
            "code": r["code"],
            "name": r["name"],
            "street": r["street_name"],
            "bbox": [round(v, 6) for v in r["box"].extent],
        }
        for r in rows
    ]


def planning_outline(*, reach: Reach, code: str) -> dict[str, Any] | None:
    """One plannable community's outline as GeoJSON (None when missing or not plannable)."""
    found = (
        plans_access.communities_plannable(reach)
        .filter(code=code)
        .annotate(outline=AsGeoJSON("geom", precision=7))
        .values_list("outline", flat=True)
        .first()
    )
    return None if found is None else json.loads(found)


def _suggest_url() -> str | None:
    # The suggested rebalance (POST /api/plans/suggest/) is offered once its route exists.
    try:
        return reverse("mapping:plan-suggest")
    except NoReverseMatch:
        return None


class PlanningView(LoginRequiredMixin, TemplateView):
    """网格规划: the drafts of one community, edited on the map, checked, previewed and applied."""

    template_name = "mapping/planning.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        reach = reach_of_request(request)
        communities = planning_communities(reach=reach)
        if not communities:
            # Leaders, community admins and field roles read the map but redraw nothing.
            return render(request, "mapping/planning_refused.html", status=403)
        code = kwargs.get("community")
        if code is None:
            # /planning/ opens the first community the user plans; the page switches between them.
            target = reverse("planning-community", kwargs={"community": communities[0]["code"]})
            query = request.META.get("QUERY_STRING", "")
            return HttpResponseRedirect(f"{target}?{query}" if query else target)
        community = next((c for c in communities if c["code"] == code), None)
        outline = planning_outline(reach=reach, code=code) if community else None
        if community is None or outline is None:
            raise Http404("没有这个社区，或您不能规划它")
        conf = planning_settings()
        config = {
            "communities": communities,
            "community": {**community, "outline": outline},
            "tiles": tile_url(),
            "basemap": settings.BASEMAP_TILES_URL,
            "basemap_attribution": settings.BASEMAP_ATTRIBUTION,
            "today": timezone.localdate().isoformat(),
            "households_min": conf["households_min"],
            "households_max": conf["households_max"],
            "plans_url": reverse("mapping:plan-list"),
            "suggest_url": _suggest_url(),
            "page_url": reverse("planning-community", kwargs={"community": "CODE"}).replace("CODE", "{code}"),
        }
        context = self.get_context_data(config=config, community=community, communities=communities)
        return self.render_to_response(context)

    def render_to_response(self, context: dict[str, Any], **response_kwargs: Any) -> HttpResponse:
        response = super().render_to_response(context, **response_kwargs)
        if settings.BASEMAP_TILES_URL:
            # As on the dashboard (mapping.views.DashboardView): MapLibre fetches raster tiles with
            # fetch(), governed by connect-src; widened for this page, to the intranet tile server.
            parts = urlsplit(settings.BASEMAP_TILES_URL)
            response._csp_update = {"connect-src": [f"{parts.scheme}://{parts.netloc.replace('{s}', '*')}"]}  # type: ignore[attr-defined]
        return response
