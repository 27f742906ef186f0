"""Admin of people: party members and grid workers (personal data masked), street cadres and
stationed cadres (驻点干部) with this month's duty against the requirement.

Personal data is shown masked: the cipher and hash columns are never in a form, and a form field
takes a new clear value to replace it. Clear ID numbers and phones appear only on request
(`?pii=1` on a member or worker list or page), only for the people the user holds view_pii over,
and each such page writes a read_pii audit row through orgs.access.pii_visible.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from edge.errors import DomainError
from grid import access as grid_access
from orgs import access, pii, services
from orgs.admin.writes import ServiceWritesMixin, as_validation_error
from orgs.models import Cadre, GridWorker, PartyMember, StationContact, StationedCadre
from orgs.rules import cadre_behind_pace


def _masked_or_dash(value: str) -> str:
    return value or "—"


class OrgKindFilter(admin.ChoicesFieldListFilter):
    # The member's own category is also "类别"; say whose kind this is.
    title = "所在党组织类别"


# ---------------------------------------------------------------------------------------------
# Street cadres (干部)


@admin.register(Cadre)
class CadreAdmin(ServiceWritesMixin, admin.ModelAdmin):
    list_display = ["name", "unit_name", "street", "user"]
    list_filter = ["street"]
    search_fields = ["name", "unit_name"]
    raw_id_fields = ["user"]
    fields = ["name", "unit_name", "street", "user"]

    def save_model(self, request: Any, obj: Cadre, form: Any, change: bool) -> None:
        self.save_through(
            request, obj, form, change, fields=services.CADRE_FIELDS,
            create=services.cadre_create, update=services.cadre_update, object_arg="cadre",
        )

    def delete_model(self, request: Any, obj: Cadre) -> None:
        self.write(request, services.cadre_delete, cadre=obj)


# ---------------------------------------------------------------------------------------------
# Party members and grid workers: masked personal data


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
            self.add_error(field, as_validation_error(exc))


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
            request._wangge_pii = request.GET.get("pii") == "1"  # type: ignore[attr-defined]
            query = request.GET.copy()
            del query["pii"]
            request.GET = query  # type: ignore[assignment]

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
        super().clean()
        data = self.cleaned_data
        self.clean_pii("id_number", pii.normalise_id_number)
        self.clean_pii("phone", pii.normalise_phone)
        return data

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]
        if self.errors:
            return
        try:
            services.party_member_check(member=self.instance, id_number=self.cleaned_data.get("id_number"))
        except DomainError as exc:
            field = "id_number" if exc.code == "member_duplicate_id_number" else None
            self.add_error(field, as_validation_error(exc))


def _member_pii_kwargs(form: Any) -> dict[str, str]:
    out = {}
    for field in ("id_number", "phone"):
        value = form.cleaned_data.get(field)
        if value is not None:
            out[field] = value
    return out


@admin.register(PartyMember)
class PartyMemberAdmin(ServiceWritesMixin, PiiAdminMixin, admin.ModelAdmin):
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
    list_filter = [
        "status",
        "category",
        "gender",
        "organisation__street",
        ("organisation__kind", OrgKindFilter),
    ]
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

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Not offered: a member's record is the roster (organisation, 双报到, dues, the posts that
        # name them); one who leaves is moved or re-categorised, and removing personal data is
        # an operator's procedure under PIPL, not a clerk's click. No service removes one.
        return False

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
        self.save_through(
            request, obj, form, change, fields=services.MEMBER_FIELDS, **_member_pii_kwargs(form),
            create=services.party_member_create, update=services.party_member_update, object_arg="member",
        )


class GridWorkerForm(_PiiFormMixin):
    phone = forms.CharField(label="联系电话", required=False, help_text="填写则替换原值；留空保持不变")
    phone_clear = forms.BooleanField(label="清除联系电话", required=False)

    class Meta:
        model = GridWorker
        fields = ["name", "user", "full_time", "community", "grid_cells", "active"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        self.clean_pii("phone", pii.normalise_phone)
        community = data.get("community")
        if community is not None:
            try:
                services.grid_worker_check_cells(
                    community_id=community.pk, cells=list(data.get("grid_cells") or [])
                )
            except DomainError as exc:
                self.add_error("grid_cells", as_validation_error(exc))
        return data


@admin.register(GridWorker)
class GridWorkerAdmin(ServiceWritesMixin, PiiAdminMixin, admin.ModelAdmin):
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
            saved = self.write(
                request,
                services.grid_worker_update,
                worker=obj,
                grid_cells=cells,
                active=form.cleaned_data.get("active", True),
                **data,
                **extra,
            )
        else:
            saved = self.write(request, services.grid_worker_create, grid_cells=cells, **data, **extra)
        obj.pk = saved.pk
        obj.refresh_from_db()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Not offered: a worker who leaves is marked not on duty (在岗 unticked), which keeps the
        # visits they recorded (PROTECT) and their grids' history; no service removes one.
        return False


# ---------------------------------------------------------------------------------------------
# Stationed cadres (驻点干部)


class StationedCadreForm(forms.ModelForm):
    class Meta:
        model = StationedCadre
        fields = sorted(services.STATIONED_FIELDS)

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]
        if self.errors:
            return
        try:
            services.stationed_cadre_check(cadre=self.instance)
        except DomainError as exc:
            self.add_error(None, as_validation_error(exc))


@admin.register(StationedCadre)
class StationedCadreAdmin(ServiceWritesMixin, admin.ModelAdmin):
    form = StationedCadreForm
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
        return (
            super()
            .get_queryset(request)
            .annotate(
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
        )

    def save_model(self, request: Any, obj: StationedCadre, form: Any, change: bool) -> None:
        self.save_through(
            request, obj, form, change, fields=services.STATIONED_FIELDS,
            create=services.stationed_cadre_create, update=services.stationed_cadre_update, object_arg="cadre",
        )

    def delete_model(self, request: Any, obj: StationedCadre) -> None:
        self.write(request, services.stationed_cadre_delete, cadre=obj)

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
    the configured share of what the requirement asks by today, orgs.rules.cadre_behind_pace): the street office follows up before the month
    ends, not after."""
    today = timezone.localdate()
    behind = any(
        cadre_behind_pace(done=done, required=required, today=today)
        for done, required in (
            (cadre.month_days, cadre.required_days_per_month),  # type: ignore[attr-defined]
            (cadre.month_contacts, cadre.required_contacts_per_month),  # type: ignore[attr-defined]
        )
    )
    return format_html('<strong style="color:#b91c1c">{}</strong>', "进度落后") if behind else ""
