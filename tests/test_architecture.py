"""The shape of the code: no import cycle, arrows between apps going one way, and no app querying another app's models.

The import graph comes from grimp, which reads every import statement, including those inside functions (a lazy import
is still a dependency, and still closes a cycle at run time). Failures name the import chain with file and line.
"""

from __future__ import annotations

import ast
import importlib
from collections import deque
from functools import cache
from pathlib import Path

import grimp
import pytest
from django.apps import apps
from django.db import models

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "trialsite"
DOMAIN_APPS = (
    "participants",
    "scheduling",
    "assessments",
    "safety",
    "notifications",
    "exports",
    "audit",
    "dashboard",
    "accounts",
)
PACKAGES = (PROJECT, *DOMAIN_APPS)
# The project hub wires every app together (URLs, the Celery app and its schedule, settings, the server entry points),
# so it may import any app. The rest of trialsite is a foundation every app imports (errors, roles, follow-ups): it is
# an ordinary node of the app graph.
# trialsite/__init__.py belongs to the hub too: it loads the Celery app, as Celery documents.
HUB = {PROJECT} | {f"{PROJECT}.{name}" for name in ("urls", "celery", "settings", "wsgi", "asgi", "beat")}
CORE = "trialsite (non-hub)"
# What each app may import. The arrows go one way: scheduling reads participants; assessments reads scheduling and
# participants; notifications reads those three; exports reads everything; nothing imports notifications, exports or
# dashboard (the staff pages); audit (the append-only record every app writes to) imports no domain app. The non-hub part of trialsite must not
# reach notifications or exports (a cycle through it is caught by the app-cycle test).
ALLOWED = {
    "audit": {CORE},
    "participants": {CORE, "audit"},
    "scheduling": {CORE, "audit", "participants"},
    "assessments": {CORE, "audit", "participants", "scheduling"},
    # Safety (adverse events, dosing records and vitals; later medications, blinding guesses) reads assessments only to
    # raise its alerts into the one safety-alert list; assessments never imports safety.
    "safety": {CORE, "audit", "participants", "scheduling", "assessments"},
    "notifications": {CORE, "audit", "participants", "scheduling", "assessments", "safety"},
    "exports": {CORE, "audit", "participants", "scheduling", "assessments", "safety", "notifications"},
    # The staff pages read through every domain app's selectors and write through its services; nothing imports them.
    "dashboard": {CORE, "audit", "participants", "scheduling", "assessments", "safety", "notifications", "accounts"},
    # Staff accounts' own credentials (API tokens, calendar-feed secrets, the second factor): only the staff pages and
    # the hub (settings) use it.
    "accounts": {CORE, "audit"},
    CORE: {"audit", "participants", "scheduling", "assessments"},
}
# Tests are not part of the graph: the packages above are the application. (Tests may import whatever they check.)


@cache
def graph(*, runtime_only: bool) -> grimp.ImportGraph:
    # runtime_only leaves out imports under ``if TYPE_CHECKING:``, which never run and so cannot form a cycle at run
    # time. The direction rules count them: an annotation naming another app is a dependency on it all the same.
    return grimp.build_graph(*PACKAGES, exclude_type_checking_imports=runtime_only, cache_dir=None)


def app_of(module: str) -> str | None:
    """The node of the app graph a module belongs to; None for the hub, which is exempt."""
    if module in HUB:
        return None
    top = module.split(".")[0]
    return CORE if top == PROJECT else top


@cache
def edges(*, runtime_only: bool) -> dict[str, set[str]]:
    g = graph(runtime_only=runtime_only)
    return {m: set(g.find_modules_directly_imported_by(m)) for m in g.modules}


def describe_edge(importer: str, imported: str, *, runtime_only: bool = False) -> str:
    details = graph(runtime_only=runtime_only).get_import_details(importer=importer, imported=imported)
    if not details:
        return f"{importer} -> {imported}"
    first = details[0]
    path = importer.replace(".", "/")
    path = f"{path}/__init__.py" if (ROOT / path).is_dir() else f"{path}.py"
    more = f" (+{len(details) - 1} more)" if len(details) > 1 else ""
    return f"{path}:{first['line_number']}: {first['line_contents'].strip()}  [{importer} -> {imported}]{more}"


