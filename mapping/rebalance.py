"""The suggested rebalance of a community's grid cells (网格调整建议, issue 11): the algorithm.

Pure Python over data loaded once (numpy, shapely; no Django, no database): the caller loads the
community (mapping.rebalance_sql), calls `rebalance` and makes a draft of the answer
(mapping.rebalance_services). The rules, once:

Units. What is assigned to cells is the building (楼栋), with its households. Street blocks would
be the better unit (cells follow streets), but the data has none: the demo generator draws
blocks and throws them away, and imports carry buildings only. So each building gets a territory:
its footprint's Voronoi cell (of the footprint's vertices, densified every SEGMENT_M, so the
territory holds the whole footprint) computed *inside today's cell holding it* and clipped to the
community. Today's lines are therefore lines of the unit map: a suggestion that moves nothing
reproduces today's cells exactly, and one that moves a building moves only its territory. A cell
with no building is one unit of its own (0 households), and so is each piece of the community that
no cell covers today. Two units are neighbours when their territories share an edge longer than
SHARED_EDGE_M (a corner or a sliver of a Voronoi edge is not a street frontage).

What is sought. Every cell within [households_min, households_max], each cell contiguous (one
connected set of units, so one piece on the map), as many households as possible left in today's
cell, compact (few cut edges, measured by the length of the shared edges: a cut edge costs its
length over the mean edge length, so it tracks the perimeter). Locked cells are not touched.

How (a warm start, then local search, as GerryChain's ReCom and spopt's AZP move units, but
scored on "stay where you are" and with a maximum as well as a minimum):
1. Warm start: each building in today's cell; a unit no cell holds joins the neighbour it shares
   most edge with. No grid yet: a fresh partition into round(households / target) cells by
   recursive bisection (a straight cut across the longer axis when both sides stay connected, else
   the best-balanced edge of a random spanning tree).
2. The cell count: when no arrangement of today's count can be in range (k × max < total, or
   k × min > total) the fullest cell is split in two (the smaller side becomes a new cell) or the
   emptiest is merged into its emptiest neighbour, until the count can work.
3. Flips: take the out-of-range cells; among moves of one boundary unit between such a cell and a
   neighbour that keep both contiguous (a BFS inside the donor cell) and reduce the total range
   violation, make the one that costs least per household of violation removed, cost = cut-edge
   change + LAMBDA × households moved away from today's cell. Repeat.
4. Stuck (no such flip): an ejection chain (push the excess into a neighbour, whose own excess
   goes on to the next, until a cell absorbs it; or pull a shortfall the same way; kept only if
   the total violation drops), then ReCom: merge the cell with a neighbour, draw random spanning
   trees of the pair and cut the edge that puts both in range with the fewest households moved;
   when no pair can hold the households (an under-full cell among cells near the minimum), ReCom
   over a neighbourhood of up to REGION_CELLS cells, redrawn by recursive bisection.
5. Then give back: a moved building returns to today's cell when that keeps every cell as in range
   as it is; zero-household units between changed cells go where they shorten the cut.
Stops when every cell is in range, or no step improves, or after `max_steps` steps, or at the time
budget (a safety net: within the step limit the answer depends only on the data and the seed).

Infeasible cases are named (Finding): a building with more households than a cell may hold (the
model has no 单元 / entrance field to split it by: it becomes a cell on its own, out of range); a
community (or a connected part of it) whose households no number of cells can hold in range; a
building whose territory touches no other (an exclave).

Geometry. Computed in a local metric frame (affine, like grid.partition's), answered in EPSG:4326.
A cell whose units did not change keeps today's shape exactly; a changed or new cell is the union
of its units' territories, on the 1e-9° grid the planners' edits use, so the cells still tile the
community (grid.partition.partition_check).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

# Footprint edges are densified to this before their Voronoi cells are drawn, so a long side is
# not claimed by a neighbour's corner.
SEGMENT_M = 5.0
# Territories sharing less edge than this are not neighbours ("a few metres": a corner, a sliver).
SHARED_EDGE_M = 3.0
# Pieces smaller than this are floating-point debris of an overlay, not territory.
SPECK_M2 = 1.0
# Results on the planners' grid (mapping.plans_geometry.PRECISION_DEG: 1e-9° ≈ 0.1 mm).
PRECISION_DEG = 1e-9
# Cost of moving one household away from today's cell, in cut edges of mean length: a 100-household
# building costs as much as lengthening the boundary by five average frontages.
LAMBDA = 0.05
# Random spanning trees drawn for one bisection or one ReCom pair.
TREES = 8
# Cells merged at most by one neighbourhood ReCom.
REGION_CELLS = 6
# Transfers tried by one ejection chain (depth first over neighbouring cells) before giving up.
CHAIN_BUDGET = 60
# Straight cuts tried per direction before the spanning trees.
STRAIGHT_CANDIDATES = 6
DIRECTIONS_DEG = (0.0, 90.0, 45.0, 135.0)


# --------------------------------------------------------------------------------------------
# Input and answer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellIn:
    """One of today's cells: its code, name and shape (EPSG:4326)."""

    code: str
    shape: BaseGeometry
    name: str = ""


@dataclass(frozen=True)
class BuildingsIn:
    """The community's buildings, column-wise. `today`: index into the cells, -1 for none."""

    codes: Sequence[str]
    names: Sequence[str]
    households: np.ndarray
    footprints: np.ndarray  # shapely polygons, EPSG:4326
    today: np.ndarray

    def __len__(self) -> int:
        return len(self.codes)


@dataclass(frozen=True)
class RebalanceInput:
    outline: BaseGeometry
    cells: Sequence[CellIn]
    buildings: BuildingsIn


@dataclass(frozen=True)
class Rules:
    households_min: int = 300
    households_max: int = 500
    seed: int = 0
    locked: frozenset[str] = frozenset()
    max_steps: int = 4000
    time_budget_s: float = 2.0


@dataclass(frozen=True)
class Finding:
    """A reason some cell cannot be in range (code stable, message Chinese)."""

    code: str
    message: str
    buildings: tuple[str, ...] = ()
    cells: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "buildings": list(self.buildings), "cells": list(self.cells)}


@dataclass(frozen=True)
class SuggestedCell:
    """One cell of the suggestion. `code` None: a new cell (its key is "新网格N" until the draft
    gives it the next free code)."""

    code: str | None
    key: str
    shape: BaseGeometry  # EPSG:4326
    households: int
    buildings: int
    in_range: bool
    feasible: bool
    changed: bool
    contiguous: bool
    polsby_popper: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code, "key": self.key, "households": self.households, "buildings": self.buildings,
            "in_range": self.in_range, "feasible": self.feasible, "changed": self.changed,
            "contiguous": self.contiguous, "polsby_popper": self.polsby_popper,
        }


@dataclass(frozen=True)
class BuildingMove:
    code: str
    name: str
    households: int
    from_code: str | None
    to: str  # a code, or the key of a new cell

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "households": self.households, "from": self.from_code,
                "to": self.to}


