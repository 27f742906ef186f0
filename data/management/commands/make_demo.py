"""Build the demo data set inside the real outline of 霞山区: space, party organisations and people.
Idempotent: same scale and seed (and day), same data; a second run changes nothing."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, IntegrityError

from data.demo import DemoGeometryError, DemoOrgsError, demo_build
from data.demo_space import SCALES
from grid.audit import Actor, acting_as

DEFAULT_SEED = 7

LABELS = {
    "streets": "街道", "communities": "社区", "grid_cells": "网格", "buildings": "楼栋", "service_centres": "服务中心",
    "boundaries": "网格边界", "cadres": "干部（党建指导员）", "enterprises": "两新组织", "party_orgs": "党组织",
    "org_buildings": "党小组楼栋", "party_members": "党员", "grid_workers": "网格员", "worker_cells": "网格员负责网格",
    "stationed_cadres": "驻点干部", "committee_seats": "大工委/大党委委员", "seat_communities": "委员分片联系社区",
    "rectifications": "软弱涣散整顿", "star_ratings": "星级评定",
    "probationary": "其中预备党员", "double_reported": "其中双报到", "full_time_workers": "其中专职",
    "visits": "走访记录", "station_contacts": "驻点联系记录",
}
GAP_LABELS = {
    "grids_without_branch": "未建网格党支部的网格", "buildings_without_group": "党员3名以上未建党小组的楼栋",
    "members_without_org": "未纳入组织管理的党员", "enterprises_needs_org": "党员3名以上未单独组建的两新组织",
    "enterprises_uncovered": "未覆盖的两新组织（党建空白点）", "grids_without_worker": "无网格员的网格",
    "community_short_of_staff": "专职社区工作者不足的社区", "crowded_grid_branch": "“小马拉大车”的网格党支部",
    "term_expiring": "90天内任期届满", "term_overdue": "逾期未换届", "weak_orgs": "软弱涣散（整顿中）",
    "big_committee_short_of_heads": "驻区单位委员不足三分之一的大工委",
}
EVENT_GAP_LABELS = {"unvisited_buildings": "近60天未走访的住宅楼栋", "neglected_grids": "走访明显不足的网格",
                    "cadres_below_required_days": "驻点天数不足的驻点干部"}
CODE_LABELS = {"street": "演示街道", "community": "社区", "grid": "网格（有支部、有网格员）",
               "grid_without_branch": "未建支部的网格", "community_short_of_staff": "人手不足的社区"}


class Command(BaseCommand):
    help = "生成演示数据：霞山区内的街道、社区、网格、楼栋和党群服务中心（可重复运行，结果相同）"

    def add_arguments(self, parser):
        parser.add_argument("--scale", choices=SCALES, default="demo",
                            help="demo：海滨街道一个街道；district：全区约20个街道、10万栋楼")
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"随机种子（默认 {DEFAULT_SEED}）")

    def handle(self, *args, scale: str, seed: int, **options):
        if getattr(settings, "PRODUCTION", False):
            raise CommandError("生产模式下不生成演示数据")
        self.stdout.write(f"生成演示数据：规模 {scale}，种子 {seed}")
        try:
            with acting_as(Actor(user_id=None, name="make_demo")):
                summary = demo_build(scale=scale, seed=seed, progress=lambda msg: self.stdout.write(f"  {msg}"))
        except DemoGeometryError as exc:
            raise CommandError(f"生成的空间数据未通过校验，未写入任何数据：{exc}") from exc
        except DemoOrgsError as exc:
            raise CommandError(str(exc)) from exc
        except IntegrityError as exc:
            raise CommandError(
                f"旧的演示数据仍被其他数据引用（如组织、党员），无法替换，未写入任何数据：{exc}"
            ) from exc
        except DatabaseError as exc:
            raise CommandError(f"写入数据库失败，未写入任何数据：{exc}") from exc

        s = summary
        self.stdout.write(
            f"完成（{s.seconds:.1f} 秒）：街道 {s.streets} 个，社区 {s.communities} 个，网格 {s.grid_cells} 个，"
            f"楼栋 {s.buildings} 栋（{s.households} 户），党群服务中心 {s.service_centres} 个"
        )
        self._report_orgs(s)
        self._report_events(s)
        labels = LABELS
        if not s.changed:
            self.stdout.write(self.style.SUCCESS("数据库中已是这一规模和种子的演示数据，没有任何改动"))
            return
        for title, counts in (("新增", s.created), ("更新", s.updated), ("删除", s.deleted)):
            parts = [f"{labels.get(k, k)} {v}" for k, v in counts.items() if v]
            if parts:
                self.stdout.write(f"  {title}：{'，'.join(parts)}")
        self.stdout.write(
            f"  网格边界：新建 {s.boundaries_created}，更正 {s.boundaries_changed}，未变 {s.boundaries_unchanged}"
        )
        self.stdout.write(self.style.SUCCESS("演示数据已就绪"))

    def _report_events(self, s) -> None:
        if getattr(s, "events", None) is None:
            return
        c, g = s.events.counts, s.events.gaps
        self.stdout.write(
            f"近60天走访 {c['visits']} 条（入户 {c['visits_household']}，楼栋巡查 {c['visits_building']}，"
            f"两新组织 {c['visits_enterprise']}，其他 {c['visits_other']}）；"
            f"驻点签到 {c['check_ins']} 次，联系群众 {c['contacts']} 次"
        )
        gaps = "，".join(f"{EVENT_GAP_LABELS.get(k, k)} {v}" for k, v in g.items() if v)
        if gaps:
            self.stdout.write(f"有意留下的走访缺口：{gaps}")

    def _report_orgs(self, s) -> None:
        if s.orgs is None:
            return
        from orgs.models import PartyMember, PartyOrganisation

        c = s.orgs.counts
        kinds = "，".join(f"{PartyOrganisation.Kind(k.split(':', 1)[1]).label} {v}"
                         for k, v in c.items() if k.startswith("org:"))
        categories = "，".join(f"{PartyMember.Category(k.split(':', 1)[1]).label} {v}"
                              for k, v in c.items() if k.startswith("category:"))
        self.stdout.write(f"党组织：{kinds}")
        self.stdout.write(f"党员 {c['party_members']} 名（预备党员 {c['probationary']}，双报到 {c['double_reported']}）："
                          f"{categories}")
        self.stdout.write(
            f"两新组织 {c['enterprises']} 个；网格员 {c['grid_workers']} 名（专职 {c['full_time_workers']}）；"
            f"驻点干部 {c['stationed_cadres']} 名；党建指导员 {c['cadres']} 名；大工委/大党委委员 {c['committee_seats']} 名；"
            f"软弱涣散整顿 {c['rectifications']} 条；星级评定 {c['star_ratings']} 条"
        )
        gaps = "，".join(f"{GAP_LABELS.get(k, k)} {v}" for k, v in s.orgs.gaps.items() if v)
        self.stdout.write(f"有意留下的缺口和问题：{gaps}")
        codes = "，".join(f"{CODE_LABELS.get(k, k)} {v}" for k, v in s.orgs.codes.items())
        self.stdout.write(f"演示用编码：{codes}")
