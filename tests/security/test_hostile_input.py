"""Hostile and broken input through the HTTP client against the real application: every refusal
is a 4xx with a stable code and a Chinese message, never a 500, and nothing is half-written."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from grid.models import AuditEvent, Building, Role
from orgs.models import PartyMember, PartyOrganisation
from tests.factories import ORIGIN
from tests.orgs.conftest import space  # noqa: F401 - fixture
from tests.orgs.reach_world import world_fixture  # noqa: F401 - fixture
from tests.people import user_with

pytestmark = pytest.mark.django_db

X, Y = ORIGIN
CJK = re.compile(r"[\u4e00-\u9fff]")
SCRIPT = "<script>alert(1)</script>"
# NUL is not SQL, but PostgreSQL refuses it in text: it must be a 400/404, not a database error.
SQL_INJECTIONS = [
    "a\x00b",
    "' OR 1=1 --",
    '"; DROP TABLE grid_building; --',
    "1; SELECT pg_sleep(5)--",
    "%' OR '%'='",
]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_user(world):
    return user_with(Role.STREET_ADMIN, street=world.space.street)


@pytest.fixture
def api(admin_user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=admin_user).key}")
    return client


def assert_refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code, body
    assert CJK.search(body["message"]), body
    return body


def _org_payload(world, **over):
    return {
        "kind": "building_group",
        "level": "group",
        "name": "甲二楼栋党小组",
        "code": "BG-HOSTILE",
        "parent": world.branch_a2.pk,
        "buildings": [world.space.house_a2.code],
    } | over


# --- bodies ---------------------------------------------------------------------------------------


def test_an_oversized_body_is_413_and_writes_nothing(api, world, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    before = PartyOrganisation.objects.count()
    body = json.dumps(_org_payload(world, unit_name="x" * 10_000))
    response = api.post("/api/organisations/", body, content_type="application/json")
    assert_refused(response, 413, "payload_too_large")
    login = APIClient().post(
        "/api/auth/token/",
        json.dumps({"username": "x" * 10_000, "password": "y"}),
        content_type="application/json",
    )
    assert_refused(login, 413, "payload_too_large")
    assert PartyOrganisation.objects.count() == before


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b'{"name": "\xe7\x94', "application/json", 400, "malformed_request"),  # truncated
        (b"{'name': 'single quotes'}", "application/json", 400, "malformed_request"),
        (b'{"term_years": NaN}', "application/json", 400, "malformed_request"),
        (b'{"name": "\xff\xfe\xfa"}', "application/json", 400, "malformed_request"),  # not UTF-8
        (b"[" * 50_000 + b"]" * 50_000, "application/json", 400, "malformed_request"),
        (b'{"a": ' * 50_000 + b"1" + b"}" * 50_000, "application/json", 400, "malformed_request"),
        (b"[1, 2, 3]", "application/json", 400, "invalid_input"),  # JSON, but not an object
        (b'"just a string"', "application/json", 400, "invalid_input"),
        (b"42", "application/json", 400, "invalid_input"),
        (b"null", "application/json", 400, "invalid_input"),
        (b'{"name": "x"}', "text/plain", 415, "unsupported_media_type"),
        (b"<org><name>x</name></org>", "application/xml", 415, "unsupported_media_type"),
        (b'{"name": "x"}', "multipart/form-data", 400, "malformed_request"),  # no boundary
    ],
    ids=[
        "truncated",
        "single-quotes",
        "nan-literal",
        "invalid-utf8",
        "deep-arrays",
        "deep-objects",
        "array",
        "string",
        "number",
        "null",
        "text-plain",
        "xml",
        "multipart-without-boundary",
    ],
)
def test_broken_bodies_are_refused_with_a_code(api, world, body, content_type, status, code):
    before = (PartyOrganisation.objects.count(), PartyMember.objects.count(), AuditEvent.objects.count())
    for path in ("/api/organisations/", "/api/members/", f"/api/members/{world.member_a1.pk}/"):
        method = api.patch if path.endswith(f"{world.member_a1.pk}/") else api.post
        assert_refused(method(path, body, content_type=content_type), status, code)
    assert_refused(APIClient().post("/api/auth/token/", body, content_type=content_type), status, code)
    after = (PartyOrganisation.objects.count(), PartyMember.objects.count(), AuditEvent.objects.count())
    assert after == before
    assert PartyMember.objects.get(pk=world.member_a1.pk).name == "甲一"


def test_an_unknown_charset_is_read_as_utf8_not_a_crash(api, world):
    before = PartyOrganisation.objects.count()
    body = json.dumps({"name": "字符集"}).encode()
    response = api.post("/api/organisations/", body, content_type="application/json; charset=no-such-charset")
    assert_refused(response, 400, "invalid_input")  # kind, level and code are missing
    assert PartyOrganisation.objects.count() == before


# --- query strings --------------------------------------------------------------------------------


def _list_operations() -> list[tuple[str, list[str]]]:
    """Every GET operation without path parameters and its query parameters, from the schema."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    out = []
    for path, item in schema["paths"].items():
        get = item.get("get")
        if get is None or "{" in path:
            continue
        params = [p["name"] for p in get.get("parameters", []) if p["in"] == "query"]
        out.append((path, params))
    return sorted(out)


