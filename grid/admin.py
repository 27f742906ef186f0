"""Admin of space (Chinese UI). Maps are django-leaflet widgets served from our own static files,
with no basemap unless BASEMAP_TILES_URL names an intranet tile server.

Every write goes through grid.services (ServiceAdminMixin): a form asks the service's check, so a
refusal is an error next to its field and nothing is written; save_model and delete_model call the
service, which writes the audit row and tells the community. A boundary version is added with
grid_boundaries_set (never edited in place: history is read-only here). This module writes nothing
to the ORM itself.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import NotRelationField, get_fields_from_path
from django.contrib.admin.widgets import AdminDateWidget
from django.contrib.gis import forms as gis_forms
from django.contrib.gis.db.models import MultiPolygonField
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon, Polygon
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db.models import Count, IntegerField, Model, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.forms.renderers import TemplatesSetting
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from leaflet import app_settings as leaflet_settings
from leaflet.admin import LeafletAdminWidget, LeafletGeoAdmin

from edge.errors import DomainError
from grid import access, roles, selectors, services
from grid.admin_audit import AuditedAdminMixin, register_audited_auth_admins
from grid.errors import GridError
from grid.models import (
    AuditEvent,
    Building,
    Community,
    GridBoundary,
    GridCell,
    RoleAssignment,
    ServiceCentre,
    Street,
)

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldGroups

# --------------------------------------------------------------------------------------------
# Map widgets
# --------------------------------------------------------------------------------------------


_TEMPLATES_RENDERER = TemplatesSetting()


class MapWidget(LeafletAdminWidget):
    """django-leaflet's admin widget plus our own script and style: fit the feature closely (there
    is no basemap to look at around it), draw context outlines, Chinese drawing toolbar."""

    template_name = "grid/map_widget.html"
    geometry_field_class = "L.WanggeGeometryField"

    @property
    def media(self) -> forms.Media:
        base = super().media
        # One list, so that merging with the admin's own media keeps our script after
        # leaflet.forms.js (it extends L.GeometryField) and our style after Leaflet's.
        return forms.Media(
            js=[*base._js, "grid/admin_map.js"],
            css={"screen": [*base._css.get("screen", []), "grid/admin_map.css"]},
        )

    def _render(self, template_name: str, context: dict[str, Any], renderer: Any = None) -> SafeString:
        # Our template lives in ops/templates, which the default form renderer (app directories
        # only) does not search; render through the project's TEMPLATES instead.
        return mark_safe(_TEMPLATES_RENDERER.render(template_name, context))  # noqa: S308 - template output

    def get_context(self, name: str, value: Any, attrs: dict | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        context["has_basemap"] = bool(leaflet_settings.get("TILES"))
        return context


def readonly_map(
    name: str, geom: GEOSGeometry | None, *, context: list[dict] | None = None
) -> SafeString | str:
    """A non-editable map of `geom` for a read-only admin field (drawn by grid/admin_map.js)."""
    if geom is None:
        return "（无）"
    map_id = f"id_map_{name}"
    html = _TEMPLATES_RENDERER.render(
        "grid/readonly_map.html",
        {
            "map_id": map_id,
            "geometry_id": f"{map_id}-geometry",
            "context_id": f"{map_id}-context",
            "tiles_id": f"{map_id}-tiles",
            "geometry": json.loads(geom.geojson),
            "context_geojson": context or [],
            "tiles": [[str(label), url, attrs] for label, url, attrs in leaflet_settings.get("TILES") or []],
            "max_zoom": leaflet_settings.get("MAX_ZOOM") or 19,
        },
    )
    return mark_safe(html)  # noqa: S308 - rendered template, values escaped by json_script


def context_features(items: Sequence[tuple[str, str, GEOSGeometry | None]]) -> list[dict[str, Any]]:
    """Grey outlines drawn under the edited feature, so it can be placed without a basemap.

    `items` are (kind, label, geometry); kind picks the style in admin_map.js.
    """
    return [
        {
            "type": "Feature",
            "geometry": json.loads(geom.geojson),
            "properties": {"kind": kind, "label": label},
        }
        for kind, label, geom in items
        if geom is not None
    ]


class MultiPolygonFormField(gis_forms.MultiPolygonField):
    """Takes a single polygon for a MultiPolygon field: Leaflet.draw sends one drawn polygon as a
    GeoJSON Polygon, which Django's field would refuse as the wrong type."""

    def to_python(self, value: Any) -> GEOSGeometry | None:
        geom = super().to_python(value)
        if isinstance(geom, Polygon):
            geom = MultiPolygon(geom, srid=geom.srid)
        return geom


