from django.urls import path

from orgs.apis import (
    attendance,
    case_sync,
    cases,
    enterprises,
    events,
    inbox,
    members,
    org_records,
    organisations,
    photos,
    rules,
    staff,
    visit_edit,
)

app_name = "orgs"
urlpatterns = [
    path("organisations/", organisations.OrgListApi.as_view(), name="org-list"),
    path("organisations/<int:pk>/", organisations.OrgDetailApi.as_view(), name="org-detail"),
    path("organisations/<int:pk>/subtree/", organisations.OrgSubtreeApi.as_view(), name="org-subtree"),
    path("organisations/<int:pk>/ancestors/", organisations.OrgAncestorsApi.as_view(), name="org-ancestors"),
    path("organisations/<int:pk>/seats/", org_records.OrgSeatListApi.as_view(), name="org-seats"),
    path(
        "organisations/<int:pk>/rectifications/",
        org_records.OrgRectificationListApi.as_view(),
        name="org-rectifications",
    ),
    path(
        "organisations/<int:pk>/star-ratings/",
        org_records.OrgStarRatingListApi.as_view(),
        name="org-star-ratings",
    ),
    path("committee-seats/<int:pk>/", org_records.SeatDetailApi.as_view(), name="seat-detail"),
    path("rectifications/<int:pk>/", org_records.RectificationDetailApi.as_view(), name="rectification-detail"),
    path("members/", members.MemberListApi.as_view(), name="member-list"),
    path("members/export/", members.MemberExportApi.as_view(), name="member-export"),
    path("members/<int:pk>/", members.MemberDetailApi.as_view(), name="member-detail"),
    path("grid-workers/", staff.WorkerListApi.as_view(), name="worker-list"),
    path("grid-workers/<int:pk>/", staff.WorkerDetailApi.as_view(), name="worker-detail"),
    path("stationed-cadres/", staff.CadreListApi.as_view(), name="cadre-list"),
    path("stationed-cadres/<int:pk>/", staff.CadreDetailApi.as_view(), name="cadre-detail"),
    path(
        "stationed-cadres/<int:pk>/attendance/", attendance.CadreAttendanceApi.as_view(), name="cadre-attendance"
    ),
    path("enterprises/", enterprises.EnterpriseListApi.as_view(), name="enterprise-list"),
    path("enterprises/<int:pk>/", enterprises.EnterpriseDetailApi.as_view(), name="enterprise-detail"),
    path("rules/violations/", rules.ViolationListApi.as_view(), name="violation-list"),
    path("visits/", events.VisitListApi.as_view(), name="visit-list"),
    path("visits/<str:pk>/", visit_edit.VisitDetailApi.as_view(), name="visit-detail"),
    path("station-contacts/", events.ContactListApi.as_view(), name="contact-list"),
    path("sync/visits/", events.VisitSyncApi.as_view(), name="visit-sync"),
    path("sync/station-contacts/", events.ContactSyncApi.as_view(), name="contact-sync"),
    path("sync/cases/", case_sync.CaseSyncApi.as_view(), name="case-sync"),
    path("photos/", photos.PhotoUploadApi.as_view(), name="photo-upload"),
    path("photos/<str:pk>/", photos.PhotoFileApi.as_view(), name="photo-file"),
    # Residents' cases (民情台账)
    path("cases/", cases.CaseListApi.as_view(), name="case-list"),
    path("cases/nearby/", cases.CaseNearbyApi.as_view(), name="case-nearby"),
    path("cases/statistics/", cases.CaseStatisticsApi.as_view(), name="case-statistics"),
    path("cases/categories/", cases.CaseCategoryListApi.as_view(), name="case-categories"),
    path("cases/<int:pk>/", cases.CaseDetailApi.as_view(), name="case-detail"),
    path("cases/<int:pk>/transitions/", cases.CaseTransitionsApi.as_view(), name="case-transitions"),
    # The signed-in user's inbox (站内消息)
    path("inbox/", inbox.InboxListApi.as_view(), name="inbox-list"),
    path("inbox/read/", inbox.InboxMarkReadApi.as_view(), name="inbox-read"),
]
