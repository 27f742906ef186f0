"""Every edit kind of a draft, its refusals (code, and nothing written), undo and redo."""

from __future__ import annotations

import pytest
from django.contrib.gis.geos import GEOSGeometry

from edge.errors import DomainError
from grid import coords
from grid.models import Building, GridBoundary
from mapping import plans
from mapping.plans_models import Plan, PlanCell, PlanEdit
from tests.factories import rect
from tests.mapping.plans_scene import PlanScene, X, Y, geojson, plan_scene_fixture  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


def shapes(plan: Plan) -> dict[str, GEOSGeometry]:
    return dict(PlanCell.objects.filter(plan=plan).values_list("code", "geom"))


def same(a: GEOSGeometry, b: GEOSGeometry) -> bool:
    """The same area within the 1e-9° grid edits keep their results on (~1e-4 m² here)."""
    return a.sym_difference(b).area < 1e-14


def state(plan: Plan) -> tuple:
    """Everything an edit may write: the plan's cursor, its cells, its edit log."""
    plan.refresh_from_db()
    cells = sorted((pc.code, pc.name, pc.geom.wkb.hex(), pc.locked, pc.cell_id) for pc in plan.cells.all())
    edits = list(PlanEdit.objects.filter(plan=plan).order_by("seq").values_list("seq", "kind"))
    return plan.cursor, cells, edits


def live(scene: PlanScene) -> tuple:
    """The live grid: boundary versions and buildings' cells (no edit may touch them)."""
    return (
        sorted((b.id, b.cell_id, str(b.valid), b.geom.wkb.hex()) for b in GridBoundary.objects.all()),
        sorted(Building.objects.values_list("id", "grid_cell_id")),
    )


def refused(plan: Plan, code: str, kind: str, payload: dict, **kwargs) -> DomainError:
    before = state(plan)
    with pytest.raises(DomainError) as caught:
        plans.plan_edit(plan=plan, kind=kind, payload=payload, **kwargs)
    assert caught.value.code == code, caught.value.message
    assert state(plan) == before
    return caught.value


@pytest.fixture
def draft(plan_scene: PlanScene) -> Plan:
    return plans.plan_create(community=plan_scene.community, name="测试草稿")


def test_a_draft_starts_from_todays_cells_and_nothing_live_changes_while_editing(plan_scene, draft):
    s = plan_scene
    assert {code: g.wkb for code, g in shapes(draft).items()} == {
        c.code: c.boundaries.get().geom.wkb for c in (s.a, s.b, s.c)
    }
    assert sorted(draft.based_on_boundaries) == sorted(GridBoundary.objects.values_list("id", flat=True))
    before = live(s)
    plans.plan_edit(plan=draft, kind="reshape",
                    payload={"code": s.b.code, "geometry": geojson(rect(X + 0.004, Y, X + 0.0092, Y + 0.004))})
    plans.plan_edit(plan=draft, kind="merge", payload={"code": s.a.code, "other": s.b.code})
    assert live(s) == before


def test_reshape_takes_the_area_from_the_neighbour_or_keeps_the_overlap(plan_scene, draft):
    s = plan_scene
    wider = geojson(rect(X + 0.004, Y, X + 0.0092, Y + 0.004))
    answer = plans.plan_edit(plan=draft, kind="reshape", payload={"code": s.b.code, "geometry": wider})
    assert answer["edit"] == {"seq": 1, "kind": "reshape", "summary": f"调整网格 {s.b.code} 的边界",
                              "cells": sorted([s.b.code, s.c.code])}
    assert answer["plan"] == {"id": draft.pk, "cursor": 1, "can_undo": True, "can_redo": False}
    got = shapes(draft)
    assert same(got[s.b.code], rect(X + 0.004, Y, X + 0.0092, Y + 0.004))
    assert same(got[s.c.code], rect(X + 0.0092, Y, X + 0.012, Y + 0.004))
    assert answer["changed"][s.c.code]["properties"]["code"] == s.c.code

    keep = plans.plan_edit(plan=draft, kind="reshape", payload={
        "code": s.a.code, "geometry": geojson(rect(X, Y, X + 0.005, Y + 0.004)), "neighbours": "keep"})
    assert keep["edit"]["cells"] == [s.a.code]
    assert [p["code"] for p in keep["checks"]["problems"] if p["severity"] == "error"] == ["grid_overlap"]


