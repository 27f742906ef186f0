"""Build the demo data set inside the real outline of 霞山区. Idempotent: same scale and seed,
same data; a second run changes nothing."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, IntegrityError

from data.demo import DemoGeometryError, demo_build
from data.demo_space import SCALES
from grid.audit import Actor, acting_as

DEFAULT_SEED = 7


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
        labels = {"streets": "街道", "communities": "社区", "grid_cells": "网格", "buildings": "楼栋",
                  "service_centres": "服务中心", "boundaries": "网格边界"}
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
