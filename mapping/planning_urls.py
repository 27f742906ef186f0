"""The planners' page, included by ops/urls.py at planning/ (its API is mapping.plans_urls)."""

from django.urls import path

from mapping.planning_views import PlanningView

urlpatterns = [
    path("", PlanningView.as_view(), name="planning"),
    path("<str:community>/", PlanningView.as_view(), name="planning-community"),
]
