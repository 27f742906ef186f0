"""A user's reach, cached in Redis for the map's tiles (hundreds of requests per page view).

grid.access.reach_for_user reads the user's active role assignments: one statement, which a
cached tile would otherwise pay on every request. Here the reach is kept per user under the
*roles epoch* current when it was read, and used only while the epoch is still current:

- grid.roles replaces the epoch on every grant and revoke (`roles_changed`), inside the
  transaction (so the transaction's own next reads miss) and again after the commit (so a reach
  another connection read before the commit was visible is not used either);
- the epoch is a random token, never a counter: after Redis lost the key, no old entry can
  match a new epoch by chance;
- what no assignment says (a user made inactive or a superuser, in the admin) is not covered by
  the epoch: an entry lives REACH_TTL at most, so such a change reaches the tiles within that
  (signing in again is checked on every uncached request anyway);
- Redis unreachable: the reach is read from the database, as before.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from django.core.cache import cache
from django.db import transaction
from redis.exceptions import RedisError

from grid import fastcache
from grid.access import Reach, reach_for_user

logger = logging.getLogger(__name__)

ROLES_EPOCH_KEY = "grid:roles_epoch"
ROLES_EPOCH_TTL = 24 * 3600
REACH_TTL = 60


def _reach_key(user_id: int) -> str:
    return f"grid:reach:{user_id}"


def roles_epoch(*, known: Any = None, batch: fastcache.Batch | None = None) -> str:
    """The current roles epoch (`known`: what a get_many just returned for ROLES_EPOCH_KEY, if
    anything); made when Redis has none (stored with `batch` if given: see
    grid.versions.outlines_epoch)."""
    if isinstance(known, str):
        return known
    fresh = secrets.token_hex(8)
    if batch is not None:
        batch.add(ROLES_EPOCH_KEY, fresh, timeout=ROLES_EPOCH_TTL)
        return fresh
    value = fastcache.add_or_get(ROLES_EPOCH_KEY, fresh, timeout=ROLES_EPOCH_TTL)
    return value if isinstance(value, str) else fresh


def _new_roles_epoch() -> None:
    try:
        cache.set(ROLES_EPOCH_KEY, secrets.token_hex(8), timeout=ROLES_EPOCH_TTL)
    except RedisError:
        logger.exception("权限范围缓存不可用（角色版本未更新）")


def roles_changed() -> None:
    """A role assignment was granted or revoked in this transaction (grid.roles)."""
    _new_roles_epoch()
    transaction.on_commit(_new_roles_epoch)


def cached_reach(
    user: Any, *, known: Any = None, batch: fastcache.Batch | None = None
) -> tuple[Reach, str | None]:
    """`user`'s reach and the roles epoch it is valid under (None when Redis could not say).
    The epoch is read before the assignments, so a grant committed in between makes the entry
    stored here stale at once. `known`: the roles epoch as this request already read it; with
    `batch`, what is stored goes with the batch."""
    if user is None or not getattr(user, "is_authenticated", False) or user.pk is None:
        return reach_for_user(user), None
    try:
        keys = [_reach_key(user.pk)] if isinstance(known, str) else [ROLES_EPOCH_KEY, _reach_key(user.pk)]
        found = fastcache.get_many(keys)
        epoch = roles_epoch(
            known=known if isinstance(known, str) else found.get(ROLES_EPOCH_KEY), batch=batch
        )
    except RedisError:
        logger.exception("权限范围缓存不可用，从数据库读取")
        return reach_for_user(user), None
    entry = found.get(_reach_key(user.pk))
    if isinstance(entry, tuple) and len(entry) == 2 and entry[0] == epoch and isinstance(entry[1], Reach):
        return entry[1], epoch
    reach = reach_for_user(user)
    if batch is not None:
        batch.set(_reach_key(user.pk), (epoch, reach), timeout=REACH_TTL)
        return reach, epoch
    try:
        fastcache.set(_reach_key(user.pk), (epoch, reach), timeout=REACH_TTL)
    except RedisError:
        logger.exception("权限范围缓存不可用，未缓存")
    return reach, epoch
