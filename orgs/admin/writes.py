"""How the orgs admin writes: only through orgs.services, the one atomic action per write that
checks the rules, writes the audit row and refuses a result outside the writer's reach.

Every save, inline save and delete of these admins calls `ServiceWritesMixin.write`, which passes
the request user's reach to the service. A refusal (DomainError) raised while saving becomes a
form error in Chinese, with the service's code, and nothing is written: the admin view's own
transaction rolls back whatever the save had done, and the page is validated again with the
refusal as the form's error, so the user sees their input and the reason. The forms' clean
methods call the services' check functions, so most refusals already show at validation; the
save-time path catches what only the write can know (a race, where the result lands).

Django's default writes (`obj.save()`, `form.save_m2m()`, `formset.save()`, `obj.delete()`,
`queryset.delete()`) are not inherited: the defaults here raise, so an admin that forgets its
service fails loudly instead of writing around it (tests/ops/test_write_rule.py walks the
registry). A bulk delete calls the object's delete service once per selected object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from edge.errors import DomainError
from grid.admin_audit import AuditedAdminMixin
from orgs.admin.scope import ReachAdminMixin

T = TypeVar("T")


def as_validation_error(exc: DomainError) -> ValidationError:
    return ValidationError(exc.message, code=exc.code)


def add_domain_error(form: Any, exc: DomainError) -> None:
    """Show a service's refusal on `form`: on the field it names (`detail["field"]`, which also
    keeps Django from validating that field again), else above the form."""
    field = exc.detail.get("field")
    form.add_error(field if field in form.fields else None, as_validation_error(exc))


class RefusedOnSave(Exception):
    """A service refused the admin's write; carries the refusal as a form error."""

    def __init__(self, error: ValidationError) -> None:
        super().__init__(error.message)
        self.error = error


class ServiceWritesMixin(AuditedAdminMixin, ReachAdminMixin):
    """Base of every orgs admin: audited, scoped by reach, writing only through services."""

    # The delete services write the audit row (with what was removed): AuditedAdminMixin keeps
    # only Django's history entry, so one deletion is one audit row.
    deletes_audited_by_service = True

    # --- the one way to write ---------------------------------------------------------------

    def write(self, request: HttpRequest, service: Callable[..., T], /, **kwargs: Any) -> T:
        """Call `service` as the request's user (their reach); a refusal becomes RefusedOnSave."""
        try:
            return service(reach=self._reach(request), **kwargs)
        except DomainError as exc:
            raise RefusedOnSave(as_validation_error(exc)) from exc

    def save_through(
        self,
        request: HttpRequest,
        obj: Any,
        form: Any,
        change: bool,
        *,
        fields: Iterable[str],
        create: Callable[..., Any],
        update: Callable[..., Any],
        object_arg: str,
        **extra: Any,
    ) -> None:
        """The body of a save_model: the form's values of `fields`, with `extra`, go to the
        `create` service, or to `update` with the object as its `object_arg`; `obj` then holds
        what the service wrote."""
        data = {f: form.cleaned_data[f] for f in fields if f in form.cleaned_data}
        if change:
            saved = self.write(request, update, **{object_arg: obj}, **extra, **data)
        else:
            saved = self.write(request, create, **extra, **data)
        obj.pk = saved.pk
        obj.refresh_from_db()

    # --- refusals as form errors --------------------------------------------------------------

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: Any = None,
    ) -> Any:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except RefusedOnSave as refused:
            # The view's transaction has rolled back. Validate the same POST again with the
            # refusal as the form's error: Django renders the page with the user's input.
            request._wangge_refusal = refused.error  # type: ignore[attr-defined]
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request: Any, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)  # type: ignore[misc]
        refusal: ValidationError | None = getattr(request, "_wangge_refusal", None)
        if refusal is None:
            return form

        class RefusedForm(form):  # type: ignore[valid-type,misc]
            def _post_clean(self) -> None:
                super()._post_clean()
                self.add_error(None, refusal)

        return RefusedForm

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> Any:
        try:
            return super().delete_view(request, object_id, extra_context)
        except RefusedOnSave as refused:
            # Rolled back with the view's transaction; say why on the object's page.
            self.message_user(request, refused.error.message, messages.ERROR)  # type: ignore[attr-defined]
            opts = self.model._meta  # type: ignore[attr-defined]
            return HttpResponseRedirect(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id])
            )

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        try:
            return super().changelist_view(request, extra_context)
        except RefusedOnSave as refused:
            # A bulk action refused (rolled back whole): say why on the list.
            self.message_user(request, refused.error.message, messages.ERROR)  # type: ignore[attr-defined]
            return HttpResponseRedirect(request.get_full_path())

    # --- Django's write hooks: none writes by itself ----------------------------------------

    def save_model(self, request: Any, obj: Any, form: Any, change: bool) -> None:
        raise NotImplementedError(f"{type(self).__name__} saves through a service: override save_model")

    def save_related(self, request: Any, form: Any, formsets: Any, change: bool) -> None:
        # The service wrote the object's many-to-many fields (no form.save_m2m()); inlines go
        # through save_formset, which the admins with inlines override with their services.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_formset(self, request: Any, form: Any, formset: Any, change: bool) -> None:
        raise NotImplementedError(f"{type(self).__name__} saves its inlines through services")

    def delete_model(self, request: Any, obj: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} deletes through a service or not at all")

    def delete_queryset(self, request: Any, queryset: Any) -> None:
        # "Delete selected": the same service per object as the object's own page, so each
        # deletion checks its rules and writes its row; AuditedAdminMixin runs the action in one
        # transaction, so a refusal of one object keeps them all.
        for obj in queryset:
            self.delete_model(request, obj)


def inline_saved(
    formset: Any, *, new: list[Any], changed: list[tuple[Any, list[str]]], deleted: list[Any]
) -> None:
    """Record on `formset` what was written, as `formset.save()` would: the admin's change
    message (and so the history and audit row) names the inline objects from these lists."""
    formset.new_objects, formset.changed_objects, formset.deleted_objects = new, changed, deleted
