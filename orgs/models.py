"""Party organisations attached to space, and the people who work in them.

The organisation tree is one table (`PartyOrganisation`) with a parent link; each node is attached
to exactly the spatial unit its kind requires. The database guards what one row can express (which
attachment column a kind needs, one community organisation per community, one grid branch per
grid, ...); `orgs.services` guards what spans rows (a grid branch's grid lies in its parent's
community), and every write goes through it.

Personal data is stored as `*_cipher` + `*_hash` column pairs written by `orgs.pii`; see there.
"""

from django.conf import settings
from django.contrib.gis.db import models
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import Q

from grid.models import (
    STORAGE_SRID,
    Building,
    Community,
    GridCell,
    Street,
    TimestampedModel,
    unit_code_validator,
)
from orgs import pii


class Cadre(TimestampedModel):
    """干部: a street official or party worker, e.g. a party-building instructor (党建指导员)."""

    name = models.CharField("姓名", max_length=32)
    street = models.ForeignKey(Street, verbose_name="街道", on_delete=models.PROTECT, related_name="cadres")
    unit_name = models.CharField("单位/职务", max_length=100, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="登录账号",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="cadres",
    )

    class Meta:
        verbose_name = "干部"
        verbose_name_plural = "干部"
        ordering = ["street", "name"]

    def __str__(self) -> str:
        return f"{self.name}（{self.unit_name}）" if self.unit_name else self.name


