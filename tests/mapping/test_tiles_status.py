"""The buildings tile's precomputed facts (mapping.tile_models) and the gap recompute's version
bump: the tile reads the facts only while they are current, a write shows at once, the recompute
moves the versions of exactly the communities whose gaps changed, and never queues itself."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from grid import sql as grid_sql
from grid.access import Reach
from grid.changes import communities_changed
from grid.models import Community
from mapping import sql, tiles
from mapping.models import BuildingStatus, BuildingStatusVersion, Gap, GridCellStatus
from mapping.services import gaps_recompute
from mapping.tiles_sql import BUILDINGS, tile_body
from tests.mapping.tiles_support import (
    World,
    X,
    Y,
    build_world,
    centre_of,
    features,
    tile_of,
    tile_url,
    visit,
)
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


def fetch(user, url: str):
    with CaptureQueriesContext(connection) as queries:
        response = api_client(user).get(url)
    assert response.status_code == 200, response.content
    return response, any("ST_AsMVT(" in q["sql"] for q in queries.captured_queries)


def props(response, building) -> dict:
    return {f.properties["code"]: f.properties for f in features(response.content, "buildings")}[
        building.code
    ]


def version(community: Community) -> int:
    return Community.objects.get(pk=community.pk).data_version


def current(community: Community) -> bool:
    """Whether the community's building facts are the ones the tile uses."""
    return BuildingStatusVersion.objects.filter(
        community_id=community.pk, data_version=version(community)
    ).exists()


def test_the_recompute_writes_each_buildings_facts(world: World):
    gaps_recompute(community_ids=[world.a.id])
    rows = {r.building_id: r for r in BuildingStatus.objects.all()}
    assert set(rows) == {world.h_members.id, world.h_grouped.id, world.h_unvisited.id, world.h_a2_seen.id}
    assert (rows[world.h_members.id].members, rows[world.h_members.id].has_group) == (3, False)
    assert rows[world.h_grouped.id].has_group is True
    assert rows[world.h_unvisited.id].last_visit_at is None
    assert rows[world.h_a2_seen.id].last_visit_at is not None
    assert current(world.a) and not current(world.b)
    # A second run finds every fact as it left it: nothing written.
    assert sql.building_status_refresh([world.a.id], every_community=False) == 0


def test_the_tile_reads_the_facts_only_while_they_are_current(world: World):
    url = tile_url("buildings", tile_of(*centre_of(world.h_members), 17))
    live, _ = fetch(world.street_admin, url)
    gaps_recompute(community_ids=[world.a.id])
    cache.clear()
    precomputed, _ = fetch(world.street_admin, url)
    assert precomputed.content == live.content  # the same tile either way

    # The tile reads the table: a row changed behind its back shows (derived data, never done
    # in production; here it proves which path answered).
    BuildingStatus.objects.filter(building_id=world.h_members.id).update(members=0)
    cache.clear()
    assert props(fetch(world.street_admin, url)[0], world.h_members)["status"] == "other"

    # Any write in A moves its version past the facts': the tile computes A's statuses itself.
    communities_changed([world.a.id])
    after, rendered = fetch(world.street_admin, url)
    assert rendered and not current(world.a)
    assert props(after, world.h_members)["status"] == "members_without_group"


def test_the_grid_cells_tile_reads_its_counts_the_same_way(world: World):
    gaps_recompute(community_ids=[world.a.id])
    counts = {r.cell_id: (r.buildings, r.households) for r in GridCellStatus.objects.all()}
    assert counts[world.a1.id] == (2, 50) and set(counts) == {world.a1.id, world.a2.id}
    url = tile_url("grid_cells", tile_of(X + 0.005, Y + 0.005, 15))

    def shown() -> dict[int, int]:
        cache.clear()
        return {
            f.id: f.properties["buildings"]
            for f in features(fetch(world.street_admin, url)[0].content, "grid_cells")
        }

    GridCellStatus.objects.filter(cell_id=world.a1.id).update(buildings=7)  # proves the table answers
    assert shown()[world.a1.id] == 7
    communities_changed([world.a.id])  # a write: A's counts are counted again by the tile
    assert shown()[world.a1.id] == 2


def test_a_fix_shows_at_once_and_the_recompute_after_it_changes_nothing_on_the_map(world: World):
    url = tile_url("buildings", tile_of(*centre_of(world.h_members), 17))
    gaps_recompute(community_ids=[world.a.id])
    assert props(fetch(world.street_admin, url)[0], world.h_members)["status"] == "members_without_group"

    BuildingGroupFactory(buildings=[world.h_members])  # the fix; the recompute has not run yet

    fixed, rendered = fetch(world.street_admin, url)
    assert rendered and props(fixed, world.h_members)["status"] == "has_group"
    gaps_recompute(community_ids=[world.a.id])  # closes the gap: A's version moves again
    assert current(world.a)
    again, rendered = fetch(world.street_admin, url)
    assert rendered and again["ETag"] == fixed["ETag"]


