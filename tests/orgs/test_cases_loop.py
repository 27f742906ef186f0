"""The 数字城管 loop of a resident's case, service by service, against PostGIS: each transition writes
the case, its timeline row and its audit row; every refusal has its code and writes nothing."""

from __future__ import annotations

import pytest

from edge.errors import Conflict, DomainError, NotInReach, OutsideEditReach
from grid.models import AuditEvent, Role
from orgs import cases_selectors as selectors
from orgs import pii
from orgs.cases_models import Case, CaseTransition
from orgs.sync import Position
from tests.factories import ORIGIN, CommunityFactory, GridCellFactory, StreetFactory, multi, rect
from tests.orgs.cases_world import Ledger, at, ledger_fixture, snapshot  # noqa: F401 - fixture
from tests.people import user_with

pytestmark = pytest.mark.django_db
X, Y = ORIGIN
A = CaseTransition.Action
S = Case.State


def test_a_case_is_raised_where_it_stands_on_the_day(ledger: Ledger):
    before = AuditEvent.objects.count()
    case = ledger.raise_case(position=ledger.position_in("a1", dx=5, crs="gcj02"))
    s = ledger.space
    assert (case.grid_cell_id, case.community_id, case.street_id) == (s.a1.pk, s.a.pk, s.street.pk)
    # Captured as sent (GCJ-02), converted once: the stored point is within a metre of the truth.
    assert case.captured_crs == "gcj02" and case.captured_lon != case.point.x
    assert case.point.distance(s.house_a1.point) * 111_000 < 10
    assert case.state == S.REPORTED and case.version == 1
    # 立案 within 1 working hour of 9:00 on a Monday.
    assert case.deadline == at(2026, 3, 2, 10) == case.next_escalation_at
    (row,) = case.transitions.all()
    assert (row.action, row.from_state, row.to_state, row.version) == (A.REPORT, "", S.REPORTED, 1)
    assert AuditEvent.objects.count() == before + 1


def test_the_whole_loop(ledger: Ledger):
    case = ledger.raise_case()
    steps = [
        (A.ACCEPT, ledger.admin_a, {}, S.REGISTERED),
        (A.DISPATCH, ledger.admin_a, {}, S.DISPATCHED),
        (A.START, ledger.worker_a1, {}, S.IN_PROGRESS),
        (A.FEEDBACK, ledger.worker_a1, {"reason": "已清运"}, S.FEEDBACK),
        (A.VERIFY, ledger.worker_a1, {"position": ledger.position_in("a1", dx=12)}, S.VERIFIED),
        (A.CLOSE, ledger.admin_a, {}, S.CLOSED),
    ]
    audit_before = AuditEvent.objects.count()
    for n, (action, who, extra, state) in enumerate(steps, start=2):
        case = ledger.act(case, action, by=who, expected_version=n - 1, now=at(2026, 3, 2, 9, 5 * n), **extra)
        assert (case.state, case.version) == (state, n)
    assert AuditEvent.objects.count() == audit_before + len(steps)
    timeline = list(case.transitions.order_by("at", "id"))
    assert [t.action for t in timeline] == [A.REPORT, *(s[0] for s in steps)]
    assert [t.version for t in timeline] == list(range(1, 8))
    # 派遣 by the category's default body (the grid names none), and the 处置 limit (1 工作日)
    # runs from the dispatch, kept by 签收处理.
    dispatched = timeline[2]
    assert dispatched.assignee_name == "街道环卫所" and case.assignee_route == Case.Route.CATEGORY
    assert dispatched.deadline == at(2026, 3, 3, 9, 15) == timeline[3].deadline
    # 核查 keeps where it was made, ~12 m from the case.
    verify = timeline[5]
    assert verify.position is not None and 8 < verify.distance_to_case_m < 16
    assert case.closed_at == at(2026, 3, 2, 9, 35) and case.deadline is None and not case.ever_overdue


