from django.urls import path

from mapping import apis, indicator_apis

app_name = "mapping"
urlpatterns = [
    path("gaps/", apis.GapListApi.as_view(), name="gap-list"),
    path("gaps/summary/", apis.GapSummaryApi.as_view(), name="gap-summary"),
    path("indicators/", indicator_apis.IndicatorsApi.as_view(), name="indicators"),
]

from mapping.plans_urls import urlpatterns as _plans  # noqa: E402 - the planners' routes (issue 11)

urlpatterns += _plans

from mapping.rebalance_apis import urlpatterns as _suggest  # noqa: E402 - the suggested rebalance (issue 11)

urlpatterns += _suggest
