"""Space: the units of grid management (网格化管理).

Geometries are stored in WGS-84 (EPSG:4326); CGCS2000 (EPSG:4490) is taken as equal, the two
differing by centimetres. Offset systems (GCJ-02, BD-09) never reach these tables: the import edge
converts them once (grid/coords.py). Lengths and areas are computed on the geography type or with
pyproj's Geod, never in degrees.

A grid cell has a stable identity (its code) and a series of boundary versions, each valid over a
date range; the database refuses two overlapping versions of one cell.
"""

from django.contrib.gis.db import models
from django.contrib.gis.db.models.functions import PointOnSurface
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateRangeField, RangeOperators
from django.core.validators import MinValueValidator, RegexValidator
from django.db.models import Q

STORAGE_SRID = 4326

street_code_validator = RegexValidator(
    r"^\d{9}$", "街道编码应为9位数字（6位区县代码+3位街道序号）", "code_format"
)
community_code_validator = RegexValidator(
    r"^\d{12}$", "社区编码应为12位数字（街道编码+3位社区序号）", "code_format"
)
grid_code_validator = RegexValidator(
    r"^\d{15}$", "网格编码应为15位数字（社区编码+3位网格序号）", "code_format"
)
# Codes nest (DOMAIN.md): a street's code is its district's 6-digit adcode plus 3 digits, a
# community's its street's plus 3, a grid's its community's plus 3. The importer finds a unit's
# parent by this prefix (grid.importers) and the services refuse a parent that does not match it
# (grid.services.code_parent_check): one convention on every path.
PARENT_CODE_LENGTH = {"street": 6, "community": 9, "grid": 12}

unit_code_validator = RegexValidator(
    r"^[0-9A-Za-z_-]{1,32}$", "编码只能包含字母、数字、下划线和连字符，最长32位", "code_format"
)


class TimestampedModel(models.Model):
    created_at = models.DateTimeField("创建时间", auto_now_add=True)
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    class Meta:
        abstract = True


class Street(TimestampedModel):
    """街道: a sub-district run by a street office; the system's top tenant."""

    code = models.CharField("街道编码", max_length=9, unique=True, validators=[street_code_validator])
    name = models.CharField("名称", max_length=64)
    district_adcode = models.CharField("区县代码", max_length=6)
    geom = models.MultiPolygonField("边界", srid=STORAGE_SRID)

    class Meta:
        verbose_name = "街道"
        verbose_name_plural = "街道"
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(code__regex=r"^\d{9}$"), name="street_code_format"),
            models.CheckConstraint(condition=Q(geom__isvalid=True), name="street_geom_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name}（{self.code}）"


class Community(TimestampedModel):
    """社区: a residents' community inside a street, typically 1,500–5,000 households."""

    code = models.CharField("社区编码", max_length=12, unique=True, validators=[community_code_validator])
    street = models.ForeignKey(
        Street, verbose_name="街道", on_delete=models.PROTECT, related_name="communities"
    )
    name = models.CharField("名称", max_length=64)
    residents = models.PositiveIntegerField("常住人口", default=0)
    geom = models.MultiPolygonField("边界", srid=STORAGE_SRID)
    # Bumped by every service that changes what lies in this community; map caches key on it.
    data_version = models.PositiveBigIntegerField("数据版本", default=0, editable=False)

    class Meta:
        verbose_name = "社区"
        verbose_name_plural = "社区"
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(code__regex=r"^\d{12}$"), name="community_code_format"),
            models.CheckConstraint(condition=Q(geom__isvalid=True), name="community_geom_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name}（{self.code}）"


class GridCell(TimestampedModel):
    """网格: the basic management unit (usually 300–500 households). Its shape lives in versions."""

    code = models.CharField("网格编码", max_length=15, unique=True, validators=[grid_code_validator])
    community = models.ForeignKey(
        Community, verbose_name="社区", on_delete=models.PROTECT, related_name="grid_cells"
    )
    name = models.CharField("名称", max_length=64)
    # 责任主体: who answers for this grid. Blank means the territorial body (属地兜底): the
    # community, then the street.
    responsible_body = models.CharField("责任主体", max_length=128, blank=True)

    class Meta:
        verbose_name = "网格"
        verbose_name_plural = "网格"
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(code__regex=r"^\d{15}$"), name="gridcell_code_format"),
        ]

    def __str__(self) -> str:
        return f"{self.name}（{self.code}）"

    @property
    def responsible_body_or_territorial(self) -> str:
        return self.responsible_body or f"{self.community.name}（属地兜底）"


