"""Plausibility checks of roster values (orgs.plausibility): what a clerk would refuse is refused
with a stable code and a Chinese message; what a clerk types for a good value is accepted and
normalised. No database: the checks are pure and take `today`."""

from datetime import date

import pytest
from stdnum.cn import ric, uscc

from edge.errors import DomainError
from orgs import pii, plausibility
from orgs.errors import PiiInvalid
from orgs.plausibility import (
    check_birth_date,
    check_credit_code,
    check_id_number,
    check_join_date,
    check_phone,
)

TODAY = date(2025, 7, 1)


def id_number(birth: str, *, area: str = "440803", seq: str = "123") -> str:
    """A synthetic ID number with a correct check character, computed by python-stdnum."""
    first17 = f"{area}{birth}{seq}"
    return first17 + ric.calc_check_digit(first17 + "0")


def credit_code(first17: str) -> str:
    return first17 + uscc.calc_check_digit(first17 + "0")


def refused(call, *args, **kwargs) -> DomainError:
    with pytest.raises(DomainError) as err:
        call(*args, **kwargs)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in err.value.message), err.value.message
    return err.value


# --- 身份证号 ---------------------------------------------------------------------------------


def test_a_well_formed_id_number_is_accepted_and_normalised():
    number = id_number("19800101")
    assert check_id_number(number, today=TODAY) == number
    # As typed: spaces, full-width digits (a Chinese IME's default), a lower-case x.
    spaced = f"{number[:6]} {number[6:14]} {number[14:]}"
    assert check_id_number(spaced, today=TODAY) == number
    full_width = number.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert check_id_number(full_width, today=TODAY) == number
    with_x = next(n for s in range(1000) if (n := id_number("19800101", seq=f"{s:03d}")).endswith("X"))
    assert check_id_number(with_x.lower(), today=TODAY) == with_x


def test_id_number_with_a_wrong_check_character_is_refused():
    number = id_number("19800101")
    wrong = number[:17] + ("0" if number[17] != "0" else "1")
    err = refused(check_id_number, wrong, today=TODAY)
    assert isinstance(err, PiiInvalid)
    assert (err.code, err.detail["reason"], err.detail["field"]) == (
        "id_number_invalid",
        "checksum",
        "id_number",
    )


@pytest.mark.parametrize(
    "value", ["", "44080319800101123", "440803800101123", "44080319800101123Y", "身份证"]
)
def test_id_number_of_the_wrong_shape_is_refused(value):
    err = refused(check_id_number, value, today=TODAY)
    assert (err.code, err.detail["reason"]) == ("id_number_invalid", "format")


def test_id_number_with_an_impossible_birth_date_is_refused():
    err = refused(check_id_number, id_number("19990231"), today=TODAY)
    assert (err.code, err.detail["reason"]) == ("id_number_invalid", "birth_date")
    assert "19990231" in err.message


def test_id_number_born_after_today_is_refused():
    err = refused(check_id_number, id_number("20250702"), today=TODAY)
    assert (err.code, err.detail["reason"]) == ("id_number_invalid", "birth_date_future")
    assert check_id_number(id_number("20250701"), today=TODAY)  # born today: a number exists


def test_id_number_with_an_unknown_area_code_is_refused():
    err = refused(check_id_number, id_number("19800101", area="449999"), today=TODAY)
    assert (err.code, err.detail["reason"]) == ("id_number_invalid", "area_code")


def test_area_codes_are_accepted_whatever_the_birth_year():
    # python-stdnum's own validate() refuses these two: 霞山区 (440803) is listed from 1984 and
    # 商水县's old code 412723 until 2000, yet people born before 1984 / after 2000 carry them.
    for number in (id_number("19800101"), id_number("20050101", area="412723")):
        with pytest.raises(Exception):  # noqa: B017, PT011 - any stdnum ValidationError
            ric.validate(number)
        assert check_id_number(number, today=TODAY) == number


def test_every_path_through_pii_gets_the_same_id_check():
    with pytest.raises(PiiInvalid) as err:
        pii.normalise_id_number(id_number("19990231"))
    assert err.value.code == "id_number_invalid"
    assert pii.id_number_check_digit(id_number("19800101")[:17]) == id_number("19800101")[17]


# --- 联系电话 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("138 0013 8000", "13800138000"),
        ("138-0013-8000", "13800138000"),
        ("+86 13800138000", "13800138000"),
        ("8613800138000", "13800138000"),
        ("０７５９－１２３４５６７", "07591234567"),
        ("0759-1234567", "07591234567"),
        ("(0759)1234567", "07591234567"),
        ("020-12345678", "02012345678"),
        ("+852 9123 4567", "+85291234567"),
    ],
)
def test_phone_numbers_as_typed_are_accepted_in_the_stored_form(typed, stored):
    assert check_phone(typed) == stored
    assert pii.normalise_phone(typed) == stored  # the services' and selectors' path


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("12345", "not_a_number"),
        ("12345678901", "not_a_number"),  # 11 digits, but no such mobile prefix
        ("1234567", "not_a_number"),  # a fixed line without its area code
        ("075912345678", "not_a_number"),  # Zhanjiang numbers have 7 digits after 0759
        ("abc", "format"),
        ("电话" * 30, "format"),
        ("400-812-3123", "type"),  # a company's service line, not a person's phone
        ("0759-1234567 ext. 8", "extension"),
    ],
)
def test_what_is_not_a_phone_number_is_refused(typed, reason):
    err = refused(check_phone, typed)
    assert isinstance(err, PiiInvalid)
    assert (err.code, err.detail["reason"]) == ("phone_invalid", reason)