def describe_chain(chain: list[str], *, runtime_only: bool = False) -> str:
    return "\n      ".join(
        describe_edge(a, b, runtime_only=runtime_only) for a, b in zip(chain, chain[1:], strict=False)
    )


def shortest_path(adjacency: dict[str, set[str]], starts: set[str], goals: set[str]) -> list[str] | None:
    """Breadth-first: the shortest import chain from any of ``starts`` to any of ``goals``."""
    parent: dict[str, str | None] = {s: None for s in starts}
    queue = deque(sorted(starts))
    while queue:
        node = queue.popleft()
        for nxt in sorted(adjacency.get(node, ())):
            if nxt in parent:
                continue
            parent[nxt] = node
            if nxt in goals:
                chain = [nxt]
                while parent[chain[-1]] is not None:
                    chain.append(parent[chain[-1]])  # type: ignore[arg-type]
                return chain[::-1]
            queue.append(nxt)
    return None


def strongly_connected(adjacency: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (the graph is small, but recursion depth should not depend on it)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(adjacency):
        if root in index:
            continue
        work = [(root, iter(sorted(adjacency[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(adjacency.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def cycles(adjacency: dict[str, set[str]]) -> list[list[str]]:
    """One concrete cycle (first node repeated at the end) per strongly connected component that has one."""
    found = []
    for component in strongly_connected(adjacency):
        members = set(component)
        start = component[0]
        if len(component) == 1 and start not in adjacency.get(start, ()):
            continue
        inner = {n: adjacency.get(n, set()) & members for n in members}
        back = shortest_path(inner, inner[start], {start}) if start not in inner[start] else [start]
        assert back is not None
        found.append([start, *back])
    return found


# --- import graph ----------------------------------------------------------------------------------------------------


def test_the_graph_covers_every_package():
    g = graph(runtime_only=False)
    for package in PACKAGES:
        assert g.find_children(package), f"grimp found no modules in {package}"


def test_the_graph_counts_imports_inside_functions(tmp_path, monkeypatch):
    package = tmp_path / "architecture_probe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from architecture_probe import b\n    return b\n")
    (package / "b.py").write_text("from architecture_probe import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    probe = grimp.build_graph("architecture_probe", cache_dir=None)
    adjacency = {m: set(probe.find_modules_directly_imported_by(m)) for m in probe.modules}
    assert cycles(adjacency) == [["architecture_probe.a", "architecture_probe.b", "architecture_probe.a"]]


def test_no_import_cycle_between_modules():
    found = cycles(edges(runtime_only=True))
    message = "\n".join(f"  cycle {' -> '.join(c)}:\n      {describe_chain(c, runtime_only=True)}" for c in found)
    assert not found, f"{len(found)} import cycle(s) between modules:\n{message}"


def app_edges(adjacency: dict[str, set[str]]) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(importing app, imported app) -> the module imports behind that arrow (hub modules left out)."""
    arrows: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for importer, imported_set in adjacency.items():
        source = app_of(importer)
        if source is None:
            continue
        for imported in imported_set:
            target = app_of(imported)
            if target is None or target == source:
                continue
            arrows.setdefault((source, target), []).append((importer, imported))
    return arrows


def app_cycles(adjacency: dict[str, set[str]], describe=describe_edge) -> list[str]:
    arrows = app_edges(adjacency)
    apps_graph: dict[str, set[str]] = {}
    for source, target in arrows:
        apps_graph.setdefault(source, set()).add(target)
        apps_graph.setdefault(target, set())
    lines = []
    for cycle in cycles(apps_graph):
        lines.append(f"  apps {' -> '.join(cycle)}:")
        for source, target in zip(cycle, cycle[1:], strict=False):
            importer, imported = sorted(arrows[(source, target)])[0]
            lines.append(f"      {describe(importer, imported)}")
    return lines


def direction_problems(adjacency: dict[str, set[str]], describe=describe_edge) -> list[str]:
    """Imports against ALLOWED, direct ones listed one by one, indirect ones as the shortest chain (which may pass
    through the hub: importing trialsite.urls must not smuggle in notifications)."""
    by_app: dict[str, set[str]] = {}
    for module in adjacency:
        node = app_of(module)
        if node is not None:
            by_app.setdefault(node, set()).add(module)
    problems = []
    for source, allowed in sorted(ALLOWED.items()):
        starts = by_app.get(source, set())
        for target in sorted(set(ALLOWED) - allowed - {source}):
            goals = by_app.get(target, set())
            direct = sorted((a, b) for a in starts for b in adjacency[a] if b in goals)
            if direct:
                problems.append(f"  {source} must not import {target}:")
                problems += [f"      {describe(a, b)}" for a, b in direct]
                continue
            chain = shortest_path(adjacency, starts, goals)
            if chain:
                problems.append(f"  {source} reaches {target} through other modules:")
                problems += [f"      {describe(a, b)}" for a, b in zip(chain, chain[1:], strict=False)]
    return problems


def test_no_import_cycle_between_apps():
    lines = app_cycles(edges(runtime_only=False))
    assert not lines, "cycles between apps:\n" + "\n".join(lines)


def test_imports_between_apps_go_one_way():
    problems = direction_problems(edges(runtime_only=False))
    assert not problems, "imports against the allowed direction between apps:\n" + "\n".join(problems)


def test_the_app_rules_catch_wrong_arrows_and_hub_detours():
    """The checks above, on a made-up graph, so that they are known to fail when they should."""
    adjacency = {
        "participants.services": {"trialsite.urls", "audit.services"},
        "trialsite.urls": {"notifications.api"},
        "notifications.api": {"scheduling.selectors"},
        "scheduling.selectors": {"participants.models"},
        "participants.models": set(),
        "audit.services": {"trialsite.errors"},
        "trialsite.errors": set(),
        "trialsite.followups": {"exports.api"},
        "exports.api": {"notifications.api"},
    }

    def plain(a: str, b: str) -> str:
        return f"{a} -> {b}"

    assert direction_problems(adjacency, plain) == [
        "  participants reaches notifications through other modules:",
        "      participants.services -> trialsite.urls",
        "      trialsite.urls -> notifications.api",
        "  participants reaches scheduling through other modules:",
        "      participants.services -> trialsite.urls",
        "      trialsite.urls -> notifications.api",
        "      notifications.api -> scheduling.selectors",
        "  trialsite (non-hub) must not import exports:",
        "      trialsite.followups -> exports.api",
        "  trialsite (non-hub) reaches notifications through other modules:",
        "      trialsite.followups -> exports.api",
        "      exports.api -> notifications.api",
    ]
    # Through trialsite's foundation, trialsite.followups -> exports closes a cycle with audit -> trialsite.errors.
    assert app_cycles(adjacency, plain)[0] == (
        "  apps audit -> trialsite (non-hub) -> exports -> notifications -> scheduling -> participants -> audit:"
    )
    # The hub is not a node: a detour through it is the direction test's to catch.
    adjacency["trialsite.followups"] = set()
    assert app_cycles(adjacency, plain) == []
    adjacency["audit.services"].add("participants.models")
    assert app_cycles(adjacency, plain) == [
        "  apps audit -> participants -> audit:",
        "      audit.services -> participants.models",
        "      participants.services -> audit.services",
    ]


# --- cross-app model queries ---------------------------------------------------------------------------------------

MANAGERS = {"objects", "_default_manager", "_base_manager"}


def project_models() -> dict[type[models.Model], str]:
    """Every model class of the project's apps -> the package of the app that owns it."""
    owners = {}
    for config in apps.get_app_configs():
        package = config.name.split(".")[0]
        if package in PACKAGES:
            for model in config.get_models():
                owners[model] = package
    return owners


def source_files() -> list[Path]:
    files = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).parts
            if "migrations" in parts or "tests" in parts or path.name.startswith("test_"):
                continue
            files.append(path)
    return files


def _import_target(module: str, name: str):
    """The object ``from module import name`` binds, or None when it cannot be loaded."""
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    if hasattr(mod, name):
        return getattr(mod, name)
    try:
        return importlib.import_module(f"{module}.{name}")
    except ImportError:
        return None


class _Bindings(ast.NodeVisitor):
    """Local names bound by imports anywhere in a file (module level or inside functions) -> the object they name."""

    def __init__(self, module: str, is_package: bool):
        self.module = module
        self.is_package = is_package
        self.names: dict[str, object] = {}

    def visit_Import(self, node: ast.Import) -> None:  # noqa: N802 (ast's naming)
        for alias in node.names:
            if alias.asname:
                target = _safe_import(alias.name)
                if target is not None:
                    self.names[alias.asname] = target
            else:
                top = alias.name.split(".")[0]
                target = _safe_import(top)
                if target is not None:
                    self.names[top] = target

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:  # noqa: N802
        module = node.module or ""
        if node.level:
            base = self.module.split(".")
            base = base if self.is_package else base[:-1]
            base = base[: len(base) - (node.level - 1)]
            module = ".".join([*base, module] if module else base)
        for alias in node.names:
            if alias.name == "*":
                continue
            target = _import_target(module, alias.name)
            if target is not None:
                self.names[alias.asname or alias.name] = target


def _safe_import(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _resolve(node: ast.expr, names: dict[str, object]):
    """The object an expression like ``Visit``, ``V``, ``models.Visit`` or ``scheduling.models.Visit`` names."""
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _resolve(node.value, names)
        return getattr(base, node.attr, None) if base is not None else None
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get_model"
        and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args)
        and node.args
    ):
        try:
            return apps.get_model(*[a.value for a in node.args])  # type: ignore[union-attr]
        except (LookupError, ValueError):
            return None
    return None


def cross_app_queries(relative: Path, text: str, owners: dict[type[models.Model], str]) -> list[str]:
    """``<Model>.objects`` (or another default manager) in the file at ``relative`` where the model belongs to another
    app than the file. Names are resolved through the file's imports, aliases and module imports included."""
    parts = list(relative.with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    module = ".".join(parts[:-1] if is_package else parts)
    app = parts[0]
    tree = ast.parse(text, filename=str(relative))
    bindings = _Bindings(module, is_package)
    bindings.visit(tree)
    # Plain assignments of a model to a name (``Model = apps.get_model(...)``, ``V = Visit``), in source order.
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target = _resolve(node.value, bindings.names)
            if isinstance(target, type) and target in owners:
                bindings.names[node.targets[0].id] = target
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in MANAGERS:
            target = _resolve(node.value, bindings.names)
            if isinstance(target, type) and target in owners and owners[target] != app:
                found.append(
                    f"  {relative}:{node.lineno}: {target.__name__}.{node.attr} "
                    f"({owners[target]}.{target.__name__} queried from {app})"
                )
    return found


def _line_number(line: str) -> int:
    return int(line.split(":")[1])


PROBE = """
from django.apps import apps
import scheduling.models
from scheduling import models as sm
from scheduling.models import Visit as V


def reads():
    from assessments.models import Response
    from participants.models import Participant

    V.objects.all()
    scheduling.models.Room._default_manager.all()
    sm.Booking.objects.all()
    Response.objects.all()
    apps.get_model("notifications", "Notification").objects.all()
    Participant.objects.all()  # its own app: fine
    Alert = apps.get_model("assessments.SafetyAlert")
    Alert.objects.all()
    return V, Response  # annotations and id filters may name the class: fine
"""


def test_the_model_scan_resolves_aliases_and_module_paths():
    owners = project_models()
    assert set(owners.values()) >= {"participants", "scheduling", "assessments", "notifications", "exports", "audit"}
    found = cross_app_queries(Path("participants/probe.py"), PROBE, owners)
    flagged = sorted(line.split(": ", 1)[1].split(" ")[0] for line in found)
    assert flagged == [
        "Booking.objects",
        "Notification.objects",
        "Response.objects",
        "Room._default_manager",
        "SafetyAlert.objects",
        "Visit.objects",
    ], found


def test_no_app_queries_another_apps_models():
    """Outside its own app a model is read through that app's selectors: ``Visit.objects`` (however imported) anywhere
    but in scheduling is a reach-in. Importing the class for an annotation or an id filter is fine."""
    owners = project_models()
    found = []
    for path in source_files():
        found += sorted(cross_app_queries(path.relative_to(ROOT), path.read_text(), owners), key=_line_number)
    assert not found, f"{len(found)} queries of another app's models:\n" + "\n".join(found)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_is_scanned(package):
    assert any(path.relative_to(ROOT).parts[0] == package for path in source_files())
