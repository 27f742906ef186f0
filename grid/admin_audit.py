"""Audit rows for every write made through the admin, including models that no service writes
(users, groups, tokens ...).

Django calls `log_addition`, `log_change` and `log_deletions` inside the admin view's atomic block
right after each write (a bulk delete action: before the delete, which `response_action` here
wraps in one transaction with it), so the audit row commits or rolls back with the write.

Where the admin saved through a service, the service has already written a richer row (with its
diff) for the same object in this request; the admin's own row is then skipped, so one write is
one row. Changes record the names of the changed fields, never values: personal data (ID
numbers, phones, passwords) must not reach the log through a form.

Overriding `log_deletions` rather than the per-object `log_deletion` the brief names: Django 5.1
deprecated `log_deletion`, and overriding it makes Django warn on every delete.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.contrib import admin
from django.db import models, transaction
from django.http import HttpRequest
from django.utils import timezone

from grid.audit import actor_for_user, audit_record, client_ip
from grid.models import AuditEvent, Community, GridCell, Street

# At most this many inline objects named per change row: a formset of hundreds is one edit.
MAX_INLINE_NAMES = 50


def street_id_of(obj: Any) -> int | None:
    """The street an object belongs to, so the street's administrators see its audit rows.

    Walks the usual links (street, community, grid cell, organisation); None for things of no
    place (users, groups, tokens), which only superusers and the actor see in the log.
    """
    if isinstance(obj, Street):
        return obj.pk
    street_id = getattr(obj, "street_id", None)
    if street_id is not None:
        return int(street_id)
    if isinstance(obj, Community):
        return None
    community_id = getattr(obj, "community_id", None)
    if community_id is not None:
        return Community.objects.filter(pk=community_id).values_list("street_id", flat=True).first()
    for name in ("grid_cell_id", "cell_id"):
        cell_id = getattr(obj, name, None)
        if cell_id is not None:
            return GridCell.objects.filter(pk=cell_id).values_list("community__street_id", flat=True).first()
    for name in ("org", "organisation"):
        related = getattr(obj, name, None) if hasattr(type(obj), name) else None
        if isinstance(related, models.Model):
            return street_id_of(related)
    return None


def _changed_fields(message: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Field labels and inline changes from Django's change message (JSON, labels only)."""
    try:
        parts = json.loads(message) if message else []
    except (TypeError, ValueError):
        return [], []
    labels: list[str] = []
    inlines: list[dict[str, Any]] = []
    for part in parts if isinstance(parts, list) else []:
        for verb, detail in part.items():
            if not isinstance(detail, dict):
                continue
            if "object" in detail:
                inlines.append(
                    {
                        "action": verb,
                        "model": detail.get("name", ""),
                        "object": str(detail.get("object", ""))[:100],
                        "fields": list(detail.get("fields", [])),
                    }
                )
            elif verb == "changed":
                labels.extend(str(f) for f in detail.get("fields", []))
    return labels, inlines[:MAX_INLINE_NAMES]


