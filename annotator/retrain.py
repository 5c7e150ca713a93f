"""``ctcurate retrain``: export the reviewed cases, plan, preprocess and train with nnU-Net, register the result.

nnU-Net runs as its own commands (``nnUNetv2_plan_and_preprocess``, ``nnUNetv2_preprocess``,
``nnUNetv2_train``) in subprocesses whose environment comes from :mod:`annotator.nnunet_env`, under
``WS/nnunet/`` (``nnUNet_raw``, ``nnUNet_preprocessed``, ``nnUNet_results``); each command's output
is kept in ``WS/logs/retrain/<model>-<time>/``. ``network="small"`` replaces the planned network by
a reduced one (4 stages, 8-64 features, 64^3 patches) that trains on a CPU. The trained-model folder
is copied into ``WS/models/<name>/v<N>/`` (weights, plans, logs) and registered as version N of
the model with its lineage: the export (which revision of which case), the split, configuration,
trainer, plans and folds, and the model version it follows.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from curation import Workspace
from curation.annotation.revisions import ReviewStatus
from curation.atomic import atomic_directory, atomic_write_text
from curation.errors import ModelError
from curation.lifetime import die_with_parent
from curation.workspace.folders import NNUNET_SPLIT_FILE

from .export import NnunetExport, export_nnunet
from .nnunet_env import NnunetFolders, nnunet_env
from .predict import check_device
from .registry import ModelRecord, list_models, register_model

__all__ = ["RetrainConfig", "retrain", "shrink_plans", "nnunet_command"]

log = logging.getLogger(__name__)
SMALL_PLANS = "nnUNetPlansSmall"
_NETWORKS = ("default", "small")


@dataclass(frozen=True)
class RetrainConfig:
    """What to train: nnU-Net configuration, trainer, folds (default: ``0`` on the workspace's split,
    else ``all``), network size, device, and which revisions to export."""

    configuration: str = "3d_fullres"
    trainer: str = "nnUNetTrainer"
    folds: tuple[str, ...] | None = None
    network: str = "default"
    device: str = "cpu"
    dataset_id: int = 950
    dataset_name: str = "Ctcurate"
    grid: str = "native"
    status: ReviewStatus | str = ReviewStatus.APPROVED
    fallback: ReviewStatus | str | None = None
    structures: tuple[str, ...] | None = None
    processes: int = 2
    splits: Path | None = None  # nnU-Net folds to train on (a release's splits_final.json) instead of the export's

    def __post_init__(self) -> None:
        if self.network not in _NETWORKS:
            raise ModelError(f"network {self.network!r}: expected one of {', '.join(_NETWORKS)}")
        for fold in self.folds or ():
            if fold != "all" and not fold.isdigit():
                raise ModelError(f"fold {fold!r}: expected a number (0-4) or 'all'")
        check_device(self.device, present=False)  # the name: a training job may be set up on another machine
        object.__setattr__(self, "status", ReviewStatus.parse(self.status))
        if self.splits is not None:
            object.__setattr__(self, "splits", Path(self.splits))
            if not Path(self.splits).is_file():
                raise ModelError(f"--splits {self.splits}: no such file; give a release's splits_final.json")
        if self.fallback is not None:
            object.__setattr__(self, "fallback", ReviewStatus.parse(self.fallback))

    @property
    def plans(self) -> str:
        return SMALL_PLANS if self.network == "small" else "nnUNetPlans"


def nnunet_command(name: str) -> str:
    """Path of one of nnU-Net's commands, next to this Python first."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if not found:
        raise ModelError(f"{name}: nnU-Net's command was not found; install ctcurate with the 'segment' extra")
    return found