def test_declined_and_sent_back(ledger: Ledger):
    declined = ledger.act(ledger.raise_case(), A.DECLINE, reason="不属于受理范围")
    assert declined.state == S.REJECTED and declined.closed_at is not None and declined.deadline is None

    case = ledger.act(ledger.raise_case(), A.ACCEPT)
    case = ledger.act(case, A.DISPATCH)
    assert case.assignee_name == "街道环卫所"
    # The body says it is not theirs: back to 立案, assignee cleared, a new 派遣 limit.
    case = ledger.act(case, A.SEND_BACK, reason="非本单位职责", now=at(2026, 3, 2, 11))
    assert (case.state, case.assignee_name, case.deadline) == (S.REGISTERED, "", at(2026, 3, 2, 12))
    case = ledger.act(case, A.DISPATCH, assignee_name="区城管局", now=at(2026, 3, 2, 11, 30))
    assert (case.assignee_name, case.assignee_route) == ("区城管局", Case.Route.MANUAL)
    # A failed re-check on site (核查不通过) goes back to the body, by the grid worker.
    case = ledger.act(case, A.START, by=ledger.worker_a1)
    case = ledger.act(case, A.FEEDBACK, by=ledger.worker_a1, reason="已处理")
    case = ledger.act(case, A.SEND_BACK, by=ledger.worker_a1, reason="现场仍有垃圾",
                      position=ledger.position_in("a1"), now=at(2026, 3, 2, 16))
    assert case.state == S.IN_PROGRESS and case.assignee_name == "区城管局"
    # A new 处置 limit from the send-back: one working day (7.5 工作时) from 16:00 Monday.
    assert case.deadline == at(2026, 3, 3, 16)
    back = case.transitions.order_by("-id").first()
    assert back.position is not None and back.reason == "现场仍有垃圾"


def test_routing_never_leaves_a_case_with_nobody(ledger: Ledger):
    s = ledger.space
    # 1. the grid's own responsible body wins over the category's
    s.a1.responsible_body = "滨海物业"
    s.a1.save(update_fields=["responsible_body"])
    case = ledger.act(ledger.act(ledger.raise_case(), A.ACCEPT), A.DISPATCH)
    assert (case.assignee_name, case.assignee_route) == ("滨海物业", Case.Route.GRID)
    # 2. no grid body, no category body: the community's organisation (属地兜底)
    case = ledger.raise_case(by=ledger.admin_a, cell="a2", category=ledger.neighbours)
    case = ledger.act(ledger.act(case, A.ACCEPT), A.DISPATCH)
    assert (case.assignee_org, case.assignee_route) == (ledger.org_a, Case.Route.COMMUNITY)
    # 3. no community organisation: the street working committee
    ledger.org_b.delete()
    case = ledger.raise_case(by=ledger.admin_b, cell="b1", category=ledger.neighbours)
    case = ledger.act(ledger.act(case, A.ACCEPT, by=ledger.admin_b), A.DISPATCH, by=ledger.admin_b)
    assert (case.assignee_org, case.assignee_route) == (ledger.committee, Case.Route.STREET)
    # 4. a street with no organisation at all: the community by name, still somebody
    street = StreetFactory(geom=multi(rect(X + 0.05, Y, X + 0.06, Y + 0.01)))
    lone = CommunityFactory(street=street, geom=multi(rect(X + 0.05, Y, X + 0.06, Y + 0.01)))
    GridCellFactory(community=lone, boundary=rect(X + 0.05, Y, X + 0.06, Y + 0.01))
    admin = user_with(Role.STREET_ADMIN, street=street)
    case = ledger.raise_case(by=admin, category=ledger.neighbours, position=Position(lon=X + 0.055, lat=Y + 0.005))
    case = ledger.act(ledger.act(case, A.ACCEPT, by=admin), A.DISPATCH, by=admin)
    assert case.assignee_org is None and case.assignee_name == f"{lone.name}（属地兜底）"


def test_merge_into_an_open_case(ledger: Ledger):
    first = ledger.raise_case()
    second = ledger.raise_case(position=ledger.position_in("a1", dx=30))
    merged = ledger.act(second, A.MERGE, merge_into=first.pk)
    assert (merged.state, merged.merged_into_id) == (S.MERGED, first.pk)
    assert list(first.duplicates.values_list("pk", flat=True)) == [second.pk]
    row = merged.transitions.order_by("-id").first()
    assert row.merged_into_id == first.pk and row.reason == f"与事项 #{first.pk} 重复"


