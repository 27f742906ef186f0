"""The admin writes through the services: tree refusals become form errors, personal data is masked."""

import pytest
from django.urls import reverse

from orgs import pii
from orgs.models import PartyMember, PartyOrganisation
from tests.orgs_factories import (
    EnterpriseFactory,
    GridWorkerFactory,
    PartyMemberFactory,
    community_org_for,
    grid_branch_for,
    make_id_number,
)

MODELS = [
    "partyorganisation",
    "partymember",
    "enterprise",
    "gridworker",
    "stationedcadre",
    "committeeseat",
    "rectification",
    "starrating",
    "cadre",
]


@pytest.mark.django_db
def test_every_admin_page_renders(admin_client, space):
    grid_branch_for(space.a1)
    PartyMemberFactory(id_number=make_id_number(7), phone="13812345678")
    EnterpriseFactory(community=space.a)
    GridWorkerFactory(community=space.a, phone="13900001111")
    for model in MODELS:
        assert admin_client.get(reverse(f"admin:orgs_{model}_changelist")).status_code == 200, model
        assert admin_client.get(reverse(f"admin:orgs_{model}_add")).status_code == 200, model


@pytest.mark.django_db
def test_tree_refusal_is_a_form_error_not_a_500(admin_client, space):
    org_a = community_org_for(space.a)
    before = PartyOrganisation.objects.count()
    response = admin_client.post(
        reverse("admin:orgs_partyorganisation_add"),
        {
            "name": "错挂支部",
            "code": "ADM1",
            "kind": "grid_branch",
            "level": "branch",
            "parent": org_a.pk,
            "grid_cell": space.b1.pk,
            "seats-TOTAL_FORMS": 0,
            "seats-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 200
    assert "不在上级社区党组织所在社区内" in response.content.decode()
    assert PartyOrganisation.objects.count() == before

    response = admin_client.post(
        reverse("admin:orgs_partyorganisation_add"),
        {
            "name": "第一网格党支部",
            "code": "ADM2",
            "kind": "grid_branch",
            "level": "branch",
            "parent": org_a.pk,
            "grid_cell": space.a1.pk,
            "seats-TOTAL_FORMS": 0,
            "seats-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    created = PartyOrganisation.objects.get(code="ADM2")
    assert created.street == space.street and created.term_years == 3


@pytest.mark.django_db
def test_member_personal_data_is_encrypted_and_masked_in_admin(admin_client):
    id_number = make_id_number(8)
    response = admin_client.post(
        reverse("admin:orgs_partymember_add"),
        {
            "name": "张三",
            "gender": "male",
            "status": "full",
            "category": "employed",
            "id_number": id_number,
            "phone": "13812345678",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    member = PartyMember.objects.get(name="张三")
    assert pii.pii_reveal(member.id_number_cipher) == id_number

    page = admin_client.get(reverse("admin:orgs_partymember_changelist")).content.decode()
    assert pii.mask_id_number(id_number) in page and "138****5678" in page
    assert id_number not in page and member.id_number_cipher not in page
    change = admin_client.get(reverse("admin:orgs_partymember_change", args=[member.pk])).content.decode()
    assert (
        id_number not in change
        and member.id_number_cipher not in change
        and member.id_number_hash not in change
    )

    # Exact search by ID number goes through the hash.
    found = admin_client.get(reverse("admin:orgs_partymember_changelist"), {"q": id_number}).content.decode()
    assert "张三" in found

    # A second member with the same ID number: a form error, nothing written.
    response = admin_client.post(
        reverse("admin:orgs_partymember_add"),
        {
            "name": "李四",
            "gender": "male",
            "status": "full",
            "category": "employed",
            "id_number": id_number,
        },
    )
    assert response.status_code == 200 and "已登记为党员" in response.content.decode()
    assert PartyMember.objects.count() == 1
