"""``qa labels``: check every case's labels, in parallel, and write findings and statistics tables.

Per case: read (completeness, storage, geometry, agreement, overlap; :mod:`qa.loading`), one set of
passes over the label map (:mod:`qa.labelstats`), anatomical checks (:mod:`qa.anatomy`); then, over
all cases, cohort outliers (:mod:`qa.cohort`). Bad input becomes findings; a case that fails in an
unexpected way is recorded as a finding too and the run goes on. Each case's results are kept as it
finishes, so a rerun after a kill (or after editing a few cases) checks only what changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from curation import __version__
from curation.atomic import atomic_write_parquet, atomic_write_text
from curation.labels.labelset import LabelSet
from curation.workspace import QAFolder
from curation.workspace.errorlog import append_traceback
from curation.workspace.executor import SerialExecutor, Shared

from .anatomy import AnatomySettings, check_anatomy, class_rows, midline_x, truncated_sides
from .cases import CaseFiles
from .cohort import cohort_findings
from .findings import FINDING_COLUMNS, Check, Finding, Severity, findings_table
from .fit import FitSettings, fit_findings
from .intensity import case_phase
from .labelstats import compute_label_stats
from .loading import GridTolerance, load_case
from .presence import PresenceSettings, area_profile, level_scale, presence_findings
from .verdicts import flip_verdicts, grid_verdict

__all__ = ["LabelQASettings", "CaseResult", "case_fingerprint", "check_case", "run_label_qa", "checked_labels"]

log = logging.getLogger(__name__)

_ROW_KEYS = set(FINDING_COLUMNS)



@dataclass(frozen=True)
class LabelQASettings:
    """What ``qa labels`` checks and how strictly."""

    label_set: LabelSet
    anatomy: AnatomySettings = field(default_factory=AnatomySettings)
    fit: FitSettings = field(default_factory=FitSettings)
    presence: PresenceSettings = field(default_factory=PresenceSettings)
    tolerance: GridTolerance = field(default_factory=GridTolerance)
    cohort_min_cases: int = 10
    cohort_z: float = 5.0


@dataclass
class CaseResult:
    case: str
    findings: list[Finding]
    stats: list[dict[str, Any]]


@dataclass
class _Rows:
    """A case's results as the rows of the two tables (:meth:`Finding.to_row`; label statistics): what the
    workers send back and the cache keeps, read back without building each finding again."""

    case: str
    findings: list[dict[str, Any]]
    stats: list[dict[str, Any]]


def check_case(files: CaseFiles, settings: LabelQASettings, *, error_log: Path | None = None) -> CaseResult:
    """All per-case findings and label statistics of one case (never raises for bad input; a failure nobody
    foresaw is a finding, its traceback appended to ``error_log`` when given)."""
    label_set = settings.label_set
    try:
        loaded = load_case(files, label_set, settings.tolerance)
        findings = list(loaded.findings)
        for (a, b), n in sorted(loaded.overlaps.items()):
            name_a, name_b = label_set.by_index(a).name, label_set.by_index(b).name
            findings.append(Finding(files.case, Check.OVERLAP, Severity.ERROR,
                                    f"{name_a} and {name_b} overlap in {n} voxels; classes must not share voxels",
                                    structure=name_b, values={"other": name_a, "voxels": n}))
        verdicts = []
        if loaded.off_grid is not None:
            own, ct, diff, where = loaded.off_grid
            verdicts.append(grid_verdict(files.case, own, ct, label_set, diff, where))
        if loaded.labels is None:
            return CaseResult(files.case, verdicts + findings, [])
        image = loaded.image.array if loaded.image is not None else None
        stats = compute_label_stats(loaded.labels, image)
        findings += check_anatomy(files.case, loaded.labels, stats, label_set, settings.anatomy, image=image,
                                  checked=loaded.checked_classes, per_class_files=loaded.per_class)
        present = {c.name for c in label_set if c.index < len(stats.voxels) and stats.voxels[c.index] > 0}
        truncated = truncated_sides(stats, label_set, present)
        scale = level_scale(stats, label_set, present - set(truncated), settings.presence)
        drawn = {name for name, voxels in loaded.drawn.items() if voxels}  # taken over by other masks: not empty
        placed = presence_findings(files.case, loaded.labels, stats, label_set, present, truncated,
                                   settings.presence, scale=scale, checked=loaded.checked_classes,
                                   midline_x=midline_x(stats, label_set), drawn=drawn)
        expected = {f.structure for f in placed if f.check == Check.EXPECTED} | drawn
        findings = [f for f in findings if not (f.structure in expected and f.check in (Check.EXPECTED, Check.EMPTY))]
        findings += placed
        if not verdicts:
            verdicts = flip_verdicts(files.case, loaded.labels, image, stats, label_set, present,
                                     settings.anatomy.min_voxels)
        if image is not None and not verdicts:
            findings += fit_findings(files.case, loaded.labels, image, stats, label_set, settings.fit, present,
                                     truncated, case_phase(stats, label_set, settings.anatomy.min_voxels).phase)
        findings = verdicts + findings
        rows = class_rows(files.case, loaded.labels, stats, label_set)
        for row in rows:  # cross-sections per level: the cohort compares structures the field of view cuts
            row["area_profile"] = json.dumps(area_profile(loaded.labels, stats, row["index"], scale)) if scale else ""
        return CaseResult(files.case, findings, rows)
    except MemoryError:
        raise
    except Exception as exc:  # a bug or an input no check foresaw: record it, go on with other cases
        log.debug("case %s failed:\n%s", files.case, traceback.format_exc())
        details = f" (details: {append_traceback(exc, error_log, f'qa labels {files.case}')})" if error_log else ""
        return CaseResult(files.case, [Finding(files.case, Check.UNREADABLE, Severity.ERROR,
                                               f"{files.folder}: checks could not run ({type(exc).__name__}: "
                                               f"{exc}){details}", file=str(files.folder))], [])


def _check_task(task: tuple[CaseFiles, Shared[LabelQASettings], Path | None, str, Path | None]) -> _Rows:
    """Check one case; its results as table rows, kept in the cache file when one is given (written by the
    worker: a batch's files are written in parallel)."""
    files, settings, cache_file, fingerprint, error_log = task
    result = check_case(files, settings.value, error_log=error_log)
    rows = _Rows(result.case, [f.to_row() for f in result.findings], result.stats)
    if cache_file is not None:
        atomic_write_text(cache_file, json.dumps(
            {"case": rows.case, "fingerprint": fingerprint, "findings": rows.findings, "stats": rows.stats}))
    return rows


def _settings_digest(settings: LabelQASettings) -> Any:
    digest = hashlib.sha256(f"{__version__}|{settings.anatomy!r}|{settings.fit!r}|{settings.presence!r}|"
                            f"{settings.tolerance!r}".encode())
    digest.update(settings.label_set.to_toml().encode())
    return digest


def case_fingerprint(files: CaseFiles, settings: LabelQASettings, *, settings_digest: Any = None) -> str:
    """Hash of a case's files (names, sizes, modification times), the label set, the thresholds and the version
    (``settings_digest``: that of the settings, computed once for a batch)."""
    digest = (settings_digest or _settings_digest(settings)).copy()
    paths = [p for p in (files.image, files.multilabel, *files.other_labels) if p is not None]
    if files.masks is not None:
        paths += sorted(files.masks.iterdir())
    for path in paths:
        try:
            info = path.stat()
            digest.update(f"{path.name}:{info.st_size}:{info.st_mtime_ns};".encode())
        except OSError:
            digest.update(f"{path.name}:missing;".encode())
    return digest.hexdigest()


def _cached(path: Path, fingerprint: str) -> _Rows | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("fingerprint") != fingerprint:
        return None
    findings, stats = data.get("findings"), data.get("stats")
    if not isinstance(findings, list) or not isinstance(stats, list) or \
            any(not isinstance(r, dict) or set(r) != _ROW_KEYS for r in findings):
        return None  # not as this version writes it: checked again
    return _Rows(str(data.get("case")), findings, stats)


def run_label_qa(cases: list[CaseFiles], settings: LabelQASettings, out_dir: str | Path | None = None, *,
                 executor: Any = None, progress: Callable[[str], None] | None = None,
                 error_log: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check ``cases`` on ``executor`` (default: in this process); return (findings, label statistics).

    With ``out_dir`` both tables are written there atomically (``label_findings.parquet``,
    ``label_stats.parquet``), and each case's results as soon as they are known (``cases/<case>.json``):
    a rerun reuses the results of cases whose files, label set and settings have not changed. A case whose checks
    fail in a way nobody foresaw is an ``unreadable`` finding; its traceback goes to ``error_log`` when given.
    """
    executor = executor or SerialExecutor()
    findings: list[dict[str, Any]] = []  # rows of the findings table
    rows: list[dict[str, Any]] = []
    # absolute: the workers write each case's results there (on Dask the folder must be shared with them)
    cache = QAFolder(Path(out_dir).resolve()).cases_dir if out_dir is not None else None
    todo = []
    fingerprints = {}
    settings_digest = _settings_digest(settings)
    for files in cases:
        if cache is None:
            todo.append(files)
            continue
        fingerprints[files.case] = case_fingerprint(files, settings, settings_digest=settings_digest)
        reused = _cached(cache / f"{files.case}.json", fingerprints[files.case])
        if reused is None:
            todo.append(files)
            continue
        findings += reused.findings
        rows += reused.stats
        if progress:
            progress(files.case)
    if len(todo) < len(cases):
        log.info("reusing the results of %d unchanged cases", len(cases) - len(todo))
    shared = Shared(settings)  # the label set is rebuilt once per worker, not once per case
    tasks = [(c, shared, None if cache is None else cache / f"{c.case}.json", fingerprints.get(c.case, ""),
              error_log) for c in todo]
    for _, result in executor.imap_unordered(_check_task, tasks):
        findings += result.findings
        rows += result.stats
        if progress:
            progress(result.case)
    stats = pd.DataFrame(rows)
    if not stats.empty:
        stats = stats.sort_values(["case", "index"]).reset_index(drop=True)
        findings += [f.to_row() for f in cohort_findings(stats, min_cases=settings.cohort_min_cases,
                                                           threshold=settings.cohort_z)]
    frame = findings_table(findings)
    if out_dir is not None:
        out = QAFolder(Path(out_dir))
        atomic_write_parquet(out.findings, frame)
        atomic_write_parquet(out.stats, stats)
        atomic_write_parquet(out.checked, checked_labels(cases, relative_to=out.root))
    log.info("checked %d cases: %d errors, %d warnings", len(cases), int((frame["severity"] == Severity.ERROR).sum()),
             int((frame["severity"] == Severity.WARNING).sum()))
    return frame, stats


def checked_labels(cases: list[CaseFiles], relative_to: Path | None = None) -> pd.DataFrame:
    """Which labels each case was checked on: the revision, its review status and sha256 (in a workspace),
    and the label files' path (relative to ``relative_to``, so that a moved folder keeps its tables)."""

    def where(path: Path | None) -> str:
        if path is None:
            return ""
        return os.path.relpath(path, relative_to) if relative_to is not None else str(path)

    return pd.DataFrame([{"case": c.case, "revision": c.revision, "review": c.review or "",
                          "sha256": c.labels_sha256 or "", "labels": where(c.multilabel or c.masks)}
                         for c in cases], columns=["case", "revision", "review", "sha256", "labels"]).astype(
        {"revision": "Int64"})