@pytest.mark.parametrize(
    ("setup", "call", "code"),
    [
        # not allowed from the state: closing a case just raised
        (None, {"action": A.CLOSE}, "case_transition_not_allowed"),
        # 退回 from 待立案: there is no step before it
        (None, {"action": A.SEND_BACK, "reason": "x"}, "case_transition_not_allowed"),
        # reason required
        (None, {"action": A.DECLINE}, "case_reason_required"),
        # 核查 without a position
        ("feedback", {"action": A.VERIFY, "by": "worker_a1"}, "case_position_required"),
        # implausible coordinates on a transition
        ("feedback", {"action": A.VERIFY, "by": "worker_a1",
                      "position": Position(lon=110.4, lat=95.0)}, "coords_out_of_range"),
        ("feedback", {"action": A.VERIFY, "by": "worker_a1",
                      "position": Position(lon=2.35, lat=48.85)}, "coords_outside_china"),
        # merge target missing, itself, closed, unknown
        (None, {"action": A.MERGE}, "case_merge_target_required"),
        (None, {"action": A.MERGE, "merge_into": "self"}, "case_merge_target_invalid"),
        (None, {"action": A.MERGE, "merge_into": "closed"}, "case_merge_target_invalid"),
        (None, {"action": A.MERGE, "merge_into": 987654321}, "reference_not_found"),
        # another community's case as a merge target: out of the admin's reach
        (None, {"action": A.MERGE, "merge_into": "b1"}, "reference_not_found"),
        # a grid worker cannot take the office's steps
        (None, {"action": A.ACCEPT, "by": "worker_a1"}, "case_action_forbidden"),
        # stale version
        (None, {"action": A.ACCEPT, "expected_version": 7}, "case_stale"),
        # an unknown action
        (None, {"action": "approve"}, "case_action_unknown"),
    ],
)
def test_refusals_have_a_code_and_write_nothing(ledger: Ledger, setup, call, code):
    case = ledger.raise_case()
    if setup == "feedback":
        case = ledger.act(ledger.act(ledger.act(case, A.ACCEPT), A.DISPATCH), A.START)
        case = ledger.act(case, A.FEEDBACK, reason="已清运")
    targets = {
        "self": case.pk,
        "closed": ledger.act(ledger.raise_case(), A.DECLINE, reason="无效").pk,
        "b1": ledger.raise_case(by=ledger.admin_b, cell="b1").pk,
    }
    call = dict(call)
    if isinstance(call.get("merge_into"), str):
        call["merge_into"] = targets[call["merge_into"]]
    by = getattr(ledger, call.pop("by", "admin_a"))
    before = snapshot()
    with pytest.raises((DomainError, Conflict)) as refused:
        ledger.act(case, call.pop("action"), by=by, **call)
    assert refused.value.code == code
    assert refused.value.message and any("\u4e00" <= ch <= "\u9fff" for ch in refused.value.message)
    assert snapshot() == before
    if code == "case_stale":
        assert refused.value.status == 409 and refused.value.detail == {"version": case.version}
    if code == "case_transition_not_allowed":
        assert refused.value.detail["allowed"] == [A.ACCEPT, A.DECLINE, A.MERGE]


def test_another_grid_s_case_is_not_found_for_a_grid_worker(ledger: Ledger):
    case = ledger.raise_case(by=ledger.admin_a, cell="a2")
    before = snapshot()
    with pytest.raises(NotInReach):
        ledger.act(case, A.START, by=ledger.worker_a1)
    with pytest.raises(NotInReach):
        ledger.act(case, A.ACCEPT, by=ledger.admin_b)
    with pytest.raises(NotInReach):
        selectors.case_detail(reach=ledger.reach(ledger.worker_a1), case_id=case.pk)
    assert snapshot() == before


def test_a_case_cannot_be_raised_outside_the_callers_grids(ledger: Ledger):
    before = snapshot()
    with pytest.raises(OutsideEditReach) as refused:
        ledger.raise_case(by=ledger.worker_a1, cell="a2")
    assert refused.value.code == "case_outside_reach" and refused.value.status == 403
    with pytest.raises(OutsideEditReach):
        ledger.raise_case(by=ledger.leader)  # reads the street, logs nothing
    for position, code in (
        (Position(lon=110.4, lat=91.0), "coords_out_of_range"),
        (Position(lon=139.69, lat=35.69), "coords_outside_china"),
        (Position(lon=110.4, lat=21.19, crs="EPSG:999999"), "crs_unknown"),
        (Position(lon=110.6, lat=21.3), "case_outside_grids"),
    ):
        with pytest.raises(DomainError) as bad:
            ledger.raise_case(position=position)
        assert bad.value.code == code
    with pytest.raises(DomainError) as blank:
        ledger.raise_case(description="  ")
    assert blank.value.code == "case_description_required"
    with pytest.raises(DomainError) as future:
        ledger.raise_case(reported_at=at(2026, 3, 3, 9))
    assert future.value.code == "case_time_in_future"
    with pytest.raises(DomainError) as phone:
        ledger.raise_case(resident_phone="12345")
    assert phone.value.code == "phone_invalid"
    assert snapshot() == before


