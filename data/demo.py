"""The demo data set: `demo_build` generates the space (data/demo_space.py) and writes it.

Idempotent by design: every table is upserted by code and a row that already holds the same
values is not touched, grid boundaries go through the grid service (which makes no new version
for an unchanged shape), and whatever an earlier run of another scale or seed left under the
generator's streets is deleted. The database then holds exactly the requested data set for
霞山区, whatever ran before: `demo` after `district` shrinks it back to 海滨街道, and `district`
after `demo` keeps 海滨街道 untouched (its blocks, codes and shapes are the same in both scales).

The organisation side (data/demo_orgs.py: party organisations, members, enterprises, workers)
is generated in memory from the space, staged beside it, and written after it; its stale rows are
deleted first, while the old streets still exist to scope by. The field events (data/demo_events.py:
visits and station contacts of the last 60 days) come last and are cleaned up before anything
else: they point at buildings, communities, grid cells, workers and cadres. The residents' cases
(data/demo_cases.py: a year of them) are cleaned up with the events and written after them; a case
left pointing at what the clean-ups removed (whoever raised it) goes too.

Everything happens in one transaction: a failed run leaves the previous data set as it was.
Later stages (coverage analytics) build on the ids returned in `DemoSummary.space`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import shapely
from django.conf import settings
from django.contrib.gis.geos import GEOSGeometry
from django.db import transaction
from django.utils import timezone

from data import demo_cases, demo_events, demo_names, demo_orgs, demo_space
from data import sql as demo_sql
from data.demo_cases import DemoCases, DemoCasesSummary
from data.demo_events import DemoEvents, DemoEventsSummary
from data.demo_orgs import DemoOrgs, DemoOrgsError, DemoOrgsSummary
from data.demo_space import ADCODE, DemoGeometryError, DemoSpace
from grid import services as grid_services
from grid.audit import audit_record
from grid.changes import communities_changed

Progress = Callable[[str], None]

BOUNDARY_VALID_FROM = date(2024, 1, 1)
BOUNDARY_NOTE = "演示数据"
# Every street code the generator can produce; rows under other streets are never touched.
MANAGED_STREET_CODES = [f"{ADCODE}{suffix}" for suffix in sorted(demo_names.STREET_NAMES)]

__all__ = ["DemoGeometryError", "DemoOrgsError", "DemoSpaceIds", "DemoSummary", "demo_build"]


@dataclass(frozen=True)
class DemoSpaceIds:
    """What the space stage made, for the stages that hang organisations and people on it."""

    street_ids: dict[str, int]
    community_ids: dict[str, int]
    grid_ids: dict[str, int]
    grid_codes_by_community: dict[str, list[str]]
    building_codes_by_community: dict[str, list[str]]


@dataclass(frozen=True)
class DemoSummary:
    scale: str
    seed: int
    streets: int
    communities: int
    grid_cells: int
    buildings: int
    households: int
    service_centres: int
    created: dict[str, int]
    updated: dict[str, int]
    deleted: dict[str, int]
    boundaries_created: int
    boundaries_changed: int
    boundaries_unchanged: int
    seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)
    space: DemoSpaceIds | None = None
    orgs: DemoOrgsSummary | None = None
    events: DemoEventsSummary | None = None
    cases: DemoCasesSummary | None = None

    @property
    def changed(self) -> bool:
        return bool(
            sum(self.created.values()) + sum(self.updated.values()) + sum(self.deleted.values())
            + self.boundaries_created + self.boundaries_changed
        )


class _Clock:
    def __init__(self, progress: Progress | None) -> None:
        self._say = progress or (lambda _msg: None)
        self._start = self._last = time.monotonic()
        self.stages: dict[str, float] = {}

    def __call__(self, message: str) -> None:
        now = time.monotonic()
        self.stages[message] = round(now - self._last, 2)
        self._say(f"{message}（{now - self._last:.1f} 秒）")
        self._last = now

    @property
    def total(self) -> float:
        return round(time.monotonic() - self._start, 2)


def _hex(geoms: object) -> list[str]:
    return list(shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True))


def _stage(space: DemoSpace) -> None:
    s_geoms = _hex([s.geom for s in space.streets])
    demo_sql.stage("demo_street_stage", ["code", "name", "district_adcode", "geom"],
                   [(s.code, s.name, ADCODE, g) for s, g in zip(space.streets, s_geoms, strict=True)])
    c_geoms = _hex([c.geom for c in space.communities])
    demo_sql.stage("demo_community_stage", ["code", "street_code", "name", "residents", "geom"],
                   [(c.code, c.street_code, c.name, c.residents, g)
                    for c, g in zip(space.communities, c_geoms, strict=True)])
    demo_sql.stage("demo_cell_stage", ["code", "community_code", "name"],
                   [(g.code, g.community_code, g.name) for g in space.grids])
    b = space.buildings
    demo_sql.stage(
        "demo_building_stage",
        ["code", "name", "address", "kind", "community_code", "households", "floors", "geom"],
        zip(b.code, b.name, b.address, b.kind, b.community_code, b.households.tolist(), b.floors.tolist(),
            _hex(b.geom), strict=True),
    )
    p_geoms = _hex([c.geom for c in space.centres])
    demo_sql.stage(
        "demo_centre_stage",
        ["code", "name", "level", "street_code", "community_code", "address", "service_radius_m", "geom"],
        [(c.code, c.name, c.level, c.street_code, c.community_code, c.address, c.service_radius_m, g)
         for c, g in zip(space.centres, p_geoms, strict=True)],
    )


@transaction.atomic
def _write(space: DemoSpace, orgs: DemoOrgs, events: DemoEvents, cases: DemoCases,
           clock: _Clock) -> tuple[dict[str, dict[str, int]], grid_services.BoundaryWriteResult, DemoSpaceIds]:
    # First, before any join over them: statistics that stay true for the whole build.
    demo_sql.hold_statistics()
    demo_cases.hold_statistics()
    _stage(space)
    demo_orgs.orgs_stage(orgs)
    clock("暂存到临时表（COPY，个人信息加密）")
    demo_events.events_stage(events)
    clock(f"暂存走访 {len(events.visits)} 条、驻点联系 {len(events.contacts)} 条")
    demo_cases.cases_stage(cases)
    clock(f"暂存民情事项 {len(cases.cases)} 件、流转记录 {len(cases.transitions)} 条")
    reporter = demo_events.events_reporter()
    # Events first: they point at workers, cadres, grid cells and communities the later clean-ups
    # delete. Then organisation-side rows: they are scoped by streets the space's clean-up may delete.
    deleted, event_comms = demo_sql.delete_stale_events(managed_street_codes=MANAGED_STREET_CODES,
                                                        reporter_id=reporter)
    clock(f"清理旧走访 {deleted['visits']} 条、驻点联系 {deleted['station_contacts']} 条")
    # Cases point at communities, grid cells and organisations too: the demo's stale ones go now.
    deleted["cases"], case_comms = demo_cases.delete_stale_cases(managed_street_codes=MANAGED_STREET_CODES,
                                                                 reporter_id=reporter)
    deleted |= demo_sql.delete_stale_orgs(managed_street_codes=MANAGED_STREET_CODES)
    deleted |= demo_sql.delete_stale(managed_street_codes=MANAGED_STREET_CODES)
    dangling, dangling_comms = demo_cases.delete_dangling_cases()
    deleted["cases"] += dangling
    clock("清理旧演示数据")
    created: dict[str, int] = {}
    updated: dict[str, int] = {}
    touched: set[int] = set()
    for name, fn in (("streets", demo_sql.upsert_streets), ("communities", demo_sql.upsert_communities),
                     ("grid_cells", demo_sql.upsert_cells), ("buildings", demo_sql.upsert_buildings),
                     ("service_centres", demo_sql.upsert_centres)):
        created[name], updated[name], communities = fn()
        if name in ("buildings", "service_centres"):
            touched.update(communities)
    clock(f"写入街道、社区、网格、楼栋 {len(space.buildings)}、党群服务中心")

    grid_ids = demo_sql.ids_by_code(demo_sql.CELL, [g.code for g in space.grids])
    shapes = {grid_ids[g.code]: GEOSGeometry(shapely.to_wkb(g.geom, hex=True), srid=4326) for g in space.grids}
    result = grid_services.grid_boundaries_set(shapes=shapes, valid_from=BOUNDARY_VALID_FROM, note=BOUNDARY_NOTE)
    clock(f"写入网格边界 {len(shapes)} 个（版本化、分块、楼栋归属网格）")
    comm_ids = demo_sql.ids_by_code(demo_sql.COMMUNITY, [c.code for c in space.communities])
    if touched and not result.changed_boundary_ids:
        # The boundary write reassigns buildings only when a boundary changed; new or moved
        # buildings under unchanged boundaries still need their grid.
        grid_services.buildings_reassign(community_ids=sorted(touched))
        clock("楼栋归属网格")
    if touched:
        communities_changed(sorted(touched))
    # The organisation and event stages join what was just written; see demo_sql.analyze.
    demo_sql.analyze(demo_sql.SPACE_TABLES)

    ids = DemoSpaceIds(
        street_ids=demo_sql.ids_by_code(demo_sql.STREET, [s.code for s in space.streets]),
        community_ids=comm_ids,
        grid_ids=grid_ids,
        grid_codes_by_community={c.code: [] for c in space.communities},
        building_codes_by_community={c.code: [] for c in space.communities},
    )
    for g in space.grids:
        ids.grid_codes_by_community[g.community_code].append(g.code)
    for code, comm in zip(space.buildings.code, space.buildings.community_code, strict=True):
        ids.building_codes_by_community[comm].append(code)

    org_created, org_updated = demo_orgs.orgs_upsert(orgs, managed_street_codes=MANAGED_STREET_CODES)
    created |= org_created
    updated |= org_updated
    clock(f"写入党组织 {len(orgs.orgs)} 个、党员 {len(orgs.members)} 名、两新组织、网格员、驻点干部")

    # The event insert joins workers, cadres and enterprises just written.
    demo_sql.analyze(demo_sql.ORG_TABLES)
    tz = settings.TIME_ZONE
    created["visits"], visit_comms = demo_sql.insert_visits(reporter_id=reporter, time_zone=tz)
    created["station_contacts"], contact_comms = demo_sql.insert_contacts(reporter_id=reporter, time_zone=tz)
    # Coverage layers key their caches on the data version, as after a synced batch.
    communities_changed(sorted(set(event_comms) | set(visit_comms) | set(contact_comms)))
    clock(f"写入走访 {created['visits']} 条、驻点联系 {created['station_contacts']} 条"
          "（按当日网格归属，计算与对象距离和是否在驻点社区内）")
    created["case_categories"] = demo_cases.ensure_categories(cases)
    created["cases"], new_case_comms = demo_cases.insert_cases(reporter_id=reporter, time_zone=tz)
    communities_changed(sorted(set(case_comms) | set(dangling_comms) | set(new_case_comms)))
    clock(f"写入民情事项 {created['cases']} 件（按上报当日网格归属）及其流转记录")

    counts = {"created": created, "updated": updated, "deleted": deleted}
    if any(sum(v.values()) for v in counts.values()) or result.changed_boundary_ids:
        audit_record(
            action="import",
            object_type="demo_data",
            object_id=f"{space.scale}:{space.seed}",
            summary=f"生成演示数据（{space.scale}，种子 {space.seed}）：新增 {sum(created.values())}，"
            f"更新 {sum(updated.values())}，删除 {sum(deleted.values())}",
            changes=counts,
        )
    return counts, result, ids


def demo_build(*, scale: str, seed: int, progress: Progress | None = None, today: date | None = None) -> DemoSummary:
    """Make the database hold the demo data set of `scale` ("demo" or "district") for `seed`.

    The same scale, seed and day always give the same data; running twice changes nothing the
    second time (`today` places term ends, dues, ratings and the 60-day window of field events;
    injectable for tests). Raises
    DemoGeometryError (before writing anything) if the generated space breaks its own invariants,
    DemoOrgsError (rolled back) if the written organisation tree disagrees with the space.
    """
    clock = _Clock(progress)
    today = today or timezone.localdate()
    space = demo_space.build_space(scale=scale, seed=seed, progress=clock)
    orgs = demo_orgs.build_orgs(space=space, today=today, rules=settings.WANGGE_RULES)
    clock(f"生成党组织 {len(orgs.orgs)} 个、党员 {len(orgs.members)} 名、两新组织 {len(orgs.enterprises)} 个")
    events = demo_events.build_events(space=space, orgs=orgs, today=today)
    ev = events.counts
    clock(f"生成近 {demo_events.WINDOW_DAYS} 天走访 {ev['visits']} 条（入户 {ev['visits_household']}、"
          f"楼栋巡查 {ev['visits_building']}、两新组织 {ev['visits_enterprise']}、其他 {ev['visits_other']}），"
          f"驻点签到 {ev['check_ins']} 次、联系群众 {ev['contacts']} 次")
    cases = demo_cases.build_cases(space=space, orgs=orgs, today=today)
    cc = cases.counts
    clock(f"生成近 {demo_cases.WINDOW_DAYS} 天民情事项 {cc['cases']} 件（流转 {cc['transitions']} 条，"
          f"重复 {cc['duplicates']}，退回 {cc['sent_back']}，督办 {cc['escalated']}，当前超期 {cc['overdue_open']}）")
    counts, result, ids = _write(space, orgs, events, cases, clock)
    return DemoSummary(
        scale=scale,
        seed=seed,
        streets=len(space.streets),
        communities=len(space.communities),
        grid_cells=len(space.grids),
        buildings=len(space.buildings),
        households=int(space.buildings.households.sum()),
        service_centres=len(space.centres),
        created=counts["created"],
        updated=counts["updated"],
        deleted=counts["deleted"],
        boundaries_created=result.created,
        boundaries_changed=result.redrawn + result.corrected,
        boundaries_unchanged=result.unchanged,
        seconds=clock.total,
        stage_seconds=clock.stages,
        space=ids,
        orgs=demo_orgs.orgs_summary(orgs, space),
        events=demo_events.events_summary(events),
        cases=demo_cases.cases_summary(cases),
    )
