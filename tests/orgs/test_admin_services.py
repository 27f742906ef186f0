"""The orgs admin writes only through the services: an edit of a rectification, a seat (on its own
page and as the inline of the organisation page), a cadre or a stationed cadre is one service
call, with one audit row, under the service's rules. A refusal shows the service's code and
Chinese message on the form, and nothing is written."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from edge.errors import OutsideEditReach
from grid.access import reach_for_user
from grid.models import AuditEvent, Community, Role
from orgs import services
from orgs.models import Cadre, CommitteeSeat, PartyOrganisation, Rectification, StationedCadre
from tests.grid.test_admin_audit import change_form_data
from tests.orgs_factories import (
    CadreFactory,
    EnterpriseFactory,
    StationedCadreFactory,
    community_org_for,
    street_committee_for,
)
from tests.security.conftest import user_for

pytestmark = pytest.mark.django_db


def _last_audit_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def _rows(since: int, obj: Any) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(id__gt=since, object_type=obj._meta.label, object_id=str(obj.pk)).order_by(
            "id"
        )
    )


def _post_change(client: Any, user: Any, obj: Any, **changes: Any) -> Any:
    """Save `obj`'s change page as the admin renders it, with `changes` typed over the fields."""
    request = RequestFactory().get("/admin/")
    request.user = user
    data = change_form_data(admin.site._registry[type(obj)], request, obj)
    data.update({k: str(v) if not isinstance(v, bool) else ("on" if v else "") for k, v in changes.items()})
    url = reverse(f"admin:orgs_{obj._meta.model_name}_change", args=[obj.pk])
    return client.post(url, data)


def _form_errors(response: Any) -> list[tuple[str | None, str]]:
    """(code, message) of every error of the page's main form."""
    form = response.context["adminform"].form
    return [(e.code, m) for errors in form.errors.as_data().values() for e in errors for m in e.messages]


def _enlarged(org: PartyOrganisation) -> PartyOrganisation:
    return services.party_org_update(org=org, is_enlarged=True)


# --- rectifications ---------------------------------------------------------------------------


def test_a_rectification_edit_is_one_service_write_with_one_audit_row(admin_client, admin_user, space):
    org = community_org_for(space.a)
    rect = services.party_org_flag_weak(org=org, flagged_on=date(2024, 3, 1), reasons="组织生活不正常")
    since = _last_audit_id()
    response = _post_change(admin_client, admin_user, rect, reasons="班子不团结", measures="调整班子")
    assert response.status_code == 302
    rect.refresh_from_db()
    assert (rect.reasons, rect.measures, rect.converted_on) == ("班子不团结", "调整班子", None)
    [row] = _rows(since, rect)
    # The service's row (with its diff), not the admin's generic one.
    assert row.changes["reasons"] == ["组织生活不正常", "班子不团结"] and "via" not in row.changes
    assert row.actor_id == admin_user.pk

    since = _last_audit_id()
    response = _post_change(admin_client, admin_user, rect, converted_on="2024-09-01")
    assert response.status_code == 302
    rect.refresh_from_db()
    org.refresh_from_db()
    assert rect.converted_on == date(2024, 9, 1) and not org.weak
    [row] = _rows(since, rect)
    assert row.changes == {"converted_on": [None, "2024-09-01"]} and "整顿转化" in row.summary


def test_a_conversion_before_the_flag_is_refused_on_the_form_and_nothing_written(
    admin_client, admin_user, space
):
    org = community_org_for(space.a)
    rect = services.party_org_flag_weak(org=org, flagged_on=date(2024, 3, 1), reasons="组织生活不正常")
    since = _last_audit_id()
    response = _post_change(admin_client, admin_user, rect, reasons="改了", converted_on="2024-01-01")
    assert response.status_code == 200
    assert ("rectification_date_order", "转化日期不能早于认定日期") in _form_errors(response)
    rect.refresh_from_db()
    org.refresh_from_db()
    assert (rect.reasons, rect.converted_on, org.weak) == ("组织生活不正常", None, True)
    assert _last_audit_id() == since


def test_deleting_a_rectification_goes_through_its_service(admin_client, admin_user, space):
    org = community_org_for(space.a)
    rect = services.party_org_flag_weak(org=org, flagged_on=date(2024, 3, 1), reasons="误认定")
    since = _last_audit_id()
    response = admin_client.post(reverse("admin:orgs_rectification_delete", args=[rect.pk]), {"post": "yes"})
    assert response.status_code == 302
    org.refresh_from_db()
    assert not Rectification.objects.filter(pk=rect.pk).exists() and not org.weak
    [row] = _rows(since, rect)
    assert row.action == AuditEvent.Action.DELETE and row.changes["reasons"] == "误认定"


# --- committee seats: their own page -----------------------------------------------------------


