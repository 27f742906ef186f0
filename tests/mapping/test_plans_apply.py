"""Applying a draft: one transaction through the grid services, kept with who, when and why;
refusals write nothing; two planners at once (two real connections): the second is told the
first changed the grid (plan_stale), never overwrites it; reverting is applying an earlier grid."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test import override_settings

from edge.errors import DomainError
from grid import selectors
from grid.audit import Actor, acting_as
from grid.models import AuditEvent, Building, GridBoundary, GridCell
from mapping import plans
from mapping.plans_models import Plan, PlanCell
from orgs.models import Visit
from tests.factories import rect
from tests.mapping.plans_scene import PlanScene, X, Y, geojson, plan_scene_fixture  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

D1, D2, D3 = date(2025, 1, 1), date(2025, 6, 1), date(2025, 9, 1)
HEARD: list[list[int]] = []


def listener(*, community_ids: list[int]) -> None:
    HEARD.append(community_ids)


def wider_b(plan: Plan, s: PlanScene) -> Plan:
    plans.plan_edit(plan=plan, kind="reshape",
                    payload={"code": s.b.code, "geometry": geojson(rect(X + 0.004, Y, X + 0.0092, Y + 0.004))})
    plan.refresh_from_db()
    return plan


def live() -> tuple:
    return (
        sorted((b.id, b.cell_id, str(b.valid), b.geom.wkb.hex()) for b in GridBoundary.objects.all()),
        sorted(Building.objects.values_list("id", "grid_cell_id")),
        sorted(GridCell.objects.values_list("code", flat=True)),
        AuditEvent.objects.count(),
    )


def current(cell: GridCell) -> GridBoundary | None:
    return GridBoundary.objects.filter(cell=cell, valid__upper_inf=True).first()


def test_apply_writes_versions_moves_buildings_keeps_who_when_why_and_queues_the_recompute(
    plan_scene, django_capture_on_commit_callbacks
):
    s = plan_scene
    planner = User.objects.create_user("guihua")
    with acting_as(Actor(user_id=planner.pk, name="guihua")):
        plan = wider_b(plans.plan_create(community=s.community, name="西列并入乙"), s)
        HEARD.clear()
        with override_settings(WANGGE_CHANGE_LISTENERS=[f"{__name__}.listener"]):
            with django_capture_on_commit_callbacks(execute=True):
                result = plans.plan_apply(plan=plan, valid_from=D1, reason="乙网格户数不足")
    assert HEARD and all(ids == [s.community.pk] for ids in HEARD)
    assert result["redrawn"] == 2 and result["unchanged"] == 1 and result["buildings_moved"] == 2
    assert result["created"] == [] and result["retired"] == []

    plan.refresh_from_db()
    assert (plan.state, plan.applied_by, plan.applied_by_name, plan.valid_from, plan.reason) == (
        Plan.State.APPLIED, planner, "guihua", D1, "乙网格户数不足")
    assert plan.applied_at is not None and plan.result["buildings_moved"] == 2

    # New versions from D1, the old ones closed the day before and still queryable ("as of").
    assert current(s.b).geom.equals_exact(PlanCell.objects.get(plan=plan, code=s.b.code).geom, 1e-12)
    assert str(current(s.b).valid.lower) == "2025-01-01"
    old_b = GridBoundary.objects.get(cell=s.b, valid__upper_inf=False)
    assert old_b.valid.upper == D1
    c1 = s.buildings["c1"]
    assert selectors.grid_cell_at(point=c1.point, on_date=D1 - timedelta(days=1)) == s.c
    assert selectors.grid_cell_at(point=c1.point, on_date=D1) == s.b
    assert sorted(Building.objects.filter(grid_cell=s.b).values_list("code", flat=True)) == sorted(
        s.buildings[n].code for n in ("b1", "b2", "c1", "c4"))

    audit = AuditEvent.objects.filter(object_type="mapping.Plan", object_id=str(plan.pk), action="update").get()
    assert audit.actor_name == "guihua" and audit.reason == "乙网格户数不足"
    assert audit.street_id == s.community.street_id and "楼栋变更网格 2" in audit.summary


def test_a_visit_stays_in_the_cell_that_held_it_when_it_happened(plan_scene):
    s = plan_scene
    c1 = s.buildings["c1"]
    user = User.objects.create_user("gap-events")
    visit = Visit.objects.create(
        id=uuid.uuid4(), occurred_at=datetime(2024, 12, 1, 10, tzinfo=ZoneInfo("Asia/Shanghai")), reporter=user,
        reporter_name="网格员", place=c1.point, community=s.community, grid_cell=s.c, building=c1,
        kind=Visit.Kind.HOUSEHOLD, household="101", payload_hash="x" * 64,
    )
    plans.plan_apply(plan=wider_b(plans.plan_create(community=s.community, name="x"), s), valid_from=D1, reason="调整")
    visit.refresh_from_db()
    assert visit.grid_cell == s.c
    assert Building.objects.get(pk=c1.pk).grid_cell == s.b


def test_merge_retires_the_other_cell_and_names_its_branch_and_workers(plan_scene):
    s = plan_scene
    plan = plans.plan_create(community=s.community, name="合并")
    plans.plan_edit(plan=plan, kind="merge", payload={"code": s.a.code, "other": s.b.code})
    result = plans.plan_apply(plan=plan, valid_from=D1, reason="合并甲乙")
    assert result["retired"] == [s.b.code]
    assert result["branches_without_grid"] == [{"id": s.branch_b.pk, "name": s.branch_b.name, "cell": s.b.code}]
    assert result["workers_on_retired_cells"] == [{"id": s.worker_b.pk, "name": s.worker_b.name}]
    assert current(s.b) is None
    assert GridBoundary.objects.get(cell=s.b).valid.upper == D1  # history kept
    assert set(Building.objects.filter(grid_cell=s.a).values_list("code", flat=True)) >= {
        s.buildings["b1"].code, s.buildings["b2"].code}
    audit = AuditEvent.objects.get(object_type="mapping.Plan", object_id=str(plan.pk), action="update")
    assert "1 个网格党支部失去网格" in audit.summary
    assert audit.changes["branches_without_grid"][0]["cell"] == s.b.code


def test_a_drawn_cell_becomes_a_grid_cell_with_its_code(plan_scene):
    s = plan_scene
    plan = plans.plan_create(community=s.community, name="新增网格")
    answer = plans.plan_edit(plan=plan, kind="draw", payload={"geometry": geojson(rect(X + 0.011, Y, X + 0.012, Y + 0.004))})
    (new,) = set(answer["edit"]["cells"]) - {s.c.code}
    result = plans.plan_apply(plan=plan, valid_from=D1, reason="新建小区")
    assert result["created"] == [new]
    cell = GridCell.objects.get(code=new)
    assert cell.community == s.community and current(cell).valid.lower == D1
    assert PlanCell.objects.get(plan=plan, code=new).cell == cell
    assert Building.objects.get(pk=s.buildings["c3"].pk).grid_cell == s.c  # c3 lies west of the new strip


@pytest.mark.parametrize(
    ("change", "code", "status"),
    [
        (lambda p, s: plans.plan_abandon(plan=p), "plan_not_draft", 409),
        (lambda p, s: None, "plan_reason_required", 400),
        # A is drawn over B without B yielding: the grid service refuses the overlap.
        (lambda p, s: plans.plan_edit(plan=p, kind="reshape", payload={
            "code": s.a.code, "geometry": geojson(rect(X, Y, X + 0.005, Y + 0.004)), "neighbours": "keep"}),
         "grid_overlap", 400),
    ],
)
def test_refusals_write_nothing(plan_scene, change, code, status):
    s = plan_scene
    plan = plans.plan_create(community=s.community, name="被拒")
    change(plan, s)
    before = live()
    with pytest.raises(DomainError) as caught:
        plans.plan_apply(plan=plan, valid_from=D1, reason="" if code == "plan_reason_required" else "事由")
    assert (caught.value.code, caught.value.status) == (code, status)
    assert live() == before
    plan.refresh_from_db()
    assert plan.state in (Plan.State.DRAFT, Plan.State.ABANDONED) and plan.applied_at is None


def test_a_date_before_the_versions_in_force_is_refused(plan_scene):
    s = plan_scene
    plan = wider_b(plans.plan_create(community=s.community, name="太早"), s)
    before = live()
    with pytest.raises(DomainError) as caught:
        plans.plan_apply(plan=plan, valid_from=date(2023, 1, 1), reason="补录")
    assert caught.value.code == "boundary_conflict" and live() == before


def test_a_draft_based_on_a_grid_that_changed_since_is_stale(plan_scene):
    s = plan_scene
    first = plans.plan_create(community=s.community, name="甲方案")
    second = wider_b(plans.plan_create(community=s.community, name="乙方案"), s)
    plans.plan_edit(plan=first, kind="merge", payload={"code": s.a.code, "other": s.b.code})
    plans.plan_apply(plan=first, valid_from=D1, reason="先应用")
    assert plans.plan_is_stale(second)
    before = live()
    with pytest.raises(DomainError) as caught:
        plans.plan_apply(plan=second, valid_from=D2, reason="后应用")
    assert (caught.value.code, caught.value.status) == ("plan_stale", 409)
    assert live() == before
    second.refresh_from_db()
    assert second.state == Plan.State.DRAFT
    # A copy of a stale draft is just as stale (same base); a fresh draft is not.
    assert plans.plan_is_stale(plans.plan_copy(plan=second))
    assert not plans.plan_is_stale(plans.plan_create(community=s.community, name="重新起草"))


def test_a_shape_corrected_in_place_makes_a_draft_stale_too(plan_scene):
    """A version corrected on its own start date keeps its id: the digest still sees it."""
    from grid.services import grid_boundary_set

    s = plan_scene
    draft = plans.plan_create(community=s.community, name="草稿")
    grid_boundary_set(cell=s.c, geom=rect(X + 0.008, Y, X + 0.012, Y + 0.0039), valid_from=date(2024, 1, 1))
    assert GridBoundary.objects.filter(cell=s.c).count() == 1
    assert plans.plan_is_stale(draft)


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_two_planners_applying_at_once_the_second_is_refused_not_lost(plan_scene):
    s = plan_scene
    first = plans.plan_create(community=s.community, name="先到")
    plans.plan_edit(plan=first, kind="merge", payload={"code": s.a.code, "other": s.b.code})
    second = wider_b(plans.plan_create(community=s.community, name="后到"), s)
    applied, release = threading.Event(), threading.Event()
    outcome: dict = {}

    def run(key, target):
        def body():
            try:
                outcome[key] = target()
            except Exception as exc:  # noqa: BLE001 - reported by the assertions
                outcome[f"{key}_error"] = exc
            finally:
                connection.close()

        thread = threading.Thread(target=body)
        thread.start()
        return thread

    def apply_first():
        with transaction.atomic():
            result = plans.plan_apply(plan=first, valid_from=D1, reason="合并甲乙")
            applied.set()
            release.wait(10)
        return result

    one = run("first", apply_first)
    assert applied.wait(15), outcome
    two = run("second", lambda: plans.plan_apply(plan=second, valid_from=D1, reason="西列并入乙"))
    deadline = time.monotonic() + 10
    while not _waiting_on_a_lock() and time.monotonic() < deadline:
        time.sleep(0.02)
    blocked = _waiting_on_a_lock()
    assert "second" not in outcome and "second_error" not in outcome
    release.set()
    one.join(20)
    two.join(20)
    assert blocked, "the second apply should wait for the first"
    assert "first_error" not in outcome, outcome
    error = outcome.get("second_error")
    assert isinstance(error, DomainError) and (error.code, error.status) == ("plan_stale", 409), outcome
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, second.state) == (Plan.State.APPLIED, Plan.State.DRAFT)
    # The grid is the first plan's: A holds B's area, B retired; nothing of the second's redraw.
    assert current(s.b) is None
    assert current(s.a).geom.equals_exact(PlanCell.objects.get(plan=first, code=s.a.code).geom, 1e-12)
    assert AuditEvent.objects.filter(object_type="mapping.Plan", action="update").count() == 1


def test_revert_to_an_earlier_plan_and_to_a_date_are_new_applied_plans(plan_scene):
    s = plan_scene
    original = {c.code: current(c).geom for c in (s.a, s.b, s.c)}
    p1 = wider_b(plans.plan_create(community=s.community, name="一"), s)
    plans.plan_apply(plan=p1, valid_from=D1, reason="一")
    p2 = plans.plan_create(community=s.community, name="二")
    plans.plan_edit(plan=p2, kind="merge", payload={"code": s.a.code, "other": s.b.code})
    plans.plan_apply(plan=p2, valid_from=D2, reason="二")
    assert current(s.b) is None

    with pytest.raises(DomainError) as caught:
        plans.plan_revert(plan=plans.plan_create(community=s.community, name="草稿"))
    assert caught.value.code == "plan_not_applied"

    back = plans.plan_revert(plan=p1)
    assert (back.origin, back.origin_plan, back.name) == (Plan.Origin.REVERT, p1, "恢复：一")
    result = plans.plan_apply(plan=back, valid_from=D3, reason="恢复方案一")
    assert result["retired"] == [] and current(s.b) is not None  # B back, with its own code
    for code in (s.a.code, s.b.code, s.c.code):
        assert current(GridCell.objects.get(code=code)).geom.equals(PlanCell.objects.get(plan=p1, code=code).geom)

    to_date = plans.plan_create(community=s.community, name="恢复到2024年", as_of=date(2024, 6, 1))
    assert to_date.origin == Plan.Origin.AS_OF and to_date.origin_date == date(2024, 6, 1)
    plans.plan_apply(plan=to_date, valid_from=date(2025, 12, 1), reason="恢复原网格")
    for cell in (s.a, s.b, s.c):
        assert current(cell).geom.equals(original[cell.code])
    # Every plan is kept, with who, when and why, and the grid of any day is still there.
    assert list(Plan.objects.filter(state=Plan.State.APPLIED).order_by("valid_from").values_list("reason", flat=True)) == [
        "一", "二", "恢复方案一", "恢复原网格"]
    assert selectors.grid_cell_at(point=s.buildings["b1"].point, on_date=D2) == s.a
    assert selectors.grid_cell_at(point=s.buildings["b1"].point, on_date=date(2025, 12, 1)) == s.b

    with pytest.raises(DomainError) as caught:
        plans.plan_create(community=s.community, name="太早", as_of=date(2020, 1, 1))
    assert caught.value.code == "plan_nothing_on_date"
