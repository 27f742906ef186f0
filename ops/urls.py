from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from mapping.views import home, sign_in
from ops.auth_api import TokenObtainApi, TokenRevokeApi
from orgs.views import TabletServiceWorkerView, TabletView

admin.site.site_header = "网格通 · 街道网格化管理"
admin.site.site_title = "网格通"
admin.site.index_title = "管理首页"



class FaviconRedirect(RedirectView):
    # Resolved per request, not at import: in production the static manifest exists only after
    # collectstatic, and `manage.py check --deploy` imports this module before that.
    permanent = True

    def get_redirect_url(self, *args, **kwargs):
        return static("favicon.svg")


urlpatterns = [
    # Every user to their own page (tablet, dashboard, admin); signing in lands there too.
    path("", home, name="home"),
    # Browsers ask for /favicon.ico on every page; answer from our own static files.
    path("favicon.ico", FaviconRedirect.as_view()),
    path("admin/login/", sign_in, name="sign-in"),
    path("admin/", admin.site.urls),
    path("dashboard/export/", include("mapping.export_urls")),
    path("planning/", include("mapping.planning_urls")),
    path("dashboard/", include("mapping.page_urls")),
    path("ledger/", include("orgs.ledger_urls")),
    path("tablet/", TabletView.as_view(), name="tablet"),
    path("tablet/sw.js", TabletServiceWorkerView.as_view(), name="tablet-sw"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI from drf-spectacular-sidecar's static files; the split view serves its init script
    # from this URL (?script) instead of inline, so the page runs under script-src 'self' as is.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/auth/token/", TokenObtainApi.as_view(), name="auth-token"),
    path("api/auth/token/revoke/", TokenRevokeApi.as_view(), name="auth-token-revoke"),
    path("api/", include("grid.urls")),
    path("api/", include("orgs.urls")),
    path("tiles/", include("mapping.tile_views")),
    path("api/", include("mapping.urls")),
    path("api/", include("mapping.dashboard_apis")),
]


def handler404(request, exception=None):
    """Unknown /api/ paths answer in the API's error shape; pages keep Django's 404 page."""
    if request.path.startswith("/api/"):
        from django.http import JsonResponse

        return JsonResponse({"code": "not_found", "message": "接口不存在"}, status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)
