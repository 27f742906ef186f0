"""The admin scoped by reach, for every registered model (enumerated from admin.site._registry):
a grid worker of grid A with view permissions sees nothing of grid B in any change list, and a
B object's pages answer exactly as a missing object's; the street admin sees them. Clear personal
data only on request, for the places one holds view_pii over, and audited."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.db.models import Model
from django.urls import NoReverseMatch, reverse

from grid.models import AuditEvent
from orgs.models import Enterprise, GridWorker, PartyMember
from tests.security.conftest import FORBIDDEN, VISIBLE, SecurityWorld, Thing, make_staff

pytestmark = [pytest.mark.django_db]

NAMED = (PartyMember, Enterprise, GridWorker)  # their names in the world are unique per place
MISSING_PK = 999_999_999


def _url(model: type[Model], view: str, *args: object) -> str:
    meta = model._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=args)


def _row_pks(html: str, model: type[Model]) -> set:
    """Primary keys of a change list's rows: integers, or the UUIDs of field events."""
    meta = model._meta
    found = re.findall(rf'href="/admin/{meta.app_label}/{meta.model_name}/([0-9a-f-]+)/change/', html)
    return {meta.pk.to_python(pk) for pk in found}


def _shown(html: str, thing: Thing, row_pks: set[int]) -> bool:
    if thing.pk in row_pks:
        return True
    if thing.code and re.search(rf"(?<![0-9A-Za-z]){re.escape(thing.code)}(?![0-9A-Za-z])", html):
        return True
    return thing.model in NAMED and thing.label in html


def _changelist_failures(client, w: SecurityWorld, who: str) -> tuple[list[str], set[type[Model]]]:
    forbidden = w.in_places(FORBIDDEN[who])
    failures: list[str] = []
    listed: set[type[Model]] = set()
    for model in admin.site._registry:
        response = client.get(_url(model, "changelist"))
        if response.status_code == 403:
            continue  # no permission for this model at all: nothing shown
        if response.status_code != 200:
            failures.append(f"{model.__name__} change list: {response.status_code}")
            continue
        listed.add(model)
        html = response.content.decode()
        rows = _row_pks(html, model)
        leaked = [t.label for t in forbidden if _shown(html, t, rows if t.model is model else set())]
        if leaked:
            failures.append(f"{model.__name__} change list as {who} shows {leaked}")
        own = w.of_model(model, VISIBLE[who])
        if own and not rows & {t.pk for t in own} and who != "worker_a":
            failures.append(f"{model.__name__} change list as {who} shows none of {[t.label for t in own]}")
    return failures, listed


def test_worker_a_sees_nothing_of_grid_b_in_any_change_list(client, sworld):
    w = sworld
    client.force_login(make_staff(w.users["worker_a"]))
    failures, listed = _changelist_failures(client, w, "worker_a")
    assert not failures, "\n".join(failures)
    # Non-vacuous: the grid and orgs lists answered, and show grid A's things.
    place_models = {t.model for t in w.things}
    assert place_models <= listed | {m for m in place_models if m not in admin.site._registry}
    for model in place_models & listed:
        own = w.of_model(model, {"A"})
        if own:
            html = client.get(_url(model, "changelist")).content.decode()
            assert _row_pks(html, model) & {t.pk for t in own}, f"{model.__name__}: A's rows missing"


def test_b_objects_are_not_found_in_the_admin_like_missing_ones(client, sworld):
    w = sworld
    client.force_login(make_staff(w.users["worker_a"]))
    index = reverse("admin:index")
    failures: list[str] = []
    tried = 0
    for thing in w.in_places(FORBIDDEN["worker_a"]):
        if thing.model not in admin.site._registry:
            continue
        for view in ("change", "history", "delete"):
            try:
                missing = client.get(_url(thing.model, view, MISSING_PK))
            except NoReverseMatch:
                continue
            response = client.get(_url(thing.model, view, thing.pk))
            tried += 1
            same = (response.status_code, response.get("Location")) == (
                missing.status_code,
                missing.get("Location"),
            )
            if (
                not same
                or response.status_code not in (302, 403)
                or (response.status_code == 302 and response["Location"] != index)
            ):
                failures.append(
                    f"{view} of {thing.model.__name__} {thing.label} ({thing.place}): "
                    f"{response.status_code} {response.get('Location')} vs missing "
                    f"{missing.status_code} {missing.get('Location')}"
                )
    assert tried > 30
    assert not failures, "\n".join(failures)
    # A's own objects open (view permission: a read-only page).
    for thing in w.in_places({"A"}):
        if thing.model in admin.site._registry:
            response = client.get(_url(thing.model, "change", thing.pk))
            assert response.status_code == 200, (thing.label, response.status_code)