def _run(command: list[str], env: dict[str, str], log_file: Path) -> None:
    log.info("running %s (log: %s)", " ".join(command), log_file)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("w") as handle:
        done = subprocess.run(command, env={**os.environ, **env}, stdout=handle, stderr=subprocess.STDOUT,
                              preexec_fn=die_with_parent)  # ends with this process, even when it is killed
    if done.returncode != 0:
        tail = log_file.read_text(errors="replace").strip().splitlines()[-5:]
        raise ModelError(f"{Path(command[0]).name} failed (exit {done.returncode}); see {log_file}: "
                         + " | ".join(tail))


def shrink_plans(dataset_dir: Path, configuration: str = "3d_fullres", source: str = "nnUNetPlans",
                 target: str = SMALL_PLANS) -> Path:
    """Copy nnU-Net's plans as ``target`` with a small network for ``configuration`` (4 stages, 8-64 features)."""
    plans = json.loads((dataset_dir / f"{source}.json").read_text())
    if configuration not in plans["configurations"]:
        raise ModelError(f"{dataset_dir}: no configuration {configuration!r} in {source}.json "
                         f"(has {', '.join(plans['configurations'])})")
    config = plans["configurations"][configuration]
    dims = len(config["patch_size"])
    config.update(patch_size=[64] * dims, batch_size=2, data_identifier=f"{target}_{configuration}")
    config["architecture"]["arch_kwargs"].update(
        n_stages=4, features_per_stage=[8, 16, 32, 64], kernel_sizes=[[3] * dims] * 4,
        strides=[[1] * dims] + [[2] * dims] * 3, n_conv_per_stage=[2, 2, 2, 2], n_conv_per_stage_decoder=[2, 2, 2])
    out = dict(plans, plans_name=target, configurations={configuration: config})
    path = dataset_dir / f"{target}.json"
    atomic_write_text(path, json.dumps(out, indent=1))
    return path


def _prepare(export: NnunetExport, folders: NnunetFolders, config: RetrainConfig, env: dict[str, str],
             logs: Path, splits: list[dict[str, list[str]]] | None) -> None:
    dataset = str(export.dataset_id)
    preprocessed = folders.preprocessed / export.folder.name
    shutil.rmtree(preprocessed, ignore_errors=True)  # a fresh round: no cases left from the last export
    plan = [nnunet_command("nnUNetv2_plan_and_preprocess"), "-d", dataset, "-c", config.configuration,
            "--verify_dataset_integrity", "-np", str(config.processes)]
    _run(plan + (["--no_pp"] if config.network == "small" else []), env, logs / "plan_and_preprocess.log")
    if config.network == "small":
        shrink_plans(preprocessed, config.configuration)
        _run([nnunet_command("nnUNetv2_preprocess"), "-d", dataset, "-plans_name", config.plans, "-c",
              config.configuration, "-np", str(config.processes)], env, logs / "preprocess.log")
    if splits:
        atomic_write_text(preprocessed / NNUNET_SPLIT_FILE, json.dumps(splits, indent=1))


def read_folds(path: Path, training: set[str]) -> list[dict[str, list[str]]]:
    """The folds of a ``splits_final.json`` (a release's), checked against the cases the export holds."""
    try:
        folds = json.loads(Path(path).read_text())
    except ValueError as exc:
        raise ModelError(f"--splits {path}: not valid JSON ({exc}); give a release's splits_final.json") from None
    if not isinstance(folds, list) or not folds or not all(
            isinstance(f, dict) and f.get("train") and isinstance(f.get("val"), list) and f["val"] for f in folds):
        raise ModelError(f"--splits {path}: expected nnU-Net's folds, a list of {{\"train\": [...], \"val\": [...]}} "
                         "with no empty list")
    unknown = sorted({c for f in folds for c in f["train"] + f["val"]} - training)
    if unknown:
        raise ModelError(f"--splits {path}: case(s) {unknown[:5]} are not among the exported training cases; export "
                         "with the release's split, or choose its status (--status/--fallback) so they are exported")
    return [{"train": list(f["train"]), "val": list(f["val"])} for f in folds]


