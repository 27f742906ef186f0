"""The read API of space, through the HTTP client: GeoJSON shapes, filters, history, point lookup,
errors in the shared shape, the OpenAPI schema and query budgets."""

import base64
import json
from datetime import date

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from grid import services
from grid.coords import wgs84_to_bd09, wgs84_to_gcj02
from grid.models import GridBoundary, Role
from tests.factories import (
    ORIGIN,
    BuildingFactory,
    CommunityFactory,
    GridCellFactory,
    ServiceCentreFactory,
    StreetFactory,
    multi,
    rect,
    square,
)
from tests.people import grant

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2 costs ~0.3 s per user created or logged in; these tests are not about hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


X0, Y0 = ORIGIN
OLD = date(2024, 1, 1)
REDRAW = date(2025, 1, 1)


@pytest.fixture
def two_cells():
    """One community split west/east into two grids on 2024-01-01; on 2025-01-01 the border moves
    east so a strip of the east grid passes to the west grid. One building in each grid."""
    community = CommunityFactory()
    west = GridCellFactory(community=community, boundary=rect(X0, Y0, X0 + 0.005, Y0 + 0.01), valid_from=OLD)
    east = GridCellFactory(
        community=community,
        boundary=rect(X0 + 0.005, Y0, X0 + 0.01, Y0 + 0.01),
        valid_from=OLD,
        responsible_body="某物业公司",
    )
    BuildingFactory(community=community, geom=square(X0 + 0.001, Y0 + 0.001, 0.0002), households=30)
    BuildingFactory(community=community, geom=square(X0 + 0.008, Y0 + 0.008, 0.0002), households=12)
    services.buildings_reassign(community_ids=[community.id])
    return community, west, east


def redraw(west, east):
    services.grid_boundaries_set(
        shapes={
            west.id: rect(X0, Y0, X0 + 0.007, Y0 + 0.01),
            east.id: rect(X0 + 0.007, Y0, X0 + 0.01, Y0 + 0.01),
        },
        valid_from=REDRAW,
        note="边界东移",
    )


def features_by_code(response):
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["type"] == "FeatureCollection"
    return {f["properties"]["code"]: f for f in body["features"]}


# --- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["/api/streets/", "/api/grid-cells/", "/api/grid-cells/at/?lon=110.4&lat=21.19", "/api/buildings/"]
)
def test_anonymous_is_refused_with_a_code(client, url):
    response = client.get(url)
    assert response.status_code in (401, 403)
    assert response.json()["code"] == "not_authenticated"
    assert response.json()["message"] == "请先登录"


def test_basic_auth_is_accepted_and_a_wrong_password_refused(client):
    street = StreetFactory()
    user = get_user_model().objects.create_user("gridworker", password="s3cret-pass")
    grant(user, Role.STREET_ADMIN, street=street)
    good = base64.b64encode(b"gridworker:s3cret-pass").decode()
    bad = base64.b64encode(b"gridworker:wrong").decode()
    assert client.get("/api/streets/", HTTP_AUTHORIZATION=f"Basic {good}").status_code == 200
    response = client.get("/api/streets/", HTTP_AUTHORIZATION=f"Basic {bad}")
    assert response.status_code in (401, 403)
    assert response.json()["code"] == "authentication_failed"


