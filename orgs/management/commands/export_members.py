"""Export the member roster (党员名册) with the import's headers; the reason is required and audited.

With --user the export is that user's, exactly as through the API: their reach, and personal data
in clear only under the one rule of orgs.access.roster_export_unmasked. Without --user it is the
operator's whole-database export, always masked."""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from edge.errors import DomainError
from grid.access import Reach, reach_for_user
from grid.audit import Actor, acting_as, actor_for_user
from grid.models import Community
from orgs.access import roster_export_unmasked
from orgs.roster import members_export
from orgs.selectors import members_for_export


class Command(BaseCommand):
    help = "导出党员名册（.xlsx 或 .csv）；明文身份证号和电话需“可导出个人信息”权限，须填写事由"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("output", help="输出文件（.xlsx 或 .csv）")
        parser.add_argument("--community", help="只导出该社区（编码）的党员（居住或所在党组织在该社区）")
        parser.add_argument("--reason", required=True, help="导出事由（必填，记入审计日志）")
        parser.add_argument("--user", help="操作人用户名：按其管辖范围导出；有导出个人信息权限时不脱敏")

    def handle(self, *args: object, **options: object) -> None:
        reason = str(options["reason"] or "").strip()
        if not reason:
            raise CommandError("必须用 --reason 填写导出事由")
        user = None
        reach = Reach(everything=True)
        actor = Actor(user_id=None, name="export_members")
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"], is_active=True).first()
            if user is None:
                raise CommandError(f"用户不存在或已停用：{options['user']}")
            actor, reach = actor_for_user(user), reach_for_user(user)
        community = None
        if options["community"]:
            community = Community.objects.filter(code=options["community"]).first()
            if community is None:
                raise CommandError(f"社区不存在：{options['community']}")
        members = members_for_export(reach=reach, community=community)
        unmasked = user is not None and roster_export_unmasked(user=user, reach=reach, members=members)
        try:
            with acting_as(actor):
                count = members_export(
                    members=members,
                    path=Path(str(options["output"])),
                    reason=reason,
                    unmasked=unmasked,
                    street_id=community.street_id if community else None,
                    scope=f"社区 {community.code}" if community else "",
                )
        except DomainError as exc:
            raise CommandError(f"{exc.message}（{exc.code}）") from exc
        note = "含明文个人信息" if unmasked else "身份证号和电话已脱敏"
        self.stdout.write(self.style.SUCCESS(f"已导出{count}名党员到 {options['output']}（{note}）"))
