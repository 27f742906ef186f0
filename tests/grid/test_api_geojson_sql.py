"""The space lists written by PostgreSQL (edge.geojson) answer what the serializers answered.

Every converted endpoint is asked twice through the HTTP client, once as it is and once with the
serializer path put back (edge.api.feature_page with the layout's serializer), and the two
FeatureCollections must be the same: same features in the same order, same properties with the
same JSON types, same numbers, same count/next/previous. Then: the query budget, the caller's reach,
the 400/404 answers, and the layouts against their serializers' fields.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.gis.geos import Point
from django.db import connection
from django.test.utils import CaptureQueriesContext

import grid.apis
from edge.api import feature_page
from grid import services
from grid.models import Building, Role
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
from tests.people import api_client, user_with

pytestmark = pytest.mark.django_db

X0, Y0 = ORIGIN
# Coordinates that use all of a double's digits, so that a precision change would show.
THIRD = 0.001 / 3


@pytest.fixture
def scene():
    """One street, two communities; community A split into two grids (one with a responsible body,
    one falling back to the community), redrawn on 2025-01-01; buildings of every kind, one
    outside any grid, one with awkward text; service centres of the street and of a community,
    one far from China with sub-degree coordinates (15-decimal rounding matters there)."""
    street = StreetFactory(geom=multi(rect(X0, Y0, X0 + 0.02 + THIRD, Y0 + 0.02)))
    a = CommunityFactory(street=street, geom=multi(rect(X0, Y0, X0 + 0.01, Y0 + 0.01)), residents=4321)
    b = CommunityFactory(street=street, geom=multi(rect(X0 + 0.01, Y0, X0 + 0.02, Y0 + 0.01)))
    west = GridCellFactory(community=a, boundary=rect(X0, Y0, X0 + 0.005 + THIRD, Y0 + 0.01), valid_from=date(2024, 1, 1))
    east = GridCellFactory(
        community=a,
        boundary=rect(X0 + 0.005 + THIRD, Y0, X0 + 0.01, Y0 + 0.01),
        valid_from=date(2024, 1, 1),
        responsible_body="某物业公司",
    )
    services.grid_boundaries_set(
        shapes={
            west.id: rect(X0, Y0, X0 + 0.007, Y0 + 0.01),
            east.id: rect(X0 + 0.007, Y0, X0 + 0.01, Y0 + 0.01),
        },
        valid_from=date(2025, 1, 1),
        note="边界东移",
    )
    other = GridCellFactory(community=b, boundary=rect(X0 + 0.01, Y0, X0 + 0.02, Y0 + 0.01), valid_from=date(2024, 1, 1))
    kinds = [k for k, _ in Building.Kind.choices]
    for i, kind in enumerate(kinds):
        BuildingFactory(
            community=a, kind=kind, households=10 + i, floors=1 + i,
            geom=square(X0 + 0.0005 + i * 0.0015 + THIRD, Y0 + 0.001 + i * THIRD, 0.0002 + THIRD / 7),
        )
    BuildingFactory(
        community=a, name='引号"与\\反斜杠\n换行', address="",
        geom=square(X0 + 0.0021, Y0 + 0.0061, 0.0003),
    )
    BuildingFactory(community=b, geom=square(X0 + 0.015, Y0 + 0.005, 0.0002))
    # Inside community B's outline but north of every grid: no grid holds it.
    BuildingFactory(community=b, geom=square(X0 + 0.015, Y0 + 0.015, 0.0002))
    services.buildings_reassign(community_ids=[a.id, b.id])
    ServiceCentreFactory(street=street, code="SC-STREET", geom=Point(X0 + THIRD, Y0 + THIRD, srid=4326))
    ServiceCentreFactory(street=street, community=a, level="community", code="SC-A", service_radius_m=500)
    ServiceCentreFactory(
        street=street, community=b, level="station", code="SC-TINY",
        geom=Point(0.1 + 0.2, 1e-7 + THIRD / 1000, srid=4326),
    )
    return {"street": street, "a": a, "b": b, "west": west, "east": east, "other": other}


def _serializer_path(*, request: Any, view: Any, queryset: Any, layout: Any) -> Any:
    # How the lists answered before edge.geojson: rest_framework_gis over model instances.
    return feature_page(request=request, view=view, queryset=queryset, serializer_class=layout.serializer)


def _both(client, monkeypatch, url, params=None):
    new = client.get(url, params or {})
    with monkeypatch.context() as patch:
        patch.setattr(grid.apis, "feature_collection_page", _serializer_path)
        old = client.get(url, params or {})
    return new, old


# GDAL's writer, under the serializer, cut what looked like round-off ("110.410000000000011" became
# 110.41); PostgreSQL writes the stored double. The two differ by less than this (see edge.geojson).
COORDINATE_TOLERANCE = 1e-13


def assert_same_json(new: Any, old: Any, path: str = "$") -> None:
    """Equal as a client reads them, stricter than ==: True is not 1, a string is not a number;
    110 and 110.0 are the same JSON number. Coordinates may differ by GDAL's rounding only."""
    if isinstance(old, bool) or isinstance(new, bool):
        assert new is old, f"{path}: {new!r} != {old!r}"
    elif isinstance(old, int | float) and isinstance(new, int | float):
        if ".geometry.coordinates" in path:
            assert abs(float(new) - float(old)) < COORDINATE_TOLERANCE, f"{path}: {new!r} != {old!r}"
        else:
            assert float(new) == float(old), f"{path}: {new!r} != {old!r}"
    elif isinstance(old, dict):
        assert isinstance(new, dict) and list(new) == list(old), f"{path}: keys {list(new)} != {list(old)}"
        for key in old:
            assert_same_json(new[key], old[key], f"{path}.{key}")
    elif isinstance(old, list):
        assert isinstance(new, list) and len(new) == len(old), f"{path}: {new!r} != {old!r}"
        for i, (n, o) in enumerate(zip(new, old, strict=True)):
            assert_same_json(n, o, f"{path}[{i}]")
    else:
        assert type(new) is type(old) and new == old, f"{path}: {new!r} != {old!r}"


