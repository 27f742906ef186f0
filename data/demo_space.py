"""The space of the demo data set, generated in memory: blocks, streets, communities, grid cells,
buildings and service centres inside the real outline of 霞山区 (adcode 440803).

How it is built, and why:
* A jittered, rotated lattice of city blocks (150–250 m × 130–210 m) is laid over the whole
  district in a local metric projection. Its lines and the district outline are noded together on
  a 1 cm grid and polygonized, so neighbouring blocks share exactly the same vertices: any union of
  whole blocks is then a clean partition (no slivers, no gaps) — streets, communities and grid
  cells are all unions of whole blocks.
* Randomness is counter-based (a hash of seed, stream and keys), never a sequential generator:
  each block's buildings depend only on the seed and the block, so 海滨街道 comes out identical
  whether it is built alone (demo scale) or as one street of the district.
* Buildings sit in slots inside each block, inset from the block edge by half a road, so they never
  overlap each other or a road; grids grow over whole blocks until they hold 300–500 households.
* Everything is checked before it is returned (coverage validity, area sums, buildings inside their
  grid, no overlapping buildings); a violation raises DemoGeometryError instead of writing bad data.
"""

from __future__ import annotations

import heapq
import json
import math
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyproj
import shapely

from data import demo_names as names
from grid.coords import geometry_to_wgs84

Progress = Callable[[str], None]

OUTLINE_FILE = Path(__file__).resolve().parent / "xiashan_440803_gcj02.geojson"
ADCODE = "440803"
# A transverse Mercator centred on the district: metres with negligible distortion over 15 km.
_LOCAL_CRS = "+proj=tmerc +lat_0=21.19 +lon_0=110.38 +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
# WGS-84. Density peaks downtown; the demo street grows around its own centre on the east side.
_CORE = (110.402, 21.203)
_HAIBIN_CENTRE = (110.412, 21.207)

SCALES = ("demo", "district")
DISTRICT_STREETS = 20
HAIBIN_HOUSEHOLDS = 20_000  # budget; the slots hold ~82 % of it: ≈ 40 grids of ~400 households
COMMUNITY_HOUSEHOLDS = 3_500
COMMUNITY_MIN_HOUSEHOLDS = 1_500
GRID_MIN, GRID_MAX = 300, 500
ROAD_HALF_WIDTH_M = 8.0
STREET_CENTRE_RADIUS_M = 1_500


class DemoGeometryError(RuntimeError):
    """The generated space broke one of its own invariants; nothing may be written."""

    code = "demo_geometry_invalid"


# ------------------------------------------------------------------------------------------------
# Counter-based randomness
# ------------------------------------------------------------------------------------------------

_U64 = np.uint64


def _mix(x: np.ndarray) -> np.ndarray:
    # splitmix64 finaliser: integer-only, so results are identical on every platform and version.
    with np.errstate(over="ignore"):
        z = x + _U64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
        return z ^ (z >> _U64(31))


class _Rand:
    """u(stream, *keys) is uniform in [0, 1) and depends only on (seed, stream, keys)."""

    def __init__(self, seed: int) -> None:
        self._seed = _mix(np.asarray([seed % (1 << 64)], dtype=np.uint64))[0]

    def u(self, stream: str, *keys: object) -> np.ndarray:
        h = _mix(np.asarray(self._seed ^ _U64(zlib.crc32(stream.encode())), dtype=np.uint64))
        for key in keys:
            k = np.asarray(key, dtype=np.int64).astype(np.uint64)
            h = _mix(h ^ k)
        return (np.asarray(h) >> _U64(11)).astype(np.float64) * (1.0 / (1 << 53))

    def one(self, stream: str, *keys: object) -> float:
        return float(np.asarray(self.u(stream, *keys)).reshape(-1)[0])


# ------------------------------------------------------------------------------------------------
# What the generator returns
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreetSpec:
    code: str
    name: str
    geom: shapely.MultiPolygon  # WGS-84


@dataclass(frozen=True)
class CommunitySpec:
    code: str
    street_code: str
    name: str
    residents: int
    households: int
    geom: shapely.MultiPolygon


@dataclass(frozen=True)
class GridSpec:
    code: str
    community_code: str
    name: str
    households: int
    geom: shapely.MultiPolygon


@dataclass(frozen=True)
class BuildingTable:
    """Column-wise, because the district has ~100,000 of them."""

    code: list[str]
    name: list[str]
    address: list[str]
    kind: list[str]
    community_code: list[str]
    grid_code: list[str]
    households: np.ndarray
    floors: np.ndarray
    geom: np.ndarray  # shapely Polygons, WGS-84

    def __len__(self) -> int:
        return len(self.code)


@dataclass(frozen=True)
class CentreSpec:
    code: str
    name: str
    level: str
    street_code: str
    community_code: str | None
    address: str
    service_radius_m: int
    geom: shapely.Point


@dataclass(frozen=True)
class DemoSpace:
    scale: str
    seed: int
    streets: list[StreetSpec]
    communities: list[CommunitySpec]
    grids: list[GridSpec]
    buildings: BuildingTable
    centres: list[CentreSpec]
    outline: shapely.MultiPolygon  # the district, WGS-84


# ------------------------------------------------------------------------------------------------
# Outline and projection
# ------------------------------------------------------------------------------------------------

_TO_LOCAL = pyproj.Transformer.from_crs("EPSG:4326", _LOCAL_CRS, always_xy=True)
_TO_WGS = pyproj.Transformer.from_crs(_LOCAL_CRS, "EPSG:4326", always_xy=True)


def _reproject(geoms: np.ndarray, transformer: pyproj.Transformer) -> np.ndarray:
    def fn(xy: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, fn)


def district_outline_wgs84() -> shapely.MultiPolygon:
    """The district outline from the bundled DataV file, converted once from GCJ-02."""
    with OUTLINE_FILE.open(encoding="utf-8") as fh:
        feature = json.load(fh)["features"][0]
    gcj = shapely.geometry.shape(feature["geometry"])
    return geometry_to_wgs84(gcj, "gcj02")


def _local_xy(lon: float, lat: float) -> tuple[float, float]:
    x, y = _TO_LOCAL.transform(lon, lat)
    return float(x), float(y)


# ------------------------------------------------------------------------------------------------
# Blocks
# ------------------------------------------------------------------------------------------------

