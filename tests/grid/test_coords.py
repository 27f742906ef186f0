"""Tests for grid.coords: WGS-84/GCJ-02/BD-09 conversions, CRS vocabulary, geodesic measures.

Plain pytest, no Django and no database: grid.coords is pure numpy/pyproj/shapely.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyproj
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box, shape

from grid import coords
from grid.coords import (
    CoordinatesOutOfRange,
    UnknownCRS,
    bd09_to_gcj02,
    bd09_to_wgs84,
    check_in_range,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    geodesic_area_m2,
    geodesic_length_m,
    geometry_to_wgs84,
    inside_china,
    parse_crs,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
XIASHAN = DATA_DIR / "xiashan_440803_gcj02.geojson"

GEOD = pyproj.Geod(ellps="WGS84")

# Forward conversions must reproduce published values to this many degrees (~0.1 m).
FORWARD_TOL_DEG = 1e-6
# What "exact" means for the iterated inverses.
ROUND_TRIP_TOL_M = 1e-3


def distance_m(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Geodesic distance in metres (vectorised) — errors are judged in metres, not degrees."""
    _, _, dist = GEOD.inv(lon1, lat1, lon2, lat2)
    return np.asarray(dist, dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# Reference vectors, all as (lon, lat). Each cites where the numbers come from.
# ---------------------------------------------------------------------------------------------

WGS_TO_GCJ_VECTORS = [
    pytest.param(
        # googollee/eviltransform go/transform_test.go (also python/test.py, csharp/EvilTransformUnitTest.cs): "shanghai"
        (121.5272106, 31.1774276),
        (121.531541859215, 31.17530398364597),
        id="shanghai-eviltransform",
    ),
    pytest.param(
        # googollee/eviltransform go/transform_test.go: "shenzhen" (Guangdong)
        (113.912316, 22.543847),
        (113.9171764808363, 22.540796131694766),
        id="shenzhen-eviltransform",
    ),
    pytest.param(
        # googollee/eviltransform go/transform_test.go: "beijing"
        (116.377817, 39.911954),
        (116.38404722455657, 39.91334545536069),
        id="beijing-eviltransform",
    ),
    pytest.param(
        # wandergis/coordtransform README.md, "wgs84togcj02" example result (Beijing, Tian'anmen);
        # the same numbers are asserted in dromara/hutool
        # hutool-core/src/test/java/cn/hutool/core/util/CoordinateUtilTest.java (wgs84ToGcj02Test)
        (116.404, 39.915),
        (116.41024449916938, 39.91640428150164),
        id="beijing-wandergis",
    ),
    pytest.param(
        # bing-framework/Bing.Utils tests/Bing.Utils.Tests/Bing/Maths/CoordinateConvTest.cs,
        # Test_WGS84ToGCJ02 (Guangzhou, Guangdong)
        (113.331073, 23.112214),
        (113.33650811893553, 23.109627055413704),
        id="guangzhou-bing-utils",
    ),
    pytest.param(
        # Zhanjiang (Xiashan district). No published vector found for Zhanjiang, so this one was
        # COMPUTED with an independent implementation, the PyPI package coord-convert 0.2.1
        # (coord_convert/transform.py, wgs2gcj), which reproduces every published vector above.
        (110.4, 21.2),
        (110.4045418444822, 21.19765419564575),
        id="zhanjiang-computed-coord-convert",
    ),
]

BD_VECTORS = [
    pytest.param(
        # wandergis/coordtransform README.md, "gcj02tobd09" example result (Beijing)
        "gcj02",
        (116.404, 39.915),
        (116.41036949371029, 39.92133699351021),
        id="beijing-gcj-wandergis",
    ),
    pytest.param(
        # bing-framework/Bing.Utils tests/Bing.Utils.Tests/Bing/Maths/CoordinateConvTest.cs, Test_GCJ02ToBD09
        "gcj02",
        (113.331073, 23.112214),
        (113.33762320331894, 23.117908090871566),
        id="guangzhou-gcj-bing-utils",
    ),
    pytest.param(
        # bing-framework/Bing.Utils tests/Bing.Utils.Tests/Bing/Maths/CoordinateConvTest.cs, Test_WGS84ToBD09
        "wgs84",
        (113.331073, 23.112214),
        (113.34306682663143, 23.115290783030787),
        id="guangzhou-wgs-bing-utils",
    ),
    pytest.param(
        # dromara/hutool hutool-core/src/test/java/cn/hutool/core/util/CoordinateUtilTest.java,
        # wgs84toBd09Test2 (values checked there against tool.lu/coordinate; Heilongjiang/Jilin)
        "wgs84",
        (122.99395597, 44.99804071),
        (123.00636516028885, 45.00636909189589),
        id="northeast-wgs-hutool",
    ),
    pytest.param(
        # Zhanjiang: COMPUTED with PyPI coord-convert 0.2.1 (coord_convert/transform.py, wgs2bd).
        "wgs84",
        (110.4, 21.2),
        (110.41096436233478, 21.20397307723206),
        id="zhanjiang-wgs-computed-coord-convert",
    ),
]


@pytest.mark.parametrize(("wgs", "gcj"), WGS_TO_GCJ_VECTORS)
def test_wgs84_to_gcj02_matches_published_vectors(wgs, gcj):
    lon, lat = wgs84_to_gcj02(*wgs)
    assert lon == pytest.approx(gcj[0], abs=FORWARD_TOL_DEG)
    assert lat == pytest.approx(gcj[1], abs=FORWARD_TOL_DEG)


@pytest.mark.parametrize(("wgs", "gcj"), WGS_TO_GCJ_VECTORS)
def test_gcj02_to_wgs84_inverts_published_vectors(wgs, gcj):
    # eviltransform's own "exact" inverse only promises 0.5 m; ours must land on the published
    # WGS-84 point as closely as the published GCJ digits allow (a few mm at most).
    lon, lat = gcj02_to_wgs84(*gcj)
    assert distance_m(lon, lat, *wgs) < 0.01


@pytest.mark.parametrize(("source", "src", "bd"), BD_VECTORS)
def test_to_bd09_matches_published_vectors(source, src, bd):
    convert = gcj02_to_bd09 if source == "gcj02" else wgs84_to_bd09
    lon, lat = convert(*src)
    assert lon == pytest.approx(bd[0], abs=FORWARD_TOL_DEG)
    assert lat == pytest.approx(bd[1], abs=FORWARD_TOL_DEG)


@pytest.mark.parametrize(("source", "src", "bd"), BD_VECTORS)
def test_from_bd09_inverts_published_vectors(source, src, bd):
    convert = bd09_to_gcj02 if source == "gcj02" else bd09_to_wgs84
    lon, lat = convert(*bd)
    assert distance_m(lon, lat, *src) < 0.01


def test_bd09_to_gcj02_is_closer_than_the_published_one_step_inverse():
    # wandergis/coordtransform README.md, "bd09togcj02" of (116.404, 39.915) gives
    # (116.39762729119315, 39.90865673957631) with the one-step approximation. Ours differs from
    # it by centimetres, but unlike it, maps back onto the input exactly.
    lon, lat = bd09_to_gcj02(116.404, 39.915)
    assert distance_m(lon, lat, 116.39762729119315, 39.90865673957631) < 0.5
    back = gcj02_to_bd09(lon, lat)
    assert distance_m(*back, 116.404, 39.915) < ROUND_TRIP_TOL_M
    approx_back = gcj02_to_bd09(116.39762729119315, 39.90865673957631)
    assert distance_m(*approx_back, 116.404, 39.915) > 0.01


# ---------------------------------------------------------------------------------------------
# Inverse accuracy over China
# ---------------------------------------------------------------------------------------------


def _random_china_points(n: int = 10_000) -> tuple[np.ndarray, np.ndarray]:
    # Seeded so failures reproduce. The box is mainland China's extent, kept clear of the GCJ box
    # edges (where the offset switches on and off and no exact inverse exists).
    rng = np.random.default_rng(20240601)
    return rng.uniform(73.6, 134.7, n), rng.uniform(3.9, 53.5, n)


def test_round_trip_wgs_gcj_wgs_arrays_under_1mm():
    lon, lat = _random_china_points()
    g_lon, g_lat = wgs84_to_gcj02(lon, lat)
    w_lon, w_lat = gcj02_to_wgs84(g_lon, g_lat)
    assert w_lon.shape == lon.shape
    assert w_lat.dtype == np.float64
    assert distance_m(w_lon, w_lat, lon, lat).max() < ROUND_TRIP_TOL_M


def test_round_trip_wgs_bd_wgs_arrays_under_1mm():
    lon, lat = _random_china_points()
    w_lon, w_lat = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
    assert distance_m(w_lon, w_lat, lon, lat).max() < ROUND_TRIP_TOL_M


def test_round_trip_gcj_bd_gcj_arrays_under_1mm():
    lon, lat = _random_china_points()
    g_lon, g_lat = bd09_to_gcj02(*gcj02_to_bd09(lon, lat))
    assert distance_m(g_lon, g_lat, lon, lat).max() < ROUND_TRIP_TOL_M


def test_random_set_would_catch_the_one_step_inverse():
    # Guard on the test itself: the classic one-step GCJ inverse is metres off somewhere in this
    # set, so the 1 mm round-trip tests above really do require iteration.
    lon, lat = _random_china_points()
    g_lon, g_lat = wgs84_to_gcj02(lon, lat)
    f_lon, f_lat = wgs84_to_gcj02(g_lon, g_lat)
    approx_lon, approx_lat = g_lon - (f_lon - g_lon), g_lat - (f_lat - g_lat)
    assert distance_m(approx_lon, approx_lat, lon, lat).max() > 0.5


@pytest.mark.parametrize(
    "wgs",
    [(116.404, 39.915), (110.4, 21.2), (87.6, 43.8), (126.6, 45.75), (91.1, 29.65), (109.5, 18.25)],
    ids=["beijing", "zhanjiang", "urumqi", "harbin", "lhasa", "sanya"],
)
def test_round_trip_scalars_under_1mm_and_return_floats(wgs):
    gcj = wgs84_to_gcj02(*wgs)
    back = gcj02_to_wgs84(*gcj)
    assert all(type(v) is float for v in (*gcj, *back))
    assert distance_m(*back, *wgs) < ROUND_TRIP_TOL_M

    bd = wgs84_to_bd09(*wgs)
    back_bd = bd09_to_wgs84(*bd)
    assert all(type(v) is float for v in (*bd, *back_bd))
    assert distance_m(*back_bd, *wgs) < ROUND_TRIP_TOL_M


def test_arrays_keep_shape_and_broadcast():
    lon = np.array([[110.40, 110.41], [110.42, 110.43]])
    out_lon, out_lat = wgs84_to_gcj02(lon, 21.2)  # scalar lat broadcast against 2-D lon
    assert out_lon.shape == out_lat.shape == (2, 2)
    expected = wgs84_to_gcj02(110.41, 21.2)
    assert out_lon[0, 1] == pytest.approx(expected[0], abs=1e-12)
    assert out_lat[0, 1] == pytest.approx(expected[1], abs=1e-12)
    back_lon, back_lat = gcj02_to_wgs84(out_lon, out_lat)
    assert back_lon.shape == back_lat.shape == (2, 2)
    assert np.allclose(back_lon, lon, atol=1e-9)
    assert np.allclose(back_lat, 21.2, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# Outside China
# ---------------------------------------------------------------------------------------------

OUTSIDE = [
    (-0.1276, 51.5072),
    (-74.006, 40.7128),
    (139.6917, 35.6895),
    (151.2093, -33.8688),
    (37.6173, 55.7558),
]


@pytest.mark.parametrize("point", OUTSIDE, ids=["london", "new-york", "tokyo", "sydney", "moscow"])
def test_gcj02_is_identity_outside_china(point):
    assert not inside_china(*point)
    assert wgs84_to_gcj02(*point) == point
    assert gcj02_to_wgs84(*point) == point


def test_china_test_is_per_element_in_arrays():
    lon = np.array([116.404, -0.1276, 110.4, 139.6917])
    lat = np.array([39.915, 51.5072, 21.2, 35.6895])
    assert inside_china(lon, lat).tolist() == [True, False, True, False]
    g_lon, g_lat = wgs84_to_gcj02(lon, lat)
    assert g_lon[1] == lon[1]
    assert g_lat[3] == lat[3]
    assert g_lon[0] == pytest.approx(116.41024449916938, abs=FORWARD_TOL_DEG)
    assert abs(g_lon[2] - lon[2]) > 1e-3
    back_lon, back_lat = gcj02_to_wgs84(g_lon, g_lat)
    assert distance_m(back_lon, back_lat, lon, lat).max() < ROUND_TRIP_TOL_M


def test_inside_china_scalar_is_bool():
    assert inside_china(110.4, 21.2) is True
    assert inside_china(21.2, 110.4) is False  # swapped lat/lon


# ---------------------------------------------------------------------------------------------
# CRS vocabulary
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("WGS84", "EPSG:4326"),
        ("wgs-84", "EPSG:4326"),
        ("WGS 84", "EPSG:4326"),
        ("EPSG:4326", "EPSG:4326"),
        ("epsg:4326", "EPSG:4326"),
        ("urn:ogc:def:crs:OGC:1.3:CRS84", "EPSG:4326"),
        ("cgcs2000", "EPSG:4490"),
        ("CGCS2000", "EPSG:4490"),
        ("epsg:4490", "EPSG:4490"),
        ("4490", "EPSG:4490"),
        (" EPSG::4490 ", "EPSG:4490"),
        ("GCJ02", "gcj02"),
        ("gcj-02", "gcj02"),
        ("BD09", "bd09"),
        ("bd-09", "bd09"),
        ("bd09ll", "bd09"),
        ("EPSG:4547", "EPSG:4547"),  # CGCS2000 / 3-degree Gauss-Kruger CM 114E
        ("urn:ogc:def:crs:EPSG::3857", "EPSG:3857"),
    ],
)
def test_parse_crs_accepts_common_spellings(text, expected):
    assert parse_crs(text) == expected