def test_a_visit_counts_in_the_facts_with_the_tiles_own_window(world: World, settings):
    """The facts hold the last visit, not the verdict: the window is the tile's, so a visit ages
    out of it at midnight without a recompute."""
    days = settings.WANGGE_RULES["visit_interval_days"]
    visit(world.h_unvisited, timezone.now() - timedelta(days=days - 1))
    gaps_recompute(community_ids=[world.a.id])
    url = tile_url("buildings", tile_of(*centre_of(world.h_unvisited), 17))
    assert props(fetch(world.street_admin, url)[0], world.h_unvisited)["status"] == "other"
    z, x, y = tile_of(*centre_of(world.h_unvisited), 17)
    address = tiles.tile_address(layer="buildings", z=z, x=x, y=y)
    later = tiles.tile_parameters(
        reach=Reach(everything=True), address=address, today=timezone.localdate() + timedelta(days=2)
    )
    aged = {f.properties["code"]: f.properties for f in features(tile_body(BUILDINGS, later), "buildings")}
    assert current(world.a) and aged[world.h_unvisited.code]["status"] == "not_visited"


def test_the_recompute_moves_the_versions_of_communities_whose_gaps_changed_only(world: World):
    gaps_recompute(community_ids=[world.a.id, world.b.id])
    a, b = version(world.a), version(world.b)
    gaps_recompute(community_ids=[world.a.id, world.b.id])
    assert (version(world.a), version(world.b)) == (a, b), "a run that changed no gap moved a version"
    BuildingGroupFactory(buildings=[world.h_members])
    a = version(world.a)
    gaps_recompute(community_ids=[world.a.id, world.b.id])
    assert version(world.a) == a + 1 and version(world.b) == b
    assert not Gap.objects.filter(
        subject_id=world.h_members.id, kind=Gap.Kind.BUILDING_WITHOUT_GROUP, resolved_at=None
    )
    assert current(world.a) and current(world.b)  # the bump carried the facts along


HEARD: list[list[int]] = []


def listener(*, community_ids: list[int]) -> None:
    HEARD.append(list(community_ids))


def test_the_recompute_never_calls_the_change_listeners(
    world: World, settings, django_capture_on_commit_callbacks
):
    """It bumps versions with grid.sql, not grid.changes: a listener (the recompute's own queue)
    hears the write, not the recompute, or every recompute would queue the next."""
    HEARD.clear()
    settings.WANGGE_CHANGE_LISTENERS = [f"{__name__}.listener"]
    gaps_recompute(community_ids=[world.a.id])
    with django_capture_on_commit_callbacks(execute=True):
        BuildingGroupFactory(buildings=[world.h_members])
    assert HEARD == [[world.a.id]]
    before = version(world.a)
    with django_capture_on_commit_callbacks(execute=True):
        gaps_recompute(community_ids=[world.a.id])  # closes the gap: A's version moves
    assert version(world.a) == before + 1 and HEARD == [[world.a.id]]


def test_a_write_between_the_facts_and_the_bump_keeps_the_facts_out_of_use(world: World):
    sql.building_status_refresh([world.a.id], every_community=False)
    assert current(world.a)
    communities_changed([world.a.id])  # a write committed after the facts' snapshot
    bumped = grid_sql.bump_data_versions([world.a.id])  # the recompute's own bump
    sql.building_status_carry(bumped)
    assert not current(world.a)


def test_the_full_run_drops_the_facts_of_buildings_that_are_gone(world: World):
    gaps_recompute(community_ids=[world.a.id])
    BuildingStatus.objects.create(building_id=world.h_b.id + 10_000, members=1, has_group=False)
    gaps_recompute(community_ids=None)
    assert not BuildingStatus.objects.filter(building_id=world.h_b.id + 10_000).exists()
    assert BuildingStatus.objects.filter(building_id=world.h_b.id).exists()


def test_the_gaps_tile_keys_on_the_versions_the_recompute_moves(world: World):
    """No per-request look-up of the gaps themselves: the recompute bumps A, so A's tile misses
    and B's stays cached."""
    gaps_recompute(community_ids=[world.a.id, world.b.id])
    tile_a = tile_url("gaps", tile_of(*centre_of(world.h_members), 17))
    tile_b = tile_url("gaps", tile_of(*centre_of(world.h_b), 17))
    fetch(world.street_admin, tile_a)
    before_b, _ = fetch(world.street_admin, tile_b)
    BuildingGroupFactory(buildings=[world.h_members])
    fetch(world.street_admin, tile_a)  # rendered at the write's version, the gap still open
    gaps_recompute(community_ids=[world.a.id, world.b.id])
    after_a, rendered = fetch(world.street_admin, tile_a)
    assert rendered
    assert Gap.Kind.BUILDING_WITHOUT_GROUP not in {
        f.properties["kind"] for f in features(after_a.content, "gaps")
    }
    after_b, rendered = fetch(world.street_admin, tile_b)
    assert not rendered and after_b.content == before_b.content
