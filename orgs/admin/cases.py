"""Admin of the residents' cases: the street office's tables (categories, the working calendar),
written through orgs.services like every orgs admin, and the cases themselves, read-only here (the
loop runs through the API and the ledger page, one service per transition)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from grid.admin import ReadOnlyAdminMixin
from orgs import services
from orgs.admin.writes import ServiceWritesMixin
from orgs.cases_models import Case, CaseCategory, CaseTransition, WorkCalendarDay


class _StreetTableAdmin(ServiceWritesMixin, admin.ModelAdmin):
    """A table every street shares (no place of its own): listed whole to whoever may view the
    model, kept by street administrators (the services refuse anyone else as well)."""

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # Not a place-scoped model: ReachAdminMixin's scope has nothing to filter it by.
        return admin.ModelAdmin.get_queryset(self, request)

    def _may_edit(self, request: HttpRequest, obj: Any) -> bool:
        reach = self._reach(request)
        return reach.everything or "street_admin" in reach.roles

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CaseCategory)
class CaseCategoryAdmin(_StreetTableAdmin):
    list_display = [
        "code",
        "name",
        "group",
        "default_body",
        "handle_hours",
        "urgent",
        "duplicate_radius_m",
        "active",
    ]
    list_filter = ["group", "urgent", "active"]
    search_fields = ["code", "name", "default_body"]
    ordering = ["sort_order", "code"]
    fieldsets = [
        (None, {"fields": ["code", "name", "group", "default_body", "active", "sort_order"]}),
        (
            "时限（工作时：8:30–12:00、14:00–18:00，节假日不计；紧急类别按自然小时）",
            {"fields": ["register_hours", "dispatch_hours", "handle_hours", "verify_hours", "close_hours", "urgent"]},
        ),
        ("疑似重复", {"fields": ["duplicate_radius_m"]}),
    ]

    def save_model(self, request: Any, obj: CaseCategory, form: Any, change: bool) -> None:
        fields = {name: form.cleaned_data[name] for name in form.changed_data if name in services.CATEGORY_FIELDS}
        if change:
            saved = self.write(request, services.case_category_update, category=obj, **fields)
        else:
            data = {name: form.cleaned_data[name] for name in services.CATEGORY_FIELDS if name in form.cleaned_data}
            saved = self.write(request, services.case_category_create, **data)
        obj.pk = saved.pk


@admin.register(WorkCalendarDay)
class WorkCalendarDayAdmin(_StreetTableAdmin):
    list_display = ["date", "weekday", "is_workday", "note"]
    list_filter = ["is_workday"]
    date_hierarchy = "date"
    search_fields = ["note"]
    fields = ["date", "is_workday", "note"]

    @admin.display(description="星期")
    def weekday(self, obj: WorkCalendarDay) -> str:
        return "一二三四五六日"[obj.date.weekday()]

    def save_model(self, request: Any, obj: WorkCalendarDay, form: Any, change: bool) -> None:
        saved = self.write(
            request,
            services.work_calendar_day_set,
            day=form.cleaned_data["date"],
            is_workday=form.cleaned_data["is_workday"],
            note=form.cleaned_data.get("note") or "",
        )
        obj.pk = saved.pk

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A wrong entry is removed (the day follows the weekday rule again), through the service.
        return admin.ModelAdmin.has_delete_permission(self, request, obj) and self._may_edit(request, obj)

    def delete_model(self, request: Any, obj: WorkCalendarDay) -> None:
        self.write(request, services.work_calendar_day_delete, day=obj)


class CaseTransitionInline(admin.TabularInline):
    model = CaseTransition
    fk_name = "case"  # merged_into points at a case too
    extra = 0
    can_delete = False
    ordering = ["at", "id"]
    _shown = ("at", "action", "from_state", "to_state", "actor_name", "reason", "assignee_name",
              "escalation_level", "distance_to_case_m", "overdue")
    fields = _shown
    readonly_fields = _shown

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Case)
class CaseAdmin(ReadOnlyAdminMixin, ServiceWritesMixin, admin.ModelAdmin):
    """The ledger, read-only: every change of a case is a transition made through the API."""

    list_display = ["id", "category", "state", "reported", "deadline_display", "escalation_level",
                    "assignee_name", "community_name", "grid_name", "reporter_name"]
    list_filter = ["state", "category", "source", "escalation_level", "community"]
    search_fields = ["description", "address", "reporter_name", "assignee_name"]
    list_select_related = ["category", "community", "grid_cell"]
    date_hierarchy = "reported_at"
    ordering = ["-reported_at", "-id"]
    list_per_page = 50
    show_full_result_count = False
    inlines = [CaseTransitionInline]
    _shown = ("state", "version", "source", "category", "description", "address", "community", "grid_cell",
              "building", "resident_name", "reporter_name", "reported_at", "step_started_at", "deadline",
              "assignee_name", "assignee_route", "escalation_level", "escalated_to", "ever_overdue", "merged_into",
              "closed_at", "captured_crs", "accuracy_m")
    fields = _shown
    readonly_fields = _shown

    @admin.display(description="上报时间", ordering="reported_at")
    def reported(self, obj: Case) -> str:
        return f"{timezone.localtime(obj.reported_at):%Y-%m-%d %H:%M}"

    @admin.display(description="本环节时限", ordering="deadline")
    def deadline_display(self, obj: Case) -> str:
        if obj.deadline is None:
            return "—"
        late = "（已超期）" if obj.deadline < timezone.now() else ""
        return f"{timezone.localtime(obj.deadline):%Y-%m-%d %H:%M}{late}"

    @admin.display(description="社区", ordering="community__name")
    def community_name(self, obj: Case) -> str:
        return obj.community.name

    @admin.display(description="网格", ordering="grid_cell__name")
    def grid_name(self, obj: Case) -> str:
        return obj.grid_cell.name if obj.grid_cell is not None else "—"