def related_only_list_filter(model: type, list_filter: Any) -> list[Any]:
    """`list_filter` with every plain related-field entry made a RelatedOnlyFieldListFilter: the
    plain one offers every street/community in the database, the related-only one those present
    in the (reach-scoped) list."""
    out: list[Any] = []
    for entry in list_filter:
        if isinstance(entry, str):
            try:
                field = get_fields_from_path(model, entry)[-1]
            except (FieldDoesNotExist, NotRelationField):
                field = None
            if field is not None and field.is_relation:
                entry = (entry, admin.RelatedOnlyFieldListFilter)
        out.append(entry)
    return out


class ReachAdminMixin:
    """Lists, object pages and foreign-key choices limited to the user's reach (grid.access);
    superusers reach everything. Objects outside the reach are simply not found."""

    model: type[Model]  # set by the ModelAdmin this is mixed into

    def get_list_filter(self, request: HttpRequest) -> Any:
        return related_only_list_filter(self.model, super().get_list_filter(request))  # type: ignore[misc]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)  # type: ignore[misc]
        return access.scope(access.reach_of_request(request), qs)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        model = db_field.related_model
        if model in access.SCOPES and "queryset" not in kwargs:
            kwargs["queryset"] = access.scope(access.reach_of_request(request), model._default_manager.all())
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]


class MapAdmin(AuditedAdminMixin, ReachAdminMixin, LeafletGeoAdmin):
    widget = MapWidget
    map_template = MapWidget.template_name  # the mixin would otherwise put django-leaflet's back

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest | None = None, **kwargs: Any) -> Any:
        if isinstance(db_field, MultiPolygonField):
            kwargs.setdefault("form_class", MultiPolygonFormField)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def map_context(self, request: HttpRequest, obj: Any) -> list[dict[str, Any]]:
        return []

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        # get_form builds a new form class per request, so setting the widget's attrs here does
        # not leak between requests.
        for field in form.base_fields.values():
            if isinstance(field.widget, MapWidget):
                field.widget.attrs["context_geojson"] = self.map_context(request, obj)
        return form


class ReadOnlyAdminMixin:
    """Pages that show records written elsewhere (boundary versions, the audit log, synced events):
    nobody adds, changes or deletes one through the admin. `*args` fits both ModelAdmin's and an
    inline's has_add_permission."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _count_of(model: type[Model], fk: str, *, aggregate: Any = None) -> Coalesce:
    """A correlated count (or sum) per row: unlike JOIN + COUNT, two of them do not multiply."""
    rows = model._default_manager.filter(**{fk: OuterRef("pk")}).order_by().values(fk)
    value = rows.annotate(n=aggregate or Count("pk")).values("n")
    return Coalesce(Subquery(value, output_field=IntegerField()), Value(0))


class GeometryValidationMixin:
    """Refuse invalid shapes with a Chinese message naming the reason (self-intersection, …)
    before the database's check constraint answers with a generic one."""

    def clean_geom(self) -> GEOSGeometry | None:
        geom = self.cleaned_data.get("geom")  # type: ignore[attr-defined]
        if geom is not None and not geom.valid:
            raise forms.ValidationError(
                "图形无效：%(reason)s", code="geometry_invalid", params={"reason": geom.valid_reason}
            )
        return geom


# Refusal codes that belong next to a field when the error does not name one (detail["field"]).
_FIELD_OF_CODE = {
    "boundary_conflict": "valid_from",
    "unit_unknown": "cell",
    "crs_mismatch": "geom",
    "grid_outside_community": "geom",
    "grid_overlap": "geom",
}