@pytest.mark.parametrize("text", ["foo", "EPSG:999999", "EPSG:5773", "", "   ", "gcj03", "EPSG:abc", "12"])
def test_parse_crs_rejects_junk_with_stable_code(text):
    with pytest.raises(UnknownCRS) as excinfo:
        parse_crs(text)
    assert excinfo.value.code == "crs_unknown"
    assert isinstance(excinfo.value, ValueError)
    assert excinfo.value.detail["crs"] == text


def test_supported_crs_names():
    assert set(coords.SUPPORTED_CRS) == {"wgs84", "cgcs2000", "gcj02", "bd09", "EPSG:n"}


def test_to_wgs84_identity_for_wgs84_and_cgcs2000():
    lon = np.array([110.4, 116.404])
    lat = np.array([21.2, 39.915])
    for crs in ("wgs84", "EPSG:4326", "cgcs2000", "4490"):
        out_lon, out_lat = to_wgs84(lon, lat, crs)
        assert np.array_equal(out_lon, lon)
        assert np.array_equal(out_lat, lat)
    assert to_wgs84(110.4, 21.2, "cgcs2000") == (110.4, 21.2)


def test_to_wgs84_from_gcj02_and_bd09():
    assert (
        distance_m(*to_wgs84(116.41024449916938, 39.91640428150164, "GCJ-02"), 116.404, 39.915)
        < ROUND_TRIP_TOL_M
    )
    assert distance_m(*to_wgs84(113.34306682663143, 23.115290783030787, "bd09"), 113.331073, 23.112214) < 0.01


