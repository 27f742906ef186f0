"""Print the rule violations (DOMAIN.md's checkable rules) for one street or all, in Chinese or JSON."""

import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError, CommandParser

from grid.models import Street
from orgs.rules import RULE_CODES, rules_check


class Command(BaseCommand):
    help = "检查党组织设置、换届、大工委/大党委、社区工作者配备和两新组织覆盖规则"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--street", help="街道编码（9位）；不填则检查全部街道")
        parser.add_argument("--date", help="按此日期检查（YYYY-MM-DD），默认今天")
        parser.add_argument("--json", action="store_true", help="输出 JSON（含稳定的规则代码）")

    def handle(self, *args: object, **options: object) -> None:
        street = None
        if options["street"]:
            street = Street.objects.filter(code=options["street"]).first()
            if street is None:
                raise CommandError(f"街道不存在：{options['street']}")
        today = None
        if options["date"]:
            try:
                today = date.fromisoformat(str(options["date"]))
            except ValueError as exc:
                raise CommandError(f"日期格式应为 YYYY-MM-DD：{options['date']}") from exc
        violations = rules_check(street=street, today=today)
        if options["json"]:
            self.stdout.write(json.dumps([v.as_dict() for v in violations], ensure_ascii=False, indent=2))
            return
        if not violations:
            self.stdout.write(self.style.SUCCESS("未发现问题"))
            return
        for v in violations:
            label = RULE_CODES.get(v.rule_code, v.rule_code)
            self.stdout.write(f"【{label}】{v.message}（责任组织：{v.responsible_org_name}）")
        self.stdout.write(f"共 {len(violations)} 条")
