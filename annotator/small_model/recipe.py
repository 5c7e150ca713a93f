"""Recipe of the small nnU-Net v2 model that ships with ctcurate (tests and demo use it; they never train).

It learns five large structures (spleen, right and left kidney, liver, urinary bladder) from the real
TotalSegmentator CT and label maps in the shared data, at 3 mm, with a reduced network (4 stages,
8-64 features, 64^3 patches), without data augmentation (nnUNetTrainerNoDA: the inputs are always in
the canonical orientation, and the model only has to learn these two volumes well), two thirds of the
patches centred on a structure, AdamW (3e-3, poly decay) for quick convergence and a short schedule, on
the CPU with nnU-Net's workers set for 2 cores.

Steps: write an nnU-Net raw dataset (CT and labels reoriented to the canonical LPS array order, as
:mod:`annotator` does before every prediction), plan and preprocess, shrink the plans, train fold
``all``, and copy the trained-model folder (weights only, no optimiser state) into ``--out``.

Usage: ``python -m annotator.small_model.recipe WORK --shared-data ../shared/data --out annotator/small_model``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from annotator.nnunet_env import NnunetFolders, nnunet_env
from annotator.retrain import shrink_plans
from curation import Volume, load_label_set, read_volume, resample_isotropic
from curation.dicom.series import load_series
from curation.image.orientation import to_canonical
from curation.lifetime import die_with_parent

log = logging.getLogger(__name__)

DATASET = "Dataset901_CtcurateSmall"
STRUCTURES = ("spleen", "kidney_right", "kidney_left", "liver", "urinary_bladder")
PLANS = "nnUNetPlansSmall"
TRAINER = "nnUNetTrainer_Small"
SPACING_MM = 3.0


def _write(path: Path, volume: Volume) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(volume.to_sitk(), str(path), useCompression=True)


def _subset(labels: np.ndarray) -> np.ndarray:
    v2 = load_label_set("total_v2")
    out = np.zeros(labels.shape, dtype=np.uint8)
    for n, name in enumerate(STRUCTURES, 1):
        out[labels == v2.by_name(name).index] = n
    return out


def _onto(labels: Volume, grid: Volume) -> Volume:
    """Nearest-neighbour resampling of a label volume onto another volume's grid (world coordinates)."""
    resampled = sitk.Resample(labels.to_sitk(), grid.to_sitk(), sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    return Volume.from_sitk(resampled)


def write_raw_dataset(shared: Path, raw: Path) -> Path:
    """Two training cases: example_ct (3 mm, 112 slices) and the 20-slice DICOM series (resampled to 3 mm)."""
    ts = shared / "totalsegmentator"
    folder = raw / DATASET
    ct, _ = to_canonical(read_volume(ts / "example_ct.nii.gz"))
    labels, _ = to_canonical(read_volume(ts / "seg_v2_total117" / "example_seg_fast_force_split.nii.gz"))
    cases = [("ts_example", Volume(ct.array.astype(np.int16), ct.spacing, ct.origin, ct.direction),
              Volume(_subset(labels.array), labels.spacing, labels.origin, labels.direction))]
    series = sorted(str(p) for p in (ts / "example_ct_dicom").iterdir())
    dicom = resample_isotropic(to_canonical(load_series(series))[0], SPACING_MM)
    seg = read_volume(ts / "seg_v2_total117" / "example_seg_dicom.nii.gz")
    seg_on_ct = _onto(Volume(_subset(seg.array), seg.spacing, seg.origin, seg.direction), dicom)
    cases.append(("ts_dicom", dicom, seg_on_ct))
    for name, image, label in cases:
        _write(folder / "imagesTr" / f"{name}_0000.nii.gz", image)
        _write(folder / "labelsTr" / f"{name}.nii.gz", label)
    dataset = {"channel_names": {"0": "CT"}, "labels": {"background": 0, **{s: n for n, s in enumerate(STRUCTURES, 1)}},
               "numTraining": len(cases), "file_ending": ".nii.gz",
               "name": "ctcurate small model", "licence": "Apache-2.0 (TotalSegmentator test data)"}
    (folder / "dataset.json").write_text(json.dumps(dataset, indent=1))
    return folder


def _run(command: list[str], env: dict[str, str], log_file: Path) -> None:
    log.info("running %s (log: %s)", " ".join(command), log_file)
    with log_file.open("w") as handle:
        subprocess.run(command, env={**os.environ, **env}, stdout=handle, stderr=subprocess.STDOUT, check=True,
                       preexec_fn=die_with_parent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--shared-data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--resume", action="store_true", help="continue the last run up to --epochs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    folders = NnunetFolders.under(args.work, processes=2, augmentation_workers=1)
    env = nnunet_env(folders)
    start = time.time()
    bin_dir = Path(sys.executable).parent
    if not (folders.preprocessed / DATASET / f"{PLANS}_3d_fullres").is_dir():
        prepare(args, folders, env, bin_dir)
    os.environ.update(env)  # the recipe is its own process: nnU-Net reads these while it trains
    train_in_process(folders, args.epochs, args.iterations, resume=args.resume)
    trained = folders.results / DATASET / f"{TRAINER}__{PLANS}__3d_fullres"
    export(trained, args.out / "model")
    log.info("done in %.0f min", (time.time() - start) / 60)


def prepare(args: argparse.Namespace, folders: NnunetFolders, env: dict[str, str], bin_dir: Path) -> None:
    write_raw_dataset(args.shared_data, folders.raw)
    _run([str(bin_dir / "nnUNetv2_plan_and_preprocess"), "-d", "901", "-c", "3d_fullres", "--no_pp",
          "--verify_dataset_integrity"], env, args.work / "plan.log")
    shrink_plans(folders.preprocessed / DATASET, "3d_fullres", target=PLANS)
    _run([str(bin_dir / "nnUNetv2_preprocess"), "-d", "901", "-plans_name", PLANS, "-c", "3d_fullres", "-np", "2"],
         env, args.work / "preprocess.log")


def export(trained: Path, target: Path) -> None:
    """Copy a trained-model folder with a weights-only checkpoint named for the base trainer."""
    import torch

    name = f"nnUNetTrainer__{PLANS}__3d_fullres"
    out = target / name
    shutil.rmtree(out, ignore_errors=True)
    (out / "fold_all").mkdir(parents=True)
    for file in ("plans.json", "dataset.json", "dataset_fingerprint.json"):
        shutil.copy(trained / file, out / file)
    checkpoint = torch.load(trained / "fold_all" / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    # the small trainer only shortens the schedule; inference needs the base trainer's network and mirroring
    slim = {"network_weights": checkpoint["network_weights"], "init_args": checkpoint["init_args"],
            "trainer_name": "nnUNetTrainer",
            "inference_allowed_mirroring_axes": checkpoint.get("inference_allowed_mirroring_axes"),
            "current_epoch": checkpoint.get("current_epoch")}
    torch.save(slim, out / "fold_all" / "checkpoint_final.pth")
    for log_file in (trained / "fold_all").glob("training_log_*.txt"):
        shutil.copy(log_file, out / "fold_all" / "training_log.txt")


def train_in_process(folders: NnunetFolders, epochs: int, iterations: int, *, resume: bool = False) -> None:
    """Train fold ``all`` with nnU-Net's own trainer, shortened to ``epochs`` x ``iterations`` (CPU).

    ``resume`` continues from the last checkpoint up to ``epochs`` (the learning rate follows the
    schedule of an ``epochs``-long run from there).
    """
    import torch
    from batchgenerators.utilities.file_and_folder_operations import load_json
    from nnunetv2.training.nnUNetTrainer.variants.data_augmentation.nnUNetTrainerNoDA import nnUNetTrainerNoDA

    cpu = torch.device("cpu")

    class nnUNetTrainer_Small(nnUNetTrainerNoDA):  # noqa: N801 (nnU-Net's naming)
        def __init__(self, plans: dict, configuration: str, fold: str, dataset_json: dict,
                     device: torch.device = cpu) -> None:
            super().__init__(plans, configuration, fold, dataset_json, device)
            self.num_epochs = epochs
            self.num_iterations_per_epoch = iterations
            self.num_val_iterations_per_epoch = 2
            self.oversample_foreground_percent = 0.66
            self.initial_lr = 3e-3

        def configure_optimizers(self):
            from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler

            optimizer = torch.optim.AdamW(self.network.parameters(), lr=self.initial_lr, weight_decay=3e-5)
            return optimizer, PolyLRScheduler(optimizer, self.initial_lr, self.num_epochs)

    torch.set_num_threads(2)
    base = folders.preprocessed / DATASET
    plans = {**load_json(str(base / f"{PLANS}.json")), "continue_training": False}  # as nnU-Net's run_training does
    trainer = nnUNetTrainer_Small(plans=plans, configuration="3d_fullres", fold="all",
                                  dataset_json=load_json(str(base / "dataset.json")), device=torch.device("cpu"))
    if resume:
        for name in ("checkpoint_latest.pth", "checkpoint_final.pth"):
            path = Path(trainer.output_folder) / name
            if path.is_file():
                trainer.load_checkpoint(str(path))
                break
    trainer.run_training()


if __name__ == "__main__":
    main()
