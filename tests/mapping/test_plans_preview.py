"""The impact preview: people and organisations that move, the fate of cells, branches and
workers, and the gaps the redraw would open or close (a dry run that leaves nothing behind)."""

from __future__ import annotations

import pytest

from grid.models import Building, GridBoundary, GridCell
from mapping import plans
from mapping.models import Gap
from mapping.plans_preview import plan_preview
from mapping.services import gaps_recompute
from tests.factories import rect
from tests.mapping.plans_scene import PlanScene, X, Y, geojson, plan_scene_fixture  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


def everything() -> tuple:
    """The live tables a dry run writes in its savepoint: none of it may survive."""
    return (
        sorted((b.id, b.cell_id, str(b.valid), b.geom.wkb.hex()) for b in GridBoundary.objects.all()),
        sorted(Building.objects.values_list("id", "grid_cell_id")),
        sorted(GridCell.objects.values_list("id", "code")),
        sorted(Gap.objects.values_list("id", "kind", "subject_id", "grid_cell_id", "resolved_at")),
    )


@pytest.fixture
def scene(plan_scene: PlanScene) -> PlanScene:
    gaps_recompute(community_ids=[plan_scene.community.pk])
    return plan_scene


def test_moving_the_western_column_names_the_buildings_people_group_enterprise_and_gaps(scene):
    s = scene
    plan = plans.plan_create(community=s.community, name="西列并入乙")
    plans.plan_edit(plan=plan, kind="reshape",
                    payload={"code": s.b.code, "geometry": geojson(rect(X + 0.004, Y, X + 0.0092, Y + 0.004))})
    before = everything()
    p = plan_preview(plan=plan)
    assert everything() == before
    assert p["flows"] == [{"from": s.c.code, "to": s.b.code, "buildings": 2, "households": 200, "members": 2,
                           "workers_from": [], "workers_to": [{"id": s.worker_b.pk, "name": s.worker_b.name}]}]
    assert [(b["code"], b["from"], b["to"], b["members"]) for b in p["buildings"]] == [
        (s.buildings["c1"].code, s.c.code, s.b.code, 2), (s.buildings["c4"].code, s.c.code, s.b.code, 0)]
    assert p["buildings"][0]["groups"] == [{"id": s.group.pk, "name": s.group.name}]
    assert [(g["id"], g["split"]) for g in p["groups"]] == [(s.group.pk, False)]
    assert p["enterprises"] == [{"id": s.firm_in_c4.pk, "name": "西列企业", "from": s.c.code, "to": s.b.code}]
    moving = {(g["kind"], g["subject_id"]): (g["from"], g["to"]) for g in p["open_gaps_moving"]}
    assert moving == {
        ("building_unvisited", s.buildings["c1"].pk): (s.c.code, s.b.code),
        ("building_unvisited", s.buildings["c4"].pk): (s.c.code, s.b.code),
        ("enterprise_uncovered", s.firm_in_c4.pk): (s.c.code, s.b.code),
    }
    assert p["reshaped"] == sorted([s.b.code, s.c.code]) and p["created"] == [] and p["retired"] == []
    assert p["branches"] == [] and p["workers"] == []
    assert p["summary"] == {
        "buildings_moved": 2, "households_moved": 200, "members_moved": 2, "enterprises_moved": 1,
        "groups_concerned": 1, "groups_split": 0, "open_gaps_moving": 3, "cells_created": 0, "cells_retired": 0,
        "cells_reshaped": 2,
    }
    assert p["gaps"] == {"opened": [], "resolved": []}
    assert [f["id"] for f in p["before"]["features"]] == [s.a.code, s.b.code, s.c.code]
    assert [f["id"] for f in p["after"]["features"]] == [s.a.code, s.b.code, s.c.code]
    assert p["stale"] is False


def test_a_building_moved_alone_splits_its_group(scene):
    s = scene
    plan = plans.plan_create(community=s.community, name="只动c1")
    plans.plan_edit(plan=plan, kind="move_building", payload={"building": s.buildings["c1"].code, "to": s.b.code})
    p = plan_preview(plan=plan)
    (group,) = p["groups"]
    assert group["split"] is True
    assert {(b["building"], b["to"]) for b in group["buildings"]} == {
        (s.buildings["c1"].code, s.b.code), (s.buildings["c4"].code, s.c.code)}


def test_a_merge_retires_a_cell_its_branch_loses_its_grid_and_its_gap_closes(scene):
    s = scene
    plan = plans.plan_create(community=s.community, name="合并甲乙")
    plans.plan_edit(plan=plan, kind="merge", payload={"code": s.a.code, "other": s.b.code})
    before = everything()
    p = plan_preview(plan=plan)
    assert everything() == before
    assert p["retired"] == [{"code": s.b.code, "area_goes_to": [s.a.code]}]
    assert p["branches"] == [
        {"id": s.branch_a.pk, "name": s.branch_a.name, "cell": s.a.code, "status": "gains_territory",
         "takes_from": [s.b.code]},
        {"id": s.branch_b.pk, "name": s.branch_b.name, "cell": s.b.code, "status": "loses_grid", "takes_from": []},
    ]
    assert p["workers"] == [{"id": s.worker_b.pk, "name": s.worker_b.name, "cell": s.b.code,
                             "status": "cell_retired", "area_goes_to": [s.a.code]}]
    assert p["flows"] == [{"from": s.b.code, "to": s.a.code, "buildings": 2, "households": 200, "members": 0,
                           "workers_from": [{"id": s.worker_b.pk, "name": s.worker_b.name}],
                           "workers_to": [{"id": s.worker_a.pk, "name": s.worker_a.name}]}]
    # B's low visit rate is B's own gap: it goes with B. A's stays open; nothing new opens.
    assert [(g["kind"], g["subject_code"]) for g in p["gaps"]["resolved"]] == [("grid_low_visit_rate", s.b.code)]
    assert p["gaps"]["opened"] == []


def test_a_new_cell_would_open_its_branch_and_worker_gaps(scene):
    s = scene
    plan = plans.plan_create(community=s.community, name="东端新网格")
    answer = plans.plan_edit(plan=plan, kind="draw", payload={"geometry": geojson(rect(X + 0.011, Y, X + 0.012, Y + 0.004))})
    (new,) = set(answer["edit"]["cells"]) - {s.c.code}
    before = everything()
    p = plan_preview(plan=plan)
    assert everything() == before
    assert p["created"] == [new]
    opened = sorted((g["kind"], g["subject_code"], g["subject_id"], g["cell"]) for g in p["gaps"]["opened"])
    assert opened == [("grid_without_branch", new, None, new), ("grid_without_worker", new, None, new)]
    assert p["enterprises"] == [{"id": s.firm_by_point.pk, "name": "东端企业", "from": s.c.code, "to": new}]
    assert p["buildings"] == []
    assert not GridCell.objects.filter(code=new).exists()
