"""Admin for organisations and people.

Writes go through orgs.services so the tree rules and the encryption of personal data apply;
the forms run the services' own checks during validation, so a refusal shows as a form error with
the service's Chinese message instead of a 500. Personal data is shown masked: the cipher and
hash columns are never in a form, and a form field takes a new clear value to replace it.

Every list, object page and choice is limited to the user's reach (orgs.access, one mixin for all
classes); an object outside it is "not found", as a missing one. Writing needs edit_orgs over the
object's place. Clear ID numbers and phones appear only on request (`?pii=1` on a member or worker
list or page), only for the people the user holds view_pii over, and each such page writes a
read_pii audit row through orgs.access.pii_visible.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.gis.geos import GeometryCollection, LineString
from django.core.exceptions import ValidationError
from django.db.models import Count, Model, Q, QuerySet
from django.db.models.functions import TruncDate
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from leaflet.admin import LeafletGeoAdmin

from edge.errors import DomainError
from grid import access as grid_access
from grid import selectors as grid_selectors
from grid.admin import MapWidget, context_features, readonly_map, related_only_list_filter
from grid.admin_audit import AuditedAdminMixin
from grid.models import Community
from orgs import access, pii, services
from orgs.models import (
    Cadre,
    CommitteeSeat,
    Enterprise,
    GridWorker,
    PartyMember,
    PartyOrganisation,
    Rectification,
    StarRating,
    StationContact,
    StationedCadre,
    Visit,
)


def _as_validation_error(exc: DomainError) -> ValidationError:
    return ValidationError(exc.message, code=exc.code)


def _masked_or_dash(value: str) -> str:
    return value or "—"


# ---------------------------------------------------------------------------------------------
# Reach


# Models scoped through the organisation they belong to; strict, so that a grid worker does not
# see, through the community organisation above their grid, its rating or rectification.
_SCOPED_BY_ORG = {Rectification: "org", StarRating: "org", CommitteeSeat: "org"}


def admin_scope(reach: grid_access.Reach, qs: QuerySet, *, strict: bool = False) -> QuerySet:
    """`qs` limited to `reach`, for any model this admin lists or offers as a choice."""
    model = qs.model
    if model is PartyOrganisation:
        return access.party_orgs_in_reach(reach, qs, strict=strict)
    if model in access.SCOPES:
        return access.scope(reach, qs)
    if model in grid_access.SCOPES:
        return grid_access.scope(reach, qs)
    if model in _SCOPED_BY_ORG:
        if reach.everything:
            return qs
        orgs = access.party_orgs_in_reach(reach, strict=True).values("pk")
        return qs.filter(**{f"{_SCOPED_BY_ORG[model]}__in": orgs})
    raise LookupError(f"no reach scope for {model.__name__}")


def _scopable(model: type[Model]) -> bool:
    return (
        model is PartyOrganisation
        or model in access.SCOPES
        or model in grid_access.SCOPES
        or model in _SCOPED_BY_ORG
    )



class OrgKindFilter(admin.ChoicesFieldListFilter):
    # The member's own category is also "类别"; say whose kind this is.
    title = "所在党组织类别"

class ReachAdminMixin:
    """Lists, object pages, choices and filters limited to the user's reach; writes need edit_orgs
    over the object. Out-of-reach objects are not found, exactly like missing ones (Django's own
    "may have been deleted" redirect), so ids cannot be probed through the admin either."""

    def _reach(self, request: HttpRequest) -> grid_access.Reach:
        return grid_access.reach_of_request(request)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)  # type: ignore[misc]
        return admin_scope(self._reach(request), qs)

    def _choices(self, request: HttpRequest, db_field: Any, kwargs: dict[str, Any]) -> None:
        model = db_field.related_model
        if "queryset" not in kwargs and _scopable(model):
            # Choices are what one may link to: the part of the reach where one may edit.
            edit = access.capability_reach(self._reach(request), "edit_orgs")
            kwargs["queryset"] = admin_scope(edit, model._default_manager.all(), strict=True)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        self._choices(request, db_field, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        self._choices(request, db_field, kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]

    def get_list_filter(self, request: HttpRequest) -> Any:
        # A plain related filter lists every street/community in the database.
        return related_only_list_filter(self.model, super().get_list_filter(request))  # type: ignore[misc]

    def _may_edit(self, request: HttpRequest, obj: Any) -> bool:
        edit = access.capability_reach(self._reach(request), "edit_orgs")
        if edit.is_empty:
            return False
        if obj is None:
            return True
        return admin_scope(edit, type(obj)._default_manager.filter(pk=obj.pk), strict=True).exists()

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return super().has_add_permission(request, *args) and self._may_edit(request, None)  # type: ignore[misc]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and self._may_edit(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and self._may_edit(request, obj)  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# Party organisations


class PartyOrganisationForm(forms.ModelForm):
    class Meta:
        model = PartyOrganisation
        fields = [
            "name",
            "code",
            "kind",
            "level",
            "parent",
            "street",
            "community",
            "grid_cell",
            "buildings",
            "premises",
            "unit_name",
            "founded_on",
            "term_started_on",
            "term_years",
            "secretary",
            "is_enlarged",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "street" in self.fields:  # absent on a view-only page
            self.fields["street"].required = False
            self.fields["street"].help_text = "留空则取上级党组织所属街道"

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("term_years") and data.get("kind"):
            data["term_years"] = services.default_term_years(data["kind"])
        if data.get("parent") is not None and not data.get("street"):
            data["street"] = data["parent"].street
        return data

    def _post_clean(self) -> None:
        super()._post_clean()
        if self.errors:
            return
        buildings = list(self.cleaned_data.get("buildings") or [])
        try:
            services.party_org_check(org=self.instance, buildings=buildings)
        except DomainError as exc:
            self.add_error(None, _as_validation_error(exc))


class SeatInline(ReachAdminMixin, admin.TabularInline):
    model = CommitteeSeat
    extra = 0
    fields = ["person_name", "unit_name", "is_resident_unit_head", "liaison_units"]
    verbose_name = "委员"
    verbose_name_plural = "大工委/大党委委员（分片联系社区在委员页面编辑）"
    show_change_link = True


@admin.register(PartyOrganisation)
class PartyOrganisationAdmin(AuditedAdminMixin, ReachAdminMixin, admin.ModelAdmin):
    form = PartyOrganisationForm
    list_display = ["name", "code", "kind", "level", "street", "parent", "attachment", "is_enlarged", "weak"]
    list_filter = ["kind", "level", "street", "is_enlarged", "weak"]
    search_fields = ["name", "code", "unit_name"]
    raw_id_fields = ["parent", "community", "grid_cell", "premises", "secretary", "buildings"]
    list_select_related = ["street", "parent", "community", "grid_cell", "premises"]
    readonly_fields = ["weak"]
    inlines = [SeatInline]
    fieldsets = [
        (None, {"fields": ["name", "code", "kind", "level", "parent", "street"]}),
        ("挂接的空间单元", {"fields": ["community", "grid_cell", "buildings", "premises", "unit_name"]}),
        (
            "换届与班子",
            {"fields": ["founded_on", "term_started_on", "term_years", "secretary", "is_enlarged", "weak"]},
        ),
    ]

    @admin.display(description="挂接")
    def attachment(self, obj: PartyOrganisation) -> str:
        unit = obj.grid_cell or obj.premises or obj.community
        return (
            str(unit)
            if unit
            else ("楼栋" if obj.kind == PartyOrganisation.Kind.BUILDING_GROUP else obj.street.name)
        )

    def save_model(self, request: Any, obj: PartyOrganisation, form: Any, change: bool) -> None:
        data = {f: form.cleaned_data[f] for f in services.ORG_FIELDS if f in form.cleaned_data}
        buildings = list(form.cleaned_data.get("buildings") or [])
        if change:
            saved = services.party_org_update(org=obj, buildings=buildings, **data)
        else:
            saved = services.party_org_create(buildings=buildings, **data)
        obj.pk = saved.pk
        obj.refresh_from_db()

    def save_related(self, request: Any, form: Any, formsets: Any, change: bool) -> None:
        # The service already wrote the buildings (M2M); only the inlines are left.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)


@admin.register(Rectification)
class RectificationAdmin(AuditedAdminMixin, ReachAdminMixin, admin.ModelAdmin):
    list_display = ["org", "flagged_on", "converted_on"]
    list_filter = ["converted_on", "org__street"]
    search_fields = ["org__name", "reasons"]
    raw_id_fields = ["org"]
    date_hierarchy = "flagged_on"

    def get_readonly_fields(self, request: Any, obj: Rectification | None = None) -> list[str]:
        if obj is None:
            return []
        return ["org", "flagged_on", "converted_on"] if obj.converted_on else ["org", "flagged_on"]

    def save_model(self, request: Any, obj: Rectification, form: Any, change: bool) -> None:
        if not change:
            saved = services.party_org_flag_weak(
                org=obj.org, flagged_on=obj.flagged_on, reasons=obj.reasons, measures=obj.measures
            )
            obj.pk = saved.pk
            return
        converted_on = obj.converted_on
        Rectification.objects.filter(pk=obj.pk).update(reasons=obj.reasons, measures=obj.measures)
        if converted_on and "converted_on" in form.changed_data:
            obj.converted_on = None
            services.rectification_convert(rectification=obj, converted_on=converted_on)


@admin.register(StarRating)
class StarRatingAdmin(AuditedAdminMixin, ReachAdminMixin, admin.ModelAdmin):
    list_display = ["org", "year", "stars", "score", "satisfaction_score", "total_score"]
    list_filter = ["year", "stars", "org__street"]
    search_fields = ["org__name"]
    raw_id_fields = ["org"]
    readonly_fields = ["total_score"]

    def save_model(self, request: Any, obj: StarRating, form: Any, change: bool) -> None:
        saved, _created = services.star_rating_record(
            org=obj.org,
            year=obj.year,
            score=obj.score,
            satisfaction_score=obj.satisfaction_score,
            stars=obj.stars,
        )
        obj.pk = saved.pk


class CommitteeSeatForm(forms.ModelForm):
    class Meta:
        model = CommitteeSeat
        fields = [
            "org",
            "person_name",
            "unit_name",
            "is_resident_unit_head",
            "liaison_communities",
            "liaison_units",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        org = data.get("org")
        if org is not None:
            if not org.is_enlarged:
                raise ValidationError("该党组织不是大工委/大党委", code="seat_org_not_enlarged")
            outside = [c.name for c in data.get("liaison_communities") or [] if c.street_id != org.street_id]
            if outside:
                raise ValidationError(
                    f"分片联系社区 {'、'.join(outside)} 不在本街道内", code="seat_liaison_outside_street"
                )
        return data


@admin.register(CommitteeSeat)
class CommitteeSeatAdmin(AuditedAdminMixin, ReachAdminMixin, admin.ModelAdmin):
    form = CommitteeSeatForm
    list_display = ["person_name", "unit_name", "org", "is_resident_unit_head"]
    list_filter = ["is_resident_unit_head", "org__street"]
    search_fields = ["person_name", "unit_name", "org__name"]
    filter_horizontal = ["liaison_communities"]


# ---------------------------------------------------------------------------------------------
# Enterprises


class EnterpriseForm(forms.ModelForm):
    class Meta:
        model = Enterprise
        fields = [
            "name",
            "kind",
            "credit_code",
            "building",
            "geom",
            "employee_count",
            "covering_joint_branch",
            "instructor",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        point, building = data.get("geom"), data.get("building")
        if point is not None and not Community.objects.filter(geom__covers=point).exists():
            raise ValidationError("该位置不在任何社区范围内", code="enterprise_outside_communities")
        if point is None and building is None:
            raise ValidationError("必须给出位置或所在楼栋", code="enterprise_location_missing")
        branch = data.get("covering_joint_branch")
        if branch is not None and branch.kind != PartyOrganisation.Kind.JOINT_BRANCH:
            raise ValidationError("覆盖的党组织必须是联合党支部", code="enterprise_joint_branch_kind")
        return data


@admin.register(Enterprise)
class EnterpriseAdmin(AuditedAdminMixin, ReachAdminMixin, LeafletGeoAdmin):
    form = EnterpriseForm
    list_display = [
        "name",
        "kind",
        "credit_code",
        "community",
        "employee_count",
        "covering_joint_branch",
        "instructor",
    ]
    list_filter = ["kind", "community__street", "community"]
    search_fields = ["name", "credit_code"]
    raw_id_fields = ["building", "covering_joint_branch", "instructor"]
    readonly_fields = ["community"]
    list_select_related = ["community", "covering_joint_branch", "instructor"]

    def save_model(self, request: Any, obj: Enterprise, form: Any, change: bool) -> None:
        data = {f: form.cleaned_data[f] for f in services.ENTERPRISE_FIELDS if f in form.cleaned_data}
        # The form ran the same checks; only a concurrent change could make the service refuse now.
        if change:
            saved = services.enterprise_update(enterprise=obj, point=form.cleaned_data.get("geom"), **data)
        else:
            saved = services.enterprise_create(point=form.cleaned_data.get("geom"), **data)
        obj.pk = saved.pk
        obj.refresh_from_db()


@admin.register(Cadre)
class CadreAdmin(AuditedAdminMixin, ReachAdminMixin, admin.ModelAdmin):
    list_display = ["name", "unit_name", "street", "user"]
    list_filter = ["street"]
    search_fields = ["name", "unit_name"]
    raw_id_fields = ["user"]


# ---------------------------------------------------------------------------------------------
# People: masked personal data


class _PiiFormMixin(forms.ModelForm):
    """Adds clear-value fields for sealed columns: blank keeps the stored value, a value replaces it."""

    pii_fields: tuple[str, ...] = ()

    def clean_pii(self, field: str, normaliser: Any) -> None:
        value = (self.cleaned_data.get(field) or "").strip()
        clear = self.cleaned_data.get(f"{field}_clear")
        if clear:
            self.cleaned_data[field] = ""
            return
        if not value:
            self.cleaned_data[field] = None  # unchanged
            return
        try:
            self.cleaned_data[field] = normaliser(value)
        except DomainError as exc:
            self.add_error(field, _as_validation_error(exc))


class PiiAdminMixin:
    """Masked ID numbers and phones; clear ones on request (`?pii=1`), for the people the user
    holds view_pii over, with the read_pii audit row written by orgs.access.pii_visible."""

    def _pii_requested(self, request: HttpRequest) -> bool:
        return getattr(request, "_wangge_pii", False)

    def _mark_pii(self, request: HttpRequest, objects: list[Any], purpose: str) -> None:
        visible = (
            access.pii_visible(reach=grid_access.reach_of_request(request), objects=objects, purpose=purpose)
            if self._pii_requested(request)
            else set()
        )
        can = grid_access.reach_of_request(request).can("view_pii")
        for obj in objects:
            obj._pii_unmasked = obj.pk in visible
            obj._pii_can_request = can and not obj._pii_unmasked

    def _take_pii_flag(self, request: HttpRequest) -> None:
        # The change list refuses query parameters it does not know: take ours out first.
        if "pii" in request.GET:
            request._wangge_pii = request.GET.get("pii") == "1"
            request.GET = request.GET.copy()
            del request.GET["pii"]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        self._take_pii_flag(request)
        return super().changelist_view(request, extra_context)  # type: ignore[misc]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> Any:
        self._take_pii_flag(request)
        return super().change_view(request, object_id, form_url, extra_context)  # type: ignore[misc]

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        cl = super().get_changelist_instance(request)  # type: ignore[misc]
        # Evaluates the page once; the template iterates the same cached objects.
        self._mark_pii(request, list(cl.result_list), "管理后台列表")
        return cl

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict,
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> Any:
        if obj is not None and obj.pk is not None:
            self._mark_pii(request, [obj], "管理后台详情")
        return super().render_change_form(request, context, add, change, form_url, obj)  # type: ignore[misc]

    def pii_shown(self, obj: Any, cipher: str, mask: Any) -> str:
        clear = pii.pii_reveal(cipher)
        if getattr(obj, "_pii_unmasked", False):
            return _masked_or_dash(clear)
        masked = _masked_or_dash(mask(clear))
        if clear and getattr(obj, "_pii_can_request", False):
            return format_html('{} <a href="?pii=1" title="查看明文将记入审计日志">显示明文</a>', masked)
        return masked


class PartyMemberForm(_PiiFormMixin):
    id_number = forms.CharField(label="身份证号", required=False, help_text="填写则替换原值；留空保持不变")
    id_number_clear = forms.BooleanField(label="清除身份证号", required=False)
    phone = forms.CharField(label="联系电话", required=False, help_text="填写则替换原值；留空保持不变")
    phone_clear = forms.BooleanField(label="清除联系电话", required=False)

    class Meta:
        model = PartyMember
        fields = [
            "name",
            "gender",
            "birth_date",
            "joined_on",
            "status",
            "category",
            "organisation",
            "residence_building",
            "work_unit",
            "work_enterprise",
            "reported_community",
            "reported_on",
            "dues_paid_through",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        self.clean_pii("id_number", pii.normalise_id_number)
        self.clean_pii("phone", pii.normalise_phone)
        if data.get("id_number"):
            dup = PartyMember.objects.filter(id_number_hash=pii.keyed_hash(data["id_number"]))
            if self.instance.pk:
                dup = dup.exclude(pk=self.instance.pk)
            if dup.exists():
                self.add_error(
                    "id_number", ValidationError("该身份证号已登记为党员", code="member_duplicate_id_number")
                )
        return data


def _member_pii_kwargs(form: Any) -> dict[str, str]:
    out = {}
    for field in ("id_number", "phone"):
        value = form.cleaned_data.get(field)
        if value is not None:
            out[field] = value
    return out


@admin.register(PartyMember)
class PartyMemberAdmin(AuditedAdminMixin, PiiAdminMixin, ReachAdminMixin, admin.ModelAdmin):
    form = PartyMemberForm
    list_display = [
        "name",
        "gender",
        "status",
        "category",
        "organisation",
        "id_number_display",
        "phone_display",
    ]
    list_filter = ["status", "category", "gender", "organisation__street", ("organisation__kind", OrgKindFilter)]
    search_fields = ["name", "work_unit"]
    raw_id_fields = ["organisation", "residence_building", "work_enterprise", "reported_community"]
    readonly_fields = ["id_number_display", "phone_display"]
    list_select_related = ["organisation"]
    fieldsets = [
        (
            None,
            {"fields": ["name", "gender", "birth_date", "joined_on", "status", "category", "organisation"]},
        ),
        (
            "个人信息（加密保存，仅显示脱敏值）",
            {
                "fields": [
                    "id_number_display",
                    "id_number",
                    "id_number_clear",
                    "phone_display",
                    "phone",
                    "phone_clear",
                ]
            },
        ),
        (
            "居住与双报到",
            {
                "fields": [
                    "residence_building",
                    "work_unit",
                    "work_enterprise",
                    "reported_community",
                    "reported_on",
                ]
            },
        ),
        ("党费", {"fields": ["dues_paid_through"]}),
    ]

    @admin.display(description="身份证号")
    def id_number_display(self, obj: PartyMember) -> str:
        return self.pii_shown(obj, obj.id_number_cipher, pii.mask_id_number)

    @admin.display(description="联系电话")
    def phone_display(self, obj: PartyMember) -> str:
        return self.pii_shown(obj, obj.phone_cipher, pii.mask_phone)

    def get_search_results(self, request: Any, queryset: Any, search_term: str) -> tuple[Any, bool]:
        """An exact ID number or phone finds the member through the keyed hash; text searches names."""
        qs, distinct = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        for hasher in (pii.id_number_hash, pii.phone_hash):
            try:
                key = hasher(term)
            except DomainError:
                continue
            qs |= queryset.filter(id_number_hash=key) | queryset.filter(phone_hash=key)
        return qs, distinct

    def save_model(self, request: Any, obj: PartyMember, form: Any, change: bool) -> None:
        data = {f: form.cleaned_data[f] for f in services.MEMBER_FIELDS if f in form.cleaned_data}
        if change:
            saved = services.party_member_update(member=obj, **data, **_member_pii_kwargs(form))
        else:
            saved = services.party_member_create(**data, **_member_pii_kwargs(form))
        obj.pk = saved.pk
        obj.refresh_from_db()


class GridWorkerForm(_PiiFormMixin):
    phone = forms.CharField(label="联系电话", required=False, help_text="填写则替换原值；留空保持不变")
    phone_clear = forms.BooleanField(label="清除联系电话", required=False)

    class Meta:
        model = GridWorker
        fields = ["name", "user", "full_time", "community", "grid_cells", "active"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        self.clean_pii("phone", pii.normalise_phone)
        community = data.get("community")
        if community is not None:
            try:
                services.grid_worker_check_cells(
                    community_id=community.pk, cells=list(data.get("grid_cells") or [])
                )
            except DomainError as exc:
                self.add_error("grid_cells", _as_validation_error(exc))
        return data


@admin.register(GridWorker)
class GridWorkerAdmin(AuditedAdminMixin, PiiAdminMixin, ReachAdminMixin, admin.ModelAdmin):
    form = GridWorkerForm
    list_display = ["name", "community", "full_time", "active", "phone_display"]
    list_filter = ["full_time", "active", "community__street", "community"]
    search_fields = ["name"]
    raw_id_fields = ["user", "community", "grid_cells"]
    readonly_fields = ["phone_display"]
    list_select_related = ["community"]

    @admin.display(description="联系电话")
    def phone_display(self, obj: GridWorker) -> str:
        return self.pii_shown(obj, obj.phone_cipher, pii.mask_phone)

    def save_model(self, request: Any, obj: GridWorker, form: Any, change: bool) -> None:
        data = {
            f: form.cleaned_data[f]
            for f in ("name", "community", "full_time", "user")
            if f in form.cleaned_data
        }
        extra = {"phone": form.cleaned_data["phone"]} if form.cleaned_data.get("phone") is not None else {}
        cells = list(form.cleaned_data.get("grid_cells") or [])
        if change:
            saved = services.grid_worker_update(
                worker=obj, grid_cells=cells, active=form.cleaned_data.get("active", True), **data, **extra
            )
        else:
            saved = services.grid_worker_create(grid_cells=cells, **data, **extra)
        obj.pk = saved.pk
        obj.refresh_from_db()

    def save_related(self, request: Any, form: Any, formsets: Any, change: bool) -> None:
        for formset in formsets:  # grid cells were written by the service
            self.save_formset(request, form, formset, change=change)


@admin.register(StationedCadre)
class StationedCadreAdmin(AuditedAdminMixin, ReachAdminMixin, admin.ModelAdmin):
    list_display = [
        "name",
        "community",
        "period_start",
        "period_end",
        "month_days_column",
        "month_contacts_column",
    ]
    list_filter = ["community__street", "community"]
    search_fields = ["name"]
    raw_id_fields = ["user", "community"]
    date_hierarchy = "period_start"
    readonly_fields = ["month_duty"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[StationedCadre]:
        # This month's contacts and on-site days per cadre, for the list and the page alike: one
        # join and GROUP BY, not a query per row.
        start, end = _this_month()
        in_month = Q(contacts__occurred_at__gte=start, contacts__occurred_at__lt=end)
        return super().get_queryset(request).annotate(
            month_contacts=Count(
                "contacts", distinct=True, filter=in_month & Q(contacts__kind=StationContact.Kind.CONTACT)
            ),
            # Attendance is days with an on-site check-in, counted by local date.
            month_days=Count(
                TruncDate("contacts__occurred_at"),
                distinct=True,
                filter=in_month & Q(contacts__kind=StationContact.Kind.CHECK_IN, contacts__on_site=True),
            ),
        )

    @admin.display(description="本月履职")
    def month_duty(self, obj: StationedCadre) -> SafeString | str:
        if obj.pk is None:
            return "—"
        start, _ = _this_month()
        url = reverse("admin:orgs_stationcontact_changelist") + f"?cadre__exact={obj.pk}"
        return format_html(
            '联系群众 {} / {} 次；在岗驻点 {} / {} 天（{}年{}月）{} <a href="{}">查看联系记录</a>',
            obj.month_contacts,  # type: ignore[attr-defined]
            obj.required_contacts_per_month,
            obj.month_days,  # type: ignore[attr-defined]
            obj.required_days_per_month,
            start.year,
            start.month,
            _behind_pace_flag(obj),
            url,
        )

    @admin.display(description="本月联系/应联系")
    def month_contacts_column(self, obj: StationedCadre) -> str:
        return f"{obj.month_contacts} / {obj.required_contacts_per_month}"  # type: ignore[attr-defined]

    @admin.display(description="本月驻点/应驻（天）")
    def month_days_column(self, obj: StationedCadre) -> SafeString:
        return format_html(
            "{} / {} {}",
            obj.month_days,  # type: ignore[attr-defined]
            obj.required_days_per_month,
            _behind_pace_flag(obj),
        )


def _this_month() -> tuple[datetime, datetime]:
    """[first instant of this local month, first instant of the next)."""
    tz = timezone.get_current_timezone()
    first = timezone.localdate().replace(day=1)
    after = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return datetime.combine(first, time.min, tzinfo=tz), datetime.combine(after, time.min, tzinfo=tz)


def _behind_pace_flag(cadre: StationedCadre) -> SafeString | str:
    """A red mark when the month's on-site days or contacts lag well behind an even pace (below
    80 % of what the requirement asks by today): the street office follows up before the month
    ends, not after."""
    today = timezone.localdate()
    start, end = _this_month()
    share = today.day / (end - start).days
    behind = any(
        done < 0.8 * required * share
        for done, required in (
            (cadre.month_days, cadre.required_days_per_month),  # type: ignore[attr-defined]
            (cadre.month_contacts, cadre.required_contacts_per_month),  # type: ignore[attr-defined]
        )
    )
    return format_html('<strong style="color:#b91c1c">{}</strong>', "进度落后") if behind else ""


# ---------------------------------------------------------------------------------------------
# Field events (走访 / 驻点联系): written only by the tablets' sync API, checked here


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


class FieldEventAdmin(AuditedAdminMixin, ReachAdminMixin, admin.ModelAdmin):
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
    _place_fields = ["captured_position", "crs_display", "accuracy_m", "distance_display", "event_map"]
    _crs_names = {
        "wgs84": "WGS-84（卫星定位原始坐标）",
        "gcj02": "GCJ-02（高德/腾讯地图）",
        "bd09": "BD-09（百度地图）",
    }

    @property
    def media(self) -> forms.Media:
        return super().media + MapWidget().media

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).defer(*self._list_defer)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field for _, options in self.fieldsets for field in options["fields"]]

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
        return obj.household or (obj.enterprise.name if obj.enterprise_id else "—")


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
