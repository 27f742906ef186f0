"""Tablet sync of field events (orgs/sync.py, POST /api/sync/…): what a grid worker or stationed
cadre sends is stored once, where it happened on its day, as the signed-in account; every item
gets its own answer, and a refused item or a replay writes nothing.

The street is the `space` of conftest.py: community A (grids A1 west, A2 east) and community B
(grid B1), each grid with one building.
"""

import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from django.contrib.auth.models import User
from django.contrib.gis.geos import Point
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pyproj import Geod
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from grid import coords
from grid.access import reach_for_user
from grid.models import AuditEvent, Community, Role, RoleAssignment
from grid.services import grid_boundaries_set
from orgs import sync
from orgs.apis import events as event_apis
from orgs.models import Enterprise, GridWorker, StationContact, StationedCadre, Visit
from tests.factories import ORIGIN, rect
from tests.orgs_factories import EnterpriseFactory, GridWorkerFactory, StationedCadreFactory
from tests.people import api_client, grant, user_with

X, Y = ORIGIN
GEOD = Geod(ellps="WGS84")
VISITS = "/api/sync/visits/"
CONTACTS = "/api/sync/station-contacts/"
pytestmark = [pytest.mark.django_db]


@dataclass
class People:
    worker_a1: User  # grid worker of A1, with a GridWorker record
    worker_b1: User
    worker_a1_record: GridWorker
    admin_a: User
    cadre: User  # stationed in A for [today - 30, today + 30]
    posting: StationedCadre
    planner: User
    leader: User
    firm_a1: Enterprise
    firm_b1: Enterprise


@pytest.fixture
def people(space) -> People:
    s = space
    today = timezone.localdate()
    worker_a1 = user_with(username="worker_a1", role=Role.GRID_WORKER, grid_cell=s.a1)
    worker_a1.first_name = "张网格"
    worker_a1.save(update_fields=["first_name"])
    worker_b1 = user_with(username="worker_b1", role=Role.GRID_WORKER, grid_cell=s.b1)
    record_a1 = GridWorkerFactory(community=s.a, grid_cells=[s.a1], user=worker_a1)
    GridWorkerFactory(community=s.b, grid_cells=[s.b1], user=worker_b1)
    cadre = user_with(username="cadre_a", role=Role.STATIONED_CADRE, community=s.a)
    posting = StationedCadreFactory(
        community=s.a,
        user=cadre,
        period_start=today - timedelta(days=30),
        period_end=today + timedelta(days=30),
    )
    return People(
        worker_a1=worker_a1,
        worker_b1=worker_b1,
        worker_a1_record=record_a1,
        admin_a=user_with(username="admin_a", role=Role.COMMUNITY_ADMIN, community=s.a),
        cadre=cadre,
        posting=posting,
        planner=user_with(username="planner", role=Role.PLANNER, street=s.street),
        leader=user_with(username="leader", role=Role.LEADER, street=s.street),
        firm_a1=EnterpriseFactory(name="甲一公司", point=Point(X + 0.001, Y + 0.008, srid=4326)),
        firm_b1=EnterpriseFactory(name="乙一公司", point=Point(X + 0.015, Y + 0.008, srid=4326)),
    )


def when(**delta) -> str:
    """An ISO time with offset, `delta` before now (1 hour by default)."""
    return (timezone.localtime() - timedelta(**(delta or {"hours": 1}))).isoformat()


def at(lon: float, lat: float, **extra) -> dict:
    return {"position": {"type": "Point", "coordinates": [lon, lat]}, **extra}


def north_of(point: Point, metres: float) -> tuple[float, float]:
    lon, lat, _ = GEOD.fwd(point.x, point.y, 0, metres)
    return lon, lat


def item(kind: str = "other", **fields) -> dict:
    return {"id": str(uuid.uuid4()), "occurred_at": when(), "kind": kind, **fields}


def post(user: User, path: str, items, **kwargs):
    return api_client(user).post(path, {"items": items}, format="json", **kwargs)


def ok(response) -> dict:
    assert response.status_code == 200, response.content
    return response.json()


def codes(body: dict) -> list[str]:
    return [r.get("code") or r["status"] for r in body["results"]]


def counts() -> tuple[int, int, int]:
    return Visit.objects.count(), StationContact.objects.count(), AuditEvent.objects.count()


