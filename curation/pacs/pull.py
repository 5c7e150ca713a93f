"""``ctcurate pull``: query a PACS, draw exams at random, retrieve only what the rules keep.

The PACS is reached over DICOMweb (:mod:`curation.pacs.dicomweb`) or, for ``dicom://`` addresses, over DIMSE
(:mod:`curation.pacs.dimse`); the steps are the same.

1. **Query** (QIDO-RS or C-FIND): the studies of the modality in the period, paged, filtered by description and
   body part; kept as candidates in the private catalog. A rerun with the same PACS and query reuses
   them (``refresh`` asks again), so it repeats the same draw.
2. **Draw**: the same seeded keyed-hash sampling as for export folders (:mod:`curation.selection.sample`).
3. **Describe**: each drawn study's series, CT series instance by instance from WADO-RS metadata or an
   image-level C-FIND (headers only); the exclusion rules judge them and choose one series per exam, exactly as
   ``filter`` does for scanned files. Excluded series are never retrieved.
4. **Retrieve** (WADO-RS or C-GET): the chosen series (or every included one) into ``private/exports/pacs``,
   several series at a time, resumable and verified by SOP Instance UID (:mod:`curation.pacs.retrieve`).
5. **Scan and filter** the retrieved files as any export; ``convert`` follows as usual.

An exam whose description or retrieval fails is reported and left for the next run; the others go on.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from curation.atomic import atomic_write_parquet, atomic_write_text
from curation.catalog.scan import scan
from curation.errors import SamplingError, ScanError
from curation.selection.filter import FilterResult, choose_series, judge_series, run_filter
from curation.selection.sample import SampleResult, sample_frame
from curation.workspace.executor import Executor
from curation.workspace.layout import Workspace
from curation.workspace.settings import PacsSettings

from .dicomweb import DicomWebSource, PacsSource, query_studies
from .frame import PACS_STRATA, candidate_exams, describe_study, remote_series
from .retrieve import present_instances, retrieve_series

__all__ = ["PullResult", "pull", "source_of"]

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class PullResult:
    """What a pull found, drew, excluded from metadata and retrieved."""

    n_candidates: int
    sample: SampleResult
    n_described: int
    excluded_series: dict[str, int]
    n_series_to_retrieve: int
    n_series_retrieved: int
    n_instances_fetched: int
    n_instances_present: int
    failed: dict[str, str] = field(default_factory=dict)
    filter: FilterResult | None = None


def source_of(settings: PacsSettings, secret: str = "") -> PacsSource:
    """The PACS the settings name: DICOMweb (``http(s)://``, with the secret the caller read) or DIMSE
    (``dicom://host:port/AET``)."""
    if not settings.url:
        raise ScanError("no PACS given: pass --dicomweb http://pacs:8042/dicom-web or --dimse dicom://pacs:104/AET "
                        "(it is kept in the workspace settings as pacs.url)")
    if settings.url.startswith("dicom://"):
        from .dimse import DimseSource

        return DimseSource(settings.url, settings.calling_aet, settings.timeout_s)
    return DicomWebSource(settings.url, settings.auth, settings.username, secret, settings.timeout_s)


def _query_record(settings: PacsSettings) -> dict[str, Any]:
    return {"url": settings.url, "modality": settings.modality, "date_from": settings.date_from,
            "date_to": settings.date_to, "description": settings.description, "body_part": settings.body_part}


def _candidates(ws: Workspace, source: PacsSource, settings: PacsSettings,
                refresh: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(candidate studies with their keys, the sampling frame): asked from the PACS, or the stored answer to the
    same query."""
    query = _query_record(settings)
    stored = (not refresh and ws.pacs_studies_table.exists() and ws.pacs_query_file.exists()
              and json.loads(ws.pacs_query_file.read_text(encoding="utf-8")) == query)
    if stored:
        studies = pd.read_parquet(ws.pacs_studies_table).drop(columns=["study_key", "patient_key"])
    else:
        studies = query_studies(
            source, modality=settings.modality, description=settings.description, body_part=settings.body_part,
            date_from=date.fromisoformat(settings.date_from) if settings.date_from else None,
            date_to=date.fromisoformat(settings.date_to) if settings.date_to else None, page_size=settings.page_size)
    if studies.empty:
        return studies.assign(study_key="", patient_key=""), pd.DataFrame()
    exams = candidate_exams(studies)
    studies = studies.merge(exams[["study_uid", "study_key", "patient_key"]], on="study_uid")
    if not stored:
        atomic_write_parquet(ws.pacs_studies_table, studies)
        atomic_write_text(ws.pacs_query_file, json.dumps(query, indent=2))
    return studies, exams


def _describe(ws: Workspace, source: PacsSource, drawn: pd.DataFrame, studies: pd.DataFrame, workers: int,
              failed: dict[str, str], progress: Progress | None) -> pd.DataFrame:
    """Instance records of the drawn studies: cached per study, asked from the PACS (``workers`` at a time)
    when missing."""
    by_key = studies.drop_duplicates("study_key").set_index("study_key")

    def one(key: str) -> str:
        cached = ws.pacs_metadata_file(key)
        if not cached.exists():
            try:
                row = {str(k): v for k, v in by_key.loc[key].to_dict().items()}
                atomic_write_parquet(cached, describe_study(source, row, ws.pacs_export_dir))
            except ScanError as exc:
                return str(exc)
        return ""

    errors: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for key, error in zip(drawn["study_key"], pool.map(one, drawn["study_key"]), strict=True):
            errors[key] = error
            if progress:
                progress(len(errors), len(drawn))
    failed.update({f"exam {key}": error for key, error in errors.items() if error})
    parts = [pd.read_parquet(ws.pacs_metadata_file(key)) for key, error in errors.items() if not error]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _retrieve(source: PacsSource, series: pd.DataFrame, files: pd.DataFrame, settings: PacsSettings,
              failed: dict[str, str], progress: Progress | None) -> tuple[dict[str, str], int, int]:
    """Retrieve the series marked ``retrieve``; returns (series key -> state, instances fetched, present)."""
    todo = series[series["retrieve"]]
    expected = files.groupby("series_key")["sop_instance_uid"].agg(lambda u: sorted(set(u) - {""}))
    folders = files.groupby("series_key")["folder"].first()
    lock = threading.Lock()
    counts = {"done": 0, "fetched": 0}
    total = int(sum(len(expected.get(k, [])) for k in todo["series_key"]))

    def tick(n: int = 1, fetched: int = 1) -> None:
        with lock:
            counts["done"] += n
            counts["fetched"] += fetched
            if progress:
                progress(counts["done"], total)

    def one(row: dict[str, Any]) -> tuple[str, str]:
        uids = expected.get(row["series_key"], [])
        folder = Path(folders[row["series_key"]])
        present = present_instances(Path(folder)) & set(uids)
        tick(len(present), 0)
        try:
            retrieve_series(source, row["study_uid"], row["series_uid"], folder, expected=uids,
                            retries=settings.retries, on_instance=tick)
        except ScanError as exc:
            return row["series_key"], f"failed: {exc}"
        return row["series_key"], "retrieved"

    states: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=settings.workers) as pool:
        for key, state in pool.map(one, todo.to_dict("records")):
            states[key] = state
            if state.startswith("failed"):
                row = todo[todo["series_key"] == key].iloc[0]
                failed[f"series {row['series_uid']} (exam {row['study_key']})"] = state[len("failed: "):]
    return states, counts["fetched"], counts["done"] - counts["fetched"]


def _judge(ws: Workspace, series: pd.DataFrame, files: pd.DataFrame, sampled: pd.DataFrame) -> pd.DataFrame:
    """The series with their verdicts (the filter's rules, no decode check: no pixels yet) and ``retrieve``:
    the series ``choose_series`` prefers per exam, or every included one (settings ``pacs.series``)."""
    rules = replace(ws.settings.exclusion, decode_check=False)
    verdicts = judge_series(series, files, rules)
    described = sampled[sampled["study_key"].isin(set(series["study_key"]))]
    chosen = set(choose_series(series, verdicts, described, rules)["chosen_series_key"])
    series = series.merge(verdicts[["series_key", "included", "reasons", "primary_reason", "findings"]],
                          on="series_key")
    keep = series["series_key"].isin(chosen) if ws.settings.pacs.series == "chosen" else True
    return series.assign(retrieve=series["included"] & keep, retrieval="")


def pull(workspace: Workspace, secret: str = "", *, n: int | None = None, seed: int | None = None,
         stratify_by: str | None = None, redraw: bool = False, refresh: bool = False, retrieve: bool = True,
         executor: Executor | None = None, progress: Progress | None = None,
         describe_progress: Progress | None = None) -> PullResult:
    """Query the workspace's PACS (settings ``[pacs]``), draw, describe, retrieve, then scan and filter.

    Parameters
    ----------
    workspace : Workspace
        Its ``pacs`` settings name the PACS and the query; ``n``, ``seed`` and ``stratify_by`` default
        to the previous draw from the same query, else to the sampling settings.
    secret : str
        Password or token for ``basic``/``bearer`` authentication (read by the caller).
    redraw, refresh : bool
        Ignore the previous draw; ask the PACS for the candidates again.
    retrieve : bool
        False stops after the description (what would be retrieved, and why the rest would not).
    executor, progress, describe_progress
        Where the scan of the retrieved files runs; ``progress(done, total)`` counts instances retrieved,
        ``describe_progress(done, total)`` drawn exams described.
    """
    settings = workspace.settings.pacs
    source = source_of(settings, secret)
    studies, exams = _candidates(workspace, source, settings, refresh)
    if studies.empty:
        raise SamplingError(f"{source.url}: no {settings.modality} study matches the query "
                            f"{json.dumps(_query_record(settings))}; widen the period or the filters")
    if stratify_by and stratify_by not in PACS_STRATA:
        raise SamplingError(f"stratify_by {stratify_by!r}: a PACS draw can stratify by {', '.join(PACS_STRATA)} "
                            "only (the other strata are known once series are described)")
    protocol = "dimse" if settings.url.startswith("dicom://") else "dicomweb"
    drawn = sample_frame(workspace, exams, frame={"source": protocol, **_query_record(settings)}, n=n, seed=seed,
                         stratify_by=stratify_by, redraw=redraw)
    sampled = pd.read_parquet(workspace.sample_table)
    failed: dict[str, str] = {}
    instances = _describe(workspace, source, sampled, studies, settings.workers, failed, describe_progress)
    files, series = remote_series(instances) if not instances.empty else (pd.DataFrame(), pd.DataFrame())
    excluded: dict[str, int] = {}
    n_fetched = n_present = 0
    states: dict[str, str] = {}
    if not series.empty:
        series = _judge(workspace, series, files, sampled)
        excluded = {str(k): int(v) for k, v in series.loc[~series["included"], "primary_reason"].value_counts().items()}
        atomic_write_parquet(workspace.pacs_series_table, series)  # before retrieval: a killed run leaves it too
        if retrieve:
            states, n_fetched, n_present = _retrieve(source, series, files, settings, failed, progress)
            series["retrieval"] = series["series_key"].map(states).fillna("")
            atomic_write_parquet(workspace.pacs_series_table, series)
    else:
        workspace.pacs_series_table.unlink(missing_ok=True)
    n_retrieved = sum(1 for s in states.values() if s == "retrieved")
    filter_result = None
    if retrieve and any(workspace.pacs_export_dir.rglob("*.dcm")):
        scan(workspace, [workspace.pacs_export_dir], executor=executor)
        filter_result = run_filter(workspace)
    log.info("pull: %d candidates, %d drawn, %d series retrieved, %d failures", len(studies), len(drawn.members),
             n_retrieved, len(failed))
    return PullResult(
        n_candidates=len(studies), sample=drawn, n_described=int(series["study_key"].nunique()) if len(series) else 0,
        excluded_series=excluded, n_series_to_retrieve=int(series["retrieve"].sum()) if len(series) else 0,
        n_series_retrieved=n_retrieved, n_instances_fetched=n_fetched, n_instances_present=n_present,
        failed=failed, filter=filter_result)