def test_a_case_at_a_building_without_position(ledger: Ledger):
    case = ledger.raise_case(position=None, building=ledger.space.house_a1)
    assert case.point is None and case.place == ledger.space.house_a1.point
    assert case.grid_cell_id == ledger.space.a1.pk and case.building_id == ledger.space.house_a1.pk
    with pytest.raises(DomainError) as nowhere:
        ledger.raise_case(position=None)
    assert nowhere.value.code == "case_place_required"


def test_the_residents_phone_is_sealed_and_shown_by_role(ledger: Ledger):
    case = ledger.raise_case(resident_name="王阿姨", resident_phone="13812345678")
    case.refresh_from_db()
    assert "13812345678" not in case.resident_phone_cipher
    assert case.resident_phone_hash == pii.phone_hash("13812345678")
    reads = AuditEvent.objects.filter(action=AuditEvent.Action.READ_PII).count()
    shown, clear = selectors.case_resident_phone(reach=ledger.reach(ledger.worker_a1), case=case)
    assert (shown, clear) == ("138****5678", False)
    assert AuditEvent.objects.filter(action=AuditEvent.Action.READ_PII).count() == reads
    shown, clear = selectors.case_resident_phone(reach=ledger.reach(ledger.admin_a), case=case)
    assert (shown, clear) == ("13812345678", True)
    assert AuditEvent.objects.filter(action=AuditEvent.Action.READ_PII, object_id=str(case.pk)).count() == 1


def test_allowed_actions_follow_state_and_role(ledger: Ledger):
    case = ledger.raise_case()
    assert selectors.case_allowed_actions(reach=ledger.reach(ledger.admin_a), case=case) == [
        A.ACCEPT, A.DECLINE, A.MERGE
    ]
    assert selectors.case_allowed_actions(reach=ledger.reach(ledger.worker_a1), case=case) == []
    case = ledger.act(ledger.act(case, A.ACCEPT), A.DISPATCH)
    assert selectors.case_allowed_actions(reach=ledger.reach(ledger.worker_a1), case=case) == [A.START]
    assert selectors.case_allowed_actions(reach=ledger.reach(ledger.leader), case=case) == []


def test_a_step_finished_late_marks_the_case(ledger: Ledger):
    case = ledger.raise_case()  # 立案 due 10:00
    case = ledger.act(case, A.ACCEPT, now=at(2026, 3, 2, 10, 30))
    assert case.ever_overdue
    assert case.transitions.get(action=A.ACCEPT).overdue


def test_urgent_categories_run_on_continuous_hours(ledger: Ledger):
    # Raised on Friday 17:30: 立案 within 1 continuous hour, not Monday morning.
    case = ledger.raise_case(category=ledger.manhole, now=at(2026, 3, 6, 17, 30))
    assert case.deadline == at(2026, 3, 6, 18, 30)
    case = ledger.act(ledger.act(case, A.ACCEPT, now=at(2026, 3, 6, 17, 40)), A.DISPATCH, now=at(2026, 3, 6, 17, 50))
    assert case.deadline == at(2026, 3, 6, 19, 50)  # 处置 2 h, over the weekend's edge


@pytest.mark.django_db(transaction=True)
def test_two_clerks_racing_on_the_same_version_get_one_step_and_one_409(ledger: Ledger):
    """Both saw version 1 and press 立案 at once: the row lock makes the second wait for the first,
    then see version 2 and refuse; the timeline holds one 立案."""
    import threading

    from django.db import connection

    case = ledger.raise_case()
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def press() -> None:
        try:
            start.wait(5)
            ledger.act(case.pk, A.ACCEPT, expected_version=1)
            outcomes.append("ok")
        except Conflict as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=press) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert sorted(outcomes) == ["case_stale", "ok"]
    case.refresh_from_db()
    assert case.version == 2 and case.transitions.filter(action=A.ACCEPT).count() == 1
