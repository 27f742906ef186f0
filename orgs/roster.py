"""党员名册: import and export of the member roster as the street office keeps it (xlsx or csv).

Import: read → check every row (per-row report with the row number Excel shows, the column, a
stable code and a Chinese message) → write set-based in one transaction. All-or-nothing unless
`partial`, where the good rows are written and the bad ones reported. Members are matched by the
keyed hash of their ID number, so re-importing the same file changes nothing. Organisations,
buildings and communities named in the file are looked up once for the whole file.

Values are judged as a clerk would (orgs.plausibility, the same checks the services apply): an ID
number's check character, birth date and area code; a phone that is a real mobile or fixed line; a
birth date that is the ID number's and makes an adult; a join date not in the future and not
before the member's 18th birthday.

Cells holding formulas are refused (`formula_not_allowed`): their cached value may be stale or
absent, and a roster that computes an ID number is not a roster anyone should trust.

Export: the same headers, so an export re-imports. Personal data is unmasked only for a user with
the `grid.export_personal_data` permission; every export is audited with its reason.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from grid.audit import audit_record
from grid.models import AuditEvent, Building, Community, Street
from orgs import pii, plausibility
from orgs.errors import OrgError
from orgs.models import PartyMember, PartyOrganisation

# Canonical header → the headers street offices actually write for it. The first is what we export.
COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("姓名",),
    "gender": ("性别",),
    "birth_date": ("出生日期",),
    "id_number": ("身份证号", "身份证号码", "公民身份号码"),
    "phone": ("联系电话", "手机号码", "电话"),
    "organisation": ("所在党组织", "所在党支部"),
    "residence": ("居住地址/楼栋编码", "楼栋编码", "居住地址", "居住楼栋"),
    "category": ("党员类别", "类别"),
    "status": ("党员状态", "党员身份"),
    "joined_on": ("入党时间", "入党日期"),
    "work_unit": ("工作单位",),
    "reported_community": ("报到社区", "双报到社区", "报到社区（双报到）"),
    "dues_paid_through": ("党费缴至", "党费缴纳至"),
}
HEADERS = [names[0] for names in COLUMNS.values()]
REQUIRED_HEADERS = ("name", "gender", "id_number", "organisation", "category", "status")
REQUIRED_VALUES = ("name", "gender", "id_number", "category", "status")

GENDERS = {"男": PartyMember.Gender.MALE, "女": PartyMember.Gender.FEMALE}
CATEGORIES = {
    "在职": PartyMember.Category.EMPLOYED,
    "在职党员": PartyMember.Category.EMPLOYED,
    "离退休": PartyMember.Category.RETIRED,
    "离退休党员": PartyMember.Category.RETIRED,
    "退休": PartyMember.Category.RETIRED,
    "离休": PartyMember.Category.RETIRED,
    "流动党员": PartyMember.Category.MOBILE,
    "流动": PartyMember.Category.MOBILE,
    "失联党员": PartyMember.Category.LOST_CONTACT,
    "失联": PartyMember.Category.LOST_CONTACT,
    "其他": PartyMember.Category.OTHER,
}
STATUSES = {
    "正式党员": PartyMember.Status.FULL,
    "正式": PartyMember.Status.FULL,
    "预备党员": PartyMember.Status.PROBATIONARY,
    "预备": PartyMember.Status.PROBATIONARY,
}
EXPORT_CATEGORY: dict[str, str] = {
    PartyMember.Category.EMPLOYED: "在职",
    PartyMember.Category.RETIRED: "离退休",
    PartyMember.Category.MOBILE: "流动党员",
    PartyMember.Category.LOST_CONTACT: "失联党员",
    PartyMember.Category.OTHER: "其他",
}
# Fields an import writes, with the column each comes from. An existing member is updated only in
# the columns the file has, and left untouched when they all match.
WRITTEN_FIELDS: dict[str, str] = {
    "name": "name",
    "gender": "gender",
    "birth_date": "birth_date",
    "status": "status",
    "category": "category",
    "joined_on": "joined_on",
    "organisation_id": "organisation",
    "residence_building_id": "residence",
    "work_unit": "work_unit",
    "reported_community_id": "reported_community",
    "dues_paid_through": "dues_paid_through",
}


# A street's roster is a few thousand rows (~1 MB); the whole file is read into memory, so refuse
# anything far beyond that before reading it.
MAX_FILE_BYTES = 20 * 1024 * 1024
# C0 control characters other than tab and line breaks: invisible in Excel, and PostgreSQL text
# cannot hold NUL at all (the write would fail after the checks said the row was good).
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class RosterError(OrgError):
    """The file as a whole cannot be read (format, encoding, headers)."""

    code = "roster_invalid"


@dataclass(frozen=True)
class RowError:
    row: int  # as Excel shows it: the header is row 1
    column: str
    code: str
    message: str

    def __str__(self) -> str:
        where = f"第{self.row}行" + (f"【{self.column}】" if self.column else "")
        return f"{where}{self.message}（{self.code}）"


@dataclass
class ImportReport:
    file_name: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    written: bool = False

    @property
    def bad_rows(self) -> int:
        return len({e.row for e in self.errors})

    def summary(self) -> str:
        head = (
            f"{self.file_name}：共{self.rows}行，新增{self.created}，更新{self.updated}，未变{self.unchanged}"
        )
        if self.errors:
            head += f"，有误{self.bad_rows}行"
        return head + ("" if self.written or not self.errors else "；未写入任何数据")


# ---------------------------------------------------------------------------------------------
# Reading


@dataclass
class _Cell:
    value: Any
    formula: bool = False


def _read_xlsx(path: Path) -> Iterator[list[_Cell]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=False)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many types for a bad file
        raise RosterError(f"无法读取 Excel 文件：{exc}", code="file_unreadable") from exc
    try:
        ws = wb.worksheets[0]
        for row in ws.iter_rows():
            yield [
                _Cell(
                    getattr(c, "value", None),
                    getattr(c, "data_type", None) == "f"
                    or (isinstance(getattr(c, "value", None), str) and c.value.startswith("=")),
                )
                for c in row
            ]
    finally:
        wb.close()


def _decode(raw: bytes) -> str:
    """UTF-8 (with or without the BOM Excel writes), else GBK as exported by older Chinese Excel."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise RosterError("CSV 文件编码无法识别（应为 UTF-8 或 GBK）", code="encoding_unknown")


