"""The demo logins ops/up prints work, each with its role's reach."""

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from data.management.commands.ensure_demo_users import DEMO_GRID, DEMO_PASSWORD
from grid.models import GridCell, RoleAssignment

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_street():
    call_command("make_demo", "--scale", "demo", verbosity=0)


def test_each_persona_logs_in_and_sees_its_reach(demo_street, client):
    call_command("ensure_demo_users")
    call_command("ensure_demo_users")  # idempotent
    assert RoleAssignment.objects.count() == 6
    # The inactive account that owns the generated events (data/demo_events.py) has no password.
    people = User.objects.filter(is_active=True).exclude(username="admin")
    assert people.count() == 6 and all(u.check_password(DEMO_PASSWORD) for u in people)

    client.force_login(User.objects.get(username="wanggeyuan"))
    codes = [f["properties"]["code"] for f in client.get("/api/grid-cells/").json()["features"]]
    assert codes == [DEMO_GRID]

    client.force_login(User.objects.get(username="haibin"))
    assert client.get("/api/grid-cells/?page_size=1000").json()["count"] == GridCell.objects.count()

    client.force_login(User.objects.get(username="yunwei"))
    assert client.get("/api/grid-cells/").status_code == 403
