"""The import graph of ``platform_ctl``: no cycle, and every import goes down the layers.

Layers, top to bottom: cli → commands → core → infra → leaves. A module imports modules of its own
layer or below; imports inside functions count (they are how cycles hide), imports under
``if TYPE_CHECKING:`` do not (they never run). A new module must be given a layer here.
"""

from __future__ import annotations

import ast
from pathlib import Path

from platform_ctl.paths import COLLECTION_ROOT

PACKAGE = COLLECTION_ROOT / "platform_ctl"

LAYERS: dict[str, tuple[str, ...]] = {
    # parses, calls one function, renders
    "cli": ("__main__", "cli", "params", "display"),
    # what a command does to an environment
    "commands": ("deploy", "scaling", "rotation", "backups", "operations", "monitoring", "envinit",
                 "reach"),
    # the engine, its runners (Ansible, the shipped checks), the spec and what an environment is made of
    "core": ("engine", "environment", "spec", "vault", "inventory", "runner", "verify", "verify_plugin", "checks"),
    # the backends: hosts from a spec
    "infra": ("infra",),
    # imported by everything, importing only each other
    "leaves": ("access", "artifacts", "catalogue", "errors", "events", "history", "paths", "pki", "promql",
               "wheelhouse", ""),
}
ORDER = list(LAYERS)


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str:
    top = module.split(".", maxsplit=1)[0]
    for layer, tops in LAYERS.items():
        if top in tops:
            return layer
    raise AssertionError(f"platform_ctl.{module} has no layer: add it to LAYERS in {__file__}")


def import_graph() -> dict[str, set[str]]:
    """platform_ctl module -> the platform_ctl modules it imports at run time (relative names)."""
    modules = {_name(p): p for p in PACKAGE.rglob("*.py")}

    def resolve(dotted: str) -> str | None:
        name = dotted.removeprefix("platform_ctl").removeprefix(".")
        while name not in modules:
            if not name:
                return None
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                       and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        edges: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("platform_ctl"):
                edges |= {resolve(f"{node.module}.{a.name}") or resolve(node.module) or "" for a in node.names}
            elif isinstance(node, ast.Import):
                edges |= {resolve(a.name) or "" for a in node.names if a.name.startswith("platform_ctl")}
        graph[module] = {e for e in edges if e != module and not module.startswith(e + ".") and e}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_there_is_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_import_goes_down_the_layers() -> None:
    upward = [f"platform_ctl.{m} ({_layer(m)}) imports platform_ctl.{t} ({_layer(t)})"
              for m, targets in sorted(import_graph().items()) for t in sorted(targets)
              if ORDER.index(_layer(t)) < ORDER.index(_layer(m))]
    assert upward == []


def test_ssh_access_is_a_leaf() -> None:
    assert import_graph()["access"] <= {"errors"}


def layers() -> dict[str, list[str]]:
    """The layers with their modules (printed by ``python -m tests.unit.test_imports``)."""
    result: dict[str, list[str]] = {layer: [] for layer in LAYERS}
    for module in sorted(import_graph()):
        result[_layer(module)].append(module or "platform_ctl")
    return result


def test_no_module_of_the_project_exceeds_700_lines() -> None:
    skipped = {".venv", ".cache", ".git", ".platform", "node_modules"}
    long = {str(p.relative_to(COLLECTION_ROOT)): n for p in COLLECTION_ROOT.rglob("*.py")
            if not skipped & set(p.relative_to(COLLECTION_ROOT).parts)
            and (n := len(p.read_text(encoding="utf-8").splitlines())) > 700}
    assert long == {}


if __name__ == "__main__":
    for layer, modules in layers().items():
        print(f"{layer:9} {', '.join(modules)}")