def test_to_wgs84_from_projected_epsg():
    # EPSG:4547 is CGCS2000 3-degree Gauss-Kruger, central meridian 114E, false easting 500 km:
    # any point with x = 500000 lies on the 114E meridian.
    lon, lat = to_wgs84(500_000.0, 2_340_000.0, "EPSG:4547")
    assert lon == pytest.approx(114.0, abs=1e-9)
    assert 21.0 < lat < 21.3

    # Web Mercator: build the input with pyproj forward, expect the original lon/lat back.
    fwd = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    lons = np.array([110.4, 116.404])
    lats = np.array([21.2, 39.915])
    x, y = fwd.transform(lons, lats)
    out_lon, out_lat = to_wgs84(x, y, "EPSG:3857")
    assert np.allclose(out_lon, lons, atol=1e-9)
    assert np.allclose(out_lat, lats, atol=1e-9)


def test_check_in_range_accepts_valid_degrees():
    for crs in ("wgs84", "cgcs2000", "gcj02", "bd09"):
        check_in_range(np.array([110.4, -179.9, 180.0]), np.array([21.2, -90.0, 90.0]), crs)
    check_in_range(110.4, 21.2, "gcj02")


@pytest.mark.parametrize(
    ("lon", "lat"),
    [
        ([110.4, 21.2], [21.2, 110.4]),  # second point has lat/lon swapped
        ([435_000.0], [2_345_000.0]),  # projected metres declared as degrees
        ([110.4, np.nan], [21.2, 21.2]),  # missing value
        ([-180.5], [0.0]),
    ],
    ids=["swapped", "metres", "nan", "lon-below-range"],
)
@pytest.mark.parametrize("crs", ["wgs84", "cgcs2000", "gcj02", "bd09"])
def test_check_in_range_rejects_impossible_degrees(lon, lat, crs):
    with pytest.raises(CoordinatesOutOfRange) as excinfo:
        check_in_range(np.array(lon), np.array(lat), crs)
    assert excinfo.value.code == "coords_out_of_range"
    assert isinstance(excinfo.value, ValueError)
    assert excinfo.value.detail["count"] >= 1


