"""The house rules as tests: imports run only downhill, no cycles, stand-ins stay apart.

import-linter reads the contracts from pyproject.toml; grimp (its graph library)
counts imports inside functions too, so a cycle cannot hide in a function body.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("kiosk", "devices", "offline_cache", "screens", "standins")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(cwd)}, timeout=300)


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def test_the_contracts_hold_on_the_tree():
    r = _lint_imports(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "broken" not in r.stdout.lower() or " 0 broken" in r.stdout, r.stdout


def _copy_tree(tmp_path: Path) -> Path:
    for p in PACKAGES:
        shutil.copytree(ROOT / p, tmp_path / p, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.mark.parametrize("victim, bad_import, contract", [
    ("kiosk/domain/identity.py", "import screens.app", "Layers: imports only run downhill"),
    ("offline_cache/outbox.py", "import devices.base", "Layers: imports only run downhill"),
    ("devices/base.py", "import standins.sam_emulator", "Layers: imports only run downhill"),
    ("screens/base.py", "import offline_cache.outbox", "Screens never touch a driver"),
    ("kiosk/domain/tracking.py", "import cv2", "The domain and the ports touch no devices"),
])
def test_a_deliberately_bad_import_fails_the_check(tmp_path, victim, bad_import, contract):
    tree = _copy_tree(tmp_path)
    path = tree / victim
    path.write_text(path.read_text("utf-8") + f"\n\ndef _sneaky():\n    {bad_import}  # noqa\n", "utf-8")
    r = _lint_imports(tree)
    assert r.returncode != 0, r.stdout
    assert contract in r.stdout and "BROKEN" in r.stdout, r.stdout


def _cycles(graph: grimp.ImportGraph, ignore_own_submodules: bool = False) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative).

    With `ignore_own_submodules`, a package's __init__ importing its own modules (re-exports)
    is not counted: that is not a cycle between modules.
    """
    modules = sorted(graph.modules)

    def imports_of(m: str) -> list[str]:
        got = graph.find_modules_directly_imported_by(m)
        return sorted(c for c in got if not (ignore_own_submodules and c.startswith(m + ".")))

    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, iter(imports_of(root)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(imports_of(child))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def test_no_module_level_import_cycles_counting_function_level_imports(graph):
    assert _cycles(graph, ignore_own_submodules=True) == []


def test_the_cycle_finder_finds_a_cycle():
    g = grimp.ImportGraph()
    for m in ("a", "a.x", "a.y", "a.z"):
        g.add_module(m)
    g.add_import(importer="a.x", imported="a.y")
    g.add_import(importer="a.y", imported="a.z")
    g.add_import(importer="a.z", imported="a.x")
    assert _cycles(g) == [["a.x", "a.y", "a.z"]]


def test_no_runtime_module_imports_a_stand_in(graph):
    composition_root = ("kiosk.cli", "kiosk.bootstrap", "standins")
    offenders = []
    for m in graph.modules:
        if m.startswith(composition_root):
            continue
        for imported in graph.find_modules_directly_imported_by(m):
            if imported == "standins" or imported.startswith("standins."):
                offenders.append((m, imported))
    assert offenders == []
