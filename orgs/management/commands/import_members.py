"""Import the member roster (党员名册) from an xlsx or csv file with the street office's headers."""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from edge.errors import DomainError
from grid.audit import Actor, acting_as, actor_for_user
from grid.models import Street
from orgs.roster import HEADERS, members_import


class Command(BaseCommand):
    help = "导入党员名册（.xlsx 或 .csv，表头：" + "、".join(HEADERS) + "）"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="名册文件（.xlsx，或 UTF-8/GBK 编码的 .csv）")
        parser.add_argument(
            "--partial", action="store_true", help="有误的行跳过，其余照常导入（默认全部正确才导入）"
        )
        parser.add_argument("--street", help="街道编码（9位）：党组织、楼栋和社区只在该街道内匹配")
        parser.add_argument("--user", help="操作人用户名（记入审计日志）")

    def handle(self, *args: object, **options: object) -> None:
        path = Path(str(options["file"]))
        if not path.is_file():
            raise CommandError(f"文件不存在：{path}")
        street = None
        if options["street"]:
            street = Street.objects.filter(code=options["street"]).first()
            if street is None:
                raise CommandError(f"街道不存在：{options['street']}")
        actor = Actor(user_id=None, name="import_members")
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"用户不存在：{options['user']}")
            actor = actor_for_user(user)
        try:
            with acting_as(actor):
                report = members_import(path=path, partial=bool(options["partial"]), street=street)
        except DomainError as exc:
            raise CommandError(f"{exc.message}（{exc.code}）") from exc
        for error in report.errors:
            self.stderr.write(str(error))
        if report.errors and not report.written:
            raise CommandError(f"{report.summary()}。请改正后重新导入，或使用 --partial 只导入正确的行。")
        self.stdout.write(self.style.SUCCESS(report.summary()))
