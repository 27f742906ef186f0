"""Base classes for API views of every app: the reach of the caller and the audit actor."""

from typing import Any

from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.views import APIView

from grid.access import NotInReach, Reach, reach_of_request
from grid.audit import set_actor_from_request


class ReachAPIView(APIView):
    """An API view whose querysets are scoped by the caller's reach.

    Subclasses call `self.reach` in their selectors; `NotInReach` becomes the same 404 for missing
    and forbidden objects. A user without any reading role gets 403 on every endpoint.
    """

    # Capability needed for unsafe methods (POST, PUT, PATCH, DELETE); None = read-only view.
    write_capability: str | None = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        set_actor_from_request(request)
        reach = self.reach
        if not reach.can_read():
            raise exceptions.PermissionDenied("您的账号没有可访问的网格范围")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            if self.write_capability is None or not reach.can(self.write_capability):
                raise exceptions.PermissionDenied("您的角色不能执行此操作")

    @property
    def reach(self) -> Reach:
        return reach_of_request(self.request)

    def handle_exception(self, exc: Exception) -> Any:
        if isinstance(exc, NotInReach):
            exc = exceptions.NotFound(NotInReach.message)
        return super().handle_exception(exc)