def test_check_in_range_reports_first_bad_point():
    with pytest.raises(CoordinatesOutOfRange) as excinfo:
        check_in_range(np.array([110.4, 110.5, 21.2]), np.array([21.2, 21.3, 110.4]), "gcj02")
    assert excinfo.value.detail == {"crs": "gcj02", "count": 1, "first_index": 2}


def test_check_in_range_projected_crs_checks_converted_result():
    check_in_range(500_000.0, 2_340_000.0, "EPSG:4547")
    with pytest.raises(CoordinatesOutOfRange):
        check_in_range(1e12, 1e12, "EPSG:4547")


def test_check_in_range_unknown_crs():
    with pytest.raises(UnknownCRS):
        check_in_range(110.4, 21.2, "mercator-ish")


# ---------------------------------------------------------------------------------------------
# Geometries
# ---------------------------------------------------------------------------------------------


def test_geometry_to_wgs84_polygon_square():
    square = box(110.39, 21.19, 110.40, 21.20)  # ~1 km square in Xiashan, GCJ-02
    out = geometry_to_wgs84(square, "gcj02")
    assert isinstance(out, Polygon)
    assert shapely.get_num_coordinates(out) == shapely.get_num_coordinates(square)
    assert out.is_valid
    # Every vertex matches the point conversion exactly (same code path, one vectorised call).
    src = shapely.get_coordinates(square)
    exp_lon, exp_lat = gcj02_to_wgs84(src[:, 0], src[:, 1])
    assert np.allclose(shapely.get_coordinates(out), np.column_stack([exp_lon, exp_lat]), atol=1e-12, rtol=0)
    # The shift is a few hundred metres, not zero and not kilometres.
    shift = distance_m(exp_lon, exp_lat, src[:, 0], src[:, 1])
    assert 100 < shift.min() and shift.max() < 1000


