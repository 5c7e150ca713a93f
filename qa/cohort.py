"""Cohort outliers: a structure whose volume or position is far from the same structure in other cases."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .findings import Check, Finding, Severity

__all__ = ["robust_z", "cohort_findings", "LOG_VOLUME_FLOOR", "POSITION_FLOOR_MM"]

LOG_VOLUME_FLOOR = 0.05   # a spread of volumes below ~5 % is treated as 5 %
POSITION_FLOOR_MM = 2.0   # a spread of positions below 2 mm is treated as 2 mm


def robust_z(values: pd.Series, floor: float) -> pd.Series:
    """(x - median) / max(1.4826 * MAD, floor); the floor keeps near-identical cohorts from flagging noise."""
    median = values.median()
    mad = 1.4826 * (values - median).abs().median()
    scale = max(float(mad) if np.isfinite(mad) else 0.0, floor)
    return (values - median) / scale


def cohort_findings(stats: pd.DataFrame, *, min_cases: int = 10, threshold: float = 5.0) -> list[Finding]:
    """Findings for structures whose log volume, or offset from the spine (x, y), has |robust z| > threshold.

    Only structures present and not cut by the field of view in at least ``min_cases`` cases are judged.
    """
    out: list[Finding] = []
    if stats.empty:
        return out
    whole = stats[~stats["truncated"].astype(bool)]
    for structure, group in whole.groupby("structure"):
        if len(group) < min_cases:
            continue
        z_volume = robust_z(np.log(group["volume_ml"].clip(lower=1e-6)), LOG_VOLUME_FLOOR)
        median_ml = float(group["volume_ml"].median())
        for idx in group.index[z_volume.abs() > threshold]:
            row = group.loc[idx]
            out.append(Finding(str(row["case"]), Check.COHORT_VOLUME, Severity.WARNING,
                               f"{structure}: volume {row['volume_ml']:.1f} ml vs cohort median {median_ml:.1f} ml "
                               f"(robust z {z_volume[idx]:+.1f}, {len(group)} cases)", structure=str(structure),
                               values={"volume_ml": row["volume_ml"], "median_ml": median_ml, "z": z_volume[idx]}))
        for axis in ("offset_x", "offset_y"):
            values = group[axis].dropna()
            if len(values) < min_cases:
                continue
            z_pos = robust_z(values, POSITION_FLOOR_MM)
            for idx in values.index[z_pos.abs() > threshold]:
                row = group.loc[idx]
                out.append(Finding(str(row["case"]), Check.COHORT_POSITION, Severity.WARNING,
                                   f"{structure}: {axis.split('_')[1]} offset from the spine {row[axis]:.0f} mm vs "
                                   f"cohort median {values.median():.0f} mm (robust z {z_pos[idx]:+.1f})",
                                   structure=str(structure), values={axis: row[axis], "z": z_pos[idx]}))
    return out
