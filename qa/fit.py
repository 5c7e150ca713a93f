"""How well each mask fits the CT: trial shifts and the tissue in its boundary layers.

A structure's tissue has a narrow band of HU (its median +- a robust spread, or the label set's range for
bone and air, which contrast sharply). A mask in the right place holds that tissue inside and little of it
just outside. Two measurements follow from that, on a grid of about 3 mm (finer CTs are subsampled):

- **trial shifts**: the mask moved by whole voxels in any direction (up to ``max_shift_mm`` along each axis,
  searched one axis at a time from the best shift so far); the contrast (share of the band inside minus share
  in a ring just outside) is compared with the mask where it is. A mask that fits clearly better elsewhere is
  misplaced by about that shift.
- **boundary layers**: the share of band tissue in the mask's outermost layers against its core, and in
  the ring just outside. Outer layers of other tissue mean the mask has grown over its border
  (overgrowth, into the neighbour that touches it there); a ring of its own tissue means it stops short.

Arrays are (z, y, x); reported shifts are LPS millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from curation import Volume
from curation.enums import ContrastPhase
from curation.labels.labelset import Category, LabelClass, LabelSet

from .anatomy import BORDER_AXIS
from .findings import Check, Finding, Severity
from .labelstats import LabelStats

__all__ = ["FitSettings", "Fit", "grid_step", "measure_fit", "fit_findings", "world_shift"]




@dataclass(frozen=True)
class FitSettings:
    """Thresholds of the fit measurements."""

    target_mm: float = 3.0        # subsample finer grids to about this spacing
    max_shift_mm: float = 24.0
    ring_mm: float = 6.0          # width of the ring just outside the mask
    min_voxels: int = 60          # on the subsampled grid
    min_band_mm: float = 30.0     # half width of a tissue band at least (HU)
    shift_gain: float = 0.12      # a trial shift this much better in tissue contrast: misplaced (warning)
    shift_gain_error: float = 0.25
    # ... along an axis where the field of view cuts it, or for a muscle (it lies against unlabelled muscle)
    shift_gain_cut: float = 0.2
    min_shift_mm: float = 4.0
    min_contrast: float = 0.3     # moved, the mask must outline its tissue clearly (else: no boundary to fit)
    overgrowth_layer: float = 0.55   # outermost layer's band share / core's below this: overgrown
    overgrowth_layers: float = 0.7   # mean of the two outer layers' share / core's below this: overgrown
    undergrowth_ring: float = 0.8     # the ring outside holds this much of its tissue ...
    undergrowth_layer: float = 0.88  # ... and the layer just outside this much: under-segmented
    case_shift_share: float = 0.5    # this share of judged structures leaning to one shift: the whole map is
    case_shift_tolerance_mm: float = 4.0
    clean_contrast: float = 0.5      # a moved-back mask this clear fits cleanly (shrunk masks do not)


@dataclass(frozen=True)
class Fit:
    """The fit of one structure: contrast where it is and at the best trial shift, and its boundary layers."""

    band: tuple[float, float]
    contrast: float                # share of band voxels inside minus in the outer ring
    inside: float
    ring: float
    best_contrast: float
    shift_zyx_mm: tuple[float, float, float]  # best trial shift (array axes, mm)
    core: float                    # band share of the core (eroded) and of the two outer layers
    layer1: float
    layer2: float
    outside1: float                # band share of the layer just outside the mask
    neighbours_in_layer: dict[int, int]  # label -> voxels of layer 1 facing that label (overgrowth into it)
    at_index: tuple[int, int, int]       # (z, y, x) on the full grid: where the largest misfit lies


def grid_step(spacing_zyx: tuple[float, float, float], target_mm: float) -> tuple[int, int, int]:
    """Subsampling step per axis so that the subsampled spacing comes close to ``target_mm`` (never above)."""
    return tuple(max(1, int(target_mm // s)) for s in spacing_zyx)  # type: ignore[return-value]


def _band(values: np.ndarray, hu: tuple[float, float, float] | None, min_half: float) -> tuple[float, float]:
    if hu is not None and (hu[0] >= 150 or hu[1] <= -400):  # bone, air: the label set's range is sharp
        return hu[0], hu[1]
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median))) * 1.4826
    half = min(max(2.5 * mad, min_half), 150.0)
    return median - half, median + half


def _share(mask: np.ndarray, band: np.ndarray) -> float:
    n = int(np.count_nonzero(mask))
    return float(np.count_nonzero(mask & band) / n) if n else float("nan")


def measure_fit(labels: np.ndarray, image: np.ndarray, label: int, box: np.ndarray,
                spacing_zyx: tuple[float, float, float], hu: tuple[float, float, float] | None,
                settings: FitSettings, band: tuple[float, float] | None = None) -> Fit | None:
    """The :class:`Fit` of ``label`` (its full-grid bounding box ``box`` = [z0, z1, y0, y1, x0, x1]) with its own
    tissue band, or ``band`` (HU) when given; None when
    too small on the subsampled grid."""
    step = grid_step(spacing_zyx, settings.target_mm)
    spacing = np.array([spacing_zyx[a] * step[a] for a in range(3)])
    shifts = [int(settings.max_shift_mm // spacing[a]) for a in range(3)]
    ring_width = max(1, int(round(settings.ring_mm / spacing.min())))
    margin = [shifts[a] + ring_width + 1 for a in range(3)]
    lo = [max(int(box[2 * a]) // step[a] - margin[a], 0) for a in range(3)]
    sub_shape = [-(-labels.shape[a] // step[a]) for a in range(3)]
    hi = [min(int(box[2 * a + 1]) // step[a] + margin[a] + 1, sub_shape[a]) for a in range(3)]
    window = tuple(slice(lo[a] * step[a], hi[a] * step[a], step[a]) for a in range(3))
    lab = labels[window]
    mask = lab == label
    n = int(np.count_nonzero(mask))
    if n < settings.min_voxels:
        return None
    img = image[window]
    inner = ndimage.binary_erosion(mask)
    core = ndimage.binary_erosion(inner)
    values = img[core] if np.count_nonzero(core) >= settings.min_voxels // 2 else img[mask]
    low, high = band if band is not None else _band(values.astype(np.float64), hu, settings.min_band_mm)
    tissue = (img >= low) & (img <= high)
    grown = ndimage.binary_dilation(mask)
    faces = grown & ~mask  # the layer just outside (what the outermost layer faces)
    outer = (ndimage.binary_dilation(grown, iterations=ring_width - 1) if ring_width > 1 else grown) & ~mask
    # pad so that shifted masks never wrap around into the window
    pad = [(shifts[a] + 1, shifts[a] + 1) for a in range(3)]
    band_p = np.pad(tissue, pad)
    inside0, ring0 = _share(mask, tissue), _share(outer, tissue)
    contrast0 = inside0 - ring0
    # coordinate descent over whole-voxel shifts: along each axis in turn, from the best shift so far, until no
    # axis improves (a shift in any direction is found, not only along one axis)
    idx_mask, idx_ring = np.nonzero(mask), np.nonzero(outer)
    best_contrast, current = contrast0, [0, 0, 0]
    best_shift = list(current)
    for _ in range(3):
        start = list(current)
        for axis in range(3):
            for value in range(-shifts[axis], shifts[axis] + 1):
                if value == current[axis]:
                    continue
                trial = list(current)
                trial[axis] = value
                contrast = _shifted_contrast(band_p, idx_mask, idx_ring, trial, pad)
                if contrast > best_contrast + 1e-9:
                    best_contrast, best_shift = contrast, trial
            if best_contrast > contrast0:
                current = list(best_shift)
        if current == start:
            break
    best = (best_contrast, (current[0], current[1], current[2]))
    layer1 = mask & ~inner
    layer2 = inner & ~core
    facing = lab[faces]
    values_n, counts_n = np.unique(facing[facing != 0], return_counts=True)
    # where the misfit is largest: the outer layer voxels outside the band, their centre
    misfit = layer1 & ~tissue
    where = np.argwhere(misfit) if misfit.any() else np.argwhere(mask)
    centre = where[np.argmin(np.linalg.norm(where - where.mean(axis=0), axis=1))]
    at = tuple(int((lo[a] + centre[a]) * step[a]) for a in range(3))
    return Fit(band=(low, high), contrast=contrast0, inside=inside0, ring=ring0, best_contrast=best[0],
               shift_zyx_mm=tuple(float(best[1][a] * spacing[a]) for a in range(3)),  # type: ignore[arg-type]
               core=_share(core, tissue), layer1=_share(layer1, tissue), layer2=_share(layer2, tissue),
               outside1=_share(faces, tissue),
               neighbours_in_layer={int(v): int(c) for v, c in zip(values_n, counts_n, strict=True)},
               at_index=(at[0], at[1], at[2]))


def _shifted_contrast(band_p: np.ndarray, idx_mask: tuple[np.ndarray, ...], idx_ring: tuple[np.ndarray, ...],
                      d: list[int], pad: list[tuple[int, int]]) -> float:
    inside = band_p[tuple(idx_mask[a] + pad[a][0] + d[a] for a in range(3))]
    ring = band_p[tuple(idx_ring[a] + pad[a][0] + d[a] for a in range(3))]
    return float(inside.mean() - ring.mean())


def world_shift(labels: Volume, shift_zyx_mm: tuple[float, float, float]) -> np.ndarray:
    """An array-axis shift (z, y, x mm) as an LPS vector (mm)."""
    dz, dy, dx = shift_zyx_mm
    return labels.direction @ np.array([dx, dy, dz])


def _expected_band(cls: LabelClass, phase: ContrastPhase | None) -> tuple[float, float] | None:
    """The band of a structure's own tissue in the case's phase, from the label set (None: not known)."""
    if phase is None or phase not in cls.hu_phase:
        return None
    mean, spread = cls.hu_phase[phase]
    half = max(2.5 * spread, 30.0)
    return mean - half, mean + half


def fit_findings(case: str, labels: Volume, image: np.ndarray, stats: LabelStats, label_set: LabelSet,
                 settings: FitSettings, present: set[str], truncated: dict[str, list[str]],
                 phase: ContrastPhase | None = None) -> list[Finding]:
    """Misplaced masks (a trial shift fits clearly better), overgrown and undergrown boundaries; when most
    structures fit better moved by one and the same shift, one case-level verdict instead."""
    out: list[Finding] = []
    shifted: list[tuple[str, np.ndarray, Finding]] = []
    leaning: list[np.ndarray] = []  # shifts that improve the fit but not enough to be named on their own
    judged = 0
    for cls in label_set:
        if cls.name not in present or not cls.one_piece and cls.may_contain_air:
            continue
        fit = measure_fit(labels.array, image, cls.index, stats.bbox[cls.index], stats.spacing_zyx, cls.hu, settings)
        if fit is None:
            continue
        judged += 1
        expected = _expected_band(cls, phase)
        if expected is not None and fit.contrast < settings.min_contrast:
            # a mask moved onto other tissue takes that tissue's band; its own tissue's band may find it home
            other = measure_fit(labels.array, image, cls.index, stats.bbox[cls.index], stats.spacing_zyx, cls.hu,
                                settings, band=expected)
            if other is not None and other.best_contrast - other.contrast > fit.best_contrast - fit.contrast:
                fit = other
        at = labels.index_to_world(np.array([fit.at_index[::-1]], dtype=float))[0].round(1).tolist()
        gain = fit.best_contrast - fit.contrast
        soft = cls.category is not Category.BONE and np.isfinite(fit.core) and fit.core >= 0.6
        undergrown = soft and fit.ring >= settings.undergrowth_ring and fit.outside1 >= settings.undergrowth_layer
        step_mm = [stats.spacing_zyx[a] * grid_step(stats.spacing_zyx, settings.target_mm)[a] for a in range(3)]
        moved = float(np.linalg.norm(fit.shift_zyx_mm))
        cut = {("z", "y", "x")[a] for a in range(3) for side in truncated.get(cls.name, [])
               if BORDER_AXIS.get(side) == a}
        along = {("z", "y", "x")[a] for a in range(3) if fit.shift_zyx_mm[a]}
        at_limit = any(abs(fit.shift_zyx_mm[a]) > settings.max_shift_mm - step_mm[a] for a in range(3))
        # towards or away from a border that cuts the structure, a shift also gains or loses what lies beyond it
        needed = settings.shift_gain_cut if along & cut or cls.category is Category.MUSCLE else settings.shift_gain
        # a shrunk mask gains a little from any shift; a moved one fits cleanly once moved back
        if gain >= needed and fit.best_contrast >= settings.min_contrast and moved >= settings.min_shift_mm \
                and not at_limit and (not undergrown or fit.best_contrast >= settings.clean_contrast):
            lps = world_shift(labels, fit.shift_zyx_mm)
            finding = Finding(case, Check.ALIGNMENT, Severity.ERROR if gain >= settings.shift_gain_error
                              else Severity.WARNING,
                              f"{cls.name}: fits the CT clearly better moved by ({lps[0]:+.0f}, {lps[1]:+.0f}, "
                              f"{lps[2]:+.0f}) mm LPS (tissue contrast {fit.best_contrast:.2f} vs {fit.contrast:.2f} "
                              f"where it is, band {fit.band[0]:.0f}..{fit.band[1]:.0f} HU); the mask is misplaced by "
                              f"about {moved:.0f} mm", structure=cls.name,
                              values={"contrast": fit.contrast, "best_contrast": fit.best_contrast,
                                      "shift_lps_mm": lps.round(1).tolist(), "shift_mm": moved, "at_lps": at})
            shifted.append((cls.name, lps, finding))
            continue
        if gain >= settings.shift_gain / 2 and moved >= settings.min_shift_mm and not at_limit:
            leaning.append(world_shift(labels, fit.shift_zyx_mm))
        if undergrown:
            out.append(Finding(case, Check.UNDERGROWTH, Severity.WARNING,
                               f"{cls.name}: its own tissue lies all around it ({fit.outside1:.0%} of the layer just "
                               f"outside and {fit.ring:.0%} of a {settings.ring_mm:.0f} mm ring in its band "
                               f"{fit.band[0]:.0f}..{fit.band[1]:.0f} HU); the mask stops short of its border "
                               "(under-segmented)", structure=cls.name,
                               values={"outside": fit.outside1, "ring": fit.ring, "core": fit.core, "at_lps": at}))
            continue
        if not soft:
            continue  # bone's band does not hold its marrow; a core outside its own band says nothing
        outer = (fit.layer1 + fit.layer2) / (2 * fit.core)
        if fit.layer1 / fit.core < settings.overgrowth_layer or outer < settings.overgrowth_layers:
            into = max(fit.neighbours_in_layer, key=lambda k: fit.neighbours_in_layer[k]) \
                if fit.neighbours_in_layer else None
            neighbour = next((c.name for c in label_set if c.index == into), "")
            out.append(Finding(case, Check.OVERGROWTH, Severity.WARNING,
                               f"{cls.name}: its outer layers hold other tissue ({fit.layer1:.0%} and {fit.layer2:.0%} "
                               f"in its band {fit.band[0]:.0f}..{fit.band[1]:.0f} HU against {fit.core:.0%} in its "
                               f"core); the mask has grown over its border"
                               + (f", into {neighbour}" if neighbour else ""), structure=cls.name,
                               values={"layer1": fit.layer1, "layer2": fit.layer2, "core": fit.core,
                                       "neighbour": neighbour, "at_lps": at}))
    # the whole map moved: most structures lean towards one and the same shift (each need not pass on its own)
    vectors = [v for _, v, _ in shifted] + leaning
    if len(vectors) >= 4 and judged:
        median = np.median(np.array(vectors), axis=0)
        agree = sum(1 for v in vectors if np.linalg.norm(v - median) <= settings.case_shift_tolerance_mm)
        if agree >= 4 and agree >= settings.case_shift_share * judged:
            out.append(Finding(case, Check.SHIFTED, Severity.ERROR,
                               f"labels shifted as a whole: {agree} of {judged} structures fit the CT better moved "
                               f"by ({median[0]:+.0f}, {median[1]:+.0f}, {median[2]:+.0f}) mm LPS; the label map is "
                               "offset against the CT (origin or cropping)",
                               values={"shift_lps_mm": median.round(1).tolist(), "structures": agree,
                                       "judged": judged}))
            return out
    out += [f for _, _, f in shifted]
    return out
