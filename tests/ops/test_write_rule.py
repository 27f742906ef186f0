"""The write rule, enforced: the edge (API views, admin classes, page views) parses, calls a service,
renders. It never writes to the ORM itself and never manages a transaction: the service is the
one atomic action that checks the rules and writes the audit row, on every route.

Two checks, because a write can hide two ways:
- in the source: every module named api*/apis*/admin*/views* under the apps, and every module
  inside an apis/, admin/ or views/ package, is parsed (ast) and any ORM write call or use of
  `transaction` is a finding;
- in Django's defaults: an admin class that does not override `save_model` writes with
  `obj.save()` without a single line of its own, so the registry is walked too.

Findings in a file someone is still moving to services are listed in PENDING, not allowed: the
test fails once such a file is clean, so its entry cannot outlive the work.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import RequestFactory

ROOT = Path(__file__).resolve().parents[2]
APPS = ("grid", "orgs", "mapping", "edge")
EDGE_PREFIXES = ("api", "admin", "views")

# Method names that write through a model, queryset, manager, related manager, form or formset
# (form.save(), formset.save(), form.save_m2m()), or raw SQL through a cursor.
WRITE_METHODS = frozenset(
    {
        "save",
        "delete",
        "update",
        "create",
        "bulk_create",
        "bulk_update",
        "get_or_create",
        "update_or_create",
        "save_m2m",
        "set",
        "add",
        "remove",
        "clear",
        "execute",
        "executemany",
    }
)
# Django's admin hooks whose default implementation writes: calling the default is a write.
DEFAULT_WRITE_HOOKS = frozenset(
    {"save_model", "delete_model", "delete_queryset", "save_formset", "save_related"}
)

# The allow-list: (file, enclosing function, call) -> why it is not a write of the domain.
# Each entry names one place; a new one needs the same kind of reason.
ALLOWED: dict[tuple[str, str, str], str] = {
    (
        "grid/admin_audit.py",
        "AuditedAdminMixin.response_action",
        "transaction.atomic",
    ): "the one transaction around Django's bulk actions: Django's delete_selected writes its log "
    "entries (and our audit rows for users, groups and tokens, which no service of ours writes) "
    "before it deletes, and a bulk delete of units calls one service per unit; neither is atomic "
    "as a whole without it. It writes nothing itself.",
}

# Files still being moved to services by their owner: their findings are expected, not allowed.
PENDING: dict[str, str] = {}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    where: str
    call: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} in {self.where}: {self.call}"


def _is_plain_container(node: ast.expr) -> bool:
    """A dict, set or list built here: `.update()`/`.add()` on it is not an ORM write."""
    if isinstance(node, ast.Dict | ast.Set | ast.List | ast.DictComp | ast.SetComp | ast.ListComp):
        return True
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in {"dict", "set", "list", "defaultdict", "Counter", "OrderedDict"}
    )


class _Checker(ast.NodeVisitor):
    def __init__(self, path: str, allowed: dict[tuple[str, str, str], str]) -> None:
        self.path = path
        self.allowed = allowed
        self.findings: list[Finding] = []
        self.scope: list[str] = []
        # Per function: local names bound to plain containers (and **kwargs).
        self.containers: list[set[str]] = [set()]

    # --- scopes -----------------------------------------------------------------------------

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scope.append(node.name)
        for decorator in node.decorator_list:
            self.visit(decorator)
        plain = {node.args.kwarg.arg} if node.args.kwarg else set()
        for child in ast.walk(node):
            if isinstance(child, ast.Assign) and _is_plain_container(child.value):
                plain |= {t.id for t in child.targets if isinstance(t, ast.Name)}
            elif (
                isinstance(child, ast.AnnAssign)
                and child.value is not None
                and isinstance(child.target, ast.Name)
                and _is_plain_container(child.value)
            ):
                plain.add(child.target.id)
        self.containers.append(plain)
        for child in node.body:
            self.visit(child)
        self.containers.pop()
        self.scope.pop()

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function

    # --- findings ---------------------------------------------------------------------------

    def _add(self, node: ast.AST, call: str) -> None:
        where = ".".join(self.scope) or "<module>"
        if (self.path, where, call) in self.allowed:
            return
        self.findings.append(Finding(self.path, getattr(node, "lineno", 0), where, call))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module == "django.db.transaction":
            self._add(node, f"from django.db.transaction import {', '.join(a.name for a in node.names)}")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        # Any use of the transaction module: `with transaction.atomic()`, `@transaction.atomic`,
        # `transaction.on_commit(...)`.
        if isinstance(node.value, ast.Name) and node.value.id == "transaction":
            self._add(node, f"transaction.{node.attr}")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute):
            receiver = func.value
            is_super = (
                isinstance(receiver, ast.Call)
                and isinstance(receiver.func, ast.Name)
                and receiver.func.id == "super"
            )
            if is_super and func.attr in DEFAULT_WRITE_HOOKS:
                self._add(node, f"super().{func.attr}(...)")
            elif func.attr in WRITE_METHODS and not is_super:
                plain = isinstance(receiver, ast.Name) and receiver.id in self.containers[-1]
                if not plain:
                    self._add(node, f"{ast.unparse(func)}(...)")
        self.generic_visit(node)


def check_source(
    source: str, path: str = "<snippet>", allowed: dict[tuple[str, str, str], str] = ALLOWED
) -> list[Finding]:
    checker = _Checker(path, allowed)
    checker.visit(ast.parse(source))
    return checker.findings


def edge_modules() -> list[Path]:
    found = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if "migrations" in rel.parts or "management" in rel.parts:
                continue
            packages = rel.parts[1:-1]
            if path.stem.startswith(EDGE_PREFIXES) or any(p.startswith(EDGE_PREFIXES) for p in packages):
                found.append(path)
    return found


def edge_findings() -> list[Finding]:
    out: list[Finding] = []
    for path in edge_modules():
        rel = path.relative_to(ROOT).as_posix()
        out.extend(check_source(path.read_text(encoding="utf-8"), rel))
    return out


# --- the rule holds over the tree ------------------------------------------------------------


def test_the_checker_reads_every_edge_module():
    names = {p.relative_to(ROOT).as_posix() for p in edge_modules()}
    assert {"grid/admin.py", "grid/apis.py", "orgs/views.py", "edge/api.py"} <= names
    assert {"orgs/admin/people.py", "orgs/admin/organisations.py", "orgs/apis/members.py"} <= names
    assert not any("/services" in n or n.endswith("services.py") for n in names)


def test_no_edge_module_writes_to_the_orm_or_opens_a_transaction():
    findings = [f for f in edge_findings() if f.path not in PENDING]
    assert not findings, "writes outside the services:\n" + "\n".join(map(str, findings))


def test_a_pending_file_is_still_pending():
    # Remove a PENDING entry once its file is clean, so the list only names work in progress.
    findings = {f.path for f in edge_findings()}
    assert not [path for path in PENDING if path not in findings], "clean files still in PENDING"


def test_every_allow_list_entry_is_still_needed():
    for path, where, call in ALLOWED:
        raw = check_source((ROOT / path).read_text(encoding="utf-8"), path, allowed={})
        assert any((f.where, f.call) == (where, call) for f in raw), f"unused: {path} {where} {call}"


# --- the checker finds what it must (so a green run means something) ------------------------


@pytest.mark.parametrize(
    "snippet, call",
    [
        ("def save_model(self, request, obj, form, change):\n    obj.save()", "obj.save(...)"),
        (
            "def f(pk):\n    Rectification.objects.filter(pk=pk).update(reasons='x')",
            "Rectification.objects.filter(pk=pk).update(...)",
        ),
        ("def f(org):\n    CommitteeSeat.objects.create(org=org)", "CommitteeSeat.objects.create(...)"),
        ("def f(seat, c):\n    seat.liaison_communities.set(c)", "seat.liaison_communities.set(...)"),
        ("def f(obj):\n    obj.delete()", "obj.delete(...)"),
        ("def f(form):\n    form.save_m2m()", "form.save_m2m(...)"),
        (
            "class A:\n    def save_model(self, *a):\n        super().save_model(*a)",
            "super().save_model(...)",
        ),
        (
            "class A:\n    def delete_queryset(self, r, qs):\n        super().delete_queryset(r, qs)",
            "super().delete_queryset(...)",
        ),
        ("def f():\n    with transaction.atomic():\n        pass", "transaction.atomic"),
        ("@transaction.atomic\ndef post(self, request):\n    pass", "transaction.atomic"),
        ("from django.db.transaction import atomic", "from django.db.transaction import atomic"),
        ("def f(cursor):\n    cursor.execute('DELETE FROM x')", "cursor.execute(...)"),
    ],
)
def test_the_checker_finds_a_write(snippet, call):
    assert [f.call for f in check_source(snippet)] == [call]


def test_the_checker_leaves_plain_containers_and_non_writes_alone():
    snippet = (
        "def get_context_data(self, **kwargs):\n"
        "    context = {'a': 1}\n"
        "    context.update(b=2)\n"
        "    kwargs.update(c=3)\n"
        "    seen: set[str] = set()\n"
        "    seen.add('x')\n"
        "    return services.thing_update(reach=self.reach, obj=self.get_object())\n"
    )
    assert check_source(snippet) == []
    # The same call on something not built here is a finding: the receiver could be a queryset.
    assert [f.call for f in check_source("def f(headers):\n    headers.update(x=1)")] == [
        "headers.update(...)"
    ]


def test_an_allow_list_entry_covers_one_place_only():
    source = (
        "class AuditedAdminMixin:\n"
        "    def response_action(self):\n"
        "        with transaction.atomic():\n"
        "            pass\n"
    )
    assert check_source(source, "grid/admin_audit.py") == []
    assert check_source(source, "orgs/admin/people.py") != []


# --- Django's default writes: every admin of our models overrides them ------------------------


def _superuser_request():
    request = RequestFactory().get("/admin/")
    request.user = User(username="root", is_superuser=True, is_staff=True, is_active=True)
    return request


def admin_default_writes() -> list[str]:
    """Admins of our apps that would write through Django's defaults: a page that may add or
    change without an own save_model, a delete without an own delete_model, the bulk delete
    action without an own delete_queryset, inlines without an own save_formset, many-to-many
    fields saved by the default save_related."""
    request = _superuser_request()
    out: list[str] = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in APPS:
            continue
        cls = type(model_admin)
        name = f"{cls.__module__}.{cls.__name__}"
        writes = model_admin.has_add_permission(request) or model_admin.has_change_permission(request)
        if writes and cls.save_model is admin.ModelAdmin.save_model:
            out.append(f"{name}: save_model is Django's obj.save()")
        if writes and model._meta.many_to_many and cls.save_related is admin.ModelAdmin.save_related:
            out.append(f"{name}: save_related is Django's form.save_m2m()")
        if model_admin.has_delete_permission(request):
            if cls.delete_model is admin.ModelAdmin.delete_model:
                out.append(f"{name}: delete_model is Django's obj.delete()")
            if (
                "delete_selected" in model_admin.get_actions(request)
                and cls.delete_queryset is admin.ModelAdmin.delete_queryset
            ):
                out.append(f"{name}: delete_queryset is Django's queryset.delete()")
        inline_writes = any(
            inline.has_add_permission(request, None)
            or inline.has_change_permission(request)
            or inline.has_delete_permission(request)
            for inline in model_admin.get_inline_instances(request)
        )
        if inline_writes and cls.save_formset is admin.ModelAdmin.save_formset:
            out.append(f"{name}: save_formset is Django's formset.save()")
    return out


def _module_path(line: str) -> str:
    return line.split(":")[0].rsplit(".", 1)[0].replace(".", "/") + ".py"


@pytest.mark.django_db
def test_no_admin_of_our_models_writes_through_djangos_defaults():
    found = [line for line in admin_default_writes() if _module_path(line) not in PENDING]
    assert not found, "\n".join(found)
