"""Fixtures for the QA tests: real TotalSegmentator CT and label maps, and case folders built from them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from curation import Volume, load_label_set, read_volume, write_volume
from curation.labels.labelmap import write_mask_folder


@pytest.fixture(scope="session")
def v2_map(ts: Path) -> Volume:
    """Real v2 (117-class) label map on the full example CT grid (122 x 101 x 112, 3 mm)."""
    return read_volume(ts / "seg_v2_total117" / "example_seg_fast_force_split.nii.gz")


@pytest.fixture(scope="session")
def v2_masks(tmp_path_factory: pytest.TempPathFactory, v2_map: Volume) -> Path:
    """One binary .nii.gz mask per v2 class, written from the real v2 map (written once, copied per test)."""
    folder = tmp_path_factory.mktemp("v2masks") / "segmentations"
    write_mask_folder(folder, v2_map, load_label_set("total_v2"), suffix=".nii.gz")
    return folder


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(source, target)
    except OSError:
        shutil.copy(source, target)


@pytest.fixture()
def make_case(tmp_path: Path) -> Callable[..., Path]:
    """Build ``tmp_path/cases/<name>`` from a CT file and labels (volumes are written, files linked)."""

    def _make(name: str, ct: Path | Volume | None, *, multilabel: Volume | Path | None = None,
              masks: Path | dict[str, Volume] | None = None, multilabel_name: str = "segmentation.nii.gz") -> Path:
        case = tmp_path / "cases" / name
        case.mkdir(parents=True)
        if isinstance(ct, Path):
            _link_or_copy(ct, case / ("ct.nii.gz" if ct.name.endswith(".nii.gz") else ct.name))
        elif ct is not None:
            write_volume(case / "ct.nrrd", ct)
        if isinstance(multilabel, Path):
            _link_or_copy(multilabel, case / multilabel_name)
        elif multilabel is not None:
            write_volume(case / multilabel_name, multilabel)
        if isinstance(masks, Path):
            shutil.copytree(masks, case / "segmentations", symlinks=True)
            for path in (case / "segmentations").iterdir():
                if not path.is_symlink():
                    path.chmod(0o644)
        elif masks is not None:
            for structure, volume in masks.items():
                write_volume(case / "segmentations" / f"{structure}.nii.gz", volume)
        return case

    return _make


def replace(volume: Volume, array: np.ndarray) -> Volume:
    """The same grid with other voxels."""
    return Volume(array, volume.spacing, volume.origin, volume.direction)
