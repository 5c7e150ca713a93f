"""Annotation commands: ``ctcurate presegment``, ``ctcurate phase``, ``ctcurate annotate status``."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from curation.errors import ConfigError
from curation.workspace.layout import Workspace

from ._common import ThreadsOpt, WorkspaceOpt, app, console, exit_on_failures, friendly, with_executor, writes

__all__: list[str] = []


@app.command()
@friendly(resumes=True)  # cases with a revision are skipped
@writes("presegment")
def presegment(
    model: Annotated[str, typer.Argument(help="Registered model name ('ctcurate model list').")],
    workspace: WorkspaceOpt = Path("."),
    version: Annotated[int | None, typer.Option(help="Model version (default: the latest).")] = None,
    case: Annotated[list[str] | None, typer.Option(help="Only these case ids.")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")] = "cpu",
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes (default from settings).")] = None,
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address, e.g. tcp://host:8786.")] = None,
    threads: ThreadsOpt = None,
) -> None:
    """Run a model on every case without a segmentation; store the result as revision 0."""
    from annotator.presegment import presegment as run

    ws = Workspace.open(workspace)
    result = with_executor(ws, workers, scheduler, "presegment",
                           functools.partial(run, ws, model, version=version, cases=case, device=device), threads)
    console.print(f"{len(result.done)} segmented, {len(result.skipped)} already had a revision, "
                  f"{len(result.failed)} failed")
    exit_on_failures(result.failed)


@app.command()
@friendly
@writes("phase")
def phase(
    workspace: WorkspaceOpt = Path("."),
    case: Annotated[list[str] | None, typer.Option(help="Only these case ids.")] = None,
) -> None:
    """Estimate each case's contrast phase again from its latest revision (after corrections)."""
    from rich.table import Table

    from annotator.phase import estimate_phases

    estimates, failed = estimate_phases(Workspace.open(workspace), case)
    table = Table("case", "phase", "confidence", "median HU")
    for case_id, estimate in estimates.items():
        table.add_row(case_id, estimate.phase or "unknown",
                      "" if estimate.confidence is None else f"{estimate.confidence:.2f}",
                      ", ".join(f"{k} {v:g}" for k, v in estimate.hu.items()))
    console.print(table)
    exit_on_failures(failed)


class _AnnotateGroup(TyperGroup):
    """``ctcurate annotate WS`` opens napari; ``ctcurate annotate status ...`` is a sub-command."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["--workspace", args[0], *args[1:]]
        return list(super().parse_args(ctx, args))


annotate_app = typer.Typer(help="Correct cases in napari (ctcurate annotate [WORKSPACE] [--case ID]); the "
                                "worklist in numbers (annotate status).", cls=_AnnotateGroup,
                           invoke_without_command=True)
app.add_typer(annotate_app, name="annotate")


@annotate_app.callback()
@friendly
def annotate(
    ctx: typer.Context,
    workspace: WorkspaceOpt = Path("."),
    case: Annotated[str | None, typer.Option(help="Open this case at once.")] = None,
    user: Annotated[str | None, typer.Option(help="Your name in the revisions (default: your login).")] = None,
) -> None:
    """Open napari with the worklist, the structure panel and the correction tools."""
    if ctx.invoked_subcommand is not None:
        return
    import napari

    from annotator.viewer import open_viewer

    _, dock = open_viewer(Workspace.open(workspace), case=case, annotator=user)
    napari.run()
    dock.finish()  # the window is closed: unsaved edits go to the recovery slot, the claim is released


@annotate_app.command("status")
@friendly
def status(workspace: WorkspaceOpt = Path("."),
           cases: Annotated[bool, typer.Option(help="Also list every case.")] = False) -> None:
    """Cases per status and annotator, median active time, correction effort per structure."""
    import pandas as pd
    from rich.table import Table

    from annotator.effort import worklist_summary

    summary = worklist_summary(Workspace.open(workspace))
    table = Table("status", "annotator", "cases", title="worklist")
    for row in summary.by_status.itertuples():
        table.add_row(str(row.status), str(row.annotator), str(row.cases))
    console.print(table)
    median = summary.median_active_minutes
    console.print(f"median active time per corrected case: {'-' if median is None else f'{median:.1f} min'}")
    effort = Table("structure", "cases corrected", "voxels changed vs the model", title="correction effort")
    for row in summary.effort.itertuples():
        effort.add_row(str(row.structure), str(row.cases), f"{row.voxels:,}")
    console.print(effort)
    awaiting = int((summary.cases["review"] == "awaiting").sum())
    reviews = Table("reviewer", "verdict", "reviews", title=f"reviews ({awaiting} done case(s) awaiting review)")
    for row in summary.reviews.itertuples():
        reviews.add_row(str(row.reviewer), str(row.status), str(row.reviews))
    console.print(reviews)
    if cases:
        listing = Table(*summary.cases.columns, title="cases")
        for values in summary.cases.itertuples(index=False):
            listing.add_row(*("" if pd.isna(v) else str(v) for v in values))
        console.print(listing)


@annotate_app.command("break-claim")
@friendly
@writes("annotate break-claim")
def break_claim(
    case: Annotated[str, typer.Argument(help="Case id.")],
    reason: Annotated[str, typer.Option(help="Why (recorded with your name), e.g. 'dr.a left for the day'.")],
    workspace: WorkspaceOpt = Path("."),
    by: Annotated[str | None, typer.Option("--by", help="Your name (default: your login).")] = None,
) -> None:
    """Free a case someone else holds open (their unsaved edits stay in their recovery slot)."""
    import getpass

    from curation.annotation.worklist import Worklist

    ws = Workspace.open(workspace)
    if case not in ws.case_ids():
        raise ConfigError(f"case {case!r}: not in {ws.root}; see 'ctcurate annotate status --cases'")
    holder = Worklist(ws).break_claim(case, by or getpass.getuser(), reason)
    console.print(f"case {case}: claim of {holder.claimant} (since {holder.since[:16]} UTC) broken"
                  if holder else f"case {case}: nobody holds it; nothing to break", highlight=False)


@app.command("import")
@friendly
@writes("import")
def import_segmentation(
    case: Annotated[str, typer.Argument(help="Case id (its converted CT is the grid the labels go onto).")],
    source: Annotated[Path, typer.Argument(help="A TotalSegmentator output folder (one mask per class) or its "
                                                "multi-label file, a multi-label NIfTI/NRRD, or a Slicer .seg.nrrd.")],
    workspace: WorkspaceOpt = Path("."),
    labels: Annotated[str | None, typer.Option(help="The label set of the file's values when it is not the "
                                                    "workspace's, e.g. total_v1 (mapped by name).")] = None,
    mapping: Annotated[Path | None, typer.Option(help="A value -> name table for the file's values: JSON "
                                                      "{\"1\": \"spleen\"} or CSV lines 'value,name'.")] = None,
    comment: Annotated[str, typer.Option(help="A note kept with the revision.")] = "",
) -> None:
    """Bring an existing segmentation into a case as its next revision (author import:<source>), resampled onto the
    case's CT grid when it lies on another (nearest neighbour); refused when the fields of view do not overlap."""
    from curation.annotation import import_labels as import_one

    ws = Workspace.open(workspace)
    console.print(import_one(ws, case, source, comment=comment, labels=labels, mapping=mapping).describe(),
                  highlight=False)


