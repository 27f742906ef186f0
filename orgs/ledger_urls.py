"""The ledger page, included by ops/urls.py at ledger/."""

from django.urls import path

from orgs.ledger_views import LedgerExportView, LedgerView

urlpatterns = [
    path("", LedgerView.as_view(), name="ledger"),
    path("export.xlsx", LedgerExportView.as_view(), name="ledger-export"),
]
