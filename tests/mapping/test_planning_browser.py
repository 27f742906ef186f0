"""The planners' page in headless Chromium (tests/browser.py): a planner signs in, lands on
/planning/, starts a draft from today's grid, draws a cell, reshapes it, splits one along a line,
merges two, undoes (buttons and Ctrl+Z / Ctrl+Y), reads the checks and their geometry on the map,
locks a cell, moves a building (refused from the locked cell), opens the preview with its
before/after view, and applies: the live boundaries change
(GridBoundary versions). A second draft made before the apply is then stale, and applying it says
so in Chinese. No request leaves 127.0.0.1; the console stays clean.

The scene is tests/mapping/plans_scene.py: three columns A (400 households), B (200), C (600).
The page's CSP has no 'unsafe-eval': the test reads the page with `evaluate` and waits on
selectors, never on `wait_for_function`.
"""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from grid.models import GridBoundary, GridCell, Role
from mapping import plans
from mapping.plans_models import Plan
from tests.factories import rect
from tests.mapping.plans_scene import PlanScene, X, Y, plan_scene_fixture  # noqa: F401 - fixture
from tests.people import user_with

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-planning-2026"


def _ready(s) -> None:
    s.page.wait_for_selector('body[data-map-ready="1"]', state="attached", timeout=30_000)


def _idle(s) -> None:
    """Until the map has nothing left to load or animate, polled from Python (CSP: no eval)."""
    for _ in range(100):
        if s.page.evaluate("() => window.planning.map.loaded() && !window.planning.map.isMoving()"):
            s.page.wait_for_timeout(100)
            return
        s.page.wait_for_timeout(100)
    raise AssertionError("the map never settled")


def _settled(s) -> None:
    """Until no edit is in flight (the page marks the body while one is)."""
    s.page.wait_for_selector("body:not(.busy)", state="attached")
    _idle(s)


def _xy(s, lon: float, lat: float) -> tuple[float, float]:
    x, y = s.page.evaluate(
        "(p) => { const q = window.planning.map.project(p); return [q.x, q.y]; }", [lon, lat]
    )
    box = s.page.locator("#map").bounding_box()
    return box["x"] + x, box["y"] + y


def _click(s, lon: float, lat: float, *, modifiers: list[str] | None = None) -> None:
    x, y = _xy(s, lon, lat)
    if modifiers:
        for key in modifiers:
            s.page.keyboard.down(key)
    s.page.mouse.click(x, y)
    if modifiers:
        for key in modifiers:
            s.page.keyboard.up(key)


def _building_shown(s, lon: float, lat: float, code: str) -> None:
    """Until the building tiles have drawn `code` at that point (a click there picks it)."""
    for _ in range(50):
        found = s.page.evaluate(
            "(p) => { const m = window.planning.map; return m.queryRenderedFeatures(m.project(p), "
            "{layers: ['buildings-fill']}).map(f => f.properties.code); }",
            [lon, lat],
        )
        if code in found:
            return
        s.page.wait_for_timeout(100)
    raise AssertionError(f"building {code} is not drawn at ({lon}, {lat})")


def _dblclick(s, lon: float, lat: float) -> None:
    s.page.mouse.dblclick(*_xy(s, lon, lat))


def _codes(s) -> list[str]:
    return sorted(s.page.evaluate("() => [...window.planning.state.cells.keys()]"))


def _hint(s) -> str:
    return s.page.inner_text("#hint")


def _wait_hint(s, kind: str, text: str = "") -> None:
    """Until the hint bar says `text` as `kind` (ok, error); on a timeout, say what it said."""
    selector = f"#hint.{kind}" + (f" >> text={text}" if text else "")
    try:
        s.page.wait_for_selector(selector, timeout=30_000)
    except Exception as exc:  # noqa: BLE001 - re-raised with the page's own words
        raise AssertionError(f"hint {selector!r} never came; it says {_hint(s)!r}") from exc


