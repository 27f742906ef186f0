"""Granting and revoking roles (grid.roles) and the two admin pages over them: the role admin (needs
manage_users, stays in the grantor's street, audits every change) and the read-only audit log
(view_audit: a street admin sees their street's events and their own)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from grid import roles
from grid.access import reach_for_user
from grid.audit import actor_for_user, audit_record
from grid.errors import GridError
from grid.models import AuditEvent, Role, RoleAssignment
from tests.security.conftest import make_staff, user_for

pytestmark = [pytest.mark.django_db]


def _counts() -> tuple[int, int]:
    return RoleAssignment.objects.count(), AuditEvent.objects.count()


def test_grant_and_revoke_write_one_audit_row_each(sworld):
    w = sworld
    admin = w.users["street_admin"]
    newcomer = user_for("newcomer", None)
    assignment = roles.role_grant(
        user=newcomer,
        role=Role.GRID_WORKER,
        grid_cell=w.units["cell_B"],
        reason="新聘网格员",
        by=reach_for_user(admin),
    )
    grant = AuditEvent.objects.get(action=AuditEvent.Action.GRANT, object_id=str(assignment.pk))
    assert grant.street_id == w.units["street"].pk and grant.reason == "新聘网格员"
    assert grant.changes["role"] == "grid_worker" and grant.changes["unit_code"] == w.units["cell_B"].code
    assert reach_for_user(newcomer).grid_cell_ids == {w.units["cell_B"].pk}

    assert roles.role_revoke(assignment=assignment, reason="离职", by=reach_for_user(admin)) is True
    assignment.refresh_from_db()
    assert assignment.revoked_at is not None
    assert (
        AuditEvent.objects.filter(action=AuditEvent.Action.REVOKE, object_id=str(assignment.pk)).count() == 1
    )
    assert reach_for_user(newcomer).is_empty

    # Revoking again changes nothing and writes nothing.
    before = _counts()
    assert roles.role_revoke(assignment=assignment) is False
    assert _counts() == before


@pytest.mark.parametrize(
    ("grantor", "role", "unit", "code"),
    [
        ("street_admin", Role.GRID_WORKER, "cell_D", "role_outside_reach"),  # another street
        ("street_admin", Role.COMMUNITY_ADMIN, "d1", "role_outside_reach"),
        ("street_admin", Role.OPERATOR, None, "role_not_allowed"),
        ("community_admin", Role.GRID_WORKER, "cell_A", "role_not_allowed"),  # no manage_users
        ("leader", Role.GRID_WORKER, "cell_A", "role_not_allowed"),
        ("worker_a", Role.GRID_WORKER, "cell_A", "role_not_allowed"),
        ("operator", Role.GRID_WORKER, "cell_A", "role_outside_reach"),  # operators reach no place
        ("street_admin", Role.GRID_WORKER, None, "role_unit_invalid"),
    ],
)
def test_grants_beyond_the_grantors_reach_are_refused_and_write_nothing(sworld, grantor, role, unit, code):
    w = sworld
    target = user_for("target", None)
    kwargs = {}
    if unit is not None:
        obj = w.units[unit]
        kind = {"GridCell": "grid_cell", "Community": "community", "Street": "street"}[type(obj).__name__]
        kwargs[kind] = obj
    before = _counts()
    with pytest.raises(GridError) as err:
        roles.role_grant(user=target, role=role, by=reach_for_user(w.users[grantor]), **kwargs)
    assert err.value.code == code
    assert _counts() == before


def test_operator_grants_only_the_operator_role_and_duplicates_are_refused(sworld):
    w = sworld
    target = user_for("ops2", None)
    by = reach_for_user(w.users["operator"])
    roles.role_grant(user=target, role=Role.OPERATOR, by=by)
    before = _counts()
    with pytest.raises(GridError) as err:
        roles.role_grant(user=target, role=Role.OPERATOR, by=by)
    assert err.value.code == "role_duplicate"
    assert _counts() == before


def test_revoke_outside_the_grantors_street_is_refused(sworld):
    w = sworld
    other = RoleAssignment.objects.create(
        user=user_for("far", None), role=Role.LEADER, street=w.units["street2"]
    )
    before = _counts()
    with pytest.raises(GridError) as err:
        roles.role_revoke(assignment=other, by=reach_for_user(w.users["street_admin"]))
    assert err.value.code == "role_outside_reach"
    other.refresh_from_db()
    assert other.revoked_at is None and _counts() == before


# --- role admin -------------------------------------------------------------------------------


def test_role_admin_grants_inside_the_street_and_refuses_outside(client, sworld):
    w = sworld
    client.force_login(make_staff(w.users["street_admin"], perms="all"))
    target = user_for("via_admin", None)
    add = reverse("admin:grid_roleassignment_add")

    before = _counts()
    response = client.post(
        add, {"user": target.pk, "role": Role.GRID_WORKER, "grid_cell": w.units["cell_D"].pk}
    )
    assert response.status_code == 200  # the grid of another street is not even a choice
    assert response.context["adminform"].form.errors
    assert _counts() == before

    response = client.post(
        add,
        {
            "user": target.pk,
            "role": Role.GRID_WORKER,
            "grid_cell": w.units["cell_B"].pk,
            "reason": "补充人手",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assignment = RoleAssignment.objects.get(user=target)
    event = AuditEvent.objects.get(action=AuditEvent.Action.GRANT, object_id=str(assignment.pk))
    assert event.actor_id == w.users["street_admin"].pk and event.reason == "补充人手"

    # The list shows the street's assignments only; revoking is an action, audited.
    html = client.get(reverse("admin:grid_roleassignment_changelist")).content.decode()
    assert "via_admin" in html and "writer_c2" in html
    far = RoleAssignment.objects.create(
        user=user_for("far_user", None), role=Role.LEADER, street=w.units["street2"]
    )
    html = client.get(reverse("admin:grid_roleassignment_changelist")).content.decode()
    assert "far_user" not in html
    response = client.post(
        reverse("admin:grid_roleassignment_changelist"),
        {"action": "_revoke_selected", "_selected_action": [assignment.pk, far.pk]},
    )
    assert response.status_code == 302
    assignment.refresh_from_db()
    far.refresh_from_db()
    assert assignment.revoked_at is not None and far.revoked_at is None  # far is not in the queryset
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REVOKE, object_id=str(assignment.pk)).exists()
    # Never edited or deleted in place.
    assert (
        client.post(
            reverse("admin:grid_roleassignment_delete", args=[assignment.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert RoleAssignment.objects.filter(pk=assignment.pk).exists()


@pytest.mark.parametrize("who", ["community_admin", "leader", "worker_a"])
def test_role_admin_needs_manage_users(client, sworld, who):
    client.force_login(make_staff(sworld.users[who], perms="all"))
    assert client.get(reverse("admin:grid_roleassignment_changelist")).status_code == 403
    assert client.get(reverse("admin:grid_roleassignment_add")).status_code == 403


# --- audit log admin --------------------------------------------------------------------------


def _events(w):
    s, s2 = w.units["street"], w.units["street2"]
    return {
        "own_street": audit_record(
            action="update", object_type="orgs.PartyMember", object_id=1, summary="本街道修改", street_id=s.pk
        ),
        "other_street": audit_record(
            action="update",
            object_type="orgs.PartyMember",
            object_id=2,
            summary="外街道修改",
            street_id=s2.pk,
        ),
        "no_street": audit_record(action="login", object_type="auth.User", summary="无街道事件"),
    }


def test_audit_log_is_read_only_even_for_superusers(admin_client, sworld):
    events = _events(sworld)
    event = events["own_street"]
    assert admin_client.get(reverse("admin:grid_auditevent_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:grid_auditevent_add")).status_code == 403
    page = admin_client.get(reverse("admin:grid_auditevent_change", args=[event.pk]))
    assert page.status_code == 200 and "本街道修改" in page.content.decode()
    response = admin_client.post(
        reverse("admin:grid_auditevent_change", args=[event.pk]), {"summary": "篡改"}
    )
    assert response.status_code == 403
    assert (
        admin_client.post(
            reverse("admin:grid_auditevent_delete", args=[event.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    event.refresh_from_db()
    assert event.summary == "本街道修改"
    html = admin_client.get(reverse("admin:grid_auditevent_changelist"), {"q": "外街道"}).content.decode()
    assert "外街道修改" in html and "本街道修改" not in html


def test_street_admin_sees_their_streets_events_and_their_own(client, sworld):
    w = sworld
    admin_user = make_staff(w.users["street_admin"], perms="all")
    events = _events(w)
    own = audit_record(
        action="export", object_type="orgs.PartyMember", summary="我的导出", actor=actor_for_user(admin_user)
    )
    client.force_login(admin_user)
    html = client.get(reverse("admin:grid_auditevent_changelist")).content.decode()
    assert "本街道修改" in html and "我的导出" in html
    assert "外街道修改" not in html and "无街道事件" not in html
    url = reverse("admin:grid_auditevent_change", args=[events["other_street"].pk])
    assert client.get(url).status_code == 302  # not found, as a missing event
    assert client.get(reverse("admin:grid_auditevent_change", args=[own.pk])).status_code == 200
    # Filters by action and street, and search by actor and summary.
    assert (
        "本街道修改"
        in client.get(
            reverse("admin:grid_auditevent_changelist"), {"action__exact": "update"}
        ).content.decode()
    )
    assert (
        "本街道修改"
        not in client.get(reverse("admin:grid_auditevent_changelist"), {"q": "导出"}).content.decode()
    )


@pytest.mark.parametrize("who", ["community_admin", "leader", "worker_a", "operator"])
def test_only_view_audit_roles_open_the_audit_log(client, sworld, who):
    _events(sworld)
    client.force_login(make_staff(sworld.users[who], perms="all"))
    assert client.get(reverse("admin:grid_auditevent_changelist")).status_code == 403
