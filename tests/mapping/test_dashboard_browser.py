"""The street office's page in headless Chromium (tests/browser.py): a street administrator signs in,
lands on the map, switches layers, drills down street → community → grid, zooms to a gap from the
list, and reloads the bookmarked view; no request leaves 127.0.0.1 and the console stays clean.

The scene is tests/mapping/conftest.py's small street with its gaps computed. The page's CSP has no
'unsafe-eval', so the test reads the page with `evaluate` (DevTools, not eval) and waits on
selectors, never on `wait_for_function` (an eval inside the page).
"""

from __future__ import annotations

import pytest

from grid.models import Role
from mapping.services import gaps_recompute
from tests.mapping.conftest import X, Y
from tests.people import user_with

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-dashboard-2026"


def _ready(s) -> None:
    s.page.wait_for_selector('body[data-map-ready="1"]', state="attached", timeout=30_000)


def _idle(s) -> None:
    """Wait until the map has nothing left to load or animate (MapLibre's own `loaded()` and no
    camera movement), polled from Python: the CSP forbids the eval that wait_for_function needs."""
    for _ in range(100):
        if s.page.evaluate("() => window.dashboard.map.loaded() && !window.dashboard.map.isMoving()"):
            s.page.wait_for_timeout(100)
            return
        s.page.wait_for_timeout(100)
    raise AssertionError("the map never settled")


def _camera(s) -> tuple[float, float, float]:
    lon, lat, zoom = s.page.evaluate(
        "() => { const m = window.dashboard.map; const c = m.getCenter(); return [c.lng, c.lat, m.getZoom()]; }"
    )
    return lon, lat, zoom


def _visibility(s, layer: str) -> str:
    return s.page.evaluate("(id) => window.dashboard.map.getLayoutProperty(id, 'visibility')", layer)


def _click_map_at(s, lon: float, lat: float) -> None:
    x, y = s.page.evaluate(
        "(p) => { const q = window.dashboard.map.project(p); return [q.x, q.y]; }", [lon, lat]
    )
    box = s.page.locator("#map").bounding_box()
    s.page.mouse.click(box["x"] + x, box["y"] + y)


