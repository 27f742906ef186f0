"""The suggested rebalance's entry points: compute a suggestion (a read) and start a planner's draft
from it (a write). The algorithm is mapping.rebalance; the load mapping.rebalance_sql; the draft is
made by mapping.plans.plan_create_from_shapes, the one constructor of drafts (origin "suggestion").
"""

from __future__ import annotations

from collections.abc import Collection

import shapely
from django.contrib.gis.geos import GEOSGeometry
from django.db import transaction
from django.utils import timezone

from edge.errors import Conflict, DomainError
from grid.models import STORAGE_SRID, Community
from mapping import plans, plans_sql
from mapping.plans_checks import planning_settings
from mapping.plans_models import Plan, PlanCell
from mapping.rebalance import RebalanceInput, Rules, Suggestion, rebalance
from mapping.rebalance_sql import community_load


def _rules(data: RebalanceInput, *, seed: int, locked: Collection[str]) -> Rules:
    conf = planning_settings()
    known = {c.code for c in data.cells}
    unknown = sorted(set(locked) - known)
    if unknown:
        raise DomainError(
            f"锁定的网格不是本社区现行的网格：{'、'.join(unknown[:10])}", code="value_invalid",
            detail={"field": "locked", "codes": unknown},
        )
    return Rules(
        households_min=int(conf["households_min"]),
        households_max=int(conf["households_max"]),
        seed=seed,
        locked=frozenset(locked),
    )


def suggestion_compute(*, community: Community, seed: int = 0, locked: Collection[str] = ()) -> Suggestion:
    """The suggested rebalance of `community`'s grid as it stands (nothing written)."""
    data = community_load(community)
    rules = _rules(data, seed=seed, locked=locked)
    try:
        return rebalance(data, rules)
    except shapely.errors.GEOSException as exc:
        # Stored shapes are valid (CHECK constraints), so this is GEOS failing on a degenerate
        # overlay: said plainly, never a 500.
        raise DomainError(
            f"本社区的网格或楼栋几何无法计算调整建议（{exc}），请检查网格边界与楼栋轮廓",
            code="plan_suggest_geometry_failed", detail={"community": community.code},
        ) from exc


@transaction.atomic
def plan_suggest(
    *, community: Community, name: str = "", seed: int = 0, locked: Collection[str] = ()
) -> tuple[Plan, Suggestion]:
    """A new draft of `community` from its suggested rebalance (or a fresh partition when it has no
    grid yet): unchanged cells keep today's shape, changed ones their new one, new cells get the
    next free codes in reading order, cells merged away are left out (retired when applied). The
    planner edits and applies it like any draft.

    Refused, nothing written: a locked code that is not a cell of the community (value_invalid);
    the community's boundaries changed while the suggestion was computed (plan_stale, 409).
    """
    _, digest = plans_sql.boundaries_in_force(community.pk)
    suggestion = suggestion_compute(community=community, seed=seed, locked=locked)
    shapes = {
        c.code: GEOSGeometry(shapely.to_wkb(c.shape, hex=True), srid=STORAGE_SRID) for c in suggestion.cells if c.code is not None
    }
    new_shapes = [GEOSGeometry(shapely.to_wkb(c.shape, hex=True), srid=STORAGE_SRID) for c in suggestion.cells if c.code is None]
    plan = plans.plan_create_from_shapes(
        community=community,
        name=name or f"调整建议（{timezone.localdate():%Y-%m-%d}）",
        shapes=shapes,
        new_shapes=new_shapes,
        locked=locked,
        origin=Plan.Origin.SUGGESTION,
    )
    new_keys = [c.key for c in suggestion.cells if c.code is None]
    if new_keys:  # the draft numbered them in the order given: the suggestion's reading order
        codes = PlanCell.objects.filter(plan=plan, cell__isnull=True).order_by("code").values_list("code", flat=True)
        suggestion = suggestion.renamed(dict(zip(new_keys, codes, strict=True)))
    if plan.based_on_digest != digest:
        # Another write redrew the community between the load and the draft: the suggestion was
        # computed on lines that are no longer in force. The atomic block drops the draft.
        raise Conflict(
            "计算调整建议期间本社区的网格边界已被修改，请重新生成建议", code="plan_stale",
            detail={"community": community.code},
        )
    return plan, suggestion
