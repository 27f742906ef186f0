"""manage.py export_units: write streets, communities, grids, buildings or service centres to a file.

Without --user it is the operator's command: the whole database, audited under the OS account that
ran it. With --user NAME the export holds only what that user's reach shows (grid.access), as
export_members does, and the audit row names that user.
"""

from datetime import date

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from edge.errors import DomainError
from grid.access import Reach, reach_for_user
from grid.audit import Actor, acting_as, actor_for_user, command_actor
from grid.exporters import EXPORT_CRS, FORMATS, units_export
from grid.importers import LEVELS


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"日期格式应为 YYYY-MM-DD，收到“{text}”") from None


class Command(BaseCommand):
    help = (
        "导出空间单元为 GeoJSON、GeoPackage、Shapefile（.shp 或 .zip）或 CSV（WKT 列）。"
        "不带 --user 时为运维命令，导出全库；带 --user 时只导出该用户管辖范围内的单元"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("output", help="输出文件；格式按扩展名判断，.zip 为压缩的 Shapefile")
        parser.add_argument("--level", required=True, choices=list(LEVELS), help="单元层级")
        parser.add_argument("--format", choices=FORMATS, help="输出格式（默认按扩展名）")
        parser.add_argument("--crs", default="wgs84", choices=EXPORT_CRS, help="输出坐标系（默认 wgs84）")
        parser.add_argument("--as-of", type=_date, help="网格边界的日期 YYYY-MM-DD（默认今天）")
        parser.add_argument("--community", help="只导出该社区（社区编码）")
        parser.add_argument("--user", help="操作人用户名：按其管辖范围导出，审计日志记其名下（不填则导出全库）")

    def handle(self, *args: object, **options: object) -> None:
        actor, reach = self._actor_and_reach(options["user"])
        with acting_as(actor):
            self._handle(reach=reach, **options)

    @staticmethod
    def _actor_and_reach(username: object) -> tuple[Actor, Reach | None]:
        if not username:
            return command_actor("export_units"), None
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"用户不存在或已停用：{username}")
        return actor_for_user(user), reach_for_user(user)

    def _handle(self, *, reach: Reach | None, **options: object) -> None:
        try:
            result = units_export(
                level=str(options["level"]),
                path=str(options["output"]),
                fmt=options["format"],  # type: ignore[arg-type]
                crs=str(options["crs"]),
                as_of=_date(options["as_of"]) if isinstance(options["as_of"], str) else options["as_of"],  # type: ignore[arg-type]
                community=options["community"],  # type: ignore[arg-type]
                reach=reach,
            )
        except DomainError as exc:
            raise CommandError(f"导出失败 [{exc.code}]：{exc.message}") from exc
        scope = f"{options['user']} 的管辖范围" if reach is not None else "全库"
        self.stdout.write(
            self.style.SUCCESS(
                f"已导出 {result.count} 条到 {result.path}（{result.format}，{result.crs}，{scope}）"
            )
        )
        if result.crs in ("gcj02", "bd09"):
            self.stdout.write(
                f"注意：{result.crs} 没有 EPSG 代码，文件未记录坐标系；再次导入时请加 --crs {result.crs}"
            )
