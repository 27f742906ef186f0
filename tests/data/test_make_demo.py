"""The demo data set: built once per module at demo scale on real PostGIS, then checked in SQL.

The module fixture runs the generator twice inside one transaction that is rolled back at the
end, so other test modules see an empty database.
"""

import hashlib
import json
from pathlib import Path

import psycopg
import pytest
import shapely
from django.conf import settings
from django.db import connection, transaction

from data import demo_space
from data.demo import DemoGeometryError, demo_build
from grid.coords import geometry_to_wgs84
from grid.models import Building, Community, GridBoundary, GridCell, ServiceCentre, Street

# The marker also tells pytest-django to create the test database; each test then runs in a
# savepoint inside the module fixture's transaction.
pytestmark = pytest.mark.django_db

SEED = 7
OUTLINE_FILE = Path(__file__).resolve().parents[2] / "data" / "xiashan_440803_gcj02.geojson"


def _rows(sql, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchall()


def _building_md5():
    return _rows("SELECT md5(string_agg(encode(ST_AsBinary(geom), 'hex'), ',' ORDER BY code)) FROM grid_building")[0][0]


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        first = demo_build(scale="demo", seed=SEED)
        versions = dict(Community.objects.values_list("code", "data_version"))
        boundaries = GridBoundary.objects.count()
        md5 = _building_md5()
        second = demo_build(scale="demo", seed=SEED)
        yield {
            "first": first, "second": second, "versions": versions, "boundaries": boundaries, "md5": md5,
        }
        transaction.set_rollback(True)


def test_counts_are_in_the_demo_ranges(demo):
    assert list(Street.objects.values_list("code", "name")) == [("440803006", "海滨街道")]
    assert 5 <= Community.objects.count() <= 6
    assert 35 <= GridCell.objects.count() <= 45
    assert 1000 <= Building.objects.count() <= 1500
    assert ServiceCentre.objects.filter(level="street").count() == 1
    assert ServiceCentre.objects.filter(level="community").count() == Community.objects.count()
    assert all(len(c) == 12 for c in Community.objects.values_list("code", flat=True))
    assert all(len(c) == 15 for c in GridCell.objects.values_list("code", flat=True))
    # Building codes are the community code and a 4-digit sequence.
    assert not Building.objects.exclude(code__regex=r"^440803006\d{7}$").exists()
    assert _rows("SELECT count(*) FROM grid_building b JOIN grid_community c ON c.id = b.community_id "
                 "WHERE left(b.code, 12) <> c.code")[0][0] == 0
    summary = demo["first"]
    assert summary.buildings == Building.objects.count()
    assert summary.space.community_ids == dict(Community.objects.values_list("code", "id"))


def test_every_grid_holds_300_to_500_households(demo):
    sums = _rows("SELECT c.code, coalesce(sum(b.households), 0) FROM grid_gridcell c "
                 "LEFT JOIN grid_building b ON b.grid_cell_id = c.id GROUP BY c.code")
    assert sums and all(300 <= hh <= 500 for _code, hh in sums), sums


def test_communities_partition_the_street_and_grids_partition_each_community(demo):
    # Areas in m² on the geography type; tolerances are a few m² over ~2 km².
    (street_area, union_area, sum_area, overlap, outside), = _rows("""
        SELECT ST_Area(s.geom::geography), ST_Area(ST_Union(c.geom)::geography),
               sum(ST_Area(c.geom::geography)),
               (SELECT coalesce(sum(ST_Area(ST_Intersection(a.geom, b.geom)::geography)), 0)
                  FROM grid_community a JOIN grid_community b ON a.id < b.id AND a.geom && b.geom),
               count(*) FILTER (WHERE NOT ST_CoveredBy(c.geom, s.geom))
        FROM grid_street s JOIN grid_community c ON c.street_id = s.id GROUP BY s.id""")
    assert union_area == pytest.approx(street_area, abs=1.0)
    assert sum_area == pytest.approx(street_area, abs=1.0)
    assert overlap < 0.01 and outside == 0

    per_community = _rows("""
        WITH g AS (SELECT c.community_id, gb.geom FROM grid_gridboundary gb
                   JOIN grid_gridcell c ON c.id = gb.cell_id WHERE upper_inf(gb.valid))
        SELECT cm.code, ST_Area(cm.geom::geography), ST_Area(ST_Union(g.geom)::geography),
               sum(ST_Area(g.geom::geography)), count(*) FILTER (WHERE NOT ST_CoveredBy(g.geom, cm.geom))
        FROM grid_community cm JOIN g ON g.community_id = cm.id GROUP BY cm.id""")
    assert len(per_community) == Community.objects.count()
    for code, area, union_area, sum_area, outside in per_community:
        assert union_area == pytest.approx(area, abs=1.0), code
        assert sum_area == pytest.approx(area, abs=1.0), code
        assert outside == 0, code
    (overlap,), = _rows("""
        SELECT coalesce(sum(ST_Area(ST_Intersection(a.geom, b.geom)::geography)), 0)
        FROM grid_gridboundary a JOIN grid_gridboundary b
          ON a.id < b.id AND upper_inf(a.valid) AND upper_inf(b.valid) AND a.geom && b.geom""")
    assert overlap < 0.01


def test_the_street_lies_inside_the_district_outline_and_has_a_plausible_area(demo):
    with OUTLINE_FILE.open(encoding="utf-8") as fh:
        gcj = shapely.geometry.shape(json.load(fh)["features"][0]["geometry"])
    outline = geometry_to_wgs84(gcj, "gcj02")
    (inside, area_km2), = _rows(
        "SELECT bool_and(ST_CoveredBy(geom, ST_GeomFromText(%s, 4326))), sum(ST_Area(geom::geography)) / 1e6 "
        "FROM grid_street", [outline.wkt])
    assert inside
    assert 1.0 < area_km2 < 6.0


def test_every_building_has_a_grid_that_covers_it_and_none_overlap(demo):
    assert not Building.objects.filter(grid_cell__isnull=True).exists()
    (uncovered,), = _rows("""
        SELECT count(*) FROM grid_building b
        JOIN grid_gridboundary gb ON gb.cell_id = b.grid_cell_id AND upper_inf(gb.valid)
        WHERE NOT ST_Covers(gb.geom, b.point) OR NOT ST_CoveredBy(b.geom, gb.geom)""")
    assert uncovered == 0
    assert _rows("SELECT count(*) FROM grid_building b JOIN grid_gridcell c ON c.id = b.grid_cell_id "
                 "WHERE c.community_id <> b.community_id")[0][0] == 0
    (overlapping,), = _rows("""
        SELECT count(*) FROM grid_building a JOIN grid_building b
          ON a.id < b.id AND a.geom && b.geom AND ST_Intersects(a.geom, b.geom)""")
    assert overlapping == 0


def test_same_seed_gives_the_same_data(demo):
    again = demo_space.build_space(scale="demo", seed=SEED)
    stored = dict(Building.objects.values_list("code", "households"))
    assert set(again.buildings.code) == set(stored)
    assert dict(zip(again.buildings.code, again.buildings.households.tolist(), strict=True)) == stored
    assert {g.code for g in again.grids} == set(GridCell.objects.values_list("code", flat=True))
    # The stored footprints are bit-identical to a fresh generation.
    order = sorted(range(len(again.buildings)), key=lambda i: again.buildings.code[i])
    wkb = shapely.to_wkb(again.buildings.geom[order], byte_order=1)
    fresh = hashlib.md5(",".join(w.hex() for w in wkb).encode(), usedforsecurity=False).hexdigest()
    assert fresh == demo["md5"] == _building_md5()
    other = demo_space.build_space(scale="demo", seed=SEED + 1)
    assert other.buildings.geom[0] != again.buildings.geom[0]


def test_a_second_run_changes_nothing(demo):
    second = demo["second"]
    assert not second.changed
    assert sum(second.created.values()) == sum(second.updated.values()) == sum(second.deleted.values()) == 0
    assert second.boundaries_created == second.boundaries_changed == 0
    assert second.boundaries_unchanged == GridCell.objects.count()
    assert GridBoundary.objects.count() == demo["boundaries"] == GridCell.objects.count()
    assert dict(Community.objects.values_list("code", "data_version")) == demo["versions"]


def test_the_demo_street_is_the_same_blocks_in_the_district_partition():
    rand = demo_space._Rand(SEED)
    outline_m = demo_space._reproject(
        __import__("numpy").array([demo_space.district_outline_wgs84()]), demo_space._TO_LOCAL)[0]
    blocks = demo_space._blocks(rand, outline_m)
    alone = demo_space._street_partition(rand, blocks, "demo")
    district = demo_space._street_partition(rand, blocks, "district")
    assert alone["440803006"] == district["440803006"]
    assert len(district) == 20
    every = sorted(b for bl in district.values() for b in bl)
    assert every == list(range(len(blocks)))  # streets tile the district: each block exactly once


def test_a_broken_partition_is_refused_before_anything_is_written(demo, monkeypatch):
    real = demo_space._grow_grids

    def overlapping(*args, **kwargs):
        groups = real(*args, **kwargs)
        return groups + [groups[0]] if len(groups) > 1 else groups

    monkeypatch.setattr(demo_space, "_grow_grids", overlapping)
    before = (Street.objects.count(), GridCell.objects.count(), Building.objects.count(), _building_md5())
    with pytest.raises(DemoGeometryError):
        demo_build(scale="demo", seed=SEED)
    assert (Street.objects.count(), GridCell.objects.count(), Building.objects.count(), _building_md5()) == before


def test_no_other_session_can_replace_the_builds_statistics_while_it_runs(demo):
    """Autovacuum cannot see a build's uncommitted rows: analysing mid-build it would write
    "empty" over the build's own statistics and turn every later join into nested loops over
    thousands of rows (a CI run once hung on it). The build holds the lock that ANALYZE needs, so
    autovacuum skips its tables; other sessions still read and write rows."""
    db = settings.DATABASES["default"]
    other = psycopg.connect(host=db["HOST"], port=db["PORT"], dbname=db["NAME"], user=db["USER"],
                            password=db["PASSWORD"], autocommit=True)
    try:
        other.execute("SET lock_timeout = '300ms'")
        for table in ("grid_building", "orgs_partymember", "orgs_visit"):
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute(f'ANALYZE "{table}"')
        # Reading is not blocked (the build's rows are not visible outside its transaction).
        assert other.execute("SELECT count(*) FROM grid_building").fetchone()[0] == 0
    finally:
        other.close()
    # The statistics the planner uses are this transaction's rows, not autovacuum's "empty".
    reltuples = _rows("SELECT reltuples FROM pg_class WHERE relname = 'grid_building'")[0][0]
    assert reltuples == Building.objects.count()