LIST_OPERATIONS = _list_operations()


def test_the_schema_lists_the_endpoints_this_file_attacks():
    paths = {path for path, _ in LIST_OPERATIONS}
    assert {"/api/buildings/", "/api/members/", "/api/grid-cells/at/", "/api/rules/violations/"} <= paths
    assert all(params for _, params in LIST_OPERATIONS)


@pytest.mark.parametrize(("path", "params"), LIST_OPERATIONS, ids=[p for p, _ in LIST_OPERATIONS])
def test_sql_injection_in_every_query_parameter_is_inert(api, path, params):
    buildings = Building.objects.count()
    for param in params:
        for payload in SQL_INJECTIONS:
            response = api.get(path, {param: payload})
            assert response.status_code in (200, 400, 404), (param, payload, response.content)
            if response.status_code == 200:
                # Nothing matches a code like that: the text was a value, not SQL.
                body = response.json()
                items = body.get("features", body.get("results"))
                if items is not None and param not in ("page", "page_size"):
                    assert items == [], (param, payload)
            else:
                assert CJK.search(response.json()["message"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('grid_building') IS NOT NULL")
        assert cursor.fetchone() == (True,)
    assert Building.objects.count() == buildings


@pytest.mark.parametrize("page", ["999999", "0", "-1", "abc", "1e3", "' OR 1=1 --"])
def test_a_page_that_is_no_page_is_404_in_chinese_on_every_paginated_list(api, page):
    for path, params in LIST_OPERATIONS:
        if "page" not in params:
            continue
        body = assert_refused(api.get(path, {"page": page}), 404, "not_found")
        assert "页码" in body["message"], (path, body)


def test_sql_injection_in_path_codes_reads_as_missing(api):
    for path in ("/api/streets/{}/", "/api/communities/{}/", "/api/grid-cells/{}/", "/api/buildings/{}/"):
        for payload in SQL_INJECTIONS:
            response = api.get(path.format(payload.replace("/", "")))
            assert response.status_code == 404, (path, payload, response.content)
    assert Building.objects.exists()


# --- stored script ------------------------------------------------------------------------------


def test_script_in_names_is_stored_as_text_and_escaped_in_the_admin(api, world, client):
    client.force_login(User.objects.create_superuser("root", password=None))
    org = api.post("/api/organisations/", _org_payload(world, name=SCRIPT), format="json")
    assert org.status_code == 201, org.content
    member = api.post(
        "/api/members/",
        {"name": SCRIPT, "gender": "female", "organisation": world.branch_a2.pk},
        format="json",
    )
    assert member.status_code == 201, member.content
    assert org.json()["name"] == member.json()["name"] == SCRIPT
    assert PartyOrganisation.objects.get(pk=org.json()["id"]).name == SCRIPT
    assert PartyMember.objects.get(pk=member.json()["id"]).name == SCRIPT
    for model in ("partyorganisation", "partymember"):
        page = client.get(reverse(f"admin:orgs_{model}_changelist"))
        assert page.status_code == 200, (page.status_code, page.get("Location"))
        html = page.content.decode()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, model
        assert "<script>alert" not in html, model
    change = client.get(reverse("admin:orgs_partymember_change", args=[member.json()["id"]]))
    assert "<script>alert" not in change.content.decode()


# --- point lookup -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"lon": "200", "lat": "21.2"}, "coords_out_of_range"),
        ({"lon": "110.4", "lat": "-91"}, "coords_out_of_range"),
        ({"lon": "21.19", "lat": "110.40"}, "coords_out_of_range"),  # swapped
        ({"lon": "1e308", "lat": "1e308"}, "coords_out_of_range"),
        ({"lon": "nan", "lat": "21.2"}, "invalid_input"),
        ({"lon": "110.4", "lat": "NaN"}, "invalid_input"),
        ({"lon": "inf", "lat": "21.2"}, "invalid_input"),
        ({"lon": "110.4", "lat": "-Infinity"}, "invalid_input"),
        ({"lon": "1e999", "lat": "21.2"}, "invalid_input"),
        ({"lon": "110.4"}, "invalid_input"),
        ({"lat": "21.2"}, "invalid_input"),
        ({}, "invalid_input"),
        ({"lon": "东经110", "lat": "21.2"}, "invalid_input"),
        ({"lon": "110.4", "lat": "21.2", "crs": "EPSG:999999"}, "crs_unknown"),
        ({"lon": "110.4", "lat": "21.2", "crs": "moon"}, "crs_unknown"),
        ({"lon": "110.4", "lat": "21.2", "crs": "' OR 1=1 --"}, "crs_unknown"),
        ({"lon": "110.4", "lat": "21.2", "crs": "x" * 65}, "invalid_input"),
        ({"lon": "110.4", "lat": "21.2", "date": "2024-02-30"}, "invalid_input"),
    ],
)
def test_point_lookup_refuses_bad_coordinates_with_the_right_code(api, query, code):
    response = api.get("/api/grid-cells/at/", query)
    assert_refused(response, 400, code)