# --- 统一社会信用代码 -------------------------------------------------------------------------


def test_credit_codes_with_a_correct_check_character_are_accepted():
    enterprise = credit_code("91440803MA51ABCD1")
    assert check_credit_code(enterprise) == enterprise
    assert check_credit_code(f" {enterprise[:8]}-{enterprise[8:].lower()} ") == enterprise
    # A village collective (农业 N) and a social organisation (民政 5).
    for code in (credit_code("N2440803MA51ABCD1"), credit_code("51440803MJ1234567")):
        assert check_credit_code(code) == code


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("91440803MA51ABCD1", "format"),  # 17 characters
        ("91440803MA51ABCDI" + "0", "format"),  # I is not in the code's alphabet
        ("B1440803MA51ABCD10", "format"),  # no registering authority B
        ("", "format"),
    ],
)
def test_credit_codes_of_the_wrong_shape_are_refused(value, reason):
    err = refused(check_credit_code, value)
    assert (err.code, err.detail["reason"]) == ("credit_code_invalid", reason)


def test_credit_code_with_a_wrong_check_character_is_refused():
    for good in (credit_code("91440803MA51ABCD1"), credit_code("N2440803MA51ABCD1")):
        wrong = good[:17] + ("1" if good[17] != "1" else "2")
        err = refused(check_credit_code, wrong)
        assert (err.code, err.detail["reason"]) == ("credit_code_invalid", "checksum")


# --- 出生日期、入党日期 -----------------------------------------------------------------------


def test_birth_date_of_an_adult_is_accepted():
    assert check_birth_date(date(1980, 1, 1), today=TODAY) == date(1980, 1, 1)
    assert check_birth_date(date(2007, 7, 1), today=TODAY)  # 18 today
    assert check_birth_date(date(1980, 1, 1), today=TODAY, id_number=id_number("19800101"))


@pytest.mark.parametrize(
    ("born", "reason"),
    [
        (date(2025, 7, 2), "future"),
        (date(1905, 7, 1), "too_old"),
        (date(2007, 7, 2), "under_age"),  # 18 tomorrow
        (date(2015, 3, 1), "under_age"),
    ],
)
def test_implausible_birth_dates_are_refused(born, reason):
    err = refused(check_birth_date, born, today=TODAY)
    assert (err.code, err.detail["reason"]) == ("birth_date_implausible", reason)


def test_birth_date_must_agree_with_the_id_number():
    err = refused(check_birth_date, date(1980, 1, 2), today=TODAY, id_number=id_number("19800101"))
    assert err.code == "birth_date_mismatch" and "1980-01-01" in err.message


def test_join_date_in_the_future_is_refused():
    err = refused(check_join_date, date(2025, 7, 2), birth_date=date(1980, 1, 1), today=TODAY)
    assert err.code == "joined_on_future"
    err = refused(check_join_date, date(2025, 7, 2), birth_date=None, today=TODAY)
    assert err.code == "joined_on_future"
    assert check_join_date(TODAY, birth_date=date(1980, 1, 1), today=TODAY) == TODAY


def test_join_date_before_the_18th_birthday_is_refused():
    born = date(1980, 5, 10)
    err = refused(check_join_date, date(1998, 5, 9), birth_date=born, today=TODAY)
    assert err.code == "joined_under_age" and "1998-05-10" in err.message
    assert refused(check_join_date, date(1970, 1, 1), birth_date=born, today=TODAY).code == "joined_under_age"
    assert check_join_date(date(1998, 5, 10), birth_date=born, today=TODAY) == date(1998, 5, 10)
    assert check_join_date(date(1960, 1, 1), birth_date=None, today=TODAY)  # birth unknown: not judged


def test_a_29_february_birthday_comes_of_age_on_28_february():
    born = date(2000, 2, 29)
    assert plausibility.anniversary(born, 18) == date(2018, 2, 28)
    assert check_join_date(date(2018, 2, 28), birth_date=born, today=TODAY)
    assert (
        refused(check_join_date, date(2018, 2, 27), birth_date=born, today=TODAY).code == "joined_under_age"
    )


@pytest.mark.django_db
def test_the_member_service_refuses_the_same_values_and_writes_nothing():
    from orgs.models import PartyMember
    from tests.orgs_factories import PartyMemberFactory

    with pytest.raises(PiiInvalid) as err:
        PartyMemberFactory(id_number=id_number("19990231"))
    assert err.value.code == "id_number_invalid"
    with pytest.raises(PiiInvalid) as err:
        PartyMemberFactory(id_number=id_number("19800101"), phone="12345678901")
    assert err.value.code == "phone_invalid"
    assert PartyMember.objects.count() == 0