def add_domain_error(form: forms.BaseForm, exc: DomainError) -> None:
    """A service's refusal as a form error (Chinese message, the service's code), on its field."""
    name = exc.detail.get("field") or _FIELD_OF_CODE.get(exc.code)
    if name is None and exc.code.startswith("geometry"):
        name = "geom"
    form.add_error(name if name in form.fields else None, forms.ValidationError(exc.message, code=exc.code))


class ServiceCheckedForm(GeometryValidationMixin, forms.ModelForm):
    """A unit's form that, after the model's own validation, runs the service's check (`check`,
    given the cleaned data and the row as stored, None when adding): a refusal shows next to its
    field and nothing is written. The write itself is the service's, in save_model."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The row as stored: validation writes the submitted values into self.instance, and the
        # checks compare against the old ones (a code change, an outline change).
        self.stored = copy.copy(self.instance) if self.instance.pk else None

    def check(self, data: dict[str, Any], stored: Any) -> None:
        raise NotImplementedError

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # django-stubs omit BaseForm's private _post_clean hook
        if self.errors:
            return
        try:
            self.check(self.cleaned_data, self.stored)
        except DomainError as exc:
            add_domain_error(self, exc)


class ServiceAdminMixin:
    """save_model, delete_model and bulk deletes call the unit's services (create_service,
    update_service, delete_service; `service_object` names the object's keyword). The service
    writes the audit row, so the admin's own is skipped (grid.admin_audit).

    A refusal the form's check did not foresee (a concurrent write got there first) is raised by
    the service inside the admin's transaction: it rolls back, and the page comes back with the
    Chinese message instead of a 500."""

    deletes_audited_by_service = True
    service_object = ""
    create_service: Callable[..., Model]
    update_service: Callable[..., Model]
    delete_service: Callable[..., None]

    def _model_fields(self, form: Any) -> set[str]:
        return {f.name for f in form._meta.model._meta.fields}

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        fields = self._model_fields(form)
        if change:
            changes = {name: form.cleaned_data[name] for name in form.changed_data if name in fields}
            type(self).update_service(**{self.service_object: obj}, **changes)
            return
        values = {name: value for name, value in form.cleaned_data.items() if name in fields}
        saved = type(self).create_service(**values)
        # The admin logs and redirects with `obj`: make it the row the service wrote.
        obj.pk = saved.pk
        obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        type(self).delete_service(**{self.service_object: obj})

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        # One service call per unit: each refusal (a unit still referenced) names its unit.
        for obj in queryset:
            type(self).delete_service(**{self.service_object: obj})

    def _refused(self, request: HttpRequest, view: Callable[[], HttpResponse]) -> HttpResponse:
        try:
            return view()
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)  # type: ignore[attr-defined]
            return HttpResponseRedirect(request.get_full_path())

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        parent = super().changeform_view  # type: ignore[misc]
        return self._refused(request, lambda: parent(request, *args, **kwargs))

    def delete_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        parent = super().delete_view  # type: ignore[misc]
        return self._refused(request, lambda: parent(request, *args, **kwargs))

    def changelist_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        parent = super().changelist_view  # type: ignore[misc]
        return self._refused(request, lambda: parent(request, *args, **kwargs))


# --------------------------------------------------------------------------------------------
# 街道 / 社区
# --------------------------------------------------------------------------------------------


class StreetForm(ServiceCheckedForm):
    class Meta:
        model = Street
        fields = ["code", "name", "district_adcode", "geom"]

    def check(self, data: dict[str, Any], stored: Street | None) -> None:
        services.street_check(street=stored, code=data["code"], district_adcode=data["district_adcode"])


@admin.register(Street)
class StreetAdmin(ServiceAdminMixin, MapAdmin):
    form = StreetForm
    service_object = "street"
    create_service = services.street_create
    update_service = services.street_update
    delete_service = services.street_delete
    list_display = ["code", "name", "district_adcode", "community_count"]
    search_fields = ["code", "name"]
    list_filter = ["district_adcode"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Street]:
        return super().get_queryset(request).annotate(n_communities=_count_of(Community, "street"))

    @admin.display(description="社区数", ordering="n_communities")
    def community_count(self, obj: Street) -> int:
        return obj.n_communities  # type: ignore[attr-defined]


class CommunityForm(ServiceCheckedForm):
    class Meta:
        model = Community
        fields = ["code", "street", "name", "residents", "geom"]

    def check(self, data: dict[str, Any], stored: Community | None) -> None:
        services.community_check(community=stored, code=data["code"], street=data["street"], geom=data["geom"])


@admin.register(Community)
class CommunityAdmin(ServiceAdminMixin, MapAdmin):
    form = CommunityForm
    service_object = "community"
    create_service = services.community_create
    update_service = services.community_update
    delete_service = services.community_delete
    list_display = ["code", "name", "street", "residents", "grid_count", "building_count", "data_version"]
    list_select_related = ["street"]
    search_fields = ["code", "name"]
    list_filter = ["street"]
    readonly_fields = ["data_version"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Community]:
        return (
            super()
            .get_queryset(request)
            .annotate(n_grids=_count_of(GridCell, "community"), n_buildings=_count_of(Building, "community"))
        )

    @admin.display(description="网格数", ordering="n_grids")
    def grid_count(self, obj: Community) -> int:
        return obj.n_grids  # type: ignore[attr-defined]

    @admin.display(description="楼栋数", ordering="n_buildings")
    def building_count(self, obj: Community) -> int:
        return obj.n_buildings  # type: ignore[attr-defined]

    def map_context(self, request: HttpRequest, obj: Community | None) -> list[dict[str, Any]]:
        if obj is None:
            return []
        return context_features([("street", obj.street.name, obj.street.geom)])


# --------------------------------------------------------------------------------------------
# 网格 and its boundary versions
# --------------------------------------------------------------------------------------------


def _valid_to_text(boundary: GridBoundary) -> str:
    return str(boundary.valid.upper) if boundary.valid.upper else "至今"


class GridBoundaryInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The versions of a grid cell, read-only: a redraw is a new version made by the service."""

    model = GridBoundary
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("valid_from", "valid_to", "note", "created_at")
    readonly_fields = fields
    ordering = ["-valid"]
    verbose_name = "边界版本"
    verbose_name_plural = "边界版本（只读；重新划定请用“新增网格边界版本”）"

    @admin.display(description="生效日期")
    def valid_from(self, obj: GridBoundary) -> Any:
        return obj.valid.lower

    @admin.display(description="失效日期")
    def valid_to(self, obj: GridBoundary) -> str:
        return _valid_to_text(obj)


