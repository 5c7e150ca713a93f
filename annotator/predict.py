"""Run one nnU-Net v2 trained-model folder on a CT volume, in memory.

:class:`NnunetModel` checks the folder (``dataset.json``, ``plans.json``, ``fold_*/checkpoint_*.pth``),
loads it with ``nnUNetPredictor.initialize_from_trained_model_folder`` and predicts a label array for a
CT given in the canonical LPS array order (:func:`curation.image.orientation.to_canonical`) at the model's
spacing. nnU-Net's environment is set at :mod:`annotator.nnunet_env` only.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from curation import Volume
from curation.errors import ModelError, ModelLoadError

from .nnunet_env import nnunet_environment

__all__ = ["ModelFolder", "NnunetModel", "check_checkpoints", "check_device"]

log = logging.getLogger(__name__)


def check_device(device: str, *, present: bool = True) -> str:
    """``device`` if it names one (``cpu``, ``cuda``, ``cuda:N``, ``mps``) and, with ``present``, this machine has
    it; else :class:`ModelError` naming the fix. Only a GPU asked for loads torch to look."""
    if not re.fullmatch(r"cpu|cuda(:\d+)?|mps", device):
        raise ModelError(f"--device {device!r}: expected cpu, cuda or mps (cuda:N for the Nth GPU)")
    if device == "cpu" or not present:
        return device
    import torch

    if device == "mps":
        if not torch.backends.mps.is_available():
            raise ModelError("--device mps: this machine has no Apple GPU; use --device cpu")
        return device
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= count:
        found = f"{count} CUDA device(s)" if count else "no CUDA device"
        raise ModelError(f"--device {device}: this machine has {found}; use --device cpu"
                         + (f" or cuda:0..cuda:{count - 1}" if count else ""))
    return device


@dataclass(frozen=True)
class ModelFolder:
    """What a trained-model folder declares: labels, spacing, configuration, folds, checkpoint files."""

    path: Path
    labels: dict[str, int]          # label name -> value (background excluded)
    spacing: tuple[float, float, float]  # (x, y, z) mm
    configuration: str
    folds: tuple[str, ...]
    checkpoints: tuple[Path, ...]

    @classmethod
    def read(cls, path: str | Path, *, folds: tuple[str, ...] | None = None,
             checkpoint: str = "checkpoint_final.pth") -> ModelFolder:
        """Check a ``<Trainer>__<Plans>__<configuration>`` folder; raise :class:`ModelError` naming what is missing."""
        path = Path(path)
        if path.is_file():
            raise ModelError(f"model folder {path}: a file, not a folder; pass the trained-model folder that holds "
                             "it (<Trainer>__<Plans>__<configuration>)")
        if not path.is_dir():
            raise ModelError(f"model folder {path}: not found; pass an nnU-Net trained-model folder "
                             "(<Trainer>__<Plans>__<configuration>)")
        path = _model_folder_in(path)
        parts = path.name.split("__")
        missing = [name for name in ("dataset.json", "plans.json") if not (path / name).is_file()]
        if missing:
            raise ModelError(f"model folder {path}: missing {', '.join(missing)}; copy the whole trained-model folder")
        available = tuple(sorted(p.name.removeprefix("fold_") for p in path.glob("fold_*") if p.is_dir()))
        chosen = folds or available
        files = tuple(path / f"fold_{f}" / checkpoint for f in chosen)
        absent = [str(f.relative_to(path)) for f in files if not f.is_file()]
        if not chosen or absent:
            with_file = [f for f in available if (path / f"fold_{f}" / checkpoint).is_file()]
            fix = (f"folds with it: {', '.join(with_file)} (choose them with --folds)" if with_file else
                   f"folds present: {', '.join(available) or 'none'}, none with {checkpoint} (nnU-Net writes it when "
                   "training ends: finish the training or copy the whole trained-model folder)")
            raise ModelError(f"model folder {path}: no checkpoint {', '.join(absent) or f'fold_*/{checkpoint}'}; "
                             f"{fix}")
        dataset, plans = (_json(path / name) for name in ("dataset.json", "plans.json"))
        try:
            spacing_zyx = plans["configurations"][parts[2]]["spacing"]
        except (KeyError, TypeError) as exc:
            raise ModelError(f"model folder {path}: plans.json has no spacing for configuration {parts[2]!r} "
                             f"(missing {exc}); copy the plans.json nnU-Net wrote for this model") from None
        labels = {str(k): int(v) for k, v in dataset.get("labels", {}).items() if isinstance(v, int) and v != 0}
        return cls(path, labels, (float(spacing_zyx[2]), float(spacing_zyx[1]), float(spacing_zyx[0])), parts[2],
                   tuple(chosen), files)


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"model folder {path.parent}: {path.name} unreadable ({exc}); copy the file nnU-Net wrote "
                         "for this model") from None


def check_checkpoints(folder: ModelFolder) -> None:
    """Load each checkpoint of ``folder`` once (on the CPU, then dropped); raise :class:`ModelLoadError` naming the
    one that does not load."""
    import torch

    for checkpoint in folder.checkpoints:
        try:
            torch.load(checkpoint, map_location="cpu", weights_only=False)  # nnU-Net's own checkpoints hold more
        except Exception as exc:  # torch raises many kinds for a damaged file
            raise ModelLoadError(f"model folder {folder.path}: {checkpoint.relative_to(folder.path)} does not load "
                                 f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); copy "
                                 "the trained model again from where it was trained") from None


def _is_model_folder_name(name: str) -> bool:
    return len(name.split("__")) == 3 and all(name.split("__"))


def _model_folder_in(path: Path) -> Path:
    """``path`` when it is named as a trained-model folder; the one such folder inside it (an nnU-Net dataset folder
    holding one model); else a :class:`ModelError` naming the folders to pass instead."""
    if _is_model_folder_name(path.name):
        return path
    if path.name.startswith("fold_") and _is_model_folder_name(path.parent.name):
        raise ModelError(f"model folder {path}: this is one fold of a trained-model folder; pass {path.parent} "
                         f"(and --folds {path.name.removeprefix('fold_')} to use this fold alone)")
    inside = sorted(p for p in path.iterdir() if p.is_dir() and _is_model_folder_name(p.name))
    if len(inside) == 1:
        log.info("model folder %s: using the trained-model folder inside it, %s", path, inside[0].name)
        return inside[0]
    found = f"it holds {len(inside)}: {', '.join(p.name for p in inside)}; pass one of them" if inside else \
        "it holds none; pass the folder nnU-Net wrote for the trained model"
    raise ModelError(f"model folder {path}: expected a trained-model folder named <Trainer>__<Plans>__<configuration> "
                     f"or a folder holding one; {found}")


class NnunetModel:
    """A loaded nnU-Net predictor for one trained-model folder."""

    def __init__(self, folder: ModelFolder, *, device: str = "cpu", threads: int | None = None,
                 mirroring: bool = False, tile_step_size: float = 0.5) -> None:
        import torch

        from curation.workspace.threads import thread_budget

        threads = threads or thread_budget()  # the executor's share of the cores for this worker
        self.folder = folder
        with nnunet_environment(processes=threads):
            from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

            torch.set_num_threads(threads)
            chatter = io.StringIO()  # nnU-Net prints (device notes, the trainer class search): keep it in the log
            try:
                with contextlib.redirect_stdout(chatter):
                    self._predictor = nnUNetPredictor(
                        tile_step_size=tile_step_size, use_gaussian=True, use_mirroring=mirroring,
                        perform_everything_on_device=device != "cpu", device=torch.device(device), verbose=False,
                        verbose_preprocessing=False, allow_tqdm=False)
                    self._predictor.initialize_from_trained_model_folder(
                        str(folder.path), use_folds=folder.folds, checkpoint_name=folder.checkpoints[0].name)
            except Exception as exc:  # torch raises many kinds for a bad file
                raise ModelLoadError(f"model folder {folder.path}: checkpoint does not load ({type(exc).__name__}: "
                                     f"{str(exc).splitlines()[0] if str(exc) else ''}); re-export the model") from None
            finally:
                if chatter.getvalue():
                    log.debug("nnU-Net: %s", chatter.getvalue().strip())

    @property
    def spacing(self) -> tuple[float, float, float]:
        return self.folder.spacing

    def predict(self, ct: Volume) -> np.ndarray:
        """Label array (same shape as ``ct.array``) for a canonical CT at the model's spacing."""
        image = ct.array.astype(np.float32)[None]
        props: dict[str, Any] = {"spacing": list(ct.spacing[::-1])}
        with nnunet_environment(processes=1):
            labels = self._predictor.predict_single_npy_array(image, props, None, None, False)
        return np.asarray(labels, dtype=np.uint8 if max(self.folder.labels.values(), default=0) < 256 else np.uint16)
