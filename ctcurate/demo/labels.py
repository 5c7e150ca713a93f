"""The demo's label set and the phantom's true labels (one case with its lungs swapped on purpose)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from curation.image import Volume, read_nrrd
from curation.labels import LabelClass, LabelSet, write_seg_nrrd
from curation.workspace import Workspace

__all__ = ["DEMO_LABEL_SET", "label_demo_cases"]


DEMO_LABEL_SET = LabelSet("demo", "1", (
    LabelClass(1, "liver", "organ", color=(221, 130, 101), solid=True, hu=(-20.0, 300.0, 0.8)),
    LabelClass(2, "lung_left", "organ", "left", "lung_right", (197, 165, 145), hu=(-1024.0, -400.0, 0.7),
               may_contain_air=True),
    LabelClass(3, "lung_right", "organ", "right", "lung_left", (172, 175, 140), hu=(-1024.0, -400.0, 0.7),
               may_contain_air=True),
    LabelClass(4, "spine", "bone", color=(241, 214, 145), hu=(150.0, 3000.0, 0.5)),
    LabelClass(5, "spleen", "organ", color=(157, 108, 162), solid=True, hu=(-20.0, 300.0, 0.8)),
    LabelClass(6, "kidney_right", "organ", "right", "kidney_left", (185, 102, 83), solid=True,
               hu=(-20.0, 400.0, 0.8)),
    LabelClass(7, "kidney_left", "organ", "left", "kidney_right", (185, 102, 83), solid=True,
               hu=(-20.0, 400.0, 0.8)),
    LabelClass(8, "urinary_bladder", "organ", color=(222, 154, 132), hu=(-20.0, 300.0, 0.8)),
), title="Phantom structures of the ctcurate demo")


def label_demo_cases(ws: Workspace, cases: tuple[str, ...]) -> Path:
    """Write the phantom's true labels as each case's ``segmentation.seg.nrrd``, one with an error.

    The demo label set is written to ``WS/labels/demo.toml`` and made the workspace's label set.
    In the last case the two lungs are swapped, an error ``qa labels`` reports.
    """
    import dataclasses

    path = ws.labels_dir / "demo.toml"
    DEMO_LABEL_SET.save(path)
    ws.save_settings(dataclasses.replace(ws.settings, labels=dataclasses.replace(ws.settings.labels,
                                                                                 label_set=str(path.relative_to(ws.root)))))
    for n, case in enumerate(cases):
        ct = read_nrrd(ws.case_dir(case) / ws.ct_name())
        hu = ct.array
        x = ct.index_to_world(np.stack([np.arange(hu.shape[2]), np.zeros(hu.shape[2]), np.zeros(hu.shape[2])],
                                       axis=1))[:, 0]
        left = np.broadcast_to(x > 0, hu.shape)
        labels = np.zeros(hu.shape, dtype=np.uint8)
        labels[hu == 60] = 1
        lung = hu == -850
        swap = n == len(cases) - 1 and len(cases) > 1
        labels[lung & (left != swap)] = 2
        labels[lung & (left == swap)] = 3
        labels[hu == 700] = 4
        labels[hu == 45] = 5
        labels[(hu == 30) & ~left] = 6
        labels[(hu == 30) & left] = 7
        labels[hu == 10] = 8
        write_seg_nrrd(ws.segmentation_file(case), Volume(labels, ct.spacing, ct.origin, ct.direction),
                       DEMO_LABEL_SET)
    return path
