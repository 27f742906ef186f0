"""Request-scoped context for the services: who is acting and from which address."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from grid.audit import acting_as, actor_for_user


def client_ip(request: HttpRequest) -> str | None:
    # Behind the intranet reverse proxy the client is the first X-Forwarded-For hop; only trusted
    # when the operator says a proxy is in front (settings.USE_X_FORWARDED_FOR).
    from django.conf import settings

    if getattr(settings, "USE_X_FORWARDED_FOR", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip() or None
    return request.META.get("REMOTE_ADDR") or None


class AuditContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # DRF authenticates inside the view (token, basic): the actor is re-resolved lazily there
        # through `request.user`, which DRF replaces; for session users it is known here already.
        with acting_as(actor_for_user(getattr(request, "user", None), client_ip(request))):
            return self.get_response(request)
