"""The street office's downloads (/dashboard/export/…) on the hand-built street of
tests/mapping/conftest.py, gaps from a real recompute: the Excel and GeoJSON gap lists hold exactly
the rows /api/gaps/ gives the same user, the indicator table holds mapping.indicators' own figures
for the unit and its children, the offline map is one file that names no other host; every export
is audited, every refusal (reach, bad parameter) is a 4xx with a stable code and writes nothing.

The clock is held at NOW, five days after the recompute, so every gap is five days old.
"""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from urllib.parse import unquote

import pytest
from django.test import override_settings
from openpyxl import load_workbook

from grid.access import Reach
from grid.models import AuditEvent, Role
from mapping import indicators
from mapping.models import Gap
from mapping.services import gaps_recompute
from tests.mapping.conftest import AT, Scene
from tests.people import api_client, signed_in, user_with

pytestmark = pytest.mark.django_db

NOW = AT + timedelta(days=5, hours=1)
GAPS_XLSX = "/dashboard/export/gaps.xlsx"
GAPS_GEOJSON = "/dashboard/export/gaps.geojson"
INDICATORS_XLSX = "/dashboard/export/indicators.xlsx"
OFFLINE_MAP = "/dashboard/export/offline-map.html"
HEADERS = [
    "序号",
    "街道",
    "社区",
    "网格",
    "类型",
    "对象",
    "兜底责任组织",
    "发现时间",
    "已持续天数",
    "严重程度",
    "说明",
    "对象编码",
    "网格编码",
]
CJK = re.compile(r"[\u4e00-\u9fff]")
# URLs the offline page may contain because nothing fetches them: the SVG namespace Leaflet
# creates its vector elements in, and the project's home page in Leaflet's licence header and in
# its attribution prefix (the attribution control is off without a basemap).
NOT_FETCHED = {"http://www.w3.org/2000/svg", "https://leafletjs.com"}


@pytest.fixture
def computed(scene: Scene, monkeypatch) -> Scene:
    gaps_recompute(community_ids=None, at=AT)
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW)
    return scene


def sheet_rows(response) -> tuple[object, list[tuple]]:
    wb = load_workbook(io.BytesIO(response.content))
    ws = wb.worksheets[0]
    return ws, list(ws.iter_rows(values_only=True))


def api_subjects(user, **params) -> set[tuple[str, str]]:
    features = api_client(user).get("/api/gaps/", {**params, "page_size": 1000}).json()["features"]
    return {
        (
            f["properties"]["kind_display"],
            f["properties"]["subject_code"],
            f["properties"]["subject_label"] or "",
        )
        for f in features
    }


def excel_subjects(rows: list[tuple]) -> set[tuple[str, str]]:
    # An empty cell reads back as None.
    return {
        (r[HEADERS.index("类型")], r[HEADERS.index("对象编码")] or "", r[HEADERS.index("对象")] or "")
        for r in rows[3:]
    }


def filename(response) -> str:
    disposition = response["Content-Disposition"]
    assert disposition.startswith('attachment; filename="wangge-export.')
    return unquote(disposition.split("filename*=UTF-8''", 1)[1])


def exports_audited() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT).order_by("id"))


# --------------------------------------------------------------------------------------------
# The gap list
# --------------------------------------------------------------------------------------------


