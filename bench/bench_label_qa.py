"""Label QA of one 117-class label map: ctcurate's one-pass statistics vs a per-class loop, same run.

The grid is the real TotalSegmentator v2 map of ``example_ct`` (3 mm) upsampled to 1.5 mm
(244 x 202 x 224 voxels, 336 mm from the lung bases to the proximal femurs) and, for a whole-trunk
field of view, the same grid extended to 400 slices (600 mm) with empty slices of air. Both methods
compute the same statistics (voxel counts, HU histogram, connected components with sizes, boxes and
centroids, contact faces between classes, background enclosed by one class) and then run the same
anatomical checks and fit measurements; the bench asserts that the statistics agree and prints the
speed-up, seconds per case and peak memory (growth of the resident set, sampled) of each. It also
times a whole case from files (reading gzip NRRD included), with the labels as one multi-label file
and as 117 mask files.

Target: >= 20x faster than the per-class loop and <= 2 s per case on 2 cores.

Usage: ``.venv/bin/python bench/bench_label_qa.py [--shared-data ../shared/data] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from scipy import ndimage

from curation import Volume, load_label_set, read_volume
from qa.anatomy import AnatomySettings, check_anatomy, class_rows, truncated_sides
from qa.fit import FitSettings, fit_findings
from qa.labelstats import _NBINS, HU_MAX, HU_MIN, LabelStats, compute_label_stats


def per_class_stats(labels: Volume, image: np.ndarray, n_labels: int) -> LabelStats:
    """The straightforward way: every statistic computed class by class over the whole volume."""
    array = labels.array
    voxels = np.zeros(n_labels, dtype=np.int64)
    hist = np.zeros((n_labels, _NBINS), dtype=np.int64)
    components, boxes, centroids = {}, {}, {}
    bbox = np.full((n_labels, 6), -1, dtype=np.int64)
    centroid_index = np.full((n_labels, 3), np.nan)
    contacts: dict[tuple[int, int], int] = {}
    holes = {}
    cube = np.ones((3, 3, 3), dtype=bool)
    for label in range(1, n_labels):
        mask = array == label
        n = int(mask.sum())
        voxels[label] = n
        if not n:
            continue
        hu = np.clip(image[mask], HU_MIN, HU_MAX).astype(np.int64) - HU_MIN
        hist[label] = np.bincount(hu, minlength=_NBINS)
        comp, count = ndimage.label(mask, structure=cube)
        sizes = np.bincount(comp.ravel())[1:]
        order = np.argsort(-sizes, kind="stable")
        objects = ndimage.find_objects(comp)
        com = np.asarray(ndimage.center_of_mass(mask, comp, range(1, count + 1))).reshape(-1, 3)
        components[label] = sizes[order]
        boxes[label] = np.array([[s[0].start, s[0].stop - 1, s[1].start, s[1].stop - 1, s[2].start, s[2].stop - 1]
                                 for s in objects])[order]
        centroids[label] = com[order]
        b = boxes[label]
        bbox[label] = [b[:, 0].min(), b[:, 1].max(), b[:, 2].min(), b[:, 3].max(), b[:, 4].min(), b[:, 5].max()]
        centroid_index[label] = np.argwhere(mask).mean(axis=0)
        for axis in range(3):
            lead = tuple(slice(None, -1) if d == axis else slice(None) for d in range(3))
            tail = tuple(slice(1, None) if d == axis else slice(None) for d in range(3))
            for here, there in ((lead, tail), (tail, lead)):
                other = array[there][mask[here]]
                other = other[(other > label)]
                for value, faces in zip(*np.unique(other, return_counts=True), strict=True):
                    key = (label, int(value))
                    contacts[key] = contacts.get(key, 0) + int(faces)
        pocket = ndimage.binary_fill_holes(mask) & (array == 0)  # background this class encloses
        if pocket.any():
            pieces, count = ndimage.label(pocket)
            for piece in range(1, count + 1):
                this = pieces == piece
                around = array[ndimage.binary_dilation(this) & ~this]
                if set(np.unique(around).tolist()) == {label}:
                    holes[label] = holes.get(label, 0) + int(this.sum())
    xyz = centroid_index[:, ::-1]
    world = np.asarray(labels.origin) + (xyz * np.asarray(labels.spacing)) @ labels.direction.T
    spacing = labels.spacing
    return LabelStats(shape=array.shape, voxel_volume_ml=float(np.prod(spacing)) / 1000.0, voxels=voxels,
                      hu_hist=hist, components=components, component_boxes=boxes, component_centroids=centroids,
                      bbox=bbox, centroid_index=centroid_index, centroid_world=world, contacts=contacts, holes=holes,
                      spacing_zyx=(spacing[2], spacing[1], spacing[0]))


def _same(a: LabelStats, b: LabelStats) -> None:
    n = min(len(a.voxels), len(b.voxels))  # row 0 (background) is only counted by the one-pass method
    assert np.array_equal(a.voxels[1:n], b.voxels[1:n]) and not a.voxels[n:].any() and not b.voxels[n:].any()
    assert a.hu_hist is not None and b.hu_hist is not None and np.array_equal(a.hu_hist[1:n], b.hu_hist[1:n])
    assert a.components.keys() == b.components.keys()
    for label in a.components:
        assert np.array_equal(a.components[label], b.components[label]), label
    assert np.array_equal(a.bbox[1:n], b.bbox[1:n])
    assert np.allclose(a.centroid_index[1:n], b.centroid_index[1:n], equal_nan=True)
    assert a.contacts == b.contacts and a.holes == b.holes


def _measure(fn, repeat: int):  # type: ignore[no-untyped-def]
    """Best wall time of ``repeat`` runs and the peak growth of the resident memory over them (sampled every
    2 ms by a thread, so that nothing slows the run the way tracing allocations would)."""
    process = psutil.Process()
    start_rss = process.memory_info().rss
    peak = [start_rss]
    running = threading.Event()
    running.set()

    def sample() -> None:
        while running.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.002)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    best, result = float("inf"), None
    try:
        for _ in range(repeat):
            start = time.perf_counter()
            result = fn()
            best = min(best, time.perf_counter() - start)
    finally:
        running.clear()
        watcher.join()
    return best, peak[0] - start_rss, result


def run(labels: Volume, image: np.ndarray, name: str, repeat: int) -> None:
    label_set = load_label_set("total_v2")
    settings = AnatomySettings()

    def judge(stats: LabelStats) -> None:
        check_anatomy("bench", labels, stats, label_set, settings, image=image)
        present = {c.name for c in label_set if c.index < len(stats.voxels) and stats.voxels[c.index] > 0}
        fit_findings("bench", labels, image, stats, label_set, FitSettings(), present,
                     truncated_sides(stats, label_set, present))
        class_rows("bench", labels, stats, label_set)

    def ours() -> LabelStats:
        stats = compute_label_stats(labels, image)
        judge(stats)
        return stats

    def loop() -> LabelStats:
        stats = per_class_stats(labels, image, label_set.max_index + 1)
        judge(stats)
        return stats

    fast_s, fast_peak, fast = _measure(ours, repeat)
    slow_s, slow_peak, slow = _measure(loop, 1)
    _same(fast, slow)
    mvox = labels.array.size / 1e6
    print(f"{name}: {labels.array.shape[::-1]} voxels (x, y, z) = {mvox:.1f} M, {len(fast.present())} classes present")
    print(f"  per-class loop (baseline): {slow_s:7.2f} s   peak {slow_peak / 2**20:7.0f} MiB")
    print(f"  ctcurate one-pass        : {fast_s:7.2f} s   peak {fast_peak / 2**20:7.0f} MiB")
    print(f"  speed-up {slow_s / fast_s:.1f}x (target >= 20x); {fast_s:.2f} s per case (target <= 2 s); "
          f"statistics identical")


def end_to_end(labels: Volume, image: np.ndarray) -> None:
    """``check_case`` on files: the CT and the labels as gzip NRRD, one multi-label file or 117 masks."""
    import shutil
    import tempfile

    from curation import write_nrrd
    from curation.labels.labelmap import write_mask_folder
    from qa.cases import CaseFiles
    from qa.labels import LabelQASettings, check_case

    label_set = load_label_set("total_v2")
    tmp = Path(tempfile.mkdtemp(prefix="ctcurate-qa-bench-"))
    try:
        single, folder = tmp / "single", tmp / "masks"
        write_nrrd(single / "ct.nrrd", Volume(image, labels.spacing, labels.origin, labels.direction))
        write_nrrd(single / "segmentation.nrrd", labels)
        folder.mkdir()
        shutil.copy(single / "ct.nrrd", folder / "ct.nrrd")
        write_mask_folder(folder / "segmentations", labels, label_set)
        settings = LabelQASettings(label_set)
        for case in (single, folder):
            files = CaseFiles.from_folder(case)
            start = time.perf_counter()
            result = check_case(files, settings)
            took = time.perf_counter() - start
            form = "one multi-label file" if case is single else "117 mask files"
            print(f"  end to end from gzip NRRD ({form}): {took:.2f} s, {len(result.findings)} findings")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--shared-data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ts = args.shared_data / "totalsegmentator"
    labels3 = read_volume(ts / "seg_v2_total117" / "example_seg_fast_force_split.nii.gz")
    ct3 = read_volume(ts / "example_ct.nii.gz")

    def up(a: np.ndarray) -> np.ndarray:
        return np.repeat(np.repeat(np.repeat(a, 2, axis=0), 2, axis=1), 2, axis=2)

    spacing = tuple(s / 2 for s in labels3.spacing)
    origin = tuple(labels3.index_to_world(np.array([-0.25, -0.25, -0.25]))[0])
    labels = Volume(up(labels3.array), spacing, origin, labels3.direction)
    image = up(ct3.array.astype(np.int16))
    run(labels, image, "1.5 mm, real extent", args.repeat)
    end_to_end(labels, image)
    extra = 400 - labels.array.shape[0]
    labels_trunk = Volume(np.pad(labels.array, ((0, extra), (0, 0), (0, 0))), spacing, origin, labels3.direction)
    image_trunk = np.pad(image, ((0, extra), (0, 0), (0, 0)), constant_values=-1000)
    run(labels_trunk, image_trunk, "1.5 mm, whole-trunk field of view (400 slices)", args.repeat)


if __name__ == "__main__":
    main()
