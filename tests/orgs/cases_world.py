"""A ledger world for the cases tests: the `space` of conftest.py (community A with grids A1 and A2,
community B with grid B1) with its organisation tree and users per role, the seeded categories,
and a fixed Monday morning to count deadlines from.

Categories come from the migration (暴露垃圾: 街道环卫所, 7.5 h; 邻里纠纷: no default body,
37.5 h; 井盖缺失: urgent, 2 h); a transactional test (which flushes them) calls `categories()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User

from grid import access as grid_access
from grid import coords
from grid.models import Role
from orgs import services
from orgs.cases_models import Case, CaseCategory, CaseTransition
from orgs.models import PartyOrganisation
from orgs.sync import Position
from tests.orgs.conftest import Space
from tests.orgs_factories import CommunityOrgFactory, GridBranchFactory, StreetCommitteeFactory
from tests.people import user_with

TZ = ZoneInfo("Asia/Shanghai")
# Monday 2 March 2026, 9:00: an ordinary working week (no holiday until 清明, 4 April).
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=TZ)


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


@dataclass
class Ledger:
    space: Space
    committee: PartyOrganisation
    org_a: PartyOrganisation
    org_b: PartyOrganisation
    branch_a1: PartyOrganisation
    street_admin: User
    admin_a: User
    admin_b: User
    worker_a1: User
    worker_a2: User
    leader: User
    rubbish: CaseCategory
    neighbours: CaseCategory
    manhole: CaseCategory

    def reach(self, user: User) -> grid_access.Reach:
        return grid_access.reach_for_user(user)

    def position_in(self, cell: str, *, dx: float = 0.0, dy: float = 0.0, crs: str = "wgs84") -> Position:
        """A captured position beside the building of grid `cell` ("a1", "a2", "b1"), moved by
        dx/dy metres, given in `crs` as a tablet would send it."""
        house = getattr(self.space, f"house_{cell}")
        lon = house.point.x + dx / (111_320 * 0.933)
        lat = house.point.y + dy / 110_574
        if crs == "gcj02":
            lon, lat = coords.wgs84_to_gcj02(lon, lat)
        return Position(lon=float(lon), lat=float(lat), crs=crs, accuracy_m=8.0)

    def raise_case(self, *, by: User | None = None, cell: str = "a1", category: CaseCategory | None = None,
                   now: datetime = MONDAY, **kwargs: Any) -> Case:
        by = by or self.worker_a1
        kwargs.setdefault("position", self.position_in(cell))
        created = services.case_create(
            reach=self.reach(by),
            user=by,
            category=category or self.rubbish,
            description=kwargs.pop("description", "小区门口垃圾堆放两天无人清运"),
            source=kwargs.pop("source", Case.Source.VISIT),
            now=now,
            **kwargs,
        )
        return created.case

    def act(self, case: Case, action: str, *, by: User | None = None, now: datetime = MONDAY, **kwargs: Any) -> Case:
        by = by or self.admin_a
        return services.case_transition(reach=self.reach(by), user=by, case=case, action=action, now=now, **kwargs)


def categories() -> dict[str, CaseCategory]:
    """The three categories the tests use, made if a transactional test flushed the seeded ones."""
    defaults = {
        "暴露垃圾": {"code": "SR01", "default_body": "街道环卫所", "handle_hours": 7.5, "duplicate_radius_m": 250},
        "邻里纠纷": {"code": "SH01", "default_body": "", "handle_hours": 37.5, "duplicate_radius_m": 50},
        "井盖缺失": {"code": "SS02", "default_body": "区市政设施维护中心", "handle_hours": 2, "urgent": True,
                 "duplicate_radius_m": 100},
    }
    out = {}
    for name, fields in defaults.items():
        out[name] = CaseCategory.objects.filter(name=name).first() or services.case_category_create(
            reach=None, name=name, **fields
        )
    return out


@pytest.fixture(name="ledger")
def ledger_fixture(space) -> Ledger:
    s = space
    committee = StreetCommitteeFactory(street=s.street)
    org_a = CommunityOrgFactory(community=s.a, parent=committee)
    org_b = CommunityOrgFactory(community=s.b, parent=committee)
    branch_a1 = GridBranchFactory(grid_cell=s.a1, parent=org_a)
    cats = categories()
    return Ledger(
        space=s,
        committee=committee,
        org_a=org_a,
        org_b=org_b,
        branch_a1=branch_a1,
        street_admin=user_with(Role.STREET_ADMIN, street=s.street),
        admin_a=user_with(Role.COMMUNITY_ADMIN, community=s.a),
        admin_b=user_with(Role.COMMUNITY_ADMIN, community=s.b),
        worker_a1=user_with(Role.GRID_WORKER, grid_cell=s.a1),
        worker_a2=user_with(Role.GRID_WORKER, grid_cell=s.a2),
        leader=user_with(Role.LEADER, street=s.street),
        rubbish=cats["暴露垃圾"],
        neighbours=cats["邻里纠纷"],
        manhole=cats["井盖缺失"],
    )


def snapshot() -> tuple[list[Any], list[Any], int]:
    """Every case and transition row and the audit count: a refusal changes none of them."""
    from grid.models import AuditEvent

    return (
        list(Case.objects.order_by("pk").values()),
        list(CaseTransition.objects.order_by("pk").values()),
        AuditEvent.objects.count(),
    )