def test_a_shape_drawn_beyond_the_community_is_clipped_to_it(plan_scene, draft):
    s = plan_scene
    plans.plan_edit(plan=draft, kind="reshape",
                    payload={"code": s.a.code, "geometry": geojson(rect(X - 0.002, Y - 0.001, X + 0.004, Y + 0.005))})
    assert same(shapes(draft)[s.a.code], rect(X, Y, X + 0.004, Y + 0.004))


@pytest.mark.parametrize(
    ("geometry", "code"),
    [
        ({"type": "Point", "coordinates": [110.401, 21.191]}, "geometry_type"),
        # A bow tie: self-intersecting, refused rather than guessed.
        ({"type": "Polygon", "coordinates": [[[110.400, 21.190], [110.404, 21.194], [110.404, 21.190],
                                              [110.400, 21.194], [110.400, 21.190]]]}, "geometry_invalid"),
        ({"type": "Polygon", "coordinates": [[[1, 2], [3]]]}, "geometry_invalid"),
        ("not geojson", "geometry_type"),
        ({"type": "Polygon", "coordinates": [[[21.190, 110.400], [21.190, 110.404], [21.194, 110.404],
                                              [21.190, 110.400]]]}, "coords_out_of_range"),
        ({"type": "Polygon", "coordinates": [[[110.5, 21.3], [110.6, 21.3], [110.6, 21.4], [110.5, 21.3]]]},
         "plan_shape_outside_community"),
        # Inside, but a few square centimetres.
        ({"type": "Polygon", "coordinates": [[[X + 0.001, Y + 0.001], [X + 0.001000001, Y + 0.001],
                                              [X + 0.001, Y + 0.001000001], [X + 0.001, Y + 0.001]]]}, "geometry_empty"),
    ],
)
def test_bad_shapes_are_refused_with_their_code(plan_scene, draft, geometry, code):
    refused(draft, code, "reshape", {"code": plan_scene.a.code, "geometry": geometry})


def test_a_locked_cell_is_never_touched_directly_or_as_a_neighbour(plan_scene, draft):
    s = plan_scene
    plans.plan_edit(plan=draft, kind="lock", payload={"code": s.c.code})
    error = refused(draft, "plan_cell_locked", "reshape",
                    {"code": s.b.code, "geometry": geojson(rect(X + 0.004, Y, X + 0.0092, Y + 0.004))})
    assert error.detail == {"cells": [s.c.code]}
    refused(draft, "plan_cell_locked", "reshape", {"code": s.c.code, "geometry": geojson(rect(X + 0.009, Y, X + 0.012, Y + 0.004))})
    refused(draft, "plan_cell_locked", "merge", {"code": s.b.code, "other": s.c.code})
    refused(draft, "plan_cell_locked", "move_building", {"building": s.buildings["c1"].code, "to": s.b.code})
    refused(draft, "plan_edit_noop", "lock", {"code": s.c.code})
    plans.plan_edit(plan=draft, kind="unlock", payload={"codes": [s.c.code]})
    plans.plan_edit(plan=draft, kind="merge", payload={"code": s.b.code, "other": s.c.code})
    plans.plan_edit(plan=draft, kind="lock", payload={"all": True})
    assert set(PlanCell.objects.filter(plan=draft).values_list("locked", flat=True)) == {True}


def test_a_neighbour_that_would_vanish_is_refused(plan_scene, draft):
    s = plan_scene
    refused(draft, "plan_cell_would_vanish", "reshape",
            {"code": s.a.code, "geometry": geojson(rect(X, Y, X + 0.0085, Y + 0.004))})


