"""Create the demo logins that ops/up prints, one per role, each with its reach in the demo street.

Idempotent (run it as often as you like); refused in production mode.
"""

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Q

from grid.models import Community, GridCell, Role, RoleAssignment, Street

DEMO_STREET = "440803006"  # 海滨街道
DEMO_COMMUNITY = "440803006001"  # 海滨社区
DEMO_GRID = "440803006001001"
# Demo credentials for a local machine, printed by ops/up; never created in production mode.
ADMIN_PASSWORD = "wangge-admin-2026"  # noqa: S105
DEMO_PASSWORD = "wangge-demo-2026"  # noqa: S105

# username, display name, role, unit level, permission group
PERSONAS = [
    ("haibin", "海滨街道管理员", Role.STREET_ADMIN, "street", "街道管理员"),
    ("shequ", "海滨社区书记", Role.COMMUNITY_ADMIN, "community", "社区管理员"),
    ("wanggeyuan", "网格员（海滨社区第1网格）", Role.GRID_WORKER, "grid", "只读查看"),
    ("guihua", "规划人员", Role.PLANNER, "street", "规划人员"),
    ("lingdao", "街道领导（只读）", Role.LEADER, "street", "只读查看"),
    ("yunwei", "系统运维（不接触业务数据）", Role.OPERATOR, None, "系统运维"),
]

# Django permissions decide which admin pages a role may open; the reach decides which rows.
GROUP_PERMISSIONS = {
    "街道管理员": Q(content_type__app_label__in=["grid", "orgs"]),
    "社区管理员": Q(content_type__app_label="orgs") | Q(content_type__app_label="grid", codename__startswith="view_"),
    "规划人员": Q(content_type__app_label="grid") | Q(content_type__app_label="orgs", codename__startswith="view_"),
    "只读查看": Q(content_type__app_label__in=["grid", "orgs"], codename__startswith="view_"),
    "系统运维": Q(content_type__app_label__in=["auth", "authtoken"]),
}


class Command(BaseCommand):
    help = "创建演示账号（每种角色一个，仅开发/演示环境）"

    @transaction.atomic
    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("生产模式下不创建演示账号")
        units = {
            "street": Street.objects.filter(code=DEMO_STREET).first(),
            "community": Community.objects.filter(code=DEMO_COMMUNITY).first(),
            "grid": GridCell.objects.filter(code=DEMO_GRID).first(),
        }
        if not all(units.values()):
            raise CommandError("未找到演示街道，请先运行 manage.py make_demo")
        for name, q in GROUP_PERMISSIONS.items():
            group, _ = Group.objects.get_or_create(name=name)
            group.permissions.set(Permission.objects.filter(q))

        self._user("admin", "超级管理员", ADMIN_PASSWORD, superuser=True)
        for username, display, role, level, group_name in PERSONAS:
            user = self._user(username, display, DEMO_PASSWORD, superuser=False)
            user.groups.set([Group.objects.get(name=group_name)])
            # Any: mypy would match a typed dict's ** against get_or_create's `defaults` parameter.
            unit_kwargs: dict[str, Any] = {}
            if level == "street":
                unit_kwargs = {"street": units["street"]}
            elif level == "community":
                unit_kwargs = {"community": units["community"]}
            elif level == "grid":
                unit_kwargs = {"grid_cell": units["grid"]}
            RoleAssignment.objects.get_or_create(user=user, role=role, revoked_at=None, **unit_kwargs)

    def _user(self, username: str, display: str, password: str, *, superuser: bool):
        user, created = get_user_model().objects.get_or_create(username=username)
        user.first_name = display
        user.is_staff = True
        user.is_superuser = superuser
        if created or not user.check_password(password):
            user.set_password(password)
        user.save()
        self.stdout.write(f"{'新建' if created else '已存在'}账号 {username}（{display}）")
        return user