# Block types: what a block holds. Slot = the cell each building gets (u: along the lattice's
# east–west axis, v: north–south); lu/lv = footprint ranges; residential types carry a household
# budget (base + slope × density), the others a building count.
_TYPES = ["house", "walkup", "midrise", "tower", "shophouse", "shop", "public", "factory", "green"]
_ARCH = {
    "house": {"slot": (15.0, 18.0), "lu": (8.0, 12.0), "lv": (10.0, 14.0), "floors": (3, 7)},
    "walkup": {"slot": (66.0, 30.0), "lu": (30.0, 58.0), "lv": (11.0, 14.0), "floors": (5, 8)},
    "midrise": {"slot": (74.0, 44.0), "lu": (36.0, 66.0), "lv": (14.0, 18.0), "floors": (9, 18)},
    "tower": {"slot": (56.0, 56.0), "lu": (20.0, 28.0), "lv": (20.0, 28.0), "floors": (18, 33)},
    "shophouse": {"slot": (30.0, 40.0), "lu": (14.0, 24.0), "lv": (18.0, 32.0), "floors": (4, 9)},
    "shop": {"slot": (56.0, 56.0), "lu": (20.0, 44.0), "lv": (20.0, 44.0), "floors": (1, 5)},
    "public": {"slot": (100.0, 44.0), "lu": (50.0, 86.0), "lv": (16.0, 26.0), "floors": (3, 6)},
    "factory": {"slot": (80.0, 100.0), "lu": (40.0, 70.0), "lv": (40.0, 80.0), "floors": (1, 3)},
}
_BUDGET = {"house": (240, 40), "walkup": (200, 180), "midrise": (240, 160), "tower": (260, 180),
           "shophouse": (150, 150)}
_COUNT = {"shop": (2, 5), "public": (2, 4), "factory": (3, 6)}
_BLOCK_BUDGET_CAP = 460


@dataclass
class _Blocks:
    geom: np.ndarray  # metric polygons, an exact coverage of the district
    inset: np.ndarray  # where buildings may stand
    cx: np.ndarray
    cy: np.ndarray
    row: np.ndarray
    col: np.ndarray
    n_rows: int
    n_cols: int
    interior: np.ndarray  # touches no part of the district outline
    neighbours: list[list[int]]
    btype: np.ndarray  # index into _TYPES
    budget: np.ndarray  # households (residential) or building count
    density: np.ndarray
    alpha: float

    def __len__(self) -> int:
        return len(self.geom)


def _lattice_faces(rand: _Rand, outline_m: shapely.MultiPolygon) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    alpha = math.radians(4.0 + 10.0 * rand.one("angle"))
    ca, sa = math.cos(alpha), math.sin(alpha)
    xy = shapely.get_coordinates(outline_m)
    u = xy[:, 0] * ca + xy[:, 1] * sa
    v = -xy[:, 0] * sa + xy[:, 1] * ca
    n_c = int((u.max() - u.min()) / 150) + 4
    n_r = int((v.max() - v.min()) / 130) + 4
    uu = u.min() - 60 + np.concatenate([[0.0], np.cumsum(150 + 90 * rand.u("col_width", np.arange(n_c)))])
    vv = v.max() + 60 - np.concatenate([[0.0], np.cumsum(125 + 75 * rand.u("row_height", np.arange(n_r)))])
    uu = uu[: int(np.searchsorted(uu, u.max() + 60)) + 1]
    vv = vv[: int(np.searchsorted(-vv, -(v.min() - 60))) + 1]
    ii, jj = np.meshgrid(np.arange(len(uu)), np.arange(len(vv)), indexing="ij")
    gu = uu[ii] + 14 * (2 * rand.u("jitter_u", ii, jj) - 1)
    gv = vv[jj] + 14 * (2 * rand.u("jitter_v", ii, jj) - 1)
    gx, gy = gu * ca - gv * sa, gu * sa + gv * ca
    rows = shapely.linestrings(np.stack([gx.T, gy.T], axis=-1))
    cols = shapely.linestrings(np.stack([gx, gy], axis=-1))
    lines = np.concatenate([rows, cols, shapely.get_parts(shapely.boundary(outline_m))])
    # Noding on a 1 cm grid, then polygonizing: every edge shared by two faces is one edge.
    noded = shapely.union_all(lines, grid_size=0.01)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    rp = shapely.get_coordinates(shapely.point_on_surface(faces))
    faces = faces[shapely.contains_xy(outline_m, rp[:, 0], rp[:, 1])]
    return faces, uu, vv, alpha


def _adjacency(faces: np.ndarray) -> list[list[int]]:
    tree = shapely.STRtree(faces)
    i, j = tree.query(faces, predicate="intersects")
    keep = i < j
    i, j = i[keep], j[keep]
    # Blocks that meet at a corner only are not neighbours: a grid must not hinge on a point.
    shared = shapely.length(shapely.intersection(faces[i], faces[j])) > 1.0
    out: list[list[int]] = [[] for _ in range(len(faces))]
    for a, b in zip(i[shared].tolist(), j[shared].tolist(), strict=True):
        out[a].append(b)
        out[b].append(a)
    return [sorted(n) for n in out]