class GridBoundary(models.Model):
    """One version of a grid cell's shape, valid over a half-open date range [from, to)."""

    cell = models.ForeignKey(
        GridCell, verbose_name="网格", on_delete=models.CASCADE, related_name="boundaries"
    )
    geom = models.MultiPolygonField("边界", srid=STORAGE_SRID)
    valid = DateRangeField("有效期")
    note = models.CharField("变更说明", max_length=200, blank=True)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)

    class Meta:
        verbose_name = "网格边界版本"
        verbose_name_plural = "网格边界版本"
        ordering = ["cell", "valid"]
        constraints = [
            ExclusionConstraint(
                name="gridboundary_no_overlapping_versions",
                expressions=[("cell", RangeOperators.EQUAL), ("valid", RangeOperators.OVERLAPS)],
            ),
            models.CheckConstraint(condition=Q(geom__isvalid=True), name="gridboundary_geom_valid"),
            models.CheckConstraint(condition=Q(valid__lower_inf=False), name="gridboundary_has_start"),
            models.CheckConstraint(condition=Q(valid__isempty=False), name="gridboundary_not_empty"),
        ]
        indexes = [
            models.Index(fields=["cell"], condition=Q(valid__upper_inf=True), name="gridboundary_current"),
        ]

    def __str__(self) -> str:
        return f"{self.cell.code} {self.valid.lower}–{self.valid.upper or '至今'}"


class GridBoundaryPart(models.Model):
    """A piece of a boundary cut by ST_Subdivide: point-in-polygon on small pieces is much faster.

    Written only by the service that writes a boundary; never edited by hand.
    """

    boundary = models.ForeignKey(GridBoundary, on_delete=models.CASCADE, related_name="parts")
    geom = models.PolygonField(srid=STORAGE_SRID)

    class Meta:
        verbose_name = "网格边界分块"
        verbose_name_plural = "网格边界分块"


class Building(TimestampedModel):
    """楼栋: one building footprint with its households; assigned to the grid holding most of it."""

    class Kind(models.TextChoices):
        RESIDENTIAL = "residential", "住宅"
        COMMERCIAL = "commercial", "商业"
        MIXED = "mixed", "商住混合"
        PUBLIC = "public", "公共建筑"
        INDUSTRIAL = "industrial", "厂房"

    code = models.CharField("楼栋编码", max_length=32, unique=True, validators=[unit_code_validator])
    name = models.CharField("名称", max_length=64)
    address = models.CharField("地址", max_length=200, blank=True)
    kind = models.CharField("类型", max_length=16, choices=Kind.choices, default=Kind.RESIDENTIAL)
    community = models.ForeignKey(
        Community, verbose_name="社区", on_delete=models.PROTECT, related_name="buildings"
    )
    grid_cell = models.ForeignKey(
        GridCell,
        verbose_name="所属网格",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="buildings",
        editable=False,
        help_text="按占地面积最大份额自动计算，边界变更后自动更新",
    )
    households = models.PositiveIntegerField("户数", default=0)
    floors = models.PositiveSmallIntegerField("层数", default=1, validators=[MinValueValidator(1)])
    geom = models.PolygonField("占地轮廓", srid=STORAGE_SRID)
    # The position is derived by the database from the footprint (a point guaranteed inside it,
    # never the first vertex), so it can never drift from the footprint.
    point = models.GeneratedField(
        expression=PointOnSurface("geom"),
        output_field=models.PointField(srid=STORAGE_SRID),
        db_persist=True,
        verbose_name="位置",
    )

    class Meta:
        verbose_name = "楼栋"
        verbose_name_plural = "楼栋"
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(geom__isvalid=True), name="building_geom_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name}（{self.code}）"


class ServiceCentre(TimestampedModel):
    """党群服务中心: a party-and-public service centre; its reach is a map layer."""

    class Level(models.TextChoices):
        STREET = "street", "街道级"
        COMMUNITY = "community", "社区级"
        STATION = "station", "网格/小区服务站"

    code = models.CharField("编码", max_length=32, unique=True, validators=[unit_code_validator])
    name = models.CharField("名称", max_length=64)
    level = models.CharField("级别", max_length=16, choices=Level.choices)
    street = models.ForeignKey(
        Street, verbose_name="街道", on_delete=models.PROTECT, related_name="service_centres"
    )
    community = models.ForeignKey(
        Community,
        verbose_name="社区",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="service_centres",
    )
    address = models.CharField("地址", max_length=200, blank=True)
    service_radius_m = models.PositiveIntegerField("服务半径（米）", default=1000)
    geom = models.PointField("位置", srid=STORAGE_SRID)

    class Meta:
        verbose_name = "党群服务中心"
        verbose_name_plural = "党群服务中心"
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(level="street") | Q(community__isnull=False), name="servicecentre_community_level"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    """What a user does; where they do it is the unit of their RoleAssignment."""

    STREET_ADMIN = "street_admin", "街道管理员"
    COMMUNITY_ADMIN = "community_admin", "社区书记/管理员"
    GRID_WORKER = "grid_worker", "网格员"
    STATIONED_CADRE = "stationed_cadre", "驻点干部"
    PLANNER = "planner", "规划人员"
    LEADER = "leader", "领导（只读）"
    OPERATOR = "operator", "系统运维"


