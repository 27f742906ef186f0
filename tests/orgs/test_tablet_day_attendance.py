"""A stationed cadre's attendance: a check-in counts as on site when its accuracy circle lies in
the community plus the tolerance (an 800 m fix proves nothing, and the answer says so); dwell from
check-ins, heartbeats and check-outs; a day is attended at 120 on-site minutes. A hand-built day
whose answer is known, through the real sync and the real SQL."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect
from pyproj import Geod

from grid.models import Role
from orgs.models import StationContact
from tests.orgs.conftest import X, Y
from tests.orgs_factories import StationedCadreFactory
from tests.people import api_client, user_with

GEOD = Geod(ellps="WGS84")
INSIDE = (X + 0.004, Y + 0.005)
WEST_50M = GEOD.fwd(X, Y + 0.005, 270, 50)[:2]  # 50 m outside community A's west edge
IN_B = (X + 0.015, Y + 0.005)  # 500 m into community B


def _item(kind: str, when: datetime, where: tuple[float, float], accuracy: float) -> dict:
    return {"id": str(uuid.uuid4()), "kind": kind, "occurred_at": when.isoformat(),
            "position": {"type": "Point", "coordinates": list(where)}, "accuracy_m": accuracy}


@pytest.fixture
def posting(space):
    cadre = user_with(Role.STATIONED_CADRE, username="zd_att", community=space.a)
    today = timezone.localdate()
    return StationedCadreFactory(community=space.a, user=cadre, period_start=today - timedelta(days=60),
                                 period_end=None, required_days_per_month=8)


def _at(day, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=timezone.get_current_timezone())


@pytest.mark.django_db
def test_a_hand_built_day_and_month(space, posting):
    today = timezone.localdate()
    d1, d2 = today - timedelta(days=3), today - timedelta(days=2)
    items = [
        _item("check_in", _at(d1, 9, 0), INSIDE, 10),  # on site
        _item("check_in", _at(d1, 9, 15), INSIDE, 12),  # heartbeat: 15 min
        _item("check_in", _at(d1, 9, 30), INSIDE, 800),  # an 800 m fix proves nothing: 9:15-9:30 lost
        _item("check_in", _at(d1, 10, 0), INSIDE, 10),  # 9:30-10:00 not counted (started off)
        _item("check_out", _at(d1, 12, 0), INSIDE, 15),  # 10:00-12:00: 120 min, the check-out vouches
        _item("check_in", _at(d1, 12, 30), WEST_50M, 20),  # 50 m outside, 20 m fix: within 100 m tolerance
        _item("check_in", _at(d1, 13, 30), INSIDE, 10),  # 60 min silence > 45 min gap: not counted
        _item("check_in", _at(d1, 13, 40), IN_B, 10),  # in another community: off site
        _item("check_in", _at(d2, 9, 0), INSIDE, 10),
        _item("check_out", _at(d2, 10, 30), INSIDE, 10),  # 90 min: not a full day
    ]
    answer = api_client(posting.user).post("/api/sync/station-contacts/", {"items": items}, format="json")
    assert answer.status_code == 200 and answer.json()["created"] == 10, answer.content
    results = answer.json()["results"]
    assert [r["on_site"] for r in results] == [True, True, False, True, True, True, True, False, True, True]
    assert "定位精度约 800 米" in results[2]["note"] and "不计出勤" in results[2]["note"]
    assert "已含 100 米容差" in results[7]["note"]
    assert results[0]["note"].startswith("签到有效") and results[4]["note"].startswith("签退有效")

    months = {}
    for day in (d1, d2):  # early in a month the two days may lie in two months
        month = api_client(posting.user).get(f"/api/stationed-cadres/{posting.pk}/attendance/",
                                             {"month": f"{day:%Y-%m}"})
        assert month.status_code == 200, month.content
        months[f"{day:%Y-%m}"] = month.json()
    days = {d["date"]: d for body in months.values() for d in body["days"]}
    body = months[f"{d2:%Y-%m}"]
    first = days[d1.isoformat()]
    assert (first["dwell_minutes"], first["attended"], first["check_ins"], first["on_site_check_ins"],
            first["check_outs"], first["first_on_site"], first["last_on_site"]) == (
        135.0, True, 7, 5, 1, "09:00", "13:30")
    second = days[d2.isoformat()]
    assert (second["dwell_minutes"], second["attended"]) == (90.0, False)
    assert sum(b["attended_days"] for b in months.values()) == 1 and body["required_days"] == 8
    assert body["min_dwell_minutes"] == 120 and body["tolerance_m"] == 100
    assert len(body["days"]) >= 28 and all(not d["attended"] for k, d in days.items() if k != d1.isoformat())
    # The gaps' and indicators' on-site days read on_site of check-ins: the day with the 800 m fix
    # still counts through its good check-ins, the coarse one alone does not.
    assert StationContact.objects.filter(kind="check_in", on_site=True).count() == 6


@pytest.mark.django_db
@pytest.mark.parametrize("who, status, code", [
    ("other_community_admin", 404, "not_found"),
    ("grid_worker_of_the_community", 404, "not_found"),
    ("bad_month", 400, "invalid_input"),
])
def test_attendance_is_seen_by_the_community_and_the_cadre_only(space, posting, who, status, code):
    users = {
        "other_community_admin": user_with(Role.COMMUNITY_ADMIN, username="admin_b_att", community=space.b),
        "grid_worker_of_the_community": user_with(Role.GRID_WORKER, username="wg_att", grid_cell=space.a1),
        "bad_month": posting.user,
    }
    query = {"month": "2026-13"} if who == "bad_month" else {}
    response = api_client(users[who]).get(f"/api/stationed-cadres/{posting.pk}/attendance/", query)
    assert response.status_code == status and response.json()["code"] == code
    admin_a = user_with(Role.COMMUNITY_ADMIN, username="admin_a_att", community=space.a)
    assert api_client(admin_a).get(f"/api/stationed-cadres/{posting.pk}/attendance/").status_code == 200


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_cadre_checks_in_with_a_coarse_fix_is_told_why_and_sees_the_month(browser_page, space):
    cadre = user_with(Role.STATIONED_CADRE, username="zd_month", password="tablet-att-2026", staff=True,
                      community=space.a)
    today = timezone.localdate()
    posting = StationedCadreFactory(community=space.a, user=cadre, period_start=today - timedelta(days=60),
                                    period_end=None, required_days_per_month=8)
    yesterday = today - timedelta(days=1)
    items = [_item("check_in", _at(yesterday, 9, 0), INSIDE, 10),
             _item("check_out", _at(yesterday, 11, 30), INSIDE, 10)]
    assert api_client(cadre).post("/api/sync/station-contacts/", {"items": items}, format="json").json()["created"] == 2
    s = browser_page
    s.context.grant_permissions(["geolocation"])
    s.context.set_geolocation({"longitude": INSIDE[0], "latitude": INSIDE[1], "accuracy": 800})
    s.admin_login("zd_month", "tablet-att-2026", next_path="/tablet/")
    page = s.page
    if yesterday.month == today.month:  # yesterday's 150 minutes: one attended day this month
        expect(page.locator("#attendance-summary")).to_contain_text("已出勤 1 天")
        expect(page.locator(f'#attendance tr[data-date="{yesterday.isoformat()}"]')).to_contain_text("150")
    page.click("#check-in")
    expect(page.locator("#check-in")).to_have_text("驻点签到（在岗中）")
    page.click("#sync")
    expect(page.locator("#message")).to_contain_text("定位精度约 800 米", timeout=15_000)
    expect(page.locator("#message")).to_contain_text("不计出勤")
    s.context.set_geolocation({"longitude": INSIDE[0], "latitude": INSIDE[1], "accuracy": 10})
    page.click("#check-out")
    expect(page.locator("#check-in")).to_have_text("驻点签到")
    page.click("#sync")
    expect(page.locator("#message")).to_contain_text("签退有效", timeout=15_000)
    kinds = list(StationContact.objects.filter(cadre=posting).order_by("occurred_at").values_list("kind", "on_site"))
    assert kinds[-2:] == [("check_in", False), ("check_out", True)]
    s.screenshot("tablet_attendance.png")
    assert s.external_requests() == []
    assert s.console_errors == []
