"""Field events of the demo data set (data/demo_events.py): visits and station contacts.

The module fixture builds the demo scale four times inside one transaction rolled back at the end
(as test_make_demo does): seed 7, the same again (a re-run), seed 8 over a left-over street of an
earlier district build (a shrink, cheaply: the district build itself takes a minute), and seed 7
once more. Foreign keys are deferred until commit, which never comes here, so each build is
followed by SET CONSTRAINTS ALL IMMEDIATE: a clean-up in the wrong order fails the fixture.
"""

import uuid
from datetime import date, datetime, time, timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from data import demo_events, demo_orgs, demo_space
from data.demo import demo_build
from grid import coords
from grid.models import Building, Community, GridCell, Street
from orgs.models import GridWorker, StationContact, StationedCadre, Visit
from tests.factories import BuildingFactory, CommunityFactory, GridCellFactory, StreetFactory, multi, square

pytestmark = pytest.mark.django_db

SEED = 7
TODAY = date(2026, 3, 10)  # the window is 2026-01-09 .. 2026-03-09; February lies wholly inside
HAIBIN = "440803006"
LEFTOVER_STREET = "440803001"  # a street of the district scale, not of the demo scale


def _rows(sql, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchall()


def _one(sql, params=None):
    return _rows(sql, params)[0][0]


def _demo_visits():
    return Visit.objects.filter(reporter__username=demo_events.REPORTER_USERNAME)


def _check_foreign_keys():
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def _fingerprint():
    """Every demo event's id and content (all columns but received_at and foreign-key ids, which
    differ between builds), per table."""
    out = {}
    for table in ("orgs_visit", "orgs_stationcontact"):
        cols = [r[0] for r in _rows(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
            "AND column_name NOT IN ('received_at', 'reporter_id') AND column_name NOT LIKE '%%_id' "
            "ORDER BY column_name", [table])]
        expr = "concat_ws('|', " + ", ".join(f't."{c}"::text' for c in cols) + ")"
        out[table] = _rows(
            f"SELECT count(*), md5(string_agg({expr}, ',' ORDER BY t.id)) FROM \"{table}\" t "  # noqa: S608
            "JOIN auth_user u ON u.id = t.reporter_id WHERE u.username = %s", [demo_events.REPORTER_USERNAME])[0]
    return out


def _leftover_street(user):
    """What a district build leaves beyond 海滨街道: a street with a community, a grid cell, a
    building, a grid worker and a stationed cadre, and events pointing at them, one of the demo's
    and one synced by a real account."""
    street = StreetFactory(code=LEFTOVER_STREET, name="测试遗留街道")
    community = CommunityFactory(street=street, geom=multi(square(110.30, 21.15, 0.01)))
    cell = GridCellFactory(community=community, boundary=square(110.30, 21.15, 0.01))
    building = BuildingFactory(community=community, geom=square(110.302, 21.152, 0.0002))
    worker = GridWorker.objects.create(name="遗留网格员", community=community, phone_hash="x" * 64)
    cadre = StationedCadre.objects.create(name="遗留干部", community=community, period_start=date(2026, 1, 1))
    demo_user = get_user_model().objects.get(username=demo_events.REPORTER_USERNAME)
    at = datetime(2026, 2, 3, 10, 0, tzinfo=timezone.get_current_timezone())
    common = {"occurred_at": at, "place": building.point, "community": community, "grid_cell": cell,
              "payload_hash": "p"}
    Visit.objects.create(id=uuid.uuid4(), reporter=demo_user, reporter_name="演示", kind="household",
                         worker=worker, building=building, **common)
    Visit.objects.create(id=uuid.uuid4(), reporter=user, reporter_name="真实", kind="other", **common)
    StationContact.objects.create(id=uuid.uuid4(), reporter=user, reporter_name="真实", kind="check_in",
                                  cadre=cadre, **common)


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        first = demo_build(scale="demo", seed=SEED, today=TODAY)
        _check_foreign_keys()
        before = _fingerprint()
        # A visit synced by a real account in the demo street: the generator must leave it alone.
        user = get_user_model().objects.create(username="real-worker")
        building = Building.objects.filter(community__street__code=HAIBIN).order_by("code").first()
        real = Visit.objects.create(
            id=uuid.uuid4(), occurred_at=timezone.make_aware(datetime.combine(TODAY - timedelta(days=2), time(10))),
            reporter=user, reporter_name="真实网格员", kind="building", place=building.point,
            community=building.community, grid_cell=building.grid_cell, building=building, payload_hash="p")
        second = demo_build(scale="demo", seed=SEED, today=TODAY)
        _check_foreign_keys()
        after_rerun = _fingerprint()
        real_survived = Visit.objects.filter(id=real.id).exists()

        _leftover_street(user)
        shrink = demo_build(scale="demo", seed=SEED + 1, today=TODAY)
        _check_foreign_keys()
        leftover_gone = not Street.objects.filter(code=LEFTOVER_STREET).exists()
        seed8_fingerprint = _fingerprint()

        third = demo_build(scale="demo", seed=SEED, today=TODAY)
        _check_foreign_keys()
        yield {"first": first, "second": second, "shrink": shrink, "third": third, "before": before,
               "after_rerun": after_rerun, "real_survived": real_survived, "leftover_gone": leftover_gone,
               "seed8": seed8_fingerprint, "after_third": _fingerprint()}
        transaction.set_rollback(True)


def test_the_demo_scale_has_visits_and_contacts_in_haibin(demo):
    visits, contacts = _demo_visits(), StationContact.objects.all()
    assert 1000 <= visits.count() <= 3000
    assert 150 <= contacts.count() <= 600
    assert set(visits.values_list("community__street__code", flat=True).distinct()) == {HAIBIN}
    assert set(contacts.values_list("community__street__code", flat=True).distinct()) == {HAIBIN}
    assert set(visits.values_list("kind", flat=True).distinct()) == set(Visit.Kind.values)
    # Check-ins and contacts; the demo does not generate check-outs (the tablet's newer way to
    # give a dwell time), so its cadres' attendance comes from their check-ins alone.
    expected_kinds = set(StationContact.Kind.values) - {StationContact.Kind.CHECK_OUT}
    assert set(contacts.values_list("kind", flat=True).distinct()) == expected_kinds
    # Workers visit their own grids' buildings; contacts belong to their cadre's community.
    assert _one("""SELECT count(*) FROM orgs_visit v WHERE v.kind <> 'other' AND v.worker_id IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM orgs_gridworker_grid_cells x
                                   WHERE x.gridworker_id = v.worker_id AND x.gridcell_id = v.grid_cell_id)""") == 0
    assert not visits.filter(worker__isnull=True).exists()
    assert _one("""SELECT count(*) FROM orgs_stationcontact c JOIN orgs_stationedcadre t ON t.id = c.cadre_id
                   WHERE t.community_id <> c.community_id""") == 0
    counts = demo["third"].events.counts
    assert counts["visits"] == visits.count() and counts["station_contacts"] == contacts.count()
    # The demo account that owns them cannot sign in.
    owner = get_user_model().objects.get(username=demo_events.REPORTER_USERNAME)
    assert not owner.is_active and not owner.has_usable_password()


def test_every_visit_counts_in_the_grid_cell_holding_its_place_that_day(demo):
    assert not Visit.objects.filter(grid_cell__isnull=True).exists()
    (outside,), = _rows("""
        SELECT count(*) FROM orgs_visit v
        LEFT JOIN grid_gridboundary gb ON gb.cell_id = v.grid_cell_id
          AND gb.valid @> (v.occurred_at AT TIME ZONE 'Asia/Shanghai')::date AND ST_Covers(gb.geom, v.place)
        WHERE gb.id IS NULL""")
    assert outside == 0
    # The place is the visited building where there is one; the community is the grid's.
    assert _one("""SELECT count(*) FROM orgs_visit v JOIN grid_building b ON b.id = v.building_id
                   WHERE NOT ST_Equals(v.place, b.point) OR v.community_id <> b.community_id""") == 0
    assert _one("""SELECT count(*) FROM orgs_visit v JOIN grid_gridcell g ON g.id = v.grid_cell_id
                   WHERE g.community_id <> v.community_id""") == 0


def test_times_are_working_hours_of_the_60_days_before_today(demo):
    local = _rows("SELECT (occurred_at AT TIME ZONE 'Asia/Shanghai') FROM orgs_visit "
                  "UNION ALL SELECT (occurred_at AT TIME ZONE 'Asia/Shanghai') FROM orgs_stationcontact")
    days = {t.date() for (t,) in local}
    assert min(days) >= TODAY - timedelta(days=60) and max(days) == TODAY - timedelta(days=1)
    assert all(time(8, 30) <= t.time() < time(18, 0) for (t,) in local)
    weekend = sum(1 for (t,) in local if t.weekday() >= 5)
    assert 0 < weekend < 0.1 * len(local)


def test_positions_are_near_the_subject_and_a_few_far_away(demo):
    subject = _demo_visits().filter(distance_to_subject_m__isnull=False)
    assert subject.count() == _demo_visits().exclude(kind="other").count()
    far = subject.filter(distance_to_subject_m__gt=300).count()
    assert 1 <= far <= 0.05 * subject.count()
    assert subject.filter(distance_to_subject_m__lte=15).count() >= 0.9 * subject.count()
    assert not _demo_visits().exclude(accuracy_m__range=(5, 30)).exists()
    # The captured value, converted from its CRS, is the stored point.
    for v in _demo_visits().order_by("id")[:50]:
        lon, lat = coords.to_wgs84(v.captured_lon, v.captured_lat, coords.parse_crs(v.captured_crs))
        assert abs(lon - v.point.x) < 1e-7 and abs(lat - v.point.y) < 1e-7
    assert {"gcj02", "wgs84"} == set(_demo_visits().values_list("captured_crs", flat=True).distinct())


def test_some_residential_buildings_are_never_visited(demo):
    residential = Building.objects.filter(kind__in=["residential", "mixed"], households__gt=0)
    # Counted over the demo's own visits (the fixture adds one synced by a real account).
    unvisited = _one("""SELECT count(*) FROM grid_building b WHERE b.kind IN ('residential', 'mixed')
                        AND b.households > 0 AND NOT EXISTS (SELECT 1 FROM orgs_visit v JOIN auth_user u
                          ON u.id = v.reporter_id AND u.username = %s WHERE v.building_id = b.id)""",
                     [demo_events.REPORTER_USERNAME])
    assert 0.05 * residential.count() <= unvisited <= 0.25 * residential.count()
    # Concentrated: grids without a worker, and a few neglected grids; most grids are fully visited.
    per_grid = _rows("""SELECT g.code, count(*) FILTER (WHERE NOT EXISTS
                          (SELECT 1 FROM orgs_visit v WHERE v.building_id = b.id)), count(*)
                        FROM grid_building b JOIN grid_gridcell g ON g.id = b.grid_cell_id
                        WHERE b.kind IN ('residential', 'mixed') AND b.households > 0 GROUP BY g.code""")
    partly = [code for code, missing, _n in per_grid if missing]
    assert 2 <= len(partly) <= 0.35 * len(per_grid)
    assert demo["third"].events.gaps["unvisited_buildings"] == unvisited


def test_cadre_check_ins_per_month_are_as_designed(demo):
    # February 2026 lies wholly in the window: on-site check-in days per cadre against the rule.
    feb = _rows("""
        SELECT t.name, t.required_days_per_month, t.required_contacts_per_month,
               count(DISTINCT (c.occurred_at AT TIME ZONE 'Asia/Shanghai')::date)
                 FILTER (WHERE c.kind = 'check_in' AND c.on_site),
               count(*) FILTER (WHERE c.kind = 'check_in' AND NOT c.on_site),
               count(*) FILTER (WHERE c.kind = 'contact')
        FROM orgs_stationedcadre t JOIN orgs_stationcontact c ON c.cadre_id = t.id
        WHERE (c.occurred_at AT TIME ZONE 'Asia/Shanghai')::date BETWEEN '2026-02-01' AND '2026-02-28'
        GROUP BY t.id""")
    assert len(feb) == StationedCadre.objects.count()
    below = [name for name, required, _rc, days, _off, _n in feb if days < required]
    assert below == [name for _code, name in demo["third"].events.cadres_below]
    assert len(below) == 1
    for name, required, required_contacts, days, _off, contacts in feb:
        if name in below:
            assert days <= required // 2 + 1 and contacts < required_contacts
        else:
            assert required <= days <= required + 1 and required_contacts <= contacts <= required_contacts + 2
    off_site = StationContact.objects.filter(kind="check_in", on_site=False).count()
    assert 1 <= off_site <= 0.1 * StationContact.objects.filter(kind="check_in").count()
    # on_site is where the captured point is, not where the contact counts.
    assert _one("""SELECT count(*) FROM orgs_stationcontact c JOIN grid_community m ON m.id = c.community_id
                   WHERE c.on_site <> ST_Covers(m.geom, c.point)""") == 0


def test_a_rerun_changes_nothing_and_leaves_synced_events_alone(demo):
    second = demo["second"]
    assert not second.changed, (second.created, second.updated, second.deleted)
    assert second.created["visits"] == second.created["station_contacts"] == 0
    assert second.deleted["visits"] == second.deleted["station_contacts"] == 0
    assert demo["after_rerun"] == demo["before"]
    assert demo["real_survived"]
    assert Visit.objects.filter(reporter__username="real-worker", community__street__code=HAIBIN).exists()


def test_another_seed_over_a_leftover_street_replaces_the_events_without_breaking_keys(demo):
    shrink = demo["shrink"]
    assert demo["leftover_gone"]
    assert shrink.deleted["streets"] == 1 and shrink.deleted["stationed_cadres"] >= 1
    # The leftover street's events go, a real account's too (what they point at is gone), and
    # every event of seed 7 is replaced by seed 8's.
    assert shrink.deleted["visits"] >= demo["first"].events.counts["visits"] + 2
    assert shrink.deleted["station_contacts"] >= demo["first"].events.counts["station_contacts"] + 1
    assert not StationContact.objects.filter(cadre__name="遗留干部").exists()
    assert demo["seed8"] != demo["before"]
    assert not Community.objects.filter(code__startswith=LEFTOVER_STREET).exists()
    assert not GridCell.objects.filter(code__startswith=LEFTOVER_STREET).exists()


def test_the_same_seed_and_day_give_the_same_ids_and_rows(demo):
    assert demo["after_third"] == demo["before"]
    space = demo_space.build_space(scale="demo", seed=SEED)
    orgs = demo_orgs.build_orgs(space=space, today=TODAY, rules=settings.WANGGE_RULES)
    a = demo_events.build_events(space=space, orgs=orgs, today=TODAY)
    b = demo_events.build_events(space=space, orgs=orgs, today=TODAY)
    assert a.visits == b.visits and a.contacts == b.contacts
    stored = set(Visit.objects.values_list("id", flat=True)) | set(StationContact.objects.values_list("id", flat=True))
    assert {uuid.UUID(r[0]) for r in a.visits + a.contacts} <= stored
    # Ids are uuid5 of a fixed namespace and the event's identity.
    assert demo_events.event_id("7|visit|4408030060010001|739650") == str(
        uuid.uuid5(demo_events.EVENT_NAMESPACE, "7|visit|4408030060010001|739650"))
    # A day later only the window's edges change: ids of the days in both windows stay.
    c = demo_events.build_events(space=space, orgs=orgs, today=TODAY + timedelta(days=1))
    inner = TODAY - timedelta(days=30)
    assert {r[0] for r in a.visits if r[1] == inner.isoformat()} == {r[0] for r in c.visits if r[1] == inner.isoformat()}