def test_a_planner_redraws_a_community_and_applies_it(browser_page, plan_scene: PlanScene):
    s, sc = browser_page, plan_scene
    user_with(Role.PLANNER, street=sc.community.street, username="guihua", password=PASSWORD, staff=True)

    # Signing in lands on the planning page of the planner's community.
    s.admin_login("guihua", PASSWORD, next_path="/")
    assert s.page.url.split("?")[0].endswith(f"/planning/{sc.community.code}/")
    _ready(s)
    assert s.page.locator("#map canvas.maplibregl-canvas").count() == 1
    assert "还没有方案" in s.page.inner_text("#plan-list")

    # Start a draft from today's grid: its three cells, and the checks of it.
    s.page.click("#new-today")
    s.page.fill("#ask-input", "西列调整")
    s.page.click("#ask-ok")
    s.page.wait_for_selector("#problems li.problem")
    _settled(s)
    assert _codes(s) == [sc.a.code, sc.b.code, sc.c.code]
    assert "西列调整" in s.page.inner_text("#plan-list") and s.page.inner_text("#plan-title") == "西列调整"
    # B has 200 households, C 600: both out of range, listed, and drawn on the map.
    out_of_range = s.page.locator('#problems li[data-code="households_out_of_range"]')
    assert out_of_range.count() == 2
    assert f"网格 {sc.b.code} 有 200 户，少于" in s.page.inner_text("#problems")
    drawn = s.page.evaluate(
        "() => window.planning.map.queryRenderedFeatures({layers: ['problems-fill', 'problems-line']}).map(f => f.properties.code)"
    )
    assert "households_out_of_range" in drawn
    # A click on a problem selects its cell and outlines its geometry.
    s.page.locator('#problems li[data-code="households_out_of_range"]', has_text=sc.b.code).click()
    _idle(s)
    assert s.page.evaluate("() => window.planning.state.selected") == [sc.b.code]
    picked = s.page.evaluate(
        "() => window.planning.map.queryRenderedFeatures({layers: ['problem-picked']}).length"
    )
    assert picked > 0
    s.page.click('[data-tab="cells"]')
    row_b = s.page.locator(f'#cells tr[data-code="{sc.b.code}"]')
    assert (
        row_b.locator("td").nth(1).inner_text() == "200" and row_b.locator("td").nth(2).inner_text() == "-100"
    )
    s.screenshot("planning-draft.png", full_page=False)
    # Back to the whole community (the problem zoomed the map to B).
    s.page.evaluate(
        f"() => window.planning.map.fitBounds([{X}, {Y}, {X + 0.012}, {Y + 0.004}], {{padding: {{top: 40, bottom: 80, left: 170, right: 40}}, duration: 0}})"
    )
    _idle(s)

    # Draw a new cell across A's north edge: it is clipped to the community and A yields.
    s.page.click('[data-tool="draw"]')
    for lon, lat in [(X + 0.0005, Y + 0.003), (X + 0.0035, Y + 0.003), (X + 0.0035, Y + 0.0045)]:
        _click(s, lon, lat)
    _dblclick(s, X + 0.0005, Y + 0.0045)
    _wait_hint(s, "ok")
    _settled(s)
    codes = _codes(s)
    assert len(codes) == 4
    drawn_code = next(c for c in codes if c not in (sc.a.code, sc.b.code, sc.c.code))
    assert "新绘网格" in _hint(s)
    assert s.page.locator(f'#cells tr[data-code="{drawn_code}"]').count() == 1

    # Reshape the drawn cell: drag its south-east corner south-east; A yields what it takes.
    s.page.click('[data-tool="reshape"]')
    _click(s, X + 0.002, Y + 0.0036)
    s.page.wait_for_selector("#sketch-done")
    area_before = s.page.evaluate(f"() => window.planning.state.figures.get('{drawn_code}').area_m2")
    s.page.mouse.move(*_xy(s, X + 0.0035, Y + 0.003))
    s.page.mouse.down()
    s.page.mouse.move(*_xy(s, X + 0.0037, Y + 0.0027), steps=5)
    s.page.mouse.up()
    s.page.keyboard.press("Enter")
    _wait_hint(s, "ok", "调整网格")
    _settled(s)
    assert s.page.evaluate(f"() => window.planning.state.figures.get('{drawn_code}').area_m2") > area_before

    # Split C along a north-south line between its second and third columns of buildings.
    s.page.click('[data-tool="split"]')
    _click(s, X + 0.0105, Y + 0.0035)  # picks C
    assert s.page.evaluate("() => window.planning.state.selected") == [sc.c.code]
    _click(s, X + 0.0101, Y - 0.0003)
    _dblclick(s, X + 0.0101, Y + 0.0043)
    _wait_hint(s, "ok")
    _settled(s)
    assert len(_codes(s)) == 5 and "拆分" in _hint(s)
    s.screenshot("planning-split.png", full_page=False)

    # Merge the drawn cell back into A: select A, Shift-click the drawn cell, then 合并网格.
    s.page.click('[data-tool="select"]')
    _click(s, X + 0.003, Y + 0.0005)
    _click(s, X + 0.002, Y + 0.0036, modifiers=["Shift"])
    assert s.page.evaluate("() => window.planning.state.selected") == [sc.a.code, drawn_code]
    s.page.click('[data-tool="merge"]')
    _wait_hint(s, "ok")
    _settled(s)
    assert len(_codes(s)) == 4 and drawn_code not in _codes(s)

    # Undo brings the drawn cell back; Ctrl+Y redoes the merge, Ctrl+Z undoes it again.
    s.page.click("#undo")
    _wait_hint(s, "ok", "已撤销")
    _settled(s)
    assert len(_codes(s)) == 5 and drawn_code in _codes(s)
    s.page.locator("#map").focus()
    s.page.keyboard.press("Control+y")
    _wait_hint(s, "ok", "已重做")
    _settled(s)
    assert len(_codes(s)) == 4
    s.page.keyboard.press("Control+z")
    _wait_hint(s, "ok", "已撤销")
    _settled(s)
    assert len(_codes(s)) == 5
    assert s.page.is_enabled("#redo")
    # The drawn cell has no households: the checks list it as out of range.
    assert (
        s.page.locator('#problems li[data-code="households_out_of_range"]', has_text=drawn_code).count() == 1
    )
    s.page.click('[data-tab="log"]')
    s.page.wait_for_selector("#edit-log li.undone")
    assert "已撤销" in s.page.inner_text("#edit-log li.undone")

    # Lock B from the cells table: hatched on the map, the tools leave it alone.
    s.page.click('[data-tab="cells"]')
    s.page.check(f'#cells tr[data-code="{sc.b.code}"] input[type=checkbox]')
    _wait_hint(s, "ok", "锁定")
    _settled(s)
    locked = s.page.evaluate(
        "() => window.planning.map.queryRenderedFeatures({layers: ['cells-locked']}).map(f => f.properties.code)"
    )
    assert sc.b.code in locked

    # Move a building: B is locked, so its building stays; C's c2 goes to the split-off cell.
    s.page.click('[data-tool="move"]')
    _building_shown(s, X + 0.0052, Y + 0.0012, "PBB2")
    _click(s, X + 0.0052, Y + 0.0012)  # b2
    _click(s, X + 0.003, Y + 0.0005)  # to A
    _wait_hint(s, "error", "已锁定")
    _settled(s)
    _building_shown(s, X + 0.0097, Y + 0.0022, "PBC2")
    _click(s, X + 0.0097, Y + 0.0022)  # c2
    _click(s, X + 0.011, Y + 0.0035)  # to the split-off cell
    _wait_hint(s, "ok", "楼栋 PBC2")
    _settled(s)
    assert s.page.locator(f'#cells tr[data-code="{sc.c.code}"] td').nth(1).inner_text() == "300"

    # A second draft started now is based on today's grid too (made directly: another planner).
    rival = plans.plan_create(community=sc.community, name="另一位规划人员的方案")

    # The preview: who moves from which cell to which, and the before/after view.
    s.page.click('[data-tab="preview"]')
    s.page.wait_for_selector("#preview table.figures", timeout=60_000)  # the gap dry run
    preview = s.page.inner_text("#preview")
    assert "谁从哪个网格到哪个网格" in preview and "新建网格" in preview
    split_code = next(c for c in _codes(s) if c not in (sc.a.code, sc.b.code, sc.c.code, drawn_code))
    assert split_code[-3:] in preview  # c2, c3 and c6 move from C to the split-off cell
    assert s.page.is_visible("#view-toggle")
    s.page.check('[name="view"][value="before"]')
    _idle(s)
    visibility = s.page.evaluate(
        "() => ['before-line', 'cells-fill'].map(id => window.planning.map.getLayoutProperty(id, 'visibility'))"
    )
    assert visibility == ["visible", "none"]
    s.screenshot("planning-preview-before.png", full_page=False)
    s.page.check('[name="view"][value="after"]')
    _idle(s)
    visibility = s.page.evaluate(
        "() => ['before-line', 'cells-fill'].map(id => window.planning.map.getLayoutProperty(id, 'visibility'))"
    )
    assert visibility == ["none", "visible"]
    moved = s.page.evaluate(
        "() => window.planning.map.queryRenderedFeatures({layers: ['buildings-moved']}).map(f => f.properties.code)"
    )
    assert {"PBC2", "PBC3", "PBC6"} <= set(moved)
    s.screenshot("planning-preview.png", full_page=False)

    # Apply: date and reason, a confirmation, then the live boundaries change.
    s.page.click('[data-tab="apply"]')
    s.page.fill("#reason", "丙网格户数超过上限，东列单设网格")
    s.page.click("#apply")
    s.page.wait_for_selector("#ask[open]")
    assert "确认应用方案" in s.page.inner_text("#ask")
    s.page.click("#ask-ok")
    s.page.wait_for_selector("#apply-result .done", timeout=60_000)
    assert "已应用" in s.page.inner_text("#apply-result")
    _settled(s)
    plan = Plan.objects.get(name="西列调整")
    assert plan.state == Plan.State.APPLIED and plan.reason == "丙网格户数超过上限，东列单设网格"
    today = timezone.localdate()
    live = set(
        GridCell.objects.filter(community=sc.community, boundaries__valid__upper_inf=True).values_list(
            "code", flat=True
        )
    )
    assert live == {sc.a.code, sc.b.code, sc.c.code, drawn_code, split_code}
    c_versions = list(GridBoundary.objects.filter(cell=sc.c).order_by("valid"))
    assert len(c_versions) == 2 and c_versions[0].valid.upper == today and c_versions[1].valid.lower == today
    assert GridBoundary.objects.filter(cell__code=split_code, valid__startswith=today).exists()
    assert "已应用" in s.page.inner_text("#plan-list")
    assert s.page.is_disabled('[data-tool="draw"]')
    s.screenshot("planning-applied.png", full_page=False)

    # The rival draft is now stale: the list says so, and applying it is refused in Chinese.
    s.page.locator(f'#plan-list tr[data-id="{rival.pk}"] button', has_text="打开").click()
    s.page.wait_for_selector("#plan-stale:not([hidden])")
    assert "已被另一方案修改" in s.page.inner_text("#plan-stale")
    assert "已过时" in s.page.inner_text(f'#plan-list tr[data-id="{rival.pk}"]')
    s.page.click('[data-tab="apply"]')
    s.page.fill("#reason", "另一调整")
    s.page.click("#apply")
    s.page.click("#ask-ok")
    s.page.wait_for_selector("#apply-result .alert")
    assert "另一个方案已先应用到本社区" in s.page.inner_text("#apply-result")
    rival.refresh_from_db()
    assert rival.state == Plan.State.DRAFT
    s.screenshot("planning-stale.png", full_page=False)

    assert s.external_requests() == []
    # Chromium logs every answer >= 400 as a console error: the two refusals above (the locked
    # cell's 400, the stale draft's 409), and nothing else.
    refused = "Failed to load resource: the server responded with a status of"
    assert sorted(s.console_errors) == [f"{refused} 400 (Bad Request)", f"{refused} 409 (Conflict)"]