def test_the_gap_excel_holds_the_rows_the_user_sees_with_the_office_layout(computed: Scene):
    s = computed
    worker = user_with(Role.GRID_WORKER, grid_cell=s.a2)
    response = api_client(worker).get(GAPS_XLSX)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
    assert filename(response) == f"覆盖缺口清单_{s.a.name}{s.a2.name}_{NOW:%Y%m%d-%H%M}.xlsx"
    ws, rows = sheet_rows(response)
    # Title naming the unit, a note with the export time and the count, the frozen header.
    assert rows[0][0] == f"{s.a.name}{s.a2.name}覆盖缺口清单"
    assert "导出时间：2026-03-21 13:00" in rows[1][0] and "共4条" in rows[1][0]
    assert list(rows[2]) == HEADERS
    assert ws.freeze_panes == "A4" and ws.auto_filter.ref == "A3:M7"
    assert {str(r) for r in ws.merged_cells.ranges} == {"A1:M1", "A2:M2"}
    assert ws.column_dimensions["K"].width == 60 and ws.column_dimensions["A"].width == 6
    assert [r[0] for r in rows[3:]] == [1, 2, 3, 4]
    # Exactly the API's gaps for this user: their grid's, nothing of A1 or of the community.
    assert excel_subjects(rows) == api_subjects(worker) and len(rows) == 3 + 4
    unvisited = next(r for r in rows[3:] if r[HEADERS.index("对象编码")] == s.h3.code)
    record = dict(zip(HEADERS, unvisited, strict=True))
    assert record["社区"] == s.a.name and record["网格"] == s.a2.name and record["网格编码"] == s.a2.code
    assert record["类型"] == "楼栋超期未走访" and record["严重程度"] == "严重"
    assert record["兜底责任组织"] == s.a_org.name
    assert record["发现时间"].strftime("%Y-%m-%d %H:%M") == "2026-03-16 12:00"
    assert record["已持续天数"] == 5
    assert "上次走访：从未走访" in record["说明"] and "户数：24户" in record["说明"]

    street_admin = user_with(Role.STREET_ADMIN, street=s.street)
    _ws, rows = sheet_rows(api_client(street_admin).get(GAPS_XLSX))
    assert rows[0][0] == f"{s.street.name}覆盖缺口清单"
    assert excel_subjects(rows) == api_subjects(street_admin) and len(rows) - 3 == Gap.objects.count() == 15


@pytest.mark.parametrize(
    "params",
    [
        {"kind": Gap.Kind.BUILDING_UNVISITED},
        {"community": "COMMUNITY_A"},
        {"grid_cell": "CELL_A1"},
        {"since_before": "2026-03-17"},
        {"since_before": "2026-03-16"},
        {"in_bbox": "110.449,21.189,110.461,21.201"},
    ],
)
def test_the_gap_exports_take_the_filters_of_the_api(computed: Scene, params):
    s = computed
    params = {k: {"COMMUNITY_A": s.a.code, "CELL_A1": s.a1.code}.get(v, v) for k, v in params.items()}
    admin = user_with(Role.STREET_ADMIN, street=s.street)
    _ws, rows = sheet_rows(api_client(admin).get(GAPS_XLSX, params))
    expected = api_subjects(admin, **params)
    assert excel_subjects(rows) == expected
    body = api_client(admin).get(GAPS_GEOJSON, params).json()
    assert {
        (f["properties"]["类型"], f["properties"]["对象编码"], f["properties"]["对象"])
        for f in body["features"]
    } == expected


def test_the_gap_exports_take_the_unit_the_page_shows(computed: Scene):
    """The dashboard links with its own query string: unit=CODE beside its view state."""
    s = computed
    admin = user_with(Role.STREET_ADMIN, street=s.street)
    client = api_client(admin)
    page_query = {"layers": "cells,gaps", "ind": "visit", "period": "30", "map": "16.00/21.19/110.40"}
    for unit, same in ((s.a1.code, {"grid_cell": s.a1.code}), (s.b.code, {"community": s.b.code})):
        _ws, rows = sheet_rows(client.get(GAPS_XLSX, {**page_query, "unit": unit}))
        assert excel_subjects(rows) == api_subjects(admin, **same) != set()
    _ws, rows = sheet_rows(client.get(GAPS_XLSX, {"unit": s.street.code}))
    assert len(rows) - 3 == 15
    for bad in ({"unit": "abc"}, {"unit": s.a1.code, "grid_cell": s.a2.code}):
        response = client.get(GAPS_GEOJSON, bad)
        assert response.status_code == 400 and response.json()["code"] == "invalid_input"
    assert len(exports_audited()) == 3


def test_resolved_gaps_are_listed_with_the_time_they_were_closed(computed: Scene):
    from orgs import services as org_services

    s = computed
    org_services.grid_worker_update(worker=s.worker_a2, active=True)
    gaps_recompute(community_ids=[s.a.id], at=AT + timedelta(days=2))
    admin = user_with(Role.STREET_ADMIN, street=s.street)
    _ws, rows = sheet_rows(api_client(admin).get(GAPS_XLSX, {"resolved": "true"}))
    assert rows[0][0] == f"{s.street.name}已消除缺口清单"
    assert list(rows[2]) == [*HEADERS, "消除时间"]
    (closed,) = rows[3:]
    assert closed[HEADERS.index("类型")] == "网格无在岗网格员"
    assert closed[-1].strftime("%Y-%m-%d") == "2026-03-18" and closed[HEADERS.index("已持续天数")] == 2


