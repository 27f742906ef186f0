"""GeoJSON pages written by PostgreSQL: a list endpoint's features in one statement.

Why: a map layer of ~150 buildings spent 4 ms in SQL and ~45 ms turning rows into model
instances, each geometry into GEOS, then GDAL's GeoJSON text, then Python dicts, then JSON again
(rest_framework_gis' GeoFeatureModelSerializer). Here PostgreSQL writes the features itself
(`ST_AsGeoJSON`, `json_build_object`, `json_agg`, as tipg and pg_featureserv do) and the view sends
its text as the response body: no model instances, no GEOS, no JSON parsed or dumped in Python.

What stays as it was:
- scoping and filters: the caller passes the queryset its selector built (reach, filters, order);
  this module only adds the bbox filter (`StrictInBBoxFilter`, the view's `bbox_filter_field`) and
  the page, exactly as `edge.api.feature_page` does;
- the page: ?page= / ?page_size= through `FeaturePagination` (same count, same next/previous
  links, same 404 for a page that is not there, same page-size cap);
- the body: {"type", "count", "next", "previous", "features"}, each feature {"id", "type",
  "geometry", "properties"} with the properties in the order the layout lists them, which is the
  order of the serializer's fields (tests/grid/test_api_geojson_sql.py compares old and new
  output of every converted endpoint and the layout's names against the serializer's).

Numbers (decided here; the comparison test holds them):
- Coordinates: `ST_AsGeoJSON(geom, PRECISION)` with PRECISION = 15, the serializer's own number
  of decimal places. The serializer printed GDAL's GeoJSON (OGR_G_ExportToJson: "%.15f", trailing
  zeros dropped), which Python parsed and printed again; PostGIS (>= 3.1, ryu) prints the shortest
  text that reads back as the stored double, cut at 15 places. Both give the stored double, except
  where GDAL's "intelliround" took the tail of a 15-place string for round-off and cut it
  ("110.410000000000011" became 110.41): there the new answer is the stored value and the old one
  was up to 1e-13 degrees (~10 nm) off it. On the district demo data (make_demo, 61,734
  coordinates of grid cells, buildings, communities and streets compared) not one differed.
- Other floats (e.g. `point_coordinates`) come out of float8's shortest round-trip text: the
  same digits as Python's repr.
- Only the spelling may differ where no JSON reader sees it: a whole number prints as `110`
  rather than `110.0`, a tiny one as `0.000001` rather than `1e-06`, and PostgreSQL's json text
  has a space after "," and around ":" (a page of buildings is ~7% larger).
- Types follow the column: text is a string, integers and bigints are numbers, booleans are
  true/false, dates are "YYYY-MM-DD", NULL is null. DRF differs for two kinds: a DateTimeField
  is local time with its offset (use `local_datetime`, which writes DRF's text; PostgreSQL alone
  would write the session's UTC) and a DecimalField is a string (cast it to text in the layout).

Queries: one statement for the page, its count and its features, whatever the page size (?page=last
counts first: two).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.gis.db.models.functions import AsGeoJSON
from django.core.exceptions import EmptyResultSet
from django.core.paginator import InvalidPage
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import CharField, F, Func, JSONField, QuerySet, Window
from django.db.models.expressions import Combinable
from django.db.models.functions import RowNumber
from django.db.models.sql.compiler import SQLCompiler
from django.http import HttpResponse
from django.utils import timezone
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from edge.api import FeaturePagination, StrictInBBoxFilter

__all__ = [
    "PRECISION",
    "FeatureLayout",
    "choice_label",
    "count_and_features",
    "feature_collection_page",
    "features_json",
    "local_datetime",
    "point_coordinates",
]

# Decimal places of coordinates: what GDAL's GeoJSON writer gave the serializer (see above).
PRECISION = 15
# A field path ("code", "street__code") or an ORM expression.
Source = str | Combinable
# json_build_object takes at most 100 arguments (PostgreSQL's FUNC_MAX_ARGS): 50 name/value pairs.
MAX_PROPERTIES = 50


@dataclass(frozen=True)
class FeatureLayout:
    """What one feature of a list shows, as expressions over the list's queryset.

    `id` and each property are a field path ("code", "street__code") or an ORM expression; the
    properties are written in the order given. `serializer` is the GeoFeatureModelSerializer that
    describes the same feature: the OpenAPI schema keeps using it, and the tests check that both
    answer the same.
    """

    serializer: type[serializers.Serializer]
    id: Source
    properties: Mapping[str, Source]
    geometry: str = "geom"

    def __post_init__(self) -> None:
        if len(self.properties) > MAX_PROPERTIES:
            raise ValueError(f"a feature can have at most {MAX_PROPERTIES} properties")

    @property
    def _aliases(self) -> tuple[str, ...]:
        # Column aliases of the page's inner query: fixed names, never user input.
        return tuple(f"gj_p{i}" for i in range(len(self.properties)))

    def columns(self, ordering: Iterable[Any]) -> dict[str, Combinable]:
        """The inner query's columns: row number in the list's order, id, geometry, properties."""
        columns: dict[str, Combinable] = {
            # The page's rows are numbered in the list's own order so that json_agg can keep it;
            # an aggregate over an ordered subquery keeps that order only by accident of the plan.
            "gj_n": Window(RowNumber(), order_by=list(ordering) or None),
            "gj_id": _expression(self.id),
            "gj_geometry": AsGeoJSON(self.geometry, precision=PRECISION),
        }
        for alias, source in zip(self._aliases, self.properties.values(), strict=True):
            columns[alias] = _expression(source)
        return columns

    @property
    def property_pairs_sql(self) -> str:
        # Names go in as parameters (%s), values are the inner query's columns.
        return ", ".join(f"%s::text, page.{alias}" for alias in self._aliases)


def _expression(source: Source) -> Combinable:
    return F(source) if isinstance(source, str) else source


class ColumnFunc(Func):
    """A function of one column whose SQL repeats the column: a subclass's `render` gets the
    column's compiled SQL and parameters and says where they go."""

    arity = 1

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> tuple[str, tuple[Any, ...]]:
        sql, params = compiler.compile(self.source_expressions[0])
        return self.render(sql, tuple(params))

    def render(self, sql: str, params: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
        raise NotImplementedError


class ChoiceLabel(ColumnFunc):
    """The label of a choice field, as `get_<field>_display()` gives it: the stored value itself
    when it is not one of the choices. Values and labels go in as two array parameters; one array
    lookup instead of a CASE of one WHEN per choice, which costs the ORM a filter each to build."""

    output_field = CharField()

    def __init__(self, expression: Combinable, choices: Iterable[tuple[Any, Any]]) -> None:
        super().__init__(expression)
        pairs = [(str(value), str(label)) for value, label in choices]
        self.choice_values = [value for value, _ in pairs]
        self.choice_labels = [label for _, label in pairs]

    def render(self, sql: str, params: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
        return (
            f"COALESCE((%s::text[])[array_position(%s::text[], ({sql})::text)], ({sql})::text)",
            (self.choice_labels, self.choice_values, *params, *params),
        )


def choice_label(field_name: str, choices: Iterable[tuple[Any, Any]]) -> Combinable:
    return ChoiceLabel(F(field_name), choices)


class PointCoordinates(ColumnFunc):
    """[lon, lat] of a point column, or null: the `[point.x, point.y]` lists the serializers made.

    float8's shortest round-trip text, as Python's repr: the same numbers, not cut to PRECISION.
    """

    output_field = JSONField()

    def render(self, sql: str, params: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
        # json_build_array(NULL, NULL) would be [null, null]; a building without a point has null.
        return (
            f"CASE WHEN ({sql}) IS NULL THEN NULL ELSE json_build_array(ST_X({sql}), ST_Y({sql})) END",
            (*params, *params, *params),
        )


def point_coordinates(field_name: str) -> Combinable:
    return PointCoordinates(F(field_name))


class LocalDateTime(ColumnFunc):
    """A timestamptz as DRF's DateTimeField writes it: local time in the current time zone
    (settings.TIME_ZONE), ISO 8601, microseconds only when there are any, the zone's offset at
    that instant ("Z" for UTC), e.g. "2025-03-01T09:30:00+08:00". PostgreSQL's own json of a
    timestamptz would use the session's zone (UTC under Django) and trim trailing zeros."""

    output_field = CharField()

    def render(self, sql: str, params: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
        zone = timezone.get_current_timezone_name()
        # The value, its wall-clock time in the zone, and the zone's offset at that instant; each
        # repeats the column (and its parameters) where it is used.
        local, local_params = f"(({sql}) AT TIME ZONE %s)", (*params, zone)
        offset = f"(({sql}) AT TIME ZONE %s - ({sql}) AT TIME ZONE 'UTC')"
        offset_params = (*params, zone, *params)
        text = (
            f"CASE WHEN ({sql}) IS NULL THEN NULL ELSE "
            f"to_char({local}, 'YYYY-MM-DD\"T\"HH24:MI:SS') "
            f"|| CASE WHEN mod(date_part('microseconds', {local})::bigint, 1000000) = 0 THEN '' "
            f"ELSE to_char({local}, '.US') END "
            f"|| CASE WHEN {offset} = interval '0' THEN 'Z' "
            f"WHEN {offset} > interval '0' THEN '+' || to_char({offset}, 'HH24:MI') "
            f"ELSE '-' || to_char(-{offset}, 'HH24:MI') END END"
        )
        return text, (
            *params,
            *local_params,
            *local_params,
            *local_params,
            *offset_params,
            *offset_params,
            *offset_params,
            *offset_params,
        )


def local_datetime(field_name: str) -> Combinable:
    return LocalDateTime(F(field_name))


def _ordering(queryset: QuerySet) -> tuple[Any, ...]:
    query = queryset.query
    if query.order_by:
        return tuple(query.order_by)
    if query.default_ordering:
        return tuple(query.get_meta().ordering or ())
    return ()


# Pages numbered beyond this are left to the paginator, which counts first and refuses them; their
# OFFSET could overflow PostgreSQL's bigint.
_LARGEST_PAGE_ASKED_AT_ONCE = 2**31


def _page_number(asked: object) -> int | None:
    """?page= as the paginator will read it (int(), as Django's validate_number), when it is a page
    worth asking for before the count; None leaves it to the paginator (and its 404)."""
    try:
        number = int(str(asked))
    except (TypeError, ValueError):
        return None
    return number if 1 <= number <= _LARGEST_PAGE_ASKED_AT_ONCE else None


def feature_collection_page(
    *, request: Request, view: APIView, queryset: QuerySet, layout: FeatureLayout
) -> HttpResponse:
    """Filter by bbox (the view's `bbox_filter_field`), paginate with FeaturePagination, and answer
    the page as a FeatureCollection whose count and features PostgreSQL writes in one statement.

    DRF's `paginate_queryset` counts, then fetches the page as model instances; here the asked page
    is fetched with its count, and DRF's paginator then judges the page number against that count
    exactly as it would have (the same 404 for page 9 of 3, "abc" or 0, the same next/previous).
    Only ?page=last needs the count first: the paginator counts, then the page is one statement.
    """
    queryset = StrictInBBoxFilter().filter_queryset(request, queryset, view)
    pagination = FeaturePagination()
    pagination.request = request
    paginator = pagination.django_paginator_class(queryset, pagination.get_page_size(request))
    asked = pagination.get_page_number(request, paginator)
    columns = layout.columns(_ordering(queryset))
    features = None
    number = _page_number(asked)
    if number is not None and "count" not in vars(paginator):
        offset = (number - 1) * paginator.per_page
        count, features = count_and_features(
            queryset, queryset.values(**columns)[offset : offset + paginator.per_page], layout=layout
        )
        # Paginator.count is a cached_property: this is the value it would have computed.
        paginator.count = count
    try:
        pagination.page = paginator.page(asked)
    except InvalidPage as exc:
        raise NotFound(pagination.invalid_page_message.format(page_number=asked, message=str(exc))) from exc
    if features is None:
        features = features_json(pagination.page.object_list.values(**columns), layout=layout)
    # The envelope: the four members of GeoJsonPagination, in its order, with DRF's compact
    # separators, written around the features' text.
    body = (
        f'{{"type":"FeatureCollection","count":{int(paginator.count)},'
        f'"next":{json.dumps(pagination.get_next_link())},'
        f'"previous":{json.dumps(pagination.get_previous_link())},'
        f'"features":{features}}}'
    )
    if getattr(request, "accepted_renderer", None) is not None and request.accepted_renderer.format != "json":
        # A person browsing the API (DRF's HTML renderer) gets the same data on the page; only
        # there is it parsed in Python.
        return Response(json.loads(body))
    return HttpResponse(body, content_type="application/json")


def count_and_features(queryset: QuerySet, rows: QuerySet, *, layout: FeatureLayout) -> tuple[int, str]:
    """How many rows `queryset` has, and the JSON array of the features of `rows` (a page of it,
    `.values(**layout.columns(...))`) in their order: one statement."""
    return _page_statement(rows, layout=layout, counted=queryset)


def features_json(rows: QuerySet, *, layout: FeatureLayout) -> str:
    """The JSON array of the features of `rows` (`.values(**layout.columns(...))`), in their order."""
    return _page_statement(rows, layout=layout, counted=None)[1]


def _page_statement(rows: QuerySet, *, layout: FeatureLayout, counted: QuerySet | None) -> tuple[int, str]:
    try:
        page_sql, page_params = rows.query.sql_with_params()
        count_sql, count_params = (
            counted.order_by().values("pk").query.sql_with_params() if counted is not None else ("", ())
        )
    except EmptyResultSet:
        # The ORM knows without asking that there is no row (an empty page, an empty `__in`).
        return 0, "[]"
    # Raw SQL because the ORM cannot select from a subquery: the page (the queryset's own SQL, its
    # LIMIT/OFFSET included) is aggregated into one JSON array. json, not jsonb: jsonb would
    # reorder the keys. The ORDER BY inside json_agg keeps the list's order (see gj_n). The count
    # rides along in the same statement: one round trip, and no ORM count() of a second query.
    features = (
        "SELECT COALESCE(json_agg(json_build_object("  # noqa: S608 - the ORM's SQL, fixed aliases; values are parameters
        "'id', page.gj_id, 'type', 'Feature', 'geometry', page.gj_geometry::json, "
        f"'properties', json_build_object({layout.property_pairs_sql})"
        ") ORDER BY page.gj_n), '[]'::json)::text "
        f"FROM ({page_sql}) AS page"
    )
    count = f"SELECT count(*) FROM ({count_sql}) AS hits" if counted is not None else "SELECT 0"  # noqa: S608 - the ORM's SQL
    with connections[rows.db].cursor() as cursor:
        cursor.execute(
            f"SELECT ({count}), ({features})",
            [*count_params, *layout.properties.keys(), *page_params],
        )
        n, text = cursor.fetchone()
        return int(n), text
