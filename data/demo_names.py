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


# ------------------------------------------------------------------------------------------------
# People and organisations (data/demo_orgs.py)
# ------------------------------------------------------------------------------------------------

# Surnames, most frequent first, weighted roughly as in western Guangdong (陈, 李, 黄, 林 lead).
SURNAMES: list[tuple[str, int]] = [
    ("陈", 120), ("李", 80), ("黄", 75), ("林", 60), ("梁", 45), ("吴", 40), ("张", 38), ("王", 35),
    ("何", 30), ("杨", 28), ("莫", 24), ("庞", 22), ("钟", 20), ("冯", 20), ("邓", 18), ("谢", 18),
    ("许", 16), ("郑", 16), ("彭", 15), ("罗", 15), ("周", 14), ("刘", 14), ("蔡", 13), ("叶", 12),
    ("苏", 12), ("洪", 11), ("符", 11), ("詹", 10), ("全", 9), ("揭", 8), ("宋", 8), ("邱", 8),
    ("潘", 8), ("麦", 7), ("龙", 7), ("朱", 7), ("曾", 7), ("韩", 6), ("唐", 6), ("方", 6),
    ("卢", 6), ("孙", 5), ("徐", 5), ("胡", 5), ("吕", 5), ("温", 5), ("程", 4), ("柯", 4),
    ("欧阳", 2), ("司徒", 1),
]
GIVEN_MALE = list("伟强军明华建国志勇斌杰峰涛辉鹏飞宇浩俊文海东平波林荣坚锋家振兴德福耀光庆新成")
GIVEN_FEMALE = list("芳丽敏静燕娟霞玲艳红英梅莉婷雪慧琳洁萍婉颖秀兰凤珍琴晶欣怡嘉惠彩月")
GIVEN_ANY = list("子一永少晓春秋志玉金小思家嘉俊晓宏瑞伟文")

# 两新组织: name = place stem + trade + form.
ENTERPRISE_STEMS = ["海滨", "港湾", "南粤", "湛蓝", "金海", "银帆", "椰风", "粤西", "鸿达", "恒信", "华盛", "宏图",
                    "新港", "海韵", "蓝海", "凯达", "盛和", "永丰", "广源", "嘉华", "联发", "益民", "润通", "众信",
                    "百川", "海鸿", "昌盛", "裕丰", "星河", "天成"]
ENTERPRISE_TRADES = ["贸易", "物流", "水产", "餐饮", "信息科技", "物业管理", "建筑装饰", "电子商务", "医药连锁",
                     "酒店管理", "文化传媒", "教育咨询", "汽车服务", "海运代理", "食品", "家居建材"]
ENTERPRISE_FORMS = ["有限公司", "有限公司", "有限公司", "股份有限公司", "商行"]
FACTORY_TRADES = ["水产加工", "饲料", "机械制造", "包装材料", "电器", "船舶修造", "海产品冷链"]
SOCIAL_ORG_NAMES = ["社会工作服务中心", "志愿者协会", "养老服务中心", "商会", "青少年服务中心", "慈善会",
                    "个体劳动者协会", "家政服务协会", "文化艺术协会", "残疾人康复服务中心"]

# 驻区单位: templates by size (members low, high). {s} = street stem, {n} = a number.
RESIDENT_UNITS: list[tuple[str, int, int]] = [
    ("湛江市第{n}中学", 20, 45),
    ("霞山区{s}小学", 10, 22),
    ("湛江市第{n}人民医院", 110, 160),
    ("霞山区{s}社区卫生服务中心", 8, 16),
    ("湛江港集团{s}港务分公司", 55, 90),
    ("国家税务总局湛江市霞山区税务局{s}税务分局", 10, 20),
    ("中国工商银行湛江{s}支行", 8, 18),
    ("国网湛江供电局{s}供电所", 9, 20),
    ("中国移动湛江分公司{s}营业部", 5, 12),
    ("湛江市公安局霞山分局{s}派出所", 12, 30),
]

WEAK_REASONS = [
    "班子软弱涣散，书记长期缺位",
    "组织生活不正常，“三会一课”落实不到位",
    "逾期未按期换届",
    "党员教育管理松散，流动党员长期失联",
    "服务群众意识淡薄，群众反映问题长期得不到解决",
]
WEAK_MEASURES = [
    "街道党工委班子成员挂点联系，选派第一书记，每月督导组织生活",
    "调整充实支部班子，建立整顿台账，按月销号",
    "开展党员集中排查，逐一联系失联党员，规范党费收缴",
]
