"""Admin of field events (走访 / 驻点联系): written only by the tablets' sync API (orgs.sync), read
and checked here; nobody adds, edits or deletes one in the admin."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.gis.geos import GeometryCollection, LineString
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from grid import selectors as grid_selectors
from grid.admin import MapWidget, ReadOnlyAdminMixin, context_features, readonly_map
from orgs.admin.writes import ServiceWritesMixin
from orgs.models import StationContact, Visit


def far_from_subject_m() -> float:
    """Beyond this distance between the captured position and the visited subject a record was
    probably not made on site; a street office may tune it (WANGGE_RULES)."""
    return float(settings.WANGGE_RULES["event_far_from_subject_m"])


class FarFromSubjectFilter(admin.SimpleListFilter):
    title = "定位与对象距离"
    parameter_name = "far"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", f"距离过远（超过{far_from_subject_m():g}米）"), ("no", "正常"), ("none", "无法计算")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        limit = far_from_subject_m()
        if self.value() == "yes":
            return queryset.filter(distance_to_subject_m__gt=limit)
        if self.value() == "no":
            return queryset.filter(distance_to_subject_m__lte=limit)
        if self.value() == "none":
            return queryset.filter(distance_to_subject_m__isnull=True)
        return queryset


class FieldEventAdmin(ReadOnlyAdminMixin, ServiceWritesMixin, admin.ModelAdmin):
    """Read-only pages of synced events: the record is what the tablet sent, so nobody adds, edits
    or deletes one here (a correction is a new record from the tablet). Anyone who may view the
    model and reaches the event's place opens it in view mode. Audited like every admin all the
    same, so a write path opened here by mistake would still leave its trace."""

    date_hierarchy = "occurred_at"
    ordering = ["-occurred_at"]
    list_per_page = 50
    # No count(*) over the unfiltered table on every page: events grow without bound.
    show_full_result_count = False
    # Only names and codes are shown in the list: the outlines of communities and footprints stay
    # in the database.
    _list_defer = ["community__geom", "building__geom", "building__point"]
    _place_fields: list[str | list[str] | tuple[str, ...]] = [
        "captured_position",
        "crs_display",
        "accuracy_m",
        "distance_display",
        "event_map",
    ]
    _crs_names = {
        "wgs84": "WGS-84（卫星定位原始坐标）",
        "gcj02": "GCJ-02（高德/腾讯地图）",
        "bd09": "BD-09（百度地图）",
    }

    @property
    def media(self) -> forms.Media:
        return super().media + MapWidget().media

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).defer(*self._list_defer)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [str(field) for _, options in self.fieldsets or () for field in options["fields"]]

    @admin.display(description="发生时间", ordering="occurred_at")
    def occurred(self, obj: Any) -> str:
        return f"{timezone.localtime(obj.occurred_at):%Y-%m-%d %H:%M}"

    @admin.display(description="定位精度", ordering="accuracy_m")
    def accuracy(self, obj: Any) -> str:
        return "—" if obj.accuracy_m is None else f"±{obj.accuracy_m:.0f} 米"

    @admin.display(description="定位与对象距离", ordering="distance_to_subject_m")
    def distance(self, obj: Any) -> SafeString | str:
        if obj.distance_to_subject_m is None:
            return "—"
        text = f"{obj.distance_to_subject_m:.0f} 米"
        if obj.distance_to_subject_m > far_from_subject_m():
            return format_html(
                '{} <span class="wangge-far" style="color:#b91c1c;font-weight:bold" title="{}">距离过远</span>',
                text,
                f"采集定位与走访对象相距超过{far_from_subject_m():g}米，记录可能不在现场",
            )
        return text

    @admin.display(description="定位与对象距离")
    def distance_display(self, obj: Any) -> SafeString | str:
        return self.distance(obj)

    @admin.display(description="采集位置（经度, 纬度）")
    def captured_position(self, obj: Any) -> str:
        if obj.captured_lon is None:
            return "未采集定位"
        return f"{obj.captured_lon:.6f}, {obj.captured_lat:.6f}"

    # Names without codes in the list: "name（code）" of both would push the distance column,
    # the one a clerk looks for, off a 1280-pixel screen.
    @admin.display(description="社区", ordering="community__name")
    def community_name(self, obj: Any) -> str:
        return obj.community.name

    @admin.display(description="网格", ordering="grid_cell__name")
    def grid_name(self, obj: Any) -> str:
        return obj.grid_cell.name if obj.grid_cell_id else "—"

    @admin.display(description="采集坐标系")
    def crs_display(self, obj: Any) -> str:
        return self._crs_names.get(obj.captured_crs, obj.captured_crs or "—")

    @admin.display(description="楼栋", ordering="building__code")
    def building_code(self, obj: Any) -> str:
        return obj.building.code if obj.building_id else "—"

    @admin.display(description="地图")
    def event_map(self, obj: Any) -> SafeString | str:
        """The captured position (blue marker) joined by a blue line to the place where the event
        counts, over the community, the grid as drawn on the event's day and the visited building's
        footprint. Both ends are in the drawn geometry so the map frames them together (the
        read-only map fits its geometry, not the context)."""
        day = timezone.localdate(obj.occurred_at)
        items: list[tuple[str, str, Any]] = [("community", obj.community.name, obj.community.geom)]
        if obj.grid_cell_id:
            boundary = (
                grid_selectors.grid_boundaries_as_of(on_date=day).filter(cell_id=obj.grid_cell_id).first()
            )
            if boundary is not None:
                items.append(("grid", boundary.cell.name, boundary.geom))
        # admin_map.js styles context by kind; "current" is its orange outline, which sets the
        # building apart from the grey community and grid.
        if obj.building_id:
            items.append(("current", obj.building.name, obj.building.geom))
        if obj.point is None:
            geometry, note = obj.place, "未采集定位，标记为计入位置（所走访楼栋/企业）。"
        elif obj.point.distance(obj.place) > 0:
            line = LineString(obj.point, obj.place, srid=obj.place.srid)
            geometry = GeometryCollection(obj.point, line, srid=obj.place.srid)
            note = "蓝色标记为采集定位，蓝线通向计入位置（所走访楼栋/企业）；橙色虚线为楼栋轮廓。"
        else:
            geometry, note = obj.point, "蓝色标记为采集定位；橙色虚线为楼栋轮廓。"
        # One wrapper: the admin lays a read-only field's children out in a row.
        return format_html(
            '<div class="wangge-map">{}<p class="help">{}</p></div>',
            readonly_map("event", geometry, context=context_features(items)),
            note,
        )


@admin.register(Visit)
class VisitAdmin(FieldEventAdmin):
    # The distance comes right after who and when: beside the admin's navigation and filters a
    # 1280-pixel screen shows about six columns, and the flag must be among them.
    list_display = [
        "occurred",
        "kind_display",
        "reporter_name",
        "distance",
        "accuracy",
        "community_name",
        "grid_name",
        "building_code",
        "subject",
    ]
    list_filter = ["kind", FarFromSubjectFilter, "community"]
    search_fields = ["reporter_name", "building__code"]
    list_select_related = ["community", "grid_cell", "building", "enterprise"]
    _list_defer = [*FieldEventAdmin._list_defer, "enterprise__geom"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "occurred_at",
                    "kind",
                    "reporter_name",
                    "worker",
                    "community",
                    "grid_cell",
                    "building",
                    "household",
                    "enterprise",
                    "summary",
                ]
            },
        ),
        ("定位", {"fields": FieldEventAdmin._place_fields}),
        ("同步", {"fields": ["id", "reporter", "received_at"]}),
    ]

    @admin.display(description="类型", ordering="kind")
    def kind_display(self, obj: Visit) -> str:
        return obj.get_kind_display()

    @admin.display(description="户/联系对象")
    def subject(self, obj: Visit) -> str:
        return obj.household or (obj.enterprise.name if obj.enterprise is not None else "—")


@admin.register(StationContact)
class StationContactAdmin(FieldEventAdmin):
    list_display = [
        "occurred",
        "kind_display",
        "reporter_name",
        "on_site",
        "distance",
        "accuracy",
        "cadre_name",
        "community_name",
        "grid_name",
        "building_code",
        "subject",
    ]
    list_filter = ["kind", "on_site", FarFromSubjectFilter, "community"]
    search_fields = ["reporter_name", "building__code", "cadre__name"]
    list_select_related = ["community", "grid_cell", "building", "cadre"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "occurred_at",
                    "kind",
                    "reporter_name",
                    "cadre",
                    "community",
                    "grid_cell",
                    "building",
                    "contact_name",
                    "summary",
                ]
            },
        ),
        ("定位", {"fields": ["on_site", *FieldEventAdmin._place_fields]}),
        ("同步", {"fields": ["id", "reporter", "received_at"]}),
    ]

    @admin.display(description="类型", ordering="kind")
    def kind_display(self, obj: StationContact) -> str:
        return obj.get_kind_display()

    @admin.display(description="驻点干部", ordering="cadre__name")
    def cadre_name(self, obj: StationContact) -> str:
        return obj.cadre.name

    @admin.display(description="户/联系对象")
    def subject(self, obj: StationContact) -> str:
        return obj.contact_name or "—"