class RoleAssignment(models.Model):
    """One role of one user over one spatial unit. A user's reach is the union of their rows.

    Revoked rows stay (who had which reach when is part of the audit trail).
    """

    user = models.ForeignKey(
        "auth.User", verbose_name="用户", on_delete=models.CASCADE, related_name="role_assignments"
    )
    role = models.CharField("角色", max_length=20, choices=Role.choices)
    street = models.ForeignKey(Street, verbose_name="街道", on_delete=models.CASCADE, null=True, blank=True)
    community = models.ForeignKey(
        Community, verbose_name="社区", on_delete=models.CASCADE, null=True, blank=True
    )
    grid_cell = models.ForeignKey(
        GridCell, verbose_name="网格", on_delete=models.CASCADE, null=True, blank=True
    )
    granted_at = models.DateTimeField("授权时间", auto_now_add=True)
    revoked_at = models.DateTimeField("撤销时间", null=True, blank=True)

    class Meta:
        verbose_name = "角色授权"
        verbose_name_plural = "角色授权"
        constraints = [
            # An operator runs the system and reaches no place; every other role reaches exactly one unit.
            models.CheckConstraint(
                condition=(
                    Q(role="operator", street__isnull=True, community__isnull=True, grid_cell__isnull=True)
                    | (
                        ~Q(role="operator")
                        & (
                            Q(street__isnull=False, community__isnull=True, grid_cell__isnull=True)
                            | Q(street__isnull=True, community__isnull=False, grid_cell__isnull=True)
                            | Q(street__isnull=True, community__isnull=True, grid_cell__isnull=False)
                        )
                    )
                ),
                name="roleassignment_one_unit",
            ),
            models.UniqueConstraint(
                fields=["user", "role", "street", "community", "grid_cell"],
                condition=Q(revoked_at__isnull=True),
                nulls_distinct=False,
                name="roleassignment_unique_active",
            ),
        ]

    def __str__(self) -> str:
        unit = self.street or self.community or self.grid_cell or "全系统"
        return f"{self.user} · {self.get_role_display()} · {unit}"


class AuditEvent(models.Model):
    """Append-only record of every write, unmasked read and export: who, when, what, from where.

    A database trigger (migration 0002) refuses UPDATE, DELETE and TRUNCATE for every role that
    connects as the application, operators included.
    """

    class Action(models.TextChoices):
        CREATE = "create", "新增"
        UPDATE = "update", "修改"
        DELETE = "delete", "删除"
        IMPORT = "import", "导入"
        EXPORT = "export", "导出"
        READ_PII = "read_pii", "查看个人信息"
        LOGIN = "login", "登录"
        LOGIN_FAILED = "login_failed", "登录失败"
        GRANT = "grant", "授权"
        REVOKE = "revoke", "撤销授权"

    at = models.DateTimeField("时间", auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        "auth.User", verbose_name="操作人", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Kept as text too, so the record still says who after a user is deleted.
    actor_name = models.CharField("操作人名称", max_length=150, blank=True)
    action = models.CharField("动作", max_length=16, choices=Action.choices)
    object_type = models.CharField("对象类型", max_length=64)
    object_id = models.CharField("对象标识", max_length=64, blank=True)
    summary = models.CharField("摘要", max_length=500, blank=True)
    changes = models.JSONField("变更内容", default=dict, blank=True)
    reason = models.CharField("事由", max_length=500, blank=True)
    ip = models.GenericIPAddressField("来源IP", null=True, blank=True)
    street = models.ForeignKey(
        Street, verbose_name="街道", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = "审计日志"
        verbose_name_plural = "审计日志"
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"]), models.Index(fields=["actor", "at"])]
        permissions = [("export_personal_data", "可导出个人信息")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name} {self.get_action_display()} {self.object_type}"
