"""Routes of the street office's downloads, included by ops/urls.py at dashboard/export/ (before the
page's own routes, so that these are matched first)."""

from django.urls import path

from mapping import export_views

urlpatterns = [
    path("gaps.xlsx", export_views.GapsXlsxExportView.as_view(), name="export-gaps-xlsx"),
    path("gaps.geojson", export_views.GapsGeoJsonExportView.as_view(), name="export-gaps-geojson"),
    path("indicators.xlsx", export_views.IndicatorsXlsxExportView.as_view(), name="export-indicators-xlsx"),
    path("offline-map.html", export_views.OfflineMapExportView.as_view(), name="export-offline-map"),
]
