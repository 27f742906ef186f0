"""Residents' cases of the demo data set (data/demo_cases.py): a year of them, with seasons,
late steps escalated as the sweep would have, duplicates merged into open cases, send-backs, repeat
places; placed in the grid that held them on their day; a re-run changes nothing.

The module fixture builds the demo scale twice inside one transaction rolled back at the end (as
test_make_demo_events does), checking the foreign keys after each build.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from data import demo_cases, demo_events
from data.demo import demo_build
from grid.access import Reach
from grid.sql import cell_on_day_sql
from orgs import cases_selectors, services
from orgs.cases_models import Case, CaseTransition

pytestmark = pytest.mark.django_db

SEED = 7
TODAY = date(2026, 3, 10)
HAIBIN = "440803006"


def _rows(sql, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchall()


def _one(sql, params=None):
    return _rows(sql, params)[0][0]


def _fingerprint():
    return _rows(
        """SELECT count(*), md5(string_agg(concat_ws('|', c.client_id, c.state, c.version, c.grid_cell_id,
                  c.escalation_level, c.deadline, c.closed_at), ',' ORDER BY c.client_id)),
                  (SELECT count(*) FROM orgs_casetransition)
           FROM orgs_case c"""
    )[0]


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        first = demo_build(scale="demo", seed=SEED, today=TODAY)
        connection.cursor().execute("SET CONSTRAINTS ALL IMMEDIATE")
        connection.cursor().execute("SET CONSTRAINTS ALL DEFERRED")
        before = _fingerprint()
        second = demo_build(scale="demo", seed=SEED, today=TODAY)
        connection.cursor().execute("SET CONSTRAINTS ALL IMMEDIATE")
        connection.cursor().execute("SET CONSTRAINTS ALL DEFERRED")
        yield {"first": first, "second": second, "before": before, "after": _fingerprint()}
        transaction.set_rollback(True)


def test_a_year_of_cases_in_the_demo_street(demo):
    counts = demo["first"].cases.counts
    households = _one("SELECT sum(households) FROM grid_building")
    assert 0.15 * households < counts["cases"] < 0.35 * households
    assert Case.objects.count() == counts["cases"]
    assert CaseTransition.objects.count() == counts["transitions"]
    assert set(Case.objects.values_list("street__code", flat=True).distinct()) == {HAIBIN}
    assert Case.objects.filter(reporter__username=demo_events.REPORTER_USERNAME).count() == counts["cases"]
    first, last = _rows("SELECT min(reported_at), max(reported_at) FROM orgs_case")[0]
    midnight = timezone.make_aware(datetime.combine(TODAY, time.min))
    assert midnight - timedelta(days=366) < first and last < midnight
    # Every state of the loop is there, and the outcomes a ledger shows.
    states = dict(_rows("SELECT state, count(*) FROM orgs_case GROUP BY state"))
    assert states["closed"] > 0.8 * counts["cases"]
    assert states["rejected"] > 0 and states["merged"] > 0
    assert sum(states.get(s, 0) for s in Case.OPEN_STATES) > 0


def test_a_rerun_changes_nothing(demo):
    second = demo["second"]
    assert second.created["cases"] == 0 and second.deleted["cases"] == 0
    assert not second.changed, (second.created, second.updated, second.deleted)
    assert demo["after"] == demo["before"]


def test_every_case_counts_in_the_grid_cell_holding_its_place_that_day(demo):
    wrong = _one(f"""
        SELECT count(*) FROM orgs_case c
        LEFT JOIN LATERAL ({cell_on_day_sql(point="c.place", day="(c.reported_at AT TIME ZONE 'Asia/Shanghai')::date")})
            cell ON true
        WHERE c.grid_cell_id IS DISTINCT FROM cell.cell_id""")  # noqa: S608 - SQL from code
    assert wrong == 0
    assert _one("SELECT count(*) FROM orgs_case c JOIN grid_gridcell g ON g.id = c.grid_cell_id "
                "WHERE g.community_id <> c.community_id") == 0


def test_seasons(demo):
    by_month = dict(_rows("""SELECT extract(month FROM c.reported_at AT TIME ZONE 'Asia/Shanghai')::int, count(*)
                             FROM orgs_case c JOIN orgs_casecategory k ON k.id = c.category_id
                             WHERE k.code = 'TF02' GROUP BY 1"""))
    rainy = sum(n for m, n in by_month.items() if 5 <= m <= 10)
    assert rainy > 0.8 * sum(by_month.values())
    noise = dict(_rows("""SELECT extract(month FROM c.reported_at AT TIME ZONE 'Asia/Shanghai')::int, count(*)
                          FROM orgs_case c JOIN orgs_casecategory k ON k.id = c.category_id
                          WHERE k.code = 'SG02' GROUP BY 1"""))
    # 噪声扰民 in summer (June–September) at about 1.6 times the winter rate (December–March).
    summer = sum(noise.get(m, 0) for m in (6, 7, 8, 9))
    winter = sum(noise.get(m, 0) for m in (12, 1, 2, 3))
    assert summer > 1.25 * winter
    # Fewer cases at weekends, most of those by the hotline.
    weekend = _rows("""SELECT count(*), count(*) FILTER (WHERE source = 'hotline') FROM orgs_case
                       WHERE extract(isodow FROM reported_at AT TIME ZONE 'Asia/Shanghai') >= 6
                         AND merged_into_id IS NULL""")[0]
    assert weekend[0] < 0.25 * Case.objects.count() and weekend[1] > 0.6 * weekend[0]


def test_timelines_are_whole(demo):
    # Versions run 1..n over the non-escalation rows; the last one is the case's state and version.
    assert _one("""
        SELECT count(*) FROM (
            SELECT c.id, c.version, c.state,
                   array_agg(t.version ORDER BY t.at, t.id) FILTER (WHERE t.action <> 'escalate') AS versions,
                   (array_agg(t.to_state ORDER BY t.at, t.id) FILTER (WHERE t.action <> 'escalate'))[c.version]
                       AS last_state
            FROM orgs_case c JOIN orgs_casetransition t ON t.case_id = c.id GROUP BY c.id) x
        WHERE x.versions <> (SELECT array_agg(g) FROM generate_series(1, x.version) g)
           OR x.last_state <> x.state""") == 0
    assert _one("SELECT count(*) FROM orgs_casetransition WHERE action = 'verify' AND position IS NULL") == 0
    assert _one("""SELECT count(*) FROM orgs_case c WHERE c.closed_at IS NOT NULL AND c.closed_at <>
                   (SELECT max(at) FROM orgs_casetransition t WHERE t.case_id = c.id AND t.action <> 'escalate')""") == 0
    # Sent back: by the body at 派遣 and after a failed on-site re-check, each with its reason.
    backs = dict(_rows("SELECT from_state, count(*) FROM orgs_casetransition WHERE action = 'send_back' GROUP BY 1"))
    assert backs.get("dispatched", 0) > 0 and backs.get("feedback", 0) > 0
    assert _one("SELECT count(*) FROM orgs_casetransition WHERE action = 'send_back' AND reason = ''") == 0


def test_duplicates_are_merged_into_an_open_case_of_the_same_kind_nearby(demo):
    bad = _one("""
        SELECT count(*) FROM orgs_case d
        JOIN orgs_case o ON o.id = d.merged_into_id
        JOIN orgs_casecategory k ON k.id = o.category_id
        WHERE d.state <> 'merged' OR d.category_id <> o.category_id OR o.reported_at >= d.reported_at
           OR NOT ST_DWithin(d.place::geography, o.place::geography, k.duplicate_radius_m)
           OR (o.closed_at IS NOT NULL AND o.closed_at <= d.closed_at)""")
    assert bad == 0
    assert Case.objects.filter(state=Case.State.MERGED).count() == demo["first"].cases.counts["state_merged"]


def test_late_steps_were_escalated_as_the_sweep_would_have(demo):
    assert 0.8 < _one("""SELECT count(*) FILTER (WHERE NOT ever_overdue)::float / count(*)
                         FROM orgs_case WHERE state = 'closed'""") < 0.98
    assert Case.objects.filter(escalation_level__gt=0).exists()
    assert _one("""SELECT count(*) FROM orgs_case c WHERE c.escalation_level <>
                   coalesce((SELECT max(escalation_level) FROM orgs_casetransition t
                             WHERE t.case_id = c.id AND t.action = 'escalate'), 0)""") == 0
    # Open and overdue at the build's midnight: the ledger has cases to chase.
    midnight = timezone.make_aware(datetime.combine(TODAY, time.min))
    assert cases_selectors.case_list(reach=Reach(everything=True), overdue=True, now=midnight).exists()
    # The real sweep, run at that moment, finds nothing the simulation did not already escalate.
    result = services.cases_escalate_overdue(now=midnight - demo_cases.SWEEP_DELAY)
    assert result["escalated"] == 0, result


def test_repeat_places_and_statistics(demo):
    stats = cases_selectors.case_statistics(
        reach=Reach(everything=True), since=TODAY - timedelta(days=90), until=TODAY - timedelta(days=1),
        now=timezone.make_aware(datetime.combine(TODAY, time.min)),
    )
    assert len(stats["repeat_places"]) >= 2
    assert {p["category_name"] for p in stats["repeat_places"]} & {"暴露垃圾", "占道经营"}
    assert 0.8 < stats["totals"]["on_time_rate"] < 1
    assert {m["state"] for m in stats["median_hours_by_state"]} >= {"reported", "registered", "dispatched"}
