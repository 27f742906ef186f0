"""Personal data (身份证号, phone) at rest: encrypted, with a keyed hash beside it.

Why explicit helpers and two plain columns rather than a transparent "encrypted field": the
cipher text (Fernet) and the keyed hash (HMAC-SHA256) are both derived from one clear value and
must be written together; a custom field can only write its own column. Keeping the clear value
out of model attributes also keeps it out of admin change logs, serializers and repr() by
default: only a service that is handed a clear value encrypts it, and only `pii_reveal` (an
explicit, greppable call) decrypts one.

- `*_cipher` (text, Fernet token): decryptable with any key of settings.PII_ENCRYPTION_KEYS
  (MultiFernet: the first encrypts, all decrypt, so keys rotate without a flag day).
- `*_hash` (hex HMAC-SHA256 keyed with settings.PII_HASH_KEY over the *normalised* value): exact
  look-ups and duplicate checks (a partial unique index) without decrypting. A plain SHA-256
  would not do: ID numbers have so little entropy that an unkeyed hash is a lookup table away.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from orgs import plausibility
from orgs.errors import PiiInvalid


@dataclass(frozen=True)
class Sealed:
    """A clear value sealed for storage: what goes into the `*_cipher` and `*_hash` columns."""

    cipher: str
    hash: str


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("未配置 PII_ENCRYPTION_KEYS，无法加密个人信息")
    return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])


def _keys() -> MultiFernet:
    return _fernet(tuple(settings.PII_ENCRYPTION_KEYS))


def id_number_check_digit(first17: str) -> str:
    """The GB 11643-1999 check character of an 18-character 居民身份证号码."""
    return plausibility.id_number_check_digit(first17)


def normalise_id_number(value: str) -> str:
    """Upper-case, no spaces; refused (PiiInvalid, id_number_invalid) unless a clerk would accept
    it: check character, a real birth date not after today, a known area code (orgs.plausibility).
    Every write and every look-up goes through here, so all paths judge a number alike."""
    return plausibility.check_id_number(value, today=timezone.localdate())


def normalise_phone(value: str) -> str:
    """A valid mobile or fixed-line number as dialled in China (07591234567, 13800138000), or
    PiiInvalid (phone_invalid); see orgs.plausibility.check_phone."""
    return plausibility.check_phone(value)


def keyed_hash(normalised: str) -> str:
    key = settings.PII_HASH_KEY
    if not key:
        raise ImproperlyConfigured("未配置 PII_HASH_KEY，无法生成个人信息索引")
    return hmac.new(key.encode(), normalised.encode(), hashlib.sha256).hexdigest()


def seal(normalised: str) -> Sealed:
    return Sealed(cipher=_keys().encrypt(normalised.encode()).decode(), hash=keyed_hash(normalised))


def seal_id_number(value: str) -> Sealed:
    return seal(normalise_id_number(value))


def seal_phone(value: str) -> Sealed:
    return seal(normalise_phone(value))


def id_number_hash(value: str) -> str:
    """The look-up key for an ID number as a person would type it."""
    return keyed_hash(normalise_id_number(value))


def phone_hash(value: str) -> str:
    return keyed_hash(normalise_phone(value))


def pii_reveal(cipher: str) -> str:
    """Decrypt a stored value. Empty stays empty; a token no configured key opens is an error."""
    if not cipher:
        return ""
    try:
        return _keys().decrypt(cipher.encode()).decode()
    except InvalidToken as exc:
        raise PiiInvalid("个人信息无法解密（密钥不匹配）", code="pii_key_mismatch") from exc


def mask_id_number(clear: str) -> str:
    """440803********1234: the area code and the last four, what a clerk needs to tell people apart."""
    if not clear:
        return ""
    if len(clear) <= 10:
        return "*" * len(clear)
    return clear[:6] + "*" * (len(clear) - 10) + clear[-4:]


def mask_phone(clear: str) -> str:
    """138****5678 for mobiles; for other numbers all but the first three and last two hidden."""
    if not clear:
        return ""
    if len(clear) == 11:
        return clear[:3] + "****" + clear[-4:]
    if len(clear) <= 5:
        return "*" * len(clear)
    return clear[:3] + "*" * (len(clear) - 5) + clear[-2:]
