"""API of the inbox (站内消息) under /api/inbox/, always the signed-in user's own messages.

- GET  /api/inbox/              {count, unread, next, previous, results}; ?unread=true|false;
                                `unread` is what every page's header shows (?unread=true&page_size=1
                                is the cheap way to ask for it alone)
- POST /api/inbox/read/         {ids: [...]} marks those read, or {all: true} every unread one;
                                an id that is not the caller's: 404 `notification_not_found`,
                                nothing marked.

Any signed-in user has an inbox (no reach needed: the messages are addressed to them).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from edge.api import (
    PAGE_PARAMETERS,
    UNAUTHENTICATED_RESPONSE,
    ListPagination,
    invalid,
    parse_body,
    parse_query,
)
from orgs import inbox_selectors as selectors
from orgs.inbox_models import Notification
from orgs.services import inbox as services

TAG = "站内消息"


class NotificationSerializer(serializers.ModelSerializer):
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)

    class Meta:
        model = Notification
        fields = [
            "id",
            "kind",
            "kind_label",
            "subject_type",
            "subject_id",
            "period",
            "title",
            "body",
            "link",
            "created_at",
            "read_at",
        ]


class ListQuery(serializers.Serializer):
    unread = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="只看未读/已读"
    )


class MarkReadBody(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, max_length=500)
    all = serializers.BooleanField(required=False, default=False)


class MarkedSerializer(serializers.Serializer):
    marked = serializers.IntegerField()
    unread = serializers.IntegerField()


class InboxPageSerializer(serializers.Serializer):
    """A page of the inbox: the paginator's envelope plus the unread count for the header badge."""

    count = serializers.IntegerField(help_text="符合条件的消息数")
    next = serializers.URLField(allow_null=True, help_text="下一页地址")
    previous = serializers.URLField(allow_null=True, help_text="上一页地址")
    results = NotificationSerializer(many=True)
    unread = serializers.IntegerField(help_text="未读消息总数")


class InboxListApi(APIView):
    @extend_schema(
        tags=[TAG],
        summary="我的消息",
        parameters=[ListQuery, *PAGE_PARAMETERS],
        responses={
            200: InboxPageSerializer,
            400: OpenApiResponse(description="参数有误：{code: invalid_input, message, errors}"),
            401: UNAUTHENTICATED_RESPONSE,
            404: OpenApiResponse(description="页码无效或超出范围：{code: not_found, message}"),
        },
    )
    def get(self, request: Request) -> Response:
        query = parse_query(ListQuery, request)
        paginator = ListPagination()
        page = paginator.paginate_queryset(
            selectors.notification_list(user=request.user, unread=query["unread"]), request, view=self
        )
        response = paginator.get_paginated_response(NotificationSerializer(page, many=True).data)
        response.data["unread"] = selectors.notification_unread_count(user=request.user)
        return response


class InboxMarkReadApi(APIView):
    @extend_schema(
        tags=[TAG],
        summary="标记已读",
        request=MarkReadBody,
        responses={
            200: MarkedSerializer,
            400: OpenApiResponse(description="{code: invalid_input | notification_too_many, message}"),
            401: UNAUTHENTICATED_RESPONSE,
            404: OpenApiResponse(
                description="{code: notification_not_found, message, ids}：消息不存在或不属于您"
            ),
        },
    )
    def post(self, request: Request) -> Response:
        body: dict[str, Any] = parse_body(MarkReadBody, request)
        if body.get("all"):
            if body.get("ids"):
                raise invalid("ids", "ids 与 all 只能二选一")
            marked = services.notification_mark_read(user=request.user, ids=None)
        elif body.get("ids"):
            marked = services.notification_mark_read(user=request.user, ids=body["ids"])
        else:
            raise invalid("ids", "请指定要标记的消息（ids）或 all: true")
        return Response({"marked": marked, "unread": selectors.notification_unread_count(user=request.user)})
