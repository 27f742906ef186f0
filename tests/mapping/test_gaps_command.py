"""manage.py compute_gaps [--street CODE | --community CODE]."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from mapping.models import Gap
from tests.factories import CommunityFactory, StreetFactory, multi, square
from tests.mapping.conftest import Scene

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("compute_gaps", *args, stdout=out)
    return out.getvalue()


def test_one_community_prints_each_kind_and_a_second_run_opens_nothing(scene: Scene):
    s = scene
    text = run("--community", s.a.code)
    assert "网格未建党支部（grid_without_branch）：新发现 1，仍存在 0，已消除 0" in text
    assert "楼栋有党员未建党小组（building_without_group）：新发现 1，仍存在 0，已消除 0" in text
    # The run counts from now (visits and check-ins age): the totals are what the table holds.
    n = Gap.objects.filter(community=s.a).count()
    assert "共计算社区 1 个，用时" in text and f"秒：新发现 {n}，仍存在 0，已消除 0" in text
    assert not Gap.objects.exclude(community=s.a).exists()
    again = run("--community", s.a.code)
    assert f"秒：新发现 0，仍存在 {n}，已消除 0" in again


def test_a_street_or_everything_goes_street_by_street_with_progress(scene: Scene):
    s = scene
    text = run("--street", s.street.code)
    assert "共计算社区 3 个" in text and "[1/" not in text
    other = StreetFactory(geom=multi(square(110.30, 21.15, 0.01)))
    CommunityFactory(street=other, geom=multi(square(110.30, 21.15, 0.01)))
    text = run()
    assert f"[1/2] {s.street}：社区 3 个，新发现 0" in text
    assert f"[2/2] {other}：社区 1 个，新发现 2，仍存在 0，已消除 0" in text
    assert "共计算社区 4 个" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--street", "440803999"], "街道不存在：440803999"),
        (["--community", "abc"], "社区不存在：abc"),
        (["--street", "x", "--community", "y"], "--street 和 --community 只能选一个"),
    ],
)
def test_bad_arguments_are_a_chinese_error_and_write_nothing(scene: Scene, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not Gap.objects.exists()
