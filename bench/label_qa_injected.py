"""Label QA against errors injected into real label maps: how many does ``qa labels`` catch?

Bases: the real TotalSegmentator maps of the shared data with their CT (v1 104-class maps, v2 117-class
maps on the full and the small CT, the DICOM series' map). Into copies of them one error per case is
injected, of these kinds, with seeded random targets and magnitudes:

swap (left/right pair), missing_paired, missing_unpaired, relabel (a structure labelled as its
neighbour), vertebra_swap, shift (a solid organ moved 5-20 mm), overgrowth (dilated 3-10 mm into its
neighbours), flip (the whole map along one axis), transpose (two axes of the whole map), far_island,
hole, geometry (the map or a mask on another grid), unknown_value (a value outside the label set),
wrong_name (a mask saved under another structure's name), undergrowth (a solid organ shrunk by 6-10 mm),
cut (an organ or muscle with its upper or lower 30-60 % left unlabelled, inside the field of view).

Each case is stored as one multi-label file (under the names users have) or as a folder of masks,
alternately. A case counts as caught when a warning or error names a touched structure or a
case-level verdict names the cause (map-wide kinds: a verdict or a finding on the file); the clean
bases, in both storage forms, must show no error. The script prints the table per kind.

Usage: ``.venv/bin/python bench/label_qa_injected.py [--shared-data ../shared/data] [--per-kind 10] [--seed 0]
[--workers 2] [--out DIR]``; exit status 1 when fewer than ``--target`` (default 0.99) are caught or
a clean case has an error.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from curation import LabelSet, Volume, load_label_set, read_volume, write_volume
from curation.labels.labelmap import write_mask_folder, write_seg_nrrd

KINDS = ("swap", "missing_paired", "missing_unpaired", "relabel", "vertebra_swap", "shift", "overgrowth", "flip",
         "transpose", "far_island", "hole", "geometry", "unknown_value", "wrong_name", "undergrowth", "cut")
MAP_WIDE = {"flip", "transpose", "geometry", "unknown_value"}
MULTILABEL_NAMES = ("segmentation.nii.gz", "seg.nrrd", "labels.nii.gz", "ct.seg.nrrd", "segmentations.nii.gz")


@dataclass
class Base:
    name: str
    ct: Volume
    labels: Volume
    label_set: LabelSet


@dataclass
class Injected:
    case: str
    kind: str
    base: str
    touched: set[str]
    what: str
    labels: Volume | None = None                 # the map to store (None: keep the base's)
    masks_hook: Callable[[Path], None] | None = None  # edits the mask folder after it is written
    multi_hook: Callable[[Path], None] | None = None  # edits the multi-label file after it is written
    form: str = "masks"
    extra: dict = field(default_factory=dict)


def load_bases(shared: Path) -> list[Base]:
    from curation.dicom.series import load_series

    ts = shared / "totalsegmentator"
    v1, v2 = load_label_set("total_v1"), load_label_set("total_v2")
    ct = read_volume(ts / "example_ct.nii.gz")
    ct_sm = read_volume(ts / "example_ct_sm.nii.gz")

    def ints(path: Path) -> Volume:
        v = read_volume(path)
        return Volume(np.rint(v.array).astype(np.uint8), v.spacing, v.origin, v.direction)

    bases = [Base("v1", ct, ints(ts / "seg_v1_total104" / "example_seg.nii.gz"), v1),
             Base("v1fast", ct, ints(ts / "seg_v1_total104" / "example_seg_fast.nii.gz"), v1),
             Base("v2", ct, ints(ts / "seg_v2_total117" / "example_seg_fast_force_split.nii.gz"), v2),
             Base("v2sm", ct_sm, ints(ts / "seg_v2_total117" / "example_seg.nii.gz"), v2)]
    dicom = load_series(sorted((ts / "example_ct_dicom").iterdir()))
    seg = read_volume(ts / "seg_v2_total117" / "example_seg_dicom.nii.gz")
    # the map overlays the series in world space with its y axis stored the other way round
    bases.append(Base("v2dicom", dicom, Volume(seg.array[:, ::-1, :].astype(np.uint8).copy(), dicom.spacing,
                                               dicom.origin, dicom.direction), v2))
    return bases


def _like(volume: Volume, array: np.ndarray) -> Volume:
    return Volume(array, volume.spacing, volume.origin, volume.direction)


def _ball(radius_mm: float, spacing_zyx: np.ndarray) -> np.ndarray:
    r = np.maximum(np.floor(radius_mm / spacing_zyx), 0).astype(int)
    zz, yy, xx = np.ogrid[-r[0]:r[0] + 1, -r[1]:r[1] + 1, -r[2]:r[2] + 1]
    return ((zz * spacing_zyx[0]) ** 2 + (yy * spacing_zyx[1]) ** 2 + (xx * spacing_zyx[2]) ** 2) <= radius_mm ** 2


class Injector:
    """Draws targets and magnitudes for one base with a seeded generator."""

    def __init__(self, base: Base, rng: np.random.Generator) -> None:
        self.base, self.rng = base, rng
        self.a = base.labels.array
        self.L = base.label_set
        self.spacing = np.array(base.labels.spacing[::-1], dtype=float)  # z, y, x
        counts = np.bincount(self.a.ravel(), minlength=self.L.max_index + 1)
        self.counts = counts
        self.border = self._border_touching()

    def _border_touching(self) -> set[int]:
        a = self.a
        faces = [a[0], a[-1], a[:, 0], a[:, -1], a[:, :, 0], a[:, :, -1]]
        return {int(v) for f in faces for v in np.unique(f)} - {0}

    def present(self, *, min_voxels: int = 50, whole: bool = False) -> list[str]:
        out = []
        for c in self.L:
            if c.index < len(self.counts) and self.counts[c.index] >= min_voxels:
                if whole and c.index in self.border:
                    continue
                out.append(c.name)
        return out

    def pick(self, names: list[str]) -> str:
        if not names:
            raise LookupError("no eligible structure")
        return str(names[int(self.rng.integers(len(names)))])

    def idx(self, name: str) -> int:
        return self.L.by_name(name).index

    # kinds -----------------------------------------------------------------------------------------
    def swap(self) -> tuple[np.ndarray, set[str], str]:
        pairs = [c for c in self.L if c.laterality.value == "left" and c.counterpart and c.name in self.present()
                 and c.counterpart in self.present()]
        left = self.L.by_name(self.pick([c.name for c in pairs]))
        assert left.counterpart is not None
        a = self.a.copy()
        li, ri = left.index, self.idx(left.counterpart)
        a[self.a == li], a[self.a == ri] = ri, li
        return a, {left.name, left.counterpart}, f"{left.name} <-> {left.counterpart}"

    def missing_paired(self) -> tuple[np.ndarray, set[str], str]:
        whole = self.present(min_voxels=300, whole=True)
        names = [c.name for c in self.L if c.counterpart and c.name in whole and c.counterpart in whole]
        name = self.pick(names)
        a = self.a.copy()
        a[a == self.idx(name)] = 0
        return a, {name}, f"{name} emptied"

    def missing_unpaired(self) -> tuple[np.ndarray, set[str], str]:
        candidates = ("liver", "spleen", "pancreas", "stomach", "aorta", "inferior_vena_cava", "urinary_bladder",
                      "esophagus", "trachea", "heart", "duodenum", "sacrum", "portal_vein_and_splenic_vein",
                      "spinal_cord", "small_bowel", "colon")
        present = self.present(min_voxels=300)
        name = self.pick([n for n in candidates if n in present])
        a = self.a.copy()
        a[a == self.idx(name)] = 0
        return a, {name}, f"{name} emptied"

    def _contacts(self, index: int) -> dict[int, int]:
        mask = self.a == index
        ring = ndimage.binary_dilation(mask) & ~mask
        values, counts = np.unique(self.a[ring], return_counts=True)
        return {int(v): int(n) for v, n in zip(values, counts, strict=True) if v != 0}

    def relabel(self) -> tuple[np.ndarray, set[str], str]:
        present = self.present(min_voxels=100)
        for _ in range(50):
            name = self.pick(present)
            contacts = {k: n for k, n in self._contacts(self.idx(name)).items() if self.counts[k] >= 100}
            if contacts:
                other = self.L.by_index(max(contacts, key=lambda k: contacts[k])).name
                a = self.a.copy()
                a[a == self.idx(name)] = self.idx(other)
                return a, {name, other}, f"{name} labelled as its neighbour {other}"
        raise LookupError("no structure with a neighbour")

    def vertebra_swap(self) -> tuple[np.ndarray, set[str], str]:
        levels = sorted((c for c in self.L if c.spine_level is not None and c.name in self.present(min_voxels=300)),
                        key=lambda c: c.spine_level or 0)
        if len(levels) < 2:
            raise LookupError("fewer than two vertebrae")
        k = int(self.rng.integers(len(levels) - 1))
        step = 1 if k + 2 >= len(levels) or self.rng.random() < 0.6 else 2
        upper, lower = levels[k], levels[k + step]
        a = self.a.copy()
        a[self.a == upper.index], a[self.a == lower.index] = lower.index, upper.index
        return a, {upper.name, lower.name}, f"{upper.name} <-> {lower.name}"

    def _solid_organs(self) -> list[str]:
        present = self.present(min_voxels=400)
        return [c.name for c in self.L if c.solid and c.category.value == "organ" and c.name in present]

    def shift(self) -> tuple[np.ndarray, set[str], str]:
        name = self.pick(self._solid_organs())
        index = self.idx(name)
        mm = float(self.rng.uniform(5, 20))
        if self.rng.random() < 0.5:  # along one axis
            direction = np.zeros(3)
            direction[int(self.rng.integers(3))] = 1 if self.rng.random() < 0.5 else -1
        else:  # any direction
            direction = self.rng.normal(size=3)
            direction /= np.linalg.norm(direction)
        steps = np.round(direction * mm / self.spacing).astype(int)
        if not steps.any():
            steps[int(np.argmax(np.abs(direction)))] = 1
        mask = self.a == index
        moved = ndimage.shift(mask, steps, order=0, mode="constant", cval=False)  # what leaves the volume is gone
        a = self.a.copy()
        a[mask] = 0
        a[moved] = index
        moved_mm = float(np.linalg.norm(steps * self.spacing))
        return a, {name}, f"{name} shifted by {moved_mm:.0f} mm (z, y, x voxels {steps.tolist()})"

    def overgrowth(self) -> tuple[np.ndarray, set[str], str]:
        name = self.pick(self._solid_organs())
        index = self.idx(name)
        mm = float(self.rng.uniform(3, 10))
        mask = self.a == index
        grown = ndimage.binary_dilation(mask, structure=_ball(max(mm, float(self.spacing.min())), self.spacing))
        a = self.a.copy()
        a[grown] = index
        return a, {name}, f"{name} grown by {mm:.0f} mm (+{(grown.sum() / mask.sum() - 1):.0%} volume)"

    def undergrowth(self) -> tuple[np.ndarray, set[str], str]:
        name = self.pick(self._solid_organs())
        index = self.idx(name)
        mm = float(self.rng.uniform(6, 10))
        mask = self.a == index
        kept = ndimage.binary_erosion(mask, structure=_ball(mm, self.spacing))
        if kept.sum() < 30:
            raise LookupError("too small to shrink")
        a = self.a.copy()
        a[mask & ~kept] = 0
        return a, {name}, f"{name} shrunk by {mm:.0f} mm ({kept.sum() / mask.sum() - 1:.0%} volume)"

    def cut(self) -> tuple[np.ndarray, set[str], str]:
        whole = set(self.present(min_voxels=500, whole=True))
        names = [c.name for c in self.L if c.name in whole and c.category.value in ("organ", "muscle")]
        name = self.pick(names)
        index = self.idx(name)
        zs = np.flatnonzero((self.a == index).any(axis=(1, 2)))
        share = float(self.rng.uniform(0.3, 0.6))
        a = self.a.copy()
        if self.rng.random() < 0.5:
            plane = zs[0] + int(round(share * len(zs)))
            a[:plane][a[:plane] == index] = 0
        else:
            plane = zs[-1] - int(round(share * len(zs)))
            a[plane + 1:][a[plane + 1:] == index] = 0
        return a, {name}, f"{name} cut at slice {plane} ({share:.0%} of its slices unlabelled)"

    def flip(self) -> tuple[np.ndarray, set[str], str]:
        axis = int(self.rng.integers(3))
        return np.flip(self.a, axis=axis).copy(), set(), f"flipped along array axis {'zyx'[axis]}"

    def transpose(self) -> tuple[np.ndarray, set[str], str]:
        return np.swapaxes(self.a, 1, 2).copy(), set(), "axes y and x swapped"

    def far_island(self) -> tuple[np.ndarray, set[str], str]:
        name = self.pick(self.present(min_voxels=300))
        index = self.idx(name)
        mask = self.a == index
        distance = ndimage.distance_transform_edt(~mask, sampling=self.spacing)
        body = self.base.ct.array > -300
        far = np.argwhere((distance > 40) & body & (self.a == 0))
        z, y, x = far[int(self.rng.integers(len(far)))]
        r = int(self.rng.integers(1, 3))
        a = self.a.copy()
        box = (slice(max(z - r, 0), z + r + 1), slice(max(y - r, 0), y + r + 1), slice(max(x - r, 0), x + r + 1))
        a[box] = index
        return a, {name}, f"{int((a[box] == index).sum())} voxels of {name} {float(distance[z, y, x]):.0f} mm away"

    def hole(self) -> tuple[np.ndarray, set[str], str]:
        present = self.present(min_voxels=2000)
        names = [n for n in present if self.L.by_name(n).category.value in ("organ", "muscle")
                 and not self.L.by_name(n).may_contain_air]
        for _ in range(50):
            name = self.pick(names)
            mask = self.a == self.idx(name)
            inner = ndimage.binary_erosion(mask, iterations=4)
            if inner.sum() < 30:
                continue
            points = np.argwhere(inner)
            z, y, x = points[int(self.rng.integers(len(points)))]
            mm = float(self.rng.uniform(4, 9))
            zz, yy, xx = np.ogrid[: mask.shape[0], : mask.shape[1], : mask.shape[2]]
            ball = (((zz - z) * self.spacing[0]) ** 2 + ((yy - y) * self.spacing[1]) ** 2
                    + ((xx - x) * self.spacing[2]) ** 2 <= mm ** 2) & inner
            a = self.a.copy()
            a[ball] = 0
            return a, {name}, f"hole of {int(ball.sum())} voxels ({mm:.0f} mm radius) in {name}"
        raise LookupError("no structure thick enough for a hole")

    def unknown_value(self) -> tuple[np.ndarray, set[str], str]:
        name = self.pick(self.present(min_voxels=100))
        value = self.L.max_index + 1 + int(self.rng.integers(0, 100))
        a = self.a.copy()
        a[a == self.idx(name)] = value
        return a, {name}, f"{name} stored as value {value}"

    def wrong_name(self) -> tuple[np.ndarray, set[str], str]:
        present = self.present(min_voxels=100)
        name = self.pick(present)
        others = [c.name for c in self.L if c.name != name and c.name not in present]
        other = self.pick(others) if self.rng.random() < 0.5 else self.pick([n for n in present if n != name])
        a = self.a.copy()
        a[a == self.idx(other)] = 0
        a[self.a == self.idx(name)] = self.idx(other)
        return a, {name, other}, f"{name} saved as {other}"


def make_cases(bases: list[Base], per_kind: int, seed: int, kinds: tuple[str, ...] = KINDS) -> list[Injected]:
    rng = np.random.default_rng(seed)
    out: list[Injected] = []
    for kind in kinds:
        made = 0
        attempts = 0
        while made < per_kind and attempts < per_kind * 10:
            base = bases[(made + attempts) % len(bases)] if attempts else bases[made % len(bases)]
            attempts += 1
            injector = Injector(base, rng)
            form = "masks" if (made % 2 == 0) else "multilabel"
            if kind == "unknown_value":
                form = "multilabel"
            try:
                if kind == "geometry":
                    out.append(_geometry(base, rng, f"{kind}_{made:02d}", form))
                else:
                    array, touched, what = getattr(injector, kind)()
                    shape_changed = array.shape != base.labels.array.shape
                    labels = _like(base.labels, array.astype(np.uint16 if array.max() > 255 else np.uint8))
                    if shape_changed:  # transposed: stored with the header of the transposed grid size
                        labels = Volume(labels.array, base.labels.spacing, base.labels.origin, base.labels.direction)
                    out.append(Injected(f"{kind}_{made:02d}", kind, base.name, touched, what, labels, form=form))
            except LookupError:
                continue
            made += 1
    return out


def _geometry(base: Base, rng: np.random.Generator, case: str, form: str) -> Injected:
    mm = float(rng.uniform(5, 30)) * (1 if rng.random() < 0.5 else -1)
    axis = int(rng.integers(3))
    origin = np.array(base.labels.origin, dtype=float)
    origin[axis] += mm
    moved = Volume(base.labels.array, base.labels.spacing, tuple(origin), base.labels.direction)
    what = f"origin moved {mm:+.0f} mm along {'xyz'[axis]}"
    return Injected(case, "geometry", base.name, set(), what, moved, form=form)


def write_case(root: Path, injected: Injected, base: Base, index: int) -> None:
    folder = root / injected.case
    folder.mkdir(parents=True)
    write_volume(folder / "ct.nrrd", base.ct)
    labels = injected.labels if injected.labels is not None else base.labels
    if injected.form == "masks":
        write_mask_folder(folder / "segmentations", labels, base.label_set, suffix=".nrrd")
    else:
        name = MULTILABEL_NAMES[index % len(MULTILABEL_NAMES)]
        if name.endswith(".seg.nrrd") and int(labels.array.max()) <= base.label_set.max_index:
            write_seg_nrrd(folder / name, labels, base.label_set)
        else:
            write_volume(folder / (name if not name.endswith(".seg.nrrd") else "segmentation.nii.gz"), labels)
    injected.extra["file_form"] = injected.form


def caught(findings: pd.DataFrame, injected: Injected) -> tuple[bool, str]:
    """Whether the case's findings catch its error, and the finding that does."""
    mine = findings[(findings["case"] == injected.case) & (findings["severity"].isin(["error", "warning"]))]
    verdicts = mine[mine["family"] == "case"]
    if len(verdicts):
        return True, f"{verdicts.iloc[0]['check']}: {verdicts.iloc[0]['message'][:90]}"
    if injected.kind in MAP_WIDE - {"unknown_value"}:
        return False, ""
    on = mine[mine["structure"].isin(injected.touched)]
    if injected.kind == "unknown_value":
        on = pd.concat([on, mine[mine["check"] == "completeness.unknown_value"]])
    if len(on):
        row = on.iloc[0]
        return True, f"{row['structure']} {row['check']}: {row['message'][:80]}"
    return False, ""