def test_geometry_to_wgs84_multipolygon_with_hole():
    outer = box(110.38, 21.18, 110.40, 21.20)
    hole = box(110.385, 21.185, 110.395, 21.195)
    mp = MultiPolygon(
        [Polygon(outer.exterior.coords, [hole.exterior.coords]), box(110.42, 21.18, 110.43, 21.19)]
    )
    for crs in ("gcj02", "bd09"):
        out = geometry_to_wgs84(mp, crs)
        assert isinstance(out, MultiPolygon)
        assert len(out.geoms) == 2
        assert len(out.geoms[0].interiors) == 1
        assert shapely.get_num_coordinates(out) == shapely.get_num_coordinates(mp)
        assert out.is_valid


def test_geometry_to_wgs84_identity_and_projected():
    square = box(110.39, 21.19, 110.40, 21.20)
    assert geometry_to_wgs84(square, "EPSG:4490") is square
    pt = geometry_to_wgs84(shapely.Point(500_000.0, 2_340_000.0), "EPSG:4547")
    assert pt.x == pytest.approx(114.0, abs=1e-9)


def test_geometry_to_wgs84_keeps_z():
    out = geometry_to_wgs84(shapely.Point(110.4, 21.2, 12.5), "gcj02")
    assert out.has_z
    assert out.z == 12.5


