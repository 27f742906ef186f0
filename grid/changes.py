"""One way to say "this community's data changed": bump its data version and tell who listens.

Every service that changes what a community holds (units and boundaries, organisations, people,
enterprises, events) calls `communities_changed` inside its transaction. Two things follow:

- the community's `data_version` goes up in the same transaction, so every cache keyed on it
  (map tiles, layers) misses exactly when the data it shows changed, never before the commit is
  visible and never for an untouched community; Redis's copy of it follows after the commit
  (grid.versions), and with `outlines=True` the outlines epoch there is replaced;
- after the commit, and only if it commits, the listeners named in
  `settings.WANGGE_CHANGE_LISTENERS` are called with the communities touched
  (the gap recompute queues itself there). Listeners live in higher layers; the project
  (ops/settings.py) names them, so this layer imports none of them and no signal is involved.

When a community's *outline* changed (`outlines=True`), the listeners in
`settings.WANGGE_OUTLINE_LISTENERS` run at once, inside the transaction: what is placed by the
outline (enterprises by their point) must move in the same commit, or a reader could see an
enterprise in a community whose outline no longer holds it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

from grid import sql
from grid.versions import outlines_changed


def _listeners(setting: str) -> tuple[Callable[..., object], ...]:
    # Not cached: tests swap listeners with override_settings; import_string is a dict look-up.
    return tuple(import_string(path) for path in getattr(settings, setting, ()))


def communities_changed(community_ids: Iterable[int | None], *, outlines: bool = False) -> None:
    """Record that these communities' data changed in the current transaction (see module doc)."""
    ids = sorted({int(c) for c in community_ids if c is not None})
    if not ids:
        return
    sql.bump_data_versions(ids)
    if outlines:
        # Which communities a tile meets is cached per tile under the outlines epoch (grid.versions).
        outlines_changed()
        for listener in _listeners("WANGGE_OUTLINE_LISTENERS"):
            listener(community_ids=ids)
    for listener in _listeners("WANGGE_CHANGE_LISTENERS"):
        # Dropped by Django if the transaction rolls back. Several writes in one transaction or in
        # a few seconds each call the listener; the listener collapses them (mapping.tasks).
        transaction.on_commit(partial(listener, community_ids=ids))
