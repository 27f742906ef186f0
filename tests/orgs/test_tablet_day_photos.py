"""Photos of visits and cases: uploaded by a multipart endpoint keyed by the photo's UUID (after
the record synced), checked by a real decoder, kept in the configured storage without GPS tags,
served only to users whose reach covers the record; every refusal has its code and writes nothing."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from grid.models import AuditEvent
from orgs.models import Visit
from orgs.photos_models import Photo
from tests.orgs.cases_world import Ledger, ledger_fixture  # noqa: F401 - fixture
from tests.people import api_client

GPS_IFD, ORIENTATION = 0x8825, 0x0112


def jpeg(size=(64, 48), *, gps: bool = True, colour=(200, 30, 30)) -> bytes:
    """A camera-like JPEG: an orientation tag, and GPS tags when `gps`."""
    image = Image.new("RGB", size, colour)
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    if gps:
        exif.get_ifd(GPS_IFD).update({1: "N", 2: (22.0, 30.0, 0.0), 3: "E", 4: (113.0, 50.0, 0.0)})
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), quality=85)
    return out.getvalue()


def png(size=(32, 32)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (0, 120, 0)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def stored_files(root: Path) -> list[Path]:
    return [p for p in Path(root).rglob("*") if p.is_file()]


def _visit(ledger: Ledger, cell: str = "a1") -> Visit:
    house = getattr(ledger.space, f"house_{cell}")
    user = ledger.worker_a1 if cell == "a1" else ledger.worker_a2
    return Visit.objects.create(
        id=uuid.uuid4(), occurred_at=timezone.now(), reporter=user, reporter_name="网格员", place=house.point,
        community=house.community, grid_cell=house.grid_cell, building=house, kind=Visit.Kind.BUILDING,
        payload_hash="x",
    )


def upload(user, *, content: bytes, name: str = "p.jpg", photo_id=None, **subject):
    body = {"id": str(photo_id or uuid.uuid4()), "file": SimpleUploadedFile(name, content, "image/jpeg")}
    body.update({k: str(v) for k, v in subject.items()})
    return api_client(user).post("/api/photos/", body, format="multipart")


@pytest.mark.django_db
def test_a_visit_photo_is_kept_without_gps_served_in_reach_and_a_retry_is_a_duplicate(ledger: Ledger, _media):
    visit = _visit(ledger)
    photo_id = uuid.uuid4()
    audits = AuditEvent.objects.count()
    first = upload(ledger.worker_a1, content=jpeg(), photo_id=photo_id, visit=visit.pk)
    assert first.status_code == 201, first.content
    assert first.json()["status"] == "created"
    photo = Photo.objects.get()
    assert (photo.pk, photo.visit, photo.format, photo.width, photo.height) == (photo_id, visit, "JPEG", 64, 48)
    assert AuditEvent.objects.count() == audits + 1
    # Kept in the configured storage, under a name that is not the photo's id; GPS gone, orientation kept.
    [kept] = stored_files(_media)
    assert str(photo_id) not in kept.name
    with Image.open(kept) as image:
        exif = image.getexif()
        assert GPS_IFD not in exif and exif[ORIENTATION] == 6

    # The tablet lost the answer and sends the photo again: answered, not stored twice.
    again = upload(ledger.worker_a1, content=jpeg(), photo_id=photo_id, visit=visit.pk)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert Photo.objects.count() == 1 and len(stored_files(_media)) == 1

    # Readers in reach get the bytes; another grid's worker and the street's storage URL do not.
    seen = api_client(ledger.admin_a).get(f"/api/photos/{photo_id}/")
    assert seen.status_code == 200 and seen["Content-Type"] == "image/jpeg"
    assert b"".join(seen.streaming_content) == kept.read_bytes()
    assert seen["Cache-Control"].startswith("private")
    hidden = api_client(ledger.worker_a2).get(f"/api/photos/{photo_id}/")
    assert hidden.status_code == 404 and hidden.json()["code"] == "not_found"
    assert api_client(ledger.admin_a).get(f"/media/{kept.relative_to(_media)}").status_code == 404


@pytest.mark.django_db
def test_a_case_photo_by_the_tablets_case_uuid_or_the_case_id(ledger: Ledger):
    client_id = uuid.uuid4()
    case = ledger.raise_case(client_id=client_id)
    by_uuid = upload(ledger.worker_a1, content=png(), name="a.png", case=client_id)
    by_id = upload(ledger.worker_a1, content=jpeg(gps=False), case=case.pk)
    assert by_uuid.status_code == 201 and by_id.status_code == 201, (by_uuid.content, by_id.content)
    assert sorted(p.format for p in Photo.objects.filter(case=case)) == ["JPEG", "PNG"]


def _chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def _gif() -> bytes:
    out = io.BytesIO()
    Image.new("P", (8, 8)).save(out, "GIF")
    return out.getvalue()


def _reused_id(w: dict) -> dict:
    photo_id = uuid.uuid4()
    first = upload(w["user"], content=png(), name="a.png", photo_id=photo_id, visit=w["mine"].pk)
    assert first.status_code == 201
    return {"photo_id": photo_id}


# Each hostile upload: what it changes in the ordinary upload {"content": a JPEG, "visit": mine}.
HOSTILE = {
    "text_renamed_jpg": (400, "photo_invalid", lambda w: {"content": "这不是图片，只是改了扩展名的文本。\n".encode() * 50}),
    "gif": (400, "photo_invalid", lambda w: {"content": _gif()}),
    "truncated_jpeg": (400, "photo_invalid", lambda w: {"content": jpeg(size=(400, 300), gps=False)[:600]}),
    "too_many_bytes": (400, "photo_too_large", lambda w: {"content": jpeg(gps=False) + b"\0" * 2000}),
    "too_many_pixels": (400, "photo_too_large", lambda w: {"content": jpeg(size=(60, 40))}),
    "no_subject": (400, "photo_subject_required", lambda w: {"visit": None}),
    "both_subjects": (400, "photo_subject_required", lambda w: {"case": w["other_case"].pk}),
    "other_grids_visit": (404, "not_found", lambda w: {"visit": w["theirs"].pk}),
    "other_grids_case": (404, "not_found", lambda w: {"visit": None, "case": w["other_case"].pk}),
    "unknown_visit": (404, "not_found", lambda w: {"visit": uuid.uuid4()}),
    "a_role_that_logs_nothing": (403, "permission_denied", lambda w: {"user": w["leader"]}),
    "id_reused_for_other_bytes": (409, "photo_conflict", _reused_id),
}


@pytest.mark.django_db
@pytest.mark.parametrize("name", [*HOSTILE, "no_file"])
def test_hostile_uploads_are_refused_with_a_code_and_write_nothing(ledger: Ledger, settings, _media, name):
    settings.WANGGE_PHOTOS = {**settings.WANGGE_PHOTOS, "max_bytes": 3000, "max_side_px": 50}
    mine = _visit(ledger, "a1")
    world = {"user": ledger.worker_a1, "mine": mine, "theirs": _visit(ledger, "b1"), "leader": ledger.leader,
             "other_case": ledger.raise_case(by=ledger.street_admin, cell="b1")}
    kwargs = {"user": ledger.worker_a1, "content": jpeg(size=(40, 30)), "visit": mine.pk}
    status, code, change = HOSTILE.get(name, (400, "photo_missing", lambda w: {}))
    kwargs.update(change(world))
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    before = (Photo.objects.count(), len(stored_files(_media)), AuditEvent.objects.count())
    if name == "no_file":
        response = api_client(kwargs["user"]).post(
            "/api/photos/", {"id": str(uuid.uuid4()), "visit": str(mine.pk)}, format="multipart"
        )
    else:
        response = upload(**kwargs)
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code and _chinese(body["message"])
    assert (Photo.objects.count(), len(stored_files(_media)), AuditEvent.objects.count()) == before