def test_a_seat_edit_is_one_service_write_with_one_audit_row(admin_client, admin_user, space):
    committee = _enlarged(street_committee_for(space.street))
    seat = services.committee_seat_create(org=committee, person_name="王五", liaison_communities=[space.a])
    before = Community.objects.get(pk=space.b.pk).data_version
    since = _last_audit_id()
    request = RequestFactory().get("/admin/")
    request.user = admin_user
    data = change_form_data(admin.site._registry[CommitteeSeat], request, seat)
    data |= {"person_name": "王五一", "liaison_communities": [str(space.a.pk), str(space.b.pk)]}
    response = admin_client.post(reverse("admin:orgs_committeeseat_change", args=[seat.pk]), data)
    assert response.status_code == 302
    seat.refresh_from_db()
    assert seat.person_name == "王五一"
    assert set(seat.liaison_communities.values_list("pk", flat=True)) == {space.a.pk, space.b.pk}
    [row] = _rows(since, seat)
    assert row.changes["person_name"] == ["王五", "王五一"]
    assert row.changes["liaison_communities"] == [[space.a.pk], sorted([space.a.pk, space.b.pk])]
    # The service said the communities changed: B, newly liaised with, has a new data version.
    assert Community.objects.get(pk=space.b.pk).data_version > before


def test_a_seat_of_a_committee_no_longer_enlarged_is_refused_with_the_services_code(
    admin_client, admin_user, space
):
    committee = _enlarged(community_org_for(space.a))
    seat = services.committee_seat_create(org=committee, person_name="李四", unit_name="第一中学")
    services.party_org_update(org=committee, is_enlarged=False)
    since = _last_audit_id()
    response = _post_change(admin_client, admin_user, seat, person_name="李四四")
    assert response.status_code == 200
    [(code, message)] = _form_errors(response)
    assert code == "seat_org_not_enlarged" and "不是大工委/大党委" in message
    assert message in response.content.decode()
    seat.refresh_from_db()
    assert seat.person_name == "李四" and _last_audit_id() == since


def test_the_add_page_offers_only_enlarged_committees(admin_client, space):
    org = community_org_for(space.a)
    response = admin_client.post(
        reverse("admin:orgs_committeeseat_add"),
        {"org": org.pk, "person_name": "李四", "unit_name": "第一中学", "liaison_units": ""},
    )
    assert response.status_code == 200
    assert [code for code, _ in _form_errors(response)] == ["invalid_choice"]
    assert not CommitteeSeat.objects.exists()


# --- committee seats: the inline of the organisation page --------------------------------------


def _org_page_data(admin_user: Any, org: PartyOrganisation) -> dict[str, Any]:
    request = RequestFactory().get("/admin/")
    request.user = admin_user
    return change_form_data(admin.site._registry[PartyOrganisation], request, org)


def test_inline_seats_are_added_changed_and_removed_through_the_services(admin_client, admin_user, space):
    committee = _enlarged(street_committee_for(space.street))
    kept = services.committee_seat_create(org=committee, person_name="张三")
    gone = services.committee_seat_create(org=committee, person_name="赵六")
    since = _last_audit_id()
    data = _org_page_data(admin_user, committee)
    forms = {data[f"seats-{i}-id"]: i for i in range(2)}
    data[f"seats-{forms[str(kept.pk)]}-person_name"] = "张三丰"
    data[f"seats-{forms[str(gone.pk)]}-DELETE"] = "on"
    data |= {"seats-TOTAL_FORMS": "3", "seats-2-person_name": "钱七", "seats-2-unit_name": "第二中学"}
    response = admin_client.post(reverse("admin:orgs_partyorganisation_change", args=[committee.pk]), data)
    assert response.status_code == 302, _form_errors(response)
    kept.refresh_from_db()
    added = CommitteeSeat.objects.get(person_name="钱七")
    assert kept.person_name == "张三丰" and not CommitteeSeat.objects.filter(pk=gone.pk).exists()
    assert added.org_id == committee.pk and added.unit_name == "第二中学"
    # One row per write: each seat's service row, and the organisation's own.
    assert [r.action for r in _rows(since, kept)] == [AuditEvent.Action.UPDATE]
    assert [r.action for r in _rows(since, gone)] == [AuditEvent.Action.DELETE]
    assert [r.action for r in _rows(since, added)] == [AuditEvent.Action.CREATE]
    assert len(_rows(since, committee)) == 1


def test_an_inline_seat_refused_by_the_service_is_a_form_error_and_nothing_is_written(
    admin_client, admin_user, space
):
    # The seat rule is the service's alone: the inline form does not copy it, so the refusal
    # comes from the write itself, rolls back the organisation's save too and shows on the page.
    org = community_org_for(space.a)
    since = _last_audit_id()
    data = _org_page_data(admin_user, org)
    data |= {
        "name": "改名的社区党委",
        "seats-TOTAL_FORMS": "1",
        "seats-0-person_name": "李四",
        "seats-0-unit_name": "第一中学",
    }
    response = admin_client.post(reverse("admin:orgs_partyorganisation_change", args=[org.pk]), data)
    assert response.status_code == 200
    [(code, message)] = _form_errors(response)
    assert code == "seat_org_not_enlarged" and message in response.content.decode()
    org.refresh_from_db()
    assert org.name != "改名的社区党委"
    assert not CommitteeSeat.objects.exists() and _last_audit_id() == since


