"""The offline map (网格作战图) opened the way it is used: downloaded, then opened from a file in a
browser with the network off (a second, offline browser context, nothing served). It must draw
the map from what it carries: Leaflet present, the unit's outline, every building, organisation
and gap of the scene as an SVG path, labels, details on hover, and not one request besides the
file itself. A screenshot is written to /tmp/offline-map.png (or $WANGGE_SCREENSHOTS) to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from grid.models import Building, Role
from mapping.models import Gap
from mapping.services import gaps_recompute
from tests.browser import screenshot_path
from tests.mapping.conftest import AT, Scene
from tests.people import api_client, user_with

pytestmark = [pytest.mark.django_db, pytest.mark.browser]

URL = "/dashboard/export/offline-map.html"
SHAPES = ("wg-outline", "wg-cell", "wg-building", "wg-org", "wg-gap-point", "wg-gap-area")


@pytest.fixture
def computed(scene: Scene, monkeypatch) -> Scene:
    gaps_recompute(community_ids=None, at=AT)
    monkeypatch.setattr("django.utils.timezone.now", lambda: AT + timedelta(days=5))
    return scene


@dataclass
class OfflinePage:
    page: Page
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def count(self, css_class: str) -> int:
        return self.page.locator(f"path.{css_class}").count()


@contextmanager
def opened_offline(
    browser: Browser, html: bytes, tmp_path: Path, *, from_file: bool = True
) -> Iterator[OfflinePage]:
    """The page in a fresh context with the network off: from a file:// URL, or given as content."""
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    context.set_offline(True)
    page = context.new_page()
    opened = OfflinePage(page)
    page.on("request", lambda r: opened.requests.append(r.url))
    page.on("requestfailed", lambda r: opened.failed.append(r.url))
    page.on("console", lambda m: m.type == "error" and opened.errors.append(m.text))
    page.on("pageerror", lambda e: opened.errors.append(str(e)))
    try:
        if from_file:
            path = tmp_path / "网格作战图.html"
            path.write_bytes(html)
            page.goto(path.as_uri(), wait_until="load")
        else:
            page.set_content(html.decode("utf-8"), wait_until="load")
        page.wait_for_function("document.querySelectorAll('path.wg-outline').length > 0")
        yield opened
    finally:
        context.close()


def download(user, unit: str) -> bytes:
    response = api_client(user).get(URL, {"unit": unit})
    assert response.status_code == 200, response.content
    assert response["Content-Disposition"].startswith("attachment;")
    return response.content


def open_gaps(**where) -> tuple[int, int]:
    """(points, areas) among the open gaps of a place."""
    kinds = [g.geom.geom_type for g in Gap.objects.filter(resolved_at__isnull=True, **where)]
    points = sum(1 for k in kinds if k in ("Point", "MultiPoint"))
    return points, len(kinds) - points


def test_a_community_map_draws_from_a_file_with_the_network_off(computed: Scene, browser, tmp_path):
    s = computed
    Building.objects.filter(pk=s.h1.pk).update(name='<img src=x onerror="window.hacked=1">1栋')
    html = download(user_with(Role.STREET_ADMIN, street=s.street), s.a.code)
    with opened_offline(browser, html, tmp_path) as opened:
        page = opened.page
        assert page.evaluate("typeof L === 'object' && L.version") == "1.9.4"
        points, areas = open_gaps(community=s.a)
        assert (points, areas) == (8, 3)
        assert {c: opened.count(c) for c in SHAPES} == {
            "wg-outline": 1,
            "wg-cell": 2,  # A1 and A2
            "wg-building": Building.objects.filter(community=s.a).count(),  # h1, h2, h3, the shop
            "wg-org": 2,  # A1's grid branch and h2's building group
            "wg-gap-point": points,
            "wg-gap-area": areas,
        }
        # Buildings coloured by status: h1 has members and no group (red), h2 and h3 are not
        # visited (orange), the shop is other (grey).
        fills = page.eval_on_selector_all("path.wg-building", "els => els.map(e => e.getAttribute('fill'))")
        assert sorted(fills) == sorted(["#d7301f", "#fd8d3c", "#fd8d3c", "#bdbdbd"])
        # Labels of the grid cells and of the organisations; the title and the legend.
        labels = page.locator(".wg-label").all_inner_texts()
        assert s.a1.name in labels and s.a2.name in labels and s.a1_branch.name in labels
        assert page.locator(".wg-title h1").inner_text() == f"{s.a.name}网格作战图"
        assert "有党员未建党小组（1）" in page.locator(".wg-legend").inner_text()
        page.screenshot(path=str(screenshot_path("offline-map.png")))
        # Details on hover, names as text: a name holding markup does not run.
        # Zoomed in, near its corner: the gap markers of the members living there sit on its centre.
        h1 = page.locator("path.wg-building[fill='#d7301f']")
        box = h1.bounding_box()
        page.evaluate(
            """([x, y]) => { const map = window[document.querySelector('.folium-map').id];
                map.setView(map.containerPointToLatLng([x, y]), 19, {animate: false}); }""",
            [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
        )
        box = h1.bounding_box()
        page.mouse.move(box["x"] + 3, box["y"] + box["height"] - 3)
        info = page.locator(".wg-info").inner_text()
        assert '<img src=x onerror="window.hacked=1">1栋' in info and "居住党员" in info
        assert page.evaluate("window.hacked") is None
        assert opened.errors == []
        assert opened.failed == []
        assert [u for u in opened.requests if not u.startswith("file://")] == []


def test_a_grid_workers_map_of_their_grid_holds_their_grid_only(computed: Scene, browser, tmp_path):
    s = computed
    html = download(user_with(Role.GRID_WORKER, grid_cell=s.a2), s.a2.code)
    with opened_offline(browser, html, tmp_path, from_file=False) as opened:
        points, areas = open_gaps(grid_cell=s.a2)
        assert (points, areas) == (1, 3)  # h3 unvisited; no branch, no worker, low visit rate
        assert {c: opened.count(c) for c in SHAPES} == {
            "wg-outline": 1,
            "wg-cell": 0,
            "wg-building": 1,  # h3
            "wg-org": 0,
            "wg-gap-point": points,
            "wg-gap-area": areas,
        }
        assert opened.page.locator(".wg-title h1").inner_text() == f"{s.a2.name}网格作战图".replace(
            "网格网格", "网格"
        )
        assert opened.errors == [] and opened.failed == []
        assert [u for u in opened.requests if u != "about:blank"] == []
