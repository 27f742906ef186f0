"""Admin of enterprises and social organisations (两新组织), placed in a community by their point."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from leaflet.admin import LeafletGeoAdmin

from edge.errors import DomainError
from orgs import services
from orgs.admin.writes import ServiceWritesMixin, as_validation_error
from orgs.models import Enterprise


class EnterpriseForm(forms.ModelForm):
    class Meta:
        model = Enterprise
        fields = [
            "name",
            "kind",
            "credit_code",
            "building",
            "geom",
            "employee_count",
            "covering_joint_branch",
            "instructor",
        ]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if self.errors:
            return data
        try:
            services.enterprise_check(
                point=data.get("geom"),
                building=data.get("building"),
                covering_joint_branch=data.get("covering_joint_branch"),
                instructor=data.get("instructor"),
            )
        except DomainError as exc:
            self.add_error(None, as_validation_error(exc))
        return data


@admin.register(Enterprise)
class EnterpriseAdmin(ServiceWritesMixin, LeafletGeoAdmin):
    form = EnterpriseForm
    list_display = [
        "name",
        "kind",
        "credit_code",
        "community",
        "employee_count",
        "covering_joint_branch",
        "instructor",
    ]
    list_filter = ["kind", "community__street", "community"]
    search_fields = ["name", "credit_code"]
    raw_id_fields = ["building", "covering_joint_branch", "instructor"]
    readonly_fields = ["community"]
    list_select_related = ["community", "covering_joint_branch", "instructor"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Not offered: its own party organisation hangs on it (PROTECT) and members' work units
        # and visits point at it; an enterprise that closed is a change of its record, not a
        # deletion (no service removes one yet).
        return False

    def save_model(self, request: Any, obj: Enterprise, form: Any, change: bool) -> None:
        self.save_through(
            request, obj, form, change, fields=services.ENTERPRISE_FIELDS, point=form.cleaned_data.get("geom"),
            create=services.enterprise_create, update=services.enterprise_update, object_arg="enterprise",
        )
