"""Cohort outliers: a structure whose volume, position or cross-sections are far from the same structure in other
cases. Structures the field of view cuts are compared by their cross-section area at the same vertebral levels
(their area profile), so a cut liver is judged on the part that is there."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .findings import Check, Finding, Severity

__all__ = ["robust_z", "cohort_findings", "profile_findings", "LOG_VOLUME_FLOOR", "POSITION_FLOOR_MM"]

LOG_VOLUME_FLOOR = 0.15   # a spread of volumes below ~15 % is treated as 15 % (people differ more than that)
POSITION_FLOOR_MM = 5.0   # a spread of positions below 5 mm is treated as 5 mm


def robust_z(values: pd.Series, floor: float) -> pd.Series:
    """(x - median) / max(1.4826 * MAD, floor); the floor keeps near-identical cohorts from flagging noise."""
    median = values.median()
    mad = 1.4826 * (values - median).abs().median()
    scale = max(float(mad) if np.isfinite(mad) else 0.0, floor)
    return (values - median) / scale


def cohort_findings(stats: pd.DataFrame, *, min_cases: int = 10, threshold: float = 5.0) -> list[Finding]:
    """Findings for structures whose log volume, or offset from the spine (x, y), has |robust z| > threshold.

    Only structures present and not cut by the field of view in at least ``min_cases`` cases with distinct values
    are judged: near-duplicate cases (the same scan twice, copies of one case) do not make a cohort.
    """
    out: list[Finding] = []
    if stats.empty:
        return out
    out += profile_findings(stats, min_cases=min_cases, threshold=threshold)
    whole = stats[~stats["truncated"].astype(bool)]
    for structure, group in whole.groupby("structure"):
        log_volume = np.log(group["volume_ml"].clip(lower=1e-6))
        if log_volume.round(2).nunique() < min_cases:
            continue
        z_volume = robust_z(log_volume, LOG_VOLUME_FLOOR)
        median_ml = float(group["volume_ml"].median())
        for idx in group.index[z_volume.abs() > threshold]:
            row = group.loc[idx]
            out.append(Finding(str(row["case"]), Check.COHORT_VOLUME, Severity.WARNING,
                               f"{structure}: volume {row['volume_ml']:.1f} ml, "
                               f"{row['volume_ml'] / median_ml:.2f}x the cohort median {median_ml:.1f} ml "
                               f"(robust z {z_volume[idx]:+.1f} over {len(group)} "
                               "cases)", structure=str(structure),
                               values={"volume_ml": row["volume_ml"], "median_ml": median_ml, "z": z_volume[idx]}))
        for axis in ("offset_x", "offset_y"):
            values = group[axis].dropna()
            if values.round(0).nunique() < min_cases:
                continue
            z_pos = robust_z(values, POSITION_FLOOR_MM)
            for idx in values.index[z_pos.abs() > threshold]:
                row = group.loc[idx]
                out.append(Finding(str(row["case"]), Check.COHORT_POSITION, Severity.WARNING,
                                   f"{structure}: {axis.split('_')[1]} offset from the spine {row[axis]:.0f} mm vs "
                                   f"cohort median {values.median():.0f} mm (robust z {z_pos[idx]:+.1f})",
                                   structure=str(structure), values={axis: row[axis], "z": z_pos[idx]}))
    return out


def _ratios(profiles: dict[str, dict[float, float]], min_cases: int) -> dict[str, tuple[float, list[float]]]:
    """Per case: the median of its area / the cohort's median area over the levels enough cases share, and
    those levels."""
    by_level: dict[float, list[float]] = {}
    for profile in profiles.values():
        for level, area in profile.items():
            by_level.setdefault(level, []).append(area)
    typical = {level: float(np.median(areas)) for level, areas in by_level.items()
               if len(areas) >= max(3, min_cases // 2) and np.median(areas) > 0}
    out = {}
    for case, profile in profiles.items():
        shared = [level for level in profile if level in typical]
        if len(shared) >= 2:
            out[case] = (float(np.median([profile[level] / typical[level] for level in shared])), sorted(shared))
    return out


def profile_findings(stats: pd.DataFrame, *, min_cases: int = 10, threshold: float = 5.0) -> list[Finding]:
    """Structures cut by the field of view whose cross-sections, level by level, are far larger or smaller than
    the cohort's at the same levels (robust z of the log ratio above ``threshold``)."""
    if "area_profile" not in stats.columns:
        return []
    out: list[Finding] = []
    for structure, group in stats.groupby("structure"):
        profiles = {str(r.case): {float(k): float(v) for k, v in json.loads(r.area_profile).items()}
                    for r in group.itertuples() if isinstance(r.area_profile, str) and r.area_profile}
        ratios = _ratios(profiles, min_cases)
        if len(ratios) < min_cases:
            continue
        logs = pd.Series({case: np.log(max(ratio, 1e-6)) for case, (ratio, _) in ratios.items()})
        if logs.round(2).nunique() < min_cases:
            continue
        z = robust_z(logs, LOG_VOLUME_FLOOR)
        cut = set(group.loc[group["truncated"].astype(bool), "case"].astype(str))
        for case in z.index[(z.abs() > threshold) & z.index.isin(cut)]:
            ratio, levels = ratios[case]
            out.append(Finding(case, Check.COHORT_PROFILE, Severity.WARNING,
                               f"{structure}: cut by the field of view; its cross-sections are {ratio:.2f}x the "
                               f"cohort's at the same vertebral levels ({len(levels)} half levels from {levels[0]:g} "
                               f"to {levels[-1]:g}; robust z {z[case]:+.1f}): over- or under-segmented",
                               structure=str(structure), values={"ratio": ratio, "z": float(z[case]),
                                                                 "levels": [levels[0], levels[-1]]}))
    return out