def _read_csv(path: Path) -> Iterator[list[_Cell]]:
    text = _decode(path.read_bytes())
    try:
        for row in csv.reader(io.StringIO(text)):
            yield [_Cell(v, v.startswith("=")) for v in row]
    except csv.Error as exc:
        # e.g. a cell beyond csv.field_size_limit() (128 KB): no roster has one.
        raise RosterError(f"CSV 文件无法解析（单元格过大或格式错误）：{exc}", code="file_unreadable") from exc


def read_rows(path: Path) -> Iterator[list[_Cell]]:
    if not path.is_file():
        raise RosterError(f"文件不存在：{path.name}", code="file_unreadable")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise RosterError(
            f"文件过大（{size / 1048576:.1f} MB），上限 {MAX_FILE_BYTES / 1048576:.0f} MB",
            code="file_too_large",
        )
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return _read_xlsx(path)
    if suffix == ".csv":
        return _read_csv(path)
    raise RosterError(f"不支持的文件类型：{suffix or '（无扩展名）'}，请使用 .xlsx 或 .csv", code="file_type")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


_DATE_RE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_MONTH_RE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*月?$")


def parse_date(value: Any) -> date | None:
    """A date cell or text (2024-06-01, 2024/6/1, 2024.06.01, 2024年6月1日, 20240601)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _text(value)
    if not text:
        return None
    if re.fullmatch(r"\d{8}", text):
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    m = _DATE_RE.match(text)
    if not m:
        raise ValueError(text)
    return date(int(m[1]), int(m[2]), int(m[3]))


def parse_month(value: Any) -> date | None:
    """A month (2024-06, 2024/6, 2024年6月, or any date in it) as its first day."""
    if isinstance(value, (datetime, date)):
        return parse_date(value).replace(day=1)  # type: ignore[union-attr]
    text = _text(value)
    if not text:
        return None
    m = _MONTH_RE.match(text)
    if m:
        return date(int(m[1]), int(m[2]), 1)
    parsed = parse_date(text)
    return parsed.replace(day=1) if parsed else None


# ---------------------------------------------------------------------------------------------
# Checking


@dataclass
class _Row:
    number: int
    values: dict[str, Any]
    id_hash: str = ""
    id_sealed: pii.Sealed | None = None
    phone_sealed: pii.Sealed | None = None
    phone_given: bool = False
    formula_keys: set[str] = field(default_factory=set)
    fields: dict[str, Any] = field(default_factory=dict)


def _label(key: str) -> str:
    return COLUMNS[key][0]


def _map_headers(header: list[_Cell]) -> tuple[dict[str, int], list[RowError]]:
    positions: dict[str, int] = {}
    for i, cell in enumerate(header):
        text = _text(cell.value).replace(" ", "")
        for key, names in COLUMNS.items():
            if text in names and key not in positions:
                positions[key] = i
    errors = [
        RowError(1, _label(key), "header_missing", f"缺少必需的列“{_label(key)}”")
        for key in REQUIRED_HEADERS
        if key not in positions
    ]
    return positions, errors


class _Lookups:
    """Every organisation, building and community the file names, fetched once for the file."""

    def __init__(self, rows: list[_Row], street: Street | None) -> None:
        orgs_named = {_text(r.values.get("organisation")) for r in rows} - {""}
        places = {_text(r.values.get("residence")) for r in rows} - {""}
        communities = {_text(r.values.get("reported_community")) for r in rows} - {""}
        org_qs = PartyOrganisation.objects.filter(Q(code__in=orgs_named) | Q(name__in=orgs_named))
        building_qs = Building.objects.filter(Q(code__in=places) | Q(address__in=places))
        community_qs = Community.objects.filter(Q(code__in=communities) | Q(name__in=communities))
        if street is not None:
            org_qs = org_qs.filter(street=street)
            building_qs = building_qs.filter(community__street=street)
            community_qs = community_qs.filter(street=street)
        self.orgs = self._index(org_qs.values_list("id", "code", "name"))
        self.buildings = self._index(building_qs.values_list("id", "code", "address"))
        self.communities = self._index(community_qs.values_list("id", "code", "name"))

    @staticmethod
    def _index(rows: Iterable[tuple[int, str, str]]) -> dict[str, set[int]]:
        """Code or name/address → ids. A code names one object; a name may name several."""
        index: dict[str, set[int]] = {}
        by_code: dict[str, int] = {}
        for pk, code, label in rows:
            by_code[code] = pk
            if label:
                index.setdefault(label, set()).add(pk)
        for code, pk in by_code.items():
            index[code] = {pk}  # a code wins over a like-named object
        return index


def _check_row(row: _Row, lookups: _Lookups, today: date) -> list[RowError]:  # noqa: C901 - one branch per column
    errors: list[RowError] = []
    v = row.values
    n = row.number

    def err(key: str, code: str, message: str) -> None:
        errors.append(RowError(n, _label(key), code, message))

    def choice(key: str, labels: Mapping[str, str], code: str, message: str) -> None:
        """A column that takes one of `labels`: another label is refused (`message` formatted with
        it) and the field left empty."""
        text = _text(v.get(key))
        if text:
            if text not in labels:
                err(key, code, message.format(text))
            row.fields[key] = labels.get(text)

    for key in REQUIRED_VALUES:
        if key not in row.formula_keys and not _text(v.get(key)):
            err(key, "value_missing", f"“{_label(key)}”不能为空")
    f = row.fields
    f["name"] = _text(v.get("name"))[:32]
    choice("gender", GENDERS, "gender_unknown", "性别应为“男”或“女”，而不是“{}”")
    choice("category", CATEGORIES, "category_unknown", "党员类别“{}”无法识别（在职/离退休/流动党员/失联党员/其他）")
    choice("status", STATUSES, "status_unknown", "党员状态“{}”无法识别（正式党员/预备党员）")
    id_text = _text(v.get("id_number"))
    id_number = None
    if id_text:
        try:
            id_number = plausibility.check_id_number(id_text, today=today)
        except OrgError as exc:
            err("id_number", exc.code, exc.message)
        else:
            row.id_sealed = pii.seal(id_number)
            row.id_hash = row.id_sealed.hash
    phone_text = _text(v.get("phone"))
    row.phone_given = "phone" in v
    if phone_text:
        try:
            row.phone_sealed = pii.seal(plausibility.check_phone(phone_text))
        except OrgError as exc:
            err("phone", exc.code, exc.message)
    for key in ("birth_date", "joined_on"):
        f[key] = None
        try:
            f[key] = parse_date(v.get(key))
        except ValueError:
            err(key, "date_invalid", f"“{_label(key)}”不是有效日期：{_text(v.get(key))}（如 1980-01-31）")
    try:
        f["dues_paid_through"] = parse_month(v.get("dues_paid_through"))
    except ValueError:
        err(
            "dues_paid_through",
            "date_invalid",
            f"“党费缴至”应为年月（如 2024-06）：{_text(v.get('dues_paid_through'))}",
        )
    # The birth date is judged where it came from: the column when filled, else the ID number
    # (which carries it, so a roster that leaves the column empty still has one).
    birth_key = "birth_date"
    if not _text(v.get("birth_date")) and id_number is not None:
        f["birth_date"], birth_key = plausibility.id_number_birth_date(id_number), "id_number"
    birth_ok = False
    if f["birth_date"] is not None:
        try:
            plausibility.check_birth_date(f["birth_date"], today=today, id_number=id_number)
            birth_ok = True
        except OrgError as exc:
            err(birth_key, exc.code, exc.message)
    if f["joined_on"] is not None:
        try:
            plausibility.check_join_date(
                f["joined_on"], birth_date=f["birth_date"] if birth_ok else None, today=today
            )
        except OrgError as exc:
            err("joined_on", exc.code, exc.message)
    for key, index, code, what in (
        ("organisation", lookups.orgs, "org_unknown", "党组织"),
        ("residence", lookups.buildings, "building_unknown", "楼栋（编码或地址）"),
        ("reported_community", lookups.communities, "community_unknown", "社区"),
    ):
        text = _text(v.get(key))
        target = {"organisation": "organisation_id", "residence": "residence_building_id"}.get(
            key, "reported_community_id"
        )
        f[target] = None
        if not text:
            continue
        ids = index.get(text, set())
        if not ids:
            err(key, code, f"找不到{what}“{text}”")
        elif len(ids) > 1:
            err(key, code.replace("unknown", "ambiguous"), f"“{text}”对应多个{what}，请改用编码")
        else:
            f[target] = next(iter(ids))
    f["work_unit"] = _text(v.get("work_unit"))[:100]
    return errors


def _rows(path: Path) -> tuple[list[_Row], list[RowError], set[str]]:
    """The data rows, the formula refusals, and which columns the file has."""
    it = read_rows(path)
    header = next(it, None)
    if header is None:
        return [], [RowError(1, "", "file_empty", "文件为空")], set()
    positions, errors = _map_headers(header)
    if errors:
        return [], errors, set(positions)
    rows: list[_Row] = []
    for number, cells in enumerate(it, start=2):
        if all(_text(c.value) == "" for c in cells):
            continue
        row = _Row(number, {})
        for key, i in positions.items():
            cell = cells[i] if i < len(cells) else _Cell(None)
            if cell.formula:
                errors.append(
                    RowError(number, _label(key), "formula_not_allowed", "单元格含公式，请粘贴为数值后再导入")
                )
                row.formula_keys.add(key)
                continue
            if isinstance(cell.value, str) and _CONTROL_CHARS.search(cell.value):
                errors.append(
                    RowError(number, _label(key), "value_invalid", "单元格含不可见的控制字符，请删除后再导入")
                )
                row.formula_keys.add(key)
                continue
            row.values[key] = cell.value
        rows.append(row)
    return rows, errors, set(positions)


# ---------------------------------------------------------------------------------------------
# Writing


def _member_street_ids(member_ids: Iterable[int]) -> dict[int, set[int]]:
    """Streets each existing member belongs to, by organisation and residence (one query)."""
    out: dict[int, set[int]] = {}
    for pk, org_street, home_street in PartyMember.objects.filter(pk__in=list(member_ids)).values_list(
        "pk", "organisation__street_id", "residence_building__community__street_id"
    ):
        out[pk] = {s for s in (org_street, home_street) if s is not None}
    return out


def members_import(
    *, path: Path, partial: bool = False, street: Street | None = None, file_name: str | None = None
) -> ImportReport:
    """Import a roster file. Raises RosterError for an unreadable file; row problems are reported."""
    report = ImportReport(file_name=file_name or path.name)
    rows, errors, columns = _rows(path)
    report.errors.extend(errors)
    report.rows = len(rows)
    if any(e.code == "header_missing" or e.code == "file_empty" for e in errors):
        return report
    lookups = _Lookups(rows, street)
    formula_rows = {e.row for e in errors}
    today = timezone.localdate()
    columns.add("birth_date")  # filled from the ID number when the column is absent
    good: list[_Row] = []
    seen: dict[str, int] = {}
    for row in rows:
        row_errors = _check_row(row, lookups, today)
        if row.id_hash:
            if row.id_hash in seen:
                row_errors.append(
                    RowError(
                        row.number,
                        _label("id_number"),
                        "id_number_duplicate",
                        f"身份证号与第{seen[row.id_hash]}行重复",
                    )
                )
            else:
                seen[row.id_hash] = row.number
        report.errors.extend(row_errors)
        if not row_errors and row.number not in formula_rows:
            good.append(row)
    existing: dict[str, PartyMember] = {
        str(m.id_number_hash): m
        for m in PartyMember.objects.filter(id_number_hash__in=[r.id_hash for r in good])
    }
    if street is not None and existing:
        # Within one street's import, a person registered in another street is a duplicate, not
        # an update: the street office must not overwrite another street's record.
        streets = _member_street_ids(m.pk for m in existing.values())
        kept = []
        for row in good:
            member = existing.get(row.id_hash)
            if member is not None and streets.get(member.pk) and street.pk not in streets[member.pk]:
                report.errors.append(
                    RowError(
                        row.number,
                        _label("id_number"),
                        "id_number_duplicate",
                        "该身份证号已在其他街道登记为党员",
                    )
                )
                continue
            kept.append(row)
        good = kept
    report.errors.sort(key=lambda e: (e.row, e.column))
    if report.errors and not partial:
        return report
    _write(good, existing, report, street, columns)
    return report


def _write(
    good: list[_Row],
    existing: dict[str, PartyMember],
    report: ImportReport,
    street: Street | None,
    columns: set[str],
) -> None:
    now = timezone.now()
    to_create: list[PartyMember] = []
    to_update: list[PartyMember] = []
    for row in good:
        f = row.fields
        member = existing.get(row.id_hash)
        if member is None:
            member = PartyMember(**f)
            member.id_number_cipher = row.id_sealed.cipher  # type: ignore[union-attr]
            member.id_number_hash = row.id_hash
            if row.phone_sealed is not None:
                member.phone_cipher, member.phone_hash = row.phone_sealed.cipher, row.phone_sealed.hash
            to_create.append(member)
            continue
        changed = False
        for name, column in WRITTEN_FIELDS.items():
            if column in columns and getattr(member, name) != f[name]:
                setattr(member, name, f[name])
                changed = True
        if row.phone_given:
            new_hash = row.phone_sealed.hash if row.phone_sealed else None
            # Compare hashes: Fernet cipher text differs on every encryption of the same number.
            if member.phone_hash != new_hash:
                member.phone_cipher = row.phone_sealed.cipher if row.phone_sealed else ""
                member.phone_hash = new_hash
                changed = True
        if changed:
            member.updated_at = now
            to_update.append(member)
        else:
            report.unchanged += 1
    with transaction.atomic():
        try:
            with transaction.atomic():
                PartyMember.objects.bulk_create(to_create, batch_size=1000)
                PartyMember.objects.bulk_update(
                    to_update, [*WRITTEN_FIELDS, "phone_cipher", "phone_hash", "updated_at"], batch_size=1000
                )
        except IntegrityError as exc:
            # Someone registered one of these people while the file was being checked.
            raise RosterError(
                "导入期间有人同时录入了相同身份证号的党员，请重新导入", code="import_conflict"
            ) from exc
        report.created, report.updated = len(to_create), len(to_update)
        report.written = True
        audit_record(
            action=AuditEvent.Action.IMPORT,
            object_type=PartyMember._meta.label,
            summary=f"导入党员名册 {report.summary()}",
            changes={
                "file": report.file_name,
                "rows": report.rows,
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "bad_rows": report.bad_rows,
                "partial": bool(report.errors),
            },
            street_id=street.pk if street is not None else None,
        )


# ---------------------------------------------------------------------------------------------
# Export


def _safe(value: str) -> str:
    """Keep a spreadsheet from running a cell as a formula (CSV/formula injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


def export_rows(members: QuerySet[PartyMember], *, unmasked: bool) -> Iterator[list[str]]:
    qs = members.select_related("organisation", "residence_building", "reported_community").order_by(
        "name", "id"
    )
    for m in qs.iterator(chunk_size=2000):
        id_number = pii.pii_reveal(m.id_number_cipher)
        phone = pii.pii_reveal(m.phone_cipher)
        if not unmasked:
            id_number, phone = pii.mask_id_number(id_number), pii.mask_phone(phone)
        yield [
            _safe(m.name),
            m.get_gender_display(),
            m.birth_date.isoformat() if m.birth_date else "",
            id_number,
            phone,
            m.organisation.code if m.organisation else "",
            m.residence_building.code if m.residence_building else "",
            EXPORT_CATEGORY.get(m.category, ""),
            m.get_status_display(),
            m.joined_on.isoformat() if m.joined_on else "",
            _safe(m.work_unit),
            m.reported_community.code if m.reported_community else "",
            m.dues_paid_through.strftime("%Y-%m") if m.dues_paid_through else "",
        ]


def members_export(
    *,
    members: QuerySet[PartyMember],
    path: Path,
    reason: str,
    unmasked: bool,
    street_id: int | None = None,
    scope: str = "",
) -> int:
    """Write `members` to an xlsx or csv file with the roster headers; audited with `reason`."""
    if not reason.strip():
        raise OrgError("导出个人信息必须填写事由", code="export_reason_required")
    suffix = path.suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        raise RosterError(
            f"不支持的文件类型：{suffix or '（无扩展名）'}，请使用 .xlsx 或 .csv", code="file_type"
        )
    count = 0
    with transaction.atomic():
        # The audit row commits only with a finished export: a failed write leaves no claim of one.
        if suffix == ".csv":
            with path.open("w", encoding="utf-8-sig", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(HEADERS)
                for values in export_rows(members, unmasked=unmasked):
                    writer.writerow(values)
                    count += 1
        else:
            from openpyxl import Workbook
            from openpyxl.cell import WriteOnlyCell

            wb = Workbook(write_only=True)
            ws = wb.create_sheet("党员名册")
            ws.append(HEADERS)
            for values in export_rows(members, unmasked=unmasked):
                cells = []
                for value in values:
                    cell = WriteOnlyCell(ws, value=value)
                    cell.data_type = "s"  # text, never a formula, and ID numbers keep all 18 digits
                    cells.append(cell)
                ws.append(cells)
                count += 1
            wb.save(path)
        audit_record(
            action=AuditEvent.Action.EXPORT,
            object_type=PartyMember._meta.label,
            summary=f"导出党员名册{count}人（{'含明文个人信息' if unmasked else '个人信息已脱敏'}）{scope}",
            changes={"file": path.name, "count": count, "unmasked": unmasked, "scope": scope},
            reason=reason.strip(),
            street_id=street_id,
        )
    return count