def test_the_geojson_has_the_spreadsheets_properties_and_the_gaps_geometry(computed: Scene):
    s = computed
    admin = user_with(Role.COMMUNITY_ADMIN, community=s.a)
    response = api_client(admin).get(GAPS_GEOJSON)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/geo+json"
    assert filename(response).startswith(f"覆盖缺口清单_{s.a.name}_") and filename(response).endswith(
        ".geojson"
    )
    body = json.loads(response.content.decode("utf-8"))
    assert body["type"] == "FeatureCollection" and body["name"] == f"{s.a.name}覆盖缺口清单"
    _ws, rows = sheet_rows(api_client(admin).get(GAPS_XLSX))
    assert len(body["features"]) == len(rows) - 3 == 11
    by_number = {f["properties"]["序号"]: f for f in body["features"]}
    for row in rows[3:]:
        props = by_number[row[0]]["properties"]
        assert list(props) == HEADERS
        for header, value in zip(HEADERS, row, strict=True):
            expected = value.strftime("%Y-%m-%d %H:%M") if header == "发现时间" else value
            assert props[header] == ("" if expected is None else expected), header
    member = next(f for f in body["features"] if f["properties"]["类型"] == "党员未纳入组织管理")
    gap = Gap.objects.get(kind=Gap.Kind.MEMBER_UNATTACHED)
    assert member["id"] == gap.id and member["properties"]["对象"] == "王**"
    assert member["geometry"]["type"] == "Point"
    assert member["geometry"]["coordinates"] == [round(gap.geom.x, 6), round(gap.geom.y, 6)]
    assert "王小明" not in response.content.decode("utf-8")


def test_every_gap_export_is_audited_with_its_filters_and_count(computed: Scene):
    s = computed
    admin = user_with(Role.STREET_ADMIN, street=s.street)
    client = api_client(admin)
    client.get(GAPS_XLSX, {"community": s.a.code, "kind": Gap.Kind.BUILDING_UNVISITED})
    client.get(GAPS_GEOJSON, {"in_bbox": "110.449,21.189,110.461,21.201"})
    xlsx, geojson = exports_audited()
    assert xlsx.actor_id == admin.id and xlsx.object_type == "mapping.Gap" and xlsx.object_id == s.a.code
    assert xlsx.street_id == s.street.id
    assert xlsx.changes == {
        "format": "xlsx",
        "filters": {"community": s.a.code, "kind": "building_unvisited", "resolved": False},
        "count": 2,
    }
    assert "（Excel）2条" in xlsx.summary
    assert geojson.changes["format"] == "geojson" and geojson.changes["count"] == 2
    assert geojson.changes["filters"]["in_bbox"] == "110.449000,21.189000,110.461000,21.201000"


def test_a_name_that_looks_like_a_formula_stays_text(computed: Scene):
    s = computed
    Gap.objects.filter(kind=Gap.Kind.BUILDING_UNVISITED, subject_id=s.h3.id).update(
        subject_label='=HYPERLINK("http://evil.example","点我")'
    )
    admin = user_with(Role.STREET_ADMIN, street=s.street)
    ws, rows = sheet_rows(
        api_client(admin).get(GAPS_XLSX, {"grid_cell": s.a2.code, "kind": "building_unvisited"})
    )
    cell = ws.cell(row=4, column=HEADERS.index("对象") + 1)
    assert cell.value == '=HYPERLINK("http://evil.example","点我")' and cell.data_type == "s"


def test_a_session_signed_in_on_the_page_can_download(computed: Scene):
    s = computed
    admin = user_with(Role.STREET_ADMIN, street=s.street)
    response = signed_in(admin).get(GAPS_XLSX, HTTP_ACCEPT="text/html")
    assert response.status_code == 200 and response["Cache-Control"] == "private, no-store"


def test_the_gap_list_is_built_in_a_fixed_number_of_queries(computed: Scene, django_assert_max_num_queries):
    admin = user_with(Role.STREET_ADMIN, street=computed.street)
    client = api_client(admin)
    with django_assert_max_num_queries(12):
        assert client.get(GAPS_XLSX).status_code == 200
    with django_assert_max_num_queries(12):
        assert client.get(GAPS_GEOJSON).status_code == 200


