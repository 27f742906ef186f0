"""Photos of visits and cases: the upload (one photo, one transaction, one audit row) and the one
way a reader fetches a photo.

The tablet uploads a photo after its record has synced, keyed by the photo's own UUID: a retried
upload of the same bytes is answered "duplicate"; the same id with other bytes is a conflict.
A real image decoder (Pillow) decides what the file is, never its name or the client's content
type; a photo's GPS tags are removed before it is kept (its orientation tag stays).
"""

from __future__ import annotations

import hashlib
import io
import uuid
import warnings
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from PIL import Image, UnidentifiedImageError

from edge.errors import Conflict, DomainError, NotInReach, OutsideEditReach
from grid.access import Reach
from grid.audit import audit_record
from grid.models import AuditEvent
from orgs import access
from orgs.cases_models import Case
from orgs.models import Visit
from orgs.photos_models import Photo

__all__ = ["PhotoUploaded", "photo_get", "photo_upload"]

# EXIF tag of the GPS IFD: where the phone wrote the position. The visit or case keeps the position
# it needs; a photo forwarded beyond the ledger should not carry a resident's doorstep with it.
_GPS_IFD = 0x8825
_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


@dataclass(frozen=True)
class PhotoUploaded:
    photo: Photo
    created: bool  # False: this id was already stored with these bytes (a retried upload)


def _invalid(message: str = "文件不是有效的图片，只能上传 JPEG、PNG 或 WebP 格式的照片") -> DomainError:
    return DomainError(message, code="photo_invalid", detail={"field": "file"})


def _subject(reach: Reach, *, visit_id: uuid.UUID | None, case_ref: str | None) -> Visit | Case:
    """The visit or case the photo is of, which the caller must be able to log events at:
    NotInReach when they cannot see it at all, OutsideEditReach when they only read it."""
    if (visit_id is None) == (not case_ref):
        raise DomainError("请指明照片所属的走访记录或民情事项（二选一）", code="photo_subject_required")
    logging = access.capability_reach(reach, "log_events")
    if visit_id is not None:
        visit = access.visits_in_reach(reach).filter(pk=visit_id).select_related("community").first()
        if visit is None:
            raise NotInReach
        if not access.visits_in_reach(logging).filter(pk=visit.pk).exists():
            raise OutsideEditReach("该走访记录不在您负责的网格内", code="photo_outside_reach")
        return visit
    ref = (case_ref or "").strip()
    try:
        lookup: dict[str, Any] = {"pk": int(ref)} if ref.isdigit() else {"client_id": uuid.UUID(ref)}
    except ValueError:
        raise NotInReach from None
    case = access.cases_in_reach(reach).filter(**lookup).first()
    if case is None:
        raise NotInReach
    if not access.case_place_in(
        logging, street_id=case.street_id, community_id=case.community_id, grid_cell_id=case.grid_cell_id
    ):
        raise OutsideEditReach("该事项不在您负责的网格内", code="photo_outside_reach")
    return case


def _decode(data: bytes) -> tuple[str, int, int, bytes]:
    """(format, width, height, bytes to keep): refuses anything Pillow cannot decode as one of
    the allowed formats, or larger than the allowed sides; removes the GPS tags."""
    rules = settings.WANGGE_PHOTOS
    max_side = int(rules["max_side_px"])
    try:
        with warnings.catch_warnings():
            # A decompression-bomb warning is an error here: the side check below refuses it anyway.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                fmt = probe.format or ""
                width, height = probe.size
                if fmt not in rules["formats"]:
                    raise _invalid()
                if width > max_side or height > max_side:
                    raise DomainError(
                        f"照片尺寸 {width}×{height} 超过上限 {max_side}×{max_side} 像素",
                        code="photo_too_large",
                        detail={"field": "file"},
                    )
                probe.verify()  # reads the whole stream: a truncated or forged body fails here
            with Image.open(io.BytesIO(data)) as image:
                exif = image.getexif()
                if _GPS_IFD not in exif:
                    return fmt, width, height, data
                image.load()  # a full decode: a body that only looked whole fails here
                del exif[_GPS_IFD]
                out = io.BytesIO()
                options: dict[str, Any] = {"exif": exif.tobytes()}
                if fmt == "JPEG":
                    options["quality"] = "keep"  # the camera's own quantisation: no visible loss
                elif fmt == "WEBP":
                    options["quality"] = 90
                image.save(out, format=fmt, **options)
                return fmt, width, height, out.getvalue()
    except DomainError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning,
            OSError, SyntaxError, ValueError, EOFError):
        raise _invalid() from None