class PartyOrganisation(TimestampedModel):
    """党组织: one node of a street's organisation tree, attached to one spatial unit."""

    class Kind(models.TextChoices):
        STREET_COMMITTEE = "street_committee", "街道党工委"
        COMMUNITY_ORG = "community_org", "社区党组织"
        GRID_BRANCH = "grid_branch", "网格党支部"
        BUILDING_GROUP = "building_group", "楼栋党小组"
        ENTERPRISE_ORG = "enterprise_org", "两新组织党组织"
        RESIDENT_UNIT_ORG = "resident_unit_org", "驻区单位党组织"
        JOINT_BRANCH = "joint_branch", "联合党支部"

    class Level(models.TextChoices):
        WORKING_COMMITTEE = "working_committee", "党工委"
        COMMITTEE = "committee", "党委"
        GENERAL_BRANCH = "general_branch", "党总支"
        BRANCH = "branch", "党支部"
        GROUP = "group", "党小组"

    parent = models.ForeignKey(
        "self",
        verbose_name="上级党组织",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
    )
    kind = models.CharField("类别", max_length=24, choices=Kind.choices)
    level = models.CharField("层级", max_length=24, choices=Level.choices)
    name = models.CharField("名称", max_length=100)
    code = models.CharField("组织编码", max_length=32, unique=True, validators=[unit_code_validator])
    street = models.ForeignKey(
        Street, verbose_name="所属街道", on_delete=models.PROTECT, related_name="party_organisations"
    )
    # Attachment: exactly the column(s) the kind needs (see the constraints below).
    community = models.ForeignKey(
        Community,
        verbose_name="所在社区",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="party_organisations",
        help_text="社区党组织、驻区单位党组织必填；联合党支部可选",
    )
    grid_cell = models.ForeignKey(
        GridCell,
        verbose_name="所在网格",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="party_organisations",
        help_text="网格党支部必填",
    )
    buildings = models.ManyToManyField(
        Building,
        verbose_name="楼栋",
        blank=True,
        related_name="party_groups",
        help_text="楼栋党小组：一栋或相邻几栋楼",
    )
    premises = models.ForeignKey(
        "Enterprise",
        verbose_name="所在两新组织",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="own_party_orgs",
        help_text="两新组织党组织必填",
    )
    unit_name = models.CharField("驻区单位名称", max_length=100, blank=True, help_text="驻区单位党组织必填")
    founded_on = models.DateField("成立日期", null=True, blank=True)
    term_started_on = models.DateField("本届开始日期", null=True, blank=True)
    term_years = models.PositiveSmallIntegerField(
        "任期（年）",
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text="留空按规则默认：社区党组织5年，其他3年",
    )
    secretary = models.ForeignKey(
        "PartyMember",
        verbose_name="书记",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="secretary_of",
    )
    is_enlarged = models.BooleanField("大工委/大党委", default=False)
    weak = models.BooleanField("软弱涣散", default=False, editable=False, help_text="由整顿记录维护")

    class Meta:
        verbose_name = "党组织"
        verbose_name_plural = "党组织"
        ordering = ["street", "code"]
        indexes = [models.Index(fields=["parent"], name="partyorg_parent")]
        constraints = [
            models.CheckConstraint(
                condition=~Q(parent=models.F("id")),
                name="partyorg_not_own_parent",
                violation_error_code="partyorg_not_own_parent",
                violation_error_message="党组织不能以自身为上级",
            ),
            models.CheckConstraint(
                condition=Q(term_years__gte=1),
                name="partyorg_term_years_positive",
                violation_error_code="partyorg_term_years_positive",
                violation_error_message="任期至少为1年",
            ),
            # Only the street working committee is a root; it hangs on its street and nothing else.
            models.CheckConstraint(
                condition=Q(kind="street_committee", parent__isnull=True)
                | (~Q(kind="street_committee") & Q(parent__isnull=False)),
                name="partyorg_root_is_street_committee",
                violation_error_code="partyorg_root_is_street_committee",
                violation_error_message="只有街道党工委没有上级党组织，其他党组织必须指定上级",
            ),
            models.CheckConstraint(
                condition=~Q(kind="street_committee")
                | Q(
                    level="working_committee",
                    community__isnull=True,
                    grid_cell__isnull=True,
                    premises__isnull=True,
                ),
                name="partyorg_street_committee_attachment",
                violation_error_code="partyorg_street_committee_attachment",
                violation_error_message="街道党工委层级应为党工委，且不挂接社区、网格或两新组织",
            ),
            models.CheckConstraint(
                condition=~Q(kind="community_org")
                | Q(
                    community__isnull=False,
                    grid_cell__isnull=True,
                    premises__isnull=True,
                    level__in=["committee", "general_branch", "branch"],
                ),
                name="partyorg_community_org_attachment",
                violation_error_code="partyorg_community_org_attachment",
                violation_error_message="社区党组织必须挂接社区（不挂接网格或两新组织），层级为党委、党总支或党支部",
            ),
            models.CheckConstraint(
                condition=~Q(kind="grid_branch")
                | Q(
                    grid_cell__isnull=False,
                    community__isnull=True,
                    premises__isnull=True,
                    level__in=["committee", "general_branch", "branch"],
                ),
                name="partyorg_grid_branch_attachment",
                violation_error_code="partyorg_grid_branch_attachment",
                violation_error_message="网格党支部必须挂接网格（不挂接社区或两新组织）",
            ),
            # Its buildings are rows of the M2M table, which a CHECK cannot see: the service
            # requires at least one.
            models.CheckConstraint(
                condition=~Q(kind="building_group")
                | Q(level="group", community__isnull=True, grid_cell__isnull=True, premises__isnull=True),
                name="partyorg_building_group_attachment",
                violation_error_code="partyorg_building_group_attachment",
                violation_error_message="楼栋党小组层级应为党小组，只挂接楼栋",
            ),
            models.CheckConstraint(
                condition=~Q(kind="enterprise_org")
                | Q(
                    premises__isnull=False,
                    community__isnull=True,
                    grid_cell__isnull=True,
                    level__in=["committee", "general_branch", "branch"],
                ),
                name="partyorg_enterprise_org_attachment",
                violation_error_code="partyorg_enterprise_org_attachment",
                violation_error_message="两新组织党组织必须挂接所在两新组织",
            ),
            models.CheckConstraint(
                condition=~Q(kind="resident_unit_org")
                | (
                    Q(
                        community__isnull=False,
                        grid_cell__isnull=True,
                        premises__isnull=True,
                        level__in=["committee", "general_branch", "branch"],
                    )
                    & ~Q(unit_name="")
                ),
                name="partyorg_resident_unit_org_attachment",
                violation_error_code="partyorg_resident_unit_org_attachment",
                violation_error_message="驻区单位党组织必须指定所在社区和驻区单位名称",
            ),
            # A joint branch covers several enterprises (Enterprise.covering_joint_branch); it may
            # sit in a community or directly under the street.
            models.CheckConstraint(
                condition=~Q(kind="joint_branch")
                | Q(grid_cell__isnull=True, premises__isnull=True, level__in=["general_branch", "branch"]),
                name="partyorg_joint_branch_attachment",
                violation_error_code="partyorg_joint_branch_attachment",
                violation_error_message="联合党支部不挂接网格或单个两新组织，层级为党总支或党支部",
            ),
            models.CheckConstraint(
                condition=Q(is_enlarged=False) | Q(kind__in=["street_committee", "community_org"]),
                name="partyorg_enlarged_kinds",
                violation_error_code="partyorg_enlarged_kinds",
                violation_error_message="只有街道党工委和社区党组织可以设为大工委/大党委",
            ),
            models.UniqueConstraint(
                fields=["street"],
                condition=Q(kind="street_committee"),
                name="partyorg_one_committee_per_street",
                violation_error_code="partyorg_one_committee_per_street",
                violation_error_message="该街道已有街道党工委",
            ),
            models.UniqueConstraint(
                fields=["community"],
                condition=Q(kind="community_org"),
                name="partyorg_one_org_per_community",
                violation_error_code="partyorg_one_org_per_community",
                violation_error_message="该社区已有社区党组织",
            ),
            models.UniqueConstraint(
                fields=["grid_cell"],
                condition=Q(kind="grid_branch"),
                name="partyorg_one_branch_per_grid",
                violation_error_code="partyorg_one_branch_per_grid",
                violation_error_message="该网格已有网格党支部",
            ),
            models.UniqueConstraint(
                fields=["premises"],
                condition=Q(kind="enterprise_org"),
                name="partyorg_one_org_per_premises",
                violation_error_code="partyorg_one_org_per_premises",
                violation_error_message="该两新组织已有自己的党组织",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def enlarged_label(self) -> str:
        return "大工委" if self.kind == self.Kind.STREET_COMMITTEE else "大党委"


# Which kinds of organisation each kind may hang under. orgs.services checks it on every write;
# orgs.sql.org_tree_violations checks whole streets against the same table.
_K = PartyOrganisation.Kind
ALLOWED_PARENT_KINDS: dict[str, set[str]] = {
    _K.STREET_COMMITTEE: set(),
    _K.COMMUNITY_ORG: {_K.STREET_COMMITTEE},
    _K.GRID_BRANCH: {_K.COMMUNITY_ORG},
    _K.BUILDING_GROUP: {_K.GRID_BRANCH},
    _K.ENTERPRISE_ORG: {_K.STREET_COMMITTEE, _K.COMMUNITY_ORG},
    _K.RESIDENT_UNIT_ORG: {_K.STREET_COMMITTEE, _K.COMMUNITY_ORG},
    _K.JOINT_BRANCH: {_K.STREET_COMMITTEE, _K.COMMUNITY_ORG},
}


class Rectification(models.Model):
    """软弱涣散整顿: one spell of an organisation flagged weak, until it is converted (转化)."""

    org = models.ForeignKey(
        PartyOrganisation, verbose_name="党组织", on_delete=models.CASCADE, related_name="rectifications"
    )
    flagged_on = models.DateField("认定日期")
    reasons = models.TextField("软弱涣散表现")
    measures = models.TextField("整顿措施", blank=True)
    converted_on = models.DateField("转化日期", null=True, blank=True)

    class Meta:
        verbose_name = "软弱涣散整顿"
        verbose_name_plural = "软弱涣散整顿"
        ordering = ["-flagged_on"]
        constraints = [
            models.UniqueConstraint(
                fields=["org"],
                condition=Q(converted_on__isnull=True),
                name="rectification_one_open_per_org",
                violation_error_code="rectification_one_open_per_org",
                violation_error_message="该党组织已在整顿中",
            ),
            models.CheckConstraint(
                condition=Q(converted_on__isnull=True) | Q(converted_on__gte=models.F("flagged_on")),
                name="rectification_converted_after_flagged",
                violation_error_code="rectification_converted_after_flagged",
                violation_error_message="转化日期不能早于认定日期",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.org.name} {self.flagged_on}"


class StarRating(models.Model):
    """星级评定: one year's rating of an organisation; resident satisfaction weighs 40%."""

    org = models.ForeignKey(
        PartyOrganisation, verbose_name="党组织", on_delete=models.CASCADE, related_name="star_ratings"
    )
    year = models.PositiveSmallIntegerField("年度")
    stars = models.PositiveSmallIntegerField("星级", validators=[MinValueValidator(1), MaxValueValidator(5)])
    score = models.DecimalField("量化指标得分", max_digits=5, decimal_places=2)
    satisfaction_score = models.DecimalField("群众满意度得分", max_digits=5, decimal_places=2)
    total_score = models.DecimalField("综合得分", max_digits=5, decimal_places=2, editable=False)

    class Meta:
        verbose_name = "星级评定"
        verbose_name_plural = "星级评定"
        ordering = ["org", "-year"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "year"],
                name="starrating_one_per_year",
                violation_error_code="starrating_one_per_year",
                violation_error_message="该党组织本年度已有星级评定",
            ),
            models.CheckConstraint(
                condition=Q(stars__gte=1, stars__lte=5),
                name="starrating_stars_range",
                violation_error_code="starrating_stars_range",
                violation_error_message="星级应为1–5",
            ),
            models.CheckConstraint(
                condition=Q(
                    score__gte=0, score__lte=100, satisfaction_score__gte=0, satisfaction_score__lte=100
                ),
                name="starrating_scores_range",
                violation_error_code="starrating_scores_range",
                violation_error_message="得分应在0–100之间",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.org.name} {self.year} {self.stars}星"


class Enterprise(TimestampedModel):
    """两新组织: a non-public enterprise or social organisation, at a point (its premises)."""

    class Kind(models.TextChoices):
        ENTERPRISE = "enterprise", "非公有制企业"
        SOCIAL_ORG = "social_org", "社会组织"

    name = models.CharField("名称", max_length=100)
    kind = models.CharField("类型", max_length=16, choices=Kind.choices, default=Kind.ENTERPRISE)
    credit_code = models.CharField("统一社会信用代码", max_length=18, blank=True)
    building = models.ForeignKey(
        Building,
        verbose_name="所在楼栋",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="enterprises",
    )
    geom = models.PointField("位置", srid=STORAGE_SRID)
    community = models.ForeignKey(
        Community,
        verbose_name="所在社区",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="enterprises",
        help_text="由位置自动计算",
    )
    employee_count = models.PositiveIntegerField("从业人数", default=0)
    covering_joint_branch = models.ForeignKey(
        PartyOrganisation,
        verbose_name="覆盖的联合党支部",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="covered_enterprises",
        limit_choices_to={"kind": "joint_branch"},
    )
    instructor = models.ForeignKey(
        Cadre,
        verbose_name="党建指导员",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="instructed_enterprises",
    )

    class Meta:
        verbose_name = "两新组织"
        verbose_name_plural = "两新组织"
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["credit_code"],
                condition=~Q(credit_code=""),
                name="enterprise_credit_code_unique",
                violation_error_code="enterprise_credit_code_unique",
                violation_error_message="该统一社会信用代码已登记",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class PartyMember(TimestampedModel):
    """党员. ID number and phone are stored encrypted with a keyed hash beside (orgs.pii)."""

    class Gender(models.TextChoices):
        MALE = "male", "男"
        FEMALE = "female", "女"

    class Status(models.TextChoices):
        FULL = "full", "正式党员"
        PROBATIONARY = "probationary", "预备党员"

    class Category(models.TextChoices):
        EMPLOYED = "employed", "在职党员"
        RETIRED = "retired", "离退休党员"
        MOBILE = "mobile", "流动党员"
        LOST_CONTACT = "lost_contact", "失联党员"
        OTHER = "other", "其他"

    name = models.CharField("姓名", max_length=32)
    gender = models.CharField("性别", max_length=8, choices=Gender.choices)
    birth_date = models.DateField("出生日期", null=True, blank=True)
    joined_on = models.DateField("入党日期", null=True, blank=True)
    status = models.CharField("党员身份", max_length=16, choices=Status.choices, default=Status.FULL)
    category = models.CharField("类别", max_length=16, choices=Category.choices, default=Category.EMPLOYED)
    residence_building = models.ForeignKey(
        Building,
        verbose_name="居住楼栋",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="residents",
    )
    organisation = models.ForeignKey(
        PartyOrganisation,
        verbose_name="所在党组织",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="members",
        help_text="留空表示未纳入组织管理（覆盖缺口）",
    )
    id_number_cipher = models.TextField("身份证号（密文）", blank=True, editable=False)
    id_number_hash = models.CharField("身份证号索引", max_length=64, null=True, blank=True, editable=False)
    phone_cipher = models.TextField("联系电话（密文）", blank=True, editable=False)
    phone_hash = models.CharField("联系电话索引", max_length=64, null=True, blank=True, editable=False)
    # 双报到: where the member works, and the community of residence they reported to.
    work_unit = models.CharField("工作单位", max_length=100, blank=True)
    work_enterprise = models.ForeignKey(
        Enterprise,
        verbose_name="所在两新组织",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="members",
    )
    reported_community = models.ForeignKey(
        Community,
        verbose_name="双报到社区",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="reported_members",
    )
    reported_on = models.DateField("报到日期", null=True, blank=True)
    dues_paid_through = models.DateField(
        "党费缴至（月）", null=True, blank=True, help_text="所缴最后一个月的1日"
    )

    class Meta:
        verbose_name = "党员"
        verbose_name_plural = "党员"
        ordering = ["name"]
        indexes = [models.Index(fields=["phone_hash"], name="partymember_phone_hash")]
        constraints = [
            # One person, one record: the keyed hash of the normalised ID number.
            models.UniqueConstraint(
                fields=["id_number_hash"],
                condition=Q(id_number_hash__isnull=False),
                name="partymember_id_number_unique",
                violation_error_code="partymember_id_number_unique",
                violation_error_message="该身份证号已登记为党员",
            ),
            models.CheckConstraint(
                condition=Q(reported_on__isnull=True) | Q(reported_community__isnull=False),
                name="partymember_reported_needs_community",
                violation_error_code="partymember_reported_needs_community",
                violation_error_message="填写报到日期时必须指定双报到社区",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def id_number_masked(self) -> str:
        return pii.mask_id_number(pii.pii_reveal(self.id_number_cipher))

    @property
    def phone_masked(self) -> str:
        return pii.mask_phone(pii.pii_reveal(self.phone_cipher))


class GridWorker(TimestampedModel):
    """网格员: assigned to one or more grids of one community.

    The phone is encrypted like a member's: most workers give a personal mobile.
    """

    name = models.CharField("姓名", max_length=32)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="登录账号",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="grid_workers",
    )
    phone_cipher = models.TextField("联系电话（密文）", blank=True, editable=False)
    phone_hash = models.CharField("联系电话索引", max_length=64, null=True, blank=True, editable=False)
    full_time = models.BooleanField("专职社区工作者", default=True)
    community = models.ForeignKey(
        Community, verbose_name="所属社区", on_delete=models.PROTECT, related_name="grid_workers"
    )
    grid_cells = models.ManyToManyField(GridCell, verbose_name="负责网格", blank=True, related_name="workers")
    active = models.BooleanField("在岗", default=True)

    class Meta:
        verbose_name = "网格员"
        verbose_name_plural = "网格员"
        ordering = ["community", "name"]
        indexes = [models.Index(fields=["phone_hash"], name="gridworker_phone_hash")]

    def __str__(self) -> str:
        return self.name

    @property
    def phone_masked(self) -> str:
        return pii.mask_phone(pii.pii_reveal(self.phone_cipher))


class StationedCadre(TimestampedModel):
    """驻点干部: a street official stationed in a community for a period, with monthly duties."""

    name = models.CharField("姓名", max_length=32)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="登录账号",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="stationed_postings",
    )
    community = models.ForeignKey(
        Community, verbose_name="驻点社区", on_delete=models.PROTECT, related_name="stationed_cadres"
    )
    period_start = models.DateField("驻点开始")
    period_end = models.DateField("驻点结束", null=True, blank=True)
    required_days_per_month = models.PositiveSmallIntegerField(
        "每月应驻点天数", default=8, validators=[MaxValueValidator(31)]
    )
    required_contacts_per_month = models.PositiveSmallIntegerField("每月应联系群众次数", default=10)

    class Meta:
        verbose_name = "驻点干部"
        verbose_name_plural = "驻点干部"
        ordering = ["community", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(period_end__isnull=True) | Q(period_end__gte=models.F("period_start")),
                name="stationedcadre_period_order",
                violation_error_code="stationedcadre_period_order",
                violation_error_message="驻点结束日期不能早于开始日期",
            ),
            models.CheckConstraint(
                condition=Q(required_days_per_month__lte=31),
                name="stationedcadre_days_max",
                violation_error_code="stationedcadre_days_max",
                violation_error_message="每月应驻点天数不能超过31天",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}（{self.community.name}）"


class CommitteeSeat(models.Model):
    """A seat on an enlarged committee (大工委/大党委). Seats list the whole enlarged body, own and
    part-time (兼职委员) members, so their count is the body's size."""

    org = models.ForeignKey(
        PartyOrganisation,
        verbose_name="大工委/大党委",
        on_delete=models.CASCADE,
        related_name="seats",
        limit_choices_to={"is_enlarged": True},
    )
    person_name = models.CharField("委员姓名", max_length=32)
    unit_name = models.CharField("所在单位", max_length=100, blank=True)
    is_resident_unit_head = models.BooleanField("驻区单位党组织负责人", default=False)
    liaison_communities = models.ManyToManyField(
        Community, verbose_name="分片联系社区", blank=True, related_name="liaison_seats"
    )
    liaison_units = models.TextField("分片联系单位", blank=True)

    class Meta:
        verbose_name = "兼职委员席位"
        verbose_name_plural = "大工委/大党委委员"
        ordering = ["org", "person_name"]

    def __str__(self) -> str:
        return f"{self.person_name}（{self.unit_name}）" if self.unit_name else self.person_name


class FieldEvent(models.Model):
    """A geotagged record logged on a tablet, often offline, and synced later.

    The primary key is the UUID the tablet made when the event was logged, so a batch sent twice
    (a retry after a dropped connection) inserts nothing the second time. The position is kept as
    captured (values, coordinate system, accuracy) beside its WGS-84 conversion; `place` is where
    the event counts (the visited building or premises, else the captured position), and the grid
    cell and community are those holding `place` on the day it happened, not today.
    """

    id = models.UUIDField("客户端编号", primary_key=True, editable=False)
    occurred_at = models.DateTimeField("发生时间", db_index=True)
    received_at = models.DateTimeField("同步时间", auto_now_add=True)
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name="记录人账号", on_delete=models.PROTECT, related_name="+"
    )
    # Kept as text so the record still says who after the account is renamed or disabled.
    reporter_name = models.CharField("记录人", max_length=150)
    captured_lon = models.FloatField("采集经度", null=True, blank=True)
    captured_lat = models.FloatField("采集纬度", null=True, blank=True)
    captured_crs = models.CharField("采集坐标系", max_length=16, blank=True)
    accuracy_m = models.FloatField("定位精度（米）", null=True, blank=True)
    point = models.PointField("定位（WGS-84）", srid=STORAGE_SRID, null=True, blank=True)
    place = models.PointField("计入位置", srid=STORAGE_SRID)
    community = models.ForeignKey(Community, verbose_name="社区", on_delete=models.PROTECT, related_name="+")
    grid_cell = models.ForeignKey(
        GridCell, verbose_name="网格", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    building = models.ForeignKey(
        Building, verbose_name="楼栋", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    distance_to_subject_m = models.FloatField(
        "定位与对象距离（米）",
        null=True,
        blank=True,
        help_text="采集定位与所走访楼栋/企业位置的距离；距离过大说明记录可能不在现场",
    )
    summary = models.TextField("情况记录", blank=True)
    # SHA-256 of the item as the tablet sent it (canonical JSON): a resent id with other content
    # is a conflict, not a duplicate.
    payload_hash = models.CharField(max_length=64, editable=False)

    class Meta:
        abstract = True
        constraints = [
            models.CheckConstraint(
                condition=(Q(captured_lon__isnull=True) & Q(captured_lat__isnull=True) & Q(point__isnull=True))
                | (Q(captured_lon__isnull=False) & Q(captured_lat__isnull=False) & Q(point__isnull=False)),
                name="%(class)s_position_whole",
            ),
            models.CheckConstraint(
                condition=Q(accuracy_m__isnull=True) | Q(accuracy_m__gte=0),
                name="%(class)s_accuracy_nonnegative",
            ),
        ]


class Visit(FieldEvent):
    """走访: a grid worker's (or community worker's) visit to a household, building or premises."""

    class Kind(models.TextChoices):
        HOUSEHOLD = "household", "入户走访"
        BUILDING = "building", "楼栋巡查"
        ENTERPRISE = "enterprise", "两新组织走访"
        OTHER = "other", "其他"

    kind = models.CharField("走访类型", max_length=16, choices=Kind.choices)
    worker = models.ForeignKey(
        GridWorker, verbose_name="网格员", on_delete=models.PROTECT, null=True, blank=True, related_name="visits"
    )
    household = models.CharField("户（门牌/房号）", max_length=32, blank=True)
    enterprise = models.ForeignKey(
        Enterprise, verbose_name="两新组织", on_delete=models.SET_NULL, null=True, blank=True, related_name="visits"
    )
    # Bumped by each correction (PATCH /api/visits/{id}/ names the version it replaces, so a stale
    # edit is refused, never applied over a newer one). A database default: the sync inserts
    # visits with its own statement (orgs/sync.py), which does not name this column.
    version = models.PositiveIntegerField("版本", default=1, db_default=1, editable=False)

    class Meta(FieldEvent.Meta):
        verbose_name = "走访记录"
        verbose_name_plural = "走访记录"
        ordering = ["-occurred_at"]
        indexes = [
            models.Index(fields=["grid_cell", "occurred_at"], name="visit_grid_time"),
            models.Index(fields=["building", "occurred_at"], name="visit_building_time"),
            models.Index(fields=["community", "occurred_at"], name="visit_community_time"),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d} {self.reporter_name} {self.get_kind_display()}"


class StationContact(FieldEvent):
    """驻点联系: a stationed cadre's check-in in their community, or a contact with residents."""

    class Kind(models.TextChoices):
        CHECK_IN = "check_in", "驻点签到"
        CHECK_OUT = "check_out", "驻点签退"
        CONTACT = "contact", "联系群众"

    kind = models.CharField("类型", max_length=16, choices=Kind.choices)
    cadre = models.ForeignKey(
        StationedCadre, verbose_name="驻点干部", on_delete=models.PROTECT, related_name="contacts"
    )
    contact_name = models.CharField("联系对象", max_length=32, blank=True)
    on_site = models.BooleanField(
        "在驻点社区内", default=False, help_text="定位精度范围整体落在驻点社区（含容差）内（考勤依据）"
    )

    class Meta(FieldEvent.Meta):
        verbose_name = "驻点联系记录"
        verbose_name_plural = "驻点联系记录"
        ordering = ["-occurred_at"]
        indexes = [
            models.Index(fields=["cadre", "occurred_at"], name="contact_cadre_time"),
            models.Index(fields=["community", "occurred_at"], name="contact_community_time"),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d} {self.reporter_name} {self.get_kind_display()}"


# Residents' cases (民情台账) live in their own module; imported here so Django registers them.
from orgs.cases_models import Case, CaseCategory, CaseTransition, WorkCalendarDay  # noqa: E402, F401
from orgs.inbox_models import Notification  # noqa: E402, F401
from orgs.photos_models import Photo  # noqa: E402, F401
