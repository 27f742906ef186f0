"""manage.py import_units: load streets, communities, grids, buildings or service centres from a file.

An operator's data-loading command: it takes no user and no reach (it writes wherever the file
says), so it is for whoever runs the server, not for street staff. The import writes one audit row
under the OS account that ran it (grid.importers._audit_import)."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError, CommandParser

from edge.errors import DomainError
from grid.audit import acting_as, command_actor
from grid.importers import LEVELS, ImportRejected, units_import

# A rejected file can list thousands of features; the first ones are enough to act on.
MAX_LISTED_ISSUES = 200


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"日期格式应为 YYYY-MM-DD，收到“{text}”") from None


def _listing(issues: list) -> str:
    lines = [issue.as_text() for issue in issues[:MAX_LISTED_ISSUES]]
    if len(issues) > MAX_LISTED_ISSUES:
        lines.append(f"……另有 {len(issues) - MAX_LISTED_ISSUES} 条未列出")
    return "\n".join(lines)


class Command(BaseCommand):
    help = (
        "从 GeoJSON、Shapefile（.shp 或 .zip）、GeoPackage 或 CSV 导入空间单元（按编码新增或更新）。"
        "运维人员的数据装载命令：不区分用户、不限管辖范围，可写入全库；每次导入记一条审计日志"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="要导入的文件")
        parser.add_argument("--level", required=True, choices=list(LEVELS), help="单元层级")
        parser.add_argument(
            "--crs", help="坐标系：wgs84、cgcs2000、gcj02、bd09 或 EPSG:代码（优先于文件自带的）"
        )
        parser.add_argument("--code-field", default="code", help="编码字段名（默认 code）")
        parser.add_argument("--name-field", default="name", help="名称字段名（默认 name）")
        parser.add_argument("--layer", help="图层名（GeoPackage、多图层文件）")
        parser.add_argument("--valid-from", type=_date, help="网格边界生效日期 YYYY-MM-DD（默认今天）")
        parser.add_argument("--partial", action="store_true", help="只导入合格要素，不合格的列在报告中")

    def handle(self, *args: object, **options: object) -> None:
        with acting_as(command_actor("import_units")):
            self._handle(**options)

    def _handle(self, **options: object) -> None:
        try:
            report = units_import(
                level=str(options["level"]),
                path=str(options["file"]),
                crs=options["crs"],  # type: ignore[arg-type]
                code_field=str(options["code_field"]),
                name_field=str(options["name_field"]),
                layer=options["layer"],  # type: ignore[arg-type]
                valid_from=_date(options["valid_from"])
                if isinstance(options["valid_from"], str)
                else options["valid_from"],  # type: ignore[arg-type]
                partial=bool(options["partial"]),
                progress=self.stdout.write,
            )
        except ImportRejected as exc:
            if exc.report is None:  # the whole file: its one issue is the message itself
                raise CommandError(f"导入失败 [{exc.code}]：{exc.message}") from exc
            listing = _listing(exc.issues)
            raise CommandError(
                f"导入失败 [{exc.code}]：{exc.message}\n{listing}\n{exc.report.summary()}"
            ) from exc
        except DomainError as exc:
            raise CommandError(f"导入失败 [{exc.code}]：{exc.message}") from exc
        if report.issues:
            self.stdout.write(_listing(report.issues))
        self.stdout.write(self.style.SUCCESS(f"导入完成：{report.summary()}"))
