"""The live checks on a community whose answers are known (tests/mapping/plans_scene.py)."""

from __future__ import annotations

import math

import pytest
from django.contrib.gis.geos import MultiPolygon

from mapping import plans, plans_checks
from tests.factories import rect
from tests.mapping.plans_scene import PlanScene, X, Y, geojson, plan_scene_fixture  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


def _by_code(report: dict) -> dict:
    return {c["code"]: c for c in report["cells"]}


def _codes(report: dict) -> list[str]:
    return sorted(p["code"] for p in report["problems"])


def _rect_pp(w_deg: float, h_deg: float) -> float:
    """Polsby-Popper of a w×h rectangle in degrees at the scene's latitude (spherical metres)."""
    kx = 111_320 * math.cos(math.radians(Y + 0.002))
    w, h = w_deg * kx, h_deg * 110_574
    return math.pi * w * h / (w + h) ** 2


def test_todays_grid_households_deviation_workers_and_shape(plan_scene: PlanScene):
    s = plan_scene
    report = plans_checks.today_checks(community=s.community)
    cells = _by_code(report)
    assert [cells[c.code]["households"] for c in (s.a, s.b, s.c)] == [400, 200, 600]
    assert [cells[c.code]["deviation"] for c in (s.a, s.b, s.c)] == [0, -100, 100]
    assert [cells[c.code]["in_range"] for c in (s.a, s.b, s.c)] == [True, False, False]
    assert [cells[c.code]["workers"] for c in (s.a, s.b, s.c)] == [1, 1, 0]
    assert [cells[c.code]["buildings"] for c in (s.a, s.b, s.c)] == [4, 2, 6]
    # Reading order: one row of three, west to east.
    assert [cells[c.code]["order"] for c in (s.a, s.b, s.c)] == [1, 2, 3]
    for c in cells.values():
        assert c["pieces"] == 1
        assert c["polsby_popper"] == pytest.approx(_rect_pp(0.004, 0.004), rel=0.01)
        assert c["households_in"] == c["households_out"] == 0
    assert report["summary"] | {"polsby_popper_mean": None} == {
        "cells": 3, "cells_in_range": 1, "buildings": 12, "households": 1200, "buildings_moved": 0,
        "households_moved": 0, "polsby_popper_mean": None, "errors": 0, "warnings": 3,
    }
    assert report["ok"] is True
    assert _codes(report) == ["cell_without_worker", "households_out_of_range", "households_out_of_range"]
    low = next(p for p in report["problems"] if p["code"] == "households_out_of_range" and p["cells"] == [s.b.code])
    assert "200 户" in low["message"] and low["geometry"]["type"] == "MultiPolygon"


def test_a_draft_that_moves_the_western_column_of_c_into_b_is_all_in_range(plan_scene: PlanScene):
    s = plan_scene
    plan = plans.plan_create(community=s.community, name="西列并入乙")
    answer = plans.plan_edit(
        plan=plan, kind="reshape", payload={"code": s.b.code, "geometry": geojson(rect(X + 0.004, Y, X + 0.0092, Y + 0.004))}
    )
    report = answer["checks"]
    cells = _by_code(report)
    assert [cells[c.code]["households"] for c in (s.a, s.b, s.c)] == [400, 400, 400]
    assert report["summary"]["cells_in_range"] == 3
    assert report["summary"]["households_moved"] == 200 and report["summary"]["buildings_moved"] == 2
    assert cells[s.b.code]["households_in"] == 200 and cells[s.c.code]["households_out"] == 200
    # C yielded exactly what B took: still a partition, no overlap, no gap.
    assert _codes(report) == ["cell_without_worker"]
    assert cells[s.b.code]["polsby_popper"] == pytest.approx(_rect_pp(0.0052, 0.004), rel=0.01)
    assert cells[s.c.code]["polsby_popper"] == pytest.approx(_rect_pp(0.0028, 0.004), rel=0.01)