# --------------------------------------------------------------------------------------------
# The indicator table
# --------------------------------------------------------------------------------------------


def _rates(row: tuple, first: int) -> dict[str, dict]:
    out = {}
    for n, key in enumerate(indicators.FORMULAS):
        value, numerator, denominator = row[first + 3 * n : first + 3 * n + 3]
        out[key] = {
            "value": None if value == "—" else value,
            "numerator": numerator,
            "denominator": denominator,
        }
    return out


def test_the_indicator_table_is_the_unit_and_its_children_with_the_indicators_figures(computed: Scene):
    s = computed
    everything = Reach(everything=True, roles=frozenset({Role.STREET_ADMIN}))
    today = NOW.date()
    for back in (1, 0):
        indicators.indicator_snapshots_take(day=today - timedelta(days=back), at=NOW - timedelta(days=back))
    admin = user_with(Role.STREET_ADMIN, street=s.street)
    response = api_client(admin).get(
        INDICATORS_XLSX, {"unit": s.street.code, "from": str(today - timedelta(days=6)), "to": str(today)}
    )
    assert response.status_code == 200, response.content
    assert filename(response) == f"覆盖指标_{s.street.name}_{NOW:%Y%m%d-%H%M}.xlsx"
    wb = load_workbook(io.BytesIO(response.content))
    assert wb.sheetnames == ["覆盖指标", "每日历史", "指标口径"]
    ws = wb["覆盖指标"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][0] == f"{s.street.name}覆盖指标（街道，含下辖社区、网格）"
    assert ws.freeze_panes == "D5"
    names = [indicators.FORMULAS[k][0] for k in indicators.FORMULAS]
    assert [rows[2][3 + 3 * n] for n in range(len(names))] == names
    assert rows[3][3:6] == ("比率", "分子", "分母")
    assert "D3:F3" in {str(r) for r in ws.merged_cells.ranges}
    # The street, then each community followed by its current grid cells.
    units = [s.street, s.a, s.a1, s.a2, s.b, s.c]
    assert [r[1] for r in rows[4:]] == [u.code for u in units]
    assert [r[0] for r in rows[4:]] == ["街道", "社区", "网格", "网格", "社区", "社区"]
    for unit, row in zip(units, rows[4:], strict=True):
        expected = indicators.indicators_compute(
            unit=indicators.indicator_unit_get(reach=everything, code=unit.code), at=NOW
        )
        assert row[2] == unit.name
        got = _rates(row, 3)
        for key in indicators.FORMULAS:
            assert got[key]["numerator"] == expected[key]["numerator"], (unit.code, key)
            assert got[key]["denominator"] == expected[key]["denominator"], (unit.code, key)
            assert got[key]["value"] == (
                float(expected[key]["value"]) if expected[key]["value"] is not None else None
            )
        tail = row[3 + 3 * len(names) :]
        assert tail[0] == expected["visits_in_window"] and tail[1] == expected["open_gaps"]["open"]
    # Rates are shown as percentages, computable as numbers.
    a_row = 4 + 2 + 1  # 1-based row of community A
    assert (
        ws.cell(
            row=a_row, column=4 + 3 * list(indicators.FORMULAS).index("grid_branch_coverage")
        ).number_format
        == "0.0%"
    )
    history = list(wb["每日历史"].iter_rows(values_only=True))
    assert [r[0].date() for r in history[4:]] == [today - timedelta(days=1), today]
    assert wb["每日历史"].freeze_panes == "B5"
    formulas = list(wb["指标口径"].iter_rows(values_only=True))
    assert [r[0] for r in formulas[3:]] == [*names, "走访次数", "未消除缺口"]
    (event,) = exports_audited()
    assert event.object_type == "mapping.IndicatorSnapshot" and event.object_id == s.street.code
    assert event.changes == {
        "format": "xlsx",
        "filters": {"unit": s.street.code, "from": str(today - timedelta(days=6)), "to": str(today)},
        "count": 6,
        "history_days": 2,
    }
    assert event.street_id == s.street.id


