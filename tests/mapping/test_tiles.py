"""Vector tiles through HTTP: what each layer tells the street office, who sees what (scoped in the
statement: a neighbouring grid's tile is empty for a grid worker), and the answers to bad
addresses and callers (a stable code, never a 500). Real PostGIS and Redis; tiles read back with
the MVT reader in tiles_support."""

from __future__ import annotations

import gzip
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from grid.access import Reach
from grid.models import Role
from mapping import tiles, tiles_sql
from mapping.models import Gap
from mapping.services import gaps_recompute
from orgs.models import Visit
from tests.mapping.tiles_support import (
    World,
    X,
    Y,
    build_world,
    centre_of,
    features,
    tile_bounds,
    tile_of,
    tile_url,
    visit,
)
from tests.people import api_client, user_with

pytestmark = pytest.mark.django_db

MVT = "application/vnd.mapbox-vector-tile"


@pytest.fixture(autouse=True)
def _empty_tile_cache():
    # Redis db of this test run (REDIS_URL): a tile cached by an earlier test must not answer here.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def world() -> World:
    return build_world()


def get(user, url: str, **headers):
    return api_client(user).get(url, **headers)


def tile(user, layer: str, address: tuple[int, int, int], query: str = "") -> list:
    response = get(user, tile_url(layer, address, query))
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == MVT
    return features(response.content, layer)


def address_of(layer: str, tile_zxy: tuple[int, int, int]) -> tiles.TileAddress:
    z, x, y = tile_zxy
    return tiles.tile_address(layer=layer, z=z, x=x, y=y)


def by_code(feats) -> dict:
    return {f.properties.get("code"): f for f in feats}


# --- what the layers say ---------------------------------------------------------------------------


def building_feature(user, building):
    """The feature of `building` in the z17 tile holding it."""
    return by_code(tile(user, "buildings", tile_of(*centre_of(building), 17)))[building.code]


def test_buildings_carry_the_status_the_map_styles_by(world: World):
    members = building_feature(world.street_admin, world.h_members)
    assert members.id == world.h_members.id  # the feature id, for feature-state styling
    props = members.properties
    assert props["status"] == "members_without_group"
    assert props["members"] == 3 and props["has_group"] is False
    assert props["grid_code"] == world.a1.code and props["community_code"] == world.a.code
    assert props["households"] == 30 and props["name"] == "甲1栋"
    assert building_feature(world.street_admin, world.h_grouped).properties["status"] == "has_group"
    unvisited = building_feature(world.street_admin, world.h_unvisited).properties
    assert unvisited["status"] == "not_visited" and unvisited["unvisited"] is True
    assert "last_visit" not in unvisited  # never visited: no date at all
    seen = building_feature(world.street_admin, world.h_a2_seen).properties
    assert seen["status"] == "other" and seen["unvisited"] is False
    assert seen["last_visit"] == timezone.localdate().isoformat()


def test_a_building_last_visited_beyond_the_interval_is_not_visited(world: World, settings):
    visit(
        world.h_unvisited, timezone.now() - timedelta(days=settings.WANGGE_RULES["visit_interval_days"] + 1)
    )
    assert building_feature(world.street_admin, world.h_unvisited).properties["status"] == "not_visited"


def test_grid_cells_carry_codes_and_counts_for_indicator_shading(world: World):
    cells = {f.id: f for f in tile(world.street_admin, "grid_cells", tile_of(X + 0.005, Y + 0.005, 15))}
    a1 = cells[world.a1.id]
    assert a1.type == "Polygon"
    assert a1.properties["code"] == world.a1.code and a1.properties["name"] == "甲一网格"
    assert a1.properties["community_code"] == world.a.code
    assert a1.properties["buildings"] == 2 and a1.properties["households"] == 50
    assert a1.properties["responsible"] == "甲社区（属地兜底）"
    assert world.a2.id in cells


def test_open_gaps_say_kind_who_answers_and_age(world: World):
    gaps_recompute(community_ids=[world.a.id], at=timezone.now() - timedelta(days=3))
    found = tile(world.street_admin, "gaps", tile_of(*centre_of(world.h_members), 16))
    no_group = next(f for f in found if f.properties["kind"] == Gap.Kind.BUILDING_WITHOUT_GROUP)
    props = no_group.properties
    assert props["subject_code"] == world.h_members.code
    assert props["responsible"] and props["age_days"] == 3 and props["count"] == 1
    assert props["since"] == (timezone.localdate() - timedelta(days=3)).isoformat()
    assert no_group.id == Gap.objects.get(kind=Gap.Kind.BUILDING_WITHOUT_GROUP).id
    # A resolved gap is history, not on the map.
    Gap.objects.filter(pk=no_group.id).update(resolved_at=timezone.now())
    cache.clear()
    again = tile(world.street_admin, "gaps", tile_of(*centre_of(world.h_members), 16))
    assert no_group.id not in {f.id for f in again}