def test_a_street_admin_reads_the_street_drills_down_and_bookmarks_the_view(browser_page, scene):
    s, sc = browser_page, scene
    gaps_recompute(community_ids=None)
    user_with(Role.STREET_ADMIN, street=sc.street, username="jiedao", password=PASSWORD, staff=True)

    # Signing in lands on the dashboard (through `/`), and the map renders.
    s.admin_login("jiedao", PASSWORD, next_path="/")
    assert s.page.url.split("?")[0].endswith("/dashboard/")
    _ready(s)
    assert s.page.locator("#map canvas.maplibregl-canvas").count() == 1
    _idle(s)
    assert s.page.inner_text("#unit-title") == f"街道 · {sc.street.name}"
    s.page.wait_for_selector(f'#indicators-meta[data-code="{sc.street.code}"]', state="attached")
    # The grid cells are shaded from the indicators API through feature-state.
    state = s.page.evaluate(
        "(id) => window.dashboard.map.getFeatureState({source: 'grid', sourceLayer: 'grid_cells', id})",
        sc.a2.pk,
    )
    assert state == {"v": 0}  # A2: none of its 24 households visited in the window
    s.screenshot("dashboard-street.png", full_page=False)

    # Layers on and off.
    assert _visibility(s, "buildings-fill") == "visible" and _visibility(s, "heat") == "none"
    s.page.click('[data-layer="buildings"]')
    s.page.click('[data-layer="heat"]')
    s.page.click('[data-gap="grid_without_branch"]')
    assert _visibility(s, "buildings-fill") == "none" and _visibility(s, "heat") == "visible"
    assert _visibility(s, "gap-grid_without_branch-area") == "none"
    assert _visibility(s, "gap-building_without_group-point") == "visible"
    # Another indicator re-shades without fetching a tile again.
    tiles_before = len([u for u in s.requests if "/tiles/grid_cells/" in u])
    s.page.select_option("#shading", "open_gaps")
    s.page.wait_for_timeout(300)
    open_gaps = s.page.evaluate(
        "(id) => window.dashboard.map.getFeatureState({source: 'grid', sourceLayer: 'grid_cells', id}).v",
        sc.a2.pk,
    )
    assert open_gaps >= 3  # no branch, no active worker, low visit rate (and h3 unvisited)
    assert len([u for u in s.requests if "/tiles/grid_cells/" in u]) == tiles_before

    # Drill down: a click inside community A (in A1, away from buildings and gaps) selects A ...
    _click_map_at(s, X + 0.004, Y + 0.0025)
    s.page.wait_for_selector(f'#indicators-meta[data-code="{sc.a.code}"]', state="attached")
    assert s.page.inner_text("#unit-title") == f"社区 · {sc.a.name}"
    _idle(s)
    # ... and a second click there selects grid A1: every panel narrows to it.
    _click_map_at(s, X + 0.004, Y + 0.0025)
    s.page.wait_for_selector(f'#indicators-meta[data-code="{sc.a1.code}"]', state="attached")
    assert s.page.inner_text("#unit-title") == f"网格 · {sc.a1.name}"
    crumbs = s.page.inner_text("#crumbs")
    assert sc.street.name in crumbs and sc.a.name in crumbs and sc.a1.name in crumbs
    s.page.click('[data-tab="people"]')
    s.page.wait_for_selector("#orgs li")
    assert sc.a1_branch.name in s.page.inner_text("#orgs")
    assert sc.worker_a1.name in s.page.inner_text("#workers")
    assert sc.worker_a2.name not in s.page.inner_text("#workers")
    _idle(s)

    # The gap list holds A1's gaps only; a row zooms the map to its gap.
    s.page.click('[data-tab="gaps"]')
    rows = s.page.locator("#gap-list tbody tr[data-id]")
    rows.first.wait_for()
    listed = s.page.evaluate(
        "() => [...document.querySelectorAll('#gap-list tbody tr[data-kind]')].map(r => r.dataset.kind)"
    )
    assert "building_without_group" in listed and "grid_without_branch" not in listed  # A2's gap is elsewhere
    h1_row = s.page.locator('#gap-list tbody tr[data-kind="building_without_group"]')
    before = _camera(s)
    h1_row.click()
    _idle(s)
    lon, lat, zoom = _camera(s)
    assert (lon, lat, zoom) != before
    assert zoom == pytest.approx(17)
    # The gap of h1 (X+0.001..0.0013, Y+0.001..0.0013) is on screen, its popup open.
    x, y = s.page.evaluate(
        "(p) => { const q = window.dashboard.map.project(p); return [q.x, q.y]; }", [X + 0.00115, Y + 0.00115]
    )
    box = s.page.locator("#map").bounding_box()
    assert 0 <= x <= box["width"] and 0 <= y <= box["height"]
    popup = s.page.inner_text(".maplibregl-popup")
    assert "楼栋有党员未建党小组" in popup and "兜底组织" in popup and "已存在" in popup
    s.screenshot("dashboard-grid.png", full_page=False)

    # The URL carries the state: a reload restores unit, layers, indicator and camera.
    url = s.page.url
    assert f"unit={sc.a1.code}" in url and "ind=open_gaps" in url
    s.page.reload(wait_until="load")
    _ready(s)
    s.page.wait_for_selector(f'#indicators-meta[data-code="{sc.a1.code}"]', state="attached")
    assert _visibility(s, "heat") == "visible" and _visibility(s, "buildings-fill") == "none"
    assert _visibility(s, "gap-grid_without_branch-point") == "none"
    assert s.page.input_value("#shading") == "open_gaps"
    assert s.page.get_attribute('[data-tab="gaps"]', "aria-selected") == "true"
    lon2, lat2, zoom2 = _camera(s)
    assert lon2 == pytest.approx(lon, abs=1e-4) and lat2 == pytest.approx(lat, abs=1e-4)
    assert zoom2 == pytest.approx(zoom, abs=0.01)
    # The export links carry the view.
    assert f"unit={sc.a1.code}" in s.page.get_attribute('[data-export="gaps_xlsx"]', "href")
    assert s.page.get_attribute('[data-export="offline_map"]', "href").startswith(
        "/dashboard/export/offline-map.html?"
    )

    # Search: a building by its code zooms the map to it.
    s.page.fill("#q", sc.h3.code)
    s.page.wait_for_selector("#search-results li button")
    s.page.click("#search-results li button")
    _idle(s)
    assert _camera(s)[2] >= 16
    x, y = s.page.evaluate(
        "(p) => { const q = window.dashboard.map.project(p); return [q.x, q.y]; }", [X + 0.00715, Y + 0.00215]
    )
    assert 250 <= x <= box["width"] and 0 <= y <= box["height"]  # right of the layer panel

    assert s.external_requests() == []
    assert s.console_errors == []
