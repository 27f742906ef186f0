"""Correcting a synced visit: PATCH /api/visits/{id}/ names the version it replaces; a stale edit is
refused with 409 visit_stale and a Chinese message, never applied over a newer one."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from edge.errors import Conflict
from grid.access import reach_for_user
from grid.models import AuditEvent
from orgs.models import Visit
from orgs.services.visit_edit import visit_correct
from tests.orgs.cases_world import Ledger, ledger_fixture  # noqa: F401 - fixture
from tests.orgs_factories import GridWorkerFactory
from tests.people import api_client


def _synced_visit(ledger: Ledger) -> dict:
    GridWorkerFactory(community=ledger.space.a, grid_cells=[ledger.space.a1], user=ledger.worker_a1)
    item = {"id": str(uuid.uuid4()), "occurred_at": timezone.now().isoformat(), "kind": "household",
            "building": ledger.space.house_a1.code, "household": "2单元301", "summary": "独居老人，身体尚可"}
    answer = api_client(ledger.worker_a1).post("/api/sync/visits/", {"items": [item]}, format="json").json()
    assert answer["created"] == 1, answer
    return item


def _chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


@pytest.mark.django_db
def test_a_correction_names_its_version_and_a_stale_one_is_refused(ledger: Ledger):
    item = _synced_visit(ledger)
    url = f"/api/visits/{item['id']}/"
    worker = api_client(ledger.worker_a1)
    got = worker.get(url)
    assert got.status_code == 200 and got.json()["properties"]["version"] == 1
    audits = AuditEvent.objects.count()
    first = worker.patch(url, {"version": 1, "summary": "独居老人，腿脚不便，需每周探访"}, format="json")
    assert first.status_code == 200, first.content
    assert first.json()["properties"]["version"] == 2
    assert AuditEvent.objects.count() == audits + 1
    # A second tablet still showing version 1 sends its own edit: refused, nothing overwritten.
    stale = api_client(ledger.admin_a).patch(url, {"version": 1, "summary": "旧内容"}, format="json")
    assert stale.status_code == 409
    body = stale.json()
    assert body["code"] == "visit_stale" and body["version"] == 2 and _chinese(body["message"])
    visit = Visit.objects.get()
    assert (visit.version, visit.summary) == (2, "独居老人，腿脚不便，需每周探访")
    assert AuditEvent.objects.count() == audits + 1
    # The tablet resending its original batch still gets "duplicate", and the correction stands.
    again = api_client(ledger.worker_a1).post("/api/sync/visits/", {"items": [item]}, format="json").json()
    assert again["duplicate"] == 1
    assert Visit.objects.get().summary == "独居老人，腿脚不便，需每周探访"


@pytest.mark.django_db
@pytest.mark.parametrize("name, status, code", [
    ("another_grids_worker", 404, "not_found"),
    ("a_place_field", 400, "visit_field_not_editable"),
    ("no_version", 400, "invalid_input"),
    ("a_role_that_logs_nothing", 403, "permission_denied"),
])
def test_hostile_corrections_write_nothing(ledger: Ledger, name, status, code):
    item = _synced_visit(ledger)
    user, body = ledger.worker_a1, {"version": 1, "summary": "改"}
    if name == "another_grids_worker":
        user = ledger.worker_a2
    elif name == "a_place_field":
        body["building"] = ledger.space.house_b1.code
    elif name == "no_version":
        body.pop("version")
    elif name == "a_role_that_logs_nothing":
        user = ledger.leader
    before = (list(Visit.objects.values_list("version", "summary", "building")), AuditEvent.objects.count())
    response = api_client(user).patch(f"/api/visits/{item['id']}/", body, format="json")
    assert response.status_code == status, response.content
    assert response.json()["code"] == code and _chinese(response.json()["message"])
    assert (list(Visit.objects.values_list("version", "summary", "building")), AuditEvent.objects.count()) == before


@pytest.mark.django_db(transaction=True)
def test_two_edits_racing_on_one_version_one_wins_the_other_is_stale(ledger: Ledger):
    item = _synced_visit(ledger)
    reach = reach_for_user(ledger.worker_a1)
    start = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def edit(summary: str) -> None:
        try:
            start.wait()
            visit_correct(reach=reach, user=ledger.worker_a1, visit_id=uuid.UUID(item["id"]), expected_version=1,
                          changes={"summary": summary})
            outcomes[summary] = "applied"
        except Conflict as exc:
            outcomes[summary] = exc.code
        finally:
            connection.close()

    threads = [threading.Thread(target=edit, args=(s,)) for s in ("甲的更正", "乙的更正")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes.values()) == ["applied", "visit_stale"], outcomes
    [winner] = [s for s, o in outcomes.items() if o == "applied"]
    visit = Visit.objects.get()
    assert (visit.version, visit.summary) == (2, winner)
    assert AuditEvent.objects.filter(object_type="orgs.Visit", action="update").count() == 1