# --- cadres -----------------------------------------------------------------------------------


def test_a_cadre_is_added_edited_and_deleted_through_the_services(admin_client, admin_user, space):
    since = _last_audit_id()
    response = admin_client.post(
        reverse("admin:orgs_cadre_add"), {"name": "周八", "unit_name": "党建办", "street": space.street.pk}
    )
    assert response.status_code == 302
    cadre = Cadre.objects.get(name="周八")
    [row] = _rows(since, cadre)
    assert row.action == AuditEvent.Action.CREATE and row.summary == "新增干部“周八”"

    since = _last_audit_id()
    response = _post_change(admin_client, admin_user, cadre, unit_name="组织办")
    assert response.status_code == 302
    cadre.refresh_from_db()
    assert cadre.unit_name == "组织办"
    [row] = _rows(since, cadre)
    assert row.changes == {"unit_name": ["党建办", "组织办"]} and row.summary == "修改干部“周八”"

    since = _last_audit_id()
    response = admin_client.post(reverse("admin:orgs_cadre_delete", args=[cadre.pk]), {"post": "yes"})
    assert response.status_code == 302 and not Cadre.objects.filter(pk=cadre.pk).exists()
    [row] = _rows(since, cadre)
    assert row.action == AuditEvent.Action.DELETE and row.changes["name"] == "周八"


def test_a_cadre_write_outside_the_edit_reach_is_refused_and_nothing_written(space):
    other = CadreFactory()  # a street of its own
    editor = user_for("street_editor", Role.STREET_ADMIN, street=space.street)
    reach = reach_for_user(editor)
    since = _last_audit_id()
    with pytest.raises(OutsideEditReach):
        services.cadre_update(reach=reach, cadre=other, name="改名")
    with pytest.raises(OutsideEditReach):
        services.cadre_create(reach=reach, name="越权", street=other.street)
    other.refresh_from_db()
    assert other.name != "改名" and not Cadre.objects.filter(name="越权").exists()
    assert _last_audit_id() == since


# --- stationed cadres -------------------------------------------------------------------------


def test_a_stationed_cadre_edit_is_one_service_write_with_one_audit_row(admin_client, admin_user, space):
    posting = StationedCadreFactory(community=space.a)
    versions = dict(
        Community.objects.filter(pk__in=[space.a.pk, space.b.pk]).values_list("pk", "data_version")
    )
    since = _last_audit_id()
    response = _post_change(admin_client, admin_user, posting, period_end="2024-12-31", community=space.b.pk)
    assert response.status_code == 302, _form_errors(response)
    posting.refresh_from_db()
    assert (posting.period_end, posting.community_id) == (date(2024, 12, 31), space.b.pk)
    [row] = _rows(since, posting)
    assert row.changes == {"period_end": [None, "2024-12-31"], "community": [space.a.pk, space.b.pk]}
    # Both communities' data changed: the one left and the one joined.
    after = dict(Community.objects.filter(pk__in=versions).values_list("pk", "data_version"))
    assert all(after[pk] > versions[pk] for pk in versions)


def test_a_stationed_cadre_refusal_is_the_services_form_error_and_nothing_written(
    admin_client, admin_user, space
):
    posting = StationedCadreFactory(community=space.a, period_start=date(2024, 6, 1))
    since = _last_audit_id()
    response = _post_change(admin_client, admin_user, posting, period_end="2024-01-31", name="改名")
    assert response.status_code == 200
    # The rule is the service's and the database's (a CHECK constraint the form validates first).
    assert [m for _code, m in _form_errors(response)] == ["驻点结束日期不能早于开始日期"]
    posting.refresh_from_db()
    assert (posting.period_end, posting.name) == (None, StationedCadre.objects.get(pk=posting.pk).name)
    assert posting.name != "改名" and _last_audit_id() == since


# --- enterprises ------------------------------------------------------------------------------


def test_an_enterprise_edit_is_one_service_write_with_one_audit_row(admin_client, admin_user, space):
    enterprise = EnterpriseFactory(community=space.a)
    since = _last_audit_id()
    response = _post_change(admin_client, admin_user, enterprise, employee_count=45)
    assert response.status_code == 302, _form_errors(response)
    enterprise.refresh_from_db()
    assert enterprise.employee_count == 45
    [row] = _rows(since, enterprise)
    assert row.action == AuditEvent.Action.UPDATE and row.changes["employee_count"] == [20, 45]
    assert "via" not in row.changes and row.actor_id == admin_user.pk
