"""manage.py check_rules: Chinese lines for people, JSON with stable codes for scripts."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from orgs.models import PartyMember
from tests.factories import StreetFactory
from tests.orgs_factories import grid_branch_for


def _run(*args) -> str:
    out = StringIO()
    call_command("check_rules", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_prints_violations_in_chinese_and_as_json(space):
    branch = grid_branch_for(space.a1)
    PartyMember.objects.create(name="甲", gender="male", status="full", organisation=branch)

    text = _run("--street", space.street.code, "--date", "2025-06-01")
    assert "【正式党员不足】" in text and branch.name in text and "责任组织" in text
    assert text.strip().endswith("条")

    data = json.loads(_run("--street", space.street.code, "--json"))
    mine = [v for v in data if v["subject_id"] == branch.pk and v["subject_type"] == "org"]
    assert [v["rule_code"] for v in mine] == ["org_too_few_full_members"]
    assert mine[0]["detail"]["full_members"] == 1
    assert set(mine[0]) >= {
        "rule_code",
        "subject_name",
        "responsible_org_id",
        "responsible_org_name",
        "message",
    }


@pytest.mark.django_db
def test_no_violations_and_bad_arguments():
    assert "未发现问题" in _run("--street", StreetFactory().code)
    with pytest.raises(CommandError, match="街道不存在"):
        _run("--street", "999999999")
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        _run("--date", "2025/06/01")
