"""Reach in the orgs admin: every list, object page, choice and filter limited to the user's reach.

An object outside it is "not found", exactly like a missing one (Django's own "may have been
deleted" redirect), so ids cannot be probed through the admin either. Writing needs edit_orgs over
the object, judged by the same rule the services apply inside their write (orgs.access).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet
from django.http import HttpRequest

from grid import access as grid_access
from grid.admin import related_only_list_filter
from orgs import access
from orgs.models import CommitteeSeat, PartyOrganisation, Rectification, StarRating

# Models scoped through the organisation they belong to; strict, so that a grid worker does not
# see, through the community organisation above their grid, its rating or rectification.
_SCOPED_BY_ORG = {Rectification: "org", StarRating: "org", CommitteeSeat: "org"}


def admin_scope(reach: grid_access.Reach, qs: QuerySet, *, strict: bool = False) -> QuerySet:
    """`qs` limited to `reach`, for any model this admin lists or offers as a choice."""
    model = qs.model
    if model is PartyOrganisation:
        return access.party_orgs_in_reach(reach, qs, strict=strict)
    if model in access.SCOPES:
        return access.scope(reach, qs)
    if model in grid_access.SCOPES:
        return grid_access.scope(reach, qs)
    if model in _SCOPED_BY_ORG:
        if reach.everything:
            return qs
        orgs = access.party_orgs_in_reach(reach, strict=True).values("pk")
        return qs.filter(**{f"{_SCOPED_BY_ORG[model]}__in": orgs})
    raise LookupError(f"no reach scope for {model.__name__}")


def _scopable(model: type[Model]) -> bool:
    return (
        model is PartyOrganisation
        or model in access.SCOPES
        or model in grid_access.SCOPES
        or model in _SCOPED_BY_ORG
    )


class ReachAdminMixin:
    """Lists, object pages, choices and filters limited to the user's reach; writes need edit_orgs
    over the object (see the module docstring)."""

    def _reach(self, request: HttpRequest) -> grid_access.Reach:
        return grid_access.reach_of_request(request)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)  # type: ignore[misc]
        return admin_scope(self._reach(request), qs)

    def _choices(self, request: HttpRequest, db_field: Any, kwargs: dict[str, Any]) -> None:
        model = db_field.related_model
        if "queryset" not in kwargs and _scopable(model):
            # Choices are what one may link to: the part of the reach where one may edit.
            edit = access.capability_reach(self._reach(request), "edit_orgs")
            kwargs["queryset"] = admin_scope(edit, model._default_manager.all(), strict=True)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        self._choices(request, db_field, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        self._choices(request, db_field, kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]

    def get_list_filter(self, request: HttpRequest) -> Any:
        # A plain related filter lists every street/community in the database.
        return related_only_list_filter(self.model, super().get_list_filter(request))  # type: ignore[attr-defined,misc]

    def _may_edit(self, request: HttpRequest, obj: Any) -> bool:
        reach = self._reach(request)
        edit = access.capability_reach(reach, "edit_orgs")
        if edit.is_empty:
            return False
        if obj is None:
            return True
        qs = type(obj)._default_manager.filter(pk=obj.pk)
        if type(obj) in access.EDIT_SCOPES:
            # The rule the services apply inside the write: the page and the save answer alike.
            return access.editable_q(reach, qs).exists()
        return admin_scope(edit, qs, strict=True).exists()

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return super().has_add_permission(request, *args) and self._may_edit(request, None)  # type: ignore[misc]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and self._may_edit(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and self._may_edit(request, obj)  # type: ignore[misc]