def _feature(code: str, poly) -> dict:
    return {
        "type": "Feature",
        "properties": {"code": code, "name": f"上传{code[-3:]}"},
        "geometry": json.loads(poly.json),
    }


def test_a_planner_uploads_suggests_renames_copies_and_abandons_drafts(
    browser_page, plan_scene: PlanScene, tmp_path
):
    s, sc = browser_page, plan_scene
    user_with(Role.STREET_ADMIN, street=sc.community.street, username="jiedao", password=PASSWORD, staff=True)
    s.admin_login("jiedao", PASSWORD, next_path=f"/planning/{sc.community.code}/")
    _ready(s)

    # A file whose second feature has another community's code and whose third is no polygon:
    # each named in Chinese, and no draft made.
    bad = tmp_path / "bad.geojson"
    bad.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    _feature(sc.a.code, rect(X, Y, X + 0.006, Y + 0.004)),
                    _feature("440803999999001", rect(X + 0.006, Y, X + 0.012, Y + 0.004)),
                    {
                        "type": "Feature",
                        "properties": {"code": sc.c.code},
                        "geometry": {"type": "Point", "coordinates": [X, Y]},
                    },
                ],
            }
        ),
        encoding="utf-8",
    )
    s.page.click("#new-upload")
    s.page.set_input_files("#upload-file", str(bad))
    s.page.click('#upload-form button[type="submit"]')
    s.page.wait_for_selector("#upload-issues table.issues")
    issues = s.page.inner_text("#upload-issues")
    assert "未建立方案" in issues and "第 2 个" in issues and "第 3 个" in issues
    assert "440803999999001" in issues
    assert not Plan.objects.exists()
    s.screenshot("planning-upload-errors.png", full_page=False)

    # A good file of two cells starts a draft, opened at once.
    good = tmp_path / "good.geojson"
    good.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    _feature(sc.a.code, rect(X, Y, X + 0.006, Y + 0.004)),
                    _feature(sc.c.code, rect(X + 0.006, Y, X + 0.012, Y + 0.004)),
                ],
            }
        ),
        encoding="utf-8",
    )
    s.page.fill("#upload-name", "上传的两格方案")
    s.page.set_input_files("#upload-file", str(good))
    s.page.click('#upload-form button[type="submit"]')
    _wait_hint(s, "ok", "已从文件新建草稿")
    assert not s.page.is_visible("#upload")
    s.page.wait_for_selector("#problems li")
    _settled(s)
    assert _codes(s) == [sc.a.code, sc.c.code]
    uploaded = Plan.objects.get(name="上传的两格方案")
    assert uploaded.origin == Plan.Origin.UPLOAD

    # Rename, copy, abandon.
    row = s.page.locator(f'#plan-list tr[data-id="{uploaded.pk}"]')
    row.locator("button", has_text="改名").click()
    s.page.fill("#ask-input", "东西两格")
    s.page.click("#ask-ok")
    s.page.wait_for_selector("#plan-title >> text=东西两格")
    uploaded.refresh_from_db()
    assert uploaded.name == "东西两格"
    row.locator("button", has_text="复制").click()
    s.page.wait_for_selector("#plan-title >> text=东西两格（副本）")
    copy = Plan.objects.get(name="东西两格（副本）")
    assert copy.origin_plan_id == uploaded.pk
    assert s.page.locator("#plan-list tbody tr").count() == 2
    s.page.locator(f'#plan-list tr[data-id="{uploaded.pk}"] button', has_text="放弃").click()
    s.page.click("#ask-ok")
    s.page.wait_for_selector(f'#plan-list tr[data-id="{uploaded.pk}"][data-state="abandoned"]')
    uploaded.refresh_from_db()
    assert uploaded.state == Plan.State.ABANDONED

    # Compare the copy with today's grid: households per cell side by side.
    s.page.locator(f'#plan-list tr[data-id="{copy.pk}"] button', has_text="比较").click()
    s.page.wait_for_selector("#ask[open] table.compare")
    compare = s.page.inner_text("#ask")
    assert "现行网格" in compare and sc.b.code in compare
    s.page.click("#ask-ok")

    # The suggested rebalance starts a draft whose cells are all in range.
    s.page.click("#new-suggest")
    s.page.click("#ask-ok")
    _wait_hint(s, "ok", "已生成建议草稿")
    _settled(s)
    suggested = Plan.objects.get(origin=Plan.Origin.SUGGESTION)
    assert s.page.inner_text("#plan-title") == suggested.name
    assert s.page.evaluate("() => window.planning.state.checks.summary.cells_in_range") == 3

    # Another tab edits the same draft (the service, directly): this page's next edit is refused
    # as a conflict, and the page reloads the draft as it now stands.
    plans.plan_edit(plan=suggested, kind="lock", payload={"code": sc.a.code})
    s.page.click('[data-tab="cells"]')
    s.page.check(f'#cells tr[data-code="{sc.b.code}"] input[type=checkbox]')
    _wait_hint(s, "error", "已在别处")
    s.page.wait_for_selector(f'#cells tr[data-code="{sc.a.code}"] input[type=checkbox]:checked')
    _settled(s)
    assert s.page.evaluate("() => window.planning.state.plan.cursor") == 1
    assert not s.page.is_checked(f'#cells tr[data-code="{sc.b.code}"] input[type=checkbox]')

    # The URL keeps the open plan and the tab: a reload comes back to them.
    s.page.reload(wait_until="load")
    _ready(s)
    s.page.wait_for_selector(f"#plan-title >> text={suggested.name}")
    assert s.page.get_attribute('[data-tab="cells"]', "aria-selected") == "true"

    assert s.external_requests() == []
    refused = "Failed to load resource: the server responded with a status of"
    # the rejected upload, the conflicting edit
    assert sorted(s.console_errors) == [f"{refused} 400 (Bad Request)", f"{refused} 409 (Conflict)"]
