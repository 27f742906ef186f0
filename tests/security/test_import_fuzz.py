"""Fuzzing the import paths with hypothesis: random and broken GeoJSON into grid.importers, random
CSV cells into the party-member roster. Every outcome is a success or a refusal with a stable,
documented code; a refusal writes nothing. Any other exception is a bug.

Deterministic (derandomize, no example database) and bounded so that the module stays under ~40 s.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from grid.errors import GridError
from grid.importers import ImportRejected, units_import
from grid.models import AuditEvent, Building, Community, GridBoundary, GridBoundaryPart, GridCell, Street
from orgs import roster
from orgs.errors import OrgError
from orgs.models import PartyMember
from tests.factories import ORIGIN, BuildingFactory, CommunityFactory, StreetFactory, multi, square
from tests.orgs_factories import CommunityOrgFactory, StreetCommitteeFactory, make_id_number

pytestmark = [
    pytest.mark.django_db,
    # GDAL and pyogrio narrate every broken feature; the assertions below are what matters.
    pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore:Could not parse column:UserWarning"),
]

X0, Y0 = ORIGIN
STREET = "440803001"
COMMUNITY = "440803001001"

# The codes grid/importers.py documents (its module docstring), whole-file and per-feature.
IMPORT_CODES = {
    "import_rejected",
    "file_unreadable",
    "file_empty",
    "file_too_large",
    "archive_too_large",
    "layer_missing",
    "field_missing",
    "geometry_missing",
    "crs_missing",
    "crs_unknown",
    "level_unknown",
    "code_missing",
    "code_format",
    "code_duplicate",
    "geometry_empty",
    "geometry_type",
    "geometry_invalid",
    "coords_out_of_range",
    "parent_unknown",
    "value_invalid",
    "geometry_repaired",
    "name_defaulted",
    # The partition checks of every boundary write (grid/partition.py).
    "grid_overlap",
    "grid_outside_community",
    "community_not_covered",
}
# The codes orgs/roster.py uses for a whole file (RosterError) and for a row (RowError).
ROSTER_FILE_CODES = {
    "file_unreadable",
    "file_too_large",
    "encoding_unknown",
    "file_type",
    "import_conflict",
    "roster_invalid",
}
ROSTER_ROW_CODES = {
    "header_missing",
    "file_empty",
    "value_missing",
    "value_invalid",
    "gender_unknown",
    "category_unknown",
    "status_unknown",
    "id_number_invalid",
    "id_number_duplicate",
    "phone_invalid",
    "date_invalid",
    "birth_date_implausible",
    "birth_date_mismatch",
    "joined_on_future",
    "joined_under_age",
    "org_unknown",
    "org_ambiguous",
    "building_unknown",
    "building_ambiguous",
    "community_unknown",
    "community_ambiguous",
    "formula_not_allowed",
}


def _bounded(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


def unit_counts() -> tuple[int, ...]:
    models = (Street, Community, GridCell, GridBoundary, GridBoundaryPart, Building, AuditEvent)
    return tuple(m.objects.count() for m in models)


@pytest.fixture
def community():
    street = StreetFactory(code=STREET)
    return CommunityFactory(street=street, code=COMMUNITY, geom=multi(square(X0, Y0, 0.02)))


# --------------------------------------------------------------------------------------------
# GeoJSON
# --------------------------------------------------------------------------------------------


def _ring(x: float, y: float, size: float) -> list[list[float]]:
    return [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]


numbers = st.one_of(
    st.floats(min_value=X0 - 0.01, max_value=X0 + 0.03),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 0.0, 180.0000001, 1e-320, 2**63]),
    st.integers(min_value=-(2**70), max_value=2**70),
)
good_ring = st.builds(
    _ring,
    st.floats(min_value=X0, max_value=X0 + 0.015),
    st.floats(min_value=Y0, max_value=Y0 + 0.015),
    st.sampled_from([0.0005, 0.002, 0.0]),
)
broken_ring = st.one_of(
    good_ring.map(lambda r: r[:-1]),  # unclosed
    good_ring.map(lambda r: r[:3]),  # fewer than 4 points
    good_ring.map(lambda r: [r[0], r[2], r[1], r[3], r[0]]),  # bow tie
    st.lists(st.lists(numbers, min_size=0, max_size=4), max_size=6),  # anything numeric
    st.just([]),
)
rings = st.one_of(good_ring, broken_ring)


def _geometry(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        st.builds(lambda r: {"type": "Polygon", "coordinates": [r]}, rings),
        st.builds(lambda r, h: {"type": "Polygon", "coordinates": [r, h]}, rings, rings),
        st.builds(
            lambda rs: {"type": "MultiPolygon", "coordinates": [[r] for r in rs]}, st.lists(rings, max_size=3)
        ),
        st.builds(lambda p: {"type": "Point", "coordinates": p}, st.lists(numbers, min_size=0, max_size=3)),
        st.builds(lambda r: {"type": "LineString", "coordinates": r}, rings),
        st.builds(lambda r: {"type": "MultiPoint", "coordinates": r}, rings),
        st.builds(
            lambda gs: {"type": "GeometryCollection", "geometries": gs}, st.lists(children, max_size=3)
        ),
        st.sampled_from(
            [
                None,
                {"type": "Polygon", "coordinates": []},
                {"type": "MultiPolygon", "coordinates": []},
                {"type": "GeometryCollection", "geometries": []},
                {"type": "Polygon"},
                {"type": "Circle", "coordinates": [X0, Y0], "radius": 5},
                {"type": "Polygon", "coordinates": "not a list"},
                {"type": "Polygon", "coordinates": [[["110.4", "21.2"], ["a", "b"]]]},
                "POLYGON((0 0, 1 0, 1 1, 0 0))",
                [],
                42,
            ]
        ),
    )


geometries = st.recursive(_geometry(st.none()), _geometry, max_leaves=6)

grid_codes = st.sampled_from([f"{COMMUNITY}{n:03d}" for n in range(1, 4)])
building_codes = st.sampled_from(["B-FUZZ-1", "B-FUZZ-2", "B-FUZZ-3"])
odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**66), max_value=2**66),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=60, max_size=300),
    st.sampled_from(
        ["\x00", "a\x00b", "\x1b[31m", "=cmd|' /C calc'!A0", "<script>alert(1)</script>", "' OR 1=1 --"]
    ),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _feature(codes: st.SearchStrategy) -> st.SearchStrategy:
    properties = st.fixed_dictionaries(
        {"code": st.one_of(codes, codes, odd_values), "name": st.one_of(st.text(max_size=10), odd_values)},
        optional={
            "households": odd_values,
            "floors": odd_values,
            "kind": st.one_of(st.sampled_from(["residential", "住宅", "castle"]), odd_values),
            "address": odd_values,
            "resp_body": odd_values,
            "comm_code": st.one_of(st.just(COMMUNITY), odd_values),
        },
    )
    feature = st.builds(
        lambda props, geom: {"type": "Feature", "properties": props, "geometry": geom}, properties, geometries
    )
    # Mostly sound features, so that imports also succeed and partial imports write some.
    sound = st.builds(
        lambda code, name, ring: {
            "type": "Feature",
            "properties": {"code": code, "name": name},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        },
        codes,
        st.text(max_size=10),
        good_ring,
    )
    return st.one_of(
        sound,
        sound,
        feature,
        feature,
        st.sampled_from(
            [{"type": "Feature"}, {"type": "Feature", "properties": None, "geometry": None}, [], 1]
        ),
    )


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def _document(codes: st.SearchStrategy) -> st.SearchStrategy:
    collection = st.builds(
        lambda fs: {"type": "FeatureCollection", "features": fs}, st.lists(_feature(codes), max_size=4)
    )
    texts = collection.map(lambda d: json.dumps(d, ensure_ascii=False, allow_nan=True))
    broken = st.one_of(
        texts.flatmap(lambda t: st.integers(0, max(len(t) - 1, 0)).map(lambda n: t[:n])),  # truncated
        st.integers(min_value=10, max_value=100_000).map(_deep),
        st.integers(min_value=10, max_value=20_000).map(
            lambda d: json.dumps(
                {
                    "type": "FeatureCollection",
                    "features": [
                        {
                            "type": "Feature",
                            "properties": {"code": f"{COMMUNITY}001", "name": "深"},
                            "geometry": {"type": "Polygon", "coordinates": "@"},
                        }
                    ],
                }
            ).replace('"@"', _deep(d))
        ),
        st.sampled_from(
            [
                "",
                "null",
                "[]",
                '"FeatureCollection"',
                '{"type": "FeatureCollection"}',
                '{"type": "FeatureCollection", "features": {}}',
                '{"type": "FeatureCollection", "features": "x"}',
                '{"type": "Feature", "properties": {"code": "440803001001001"}, "geometry": null}',
                "\ufeff{}",
            ]
        ),
        st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    )
    return st.one_of(texts, texts, texts, broken)


def _import_once(level: str, text: str, partial: bool) -> None:
    before = unit_counts()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.geojson"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        try:
            report = units_import(level=level, path=path, partial=partial)
        except ImportRejected as exc:
            event(f"rejected: {exc.code}")  # --hypothesis-show-statistics shows the mix
            assert exc.code in IMPORT_CODES, exc.code
            assert {i.error_code for i in exc.issues} <= IMPORT_CODES, exc.issues
            assert all(_is_chinese(i.message) for i in exc.issues)
            assert unit_counts() == before, "a rejected import must write nothing"
            return
        except GridError as exc:
            assert exc.code in IMPORT_CODES, exc.code
            assert unit_counts() == before
            return
    event("imported, some rejected" if report.errors else "imported")
    assert {i.error_code for i in report.issues} <= IMPORT_CODES
    assert partial or not report.errors
    assert report.created + report.updated + report.unchanged + report.rejected == report.total


def _is_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_random_geojson_grids_are_imported_or_refused_with_a_code(community):
    @_bounded(200)
    @given(text=_document(grid_codes), partial=st.booleans())
    def check(text, partial):
        _import_once("grid", text, partial)

    check()


def test_random_geojson_buildings_are_imported_or_refused_with_a_code(community):
    @_bounded(120)
    @given(text=_document(building_codes), partial=st.booleans())
    def check(text, partial):
        _import_once("building", text, partial)

    check()


# --------------------------------------------------------------------------------------------
# Roster CSV
# --------------------------------------------------------------------------------------------


@pytest.fixture
def roster_world(community):
    committee = StreetCommitteeFactory(street=community.street)
    org = CommunityOrgFactory(community=community, parent=committee, code="ORG-FUZZ")
    BuildingFactory(community=community, code="B-ROSTER", geom=square(X0 + 0.001, Y0 + 0.001, 0.0005))
    return org


cells = st.one_of(
    st.sampled_from(
        ["男", "女", "在职", "离退休", "正式党员", "预备党员", "ORG-FUZZ", "B-ROSTER", COMMUNITY]
    ),
    st.integers(min_value=1, max_value=40).map(make_id_number),
    st.sampled_from(["13800138000", "2024-06-01", "2024年6月", "20240230", "1899-13-45", "0", "-1"]),
    st.sampled_from(["=1+1", "+cmd|' /C calc'!A0", "@SUM(A1)", '=HYPERLINK("http://x")', "-2+3"]),
    st.sampled_from(["\x00", "a\x00b", "\x1b[0m", "\r", "\u202e反转", "\ufeff", "' OR 1=1 --"]),
    st.text(max_size=20),
    st.sampled_from([100, 5_000, 131_073]).map(lambda n: "长" * n),  # 131073: beyond csv's field limit
)
ROSTER_HEADERS = list(roster.HEADERS)


def _good_row(n: int) -> list[str]:
    return [
        f"党员{n}",
        "男",
        "",
        make_id_number(n),
        "13800138000",
        "ORG-FUZZ",
        "B-ROSTER",
        "在职",
        "正式党员",
        "2001-07-01",
        "某公司",
        COMMUNITY,
        "2024-06",
    ]


@st.composite
def nearly_good_rows(draw) -> list[str]:
    """A row that would import, with up to two cells replaced: reaches the write path."""
    row = _good_row(draw(st.integers(min_value=1, max_value=40)))
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        row[draw(st.integers(min_value=0, max_value=len(row) - 1))] = draw(cells)
    return row


@st.composite
def roster_files(draw) -> bytes:
    headers = draw(
        st.one_of(
            st.just(ROSTER_HEADERS),
            st.permutations(ROSTER_HEADERS),
            st.lists(st.sampled_from([*ROSTER_HEADERS, "", "=A1", "\x00"]), max_size=14),
        )
    )
    rows = draw(
        st.lists(
            st.one_of(nearly_good_rows(), st.lists(cells, min_size=0, max_size=len(headers) + 2)), max_size=4
        )
    )
    lines = [headers, *rows]
    text = "\n".join(",".join(_csv_cell(c) for c in line) for line in lines)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "utf-16", "latin-1-bytes"]))
    if encoding == "latin-1-bytes":
        return draw(st.binary(max_size=300))
    return text.encode(encoding, "replace") if encoding != "gb18030" else text.encode(encoding, "ignore")


def _csv_cell(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\n\r') else value


def test_random_roster_csv_is_imported_or_reported(roster_world):
    street = roster_world.street

    @_bounded(100)
    @given(raw=roster_files(), partial=st.booleans())
    def check(raw, partial):
        before = (PartyMember.objects.count(), AuditEvent.objects.count())
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "名册.csv"
            path.write_bytes(raw)
            try:
                report = roster.members_import(path=path, partial=partial, street=street)
            except OrgError as exc:
                assert exc.code in ROSTER_FILE_CODES, exc.code
                assert _is_chinese(exc.message)
                assert (PartyMember.objects.count(), AuditEvent.objects.count()) == before
                return
        event("written" if report.written else "reported")
        assert {e.code for e in report.errors} <= ROSTER_ROW_CODES, report.errors
        assert all(_is_chinese(e.message) for e in report.errors)
        if report.errors and not partial:
            assert not report.written
            assert (PartyMember.objects.count(), AuditEvent.objects.count()) == before
        if report.written:
            assert PartyMember.objects.count() == before[0] + report.created

    check()


# --------------------------------------------------------------------------------------------
# What the fuzzers found, pinned as plain examples
# --------------------------------------------------------------------------------------------


def _write_geojson(folder: Path, features: list[dict]) -> Path:
    path = folder / "found.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path


def test_an_unclosed_ring_rejects_that_feature_not_the_whole_read(community, tmp_path):
    good = _ring(X0, Y0, 0.002)
    features = [
        {
            "type": "Feature",
            "properties": {"code": f"{COMMUNITY}001", "name": "好"},
            "geometry": {"type": "Polygon", "coordinates": [good]},
        },
        {
            "type": "Feature",
            "properties": {"code": f"{COMMUNITY}002", "name": "未闭合"},
            "geometry": {"type": "Polygon", "coordinates": [_ring(X0 + 0.005, Y0, 0.002)[:-1]]},
        },
        {
            "type": "Feature",
            "properties": {"code": f"{COMMUNITY}003", "name": "两点"},
            "geometry": {"type": "Polygon", "coordinates": [good[:2]]},
        },
    ]
    before = unit_counts()
    with pytest.raises(ImportRejected) as exc:
        units_import(level="grid", path=_write_geojson(tmp_path, features))
    assert unit_counts() == before
    assert {(i.index, i.error_code) for i in exc.value.issues if i.severity == "error"} == {
        (2, "geometry_invalid"),
        (3, "geometry_invalid"),
    }
    report = units_import(level="grid", path=_write_geojson(tmp_path, features), partial=True)
    assert report.created == 1 and report.rejected == 2


@pytest.mark.parametrize(("name", "resp_body"), [("甲\x00乙", ""), ("网格", "物业\x00"), ("\x1b[31m红", "")])
def test_a_control_character_in_a_unit_csv_is_value_invalid_not_a_copy_error(
    community, tmp_path, name, resp_body
):
    path = tmp_path / "grids.csv"
    x, y = X0, Y0
    wkt = f"POLYGON(({x} {y},{x + 0.001} {y},{x + 0.001} {y + 0.001},{x} {y}))"
    path.write_text(f'code,name,resp_body,wkt\n{COMMUNITY}001,{name},{resp_body},"{wkt}"\n', encoding="utf-8")
    before = unit_counts()
    with pytest.raises(ImportRejected) as exc:
        units_import(level="grid", path=path, crs="wgs84")
    assert [(i.index, i.error_code) for i in exc.value.issues if i.severity == "error"] == [
        (1, "value_invalid")
    ]
    assert unit_counts() == before


def _roster_csv(folder: Path, rows: list[list[str]]) -> Path:
    path = folder / "名册.csv"
    text = "\n".join(",".join(_csv_cell(c) for c in row) for row in [ROSTER_HEADERS, *rows])
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["甲\x00乙", "\x1b[31m红", "退格\x08"])
def test_a_control_character_in_a_roster_cell_is_a_row_error_not_a_database_error(
    roster_world, tmp_path, name
):
    row = _good_row(1)
    row[0] = name
    before = (PartyMember.objects.count(), AuditEvent.objects.count())
    report = roster.members_import(
        path=_roster_csv(tmp_path, [row, _good_row(2)]), street=roster_world.street
    )
    assert [(e.row, e.code) for e in report.errors] == [(2, "value_invalid")]
    assert not report.written
    assert (PartyMember.objects.count(), AuditEvent.objects.count()) == before
    partial = roster.members_import(
        path=_roster_csv(tmp_path, [row, _good_row(2)]), street=roster_world.street, partial=True
    )
    assert partial.created == 1 and PartyMember.objects.filter(name="党员2").exists()


def test_a_roster_cell_beyond_the_csv_field_limit_is_file_unreadable(roster_world, tmp_path):
    row = _good_row(1)
    row[10] = "长" * 131_073
    with pytest.raises(OrgError) as exc:
        roster.members_import(path=_roster_csv(tmp_path, [row]), street=roster_world.street)
    assert exc.value.code == "file_unreadable"
    assert not PartyMember.objects.filter(name="党员1").exists()


def test_a_roster_file_over_the_size_limit_is_refused_before_reading(roster_world, tmp_path, monkeypatch):
    monkeypatch.setattr(roster, "MAX_FILE_BYTES", 1024)
    path = _roster_csv(tmp_path, [_good_row(n) for n in range(1, 30)])
    with pytest.raises(OrgError) as exc:
        roster.members_import(path=path, street=roster_world.street)
    assert exc.value.code == "file_too_large"
    assert not PartyMember.objects.exists()
