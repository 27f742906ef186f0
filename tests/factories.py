"""factory_boy factories with valid geometry. Shapes are squares in 霞山区 (≈110.4°E, 21.2°N)."""

from datetime import date

import factory
from django.contrib.gis.geos import MultiPolygon, Polygon

from grid import services
from grid.models import Building, Community, GridCell, ServiceCentre, Street

ORIGIN = (110.40, 21.19)


def square(x0: float, y0: float, size: float) -> Polygon:
    """A valid square polygon in EPSG:4326 with its south-west corner at (x0, y0)."""
    return Polygon(((x0, y0), (x0 + size, y0), (x0 + size, y0 + size), (x0, y0 + size), (x0, y0)), srid=4326)


def rect(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    return Polygon(((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)), srid=4326)


def multi(poly: Polygon) -> MultiPolygon:
    return MultiPolygon(poly, srid=4326)


class StreetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Street
        django_get_or_create = ("code",)

    # Codes have three digits per level: the sequence, which runs on across the whole test
    # session, wraps at 999 (the database is emptied between tests, so codes never collide).
    code = factory.Sequence(lambda n: f"440803{n % 999 + 1:03d}")
    name = factory.Sequence(lambda n: f"测试街道{n + 1}")
    district_adcode = "440803"
    geom = factory.LazyFunction(lambda: multi(square(ORIGIN[0], ORIGIN[1], 0.02)))


class CommunityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Community

    street = factory.SubFactory(StreetFactory)
    code = factory.Sequence(lambda n: f"{n % 999 + 1:03d}")  # suffix; completed in _create
    name = factory.Sequence(lambda n: f"测试社区{n + 1}")
    residents = 3000
    geom = factory.LazyFunction(lambda: multi(square(ORIGIN[0], ORIGIN[1], 0.01)))

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        if len(kwargs["code"]) == 3:
            kwargs["code"] = kwargs["street"].code + kwargs["code"]
        return super()._create(model_class, *args, **kwargs)


class GridCellFactory(factory.django.DjangoModelFactory):
    """A grid cell; pass `boundary=Polygon` (and optionally `valid_from`) to give it a shape."""

    class Meta:
        model = GridCell

    community = factory.SubFactory(CommunityFactory)
    code = factory.Sequence(lambda n: f"{n % 999 + 1:03d}")
    name = factory.Sequence(lambda n: f"第{n + 1}网格")

    @classmethod
    def _create(cls, model_class, *args, boundary=None, valid_from=date(2024, 1, 1), **kwargs):
        if len(kwargs["code"]) == 3:
            kwargs["code"] = kwargs["community"].code + kwargs["code"]
        cell = super()._create(model_class, *args, **kwargs)
        if boundary is not None:
            services.grid_boundary_set(cell=cell, geom=boundary, valid_from=valid_from)
        return cell


class BuildingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Building

    community = factory.SubFactory(CommunityFactory)
    code = factory.Sequence(lambda n: f"B{n + 1:06d}")
    name = factory.Sequence(lambda n: f"{n + 1}栋")
    households = 24
    floors = 6
    geom = factory.LazyFunction(lambda: square(ORIGIN[0] + 0.001, ORIGIN[1] + 0.001, 0.0002))


class ServiceCentreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ServiceCentre

    street = factory.SubFactory(StreetFactory)
    code = factory.Sequence(lambda n: f"SC{n + 1:04d}")
    name = factory.Sequence(lambda n: f"党群服务中心{n + 1}")
    level = ServiceCentre.Level.STREET
    geom = factory.LazyFunction(lambda: square(ORIGIN[0], ORIGIN[1], 0.001).centroid)