@dataclass
class Suggestion:
    cells: list[SuggestedCell]
    retired: list[str]
    moves: list[BuildingMove]
    findings: list[Finding]
    notes: list[str]
    summary: dict[str, Any]
    # Per unit (Units order): the key of its cell, for benchmarks that measure the assignment.
    unit_keys: list[str] = field(default_factory=list)

    def renamed(self, keys: dict[str, str]) -> Suggestion:
        """The same suggestion with new cells' keys replaced (by the codes a draft gave them)."""
        return Suggestion(
            cells=[replace(c, key=keys.get(c.key, c.key)) for c in self.cells],
            retired=self.retired,
            moves=[replace(m, to=keys.get(m.to, m.to)) for m in self.moves],
            findings=[replace(f, cells=tuple(keys.get(k, k) for k in f.cells)) for f in self.findings],
            notes=self.notes,
            summary=self.summary,
            unit_keys=[keys.get(k, k) for k in self.unit_keys],
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "cells": [c.as_dict() for c in self.cells],
            "retired": self.retired,
            "moves": [m.as_dict() for m in self.moves],
            "findings": [f.as_dict() for f in self.findings],
            "notes": self.notes,
        }


# --------------------------------------------------------------------------------------------
# The metric frame
# --------------------------------------------------------------------------------------------

_A = 6_378_137.0
_E2 = 0.006_694_379_990_14


@dataclass(frozen=True)
class Frame:
    """Longitude/latitude scaled by the WGS-84 radii of curvature at a centre: affine, so shapes
    keep their topology both ways (grid.partition measures in the same frame)."""

    lon0: float
    lat0: float
    kx: float
    ky: float

    @classmethod
    def around(cls, geom: BaseGeometry) -> Frame:
        centre = geom.centroid
        lat = math.radians(centre.y)
        w = 1 - _E2 * math.sin(lat) ** 2
        deg = math.pi / 180
        return cls(centre.x, centre.y, _A / math.sqrt(w) * math.cos(lat) * deg, _A * (1 - _E2) / w**1.5 * deg)

    def to_metres(self, geoms: Any) -> Any:
        return shapely.transform(geoms, lambda xy: (xy - (self.lon0, self.lat0)) * (self.kx, self.ky))

    def to_degrees(self, geoms: Any) -> Any:
        return shapely.transform(geoms, lambda xy: xy / (self.kx, self.ky) + (self.lon0, self.lat0))


def _polygonal(geom: BaseGeometry | None) -> BaseGeometry:
    """The polygonal part of `geom`, valid, without specks (an empty polygon when nothing is left)."""
    if geom is None or geom.is_empty:
        return shapely.Polygon()
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, shapely.Polygon) and p.area > SPECK_M2]
    if not parts:
        return shapely.Polygon()
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def _pieces(geom: BaseGeometry, tolerance_m2: float) -> int:
    return sum(1 for p in shapely.get_parts(geom) if p.area > tolerance_m2)


def polsby_popper(geom: BaseGeometry) -> float | None:
    """4πA/P² of a metric shape: 1 for a circle, ~0.785 for a square, towards 0 for a ribbon."""
    perimeter = geom.length
    return round(4 * math.pi * geom.area / perimeter**2, 4) if perimeter > 0 else None


# --------------------------------------------------------------------------------------------
# Units and their adjacency
# --------------------------------------------------------------------------------------------


@dataclass
class Units:
    """The assignable units of one community (module docstring) and their adjacency graph."""

    frame: Frame
    outline: BaseGeometry  # metric
    buildings: list[list[int]]  # per unit, the building indices it holds (none: an area unit)
    households: np.ndarray  # per unit
    today: np.ndarray  # per unit: today's cell index, -1 none
    zone_of: np.ndarray  # per unit: the zone (today's cell index, or -1 for an uncovered piece)
    regions: np.ndarray  # per unit: its territory (metric polygons)
    centroids: np.ndarray  # n × 2, metres
    neighbours: list[list[int]]
    weights: list[list[float]]  # shared edge length over the mean edge length, per neighbour
    edges: np.ndarray  # m × 2, i < j
    edge_weight: np.ndarray  # m

    @property
    def n(self) -> int:
        return len(self.households)


def _zones(frame: Frame, outline_m: BaseGeometry, cells: Sequence[CellIn]) -> tuple[list[BaseGeometry], list[int]]:
    """Today's cells clipped to the community, then the pieces of the community no cell covers."""
    shapes = [_polygonal(shapely.intersection(frame.to_metres(c.shape), outline_m)) for c in cells]
    zones, labels = list(shapes), list(range(len(cells)))
    covered = shapely.union_all([s for s in shapes if not s.is_empty]) if any(not s.is_empty for s in shapes) else None
    rest = outline_m if covered is None else _polygonal(shapely.difference(outline_m, covered))
    for piece in shapely.get_parts(rest):
        if piece.area > SPECK_M2:
            zones.append(piece)
            labels.append(-1)
    return zones, labels


def _territories(footprints: np.ndarray, zone: BaseGeometry) -> list[BaseGeometry]:
    """The Voronoi territory of each footprint within `zone` (module docstring)."""
    if len(footprints) == 1:
        return [zone]
    dense = shapely.segmentize(footprints, SEGMENT_M)
    xy, owner = shapely.get_coordinates(dense, return_index=True)
    # Touching footprints share vertices: a point generates one Voronoi cell, kept by its first owner.
    _, first = np.unique(np.round(xy, 2), axis=0, return_index=True)
    first.sort()
    xy, owner = xy[first], owner[first]
    # Densified rectangles put many points on one line and one circle, where GEOS's Voronoi
    # returns self-intersecting cells; a jitter of a millimetre, a function of the point itself
    # (so the same data gives the same answer), makes the diagram non-degenerate.
    seed = np.sin(xy[:, 0] * 12.9898 + xy[:, 1] * 78.233) * 43758.5453
    jitter = np.stack([seed % 1.0, (seed * 7.0) % 1.0], axis=1) - 0.5
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(xy + jitter * 0.002), extend_to=zone, ordered=True)
    )
    invalid = ~shapely.is_valid(cells)
    if invalid.any():
        cells[invalid] = [_polygonal(c) for c in cells[invalid]]
    if len(cells) != len(xy):  # GEOS merged points closer than its tolerance: place by containment
        hit_point, hit_cell = shapely.STRtree(cells).query(shapely.points(xy), predicate="intersects")
        by_cell = np.full(len(cells), -1)
        by_cell[hit_cell] = owner[hit_point]
        owner, keep = by_cell[by_cell >= 0], by_cell >= 0
        cells = cells[keep]
    shapely.prepare(zone)
    out: list[BaseGeometry] = []
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(len(footprints) + 1))
    for i in range(len(footprints)):
        mine = cells[order[bounds[i]:bounds[i + 1]]]
        if len(mine) == 0:
            out.append(shapely.Polygon())
            continue
        try:  # Voronoi cells share their edges exactly: the fast coverage union mostly applies
            territory = shapely.coverage_union_all(mine)
        except shapely.errors.GEOSException:
            territory = shapely.union_all(mine)
        if not zone.contains(territory):
            territory = shapely.intersection(territory, zone)
        out.append(_polygonal(territory))
    return out


