"""Recompute the coverage gaps (兜底管理) of one community, one street or everything, and print
what opened, stayed open and was resolved, per kind.

A whole district runs street by street, one transaction each, with a line per street as it goes:
a street's communities are recomputed together, so a subject that moved between two of them (a
member who moved house) keeps its open gap. Between streets that is not so: a member who moved to
another street shows one gap resolved and one opened (the nightly full run, which is one
transaction, never does).
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from grid.models import Community, Street
from mapping.models import Gap
from mapping.services import OUTCOMES, counts_by_kind, gaps_recompute

OUTCOME_LABELS = {"opened": "新发现", "still_open": "仍存在", "resolved": "已消除"}


class Command(BaseCommand):
    help = "重新计算覆盖缺口（兜底管理），按类型输出新发现、仍存在和已消除的数量"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--street", help="街道编码（9位）：只计算该街道的社区")
        parser.add_argument("--community", help="社区编码（12位）：只计算该社区")

    def handle(self, *args: object, **options: object) -> None:
        street_code, community_code = options["street"], options["community"]
        if street_code and community_code:
            raise CommandError("--street 和 --community 只能选一个")
        started = time.monotonic()
        if community_code:
            community = Community.objects.filter(code=str(community_code).strip()).first()
            if community is None:
                raise CommandError(f"社区不存在：{community_code}（社区编码为12位数字）")
            batches = [(str(community), [community.pk])]
        elif street_code:
            street = Street.objects.filter(code=str(street_code).strip()).first()
            if street is None:
                raise CommandError(f"街道不存在：{street_code}（街道编码为9位数字）")
            batches = [(str(street), list(street.communities.values_list("pk", flat=True)))]
        else:
            batches = [
                (str(street), list(street.communities.values_list("pk", flat=True)))
                for street in Street.objects.order_by("code")
            ]
        totals: dict[str, int] = {}
        for i, (label, ids) in enumerate(batches, start=1):
            try:
                counts = gaps_recompute(community_ids=ids)
            except DatabaseError as exc:
                raise CommandError(f"计算{label}的覆盖缺口失败，该范围未写入任何数据：{exc}") from exc
            for key, n in counts.items():
                totals[key] = totals.get(key, 0) + n
            if len(batches) > 1:
                self.stdout.write(
                    f"[{i}/{len(batches)}] {label}：社区 {counts['communities']} 个，"
                    + "，".join(f"{OUTCOME_LABELS[o]} {counts[o]}" for o in OUTCOMES)
                )
        self._report(totals, time.monotonic() - started)

    def _report(self, totals: dict[str, int], seconds: float) -> None:
        if not totals.get("communities"):
            self.stdout.write("没有可计算的社区")
            return
        labels = dict(Gap.Kind.choices)
        for kind, outcome in counts_by_kind(totals).items():
            if any(outcome.values()):
                self.stdout.write(
                    f"{labels[kind]}（{kind}）："
                    + "，".join(f"{OUTCOME_LABELS[o]} {outcome[o]}" for o in OUTCOMES)
                )
        self.stdout.write(
            self.style.SUCCESS(
                f"共计算社区 {totals['communities']} 个，用时 {seconds:.1f} 秒："
                + "，".join(f"{OUTCOME_LABELS[o]} {totals.get(o, 0)}" for o in OUTCOMES)
            )
        )
