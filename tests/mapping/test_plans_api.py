"""The planners' API through the HTTP client: the whole flow as a planner, the answers' shapes,
who may see and write drafts (planners and street administrators, within their reach; the same
404 for missing and not-yours), and query budgets."""

from __future__ import annotations

import io
import json

import pytest

from grid.models import AuditEvent, Role
from mapping import plans
from mapping.plans_models import Plan, PlanCell, PlanEdit
from tests.factories import CommunityFactory, StreetFactory, multi, rect
from tests.mapping.plans_scene import PlanScene, X, Y, geojson, plan_scene_fixture  # noqa: F401 - fixture
from tests.people import api_client, user_with

pytestmark = pytest.mark.django_db


@pytest.fixture
def planner(plan_scene: PlanScene):
    return api_client(user_with(Role.PLANNER, street=plan_scene.community.street))


def wider_b(s: PlanScene) -> dict:
    return {"kind": "reshape", "payload": {"code": s.b.code, "geometry": geojson(rect(X + 0.004, Y, X + 0.0092, Y + 0.004))}}


def test_the_whole_flow_as_a_planner(plan_scene: PlanScene, planner):
    s = plan_scene
    r = planner.post("/api/plans/", {"community": s.community.code, "name": "西列并入乙"}, format="json")
    assert r.status_code == 201, r.content
    plan = r.json()
    assert (plan["state"], plan["cursor"], plan["can_undo"], plan["stale"], plan["warnings"]) == ("draft", 0, False, False, [])
    assert [f["id"] for f in plan["cells"]["features"]] == [s.a.code, s.b.code, s.c.code]
    assert plan["cells"]["features"][0]["properties"] == {"code": s.a.code, "name": "甲网格", "locked": False, "new": False}
    pid = plan["id"]

    listed = planner.get("/api/plans/", {"community": s.community.code}).json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == pid
    assert planner.patch(f"/api/plans/{pid}/", {"name": "乙网格扩容"}, format="json").json()["name"] == "乙网格扩容"

    edit = planner.post(f"/api/plans/{pid}/edits/", {**wider_b(s), "cursor": 0}, format="json")
    assert edit.status_code == 200, edit.content
    body = edit.json()
    assert body["plan"] == {"id": pid, "cursor": 1, "can_undo": True, "can_redo": False}
    assert body["checks"]["summary"]["cells_in_range"] == 3
    assert set(body["changed"]) == {s.b.code, s.c.code}
    stale_cursor = planner.post(f"/api/plans/{pid}/edits/", {**wider_b(s), "cursor": 0}, format="json")
    assert stale_cursor.status_code == 409 and stale_cursor.json()["code"] == "plan_edit_conflict"

    assert planner.post(f"/api/plans/{pid}/undo/", {}, format="json").json()["plan"]["cursor"] == 0
    assert planner.post(f"/api/plans/{pid}/redo/", {"cursor": 0}, format="json").json()["plan"]["cursor"] == 1
    log = planner.get(f"/api/plans/{pid}/edits/").json()
    assert [(e["seq"], e["kind"]) for e in log] == [(1, "reshape")]

    checks = planner.get(f"/api/plans/{pid}/checks/").json()
    assert checks["ok"] is True and checks["summary"]["households_moved"] == 200
    preview = planner.get(f"/api/plans/{pid}/preview/").json()
    assert [(f["from"], f["to"], f["households"]) for f in preview["flows"]] == [(s.c.code, s.b.code, 200)]
    compared = planner.get(f"/api/plans/{pid}/compare/").json()
    assert compared["names"] == ["乙网格扩容", "现行网格"]
    row = next(c for c in compared["cells"] if c["code"] == s.b.code)
    assert row["households"] == [400, 200] and row["households_difference"] == 200

    copy = planner.post(f"/api/plans/{pid}/copy/", {"name": "副本"}, format="json")
    assert copy.status_code == 201 and copy.json()["origin"] == "copy" and copy.json()["origin_plan_id"] == pid
    other = planner.get(f"/api/plans/{pid}/compare/", {"other": copy.json()["id"]}).json()
    assert all(c["households_difference"] == 0 for c in other["cells"])

    applied = planner.post(f"/api/plans/{pid}/apply/", {"valid_from": "2025-01-01", "reason": "户数均衡"}, format="json")
    assert applied.status_code == 200, applied.content
    assert applied.json()["buildings_moved"] == 2
    detail = planner.get(f"/api/plans/{pid}/").json()
    assert (detail["state"], detail["valid_from"], detail["reason"], detail["can_undo"]) == ("applied", "2025-01-01", "户数均衡", False)

    # The copy was based on the same grid: applying it now is refused, 409, with the code.
    stale = planner.post(f"/api/plans/{copy.json()['id']}/apply/", {"reason": "再来一次"}, format="json")
    assert stale.status_code == 409 and stale.json()["code"] == "plan_stale"
    assert planner.get(f"/api/plans/{copy.json()['id']}/").json()["stale"] is True

    back = planner.post(f"/api/plans/{pid}/revert/", {}, format="json")
    assert back.status_code == 201 and back.json()["origin"] == "revert"
    gone = planner.delete(f"/api/plans/{back.json()['id']}/")
    assert gone.status_code == 200 and gone.json()["state"] == "abandoned"
    again = planner.post(f"/api/plans/{back.json()['id']}/edits/", wider_b(s), format="json")
    assert again.status_code == 409 and again.json()["code"] == "plan_not_draft"