def test_point_gaps_are_counted_per_square_below_zoom_14(world: World):
    gaps_recompute(community_ids=[world.a.id])
    open_points = sum(g.geom.geom_type == "Point" for g in Gap.objects.filter(resolved_at__isnull=True))
    found = tile(world.street_admin, "gaps", tile_of(X + 0.005, Y + 0.005, 12))
    points = [f for f in found if f.type == "Point"]
    assert sum(f.properties["count"] for f in points) == open_points
    assert all("kind" in f.properties for f in found)


def test_visits_of_a_period_for_the_heat_map(world: World):
    old = visit(world.h_members, timezone.now() - timedelta(days=100))
    z17 = tile_of(*centre_of(world.h_members), 17)
    default = tile(world.street_admin, "visits", z17)
    # The default period is the visit interval ending today: last month's visit, not the old one.
    assert [f.properties["day"] for f in default] == [(timezone.localdate() - timedelta(days=10)).isoformat()]
    assert default[0].properties["kind"] == "household" and default[0].type == "Point"
    day = timezone.localtime(old.occurred_at).date().isoformat()
    chosen = tile(world.street_admin, "visits", z17, f"since={day}&until={day}")
    assert [f.properties["day"] for f in chosen] == [day]


def test_visits_are_counted_below_zoom_15(world: World):
    for days in (3, 4):
        visit(world.h_members, timezone.now() - timedelta(days=days))
    z13 = tile_of(X + 0.005, Y + 0.005, 13)
    west, south, east, north = tile_bounds(z13)
    margin = (east - west) * 64 / 4096  # the tile's buffer
    inside = [
        v
        for v in Visit.objects.all()
        if west - margin <= v.place.x <= east + margin and south - margin <= v.place.y <= north + margin
    ]
    found = tile(world.street_admin, "visits", z13)
    assert sum(f.properties["count"] for f in found) == len(inside) >= 5
    # One weighted point per square of a few pixels: h_members' three visits are one feature.
    assert len(found) == len(inside) - 2
    assert max(f.properties["count"] for f in found) == 3
    assert all(f.type == "Point" for f in found)


def test_station_check_ins_show_to_whole_community_reach_only(world: World):
    z16 = tile_of(X + 0.001, Y + 0.008, 16)
    found = tile(world.street_admin, "station_contacts", z16)
    assert [(f.properties["kind"], f.properties["on_site"], f.properties["day"]) for f in found] == [
        ("check_in", True, (timezone.localdate() - timedelta(days=1)).isoformat())
    ]
    # Station work serves a whole community: a grid worker there sees none of it (as in the API).
    assert tile(world.worker_a1, "station_contacts", z16) == []


def test_service_centres_and_outlines_with_labels(world: World):
    centres = tile(world.worker_a1, "service_centres", tile_of(X + 0.004, Y + 0.008, 16))
    # A street-level centre serves the whole street: a grid worker in it sees it.
    assert [(f.properties["code"], f.properties["level"]) for f in centres] == [(world.centre.code, "street")]
    z14 = tile_of(X + 0.005, Y + 0.005, 14)
    outlines = tile(world.street_admin, "communities", z14)
    roles = {(f.properties["name"], f.properties["role"], f.type) for f in outlines}
    assert ("甲社区", "outline", "Polygon") in roles and ("甲社区", "label", "Point") in roles
    streets = tile(world.street_admin, "streets", z14)
    assert {f.properties["code"] for f in streets} == {world.street.code}


@pytest.mark.parametrize("z", [14, 17, 20])
def test_the_affine_mercator_places_features_within_one_unit_of_st_transform(world: World, z: int):
    """tiles_sql._mercator stands in for ST_Transform inside a tile; its error must stay under a
    unit (1/8 pixel), including at a tile's edges, where neighbouring tiles meet."""
    address = address_of("buildings", tile_of(*centre_of(world.h_members), z))
    params = tiles.tile_parameters(reach=Reach(everything=True), address=address, today=timezone.localdate())
    assert params["exact"] is False  # this latitude and zoom use the affine form
    exact = features(tiles_sql.tile_body(tiles_sql.BUILDINGS, params | {"exact": True}), "buildings")
    affine = features(tiles_sql.tile_body(tiles_sql.BUILDINGS, params), "buildings")
    assert [f.id for f in affine] == [f.id for f in exact] and exact
    for a, e in zip(affine, exact, strict=True):
        assert abs(a.first_point[0] - e.first_point[0]) <= 1 and abs(a.first_point[1] - e.first_point[1]) <= 1


