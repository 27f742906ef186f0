"""Photos of visits and cases: upload (multipart, keyed by the photo's UUID so an offline queue can
send it after its record, exactly once) and the one way to see a photo (streamed after a reach
check; the storage is never public)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import FileResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from edge.api import NOT_FOUND, READ_ERRORS, ReachAPIView, write_errors
from edge.errors import DomainError
from orgs.apis.visit_edit import parse_uuid
from orgs.photos_models import Photo
from orgs.services import photos

TAG_PHOTOS = "照片"


class PhotoUploadSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="照片编号（平板拍照时生成；重传同一张照片返回 duplicate）")
    visit = serializers.UUIDField(required=False, allow_null=True, help_text="所属走访记录编号（与 case 二选一）")
    case = serializers.CharField(
        required=False, allow_blank=True, max_length=40, help_text="所属民情事项：事项编号或平板生成的事项编号（UUID）"
    )
    file = serializers.FileField(help_text="JPEG、PNG 或 WebP 照片")


class PhotoSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="查看照片的地址（需登录且在范围内）")

    class Meta:
        model = Photo
        fields = ["id", "visit", "case", "format", "width", "height", "size_bytes", "uploaded_at", "url"]

    def get_url(self, photo: Photo) -> str:
        return f"/api/photos/{photo.pk}/"


PHOTO_CODES = (
    "photo_subject_required、photo_missing、photo_too_large、photo_invalid；409 photo_conflict；"
    "403 photo_outside_reach"
)


class PhotoUploadApi(ReachAPIView):
    write_capability = "log_events"
    # The default parsers: multipart carries the file; a JSON body cannot, and is answered
    # photo_missing like a form without one.

    @extend_schema(
        tags=[TAG_PHOTOS],
        summary="上传走访或事项照片",
        description=(
            "multipart/form-data。照片类型由服务器解码判定（不看文件名）；GPS 信息会被删除。"
            "照片在其记录同步之后上传；同一编号重传相同内容返回 200 duplicate，内容不同返回 409。"
        ),
        request={"multipart/form-data": PhotoUploadSerializer},
        responses={
            201: inline_serializer("PhotoCreated", {"status": serializers.CharField(), "photo": PhotoSerializer()}),
            200: OpenApiResponse(description="此前已上传：{status: duplicate, photo}"),
            409: OpenApiResponse(description="编号已用于另一张照片：{code: photo_conflict, message}"),
            **write_errors(capability="log_events", codes=PHOTO_CODES),
        },
    )
    def post(self, request: Request) -> Response:
        max_bytes = int(settings.WANGGE_PHOTOS["max_bytes"])
        upload = request.FILES.get("file")
        # Refuse an oversized file before reading it into memory (and before the form checks).
        if upload is not None and upload.size is not None and upload.size > max_bytes:
            raise DomainError(
                f"照片大小超过上限 {max_bytes // (1024 * 1024)} MB", code="photo_too_large", detail={"field": "file"}
            )
        form = PhotoUploadSerializer(data=request.data)
        if not form.is_valid():
            if "file" in form.errors:
                raise DomainError("请选择要上传的照片", code="photo_missing", detail={"field": "file"})
            raise DomainError(
                "照片编号或所属记录编号格式有误", code="invalid_input", detail={"errors": form.errors}
            )
        data: dict[str, Any] = form.validated_data
        result = photos.photo_upload(
            reach=self.reach,
            user=request.user,
            photo_id=data["id"],
            content=data["file"].read(),
            visit_id=data.get("visit"),
            case_ref=data.get("case") or None,
        )
        return Response(
            {"status": "created" if result.created else "duplicate", "photo": PhotoSerializer(result.photo).data},
            status=201 if result.created else 200,
        )


class PhotoFileApi(ReachAPIView):
    @extend_schema(
        tags=[TAG_PHOTOS],
        summary="查看照片",
        description="照片文件；仅对范围覆盖其走访记录或事项的用户可见。",
        responses={(200, "image/*"): OpenApiResponse(description="照片文件"), **READ_ERRORS, **NOT_FOUND},
    )
    def get(self, request: Request, pk: str) -> FileResponse:
        photo = photos.photo_get(self.reach, parse_uuid(pk))
        response = FileResponse(photo.file.open("rb"), content_type=photos.CONTENT_TYPES[photo.format])
        response["Cache-Control"] = "private, max-age=3600"
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Disposition"] = f'inline; filename="{photo.pk}.{photo.file.name.rsplit(".", 1)[-1]}"'
        return response