def _cases(s):
    box_a = f"{X0},{Y0},{X0 + 0.006},{Y0 + 0.01}"
    return [
        ("/api/streets/", {}),
        ("/api/streets/", {"in_bbox": box_a}),
        ("/api/communities/", {}),
        ("/api/communities/", {"street": s["street"].code}),
        ("/api/communities/", {"page_size": 1, "page": 2}),
        ("/api/grid-cells/", {}),
        ("/api/grid-cells/", {"as_of": "2024-06-01"}),
        ("/api/grid-cells/", {"as_of": "2023-01-01"}),
        ("/api/grid-cells/", {"community": s["a"].code, "in_bbox": box_a}),
        ("/api/buildings/", {}),
        ("/api/buildings/", {"in_bbox": box_a}),
        ("/api/buildings/", {"grid": s["west"].code}),
        ("/api/buildings/", {"community": s["b"].code}),
        ("/api/buildings/", {"page_size": 3, "page": 2}),
        ("/api/buildings/", {"page_size": 3, "page": "last"}),
        ("/api/service-centres/", {}),
        ("/api/service-centres/", {"community": s["a"].code}),
        ("/api/service-centres/", {"street": s["street"].code, "page_size": 2}),
    ]


@pytest.mark.parametrize("role", [None, Role.STREET_ADMIN, Role.GRID_WORKER])
def test_every_list_answers_as_the_serializer_did(scene, monkeypatch, role):
    if role is None:
        client = api_client(get_user_model().objects.create_superuser("boss"))
    elif role == Role.GRID_WORKER:
        client = api_client(user_with(role, grid_cell=scene["west"]))
    else:
        client = api_client(user_with(role, street=scene["street"]))
    answered = 0
    for url, params in _cases(scene):
        new, old = _both(client, monkeypatch, url, params)
        # A grid worker's one community has no page 2: the same 404 both ways.
        assert new.status_code == old.status_code, (url, params, new.content)
        assert new["Content-Type"] == old["Content-Type"] == "application/json"
        assert_same_json(json.loads(new.content), json.loads(old.content), f"{url}?{params}")
        answered += new.status_code == 200
    assert answered >= len(_cases(scene)) - 1


def test_the_scene_covers_what_the_comparison_must_see(scene, monkeypatch):
    """Guard the comparison above against a scene that would prove nothing."""
    client = api_client(user_with(Role.STREET_ADMIN, street=scene["street"]))
    buildings = client.get("/api/buildings/").json()
    assert buildings["count"] == 8
    assert {f["properties"]["kind"] for f in buildings["features"]} == {k for k, _ in Building.Kind.choices}
    assert None in {f["properties"]["grid_code"] for f in buildings["features"]}
    codes = [f["id"] for f in buildings["features"]]
    assert codes == sorted(codes)
    cells = {f["id"]: f["properties"] for f in client.get("/api/grid-cells/").json()["features"]}
    assert cells[scene["west"].code]["responsible_body_is_fallback"] is True
    assert cells[scene["east"].code]["responsible_body"] == "某物业公司"
    assert cells[scene["west"].code]["valid_from"] == "2025-01-01" and cells[scene["west"].code]["valid_to"] is None
    past = {f["id"]: f["properties"] for f in client.get("/api/grid-cells/", {"as_of": "2024-06-01"}).json()["features"]}
    assert past[scene["west"].code]["valid_to"] == "2025-01-01"
    tiny = client.get("/api/service-centres/", {"community": scene["b"].code}).json()["features"][0]
    # 15 decimal places, as GDAL wrote them for the serializer: 0.30000000000000004 reads as 0.3.
    assert tiny["geometry"]["coordinates"][0] == 0.3


