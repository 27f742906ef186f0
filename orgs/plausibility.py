"""Would a clerk accept this value? One check per roster field, for every path that writes one.

Each check takes one value (plus what it is judged against: today, the birth date) and returns it
normalised, or raises a DomainError with a stable code and a Chinese message saying what is wrong.
Pure functions: no ORM, no settings, `today` passed in, so the roster import, the services, the
admin and the API all judge a value the same way and tests can pin the calendar.

Well-kept libraries do the parts that have a standard, where they fit:
- 公民身份号码 (GB 11643-1999): python-stdnum's `cn.ric` computes the check character and reads the
  birth date. Its `validate` is not used whole: it also requires the 6-digit area code to have
  existed in the person's birth year, and that refuses real people (python-stdnum issue #442).
  Numbers are assigned when a person is first registered, not always at birth, and keep their
  code after the county is renamed or merged (440803 霞山区 is listed from 1984; members born
  before that carry it). So the area code must merely appear in the code table, in any year.
- 统一社会信用代码 (GB 32100-2015): python-stdnum's `cn.uscc` for codes issued by an authority
  with a digit code (工商 9, 民政 5, 机构编制 1, ...); it refuses the letter authorities the
  standard also has (A 军队编制, N 农业 for 农村集体经济组织, Y 其他), which a community's
  集体经济组织 holds, so those are checked against the same alphabet and check character here.
- Telephone numbers: Google's libphonenumber (`phonenumbers`), region CN.

Error codes (stable; `detail["field"]` names the field, `detail["reason"]` the failed part where a
code covers several): id_number_invalid, phone_invalid, credit_code_invalid,
birth_date_implausible, birth_date_mismatch, joined_on_future, joined_under_age.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

import phonenumbers
from stdnum import numdb
from stdnum.cn import ric, uscc
from stdnum.exceptions import ValidationError

from orgs.errors import OrgError, PiiInvalid

# The Party constitution (第一章第一条): a member must have reached 18 years of age.
MIN_MEMBER_AGE = 18
# The oldest people alive are around 116: an older birth date is a typing error (1889 for 1989).
MAX_AGE = 120

_ID_RE = re.compile(r"^\d{17}[\dX]$")
_USCC_RE = re.compile(r"^[1-9ANY][0-9A-HJ-NP-RTUWXY]\d{6}[0-9A-HJ-NP-RTUWXY]{10}$")
_PHONE_TYPES = {
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
}
# libphonenumber refuses longer input anyway; a cap keeps a pasted paragraph out of its parser.
_PHONE_MAX_CHARS = 40


def _clean(value: str | None) -> str:
    """Full-width digits and letters (a Chinese IME's default) as ASCII, no whitespace, upper case."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", value or "")).upper()


def anniversary(born: date, years: int) -> date:
    """The day `born` is `years` old. The Civil Code (art. 202) ends a period counted in years on
    the same day of the month, or the month's last day when it has no such day: one born on
    29 February comes of age on 28 February of a common year."""
    try:
        return born.replace(year=born.year + years)
    except ValueError:
        return born.replace(year=born.year + years, day=28)


# ---------------------------------------------------------------------------------------------
# 身份证号


def _id_invalid(message: str, reason: str) -> PiiInvalid:
    return PiiInvalid(message, code="id_number_invalid", detail={"field": "id_number", "reason": reason})


def _area_code_known(area: str) -> bool:
    """Whether a 6-digit administrative code appears in python-stdnum's table, in any year."""
    found = {k: v for _part, props in numdb.get("cn/loc").info(area) for k, v in props.items()}
    return bool(found.get("county"))


def id_number_check_digit(first17: str) -> str:
    """The GB 11643-1999 check character for the first 17 digits of an ID number."""
    # ric.calc_check_digit takes a whole number and ignores its last character.
    return ric.calc_check_digit(first17 + "0")


def id_number_birth_date(normalised: str) -> date:
    """The birth date an ID number carries (digits 7–14). For a number check_id_number accepted."""
    return ric.get_birth_date(normalised)


def check_id_number(value: str, *, today: date) -> str:
    """18 characters, a correct check character, a birth date that exists and is not after today,
    and a known area code. Returns the number upper-case without spaces."""
    v = _clean(value)
    if not _ID_RE.match(v):
        raise _id_invalid("身份证号格式不正确（应为18位，末位校验码须正确）", "format")
    if ric.calc_check_digit(v) != v[17]:
        raise _id_invalid("身份证号格式不正确（应为18位，末位校验码须正确）", "checksum")
    try:
        born = ric.get_birth_date(v)
    except ValidationError:
        raise _id_invalid(f"身份证号中的出生日期{v[6:14]}不存在", "birth_date") from None
    if born > today:
        raise _id_invalid(f"身份证号中的出生日期{born:%Y-%m-%d}晚于今天", "birth_date_future")
    if not _area_code_known(v[:6]):
        raise _id_invalid(f"身份证号前6位{v[:6]}不是有效的行政区划代码", "area_code")
    return v


# ---------------------------------------------------------------------------------------------
# 联系电话


def check_phone(value: str) -> str:
    """A mobile or fixed-line number as a clerk types it ("138 0013 8000", "0759-1234567",
    "+86 13800138000"). Returns a Chinese number as the digits dialled inside China (trunk 0 kept
    for fixed lines: 07591234567), the form stored and hashed before this check existed, and any
    other country's number in E.164 (+85291234567)."""
    text = unicodedata.normalize("NFKC", value or "").strip()
    try:
        if len(text) > _PHONE_MAX_CHARS:
            raise phonenumbers.NumberParseException(phonenumbers.NumberParseException.TOO_LONG, text)
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        raise PiiInvalid(
            "电话号码无法识别（应为11位手机号，或带区号的固定电话，如 0759-1234567）",
            code="phone_invalid",
            detail={"field": "phone", "reason": "format"},
        ) from None
    if number.extension:
        raise PiiInvalid(
            "电话号码请勿带分机号", code="phone_invalid", detail={"field": "phone", "reason": "extension"}
        )
    if not phonenumbers.is_valid_number(number):
        raise PiiInvalid(
            "电话号码不存在（手机号应为11位且号段有效，固定电话须带区号，如 0759-1234567）",
            code="phone_invalid",
            detail={"field": "phone", "reason": "not_a_number"},
        )
    if phonenumbers.number_type(number) not in _PHONE_TYPES:
        raise PiiInvalid(
            "该号码不是手机号或固定电话（如400、800等服务号码），请填写本人联系电话",
            code="phone_invalid",
            detail={"field": "phone", "reason": "type"},
        )
    if number.country_code == 86:
        national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        return re.sub(r"\D", "", national)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# ---------------------------------------------------------------------------------------------
# 统一社会信用代码


def check_credit_code(value: str) -> str:
    """An 18-character 统一社会信用代码 with a correct check character. Returns it upper-case
    without spaces or dashes."""
    v = _clean(value).replace("-", "")
    problem = None
    if len(v) != 18 or not _USCC_RE.match(v):
        problem = "format"
    elif v[0].isdigit() and v[1].isdigit():
        try:
            uscc.validate(v)
        except ValidationError:
            problem = "checksum"
    elif uscc.calc_check_digit(v) != v[17]:  # a letter authority (A, N, Y): see the module docstring
        problem = "checksum"
    if problem:
        raise OrgError(
            "统一社会信用代码不正确（应为18位数字或大写字母，末位校验码须正确）",
            code="credit_code_invalid",
            detail={"field": "credit_code", "reason": problem},
        )
    return v


# ---------------------------------------------------------------------------------------------
# 出生日期、入党日期


def check_birth_date(birth_date: date, *, today: date, id_number: str | None = None) -> date:
    """A party member's birth date: not after today, not more than MAX_AGE years ago, at least
    MIN_MEMBER_AGE years ago, and the one the ID number carries when one is given (normalised)."""
    if id_number is not None and id_number_birth_date(id_number) != birth_date:
        raise OrgError(
            f"出生日期{birth_date:%Y-%m-%d}与身份证号中的出生日期"
            f"{id_number_birth_date(id_number):%Y-%m-%d}不一致",
            code="birth_date_mismatch",
            detail={"field": "birth_date"},
        )
    if birth_date > today:
        reason, message = "future", f"出生日期{birth_date:%Y-%m-%d}晚于今天"
    elif anniversary(birth_date, MAX_AGE) <= today:
        reason, message = "too_old", f"出生日期{birth_date:%Y-%m-%d}距今超过{MAX_AGE}年，请核对"
    elif anniversary(birth_date, MIN_MEMBER_AGE) > today:
        reason, message = (
            "under_age",
            f"按出生日期{birth_date:%Y-%m-%d}，该人未满{MIN_MEMBER_AGE}周岁，不能是党员",
        )
    else:
        return birth_date
    raise OrgError(message, code="birth_date_implausible", detail={"field": "birth_date", "reason": reason})


def check_join_date(joined_on: date, *, birth_date: date | None, today: date) -> date:
    """入党日期: not after today, and on or after the member's 18th birthday when the birth date
    is known (the Party constitution's minimum age)."""
    if joined_on > today:
        raise OrgError(
            f"入党日期{joined_on:%Y-%m-%d}晚于今天", code="joined_on_future", detail={"field": "joined_on"}
        )
    if birth_date is not None and joined_on < anniversary(birth_date, MIN_MEMBER_AGE):
        raise OrgError(
            f"入党日期{joined_on:%Y-%m-%d}时未满{MIN_MEMBER_AGE}周岁"
            f"（出生日期{birth_date:%Y-%m-%d}，{anniversary(birth_date, MIN_MEMBER_AGE):%Y-%m-%d}年满"
            f"{MIN_MEMBER_AGE}周岁）",
            code="joined_under_age",
            detail={"field": "joined_on"},
        )
    return joined_on
