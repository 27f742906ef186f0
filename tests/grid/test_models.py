"""The database guards the spatial model's invariants; lengths and areas are reported in metres."""

import pytest
from django.contrib.gis.db.models.functions import Area
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from grid.functions import GeodesicArea, GeodesicPerimeter
from grid.models import Building, Community, ServiceCentre, Street
from tests.factories import ORIGIN, BuildingFactory, CommunityFactory, StreetFactory, multi, square

pytestmark = pytest.mark.django_db


def test_street_code_must_be_nine_digits():
    with pytest.raises(IntegrityError), transaction.atomic():
        Street.objects.create(
            code="44080301", name="错街道", district_adcode="440803", geom=multi(square(*ORIGIN, 0.01))
        )
    street = Street(
        code="44080301", name="错街道", district_adcode="440803", geom=multi(square(*ORIGIN, 0.01))
    )
    with pytest.raises(ValidationError) as err:
        street.full_clean()
    assert "9位数字" in str(err.value)


def test_codes_are_unique():
    street = StreetFactory(code="440803006")
    with pytest.raises(IntegrityError), transaction.atomic():
        StreetFactory._meta.model.objects.create(
            code="440803006", name="重复", district_adcode="440803", geom=street.geom
        )


def test_database_refuses_invalid_footprint():
    community = CommunityFactory()
    x, y = ORIGIN
    bow_tie = Polygon(((x, y), (x + 0.001, y + 0.001), (x + 0.001, y), (x, y + 0.001), (x, y)), srid=4326)
    with pytest.raises(IntegrityError), transaction.atomic():
        BuildingFactory(community=community, geom=bow_tie)
    assert not Building.objects.exists()


def test_community_level_service_centre_needs_a_community():
    street = StreetFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        ServiceCentre.objects.create(
            code="SC1",
            name="社区党群服务中心",
            level="community",
            street=street,
            geom=square(*ORIGIN, 0.001).centroid,
        )


def test_building_point_is_derived_from_the_footprint_by_the_database():
    # An L-shaped footprint: its centroid lies outside it; its point on surface never does.
    x, y = ORIGIN
    l_shape = Polygon(
        (
            (x, y),
            (x + 0.001, y),
            (x + 0.001, y + 0.0002),
            (x + 0.0002, y + 0.0002),
            (x + 0.0002, y + 0.001),
            (x, y + 0.001),
            (x, y),
        ),
        srid=4326,
    )
    building = BuildingFactory(geom=l_shape)
    building.refresh_from_db()
    assert not l_shape.contains(l_shape.centroid)
    assert l_shape.contains(building.point)
    # Moving the footprint moves the point with it.
    building.geom = square(x + 0.01, y + 0.01, 0.0003)
    building.save()
    building.refresh_from_db()
    assert building.geom.contains(building.point)


def test_areas_and_lengths_are_in_metres():
    """1 km × 1 km-ish square near 21.19°N: compare PostGIS geography with pyproj's Geod."""
    from pyproj import Geod

    x, y = ORIGIN
    # 0.01° of longitude at 21.19°N ≈ 1,038 m; 0.01° of latitude ≈ 1,106 m.
    square_geom = square(x, y, 0.01)
    street = StreetFactory(geom=MultiPolygon(square_geom, srid=4326))
    area_geod, perimeter_geod = Geod(ellps="WGS84").polygon_area_perimeter(
        [p[0] for p in square_geom.coords[0]], [p[1] for p in square_geom.coords[0]]
    )
    row = Street.objects.annotate(
        area=GeodesicArea("geom"), perimeter=GeodesicPerimeter("geom"), django_area=Area("geom")
    ).get(id=street.id)
    assert row.area == pytest.approx(abs(area_geod), rel=1e-3)
    assert row.perimeter == pytest.approx(perimeter_geod, rel=1e-3)
    assert 1.10e6 < row.area < 1.17e6
    # The trap our functions exist for: Django's Area on a 4326 geometry is degrees² labelled m².
    assert row.django_area.sq_m == pytest.approx(1e-4)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ST_Area(geom::geography), ST_Perimeter(geom::geography) FROM grid_street WHERE id = %s",
            [street.id],
        )
        area_m2, perimeter_m = cursor.fetchone()
    assert area_m2 == pytest.approx(abs(area_geod), rel=1e-3)
    assert perimeter_m == pytest.approx(perimeter_geod, rel=1e-3)


def test_community_belongs_to_a_street_that_cannot_vanish_under_it():
    community = CommunityFactory()
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError):
        community.street.delete()
    assert Community.objects.filter(id=community.id).exists()