def test_a_grid_worker_bbox_read_leaves_out_the_neighbouring_grid(scene):
    worker = api_client(user_with(Role.GRID_WORKER, grid_cell=scene["west"]))
    # The box covers the whole street: both grids of community A and community B's grid.
    everything = f"{X0 - 0.001},{Y0 - 0.001},{X0 + 0.03},{Y0 + 0.03}"
    body = worker.get("/api/buildings/", {"in_bbox": everything}).json()
    in_west = set(Building.objects.filter(grid_cell=scene["west"]).values_list("code", flat=True))
    assert in_west and {f["id"] for f in body["features"]} == in_west
    assert body["count"] == len(in_west)
    assert {f["properties"]["grid_code"] for f in body["features"]} == {scene["west"].code}
    cells = worker.get("/api/grid-cells/", {"in_bbox": everything}).json()
    assert [f["id"] for f in cells["features"]] == [scene["west"].code]


LIST_URLS = ["/api/streets/", "/api/communities/", "/api/grid-cells/", "/api/buildings/", "/api/service-centres/"]


@pytest.mark.parametrize("url", LIST_URLS)
@pytest.mark.parametrize("bbox", ["1,2,3", "a,b,c,d", "nan,0,1,1", "3,0,1,1", "0,0,200,1"])
def test_malformed_bbox_is_still_400(scene, url, bbox):
    response = api_client(user_with(Role.STREET_ADMIN, street=scene["street"])).get(url, {"in_bbox": bbox})
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_input"
    assert "in_bbox" in response.json()["errors"]


@pytest.mark.parametrize("url", LIST_URLS)
def test_a_page_past_the_end_is_still_404_and_an_empty_list_is_a_collection(scene, url):
    client = api_client(user_with(Role.STREET_ADMIN, street=scene["street"]))
    for page in ("9", "0", "-1", "abc", "1.5", "99999999999999999999999"):
        response = client.get(url, {"page": page})
        assert response.status_code == 404, (url, page)
        assert response.json()["code"] == "not_found"
    empty = client.get(url, {"in_bbox": "10,10,11,11"})
    assert empty.status_code == 200
    assert empty.json() == {"type": "FeatureCollection", "count": 0, "next": None, "previous": None, "features": []}


@pytest.mark.parametrize("url", LIST_URLS)
def test_a_page_is_one_statement_whatever_its_size(scene, url, django_assert_max_num_queries):
    client = api_client(user_with(Role.STREET_ADMIN, street=scene["street"]))
    # The role lookup, then one statement that counts and writes the FeatureCollection's features.
    with django_assert_max_num_queries(2), CaptureQueriesContext(connection) as ctx:
        body = client.get(url, {"page_size": 1000}).json()
    assert body["features"] and body["count"] == len(body["features"])
    assert ctx.captured_queries[-1]["sql"].startswith("SELECT (SELECT count(*) FROM (")
    assert "json_agg(json_build_object(" in ctx.captured_queries[-1]["sql"]
    with django_assert_max_num_queries(2):
        assert len(client.get(url, {"page_size": 1}).json()["features"]) == 1
    # ?page=last has to count before it knows which page that is.
    with django_assert_max_num_queries(3):
        assert client.get(url, {"page_size": 1, "page": "last"}).json()["next"] is None


def test_the_browsable_api_still_shows_the_page(scene):
    client = api_client(user_with(Role.STREET_ADMIN, street=scene["street"]))
    response = client.get("/api/buildings/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert Building.objects.order_by("code").first().code in response.content.decode()


@pytest.mark.parametrize(
    "layout",
    [
        grid.apis.STREET_FEATURE,
        grid.apis.COMMUNITY_FEATURE,
        grid.apis.GRID_CELL_FEATURE,
        grid.apis.BUILDING_FEATURE,
        grid.apis.SERVICE_CENTRE_FEATURE,
    ],
)
def test_each_layout_names_the_serializer_properties_in_order(layout):
    """A field added to a serializer (and so to the OpenAPI schema) must be added to its layout."""
    serializer = layout.serializer()
    meta = serializer.Meta
    expected = [name for name in serializer.fields if name not in (meta.id_field, meta.geo_field)]
    assert list(layout.properties) == expected
    assert layout.geometry == meta.geo_field


# --- helpers for layouts of other apps ----------------------------------------------------------


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "UTC", "America/New_York"])
def test_local_datetime_writes_what_drf_writes(zone):
    """Event lists (visits, contacts) show timestamps: the SQL text must be DRF's, offset included."""
    from datetime import UTC, datetime

    from django.utils import timezone
    from rest_framework import serializers

    from edge.geojson import local_datetime
    from grid.models import Street

    instants = [
        datetime(2025, 3, 1, 1, 30, tzinfo=UTC),
        datetime(2025, 7, 1, 16, 0, 0, 123456, tzinfo=UTC),  # New York in summer time
        datetime(2024, 12, 31, 23, 59, 59, 500, tzinfo=UTC),
    ]
    streets = [StreetFactory() for _ in instants]
    for street, instant in zip(streets, instants, strict=True):
        Street.objects.filter(pk=street.pk).update(created_at=instant)
    with timezone.override(zone):
        written = dict(Street.objects.annotate(t=local_datetime("created_at")).values_list("pk", "t"))
        for street, instant in zip(streets, instants, strict=True):
            assert written[street.pk] == serializers.DateTimeField().to_representation(instant)
