"""One error shape for the whole API: {"code": stable machine code, "message": Chinese text, ...}.

Clients (the tablet app, scripts of the street office) branch on `code`; people read `message`.

The message is the raiser's own when it wrote one for people (NotFound("该点不在任何网格内")),
otherwise a fixed Chinese text per class: DRF's and Django's own texts are English or follow the
caller's Accept-Language, and some carry parser internals ("Expecting value: line 1 column 1").

Only known failures become 4xx here. Anything else is re-raised and ends as a 500: that is a bug
to fix where it happens, not an answer to hide.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, parsers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from edge.authentication import CsrfFailed
from edge.errors import DomainError

# Deeper than any document this API accepts (an org with a list of building codes is depth 2);
# the limit keeps a body of "[[[[…" from exhausting Python's recursion limit inside json.
MAX_JSON_DEPTH = 32

_CODES: dict[type[exceptions.APIException], tuple[str, str]] = {
    # Before PermissionDenied, its base class: the first match wins.
    CsrfFailed: (CsrfFailed.default_code, str(CsrfFailed.default_detail)),
    exceptions.NotAuthenticated: ("not_authenticated", "请先登录"),
    exceptions.AuthenticationFailed: ("authentication_failed", "用户名或密码错误"),
    exceptions.PermissionDenied: ("permission_denied", "没有权限执行此操作"),
    exceptions.NotFound: ("not_found", "对象不存在或无权访问"),
    exceptions.MethodNotAllowed: ("method_not_allowed", "不支持该请求方法"),
    exceptions.NotAcceptable: ("not_acceptable", "无法按请求的格式（Accept）返回结果"),
    exceptions.ParseError: ("malformed_request", "请求内容无法解析：应为 UTF-8 编码的 JSON 对象"),
    exceptions.UnsupportedMediaType: ("unsupported_media_type", "不支持的内容类型，请使用 application/json"),
    exceptions.Throttled: ("throttled", "请求过于频繁，请稍后再试"),
    exceptions.ValidationError: ("invalid_input", "输入有误"),
}
# DRF words these itself (with the method, media type or parser error in English), never our code.
_ALWAYS_FIXED = (
    exceptions.MethodNotAllowed,
    exceptions.NotAcceptable,
    exceptions.ParseError,
    exceptions.UnsupportedMediaType,
    exceptions.Throttled,
)
_CJK = re.compile(r"[\u4e00-\u9fff]")
# A JSON escape of a UTF-16 surrogate: paired it is a valid character, alone it decodes to a str
# that cannot be encoded as UTF-8, which the database driver would fail on (a 500).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class SafeJSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing bodies it would crash on or that no operation accepts.

    Refused as ParseError (400 `malformed_request`): invalid UTF-8 or an unknown charset, nesting
    deeper than MAX_JSON_DEPTH (json would raise RecursionError, a 500), NaN/Infinity literals
    (not JSON; they would reach float fields as NaN), and lone surrogate escapes ("\\ud800"),
    which decode to text no database column can hold.
    """

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            raw = stream.read()
            text = raw.decode(encoding) if isinstance(raw, bytes) else str(raw)
        except (UnicodeDecodeError, LookupError) as exc:
            raise exceptions.ParseError("invalid encoding") from exc
        if _nesting_depth(text) > MAX_JSON_DEPTH:
            raise exceptions.ParseError("too deeply nested")
        try:
            data = json.loads(text, parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as exc:
            raise exceptions.ParseError("not json") from exc
        if _SURROGATE_ESCAPE.search(text):
            try:
                json.dumps(data, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError as exc:
                raise exceptions.ParseError("lone surrogate") from exc
        return data


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _nesting_depth(text: str) -> int:
    """Upper bound of the bracket depth (brackets inside strings count too: a cheap, safe bound)."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_JSON_DEPTH:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


# For views and settings: DEFAULT_PARSER_CLASSES with the safe JSON parser first.
PARSER_CLASSES = [SafeJSONParser, parsers.FormParser, parsers.MultiPartParser]


def _message(exc: exceptions.APIException, fixed: str, request: Any) -> str:
    if isinstance(exc, exceptions.AuthenticationFailed):
        # DRF's authentication classes raise it in English; say which credential failed.
        header = str(getattr(request, "META", {}).get("HTTP_AUTHORIZATION", ""))
        return "令牌无效或已注销，请重新登录" if header.lower().startswith("token") else fixed
    if isinstance(exc, _ALWAYS_FIXED) or not isinstance(exc.detail, str):
        return fixed
    given = str(exc.detail)
    if given == str(exc.default_detail) or not _CJK.search(given):
        return fixed
    return given


def _project_error(exc: Exception) -> Response | None:
    """Our own errors and Django's request-size refusals, which DRF does not know."""
    if isinstance(exc, DomainError):
        return Response({"code": exc.code, "message": exc.message, **exc.detail}, status=exc.status)
    if isinstance(exc, RequestDataTooBig | TooManyFieldsSent):
        limit = (settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0) / 1048576
        message = (
            f"请求内容过大，上限 {limit:.0f} MB" if isinstance(exc, RequestDataTooBig) else "请求中的字段过多"
        )
        return Response(
            {"code": "payload_too_large", "message": message}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
        )
    return None


def _as_api_exception(exc: Exception) -> Exception:
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    if isinstance(exc, Http404):
        return exceptions.NotFound(*exc.args)
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(*exc.args)
    return exc


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    known = _project_error(exc)
    if known is not None:
        return known
    exc = _as_api_exception(exc)
    if not isinstance(exc, exceptions.APIException):
        return None  # unexpected: DRF re-raises it and Django answers 500
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code, fixed = "error", "请求失败"
    for cls, pair in _CODES.items():
        if isinstance(exc, cls):
            code, fixed = pair
            break
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"code": code, "message": fixed, "errors": response.data}
    else:
        response.data = {"code": code, "message": _message(exc, fixed, context.get("request"))}
    return response