def test_street_admin_sees_b_in_the_admin(client, sworld):
    w = sworld
    client.force_login(make_staff(w.users["street_admin"], perms="all"))
    failures, _listed = _changelist_failures(client, w, "street_admin")
    assert not failures, "\n".join(failures)
    for thing in w.in_places({"B"}):
        if thing.model in admin.site._registry:
            html = client.get(_url(thing.model, "changelist")).content.decode()
            assert thing.pk in _row_pks(html, thing.model), thing.label
            assert client.get(_url(thing.model, "change", thing.pk)).status_code == 200, thing.label


def test_community_admin_sees_c1_not_c2_in_the_admin(client, sworld):
    w = sworld
    client.force_login(make_staff(w.users["community_admin"], perms="all"))
    failures, _listed = _changelist_failures(client, w, "community_admin")
    assert not failures, "\n".join(failures)


def test_choices_outside_the_reach_are_refused(client, sworld):
    """A raw id (or a select) pointing outside the writer's reach is an invalid choice: form error,
    nothing written."""
    w = sworld
    client.force_login(make_staff(w.users["community_admin"], perms="all"))
    house_c = next(t for t in w.in_places({"C"}) if t.model.__name__ == "Building")
    before = PartyMember.objects.count()
    response = client.post(
        _url(PartyMember, "add"),
        {
            "name": "越界党员",
            "gender": "male",
            "status": "full",
            "category": "employed",
            "residence_building": house_c.pk,
        },
    )
    assert response.status_code == 200
    assert "residence_building" in response.context["adminform"].form.errors
    assert PartyMember.objects.count() == before
    # Inside the reach the same form saves.
    response = client.post(
        _url(PartyMember, "add"),
        {
            "name": "本社区党员",
            "gender": "male",
            "status": "full",
            "category": "employed",
            "residence_building": w.units["house_B"].pk,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert PartyMember.objects.filter(name="本社区党员").exists()


def test_read_only_roles_cannot_change_even_with_django_permissions(client, sworld):
    w = sworld
    client.force_login(make_staff(w.users["leader"], perms="all"))
    member = w.units["member_B"]
    page = client.get(_url(PartyMember, "change", member.pk))
    assert page.status_code == 200  # visible to the street's leader, read-only
    response = client.post(_url(PartyMember, "change", member.pk), {"name": "改名", "gender": "male"})
    assert response.status_code == 403
    member.refresh_from_db()
    assert member.name != "改名"
    assert client.get(_url(PartyMember, "add")).status_code == 403


def test_personal_data_clear_only_on_request_in_view_pii_places_and_audited(client, sworld):
    w = sworld
    member_a = w.units["member_A"]  # phone 13800010001 (seq 1)
    clear_phone = "13800010001"
    masked_phone = "138****0001"
    url = _url(PartyMember, "changelist")

    client.force_login(make_staff(w.users["community_admin"], perms="all"))
    before = AuditEvent.objects.filter(action=AuditEvent.Action.READ_PII).count()
    html = client.get(url).content.decode()
    assert masked_phone in html and clear_phone not in html
    assert AuditEvent.objects.filter(action=AuditEvent.Action.READ_PII).count() == before

    html = client.get(url, {"pii": "1"}).content.decode()
    assert clear_phone in html
    event = AuditEvent.objects.filter(action=AuditEvent.Action.READ_PII).latest("id")
    assert event.actor_id == w.users["community_admin"].pk
    assert member_a.pk in event.changes["member_ids"]
    # Only people of C1 were revealed: not the C2 or D members the admin cannot see anyway.
    outside = {t.pk for t in w.in_places(FORBIDDEN["community_admin"]) if t.model is PartyMember}
    assert not outside & set(event.changes["member_ids"])

    change = client.get(_url(PartyMember, "change", member_a.pk), {"pii": "1"}).content.decode()
    assert clear_phone in change

    # A grid worker asking for clear data gets the masked page and no audit row.
    client.force_login(make_staff(w.users["worker_a"]))
    before = AuditEvent.objects.filter(action=AuditEvent.Action.READ_PII).count()
    html = client.get(url, {"pii": "1"}).content.decode()
    assert masked_phone in html and clear_phone not in html
    assert AuditEvent.objects.filter(action=AuditEvent.Action.READ_PII).count() == before