def test_a_communitys_table_has_no_street_row_and_a_grid_cells_only_itself(computed: Scene):
    s = computed
    admin = user_with(Role.COMMUNITY_ADMIN, community=s.a)
    rows = list(
        load_workbook(io.BytesIO(api_client(admin).get(INDICATORS_XLSX, {"unit": s.a.code}).content))
        .worksheets[0]
        .iter_rows(values_only=True)
    )
    assert [r[1] for r in rows[4:]] == [s.a.code, s.a1.code, s.a2.code]
    worker = user_with(Role.GRID_WORKER, grid_cell=s.a2)
    response = api_client(worker).get(INDICATORS_XLSX, {"unit": s.a2.code})
    rows = list(load_workbook(io.BytesIO(response.content)).worksheets[0].iter_rows(values_only=True))
    assert [r[1] for r in rows[4:]] == [s.a2.code]
    history = list(load_workbook(io.BytesIO(response.content))["每日历史"].iter_rows(values_only=True))
    assert history[4][0].startswith("该期间没有指标快照")


# --------------------------------------------------------------------------------------------
# The offline map (its drawing is proved in a browser: test_offline_map_browser.py)
# --------------------------------------------------------------------------------------------


def test_the_offline_map_is_one_file_that_names_no_other_host(computed: Scene, django_assert_max_num_queries):
    s = computed
    admin = user_with(Role.STREET_ADMIN, street=s.street)
    with django_assert_max_num_queries(16):
        response = api_client(admin).get(OFFLINE_MAP, {"unit": s.a.code})
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert filename(response) == f"网格作战图_{s.a.name}_{NOW:%Y%m%d-%H%M}.html"
    page = response.content.decode("utf-8")
    assert len(response.content) < 400_000  # Leaflet inline is ~150 KB of it
    # Nothing to fetch: no external script, stylesheet, image or font, no URL of another host.
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)\s*=", page, re.I)
    for cdn in ("jsdelivr", "cdnjs", "code.jquery", "bootstrapcdn", "unpkg", "fontawesome", "googleapis"):
        assert cdn not in page, cdn
    urls = {
        u.rstrip("\\n").rstrip("/")
        for u in re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s\"'<>)]*", page, re.I)
    }
    assert urls <= NOT_FETCHED, urls - NOT_FETCHED
    assert "L.map(" in page and "leaflet-container" in page  # Leaflet's JS and CSS inline
    assert page.startswith("<!DOCTYPE html>") and '<html lang="zh-CN">' in page
    assert f"<title>{s.a.name}网格作战图</title>" in page
    (event,) = exports_audited()
    assert event.object_type == "grid.Community" and event.object_id == s.a.code
    assert (
        event.changes["buildings"] == 4
        and event.changes["organisations"] == 2
        and event.changes["gaps"] == 11
    )
    assert event.changes["grid_cells"] == 2 and event.changes["bytes"] == len(response.content)


@override_settings(BASEMAP_TILES_URL="http://tiles.intranet/{z}/{x}/{y}.png", BASEMAP_ATTRIBUTION="内网底图")
def test_a_configured_basemap_is_an_optional_layer_off_by_default(computed: Scene):
    s = computed
    admin = user_with(Role.STREET_ADMIN, street=s.street)
    page = api_client(admin).get(OFFLINE_MAP, {"unit": s.a1.code}).content.decode("utf-8")
    (layer,) = re.findall(
        r"var (tile_layer_\w+) = L\.tileLayer\(\s*\"http://tiles\.intranet/\{z\}/\{x\}/\{y\}\.png\"", page
    )
    # In the layer switcher as 底图（需连接内网）, and not shown until the user turns it on.
    assert re.search(r'"\\u5e95\\u56fe\\uff08[^"]*" : ' + layer, page)
    assert f"{layer}.addTo(" not in page
    assert json.dumps("内网底图") in page  # its attribution, in the layer's options


# --------------------------------------------------------------------------------------------
# Refusals: reach and bad parameters
# --------------------------------------------------------------------------------------------


