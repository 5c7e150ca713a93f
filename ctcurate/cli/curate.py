"""Curation commands: init, scan, sample, filter, convert, demo."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from curation.enums import Severity
from curation.workspace import ReleaseFolder
from curation.workspace.layout import Workspace
from curation.workspace.settings import ExecutorSettings, SamplingSettings, Settings

if TYPE_CHECKING:
    from curation.cases.convert import ConvertResult
    from curation.catalog.scan import ScanResult

from ._common import (
    ThreadsOpt,
    WorkspaceOpt,
    app,
    console,
    counted,
    err_console,
    exit_on_failures,
    friendly,
    with_executor,
    writes,
)

__all__: list[str] = []


@app.command()
@friendly
def init(
    workspace: Annotated[Path, typer.Argument(help="Folder of the new workspace ('.' for the current folder: "
                                                   "named, never implied).")],
    name: Annotated[str, typer.Option(help="Project name.")] = "ctcurate-project",
    seed: Annotated[int, typer.Option(help="Seed of the random draw.")] = 0,
    n: Annotated[int, typer.Option("--n", help="Exams to sample (0 = all).", min=0)] = 0,
    workers: Annotated[int, typer.Option(help="Local worker processes.", min=1)] = 2,
    threads: Annotated[int, typer.Option(help="Threads each worker's libraries may use (0 = the cores shared out "
                                              "among the workers).", min=0)] = 0,
) -> None:
    """Create a workspace: folders, ctcurate.toml settings and the secret key."""
    settings = Settings(name=name, seed=seed, sampling=SamplingSettings(n=n),
                        executor=ExecutorSettings(workers=workers, threads=threads))
    ws = Workspace.create(workspace, settings)
    console.print(f"workspace created at [bold]{ws.root}[/] (settings: {ws.settings_path.name})")


@app.command()
@friendly(interrupted="the catalog is as it was before this scan (the headers read so far were not kept); "
                       "run the same command again (it reads them again)")
@writes("scan")
def scan(
    exports: Annotated[list[Path] | None, typer.Argument(help="Export folders (default: the workspace's sources).")]
    = None,
    workspace: WorkspaceOpt = Path("."),
    full: Annotated[bool, typer.Option(help="Re-read unchanged files too.")] = False,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes (default from settings; a few "
                                                "thousand files are read in the command's process, where starting "
                                                "workers would cost more than they save).")] = None,
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address, e.g. tcp://host:8786.")] = None,
    threads: ThreadsOpt = None,
) -> None:
    """Index export folders (headers only) into the private catalog; a rescan skips unchanged files."""
    ws = Workspace.open(workspace)

    def step(**run: Any) -> ScanResult:
        from curation.catalog.scan import scan as run_scan  # loaded while the pool's fork server loads it too

        return run_scan(ws, exports or [], full=full, **run)

    result = with_executor(ws, workers, scheduler, "scan", step, threads, preload=["curation.catalog.scan"])
    console.print(f"{counted(result.n_files, 'files')} ({result.n_read} read, {result.n_reused} unchanged, "
                  f"{result.n_removed} gone): {counted(result.n_patients, 'patients')}, "
                  f"{counted(result.n_studies, 'exams')} and {result.n_series} image series of any modality; "
                  f"{counted(result.n_ct_exams, 'exams')} with CT series ({result.n_ct_series} CT series): the "
                  "sampling frame")
    table = Table("file status", "files")
    for status, count in sorted(result.statuses.items()):
        table.add_row(status, str(count))
    console.print(table)
    for folder in result.skipped_folders:
        err_console.print(f"[yellow]skipped[/] {escape(folder)}: cannot be listed (permission denied?)",
                          highlight=False)
    if result.n_shared_study_uids:
        err_console.print(f"[yellow]warning[/] {result.n_shared_study_uids} Study UID(s) found under more than one "
                          "patient: an exam for each, which 'ctcurate filter' excludes as shared_study_uid; correct "
                          "the Patient IDs at the source and rescan to keep them", highlight=False)


@app.command()
@friendly
@writes("sources")
def sources(
    workspace: WorkspaceOpt = Path("."),
    remove: Annotated[list[Path] | None, typer.Option("--remove", help="Remove this source (its files leave the "
                                                                       "catalog at the next scan).")] = None,
) -> None:
    """List the export folders this workspace scans (with their state), or remove some."""
    from curation.catalog.sources import remove_source, source_states

    ws = Workspace.open(workspace)
    for path in remove or []:
        remove_source(ws, path)
        console.print(f"removed {path} and its files from the catalog; run 'ctcurate filter -w {ws.root}' to "
                      "judge what is left", highlight=False)
    states = source_states(ws)
    for state in states:  # one line each, never cut: a path is copied from here into commands
        label = "ok" if state.readable else "missing" if not state.present else "unreadable"
        console.print(f"{label:<10} {state.files_in_catalog:>8} files in the catalog  {escape(state.path)}",
                      soft_wrap=True, highlight=False)
    if not states:
        console.print(f"no sources yet: 'ctcurate scan /path/to/export -w {ws.root}' adds one", highlight=False)


@app.command()
@friendly
@writes("sample")
def sample(
    workspace: WorkspaceOpt = Path("."),
    n: Annotated[int | None, typer.Option("--n", help="Exams to draw (0 = all).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (default: previous draw's, else settings).")] = None,
    stratify_by: Annotated[str | None, typer.Option(help="Column: study_year, site, manufacturer, model...")] = None,
    redraw: Annotated[bool, typer.Option(help="Ignore the previous draw and start afresh.")] = False,
) -> None:
    """Draw exams at random by a seeded keyed hash; writes an auditable sample manifest."""
    from curation.selection.sample import sample as run_sample

    ws = Workspace.open(workspace)
    result = run_sample(ws, n=n, seed=seed, stratify_by=stratify_by, redraw=redraw)
    console.print(f"drew {len(result.members)} of the {result.frame_size} exams with CT series (the sampling "
                  f"frame; seed {result.seed}"
                  + (f", stratified by {result.stratify_by}" if result.stratify_by else "") + ")")
    if result.added or result.dropped:
        console.print(f"vs the previous draw: {len(result.added)} added, {len(result.dropped)} dropped")


@app.command(name="filter")
@friendly
@writes("filter")
def filter_(workspace: WorkspaceOpt = Path(".")) -> None:
    """Apply the exclusion rules, choose one series per exam, draw the exclusion flow diagram."""
    from curation.selection.filter import run_filter

    ws = Workspace.open(workspace)
    result = run_filter(ws)
    included = (f"{result.n_included_exams} of {result.n_sampled_exams} sampled exams included; "
                f"flow diagram: {result.flow_png}")
    if result.excluded_by_reason:
        table = Table("excluded because", "exams")
        for reason, count in result.excluded_by_reason.items():
            table.add_row(reason, str(count))
        console.print(table)
        console.print(included)
    else:  # one line, not a table with no rows
        console.print(f"no exam was excluded: {included}")
    if result.withdrawn:
        from curation.cases.withdraw import withdrawn_cases
        from curation.reasons import reason_label

        why = {w.case_id: reason_label(w.reason) for w in withdrawn_cases(ws)}
        groups: dict[str, list[str]] = {}
        for case_id in result.withdrawn:
            groups.setdefault(why.get(case_id, "unknown"), []).append(case_id)
        console.print(f"withdrawn (moved to {ws.withdrawn_dir}): "
                      + "; ".join(f"{', '.join(ids)} ({label})" for label, ids in groups.items()))


@app.command()
@friendly(resumes=True)  # finished cases are kept
@writes("convert")
def convert(
    workspace: WorkspaceOpt = Path("."),
    case: Annotated[list[str] | None, typer.Option(help="Only these case ids.")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes (default from settings).")] = None,
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address, e.g. tcp://host:8786.")] = None,
    threads: ThreadsOpt = None,
) -> None:
    """Write each chosen series as NRRD (native, and each configured isotropic spacing) with case.json."""
    ws = Workspace.open(workspace)

    def step(**run: Any) -> ConvertResult:
        from curation.cases.convert import convert as run_convert  # loaded while the fork server loads it too

        return run_convert(ws, cases=case, **run)

    result = with_executor(ws, workers, scheduler, "convert", step, threads,
                           preload=["curation.cases.convert", "curation.dicom.series"])
    from curation.selection.filter import redraw_flow

    if result.withdrawn:
        console.print("withdrawn: " + ", ".join(f"{w.case_id} ({w.reason})" for w in result.withdrawn))
    console.print(f"{len(result.converted)} converted, {len(result.skipped)} already done, "
                  f"{len(result.failed)} failed; cases in {ws.cases_dir}")
    redraw_flow(ws)  # the flow figure counts what convert produced
    exit_on_failures(result.failed)


@app.command()
@friendly
def demo(
    folder: Annotated[Path | None, typer.Argument(help="Where to put the demo export and workspace "
                                                        "(default: a new temporary folder).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    pacs: Annotated[bool, typer.Option(help="Load the export into a local Orthanc (Debian packages orthanc, "
                                            "orthanc-dicomweb) and pull from it over DICOMweb instead of "
                                            "scanning it.")] = False,
) -> None:
    """Build a small synthetic PACS export, run init -> scan -> sample -> filter -> convert on it, pre-segment
    the cases with the small model (revision 0), import the phantom's true labels as the next revision, run the
    QA (labels, metadata, report), split the cases and build release 1.0.0 with its datasheet."""
    from ctcurate.demo import run_demo

    def step(label: str) -> None:
        console.rule(f"[bold]{label}")

    from ctcurate.demo import run_demo_qa

    result = run_demo(folder, workers=workers, pacs=pacs, on_step=step)
    step("presegment (small model)")
    from ctcurate.demo import run_demo_presegment

    pre = run_demo_presegment(result.workspace)
    step("qa labels, qa meta, qa report")
    qa = run_demo_qa(result.workspace)
    step("split, datasheet, release 1.0.0")
    from ctcurate.demo import run_demo_release

    release_folder, _ = run_demo_release(result.workspace)
    console.print(f"export:       {result.export}")
    console.print(f"workspace:    {result.workspace}")
    console.print(f"exams:        {result.n_included} of {result.n_sampled} included")
    console.print(f"cases:        {', '.join(result.cases)} in {result.cases_dir}")
    console.print(f"flow diagram: {result.flow_png} (and .svg)")
    console.print(f"presegment:   {pre.model.tag}: revision 0 of {len(pre.result.done) + len(pre.result.skipped)} "
                  f"cases ({len(pre.result.failed)} failed); phases: "
                  + ", ".join(f"{c} {p or 'unknown'}" for c, (p, _) in pre.phases.items()))
    console.print(f"labels:       the phantom's truth imported as revision {pre.imported} of each case (labels of "
                  "record, checked by QA and released)")
    errors = qa.findings[qa.findings["severity"] == Severity.ERROR]
    console.print(f"label QA:     {counted(len(errors), 'errors')} (the demo swaps the lungs of {result.cases[-1]}: "
                  f"{', '.join(sorted(set(errors['check'])))}); report: {qa.report}")
    console.print(f"metadata QA:  {'passed' if qa.meta.success else 'FAILED'}; Data Docs: {qa.meta.data_docs}")
    sheet = ReleaseFolder(release_folder).datasheet
    console.print(f"release:      {release_folder} (datasheet: {sheet}; "
                  "built despite the lung swap, which its datasheet states)")