def _homes(foot: np.ndarray, points: np.ndarray, today: np.ndarray, zones: Sequence[BaseGeometry]) -> np.ndarray:
    """The zone each building's territory is drawn in: today's cell when the footprint reaches it,
    else the zone holding its point, else the nearest zone."""
    zone_arr = np.array(zones, dtype=object)
    home = np.full(len(foot), -1, dtype=np.int64)
    if not len(foot):
        return home
    idx = np.nonzero(today >= 0)[0]
    if len(idx):
        reach = shapely.intersects(foot[idx], zone_arr[today[idx]])
        home[idx[reach]] = today[idx[reach]]
    rest = np.nonzero(home < 0)[0]
    if len(rest):
        tree = shapely.STRtree(zone_arr)
        p_idx, z_idx = tree.query(points[rest], predicate="intersects")
        home[rest[p_idx[::-1]]] = z_idx[::-1]  # the first zone found wins
        still = rest[home[rest] < 0]
        if len(still):
            p2, z2 = tree.query_nearest(points[still])
            home[still[p2]] = z2
    return home


@dataclass
class _Drawn:
    """Units as they are drawn, zone by zone."""

    buildings: list[list[int]] = field(default_factory=list)
    regions: list[BaseGeometry] = field(default_factory=list)
    zone_of: list[int] = field(default_factory=list)

    def add(self, buildings: list[int], region: BaseGeometry, zone_label: int) -> None:
        self.buildings.append(buildings)
        self.regions.append(region)
        self.zone_of.append(zone_label)

    def zone(self, zone: BaseGeometry, label: int, members: list[int], foot: np.ndarray, points: np.ndarray) -> None:
        if not members:
            self.add([], zone, label)
            return
        first = len(self.regions)
        empty: list[int] = []
        for bi, territory in zip(members, _territories(foot[members], zone), strict=True):
            if territory.is_empty:
                empty.append(bi)
            else:
                self.add([bi], territory, label)
        # A footprint whose every vertex lies nearer another's (inside a courtyard, say) has no
        # territory: it joins the unit whose territory holds its point.
        for bi in empty:
            own = self.regions[first:]
            if not own:
                self.add([bi], zone, label)
                continue
            inside = [k for k, r in enumerate(own) if r.intersects(points[bi])]
            k = inside[0] if inside else int(np.argmin(shapely.distance(np.array(own, dtype=object), points[bi])))
            self.buildings[first + k].append(bi)


def build_units(data: RebalanceInput) -> Units:
    """The units of `data` with their territories and adjacency (module docstring)."""
    frame = Frame.around(data.outline)
    outline_m = _polygonal(frame.to_metres(data.outline))
    zones, zone_labels = _zones(frame, outline_m, data.cells)
    b = data.buildings
    foot = np.asarray(frame.to_metres(np.asarray(b.footprints, dtype=object)), dtype=object)
    points = shapely.point_on_surface(foot) if len(foot) else np.array([], dtype=object)
    today = np.asarray(b.today, dtype=np.int64)
    home = _homes(foot, points, today, zones)
    drawn = _Drawn()
    for z, zone in enumerate(zones):
        drawn.zone(zone, zone_labels[z], np.nonzero(home == z)[0].tolist(), foot, points)

    households = np.array([int(b.households[bs].sum()) if bs else 0 for bs in drawn.buildings], dtype=np.int64)
    unit_today = np.array(drawn.zone_of, dtype=np.int64)
    for u, bs in enumerate(drawn.buildings):
        if bs:  # the cell most of its households are in today
            tally: dict[int, int] = {}
            for bi in bs:
                tally[int(today[bi])] = tally.get(int(today[bi]), 0) + int(b.households[bi])
            unit_today[u] = max(sorted(tally), key=lambda t: tally[t])
    region_arr = np.array(drawn.regions, dtype=object)
    edges, lengths = _adjacency(region_arr)
    weight = lengths / (float(lengths.mean()) if len(lengths) else 1.0)
    neighbours: list[list[int]] = [[] for _ in region_arr]
    weights: list[list[float]] = [[] for _ in region_arr]
    for (i, j), w in zip(edges.tolist(), weight.tolist(), strict=True):
        neighbours[i].append(j)
        neighbours[j].append(i)
        weights[i].append(w)
        weights[j].append(w)
    centroids = shapely.get_coordinates(shapely.centroid(region_arr)) if len(region_arr) else np.zeros((0, 2))
    return Units(
        frame=frame, outline=outline_m, buildings=drawn.buildings, households=households, today=unit_today,
        zone_of=np.array(drawn.zone_of, dtype=np.int64), regions=region_arr, centroids=centroids,
        neighbours=neighbours, weights=weights, edges=edges, edge_weight=weight,
    )


