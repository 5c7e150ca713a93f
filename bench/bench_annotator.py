"""napari annotator: time from choosing a case in the worklist to its CT and 117-class labels shown, and to save.

The case is the real ``example_ct`` with TotalSegmentator's v2 map, upsampled to 1.5 mm and padded
to a whole-trunk grid of 400 x 320 x 320 voxels (600 mm long, 480 mm field of view; air and
background outside the real extent), stored as ctcurate stores cases (``ct.nrrd``, ``ct_1.5mm.nrrd``,
``ct_3mm.nrrd``, revision 0 on all three grids). In one running viewer (under Xvfb, started here
when there is no display; the viewer's own start-up is reported apart):

- open: worklist selection -> claim, read CT and labels, check grid and label values, layers with
  contrast colours and the label set's names, first frame of the axial view drawn (the coronal and
  sagittal views fill in just after: reported apart). Baseline: bare napari showing the same two
  files read with pynrrd (``add_image`` + ``add_labels``, first frame drawn).
- save: a painted block -> revision written on the native, 1.5 mm and 3 mm grids, changes counted
  against the parent and the model, claim renewed. Baseline: one ``nrrd.write`` of the label map.

Targets: open <= 2 s and save <= 1 s on this machine. Peak RSS is printed.

Usage: ``.venv/bin/python bench/bench_annotator.py [--shared-data ../shared/data] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

SHAPE = (400, 320, 320)


def _display() -> subprocess.Popen | None:
    if os.environ.get("DISPLAY"):
        return None
    server = subprocess.Popen(["Xvfb", ":97", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ["DISPLAY"] = ":97"
    time.sleep(1.0)
    return server


def _case(shared: Path, root: Path):  # type: ignore[no-untyped-def]
    from curation import Volume, Workspace, read_volume, resample_isotropic, write_nrrd
    from curation.annotation.revisions import RevisionStore
    from curation.image.volume import resample_labels

    ts = shared / "totalsegmentator"
    ct3 = read_volume(ts / "example_ct.nii.gz")
    labels3 = read_volume(ts / "seg_v2_total117" / "example_seg_fast_force_split.nii.gz")

    def up(a: np.ndarray, fill: int) -> np.ndarray:
        big = np.repeat(np.repeat(np.repeat(a, 2, axis=0), 2, axis=1), 2, axis=2)
        pad = [(0, n - m) for n, m in zip(SHAPE, big.shape, strict=True)]
        return np.pad(big, pad, constant_values=fill)

    spacing = tuple(s / 2 for s in ct3.spacing)
    origin = tuple(ct3.index_to_world(np.array([-0.25, -0.25, -0.25]))[0])
    ct = Volume(up(ct3.array.astype(np.int16), -1000), spacing, origin, ct3.direction)
    labels = Volume(up(labels3.array.astype(np.uint8), 0), spacing, origin, ct3.direction)
    ws = Workspace.create(root / "ws")
    folder = ws.case_dir("s0001")
    write_nrrd(folder / "ct.nrrd", ct)
    shutil.copy(folder / "ct.nrrd", folder / ws.ct_name(1.5))
    coarse = resample_isotropic(ct, 3.0)
    write_nrrd(folder / ws.ct_name(3.0), coarse)
    RevisionStore(ws).add("s0001", {"native": labels, "1.5": labels, "3": resample_labels(labels, coarse)},
                          ws.label_set(), author="model:TotalSegmentator", kind="model", parent=None)
    return ws


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--shared-data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    server = _display()
    root = Path(tempfile.mkdtemp(prefix="ctcurate-bench-"))
    try:
        ws = _case(args.shared_data, root)
        import napari
        import nrrd
        from qtpy.QtWidgets import QApplication

        from annotator._qt import CtcurateDock
        from curation.annotation.revisions import RevisionStore

        start = time.perf_counter()
        viewer = napari.Viewer(show=True)
        dock = CtcurateDock(viewer, ws, "bench")
        viewer.window.add_dock_widget(dock, name="ctcurate", area="right")
        QApplication.processEvents()
        startup = time.perf_counter() - start
        store = RevisionStore(ws)
        seg_path = store.path(store.latest("s0001"))
        bare_open, ours_open, side_open, bare_save, ours_save = [], [], [], [], []
        for repeat in range(args.repeat):
            t = time.perf_counter()
            ct_array, _ = nrrd.read(str(ws.case_dir("s0001") / "ct.nrrd"), index_order="C")
            seg_array, _ = nrrd.read(str(seg_path), index_order="C")
            image = viewer.add_image(ct_array, contrast_limits=(-160, 240))
            labels = viewer.add_labels(seg_array)
            viewer.screenshot(canvas_only=True, flash=False)
            bare_open.append(time.perf_counter() - t)
            viewer.layers.remove(image)
            viewer.layers.remove(labels)
            dock.worklist.selectRow(0)
            t = time.perf_counter()
            dock.open_selected()
            viewer.screenshot(canvas_only=True, flash=False)
            ours_open.append(time.perf_counter() - t)
            while dock.views is not None and not dock.views.layers:  # the side views fill in just after
                QApplication.processEvents()
            for widget in dock.views.widgets.values() if dock.views is not None else []:
                widget.canvas.native.repaint()
            side_open.append(time.perf_counter() - t)
            assert dock.session is not None, dock.message.text()
            layer = dock.layers["labels"]
            value = 5 + repeat % 2  # each round paints a change (a save without one is refused)
            z, y, x = np.nonzero(layer.data[:20, :20, :20] != value)
            layer.data_setitem((z, y, x), value)
            t = time.perf_counter()
            nrrd.write(str(root / "bare.seg.nrrd"), np.asarray(layer.data), compression_level=1, index_order="C")
            bare_save.append(time.perf_counter() - t)
            t = time.perf_counter()
            dock.save()
            ours_save.append(time.perf_counter() - t)
            assert "saved revision" in dock.message.text(), dock.message.text()
            dock.close_case()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"case 400 x 320 x 320 at 1.5 mm (41 M voxels), 117 classes; best of {args.repeat}")
        print(f"  viewer start-up (apart)                 : {startup:6.2f} s")
        print(f"  open, bare napari + pynrrd (baseline)   : {min(bare_open):6.2f} s")
        print(f"  open, ctcurate worklist -> shown        : {min(ours_open):6.2f} s   ratio "
              f"{min(ours_open) / min(bare_open):.2f}   (target <= 2 s)")
        print(f"  ... and the coronal and sagittal views  : {min(side_open):6.2f} s")
        print(f"  save, one nrrd.write of the map (baseline): {min(bare_save):6.2f} s")
        print(f"  save, ctcurate revision on 3 grids      : {min(ours_save):6.2f} s   ratio "
              f"{min(ours_save) / min(bare_save):.2f}   (target <= 1 s)")
        print(f"  peak RSS                                : {peak:6.0f} MiB (CT int16 {np.prod(SHAPE) * 2 / 2**20:.0f} "
              f"MiB + labels {np.prod(SHAPE) / 2**20:.0f} MiB per copy)")
        viewer.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if server is not None:
            server.terminate()


if __name__ == "__main__":
    main()