def test_a_user_without_any_role_reaches_nothing(client):
    StreetFactory()
    client.force_login(get_user_model().objects.create_user("nobody", password="s3cret-pass"))
    response = client.get("/api/streets/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_a_grid_worker_sees_only_their_grid_and_cannot_probe_others(client, two_cells):
    community, west, east = two_cells
    user = get_user_model().objects.create_user("worker", password="s3cret-pass")
    grant(user, Role.GRID_WORKER, grid_cell=west)
    client.force_login(user)
    assert set(features_by_code(client.get("/api/grid-cells/"))) == {west.code}
    buildings = client.get("/api/buildings/").json()["features"]
    assert [b["properties"]["grid_code"] for b in buildings] == [west.code]
    assert set(features_by_code(client.get("/api/communities/"))) == {community.code}
    # Another grid answers exactly like a grid that does not exist.
    forbidden = client.get(f"/api/grid-cells/{east.code}/")
    missing = client.get("/api/grid-cells/440803999999999/")
    assert forbidden.status_code == missing.status_code == 404
    assert forbidden.json()["code"] == missing.json()["code"] == "not_found"
    assert client.get(f"/api/grid-cells/{east.code}/history/").status_code == 404
    # A point in the other grid is in none of theirs.
    assert at(client, lon=X0 + 0.008, lat=Y0 + 0.005).status_code == 404
    assert at(client, lon=X0 + 0.002, lat=Y0 + 0.005).json()["properties"]["code"] == west.code


# --- streets, communities ---------------------------------------------------------------------


def test_street_list_and_detail_are_geojson(admin_client):
    street = StreetFactory(name="海头街道")
    page = admin_client.get("/api/streets/").json()
    assert page["type"] == "FeatureCollection"
    assert page["count"] == 1 and page["next"] is None and page["previous"] is None
    feature = page["features"][0]
    assert feature["type"] == "Feature"
    assert feature["id"] == street.code
    assert feature["geometry"]["type"] == "MultiPolygon"
    assert feature["properties"] == {"code": street.code, "name": "海头街道", "district_adcode": "440803"}

    detail = admin_client.get(f"/api/streets/{street.code}/").json()
    assert detail["type"] == "Feature" and detail["properties"]["name"] == "海头街道"


@pytest.mark.parametrize(
    "url",
    [
        "/api/streets/440803999/",
        "/api/communities/440803999001/",
        "/api/grid-cells/440803999001001/",
        "/api/grid-cells/440803999001001/history/",
        "/api/buildings/NOPE/",
    ],
)
def test_unknown_code_is_404_in_our_shape(admin_client, url):
    response = admin_client.get(url)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert response.json()["message"]


def test_communities_filter_by_street(admin_client):
    a = CommunityFactory(street=StreetFactory(code="440803001"))
    b = CommunityFactory(street=StreetFactory(code="440803002"))
    both = features_by_code(admin_client.get("/api/communities/"))
    assert set(both) == {a.code, b.code}
    only_b = features_by_code(admin_client.get("/api/communities/", {"street": "440803002"}))
    assert set(only_b) == {b.code}
    assert only_b[b.code]["properties"]["street_code"] == "440803002"
    assert admin_client.get(f"/api/communities/{a.code}/").json()["properties"]["street_code"] == "440803001"


# --- grid cells -------------------------------------------------------------------------------


def test_grid_cell_properties_with_counts_and_territorial_fallback(admin_client, two_cells):
    community, west, east = two_cells
    cells = features_by_code(admin_client.get("/api/grid-cells/"))
    assert set(cells) == {west.code, east.code}
    w = cells[west.code]
    assert w["id"] == west.code
    assert w["geometry"]["type"] == "MultiPolygon"
    props = w["properties"]
    assert props["community_code"] == community.code
    assert props["responsible_body"] == f"{community.name}（属地兜底）"
    assert props["responsible_body_is_fallback"] is True
    assert props["valid_from"] == "2024-01-01" and props["valid_to"] is None
    assert (props["building_count"], props["household_count"]) == (1, 30)
    e = cells[east.code]["properties"]
    assert e["responsible_body"] == "某物业公司" and e["responsible_body_is_fallback"] is False
    assert (e["building_count"], e["household_count"]) == (1, 12)


def test_grid_cells_filter_by_community(admin_client, two_cells):
    elsewhere = CommunityFactory(geom=multi(square(X0 + 0.02, Y0, 0.005)))
    other = GridCellFactory(community=elsewhere, boundary=square(X0 + 0.02, Y0, 0.005))
    assert set(
        features_by_code(admin_client.get("/api/grid-cells/", {"community": other.community.code}))
    ) == {other.code}


def test_bbox_includes_overlapping_and_excludes_distant(admin_client, two_cells):
    _, west, east = two_cells
    # A box over the west half only (east grid starts at X0 + 0.005).
    box = f"{X0 - 0.001},{Y0 - 0.001},{X0 + 0.004},{Y0 + 0.011}"
    assert set(features_by_code(admin_client.get("/api/grid-cells/", {"in_bbox": box}))) == {west.code}
    # A box that only overlaps part of both grids still returns both.
    box = f"{X0 + 0.004},{Y0 + 0.004},{X0 + 0.006},{Y0 + 0.006}"
    assert set(features_by_code(admin_client.get("/api/grid-cells/", {"in_bbox": box}))) == {
        west.code,
        east.code,
    }
    # Far away: nothing.
    assert features_by_code(admin_client.get("/api/grid-cells/", {"in_bbox": "100,30,100.1,30.1"})) == {}
    # Buildings: the box over the east building only.
    box = f"{X0 + 0.007},{Y0 + 0.007},{X0 + 0.009},{Y0 + 0.009}"
    buildings = admin_client.get("/api/buildings/", {"in_bbox": box}).json()["features"]
    assert [b["properties"]["grid_code"] for b in buildings] == [east.code]


@pytest.mark.parametrize(
    "bbox",
    [
        "1,2,3",
        "a,b,c,d",
        "1,2,3,4,5",
        "nan,21,111,22",
        "110,21,inf,22",
        "111,21,110,22",
        "110,21,200,22",
        ",,,",
    ],
)
def test_malformed_bbox_is_400_not_500(admin_client, bbox):
    response = admin_client.get("/api/grid-cells/", {"in_bbox": bbox})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_input"
    assert "in_bbox" in body["errors"]


def test_as_of_returns_the_boundary_in_force_that_day(admin_client, two_cells):
    _, west, east = two_cells
    redraw(west, east)

    def west_extent(params):
        cells = features_by_code(admin_client.get("/api/grid-cells/", params))
        ring = cells[west.code]["geometry"]["coordinates"][0][0]
        return cells[west.code]["properties"], max(x for x, _ in ring)

    props, east_edge = west_extent({"as_of": "2024-06-01"})
    assert east_edge == pytest.approx(X0 + 0.005)
    assert (props["valid_from"], props["valid_to"]) == ("2024-01-01", "2025-01-01")

    props, east_edge = west_extent({})
    assert east_edge == pytest.approx(X0 + 0.007)
    assert (props["valid_from"], props["valid_to"]) == ("2025-01-01", None)

    # The last day of the old version and the first of the new one (half-open ranges).
    assert west_extent({"as_of": "2024-12-31"})[1] == pytest.approx(X0 + 0.005)
    assert west_extent({"as_of": "2025-01-01"})[1] == pytest.approx(X0 + 0.007)
    # Before any version: the grid had no shape yet.
    assert features_by_code(admin_client.get("/api/grid-cells/", {"as_of": "2023-01-01"})) == {}

    detail = admin_client.get(f"/api/grid-cells/{west.code}/", {"as_of": "2024-06-01"}).json()
    assert detail["properties"]["valid_to"] == "2025-01-01"
    missing = admin_client.get(f"/api/grid-cells/{west.code}/", {"as_of": "2023-01-01"})
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    bad = admin_client.get("/api/grid-cells/", {"as_of": "2024-13-01"})
    assert (
        bad.status_code == 400 and bad.json()["code"] == "invalid_input" and "as_of" in bad.json()["errors"]
    )


def test_history_lists_every_version(admin_client, two_cells):
    _, west, east = two_cells
    redraw(west, east)
    body = admin_client.get(f"/api/grid-cells/{west.code}/history/").json()
    assert body["type"] == "FeatureCollection"
    versions = [f["properties"] for f in body["features"]]
    assert [(v["valid_from"], v["valid_to"], v["is_current"]) for v in versions] == [
        ("2024-01-01", "2025-01-01", False),
        ("2025-01-01", None, True),
    ]
    assert versions[1]["note"] == "边界东移"
    assert [f["id"] for f in body["features"]] == list(
        GridBoundary.objects.filter(cell=west).order_by("valid").values_list("id", flat=True)
    )


# --- point lookup -----------------------------------------------------------------------------


def at(client, **params):
    return client.get("/api/grid-cells/at/", params)


def test_point_lookup_in_wgs84_and_the_same_place_in_gcj02_and_bd09(admin_client, two_cells):
    _, west, east = two_cells
    lon, lat = X0 + 0.002, Y0 + 0.005
    response = at(admin_client, lon=lon, lat=lat)
    assert response.status_code == 200
    assert response.json()["properties"]["code"] == west.code

    # The same place as an AMap/Tencent device reports it: several hundred metres off in raw
    # numbers, the same grid once converted.
    g_lon, g_lat = wgs84_to_gcj02(lon, lat)
    assert abs(g_lon - lon) + abs(g_lat - lat) > 0.003
    assert at(admin_client, lon=g_lon, lat=g_lat, crs="gcj02").json()["properties"]["code"] == west.code
    b_lon, b_lat = wgs84_to_bd09(lon, lat)
    assert at(admin_client, lon=b_lon, lat=b_lat, crs="bd09").json()["properties"]["code"] == west.code
    assert at(admin_client, lon=lon, lat=lat, crs="cgcs2000").json()["properties"]["code"] == west.code
    # Taken raw, the GCJ-02 numbers land ~500 m east: in the wrong grid.
    assert at(admin_client, lon=g_lon, lat=g_lat).json()["properties"]["code"] == east.code


def test_point_lookup_follows_the_date_across_a_redraw(admin_client, two_cells):
    _, west, east = two_cells
    redraw(west, east)
    # In the strip that moved from the east grid to the west grid on 2025-01-01.
    lon, lat = X0 + 0.006, Y0 + 0.005
    before = at(admin_client, lon=lon, lat=lat, date="2024-12-31").json()
    after = at(admin_client, lon=lon, lat=lat, date="2025-01-01").json()
    assert before["properties"]["code"] == east.code
    assert before["properties"]["valid_to"] == "2025-01-01"
    assert after["properties"]["code"] == west.code
    assert at(admin_client, lon=lon, lat=lat).json()["properties"]["code"] == west.code
    # A point on the shared border still belongs to a grid (ST_Covers), the lower code.
    assert at(admin_client, lon=X0 + 0.007, lat=lat).json()["properties"]["code"] == min(west.code, east.code)


def test_point_in_no_grid_is_404_with_a_chinese_message(admin_client, two_cells):
    response = at(admin_client, lon=X0 + 0.05, lat=Y0 + 0.05)
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "not_found"
    assert "不属于您可访问的任何网格" in body["message"]
    # And before the grids existed.
    response = at(admin_client, lon=X0 + 0.002, lat=Y0 + 0.005, date="2023-06-01")
    assert response.status_code == 404 and "2023-06-01" in response.json()["message"]


@pytest.mark.parametrize(
    ("params", "code", "field"),
    [
        ({"lon": "abc", "lat": "21.19"}, "invalid_input", "lon"),
        ({"lat": "21.19"}, "invalid_input", "lon"),
        ({"lon": "110.4"}, "invalid_input", "lat"),
        ({"lon": "110.4", "lat": ""}, "invalid_input", "lat"),
        ({"lon": "nan", "lat": "21.19"}, "invalid_input", "lon"),
        ({"lon": "110.4", "lat": "inf"}, "invalid_input", "lat"),
        ({"lon": "110.4", "lat": "21.19", "date": "yesterday"}, "invalid_input", "date"),
        ({"lon": "110.4", "lat": "21.19", "crs": "mars2000"}, "crs_unknown", None),
        ({"lon": "110.4", "lat": "95", "crs": "wgs84"}, "coords_out_of_range", None),
        ({"lon": "21.19", "lat": "110.4"}, "coords_out_of_range", None),
    ],
)
def test_point_lookup_rejects_bad_input(admin_client, params, code, field):
    response = admin_client.get("/api/grid-cells/at/", params)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == code
    assert body["message"]
    if field:
        assert field in body["errors"]


# --- buildings, service centres ---------------------------------------------------------------


def test_building_feature_and_filters(admin_client, two_cells):
    community, west, east = two_cells
    other = BuildingFactory(code="OTHER1")  # another community, no grid
    page = admin_client.get("/api/buildings/").json()
    assert page["count"] == 3
    by_grid = {f["properties"]["grid_code"]: f for f in page["features"]}
    assert set(by_grid) == {west.code, east.code, None}

    feature = admin_client.get("/api/buildings/", {"grid": west.code}).json()["features"]
    assert len(feature) == 1
    f = feature[0]
    assert f["geometry"]["type"] == "Polygon"
    props = f["properties"]
    lon, lat = props["point"]
    assert X0 + 0.001 < lon < X0 + 0.0012 and Y0 + 0.001 < lat < Y0 + 0.0012
    assert props["community_code"] == community.code
    assert (props["households"], props["floors"]) == (30, 6)
    assert (props["kind"], props["kind_display"]) == ("residential", "住宅")

    assert len(admin_client.get("/api/buildings/", {"community": community.code}).json()["features"]) == 2
    detail = admin_client.get(f"/api/buildings/{other.code}/").json()
    assert detail["id"] == "OTHER1" and detail["properties"]["grid_code"] is None


def test_service_centres(admin_client):
    street = StreetFactory()
    community = CommunityFactory(street=street)
    ServiceCentreFactory(street=street, code="SC-STREET", name="街道党群服务中心")
    ServiceCentreFactory(
        street=street, community=community, level="community", code="SC-COMM", service_radius_m=500
    )
    cells = features_by_code(admin_client.get("/api/service-centres/"))
    assert set(cells) == {"SC-STREET", "SC-COMM"}
    assert cells["SC-STREET"]["geometry"]["type"] == "Point"
    assert cells["SC-STREET"]["properties"]["level_display"] == "街道级"
    assert cells["SC-STREET"]["properties"]["community_code"] is None
    assert cells["SC-COMM"]["properties"]["community_code"] == community.code
    assert cells["SC-COMM"]["properties"]["service_radius_m"] == 500
    only = features_by_code(admin_client.get("/api/service-centres/", {"community": community.code}))
    assert set(only) == {"SC-COMM"}


def test_pagination_pages_and_caps_page_size(admin_client):
    street = StreetFactory()
    for i in range(3):
        CommunityFactory(street=street, code=f"{i + 1:03d}")
    first = admin_client.get("/api/communities/", {"page_size": 2}).json()
    assert first["count"] == 3 and len(first["features"]) == 2 and first["next"]
    second = admin_client.get(first["next"]).json()
    assert len(second["features"]) == 1 and second["next"] is None
    assert admin_client.get("/api/communities/", {"page": 9}).status_code == 404


# --- schema -----------------------------------------------------------------------------------


def test_openapi_schema_is_valid_and_lists_the_endpoints(admin_client):
    from drf_spectacular.validation import validate_schema

    response = admin_client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = json.loads(response.content)
    validate_schema(schema)
    paths = schema["paths"]
    for path in [
        "/api/streets/",
        "/api/streets/{code}/",
        "/api/communities/",
        "/api/communities/{code}/",
        "/api/grid-cells/",
        "/api/grid-cells/at/",
        "/api/grid-cells/{code}/",
        "/api/grid-cells/{code}/history/",
        "/api/buildings/",
        "/api/buildings/{code}/",
        "/api/service-centres/",
    ]:
        assert "get" in paths[path], path
    at_op = paths["/api/grid-cells/at/"]["get"]
    assert at_op["summary"] == "按位置查网格"
    assert {p["name"] for p in at_op["parameters"]} >= {"lon", "lat", "crs", "date"}
    assert "in_bbox" in {p["name"] for p in paths["/api/buildings/"]["get"]["parameters"]}


# --- query budgets ----------------------------------------------------------------------------


def _queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


LIST_URLS = [
    "/api/streets/",
    "/api/communities/",
    "/api/grid-cells/",
    "/api/buildings/",
    "/api/service-centres/",
]


def _populate(n):
    street = StreetFactory()
    community = CommunityFactory(street=street)
    for i in range(n):
        GridCellFactory(community=community, boundary=square(X0 + i * 0.001, Y0, 0.001))
        BuildingFactory(community=community, geom=square(X0 + i * 0.001 + 0.0002, Y0 + 0.0002, 0.0002))
        ServiceCentreFactory(street=street, community=community, level="community")
    services.buildings_reassign(community_ids=[community.id])


@pytest.mark.parametrize("url", LIST_URLS)
def test_list_query_count_does_not_grow_with_rows(admin_client, url, django_assert_max_num_queries):
    _populate(1)
    budget = _queries(admin_client, url)
    _populate(6)
    body = admin_client.get(url).json()
    assert len(body["features"]) >= 2
    with django_assert_max_num_queries(budget):
        admin_client.get(url)


def test_point_lookup_and_detail_budgets(admin_client, two_cells, django_assert_max_num_queries):
    _, west, _ = two_cells
    # session + user, the point lookup, the feature with its counts
    with django_assert_max_num_queries(5):
        assert at(admin_client, lon=X0 + 0.002, lat=Y0 + 0.005).status_code == 200
    with django_assert_max_num_queries(4):
        assert admin_client.get(f"/api/grid-cells/{west.code}/").status_code == 200
