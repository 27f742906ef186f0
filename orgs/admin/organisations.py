"""Admin of the organisation tree and an organisation's own records: rectifications (整顿), star
ratings (星级评定) and enlarged-committee seats (大工委/大党委委员), on their own pages and as the
seats inline of the organisation page."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from edge.errors import DomainError
from orgs import services
from orgs.admin.scope import ReachAdminMixin
from orgs.admin.writes import ServiceWritesMixin, add_domain_error, as_validation_error, inline_saved
from orgs.models import CommitteeSeat, PartyOrganisation, Rectification, StarRating

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
        super().clean()
        data = self.cleaned_data
        if not data.get("term_years") and data.get("kind"):
            data["term_years"] = services.default_term_years(data["kind"])
        if data.get("parent") is not None and not data.get("street"):
            data["street"] = data["parent"].street
        return data

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]
        if self.errors:
            return
        buildings = list(self.cleaned_data.get("buildings") or [])
        try:
            services.party_org_check(org=self.instance, buildings=buildings)
        except DomainError as exc:
            self.add_error(None, as_validation_error(exc))


SEAT_INLINE_FIELDS = ("person_name", "unit_name", "is_resident_unit_head", "liaison_units")


class SeatInline(ReachAdminMixin, admin.TabularInline):
    """Seats on the organisation page; saved by PartyOrganisationAdmin.save_formset through the
    seat services (the rules are the service's: a refusal shows on the organisation's form)."""

    model = CommitteeSeat
    extra = 0
    fields = SEAT_INLINE_FIELDS
    verbose_name = "委员"
    verbose_name_plural = "大工委/大党委委员（分片联系社区在委员页面编辑）"
    show_change_link = True


@admin.register(PartyOrganisation)
class PartyOrganisationAdmin(ServiceWritesMixin, admin.ModelAdmin):
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

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Not offered: the children hang on it (PROTECT), its members would silently lose their
        # organisation and its rectifications, ratings and seats would go with it unaudited.
        # Dissolving or merging an organisation is a tree operation with rules of its own.
        return False

    def save_model(self, request: Any, obj: PartyOrganisation, form: Any, change: bool) -> None:
        self.save_through(
            request, obj, form, change, fields=services.ORG_FIELDS,
            buildings=list(form.cleaned_data.get("buildings") or []),
            create=services.party_org_create, update=services.party_org_update, object_arg="org",
        )

    def save_formset(self, request: Any, form: Any, formset: Any, change: bool) -> None:
        """The seats inline, one service call per seat added, changed or removed."""
        org = form.instance
        removing = {id(f) for f in formset.deleted_forms}
        new: list[CommitteeSeat] = []
        changed: list[tuple[CommitteeSeat, list[str]]] = []
        deleted: list[CommitteeSeat] = []
        for seat_form in formset.forms:
            seat = seat_form.instance
            if id(seat_form) in removing:
                if seat.pk is not None:
                    self.write(request, services.committee_seat_delete, seat=seat)
                    deleted.append(seat)
                continue
            if not seat_form.has_changed():
                continue
            data = {f: seat_form.cleaned_data[f] for f in SEAT_INLINE_FIELDS if f in seat_form.cleaned_data}
            if seat.pk is None:
                new.append(self.write(request, services.committee_seat_create, org=org, **data))
            else:
                saved = self.write(request, services.committee_seat_update, seat=seat, **data)
                changed.append((saved, seat_form.changed_data))
        inline_saved(formset, new=new, changed=changed, deleted=deleted)


# ---------------------------------------------------------------------------------------------
# Rectifications of weak organisations (软弱涣散整顿)


class RectificationForm(forms.ModelForm):
    class Meta:
        model = Rectification
        fields = ["org", "flagged_on", "reasons", "measures", "converted_on"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        converted_on = data.get("converted_on")
        if self.instance.pk and converted_on and "converted_on" in self.changed_data:
            try:
                services.rectification_check(rectification=self.instance, converted_on=converted_on)
            except DomainError as exc:
                self.add_error("converted_on", as_validation_error(exc))
        return data


@admin.register(Rectification)
class RectificationAdmin(ServiceWritesMixin, admin.ModelAdmin):
    form = RectificationForm
    list_display = ["org", "flagged_on", "converted_on"]
    list_filter = ["converted_on", "org__street"]
    search_fields = ["org__name", "reasons"]
    raw_id_fields = ["org"]
    date_hierarchy = "flagged_on"

    def get_readonly_fields(self, request: Any, obj: Rectification | None = None) -> list[str]:
        if obj is None:
            # Flagging opens a rectification; its conversion is recorded on the record later.
            return ["converted_on"]
        return ["org", "flagged_on", "converted_on"] if obj.converted_on else ["org", "flagged_on"]

    def save_model(self, request: Any, obj: Rectification, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if not change:
            saved = self.write(
                request,
                services.party_org_flag_weak,
                org=data["org"],
                flagged_on=data["flagged_on"],
                reasons=data["reasons"],
                measures=data["measures"],
            )
        else:
            texts = {f: data[f] for f in ("reasons", "measures") if f in data}
            if data.get("converted_on") and "converted_on" in form.changed_data:
                texts["converted_on"] = data["converted_on"]
            saved = self.write(request, services.rectification_update, rectification=obj, **texts)
        obj.pk = saved.pk
        obj.refresh_from_db()

    def delete_model(self, request: Any, obj: Rectification) -> None:
        self.write(request, services.rectification_delete, rectification=obj)


# ---------------------------------------------------------------------------------------------
# Star ratings (星级评定)


@admin.register(StarRating)
class StarRatingAdmin(ServiceWritesMixin, admin.ModelAdmin):
    list_display = ["org", "year", "stars", "score", "satisfaction_score", "total_score"]
    list_filter = ["year", "stars", "org__street"]
    search_fields = ["org__name"]
    raw_id_fields = ["org"]

    def get_readonly_fields(self, request: Any, obj: StarRating | None = None) -> list[str]:
        # A rating is the organisation's for one year: another year is another rating (added),
        # not this one moved.
        return ["total_score"] if obj is None else ["org", "year", "total_score"]

    def save_model(self, request: Any, obj: StarRating, form: Any, change: bool) -> None:
        saved, _created = self.write(
            request,
            services.star_rating_record,
            org=obj.org,
            year=obj.year,
            score=obj.score,
            satisfaction_score=obj.satisfaction_score,
            stars=obj.stars,
        )
        obj.pk = saved.pk
        obj.refresh_from_db()

    def delete_model(self, request: Any, obj: StarRating) -> None:
        self.write(request, services.star_rating_delete, rating=obj)


# ---------------------------------------------------------------------------------------------
# Enlarged-committee seats (大工委/大党委委员)


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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        org = self.fields.get("org")
        if (
            isinstance(org, forms.ModelChoiceField)
            and org.queryset is not None
            and self.instance.org_id is not None
        ):
            # The choices are the enlarged committees (the model's limit_choices_to); a seat of a
            # committee no longer enlarged keeps its own so that saving it says why it may not
            # stay (the service's rule) instead of "not a valid choice".
            org.queryset = org.queryset | PartyOrganisation.objects.filter(pk=self.instance.org_id)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        org = data.get("org")
        if org is not None:
            try:
                services.committee_seat_check(
                    org=org, liaison_communities=list(data.get("liaison_communities") or [])
                )
            except DomainError as exc:
                add_domain_error(self, exc)
        return data


@admin.register(CommitteeSeat)
class CommitteeSeatAdmin(ServiceWritesMixin, admin.ModelAdmin):
    form = CommitteeSeatForm
    list_display = ["person_name", "unit_name", "org", "is_resident_unit_head"]
    list_filter = ["is_resident_unit_head", "org__street"]
    search_fields = ["person_name", "unit_name", "org__name"]
    filter_horizontal = ["liaison_communities"]

    def save_model(self, request: Any, obj: CommitteeSeat, form: Any, change: bool) -> None:
        self.save_through(
            request, obj, form, change, fields=services.SEAT_FIELDS,
            liaison_communities=list(form.cleaned_data.get("liaison_communities") or []),
            create=services.committee_seat_create, update=services.committee_seat_update, object_arg="seat",
        )

    def delete_model(self, request: Any, obj: CommitteeSeat) -> None:
        self.write(request, services.committee_seat_delete, seat=obj)
