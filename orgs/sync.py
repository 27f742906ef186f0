"""Field events synced from tablets: visits (走访) and station contacts (驻点联系).

A tablet logs events offline, each with a UUID it makes itself, and sends them in batches when it
has signal. The batch may be a retry of one that was already stored (the answer was lost on the
way back), may be hours or weeks old, and may be forged. The rules:

- An event is identified by its UUID. A resent event (same UUID, same account, same content) is
  a `duplicate`: nothing is written and the tablet may forget it. A UUID already used by another
  account or with other content is refused as `sync_id_conflict`: a replay cannot overwrite or
  claim someone else's record, and the answer does not say whose it was.
- Who logged it is the signed-in account, never a field of the item: an item cannot speak for
  another worker.
- The event counts at its subject (the visited building or premises) when it has one, else at
  the captured position. The grid cell and community are those holding that place *on the day
  it happened*: an event logged before a boundary redraw and synced after it still counts where
  it was. A subject or place outside the caller's reach is refused (`not_found` for a subject,
  the same answer as a missing one; `sync_outside_reach` for a position); a subject is in reach
  when it is today or when its place lay in one of the caller's grids on the event's day.
- Each item stands alone: a valid item is stored even when others in the batch are refused, so a
  tablet that was offline for a week loses nothing because one record is bad. The answer lists
  every item with its status and, when refused, a stable code and a Chinese message; the tablet
  keeps the refused ones for the worker to correct.

All stored items of a batch are written by one set-based INSERT … ON CONFLICT DO NOTHING in one
transaction, with one audit row for the batch (none for a plain retry, where every item was a
duplicate).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from grid import coords
from grid.access import Reach, buildings_in_reach
from grid.audit import audit_record
from grid.changes import communities_changed
from grid.models import AuditEvent, Building, Community
from orgs import sql
from orgs.access import enterprises_in_reach
from orgs.attendance import presence_notes
from orgs.models import Enterprise, GridWorker, StationContact, StationedCadre, Visit

CREATED = "created"
DUPLICATE = "duplicate"
REJECTED = "rejected"

VISIT_KINDS_NEEDING_BUILDING = {Visit.Kind.HOUSEHOLD, Visit.Kind.BUILDING}


@dataclass(frozen=True)
class Position:
    """A position as the tablet captured it: lon/lat in its declared coordinate system."""

    lon: float
    lat: float
    crs: str = "wgs84"
    accuracy_m: float | None = None


@dataclass(frozen=True)
class EventItem:
    """One event of a batch, as the edge parsed it (shape checked, nothing looked up yet)."""

    index: int
    id: uuid.UUID
    occurred_at: datetime
    kind: str
    payload_hash: str
    position: Position | None = None
    building_code: str = ""
    summary: str = ""
    # Visits only
    enterprise_id: int | None = None
    household: str = ""
    # Station contacts only
    contact_name: str = ""


@dataclass
class ItemResult:
    index: int
    id: str
    status: str
    code: str = ""
    message: str = ""
    errors: dict[str, Any] | None = None  # field errors of an item the edge could not parse
    # A stationed cadre's check-in or check-out: whether it proves presence, and why not (Chinese).
    on_site: bool | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "id": self.id, "status": self.status}
        if self.status == REJECTED:
            out |= {"code": self.code, "message": self.message}
        if self.errors:
            out["errors"] = self.errors
        if self.on_site is not None:
            out |= {"on_site": self.on_site, "note": self.note}
        return out


@dataclass
class SyncResult:
    results: list[ItemResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.count(CREATED),
            "duplicate": self.count(DUPLICATE),
            "rejected": self.count(REJECTED),
            "results": [r.as_dict() for r in sorted(self.results, key=lambda r: r.index)],
        }


def payload_hash(item: Any) -> str:
    """SHA-256 of an item as sent, in canonical JSON: equal content, equal hash."""
    text = json.dumps(item, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def rejected(index: int, item_id: object, code: str, message: str) -> ItemResult:
    return ItemResult(index=index, id=str(item_id or ""), status=REJECTED, code=code, message=message)


# --------------------------------------------------------------------------------------------
# Steps shared by both kinds of event
# --------------------------------------------------------------------------------------------


@dataclass
class _Pending:
    """An item on its way in, with what the steps found out about it."""

    item: EventItem
    lon: float | None = None  # WGS-84 of the captured position
    lat: float | None = None
    crs: str = ""  # the captured position's coordinate system as declared, in canonical form
    place_lon: float | None = None  # where it counts
    place_lat: float | None = None
    building_id: int | None = None
    enterprise_id: int | None = None
    subject_community_id: int | None = None
    community_id: int | None = None
    grid_cell_id: int | None = None
    # A subject outside the caller's grids today that may still have lain in them on the event's
    # day (a redraw since): it passes only if its place that day is in one of the caller's grids.
    # `subject` names it for the refusal, which reads as for a missing one.
    subject_on_day_only: bool = False
    subject: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def day(self) -> date:
        return timezone.localdate(self.item.occurred_at)


def _check_time(item: EventItem, now: datetime) -> ItemResult | None:
    skew = timedelta(seconds=settings.WANGGE_SYNC["clock_skew_seconds"])
    max_age = timedelta(days=settings.WANGGE_SYNC["max_age_days"])
    if item.occurred_at > now + skew:
        return rejected(
            item.index, item.id, "sync_time_in_future", "记录时间晚于服务器当前时间，请检查平板的日期和时间设置"
        )
    if item.occurred_at < now - max_age:
        return rejected(
            item.index,
            item.id,
            "sync_time_too_old",
            f"记录时间早于 {max_age.days} 天前，不能再同步；请联系社区管理员补录",
        )
    return None


def _convert_position(pending: _Pending) -> ItemResult | None:
    """Convert the captured position to WGS-84 once, refusing what cannot be a place in China."""
    item, position = pending.item, pending.item.position
    if position is None:
        return None
    try:
        crs = coords.parse_crs(position.crs)
        coords.check_in_range(position.lon, position.lat, crs)
        lon, lat = coords.to_wgs84(position.lon, position.lat, crs)
    except (coords.UnknownCRS, coords.CoordinatesOutOfRange) as exc:
        return rejected(item.index, item.id, exc.code, exc.message)
    if not coords.inside_china(float(lon), float(lat)):
        return rejected(
            item.index,
            item.id,
            "coords_outside_china",
            f"定位 ({position.lon}, {position.lat}) 不在中国境内，请检查坐标系或经纬度是否写反",
        )
    pending.lon, pending.lat, pending.crs = float(lon), float(lat), crs
    return None


def _subject_not_found(item: EventItem, subject: str) -> ItemResult:
    return rejected(item.index, item.id, "not_found", f"{subject} 不存在或不在您负责的范围内")


def _resolve_buildings(reach: Reach, pendings: Sequence[_Pending]) -> dict[int, ItemResult]:
    """Subjects by code (one query), checked against the caller's reach: missing and forbidden
    read alike. A building outside the caller's grids today is held for the check as of the day
    (_resolve_places): the grid that held it when the worker was there may have been redrawn."""
    codes = {p.item.building_code for p in pendings if p.item.building_code}
    if not codes:
        return {}
    found = {
        row["code"]: row
        for row in Building.objects.filter(code__in=codes).values("id", "code", "community_id", "point")
    }
    in_reach = set(buildings_in_reach(reach).filter(code__in=codes).values_list("code", flat=True))
    refused: dict[int, ItemResult] = {}
    for p in pendings:
        code = p.item.building_code
        if not code:
            continue
        row = found.get(code)
        held = row is not None and code not in in_reach
        if row is None or (held and not reach.grid_cell_ids):
            refused[p.item.index] = _subject_not_found(p.item, f"楼栋 {code}")
            continue
        if held and p.subject_community_id not in (None, row["community_id"]):
            # Not in reach and not where the record belongs: say no more than for a missing one.
            refused[p.item.index] = _subject_not_found(p.item, f"楼栋 {code}")
            continue
        if held:
            p.subject_on_day_only, p.subject = True, f"楼栋 {code}"
        if p.subject_community_id not in (None, row["community_id"]):
            # A station contact belongs to its posting's community; a visit to its premises'.
            refused[p.item.index] = rejected(
                p.item.index, p.item.id, "sync_subject_elsewhere", f"楼栋 {code} 不在该记录所属的社区内"
            )
            continue
        p.building_id, p.subject_community_id = row["id"], row["community_id"]
        p.place_lon, p.place_lat = row["point"].x, row["point"].y
    return refused


def _resolve_places(reach: Reach, pendings: Sequence[_Pending]) -> dict[int, ItemResult]:
    """The grid cell and community of each place on its day (one query), then the reach check."""
    for p in pendings:
        if p.place_lon is None:
            p.place_lon, p.place_lat = p.lon, p.lat
    located = sql.places_on_days(
        [(p.item.index, p.place_lon, p.place_lat, p.day) for p in pendings if p.place_lon is not None]
    )
    refused: dict[int, ItemResult] = {}
    for p in pendings:
        cell_id, community_id, street_id = located.get(p.item.index, (None, None, None))
        p.grid_cell_id = cell_id
        if p.subject_on_day_only and cell_id not in reach.grid_cell_ids:
            refused[p.item.index] = _subject_not_found(p.item, p.subject)
            continue
        if p.subject_community_id is not None:
            # The subject (or the posting) was checked against the reach already; it says which
            # community. A place in another community that day (a check-in off site) is filed
            # under no grid rather than under a grid of another community.
            p.community_id = p.subject_community_id
            if community_id != p.subject_community_id:
                p.grid_cell_id = None
            continue
        if community_id is None:
            refused[p.item.index] = rejected(
                p.item.index, p.item.id, "sync_outside_grids", "定位不在任何社区或网格范围内，请选择走访对象后再同步"
            )
            continue
        in_reach = (
            reach.everything
            or (cell_id is not None and cell_id in reach.grid_cell_ids)
            or community_id in reach.community_ids
            or street_id in reach.street_ids
        )
        if not in_reach:
            refused[p.item.index] = rejected(
                p.item.index, p.item.id, "sync_outside_reach", "定位不在您负责的网格或社区内"
            )
            continue
        p.community_id = community_id
    return refused


def _store(
    model: type[Visit] | type[StationContact],
    user: Any,
    pendings: Sequence[_Pending],
) -> dict[int, ItemResult]:
    """Insert what passed, ON CONFLICT DO NOTHING; tell duplicates from conflicting replays."""
    reporter_name = (user.get_full_name() or user.get_username())[:150]
    rows = [
        {
            "id": str(p.item.id),
            "occurred_at": p.item.occurred_at.isoformat(),
            "reporter_id": user.pk,
            "reporter_name": reporter_name,
            "captured_lon": p.item.position.lon if p.item.position else None,
            "captured_lat": p.item.position.lat if p.item.position else None,
            "captured_crs": p.crs,
            "accuracy_m": p.item.position.accuracy_m if p.item.position else None,
            "lon": p.lon,
            "lat": p.lat,
            "place_lon": p.place_lon,
            "place_lat": p.place_lat,
            "has_subject": p.building_id is not None or p.enterprise_id is not None,
            "community_id": p.community_id,
            "grid_cell_id": p.grid_cell_id,
            "building_id": p.building_id,
            "summary": p.item.summary,
            "kind": p.item.kind,
            "payload_hash": p.item.payload_hash,
            **p.extra,
        }
        for p in pendings
    ]
    created = sql.insert_field_events(model._meta.db_table, rows, extra_columns=EXTRA_COLUMNS[model])
    results: dict[int, ItemResult] = {}
    others = [p for p in pendings if str(p.item.id) not in created]
    existing = sql.field_event_owners(model._meta.db_table, [str(p.item.id) for p in others])
    for p in pendings:
        i, item_id = p.item.index, str(p.item.id)
        if item_id in created:
            results[i] = ItemResult(index=i, id=item_id, status=CREATED)
        elif existing.get(item_id) == (user.pk, p.item.payload_hash):
            results[i] = ItemResult(index=i, id=item_id, status=DUPLICATE)
        else:
            results[i] = rejected(
                i, item_id, "sync_id_conflict", "该记录编号已被另一条不同的记录使用；请在平板上重新生成编号后再同步"
            )
    return results


# Columns beyond the shared ones, with their SQL types, per kind of event.
EXTRA_COLUMNS: dict[type, dict[str, str]] = {
    Visit: {"worker_id": "integer", "household": "text", "enterprise_id": "integer"},
    # on_site is NOT NULL with no database default; mark_contacts_on_site sets it after the insert.
    StationContact: {"cadre_id": "integer", "contact_name": "text", "on_site": "boolean"},
}


def _audit_batch(
    model: type[Visit] | type[StationContact], result: SyncResult, pendings: Sequence[_Pending]
) -> None:
    label = model._meta.verbose_name
    created = [r.id for r in result.results if r.status == CREATED]
    refused = Counter(r.code for r in result.results if r.status == REJECTED)
    communities = {p.community_id for p in pendings if p.community_id is not None}
    streets = set(Community.objects.filter(id__in=communities).values_list("street_id", flat=True))
    audit_record(
        action=AuditEvent.Action.CREATE,
        object_type=model._meta.label,
        object_id=created[0] if len(created) == 1 else f"{len(created)}条",
        summary=(
            f"同步{label}：新增 {len(created)} 条，重复 {result.count(DUPLICATE)} 条，"
            f"拒收 {result.count(REJECTED)} 条"
        ),
        # Ids of what was stored (a batch is at most WANGGE_SYNC["max_items"]) and the codes of
        # what was refused: a forged or replayed batch leaves its trace here.
        changes={"created": created, "rejected": dict(refused)},
        street_id=next(iter(streets)) if len(streets) == 1 else None,
    )


def _sync(
    model: type[Visit] | type[StationContact],
    *,
    reach: Reach,
    user: Any,
    items: Sequence[EventItem],
    refused: Sequence[ItemResult],
    prepare: Any,
    after_store: Any = None,
) -> SyncResult:
    result = SyncResult(results=list(refused))
    # A record this account already stored with this content is a duplicate whatever changed
    # since (its age, the account's grids): the tablet may forget it. _store checks again for a
    # copy sent concurrently.
    known = sql.field_event_owners(model._meta.db_table, [str(item.id) for item in items])
    fresh = []
    for item in items:
        if known.get(str(item.id)) == (user.pk, item.payload_hash):
            result.results.append(ItemResult(index=item.index, id=str(item.id), status=DUPLICATE))
        else:
            fresh.append(item)
    now = timezone.now()
    pendings: list[_Pending] = []
    for item in fresh:
        problem = _check_time(item, now)
        pending = _Pending(item=item)
        problem = problem or _convert_position(pending)
        if problem:
            result.results.append(problem)
        else:
            pendings.append(pending)

    with transaction.atomic():
        steps = (
            prepare,
            lambda ps: _resolve_buildings(reach, ps),
            lambda ps: _resolve_places(reach, ps),
        )
        for step in steps:
            problems = step(pendings)
            result.results.extend(problems.values())
            pendings = [p for p in pendings if p.item.index not in problems]
        if pendings:
            stored = _store(model, user, pendings)
            result.results.extend(stored.values())
            touched = {p.community_id for p in pendings if stored[p.item.index].status == CREATED}
            if after_store is not None:
                after_store([r.id for r in stored.values() if r.status == CREATED])
            # Map caches key on the data version; the gap recompute hears of it after the commit.
            communities_changed(sorted(c for c in touched if c is not None))
        # A plain retry (everything a duplicate) changes nothing and leaves no row: a tablet on a
        # bad line may resend a batch many times. Anything stored or refused is recorded.
        if result.count(CREATED) or result.count(REJECTED):
            _audit_batch(model, result, pendings)
    return result


# --------------------------------------------------------------------------------------------
# The two services
# --------------------------------------------------------------------------------------------


def visits_sync(
    *, reach: Reach, user: Any, items: Sequence[EventItem], refused: Sequence[ItemResult] = ()
) -> SyncResult:
    """Store a batch of visits logged by `user`. `refused`: items the edge could not parse, kept
    in the answer so every item of the batch gets one."""
    worker = GridWorker.objects.filter(user=user, active=True).order_by("pk").first()

    def prepare(pendings: list[_Pending]) -> dict[int, ItemResult]:
        problems: dict[int, ItemResult] = {}
        wanted = {p.item.enterprise_id for p in pendings if p.item.enterprise_id is not None}
        enterprises = {
            row["id"]: row
            for row in Enterprise.objects.filter(id__in=wanted).values("id", "community_id", "geom")
        }
        # As for buildings: outside the caller's grids today, checked again as of the day.
        in_reach = set(enterprises_in_reach(reach).filter(id__in=wanted).values_list("id", flat=True))
        for p in pendings:
            p.extra = {"worker_id": worker.pk if worker else None, "household": p.item.household}
            if p.item.enterprise_id is None:
                p.extra["enterprise_id"] = None
                continue
            row = enterprises.get(p.item.enterprise_id)
            held = row is not None and row["id"] not in in_reach
            # A held enterprise is checked at its own place on the day; named with a building, the
            # visit would count (and be checked) at the building instead, so it is refused.
            if (
                row is None
                or row["community_id"] is None
                or (held and (not reach.grid_cell_ids or p.item.building_code))
            ):
                problems[p.item.index] = _subject_not_found(p.item, f"两新组织 {p.item.enterprise_id}")
                continue
            if held:
                p.subject_on_day_only, p.subject = True, f"两新组织 {p.item.enterprise_id}"
            p.extra["enterprise_id"] = row["id"]
            p.enterprise_id = row["id"]
            if not p.item.building_code:
                p.subject_community_id = row["community_id"]
                p.place_lon, p.place_lat = row["geom"].x, row["geom"].y
        return problems

    return _sync(Visit, reach=reach, user=user, items=items, refused=refused, prepare=prepare)


def station_contacts_sync(
    *, reach: Reach, user: Any, items: Sequence[EventItem], refused: Sequence[ItemResult] = ()
) -> SyncResult:
    """Store a batch of check-ins and contacts of the stationed cadre signed in as `user`.

    Each item belongs to the posting (StationedCadre) in force on its day; a check-in counts as
    on site when its captured position lies in that posting's community.
    """
    postings = list(
        StationedCadre.objects.filter(user=user).select_related("community").order_by("-period_start", "-pk")
    )

    def posting_on(day: date) -> StationedCadre | None:
        for posting in postings:
            if posting.period_start <= day and (posting.period_end is None or day <= posting.period_end):
                return posting
        return None

    def prepare(pendings: list[_Pending]) -> dict[int, ItemResult]:
        problems: dict[int, ItemResult] = {}
        for p in pendings:
            posting = posting_on(p.day)
            if posting is None:
                problems[p.item.index] = rejected(
                    p.item.index, p.item.id, "sync_not_stationed", f"{p.day:%Y-%m-%d} 您没有驻点安排，不能记录驻点联系"
                )
                continue
            if not (
                reach.everything
                or posting.community_id in reach.community_ids
                or posting.community.street_id in reach.street_ids
            ):
                problems[p.item.index] = rejected(
                    p.item.index, p.item.id, "sync_outside_reach", "您已不再负责该驻点社区"
                )
                continue
            p.subject_community_id = posting.community_id
            if p.place_lon is None and not p.item.building_code:
                p.place_lon, p.place_lat = p.lon, p.lat
            p.extra = {"cadre_id": posting.pk, "contact_name": p.item.contact_name, "on_site": False}
        return problems

    result = _sync(
        StationContact,
        reach=reach,
        user=user,
        items=items,
        refused=refused,
        prepare=prepare,
        after_store=sql.mark_contacts_on_site,
    )
    # Tell the cadre at once whether each new check-in/out counts (a coarse fix proves nothing).
    notes = presence_notes([r.id for r in result.results if r.status == CREATED])
    for r in result.results:
        if r.id in notes and r.status == CREATED:
            r.on_site, r.note = notes[r.id]
    return result
