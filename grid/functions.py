"""Database functions that measure in metres on the spheroid.

Why not GeoDjango's Area/Perimeter: on a geometry(…, 4326) column Django's Area returns the
planar area in degrees² wrapped in an `Area(sq_m=…)` object (1e-4 "m²" for a 1 km square), and
Perimeter refuses to run. Casting to geography measures on the WGS-84 spheroid, in metres.
"""

from django.contrib.gis.db.models import FloatField
from django.db.models import Func


class GeographyFunc(Func):
    output_field = FloatField()
    template = "%(function)s(%(expressions)s::geography)"


class GeodesicArea(GeographyFunc):
    """Area in square metres."""

    function = "ST_Area"


class GeodesicPerimeter(GeographyFunc):
    """Perimeter of (multi)polygons in metres, holes included."""

    function = "ST_Perimeter"


class GeodesicLength(GeographyFunc):
    """Length of (multi)linestrings in metres."""

    function = "ST_Length"
