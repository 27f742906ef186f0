"""Authentication classes of the API (REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]).

Its own module, importing nothing of DRF's views: DRF imports these while its views module loads.
SessionCsrfScheme describes the session class in the OpenAPI schema (/api/schema/).
"""

from drf_spectacular.authentication import SessionScheme
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request


class CsrfFailed(exceptions.PermissionDenied):
    """A signed-in page sent a stale or missing CSRF token: the page needs reloading, which is not
    the same as lacking the permission (the tablet page says so, and keeps its records)."""

    default_detail = "页面已过期，请刷新页面后重试"
    default_code = "csrf_failed"


class SessionCsrfAuthentication(SessionAuthentication):
    """DRF's session authentication, raising CsrfFailed (code `csrf_failed`) instead of a
    permission_denied carrying DRF's English reason."""

    def enforce_csrf(self, request: Request) -> None:
        try:
            super().enforce_csrf(request)
        except exceptions.PermissionDenied as exc:
            raise CsrfFailed() from exc


class SessionCsrfScheme(SessionScheme):
    """The OpenAPI description of SessionCsrfAuthentication: the session cookie, as DRF's own."""

    target_class = "edge.authentication.SessionCsrfAuthentication"  # a dotted path, as the base's own