def test_draw_gives_the_next_free_code_and_takes_its_area_from_the_cells_below(plan_scene, draft):
    s = plan_scene
    last = max(int(c.code[-3:]) for c in (s.a, s.b, s.c))
    answer = plans.plan_edit(plan=draft, kind="draw",
                             payload={"geometry": geojson(rect(X + 0.003, Y, X + 0.005, Y + 0.004)), "name": "新网格"})
    new = f"{s.community.code}{last + 1:03d}"
    assert answer["edit"]["cells"] == sorted([s.a.code, s.b.code, new])
    pc = PlanCell.objects.get(plan=draft, code=new)
    assert (pc.name, pc.cell_id, pc.locked) == ("新网格", None, False)
    got = shapes(draft)
    assert same(got[s.a.code], rect(X, Y, X + 0.003, Y + 0.004))
    assert same(got[s.b.code], rect(X + 0.005, Y, X + 0.008, Y + 0.004))
    assert not [p for p in answer["checks"]["problems"] if p["severity"] == "error"]
    again = plans.plan_edit(plan=draft, kind="draw", payload={"geometry": geojson(rect(X + 0.011, Y, X + 0.012, Y + 0.004))})
    assert f"{s.community.code}{last + 2:03d}" in again["edit"]["cells"]
    # An undone draw frees nothing: its code may come back on redo.
    plans.plan_undo(plan=draft)
    third = plans.plan_edit(plan=draft, kind="draw", payload={"geometry": geojson(rect(X + 0.011, Y, X + 0.012, Y + 0.004))})
    assert f"{s.community.code}{last + 2:03d}" in third["edit"]["cells"]


def test_draw_in_gcj02_is_converted_once(plan_scene, draft):
    ring = [(X + 0.011, Y), (X + 0.012, Y), (X + 0.012, Y + 0.004), (X + 0.011, Y + 0.004), (X + 0.011, Y)]
    gcj = [list(coords.wgs84_to_gcj02(x, y)) for x, y in ring]
    answer = plans.plan_edit(plan=draft, kind="draw", crs="gcj02",
                             payload={"geometry": {"type": "Polygon", "coordinates": [gcj]}})
    (new,) = [c for c in answer["edit"]["cells"] if c not in (plan_scene.c.code,)]
    assert abs(shapes(draft)[new].extent[0] - (X + 0.011)) < 1e-7


def test_split_along_a_line_gives_the_smaller_piece_a_new_code(plan_scene, draft):
    s = plan_scene
    line = {"type": "LineString", "coordinates": [[X + 0.001, Y - 0.001], [X + 0.001, Y + 0.005]]}
    answer = plans.plan_edit(plan=draft, kind="split", payload={"code": s.a.code, "line": line})
    (new,) = set(answer["edit"]["cells"]) - {s.a.code}
    got = shapes(draft)
    assert same(got[s.a.code], rect(X + 0.001, Y, X + 0.004, Y + 0.004))
    assert same(got[new], rect(X, Y, X + 0.001, Y + 0.004))
    assert not [p for p in answer["checks"]["problems"] if p["severity"] == "error"]


@pytest.mark.parametrize(
    "line",
    [
        [[X + 0.001, Y + 0.001], [X + 0.001, Y + 0.003]],  # ends inside the cell
        [[X + 0.005, Y - 0.001], [X + 0.005, Y + 0.005]],  # misses it
        # Crosses it three times: three pieces, not two.
        [[X + 0.001, Y - 0.001], [X + 0.001, Y + 0.005], [X + 0.002, Y + 0.005], [X + 0.002, Y - 0.001],
         [X + 0.003, Y - 0.001], [X + 0.003, Y + 0.005]],
    ],
)
def test_a_line_that_does_not_cut_the_cell_in_two_is_refused(plan_scene, draft, line):
    refused(draft, "plan_split_line_invalid", "split",
            {"code": plan_scene.a.code, "line": {"type": "LineString", "coordinates": line}})


def test_merge_keeps_the_survivors_code_and_refuses_cells_that_only_meet_at_a_corner(plan_scene, draft):
    s = plan_scene
    refused(draft, "plan_cells_not_adjacent", "merge", {"code": s.a.code, "other": s.c.code})
    refused(draft, "value_invalid", "merge", {"code": s.a.code, "other": s.a.code})
    refused(draft, "plan_cell_unknown", "merge", {"code": s.a.code, "other": "440803999999999"})
    answer = plans.plan_edit(plan=draft, kind="merge", payload={"code": s.a.code, "other": s.b.code})
    assert answer["changed"][s.b.code] is None
    got = shapes(draft)
    assert set(got) == {s.a.code, s.c.code}
    assert same(got[s.a.code], rect(X, Y, X + 0.008, Y + 0.004))
    cells = {c["code"]: c for c in answer["checks"]["cells"]}
    assert cells[s.a.code]["households"] == 600 and cells[s.a.code]["pieces"] == 1


