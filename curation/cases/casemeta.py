"""Case metadata: each case's ``case.json`` and the cases table built from all of them.

``case.json`` is written by ``convert`` and grows as later steps learn about the case: the contrast
phase estimated after pre-segmentation (``contrast.phase``), the release split (``split``). The
cases table (``tables/meta.parquet`` and the semicolon-separated ``meta.csv``) holds one row per case
and is rebuilt from the ``case.json`` files, so they stay the one source of truth.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from curation.atomic import atomic_write_parquet, atomic_write_text
from curation.enums import ContrastPhase
from curation.errors import WorkspaceError
from curation.workspace.layout import Workspace

__all__ = ["META_COLUMNS", "SPLITS", "ContrastPhase", "read_case_metadata", "update_case_metadata", "write_meta_table",
           "case_splits"]

log = logging.getLogger(__name__)

META_COLUMNS = (
    "case_id", "patient_pseudonym", "age", "sex", "study_year", "site", "manufacturer", "model", "kvp",
    "kernel", "slice_thickness_mm", "contrast_agent", "contrast_route", "contrast_phase",
    "contrast_phase_confidence", "size_x", "size_y", "size_z", "spacing_x_mm", "spacing_y_mm", "spacing_z_mm",
)
SPLITS = ("train", "val", "test")


def _case_json(ws: Workspace, case_id: str) -> Path:
    return ws.case_metadata(case_id)


def read_case_metadata(ws: Workspace, case_id: str) -> dict[str, Any]:
    """The ``case.json`` of one case."""
    path = _case_json(ws, case_id)
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WorkspaceError(f"{path}: case metadata not found; run 'ctcurate convert' for case {case_id}") from None
    except ValueError as exc:
        raise WorkspaceError(f"{path}: not valid JSON ({exc}); re-run 'ctcurate convert' for case {case_id}") \
            from None
    return data


def update_case_metadata(ws: Workspace, case_id: str, section: str, values: Any) -> dict[str, Any]:
    """Set ``case.json``'s top-level ``section`` (a dict is merged into an existing dict); atomic."""
    data = read_case_metadata(ws, case_id)
    if isinstance(values, dict) and isinstance(data.get(section), dict):
        data[section] = {**data[section], **values}
    else:
        data[section] = values
    atomic_write_text(_case_json(ws, case_id), json.dumps(data, indent=2, sort_keys=True))
    return data


def _meta_row(meta: dict[str, Any]) -> dict[str, Any]:
    native = meta["volume"]
    contrast = meta["contrast"]
    return {
        "case_id": meta["case_id"], "patient_pseudonym": meta["patient"]["pseudonym"],
        "age": meta["patient"]["age_years"], "sex": meta["patient"]["sex"], "study_year": meta["study"]["year"],
        "site": meta["study"]["site"], "manufacturer": meta["scanner"]["manufacturer"],
        "model": meta["scanner"]["model"], "kvp": meta["scanner"]["kvp"], "kernel": meta["scanner"]["kernel"],
        "slice_thickness_mm": meta["scanner"]["slice_thickness_mm"], "contrast_agent": contrast["agent"],
        "contrast_route": contrast["route"], "contrast_phase": contrast.get("phase"),
        "contrast_phase_confidence": contrast.get("phase_confidence"), "size_x": native["size_xyz"][0],
        "size_y": native["size_xyz"][1], "size_z": native["size_xyz"][2],
        "spacing_x_mm": native["spacing_xyz_mm"][0], "spacing_y_mm": native["spacing_xyz_mm"][1],
        "spacing_z_mm": native["spacing_xyz_mm"][2], "split": meta.get("split"),
    }


def write_meta_table(ws: Workspace) -> Path:
    """Gather every finished case's ``case.json`` into ``tables/meta.parquet`` and ``meta.csv``.

    The ``split`` column is added (last) once any case has a split.
    """
    rows = []
    for case_id in ws.case_ids():  # temporaries (.tmp-*) are not case ids
        case_json = ws.case_metadata(case_id)
        if not case_json.is_file():
            continue
        rows.append(_meta_row(json.loads(case_json.read_text(encoding="utf-8"))))
    with_split = any(r["split"] is not None for r in rows)
    meta = pd.DataFrame(rows, columns=list(META_COLUMNS) + ["split"])
    if not with_split:
        meta = meta.drop(columns="split")
    atomic_write_parquet(ws.meta_table, meta)
    atomic_write_text(ws.meta_csv, meta.to_csv(index=False, sep=";"))
    return ws.meta_table


def case_splits(ws: Workspace) -> dict[str, str]:
    """Case id -> ``train``/``val``/``test`` from the cases table; empty when no split was made yet."""
    if not ws.meta_table.is_file():
        return {}
    meta = pd.read_parquet(ws.meta_table)
    if "split" not in meta.columns:
        return {}
    out = {str(c): str(s) for c, s in zip(meta["case_id"], meta["split"], strict=True) if isinstance(s, str) and s}
    wrong = sorted({s for s in out.values() if s not in SPLITS})
    if wrong:
        raise WorkspaceError(f"{ws.meta_table}: split values {wrong} found, expected {', '.join(SPLITS)}; "
                             "make the split again")
    return out
