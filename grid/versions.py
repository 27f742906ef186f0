"""Community data versions in Redis, so that a map cache key needs no database round trip.

`grid_community.data_version` is the truth: grid.changes bumps it in the writing transaction.
Redis holds a copy per community (`version_key`) that the tile cache reads (mapping.tiles):

- a bump (grid.sql.bump_data_versions) deletes the copies at once, inside its transaction, and
  after the commit raises them to the numbers it committed. In between, a reader misses, reads
  the database and stores what it read, which is the truth until the commit;
- a copy is only ever raised, never lowered (the Lua script `_RAISE` compares): a reader that read
  the old number before the commit and stores it after the writer's raise leaves the writer's
  number in place, and two writers' callbacks arriving out of order leave the higher;
- a copy lives VERSION_TTL: a process killed between its commit and its raise (or Redis
  unreachable at that moment) leaves the number a reader stored before the commit, and that is
  wrong for at most VERSION_TTL. No other case leaves a copy behind the database;
- Redis unreachable: the database answers, one statement per request, and the error is logged.

The outlines epoch (`OUTLINES_KEY`): which communities a tile meets depends on their outlines, so
mapping.tiles caches that set per tile under the epoch current when it was read. grid.changes
replaces the epoch (a new random token, never a counter that could start again at a number an
old entry holds) whenever an outline changes (communities_changed(outlines=True): a community
created or redrawn), inside the transaction and again after the commit.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction
from redis.exceptions import RedisError

from grid import fastcache
from grid.models import Community

logger = logging.getLogger(__name__)

COMMUNITY = Community._meta.db_table
VERSION_TTL = 300
OUTLINES_KEY = "grid:outlines"
OUTLINES_TTL = 24 * 3600

# KEYS: the copies; ARGV[1]: their TTL, ARGV[1 + i]: the number for KEYS[i]. Sets a copy that is
# missing or lower, leaves a higher one (see the module docstring).
_RAISE = """
for i, key in ipairs(KEYS) do
    local new = tonumber(ARGV[i + 1])
    local old = tonumber(redis.call('GET', key))
    if old == nil or old < new then
        redis.call('SET', key, ARGV[i + 1], 'EX', ARGV[1])
    end
end
return 0
"""


def version_key(community_id: int) -> str:
    """The cache key (django.core.cache, before its prefix) of a community's data version. The
    value is a plain integer, which Django's Redis serializer stores as its digits."""
    return f"grid:data_version:{community_id}"


def _raise(versions: Mapping[int, int], client: Any = None) -> None:
    if not versions:
        return
    if client is None:  # not `or`: a pipeline with nothing queued yet is falsy
        client = fastcache.client()
    if client is None:
        # Not Redis (a local-memory cache): no compare-and-set, and no other process to race with.
        cache.set_many({version_key(c): v for c, v in versions.items()}, timeout=VERSION_TTL)
        return
    # Keys made as Django's cache makes them; the numbers stored as its serializer stores ints.
    keys = [cache.make_key(version_key(c)) for c in versions]
    client.eval(_RAISE, len(keys), *keys, VERSION_TTL, *versions.values())


def versions_seen(versions: Mapping[int, int], *, batch: fastcache.Batch | None = None) -> None:
    """Store versions just read from the database (raising Redis's copies, never lowering them),
    now or with `batch`."""
    if batch is not None:
        numbers = dict(versions)
        batch.call(lambda client: _raise(numbers, client))
        return
    try:
        _raise(versions)
    except RedisError:
        logger.exception(
            "数据版本未能写入缓存（社区 %s），将在 %s 秒内过期重读", sorted(versions), VERSION_TTL
        )


def versions_committed(versions: Mapping[int, int]) -> None:
    """Called by grid.sql.bump_data_versions with the numbers it wrote (module docstring)."""
    if not versions:
        return
    try:
        cache.delete_many([version_key(c) for c in versions])
    except RedisError:
        logger.exception("数据版本缓存不可用（社区 %s）", sorted(versions))
    numbers = dict(versions)
    transaction.on_commit(lambda: versions_seen(numbers))


def versions_from_database(community_ids: Iterable[int]) -> dict[int, int]:
    """The committed versions of these communities (a community that no longer exists is left
    out), stored in Redis on the way."""
    ids = sorted(set(community_ids))
    if not ids:
        return {}
    with connection.cursor() as cursor:
        # Raw: the hot path of every tile whose versions Redis lacks; one indexed statement.
        cursor.execute(f'SELECT id, data_version FROM "{COMMUNITY}" WHERE id = ANY(%s)', [ids])  # noqa: S608
        found = {int(i): int(v) for i, v in cursor.fetchall()}
    versions_seen(found)
    return found


def community_versions(community_ids: Iterable[int]) -> dict[int, int]:
    """The data versions of these communities: from Redis, the missing ones from the database."""
    ids = sorted(set(community_ids))
    if not ids:
        return {}
    try:
        cached = fastcache.get_many([version_key(c) for c in ids])
    except RedisError:
        logger.exception("数据版本缓存不可用，从数据库读取")
        cached = {}
    found: dict[int, int] = {}
    missing: list[int] = []
    for c in ids:
        value = cached.get(version_key(c))
        if isinstance(value, int):
            found[c] = value
        else:
            missing.append(c)
    if missing:
        found |= versions_from_database(missing)
    return found


def outlines_epoch(*, known: Any = None, batch: fastcache.Batch | None = None) -> str:
    """The current outlines epoch (`known`: the value a get_many just returned, if any); a new one
    is made when Redis has none. Redis unreachable: a fresh token, which matches no entry.

    With `batch`, a new epoch is stored with the batch, where Redis has none by then: if another
    request stored one first, what this one stores under its own is never read; harmless."""
    if isinstance(known, str):
        return known
    fresh = secrets.token_hex(8)
    if batch is not None:
        batch.add(OUTLINES_KEY, fresh, timeout=OUTLINES_TTL)
        return fresh
    try:
        value = fastcache.add_or_get(OUTLINES_KEY, fresh, timeout=OUTLINES_TTL)
    except RedisError:
        logger.exception("地图缓存不可用（社区边界版本）")
        return secrets.token_hex(8)
    return value if isinstance(value, str) else fresh


def _new_outlines_epoch() -> None:
    try:
        cache.set(OUTLINES_KEY, secrets.token_hex(8), timeout=OUTLINES_TTL)
    except RedisError:
        logger.exception("地图缓存不可用（社区边界版本未更新）")


def outlines_changed() -> None:
    """A community's outline changed in this transaction (or one was created): every tile's set
    of communities must be read again. Now (this transaction's own reads) and after the commit
    (what other connections read in between, before the commit was visible)."""
    _new_outlines_epoch()
    transaction.on_commit(_new_outlines_epoch)
