"""What the buildings tile styles a building by, precomputed (楼栋状态): derived data, like Gap.
The grid cells tile's counts per cell (GridCellStatus) are kept the same way.

The buildings tile colours each footprint by its status (has a building group / party members
living there without one / not visited within the interval). Computed per tile, that is three
lookups per building (members living there, a building group naming it, its latest visit): on a
dense z14 tile of 3,000 footprints they cost more than the tile's geometry. So the gap recompute
(mapping.services.gaps_recompute, which already reads the same facts for the building gaps)
writes them per building, set-based, in its transaction, and the tile joins one row per building.

The facts are stored, not the status: whether the last visit is within the interval depends on
the day, which the tile statement decides (`last_visit_at` against its window), so a status never
goes stale at midnight.

A community's rows are only used while they are current: BuildingStatusVersion holds, per
community, the data version (grid.Community.data_version) the rows were computed at, read in the
same statement (one snapshot) as the facts. Every write bumps the version (grid.changes), so from
the write's commit until the recompute that follows it the tile computes that community's
statuses itself, as before, and a fixed building never shows its old colour. No foreign keys: the
rows are a cache of other tables, and the bulk loaders delete buildings and communities with raw
SQL (data.sql) that must not trip over them; a row whose building is gone is never joined, and
the full recompute deletes it.
"""

from __future__ import annotations

from django.db import models


class BuildingStatus(models.Model):
    """The facts behind one building's status, as the last recompute of its community found them."""

    building_id = models.BigIntegerField("楼栋", primary_key=True)
    # Party members whose residence is the building, of any status (the gap statements' count).
    members = models.PositiveIntegerField("居住党员数")
    # An organisation of kind building_group names the building.
    has_group = models.BooleanField("已建楼栋党小组")
    # The latest visit naming the building, ever (the tile compares it with its visit window).
    last_visit_at = models.DateTimeField("最近走访时间", null=True)

    class Meta:
        verbose_name = "楼栋状态（地图用）"
        verbose_name_plural = "楼栋状态（地图用）"

    def __str__(self) -> str:
        return f"楼栋 {self.building_id}：党员 {self.members} 名"


class GridCellStatus(models.Model):
    """The grid cells tile's counts of one cell (its buildings and their households), as the last
    recompute of its community found them: per cell they were a scan of its ~50 buildings, 9 of a
    z12 tile's 12 ms."""

    cell_id = models.BigIntegerField("网格", primary_key=True)
    buildings = models.PositiveIntegerField("楼栋数")
    households = models.PositiveIntegerField("户数")

    class Meta:
        verbose_name = "网格统计（地图用）"
        verbose_name_plural = "网格统计（地图用）"

    def __str__(self) -> str:
        return f"网格 {self.cell_id}：楼栋 {self.buildings} 栋"


class BuildingStatusVersion(models.Model):
    """Per community: the data version its BuildingStatus and GridCellStatus rows were computed at."""

    community_id = models.BigIntegerField("社区", primary_key=True)
    data_version = models.PositiveBigIntegerField("数据版本")

    class Meta:
        verbose_name = "楼栋状态版本"
        verbose_name_plural = "楼栋状态版本"

    def __str__(self) -> str:
        return f"社区 {self.community_id}：数据版本 {self.data_version}"