def versions() -> dict[int, int]:
    return dict(Community.objects.values_list("id", "data_version"))


def feature_ids(user: User, path: str) -> set[str]:
    response = api_client(user).get(path)
    assert response.status_code == 200, response.content
    return {f["id"] for f in response.json()["features"]}


# --- a grid worker's batch ----------------------------------------------------------------------


def test_a_grid_workers_batch_is_stored_where_it_happened_and_seen_by_those_in_reach(space, people):
    s, p = space, people
    near_house = north_of(s.house_a1.point, 100)
    near_firm = north_of(people.firm_a1.geom, 30)
    batch = [
        item("household", building=s.house_a1.code, household="1-201", summary="独居老人", **at(*near_house)),
        item("building", building=s.house_a1.code),
        item("enterprise", enterprise=p.firm_a1.pk, **at(*near_firm, accuracy_m=8)),
        item("other", **at(X + 0.004, Y + 0.009)),
    ]
    before = versions()
    body = ok(post(p.worker_a1, VISITS, batch))
    assert body["created"] == 4 and body["duplicate"] == body["rejected"] == 0
    assert [r["index"] for r in body["results"]] == [0, 1, 2, 3]
    assert [r["id"] for r in body["results"]] == [i["id"] for i in batch]

    stored = {str(v.id): v for v in Visit.objects.all()}
    assert set(stored) == {i["id"] for i in batch}
    for v in stored.values():
        assert v.community == s.a and v.grid_cell == s.a1
        assert v.reporter == p.worker_a1 and v.reporter_name == "张网格"
        assert v.worker == p.worker_a1_record
    household, patrol, firm, other = (stored[i["id"]] for i in batch)
    assert household.building == s.house_a1 and household.household == "1-201"
    assert household.place.equals_exact(s.house_a1.point, 1e-9)
    assert household.point.x == pytest.approx(near_house[0], abs=1e-9)
    assert household.captured_crs == coords.parse_crs("wgs84")
    assert household.distance_to_subject_m == pytest.approx(100, abs=1.5)
    # Without a position the event counts at its subject and has no distance.
    assert patrol.point is None and patrol.captured_lon is None and patrol.distance_to_subject_m is None
    assert patrol.place.equals_exact(s.house_a1.point, 1e-9)
    assert firm.enterprise == p.firm_a1 and firm.building is None and firm.accuracy_m == 8
    assert firm.place.equals_exact(p.firm_a1.geom, 1e-9)
    assert firm.distance_to_subject_m == pytest.approx(30, abs=1)
    assert other.building is None and other.distance_to_subject_m is None
    assert other.place.equals_exact(Point(X + 0.004, Y + 0.009, srid=4326), 1e-9)

    assert versions()[s.a.pk] == before[s.a.pk] + 1 and versions()[s.b.pk] == before[s.b.pk]
    audit = AuditEvent.objects.get(object_type="orgs.Visit")
    assert audit.actor == p.worker_a1 and audit.street_id == s.street.pk
    assert sorted(audit.changes["created"]) == sorted(i["id"] for i in batch)
    assert audit.changes["rejected"] == {}

    assert feature_ids(p.worker_a1, "/api/visits/") == set(stored)
    assert feature_ids(p.admin_a, "/api/visits/") == set(stored)
    assert feature_ids(p.worker_b1, "/api/visits/") == set()
    page = api_client(p.admin_a).get("/api/visits/", {"grid_cell": s.a1.code, "kind": "household"}).json()
    [feature] = page["features"]
    assert feature["properties"]["building_code"] == s.house_a1.code
    assert feature["properties"]["grid_cell_code"] == s.a1.code


def test_a_gcj02_position_is_stored_as_wgs84_and_kept_as_sent(space, people):
    wgs = (X + 0.0031, Y + 0.0042)
    gcj = coords.wgs84_to_gcj02(*wgs)
    sent = item("other", crs="gcj02", **at(float(gcj[0]), float(gcj[1])))
    assert ok(post(people.worker_a1, VISITS, [sent]))["created"] == 1
    v = Visit.objects.get()
    assert (v.captured_lon, v.captured_lat, v.captured_crs) == (float(gcj[0]), float(gcj[1]), "gcj02")
    assert GEOD.inv(wgs[0], wgs[1], v.point.x, v.point.y)[2] < 1
    # The offset is hundreds of metres here: had it not been converted, it would not be within 1 m.
    assert GEOD.inv(wgs[0], wgs[1], float(gcj[0]), float(gcj[1]))[2] > 100
    assert v.grid_cell == space.a1