class GridCellForm(ServiceCheckedForm):
    class Meta:
        model = GridCell
        fields = ["code", "community", "name", "responsible_body"]

    def check(self, data: dict[str, Any], stored: GridCell | None) -> None:
        if stored is None:  # code and community are read-only once the grid exists
            services.grid_cell_check(cell=None, code=data["code"], community=data["community"])


@admin.register(GridCell)
class GridCellAdmin(ServiceAdminMixin, AuditedAdminMixin, ReachAdminMixin, admin.ModelAdmin):
    form = GridCellForm
    service_object = "cell"
    create_service = services.grid_cell_create
    update_service = services.grid_cell_update
    list_display = [
        "code",
        "name",
        "community",
        "responsible",
        "current_since",
        "building_count",
        "household_count",
    ]
    list_select_related = ["community"]
    search_fields = ["code", "name", "responsible_body"]
    list_filter = [("community__street", admin.RelatedOnlyFieldListFilter), "community"]
    inlines = [GridBoundaryInline]
    readonly_fields = ["current_boundary_map", "redraw_link"]

    @property
    def media(self) -> forms.Media:
        return super().media + MapWidget().media

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting would cascade away the grid's boundary history; a grid that ends is retired
        # (grid.services.grid_cell_retire), which keeps it.
        return False

    def get_fields(self, request: HttpRequest, obj: GridCell | None = None) -> _FieldGroups:
        fields: _FieldGroups = ["code", "community", "name", "responsible_body"]
        return fields if obj is None else [*fields, "current_boundary_map", "redraw_link"]

    def get_readonly_fields(self, request: HttpRequest, obj: GridCell | None = None) -> list[str]:
        # The code is the grid's identity across redraws, and moving a grid to another community
        # would strand its buildings: both are fixed once the grid exists.
        if obj is None:
            return []
        return ["code", "community", "current_boundary_map", "redraw_link"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[GridCell]:
        current = GridBoundary.objects.filter(cell=OuterRef("pk"), valid__upper_inf=True)
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_buildings=_count_of(Building, "grid_cell"),
                n_households=_count_of(Building, "grid_cell", aggregate=Sum("households")),
                current_from=Subquery(current.values("valid__startswith")[:1]),
            )
        )

    @admin.display(description="责任主体")
    def responsible(self, obj: GridCell) -> str:
        return obj.responsible_body_or_territorial

    @admin.display(description="现行边界生效日期", ordering="current_from", empty_value="（无现行边界）")
    def current_since(self, obj: GridCell) -> Any:
        return obj.current_from  # type: ignore[attr-defined]

    @admin.display(description="楼栋数", ordering="n_buildings")
    def building_count(self, obj: GridCell) -> int:
        return obj.n_buildings  # type: ignore[attr-defined]

    @admin.display(description="户数", ordering="n_households")
    def household_count(self, obj: GridCell) -> int:
        return obj.n_households  # type: ignore[attr-defined]

    @admin.display(description="现行边界")
    def current_boundary_map(self, obj: GridCell) -> SafeString | str:
        current = selectors.grid_boundaries_as_of().filter(cell=obj).first()
        return readonly_map(
            "current_boundary", current.geom if current else None, context=_community_context(obj)
        )

    @admin.display(description="重新划定")
    def redraw_link(self, obj: GridCell) -> SafeString:
        url = reverse("admin:grid_gridboundary_add")
        return format_html('<a class="button" href="{}?cell={}">新增边界版本</a>', url, obj.pk)