def _adjacency(regions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) of territories sharing more than SHARED_EDGE_M of edge, and that length (m).

    Territories of different zones meet along today's boundaries, computed by separate overlays
    whose vertices differ in the last digits: the shared length is measured against the other
    territory grown by 5 cm, not by an exact line intersection."""
    if len(regions) < 2:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    left, right = shapely.STRtree(regions).query(regions, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    grown = shapely.buffer(regions, 0.05)
    shared = shapely.length(shapely.intersection(shapely.boundary(regions[left]), grown[right]))
    ok = shared > SHARED_EDGE_M
    return np.stack([left[ok], right[ok]], axis=1).astype(np.int64), shared[ok]


# --------------------------------------------------------------------------------------------
# The search
# --------------------------------------------------------------------------------------------


def _violation(h: float, lo: float, hi: float) -> float:
    return lo - h if h < lo else (h - hi if h > hi else 0.0)


def _range_violation(h: float, k: int, lo: float, hi: float) -> float:
    return _violation(h, k * lo, k * hi)


class _Search:
    """The mutable state of one rebalance: labels, households per label, members per label."""

    def __init__(self, units: Units, labels: np.ndarray, rules: Rules, frozen: Collection[int], started: float):
        self.u = units
        self.lo, self.hi = float(rules.households_min), float(rules.households_max)
        self.rules = rules
        self.rng = np.random.default_rng(rules.seed)
        self.label = labels.astype(np.int64).copy()
        n_labels = int(labels.max()) + 1 if len(labels) else 0
        self.members: list[set[int]] = [set() for _ in range(n_labels)]
        self.h = np.zeros(n_labels, dtype=np.float64)
        for i, lab in enumerate(self.label.tolist()):
            if lab >= 0:
                self.members[lab].add(i)
                self.h[lab] += units.households[i]
        self.frozen = set(frozen)  # labels never touched (locked cells)
        self.retired: set[int] = set()
        self.started = started
        self.steps = {"flips": 0, "chains": 0, "recoms": 0, "splits": 0, "merges": 0, "returned": 0}
        self.stopped = ""

    # --- bookkeeping ---------------------------------------------------------------------------

    def active(self) -> list[int]:
        return [lab for lab in range(len(self.members)) if lab not in self.retired and self.members[lab]]

    def free(self) -> list[int]:
        return [lab for lab in self.active() if lab not in self.frozen]

    def new_label(self) -> int:
        self.members.append(set())
        self.h = np.append(self.h, 0.0)
        return len(self.members) - 1

    def move(self, unit: int, to: int) -> None:
        frm = int(self.label[unit])
        hh = float(self.u.households[unit])
        if frm >= 0:
            self.members[frm].discard(unit)
            self.h[frm] -= hh
        self.members[to].add(unit)
        self.h[to] += hh
        self.label[unit] = to

    def viol(self, lab: int) -> float:
        return _violation(self.h[lab], self.lo, self.hi)

    def total_violation(self) -> float:
        return sum(self.viol(lab) for lab in self.free())

    def out_of_range(self) -> list[int]:
        return sorted(self.free(), key=lambda lab: (-self.viol(lab), lab))[: None] if self.free() else []

    def over_time(self) -> bool:
        return time.perf_counter() - self.started > self.rules.time_budget_s

    def budget_left(self) -> bool:
        if sum(self.steps.values()) >= self.rules.max_steps:
            self.stopped = "steps"
            return False
        if self.over_time():
            self.stopped = "time"
            return False
        return True

    # --- contiguity ----------------------------------------------------------------------------

    def stays_connected(self, lab: int, unit: int) -> bool:
        """Whether cell `lab` stays connected without `unit` (and keeps at least one unit)."""
        members = self.members[lab]
        if len(members) <= 1:
            return False
        inside = [v for v in self.u.neighbours[unit] if self.label[v] == lab]
        if len(inside) <= 1:
            return True
        targets = set(inside[1:])
        seen = {inside[0], unit}
        queue = deque([inside[0]])
        label = self.label
        while queue:
            v = queue.popleft()
            for w in self.u.neighbours[v]:
                if w not in seen and label[w] == lab:
                    seen.add(w)
                    targets.discard(w)
                    if not targets:
                        return True
                    queue.append(w)
        return not targets

    def connected(self, units: Collection[int]) -> bool:
        if not units:
            return False
        pool = set(units)
        start = next(iter(pool))
        seen = {start}
        queue = deque([start])
        while queue:
            v = queue.popleft()
            for w in self.u.neighbours[v]:
                if w in pool and w not in seen:
                    seen.add(w)
                    queue.append(w)
        return len(seen) == len(pool)

    def components(self, lab: int) -> int:
        pool = set(self.members[lab])
        count = 0
        while pool:
            count += 1
            start = pool.pop()
            queue = deque([start])
            while queue:
                v = queue.popleft()
                for w in self.u.neighbours[v]:
                    if w in pool:
                        pool.discard(w)
                        queue.append(w)
        return count

    # --- scores --------------------------------------------------------------------------------

    def cut_change(self, unit: int, frm: int, to: int) -> float:
        change = 0.0
        for v, w in zip(self.u.neighbours[unit], self.u.weights[unit], strict=True):
            lab = self.label[v]
            if lab == frm:
                change += w
            elif lab == to:
                change -= w
        return change

    def moved_change(self, unit: int, frm: int, to: int) -> float:
        today = self.u.today[unit]
        hh = float(self.u.households[unit])
        return hh * (int(to != today) - int(frm != today))

    def cost(self, unit: int, frm: int, to: int) -> float:
        return self.cut_change(unit, frm, to) + LAMBDA * self.moved_change(unit, frm, to)

    def cut_weight(self, side: Collection[int], pool: Collection[int]) -> float:
        side_set, pool_set = set(side), set(pool)
        total = 0.0
        for v in side_set:
            for w, wt in zip(self.u.neighbours[v], self.u.weights[v], strict=True):
                if w in pool_set and w not in side_set:
                    total += wt
        return total

    # --- step 1: flips -------------------------------------------------------------------------

    def flip_step(self) -> bool:
        """Make the cheapest single-unit move that lowers the total violation (module docstring)."""
        candidates: list[tuple[float, float, int, int, int]] = []
        seen: set[tuple[int, int]] = set()
        for c in self.free():
            v_c = self.viol(c)
            if v_c == 0:
                continue
            over = self.h[c] > self.hi
            pool = self.members[c] if over else {
                v for u_ in self.members[c] for v in self.u.neighbours[u_] if self.label[v] != c
            }
            for unit in pool:
                hh = float(self.u.households[unit])
                if hh == 0:
                    continue
                if over:
                    targets = {int(self.label[v]) for v in self.u.neighbours[unit]} - {c}
                    pairs = [(c, t) for t in targets]
                else:
                    pairs = [(int(self.label[unit]), c)]
                for frm, to in pairs:
                    if frm < 0 or to < 0 or frm in self.frozen or to in self.frozen or (unit, to) in seen:
                        continue
                    seen.add((unit, to))
                    before = self.viol(frm) + self.viol(to)
                    after = _violation(self.h[frm] - hh, self.lo, self.hi) + _violation(self.h[to] + hh, self.lo, self.hi)
                    gain = before - after
                    if gain <= 0:
                        continue
                    cost = self.cost(unit, frm, to)
                    candidates.append((cost / gain, -gain, unit, frm, to))
        candidates.sort()
        for _, _, unit, frm, to in candidates:
            if self.stays_connected(frm, unit):
                self.move(unit, to)
                self.steps["flips"] += 1
                return True
        return False

    # --- step 2: chains ------------------------------------------------------------------------

    def cell_neighbours(self, lab: int) -> set[int]:
        return {int(self.label[v]) for u_ in self.members[lab] for v in self.u.neighbours[u_]} - {lab, -1}

    def _transfer(
        self, frm: int, to: int, amount: float, log: list[tuple[int, int]], *, floor: float = 0.0,
        ceiling: float = math.inf,
    ) -> bool:
        """Move at least `amount` households of boundary units from `frm` into `to`, overshooting as
        little as possible, never leaving `frm` below `floor` nor `to` above `ceiling`."""
        moved = 0.0
        while moved < amount:
            remaining = amount - moved
            room = min(self.h[frm] - floor, ceiling - self.h[to])
            best: tuple[tuple[float, float, int], int] | None = None
            for unit in {v for w in self.members[to] for v in self.u.neighbours[w] if self.label[v] == frm}:
                hh = float(self.u.households[unit])
                if hh == 0 or hh > room:
                    continue
                key = (max(0.0, hh - remaining), self.cost(unit, frm, to) / hh, unit)
                if (best is None or key < best[0]) and self.stays_connected(frm, unit):
                    best = (key, unit)
            if best is None:
                return False
            unit = best[1]
            log.append((unit, frm))
            self.move(unit, to)
            moved += float(self.u.households[unit])
        return True

    def _undo(self, log: list[tuple[int, int]], mark: int) -> None:
        while len(log) > mark:
            unit, frm = log.pop()
            self.move(unit, frm)

    def _eject(self, cell: int, visited: set[int], log: list[tuple[int, int]], budget: list[int]) -> bool:
        """Push `cell`'s excess into a neighbour, and that one's new excess further on (an ejection
        chain, depth first, most room first), until a cell absorbs it."""
        for d in sorted(self.cell_neighbours(cell) - self.frozen - visited, key=lambda x: (self.h[x], x)):
            if budget[0] <= 0:
                return False
            budget[0] -= 1
            mark = len(log)
            if self._transfer(cell, d, self.h[cell] - self.hi, log, floor=self.lo):
                if self.h[d] <= self.hi or self._eject(d, visited | {d}, log, budget):
                    return True
            self._undo(log, mark)
        return False

    def _pull(self, cell: int, visited: set[int], log: list[tuple[int, int]], budget: list[int]) -> bool:
        """Pull `cell`'s shortfall from a neighbour, and that one's new shortfall from further on."""
        for d in sorted(self.cell_neighbours(cell) - self.frozen - visited, key=lambda x: (-self.h[x], x)):
            if budget[0] <= 0:
                return False
            budget[0] -= 1
            mark = len(log)
            if self._transfer(d, cell, self.lo - self.h[cell], log, ceiling=self.hi):
                if self.h[d] >= self.lo or self._pull(d, visited | {d}, log, budget):
                    return True
            self._undo(log, mark)
        return False

    def chain_step(self) -> bool:
        """Move households along a chain of cells from an out-of-range cell to one with room (or
        the other way), kept only when the total violation drops."""
        for c in [lab for lab in self.out_of_range() if self.viol(lab) > 0]:
            before = self.total_violation()
            log: list[tuple[int, int]] = []
            budget = [CHAIN_BUDGET]
            push = self.h[c] > self.hi
            done = self._eject(c, {c}, log, budget) if push else self._pull(c, {c}, log, budget)
            if done and self.total_violation() < before:
                self.steps["chains"] += 1
                return True
            self._undo(log, 0)
        return False

    # --- step 3: ReCom -------------------------------------------------------------------------

    def spanning_tree(self, pool: Sequence[int]) -> list[list[int]] | None:
        """A random spanning tree of the units `pool` (Kruskal on random weights), as adjacency
        lists indexed like `pool`; None when `pool` is not connected."""
        index = {v: k for k, v in enumerate(pool)}
        pairs = [(index[v], index[w]) for v in pool for w in self.u.neighbours[v] if w in index and v < w]
        order = self.rng.permutation(len(pairs))
        parent = list(range(len(pool)))

        def root(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        tree: list[list[int]] = [[] for _ in pool]
        joined = 0
        for k in order.tolist():
            a, b = pairs[k]
            ra, rb = root(a), root(b)
            if ra != rb:
                parent[ra] = rb
                tree[a].append(b)
                tree[b].append(a)
                joined += 1
                if joined == len(pool) - 1:
                    break
        return tree if joined == len(pool) - 1 else None

    @staticmethod
    def subtrees(tree: list[list[int]]) -> tuple[list[int], list[int]]:
        """(parent, order) of `tree` rooted at 0, order parents first."""
        parent = [-1] * len(tree)
        order = [0]
        seen = [False] * len(tree)
        seen[0] = True
        for v in order:
            for w in tree[v]:
                if not seen[w]:
                    seen[w] = True
                    parent[w] = v
                    order.append(w)
        return parent, order

    def tree_cut(self, pool: Sequence[int], k_left: int, k_right: int, weigh: Any) -> list[set[int]] | None:
        """Split `pool` along one edge of random spanning trees: the cut with the least range
        violation of both sides (k_left and k_right cells), then the least `weigh(side)`."""
        hh = self.u.households[list(pool)].astype(np.float64)
        total = float(hh.sum())
        best: tuple[tuple[float, float], set[int]] | None = None
        for _ in range(TREES):
            tree = self.spanning_tree(pool)
            if tree is None:
                return None
            parent, order = self.subtrees(tree)
            sums = hh.copy()
            for v in reversed(order[1:]):
                sums[parent[v]] += sums[v]
            children: list[list[int]] = [[] for _ in pool]
            for v in order[1:]:
                children[parent[v]].append(v)
            scored = []
            for v in order[1:]:
                left = float(sums[v])
                bad = _range_violation(left, k_left, self.lo, self.hi) + _range_violation(
                    total - left, k_right, self.lo, self.hi)
                scored.append((bad, abs(left - total * k_left / (k_left + k_right)), v))
            if not scored:
                return None
            scored.sort()
            for bad, _, v in scored[:3]:
                side: set[int] = set()
                stack = [v]
                while stack:
                    x = stack.pop()
                    side.add(pool[x])
                    stack.extend(children[x])
                key = (bad, float(weigh(side)))
                if best is None or key < best[0]:
                    best = (key, side)
        if best is None:
            return None
        return [best[1], set(pool) - best[1]]

    def straight_cut(self, pool: Sequence[int], k_left: int, k_right: int) -> list[set[int]] | None:
        """Split `pool` by a straight line (across the longer axis first) into two connected
        sides, the least range violation first, then the shortest cut."""
        units = np.array(pool)
        xy = self.u.centroids[units]
        hh = self.u.households[units].astype(np.float64)
        total = float(hh.sum())
        target = total * k_left / (k_left + k_right)
        best: tuple[tuple[float, float], set[int]] | None = None
        for angle in DIRECTIONS_DEG:
            a = math.radians(angle)
            order = np.argsort(xy[:, 0] * math.cos(a) + xy[:, 1] * math.sin(a), kind="stable")
            left = np.cumsum(hh[order])[:-1]
            bad = np.array([
                _range_violation(x, k_left, self.lo, self.hi) + _range_violation(total - x, k_right, self.lo, self.hi)
                for x in left.tolist()
            ])
            tried = 0
            for i in np.lexsort((np.abs(left - target), bad)).tolist():
                if tried >= STRAIGHT_CANDIDATES or (best is not None and bad[i] > best[0][0]):
                    break
                side = set(units[order[: i + 1]].tolist())
                other = set(pool) - side
                tried += 1
                if self.connected(side) and self.connected(other):
                    key = (float(bad[i]), self.cut_weight(side, pool))
                    if best is None or key < best[0]:
                        best = (key, side)
                    break
        if best is None:
            return None
        return [best[1], set(pool) - best[1]]

    def bisect(self, pool: Sequence[int], k_left: int, k_right: int) -> list[set[int]] | None:
        """Two connected sides for k_left and k_right cells: a straight cut when one keeps both in
        range, else the better of it and the spanning trees' best edge."""
        def bad(halves: list[set[int]] | None) -> float:
            if halves is None:
                return math.inf
            left, right = (float(self.u.households[sorted(h)].sum()) for h in halves)
            return _range_violation(left, k_left, self.lo, self.hi) + _range_violation(right, k_right, self.lo, self.hi)

        straight = self.straight_cut(pool, k_left, k_right)
        if straight is not None and bad(straight) == 0:
            return straight
        tree = self.tree_cut(pool, k_left, k_right, lambda side: self.cut_weight(side, pool))
        return tree if bad(tree) < bad(straight) else straight

    def partition(self, pool: Sequence[int], k: int) -> list[set[int]] | None:
        """`pool` in k connected parts by recursive bisection (None when a cut cannot be made)."""
        parts: list[tuple[list[int], int]] = [(list(pool), k)]
        done: list[set[int]] = []
        while parts:
            units, count = parts.pop()
            if count == 1:
                done.append(set(units))
                continue
            halves = self.bisect(units, count // 2, count - count // 2)
            if halves is None:
                return None
            parts += [(sorted(halves[0]), count // 2), (sorted(halves[1]), count - count // 2)]
        return done

    def moved_if(self, side: Collection[int], rest: Collection[int], c: int, d: int) -> tuple[float, float]:
        """Households leaving today's cell if `side` goes to c and `rest` to d, and if swapped."""
        hh, today = self.u.households, self.u.today
        as_is = sum(hh[v] for v in side if today[v] != c) + sum(hh[v] for v in rest if today[v] != d)
        swapped = sum(hh[v] for v in side if today[v] != d) + sum(hh[v] for v in rest if today[v] != c)
        return float(as_is), float(swapped)

    def recom_step(self) -> bool:
        """Merge an out-of-range cell with a neighbour and redraw the pair's line (module docstring)."""
        for c in [lab for lab in self.out_of_range() if self.viol(lab) > 0]:
            over = self.h[c] > self.hi
            for d in sorted(self.cell_neighbours(c) - self.frozen, key=lambda x: (self.h[x] if over else -self.h[x], x)):
                if not 2 * self.lo <= self.h[c] + self.h[d] <= 2 * self.hi:
                    continue
                pool = sorted(self.members[c] | self.members[d])
                everything = set(pool)
                halves = self.tree_cut(
                    pool, 1, 1, lambda side, c=c, d=d, everything=everything: min(
                        self.moved_if(side, everything - side, c, d))
                )
                if halves is None:
                    continue
                side, rest = halves
                sizes = [float(self.u.households[sorted(part)].sum()) for part in (side, rest)]
                if not all(self.lo <= size <= self.hi for size in sizes):
                    continue
                as_is, swapped = self.moved_if(side, rest, c, d)
                to_c, to_d = (side, rest) if as_is <= swapped else (rest, side)
                for v in sorted(to_c):
                    if self.label[v] != c:
                        self.move(v, c)
                for v in sorted(to_d):
                    if self.label[v] != d:
                        self.move(v, d)
                self.steps["recoms"] += 1
                return True
        return any(self.region_recom(c) for c in self.out_of_range() if self.viol(c) > 0)

    def region_recom(self, c: int) -> bool:
        """ReCom over a neighbourhood: when no pair can hold its households in range, merge `c`
        with the cells around it (nearest first) until they can, redraw them by recursive
        bisection and give each new part the cell it shares most households with."""
        region = [c]
        frontier = deque([c])
        while frontier and len(region) < REGION_CELLS:
            for d in sorted(self.cell_neighbours(frontier.popleft()) - self.frozen - set(region)):
                region.append(d)
                frontier.append(d)
                total = sum(self.h[x] for x in region)
                if len(region) >= 3 and len(region) * self.lo <= total <= len(region) * self.hi:
                    return self._redraw(region)
                if len(region) >= REGION_CELLS:
                    break
        return False

    def _redraw(self, region: list[int]) -> bool:
        pool = sorted(set().union(*(self.members[x] for x in region)))
        done = self.partition(pool, len(region))
        if done is None:
            return False
        sizes = [float(self.u.households[sorted(part)].sum()) for part in done]
        if not all(self.lo <= size <= self.hi for size in sizes):
            return False
        before = self.total_violation()
        shared = sorted(
            ((-sum(self.u.households[v] for v in part if self.label[v] == x), k, x)
             for k, part in enumerate(done) for x in region),
        )
        given: dict[int, int] = {}
        for _, k, x in shared:
            if k not in given and x not in given.values():
                given[k] = x
        log = [(v, int(self.label[v])) for v in pool]
        for k, part in enumerate(done):
            for v in sorted(part):
                if self.label[v] != given[k]:
                    self.move(v, given[k])
        if self.total_violation() < before:
            self.steps["recoms"] += 1
            return True
        for v, lab in log:
            if self.label[v] != lab:
                self.move(v, lab)
        return False

    # --- the cell count ------------------------------------------------------------------------

    def split(self, lab: int) -> bool:
        halves = self.bisect(sorted(self.members[lab]), 1, 1)
        if halves is None:
            return False
        small = min(halves, key=lambda side: (sum(self.u.households[v] for v in side), min(side)))
        new = self.new_label()
        for v in small:
            self.move(v, new)
        self.steps["splits"] += 1
        return True

    def merge(self, lab: int) -> bool:
        neighbours = sorted(self.cell_neighbours(lab) - self.frozen, key=lambda d: (self.h[d], d))
        if not neighbours:
            return False
        d = neighbours[0]
        keep, gone = (d, lab) if self.h[d] >= self.h[lab] else (lab, d)
        for v in list(self.members[gone]):
            self.move(v, keep)
        self.retired.add(gone)
        self.steps["merges"] += 1
        return True

    # --- step 5: give back ---------------------------------------------------------------------

    def give_back(self) -> None:
        """Return moved buildings to today's cell where that keeps every violation as it is."""
        changed = True
        rounds = 0
        while changed and rounds < 20 and not self.over_time():
            changed, rounds = False, rounds + 1
            moved = [v for v in range(self.u.n) if self.label[v] != self.u.today[v] and self.u.households[v] > 0]
            for v in sorted(moved, key=lambda x: (-self.u.households[x], x)):
                frm, to = int(self.label[v]), int(self.u.today[v])
                if to < 0 or to in self.retired or to >= len(self.members) or to in self.frozen or frm in self.frozen:
                    continue
                if not any(self.label[w] == to for w in self.u.neighbours[v]):
                    continue
                hh = float(self.u.households[v])
                before = self.viol(frm) + self.viol(to)
                after = _violation(self.h[frm] - hh, self.lo, self.hi) + _violation(self.h[to] + hh, self.lo, self.hi)
                if after <= before and self.stays_connected(frm, v):
                    self.move(v, to)
                    self.steps["returned"] += 1
                    changed = True

    def tidy_empty_units(self, touched: set[int]) -> None:
        """Zero-household units between changed cells go to the neighbour that shortens the cut most."""
        for _ in range(3):
            improved = False
            for v in range(self.u.n):
                frm = int(self.label[v])
                if self.u.households[v] != 0 or frm not in touched:
                    continue
                options = {int(self.label[w]) for w in self.u.neighbours[v]} & touched - {frm}
                best = min(((self.cut_change(v, frm, to), to) for to in options), default=None)
                if best is not None and best[0] < -1e-9 and self.stays_connected(frm, v):
                    self.move(v, best[1])
                    improved = True
            if not improved:
                break


# --------------------------------------------------------------------------------------------
# Feasibility
# --------------------------------------------------------------------------------------------


def _counts(total: float, lo: float, hi: float) -> tuple[int, int]:
    """The cell counts that can hold `total` households in range: [ceil(total/hi), floor(total/lo)]."""
    return math.ceil(total / hi - 1e-9), math.floor(total / lo + 1e-9)


def _graph_components(units: Units, pool: Iterable[int]) -> list[list[int]]:
    left = set(pool)
    out: list[list[int]] = []
    while left:
        start = min(left)
        left.discard(start)
        part = [start]
        queue = deque([start])
        while queue:
            v = queue.popleft()
            for w in units.neighbours[v]:
                if w in left:
                    left.discard(w)
                    part.append(w)
                    queue.append(w)
        out.append(sorted(part))
    return out


def _building_label(data: RebalanceInput, i: int) -> str:
    return f"楼栋 {data.buildings.names[i]}（{data.buildings.codes[i]}）"


# --------------------------------------------------------------------------------------------
# The entry point
# --------------------------------------------------------------------------------------------


def rebalance(data: RebalanceInput, rules: Rules, *, units: Units | None = None) -> Suggestion:
    """The suggested redraw of one community (module docstring). `units` may be given when the
    caller built them already (a benchmark running several methods on one community)."""
    started = time.perf_counter()
    units = units if units is not None else build_units(data)
    built = time.perf_counter() - started
    codes = [c.code for c in data.cells]
    locked = {k for k, code in enumerate(codes) if code in rules.locked}
    search = _Search(units, _warm_start(units, codes, locked), rules, locked, started)
    initial = {lab: set(m) for lab, m in enumerate(search.members)}
    findings = _infeasible(data, search)
    notes = _cell_count(search, fresh=not codes)
    while search.total_violation() > 0 and search.budget_left():
        if search.flip_step() or search.chain_step() or search.recom_step():
            continue
        search.stopped = "stuck"
        break
    if not search.stopped:
        search.stopped = "balanced"
    search.give_back()
    search.tidy_empty_units({lab for lab in search.active() if search.members[lab] != initial.get(lab)})

    # Cells that cannot be in range whatever the lines: not failures of the search.
    hi = rules.households_max
    infeasible_labels = {
        int(search.label[v]) for v in range(units.n)
        if any(data.buildings.households[bi] > hi for bi in units.buildings[v])
    }
    if any(f.code == "households_total_infeasible" for f in findings):
        infeasible_labels |= {lab for lab in search.free() if search.viol(lab) > 0}
    return _answer(data, units, search, rules, initial, infeasible_labels, findings, notes, started, built)


def _warm_start(units: Units, codes: Sequence[str], locked: Collection[int]) -> np.ndarray:
    """Today's cells; a unit no cell holds joins the neighbour it shares most edge with (or, an
    exclave, the cell of the nearest placed unit). No cells at all: everything in label 0."""
    labels = units.today.copy()
    if not codes:
        labels[:] = 0
        return labels
    progress = True
    while progress and (labels < 0).any():
        progress = False
        for v in np.nonzero(labels < 0)[0].tolist():
            shared: dict[int, float] = {}
            for w, wt in zip(units.neighbours[v], units.weights[v], strict=True):
                if labels[w] >= 0 and labels[w] not in locked:
                    shared[int(labels[w])] = shared.get(int(labels[w]), 0.0) + wt
            if shared:
                labels[v] = max(sorted(shared), key=lambda lab: shared[lab])
                progress = True
    placed = np.nonzero((labels >= 0) & ~np.isin(labels, list(locked)))[0]
    placed = placed if len(placed) else np.nonzero(labels >= 0)[0]
    for v in np.nonzero(labels < 0)[0].tolist():
        gaps = np.linalg.norm(units.centroids[placed] - units.centroids[v], axis=1)
        labels[v] = labels[placed[int(np.argmin(gaps))]] if len(placed) else 0
    return labels


def _infeasible(data: RebalanceInput, search: _Search) -> list[Finding]:
    """What cannot be in range whatever the lines: buildings above the maximum, exclaves, and
    (connected parts of) the community whose households no number of cells can hold in range."""
    units, lo, hi = search.u, int(search.lo), int(search.hi)
    b = data.buildings
    findings = [
        Finding(
            "building_too_large",
            f"{_building_label(data, bi)}有 {int(b.households[bi])} 户，超过每格上限 {hi} 户：单独成格也超出范围。"
            "系统没有单元（门洞）数据，无法按单元拆分，请人工处理",
            buildings=(b.codes[bi],),
        )
        for bi in np.nonzero(np.asarray(b.households) > hi)[0].tolist()
    ]
    free_units = [v for v in range(units.n) if search.label[v] not in search.frozen]
    for part in _graph_components(units, free_units):
        total = float(units.households[part].sum())
        k_min, k_max = _counts(total, lo, hi)
        if total == 0 or k_min <= k_max:
            continue
        names = [bi for v in part for bi in units.buildings[v]]
        if len(part) < len(free_units) and len(names) <= 3:
            findings.append(Finding(
                "building_isolated",
                f"{'、'.join(_building_label(data, bi) for bi in names)}与其他楼栋不相邻（飞地），共 {total:.0f} 户，"
                f"无法与其他楼栋连成 {lo}–{hi} 户的网格",
                buildings=tuple(b.codes[bi] for bi in names),
            ))
            continue
        where = "本社区" if len(part) == len(free_units) else f"本社区一块互不相连的区域（{len(names)} 栋楼）"
        findings.append(Finding(
            "households_total_infeasible",
            f"{where}共 {total:.0f} 户，无法分成若干个 {lo}–{hi} 户的网格："
            + (f"不足一格的下限 {lo} 户" if k_min <= 1 else
               f"分 {k_min - 1} 格平均 {total / (k_min - 1):.0f} 户（超上限），分 {k_min} 格平均 {total / k_min:.0f} 户（不足下限）"),
            buildings=tuple(b.codes[bi] for bi in names) if len(names) <= 20 else (),
        ))
    return findings


def _cell_count(search: _Search, *, fresh: bool) -> list[str]:
    """Make the number of free cells one that can hold their households in range (step 2), or
    draw a fresh partition when there is no grid (step 1). Returns the notes for the planner."""
    lo, hi = search.lo, search.hi
    total = float(sum(search.h[lab] for lab in search.free()))
    k_min, k_max = _counts(total, lo, hi)
    k_now = len(search.free())
    if fresh:
        target = (lo + hi) / 2
        k_want = max(1, math.ceil(total / target - 1e-9))
        if k_min <= k_max:
            k_want = min(max(k_want, k_min), k_max)
        _fresh_partition(search, k_want)
        return [f"本社区尚无网格：按每格约 {target:.0f} 户新划 {len(search.active())} 个网格"]
    if k_min > k_max or k_min <= k_now <= k_max:
        return []
    k_target = k_min if k_now < k_min else k_max
    while len(search.free()) < k_target and search.budget_left():
        if not search.split(max(search.free(), key=lambda lab: (search.h[lab], -lab))):
            break
    while len(search.free()) > k_target and search.budget_left():
        if not search.merge(min(search.free(), key=lambda lab: (search.h[lab], lab))):
            break
    return [f"共 {total:.0f} 户：网格数由 {k_now} 个调整为 {len(search.free())} 个，才可能每格 {lo:.0f}–{hi:.0f} 户"]


def _fresh_partition(search: _Search, k: int) -> None:
    """Recursive bisection of all units into k cells (module docstring, step 1)."""
    pool = sorted(search.members[0])
    parts = search.partition(pool, k)
    if parts is None:  # a community in pieces: each piece its share of the cells
        total = max(float(search.u.households[pool].sum()), 1.0)
        parts = []
        for piece in _graph_components(search.u, pool):
            share = max(1, round(k * float(search.u.households[piece].sum()) / total))
            parts += search.partition(piece, share) or [set(piece)]
    done = [sorted(part) for part in parts]
    for i, units in enumerate(sorted(done, key=min)):
        lab = 0 if i == 0 else search.new_label()
        for v in units:
            if search.label[v] != lab:
                search.move(v, lab)
    search.steps["splits"] += len(done) - 1


def _reading_order(shapes: list[BaseGeometry], row_height: float) -> list[int]:
    """Indices of `shapes` north→south in rows, west→east within a row (the codes' convention)."""
    points = [s.representative_point() for s in shapes]
    return sorted(range(len(shapes)), key=lambda i: (-round(points[i].y / row_height), points[i].x))


def _answer(
    data: RebalanceInput, units: Units, search: _Search, rules: Rules, initial: dict[int, set[int]],
    infeasible_labels: set[int], findings: list[Finding], notes: list[str], started: float, built: float,
) -> Suggestion:
    lo, hi = rules.households_min, rules.households_max
    frame = units.frame
    codes = [c.code for c in data.cells]
    active = search.active()
    shapes: dict[int, BaseGeometry] = {}
    changed: dict[int, bool] = {}
    for lab in active:
        members = search.members[lab]
        same = lab < len(codes) and members == initial.get(lab) and all(units.zone_of[v] == lab for v in members)
        changed[lab] = not same
        shapes[lab] = (
            _polygonal(frame.to_metres(data.cells[lab].shape)) if same
            else _polygonal(shapely.union_all(units.regions[sorted(members)]))
        )
    new_labels = [lab for lab in active if lab >= len(codes)]
    row_height = math.sqrt(max(units.outline.area, 1.0) / max(len(active), 1))
    key_of = {lab: codes[lab] for lab in active if lab < len(codes)}
    for n, i in enumerate(_reading_order([shapes[lab] for lab in new_labels], row_height), start=1):
        key_of[new_labels[i]] = f"新网格{n}"

    cells: list[SuggestedCell] = []
    rank = {lab: (0, key_of[lab]) if lab < len(codes) else (1, f"{int(key_of[lab][3:]):04d}") for lab in active}
    for lab in sorted(active, key=lambda x: rank[x]):
        households = int(round(search.h[lab]))
        in_range = lo <= households <= hi
        cells.append(SuggestedCell(
            code=codes[lab] if lab < len(codes) else None,
            key=key_of[lab],
            shape=data.cells[lab].shape if not changed[lab]
            else shapely.set_precision(frame.to_degrees(shapes[lab]), PRECISION_DEG),
            households=households,
            buildings=sum(len(units.buildings[v]) for v in search.members[lab]),
            in_range=in_range,
            feasible=lab not in infeasible_labels,
            changed=changed[lab],
            contiguous=search.components(lab) == 1,
            polsby_popper=polsby_popper(shapes[lab]),
        ))
        if not in_range and lab not in infeasible_labels:
            if lab in search.frozen:
                notes.append(f"网格 {key_of[lab]} 已锁定，未调整（{households} 户）")
            else:
                findings.append(Finding(
                    "cell_out_of_range",
                    f"未能找到使网格 {key_of[lab]} 在 {lo}–{hi} 户范围内的连片调整（现 {households} 户）",
                    cells=(key_of[lab],),
                ))
    retired = [codes[lab] for lab in range(len(codes)) if lab not in key_of]

    b = data.buildings
    unit_of = np.empty(len(b), dtype=np.int64)
    for v, bs in enumerate(units.buildings):
        unit_of[bs] = v
    moves: list[BuildingMove] = []
    kept = 0
    placed_today = 0
    for bi in range(len(b)):
        hh = int(b.households[bi])
        frm = codes[b.today[bi]] if b.today[bi] >= 0 else None
        to = key_of[int(search.label[unit_of[bi]])]
        if frm is not None:
            placed_today += hh
            kept += hh if frm == to else 0
        if frm != to:
            moves.append(BuildingMove(code=b.codes[bi], name=b.names[bi], households=hh, from_code=frm, to=to))
    moves.sort(key=lambda m: (-m.households, m.code))
    cut = search.label[units.edges[:, 0]] != search.label[units.edges[:, 1]] if len(units.edges) else np.zeros(0, bool)
    scores = [c.polsby_popper for c in cells if c.polsby_popper is not None]
    feasible = [c for c in cells if c.feasible]
    summary = {
        "cells": len(cells),
        "cells_in_range": sum(c.in_range for c in cells),
        "cells_feasible": len(feasible),
        "feasible_in_range": sum(c.in_range for c in feasible),
        "cells_changed": sum(c.changed for c in cells),
        "cells_new": len(new_labels),
        "cells_retired": len(retired),
        "contiguous_cells": sum(c.contiguous for c in cells),
        "households": int(b.households.sum()) if len(b) else 0,
        "households_kept": kept,
        "kept_share": round(kept / placed_today, 4) if placed_today else None,
        "buildings_moved": len(moves),
        "households_moved": sum(m.households for m in moves),
        "cut_edges": int(cut.sum()),
        "polsby_popper_mean": round(sum(scores) / len(scores), 4) if scores else None,
        "units": units.n,
        "adjacencies": len(units.edges),
        "steps": dict(search.steps),
        "stopped": search.stopped,
        "seed": rules.seed,
        "build_s": round(built, 4),
        "elapsed_s": round(time.perf_counter() - started, 4),
    }
    return Suggestion(
        cells=cells, retired=retired, moves=moves, findings=findings, notes=notes, summary=summary,
        unit_keys=[key_of.get(int(lab), "") for lab in search.label.tolist()],
    )
