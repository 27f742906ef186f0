"""Property-based tests of the whole API from its own OpenAPI schema (schemathesis + hypothesis).

Every operation the schema documents is called with generated inputs, valid and invalid ones, in
process through the WSGI application: as a street administrator over a small populated street
(tests/orgs/reach_world.py), and without credentials. No answer may be a 500; an authenticated
answer must have a status, content type and body the schema documents; an anonymous one is 401.

Deterministic (derandomize, no example database) so that CI sees the same cases on every run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.urls import Resolver404, resolve
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from grid.models import Role
from tests.orgs.conftest import space  # noqa: F401 - fixture
from tests.orgs.reach_world import World, world_fixture  # noqa: F401 - fixture
from tests.people import user_with

pytestmark = pytest.mark.django_db

# Built from the views, not fetched over HTTP: collection needs no database.
SCHEMA = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
SCHEMA.app = get_wsgi_application()
OPERATIONS = sorted((op.ok().method.upper(), op.ok().path) for op in SCHEMA.get_all_operations())
EXAMPLES_AUTHENTICATED = 25
EXAMPLES_ANONYMOUS = 10


def _fuzz(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


@pytest.fixture(autouse=True)
def _keep_the_test_connection() -> Iterator[None]:
    # Django's handler closes "old" connections at each request's start and end; inside the test's
    # transaction that would drop the data set. Django's test client disconnects them the same way.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _routable(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def _real_path_parameters(world: World, path: str) -> dict[str, object]:
    """Identifiers of objects that exist and are in reach, so operations also run their happy path."""
    s = world.space
    by_prefix: dict[str, dict[str, object]] = {
        "/api/streets/": {"code": s.street.code},
        "/api/communities/": {"code": s.a.code},
        "/api/grid-cells/": {"code": s.a1.code},
        "/api/buildings/": {"code": s.house_a1.code},
        "/api/organisations/": {"id": world.branch_a1.pk},
        "/api/members/": {"id": world.member_a1.pk},
        "/api/grid-workers/": {"id": world.worker_a1.pk},
        "/api/stationed-cadres/": {"id": world.cadre_a.pk},
        "/api/enterprises/": {"id": world.firm_a1.pk},
    }
    return next((v for prefix, v in by_prefix.items() if path.startswith(prefix)), {})


def _cases(operation, real: dict[str, object]):
    strategies = [operation.as_strategy(mode) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
    if real and "{" in operation.path:
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real))
    return st.one_of(strategies)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_a_street_admin_gets_no_500_and_only_documented_statuses(method, path, world):
    token = Token.objects.create(user=user_with(Role.STREET_ADMIN, street=world.space.street)).key
    operation = SCHEMA[path][method]

    @_fuzz(EXAMPLES_AUTHENTICATED)
    @given(case=_cases(operation, _real_path_parameters(world, path)))
    def check(case):
        case.call_and_validate(
            headers={"Authorization": f"Token {token}"},
            checks=[
                not_a_server_error,
                status_code_conformance,
                response_schema_conformance,
                content_type_conformance,
            ],
        )

    check()


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_without_credentials_every_operation_is_refused(method, path):
    operation = SCHEMA[path][method]

    @_fuzz(EXAMPLES_ANONYMOUS)
    @given(case=operation.as_strategy())
    def check(case):
        response = case.call()
        if not _routable(case.formatted_path):
            # e.g. /api/organisations/-5/: <int:pk> does not match, so no view (and no auth) runs.
            assert response.status_code == 404
            return
        if path == "/api/auth/token/":
            assert response.status_code in (400, 401, 429), response.text
        else:
            assert response.status_code == 401, response.text
            assert response.json()["code"] == "not_authenticated"
        case.validate_response(response, checks=[not_a_server_error, status_code_conformance])

    check()