def _community_context(cell: GridCell, *, skip_cell: bool = True) -> list[dict[str, Any]]:
    """The cell's community and its sibling grids as drawn today."""
    siblings = selectors.grid_boundaries_as_of().filter(cell__community_id=cell.community_id)
    if skip_cell:
        siblings = siblings.exclude(cell=cell)
    items = [("community", cell.community.name, cell.community.geom)]
    items += [("grid", b.cell.name, b.geom) for b in siblings]
    return context_features(items)


class GridBoundaryAddForm(ServiceCheckedForm):
    """A new boundary version, written by grid.services.grid_boundaries_set in save_model.

    Validation ends with the service's own check (grid_boundaries_check: geometry, later versions,
    the community's partition), so a refusal is a form error on the page and nothing is written.
    """

    valid_from = forms.DateField(label="生效日期", widget=AdminDateWidget, initial=selectors.today)

    class Meta:
        model = GridBoundary
        fields = ["cell", "geom", "note"]

    def check(self, data: dict[str, Any], stored: GridBoundary | None) -> None:
        services.grid_boundaries_check(shapes={data["cell"].pk: data["geom"]}, valid_from=data["valid_from"])


class CurrentVersionFilter(admin.SimpleListFilter):
    title = "版本状态"
    parameter_name = "current"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "现行"), ("no", "历史")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[GridBoundary]) -> QuerySet[GridBoundary]:
        if self.value() == "yes":
            return queryset.filter(valid__upper_inf=True)
        if self.value() == "no":
            return queryset.filter(valid__upper_inf=False)
        return queryset