def test_point_lookup_outside_every_grid_names_the_point(api):
    body = assert_refused(api.get("/api/grid-cells/at/", {"lon": "100.0", "lat": "30.0"}), 404, "not_found")
    assert "经度 100.000000" in body["message"]


# --- tokens -------------------------------------------------------------------------------------


def test_a_revoked_token_replayed_is_401(admin_user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=admin_user).key}")
    assert client.get("/api/streets/").status_code == 200
    assert client.post("/api/auth/token/revoke/").status_code == 204
    for _ in range(2):
        body = assert_refused(client.get("/api/streets/"), 401, "authentication_failed")
        assert "令牌" in body["message"]
    assert_refused(client.post("/api/auth/token/revoke/"), 401, "authentication_failed")


@pytest.mark.parametrize(
    "header",
    [
        "Token 0123456789abcdef0123456789abcdef01234567",
        "Token ' OR 1=1 --",
        "Token",
        "Token a b",
        "Token " + "a" * 5000,
        "Token " + "中文".encode().decode("latin-1"),  # as a WSGI server hands over UTF-8 bytes
        "Basic !!!notbase64",
        "Basic " + "YWRtaW46",  # "admin:" with no password
    ],
)
def test_a_forged_token_is_401(world, header):
    response = APIClient().get("/api/streets/", HTTP_AUTHORIZATION=header)
    assert_refused(response, 401, "authentication_failed")