def photo_upload(
    *,
    reach: Reach,
    user: Any,
    photo_id: uuid.UUID,
    content: bytes | None,
    visit_id: uuid.UUID | None = None,
    case_ref: str | None = None,
) -> PhotoUploaded:
    """Keep one photo of a visit (by its UUID) or a case (by its id or the tablet's UUID).

    Refusals write nothing: photo_subject_required, not_found (missing or another grid's record),
    photo_outside_reach (seen, not logged at), photo_missing, photo_too_large (bytes or pixels),
    photo_invalid (not a decodable JPEG/PNG/WebP), photo_conflict (this id kept with other bytes).
    """
    subject = _subject(reach, visit_id=visit_id, case_ref=case_ref)
    if not content:
        raise DomainError("请选择要上传的照片", code="photo_missing", detail={"field": "file"})
    max_bytes = int(settings.WANGGE_PHOTOS["max_bytes"])
    if len(content) > max_bytes:
        raise DomainError(
            f"照片大小超过上限 {max_bytes // (1024 * 1024)} MB", code="photo_too_large", detail={"field": "file"}
        )
    upload_hash = hashlib.sha256(content).hexdigest()
    kwargs: dict[str, Any] = {"visit": subject} if isinstance(subject, Visit) else {"case": subject}
    existing = _existing(photo_id, upload_hash, kwargs)
    if existing is not None:
        return PhotoUploaded(existing, False)
    fmt, width, height, kept = _decode(content)
    photo = Photo(
        id=photo_id,
        format=fmt,
        width=width,
        height=height,
        size_bytes=len(kept),
        upload_hash=upload_hash,
        uploaded_by=user,
        **kwargs,
    )
    # A name no one can guess (not the photo's id, which the tablet shows): the storage is private.
    photo.file.save(f"{uuid.uuid4().hex}.{_EXTENSIONS[fmt]}", ContentFile(kept), save=False)
    try:
        with transaction.atomic():
            photo.save(force_insert=True)
            street_id = subject.street_id if isinstance(subject, Case) else subject.community.street_id
            audit_record(
                action=AuditEvent.Action.CREATE,
                object_type=Photo._meta.label,
                object_id=photo.pk,
                summary=f"上传照片（{'走访记录' if isinstance(subject, Visit) else '民情事项'} {subject.pk}）",
                changes={"format": fmt, "width": width, "height": height, "size_bytes": len(kept)},
                street_id=street_id,
            )
    except IntegrityError:
        # Two uploads of one id raced: the other stored it; answer as for a retry.
        photo.file.delete(save=False)
        existing = _existing(photo_id, upload_hash, kwargs)
        if existing is None:
            raise
        return PhotoUploaded(existing, False)
    except BaseException:
        photo.file.delete(save=False)
        raise
    return PhotoUploaded(photo, True)


def _existing(photo_id: uuid.UUID, upload_hash: str, subject: dict[str, Any]) -> Photo | None:
    """The photo already kept under this id when it is the same upload; Conflict when the id is
    taken by other bytes or another record."""
    photo = Photo.objects.filter(pk=photo_id).first()
    if photo is None:
        return None
    same_subject = all(getattr(photo, f"{k}_id") == v.pk for k, v in subject.items())
    if photo.upload_hash != upload_hash or not same_subject:
        raise Conflict("该照片编号已用于另一张照片，请重新拍摄后上传", code="photo_conflict")
    return photo


def photo_get(reach: Reach, photo_id: uuid.UUID) -> Photo:
    """The one way to fetch a photo for a reader: its visit or case must be in the caller's reach;
    NotInReach for missing and forbidden alike."""
    if not reach.can_read():
        raise NotInReach
    photo = Photo.objects.filter(pk=photo_id).first()
    if photo is None:
        raise NotInReach
    if photo.visit_id is not None:
        seen = access.visits_in_reach(reach).filter(pk=photo.visit_id).exists()
    else:
        seen = access.cases_in_reach(reach).filter(photos__pk=photo.pk).exists()
    if not seen:
        raise NotInReach
    return photo
