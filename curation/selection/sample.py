"""``ctcurate sample``: draw exams at random, reproducibly and auditably.

Each exam (study) in the sampling frame gets a rank: a keyed hash (HMAC-SHA256) of its key under
the seed. The draw takes the N lowest ranks, per stratum when stratified (largest-remainder
allocation). Because an exam's rank does not depend on the other exams, a rerun on an export that
has grown keeps the earlier draw except where a new exam ranks higher.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import pandas as pd

from curation.atomic import atomic_write_parquet, atomic_write_text
from curation.errors import SamplingError
from curation.workspace.layout import Workspace

__all__ = ["SampleResult", "CATALOG_FRAME", "exam_table", "rank_key", "draw", "sample", "sample_frame"]

log = logging.getLogger(__name__)
STRATA_COLUMNS = ("study_year", "site", "manufacturer", "model", "body_part", "patient_sex")
#: the frame of a draw from the scanned exports
CATALOG_FRAME: dict[str, Any] = {"source": "catalog"}


@dataclass(frozen=True)
class SampleResult:
    """The outcome of a draw."""

    seed: int
    n_requested: int
    frame_size: int
    members: tuple[str, ...]
    added: tuple[str, ...]
    dropped: tuple[str, ...]
    stratify_by: str
    strata: dict[str, int]


def rank_key(seed: int, exam_key: str) -> str:
    """Seeded keyed hash that orders exams; the same (seed, key) always gives the same rank."""
    return hmac.new(str(seed).encode(), exam_key.encode(), hashlib.sha256).hexdigest()


def exam_table(series: pd.DataFrame) -> pd.DataFrame:
    """One row per exam that holds at least one CT series (the sampling frame)."""
    ct = series[(series["study_key"] != "") & (series["modality"] == "CT")]
    if ct.empty:
        return pd.DataFrame(columns=["study_key", "patient_key", "n_series", *STRATA_COLUMNS])
    grouped = ct.groupby("study_key")
    exams = grouped.agg(
        patient_key=("patient_key", "first"),
        n_series=("series_key", "nunique"),
        study_year=("study_year", "first"),
        site=("institution_name", "first"),
        manufacturer=("manufacturer", "first"),
        model=("model", "first"),
        body_part=("body_part", "first"),
        patient_sex=("patient_sex", "first"),
    ).reset_index()
    return exams


def _allocate(sizes: pd.Series, n: int) -> dict[Any, int]:
    total = int(sizes.sum())
    shares = sizes / total * n
    quota = shares.astype(int)
    remainder = (shares - quota).sort_values(ascending=False, kind="stable")
    for key in remainder.index[: n - int(quota.sum())]:
        quota[key] += 1
    limits = sizes.to_dict()
    return {k: int(min(v, limits[k])) for k, v in quota.items()}


def draw(exams: pd.DataFrame, *, seed: int, n: int, stratify_by: str = "") -> pd.DataFrame:
    """Rank ``exams`` under ``seed`` and return the drawn rows (with ``rank`` and ``stratum``).

    ``n == 0`` draws every exam (in rank order).
    """
    if stratify_by and stratify_by not in exams.columns:
        raise SamplingError(
            f"stratify_by {stratify_by!r}: not a column of the exam table; choose one of "
            f"{', '.join(STRATA_COLUMNS)}"
        )
    if n > len(exams):
        raise SamplingError(
            f"sample of {n} exams requested, but the sampling frame holds only {len(exams)} CT exams; "
            "lower --n, or scan more exports (a PACS: widen the query)"
        )
    ranked = exams.assign(rank_key=[rank_key(seed, k) for k in exams["study_key"]])
    ranked = ranked.sort_values("rank_key", kind="stable").reset_index(drop=True)
    ranked["stratum"] = ranked[stratify_by].astype(str) if stratify_by else "all"
    n = n or len(ranked)
    if stratify_by:
        quota = _allocate(ranked.groupby("stratum").size(), n)
        position = ranked.groupby("stratum").cumcount()
        chosen = ranked[position < ranked["stratum"].map(quota)]
    else:
        chosen = ranked.head(n)
    chosen = chosen.reset_index(drop=True)
    chosen["rank"] = range(1, len(chosen) + 1)
    return chosen


def _read_manifest(workspace: Workspace) -> dict[str, Any]:
    if not workspace.sample_manifest.exists():
        return {}
    try:
        manifest: dict[str, Any] = json.loads(workspace.sample_manifest.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SamplingError(
            f"{workspace.sample_manifest}: unreadable sample manifest ({exc}); rerun with --redraw"
        ) from None
    return manifest


def _previous(workspace: Workspace, frame: dict[str, Any], redraw: bool) -> dict[str, Any]:
    """The previous draw's manifest when it drew from the same frame (and no redraw is asked)."""
    previous = {} if redraw else _read_manifest(workspace)
    return previous if previous.get("frame", CATALOG_FRAME) == frame else {}


