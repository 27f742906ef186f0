"""Cases raised on the tablet from a visit, offline: POST /api/sync/cases/ stores each at most
once by the tablet's UUID (the visit sync's rules), through the ledger's create service; a photo
follows by the case's UUID."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from grid.models import AuditEvent
from orgs.cases_models import Case
from orgs.models import Visit
from orgs.photos_models import Photo
from tests.orgs.cases_world import Ledger, ledger_fixture  # noqa: F401 - fixture
from tests.orgs.test_tablet_day_photos import _media, jpeg  # noqa: F401 - fixture
from tests.orgs_factories import GridWorkerFactory
from tests.people import api_client


def _visit_item(ledger: Ledger, cell: str = "a1") -> dict:
    house = getattr(ledger.space, f"house_{cell}")
    return {"id": str(uuid.uuid4()), "occurred_at": timezone.now().isoformat(), "kind": "building",
            "building": house.code, "summary": "楼道堆物"}


def _case_item(ledger: Ledger, visit_id: str | None, **changes) -> dict:
    item = {"id": str(uuid.uuid4()), "reported_at": timezone.now().isoformat(), "category": ledger.rubbish.pk,
            "description": "楼道堆放杂物，影响消防通道", "visit": visit_id}
    item.update(changes)
    return {k: v for k, v in item.items() if v is not None}


def sync_cases(user, items: list[dict]):
    response = api_client(user).post("/api/sync/cases/", {"items": items}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.django_db
def test_a_case_from_a_visit_is_raised_once_and_takes_a_photo_by_its_uuid(ledger: Ledger):
    GridWorkerFactory(community=ledger.space.a, grid_cells=[ledger.space.a1], user=ledger.worker_a1)
    visit = _visit_item(ledger)
    assert api_client(ledger.worker_a1).post(
        "/api/sync/visits/", {"items": [visit]}, format="json"
    ).json()["created"] == 1
    item = _case_item(ledger, visit["id"])
    first = sync_cases(ledger.worker_a1, [item])
    assert (first["created"], first["rejected"]) == (1, 0), first
    case = Case.objects.get()
    assert case.client_id == uuid.UUID(item["id"]) and case.source_visit_id == uuid.UUID(visit["id"])
    assert case.source == "visit" and case.reporter == ledger.worker_a1
    assert case.building == ledger.space.house_a1 and case.grid_cell == ledger.space.a1  # at the visit's building
    assert case.transitions.count() == 1
    # The answer was lost; the tablet sends the same batch again.
    again = sync_cases(ledger.worker_a1, [item])
    assert (again["created"], again["duplicate"]) == (0, 1)
    assert Case.objects.count() == 1
    # The photo follows, keyed by the case's UUID.
    photo = api_client(ledger.worker_a1).post("/api/photos/", {
        "id": str(uuid.uuid4()), "case": item["id"], "file": SimpleUploadedFile("x.jpg", jpeg(), "image/jpeg"),
    }, format="multipart")
    assert photo.status_code == 201, photo.content
    assert Photo.objects.get().case == case


def _chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


@pytest.mark.django_db
@pytest.mark.parametrize("name, code", [
    ("other_grids_visit", "not_found"),
    ("other_grids_building", "not_found"),
    ("other_grids_position", "case_outside_reach"),
    ("unknown_category", "not_found"),
    ("no_place", "invalid_input"),
    ("no_description", "invalid_input"),
    ("id_reused_for_other_content", "sync_id_conflict"),
    ("in_the_future", "case_time_in_future"),
])
def test_hostile_cases_are_refused_one_by_one_and_write_nothing(ledger: Ledger, name, code):
    theirs = Visit.objects.create(
        id=uuid.uuid4(), occurred_at=timezone.now(), reporter=ledger.worker_a2, reporter_name="乙",
        place=ledger.space.house_b1.point, community=ledger.space.b, grid_cell=ledger.space.b1,
        building=ledger.space.house_b1, kind=Visit.Kind.BUILDING, payload_hash="x",
    )
    b1 = ledger.space.house_b1.point
    item = _case_item(ledger, None, building=ledger.space.house_a1.code)
    if name == "other_grids_visit":
        item = _case_item(ledger, str(theirs.pk))
    elif name == "other_grids_building":
        item["building"] = ledger.space.house_b1.code
    elif name == "other_grids_position":
        item = _case_item(ledger, None, position={"type": "Point", "coordinates": [b1.x, b1.y]})
    elif name == "unknown_category":
        item["category"] = 999_999
    elif name == "no_place":
        item.pop("building")
    elif name == "no_description":
        item["description"] = ""
    elif name == "id_reused_for_other_content":
        assert sync_cases(ledger.worker_a1, [dict(item)])["created"] == 1
        item["description"] = "另一件事"
    elif name == "in_the_future":
        item["reported_at"] = (timezone.now() + timedelta(days=2)).isoformat()
    before = (Case.objects.count(), AuditEvent.objects.count())
    answer = sync_cases(ledger.worker_a1, [item])
    assert answer["rejected"] == 1, answer
    [result] = answer["results"]
    assert result["code"] == code and _chinese(result["message"])
    assert (Case.objects.count(), AuditEvent.objects.count()) == before


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_case_with_a_photo_raised_offline_from_a_visit_is_synced_once(browser_page, space, settings, tmp_path):
    from playwright.sync_api import expect

    from grid.models import Role
    from tests.orgs.cases_world import categories
    from tests.people import user_with

    settings.MEDIA_ROOT = tmp_path / "media"
    rubbish = categories()["暴露垃圾"]
    worker = user_with(Role.GRID_WORKER, username="wg_case", password="tablet-case-2026", staff=True,
                       grid_cell=space.a1)
    GridWorkerFactory(community=space.a, grid_cells=[space.a1], user=worker)
    s = browser_page
    here = space.house_a1.point
    s.context.grant_permissions(["geolocation"])
    s.context.set_geolocation({"longitude": here.x, "latitude": here.y, "accuracy": 10})
    s.admin_login("wg_case", "tablet-case-2026", next_path="/tablet/")
    page = s.page
    page.wait_for_load_state("networkidle")  # the page's own requests done before the signal goes

    s.context.set_offline(True)
    page.select_option("select[name=kind]", "building")
    page.fill("input[name=building]", space.house_a1.code)
    page.fill("textarea[name=summary]", "巡查发现楼道堆物")
    page.check("input[name=raise_case]")
    expect(page.locator("#case-fields")).to_be_visible()
    page.click("#visit-form button[type=submit]")  # no category yet: nothing kept
    expect(page.locator("#message")).to_have_text("上报民情事项须选择事项类别并填写问题描述。")
    page.select_option("select[name=category]", str(rubbish.pk))
    page.fill("textarea[name=case_description]", "三楼楼道堆放纸箱，堵塞消防通道")
    page.set_input_files("input[name=photos]", files=[{"name": "dui.jpg", "mimeType": "image/jpeg",
                                                         "buffer": jpeg(size=(120, 90))}])
    page.click("#visit-form button[type=submit]")
    expect(page.locator("#message")).to_have_text("已保存在本机，待同步（含民情事项），照片 1 张。")
    expect(page.locator("#count")).to_have_text("2")
    expect(page.locator("#photo-count")).to_have_text("1")
    expect(page.locator("#case-fields")).to_be_hidden()
    s.screenshot("tablet_case_offline.png")
    assert Case.objects.count() == 0 and Photo.objects.count() == 0

    s.context.set_offline(False)  # back online: visit, then case, then photo
    expect(page.locator("#message")).to_contain_text("已保存 2 条", timeout=15_000)
    expect(page.locator("#message")).to_contain_text("照片已上传 1 张")
    expect(page.locator("#count")).to_have_text("0")
    expect(page.locator("#photo-count")).to_have_text("0")
    page.click("#sync")
    expect(page.locator("#message")).to_have_text("没有待同步的记录。")

    visit = Visit.objects.get()
    case = Case.objects.get()
    photo = Photo.objects.get()
    assert case.source_visit == visit and case.reporter == worker and case.category == rubbish
    assert case.description == "三楼楼道堆放纸箱，堵塞消防通道" and case.accuracy_m == 10
    assert photo.case == case and (photo.width, photo.height) == (120, 90)
    # The worker (in reach) sees the photo through the API; the bytes are the stored file's.
    answer = page.evaluate("async (u) => { const r = await fetch(u); return [r.status, r.headers.get('content-type'),"
                           " (await r.arrayBuffer()).byteLength]; }", f"/api/photos/{photo.pk}/")
    assert answer == [200, "image/jpeg", photo.size_bytes]
    s.screenshot("tablet_case_synced.png")
    assert s.external_requests() == []
    assert s.console_errors == []