def _keep(trained: Path, target: Path, folds: tuple[str, ...]) -> Path:
    """Copy what inference and the record need (no optimiser-free rewrite: the checkpoint stays nnU-Net's)."""
    with atomic_directory(target, replace=True) as tmp:  # a folder a killed run kept but never registered
        for name in ("dataset.json", "plans.json", "dataset_fingerprint.json"):
            shutil.copy(trained / name, tmp / name)
        for fold in folds:
            source = trained / f"fold_{fold}"
            (tmp / f"fold_{fold}").mkdir()
            for file in ["checkpoint_final.pth", "progress.png", *[p.name for p in source.glob("training_log_*")]]:
                if (source / file).is_file():
                    shutil.copy(source / file, tmp / f"fold_{fold}" / file)
    return target


def retrain(ws: Workspace, name: str, config: RetrainConfig | None = None) -> ModelRecord:
    """Export, plan, preprocess, train every fold, keep and register the new model version."""
    config = config or RetrainConfig()
    folders = NnunetFolders.under(ws.nnunet_dir, processes=config.processes,
                                  augmentation_workers=max(1, config.processes // 2))
    env = nnunet_env(folders)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    logs = ws.retrain_logs_dir(f"{name}-{stamp}")
    export = export_nnunet(ws, folders.raw, config.dataset_id, config.dataset_name, status=config.status,
                           fallback=config.fallback, grid=config.grid,
                           structures=list(config.structures) if config.structures else None, overwrite=True)
    splits = read_folds(config.splits, set(export.training)) if config.splits is not None else export.splits
    folds = config.folds or (("0",) if splits else ("all",))
    beyond = [f for f in folds if f != "all" and (not splits or int(f) >= len(splits))]
    if beyond:
        raise ModelError(f"fold {beyond[0]}: the split has {len(splits or [])} fold(s)"
                         + (f" (0-{len(splits) - 1})" if splits else "") + "; choose one of them, or 'all'")
    seen = {c for f in folds if f != "all" for c in (splits or [])[int(f)]["train"]}
    held_out = {c for f in folds if f != "all" for c in (splits or [])[int(f)]["val"]} - seen
    trained_on = export.training if "all" in folds else {c: n for c, n in export.training.items() if c in seen}
    _prepare(export, folders, config, env, logs, splits)
    for fold in folds:
        _run([nnunet_command("nnUNetv2_train"), str(export.dataset_id), config.configuration, fold, "-tr",
              config.trainer, "-p", config.plans, "-device", config.device.split(":")[0]],
             {**env, **({"CUDA_VISIBLE_DEVICES": config.device.split(":")[1]} if ":" in config.device else {})},
             logs / f"train_fold_{fold}.log")
    folder_name = f"{config.trainer}__{config.plans}__{config.configuration}"
    trained = folders.results / export.folder.name / folder_name
    previous = [m for m in list_models(ws) if m.name == name]
    version = previous[-1].version + 1 if previous else 1
    kept = _keep(trained, ws.models_dir / name / f"v{version}" / folder_name, folds)
    lineage: dict[str, Any] = {
        "parent": previous[-1].tag if previous else None, "dataset": export.folder.name,
        "trained_on": trained_on,
        "validated_on": {c: n for c, n in export.training.items() if c in held_out}, "test_cases": export.test,
        "skipped": export.skipped, "split": splits,
        "splits_file": str(config.splits) if config.splits is not None else None,
        "status": ReviewStatus.parse(config.status).value,
        "fallback": ReviewStatus.parse(config.fallback).value if config.fallback else None,
        "configuration": config.configuration, "trainer": config.trainer, "plans": config.plans,
        "network": config.network, "folds": list(folds), "grid": config.grid,
        "logs": str(logs.relative_to(ws.root)), "trained": stamp,
    }
    record = register_model(ws, name, [kept], lineage=lineage)
    log.info("registered %s trained on %d cases", record.tag, len(trained_on))
    return record
