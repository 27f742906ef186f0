"""The tile cache (real Redis): a write shows on the next request of exactly the tiles it touches,
every other tile is answered from Redis without its statement, a cached tile never reaches a
caller of another reach, the browser revalidates with ETag/304, and with Redis down tiles are
still served."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from grid.models import GridBoundary
from grid.services import grid_boundaries_set, grid_cell_update
from mapping.models import Gap
from mapping.services import gaps_recompute
from tests.factories import rect
from tests.mapping.tiles_support import World, X, Y, build_world, centre_of, features, tile_of, tile_url
from tests.orgs_factories import BuildingGroupFactory
from tests.people import api_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_tile_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def world() -> World:
    return build_world()


def fetch(user, url: str, **headers):
    """GET a tile; returns (response, whether its statement ran)."""
    with CaptureQueriesContext(connection) as queries:
        response = api_client(user).get(url, **headers)
    assert response.status_code in (200, 304), response.content
    rendered = any("ST_AsMVT(" in q["sql"] for q in queries.captured_queries)
    return response, rendered


def status_of(response, building) -> str:
    return {f.properties["code"]: f.properties["status"] for f in features(response.content, "buildings")}[
        building.code
    ]


def test_a_write_changes_the_tiles_it_touches_and_no_other(world: World):
    tile_a = tile_url("buildings", tile_of(*centre_of(world.h_members), 17))
    tile_b = tile_url("buildings", tile_of(*centre_of(world.h_b), 17))
    first_a, rendered = fetch(world.street_admin, tile_a)
    assert rendered and status_of(first_a, world.h_members) == "members_without_group"
    first_b, _ = fetch(world.street_admin, tile_b)
    # Warm: both answered from Redis.
    assert not fetch(world.street_admin, tile_a)[1] and not fetch(world.street_admin, tile_b)[1]

    # The fix: a building group for h_members, through the organisation service (it bumps A's
    # data version in its transaction).
    BuildingGroupFactory(buildings=[world.h_members])

    after_a, rendered = fetch(world.street_admin, tile_a)
    assert rendered, "the touched tile was answered from the cache"
    assert status_of(after_a, world.h_members) == "has_group"
    assert after_a["ETag"] != first_a["ETag"] and after_a.content != first_a.content
    after_b, rendered = fetch(world.street_admin, tile_b)
    assert not rendered, "a tile of community B was rendered again after a write in A"
    assert after_b["ETag"] == first_b["ETag"] and after_b.content == first_b.content


def test_a_cache_hit_asks_the_database_nothing(world: World):
    """The reach (grid.reach_cache), the communities the tile meets and their versions
    (grid.versions) come from Redis: a hit is Redis only, for a client signed in by the test
    (DRF's forced sign-in, no credential to recognise: the view answers) as for any other."""
    url = tile_url("grid_cells", tile_of(X + 0.005, Y + 0.005, 15))
    first, rendered = fetch(world.street_admin, url)
    assert rendered
    with CaptureQueriesContext(connection) as queries:
        again = api_client(world.street_admin).get(url)
    assert again.status_code == 200 and again.content == first.content
    assert [q["sql"] for q in queries.captured_queries] == []


def test_a_boundary_redraw_changes_the_grid_tile_of_its_community_only(world: World):
    cells_a = tile_url("grid_cells", tile_of(X + 0.005, Y + 0.005, 15))
    cells_b = tile_url("grid_cells", tile_of(X + 0.035, Y + 0.005, 15))
    before_a, _ = fetch(world.street_admin, cells_a)
    before_b, _ = fetch(world.street_admin, cells_b)
    # A1 takes A2's west half: h_unvisited (at X+0.007) moves into A1.
    grid_boundaries_set(
        shapes={
            world.a1.id: rect(X, Y, X + 0.0075, Y + 0.01),
            world.a2.id: rect(X + 0.0075, Y, X + 0.01, Y + 0.01),
        },
        valid_from=date(2026, 1, 1),
    )
    after_a, rendered = fetch(world.street_admin, cells_a)
    assert rendered
    counts = {f.id: f.properties["buildings"] for f in features(after_a.content, "grid_cells")}
    assert counts == {world.a1.id: 3, world.a2.id: 1}
    assert after_a["ETag"] != before_a["ETag"]
    after_b, rendered = fetch(world.street_admin, cells_b)
    assert not rendered and after_b["ETag"] == before_b["ETag"]
    assert GridBoundary.objects.filter(cell=world.a1, valid__upper_inf=True).count() == 1


def test_a_gap_closed_by_the_recompute_after_a_write_leaves_the_map(world: World):
    """The recompute runs after the write (a task, seconds later) and bumps no version: a tile
    rendered in between holds the new version and the old gap, and must not stay cached."""
    gaps_recompute(community_ids=[world.a.id])
    url = tile_url("gaps", tile_of(*centre_of(world.h_members), 17))

    def kinds() -> set[str]:
        response, _ = fetch(world.street_admin, url)
        return {f.properties["kind"] for f in features(response.content, "gaps")}

    assert Gap.Kind.BUILDING_WITHOUT_GROUP in kinds()
    BuildingGroupFactory(buildings=[world.h_members])  # the fix; the recompute has not run yet
    assert Gap.Kind.BUILDING_WITHOUT_GROUP in kinds()  # still open: the map says so
    gaps_recompute(community_ids=[world.a.id])
    assert Gap.Kind.BUILDING_WITHOUT_GROUP not in kinds()


def test_a_cached_tile_never_reaches_a_caller_of_another_reach(world: World):
    in_a2 = tile_url("buildings", tile_of(*centre_of(world.h_unvisited), 17))
    full, rendered = fetch(world.street_admin, in_a2)
    assert rendered and features(full.content, "buildings")
    # The worker of A1 asks for the same tile right after: rendered for their reach, empty.
    theirs, rendered = fetch(world.worker_a1, in_a2)
    assert rendered and features(theirs.content, "buildings") == []
    # Each reach keeps its own entry.
    again, rendered = fetch(world.street_admin, in_a2)
    assert not rendered and again.content == full.content
    # Another worker of the same grid has the same reach: the worker's entry answers them.
    twin, rendered = fetch(world.worker_a1_twin, in_a2)
    assert not rendered and twin.content == theirs.content


def test_etag_revalidation_answers_304_until_the_tile_changes(world: World):
    url = tile_url("buildings", tile_of(*centre_of(world.h_members), 17))
    first, _ = fetch(world.street_admin, url)
    etag = first["ETag"]
    assert first["Cache-Control"] == "private, no-cache"
    assert "Authorization" in first["Vary"] and "Cookie" in first["Vary"]

    same, _ = fetch(world.street_admin, url, HTTP_IF_NONE_MATCH=etag)
    assert same.status_code == 304 and same.content == b"" and same["ETag"] == etag
    assert same["Cache-Control"] == "private, no-cache"

    # A write in A that this layer does not show: re-rendered (the version moved), same bytes,
    # so the same ETag and still 304.
    grid_cell_update(cell=world.a2, name="甲二网格（新）")
    unchanged, rendered = fetch(world.street_admin, url, HTTP_IF_NONE_MATCH=etag)
    assert rendered and unchanged.status_code == 304

    BuildingGroupFactory(buildings=[world.h_members])
    changed, _ = fetch(world.street_admin, url, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert status_of(changed, world.h_members) == "has_group"


def test_with_redis_down_tiles_are_still_served(world: World, settings, caplog):
    url = tile_url("buildings", tile_of(*centre_of(world.h_members), 17))
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
        }
    }
    response, rendered = fetch(world.street_admin, url)
    assert response.status_code == 200 and rendered
    assert status_of(response, world.h_members) == "members_without_group"
    assert "瓦片缓存不可用" in caplog.text
