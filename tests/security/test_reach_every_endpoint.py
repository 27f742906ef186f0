"""Roles and scope, proved for every API route: a grid worker of grid A cannot read or write anything
of grid B (nor of any other place outside their reach), by any route.

The routes are not a hand-kept list: they are enumerated from the URL conf. A route under api/
that is neither probed nor named in an allowlist below (with its reason) fails
`test_every_api_route_is_classified`, so a new endpoint is unproven until someone classifies it.

How each kind of route is probed (see tests/security/conftest.py for the world and its places):
- no path parameter (a list): GET as the user; no identifier of a forbidden thing may appear as
  the value of an id/code key anywhere in the answer, and at least one thing the user should see
  does appear (non-vacuous). Each filter of the view's FilterSerializer is also given every
  identifier of grid B: the answer may be empty, 400 or 404, never a B thing.
- path parameters: every identifier of a forbidden thing that fits the converter → 404
  `not_found`; at least one identifier of a visible thing → 200.
- every unsafe method the view implements: against B things as worker_A → 403/404; as a writer
  holding edit_orgs elsewhere (C2) → 400/404; as no-role, leader and planner → 403; the database
  is unchanged afterwards in every case.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.converters import IntConverter
from django.utils import timezone
from rest_framework import serializers

from edge.api import ReachAPIView
from grid.access import reach_for_user
from grid.models import AuditEvent, RoleAssignment
from orgs import services as org_services
from orgs.models import PartyMember, PartyOrganisation, StationedCadre
from tests.people import api_client
from tests.security.conftest import (
    EVENT_MODELS,
    FORBIDDEN,
    ID_RANGES,
    VISIBLE,
    SecurityWorld,
    Thing,
    build_world,
    user_for,
)

pytestmark = [pytest.mark.django_db]

# Routes under api/ that hold no place-scoped data; each is tested elsewhere.
NOT_REACH_SCOPED = {
    "api/schema/": "OpenAPI document: describes the routes, holds no data (tests/security/test_schemathesis.py)",
    "api/docs/": "Swagger UI page: static HTML around the schema",
    "api/auth/token/": "sign-in: exchanges a password for a token (tests/ops/test_security.py)",
    "api/auth/token/revoke/": "signs out the caller's own token; touches nothing of any place",
    "api/cases/categories/": "the street office's case categories, one table for every street, no place "
    "(tests/orgs/test_cases_api.py::test_categories)",
    "api/inbox/": "the caller's own messages, filtered by user not place (tests/orgs/test_inbox.py)",
    "api/inbox/read/": "marks the caller's own messages read; another user's id is a 404 (tests/orgs/test_inbox.py)",
}

# Routes whose data is community-wide: a grid worker legitimately sees none of it, so the
# non-vacuous half of the proof is made with the community admin of C1 instead.
COMMUNITY_WIDE = {
    "api/stationed-cadres/": "stationed cadres serve a whole community (orgs.access.stationed_cadres_in_reach)",
    "api/stationed-cadres/<int:pk>/": "same, one cadre",
    "api/stationed-cadres/<int:pk>/attendance/": "one cadre's month of attendance: shown to the cadre "
    "and to whoever covers the cadre's whole community (orgs.attendance.attendance_cadre_get), like the cadre",
    "api/committee-seats/<int:pk>/": "a seat of a community's 大党委: its organisation's records need the "
    "organisation wholly in reach (strict), which a grid worker's reach never holds",
    "api/station-contacts/": "stationed cadres' check-ins and contacts serve a whole community "
    "(orgs.access.station_contacts_in_reach)",
}

# Routes that only take POST (an export is a read that must carry a reason): there is no GET to
# list, so `test_exports_hold_only_the_callers_places` proves them by the file they answer with;
# the unsafe-method proofs below cover them like every other POST.
POST_ONLY = {
    "api/members/export/": "党员名册导出: POST {reason, format, community}",
}

# Tablet sync routes: POST-only, and a refused item is answered inside a 200 (each item alone), so
# the generic write probe does not fit them; `test_sync_items_outside_reach_are_refused` proves
# them item by item, and the no-role test covers them like every route.
SYNC_ROUTES = {
    "api/sync/visits/": "走访同步: POST {items: [...]}",
    "api/sync/station-contacts/": "驻点联系同步: POST {items: [...]}",
    "api/sync/cases/": "事项同步: POST {items: [...]}, each case answered alone like a visit",
}

# Routes that need query parameters to answer at all: the probe gives them.
QUERY_PROBES = {
    # A point in grid A (visible) and one in grid B (must answer 404, not grid B).
    "api/grid-cells/at/": {
        "visible": {"lon": 110.405, "lat": 21.195},
        "forbidden": {"lon": 110.415, "lat": 21.195},
    },
    # The indicators of grid A (visible) and of grid B (404, like a missing code). The codes come
    # from the world's factories, so these probes are functions of the world.
    "api/indicators/": {
        "visible": lambda w: {"unit": w.units["cell_A"].code},
        "forbidden": lambda w: {"unit": w.units["cell_B"].code},
    },
    # Search needs q: grid A's building by its code is found; grid B's is found nowhere (a search
    # answers 200 with what it finds, so "refused" is an empty list, not a 404).
    "api/search/": {
        "visible": lambda w: {"q": w.units["house_A"].code},
        "forbidden": lambda w: {"q": w.units["house_B"].code},
        "refused_as": "empty",
    },
    # Likely duplicates around grid A's case (shows it) and around grid B's (404: a point outside
    # the caller's reach reads like a missing thing).
    "api/cases/nearby/": {
        "visible": lambda w: _near(w, "A"),
        "forbidden": lambda w: _near(w, "B"),
    },
}


def _near(w: SecurityWorld, place: str) -> dict[str, object]:
    point = w.units[f"case_{place}"].place
    return {"lon": point.x, "lat": point.y, "category": w.units["case_category"].pk}

# Every place-scoped list and detail route of the project, by the kind of thing it answers with.
# Only used to check that the enumeration found them (a safety net against a broken walk).
KNOWN_AT_LEAST = {
    "api/streets/",
    "api/grid-cells/<str:code>/",
    "api/organisations/<int:pk>/",
    "api/members/",
    "api/organisations/<int:pk>/seats/",
    "api/organisations/<int:pk>/rectifications/",
    "api/organisations/<int:pk>/star-ratings/",
    "api/rectifications/<int:pk>/",
    "api/visits/",
    "api/station-contacts/",
}

UNSAFE = ("post", "put", "patch", "delete")


@pytest.fixture
def sworld(db, private_media) -> SecurityWorld:
    """The shared world (with a photo of each grid's visit), plus one seat on the 大党委 of C1 and
    of D1 (the shared world has no enlarged committee), so that the seat routes are proven against
    real seats."""
    w = build_world(photos=True)
    for community, place in ((w.units["c1"], "C1*"), (w.units["d1"], "D1*")):
        org = PartyOrganisation.objects.get(kind=PartyOrganisation.Kind.COMMUNITY_ORG, community=community)
        org = org_services.party_org_update(org=org, is_enlarged=True)
        seat = org_services.committee_seat_create(
            org=org, person_name=f"{place}委员", unit_name="驻区单位", liaison_communities=[community]
        )
        w.add(seat, place, code="")
    return w
# Planners' drafts (mapping.plans_access): only roles that plan a community (edit_space over it
# whole: the street's planner and street administrator) see them; everyone else lists none and
# gets 404. The non-vacuous half of the read proofs is made with the planner of S against C1's
# draft; writes have their own proof (a planner's writes in C1 are legitimate, so the generic
# "nobody may write grid B's things" walk does not fit them).
PLANNING_PREFIX = "api/plans/"


def _planning(route: Route) -> bool:
    return route.route.startswith(PLANNING_PREFIX)


_PARAM = re.compile(r"<(?:(?P<conv>[^>:]+):)?(?P<name>[^>]+)>")


@dataclass(frozen=True)
class Route:
    route: str
    pattern: URLPattern
    converters: dict[str, Any]

    @property
    def view_class(self) -> type:
        return self.pattern.callback.view_class

    @property
    def params(self) -> list[str]:
        return [m.group("name") for m in _PARAM.finditer(self.route)]

    @property
    def unsafe_methods(self) -> list[str]:
        view = self.view_class
        return [m for m in UNSAFE if m in view.http_method_names and callable(getattr(view, m, None))]

    def url(self, value: str | int | None = None) -> str:
        return "/" + _PARAM.sub(lambda _m: str(value), self.route)

    def fits(self, thing: Thing) -> list[str]:
        """The identifiers of `thing` that the route's (single) converter accepts: an int id for
        `<int:…>`; for `<str:…>` its code, or its UUID when it has none (visits, photos: the routes
        that take one answer 404 for anything else, so codes are tried against them too)."""
        (conv,) = {type(c) for c in self.converters.values()}
        if conv is IntConverter:
            return [str(thing.pk)] if isinstance(thing.pk, int) else []
        if thing.code:
            return [thing.code]
        return [str(thing.pk)] if isinstance(thing.pk, uuid.UUID) else []


def _walk(patterns: list, prefix: str, converters: dict[str, Any]) -> Iterator[Route]:
    for p in patterns:
        route = prefix + str(p.pattern)
        convs = {**converters, **getattr(p.pattern, "converters", {})}
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, route, convs)
        elif isinstance(p, URLPattern):
            yield Route(route, p, convs)


def api_routes() -> list[Route]:
    return [r for r in _walk(get_resolver().url_patterns, "", {}) if r.route.startswith("api/")]


def probed_routes() -> list[Route]:
    return [r for r in api_routes() if r.route not in NOT_REACH_SCOPED]


def list_routes() -> list[Route]:
    """Routes without a path parameter that answer GET with a list. A view without GET (POST only,
    e.g. api/plans/suggest/) has no list: the unsafe-method proofs cover it."""
    return [
        r
        for r in probed_routes()
        if not r.params and r.route not in POST_ONLY | SYNC_ROUTES.keys() and hasattr(r.view_class, "get")
    ]


# --- reading answers --------------------------------------------------------------------------


def _is_identifier_key(key: str) -> bool:
    return key in ("id", "code") or key.endswith(("_id", "_code", "_ids", "_codes"))


def identifiers_in(body: Any) -> set[str]:
    """Values of id/code keys (and *_id, *_code, *_ids, *_codes) anywhere in a JSON answer."""
    found: set[str] = set()
    if isinstance(body, dict):
        for key, value in body.items():
            if _is_identifier_key(key):
                for v in value if isinstance(value, list) else [value]:
                    if isinstance(v, str | int) and not isinstance(v, bool):
                        found.add(str(v))
            if isinstance(value, dict | list):
                found |= identifiers_in(value)
    elif isinstance(body, list):
        for item in body:
            found |= identifiers_in(item)
    return found


def _hits(found: set[str], things: list[Thing]) -> list[Thing]:
    return [t for t in things if t.identifiers & found]




def db_fingerprint() -> list[Any]:
    """Every row of every model the world writes, plus the audit log: a refused write changes none."""
    rows: list[Any] = []
    for model in [*ID_RANGES, *EVENT_MODELS, RoleAssignment]:
        rows.append(list(model._default_manager.order_by("pk").values()))
    rows.append(AuditEvent.objects.count())
    return rows


def _hostile_body(w: SecurityWorld) -> dict[str, Any]:
    """One body that fits every input serializer of the API, each reference pointing into grid B."""
    u = w.units
    return {
        "kind": "grid_branch",
        "level": "branch",
        "name": "越权写入",
        "code": "HOSTILE1",
        "parent": u["branch_B"].pk,
        "street": u["street"].code,
        "community": u["c1"].code,
        "grid_cell": u["cell_B"].code,
        "buildings": [u["house_B"].code],
        "premises": u["firm_B"].pk,
        "organisation": u["branch_B"].pk,
        "residence_building": u["house_B"].code,
        "gender": "male",
        "id_number": "",
        "phone": "13700000000",
        "reported_community": u["c1"].code,
        "period_end": "2025-01-01",
        "required_days_per_month": 1,
        # grid workers, enterprises, seats, rectifications, ratings, exports
        "grid_cells": [u["cell_B"].code],
        "building": u["house_B"].code,
        "location": {"type": "Point", "coordinates": [110.415, 21.195]},
        "person_name": "越权委员",
        "liaison_communities": [u["c1"].code],
        "flagged_on": "2025-02-01",
        "reasons": "越权认定",
        "converted_on": "2025-03-01",
        "year": 2025,
        "score": "90",
        "satisfaction_score": "90",
        "reason": "越权导出",
        "format": "csv",
        # residents' cases: raised in grid B, moved along, merged into B's case, sent to B's branch
        "category": u["case_category"].pk,
        "description": "越权登记",
        "source": "counter",
        "position": {"type": "Point", "coordinates": [110.415, 21.195]},
        "action": "accept",
        "expected_version": 1,
        # a visit's correction (PATCH /api/visits/{id}/): the version it replaces and a new summary
        "version": 1,
        "summary": "越权更正",
        "merge_into": u["case_B"].pk,
        "assignee_org": u["branch_B"].pk,
    }


# --- the tests --------------------------------------------------------------------------------


def test_every_api_route_is_classified():
    routes = {r.route: r for r in api_routes()}
    assert KNOWN_AT_LEAST <= routes.keys(), "the URL conf walk lost routes"
    for name in [*NOT_REACH_SCOPED, *COMMUNITY_WIDE, *QUERY_PROBES, *POST_ONLY, *SYNC_ROUTES]:
        assert name in routes, f"allowlist names a route that no longer exists: {name}"
    for route in probed_routes():
        assert hasattr(route.pattern.callback, "view_class"), f"{route.route}: not a class-based view"
        assert issubclass(route.view_class, ReachAPIView), (
            f"{route.route}: {route.view_class.__name__} does not scope by reach (ReachAPIView); "
            "make it one or add it to NOT_REACH_SCOPED with the reason"
        )
        assert len(route.params) <= 1 and len({type(c) for c in route.converters.values()}) <= 1, (
            f"{route.route}: more than one path parameter; teach this test how to fill them"
        )
    for name in [*POST_ONLY, *SYNC_ROUTES]:
        assert routes[name].unsafe_methods == ["post"] and not hasattr(routes[name].view_class, "get"), (
            f"{name} answers GET: prove it as a list instead"
        )


def test_worker_a_lists_show_nothing_of_grid_b(sworld):
    w = sworld
    worker = api_client(w.users["worker_a"])
    admin = api_client(w.users["community_admin"])
    forbidden = w.in_places(FORBIDDEN["worker_a"])
    b_things = w.in_places({"B"})
    failures: list[str] = []
    lists = list_routes()
    assert len(lists) >= 8
    for route in lists:
        if route.route in QUERY_PROBES:
            continue  # test_worker_a_point_lookup
        response = worker.get(route.url())
        if response.status_code != 200:
            failures.append(
                f"GET {route.route} as worker_a: {response.status_code} {response.content[:200]!r}"
            )
            continue
        found = identifiers_in(response.json())
        leaked = _hits(found, forbidden)
        if leaked:
            failures.append(f"GET {route.route} as worker_a shows {[t.label for t in leaked]}")
        if route.route in COMMUNITY_WIDE:
            seen = _hits(identifiers_in(admin.get(route.url()).json()), w.in_places({"C1*"}))
        elif _planning(route):
            seen = _hits(identifiers_in(api_client(w.users["planner"]).get(route.url()).json()), w.in_places({"C1P"}))
        else:
            seen = _hits(found, w.in_places(VISIBLE["worker_a"]))
        if not seen:
            failures.append(f"GET {route.route}: shows nothing the caller may see (vacuous)")

        # Every filter of the view, given every identifier of grid B.
        filters = getattr(route.view_class, "FilterSerializer", None)
        for name, field in filters().fields.items() if filters else []:
            values = (
                [str(t.pk) for t in b_things]
                if isinstance(field, serializers.IntegerField)
                else [t.code for t in b_things if t.code]
                if isinstance(field, serializers.CharField)
                else []
            )
            for value in values:
                r = worker.get(route.url(), {name: value})
                if r.status_code not in (200, 400, 404):
                    failures.append(f"GET {route.route}?{name}={value}: {r.status_code}")
                elif leaked := _hits(identifiers_in(r.json()), forbidden):
                    failures.append(f"GET {route.route}?{name}={value} shows {[t.label for t in leaked]}")
    assert not failures, "\n".join(failures)


def test_worker_a_point_lookup(sworld):
    worker = api_client(sworld.users["worker_a"])
    for route, probe in QUERY_PROBES.items():
        visible, forbidden = (q(sworld) if callable(q) else q for q in (probe["visible"], probe["forbidden"]))
        ok = worker.get("/" + route, visible)
        assert ok.status_code == 200, ok.content
        assert _hits(identifiers_in(ok.json()), sworld.in_places({"A"}))
        refused = worker.get("/" + route, forbidden)
        if probe.get("refused_as") == "empty":
            assert refused.status_code == 200 and refused.json()["results"] == [], refused.content
        else:
            assert refused.status_code == 404 and refused.json()["code"] == "not_found", refused.content
        assert not _hits(identifiers_in(refused.json()), sworld.in_places(FORBIDDEN["worker_a"]))


def _detail_failures(
    w: SecurityWorld, who: str, routes: list[Route], forbidden_places: set[str]
) -> list[str]:
    """Every route with a path parameter, as `who`: visible identifiers answer 200 (which also
    tells the model the route serves, ids being disjoint across models), and every forbidden
    identifier answers 404 not_found: all of grid B's that fit the converter, and those of the
    route's own model elsewhere out of reach."""
    client = api_client(w.users[who])
    failures: list[str] = []
    for route in routes:
        if not hasattr(route.view_class, "get"):
            continue  # POST only (undo, apply…): nothing to read; the unsafe-method proofs cover it
        if route.route in COMMUNITY_WIDE and who == "worker_a":
            client_ok, visible = api_client(w.users["community_admin"]), w.in_places({"C1*"})
        elif _planning(route):
            client_ok, visible = api_client(w.users["planner"]), w.in_places({"C1P"})
        else:
            client_ok, visible = client, w.in_places(VISIBLE[who])
        models = {
            thing.model
            for thing in visible
            for value in route.fits(thing)
            if client_ok.get(route.url(value)).status_code == 200
        }
        if not models:
            failures.append(f"{route.route}: no visible identifier answers 200 (vacuous)")
        forbidden = [t for t in w.in_places(forbidden_places) if t.place == "B" or t.model in models]
        tried = 0
        for thing in forbidden:
            for value in route.fits(thing):
                tried += 1
                response = client.get(route.url(value))
                if response.status_code != 404 or response.json().get("code") != "not_found":
                    failures.append(
                        f"GET {route.url(value)} ({thing.label}, {thing.place}) as {who}: "
                        f"{response.status_code} {response.content[:150]!r}"
                    )
        if not tried:
            failures.append(f"{route.route}: no forbidden identifier fits it (vacuous)")
    return failures


def test_worker_a_details_of_grid_b_are_not_found(sworld):
    routes = [r for r in probed_routes() if r.params]
    assert len(routes) >= 10
    failures = _detail_failures(sworld, "worker_a", routes, FORBIDDEN["worker_a"])
    assert not failures, "\n".join(failures)


def _unsafe_calls(w: SecurityWorld, targets: set[str]) -> Iterator[tuple[Route, str, str]]:
    """(route, method, url) for every unsafe method of every route, against things in `targets`."""
    for route in probed_routes():
        if route.route in SYNC_ROUTES:
            continue  # test_sync_items_outside_reach_are_refused
        if _planning(route):
            continue  # test_drafts_outside_the_planning_reach_cannot_be_written
        for method in route.unsafe_methods:
            if not route.params:
                yield route, method, route.url()
                continue
            for thing in w.in_places(targets):
                for value in route.fits(thing):
                    yield route, method, route.url(value)


def test_unsafe_methods_against_grid_b_are_refused_and_write_nothing(sworld):
    w = sworld
    body = _hostile_body(w)
    calls = list(_unsafe_calls(w, {"B", "C1*"}))
    methods = {(r.route, m) for r, m, _ in calls}
    assert len(methods) >= 5, methods  # organisations POST/PATCH, members POST/PATCH, cadres PATCH …
    before = db_fingerprint()
    failures: list[str] = []
    expected = {
        # No write capability anywhere: refused before the object is looked up.
        "worker_a": {403, 404},
        "norole": {403},
        "leader": {403},
        "planner": {403},
        "operator": {403},
        # edit_orgs, but over C2: grid B's things are "not found", references into B are refused.
        "writer_c2": {400, 404},
    }
    for who, allowed_without in expected.items():
        client = api_client(w.users[who])
        reach = reach_for_user(w.users[who])
        for route, method, url in calls:
            # A grid worker holds log_events: on a route that needs it (raising a case), the
            # refusal comes from the reference into B (400 reference_not_found) or the place
            # (403 case_outside_reach), not from the role; nothing is written either way.
            capability = route.view_class.write_capability
            holds = capability is not None and reach.can(capability)
            allowed = allowed_without | ({400, 403, 404} if holds and who == "worker_a" else set())
            response = getattr(client, method)(url, body, format="json")
            if response.status_code not in allowed:
                failures.append(
                    f"{method.upper()} {url} as {who}: {response.status_code} {response.content[:200]!r}"
                )
            elif who == "writer_c2" and route.params and response.status_code != 404:
                failures.append(f"{method.upper()} {url} as {who}: {response.status_code}, expected 404")
    assert not failures, "\n".join(failures)
    assert db_fingerprint() == before


def test_no_role_is_refused_everywhere_and_anonymous_must_sign_in(sworld):
    w = sworld
    anon, norole, operator = api_client(None), api_client(w.users["norole"]), api_client(w.users["operator"])
    a_thing = {
        r.route: next(v for t in w.in_places({"A", "C1*"}) for v in r.fits(t))
        for r in probed_routes()
        if r.params
    }
    before = db_fingerprint()
    failures: list[str] = []
    for route in probed_routes():
        url = route.url(a_thing.get(route.route))
        for method in ["get", *route.unsafe_methods]:
            for who, client, status in (
                ("anonymous", anon, 401),
                ("norole", norole, 403),
                ("operator", operator, 403),
            ):
                response = (
                    getattr(client, method)(url, {}, format="json") if method != "get" else client.get(url)
                )
                if response.status_code != status:
                    failures.append(f"{method.upper()} {url} as {who}: {response.status_code}")
                elif who != "anonymous" and _hits(identifiers_in(response.json()), w.things):
                    failures.append(f"{method.upper()} {url} as {who}: 403 with data")
    assert not failures, "\n".join(failures)
    assert db_fingerprint() == before


def _union_of_lists(w: SecurityWorld, who: str) -> tuple[set[str], list[str]]:
    client = api_client(w.users[who])
    forbidden = w.in_places(FORBIDDEN[who]) if who in FORBIDDEN else []
    found_all: set[str] = set()
    failures: list[str] = []
    for route in list_routes():
        if route.route in QUERY_PROBES:
            continue
        response = client.get(route.url())
        if response.status_code != 200:
            failures.append(f"GET {route.route} as {who}: {response.status_code}")
            continue
        found = identifiers_in(response.json())
        if leaked := _hits(found, forbidden):
            failures.append(f"GET {route.route} as {who} shows {[(t.label, t.place) for t in leaked]}")
        found_all |= found
    return found_all, failures


@pytest.mark.parametrize(
    ("who", "must_see"),
    [
        ("community_admin", {"A", "B", "C1", "C1*"}),
        ("street_admin", {"A", "B", "C", "C1*", "C2", "C2*"}),
        ("leader", {"A", "B", "C", "C1*", "C2", "C2*"}),
        ("planner", {"A", "B", "C", "C1*", "C2", "C2*"}),
    ],
)
def test_wider_roles_see_their_places_and_nothing_beyond(sworld, who, must_see):
    w = sworld
    found, failures = _union_of_lists(w, who)
    for place in must_see:
        if not _hits(found, w.in_places({place})):
            failures.append(f"{who} sees nothing of {place} in any list")
    # Leader and planner hold street S like the street admin: the same places are out of reach.
    forbidden_places = FORBIDDEN.get(who, FORBIDDEN["street_admin"])
    if who in ("leader", "planner"):
        client = api_client(w.users[who])
        for route in list_routes():
            if route.route in QUERY_PROBES:
                continue
            if leaked := _hits(identifiers_in(client.get(route.url()).json()), w.in_places(forbidden_places)):
                failures.append(f"GET {route.route} as {who} shows {[t.label for t in leaked]}")
    if who == "community_admin":
        failures += _detail_failures(w, who, [r for r in probed_routes() if r.params], FORBIDDEN[who])
    assert not failures, "\n".join(failures)


def test_community_admin_writes_stay_inside_c1(sworld):
    """The positive half of the write proof: the same PATCH that C2's admin cannot make, C1's can."""
    w = sworld
    cadre = StationedCadre.objects.get(community=w.units["c1"])
    url = f"/api/stationed-cadres/{cadre.pk}/"
    assert (
        api_client(w.users["writer_c2"]).patch(url, {"required_days_per_month": 3}, format="json").status_code
        == 404
    )
    cadre.refresh_from_db()
    assert cadre.required_days_per_month != 3
    response = api_client(w.users["community_admin"]).patch(
        url, {"required_days_per_month": 3}, format="json"
    )
    assert response.status_code == 200, response.content
    cadre.refresh_from_db()
    assert cadre.required_days_per_month == 3


def _exported_names(response: Any) -> set[str]:
    import csv
    import io

    assert response.status_code == 200, response.content[:300]
    assert response["Content-Disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    return {row[0] for row in rows[1:]}


def test_exports_hold_only_the_callers_places(sworld):
    """POST-only routes: the file holds the members of the caller's places and nobody else; a
    community outside the reach is refused; roles without view_pii cannot export at all."""
    w = sworld
    members = {m.name: m for m in PartyMember.objects.all()}
    in_places = {
        place: {n for n, m in members.items() if m.pk in {t.pk for t in w.of_model(PartyMember, {place})}}
        for place in ("A", "B", "C", "D")
    }
    body = {"reason": "核对名册", "format": "csv"}
    for route in POST_ONLY:
        url = "/" + route
        admin_c1 = api_client(w.users["community_admin"])
        assert _exported_names(admin_c1.post(url, body, format="json")) == in_places["A"] | in_places["B"]
        street = api_client(w.users["street_admin"])
        assert _exported_names(street.post(url, body, format="json")) == (
            in_places["A"] | in_places["B"] | in_places["C"]
        )
        only_c2 = street.post(url, {**body, "community": w.units["c2"].code}, format="json")
        assert _exported_names(only_c2) == in_places["C"]
        before = db_fingerprint()
        for who, community, expected in (
            ("community_admin", w.units["c2"].code, 400),
            ("street_admin", w.units["d1"].code, 400),
            ("writer_c2", w.units["c1"].code, 400),
            ("worker_a", None, 403),
            ("leader", None, 403),
            ("planner", None, 403),
        ):
            data = {**body, **({"community": community} if community else {})}
            response = api_client(w.users[who]).post(url, data, format="json")
            assert response.status_code == expected, (who, response.content[:200])
            if expected == 400:
                assert response.json()["code"] == "reference_not_found"
        assert db_fingerprint() == before


def _visit_items(w: SecurityWorld) -> list[dict[str, Any]]:
    """Visits that each reach into grid B (or beyond) by another way: subject, position, replay."""
    u = w.units
    when = timezone.localtime().replace(microsecond=0).isoformat()
    b_point = u["house_B"].point
    return [
        {"id": str(uuid.uuid4()), "occurred_at": when, "kind": "household", "building": u["house_B"].code},
        {"id": str(uuid.uuid4()), "occurred_at": when, "kind": "building", "building": u["house_D"].code},
        {"id": str(uuid.uuid4()), "occurred_at": when, "kind": "enterprise", "enterprise": u["firm_B"].pk},
        {
            "id": str(uuid.uuid4()),
            "occurred_at": when,
            "kind": "other",
            "position": {"type": "Point", "coordinates": [b_point.x, b_point.y]},
        },
        # A subject in grid A but named together with premises in grid B.
        {
            "id": str(uuid.uuid4()),
            "occurred_at": when,
            "kind": "enterprise",
            "enterprise": u["firm_B"].pk,
            "building": u["house_A"].code,
        },
        # Replays of grid B's stored visit: its own id, with and without its content.
        {"id": str(u["visit_B"].pk), "occurred_at": when, "kind": "household", "building": u["house_A"].code},
        {
            "id": str(u["visit_B"].pk),
            "occurred_at": u["visit_B"].occurred_at.isoformat(),
            "kind": "household",
            "building": u["house_B"].code,
            "household": "1-101",
        },
    ]


def _case_items(w: SecurityWorld) -> list[dict[str, Any]]:
    """Cases raised on the tablet that each stand in grid B (or beyond) by another way: building,
    source visit, position."""
    u = w.units
    when = timezone.localtime().replace(microsecond=0).isoformat()
    b_point = u["house_B"].point
    common = {"reported_at": when, "category": u["case_category"].pk, "description": "越权上报"}
    return [
        {"id": str(uuid.uuid4()), **common, "building": u["house_B"].code},
        {"id": str(uuid.uuid4()), **common, "building": u["house_D"].code},
        {"id": str(uuid.uuid4()), **common, "visit": str(u["visit_B"].pk)},
        {
            "id": str(uuid.uuid4()),
            **common,
            "position": {"type": "Point", "coordinates": [b_point.x, b_point.y]},
        },
        # Grid A's building, but raised from grid B's visit.
        {"id": str(uuid.uuid4()), **common, "building": u["house_A"].code, "visit": str(u["visit_B"].pk)},
    ]


def test_sync_items_outside_reach_are_refused(sworld):
    """Every item pointing outside the caller's logging reach is refused on its own, with a code,
    and nothing is stored; roles that do not log events are refused the whole batch."""
    w = sworld
    visits = _visit_items(w)
    contacts = [
        {
            "id": str(uuid.uuid4()),
            "occurred_at": timezone.localtime().replace(microsecond=0).isoformat(),
            "kind": "contact",
            "building": w.units["house_B"].code,
            "contact_name": "越权",
        }
    ]
    before = db_fingerprint()[:-1]  # the audit log records the refused batches (checked below)
    audit_before = AuditEvent.objects.count()
    failures: list[str] = []
    expected_codes = {"not_found", "sync_outside_reach", "sync_id_conflict", "sync_id_repeated"}
    for who in ("worker_a", "writer_c2"):
        client = api_client(w.users[who])
        for url, items, codes in (
            ("/api/sync/visits/", visits, expected_codes),
            ("/api/sync/station-contacts/", contacts, {"sync_not_stationed"}),
            ("/api/sync/cases/", _case_items(w), {"not_found", "case_outside_reach"}),
        ):
            response = client.post(url, {"items": items}, format="json")
            if response.status_code != 200:
                failures.append(f"POST {url} as {who}: {response.status_code} {response.content[:200]!r}")
                continue
            body = response.json()
            for result in body["results"]:
                if result["status"] != "rejected" or result["code"] not in codes:
                    failures.append(f"POST {url} as {who}: item {result['index']} answered {result}")
                leaked = _hits(identifiers_in({k: v for k, v in result.items() if k != "id"}), w.things)
                if leaked:
                    failures.append(f"POST {url} as {who}: item {result['index']} names {leaked}")
    for who in ("norole", "leader", "planner", "operator"):
        client = api_client(w.users[who])
        for url in SYNC_ROUTES:
            response = client.post("/" + url, {"items": visits}, format="json")
            if response.status_code != 403:
                failures.append(f"POST /{url} as {who}: {response.status_code}")
    assert not failures, "\n".join(failures)
    assert db_fingerprint()[:-1] == before
    refused = AuditEvent.objects.order_by("pk")[audit_before:]
    assert [e.changes["created"] for e in refused] == [[]] * 4
    assert all(sum(e.changes["rejected"].values()) >= 1 for e in refused)


def test_drafts_outside_the_planning_reach_cannot_be_written(sworld):
    """Every unsafe method of every /api/plans/ route: roles without edit_space are refused (403)
    before anything is looked up; a planner or street admin gets 404 for a draft outside their
    reach (D1's for street S, C1's for a planner of S2) and for every id of grid B, 400
    reference_not_found for a new draft of a community out of reach; nothing is written."""
    from grid.models import Role

    w = sworld
    w.users["planner_s2"] = user_for("planner_s2", Role.PLANNER, street=w.units["street2"])
    routes = [r for r in probed_routes() if _planning(r)]
    assert {m for r in routes for m in r.unsafe_methods} == {"post", "patch", "delete"}
    cases = {
        # who: (places whose ids are tried, the community a new draft names, the answers allowed)
        "worker_a": ({"B", "C1*", "C1P", "D1P"}, "c1", {403}),
        "community_admin": ({"B", "C1*", "C1P", "D1P"}, "c1", {403}),
        "writer_c2": ({"B", "C2P", "D1P"}, "c2", {403}),
        "leader": ({"B", "C1P"}, "c1", {403}),
        "operator": ({"B", "C1P"}, "c1", {403}),
        "norole": ({"B", "C1P"}, "c1", {403}),
        "planner": ({"B", "C1*", "D1P"}, "d1", {400, 404}),
        "street_admin": ({"B", "D1P"}, "d1", {400, 404}),
        "planner_s2": ({"B", "C1*", "C1P", "C2P"}, "c1", {400, 404}),
    }
    body = {**_hostile_body(w), "kind": "lock", "payload": {"all": True}, "reason": "越权应用", "name": "越权"}
    before = db_fingerprint()
    failures: list[str] = []
    tried = 0
    for who, (places, community, allowed) in cases.items():
        client = api_client(w.users[who])
        data = {**body, "community": w.units[community].code}
        for route in routes:
            targets = [v for t in w.in_places(places) for v in route.fits(t)] if route.params else [None]
            for method in route.unsafe_methods:
                for value in targets:
                    tried += 1
                    response = getattr(client, method)(route.url(value), data, format="json")
                    code = response.status_code
                    wanted = allowed if 403 in allowed else ({404} if route.params else {400})
                    if code not in wanted or (code == 400 and response.json()["code"] != "reference_not_found"):
                        failures.append(f"{method.upper()} {route.url(value)} as {who}: {code} {response.content[:150]!r}")
    assert tried > 100
    assert not failures, "\n".join(failures)
    assert db_fingerprint() == before