def _blocks(rand: _Rand, outline_m: shapely.MultiPolygon) -> _Blocks:
    faces, uu, vv, alpha = _lattice_faces(rand, outline_m)
    cen = shapely.get_coordinates(shapely.centroid(faces))
    ca, sa = math.cos(alpha), math.sin(alpha)
    cu = cen[:, 0] * ca + cen[:, 1] * sa
    cv = -cen[:, 0] * sa + cen[:, 1] * ca
    col = np.clip(np.searchsorted(uu, cu) - 1, 0, len(uu) - 2)
    row = np.clip(np.searchsorted(-vv, -cv) - 1, 0, len(vv) - 2)
    order = np.lexsort((cen[:, 0], col, row))
    faces, cen, col, row = faces[order], cen[order], col[order], row[order]
    n = len(faces)
    ids = np.arange(n)

    core = _local_xy(*_CORE)
    density = np.exp(-np.hypot(cen[:, 0] - core[0], cen[:, 1] - core[1]) / 7000.0)
    d = density
    probs = np.column_stack([
        0.10 + 0.55 * (1 - d),  # house
        0.10 + 0.30 * d,  # walkup
        0.03 + 0.10 * d,  # midrise
        0.02 + 0.10 * d,  # tower
        0.03 + 0.08 * d,  # shophouse
        np.full(n, 0.04),  # shop
        np.full(n, 0.05),  # public
        0.02 + 0.10 * (1 - d),  # factory
        np.full(n, 0.04),  # green
    ])
    cum = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    btype = (rand.u("block_type", ids)[:, None] > cum).sum(axis=1)
    area = shapely.area(faces)
    btype[area < 5000] = _TYPES.index("green")

    budget = np.zeros(n, dtype=np.int64)
    jitter = 0.8 + 0.4 * rand.u("block_budget", ids)
    for t, (base, slope) in _BUDGET.items():
        m = btype == _TYPES.index(t)
        budget[m] = np.minimum(_BLOCK_BUDGET_CAP, (base + slope * d[m]) * jitter[m]).astype(np.int64)
    for t, (lo, span) in _COUNT.items():
        m = btype == _TYPES.index(t)
        budget[m] = lo + (span * rand.u("block_count", ids[m])).astype(np.int64)

    boundary = shapely.boundary(outline_m)
    return _Blocks(
        geom=faces,
        inset=shapely.buffer(faces, -ROAD_HALF_WIDTH_M, join_style="mitre", mitre_limit=3.0),
        cx=cen[:, 0],
        cy=cen[:, 1],
        row=row,
        col=col,
        n_rows=len(vv) - 1,
        n_cols=len(uu) - 1,
        interior=shapely.distance(faces, boundary) > 1.0,
        neighbours=_adjacency(faces),
        btype=btype,
        budget=budget,
        density=density,
        alpha=alpha,
    )


# ------------------------------------------------------------------------------------------------
# Buildings (metric, per block; identical for a block whichever scale asks for it)
# ------------------------------------------------------------------------------------------------


@dataclass
class _Buildings:
    block: np.ndarray
    slot: np.ndarray  # slot index inside its block (for a stable order)
    rank: np.ndarray  # 1-based number inside its block
    geom: np.ndarray  # metric polygons
    kind: np.ndarray  # Building.Kind values
    floors: np.ndarray
    households: np.ndarray  # natural households, before grids are balanced


def _slots(rand: _Rand, blocks: _Blocks, ids: np.ndarray) -> dict[str, np.ndarray]:
    """Every candidate building slot of these blocks with its footprint, floors and households."""
    alpha = blocks.alpha
    ca, sa = math.cos(alpha), math.sin(alpha)
    rot = np.array([[ca, -sa], [sa, ca]])  # row vector @ rot == rotate by -alpha
    bounds = shapely.bounds(shapely.transform(blocks.inset[ids], lambda c: c @ rot))
    btype = blocks.btype[ids]
    su = np.zeros(len(ids))
    sv = np.zeros(len(ids))
    for t, arch in _ARCH.items():
        m = btype == _TYPES.index(t)
        su[m], sv[m] = arch["slot"]
    with np.errstate(invalid="ignore", divide="ignore"):
        n_u = np.where(su > 0, np.floor((bounds[:, 2] - bounds[:, 0]) / np.where(su > 0, su, 1)), 0)
        n_v = np.where(sv > 0, np.floor((bounds[:, 3] - bounds[:, 1]) / np.where(sv > 0, sv, 1)), 0)
    n_u = np.nan_to_num(n_u).astype(np.int64).clip(0)
    n_v = np.nan_to_num(n_v).astype(np.int64).clip(0)
    count = n_u * n_v
    local = np.repeat(np.arange(len(ids)), count)
    block = ids[local]
    k = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    iu, iv = k // n_v[local], k % n_v[local]
    su_s, sv_s = su[local], sv[local]
    off_u = ((bounds[:, 2] - bounds[:, 0]) - n_u * su)[local] / 2
    off_v = ((bounds[:, 3] - bounds[:, 1]) - n_v * sv)[local] / 2
    cu = bounds[local, 0] + off_u + (iu + 0.5) * su_s
    cv = bounds[local, 3] - off_v - (iv + 0.5) * sv_s

    t_s = btype[local]
    lu = np.zeros(len(k))
    lv = np.zeros(len(k))
    fl = np.zeros(len(k), dtype=np.int64)
    r = [rand.u(f"slot{i}", block, k) for i in range(7)]
    for t, arch in _ARCH.items():
        m = t_s == _TYPES.index(t)
        lu[m] = arch["lu"][0] + (arch["lu"][1] - arch["lu"][0]) * r[0][m]
        lv[m] = arch["lv"][0] + (arch["lv"][1] - arch["lv"][0]) * r[1][m]
        lo, hi = arch["floors"]
        fl[m] = lo + np.floor((hi - lo + 1) * r[2][m]).astype(np.int64)
    theta = np.radians(2.0) * (2 * r[3] - 1)
    c, s = np.abs(np.cos(theta)), np.abs(np.sin(theta))
    shrink = np.minimum(1.0, np.minimum((su_s - 3) / (lu * c + lv * s), (sv_s - 3) / (lu * s + lv * c)))
    lu, lv = lu * shrink, lv * shrink
    room_u = su_s - 3 - (lu * c + lv * s)
    room_v = sv_s - 3 - (lu * s + lv * c)
    cu = cu + (r[4] - 0.5) * room_u
    cv = cv + (r[5] - 0.5) * room_v
    return {
        "block": block, "k": k, "type": t_s, "cu": cu, "cv": cv, "lu": lu, "lv": lv, "theta": theta,
        "floors": fl, "r": np.stack(r), "prio": rand.u("priority", block, k),
    }


def _footprints(s: dict[str, np.ndarray], alpha: float) -> np.ndarray:
    hu, hv = s["lu"] / 2, s["lv"] / 2
    corners = np.stack([np.stack([-hu, -hv], -1), np.stack([hu, -hv], -1), np.stack([hu, hv], -1),
                        np.stack([-hu, hv], -1), np.stack([-hu, -hv], -1)], axis=1)  # (n, 5, 2)
    t = s["theta"][:, None]
    pu = corners[..., 0] * np.cos(t) - corners[..., 1] * np.sin(t) + s["cu"][:, None]
    pv = corners[..., 0] * np.sin(t) + corners[..., 1] * np.cos(t) + s["cv"][:, None]
    ca, sa = math.cos(alpha), math.sin(alpha)
    return shapely.polygons(np.stack([pu * ca - pv * sa, pu * sa + pv * ca], axis=-1))


