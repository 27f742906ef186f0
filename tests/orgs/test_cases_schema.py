"""The case endpoints' real answers (not only the fuzzed refusals of tests/security/test_schemathesis.py)
conform to the OpenAPI schema they document: list, detail, timeline, create, transition, nearby,
statistics and categories, each called on a populated ledger and validated by schemathesis."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orgs.cases_models import CaseTransition
from tests.orgs.cases_world import Ledger, ledger_fixture  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db
A = CaseTransition.Action
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]


@pytest.fixture
def schema():
    s = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
    s.app = get_wsgi_application()
    # Django closes "old" connections around each request; inside the test's transaction that
    # would drop the data set.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield s
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_real_answers_conform_to_the_schema(ledger: Ledger, schema):
    first = ledger.raise_case(resident_phone="13812345678")
    closed = ledger.raise_case(position=ledger.position_in("a1", dx=10))
    for action, who, extra in (
        (A.ACCEPT, ledger.admin_a, {}),
        (A.DISPATCH, ledger.admin_a, {}),
        (A.START, ledger.worker_a1, {}),
        (A.FEEDBACK, ledger.worker_a1, {"reason": "已清运"}),
        (A.VERIFY, ledger.worker_a1, {"position": ledger.position_in("a1")}),
        (A.CLOSE, ledger.admin_a, {}),
    ):
        closed = ledger.act(closed, action, by=who, **extra)
    token = Token.objects.create(user=ledger.admin_a).key
    headers = {"Authorization": f"Token {token}"}
    p = ledger.position_in("a1", dx=3)
    calls = [
        ("GET", "/api/cases/", {}, {"query": {"state": "reported"}}),
        ("GET", "/api/cases/{id}/", {"id": closed.pk}, {}),
        ("GET", "/api/cases/{id}/transitions/", {"id": closed.pk}, {}),
        ("GET", "/api/cases/nearby/", {}, {"query": {"lon": p.lon, "lat": p.lat, "category": ledger.rubbish.pk}}),
        ("GET", "/api/cases/statistics/", {}, {"query": {"since": "2026-01-01"}}),
        ("GET", "/api/cases/categories/", {}, {}),
        (
            "POST",
            "/api/cases/",
            {},
            {
                "body": {
                    "category": ledger.rubbish.pk,
                    "description": "垃圾桶满溢",
                    "source": "counter",
                    "position": {"type": "Point", "coordinates": [p.lon, p.lat]},
                    "resident_phone": "13812345678",
                },
                "media_type": "application/json",
            },
        ),
        (
            "POST",
            "/api/cases/{id}/transitions/",
            {"id": first.pk},
            {"body": {"action": "accept", "expected_version": 1}, "media_type": "application/json"},
        ),
        (
            "POST",
            "/api/cases/{id}/transitions/",
            {"id": first.pk},
            {"body": {"action": "accept", "expected_version": 1}, "media_type": "application/json"},
        ),  # 409 case_stale, documented
    ]
    statuses = []
    for method, path, params, extra in calls:
        case = schema[path][method].Case(path_parameters=params, headers=headers, **extra)
        response = case.call_and_validate(checks=CHECKS)
        statuses.append(response.status_code)
    assert statuses == [200, 200, 200, 200, 200, 200, 201, 200, 409]