def test_a_draft_from_a_date_and_from_an_upload(plan_scene: PlanScene, planner):
    s = plan_scene
    r = planner.post("/api/plans/", {"community": s.community.code, "name": "旧网格", "as_of": "2024-06-01"}, format="json")
    assert r.status_code == 201 and r.json()["origin"] == "as_of"
    too_early = planner.post("/api/plans/", {"community": s.community.code, "name": "x", "as_of": "2020-01-01"}, format="json")
    assert too_early.status_code == 400 and too_early.json()["code"] == "plan_nothing_on_date"

    collection = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": s.a.code, "name": "甲"}, "geometry": geojson(rect(X, Y, X + 0.012, Y + 0.004))},
    ]}
    upload = io.BytesIO(json.dumps(collection).encode())
    upload.name = "grids.geojson"
    r = planner.post("/api/plans/", {"community": s.community.code, "name": "上传", "file": upload}, format="multipart")
    assert r.status_code == 201, r.content
    assert r.json()["origin"] == "upload" and [f["id"] for f in r.json()["cells"]["features"]] == [s.a.code]

    collection["features"].append({"type": "Feature", "properties": {"code": "bad", "name": "x"}, "geometry": None})
    bad = io.BytesIO(json.dumps(collection).encode())
    bad.name = "grids.geojson"
    before = Plan.objects.count()
    r = planner.post("/api/plans/", {"community": s.community.code, "name": "坏", "file": bad}, format="multipart")
    assert r.status_code == 400 and r.json()["code"] == "plan_upload_rejected"
    assert {(i["index"], i["error_code"]) for i in r.json()["issues"]} == {(2, "code_format"), (2, "geometry_missing")}
    assert Plan.objects.count() == before


def test_refused_edits_answer_400_with_the_code_and_write_nothing(plan_scene: PlanScene, planner):
    s = plan_scene
    plan = plans.plan_create(community=s.community, name="草稿")
    cases = [
        ({"kind": "merge", "payload": {"code": s.a.code, "other": s.c.code}}, "plan_cells_not_adjacent"),
        ({"kind": "reshape", "payload": {"code": s.a.code, "geometry": {"type": "Point", "coordinates": [X, Y]}}},
         "geometry_type"),
        ({"kind": "split", "payload": {"code": s.a.code, "line": {"type": "LineString",
                                                                   "coordinates": [[X, Y], [X + 0.001, Y + 0.001]]}}},
         "plan_split_line_invalid"),
        ({"kind": "rotate", "payload": {}}, "invalid_input"),
        ({"kind": "draw", "payload": {"geometry": geojson(rect(X, Y, X + 0.001, Y + 0.001))}, "crs": "mars-2000"},
         "crs_unknown"),
    ]
    for body, code in cases:
        r = planner.post(f"/api/plans/{plan.pk}/edits/", body, format="json")
        assert r.status_code == 400 and r.json()["code"] == code, (body, r.content)
        assert r.json()["message"]
    assert not PlanEdit.objects.exists()
    plan.refresh_from_db()
    assert plan.cursor == 0
    r = planner.post(f"/api/plans/{plan.pk}/apply/", {"reason": ""}, format="json")
    assert r.status_code == 400


