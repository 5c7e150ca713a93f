"""Pre-segmentation commands: ``ctcurate presegment``, ``ctcurate phase``."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer

from ..workspace import Workspace
from ._common import WorkspaceOpt, app, console, exit_on_failures, friendly, with_executor

__all__: list[str] = []


@app.command()
@friendly
def presegment(
    model: Annotated[str, typer.Argument(help="Registered model name ('ctcurate model list').")],
    workspace: WorkspaceOpt = Path("."),
    version: Annotated[int | None, typer.Option(help="Model version (default: the latest).")] = None,
    case: Annotated[list[str] | None, typer.Option(help="Only these case ids.")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")] = "cpu",
    workers: Annotated[int | None, typer.Option(help="Worker processes (default from settings).")] = None,
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address, e.g. tcp://host:8786.")] = None,
) -> None:
    """Run a model on every case without a segmentation; store the result as revision 0."""
    from annotator.presegment import presegment as run

    ws = Workspace.open(workspace)
    result = with_executor(ws, workers, scheduler, "presegment",
                           functools.partial(run, ws, model, version=version, cases=case, device=device))
    console.print(f"{len(result.done)} segmented, {len(result.skipped)} already had a revision, "
                  f"{len(result.failed)} failed")
    exit_on_failures(result.failed)


@app.command()
@friendly
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