@admin.register(GridBoundary)
class GridBoundaryAdmin(ServiceAdminMixin, MapAdmin):
    """Add a version (through the service) or look at one; versions are never edited or deleted."""

    add_form = GridBoundaryAddForm
    list_display = [
        "cell_code",
        "cell_name",
        "community",
        "valid_from",
        "valid_to",
        "is_current",
        "note",
        "created_at",
    ]
    list_select_related = ["cell__community"]
    search_fields = ["cell__code", "cell__name", "note"]
    list_filter = [
        CurrentVersionFilter,
        ("cell__community__street", admin.RelatedOnlyFieldListFilter),
        "cell__community",
    ]
    autocomplete_fields = ["cell"]
    ordering = ["cell__code", "-valid"]

    @property
    def media(self) -> forms.Media:
        return super().media + MapWidget().media

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_fields(self, request: HttpRequest, obj: GridBoundary | None = None) -> list[str]:
        if obj is None:
            return ["cell", "valid_from", "note", "geom"]
        return ["cell", "valid_from", "valid_to", "note", "created_at", "boundary_map"]

    def get_readonly_fields(self, request: HttpRequest, obj: GridBoundary | None = None) -> list[str]:
        return [] if obj is None else self.get_fields(request, obj)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, change=change, **kwargs)

    def map_context(self, request: HttpRequest, obj: Any) -> list[dict[str, Any]]:
        # Opened from a grid's page (?cell=<id>): show its community, its neighbours and the
        # shape it has now, so the new one can be drawn against them.
        cell_id = request.GET.get("cell") or request.POST.get("cell")
        if not (cell_id and str(cell_id).isdigit()):
            return []
        cells = GridCell.objects.select_related("community")
        cell = access.scope(access.reach_of_request(request), cells).filter(pk=int(cell_id)).first()
        if cell is None:
            return []
        current = selectors.grid_boundaries_as_of().filter(cell=cell).first()
        own = context_features([("current", f"{cell.name}（现行边界）", current.geom)]) if current else []
        return _community_context(cell) + own

    def save_model(self, request: HttpRequest, obj: GridBoundary, form: Any, change: bool) -> None:
        data = form.cleaned_data
        result = services.grid_boundaries_set(
            shapes={data["cell"].pk: data["geom"]}, valid_from=data["valid_from"], note=data.get("note", "")
        )
        # The admin logs and redirects with `obj`: make it the version now in force (the one just
        # written, or the current one when the shape did not change).
        obj.pk = GridBoundary.objects.filter(cell=data["cell"], valid__upper_inf=True).values_list("pk", flat=True)[0]
        obj.refresh_from_db()
        for problem in result.warnings:
            self.message_user(request, problem.message, messages.WARNING)

    @admin.display(description="网格编码", ordering="cell__code")
    def cell_code(self, obj: GridBoundary) -> str:
        return obj.cell.code

    @admin.display(description="网格名称")
    def cell_name(self, obj: GridBoundary) -> str:
        return obj.cell.name

    @admin.display(description="社区")
    def community(self, obj: GridBoundary) -> Community:
        return obj.cell.community

    @admin.display(description="生效日期", ordering="valid")
    def valid_from(self, obj: GridBoundary) -> Any:
        return obj.valid.lower

    @admin.display(description="失效日期")
    def valid_to(self, obj: GridBoundary) -> str:
        return _valid_to_text(obj)

    @admin.display(description="现行", boolean=True)
    def is_current(self, obj: GridBoundary) -> bool:
        return bool(obj.valid.upper_inf)

    @admin.display(description="边界")
    def boundary_map(self, obj: GridBoundary) -> SafeString | str:
        return readonly_map("boundary", obj.geom, context=_community_context(obj.cell))


# --------------------------------------------------------------------------------------------
# 楼栋 / 党群服务中心
# --------------------------------------------------------------------------------------------


class BuildingForm(ServiceCheckedForm):
    class Meta:
        model = Building
        fields = ["code", "name", "address", "kind", "community", "households", "floors", "geom"]

    def check(self, data: dict[str, Any], stored: Building | None) -> None:
        services.building_check(building=stored, code=data["code"])


