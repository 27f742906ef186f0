"""One error shape for the whole API: {"code": stable machine code, "message": Chinese text, ...}.

Clients (the tablet app, scripts of the street office) branch on `code`; people read `message`.
"""

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from grid.errors import GridError

_CODES = {
    exceptions.NotAuthenticated: ("not_authenticated", "请先登录"),
    exceptions.AuthenticationFailed: ("authentication_failed", "用户名或密码错误"),
    exceptions.PermissionDenied: ("permission_denied", "没有权限执行此操作"),
    exceptions.NotFound: ("not_found", "对象不存在或无权访问"),
    exceptions.MethodNotAllowed: ("method_not_allowed", "不支持该请求方法"),
    exceptions.ParseError: ("malformed_request", "请求内容无法解析"),
    exceptions.UnsupportedMediaType: ("unsupported_media_type", "不支持的内容类型"),
    exceptions.Throttled: ("throttled", "请求过于频繁，请稍后再试"),
    exceptions.ValidationError: ("invalid_input", "输入有误"),
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, GridError):
        return Response(
            {"code": exc.code, "message": exc.message, **exc.detail}, status=status.HTTP_400_BAD_REQUEST
        )
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code, message = "error", "请求失败"
    for cls, pair in _CODES.items():
        if isinstance(exc, cls):
            code, message = pair
            break
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"code": code, "message": message, "errors": response.data}
    else:
        response.data = {"code": code, "message": message}
    return response
