"""Routes of the planners' API (/api/plans/…), appended to mapping/urls.py."""

from django.urls import path

from mapping import plans_apis as v

urlpatterns = [
    path("plans/", v.PlanListApi.as_view(), name="plan-list"),
    path("plans/<int:pk>/", v.PlanDetailApi.as_view(), name="plan-detail"),
    path("plans/<int:pk>/edits/", v.PlanEditsApi.as_view(), name="plan-edits"),
    path("plans/<int:pk>/undo/", v.PlanUndoApi.as_view(), name="plan-undo"),
    path("plans/<int:pk>/redo/", v.PlanRedoApi.as_view(), name="plan-redo"),
    path("plans/<int:pk>/checks/", v.PlanChecksApi.as_view(), name="plan-checks"),
    path("plans/<int:pk>/preview/", v.PlanPreviewApi.as_view(), name="plan-preview"),
    path("plans/<int:pk>/apply/", v.PlanApplyApi.as_view(), name="plan-apply"),
    path("plans/<int:pk>/copy/", v.PlanCopyApi.as_view(), name="plan-copy"),
    path("plans/<int:pk>/compare/", v.PlanCompareApi.as_view(), name="plan-compare"),
    path("plans/<int:pk>/revert/", v.PlanRevertApi.as_view(), name="plan-revert"),
]