def main(argv: list[str] | None = None) -> int:
    from curation.workspace.executor import make_executor
    from qa import LabelQASettings, find_cases, run_label_qa

    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--shared-data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared"
                        / "data")
    parser.add_argument("--per-kind", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--out", type=Path, default=None, help="keep the cases and findings here")
    parser.add_argument("--kinds", default=",".join(KINDS))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    bases = load_bases(args.shared_data)
    by_name = {b.name: b for b in bases}
    chosen = tuple(k for k in args.kinds.split(",") if k)
    unknown = set(chosen) - set(KINDS)
    if unknown:
        parser.error(f"unknown kinds {sorted(unknown)}; choose from {', '.join(KINDS)}")
    injected = make_cases(bases, args.per_kind, args.seed, chosen)
    root = args.out or Path(tempfile.mkdtemp(prefix="label-qa-injected-"))
    root.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        for label_set_name in sorted({b.label_set.name for b in bases}):
            cases_dir = root / label_set_name
            mine = [i for i in injected if by_name[i.base].label_set.name == label_set_name]
            clean = [Injected(f"clean_{b.name}_{form}", "clean", b.name, set(), "as delivered", form=form)
                     for b in bases if b.label_set.name == label_set_name for form in ("masks", "multilabel")]
            for n, item in enumerate(mine + clean):
                write_case(cases_dir, item, by_name[item.base], n)
            label_set = load_label_set(label_set_name)
            with make_executor(workers=args.workers) as executor:
                findings, _ = run_label_qa(find_cases(cases_dir), LabelQASettings(label_set), executor=executor)
            if args.out:
                findings.to_csv(cases_dir / "findings.csv", index=False)
            for item in mine:
                hit, why = caught(findings, item)
                results.append({"kind": item.kind, "case": f"{label_set_name}/{item.case}", "base": item.base,
                                "form": item.form, "what": item.what, "caught": hit, "by": why})
            for item in clean:
                errors = findings[(findings["case"] == item.case) & (findings["severity"] == "error")]
                results.append({"kind": "clean", "case": f"{label_set_name}/{item.case}", "base": item.base,
                                "form": item.form, "what": item.what, "caught": errors.empty,
                                "by": "; ".join(f"{r.structure} {r.check}" for r in errors.itertuples())[:120]})
    finally:
        if args.out is None:
            shutil.rmtree(root, ignore_errors=True)
    table = pd.DataFrame(results)
    injected_rows = table[table["kind"] != "clean"]
    summary = injected_rows.groupby("kind", sort=False)["caught"].agg(["sum", "count"])
    summary["share"] = summary["sum"] / summary["count"]
    pd.set_option("display.width", 200, "display.max_colwidth", 110)
    print(summary.rename(columns={"sum": "caught", "count": "cases"}).to_string())
    missed = injected_rows[~injected_rows["caught"]]
    if len(missed):
        print("\nmissed:")
        print(missed[["case", "base", "form", "what"]].to_string(index=False))
    clean = table[table["kind"] == "clean"]
    dirty = clean[~clean["caught"]]
    share = float(injected_rows["caught"].mean()) if len(injected_rows) else 1.0
    print(f"\ncaught {int(injected_rows['caught'].sum())} of {len(injected_rows)} injected errors ({share:.1%}); "
          f"clean cases with an error: {len(dirty)} of {len(clean)}; {time.perf_counter() - started:.0f} s")
    if len(dirty):
        print(dirty[["case", "by"]].to_string(index=False))
    if args.out:
        table.to_csv(root / "results.csv", index=False)
        print(json.dumps({"out": str(root)}))
    return 0 if share >= args.target and dirty.empty else 1


if __name__ == "__main__":
    sys.exit(main())