@admin.register(Building)
class BuildingAdmin(ServiceAdminMixin, MapAdmin):
    form = BuildingForm
    service_object = "building"
    create_service = services.building_create
    update_service = services.building_update
    delete_service = services.building_delete
    list_display = ["code", "name", "community", "grid_cell", "kind", "households", "floors"]
    list_select_related = ["community", "grid_cell"]
    search_fields = ["code", "name", "address"]
    list_filter = [("community__street", admin.RelatedOnlyFieldListFilter), "community", "kind"]
    fields = [
        "code",
        "name",
        "address",
        "kind",
        "community",
        "households",
        "floors",
        "geom",
        "grid_cell",
        "position",
    ]
    readonly_fields = ["grid_cell", "position"]

    @admin.display(description="位置（经度, 纬度）")
    def position(self, obj: Building) -> str:
        if obj.pk is None or obj.point is None:
            return "保存后按占地轮廓自动计算"
        return f"{obj.point.x:.6f}, {obj.point.y:.6f}"

    def map_context(self, request: HttpRequest, obj: Building | None) -> list[dict[str, Any]]:
        if obj is None:
            return []
        items = [("community", obj.community.name, obj.community.geom)]
        if obj.grid_cell_id:
            current = selectors.grid_boundaries_as_of().filter(cell_id=obj.grid_cell_id).first()
            if current:
                items.append(("grid", current.cell.name, current.geom))
        return context_features(items)


class ServiceCentreForm(ServiceCheckedForm):
    class Meta:
        model = ServiceCentre
        fields = ["code", "name", "level", "street", "community", "address", "service_radius_m", "geom"]

    def check(self, data: dict[str, Any], stored: ServiceCentre | None) -> None:
        services.service_centre_check(
            centre=stored,
            code=data["code"],
            level=data["level"],
            street=data["street"],
            community=data.get("community"),
        )


@admin.register(ServiceCentre)
class ServiceCentreAdmin(ServiceAdminMixin, MapAdmin):
    form = ServiceCentreForm
    service_object = "centre"
    create_service = services.service_centre_create
    update_service = services.service_centre_update
    delete_service = services.service_centre_delete
    list_display = ["code", "name", "level", "street", "community", "service_radius_m"]
    list_select_related = ["street", "community"]
    search_fields = ["code", "name", "address"]
    list_filter = ["level", "street"]


# --------------------------------------------------------------------------------------------
# 审计日志 / 角色授权
# --------------------------------------------------------------------------------------------


def audit_events_visible(*, reach: access.Reach, qs: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
    """Events of the streets where the user holds view_audit, and their own; nothing without it."""
    if reach.everything:
        return qs
    granting = access.CAPABILITIES["view_audit"]
    streets = {
        unit_id for (kind, unit_id), held in reach.unit_roles.items() if kind == "street" and held & granting
    }
    if not reach.can("view_audit"):
        return qs.none()
    return qs.filter(Q(street_id__in=streets) | Q(actor_id=reach.user_id))


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, AuditedAdminMixin, admin.ModelAdmin):
    """The audit log, read-only for everyone (the database refuses UPDATE and DELETE anyway)."""

    list_display = ["at", "actor_name", "action", "object_type", "object_id", "summary", "street", "ip"]
    list_select_related = ["street"]
    list_filter = ["action", ("street", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["actor_name", "object_type", "object_id", "summary", "reason"]
    date_hierarchy = "at"
    fields = (
        "at",
        "actor",
        "actor_name",
        "action",
        "object_type",
        "object_id",
        "summary",
        "changes_pretty",
        "reason",
        "ip",
        "street",
    )
    readonly_fields = fields
    show_full_result_count = False  # a count(*) over the whole log on every page is wasted work

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditEvent]:
        return audit_events_visible(reach=access.reach_of_request(request), qs=super().get_queryset(request))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj) and access.reach_of_request(request).can(
            "view_audit"
        )

    @admin.display(description="变更内容")
    def changes_pretty(self, obj: AuditEvent) -> SafeString:
        text = json.dumps(obj.changes, ensure_ascii=False, indent=2, sort_keys=True)
        return format_html("<pre>{}</pre>", text)


