"""Django's cache API for the map's hot path, without its per-call cost.

Django's RedisCache builds a new `redis.Redis` object for every call (RedisCacheClient.get_client),
and redis-py fills ~170 response callbacks in that constructor: ~0.12 ms a call on these servers,
more than the round trip it makes, and a cached tile makes three. The functions here keep one
client per cache backend (on the backend's client object, so a test that swaps CACHES gets its
own) and read and write exactly as Django's cache does: the same keys (`cache.make_key`) and the
same serializer, so each side reads what the other wrote. Errors are Redis's own (RedisError), as
with Django's cache. A cache that is not Redis (local memory) is used through Django's API.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.core.cache import cache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


def _backend() -> Any:
    return getattr(cache, "_cache", None)


def client() -> Any:
    """The Redis client of the default cache (None when the cache is not Redis)."""
    backend = _backend()
    if backend is None or not hasattr(backend, "get_client"):
        return None
    found = getattr(backend, "_wangge_client", None)
    if found is None:
        # A redis.Redis shares its connection pool across threads; one per backend object.
        found = backend.get_client(write=True)
        backend._wangge_client = found
    return found


def get_many(keys: Iterable[str]) -> dict[str, Any]:
    """Like cache.get_many: the keys that have a value, with it (one MGET)."""
    keys = list(keys)
    redis = client()
    if redis is None:
        return cache.get_many(keys)
    if not keys:
        return {}
    loads = _backend()._serializer.loads
    values = redis.mget([cache.make_key(k) for k in keys])
    return {k: loads(v) for k, v in zip(keys, values, strict=True) if v is not None}


def get(key: str) -> Any:
    """Like cache.get (None when missing)."""
    redis = client()
    if redis is None:
        return cache.get(key)
    value = redis.get(cache.make_key(key))
    return None if value is None else _backend()._serializer.loads(value)


def set(key: str, value: Any, *, timeout: int) -> None:  # noqa: A001 - the cache's own name
    """Like cache.set with a timeout in seconds."""
    redis = client()
    if redis is None:
        cache.set(key, value, timeout=timeout)
        return
    redis.set(cache.make_key(key), _backend()._serializer.dumps(value), ex=timeout)


def add_or_get(key: str, value: Any, *, timeout: int) -> Any:
    """The key's value if it has one, else `value`, stored (like cache.add then cache.get, in one
    round trip: SET NX GET, Redis 7)."""
    redis = client()
    if redis is None:
        cache.add(key, value, timeout=timeout)
        return cache.get(key, value)
    serializer = _backend()._serializer
    old = redis.set(cache.make_key(key), serializer.dumps(value), ex=timeout, nx=True, get=True)
    return value if old is None else serializer.loads(old)


class Batch:
    """Writes a request leaves for its end, sent as one pipeline (one round trip instead of one
    each). Only for writes whose order does not matter and whose loss is harmless: entries a
    later request can recompute, versions only ever raised, epochs set only where none is."""

    def __init__(self) -> None:
        self._ops: list[Callable[[Any], object]] = []

    def set(self, key: str, value: Any, *, timeout: int) -> None:  # noqa: A003 - the cache's own name
        self._ops.append(lambda r: _set(r, key, value, timeout, nx=False))

    def add(self, key: str, value: Any, *, timeout: int) -> None:
        """Set only where the key has no value (SET NX)."""
        self._ops.append(lambda r: _set(r, key, value, timeout, nx=True))

    def call(self, op: Callable[[Any], object]) -> None:
        """`op(client)` with the pipeline as client (a script: grid.versions)."""
        self._ops.append(op)

    def send(self) -> None:
        """Send what was queued; a Redis error is logged (nothing queued here is needed)."""
        if not self._ops:
            return
        ops, self._ops = self._ops, []
        try:
            redis = client()
            if redis is None:
                for op in ops:
                    op(None)
                return
            pipe = redis.pipeline(transaction=False)
            for op in ops:
                op(pipe)
            pipe.execute()
        except RedisError:
            logger.exception("缓存写入失败（地图瓦片）")


def _set(redis: Any, key: str, value: Any, timeout: int, *, nx: bool) -> None:
    if redis is None:
        (cache.add if nx else cache.set)(key, value, timeout=timeout)
        return
    redis.set(cache.make_key(key), _backend()._serializer.dumps(value), ex=timeout, nx=nx)
