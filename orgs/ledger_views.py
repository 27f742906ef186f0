"""The street office's ledger page (/ledger/): the cases list with filters, their map, one case
with its timeline and the actions the user may take, statistics, the inbox, and the Excel export.

The page reads the JSON APIs (/api/cases/…, /api/inbox/…) from the same origin; this module only
renders the shell with its configuration and serves the export (audited in orgs.ledger_export).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponse
from django.views.generic import TemplateView
from drf_spectacular.utils import extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request

from edge.api import ReachAPIView, parse_query
from grid.access import reach_of_request
from grid.models import GridCell
from orgs.apis.cases import CaseListApi
from orgs.cases_models import Case, CaseCategory, CaseTransition
from orgs.ledger_export import XLSX, ledger_xlsx_export


def _grids(reach: Any) -> list[list[str]]:
    qs = GridCell.objects.all()
    if not reach.everything:
        qs = qs.filter(
            Q(community__street_id__in=reach.street_ids)
            | Q(community_id__in=reach.community_ids)
            | Q(pk__in=reach.grid_cell_ids)
        )
    return [[code, name] for code, name in qs.order_by("code").values_list("code", "name")]


class LedgerView(LoginRequiredMixin, TemplateView):
    """民情台账."""

    template_name = "orgs/ledger.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        reach = reach_of_request(self.request)
        if not reach.can_read():
            raise PermissionDenied("您的账号没有可访问的网格范围")
        config = {
            "categories": [[c.pk, c.name] for c in CaseCategory.objects.order_by("sort_order", "code")],
            "states": [[v, label] for v, label in Case.State.choices],
            "sources": [[v, label] for v, label in Case.Source.choices],
            "actions": [[v, label] for v, label in CaseTransition.Action.choices],
            "grids": _grids(reach),
            "basemap": settings.BASEMAP_TILES_URL,
        }
        return {
            **super().get_context_data(**kwargs),
            "config": config,
            "can_admin": self.request.user.is_staff,
        }


class _ErrorsAsJSON(BaseContentNegotiation):
    """The file is written by the view; DRF renders only errors, as JSON (see mapping.export_views)."""

    def select_parser(self, request: Any, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Any, renderers: Any, format_suffix: Any = None) -> Any:
        return renderers[0], renderers[0].media_type


@extend_schema(exclude=True)
class LedgerExportView(ReachAPIView):
    """/ledger/export.xlsx?<the list's filters>: the ledger as Excel, audited."""

    renderer_classes = [JSONRenderer]
    content_negotiation_class = _ErrorsAsJSON

    def get(self, request: Request) -> HttpResponse:
        filters = parse_query(CaseListApi.FilterSerializer, request)
        file = ledger_xlsx_export(reach=self.reach, filters=filters)
        response = HttpResponse(file.content, content_type=XLSX)
        response["Content-Disposition"] = (
            f"attachment; filename=\"wangge-ledger.xlsx\"; filename*=UTF-8''{quote(file.filename)}"
        )
        response["X-Export-Count"] = str(file.count)
        response["Cache-Control"] = "private, no-store"
        return response
