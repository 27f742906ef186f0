"""The suggested rebalance on communities whose answers are known by construction.

The scene (tests/mapping/plans_scene.py): three columns A | B | C of 4, 2 and 6 buildings of 100
households each: A 400 (in range), B 200 (100 short), C 600 (100 over). The smallest change that
brings every cell into 300–500 moves one building of C's western column (c1 or c4) into B:
A 400, B 300, C 500, 1,100 of 1,200 households (92 %) left where they are. Pure-algorithm cases
(determinism, totals no count of cells can hold) are built in memory.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
import shapely
from django.contrib.gis.geos import GEOSGeometry

from grid import partition
from grid.models import AuditEvent, Building, GridBoundary, Role
from mapping import plans_checks, rebalance
from mapping.plans_models import Plan, PlanCell
from mapping.rebalance_services import plan_suggest, suggestion_compute
from tests.factories import BuildingFactory, CommunityFactory, StreetFactory, multi, rect, square
from tests.mapping.plans_scene import SIZE, PlanScene, X, Y, plan_scene_fixture  # noqa: F401 - fixture
from tests.people import api_client, user_with

pytestmark = pytest.mark.django_db


def _today(s: PlanScene) -> dict[str, GEOSGeometry]:
    return dict(
        GridBoundary.objects.filter(cell__community=s.community, valid__upper_inf=True).values_list("cell__code", "geom")
    )


def _draft(plan: Plan) -> dict[str, GEOSGeometry]:
    return dict(PlanCell.objects.filter(plan=plan).values_list("code", "geom"))


def _partition_problems(s: PlanScene, shapes: dict) -> list[str]:
    return [p.code for p in partition.partition_check(community=s.community, cells=shapes).problems]


def test_a_balanced_community_is_left_exactly_as_it_is(plan_scene: PlanScene):
    s = plan_scene
    Building.objects.filter(code__in=["PBB1", "PBB2"]).update(households=150)  # B 300
    Building.objects.filter(code__startswith="PBC").update(households=80)  # C 480
    plan, suggestion = plan_suggest(community=s.community, name="平衡")
    assert suggestion.moves == [] and suggestion.findings == [] and suggestion.retired == []
    assert suggestion.summary["cells_changed"] == 0 and suggestion.summary["kept_share"] == 1.0
    assert [(c.code, c.households, c.in_range) for c in suggestion.cells] == [
        (s.a.code, 400, True), (s.b.code, 300, True), (s.c.code, 480, True)
    ]
    # The draft is today's grid, shape for shape.
    today, draft = _today(s), _draft(plan)
    assert draft.keys() == today.keys()
    assert all(draft[code].equals_exact(today[code], 0) for code in today)
    assert plan.origin == Plan.Origin.SUGGESTION
    assert plans_checks.plan_checks(plan=plan)["summary"]["households_moved"] == 0


def test_one_overfull_cell_beside_an_underfull_one_gives_it_one_boundary_building(plan_scene: PlanScene):
    s = plan_scene
    audits = AuditEvent.objects.count()
    plan, suggestion = plan_suggest(community=s.community, name="调整建议")
    summary = suggestion.summary
    assert [(c.code, c.households) for c in suggestion.cells] == [(s.a.code, 400), (s.b.code, 300), (s.c.code, 500)]
    assert summary["cells_in_range"] == 3 and summary["contiguous_cells"] == 3
    assert summary["kept_share"] >= 0.9 and summary["households_moved"] == 100
    (move,) = suggestion.moves
    assert move.code in {"PBC1", "PBC4"} and (move.from_code, move.to) == (s.c.code, s.b.code)
    assert [c.changed for c in suggestion.cells] == [False, True, True]
    assert suggestion.findings == [] and summary["stopped"] == "balanced"

    draft = _draft(plan)
    assert draft[s.a.code].equals_exact(_today(s)[s.a.code], 0)  # A untouched
    # The draft tiles the community and every cell is one piece.
    assert _partition_problems(s, draft) == []
    checks = plans_checks.plan_checks(plan=plan)
    assert checks["summary"]["cells_in_range"] == 3
    assert checks["summary"]["households_moved"] == 100 and checks["summary"]["buildings_moved"] == 1
    # The live checks place every building where the suggestion put it, wholly (no cut footprint).
    assert {p["code"] for p in checks["problems"]} <= {"cell_without_worker"}
    by_code = {c["code"]: c for c in checks["cells"]}
    assert by_code[s.b.code]["households_in"] == 100 and by_code[s.c.code]["households_out"] == 100
    assert all(c["pieces"] == 1 for c in checks["cells"])
    # One audited write: the draft (nothing live changed).
    assert AuditEvent.objects.count() == audits + 1
    assert GridBoundary.objects.filter(cell__community=s.community, valid__upper_inf=True).count() == 3


def test_a_building_above_the_maximum_is_named_and_the_rest_brought_into_range(plan_scene: PlanScene):
    s = plan_scene
    Building.objects.filter(code="PBC3").update(households=700)  # C 1,200; the community 1,800
    suggestion = suggestion_compute(community=s.community)
    (too_large,) = [f for f in suggestion.findings if f.code == "building_too_large"]
    assert too_large.buildings == ("PBC3",) and "700 户" in too_large.message and "单元" in too_large.message
    holder = next(c for c in suggestion.cells if not c.feasible)
    assert holder.households >= 700
    # 1,800 households need at least 4 cells: one is added, and every other cell is in range.
    assert suggestion.summary["cells"] == 4 and suggestion.summary["cells_new"] == 1
    assert all(c.in_range for c in suggestion.cells if c.feasible)
    assert suggestion.summary["contiguous_cells"] == 4
    assert any("网格数由 3 个调整为 4 个" in note for note in suggestion.notes)


def test_a_community_without_grid_gets_a_fresh_partition(db):
    street = StreetFactory(geom=multi(rect(X, Y, X + 0.03, Y + 0.01)))
    community = CommunityFactory(street=street, geom=multi(rect(X, Y, X + 0.012, Y + 0.004)))
    for col in range(6):
        for row in range(2):
            BuildingFactory(community=community, code=f"FB{col}{row}", households=100,
                            geom=square(X + 0.001 + 0.002 * col, Y + 0.001 + 0.002 * row, SIZE))
    plan, suggestion = plan_suggest(community=community, name="新划网格")
    assert [c.households for c in suggestion.cells] == [400, 400, 400]
    assert all(c.code is None and c.contiguous for c in suggestion.cells)
    # The draft numbered them in reading order: west to east.
    codes = sorted(_draft(plan))
    assert [c.key for c in suggestion.cells] == codes == [community.code + n for n in ("001", "002", "003")]
    assert all(PlanCell.objects.filter(plan=plan, cell__isnull=True).values_list("code", flat=True))
    assert [p.code for p in partition.partition_check(community=community, cells=_draft(plan)).problems] == []
    report = plans_checks.plan_checks(plan=plan)
    assert report["summary"]["cells_in_range"] == 3
    assert {p["code"] for p in report["problems"]} == {"cell_without_worker"}
    xs = [shapely.from_wkb(bytes(g.wkb)).centroid.x for _, g in sorted(_draft(plan).items())]
    assert xs == sorted(xs)


# --- pure cases (no database) ------------------------------------------------------------------


def _synthetic(columns: int, rows: int, households: np.ndarray, cell_columns: list[int]) -> rebalance.RebalanceInput:
    """A block of columns × rows buildings 20 m apart, cells made of whole columns (`cell_columns`
    gives each cell's width in columns)."""
    step = 0.0002
    footprints, codes, today = [], [], []
    edges = np.cumsum([0, *cell_columns])
    for col in range(columns):
        for row in range(rows):
            x, y = X + step * col + step / 4, Y + step * row + step / 4
            footprints.append(shapely.box(x, y, x + step / 2, y + step / 2))
            codes.append(f"S{col:02d}{row:02d}")
            today.append(int(np.searchsorted(edges, col, side="right") - 1))
    cells = [
        rebalance.CellIn(code=f"440803001001{k + 1:03d}",
                         shape=shapely.box(X + step * edges[k], Y, X + step * edges[k + 1], Y + step * rows))
        for k in range(len(cell_columns))
    ]
    return rebalance.RebalanceInput(
        outline=shapely.box(X, Y, X + step * columns, Y + step * rows),
        cells=cells,
        buildings=rebalance.BuildingsIn(
            codes=codes, names=codes, households=households.astype(np.int64),
            footprints=np.array(footprints, dtype=object), today=np.array(today),
        ),
    )


def test_the_same_seed_gives_the_same_suggestion():
    rng = np.random.default_rng(5)
    data = _synthetic(12, 10, rng.integers(5, 30, 120), [2, 6, 4])
    first = rebalance.rebalance(data, rebalance.Rules(seed=11))
    again = rebalance.rebalance(data, rebalance.Rules(seed=11))
    assert first.unit_keys == again.unit_keys
    assert [c.shape.wkb for c in first.cells] == [c.shape.wkb for c in again.cells]
    assert first.summary["feasible_in_range"] == first.summary["cells_feasible"] == first.summary["cells"]
    assert first.summary["contiguous_cells"] == first.summary["cells"]


def test_totals_no_count_of_cells_can_hold_are_named():
    data = _synthetic(4, 4, np.full(16, 34), [2, 2])  # 544 households: 1 cell > 500, 2 cells < 300
    suggestion = rebalance.rebalance(data, rebalance.Rules())
    (finding,) = suggestion.findings
    assert finding.code == "households_total_infeasible" and "544 户" in finding.message
    assert all(not c.feasible for c in suggestion.cells if not c.in_range)


# --- the API ------------------------------------------------------------------------------------


def test_the_route_makes_a_draft_for_planners_and_street_admins_only(plan_scene: PlanScene):
    s = plan_scene
    street = s.community.street
    planner = api_client(user_with(Role.PLANNER, street=street))
    r = planner.post("/api/plans/suggest/", {"community": s.community.code, "seed": 3}, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["origin"] == "suggestion" and body["state"] == "draft" and body["stale"] is False
    assert [f["id"] for f in body["cells"]["features"]] == [s.a.code, s.b.code, s.c.code]
    assert body["suggestion"]["summary"]["cells_in_range"] == 3
    assert body["suggestion"]["moves"][0]["from"] == s.c.code and body["suggestion"]["moves"][0]["to"] == s.b.code
    admin = api_client(user_with(Role.STREET_ADMIN, street=street))
    assert admin.post("/api/plans/suggest/", {"community": s.community.code}, format="json").status_code == 201

    plans, audits = Plan.objects.count(), AuditEvent.objects.count()
    refusals = [
        (api_client(user_with(Role.GRID_WORKER, grid_cell=s.a)), s.community.code, 403, "permission_denied"),
        (api_client(user_with(Role.LEADER, street=street)), s.community.code, 403, "permission_denied"),
        (api_client(user_with(Role.COMMUNITY_ADMIN, community=s.community)), s.community.code, 403,
         "permission_denied"),
        (api_client(user_with(Role.PLANNER, street=StreetFactory())), s.community.code, 400, "reference_not_found"),
        (planner, "440803999999", 400, "reference_not_found"),
        (api_client(), s.community.code, 401, None),
    ]
    for client, code, status, error in refusals:
        answer = client.post("/api/plans/suggest/", {"community": code}, format="json")
        assert answer.status_code == status, answer.content
        if error:
            assert answer.json()["code"] == error
    bad_lock = planner.post("/api/plans/suggest/", {"community": s.community.code, "locked": ["440803999999001"]},
                            format="json")
    assert bad_lock.status_code == 400 and bad_lock.json()["code"] == "value_invalid"
    assert (Plan.objects.count(), AuditEvent.objects.count()) == (plans, audits)


def test_a_locked_cell_is_not_touched(plan_scene: PlanScene):
    s = plan_scene
    plan, suggestion = plan_suggest(community=s.community, locked=[s.b.code])
    # B may not take from C: C can only give to … nobody else it touches, so it stays over.
    assert suggestion.moves == [] and not any(c.changed for c in suggestion.cells)
    assert set(PlanCell.objects.filter(plan=plan, locked=True).values_list("code", flat=True)) == {s.b.code}
    assert [f.code for f in suggestion.findings] == ["cell_out_of_range"]


def test_a_redraw_while_the_suggestion_is_computed_refuses_the_draft(plan_scene: PlanScene, monkeypatch):
    """Another write redraws a cell between the load and the draft: the draft would be based on
    lines the suggestion never saw, so it is refused (plan_stale) and nothing is written."""
    from edge.errors import Conflict
    from grid import services as grid_services
    from mapping import rebalance_services

    s = plan_scene
    computed = rebalance_services.suggestion_compute

    def compute_then_redraw(**kwargs):
        answer = computed(**kwargs)
        grid_services.grid_boundary_set(cell=s.a, geom=rect(X, Y, X + 0.0039, Y + 0.004), valid_from=date(2025, 6, 1))
        return answer

    monkeypatch.setattr(rebalance_services, "suggestion_compute", compute_then_redraw)
    plans, audits = Plan.objects.count(), AuditEvent.objects.count()
    with pytest.raises(Conflict) as refused:
        plan_suggest(community=s.community)
    assert refused.value.code == "plan_stale"
    assert (Plan.objects.count(), AuditEvent.objects.count()) == (plans, audits)
