"""The tile cache's fast path (real Redis): a signed-in caller's repeat request is answered from
Redis before Django loads a session or a user (no SQL at all), and everything it relies on is
dropped when it changes: a revoked role, a write, an outline redrawn, the caller signing in again.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from grid import versions
from grid.models import Community, Role, RoleAssignment
from grid.roles import role_grant, role_revoke
from grid.services import community_update
from tests.factories import multi, rect
from tests.mapping.tiles_support import World, X, Y, build_world, centre_of, features, tile_of, tile_url
from tests.orgs_factories import BuildingGroupFactory
from tests.people import signed_in, user_with

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_tile_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def world() -> World:
    return build_world()


def token_client(user) -> Client:
    return Client(headers={"authorization": f"Token {Token.objects.create(user=user).key}"})


def timed(client: Client, url: str, **headers):
    """GET a tile; returns (response, the SQL statements it ran)."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **headers)
    assert response.status_code in (200, 304, 403), response.content
    return response, [q["sql"] for q in queries.captured_queries]


def rendered(sqls: list[str]) -> bool:
    return any("ST_AsMVT(" in s for s in sqls)


def statuses(response) -> dict[str, str]:
    return {f.properties["code"]: f.properties["status"] for f in features(response.content, "buildings")}


@pytest.mark.parametrize("sign_in", ["token", "session"])
def test_a_repeat_request_runs_no_sql_and_revalidates_with_none(world: World, sign_in: str):
    client = token_client(world.street_admin) if sign_in == "token" else signed_in(world.street_admin)
    url = tile_url("buildings", tile_of(*centre_of(world.h_members), 17))
    first, sqls = timed(client, url, HTTP_ACCEPT_ENCODING="gzip")
    assert rendered(sqls) and first["Content-Encoding"] == "gzip"
    again, sqls = timed(client, url, HTTP_ACCEPT_ENCODING="gzip")
    assert sqls == [], "a cached tile asked the database"
    assert again.content == first.content and again["ETag"] == first["ETag"]
    assert again["Cache-Control"] == "private, no-cache" and "Authorization" in again["Vary"]
    same, sqls = timed(client, url, HTTP_ACCEPT_ENCODING="gzip", HTTP_IF_NONE_MATCH=first["ETag"])
    assert same.status_code == 304 and same["ETag"] == first["ETag"] and sqls == []


def test_a_write_reaches_the_next_request_of_the_tiles_it_touches_only(world: World):
    client = token_client(world.street_admin)
    tile_a = tile_url("buildings", tile_of(*centre_of(world.h_members), 17))
    tile_b = tile_url("buildings", tile_of(*centre_of(world.h_b), 17))
    before_a, _ = timed(client, tile_a)
    before_b, _ = timed(client, tile_b)
    assert statuses(before_a)[world.h_members.code] == "members_without_group"

    BuildingGroupFactory(buildings=[world.h_members])  # bumps A's version: Redis's copy is dropped

    after_a, sqls = timed(client, tile_a)
    assert rendered(sqls) and statuses(after_a)[world.h_members.code] == "has_group"
    after_b, sqls = timed(client, tile_b)
    assert sqls == [] and after_b.content == before_b.content


def test_a_revoked_role_reaches_the_next_tile(world: World):
    """The caller's reach is cached with the roles epoch; grid.roles replaces the epoch."""
    user = user_with(Role.COMMUNITY_ADMIN, community=world.a)
    client = token_client(user)
    own = tile_url("buildings", tile_of(*centre_of(world.h_b), 17))
    assert features(timed(client, own)[0].content, "buildings") == []  # B is not theirs
    granted = role_grant(user=user, role=Role.COMMUNITY_ADMIN, community=world.b)
    seen, sqls = timed(client, own)
    assert rendered(sqls) and set(statuses(seen)) == {world.h_b.code}
    assert timed(client, own)[1] == []  # and cached again

    role_revoke(assignment=granted)

    gone, _ = timed(client, own)
    assert features(gone.content, "buildings") == []
    # Their last role over a place revoked: refused, not answered from the cache.
    role_revoke(assignment=RoleAssignment.objects.get(user=user, community=world.a))
    refused, _ = timed(client, own)
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"


def test_another_caller_is_never_answered_from_a_callers_entry(world: World):
    url = tile_url("buildings", tile_of(*centre_of(world.h_unvisited), 17))
    admin = token_client(world.street_admin)
    assert features(timed(admin, url)[0].content, "buildings")
    assert timed(admin, url)[1] == []
    worker = token_client(world.worker_a1)
    theirs, sqls = timed(worker, url)
    assert features(theirs.content, "buildings") == []
    # A token that signs no one in is refused by the view, whatever is cached.
    stranger = Client(headers={"authorization": "Token " + "0" * 40})
    assert stranger.get(url).status_code == 401


def test_a_redrawn_outline_reaches_the_tiles_it_now_meets(world: World):
    """Which communities a tile meets is cached per tile under the outlines epoch: a community
    grown over a tile that met none must show there at once."""
    client = token_client(world.street_admin)
    between = tile_url("communities", tile_of(X + 0.02, Y + 0.005, 16))
    assert features(timed(client, between)[0].content, "communities") == []
    assert timed(client, between)[1] == []

    community_update(community=world.b, geom=multi(rect(X + 0.015, Y, X + 0.04, Y + 0.01)))

    after, sqls = timed(client, between)
    assert rendered(sqls)
    assert {f.properties["name"] for f in features(after.content, "communities")} == {"乙社区"}


def test_redis_copies_of_versions_follow_the_database_and_never_go_back(world: World):
    a = world.a.pk
    assert versions.community_versions([a]) == {a: Community.objects.get(pk=a).data_version}
    current = Community.objects.get(pk=a).data_version
    # A reader that read an older number stores it after the writer's raise: ignored.
    versions.versions_seen({a: current + 5})
    versions.versions_seen({a: current})
    assert cache.get(versions.version_key(a)) == current + 5
    # A bump drops the copy at once (this transaction's next read asks the database).
    cache.set(versions.version_key(a), current)
    BuildingGroupFactory(buildings=[world.h_members])
    assert cache.get(versions.version_key(a)) is None
    assert versions.community_versions([a]) == {a: Community.objects.get(pk=a).data_version}


def test_the_raise_after_commit_sets_the_committed_number(world: World, django_capture_on_commit_callbacks):
    a = world.a.pk
    with django_capture_on_commit_callbacks(execute=True):
        BuildingGroupFactory(buildings=[world.h_members])
    assert cache.get(versions.version_key(a)) == Community.objects.get(pk=a).data_version