# ---------------------------------------------------------------------------------------------
# Geodesic measures
# ---------------------------------------------------------------------------------------------


def test_geodesic_area_of_one_degree_cell_at_equator():
    # 1 deg x 1 deg at the equator on WGS-84: 12,308.78 km^2 (pyproj Geod.polygon_area_perimeter
    # gives 12308778361.47 m^2). Both windings give the same positive area.
    cell = box(0.0, 0.0, 1.0, 1.0)
    assert geodesic_area_m2(cell) == pytest.approx(12_308.8e6, rel=1e-4)
    assert geodesic_area_m2(Polygon(list(cell.exterior.coords)[::-1])) == pytest.approx(
        geodesic_area_m2(cell)
    )


def test_geodesic_length_known_values():
    # One degree of longitude along the equator is a * pi / 180 = 111,319.49 m on WGS-84.
    equator_degree = 6_378_137.0 * math.pi / 180.0
    assert geodesic_length_m(shapely.LineString([(0, 0), (1, 0)])) == pytest.approx(equator_degree, rel=1e-9)
    assert geodesic_length_m(shapely.Point(1, 1)) == 0.0
    assert geodesic_area_m2(shapely.LineString([(0, 0), (1, 0)])) == 0.0
    assert geodesic_area_m2(Polygon()) == 0.0


def test_geodesic_area_subtracts_holes_and_perimeter_counts_them():
    outer = box(0.0, 0.0, 1.0, 1.0)
    hole = box(0.25, 0.25, 0.75, 0.75)
    # Same winding for shell and hole on purpose: the function must orient them itself.
    holed = Polygon(outer.exterior.coords, [hole.exterior.coords])
    assert geodesic_area_m2(holed) == pytest.approx(
        geodesic_area_m2(outer) - geodesic_area_m2(hole), rel=1e-9
    )
    assert geodesic_length_m(holed) == pytest.approx(
        geodesic_length_m(outer) + geodesic_length_m(hole), rel=1e-9
    )


def _load_xiashan() -> MultiPolygon:
    collection = json.loads(XIASHAN.read_text(encoding="utf-8"))
    assert collection["type"] == "FeatureCollection"
    assert len(collection["features"]) == 1
    feature = collection["features"][0]
    assert feature["properties"]["adcode"] == 440803
    geom = shape(feature["geometry"])
    assert isinstance(geom, MultiPolygon)
    return geom


def test_xiashan_district_area_and_perimeter():
    gcj = _load_xiashan()
    wgs = geometry_to_wgs84(gcj, "gcj02")
    assert isinstance(wgs, MultiPolygon)
    assert len(wgs.geoms) == 2
    assert shapely.get_num_coordinates(wgs) == 319
    assert wgs.is_valid

    area_km2 = geodesic_area_m2(wgs) / 1e6
    perimeter_km = geodesic_length_m(wgs) / 1e3
    # Facts from shared/data/README.md.
    assert area_km2 == pytest.approx(119.15, rel=0.005)
    assert perimeter_km == pytest.approx(60.0, rel=0.01)

    # Tighter regression on the converted outline: 119.0146 km^2 / 59.9856 km. Confirmed with an
    # independent implementation (PyPI coord-convert 0.2.1 gcj2wgs per vertex, then the same
    # pyproj area: 119.014564 km^2). The README's 119.15 km^2 is the area of the raw GCJ-02
    # numbers: GCJ-02 is not a pure shift, its wiggles change areas by ~0.1 %.
    assert area_km2 == pytest.approx(119.0146, abs=0.01)
    assert perimeter_km == pytest.approx(59.9856, abs=0.01)
