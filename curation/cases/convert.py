"""``ctcurate convert``: chosen series -> de-identified NRRD cases under ``releasable/cases``.

Each case folder is built in a temporary folder and renamed into place when complete, so a kill
never leaves a half-written case visible; a rerun skips finished cases and removes temporaries.
Case ids (``s0001``...) follow the sample rank and never change once given (``private/linkage``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curation._version import __version__
from curation.atomic import WRITE_FAULTS, atomic_directory, atomic_write_parquet, atomic_write_text
from curation.dicom.deid import REDACTED, age_years, keyed_hash, patient_pseudonym, phi_tokens, redact
from curation.errors import ConversionError, CtcurateError
from curation.reasons import RULE_CODES
from curation.workspace.errorlog import failure_line
from curation.workspace.executor import Executor, make_executor
from curation.workspace.folders import CASE_METADATA
from curation.workspace.layout import Workspace
from curation.workspace.settings import ConversionSettings

from .casemeta import write_meta_table
from .withdraw import Withdrawal, reinstate_case, withdraw_cases

__all__ = ["ConvertTask", "ConvertResult", "assign_case_ids", "convert_case", "convert"]

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ConvertTask:
    """Everything a worker needs to build one case (picklable)."""

    case_id: str
    case_dir: str
    paths: tuple[str, ...]
    series: dict[str, Any]
    site: str
    patient_pseudonym: str
    fingerprint: str
    rules_passed: tuple[str, ...]
    conversion: ConversionSettings
    max_tilt_deg: float = 1.0
    error_log: str = ""  # where a failure nobody foresaw leaves its traceback


@dataclass(frozen=True)
class ConvertResult:
    """Outcome of a convert run."""

    converted: tuple[str, ...]
    skipped: tuple[str, ...]
    failed: dict[str, str] = field(default_factory=dict)
    meta_table: str = ""
    withdrawn: tuple[Withdrawal, ...] = ()  # cases whose exam no longer qualifies, moved out of releasable/


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _delay(value: Any) -> float | None:
    """Seconds from the contrast bolus start to the scan (a duration, not a time of day)."""
    delay = _clean(value)
    return None if delay is None else round(float(delay), 1)


def _clean(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


def _case_metadata(task: ConvertTask, volume_info: dict[str, Any]) -> dict[str, Any]:
    s = task.series
    tokens = phi_tokens(s)
    year = _clean(s.get("study_year"))
    sex = str(s.get("patient_sex") or "").upper()
    scanner = {
        "manufacturer": redact(_clean(s.get("manufacturer")) or "", tokens, "manufacturer"),
        "model": redact(_clean(s.get("model")) or "", tokens, "model"),
        "kvp": _clean(s.get("kvp")),
        "kernel": redact(str(_clean(s.get("kernel")) or ""), tokens, "kernel"),
        "slice_thickness_mm": _clean(s.get("slice_thickness")),
    }
    agent = redact(_clean(s.get("contrast_agent")) or "", tokens, "contrast_agent")
    return {
        "case_id": task.case_id,
        "patient": {"pseudonym": task.patient_pseudonym,
                    "age_years": age_years(s.get("patient_age"), s.get("patient_birth_date"), s.get("study_date")),
                    "sex": sex if sex in ("M", "F", "O") else None},
        "study": {"year": int(year) if year is not None else None, "site": task.site},
        "scanner": scanner,
        "contrast": {"agent": agent, "route": redact(_clean(s.get("contrast_route")) or "", tokens, "route"),
                     "tagged": bool(agent and agent != REDACTED), "delay_s": _delay(s.get("contrast_delay_s"))},
        "volume": volume_info,
        "lineage": {"source_fingerprint": task.fingerprint, "rules_passed": list(task.rules_passed),
                    "converter": f"ctcurate {__version__}", "spacings_mm": list(task.conversion.spacings_mm),
                    "resampling": "linear, centred grid, same direction, outside = -1024 HU"},
    }


def convert_case(task: ConvertTask) -> dict[str, Any]:
    """Build one case folder atomically; return its ``case.json`` content."""
    from curation.dicom.series import load_series  # the workers' (preloaded there): the command needs neither
    from curation.image.volume import resample_image, write_nrrd

    case_dir = Path(task.case_dir)
    volume = load_series(list(task.paths), max_tilt_deg=task.max_tilt_deg)
    with atomic_directory(case_dir) as tmp:  # a full or read-only volume's error names case_dir
        files: dict[str, Any] = {}
        native = tmp / Workspace.ct_name()
        write_nrrd(native, volume, compression_level=task.conversion.compression_level)
        files[native.name] = {"spacing_mm": "native", "size_xyz": list(volume.size),
                              "spacing_xyz_mm": list(volume.spacing), "sha256": _sha256(native)}
        size, spacing_xyz = list(volume.size), list(volume.spacing)
        image = volume.to_sitk()
        del volume  # keep one full-resolution copy (SimpleITK's) while resampling
        for spacing in task.conversion.spacings_mm:
            resampled = resample_image(image, spacing)
            out = tmp / Workspace.ct_name(spacing)
            write_nrrd(out, resampled, compression_level=task.conversion.compression_level)
            files[out.name] = {"spacing_mm": spacing, "size_xyz": list(resampled.size),
                               "spacing_xyz_mm": list(resampled.spacing), "sha256": _sha256(out)}
            del resampled
        del image
        info = {"size_xyz": size, "spacing_xyz_mm": spacing_xyz,
                "axes": "arrays (z, y, x); LPS patient coordinates", "files": files}
        metadata = _case_metadata(task, info)
        atomic_write_text(tmp / CASE_METADATA, json.dumps(metadata, indent=2, sort_keys=True))
    return metadata


def assign_case_ids(workspace: Workspace, exams: pd.DataFrame, series: pd.DataFrame) -> pd.DataFrame:
    """Give each chosen series a case id, keeping every id given before; returns the linkage table."""
    secret = workspace.secret
    linkage = (pd.read_parquet(workspace.linkage_table) if workspace.linkage_table.exists()
               else pd.DataFrame(columns=["case_id", "series_key", "study_key", "patient_key"]))
    known = set(linkage["series_key"])
    used = [n for n in (workspace.case_number(c) for c in linkage["case_id"]) if n is not None]
    next_number = max(used, default=0) + 1
    chosen = exams[exams["included"]].sort_values("rank")
    info = series.set_index("series_key")
    new_rows = []
    for exam in chosen.to_dict("records"):
        key = exam["chosen_series_key"]
        if key in known:
            continue
        row = info.loc[key]
        new_rows.append({
            "case_id": workspace.case_id(next_number), "series_key": key,
            "study_key": exam["study_key"], "patient_key": exam["patient_key"],
            "series_uid": row["series_uid"], "study_uid": row["study_uid"], "patient_id": row["patient_id"],
            "fingerprint": keyed_hash(secret, "series", key),
        })
        next_number += 1
    if new_rows:
        linkage = pd.concat([linkage, pd.DataFrame(new_rows)], ignore_index=True)
        atomic_write_parquet(workspace.linkage_table, linkage)
    return linkage


def _site_names(workspace: Workspace, institutions: list[str]) -> dict[str, str]:
    """Stable site pseudonyms (``site01``...) per institution name, kept in the private part."""
    table = (pd.read_parquet(workspace.sites_table) if workspace.sites_table.exists()
             else pd.DataFrame(columns=["institution", "site"]))
    mapping = dict(zip(table["institution"], table["site"], strict=True))
    changed = False
    for name in institutions:
        if name not in mapping:
            mapping[name] = f"site{len(mapping) + 1:02d}"
            changed = True
    if changed:
        atomic_write_parquet(workspace.sites_table,
                             pd.DataFrame({"institution": list(mapping), "site": list(mapping.values())}))
    return mapping


def convert(workspace: Workspace, *, executor: Executor | None = None, cases: list[str] | None = None,
            progress: Progress | None = None) -> ConvertResult:
    """Convert every chosen series that has no finished case yet; record failures and carry on."""
    settings = workspace.settings
    exams = pd.read_parquet(workspace.require(workspace.exams_table, "filter"))
    series = pd.read_parquet(workspace.require(workspace.series_table, "scan"))
    files = pd.read_parquet(workspace.require(workspace.files_table, "scan"))
    withdrawn = withdraw_cases(workspace)
    linkage = assign_case_ids(workspace, exams, series)
    current = linkage[linkage["series_key"].isin(set(exams.loc[exams["included"], "chosen_series_key"]))]
    if cases:
        unknown = sorted(set(cases) - set(current["case_id"]))
        if unknown:
            raise ConversionError(f"case id(s) {', '.join(unknown)}: not among the chosen series; "
                                  "see tables/meta or private/linkage.parquet")
        current = current[current["case_id"].isin(cases)]
    rows = dict(zip(current["series_key"], series.set_index("series_key").loc[current["series_key"]]
                    .reset_index().to_dict("records"), strict=True))  # each chosen series' row, fetched at once
    sites = _site_names(workspace, sorted({str(row["institution_name"] or "unknown") for row in rows.values()}))
    secret = workspace.secret
    tasks, skipped = [], []
    chosen = files[files["series_key"].isin(rows)]
    paths_by_series = {key: tuple(sorted(paths)) for key, paths in chosen.groupby("series_key")["path"]}
    for link in current.to_dict("records"):
        case_dir = workspace.case_dir(link["case_id"])
        if reinstate_case(workspace, link["case_id"]) or workspace.case_metadata(link["case_id"]).exists():
            skipped.append(link["case_id"])
            continue
        row = rows[link["series_key"]]
        tasks.append(ConvertTask(
            case_id=link["case_id"], case_dir=str(case_dir), paths=paths_by_series[link["series_key"]],
            series={k: _clean(v) for k, v in row.items()},
            site=sites[str(row.get("institution_name") or "unknown")],
            patient_pseudonym=patient_pseudonym(secret, link["patient_key"]),
            fingerprint=link["fingerprint"], rules_passed=RULE_CODES,
            conversion=settings.conversion, max_tilt_deg=settings.exclusion.max_tilt_deg,
            error_log=str(workspace.error_log),
        ))
    # the longest series first: workers that take the next case as they finish one then end nearly together
    tasks.sort(key=lambda task: -len(task.paths))
    converted: list[str] = []
    failed: dict[str, str] = {}
    own = executor is None
    executor = executor or make_executor(settings.executor)
    if progress and tasks:
        progress(0, len(tasks))  # the work is known: a progress bar may show it from here
    try:
        for done, (task, outcome) in enumerate(executor.imap_unordered(_safe_convert, tasks), start=1):
            if isinstance(outcome, str):
                failed[task.case_id] = outcome
                log.error("convert %s failed: %s", task.case_id, outcome)
            else:
                converted.append(task.case_id)
            if progress:
                progress(done, len(tasks))
    finally:
        if own:
            executor.close()
    failed = dict(sorted(failed.items()))  # in case order, whichever order the workers took them in
    meta = write_meta_table(workspace)
    if failed:
        failures = pd.DataFrame({"case_id": list(failed), "error": list(failed.values())})
        atomic_write_parquet(workspace.convert_failures_table, failures)
    else:
        workspace.convert_failures_table.unlink(missing_ok=True)  # an earlier run's failures are converted now
    return ConvertResult(converted=tuple(sorted(converted)), skipped=tuple(skipped), failed=failed,
                         meta_table=str(meta), withdrawn=tuple(withdrawn))


def _safe_convert(task: ConvertTask) -> dict[str, Any] | str:
    """Convert one case; a failure of that case is returned as its message, one of the workspace stops the run."""
    try:
        return convert_case(task)
    except CtcurateError as exc:
        return str(exc)
    except OSError as exc:
        if exc.errno in WRITE_FAULTS and exc.filename == task.case_dir:
            raise  # a full or read-only workspace: every later case would fail the same way
        return _failure(task, exc)
    except (MemoryError, ValueError, RuntimeError) as exc:  # RuntimeError: SimpleITK (e.g. no memory)
        return _failure(task, exc)


def _failure(task: ConvertTask, exc: BaseException) -> str:
    """One line for a case that failed unforeseen; its traceback goes to the workspace's error log."""
    where = task.paths[0] if task.paths else task.case_id
    if not task.error_log:
        return f"{where}: {type(exc).__name__}: {exc}"
    return f"{where}: {failure_line(exc, Path(task.error_log), f'convert {task.case_id}')}"