# --- replays --------------------------------------------------------------------------------------


def test_the_same_batch_sent_again_is_duplicate_and_writes_nothing(space, people):
    s, p = space, people
    batch = [
        item("household", building=s.house_a1.code, **at(X + 0.0023, Y + 0.0023)),
        item("other", **at(X + 0.004, Y + 0.009)),
    ]
    ok(post(p.worker_a1, VISITS, batch))
    stored_before = list(Visit.objects.order_by("id").values())
    before, version = counts(), versions()
    body = ok(post(p.worker_a1, VISITS, batch))
    assert body["duplicate"] == 2 and body["created"] == body["rejected"] == 0
    assert codes(body) == ["duplicate", "duplicate"]
    assert counts() == before and versions() == version
    assert list(Visit.objects.order_by("id").values()) == stored_before


def test_a_reused_id_with_other_content_or_by_another_account_is_a_conflict(people):
    p = people
    original = item("other", summary="原记录", **at(X + 0.004, Y + 0.009))
    ok(post(p.worker_a1, VISITS, [original]))
    stored = Visit.objects.values().get()
    before = counts()

    forged = {**original, "summary": "篡改"}
    body = ok(post(p.worker_a1, VISITS, [forged]))
    assert codes(body) == ["sync_id_conflict"]
    # Another account replaying the same record (same content) cannot claim it, nor learn it exists.
    admin_replay = ok(post(p.admin_a, VISITS, [original]))
    assert codes(admin_replay) == ["sync_id_conflict"]
    assert admin_replay["results"][0]["message"] == body["results"][0]["message"]
    assert Visit.objects.values().get() == stored
    # Each refused replay leaves its trace in the audit log, and nothing else.
    assert counts() == (before[0], before[1], before[2] + 2)
    assert AuditEvent.objects.order_by("-id").first().changes["rejected"] == {"sync_id_conflict": 1}


def test_an_item_cannot_speak_for_another_reporter_or_worker(space, people):
    s, p = space, people
    other_worker = GridWorker.objects.get(user=p.worker_b1)
    sent = item(
        "other",
        reporter=p.admin_a.pk,
        reporter_id=p.admin_a.pk,
        reporter_name="管理员",
        worker=other_worker.pk,
        worker_id=other_worker.pk,
        community=s.b.code,
        grid_cell=s.b1.code,
        **at(X + 0.004, Y + 0.009),
    )
    assert ok(post(p.worker_a1, VISITS, [sent]))["created"] == 1
    v = Visit.objects.get()
    assert (v.reporter, v.reporter_name, v.worker) == (p.worker_a1, "张网格", p.worker_a1_record)
    assert (v.community, v.grid_cell) == (s.a, s.a1)


def test_subjects_and_places_outside_the_workers_grid_are_refused(space, people):
    s, p = space, people
    before, version = counts(), versions()
    body = ok(
        post(
            p.worker_a1,
            VISITS,
            [
                item("household", building=s.house_b1.code),
                item("building", building=s.house_a2.code),  # same community, other grid
                item("household", building="B999999"),  # no such building: the same answer
                item("enterprise", enterprise=p.firm_b1.pk),
                item("enterprise", enterprise=2_000_000_000),
                # Premises in B named with a building of A: still the premises of B.
                item("enterprise", enterprise=p.firm_b1.pk, building=s.house_a1.code),
                item("other", **at(X + 0.015, Y + 0.005)),  # in B1
                item("other", **at(X + 0.05, Y + 0.05)),  # in China, in no community
            ],
        )
    )
    assert codes(body) == [
        "not_found",
        "not_found",
        "not_found",
        "not_found",
        "not_found",
        "not_found",
        "sync_outside_reach",
        "sync_outside_grids",
    ]
    assert body["results"][0]["message"].replace(s.house_b1.code, "?") == body["results"][2][
        "message"
    ].replace("B999999", "?")
    assert counts()[:2] == before[:2] and versions() == version
    audit = AuditEvent.objects.order_by("-id").first()
    assert audit.changes == {
        "created": [],
        "rejected": {"not_found": 6, "sync_outside_reach": 1, "sync_outside_grids": 1},
    }


