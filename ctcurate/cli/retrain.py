"""Retraining commands: ``ctcurate review``, ``ctcurate export nnunet``, ``ctcurate retrain``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from curation.workspace.layout import Workspace

from ._common import WorkspaceOpt, app, console, err_console, friendly, writes

__all__: list[str] = []

export_app = typer.Typer(help="Export the workspace's segmentations for other tools.", no_args_is_help=True)
app.add_typer(export_app, name="export")

StatusOpt = Annotated[str, typer.Option(help="Export each case's latest revision with this review status.")]
FallbackOpt = Annotated[str | None, typer.Option(help="Status to use where a case has no revision of --status "
                                                      "(e.g. unreviewed: the model's own result).")]
GridOpt = Annotated[str, typer.Option(help="native, or a stored isotropic spacing such as 1.5 or 3.")]
StructureOpt = Annotated[list[str] | None, typer.Option("--structure", help="Only these classes (repeat).")]


@app.command()
@friendly
@writes("review")
def review(
    case: Annotated[str, typer.Argument(help="Case id.")],
    status: Annotated[str, typer.Argument(help="approved, rejected or unreviewed.")],
    by: Annotated[str, typer.Option("--by", help="Reviewer's name.")],
    workspace: WorkspaceOpt = Path("."),
    revision: Annotated[int | None, typer.Option(help="Revision number (default: the latest).")] = None,
    comment: Annotated[str, typer.Option(help="Why.")] = "",
) -> None:
    """Record a review of a case's revision (approved revisions are what 'export nnunet' takes)."""
    from curation.annotation.revisions import RevisionStore

    found = RevisionStore(Workspace.open(workspace)).review(case, revision, status, reviewer=by, comment=comment)
    console.print(f"case {case} revision {found.number} ({found.author}): {status.lower()} by {by}")


@export_app.command("nnunet")
@friendly
@writes("export nnunet")
def export_nnunet(
    out: Annotated[Path, typer.Argument(help="nnU-Net raw folder (nnUNet_raw); DatasetNNN_Name is made in it.")],
    workspace: WorkspaceOpt = Path("."),
    dataset_id: Annotated[int, typer.Option(help="nnU-Net dataset id (1-999).")] = 950,
    name: Annotated[str, typer.Option(help="Dataset name (letters, digits, '-').")] = "Ctcurate",
    status: StatusOpt = "approved",
    fallback: FallbackOpt = None,
    grid: GridOpt = "native",
    structure: StructureOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an earlier export of the same dataset.")] = False,
) -> None:
    """Write an nnU-Net v2 raw dataset (imagesTr, labelsTr, imagesTs, dataset.json, splits_final.json)."""
    from annotator.export import export_nnunet as run
    from annotator.folds import describe_folds

    result = run(Workspace.open(workspace), out, dataset_id, name, status=status, fallback=fallback, grid=grid,
                 structures=structure, overwrite=overwrite)
    console.print(f"{result.folder}: {len(result.training)} training and {len(result.test)} test cases, "
                  f"{len(result.labels) - 1} labels" + (f"; {describe_folds(result.splits)}" if result.test
                                                        or result.splits is not None else ""))
    for case_id, reason in result.skipped.items():
        err_console.print(f"skipped {case_id}: {reason}", highlight=False)


@app.command()
@friendly
@writes("retrain")
def retrain(
    model: Annotated[str, typer.Argument(help="Model name; the result is registered as its next version.")],
    workspace: WorkspaceOpt = Path("."),
    configuration: Annotated[str, typer.Option(help="nnU-Net configuration.")] = "3d_fullres",
    trainer: Annotated[str, typer.Option(help="nnU-Net trainer, e.g. nnUNetTrainer, nnUNetTrainer_ctcurateCPU, "
                                              "nnUNetTrainer_ctcurateQuick (shortest).")] = "nnUNetTrainer",
    fold: Annotated[list[str] | None, typer.Option(help="Folds to train (default: fold 0 when there are folds, "
                                                        "from the workspace split or --splits; else all).")] = None,
    network: Annotated[str, typer.Option(help="default (nnU-Net's plan) or small (a CPU-sized network).")] = "default",
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")] = "cpu",
    dataset_id: Annotated[int, typer.Option(help="nnU-Net dataset id used under WS/nnunet.")] = 950,
    status: StatusOpt = "approved",
    fallback: FallbackOpt = None,
    grid: GridOpt = "native",
    structure: StructureOpt = None,
    splits: Annotated[Path | None, typer.Option(help="Train on the folds of this splits_final.json (a release's) "
                                                     "instead of the workspace split's.")] = None,
) -> None:
    """Export reviewed cases, run nnU-Net's planning, preprocessing and training, register the new version."""
    from annotator.retrain import RetrainConfig
    from annotator.retrain import retrain as run

    config = RetrainConfig(configuration=configuration, trainer=trainer, folds=tuple(fold) if fold else None,
                           network=network, device=device, dataset_id=dataset_id, status=status, fallback=fallback,
                           grid=grid, structures=tuple(structure) if structure else None, splits=splits)
    record = run(Workspace.open(workspace), model, config)
    held_out = len(record.lineage.get("validated_on") or {})
    console.print(f"registered {record.tag}: trained on {len(record.lineage['trained_on'])} case(s)"
                  + (f", validated on {held_out}" if held_out else "") + f" (logs: {record.lineage['logs']})")