def sample(workspace: Workspace, *, n: int | None = None, seed: int | None = None,
           stratify_by: str | None = None, redraw: bool = False) -> SampleResult:
    """Draw the sample from the catalog's CT exams; write ``private/sample/manifest.json`` and ``sample.parquet``.

    Without ``redraw``, parameters not given come from the previous manifest (so a rerun repeats
    the draw), else from the settings. With ``redraw``, the previous draw is ignored and a fresh
    seed is used unless one is given. A sample drawn from a PACS by ``ctcurate pull`` is redrawn by
    ``pull``, not here.
    """
    _ = workspace.settings  # read first: a bad settings file is named before anything else
    series = pd.read_parquet(workspace.require(workspace.series_table, "scan"))
    recorded = {} if redraw else _read_manifest(workspace).get("frame", CATALOG_FRAME)
    if recorded and recorded != CATALOG_FRAME:
        raise SamplingError(f"{workspace.sample_manifest}: the sample was drawn from the PACS at {recorded.get('url')} "
                            "by 'ctcurate pull'; run 'ctcurate pull' again to repeat or change it, or "
                            "'ctcurate sample --redraw' to draw from the scanned exports instead")
    exams = exam_table(series)
    if exams.empty:
        raise SamplingError(f"{workspace.series_table}: the catalog holds no CT exam; scan an export with CT first")
    return sample_frame(workspace, exams, frame=CATALOG_FRAME, n=n, seed=seed, stratify_by=stratify_by,
                        redraw=redraw)


def sample_frame(workspace: Workspace, exams: pd.DataFrame, *, frame: dict[str, Any], n: int | None = None,
                 seed: int | None = None, stratify_by: str | None = None, redraw: bool = False) -> SampleResult:
    """Draw from a sampling frame (one row per exam, see :func:`exam_table`) and record the draw.

    ``frame`` says where the exams come from (``{"source": "catalog"}``, or a PACS and its query); the
    previous draw's parameters are reused only for the same frame.
    """
    settings = workspace.settings
    previous = _previous(workspace, frame, redraw)
    if seed is None:
        seed = previous.get("seed", settings.seed) if not redraw else secrets.randbelow(2**31)
    n = n if n is not None else previous.get("n", settings.sampling.n)
    stratify_by = stratify_by if stratify_by is not None else previous.get(
        "stratify_by", settings.sampling.stratify_by)
    if n < 0:
        raise SamplingError(f"sample size {n}: expected 0 (all) or a positive number of exams")
    drawn = draw(exams, seed=int(seed), n=int(n), stratify_by=stratify_by or "")
    members = tuple(drawn["study_key"])
    before = set(previous.get("members", []))
    added = tuple(k for k in members if before and k not in before)
    dropped = tuple(sorted(before - set(members)))
    strata = {str(k): int(v) for k, v in drawn["stratum"].value_counts().sort_index().items()}
    manifest = {
        "seed": int(seed), "n": int(n), "stratify_by": stratify_by or "", "frame_size": len(exams), "frame": frame,
        "method": "HMAC-SHA256(seed, study key), lowest ranks first; largest-remainder allocation per stratum",
        "members": list(members), "strata": strata, "added_since_previous": list(added),
        "dropped_since_previous": list(dropped),
    }
    atomic_write_parquet(workspace.sample_table, drawn)
    atomic_write_text(workspace.sample_manifest, json.dumps(manifest, indent=2))
    log.info("sample: drew %d of %d exams (seed %s)", len(members), len(exams), seed)
    return SampleResult(seed=int(seed), n_requested=int(n), frame_size=len(exams), members=members,
                        added=added, dropped=dropped, stratify_by=stratify_by or "", strata=strata)
