"""Pages of mapping, included by ops/urls.py at dashboard/. The exports the page links to
(dashboard/export/…) are served by mapping.export_views."""

from django.urls import path

from mapping.views import DashboardView

urlpatterns = [
    path("", DashboardView.as_view(), name="dashboard"),
]