class RoleGrantForm(forms.ModelForm):
    """A new assignment, checked by grid.roles against the grantor's reach during validation, so
    a refusal is a form error and nothing is written."""

    reason = forms.CharField(label="授权事由", max_length=500, required=False)

    class Meta:
        model = RoleAssignment
        fields = ["user", "role", "street", "community", "grid_cell"]

    def __init__(self, *args: Any, grantor: access.Reach | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.grantor = grantor

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if not self.errors:  # the grant is checked once every field is valid
            try:
                roles.role_grant_check(
                    user=data.get("user"),
                    role=data.get("role", ""),
                    street=data.get("street"),
                    community=data.get("community"),
                    grid_cell=data.get("grid_cell"),
                    by=self.grantor,
                )
            except GridError as exc:
                raise forms.ValidationError(exc.message, code=exc.code) from exc
        return data

    def validate_unique(self) -> None:
        # The partial unique constraint (active rows) is checked by the service with its own message.
        return


def _revoke_selected(modeladmin: RoleAssignmentAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    reach = access.reach_of_request(request)
    revoked = sum(
        roles.role_revoke(assignment=a, by=reach, reason="管理后台批量撤销")
        for a in queryset.select_related("user", "street", "community", "grid_cell")
    )
    modeladmin.message_user(request, f"已撤销 {revoked} 项授权")


_revoke_selected.short_description = "撤销所选授权"  # type: ignore[attr-defined]
_revoke_selected.allowed_permissions = ("manage",)  # type: ignore[attr-defined]


@admin.register(RoleAssignment)
class RoleAssignmentAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Who holds which role where. Granting and revoking need manage_users and stay inside the
    grantor's street (grid.roles); rows are never edited or deleted, only revoked."""

    form = RoleGrantForm
    list_display = ["user", "role", "street", "community", "grid_cell", "granted_at", "revoked_at"]
    list_select_related = ["user", "street", "community", "grid_cell"]
    list_filter = [
        "role",
        ("revoked_at", admin.EmptyFieldListFilter),
        ("street", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["user__username", "user__first_name"]
    actions = [_revoke_selected]

    def _reach(self, request: HttpRequest) -> access.Reach:
        return access.reach_of_request(request)

    def get_queryset(self, request: HttpRequest) -> QuerySet[RoleAssignment]:
        return roles.role_assignments_manageable(reach=self._reach(request), qs=super().get_queryset(request))

    def has_manage_permission(self, request: HttpRequest) -> bool:
        return self._reach(request).can(roles.MANAGE)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj) and self.has_manage_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and self.has_manage_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a different unit or role is a revoke plus a new grant

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoked rows stay: who had which reach when is part of the record

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        grantor = self._reach(request)

        class BoundForm(form):  # type: ignore[valid-type, misc]
            def __init__(self, *args: Any, **kw: Any) -> None:
                super().__init__(*args, grantor=grantor, **kw)

        return BoundForm

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # Units offered are those inside the grantor's managed streets.
        model = db_field.related_model
        if model in (Street, Community, GridCell):
            reach = self._reach(request)
            streets = roles._manage_street_ids(reach)
            managed = access.Reach(street_ids=streets, everything=reach.everything)
            kwargs["queryset"] = access.scope(managed, model._default_manager.all())
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: RoleAssignment, form: Any, change: bool) -> None:
        try:
            saved = roles.role_grant(
                user=obj.user,
                role=obj.role,
                street=obj.street,
                community=obj.community,
                grid_cell=obj.grid_cell,
                reason=form.cleaned_data.get("reason", ""),
                by=self._reach(request),
            )
        except GridError as exc:
            # Only a concurrent identical grant gets here (the form ran the same checks); the
            # admin's transaction rolls back and the user sees the refusal as a message.
            raise PermissionDenied(exc.message) from exc
        obj.pk = saved.pk
        obj.granted_at = saved.granted_at


# Users, groups and tokens are written in the admin too: their writes are audited like ours.
register_audited_auth_admins()
