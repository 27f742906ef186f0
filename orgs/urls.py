from django.urls import path

from orgs import apis, event_apis

app_name = "orgs"
urlpatterns = [
    path("organisations/", apis.OrgListApi.as_view(), name="org-list"),
    path("organisations/<int:pk>/", apis.OrgDetailApi.as_view(), name="org-detail"),
    path("organisations/<int:pk>/subtree/", apis.OrgSubtreeApi.as_view(), name="org-subtree"),
    path("organisations/<int:pk>/ancestors/", apis.OrgAncestorsApi.as_view(), name="org-ancestors"),
    path("organisations/<int:pk>/seats/", apis.OrgSeatListApi.as_view(), name="org-seats"),
    path(
        "organisations/<int:pk>/rectifications/",
        apis.OrgRectificationListApi.as_view(),
        name="org-rectifications",
    ),
    path("organisations/<int:pk>/star-ratings/", apis.OrgStarRatingListApi.as_view(), name="org-star-ratings"),
    path("committee-seats/<int:pk>/", apis.SeatDetailApi.as_view(), name="seat-detail"),
    path("rectifications/<int:pk>/", apis.RectificationDetailApi.as_view(), name="rectification-detail"),
    path("members/", apis.MemberListApi.as_view(), name="member-list"),
    path("members/export/", apis.MemberExportApi.as_view(), name="member-export"),
    path("members/<int:pk>/", apis.MemberDetailApi.as_view(), name="member-detail"),
    path("grid-workers/", apis.WorkerListApi.as_view(), name="worker-list"),
    path("grid-workers/<int:pk>/", apis.WorkerDetailApi.as_view(), name="worker-detail"),
    path("stationed-cadres/", apis.CadreListApi.as_view(), name="cadre-list"),
    path("stationed-cadres/<int:pk>/", apis.CadreDetailApi.as_view(), name="cadre-detail"),
    path("enterprises/", apis.EnterpriseListApi.as_view(), name="enterprise-list"),
    path("enterprises/<int:pk>/", apis.EnterpriseDetailApi.as_view(), name="enterprise-detail"),
    path("rules/violations/", apis.ViolationListApi.as_view(), name="violation-list"),
    path("visits/", event_apis.VisitListApi.as_view(), name="visit-list"),
    path("station-contacts/", event_apis.ContactListApi.as_view(), name="contact-list"),
    path("sync/visits/", event_apis.VisitSyncApi.as_view(), name="visit-sync"),
    path("sync/station-contacts/", event_apis.ContactSyncApi.as_view(), name="contact-sync"),
]
