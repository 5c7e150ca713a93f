"""The import graph of docs/architecture.md holds: stages point down only, the layers inside ``curation``
point down only, nothing imports the command line, and modules form no cycle."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("curation", "annotator", "qa", "datacard", "ctcurate")
# what each stage may import (besides itself); the command line (ctcurate) sits on top of all
ALLOWED = {"curation": set(), "qa": {"curation"}, "annotator": {"curation", "qa"},
           "datacard": {"curation", "qa", "annotator"}, "ctcurate": {"curation", "qa", "annotator", "datacard"}}
# the layers inside curation, lowest first: a module imports its own layer or lower ones only
CURATION_LAYERS = (
    {"errors", "atomic", "enums", "reasons", "lifetime", "_version"},
    {"image"},
    {"labels"},
    {"workspace"},
    {"annotation"},
    {"dicom"},
    {"cases"},
    {"catalog"},
    {"selection"},
    {"pacs"},
)


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
                candidates = [f"{target}.{a.name}" for a in node.names]
                candidates = [c for c in candidates if c in modules] or [target]
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            else:
                continue
            edges[name].update(c for c in candidates if c in modules and c != name)
    return edges


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "curation" or len(parts) == 1:
        return None
    return next(i for i, layer in enumerate(CURATION_LAYERS) if parts[1] in layer)


def test_every_curation_module_sits_in_a_layer() -> None:
    unplaced = sorted(m for m in _modules() if m.startswith("curation.") and not any(
        m.split(".")[1] in layer for layer in CURATION_LAYERS))
    assert unplaced == [], "add the new subpackage to CURATION_LAYERS and docs/architecture.md"


def test_stages_import_only_lower_stages() -> None:
    wrong = sorted((source, target) for source, targets in _imports().items() for target in targets
                   if target.split(".")[0] != source.split(".")[0]
                   and target.split(".")[0] not in ALLOWED[source.split(".")[0]])
    assert wrong == []


def test_nothing_imports_the_command_line() -> None:
    wrong = sorted((s, t) for s, ts in _imports().items() for t in ts
                   if t.split(".")[0] == "ctcurate" and s.split(".")[0] != "ctcurate")
    assert wrong == []


def test_curation_layers_point_down() -> None:
    wrong = []
    for source, targets in _imports().items():
        if _layer(source) is None or source.endswith("__init__"):
            continue
        for target in targets:
            if target == "curation":
                wrong.append((source, target, "imports the package root; import the subpackage instead"))
            elif (layer := _layer(target)) is not None and layer > _layer(source):  # type: ignore[operator]
                wrong.append((source, target, "imports a higher layer"))
    assert wrong == []


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
    packages = {m for m, p in _modules().items() if p.name == "__init__.py"}
    real = [c for c in cycles if not any(m in packages for m in c)]
    assert real == []


# -- one owner of every workspace path ------------------------------------------------------------------------
OWNERS = (ROOT / "curation" / "workspace" / "layout.py", ROOT / "curation" / "workspace" / "folders.py")
WORKSPACE_VARIABLES = {"ws", "workspace", "self.workspace", "self.ws"}


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def _workspace_names() -> set[str]:
    """The file and folder names the workspace spells: path components in its two modules."""
    names = set()
    for path in OWNERS:
        tree = ast.parse(path.read_text())
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
                names |= {n.value for n in (node.left, node.right)
                          if isinstance(n, ast.Constant) and isinstance(n.value, str)}
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip \
                    and "." in node.value and " " not in node.value:
                names.add(node.value)
        for statement in tree.body:  # module constants: CASE_METADATA = "case.json", MULTILABEL_NAMES = (...)
            if isinstance(statement, ast.Assign) and all(isinstance(t, ast.Name) and t.id.isupper()
                                                         for t in statement.targets):
                names |= {n.value for n in ast.walk(statement.value)
                          if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    return {n for n in names if not n.startswith(".") and "/" not in n}


def _spelled(path: Path, names: set[str]) -> list[str]:
    tree = ast.parse(path.read_text())
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            for side in (node.left, node.right):
                if isinstance(side, ast.Constant) and side.value in names:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: / {side.value!r}")
            left = ast.unparse(node.left)
            if left.rpartition(".")[0] in WORKSPACE_VARIABLES and left.endswith(".root") \
                    and isinstance(node.right, ast.Constant):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            if "." in node.value and node.value in names:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
            if "s\\d" in node.value:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: case-id pattern {node.value!r}")
    return found


def test_only_the_workspace_spells_its_paths() -> None:
    names = _workspace_names()
    assert {"annotations.sqlite", "releases", "splits.json", "datasheet_answers.yaml", "label_findings.parquet",
            "case.json", "revisions"} <= names
    found = [hit for module, path in _modules().items() if path not in OWNERS for hit in _spelled(path, names)]
    assert found == [], "use the Workspace (curation.workspace) for these paths"


def test_every_exception_type_is_in_errors() -> None:
    errors_module = ROOT / "curation" / "errors.py"
    elsewhere = []
    for path in _modules().values():
        if path == errors_module:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_") and any(
                    ast.unparse(base).endswith(("Error", "Exception")) for base in node.bases):
                elsewhere.append(f"{path.relative_to(ROOT)}: {node.name}")
    assert elsewhere == [], "exception types belong in curation/errors.py"


def test_importing_changes_no_global_setting() -> None:
    """Importing every module leaves pydicom's validation mode and matplotlib's backend as they were."""
    import subprocess
    import sys

    # left out: the Qt widgets (they need a display), scripts, and the trainers nnU-Net loads by path (nnU-Net
    # itself sets matplotlib's backend when it is imported)
    modules = sorted(m for m in _modules() if not m.endswith("__main__") and not m.startswith((
        "annotator._qt", "annotator.viewer", "annotator.small_model.recipe", "annotator.nnunet_trainers")))
    code = ("import importlib, matplotlib, pydicom.config as c\n"
            "before = (c.settings.reading_validation_mode, matplotlib.rcParams._get_backend_or_none())\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "after = (c.settings.reading_validation_mode, matplotlib.rcParams._get_backend_or_none())\n"
            "assert before == after, (before, after)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
