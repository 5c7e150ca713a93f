"""``ctcurate model ...``: register segmentation models in a workspace and list them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from curation.errors import ModelError
from curation.workspace.layout import Workspace

from ._common import WorkspaceOpt, app, console, friendly, writes

__all__: list[str] = []

model_app = typer.Typer(help="Segmentation models (nnU-Net v2 trained-model folders).", no_args_is_help=True)
app.add_typer(model_app, name="model")


def _renames(pairs: list[str] | None) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        source, sep, target = pair.partition("=")
        if not sep or not source or not target:
            raise ModelError(f"--map {pair!r}: expected MODEL_LABEL=CLASS, e.g. --map kidney_l=kidney_left")
        out[source] = target
    return out


@model_app.command("add")
@friendly
@writes("model add")
def add(
    name: Annotated[str, typer.Argument(help="Model name, e.g. total or small.")],
    folders: Annotated[list[Path], typer.Argument(help="Trained-model folder(s) <Trainer>__<Plans>__<configuration> "
                                                       "(or a folder holding one); several folders are parts merged "
                                                       "into one label map.")],
    workspace: WorkspaceOpt = Path("."),
    map_: Annotated[list[str] | None, typer.Option("--map", help="MODEL_LABEL=CLASS for labels whose names differ "
                                                                 "from the workspace's label set.")] = None,
    folds: Annotated[list[str] | None, typer.Option(help="Folds to use (default: all folds present).")] = None,
) -> None:
    """Register a model version: checks files and label names, records a fingerprint."""
    from annotator.registry import register_model

    ws = Workspace.open(workspace)
    record = register_model(ws, name, list(folders), renames=_renames(map_), folds=tuple(folds) if folds else None)
    labels = sum(len(p.labels) for p in record.parts)
    console.print(f"registered {record.tag}: {len(record.parts)} part(s), {labels} labels, nnunetv2 {record.nnunetv2}")


@model_app.command("list")
@friendly
def list_(workspace: WorkspaceOpt = Path(".")) -> None:
    """Registered models and their versions."""
    from annotator.registry import list_models

    table = Table("model", "parts", "labels", "folds", "nnunetv2", "created")
    for record in list_models(Workspace.open(workspace)):
        table.add_row(record.tag, str(len(record.parts)), str(sum(len(p.labels) for p in record.parts)),
                      ",".join(record.parts[0].folds), record.nnunetv2, record.created)
    console.print(table)