@pytest.mark.parametrize("role", [Role.GRID_WORKER, Role.COMMUNITY_ADMIN, Role.LEADER])
def test_roles_that_do_not_plan_see_no_draft_and_cannot_write(plan_scene: PlanScene, role):
    s = plan_scene
    plan = plans.plan_create(community=s.community, name="草稿")
    unit = {"grid_cell": s.a} if role == Role.GRID_WORKER else {"community": s.community} if role == Role.COMMUNITY_ADMIN else {"street": s.community.street}
    client = api_client(user_with(role, **unit))
    assert client.get("/api/plans/").json()["results"] == []
    for path in ("", "checks/", "preview/", "edits/", "compare/"):
        r = client.get(f"/api/plans/{plan.pk}/{path}")
        assert r.status_code == 404 and r.json()["code"] == "not_found", path
    before = AuditEvent.objects.count()
    assert client.post("/api/plans/", {"community": s.community.code, "name": "x"}, format="json").status_code == 403
    for path in ("edits/", "undo/", "redo/", "apply/", "copy/", "revert/"):
        assert client.post(f"/api/plans/{plan.pk}/{path}", {}, format="json").status_code == 403, path
    assert client.delete(f"/api/plans/{plan.pk}/").status_code == 403
    assert Plan.objects.count() == 1 and AuditEvent.objects.count() == before


def test_a_planner_of_another_street_gets_the_same_404_as_for_a_missing_plan(plan_scene: PlanScene):
    s = plan_scene
    plan = plans.plan_create(community=s.community, name="草稿")
    elsewhere = StreetFactory(geom=multi(rect(X + 0.05, Y, X + 0.06, Y + 0.01)))
    CommunityFactory(street=elsewhere, geom=multi(rect(X + 0.05, Y, X + 0.06, Y + 0.01)))
    client = api_client(user_with(Role.PLANNER, street=elsewhere))
    missing = client.get("/api/plans/999999/")
    forbidden = client.get(f"/api/plans/{plan.pk}/")
    assert missing.status_code == forbidden.status_code == 404 and missing.json() == forbidden.json()
    for path in ("edits/", "undo/", "apply/", "copy/", "revert/"):
        assert client.post(f"/api/plans/{plan.pk}/{path}", {"reason": "x", **wider_b(s)}, format="json").status_code == 404
    r = client.post("/api/plans/", {"community": s.community.code, "name": "越权"}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "reference_not_found"
    assert client.get("/api/plans/").json()["results"] == []
    # Comparing with a plan out of reach is the same 404.
    own = plans.plan_create(community=s.community, name="另一个")
    planner = api_client(user_with(Role.PLANNER, street=s.community.street))
    assert planner.get(f"/api/plans/{own.pk}/compare/", {"other": 999999}).status_code == 404
    assert Plan.objects.count() == 2 and PlanCell.objects.filter(plan__name="越权").count() == 0


def test_a_street_admin_plans_too(plan_scene: PlanScene):
    s = plan_scene
    admin = api_client(user_with(Role.STREET_ADMIN, street=s.community.street))
    r = admin.post("/api/plans/", {"community": s.community.code, "name": "街道草稿"}, format="json")
    assert r.status_code == 201


def test_an_edit_costs_a_bounded_number_of_queries(plan_scene: PlanScene, planner, django_assert_max_num_queries):
    s = plan_scene
    plan = plans.plan_create(community=s.community, name="草稿")
    with django_assert_max_num_queries(30):
        r = planner.post(f"/api/plans/{plan.pk}/edits/", wider_b(s), format="json")
    assert r.status_code == 200
    with django_assert_max_num_queries(12):
        assert planner.get(f"/api/plans/{plan.pk}/checks/").status_code == 200
