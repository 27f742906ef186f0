"""Personal data is encrypted at rest, findable through its keyed hash, shown masked, never doubled."""

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from orgs import pii, selectors, services
from orgs.errors import DuplicatePerson, PiiInvalid
from orgs.models import GridWorker, PartyMember
from tests.orgs_factories import GridWorkerFactory, PartyMemberFactory, make_id_number

ID = make_id_number(123)
PHONE = "13812345678"


def _raw_row(model, pk) -> str:
    with connection.cursor() as cur:
        cur.execute(f'SELECT row_to_json(t)::text FROM "{model._meta.db_table}" t WHERE id = %s', [pk])  # noqa: S608
        return cur.fetchone()[0]


@pytest.mark.django_db
def test_id_number_and_phone_are_not_stored_in_clear():
    member = PartyMemberFactory(id_number=ID, phone="138-1234-5678")
    raw = _raw_row(PartyMember, member.pk)
    assert ID not in raw and PHONE not in raw and ID[-4:] + '"' not in raw
    assert member.id_number_cipher and member.id_number_hash and member.phone_cipher

    stored = PartyMember.objects.get(pk=member.pk)
    assert pii.pii_reveal(stored.id_number_cipher) == ID
    assert pii.pii_reveal(stored.phone_cipher) == PHONE  # normalised: dashes gone
    assert stored.id_number_masked == ID[:6] + "********" + ID[-4:]
    assert stored.phone_masked == "138****5678"


def test_masks():
    assert pii.mask_id_number("440803198001011234") == "440803********1234"
    assert pii.mask_phone("13812345678") == "138****5678"
    assert pii.mask_phone("") == "" and pii.mask_id_number("") == ""


@pytest.mark.django_db
def test_duplicate_id_number_is_refused_through_the_hash():
    PartyMemberFactory(id_number=ID)
    with pytest.raises(DuplicatePerson) as err:
        PartyMemberFactory(id_number=" " + ID.lower() + " ")  # same person, typed differently
    assert err.value.code == "member_duplicate_id_number"
    assert PartyMember.objects.count() == 1


@pytest.mark.django_db
def test_look_up_by_id_number_and_phone():
    member = PartyMemberFactory(id_number=ID, phone=PHONE)
    PartyMemberFactory(id_number=make_id_number(124))
    assert selectors.party_member_by_id_number(id_number=ID) == member
    assert list(selectors.party_members_by_phone(phone="+86 138 1234 5678")) == [member]


@pytest.mark.django_db
def test_invalid_id_number_is_refused_and_nothing_written():
    bad = ID[:17] + ("0" if ID[17] != "0" else "1")
    with pytest.raises(PiiInvalid) as err:
        PartyMemberFactory(id_number=bad)
    assert err.value.code == "id_number_invalid"
    assert PartyMember.objects.count() == 0


@pytest.mark.django_db
def test_update_replaces_or_keeps_personal_data():
    member = PartyMemberFactory(id_number=ID, phone=PHONE)
    services.party_member_update(member=member, name="改名")
    member.refresh_from_db()
    assert member.name == "改名" and pii.pii_reveal(member.id_number_cipher) == ID
    services.party_member_update(member=member, phone="")
    member.refresh_from_db()
    assert member.phone_cipher == "" and member.phone_hash is None


@pytest.mark.django_db
def test_keys_rotate_first_encrypts_all_decrypt(settings):
    member = PartyMemberFactory(id_number=ID)
    settings.PII_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.PII_ENCRYPTION_KEYS]
    assert PartyMember.objects.get(pk=member.pk).id_number_masked.endswith(ID[-4:])
    settings.PII_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(PiiInvalid):
        pii.pii_reveal(PartyMember.objects.get(pk=member.pk).id_number_cipher)


@pytest.mark.django_db
def test_grid_worker_phone_is_encrypted(space):
    worker = GridWorkerFactory(community=space.a, phone=PHONE, grid_cells=[space.a1])
    assert PHONE not in _raw_row(GridWorker, worker.pk)
    assert GridWorker.objects.get(pk=worker.pk).phone_masked == "138****5678"
