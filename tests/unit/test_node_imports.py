"""The node package's import graph has no cycle, and its light parts stay light.

Every import between modules of ``p2pchat/node/`` counts: at the top, inside a
function, and under ``TYPE_CHECKING`` (a cycle there is still two modules that
each need the other; a module gets the core as ``NodeCore``, core_protocol.py).
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import p2pchat.node

PACKAGE = "p2pchat.node"
PACKAGE_DIR = Path(p2pchat.node.__file__).parent


def import_graph(package_dir: Path, package: str) -> dict[str, set[str]]:
    """module -> the modules of the package it imports (``__init__`` for the package)."""
    modules = {path.stem for path in package_dir.glob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name in modules:
        tree = ast.parse((package_dir / f"{name}.py").read_text(), filename=f"{name}.py")
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: from . import x, from .x import y
                    base = package if node.level == 1 else package.rsplit(".", node.level - 1)[0]
                    module = f"{base}.{node.module}" if node.module else base
                else:
                    module = node.module or ""
                # ``from p2pchat.node import core`` imports a module; ``import Node``, __init__.
                targets = [module]
                if module == package:
                    targets = [f"{package}.{a.name}" for a in node.names if a.name in modules]
                    if len(targets) < len(node.names):
                        targets.append(package)
            else:
                continue
            for target in targets:
                if target == package:
                    graph[name].add("__init__")
                elif target.startswith(package + "."):
                    graph[name].add(target.removeprefix(package + ".").split(".")[0])
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        path.append(module)
        for imported in sorted(graph.get(module, ())):
            if (cycle := visit(imported)) is not None:
                return cycle
        path.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        if (cycle := visit(module)) is not None:
            return cycle
    return None


def test_the_node_package_has_no_import_cycle() -> None:
    graph = import_graph(PACKAGE_DIR, PACKAGE)
    assert {"core", "guests", "events"} <= graph.keys()  # the right directory
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle in p2pchat/node/: " + " -> ".join(cycle)


def test_a_cycle_through_type_checking_is_found(tmp_path: Path) -> None:
    # The shape the package replaced: node.py imported guest_host.py, which imported
    # node.py back under TYPE_CHECKING (and inside a function).
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "core.py").write_text("from p2pchat.node.guests import GuestHost\n")
    (tmp_path / "guests.py").write_text(
        textwrap.dedent("""\
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from p2pchat.node.core import Node
        """)
    )
    (tmp_path / "lan_view.py").write_text("")
    (tmp_path / "other.py").write_text("from . import lan_view\nfrom .core import x\n")
    graph = import_graph(tmp_path, PACKAGE)
    assert graph["other"] == {"lan_view", "core"}
    assert find_cycle(graph) == ["core", "guests", "core"]


def test_a_cycle_through_the_package_init_is_found(tmp_path: Path) -> None:
    (tmp_path / "__init__.py").write_text("from p2pchat.node.core import Node\n")
    (tmp_path / "core.py").write_text("def f():\n    from p2pchat.node import Node, events\n")
    (tmp_path / "events.py").write_text("")
    graph = import_graph(tmp_path, PACKAGE)
    assert graph["core"] == {"__init__", "events"}
    assert find_cycle(graph) == ["__init__", "core", "__init__"]


# The front ends (the TUI, ``watch``) and the CLI import these without the node:
# the package __init__ loads the core (aiortc, the store) only on first use.
LIGHT = (
    "import sys, p2pchat.node.events, p2pchat.node.peer_match, p2pchat.node.invites;"
    " print(sorted(m for m in sys.modules"
    " if m.split('.')[0] in ('aiortc', 'sqlcipher3') or m == 'p2pchat.node.core'))"
)


def test_events_peer_match_and_invites_do_not_load_the_node() -> None:
    result = subprocess.run(
        [sys.executable, "-c", LIGHT], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


def test_every_public_name_resolves_to_its_modules_object() -> None:
    for name in p2pchat.node.__all__:
        value = getattr(p2pchat.node, name)
        homes = [
            module for module in ("config", "core", "core_protocol")
            if getattr(importlib.import_module(f"{PACKAGE}.{module}"), name, None) is value
        ]  # fmt: skip
        assert homes, name
