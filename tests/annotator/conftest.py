"""Fixtures of the annotator tests: a private copy of the demo workspace (pre-segmented by the small model)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from curation import Workspace


@pytest.fixture()
def demo_ws(demo_run, tmp_path: Path) -> Workspace:
    """A copy of the demo workspace: three converted phantom cases, each with the small model's revision 0."""
    target = tmp_path / "demo_ws"
    shutil.copytree(demo_run.workspace, target)
    return Workspace.open(target)


@pytest.fixture()
def real_case_ws(tmp_path: Path, ts: Path) -> Workspace:
    """A workspace with one real case: example_ct (native and 3 mm) with TotalSegmentator's v2 map as revision 0."""
    import numpy as np

    from curation import Volume, read_volume, resample_isotropic, write_nrrd
    from curation.annotation.revisions import RevisionStore
    from curation.image.volume import resample_labels

    ws = Workspace.create(tmp_path / "real_ws")
    ct = read_volume(ts / "example_ct.nii.gz")
    ct = Volume(ct.array.astype(np.int16), ct.spacing, ct.origin, ct.direction)
    write_nrrd(ws.case_dir("s0001") / "ct.nrrd", ct)
    coarse = resample_isotropic(ct, 3.0)
    write_nrrd(ws.case_dir("s0001") / ws.ct_name(3.0), coarse)
    labels = read_volume(ts / "seg_v2_total117" / "example_seg_fast_force_split.nii.gz")
    labels = Volume(labels.array.astype(np.uint8), ct.spacing, ct.origin, ct.direction)
    RevisionStore(ws).add("s0001", {"native": labels, "3": resample_labels(labels, coarse)}, ws.label_set(),
                          author="model:TotalSegmentator", kind="model", parent=None)
    return ws


@pytest.fixture()
def dock(make_napari_viewer, real_case_ws: Workspace):
    """The ctcurate dock in a napari viewer (as 'ctcurate annotate' opens it) on the real case, for dr.a."""
    from annotator._qt import CtcurateDock

    viewer = make_napari_viewer()
    widget = CtcurateDock(viewer, real_case_ws, "dr.a")
    viewer.window.add_dock_widget(widget, name="ctcurate", area="right")
    yield widget
    widget.finish()