def test_overlap_gap_leak_cut_building_and_two_pieces_are_reported_with_geometry(plan_scene: PlanScene):
    s = plan_scene
    plan = plans.plan_create_from_shapes(
        community=s.community,
        name="有问题的草稿",
        shapes={
            # A reaches 0.0005° into B (overlap) and cuts building b1 (x+0.005…0.0054) in half.
            s.a.code: rect(X, Y, X + 0.0052, Y + 0.004),
            # B leaves a strip at its east edge uncovered (gap) and is in two pieces.
            s.b.code: MultiPolygon(rect(X + 0.004, Y, X + 0.0075, Y + 0.0019),
                                   rect(X + 0.004, Y + 0.0021, X + 0.0075, Y + 0.004), srid=4326),
            s.c.code: rect(X + 0.008, Y, X + 0.013, Y + 0.004),  # leaks 0.001° east of the community
        },
    )
    report = plans_checks.plan_checks(plan=plan)
    by_code = {}
    for p in report["problems"]:
        by_code.setdefault(p["code"], []).append(p)
    assert {p["cells"][0] for p in by_code["grid_outside_community"]} == {s.c.code}
    assert by_code["grid_overlap"][0]["cells"] == sorted([s.a.code, s.b.code])
    assert by_code["community_not_covered"][0]["severity"] == "warning"
    assert by_code["plan_cell_not_contiguous"][0]["cells"] == [s.b.code]
    # b1 lies half in A's overreach, a quarter in B's gap: 75 % in B at most. (b2 lies wholly in B
    # and half in A too: that is the overlap's error, not a cut building.)
    (cut,) = by_code["building_split"]
    assert cut["buildings"] == [s.buildings["b1"].code] and "75%" in cut["message"]
    for problems in by_code.values():
        for p in problems:
            assert p["geometry"]["type"] in ("Polygon", "MultiPolygon"), p
    assert report["ok"] is False and report["summary"]["errors"] == 2


def test_a_building_outside_every_cell_is_named(plan_scene: PlanScene):
    s = plan_scene
    plan = plans.plan_create_from_shapes(
        community=s.community, name="缺一块",
        shapes={s.a.code: rect(X, Y, X + 0.0015, Y + 0.004), s.b.code: s.b.boundaries.get().geom,
                s.c.code: s.c.boundaries.get().geom},
    )
    report = plans_checks.plan_checks(plan=plan)
    outside = [p for p in report["problems"] if p["code"] == "building_not_in_cell"]
    assert sorted(p["buildings"][0] for p in outside) == sorted(s.buildings[n].code for n in ("a2", "a4"))


def test_an_oddly_shaped_cell_is_reported_below_the_compactness_floor(plan_scene: PlanScene, settings):
    s = plan_scene
    settings.WANGGE_PLANNING = {**plans_checks.DEFAULTS, "compactness_min": 0.78}
    plan = plans.plan_create(community=s.community, name="窄条")
    plans.plan_edit(plan=plan, kind="reshape",
                    payload={"code": s.b.code, "geometry": geojson(rect(X + 0.004, Y, X + 0.0092, Y + 0.004))})
    report = plans_checks.plan_checks(plan=plan)
    assert sorted(p["cells"][0] for p in report["problems"] if p["code"] == "cell_not_compact") == sorted(
        [s.b.code, s.c.code]
    )


def test_household_range_comes_from_settings(plan_scene: PlanScene, settings):
    settings.WANGGE_PLANNING = {**plans_checks.DEFAULTS, "households_min": 100, "households_max": 700}
    report = plans_checks.today_checks(community=plan_scene.community)
    assert report["summary"]["cells_in_range"] == 3
    assert report["settings"]["households_min"] == 100


def test_rows_are_read_north_to_south_then_west_to_east(plan_scene: PlanScene):
    s = plan_scene
    plan = plans.plan_create(community=s.community, name="拆成两行")
    answer = plans.plan_edit(
        plan=plan, kind="split",
        payload={"code": s.a.code, "line": {"type": "LineString",
                                            "coordinates": [[X - 0.001, Y + 0.0015], [X + 0.005, Y + 0.0015]]}},
    )
    new = answer["edit"]["cells"][-1] if answer["edit"]["cells"][-1] != s.a.code else answer["edit"]["cells"][0]
    order = {c["code"]: c["order"] for c in answer["checks"]["cells"]}
    # A keeps the larger, northern part; the new cell is the southern strip: first row A, B, C
    # (their points lie within A's latitude span), then the new cell.
    assert order[s.a.code] < order[s.b.code] < order[s.c.code] < order[new]
