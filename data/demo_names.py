"""Names for the demo data set: streets, communities, roads, compounds, grid cells.

The street names are the real 街道 of 霞山区 plus invented ones (the district scale asks for more
streets than the district has); community, road and compound names are invented but follow the
local naming habits (place stems + 社区 / 路 / 花园 …). Nothing here is random: callers pick by
index, so names follow the generator's seed through its deterministic choices.
"""

from __future__ import annotations

# The demo street, always present and always with this code.
HAIBIN_CODE = "440803006"
HAIBIN_NAME = "海滨街道"

# Code suffix -> name. 001–010 are the district's real streets; 011–020 are invented.
STREET_NAMES: dict[str, str] = {
    "001": "解放街道",
    "002": "爱国街道",
    "003": "工农街道",
    "004": "友谊街道",
    "005": "新兴街道",
    "006": HAIBIN_NAME,
    "007": "建设街道",
    "008": "东新街道",
    "009": "新园街道",
    "010": "海头街道",
    "011": "椹川街道",
    "012": "港湾街道",
    "013": "观海街道",
    "014": "绿塘街道",
    "015": "南柳街道",
    "016": "屋山街道",
    "017": "洪屋街道",
    "018": "东堤街道",
    "019": "文明街道",
    "020": "特呈街道",
}

# The demo street's communities take these first, in code order, in both scales.
HAIBIN_COMMUNITY_STEMS = ["海滨", "宝满", "绿荫", "椰林", "海景", "观澜", "渔港", "港湾"]

_COMMUNITY_STEMS = [
    "解放", "爱国", "工农", "友谊", "新兴", "建设", "东新", "新园", "海头", "民主", "中山", "逸仙",
    "人民", "青年", "文明", "南桥", "北桥", "东堤", "西厅", "荷花", "菉塘", "洪屋", "屋山", "椹川",
    "海宁", "海洋", "霞湖", "霞海", "南华", "东风", "红星", "向阳", "光明", "和平", "幸福", "怡福",
    "龙潭", "海湾", "金海", "银海", "滨湖", "湖光", "沙湾", "南屏", "北月", "东华", "西城", "田园",
    "椰风", "榕树", "木棉", "紫荆", "凤凰", "金沙", "望海", "海安", "海韵", "景湖", "鹿岭", "特呈",
    "乐华", "南油", "新港", "工人", "百合", "兴华", "建华", "东方", "文化", "绿塘",
]
_COMMUNITY_VARIANTS = ["", "东", "西", "南", "北", "新", "中"]

# Main roads (every fourth lattice line) and the stems of minor streets.
_MAIN_NS_ROADS = ["人民大道", "椹川大道", "解放路", "民主路", "中山路", "逸仙路", "海滨大道", "观海路", "友谊路"]
_MAIN_EW_ROADS = ["海宁路", "洪屋路", "绿塘路", "建新路", "工农路", "新兴路", "青年路", "荷花路", "菉塘路",
                  "文明路", "延安路", "南桥路", "东堤路", "海港路", "渔港路", "疏港大道"]
_MINOR_STEMS = ["海滨", "宝满", "绿荫", "椰林", "海景", "观澜", "渔港", "金鹰", "银帆", "百合", "紫荆",
                "木棉", "榕荫", "南华", "东风", "霞光", "沙湾", "湖光", "新村", "田园", "平安", "长寿",
                "兴华", "港湾", "明珠", "碧海", "蓝湾", "怡安"]
_MINOR_SUFFIXES = ["路", "街", "一横路", "二横路", "巷", "里"]

_COMPOUND_SUFFIXES = ["花园", "小区", "新村", "雅苑", "家园", "公寓", "豪庭", "大院", "名苑"]
_COMPOUND_STEMS = ["海景", "金海", "银滩", "碧桂", "绿荫", "宝满", "椰林", "观澜", "海悦", "御景",
                   "锦绣", "怡景", "明珠", "港城", "南国", "滨海", "翠湖", "阳光", "和谐", "海逸",
                   "东城", "西湖", "金沙", "海湾", "华景", "美林", "龙腾", "华侨", "电力", "港务"]
_VILLAGE_STEMS = ["洪屋", "屋山", "绿塘", "菉塘", "南柳", "北月", "东山", "麻章", "海头", "文保",
                  "宝满", "椹川", "新坡", "调顺", "沙湾", "霞湖", "南屏", "东堤", "西厅", "百姓"]


def community_names(count: int, *, reserved: list[str]) -> list[str]:
    """`count` distinct community names, none of them in `reserved` (the demo street's)."""
    taken = set(reserved)
    names: list[str] = []
    for variant in _COMMUNITY_VARIANTS:
        for stem in _COMMUNITY_STEMS:
            name = f"{stem}{variant}社区"
            if name not in taken:
                names.append(name)
                taken.add(name)
            if len(names) == count:
                return names
    # More communities than stems × variants: number the rest (not reached at district scale).
    names.extend(f"第{i + 1}社区" for i in range(count - len(names)))
    return names


def haibin_community_names(count: int) -> list[str]:
    stems = HAIBIN_COMMUNITY_STEMS + [f"海滨{c}" for c in "东西南北中新"]
    return [f"{stem}社区" for stem in stems[:count]]


def ns_road(col: int, segment: int) -> str:
    """The north–south road along lattice column line `col`; segment 0/1/2 = 北/中/南."""
    if col % 4 == 0:
        base = _MAIN_NS_ROADS[(col // 4) % len(_MAIN_NS_ROADS)]
        return base + "北中南"[segment]
    stem = _MINOR_STEMS[(col * 7 + 3) % len(_MINOR_STEMS)]
    return stem + _MINOR_SUFFIXES[col % len(_MINOR_SUFFIXES)]


def ew_road(row: int, segment: int) -> str:
    """The east–west road along lattice row line `row`; segment 0/1/2 = 西/中/东."""
    if row % 4 == 0:
        base = _MAIN_EW_ROADS[(row // 4) % len(_MAIN_EW_ROADS)]
        return base + "西中东"[segment]
    stem = _MINOR_STEMS[(row * 11 + 5) % len(_MINOR_STEMS)]
    return stem + _MINOR_SUFFIXES[(row + 2) % len(_MINOR_SUFFIXES)]


def compound_name(pick: int, kind: str) -> str:
    """The name of a block's compound (小区), village (村), campus or park by its block type."""
    if kind == "house":
        return f"{_VILLAGE_STEMS[pick % len(_VILLAGE_STEMS)]}村"
    stem = _COMPOUND_STEMS[pick % len(_COMPOUND_STEMS)]
    if kind == "public":
        return stem + ["小学", "中学", "社区卫生服务中心", "幼儿园", "文化活动中心"][pick % 5]
    if kind == "factory":
        return f"{stem}工业园"
    if kind == "shop":
        return f"{stem}商业广场"
    if kind == "shophouse":
        return f"{stem}商住楼"
    return stem + _COMPOUND_SUFFIXES[(pick // len(_COMPOUND_STEMS)) % len(_COMPOUND_SUFFIXES)]