class AuditedAdminMixin:
    """Writes an AuditEvent for each admin addition, change and deletion (see the module doc).

    `audit_identity` names the object in the log; override it where `pk` or `str()` is secret
    (a token's key is both).
    """

    # True where delete_model calls a service that writes the delete row itself: the admin then
    # keeps only Django's own log entry, so one deletion is one audit row.
    deletes_audited_by_service = False

    def audit_identity(self, obj: Any) -> tuple[str, str]:
        return str(obj.pk), str(obj)

    def audit_object_type(self, obj: Any) -> str:
        # The concrete model: a proxy (authtoken's TokenProxy) is the same rows as its model.
        return obj._meta.concrete_model._meta.label

    # --- request bookkeeping -----------------------------------------------------------------

    def _mark(self, request: HttpRequest) -> None:
        if not hasattr(request, "_wangge_audit_since"):
            request._wangge_audit_since = timezone.now()  # type: ignore[attr-defined]

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        self._mark(request)
        return super().changeform_view(request, *args, **kwargs)  # type: ignore[misc]

    def delete_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        self._mark(request)
        return super().delete_view(request, *args, **kwargs)  # type: ignore[misc]

    def changelist_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        self._mark(request)
        return super().changelist_view(request, *args, **kwargs)  # type: ignore[misc]

    def response_action(self, request: HttpRequest, queryset: Any) -> Any:
        # Bulk actions (delete_selected) log before they delete, outside the admin's atomic
        # blocks: one transaction keeps the rows and the deletion together.
        with transaction.atomic():
            return super().response_action(request, queryset)  # type: ignore[misc]

    def construct_change_message(
        self, request: HttpRequest, form: Any, formsets: Any, add: bool = False
    ) -> Any:
        # Field names as the code knows them (labels are translated and may change).
        request._wangge_audit_fields = list(getattr(form, "changed_data", []))  # type: ignore[attr-defined]
        return super().construct_change_message(request, form, formsets, add)  # type: ignore[misc]

    def _already_audited(self, request: HttpRequest, object_type: str, object_id: str) -> bool:
        since: datetime | None = getattr(request, "_wangge_audit_since", None)
        if since is None:
            return False
        return AuditEvent.objects.filter(
            object_type=object_type,
            object_id=object_id,
            actor_id=getattr(request.user, "pk", None),
            at__gte=since,
        ).exists()

    def _record(self, request: HttpRequest, obj: Any, action: str, changes: dict[str, Any]) -> None:
        object_type = self.audit_object_type(obj)
        object_id, label = self.audit_identity(obj)
        if action != AuditEvent.Action.DELETE and self._already_audited(request, object_type, object_id):
            return
        verb = AuditEvent.Action(action).label
        audit_record(
            action=action,
            object_type=object_type,
            object_id=object_id,
            summary=f"管理后台{verb}{obj._meta.verbose_name}“{label}”",
            changes={"via": "admin", **changes},
            street_id=street_id_of(obj),
            actor=actor_for_user(request.user, client_ip(request)),
        )

    # --- Django's hooks ---------------------------------------------------------------------

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        entry = super().log_addition(request, obj, message)  # type: ignore[misc]
        fields = getattr(request, "_wangge_audit_fields", [])
        self._record(request, obj, AuditEvent.Action.CREATE, {"fields": sorted(fields)})
        return entry

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        entry = super().log_change(request, obj, message)  # type: ignore[misc]
        fields = getattr(request, "_wangge_audit_fields", None)
        labels, inlines = _changed_fields(message if isinstance(message, str) else json.dumps(message))
        changes: dict[str, Any] = {"fields": sorted(fields) if fields is not None else labels}
        if inlines:
            changes["inlines"] = inlines
        self._record(request, obj, AuditEvent.Action.UPDATE, changes)
        return entry

    def log_deletions(self, request: HttpRequest, queryset: Iterable[Any]) -> Any:
        objects = list(queryset)
        entries = super().log_deletions(request, objects)  # type: ignore[misc]
        if self.deletes_audited_by_service:
            return entries
        for obj in objects:
            self._record(request, obj, AuditEvent.Action.DELETE, {})
        return entries


# --- django.contrib.auth and authtoken, re-registered audited --------------------------------


def register_audited_auth_admins(site: admin.AdminSite = admin.site) -> None:
    """Replace the User, Group and Token admins of `site` by audited subclasses of themselves.

    Idempotent: an admin that is already audited is left alone (module reloads in tests).
    """
    from django.contrib.auth import admin as auth_admin  # noqa: F401 - registers User and Group
    from django.contrib.auth.models import Group, User
    from rest_framework.authtoken import admin as token_admin
    from rest_framework.authtoken.models import TokenProxy

    class AuditedUserAdmin(AuditedAdminMixin, auth_admin.UserAdmin):
        pass

    class AuditedGroupAdmin(AuditedAdminMixin, auth_admin.GroupAdmin):
        pass

    class AuditedTokenAdmin(AuditedAdminMixin, token_admin.TokenAdmin):
        def audit_identity(self, obj: Any) -> tuple[str, str]:
            # The key is the token's primary key and its str(): a credential, never logged.
            return str(obj.user_id), f"{obj.user}的令牌"

    for model, audited in (
        (User, AuditedUserAdmin),
        (Group, AuditedGroupAdmin),
        (TokenProxy, AuditedTokenAdmin),
    ):
        current = site._registry.get(model)
        if isinstance(current, AuditedAdminMixin):
            continue
        if current is not None:
            site.unregister(model)
        site.register(model, audited)