def test_units_out_of_reach_are_404_like_missing_ones_and_write_nothing(computed: Scene):
    s = computed
    worker = api_client(user_with(Role.GRID_WORKER, grid_cell=s.a2))
    admin_b = api_client(user_with(Role.COMMUNITY_ADMIN, community=s.b))
    refused = [
        (worker, OFFLINE_MAP, {"unit": s.a1.code}),  # the neighbouring grid
        (worker, OFFLINE_MAP, {"unit": s.a.code}),  # their own community: its map is community-wide
        (worker, OFFLINE_MAP, {"unit": "999999999999999"}),  # no such grid
        (admin_b, OFFLINE_MAP, {"unit": s.a.code}),
        (admin_b, OFFLINE_MAP, {"unit": s.a2.code}),
        (worker, INDICATORS_XLSX, {"unit": s.a1.code}),
        (admin_b, INDICATORS_XLSX, {"unit": s.street.code}),
        (admin_b, INDICATORS_XLSX, {"unit": "999999999"}),
    ]
    for client, url, params in refused:
        response = client.get(url, params)
        assert response.status_code == 404, (url, params, response.content)
        assert response.json() == {"code": "not_found", "message": "对象不存在或无权访问"}
    assert exports_audited() == []
    # What they may see, they get.
    assert worker.get(OFFLINE_MAP, {"unit": s.a2.code}).status_code == 200
    assert admin_b.get(OFFLINE_MAP, {"unit": s.b.code}).status_code == 200
    # The gap list of a place out of reach is empty, not another place's rows.
    _ws, rows = sheet_rows(worker.get(GAPS_XLSX, {"grid_cell": s.a1.code}))
    assert rows[3:] == [] and rows[0][0] == f"网格{s.a1.code}覆盖缺口清单"


@pytest.mark.parametrize(
    ("url", "params", "code"),
    [
        (GAPS_XLSX, {"kind": "no_such_kind"}, "invalid_input"),
        (GAPS_XLSX, {"since_before": "2026-13-01"}, "invalid_input"),
        (GAPS_GEOJSON, {"resolved": "maybe"}, "invalid_input"),
        (GAPS_GEOJSON, {"in_bbox": "1,2,3"}, "invalid_input"),
        (GAPS_XLSX, {"in_bbox": "nan,0,1,1"}, "invalid_input"),
        (GAPS_XLSX, {"community": "x" * 13}, "invalid_input"),
        (INDICATORS_XLSX, {}, "invalid_input"),
        (
            INDICATORS_XLSX,
            {"unit": "STREET", "from": "2026-03-10", "to": "2026-03-01"},
            "date_range_reversed",
        ),
        (
            INDICATORS_XLSX,
            {"unit": "STREET", "from": "2020-01-01", "to": "2026-03-01"},
            "date_range_too_long",
        ),
        (INDICATORS_XLSX, {"unit": "STREET", "to": "2026-02-30"}, "invalid_input"),
        (OFFLINE_MAP, {}, "invalid_input"),
        (OFFLINE_MAP, {"unit": "STREET"}, "unit_invalid"),
        (OFFLINE_MAP, {"unit": "abc"}, "unit_invalid"),
        (OFFLINE_MAP, {"unit": "４４０８０３００１００１"}, "unit_invalid"),  # full-width digits
        (OFFLINE_MAP, {"unit": "1" * 40}, "invalid_input"),
        (OFFLINE_MAP, {"unit": "12\x00"}, "invalid_input"),
    ],
)
def test_bad_parameters_are_a_400_in_chinese_and_write_nothing(computed: Scene, url, params, code):
    s = computed
    params = {k: (s.street.code if v == "STREET" else v) for k, v in params.items()}
    admin = user_with(Role.STREET_ADMIN, street=s.street)
    response = api_client(admin).get(url, params)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == code and CJK.search(body["message"]), body
    assert exports_audited() == []


def test_sign_in_is_required_and_a_role_that_reads_nothing_is_refused(computed: Scene):
    s = computed
    for url, params in (
        (GAPS_XLSX, {}),
        (GAPS_GEOJSON, {}),
        (INDICATORS_XLSX, {"unit": s.a.code}),
        (OFFLINE_MAP, {"unit": s.a.code}),
    ):
        anonymous = api_client(None).get(url, params)
        assert anonymous.status_code == 401 and anonymous.json()["code"] == "not_authenticated"
        operator = api_client(user_with(Role.OPERATOR)).get(url, params)
        assert operator.status_code == 403 and operator.json()["code"] == "permission_denied"
    assert exports_audited() == []


def test_the_exports_are_not_api_operations(computed: Scene):
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    assert not [p for p in paths if p.startswith("/dashboard/")]
