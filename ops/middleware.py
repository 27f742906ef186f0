"""Request-scoped context for the services: who is acting and from which address."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from grid.audit import acting_as, actor_for_user, client_ip


class AuditContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Session users are known here; DRF views re-resolve token/basic users after they
        # authenticate (edge.api).
        with acting_as(actor_for_user(getattr(request, "user", None), client_ip(request))):
            return self.get_response(request)
