from django.urls import path

from grid import apis

app_name = "grid"
urlpatterns = [
    path("streets/", apis.StreetListApi.as_view(), name="street-list"),
    path("streets/<str:code>/", apis.StreetDetailApi.as_view(), name="street-detail"),
    path("communities/", apis.CommunityListApi.as_view(), name="community-list"),
    path("communities/<str:code>/", apis.CommunityDetailApi.as_view(), name="community-detail"),
    path("grid-cells/", apis.GridCellListApi.as_view(), name="grid-cell-list"),
    # Before <code>/: "at" would otherwise be taken for a grid code.
    path("grid-cells/at/", apis.GridCellAtApi.as_view(), name="grid-cell-at"),
    path("grid-cells/<str:code>/", apis.GridCellDetailApi.as_view(), name="grid-cell-detail"),
    path("grid-cells/<str:code>/history/", apis.GridCellHistoryApi.as_view(), name="grid-cell-history"),
    path("buildings/", apis.BuildingListApi.as_view(), name="building-list"),
    path("buildings/<str:code>/", apis.BuildingDetailApi.as_view(), name="building-detail"),
    path("service-centres/", apis.ServiceCentreListApi.as_view(), name="service-centre-list"),
]