@annotate_app.command("import")
@friendly(resumes=True)  # what was imported is never imported twice
@writes("annotate import")
def import_labels(
    workspace: WorkspaceOpt = Path("."),
    case: Annotated[str | None, typer.Option(help="Import into this case only (needed with --file).")] = None,
    file: Annotated[Path | None, typer.Option(help="A mask folder or multi-label file (.seg.nrrd, .nrrd, "
                                                   ".nii.gz) on the case's CT grid (default: the label files "
                                                   "found in the case folders).")] = None,
    comment: Annotated[str, typer.Option(help="A note kept with the revision.")] = "",
) -> None:
    """Bring existing labels into the annotation store as each case's next revision (author import:<file>).

    Without --file, every label file found in a case folder (segmentations/, segmentation.seg.nrrd, ...) is
    imported once: content imported before is not imported again. With --file, the labels become the next
    revision unless the latest revision is an import of the same content (to go back to earlier labels,
    import them again)."""
    from curation.annotation import import_case_folder_labels
    from curation.annotation import import_labels as import_one

    ws = Workspace.open(workspace)
    if file is not None:
        if case is None:
            raise ConfigError("--file needs --case: the case whose CT grid the labels lie on")
        console.print(import_one(ws, case, file, comment=comment).describe(), highlight=False)
        return
    done = import_case_folder_labels(ws, cases=[case] if case else None)
    for outcome in done:
        if outcome.revision is not None:
            console.print(outcome.describe(), highlight=False)
    failed = {f"{o.case_id} ({o.source.name})": o.error for o in done if o.revision is None}
    console.print(f"{sum(o.new for o in done)} imported, {len(failed)} failed")
    exit_on_failures(failed)


db_app = typer.Typer(help="The annotation database: move it between SQLite and PostgreSQL.", no_args_is_help=True)
annotate_app.add_typer(db_app, name="db")


@db_app.command("migrate")
@friendly
@writes("annotate db migrate")
def migrate(
    to: Annotated[str, typer.Option("--to", help="The new database: postgresql+psycopg://USER@HOST/DB, or "
                                                 "sqlite:////path/annotations.sqlite; it must hold no rows.")],
    workspace: WorkspaceOpt = Path("."),
) -> None:
    """Copy every table of the annotation database to another one, verify each, then switch the setting."""
    from curation.annotation import migrate_database

    result = migrate_database(Workspace.open(workspace), to)
    for table, rows in result.rows.items():
        console.print(f"{table}: {rows} rows", highlight=False)
    console.print(f"annotation database: {result.source} -> {result.target}; \\[annotation] database_url switched",
                  highlight=False)