def test_move_building_hands_its_footprint_to_the_neighbour(plan_scene, draft):
    s = plan_scene
    c1 = s.buildings["c1"]
    answer = plans.plan_edit(plan=draft, kind="move_building", payload={"building": c1.code, "to": s.b.code})
    assert answer["edit"]["summary"] == f"楼栋 {c1.code} 从网格 {s.c.code} 调整到 {s.b.code}"
    got = shapes(draft)
    assert got[s.b.code].contains(c1.geom) and not got[s.c.code].intersection(c1.geom).area
    cells = {c["code"]: c for c in answer["checks"]["cells"]}
    assert (cells[s.b.code]["households"], cells[s.c.code]["households"]) == (300, 500)
    # The footprint lies inside C: B now has an exclave, which the checks name.
    assert [p["cells"] for p in answer["checks"]["problems"] if p["code"] == "plan_cell_not_contiguous"] == [[s.b.code]]
    refused(draft, "plan_edit_noop", "move_building", {"building": c1.code, "to": s.b.code})
    refused(draft, "plan_cells_not_adjacent", "move_building", {"building": s.buildings["a1"].code, "to": s.c.code})
    refused(draft, "plan_building_unknown", "move_building", {"building": "NOPE", "to": s.b.code})
    refused(draft, "plan_cell_unknown", "move_building", {"building": c1.code, "to": "nope"})


def test_unknown_kind_and_bad_payload_are_refused(plan_scene, draft):
    refused(draft, "plan_edit_unknown", "rotate", {})
    refused(draft, "plan_cell_unknown", "reshape", {"code": 42, "geometry": {}})
    refused(draft, "value_invalid", "lock", {"codes": "all"})
    refused(draft, "value_invalid", "draw", {"geometry": geojson(rect(X, Y, X + 0.001, Y + 0.001)), "neighbours": "push"})


def test_undo_and_redo_replay_the_whole_session_and_a_new_edit_drops_the_redo_tail(plan_scene, draft):
    s = plan_scene
    start = state(draft)[1]
    plans.plan_edit(plan=draft, kind="reshape",
                    payload={"code": s.b.code, "geometry": geojson(rect(X + 0.004, Y, X + 0.0092, Y + 0.004))})
    after_reshape = state(draft)[1]
    plans.plan_edit(plan=draft, kind="merge", payload={"code": s.a.code, "other": s.b.code})
    plans.plan_edit(plan=draft, kind="lock", payload={"code": s.a.code})
    after_all = state(draft)[1]

    for _ in range(3):
        plans.plan_undo(plan=draft)
    assert state(draft)[1] == start  # byte for byte, B back with its grid cell
    with pytest.raises(DomainError) as caught:
        plans.plan_undo(plan=draft)
    assert caught.value.code == "plan_nothing_to_undo"

    answer = plans.plan_redo(plan=draft)
    assert answer["plan"] == {"id": draft.pk, "cursor": 1, "can_undo": True, "can_redo": True}
    assert state(draft)[1] == after_reshape
    plans.plan_redo(plan=draft)
    plans.plan_redo(plan=draft)
    assert state(draft)[1] == after_all

    plans.plan_undo(plan=draft)
    plans.plan_undo(plan=draft)
    plans.plan_edit(plan=draft, kind="lock", payload={"code": s.c.code})
    cursor, _, edits = state(draft)
    assert cursor == 2 and [k for _, k in edits] == ["reshape", "lock"]
    with pytest.raises(DomainError) as caught:
        plans.plan_redo(plan=draft)
    assert caught.value.code == "plan_nothing_to_redo"


def test_an_edit_against_a_cursor_the_draft_has_left_is_a_conflict(plan_scene, draft):
    s = plan_scene
    plans.plan_edit(plan=draft, kind="lock", payload={"code": s.a.code}, cursor=0)
    error = refused(draft, "plan_edit_conflict", "lock", {"code": s.b.code}, cursor=0)
    assert error.status == 409 and error.detail == {"cursor": 1}
    before = state(draft)
    with pytest.raises(DomainError) as caught:
        plans.plan_undo(plan=draft, cursor=5)
    assert caught.value.code == "plan_edit_conflict" and state(draft) == before


def test_only_drafts_are_edited(plan_scene, draft):
    plans.plan_abandon(plan=draft)
    error = refused(draft, "plan_not_draft", "lock", {"code": plan_scene.a.code})
    assert error.status == 409
