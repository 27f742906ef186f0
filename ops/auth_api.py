"""Tablet sign-in: exchange a username and password for a token; revoke it to sign a device out.

Failed attempts count towards django-axes' lockout exactly like the admin login form, because
`authenticate()` goes through the Axes backend with this request.
"""

from typing import Any

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from grid import roles
from grid.access import reach_for_user
from grid.audit import actor_for_user, audit_record, client_ip, set_actor_from_request

TAG = "登录与令牌"


class TokenObtainApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150, label="用户名")
        password = serializers.CharField(max_length=128, label="密码", trim_whitespace=False)

    @extend_schema(
        tags=[TAG],
        summary="换取平板令牌",
        description="用户名密码换取访问令牌（Authorization: Token …）。连续失败将临时锁定。",
        request=InputSerializer,
        responses={
            200: inline_serializer(
                "TokenOut",
                {"token": serializers.CharField(), "username": serializers.CharField(),
                 "roles": serializers.ListField(child=serializers.CharField())},
            ),
            400: OpenApiResponse(description="请求有误：{code: invalid_input|malformed_request, message}"),
            401: OpenApiResponse(description="用户名或密码错误：{code: authentication_failed, message}"),
            429: OpenApiResponse(description="失败次数过多，账号临时锁定：{code: account_locked, message}"),
        },
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        username = data.validated_data["username"]
        user = authenticate(request=request, username=username, password=data.validated_data["password"])
        if getattr(request, "axes_locked_out", False):
            return Response(
                {"code": "account_locked", "message": "登录失败次数过多，账号已临时锁定，请稍后再试"},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
            )
        if user is None or not user.is_active:
            audit_record(
                action="login_failed", object_type="auth.User", object_id=username[:64],
                summary="平板令牌登录失败", actor=actor_for_user(None, client_ip(request)),
            )
            return Response(
                {"code": "authentication_failed", "message": "用户名或密码错误"}, status=status.HTTP_401_UNAUTHORIZED
            )
        key = roles.api_token_issue(user=user, ip=client_ip(request))
        return Response(
            {"token": key, "username": user.get_username(), "roles": sorted(reach_for_user(user).roles)}
        )


class TokenRevokeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=[TAG],
        summary="注销本设备令牌",
        request=None,
        responses={204: None, 401: OpenApiResponse(description="未登录、令牌无效或已注销：{code, message}")},
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        user = request.user
        if not user.is_authenticated:  # IsAuthenticated has answered 401 already
            raise NotAuthenticated()
        set_actor_from_request(request)
        roles.api_token_revoke(user=user)
        return Response(status=status.HTTP_204_NO_CONTENT)
