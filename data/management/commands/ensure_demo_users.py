"""Create the demo logins that ops/up prints. Idempotent; refused in production mode."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

# Demo credentials for a local machine, printed by ops/up; never created in production mode.
DEMO_USERS = [
    # username, password, superuser, display name
    ("admin", "wangge-admin-2026", True, "系统运维"),  # noqa: S106
    ("haibin", "wangge-demo-2026", False, "海滨街道管理员"),  # noqa: S106
]
STREET_ADMIN_GROUP = "街道管理员"


class Command(BaseCommand):
    help = "创建演示账号（仅开发/演示环境）"

    @transaction.atomic
    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("生产模式下不创建演示账号")
        group, _ = Group.objects.get_or_create(name=STREET_ADMIN_GROUP)
        group.permissions.set(Permission.objects.filter(content_type__app_label__in=["grid", "orgs", "mapping"]))
        user_model = get_user_model()
        for username, password, superuser, display in DEMO_USERS:
            user, created = user_model.objects.get_or_create(username=username)
            user.first_name = display
            user.is_staff = True
            user.is_superuser = superuser
            if created or not user.check_password(password):
                user.set_password(password)
            user.save()
            if not superuser:
                user.groups.add(group)
            self.stdout.write(f"{'新建' if created else '已存在'}账号 {username}（{display}）")