def _natural_households(s: dict[str, np.ndarray]) -> np.ndarray:
    t, fl, lu, r6 = s["type"], s["floors"], s["lu"], s["r"][6]
    hh = np.zeros(len(t), dtype=np.int64)
    m = t == _TYPES.index("house")
    hh[m] = fl[m] - 1 + (r6[m] < 0.5)  # self-built houses: about one flat a floor above the shop
    m = t == _TYPES.index("walkup")
    hh[m] = fl[m] * np.clip(np.round(lu[m] / 15), 2, 4).astype(np.int64) * 2
    m = t == _TYPES.index("midrise")
    hh[m] = np.minimum(120, fl[m] * np.clip(np.round(lu[m] / 17), 2, 4).astype(np.int64) * 2)
    m = t == _TYPES.index("tower")
    hh[m] = np.minimum(120, fl[m] * 4)
    m = t == _TYPES.index("shophouse")
    hh[m] = (fl[m] - 1) * (2 + (r6[m] < 0.5))
    return hh


def _group_rank(block: np.ndarray, prio: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort by (block, priority); return the order, each row's 0-based rank and its group start."""
    order = np.lexsort((prio, block))
    b = block[order]
    first = np.r_[True, b[1:] != b[:-1]] if len(b) else np.zeros(0, dtype=bool)
    starts = np.flatnonzero(first)
    gid = np.cumsum(first) - 1
    rank = np.arange(len(b)) - starts[gid]
    return order, rank, starts[gid]


def _buildings(rand: _Rand, blocks: _Blocks, ids: np.ndarray) -> _Buildings:
    s = _slots(rand, blocks, ids)
    fp = _footprints(s, blocks.alpha)
    ok = shapely.within(fp, blocks.inset[s["block"]])
    s = {k: (v[:, ok] if k == "r" else v[ok]) for k, v in s.items()}
    fp = fp[ok]
    hh = _natural_households(s)

    order, rank, start = _group_rank(s["block"], s["prio"])
    s = {k: (v[:, order] if k == "r" else v[order]) for k, v in s.items()}
    fp, hh = fp[order], hh[order]
    residential = np.isin(s["type"], [_TYPES.index(t) for t in _BUDGET])
    cum = np.cumsum(hh)
    before = cum - hh - np.where(start > 0, cum[np.maximum(start - 1, 0)], 0)
    budget = blocks.budget[s["block"]]
    keep = np.where(residential, before < budget, rank < budget)
    # Each residential block also has a few ancillary buildings (配套用房: shops, a kindergarten,
    # a property office) in the next free slots.
    n_main = np.bincount(s["block"][keep], minlength=len(blocks))[s["block"]]
    n_anc = (5 * rand.u("ancillary", s["block"])).astype(np.int64)
    ancillary = residential & ~keep & (rank >= n_main) & (rank < n_main + n_anc)
    s["lu"] = np.where(ancillary, np.minimum(s["lu"], 8 + 8 * s["r"][4]), s["lu"])
    s["lv"] = np.where(ancillary, np.minimum(s["lv"], 8 + 5 * s["r"][5]), s["lv"])
    fp = np.where(ancillary, _footprints(s, blocks.alpha), fp)
    take = keep | ancillary

    t = s["type"]
    kind = np.array(["residential"] * len(t), dtype=object)
    r5 = s["r"][5]
    kind[(t == _TYPES.index("house")) & (r5 < 0.12)] = "mixed"
    kind[(t == _TYPES.index("walkup")) & (r5 < 0.06)] = "mixed"
    kind[t == _TYPES.index("shophouse")] = "mixed"
    kind[t == _TYPES.index("shop")] = "commercial"
    kind[t == _TYPES.index("public")] = "public"
    kind[t == _TYPES.index("factory")] = "industrial"
    kind[ancillary] = "commercial"
    floors = np.where(ancillary, 1 + (s["r"][6] < 0.4), s["floors"])
    hh = np.where(ancillary, 0, hh)

    sel = np.flatnonzero(take)
    block = s["block"][sel]
    slot = s["k"][sel]
    order = np.lexsort((slot, block))
    sel, block, slot = sel[order], block[order], slot[order]
    _, rank_in_block, _ = _group_rank(block, slot.astype(np.float64))
    return _Buildings(
        block=block, slot=slot, rank=rank_in_block + 1, geom=fp[sel], kind=kind[sel],
        floors=floors[sel].astype(np.int64), households=hh[sel].astype(np.int64),
    )


# ------------------------------------------------------------------------------------------------
# Partitions: streets, communities, grids (all unions of whole blocks)
# ------------------------------------------------------------------------------------------------


def _grow_region(blocks: _Blocks, start: int, weight: np.ndarray, target: float, allowed: np.ndarray) -> list[int]:
    """Closest-first growth from `start` over allowed neighbours until `target` weight is reached."""
    sx, sy = blocks.cx[start], blocks.cy[start]
    heap = [(0.0, start)]
    seen = {start}
    region: list[int] = []
    total = 0.0
    while heap and total < target:
        _, b = heapq.heappop(heap)
        region.append(b)
        total += weight[b]
        for nb in blocks.neighbours[b]:
            if nb not in seen and allowed[nb]:
                seen.add(nb)
                heapq.heappush(heap, (math.hypot(blocks.cx[nb] - sx, blocks.cy[nb] - sy), nb))
    return sorted(region)


def _balanced_kmeans(rand: _Rand, stream: str, x: np.ndarray, y: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    """Weighted k-means with additive offsets that even out the clusters' weights (a power diagram)."""
    n = len(x)
    if k <= 1 or n <= k:
        return np.zeros(n, dtype=np.int64) if k <= 1 else np.arange(n)
    pts = np.column_stack([x, y])
    # k-means++ seeding driven by the counter-based generator.
    centres = [int(rand.one(stream, 0) * n)]
    for i in range(1, k):
        d2 = ((pts[:, None, :] - pts[centres][None]) ** 2).sum(-1).min(axis=1) * w
        cum = np.cumsum(d2)
        centres.append(int(np.searchsorted(cum, rand.one(stream, i) * cum[-1])))
    c = pts[centres].astype(np.float64)
    offset = np.zeros(k)
    scale = (np.ptp(x) * np.ptp(y) + 1.0) / k / math.pi
    labels = np.zeros(n, dtype=np.int64)
    for _ in range(40):
        d2 = ((pts[:, None, :] - c[None]) ** 2).sum(-1) - offset[None]
        labels = d2.argmin(axis=1)
        load = np.bincount(labels, weights=w, minlength=k)
        for j in range(k):
            m = labels == j
            if m.any():
                c[j] = np.average(pts[m], axis=0, weights=w[m])
        offset += 0.3 * scale * (load.mean() - load) / load.mean()
    return labels


def _components(members: list[int], neighbours: list[list[int]]) -> list[list[int]]:
    inside = set(members)
    seen: set[int] = set()
    comps = []
    for m in members:
        if m in seen:
            continue
        stack, comp = [m], []
        seen.add(m)
        while stack:
            b = stack.pop()
            comp.append(b)
            for nb in neighbours[b]:
                if nb in inside and nb not in seen:
                    seen.add(nb)
                    stack.append(nb)
        comps.append(sorted(comp))
    return comps


def _make_contiguous(ids: np.ndarray, labels: np.ndarray, neighbours: list[list[int]], w: np.ndarray) -> np.ndarray:
    """Hand each detached piece of a cluster to the neighbouring cluster it shares most edges with."""
    labels = labels.copy()
    label_of = dict(zip(ids.tolist(), labels.tolist(), strict=True))
    pos = {b: i for i, b in enumerate(ids.tolist())}
    for _ in range(8):
        changed = False
        for lab in sorted(set(label_of.values())):
            members = [b for b in ids.tolist() if label_of[b] == lab]
            comps = _components(members, neighbours)
            if len(comps) <= 1:
                continue
            comps.sort(key=lambda c: (-float(w[c].sum()), c[0]))
            for comp in comps[1:]:
                votes = Counter(label_of[nb] for b in comp for nb in neighbours[b]
                                if nb in label_of and label_of[nb] != lab)
                if votes:
                    new = min(votes, key=lambda lb: (-votes[lb], lb))
                    for b in comp:
                        label_of[b] = new
                    changed = True
        if not changed:
            break
    for b, lab in label_of.items():
        labels[pos[b]] = lab
    return labels


def _merge_small(ids: np.ndarray, labels: np.ndarray, neighbours: list[list[int]], w: np.ndarray,
                 minimum: float) -> np.ndarray:
    """Merge clusters lighter than `minimum` into their lightest neighbouring cluster."""
    labels = labels.copy()
    label_of = dict(zip(ids.tolist(), labels.tolist(), strict=True))
    stuck: set[int] = set()
    while True:
        load: dict[int, float] = {}
        for b, lab in label_of.items():
            load[lab] = load.get(lab, 0.0) + float(w[b])
        small = sorted((v, lab) for lab, v in load.items() if v < minimum and lab not in stuck)
        if not small or len(load) == 1:
            break
        lab = small[0][1]
        near = {label_of[nb] for b, lb in label_of.items() if lb == lab for nb in neighbours[b]
                if nb in label_of and label_of[nb] != lab}
        if not near:
            stuck.add(lab)
            continue
        target = min(near, key=lambda lb: (load[lb], lb))
        for b in [b for b, lb in label_of.items() if lb == lab]:
            label_of[b] = target
    pos = {b: i for i, b in enumerate(ids.tolist())}
    for b, lab in label_of.items():
        labels[pos[b]] = lab
    return labels


def _grow_grids(rand: _Rand, blocks: _Blocks, members: list[int], w: np.ndarray) -> list[list[int]]:
    """Grids of 300–500 households from whole blocks: seeds taken west→east, north→south, each grid
    growing over its nearest free neighbours; leftovers lighter than 300 join a neighbour."""
    free = set(members)
    order = sorted(members, key=lambda b: (blocks.row[b], blocks.col[b], b))
    groups: list[list[int]] = []
    for seed in order:
        if seed not in free:
            continue
        target = 360 + 80 * rand.one("grid_target", seed)
        free.discard(seed)
        group, total = [seed], float(w[seed])
        heap = [(0.0, nb) for nb in blocks.neighbours[seed] if nb in free]
        heapq.heapify(heap)
        queued = {nb for _, nb in heap}
        while heap and total < target:
            _, b = heapq.heappop(heap)
            if b not in free or total + w[b] > GRID_MAX:
                continue
            free.discard(b)
            group.append(b)
            total += float(w[b])
            for nb in blocks.neighbours[b]:
                if nb in free and nb not in queued:
                    queued.add(nb)
                    heapq.heappush(heap, (math.hypot(blocks.cx[nb] - blocks.cx[seed], blocks.cy[nb] - blocks.cy[seed]), nb))
        groups.append(sorted(group))

    group_of = {b: i for i, g in enumerate(groups) for b in g}
    alive = set(range(len(groups)))
    while len(alive) > 1:
        loads = {i: float(w[groups[i]].sum()) for i in alive}
        small = sorted((loads[i], i) for i in alive if loads[i] < GRID_MIN)
        if not small:
            break
        i = small[0][1]
        near = {group_of[nb] for b in groups[i] for nb in blocks.neighbours[b] if nb in group_of} - {i}
        if not near:
            # An island part of the community: join the nearest grid of the same community.
            gx, gy = blocks.cx[groups[i]].mean(), blocks.cy[groups[i]].mean()
            near = {min(alive - {i}, key=lambda j: (math.hypot(blocks.cx[groups[j]].mean() - gx,
                                                                blocks.cy[groups[j]].mean() - gy), j))}
        # Prefer a neighbour the merged grid still fits in; else the lightest.
        j = min(near, key=lambda j: (loads[i] + loads[j] > GRID_MAX, loads[j], j))
        groups[j] = sorted(groups[j] + groups[i])
        for b in groups[i]:
            group_of[b] = j
        groups[i] = []
        alive.discard(i)
    return [groups[i] for i in sorted(alive)]


def _reading_order(x: np.ndarray, y: np.ndarray, band_m: float) -> np.ndarray:
    """Indices in the coding order: north→south bands, west→east inside a band."""
    band = np.floor((y.max() - y) / band_m)
    return np.lexsort((x, band))


def _balance_households(rand: _Rand, hh: np.ndarray, grid_of: np.ndarray, n_grids: int, grid_keys: np.ndarray) -> np.ndarray:
    """Rescale households so every grid holds 300–500 (grids already inside keep their counts)."""
    out = hh.copy()
    order = np.argsort(grid_of, kind="stable")
    bounds = np.searchsorted(grid_of[order], np.arange(n_grids + 1))
    for g in range(n_grids):
        idx = order[bounds[g]:bounds[g + 1]]
        nat = int(hh[idx].sum())
        if GRID_MIN + 5 <= nat <= GRID_MAX - 5:
            continue
        if nat == 0:
            raise DemoGeometryError(f"网格（第 {g} 个）内没有住户，无法调整到 {GRID_MIN}–{GRID_MAX} 户")
        u = rand.one("grid_households", grid_keys[g])
        target = int(320 + 40 * u) if nat < GRID_MIN + 5 else int(440 + 40 * u)
        share = hh[idx] * (target / nat)
        new = np.floor(share).astype(np.int64)
        new[(hh[idx] > 0) & (new == 0)] = 1
        rest = target - int(new.sum())
        frac_order = np.argsort(-(share - np.floor(share)), kind="stable")
        frac_order = frac_order[hh[idx][frac_order] > 0]
        step = 1 if rest > 0 else -1
        i = 0
        while rest != 0 and len(frac_order):
            j = frac_order[i % len(frac_order)]
            if step > 0 or new[j] > 1:
                new[j] += step
                rest -= step
            i += 1
        out[idx] = new
    return out


# ------------------------------------------------------------------------------------------------
# Checks
# ------------------------------------------------------------------------------------------------


def _check_partition(parent: shapely.Geometry, children: np.ndarray, what: str) -> None:
    if not shapely.is_valid(parent) or not shapely.is_valid(children).all():
        raise DemoGeometryError(f"{what}：生成的边界无效")
    if len(children) > 1 and not shapely.coverage_is_valid(children):
        edges = shapely.coverage_invalid_edges(children)
        bad = int((~shapely.is_empty(edges)).sum())
        raise DemoGeometryError(f"{what}：下级单元之间有重叠或缝隙（{bad} 个单元的边界不吻合）")
    total = float(shapely.area(children).sum())
    if abs(total - parent.area) > 1e-9 * parent.area:
        raise DemoGeometryError(f"{what}：下级单元面积之和 {total} 与上级面积 {parent.area} 不符")
    gap = shapely.area(shapely.symmetric_difference(shapely.coverage_union_all(children), parent))
    if gap > 1e-9 * parent.area:
        raise DemoGeometryError(f"{what}：下级单元的并集与上级边界不一致")


def _as_multi(g: shapely.Geometry) -> shapely.MultiPolygon:
    return g if isinstance(g, shapely.MultiPolygon) else shapely.MultiPolygon([g])


# ------------------------------------------------------------------------------------------------
# The whole space
# ------------------------------------------------------------------------------------------------


def _street_partition(rand: _Rand, blocks: _Blocks, scale: str) -> dict[str, list[int]]:
    """Blocks of each street by code. 海滨街道 is carved first, identically in both scales."""
    budget = blocks.budget.astype(np.float64)
    weight = np.where(np.isin(blocks.btype, [_TYPES.index(t) for t in _BUDGET]), budget, 20.0)
    hx, hy = _local_xy(*_HAIBIN_CENTRE)
    candidates = np.flatnonzero(blocks.interior)
    start = int(candidates[np.argmin(np.hypot(blocks.cx[candidates] - hx, blocks.cy[candidates] - hy))])
    haibin = _grow_region(blocks, start, weight, HAIBIN_HOUSEHOLDS, blocks.interior)
    streets = {names.HAIBIN_CODE: haibin}
    if scale == "demo":
        return streets
    rest = np.setdiff1d(np.arange(len(blocks)), haibin)
    k = DISTRICT_STREETS - 1
    labels = _balanced_kmeans(rand, "streets", blocks.cx[rest], blocks.cy[rest], weight[rest] + 20.0, k)
    labels = _make_contiguous(rest, labels, blocks.neighbours, weight)
    order = _reading_order(
        np.array([blocks.cx[rest][labels == j].mean() for j in range(k)]),
        np.array([blocks.cy[rest][labels == j].mean() for j in range(k)]),
        3000.0,
    )
    codes = [f"{ADCODE}{s}" for s in sorted(names.STREET_NAMES) if f"{ADCODE}{s}" != names.HAIBIN_CODE]
    for code, j in zip(codes, order.tolist(), strict=True):
        streets[code] = sorted(rest[labels == j].tolist())
    return streets


def build_space(*, scale: str, seed: int, progress: Progress | None = None) -> DemoSpace:
    """Generate (in memory) the demo space of `scale` for `seed`, checked and in WGS-84."""
    if scale not in SCALES:
        raise ValueError(f"未知规模：{scale}（可选：{'、'.join(SCALES)}）")
    say = progress or (lambda _msg: None)
    rand = _Rand(seed)
    outline = district_outline_wgs84()
    outline_m = _reproject(np.array([outline]), _TO_LOCAL)[0]

    blocks = _blocks(rand, outline_m)
    say(f"生成街区 {len(blocks)} 个（整区网格化底图）")
    street_blocks = _street_partition(rand, blocks, scale)
    scope = np.array(sorted(b for bl in street_blocks.values() for b in bl), dtype=np.int64)
    bld = _buildings(rand, blocks, scope)
    block_hh = np.bincount(bld.block, weights=bld.households, minlength=len(blocks))
    say(f"生成楼栋 {len(bld.block)} 栋")

    # Communities inside each street, grids inside each community (block lists, metric).
    comm_blocks: list[tuple[str, list[int]]] = []  # (street code, blocks)
    for street_code in sorted(street_blocks):
        ids = np.array(street_blocks[street_code], dtype=np.int64)
        w = block_hh[ids] + 5.0
        k = max(1, round(float(block_hh[ids].sum()) / COMMUNITY_HOUSEHOLDS))
        labels = _balanced_kmeans(rand, f"communities{street_code}", blocks.cx[ids], blocks.cy[ids], w, k)
        labels = _make_contiguous(ids, labels, blocks.neighbours, block_hh)
        labels = _merge_small(ids, labels, blocks.neighbours, block_hh, COMMUNITY_MIN_HOUSEHOLDS)
        for lab in sorted(set(labels.tolist())):
            comm_blocks.append((street_code, sorted(ids[labels == lab].tolist())))

    # Codes in reading order.
    communities: list[tuple[str, str, list[int]]] = []  # code, street code, blocks
    for street_code in sorted(street_blocks):
        mine = [bl for sc, bl in comm_blocks if sc == street_code]
        order = _reading_order(np.array([blocks.cx[bl].mean() for bl in mine]),
                               np.array([blocks.cy[bl].mean() for bl in mine]), 1200.0)
        for seq, j in enumerate(order.tolist(), start=1):
            communities.append((f"{street_code}{seq:03d}", street_code, mine[j]))
    grids: list[tuple[str, str, list[int]]] = []  # code, community code, blocks
    for comm_code, _street, bl in communities:
        groups = _grow_grids(rand, blocks, bl, block_hh)
        order = _reading_order(np.array([blocks.cx[g].mean() for g in groups]),
                               np.array([blocks.cy[g].mean() for g in groups]), 400.0)
        for seq, j in enumerate(order.tolist(), start=1):
            grids.append((f"{comm_code}{seq:03d}", comm_code, groups[j]))
    say(f"划分社区 {len(communities)} 个、网格 {len(grids)} 个")

    grid_of_block = np.full(len(blocks), -1, dtype=np.int64)
    for gi, (_code, _comm, bl) in enumerate(grids):
        grid_of_block[bl] = gi
    bgrid = grid_of_block[bld.block]
    households = _balance_households(rand, bld.households, bgrid, len(grids),
                                     np.array([min(bl) for _c, _cc, bl in grids]))

    # Shapes: unions of whole blocks, then one projection of every vertex to WGS-84.
    union = shapely.coverage_union_all
    metric = np.array(
        [union(blocks.geom[bl]) for bl in street_blocks.values()]
        + [union(blocks.geom[bl]) for _c, _s, bl in communities]
        + [union(blocks.geom[bl]) for _c, _s, bl in grids],
        dtype=object,
    )
    wgs = _reproject(np.concatenate([metric, bld.geom]), _TO_WGS)
    n_s, n_c = len(street_blocks), len(communities)
    street_geoms = wgs[:n_s]
    comm_geoms = wgs[n_s:n_s + n_c]
    grid_geoms = wgs[n_s + n_c:n_s + n_c + len(grids)]
    bgeoms = wgs[n_s + n_c + len(grids):]

    space = _assemble(rand, scale, seed, outline, blocks, bld, households, bgrid, street_blocks,
                      street_geoms, communities, comm_geoms, grids, grid_geoms, bgeoms)
    _check_space(space, bgrid)
    say("校验通过：社区无缝覆盖街道，网格无缝覆盖社区，楼栋互不重叠且都在所属网格内")
    return space


def _assemble(rand: _Rand, scale: str, seed: int, outline: shapely.MultiPolygon, blocks: _Blocks,
              bld: _Buildings, households: np.ndarray, bgrid: np.ndarray,
              street_blocks: dict[str, list[int]], street_geoms: np.ndarray,
              communities: list[tuple[str, str, list[int]]], comm_geoms: np.ndarray,
              grids: list[tuple[str, str, list[int]]], grid_geoms: np.ndarray, bgeoms: np.ndarray) -> DemoSpace:
    # Names.
    streets = [StreetSpec(code, names.STREET_NAMES[code[6:]], _as_multi(g))
               for code, g in zip(street_blocks, street_geoms, strict=True)]
    haibin_n = sum(1 for _c, s, _b in communities if s == names.HAIBIN_CODE)
    haibin_names = names.haibin_community_names(haibin_n)
    other_names = iter(names.community_names(len(communities) - haibin_n, reserved=haibin_names))
    hb_iter = iter(haibin_names)
    comm_name = {code: next(hb_iter) if s == names.HAIBIN_CODE else next(other_names) for code, s, _b in communities}

    block_pick = (rand.u("compound", np.arange(len(blocks))) * 1_000_000).astype(np.int64)
    compound = [names.compound_name(int(block_pick[b]), _TYPES[blocks.btype[b]]) for b in range(len(blocks))]

    grid_hh = np.bincount(bgrid, weights=households, minlength=len(grids)).astype(np.int64)
    grid_specs = []
    for gi, ((code, comm_code, bl), g) in enumerate(zip(grids, grid_geoms, strict=True)):
        seq = int(code[-3:])
        if rand.one("grid_name", min(bl)) < 0.3:
            main = max(bl, key=lambda b: (blocks.budget[b] if blocks.btype[b] < 5 else -1, -b))
            name = f"{compound[main]}网格"
        else:
            name = f"第{seq}网格"
        grid_specs.append(GridSpec(code, comm_code, name, int(grid_hh[gi]), _as_multi(g)))

    comm_of_grid = np.array([[c for c, _s, _b in communities].index(cc) for _g, cc, _b in grids])
    comm_hh = np.bincount(comm_of_grid, weights=grid_hh, minlength=len(communities)).astype(np.int64)
    comm_specs = []
    for ci, ((code, street_code, _bl), g) in enumerate(zip(communities, comm_geoms, strict=True)):
        residents = int(comm_hh[ci] * (2.6 + 0.5 * rand.one("residents", int(code))))
        comm_specs.append(CommunitySpec(code, street_code, comm_name[code], residents, int(comm_hh[ci]), _as_multi(g)))

    buildings = _building_table(blocks, bld, bgeoms, households, bgrid, grids, comm_of_grid, communities, compound)
    centres = _centres(rand, streets, comm_specs, comm_name, buildings, blocks, bld)
    return DemoSpace(scale, seed, streets, comm_specs, grid_specs, buildings, centres, outline)


def _building_table(blocks: _Blocks, bld: _Buildings, geom_wgs: np.ndarray, households: np.ndarray, bgrid: np.ndarray,
                    grids: list[tuple[str, str, list[int]]], comm_of_grid: np.ndarray,
                    communities: list[tuple[str, str, list[int]]], compound: list[str]) -> BuildingTable:
    comm_idx = comm_of_grid[bgrid]
    grid_seq = np.array([int(g[0][-3:]) for g in grids])[bgrid]
    order = np.lexsort((bld.slot, bld.block, grid_seq, comm_idx))
    comm_sorted = comm_idx[order]
    first = np.r_[True, comm_sorted[1:] != comm_sorted[:-1]]
    seq = np.arange(len(order)) - np.flatnonzero(first)[np.cumsum(first) - 1] + 1
    if len(seq) and seq.max() > 9999:
        raise DemoGeometryError("单个社区楼栋超过 9999 栋，楼栋编码（社区编码+4位序号）不够用")
    comm_codes = [c for c, _s, _b in communities]

    n_rows, n_cols = blocks.n_rows, blocks.n_cols
    codes, bnames, addrs, kinds, cc, gc = [], [], [], [], [], []
    for pos, i in enumerate(order.tolist()):
        b = int(bld.block[i])
        n = int(bld.rank[i])
        ccode = comm_codes[comm_idx[i]]
        codes.append(f"{ccode}{seq[pos]:04d}")
        cc.append(ccode)
        gc.append(grids[bgrid[i]][0])
        kinds.append(str(bld.kind[i]))
        place = compound[b]
        row, col = int(blocks.row[b]), int(blocks.col[b])
        if blocks.btype[b] == _TYPES.index("house") and bld.kind[i] != "commercial":
            bnames.append(f"{place}{n}号")
            road = names.ns_road(col, min(2, 3 * row // max(n_rows, 1)))
            addrs.append(f"{road}{place}{(n - 1) // 8 + 1}巷{(n - 1) % 8 + 1}号")
            continue
        suffix = "配套用房" if bld.kind[i] == "commercial" and blocks.btype[b] < 5 else ""
        bnames.append(f"{place}{suffix}{n}栋")
        if (b * 2654435761) % 2:
            road = names.ns_road(col, min(2, 3 * row // max(n_rows, 1)))
            number = row * 20 + 1
        else:
            road = names.ew_road(row, min(2, 3 * col // max(n_cols, 1)))
            number = col * 20 + 2
        addrs.append(f"{road}{number}号{n}栋")
    return BuildingTable(
        code=codes, name=bnames, address=addrs, kind=kinds, community_code=cc, grid_code=gc,
        households=households[order], floors=bld.floors[order], geom=geom_wgs[order],
    )


def _centres(rand: _Rand, streets: list[StreetSpec], communities: list[CommunitySpec], comm_name: dict[str, str],
             buildings: BuildingTable, blocks: _Blocks, bld: _Buildings) -> list[CentreSpec]:
    """One 党群服务中心 per street and per community, in a public or commercial building near the
    middle of its area (the building nearest the area's representative point)."""
    centroids = shapely.centroid(buildings.geom)
    xy = shapely.get_coordinates(centroids)
    kinds = np.array(buildings.kind, dtype=object)
    preferred = np.isin(kinds, ["public", "commercial", "mixed"])
    comm_arr = np.array(buildings.community_code, dtype=object)
    street_arr = np.array([c[:9] for c in buildings.community_code], dtype=object)
    out: list[CentreSpec] = []

    def pick(mask: np.ndarray, area: shapely.Geometry) -> int:
        p = shapely.get_coordinates(shapely.point_on_surface(area))[0]
        cand = np.flatnonzero(mask & preferred)
        if not len(cand):
            cand = np.flatnonzero(mask)
        d = np.hypot(xy[cand, 0] - p[0], (xy[cand, 1] - p[1]))
        return int(cand[np.argmin(d)])

    for s in streets:
        i = pick(street_arr == s.code, s.geom)
        out.append(CentreSpec(f"SC{s.code}", f"{s.name}党群服务中心", "street", s.code, None,
                              buildings.address[i], STREET_CENTRE_RADIUS_M, centroids[i]))
    for c in communities:
        i = pick(comm_arr == c.code, c.geom)
        radius = int(500 + 300 * rand.one("centre_radius", int(c.code)))
        out.append(CentreSpec(f"SC{c.code}", f"{comm_name[c.code]}党群服务中心", "community", c.street_code,
                              c.code, buildings.address[i], radius // 50 * 50, centroids[i]))
    return out


def _check_space(space: DemoSpace, bgrid: np.ndarray) -> None:
    grids_by_comm: dict[str, list[shapely.Geometry]] = {}
    for g in space.grids:
        grids_by_comm.setdefault(g.community_code, []).append(g.geom)
        if not GRID_MIN <= g.households <= GRID_MAX:
            raise DemoGeometryError(f"网格 {g.code} 有 {g.households} 户，不在 {GRID_MIN}–{GRID_MAX} 户之间")
    comms_by_street: dict[str, list[shapely.Geometry]] = {}
    for c in space.communities:
        comms_by_street.setdefault(c.street_code, []).append(c.geom)
        _check_partition(c.geom, np.array(grids_by_comm[c.code], dtype=object), f"社区 {c.code} 的网格")
    for s in space.streets:
        _check_partition(s.geom, np.array(comms_by_street[s.code], dtype=object), f"街道 {s.code} 的社区")
    street_geoms = np.array([s.geom for s in space.streets], dtype=object)
    if len(street_geoms) > 1 and not shapely.coverage_is_valid(street_geoms):
        raise DemoGeometryError("街道之间有重叠")
    # Along the outline the blocks follow it to within millimetres (the 1 cm noding grid and the
    # round trip through the local projection): allow at most a 1 cm band along its perimeter.
    m_per_deg = 111_320.0
    outside_m2 = float(shapely.area(shapely.difference(shapely.coverage_union_all(street_geoms), space.outline)))
    outside_m2 *= m_per_deg**2 * math.cos(math.radians(21.2))
    if outside_m2 > 0.01 * space.outline.length * m_per_deg:
        raise DemoGeometryError(f"街道超出霞山区边界（约 {outside_m2:.0f} 平方米）")

    grid_geom = {g.code: g.geom for g in space.grids}
    b = space.buildings
    holders = np.array([grid_geom[c] for c in b.grid_code], dtype=object)
    if not shapely.within(b.geom, holders).all():
        raise DemoGeometryError("有楼栋不在所属网格内")
    if not shapely.is_valid(b.geom).all():
        raise DemoGeometryError("有楼栋轮廓无效")
    i, j = shapely.STRtree(b.geom).query(b.geom, predicate="intersects")
    if (i != j).any():
        raise DemoGeometryError(f"有 {int((i != j).sum()) // 2} 对楼栋互相重叠或接触")
