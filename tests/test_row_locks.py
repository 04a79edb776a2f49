"""A write locks only the row it changes: a ``select_for_update()`` that also joins related rows (``select_related``)
names the rows to lock with ``of=("self",)``. Without it PostgreSQL locks every joined row too (``FOR UPDATE`` covers
the whole join), so a participant write would lock its study and site rows and every write in a study would run one at
a time, and an insert checking its foreign key to the study at COMMIT would wait on it (issue 14, "Deadlocks")."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP = {".venv", "node_modules", "tests", "bench", "var"}


def _chain(node: ast.expr) -> list[ast.Call]:
    """The calls of a method chain, outermost first (``a.b().c().d()`` gives d, c, b)."""
    calls = []
    while True:
        if isinstance(node, ast.Call):
            calls.append(node)
            node = node.func
        elif isinstance(node, ast.Attribute):
            node = node.value
        else:
            return calls


def _name(call: ast.Call) -> str:
    return call.func.attr if isinstance(call.func, ast.Attribute) else ""


def unqualified_locks(source: str, filename: str) -> list[str]:
    found = []
    tree = ast.parse(source, filename)
    seen: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or id(node) in seen:
            continue
        calls = _chain(node)
        seen.update(id(call) for call in calls)
        names = [_name(call) for call in calls]
        if "select_for_update" in names and "select_related" in names:
            lock = calls[names.index("select_for_update")]
            if not any(keyword.arg == "of" for keyword in lock.keywords):
                found.append(f"{filename}:{lock.lineno}")
    return found


def test_the_scan_finds_a_lock_that_joins_related_rows():
    assert unqualified_locks("P.objects.select_for_update().select_related('study').get(pk=1)", "x.py") == ["x.py:1"]
    assert unqualified_locks("P.objects.select_related('study').select_for_update().first()", "x.py") == ["x.py:1"]
    assert unqualified_locks("P.objects.select_for_update(of=('self',)).select_related('study').get()", "x.py") == []
    assert unqualified_locks("P.objects.select_for_update().filter(study=s).first()", "x.py") == []


def test_every_lock_with_select_related_locks_only_its_own_rows():
    offenders = []
    files = 0
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if SKIP & set(relative.parts):
            continue
        files += 1
        offenders += unqualified_locks(path.read_text(encoding="utf-8"), str(relative))
    assert files > 100, "the scan reads the code base"
    assert offenders == [], "select_for_update() with select_related() locks the joined rows too: pass of=('self',)"
