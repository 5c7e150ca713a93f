"""``ctcurate qa ...``: label checks, metadata expectations, the HTML report, label sets."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from curation.atomic import atomic_write_text
from curation.enums import Severity, parse_fail_on
from curation.errors import ConfigError, QAError
from curation.labels.labelset import builtin_label_sets, load_label_set
from curation.workspace import MASKS_FOLDER, SETTINGS_FILE, QAFolder, Workspace

from ._common import ThreadsOpt, app, console, counted, friendly, progress_bar, writes

if TYPE_CHECKING:
    import pandas as pd

__all__: list[str] = []

qa_app = typer.Typer(help="Quality checks of labels and metadata, and the QA report.", no_args_is_help=True)
app.add_typer(qa_app, name="qa")

RootArg = Annotated[Path, typer.Argument(help="A workspace, or a folder of case folders (<case>/ct.nii.gz + "
                                               "<case>/segmentations/).")]
WorkspaceAlt = Annotated[Path | None, typer.Option("--workspace", "-w", help="The workspace, given as the other "
                                                                         "commands take it (instead of ROOT).")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Results folder (default: WORKSPACE/qa, or "
                                                                 "./ctcurate-qa for a plain folder).")]
FailOpt = Annotated[str | None, typer.Option(help="Exit with code 1 when findings of this severity or worse exist: "
                                                  "error, warning, info or none (default from settings: error).")]


def _root(root: Path, workspace: Path | None) -> Path:
    """ROOT, or the workspace given with -w (not both, unless they are the same folder)."""
    if workspace is None:
        return root
    if root != Path(".") and root.resolve() != workspace.resolve():
        raise ConfigError(f"{root} and -w {workspace}: two folders; give the workspace once, as ROOT or with -w")
    return workspace


def _is_workspace(root: Path) -> bool:
    return (root / SETTINGS_FILE).is_file()


def _out_dir(root: Path, out: Path | None) -> Path:
    if out is not None:
        return out
    return Workspace.open(root).qa_dir if _is_workspace(root) else Path.cwd() / "ctcurate-qa"


def _fail_on(root: Path, fail_on: str | None) -> str:
    if fail_on is not None:
        chosen = parse_fail_on(fail_on, "--fail-on", QAError)
        return chosen.value if chosen else "none"
    return Workspace.open(root).settings.qa.fail_on if _is_workspace(root) else Severity.ERROR.value


def _run_record(out_dir: Path) -> dict[str, Any]:
    """What the last 'qa labels' run in ``out_dir`` checked (root, label set, cases); empty when none."""
    path = QAFolder(out_dir).run_file
    record = json.loads(path.read_text()) if path.is_file() else {}
    if "root" in record:
        record["root"] = str((Path(out_dir) / record["root"]).resolve())
    if record.get("label_set") and record["label_set"] not in builtin_label_sets():
        record["label_set"] = str((Path(out_dir) / record["label_set"]).resolve())
    return record


def _gate(findings: pd.DataFrame, fail_on: str) -> None:
    from qa.findings import count_at_least

    n = count_at_least(findings, fail_on)
    if n:
        console.print(f"[bold red]{n} finding(s) at severity {fail_on} or worse[/]")
        raise typer.Exit(code=1)


@qa_app.command("labels")
@friendly(resumes=True)  # checked cases are kept, by fingerprint
@writes("qa labels")
def labels(
    root: RootArg = Path("."),
    workspace: WorkspaceAlt = None,
    label_set: Annotated[str | None, typer.Option(help="Built-in label set (total_v1, total_v2) or a TOML file "
                                                       "(default: the workspace's, else total_v2).")] = None,
    case: Annotated[list[str] | None, typer.Option(help="Only these case ids.")] = None,
    out: OutOpt = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes (default from settings, else 2).")] \
        = None,
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address, e.g. tcp://host:8786.")] = None,
    fail_on: FailOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Check every case's labels: completeness, storage, geometry, overlap, FOV, fragments, holes, sides,
    spine order, intensity, cohort outliers. Writes label_findings.parquet and label_stats.parquet."""
    root = _root(root, workspace)
    from curation.workspace.errorlog import FALLBACK_ERROR_LOG
    from curation.workspace.executor import make_executor
    from curation.workspace.settings import ExecutorSettings

    gate = _fail_on(root, fail_on)  # a bad --fail-on is refused before any work
    ws = Workspace.open(root) if _is_workspace(root) else None
    settings = ws.settings if ws else None
    # a local pool starts first: its fork server loads the checks while this process finds the cases
    with make_executor(settings.executor if settings else ExecutorSettings(), workers=workers, scheduler=scheduler,
                       threads=threads, preload=["qa.labels"]) as executor:
        from qa.cases import find_cases
        from qa.labels import LabelQASettings, run_label_qa

        label_set_obj = load_label_set(label_set) if label_set else ws.label_set() if ws else \
            load_label_set("total_v2")
        label_set_ref = label_set or (settings.labels.label_set if settings else "total_v2")
        if label_set_ref not in builtin_label_sets():  # a file: kept relative to the QA folder, like the root
            label_set_ref = os.path.relpath(((ws.root if ws and not label_set else Path.cwd()) / label_set_ref)
                                            .resolve(), _out_dir(root, out).resolve())
        cases = find_cases(root, cases=case)
        out_dir = _out_dir(root, out)
        qa_settings = LabelQASettings(label_set_obj,
                                      cohort_min_cases=settings.qa.cohort_min_cases if settings else 10)
        with progress_bar("qa labels") as progress:
            done = []

            def tick(case_id: str) -> None:
                done.append(case_id)
                progress(len(done), len(cases))

            findings, _ = run_label_qa(cases, qa_settings, out_dir, executor=executor, progress=tick,
                                       error_log=ws.error_log if ws else FALLBACK_ERROR_LOG)
    from qa.findings import counts_by_check

    where = os.path.relpath(root.resolve(), out_dir.resolve())  # relative: a moved workspace still finds its cases
    atomic_write_text(QAFolder(out_dir).run_file, json.dumps({"root": where, "label_set": label_set_ref,
                                                      "cases": [c.case for c in cases]}, indent=1))
    table = Table("check", *(s.value for s in Severity))
    for check, row in counts_by_check(findings).iterrows():
        table.add_row(str(check), *(str(int(row[s.value]) or "") for s in Severity))
    console.print(table)
    console.print(f"{counted(len(cases), 'cases')}, label set {label_set_obj.name}: results in {out_dir}")
    if not any(c.has_labels for c in cases):  # nothing was checked but the labels' absence: say what comes first
        first = (f"'ctcurate presegment MODEL -w {root}' (models: 'ctcurate model list') or import labels "
                 "('ctcurate import CASE SOURCE', 'ctcurate annotate import')" if ws else
                 f"put labels next to each CT (<case>/{MASKS_FOLDER}/<structure>.nii.gz or <case>/segmentation.nii.gz)")
        console.print(f"[yellow]no case has labels yet:[/] {escape(first)}, then run 'ctcurate qa labels' again",
                      highlight=False)
    _gate(findings, gate)