def test_the_same_id_twice_in_one_batch_stores_the_first_only(space, people):
    first = item("other", summary="第一条", **at(X + 0.004, Y + 0.009))
    second = {**first, "summary": "第二条"}
    body = ok(post(people.worker_a1, VISITS, [first, second]))
    assert codes(body) == ["created", "sync_id_repeated"]
    assert Visit.objects.get().summary == "第一条"


# --- each item alone ----------------------------------------------------------------------------


def test_one_bad_item_does_not_stop_the_good_ones_and_each_gets_its_code(space, people):
    s, p = space, people
    good = [item("other", **at(X + 0.004, Y + 0.009)), item("building", building=s.house_a1.code)]
    bad = [
        {"id": "not-a-uuid", "occurred_at": when(), "kind": "other", **at(X + 0.004, Y + 0.009)},
        {"id": str(uuid.uuid4()), "kind": "other", **at(X + 0.004, Y + 0.009)},
        item("patrol", **at(X + 0.004, Y + 0.009)),
        item("household", **at(X + 0.004, Y + 0.009)),
        item("enterprise", **at(X + 0.004, Y + 0.009)),
        item("other"),  # neither position nor subject
        item("other", position={"type": "Point", "coordinates": ["NaN", 21.2]}),
        item("other", position={"type": "Point", "coordinates": [10**400, 21.2]}),
        item("other", accuracy_m=10**400, **at(X + 0.004, Y + 0.009)),
        {**item("other", **at(X + 0.004, Y + 0.009)), "occurred_at": "0001-01-01T00:00:00"},
        item("other", **at(210.5, 21.2)),
        item("other", **at(Y, X)),  # swapped: lat 110 is out of range
        item("other", **at(-0.1, 51.5)),  # London
        item("other", crs="mars2000", **at(X + 0.004, Y + 0.009)),
        item("other", household="x" * 33, **at(X + 0.004, Y + 0.009)),
        "not an object",
        item("other", summary="ok\u0000", **at(X + 0.004, Y + 0.009)),
    ]
    body = ok(post(p.worker_a1, VISITS, [good[0], *bad, good[1]]))
    results = body["results"]
    assert [r["index"] for r in results] == list(range(len(bad) + 2))
    assert (results[0]["status"], results[-1]["status"]) == ("created", "created")
    assert codes(body)[1:-1] == [
        "invalid_input",  # id
        "invalid_input",  # occurred_at missing
        "invalid_input",  # kind
        "invalid_input",  # household visit without building
        "invalid_input",  # enterprise visit without enterprise
        "invalid_input",  # nothing to place it
        "invalid_input",  # "NaN"
        "invalid_input",  # too large for a float
        "invalid_input",  # accuracy too large for a float
        "invalid_input",  # a local time before any offset Python can apply
        "coords_out_of_range",
        "coords_out_of_range",
        "coords_outside_china",
        "crs_unknown",
        "invalid_input",  # household too long
        "invalid_input",  # not an object
        "invalid_input",  # NUL in text
    ]
    assert set(results[1]["errors"]) == {"id"} and results[1]["id"] == "not-a-uuid"
    assert set(results[2]["errors"]) == {"occurred_at"}
    assert set(results[4]["errors"]) == {"building"}
    assert set(results[6]["errors"]) == {"position"}
    assert body["created"] == 2 and body["rejected"] == len(bad)
    assert set(Visit.objects.values_list("id", flat=True)) == {
        uuid.UUID(good[0]["id"]),
        uuid.UUID(good[1]["id"]),
    }
    audit = AuditEvent.objects.get(object_type="orgs.Visit")
    assert sorted(audit.changes["created"]) == sorted(g["id"] for g in good)
    assert sum(audit.changes["rejected"].values()) == len(bad)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ([], "invalid_input"),
        ("items", "invalid_input"),
        ({}, "invalid_input"),
        ({"items": {"id": "x"}}, "invalid_input"),
        ({"items": "abc"}, "invalid_input"),
        ({"items": None}, "invalid_input"),
    ],
)
def test_a_malformed_envelope_is_refused_whole(people, body, code):
    before = counts()
    response = api_client(people.worker_a1).post(VISITS, body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert counts() == before


def test_too_many_items_is_refused_whole_with_its_code(people, settings):
    settings.WANGGE_SYNC = {**settings.WANGGE_SYNC, "max_items": 2}
    before = counts()
    response = post(people.worker_a1, VISITS, [item("other", **at(X + 0.004, Y + 0.009)) for _ in range(3)])
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "sync_batch_too_large"
    assert "2" in response.json()["message"]
    assert counts() == before
    two = [item("other", **at(X + 0.004, Y + 0.009)) for _ in range(2)]
    assert ok(post(people.worker_a1, VISITS, two))["created"] == 2


@pytest.mark.parametrize(
    "raw",
    [
        b'{"items": [{"id": "%s", "occurred_at": "%s", "kind": "other", "summary": "\\ud800",'
        b' "position": {"type": "Point", "coordinates": [110.404, 21.199]}}]}',
        b'{"items": [{"id": "%s", "occurred_at": "%s", "kind": "other",'
        b' "position": {"type": "Point", "coordinates": [NaN, 21.199]}}]}',
        b'{"items": [{"id": "%s", "occurred_at": "%s", "kind": "other", "summary": "\xff"}]}',
    ],
)
def test_a_body_that_cannot_be_stored_is_a_400_not_a_500(people, raw):
    body = raw.replace(b"%s", str(uuid.uuid4()).encode(), 1).replace(b"%s", when().encode(), 1)
    before = counts()
    response = api_client(people.worker_a1).post(VISITS, body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "malformed_request"
    assert counts() == before


# --- time -----------------------------------------------------------------------------------------


def test_times_too_far_ahead_or_too_old_are_refused_and_a_local_time_is_shanghai(people, settings):
    pos = at(X + 0.004, Y + 0.009)
    skew = settings.WANGGE_SYNC["clock_skew_seconds"]
    max_age = settings.WANGGE_SYNC["max_age_days"]
    local = (timezone.localtime() - timedelta(hours=2)).replace(tzinfo=None, microsecond=0)
    batch = [
        {**item("other", **pos), "occurred_at": when(seconds=-(skew + 120))},
        {**item("other", **pos), "occurred_at": when(seconds=-(skew - 120))},  # within the skew
        {**item("other", **pos), "occurred_at": when(days=max_age, hours=1)},
        {**item("other", **pos), "occurred_at": when(days=max_age - 1)},
        {**item("other", **pos), "occurred_at": local.isoformat()},
    ]
    body = ok(post(people.worker_a1, VISITS, batch))
    assert codes(body) == ["sync_time_in_future", "created", "sync_time_too_old", "created", "created"]
    stored = Visit.objects.get(id=batch[4]["id"])
    assert stored.occurred_at == local.replace(tzinfo=timezone.get_default_timezone())
    assert timezone.localtime(stored.occurred_at).utcoffset() == timedelta(hours=8)


# --- as of the day ---------------------------------------------------------------------------------


def _move_edge_west(space, valid_from: date) -> None:
    """Redraw the A1/A2 edge from X + 0.005 to X + 0.0015: the building of A1 falls to A2."""
    grid_boundaries_set(
        shapes={
            space.a1.pk: rect(X, Y, X + 0.0015, Y + 0.01),
            space.a2.pk: rect(X + 0.0015, Y, X + 0.01, Y + 0.01),
        },
        valid_from=valid_from,
    )


def test_a_visit_synced_after_a_redraw_counts_in_the_grid_of_its_day(space, people):
    s, p = space, people
    today = timezone.localdate()
    firm = EnterpriseFactory(name="边界公司", point=Point(X + 0.003, Y + 0.006, srid=4326))
    _move_edge_west(s, today - timedelta(days=5))
    s.house_a1.refresh_from_db()
    assert s.house_a1.grid_cell == s.a2
    old_day = when(days=10)
    spot = at(X + 0.003, Y + 0.009)
    before = [
        item("household", building=s.house_a1.code, occurred_at=old_day),
        item("other", occurred_at=old_day, **spot),
        item("enterprise", enterprise=firm.pk, occurred_at=old_day),
    ]
    body = ok(post(p.worker_a1, VISITS, before))
    assert codes(body) == ["created", "created", "created"]
    assert {v.grid_cell for v in Visit.objects.all()} == {s.a1}

    # After the redraw the same place lies in A2: outside the A1 worker's grid, counted in A2.
    after = item("other", occurred_at=when(days=2), **spot)
    late_firm_visit = item("enterprise", enterprise=firm.pk, occurred_at=when(days=2))
    assert codes(ok(post(p.worker_a1, VISITS, [after, late_firm_visit]))) == [
        "sync_outside_reach",
        "not_found",
    ]
    assert codes(ok(post(p.admin_a, VISITS, [after]))) == ["created"]
    assert Visit.objects.get(id=after["id"]).grid_cell == s.a2
    assert feature_ids(p.worker_a1, "/api/visits/") == {i["id"] for i in before}


# --- station contacts -----------------------------------------------------------------------------


def test_a_stationed_cadres_check_ins_say_whether_they_were_on_site(space, people):
    s, p = space, people
    inside = item("check_in", **at(X + 0.004, Y + 0.005))
    in_b = item("check_in", **at(X + 0.015, Y + 0.005))
    nowhere = item("check_in", **at(X + 0.05, Y + 0.05))
    talk = item("contact", contact_name="王阿姨", building=s.house_a2.code, summary="反映楼道照明")
    talk_in_b = item("contact", building=s.house_b1.code)
    before_posting = item("check_in", occurred_at=when(days=40), **at(X + 0.004, Y + 0.005))
    no_position = item("check_in", building=s.house_a2.code)
    body = ok(post(p.cadre, CONTACTS, [inside, in_b, nowhere, talk, talk_in_b, before_posting, no_position]))
    assert codes(body) == [
        "created",
        "created",
        "created",
        "created",
        "not_found",
        "sync_not_stationed",
        "invalid_input",
    ]
    stored = {str(c.id): c for c in StationContact.objects.all()}
    for c in stored.values():
        assert c.cadre == p.posting and c.community == s.a and c.reporter == p.cadre
    assert stored[inside["id"]].on_site is True and stored[inside["id"]].grid_cell == s.a1
    # Off site is kept (attendance needs the evidence) but does not count, and is not filed under
    # a grid of another community.
    assert stored[in_b["id"]].on_site is False and stored[in_b["id"]].grid_cell is None
    assert stored[nowhere["id"]].on_site is False and stored[nowhere["id"]].grid_cell is None
    assert stored[talk["id"]].building == s.house_a2 and stored[talk["id"]].grid_cell == s.a2
    assert stored[talk["id"]].contact_name == "王阿姨"

    assert feature_ids(p.admin_a, "/api/station-contacts/") == set(stored)
    assert feature_ids(p.cadre, "/api/station-contacts/") == set(stored)
    assert feature_ids(p.worker_a1, "/api/station-contacts/") == set()
    on_site = api_client(p.admin_a).get("/api/station-contacts/", {"on_site": "true"}).json()
    assert {f["id"] for f in on_site["features"]} == {inside["id"]}


def test_someone_without_a_posting_cannot_log_station_contacts(space, people):
    before = counts()
    body = ok(post(people.worker_a1, CONTACTS, [item("check_in", **at(X + 0.004, Y + 0.005))]))
    assert codes(body) == ["sync_not_stationed"]
    assert counts()[:2] == before[:2]


def test_a_cadre_no_longer_responsible_for_the_community_cannot_log_there(space, people):
    p = people
    RoleAssignment.objects.filter(user=p.cadre).update(revoked_at=timezone.now())
    grant(p.cadre, Role.GRID_WORKER, grid_cell=space.b1)
    before = counts()
    body = ok(post(p.cadre, CONTACTS, [item("check_in", **at(X + 0.004, Y + 0.005))]))
    assert codes(body) == ["sync_outside_reach"]
    assert counts()[:2] == before[:2]


# --- who may sync ---------------------------------------------------------------------------------


def test_roles_that_do_not_log_events_are_refused_and_nothing_is_written(people):
    before = counts()
    for user in (people.planner, people.leader):
        for path in (VISITS, CONTACTS):
            response = post(user, path, [item("other", **at(X + 0.004, Y + 0.009))])
            assert response.status_code == 403, response.content
            assert response.json()["code"] == "permission_denied"
    response = APIClient().post(VISITS, {"items": []}, format="json")
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"
    assert counts() == before


def test_a_tablet_token_syncs_until_it_is_revoked(people):
    token = Token.objects.create(user=people.worker_a1)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    sent = item("other", **at(X + 0.004, Y + 0.009))
    response = client.post(VISITS, {"items": [sent]}, format="json")
    assert ok(response)["created"] == 1
    assert Visit.objects.get().reporter == people.worker_a1
    assert AuditEvent.objects.get(object_type="orgs.Visit").actor == people.worker_a1
    token.delete()
    before = counts()
    response = client.post(VISITS, {"items": [item("other", **at(X + 0.004, Y + 0.009))]}, format="json")
    assert response.status_code == 401 and response.json()["code"] == "authentication_failed"
    assert counts() == before


def test_a_batch_costs_the_same_queries_whatever_its_size(space, people, django_assert_num_queries):
    """Set-based: no query per item, so a week of offline work syncs as fast as one record."""
    s, p = space, people

    def batch(n: int) -> list[dict]:
        out = []
        for i in range(n):
            out.append(item("household", building=s.house_a1.code, **at(X + 0.002, Y + 0.002)))
            out.append(item("enterprise", enterprise=p.firm_a1.pk))
            out.append(item("other", **at(X + 0.001 + i * 1e-5, Y + 0.009)))
        return out

    client = api_client(p.worker_a1)
    with CaptureQueriesContext(connection) as small:
        assert ok(client.post(VISITS, {"items": batch(1)}, format="json"))["created"] == 3
    assert len(small) <= 16
    with django_assert_num_queries(len(small)):
        assert ok(client.post(VISITS, {"items": batch(20)}, format="json"))["created"] == 60


# --- the service directly -------------------------------------------------------------------------


def _event(index: int) -> sync.EventItem:
    raw = {"id": str(uuid.uuid4()), "kind": "other"}
    return sync.EventItem(
        index=index,
        id=uuid.UUID(raw["id"]),
        occurred_at=timezone.now() - timedelta(hours=1),
        kind=raw["kind"],
        payload_hash=sync.payload_hash(raw),
        position=sync.Position(lon=X + 0.004, lat=Y + 0.009),
    )


def test_the_service_keeps_the_edges_refusals_and_answers_in_index_order(people):
    user = people.worker_a1
    refused = [sync.rejected(1, "", "invalid_input", "记录内容有误")]
    result = sync.visits_sync(
        reach=reach_for_user(user), user=user, items=[_event(index=0), _event(index=2)], refused=refused
    )
    out = result.as_dict()
    assert [r["index"] for r in out["results"]] == [0, 1, 2]
    assert (out["created"], out["rejected"]) == (2, 1)
    assert json.loads(json.dumps(out)) == out
    assert Visit.objects.count() == 2
    assert AuditEvent.objects.get(object_type="orgs.Visit").changes["rejected"] == {"invalid_input": 1}


def test_a_retry_is_a_duplicate_even_after_the_worker_moved_grids_or_the_record_aged(space, people, settings):
    s, p = space, people
    batch = [
        item("household", building=s.house_a1.code),
        item("other", occurred_at=when(days=20), **at(X + 0.004, Y + 0.009)),
    ]
    ok(post(p.worker_a1, VISITS, batch))
    # The answer was lost; meanwhile the worker was moved to A2 and the age limit was shortened.
    RoleAssignment.objects.filter(user=p.worker_a1).update(revoked_at=timezone.now())
    grant(p.worker_a1, Role.GRID_WORKER, grid_cell=s.a2)
    settings.WANGGE_SYNC = {**settings.WANGGE_SYNC, "max_age_days": 10}
    before = counts()
    assert codes(ok(post(p.worker_a1, VISITS, batch))) == ["duplicate", "duplicate"]
    assert counts() == before


# --- concurrent sends ------------------------------------------------------------------------------


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_the_same_batch_sent_twice_at_once_is_stored_once(space, people):
    """The tablet resends while the first send is still being written: the second waits for the
    first, then answers duplicate; never a second row, an IntegrityError or a 500."""
    p = people
    batch = [item("other", **at(X + 0.004, Y + 0.009)), item("building", building=space.house_a1.code)]
    items, refused = event_apis._items(event_apis.VisitItemSerializer, batch)
    assert not refused
    written, release = threading.Event(), threading.Event()
    outcome: dict = {}

    def first() -> None:
        try:
            with transaction.atomic():
                outcome["first"] = sync.visits_sync(
                    reach=reach_for_user(p.worker_a1), user=p.worker_a1, items=items
                )
                written.set()
                release.wait(10)
        except Exception as exc:  # noqa: BLE001 - reported by the assertions below
            outcome["first_error"] = exc
        finally:
            written.set()
            connection.close()

    def second() -> None:
        try:
            written.wait(10)
            outcome["second"] = post(p.worker_a1, VISITS, batch)
        except Exception as exc:  # noqa: BLE001
            outcome["second_error"] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    written.wait(10)
    deadline = time.monotonic() + 5
    while not _waiting_on_a_lock() and time.monotonic() < deadline:
        time.sleep(0.02)
    blocked = _waiting_on_a_lock()
    release.set()
    for t in threads:
        t.join(15)
    assert "first_error" not in outcome and "second_error" not in outcome, outcome
    assert blocked, "the second send should have waited for the first one's rows"
    assert outcome["first"].count(sync.CREATED) == 2
    assert codes(ok(outcome["second"])) == ["duplicate", "duplicate"]
    assert Visit.objects.count() == 2
    assert AuditEvent.objects.filter(object_type="orgs.Visit").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_tablets_racing_with_the_same_batch_get_one_created_one_duplicate(space, people):
    p = people
    batch = [item("other", **at(X + 0.004, Y + 0.009)) for _ in range(3)]
    start = threading.Barrier(2)
    responses, errors = [], []

    def send() -> None:
        try:
            start.wait(5)
            responses.append(post(p.worker_a1, VISITS, batch))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert not errors
    bodies = sorted((ok(r) for r in responses), key=lambda b: -b["created"])
    assert [(b["created"], b["duplicate"], b["rejected"]) for b in bodies] == [(3, 0, 0), (0, 3, 0)]
    assert Visit.objects.count() == 3


def test_the_lists_filter_by_kind_grid_day_and_on_site(space, people):
    """What a clerk asks of the lists: this grid's household visits of last week; the cadre's
    check-ins that were not on site."""
    s, p = space, people
    today = timezone.localdate()
    a2_point = s.house_a2.point
    ok(
        post(
            p.admin_a,
            VISITS,
            [
                item("household", building=s.house_a1.code, occurred_at=when(days=8)),
                item("household", building=s.house_a2.code, occurred_at=when(days=2)),
                item("other", occurred_at=when(days=2), **at(a2_point.x, a2_point.y)),
            ],
        )
    )
    admin = api_client(p.admin_a)

    def kinds_and_grids(query: str) -> list[tuple[str, str]]:
        response = admin.get(f"/api/visits/?{query}")
        assert response.status_code == 200, response.content
        return sorted(
            (f["properties"]["kind"], f["properties"]["grid_cell_code"]) for f in response.json()["features"]
        )

    assert kinds_and_grids("kind=household") == [("household", s.a1.code), ("household", s.a2.code)]
    assert kinds_and_grids(f"grid_cell={s.a2.code}") == [("household", s.a2.code), ("other", s.a2.code)]
    since = (today - timedelta(days=5)).isoformat()
    assert kinds_and_grids(f"since={since}&kind=household") == [("household", s.a2.code)]
    until = (today - timedelta(days=5)).isoformat()
    assert kinds_and_grids(f"until={until}") == [("household", s.a1.code)]
    refused = admin.get(f"/api/visits/?since={today.isoformat()}&until={until}")
    assert refused.status_code == 400 and refused.json()["code"] == "invalid_input"

    inside, outside = (X + 0.003, Y + 0.005), (X + 0.015, Y + 0.005)  # in A; in B
    ok(post(p.cadre, CONTACTS, [item("check_in", **at(*inside)), item("check_in", **at(*outside))]))
    response = api_client(p.cadre).get("/api/station-contacts/?on_site=false")
    assert response.status_code == 200, response.content
    (off_site,) = response.json()["features"]
    assert off_site["geometry"]["coordinates"] == pytest.approx(list(outside))
    assert off_site["properties"]["on_site"] is False
