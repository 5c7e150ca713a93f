"""The one seam where ctcurate meets nnU-Net v2's environment variables.

nnU-Net reads its folders (``nnUNet_raw``, ``nnUNet_preprocessed``, ``nnUNet_results``) and worker
counts (``nnUNet_def_n_proc``, ``nnUNet_n_proc_DA``) from the environment, and looks for trainers
outside its own package in ``nnUNet_extTrainer`` (set to ctcurate's :data:`TRAINERS_DIR`). Everything in ctcurate
that runs nnU-Net builds its environment here, from typed settings, and passes it to subprocesses
or sets it around in-process calls; nothing else reads or writes these variables.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NnunetFolders", "TRAINERS_DIR", "nnunet_env", "nnunet_environment"]

#: the nnU-Net trainers that ship with ctcurate (``nnUNetTrainer_ctcurateQuick``, ``..._ctcurateCPU``)
TRAINERS_DIR = Path(__file__).resolve().parent / "nnunet_trainers"


@dataclass(frozen=True)
class NnunetFolders:
    """nnU-Net's three folders and worker counts (2 cores: keep the workers at 1-2)."""

    raw: Path
    preprocessed: Path
    results: Path
    processes: int = 2
    augmentation_workers: int = 1

    def __post_init__(self) -> None:
        for name in ("raw", "preprocessed", "results"):
            object.__setattr__(self, name, Path(getattr(self, name)))

    @classmethod
    def under(cls, root: str | Path, **kwargs: int) -> NnunetFolders:
        root = Path(root)
        return cls(root / "nnUNet_raw", root / "nnUNet_preprocessed", root / "nnUNet_results", **kwargs)


def nnunet_env(folders: NnunetFolders | None, *, processes: int = 2, augmentation_workers: int = 1) -> dict[str, str]:
    """The environment variables nnU-Net wants, as a dict to merge into a subprocess's environment."""
    env = {"nnUNet_def_n_proc": str(folders.processes if folders else processes),
           "nnUNet_n_proc_DA": str(folders.augmentation_workers if folders else augmentation_workers),
           "nnUNet_compile": "false", "nnUNet_extTrainer": str(TRAINERS_DIR)}
    if folders is not None:
        env.update({"nnUNet_raw": str(folders.raw), "nnUNet_preprocessed": str(folders.preprocessed),
                    "nnUNet_results": str(folders.results)})
    return env


@contextlib.contextmanager
def nnunet_environment(folders: NnunetFolders | None = None, **kwargs: int) -> Iterator[dict[str, str]]:
    """Set nnU-Net's variables for an in-process call and restore the previous values afterwards."""
    values = nnunet_env(folders, **kwargs)
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield values
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
