"""GET and PATCH /api/visits/{id}/: one visit with its version, and its correction naming the
version it replaces (orgs.services.visit_edit)."""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from edge.api import NOT_FOUND, READ_ERRORS, ReachAPIView, parse_body, write_errors
from edge.errors import NotInReach
from orgs import access
from orgs.apis.events import TAG_EVENTS, VisitFeatureSerializer
from orgs.models import Visit
from orgs.services.visit_edit import visit_correct


class VisitDetailSerializer(VisitFeatureSerializer):
    class Meta(VisitFeatureSerializer.Meta):
        fields = [*VisitFeatureSerializer.Meta.fields, "version"]


class VisitCorrectionSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, help_text="要替换的版本（读取时的 version）")
    summary = serializers.CharField(required=False, allow_blank=True, max_length=2000, help_text="情况记录")
    household = serializers.CharField(required=False, allow_blank=True, max_length=32, help_text="户（门牌/房号）")

    def to_internal_value(self, data: Any) -> Any:
        values = super().to_internal_value(data)
        # Fields that may not change are named in the refusal rather than silently dropped.
        if isinstance(data, dict):
            values["unknown"] = sorted(set(data) - set(self.fields))
        return values


def parse_uuid(pk: str) -> uuid.UUID:
    """A path's record id: anything that is not a UUID names nothing (404, as for a missing one);
    the route takes any text so that sign-in and role checks answer first."""
    try:
        return uuid.UUID(pk)
    except ValueError:
        raise NotInReach from None


def _visit(reach: Any, pk: uuid.UUID) -> Visit:
    visit = access.visits_in_reach(reach).select_related("community", "grid_cell", "building").filter(pk=pk).first()
    if visit is None:
        raise NotInReach
    return visit


class VisitDetailApi(ReachAPIView):
    write_capability = "log_events"

    @extend_schema(
        tags=[TAG_EVENTS],
        summary="走访记录详情（含版本）",
        responses={200: VisitDetailSerializer, **READ_ERRORS, **NOT_FOUND},
    )
    def get(self, request: Request, pk: str) -> Response:
        return Response(VisitDetailSerializer(_visit(self.reach, parse_uuid(pk))).data)

    @extend_schema(
        tags=[TAG_EVENTS],
        summary="更正走访记录",
        description="只能更正情况记录（summary）和户（household）；须给出所替换的版本 version。"
        "记录已被他人更正时返回 409 visit_stale（含当前 version），不会覆盖较新的内容。",
        request=VisitCorrectionSerializer,
        responses={
            200: VisitDetailSerializer,
            409: OpenApiResponse(description="版本已过期：{code: visit_stale, message, version}"),
            **write_errors(capability="log_events", codes="visit_field_not_editable、invalid_input"),
        },
    )
    def patch(self, request: Request, pk: str) -> Response:
        visit_id = parse_uuid(pk)
        data = parse_body(VisitCorrectionSerializer, request)
        changes = {k: data[k] for k in ("summary", "household") if k in data}
        changes.update({k: None for k in data.get("unknown", [])})
        visit = visit_correct(
            reach=self.reach, user=request.user, visit_id=visit_id, expected_version=data["version"], changes=changes
        )
        return Response(VisitDetailSerializer(_visit(self.reach, visit.pk)).data)