@pytest.mark.parametrize("z", [14, 17, 20])
@pytest.mark.parametrize("exact", [False, True])
def test_footprints_inside_the_tile_skip_the_clipping_and_come_out_as_st_asmvtgeom_makes_them(
    world: World, z: int, exact: bool
):
    """tiles_sql._mvt_footprint computes a footprint lying inside the tile without ST_AsMVTGeom:
    the same vertices, in the same winding (the MVT spec's), only the ring may start elsewhere;
    footprints crossing the tile's edge (z20: a footprint spans tiles) still go through it."""
    address = address_of("buildings", tile_of(*centre_of(world.h_members), z))
    params = tiles.tile_parameters(reach=Reach(everything=True), address=address, today=timezone.localdate())
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT b.id, b.geom @ {tiles_sql.INSIDE},
                   ST_Equals(m, f) AND ST_NPoints(m) = ST_NPoints(f) AND ST_IsPolygonCCW(m) = ST_IsPolygonCCW(f)
            FROM grid_building b
            CROSS JOIN LATERAL (
                SELECT ST_SetSRID({tiles_sql._mvt_geom("b.geom")}, 0) AS m,
                       ST_SetSRID({tiles_sql._mvt_footprint("b")}, 0) AS f
            ) g
            WHERE b.geom && {tiles_sql.BOX} AND m IS NOT NULL
            """,  # noqa: S608 - expressions from tiles_sql; values are parameters
            params | {"exact": exact},
        )
        rows = cursor.fetchall()
    assert rows and all(same for _, _, same in rows), rows
    if z == 20:
        assert any(not inside for _, inside, _ in rows)  # the edge case is exercised
    else:
        assert any(inside for _, inside, _ in rows)


def test_low_zooms_and_high_latitudes_use_the_exact_transform(world: World):
    today = timezone.localdate()
    world_tile = tiles.tile_address(layer="streets", z=3, x=6, y=3)
    assert tiles.tile_parameters(reach=Reach(), address=world_tile, today=today)["exact"] is True
    # Mohe (53.5° N, China's north tip) at z12: the curvature term reaches half a unit there.
    north = address_of("streets", tile_of(122.5, 53.5, 12))
    assert tiles.tile_parameters(reach=Reach(), address=north, today=today)["exact"] is True
    here = address_of("streets", tile_of(X, Y, 12))
    assert tiles.tile_parameters(reach=Reach(), address=here, today=today)["exact"] is False


def test_below_its_minimum_zoom_the_buildings_layer_is_empty_without_a_query(world: World):
    with CaptureQueriesContext(connection) as queries:
        response = get(world.street_admin, tile_url("buildings", tile_of(X + 0.005, Y + 0.005, 13)))
    assert response.status_code == 200 and response.content == b""
    assert not any("ST_AsMVT" in q["sql"] for q in queries.captured_queries)


def test_browsers_get_the_tile_gzipped_with_its_own_etag(world: World):
    url = tile_url("buildings", tile_of(*centre_of(world.h_members), 17))
    plain = get(world.street_admin, url)
    packed = get(world.street_admin, url, HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert packed["Content-Encoding"] == "gzip" and "Content-Encoding" not in plain
    assert gzip.decompress(packed.content) == plain.content
    assert len(packed.content) < len(plain.content)
    assert packed["ETag"] != plain["ETag"] and "Accept-Encoding" in packed["Vary"]
    # Each tag revalidates its own representation only.
    again = get(world.street_admin, url, HTTP_ACCEPT_ENCODING="gzip", HTTP_IF_NONE_MATCH=packed["ETag"])
    assert again.status_code == 304
    assert get(world.street_admin, url, HTTP_IF_NONE_MATCH=packed["ETag"]).status_code == 200
    refused = get(world.street_admin, url, HTTP_ACCEPT_ENCODING="gzip;q=0, identity")
    assert "Content-Encoding" not in refused and refused.content == plain.content


# --- who sees what --------------------------------------------------------------------------------


def test_a_grid_workers_tile_of_the_neighbouring_grid_is_empty(world: World):
    gaps_recompute(community_ids=[world.a.id])
    visit(world.h_unvisited, timezone.now() - timedelta(days=90))
    period = f"since={(timezone.localdate() - timedelta(days=120)).isoformat()}"
    in_a2 = tile_of(*centre_of(world.h_unvisited), 17)
    for layer in ("buildings", "visits", "gaps"):
        query = period if layer == "visits" else ""
        assert tile(world.street_admin, layer, in_a2, query), f"the street admin sees {layer} in grid A2"
        response = get(world.worker_a1, tile_url(layer, in_a2, query))
        assert response.status_code == 200
        assert features(response.content, layer) == [], f"{layer} of grid A2 reached grid A1's worker"
    # Their own grid they do see, in the same layers.
    own = tile_of(*centre_of(world.h_members), 17)
    assert {f.properties["code"] for f in tile(world.worker_a1, "buildings", own)} == {world.h_members.code}
    assert tile(world.worker_a1, "visits", own)
    assert tile(world.worker_a1, "gaps", own)


def test_a_grid_worker_sees_their_cell_and_community_outline_but_not_the_next(world: World):
    z15 = tile_of(X + 0.005, Y + 0.005, 15)
    assert {f.id for f in tile(world.worker_a1, "grid_cells", z15)} == {world.a1.id}
    assert {f.id for f in tile(world.street_admin, "grid_cells", z15)} == {world.a1.id, world.a2.id}
    z13 = tile_of(X + 0.02, Y + 0.005, 13)
    names = {f.properties["name"] for f in tile(world.worker_a1, "communities", z13)}
    assert names == {"甲社区"}
    assert {f.properties["name"] for f in tile(world.street_admin, "communities", z13)} == {
        "甲社区",
        "乙社区",
    }
    # Community B's admin sees B's buildings and nothing of A.
    assert tile(world.admin_b, "buildings", tile_of(*centre_of(world.h_members), 16)) == []
    assert {
        f.properties["code"] for f in tile(world.admin_b, "buildings", tile_of(*centre_of(world.h_b), 16))
    } == {world.h_b.code}


def test_signing_in_is_required_and_a_role_without_places_reads_nothing(world: World):
    url = tile_url("buildings", tile_of(*centre_of(world.h_members), 16))
    anonymous = api_client().get(url)
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "not_authenticated"
    operator = user_with(Role.OPERATOR)
    refused = get(operator, url)
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    assert refused["Content-Type"].startswith("application/json")


# --- bad addresses ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/tiles/buildings/21/0/0.mvt",  # beyond the deepest zoom
        "/tiles/buildings/16/65536/0.mvt",  # x = 2^z
        "/tiles/buildings/16/0/65536.mvt",
        "/tiles/buildings/-1/0/0.mvt",
        "/tiles/buildings/16/-3/0.mvt",
        "/tiles/buildings/abc/0/0.mvt",
        "/tiles/buildings/16/1.5/0.mvt",
        "/tiles/buildings/99999999999999999999999/0/0.mvt",
        "/tiles/buildings/0/0/0x1.mvt",
    ],
)
def test_a_tile_address_out_of_range_is_400_with_its_code(world: World, path: str):
    response = get(world.street_admin, path, HTTP_ACCEPT=MVT)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "tile_out_of_range" and "瓦片地址无效" in body["message"]


def test_an_unknown_layer_is_404_naming_the_layers(world: World):
    response = get(world.street_admin, "/tiles/members/16/0/0.mvt")
    assert response.status_code == 404
    assert response.json()["code"] == "tile_layer_unknown"
    assert "buildings" in response.json()["layers"]


@pytest.mark.parametrize(
    "path", ["/tiles/buildings/16/0.mvt", "/tiles/buildings/16/0/0", "/tiles/buildings//0/0.mvt", "/tiles/"]
)
def test_a_malformed_tile_path_is_a_json_404(world: World, path: str):
    response = get(world.street_admin, path)
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_a_bad_visit_period_is_400(world: World):
    z17 = tile_of(*centre_of(world.h_members), 17)
    bad_date = get(world.street_admin, tile_url("visits", z17, "since=2026-02-30"))
    assert bad_date.status_code == 400 and bad_date.json()["code"] == "invalid_input"
    reversed_period = get(world.street_admin, tile_url("visits", z17, "since=2026-03-02&until=2026-03-01"))
    assert reversed_period.status_code == 400 and "since" in reversed_period.json()["errors"]


def test_the_world_tile_at_zoom_0_is_served(world: World):
    response = get(world.street_admin, "/tiles/grid_cells/0/0/0.mvt")
    assert response.status_code == 200
    # At zoom 0 a grid cell is far under a pixel: dropped, not drawn as a speck.
    assert features(response.content, "grid_cells") == []
    assert features(get(world.street_admin, "/tiles/streets/0/0/0.mvt").content, "streets") == []
