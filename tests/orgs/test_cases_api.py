"""/api/cases/ through the HTTP client: scoped by reach, query budgets, hostile input answered with a
stable code and a Chinese message and nothing written."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from orgs.cases_models import Case, CaseTransition
from tests.orgs.cases_world import MONDAY, Ledger, at, ledger_fixture, snapshot  # noqa: F401 - fixture
from tests.people import api_client

pytestmark = pytest.mark.django_db
A = CaseTransition.Action


def _chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def _point(ledger: Ledger, cell: str, dx: float = 0) -> dict:
    p = ledger.position_in(cell, dx=dx)
    return {"type": "Point", "coordinates": [p.lon, p.lat]}


def test_the_ledger_list_is_scoped_filtered_and_cheap(ledger: Ledger, django_assert_max_num_queries):
    a1 = ledger.raise_case()
    a2 = ledger.raise_case(by=ledger.admin_a, cell="a2", category=ledger.neighbours)
    b1 = ledger.raise_case(by=ledger.admin_b, cell="b1")
    ledger.act(ledger.act(a1, A.ACCEPT), A.DISPATCH)

    street = api_client(ledger.street_admin)
    with django_assert_max_num_queries(6):
        body = street.get("/api/cases/").json()
    assert body["type"] == "FeatureCollection" and body["count"] == 3
    assert [f["id"] for f in body["features"]] == [b1.pk, a2.pk, a1.pk]  # newest first (same time: id)
    first = next(f for f in body["features"] if f["id"] == a1.pk)
    assert first["geometry"]["type"] == "Point"
    props = first["properties"]
    assert (props["state"], props["state_display"], props["category_name"]) == ("dispatched", "已派遣待处理", "暴露垃圾")
    assert props["grid_code"] == ledger.space.a1.code and props["assignee_name"] == "街道环卫所"
    assert props["overdue"] is True  # its 处置 limit (Tuesday 9:00) passed long ago

    def ids(client, **query):
        response = client.get("/api/cases/", query)
        assert response.status_code == 200, response.content
        return {f["id"] for f in response.json()["features"]}

    assert ids(api_client(ledger.worker_a1)) == {a1.pk}
    assert ids(api_client(ledger.admin_a)) == {a1.pk, a2.pk}
    assert ids(street, state="dispatched") == {a1.pk}
    assert ids(street, category=ledger.neighbours.pk) == {a2.pk}
    assert ids(street, grid=ledger.space.b1.code) == {b1.pk}
    assert ids(street, community=ledger.space.a.code) == {a1.pk, a2.pk}
    assert ids(street, overdue="true") == {a1.pk, a2.pk, b1.pk}
    assert ids(street, source="hotline") == set()
    assert ids(street, since="2026-03-03") == set()
    assert ids(api_client(ledger.worker_a1), grid=ledger.space.b1.code) == set()
    bad = street.get("/api/cases/", {"state": "lost", "since": "2026-03-05", "until": "2026-03-01"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_input"


def test_detail_with_timeline_actions_and_pii_by_role(ledger: Ledger, django_assert_max_num_queries):
    case = ledger.raise_case(resident_name="王阿姨", resident_phone="13812345678")
    case = ledger.act(case, A.ACCEPT)
    worker = api_client(ledger.worker_a1).get(f"/api/cases/{case.pk}/").json()
    assert worker["resident_phone"] == "138****5678" and worker["resident_phone_masked"] is True
    assert worker["allowed_actions"] == []
    assert [t["action"] for t in worker["timeline"]] == ["report", "accept"]
    assert worker["version"] == 2 and worker["grid_code"] == ledger.space.a1.code
    with django_assert_max_num_queries(12):
        admin = api_client(ledger.admin_a).get(f"/api/cases/{case.pk}/").json()
    assert admin["resident_phone"] == "13812345678" and admin["resident_phone_masked"] is False
    assert admin["allowed_actions"] == ["dispatch", "send_back", "merge"]
    timeline = api_client(ledger.admin_a).get(f"/api/cases/{case.pk}/transitions/").json()
    assert [t["action_display"] for t in timeline] == ["采集", "立案"]
    # Another grid's case: the same 404 as a missing one.
    other = ledger.raise_case(by=ledger.admin_a, cell="a2")
    for url in (f"/api/cases/{other.pk}/", f"/api/cases/{other.pk}/transitions/", "/api/cases/999999999/"):
        response = api_client(ledger.worker_a1).get(url)
        assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_create_answers_the_case_and_its_likely_duplicates(ledger: Ledger):
    first = ledger.raise_case(now=timezone.now())
    far = ledger.raise_case(position=ledger.position_in("a1", dy=400), now=timezone.now())
    other_kind = ledger.raise_case(category=ledger.neighbours, now=timezone.now())
    client = api_client(ledger.worker_a1)
    response = client.post(
        "/api/cases/",
        {
            "category": ledger.rubbish.pk,
            "description": "垃圾桶满溢",
            "source": "visit",
            "position": _point(ledger, "a1", dx=40),
            "crs": "wgs84",
            "accuracy_m": 6,
            "building": ledger.space.house_a1.code,
            "resident_phone": "13812345678",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == "reported" and body["version"] == 1 and body["building_code"] == ledger.space.house_a1.code
    likely = [d["id"] for d in body["likely_duplicates"]]
    assert likely == [first.pk] and far.pk not in likely and other_kind.pk not in likely
    assert 30 < body["likely_duplicates"][0]["distance_m"] < 50


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"position": {"type": "Point", "coordinates": [110.4, 95]}}, 400, "coords_out_of_range"),
        ({"position": {"type": "Point", "coordinates": [2.35, 48.85]}}, 400, "coords_outside_china"),
        ({"position": {"type": "Point", "coordinates": [110.4, "x"]}}, 400, "invalid_input"),
        ({"crs": "EPSG:999999"}, 400, "crs_unknown"),
        ({"category": 999999}, 400, "reference_not_found"),
        ({"source": "wechat"}, 400, "invalid_input"),
        ({"description": ""}, 400, "invalid_input"),
        ({"building": "B-OTHER"}, 400, "reference_not_found"),
        ({"position": "a2"}, 403, "case_outside_reach"),
        ({"resident_phone": "110"}, 400, "phone_invalid"),
    ],
)
def test_hostile_creates_write_nothing(ledger: Ledger, body, status, code):
    data = {
        "category": ledger.rubbish.pk,
        "description": "垃圾",
        "source": "visit",
        "position": _point(ledger, "a1"),
        **body,
    }
    if data["position"] == "a2":
        data["position"] = _point(ledger, "a2")
    if data.get("building") == "B-OTHER":
        data["building"] = ledger.space.house_b1.code
    before = snapshot()
    response = api_client(ledger.worker_a1).post("/api/cases/", data, format="json")
    assert response.status_code == status, response.content
    assert response.json()["code"] == code and _chinese(response.json()["message"])
    assert snapshot() == before


def test_transitions_through_the_api(ledger: Ledger):
    case = ledger.raise_case()
    admin = api_client(ledger.admin_a)
    url = f"/api/cases/{case.pk}/transitions/"
    ok = admin.post(url, {"action": "accept", "expected_version": 1}, format="json")
    assert ok.status_code == 200, ok.content
    assert ok.json()["state"] == "registered" and ok.json()["version"] == 2

    before = snapshot()
    stale = admin.post(url, {"action": "dispatch", "expected_version": 1}, format="json")
    assert stale.status_code == 409
    assert stale.json()["code"] == "case_stale" and stale.json()["version"] == 2 and _chinese(stale.json()["message"])
    wrong = admin.post(url, {"action": "close"}, format="json")
    assert wrong.status_code == 400 and wrong.json()["code"] == "case_transition_not_allowed"
    assert wrong.json()["allowed"] == ["dispatch", "send_back", "merge"] and _chinese(wrong.json()["message"])
    unknown = admin.post(url, {"action": "approve"}, format="json")
    assert unknown.status_code == 400 and unknown.json()["code"] == "invalid_input"
    reasonless = admin.post(url, {"action": "send_back"}, format="json")
    assert reasonless.status_code == 400 and reasonless.json()["code"] == "case_reason_required"
    forbidden = api_client(ledger.worker_a1).post(url, {"action": "dispatch"}, format="json")
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "case_action_forbidden"
    assert api_client(ledger.leader).post(url, {"action": "dispatch"}, format="json").status_code == 403
    elsewhere = api_client(ledger.worker_a2).post(url, {"action": "dispatch"}, format="json")
    assert elsewhere.status_code == 404 and elsewhere.json()["code"] == "not_found"
    other_org = admin.post(url, {"action": "dispatch", "assignee_org": ledger.org_b.pk}, format="json")
    assert other_org.status_code == 400 and other_org.json()["code"] == "reference_not_found"
    assert snapshot() == before

    dispatched = admin.post(url, {"action": "dispatch", "assignee_org": ledger.branch_a1.pk}, format="json").json()
    assert dispatched["assignee_name"] == ledger.branch_a1.name and dispatched["assignee_route"] == "manual"


def test_nearby_duplicates(ledger: Ledger):
    near = ledger.raise_case(position=ledger.position_in("a1", dx=20))
    nearer = ledger.raise_case(position=ledger.position_in("a1", dx=5), now=at(2026, 3, 2, 9, 30))
    ledger.raise_case(position=ledger.position_in("a1", dy=300))  # beyond 250 m
    closed = ledger.act(ledger.raise_case(), A.DECLINE, reason="无效")
    p = ledger.position_in("a1")
    client = api_client(ledger.worker_a1)
    query = {"lon": p.lon, "lat": p.lat, "category": ledger.rubbish.pk}
    body = client.get("/api/cases/nearby/", query).json()
    assert body["radius_m"] == 250
    assert [r["id"] for r in body["results"]] == [nearer.pk, near.pk]
    assert closed.pk not in [r["id"] for r in body["results"]]
    assert [r["id"] for r in client.get("/api/cases/nearby/", {**query, "radius_m": 10}).json()["results"]] == [
        nearer.pk
    ]
    assert client.get("/api/cases/nearby/", {**query, "radius_m": 5000}).json()["code"] == "invalid_input"
    # In GCJ-02 the same point answers the same.
    g = ledger.position_in("a1", crs="gcj02")
    assert client.get("/api/cases/nearby/", {**query, "lon": g.lon, "lat": g.lat, "crs": "gcj02"}).json() == body
    # A point in another grid is outside the worker's reach: 404, like a missing thing.
    b = ledger.position_in("a2")
    refused = client.get("/api/cases/nearby/", {**query, "lon": b.lon, "lat": b.lat})
    assert refused.status_code == 404 and refused.json()["code"] == "not_found"
    bad = client.get("/api/cases/nearby/", {**query, "lat": 95})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_input"


def _close(ledger: Ledger, case: Case, *, accepted_at) -> Case:
    """The whole loop, 立案 at `accepted_at` and each later step ten minutes after the last."""
    steps = [
        (A.ACCEPT, ledger.admin_a, {}),
        (A.DISPATCH, ledger.admin_a, {}),
        (A.START, ledger.worker_a1, {}),
        (A.FEEDBACK, ledger.worker_a1, {"reason": "已清运"}),
        (A.VERIFY, ledger.worker_a1, {"position": ledger.position_in("a1")}),
        (A.CLOSE, ledger.admin_a, {}),
    ]
    for n, (action, who, extra) in enumerate(steps):
        case = ledger.act(case, action, by=who, now=accepted_at + timedelta(minutes=10 * n), **extra)
    return case


def test_statistics(ledger: Ledger, django_assert_max_num_queries):
    _close(ledger, ledger.raise_case(), accepted_at=at(2026, 3, 2, 9, 10))  # on time
    _close(ledger, ledger.raise_case(position=ledger.position_in("a1", dx=10)), accepted_at=at(2026, 3, 2, 11))
    ledger.raise_case(position=ledger.position_in("a1", dx=20))  # open
    ledger.raise_case(by=ledger.admin_b, cell="b1", category=ledger.neighbours)

    client = api_client(ledger.street_admin)
    with django_assert_max_num_queries(8):
        response = client.get("/api/cases/statistics/", {"since": "2026-03-01", "until": "2026-03-31"})
    assert response.status_code == 200, response.content
    stats = response.json()
    rubbish = next(r for r in stats["by_category"] if r["category_name"] == "暴露垃圾")
    # Two closed, one of them with its 立案 an hour late: 按期办结率 50 %.
    assert (rubbish["opened"], rubbish["closed"], rubbish["closed_on_time"], rubbish["on_time_rate"]) == (3, 2, 1, 0.5)
    assert rubbish["open_now"] == 1
    assert stats["totals"]["opened"] == 4 and stats["totals"]["on_time_rate"] == 0.5
    a1 = next(r for r in stats["by_grid"] if r["grid_code"] == ledger.space.a1.code)
    assert a1["opened"] == 3
    # Time in 待立案: 10 minutes and 2 hours, median 65 minutes; each later state 10 minutes.
    medians = {m["state"]: m["median_hours"] for m in stats["median_hours_by_state"]}
    assert medians["reported"] == pytest.approx(65 / 60, abs=0.01)
    assert medians["dispatched"] == pytest.approx(10 / 60, abs=0.01)
    assert rubbish["median_hours_by_state"]["reported"] == pytest.approx(65 / 60, abs=0.01)
    # Three rubbish cases within 20 m in the last 90 days: one repeat place in A1.
    (place,) = stats["repeat_places"]
    assert place["count"] == 3 and place["grid_code"] == ledger.space.a1.code and place["category_name"] == "暴露垃圾"
    # A grid worker of A2 sees none of A1's figures.
    worker = api_client(ledger.worker_a2).get("/api/cases/statistics/", {"since": "2026-03-01"}).json()
    assert worker["by_grid"] == [] and worker["repeat_places"] == [] and worker["totals"]["opened"] == 0
    bad = client.get("/api/cases/statistics/", {"since": "2026-04-01", "until": "2026-03-01"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_input"


def test_categories(ledger: Ledger):
    body = api_client(ledger.worker_a1).get("/api/cases/categories/").json()
    rubbish = next(c for c in body if c["name"] == "暴露垃圾")
    assert rubbish["handle_hours"] == 7.5 and rubbish["duplicate_radius_m"] == 250
    assert api_client(None).get("/api/cases/categories/").status_code == 401


def test_a_reader_without_roles_and_anonymous_are_refused(ledger: Ledger):
    case = ledger.raise_case()
    assert api_client(None).get(f"/api/cases/{case.pk}/").status_code == 401
    from tests.people import user_with

    assert api_client(user_with(None)).get("/api/cases/").status_code == 403
    assert MONDAY.tzinfo is not None and Case.objects.count() == 1
