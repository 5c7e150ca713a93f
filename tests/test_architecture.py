"""The import graph of docs/architecture.md holds: stages point down only, and modules form no cycle."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("curation", "annotator", "qa", "datacard")
# what each stage may import (besides itself); the CLI (curation.cli) may import everything
ALLOWED = {"curation": set(), "qa": {"curation"}, "annotator": {"curation", "qa"},
           "datacard": {"curation", "qa", "annotator"}}


def _modules() -> dict[str, Path]:
    out = {}
    for stage in STAGES:
        for path in (ROOT / stage).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def _imports() -> dict[str, set[str]]:
    modules = _modules()
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + [node.module] if node.module else base)
                candidates = [target, *(f"{target}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            else:
                continue
            edges[name].update(c for c in candidates if c in modules and c != name)
    return edges


def test_stages_import_only_lower_stages() -> None:
    wrong = sorted((source, target) for source, targets in _imports().items() for target in targets
                   if not source.startswith("curation.cli")
                   and target.split(".")[0] != source.split(".")[0]
                   and target.split(".")[0] not in ALLOWED[source.split(".")[0]])
    assert wrong == []
    assert not any(t.startswith("curation.cli") for s, ts in _imports().items() for t in ts
                   if not s.startswith("curation.cli")), "nothing imports the CLI"


def test_modules_form_no_cycle() -> None:
    edges = _imports()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt] if nxt in path else path + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for module in sorted(_modules()):
        if module not in state:
            visit(module, [module])
    # a package's __init__ re-exporting its own modules is not a cycle between modules
    real = [c for c in cycles if not any(m in STAGES or m.endswith(".cli") for m in c)]
    assert real == []
