"""Every write through the admin leaves an audit row, for every registered model — those whose admin
saves through a service (which writes the row) and those it saves itself (streets, users, tokens…).

The models are not a hand-kept list: the test walks `admin.site._registry`, and for each model
whose admin lets a superuser change an object, posts that object's change form back as the admin
itself would render it (its form's and inlines' initial data), then looks for the row.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.widgets import ManyToManyRawIdWidget
from django.contrib.auth.models import Group, User
from django.contrib.gis.geos import GEOSGeometry
from django.db.models import Model
from django.forms import MultiWidget
from django.test import Client, RequestFactory
from django.urls import reverse
from rest_framework.authtoken.models import Token

from grid.admin_audit import AuditedAdminMixin
from grid.audit import Actor, audit_record
from grid.models import AuditEvent, Role, Street
from orgs import services as org_services
from orgs.models import Cadre, PartyMember
from tests.security.conftest import build_world, make_staff, user_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser() -> User:
    return User.objects.create_superuser(username="root", email="root@example.invalid", password=None)


@pytest.fixture
def world(superuser):
    """The security world plus what it lacks for a complete admin: a group, a token, a seat."""
    w = build_world()
    Group.objects.create(name="街道办")
    Token.objects.create(user=w.users["street_admin"])
    committee = w.units["committee"]
    committee = org_services.party_org_update(org=committee, is_enlarged=True)
    org_services.committee_seat_create(org=committee, person_name="驻区单位书记", unit_name="第一中学")
    return w


def _request(user: User) -> Any:
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def _encode(widget: Any, name: str, value: Any, data: dict[str, Any]) -> None:
    """Put `value` into POST `data` the way `widget` reads it back (value_from_datadict)."""
    inner = getattr(widget, "widget", widget)  # RelatedFieldWidgetWrapper
    if isinstance(inner, MultiWidget):
        parts = inner.decompress(value) if not isinstance(value, list) else value
        for sub, suffix, part in zip(inner.widgets, inner.widgets_names, parts, strict=False):
            _encode(sub, f"{name}{suffix}", part, data)
        return
    if value is None:
        data[name] = ""
    elif isinstance(value, bool):
        if value:
            data[name] = "on"
    elif isinstance(value, list | tuple | set):
        ids = [str(v.pk if isinstance(v, Model) else v) for v in value]
        data[name] = ",".join(ids) if isinstance(inner, ManyToManyRawIdWidget) else ids
    elif isinstance(value, Model):
        data[name] = str(value.pk)
    elif isinstance(value, GEOSGeometry):
        data[name] = value.geojson
    elif isinstance(value, date | datetime | Decimal):
        data[name] = value.isoformat() if not isinstance(value, Decimal) else str(value)
    else:
        data[name] = str(value)


def _form_fields(form: Any, data: dict[str, Any]) -> None:
    for name, field in form.fields.items():
        if field.disabled:
            continue
        _encode(field.widget, form.add_prefix(name), form[name].value(), data)


def change_form_data(model_admin: admin.ModelAdmin, request: Any, obj: Model) -> dict[str, Any]:
    """The POST a browser sends when the change page of `obj` is saved untouched."""
    data: dict[str, Any] = {"_save": "保存"}
    form_class = model_admin.get_form(request, obj, change=True)
    _form_fields(form_class(instance=obj), data)
    prefixes: dict[str, int] = {}
    for formset_class, inline in model_admin.get_formsets_with_inlines(request, obj):
        # The prefix rule of ModelAdmin._create_formsets.
        prefix = formset_class.get_default_prefix()
        prefixes[prefix] = prefixes.get(prefix, 0) + 1
        if prefixes[prefix] != 1 or not prefix:
            prefix = f"{prefix}-{prefixes[prefix]}"
        formset = formset_class(instance=obj, prefix=prefix, queryset=inline.get_queryset(request))
        management = formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = str(management.initial.get(name, ""))
        n = len(formset.initial_forms)
        data[management.add_prefix("TOTAL_FORMS")] = str(n)
        data[management.add_prefix("INITIAL_FORMS")] = str(n)
        for form in formset.initial_forms:
            _form_fields(form, data)
    return data


def _errors(response: Any) -> str:
    context = response.context or {}
    out = []
    if "adminform" in context:
        out.append(repr(context["adminform"].form.errors))
    for inline in context.get("inline_admin_formsets", []):
        out.append(repr(inline.formset.errors) + repr(inline.formset.non_form_errors()))
    return " ".join(out) or response.content[:300].decode(errors="replace")


def test_every_registered_admin_is_audited():
    unaudited = [
        m._meta.label for m, a in admin.site._registry.items() if not isinstance(a, AuditedAdminMixin)
    ]
    assert not unaudited, f"admins without AuditedAdminMixin: {unaudited}"


def test_saving_any_change_form_writes_an_audit_row(world, superuser):
    client = Client()
    client.force_login(superuser)
    request = _request(superuser)
    failures: list[str] = []
    covered: list[str] = []
    for model, model_admin in admin.site._registry.items():
        label = model._meta.label
        obj = model_admin.get_queryset(request).order_by("pk").first()
        if obj is None:
            failures.append(f"{label}: the test world has no object to change")
            continue
        if not model_admin.has_change_permission(request, obj):
            continue
        url = model_admin.get_changelist_instance(request).url_for_result(obj)
        since = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
        response = client.post(url, change_form_data(model_admin, request, obj))
        if response.status_code != 302:
            failures.append(f"{label}: {response.status_code} {_errors(response)}")
            continue
        object_id, _ = model_admin.audit_identity(obj)
        rows = AuditEvent.objects.filter(
            id__gt=since,
            object_type=obj._meta.concrete_model._meta.label,
            object_id=object_id,
            actor=superuser,
        )
        if not rows.exists():
            failures.append(f"{label}: no audit row for {object_id}")
        elif rows.count() != 1:
            failures.append(f"{label}: {rows.count()} audit rows for one save")
        covered.append(label)
    assert not failures, "\n".join(failures)
    # The walk must have reached the models written with no service behind the admin.
    assert {"grid.Street", "grid.ServiceCentre", "auth.User", "auth.Group", "authtoken.TokenProxy"} <= set(
        covered
    )
    assert len(covered) >= 15


def test_a_field_edit_names_the_changed_fields_and_where(world, superuser):
    street = world.units["street"]
    client = Client(REMOTE_ADDR="10.1.2.3")
    client.force_login(superuser)
    model_admin = admin.site._registry[Street]
    data = change_form_data(model_admin, _request(superuser), street)
    data["name"] = "改名街道"
    response = client.post(reverse("admin:grid_street_change", args=[street.pk]), data)
    assert response.status_code == 302, _errors(response)
    # The admin saved through grid.services.street_update: its row, with the diff, is the only one.
    (row,) = AuditEvent.objects.filter(object_type="grid.Street", object_id=str(street.pk))
    assert row.action == AuditEvent.Action.UPDATE
    assert row.changes == {"name": [street.name, "改名街道"]}
    assert (row.actor_id, row.ip, row.street_id) == (superuser.pk, "10.1.2.3", street.pk)
    assert "改名街道" in row.summary
    # A model no service writes still gets the admin's own row, naming the fields changed.
    group = Group.objects.get(name="街道办")
    data = change_form_data(admin.site._registry[Group], _request(superuser), group)
    data["name"] = "街道办公室"
    response = client.post(reverse("admin:auth_group_change", args=[group.pk]), data)
    assert response.status_code == 302, _errors(response)
    row = AuditEvent.objects.filter(object_type="auth.Group", object_id=str(group.pk)).latest("id")
    assert (row.changes["fields"], row.changes["via"]) == (["name"], "admin")


def test_personal_data_never_reaches_the_log_through_the_admin(world, superuser):
    member = world.units["member_A"]
    client = Client()
    client.force_login(superuser)
    data = change_form_data(admin.site._registry[PartyMember], _request(superuser), member)
    data["phone"] = "13912345678"
    response = client.post(reverse("admin:orgs_partymember_change", args=[member.pk]), data)
    assert response.status_code == 302, _errors(response)
    rows = AuditEvent.objects.filter(
        object_type="orgs.PartyMember", object_id=str(member.pk), actor=superuser
    )
    # The service wrote its row (with "已修改" for the phone); the admin did not add a second.
    assert rows.count() == 1
    assert rows.get().changes["phone"] == "已修改"
    assert not AuditEvent.objects.filter(changes__icontains="13912345678").exists()
    token = Token.objects.get()
    response = client.post(
        reverse("admin:authtoken_tokenproxy_change", args=[token.user_id]),
        {"user": str(token.user_id), "_save": "保存"},
    )
    assert response.status_code == 302
    assert not AuditEvent.objects.filter(object_id=token.key).exists()
    assert not AuditEvent.objects.filter(summary__contains=token.key).exists()


def test_deleting_through_the_admin_writes_a_delete_row(world, superuser):
    cadre = Cadre.objects.get()
    client = Client()
    client.force_login(superuser)
    response = client.post(reverse("admin:orgs_cadre_delete", args=[cadre.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Cadre.objects.filter(pk=cadre.pk).exists()
    row = AuditEvent.objects.filter(action=AuditEvent.Action.DELETE).latest("id")
    assert (row.object_type, row.object_id, row.actor_id) == ("orgs.Cadre", str(cadre.pk), superuser.pk)
    assert row.street_id == cadre.street_id
    assert cadre.name in row.summary


def test_a_bulk_delete_writes_one_row_per_object(world, superuser):
    groups = [Group.objects.create(name=f"临时组{i}") for i in range(3)]
    client = Client()
    client.force_login(superuser)
    response = client.post(
        reverse("admin:auth_group_changelist"),
        {"action": "delete_selected", "_selected_action": [g.pk for g in groups], "post": "yes"},
    )
    assert response.status_code == 302
    rows = AuditEvent.objects.filter(action="delete", object_type="auth.Group")
    assert sorted(rows.values_list("object_id", flat=True)) == sorted(str(g.pk) for g in groups)


# --- the log is searchable by the street administrator ---------------------------------------


def test_street_admin_searches_the_log_by_actor_and_object_id(world):
    w = world
    street, elsewhere = w.units["street"], w.units["street2"]
    admin_user = make_staff(w.users["street_admin"])
    alice = Actor(user_id=None, name="alice_clerk", ip="10.0.0.1")
    bob = Actor(user_id=None, name="bob_clerk", ip="10.0.0.2")
    mine = audit_record(
        action="update", object_type="grid.Building", object_id="880001", actor=alice, street_id=street.pk
    )
    bobs = audit_record(
        action="update", object_type="grid.Building", object_id="880002", actor=bob, street_id=street.pk
    )
    other = audit_record(
        action="update", object_type="grid.Building", object_id="880001", actor=alice, street_id=elsewhere.pk
    )
    client = Client()
    client.force_login(admin_user)
    url = reverse("admin:grid_auditevent_changelist")

    def found(q: str) -> set[int]:
        response = client.get(url, {"q": q})
        assert response.status_code == 200
        return {e.pk for e in response.context["cl"].result_list}

    assert found("alice_clerk") == {mine.pk}  # not the row of the other street
    assert found("880002") == {bobs.pk}
    assert found("880001") == {mine.pk}
    assert other.pk not in found("")


def test_a_grid_worker_may_not_open_the_audit_log(world):
    worker = make_staff(user_for("worker_staff", Role.GRID_WORKER, grid_cell=world.units["cell_A"]))
    client = Client()
    client.force_login(worker)
    assert client.get(reverse("admin:grid_auditevent_changelist")).status_code == 403
