"""Pages of mapping: where `/` and the sign-in send each user, and the street office's map page.

Thin: mapping.dashboard decides and reads; the page itself draws from the API and the vector
tiles (mapping/static/mapping/dashboard.js), all scoped by the same reach.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.generic import TemplateView

from grid.access import reach_of_request
from mapping import dashboard, indicators
from mapping.models import Gap

# The indicators a user may shade grid cells by (keys of the indicator figures), first the default.
SHADING = [
    ("household_visit_coverage", "入户走访覆盖率"),
    ("grid_branch_coverage", "网格党支部覆盖率"),
    ("building_group_coverage", "楼栋党小组覆盖率"),
    ("member_management_rate", "党员纳入组织管理率"),
    ("enterprise_work_coverage", "两新组织工作覆盖率"),
    ("open_gaps", "未消除缺口数"),
]


def home(request: HttpRequest) -> HttpResponse:
    """`/`: each user to their own page (mapping.dashboard.home_path); sign in first."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
    target = dashboard.home_path(reach=reach_of_request(request))
    if target is None:
        return render(request, "mapping/no_role.html", status=403)
    return HttpResponseRedirect(target)


def sign_in(request: HttpRequest) -> HttpResponse:
    """The admin's sign-in form, whose default destination is `/` (each user's own page) instead
    of the admin index; an explicit ?next= (the tablet, a bookmarked map view) still wins."""
    extra: dict[str, Any] = {}
    if REDIRECT_FIELD_NAME not in request.GET and REDIRECT_FIELD_NAME not in request.POST:
        extra[REDIRECT_FIELD_NAME] = reverse("home")
    return admin.site.login(request, extra_context=extra)


def tile_url() -> str:
    # The URL conf's own route, with MapLibre's placeholders put in after reversing (reverse
    # would escape the braces).
    url = reverse("tile", kwargs={"layer": "LAYER", "z": "ZZ", "x": "XX", "y": "YY"})
    return url.replace("LAYER", "{layer}").replace("ZZ", "{z}").replace("XX", "{x}").replace("YY", "{y}")


class DashboardView(LoginRequiredMixin, TemplateView):
    """街道看板: the map of the user's reach, its indicators, gaps and rule violations."""

    template_name = "mapping/dashboard.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        reach = reach_of_request(self.request)
        if not reach.can_read():
            raise PermissionDenied("您的账号没有可访问的网格范围")
        roots = dashboard.dashboard_roots(reach=reach)
        rules = settings.WANGGE_RULES
        config = {
            "roots": [u.as_json() for u in roots],
            "extent": dashboard.extent_of(roots),
            "tiles": tile_url(),
            "basemap": settings.BASEMAP_TILES_URL,
            "basemap_attribution": settings.BASEMAP_ATTRIBUTION,
            "gap_kinds": [[k.value, k.label] for k in Gap.Kind],
            "shading": SHADING,
            "indicator_names": {k: name for k, (name, _formula) in indicators.FORMULAS.items()},
            "centre_reach_m": rules["service_centre_reach_m"],
            "visit_interval_days": rules["visit_interval_days"],
            "today": timezone.localdate().isoformat(),
            "exports": {
                "gaps_xlsx": "/dashboard/export/gaps.xlsx",
                "gaps_geojson": "/dashboard/export/gaps.geojson",
                "indicators_xlsx": "/dashboard/export/indicators.xlsx",
                "offline_map": "/dashboard/export/offline-map.html",
            },
        }
        return {
            **super().get_context_data(**kwargs),
            "config": config,
            "shading": SHADING,
            "gap_kinds": config["gap_kinds"],
            "can_admin": self.request.user.is_staff,
        }

    def render_to_response(self, context: dict[str, Any], **response_kwargs: Any) -> HttpResponse:
        response = super().render_to_response(context, **response_kwargs)
        if settings.BASEMAP_TILES_URL:
            # MapLibre fetches raster tiles with fetch(), which CSP governs by connect-src (the
            # admin's Leaflet maps use <img>, which img-src already allows). Widened for this
            # page only, and only to the configured intranet tile server.
            parts = urlsplit(settings.BASEMAP_TILES_URL)
            response._csp_update = {"connect-src": [f"{parts.scheme}://{parts.netloc.replace('{s}', '*')}"]}  # type: ignore[attr-defined]
        return response
