"""Every gap kind on the hand-built street of conftest.py, whose right answer is known."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
import shapely
from django.contrib.gis.geos import Point
from pyproj import Geod, Transformer
from shapely import wkt as shapely_wkt
from shapely.geometry import Point as ShapelyPoint

from mapping.models import Gap
from mapping.services import gaps_recompute
from orgs.rules import _Responsible, check_enterprises
from tests.mapping.conftest import AT, Scene, X, Y

K = Gap.Kind
GEOD = Geod(ellps="WGS84")
pytestmark = pytest.mark.django_db


def open_gaps(**filters) -> dict[tuple[str, str], Gap]:
    """Open gaps by (kind, subject label or code)."""
    out = {}
    for g in Gap.objects.filter(resolved_at__isnull=True, **filters):
        key = (g.kind, g.subject_code or g.subject_label)
        assert key not in out, key
        out[key] = g
    return out


def area_m2(geom) -> float:
    return abs(GEOD.geometry_area_perimeter(shapely_wkt.loads(geom.wkt))[0])


def test_every_kind_is_found_where_the_scene_puts_it_and_nowhere_else(scene: Scene):
    s = scene
    counts = gaps_recompute(community_ids=None, at=AT)
    gaps = open_gaps()
    expected = {
        (K.GRID_WITHOUT_BRANCH, s.a2.code),
        (K.GRID_WITHOUT_WORKER, s.a2.code),
        (K.GRID_LOW_VISIT_RATE, s.a2.code),
        (K.BUILDING_WITHOUT_GROUP, s.h1.code),
        (K.BUILDING_UNVISITED, s.h2.code),
        (K.BUILDING_UNVISITED, s.h3.code),
        (K.MEMBER_UNATTACHED, "王**"),
        (K.MEMBER_LOST_CONTACT, "李*"),
        (K.ENTERPRISE_SHOULD_FORM_ORG, "应建公司"),
        (K.ENTERPRISE_UNCOVERED, "空白公司"),
        (K.CADRE_SHORT_OF_DAYS, "驻点甲"),
        (K.AREA_BEYOND_SERVICE_CENTRE, s.b.code),
        (K.AREA_BEYOND_SERVICE_CENTRE, s.c.code),
        (K.AREA_NOT_GRIDDED, s.b.code),
        (K.AREA_NOT_GRIDDED, s.c.code),
    }
    assert set(gaps) == expected
    assert counts["opened"] == len(expected) and counts["resolved"] == 0 and counts["still_open"] == 0
    assert counts["communities"] == 3
    assert all(g.since == AT and g.computed_at == AT for g in gaps.values())
    assert set(Gap.Kind.values) - {k for k, _ in gaps} == {K.AREA_MULTI_GRIDDED}


def test_grid_gaps_carry_the_cell_its_shape_and_the_community_organisation(scene: Scene):
    s = scene
    gaps_recompute(community_ids=[s.a.id], at=AT)
    gaps = open_gaps()
    branchless = gaps[(K.GRID_WITHOUT_BRANCH, s.a2.code)]
    assert branchless.grid_cell_id == s.a2.id and branchless.community_id == s.a.id
    assert branchless.geom.equals(s.a2.boundaries.get().geom)
    assert branchless.responsible_org_id == s.a_org.id and branchless.responsible_label == s.a_org.name
    assert branchless.subject_type == "grid.GridCell" and branchless.subject_id == s.a2.id
    assert branchless.figures == {"buildings": 1, "households": 24, "members_living": 0}
    assert branchless.severity == Gap.Severity.WARNING
    workerless = gaps[(K.GRID_WITHOUT_WORKER, s.a2.code)]
    assert workerless.severity == Gap.Severity.SERIOUS and workerless.figures["households"] == 24
    low = gaps[(K.GRID_LOW_VISIT_RATE, s.a2.code)]
    assert low.figures["households"] == 24 and low.figures["households_visited"] == 0
    assert low.figures["rate"] == 0 and low.severity == Gap.Severity.SERIOUS
    # A2 has no branch: the community organisation answers.
    assert low.responsible_org_id == s.a_org.id


def test_building_gaps_fall_to_the_grid_branch(scene: Scene):
    s = scene
    gaps_recompute(community_ids=[s.a.id], at=AT)
    gaps = open_gaps()
    grouped = gaps[(K.BUILDING_WITHOUT_GROUP, s.h1.code)]
    assert grouped.figures == {"members": 3, "full_members": 3, "households": 24, "threshold": 3}
    assert grouped.responsible_org_id == s.a1_branch.id and grouped.grid_cell_id == s.a1.id
    assert grouped.geom.geom_type == "Point" and grouped.geom.equals(s.h1.point)
    old = gaps[(K.BUILDING_UNVISITED, s.h2.code)]
    assert old.figures["days_since_last_visit"] == 100 and old.severity == Gap.Severity.WARNING
    assert old.figures["last_visit_on"] == (AT.date() - timedelta(days=100)).isoformat()
    assert old.responsible_org_id == s.a1_branch.id
    never = gaps[(K.BUILDING_UNVISITED, s.h3.code)]
    assert never.figures["last_visit_on"] is None and never.figures["days_since_last_visit"] is None
    assert never.severity == Gap.Severity.SERIOUS and never.responsible_org_id == s.a_org.id


def test_member_gaps_are_masked_and_fall_where_the_issue_says(scene: Scene):
    s = scene
    gaps_recompute(community_ids=[s.a.id], at=AT)
    gaps = open_gaps()
    unattached = gaps[(K.MEMBER_UNATTACHED, "王**")]
    assert unattached.subject_id == s.unattached.id and unattached.subject_code == ""
    assert unattached.responsible_org_id == s.a_org.id and unattached.grid_cell_id == s.a1.id
    assert unattached.figures == {
        "status": "full", "category": "employed", "placed_by": "residence", "has_organisation": False,
    }
    assert "王小明" not in str(unattached.figures) + unattached.subject_label
    lost = gaps[(K.MEMBER_LOST_CONTACT, "李*")]
    assert lost.responsible_org_id == s.group_h2.id and lost.severity == Gap.Severity.SERIOUS


def test_enterprise_gaps_agree_with_the_rules_check(scene: Scene):
    s = scene
    gaps_recompute(community_ids=None, at=AT)
    gaps = open_gaps()
    should = gaps[(K.ENTERPRISE_SHOULD_FORM_ORG, "应建公司")]
    assert should.figures["full_members"] == 3 and should.figures["members"] == 4
    assert should.grid_cell_id == s.a1.id and should.responsible_org_id == s.a_org.id
    # The same definition as orgs.rules (enterprise_needs_own_org / enterprise_uncovered).
    rules = {
        (v.rule_code, v.subject_id)
        for v in check_enterprises(street_id=s.street.id, today=AT.date(), who=_Responsible(s.street.id))
    }
    mapped = {"enterprise_needs_own_org": K.ENTERPRISE_SHOULD_FORM_ORG, "enterprise_uncovered": K.ENTERPRISE_UNCOVERED}
    assert {(mapped[code], i) for code, i in rules} == {
        (g.kind, g.subject_id) for g in gaps.values() if g.subject_type == "orgs.Enterprise"
    }


def test_a_cadre_behind_the_pace_is_found_with_the_admin_lists_rule(scene: Scene):
    s = scene
    gaps_recompute(community_ids=[s.a.id], at=AT)
    cadre = open_gaps()[(K.CADRE_SHORT_OF_DAYS, "驻点甲")]
    assert cadre.figures == {
        "month": "2026-03", "on_site_days": 3, "required_days": 8, "expected_by_today": 3.1, "pace_share": 0.8,
    }
    assert cadre.responsible_org_id == s.committee.id and cadre.subject_id == s.cadre_behind.id
    assert cadre.community_id == s.a.id and cadre.geom.intersects(s.a.geom)


def test_area_gaps_are_measured_in_metres(scene: Scene):
    s = scene
    gaps_recompute(community_ids=None, at=AT)
    gaps = open_gaps()
    # C: empty and alone: wholly ungridded and beyond every centre.
    for kind in (K.AREA_NOT_GRIDDED, K.AREA_BEYOND_SERVICE_CENTRE):
        whole = gaps[(kind, s.c.code)]
        assert whole.geom.equals(s.c.geom) or whole.geom.sym_difference(s.c.geom).area < 1e-12
        assert whole.figures["area_m2"] == pytest.approx(area_m2(s.c.geom), rel=1e-3)
        assert whole.figures["share"] == 1 and whole.severity == Gap.Severity.SERIOUS
        assert whole.responsible_org_id == s.committee.id  # no community organisation in C
    # B without a centre of its own: A's centre (1,000 m) reaches its west part. Expected area
    # from an azimuthal-equidistant projection around the centre, where the reach is a circle.
    beyond = gaps[(K.AREA_BEYOND_SERVICE_CENTRE, s.b.code)]
    aeqd = f"+proj=aeqd +lat_0={Y + 0.005} +lon_0={X + 0.005} +ellps=WGS84 +units=m"
    to_m = Transformer.from_crs("EPSG:4326", aeqd, always_xy=True).transform
    b_m = shapely.transform(shapely_wkt.loads(s.b.geom.wkt), lambda xy: np.column_stack(to_m(xy[:, 0], xy[:, 1])))
    expected = b_m.difference(ShapelyPoint(0, 0).buffer(1000, 256)).area
    assert beyond.figures["area_m2"] == pytest.approx(expected, rel=0.01)
    assert beyond.figures["centres_in_reach"] == 1 and beyond.figures["reach_m"] == 1000
    assert not beyond.geom.contains(Point(X + 0.0105, Y + 0.005, srid=4326))  # 570 m from the centre
    assert beyond.geom.contains(Point(X + 0.019, Y + 0.005, srid=4326))
    # A is fully gridded and within reach: no area gap there.
    assert not [g for g in gaps.values() if g.community_id == s.a.id and g.subject_type == "grid.Community"]


def test_a_community_with_no_service_centre_anywhere_near_is_wholly_beyond(scene: Scene):
    s = scene
    s.centre.delete()
    gaps_recompute(community_ids=[s.a.id], at=AT)
    beyond = open_gaps()[(K.AREA_BEYOND_SERVICE_CENTRE, s.a.code)]
    assert beyond.figures["centres_in_reach"] == 0 and beyond.figures["share"] == 1
    assert beyond.responsible_org_id == s.a_org.id


def test_an_empty_community_has_its_area_gaps_and_nothing_else(scene: Scene):
    s = scene
    counts = gaps_recompute(community_ids=[s.c.id], at=AT)
    assert counts["opened"] == 2
    assert set(open_gaps()) == {(K.AREA_NOT_GRIDDED, s.c.code), (K.AREA_BEYOND_SERVICE_CENTRE, s.c.code)}


def test_the_pieces_of_an_area_are_kept_over_the_tolerance_only(scene: Scene, settings):
    s = scene
    settings.WANGGE_RULES = {**settings.WANGGE_RULES, "gap_area_tolerance_m2": 10 * area_m2(s.c.geom)}
    gaps_recompute(community_ids=[s.c.id], at=AT)
    assert not open_gaps()