@qa_app.command("meta")
@friendly
@writes("qa meta")
def meta(
    root: RootArg = Path("."),
    workspace: WorkspaceAlt = None,
    table: Annotated[Path | None, typer.Option(help="Cases table (.parquet, or .csv separated by ';' like "
                                                    "meta.csv); default: the workspace's.")] = None,
    out: OutOpt = None,
    label_set: Annotated[str | None, typer.Option(help="Label set of the label statistics (default: the one "
                                                       "'qa labels' used).")] = None,
    fail_on_failure: Annotated[bool, typer.Option(help="Exit with code 1 when an expectation fails.")] = True,
) -> None:
    """Validate the cases table and the label statistics with Great Expectations; build Data Docs."""
    root = _root(root, workspace)
    import pandas as pd

    from qa.meta import run_meta_qa

    out_dir = _out_dir(root, out)
    if table is None and _is_workspace(root):
        ws = Workspace.open(root)
        table = ws.require(ws.meta_table, "convert")
    cases = None
    if table is not None:
        if not table.is_file():
            raise QAError(f"{table}: no such cases table")
        cases = pd.read_parquet(table) if table.suffix == ".parquet" else pd.read_csv(table, sep=";")
    stats_path = QAFolder(out_dir).stats
    stats = pd.read_parquet(stats_path) if stats_path.is_file() else None
    ls = None
    if stats is not None:
        ls = load_label_set(label_set or _run_record(out_dir).get("label_set", "total_v2"))
    result = run_meta_qa(out_dir, cases=cases, label_stats=stats, label_set=ls)
    for suite in result.suites:
        status = "[green]passed[/]" if suite.success else "[bold red]failed[/]"
        console.print(f"suite {suite.suite}: {status} ({suite.evaluated} expectations)")
        for f in suite.failed:
            console.print(f"  {f['expectation']} {f['column']}: {f['unexpected_count']} unexpected, "
                          f"e.g. {f['unexpected']}", highlight=False)
    if result.data_docs:
        console.print(f"Data Docs: {result.data_docs}")
    if fail_on_failure and not result.success:
        raise typer.Exit(code=1)


@qa_app.command("report")
@friendly
@writes("qa report")
def report(
    root: RootArg = Path("."),
    workspace: WorkspaceAlt = None,
    out: OutOpt = None,
    fail_on: FailOpt = None,
) -> None:
    """Write the HTML report (summary, per-case table, a picture of each flagged structure) and findings.json."""
    root = _root(root, workspace)
    import pandas as pd

    from qa.cases import find_cases
    from qa.report import build_report

    gate = _fail_on(root, fail_on)
    if not root.is_dir():
        raise QAError(f"{root}: no such folder; pass the workspace or the folder 'qa labels' checked")
    out_dir = _out_dir(root, out)
    path = QAFolder(out_dir).findings
    if not path.is_file():
        raise QAError(f"{path}: no label findings; run 'ctcurate qa labels' first")
    findings = pd.read_parquet(path)
    run = _run_record(out_dir)
    label_set = load_label_set(run.get("label_set", "total_v2"))
    checked = Path(run.get("root", root))
    cases = find_cases(checked, cases=run.get("cases"))
    folder = QAFolder(out_dir)
    docs = folder.data_docs if folder.data_docs.is_file() else None
    result = build_report(folder.report_dir, findings, cases, label_set, data_docs=docs,
                          workspace=checked.resolve() if _is_workspace(checked) else None)
    console.print(f"report: {result.html} ({result.pictures} pictures); findings: {result.json}")
    _gate(findings, gate)


@qa_app.command("labelsets")
@friendly
def labelsets(name: Annotated[str | None, typer.Argument(help="Show this label set's classes.")] = None) -> None:
    """List the built-in label sets, or show one (also a TOML file's path)."""
    if name is None:
        table = Table("label set", "version", "classes", "categories")
        for n in builtin_label_sets():
            ls = load_label_set(n)
            categories = ", ".join(f"{k} {v}" for k, v in ls.counts_by_category().items())
            table.add_row(n, ls.version, str(len(ls)), categories)
        console.print(table)
        return
    ls = load_label_set(name)
    table = Table("index", "name", "category", "side", "counterpart", "SNOMED CT")
    for c in ls:
        code = c.snomed.get("type")
        table.add_row(str(c.index), c.name, str(c.category), str(c.laterality),
                      c.counterpart or "", str(code) if code else "")
    console.print(table)
