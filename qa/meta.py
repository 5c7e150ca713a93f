"""``qa meta``: Great Expectations (1.x) suites for the cases table and the label statistics table.

The suites are written in code (:func:`cases_suite`, :func:`label_stats_suite`). :func:`run_meta_qa`
validates the tables with a file-backed GX context under the output folder and builds the GX Data
Docs (HTML) there. GX's usage statistics are switched off at this one seam (it reads an environment
variable); nothing is sent anywhere.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from curation.atomic import atomic_directory, copy_tree, writing_to
from curation.cases.casemeta import META_COLUMNS, SPLITS, ContrastPhase
from curation.errors import QAError
from curation.labels.labelset import LabelSet
from curation.workspace import QAFolder

from .offline import make_offline

__all__ = ["SuiteResult", "MetaQAResult", "cases_suite", "label_stats_suite", "run_meta_qa", "PHI_PATTERNS"]

log = logging.getLogger(__name__)

SEXES = ("F", "M", "O", "")
PHI_PATTERNS = (
    r"\d+\.\d+\.\d+\.\d+\.\d+",        # a DICOM UID
    r"\b(?:19|20)\d{2}-?[01]\d-?[0-3]\d\b",  # a full date, 20240131 or 2024-01-31
    r"\^",                               # a DICOM person name (Family^Given)
    r"@",                                # an e-mail address
)


@dataclass(frozen=True)
class SuiteResult:
    """Outcome of one suite: which expectations failed, with GX's counts."""

    suite: str
    success: bool
    evaluated: int
    failed: list[dict[str, Any]]


@dataclass(frozen=True)
class MetaQAResult:
    suites: list[SuiteResult]
    data_docs: Path | None

    @property
    def success(self) -> bool:
        return all(s.success for s in self.suites)


def _gx() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    return gx


def cases_suite(frame: pd.DataFrame) -> Any:
    """Expectations for the cases table (``meta.parquet`` / the release's ``meta.csv``)."""
    gx = _gx()
    e = gx.expectations
    suite = gx.ExpectationSuite(name="cases")
    columns = list(META_COLUMNS) + (["split"] if "split" in frame.columns else [])
    suite.add_expectation(e.ExpectTableColumnsToMatchOrderedList(column_list=columns))
    suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column="case_id"))
    suite.add_expectation(e.ExpectColumnValuesToBeUnique(column="case_id"))
    suite.add_expectation(e.ExpectColumnValuesToMatchRegex(column="case_id", regex=r"^[a-z]+\d{4,}$"))
    suite.add_expectation(e.ExpectColumnValuesToBeBetween(column="age", min_value=0, max_value=120, mostly=1.0))
    suite.add_expectation(e.ExpectColumnValuesToBeInSet(column="sex", value_set=list(SEXES)))
    suite.add_expectation(e.ExpectColumnValuesToBeBetween(column="kvp", min_value=70, max_value=150))
    for axis in ("x", "y", "z"):
        suite.add_expectation(e.ExpectColumnValuesToBeBetween(column=f"spacing_{axis}_mm", min_value=0,
                                                              strict_min=True, max_value=20))
    suite.add_expectation(e.ExpectColumnValuesToBeInSet(column="contrast_phase",
                                                        value_set=[p.value for p in ContrastPhase]))
    suite.add_expectation(e.ExpectColumnValuesToBeBetween(column="contrast_phase_confidence", min_value=0,
                                                          max_value=1))
    if "split" in frame.columns:
        suite.add_expectation(e.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS)))
    for column in frame.columns:
        if frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column]):
            if column == "case_id":
                continue
            suite.add_expectation(e.ExpectColumnValuesToNotMatchRegexList(column=column,
                                                                          regex_list=list(PHI_PATTERNS)))
    return suite


def _patient_splits(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per patient with the number of splits its cases fall in."""
    if "split" not in frame.columns:
        return pd.DataFrame({"patient_pseudonym": [], "splits": []})
    counts = frame.dropna(subset=["split"]).groupby("patient_pseudonym")["split"].nunique()
    return counts.rename("splits").reset_index()


def patients_suite() -> Any:
    gx = _gx()
    suite = gx.ExpectationSuite(name="patients")
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeBetween(column="splits", min_value=0, max_value=1))
    return suite


def label_stats_suite(label_set: LabelSet) -> Any:
    """Expectations for the per-case label statistics table written by ``qa labels``."""
    gx = _gx()
    e = gx.expectations
    suite = gx.ExpectationSuite(name="label_stats")
    suite.add_expectation(e.ExpectColumnValuesToBeInSet(column="structure", value_set=label_set.names))
    suite.add_expectation(e.ExpectCompoundColumnsToBeUnique(column_list=["case", "structure"]))
    suite.add_expectation(e.ExpectColumnValuesToBeBetween(column="volume_ml", min_value=0, strict_min=True))
    suite.add_expectation(e.ExpectColumnValuesToBeBetween(column="components", min_value=1))
    suite.add_expectation(e.ExpectColumnValuesToBeBetween(column="largest_fraction", min_value=0, max_value=1,
                                                          strict_min=True))
    suite.add_expectation(e.ExpectColumnValuesToBeBetween(column="hu_median", min_value=-1024, max_value=3071,
                                                          mostly=1.0))
    return suite


def _summarise(suite_name: str, result: Any) -> SuiteResult:
    failed = []
    for r in result.results:
        if not r.success:
            config = r.expectation_config
            failed.append({"expectation": config.type, "column": config.kwargs.get("column", ""),
                           "unexpected": (r.result or {}).get("partial_unexpected_list", [])[:5],
                           "unexpected_count": (r.result or {}).get("unexpected_count")})
    return SuiteResult(suite_name, bool(result.success), len(result.results), failed)


def _run_suites(gx: Any, context: Any, runs: list[tuple[str, pd.DataFrame, Any]],
                data_docs: bool) -> tuple[list[SuiteResult], Path | None]:
    """Validate each (name, table, suite) in the file context; the results and the Data Docs page."""
    source = context.data_sources.add_or_update_pandas("ctcurate")
    results: list[SuiteResult] = []
    for name, frame, suite in runs:
        asset = source.add_dataframe_asset(name) if name not in [a.name for a in source.assets] \
            else source.get_asset(name)
        batch_def = next((b for b in asset.batch_definitions if b.name == "all"), None) or \
            asset.add_batch_definition_whole_dataframe("all")
        suite = context.suites.add_or_update(suite)
        validation = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=f"{name}_validation", data=batch_def, suite=suite))
        checkpoint = context.checkpoints.add_or_update(gx.Checkpoint(
            name=f"{name}_checkpoint", validation_definitions=[validation],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="docs")] if data_docs else []))
        outcome = checkpoint.run(batch_parameters={"dataframe": frame})
        for validation_result in outcome.run_results.values():
            results.append(_summarise(name, validation_result))
    docs = None
    if data_docs:
        sites = context.get_docs_sites_urls()
        if sites and sites[0].get("site_url"):
            docs = Path(str(sites[0]["site_url"]).removeprefix("file://"))
    return results, docs


def run_meta_qa(out_dir: str | Path, *, cases: pd.DataFrame | None = None, label_stats: pd.DataFrame | None = None,
                label_set: LabelSet | None = None, data_docs: bool = True) -> MetaQAResult:
    """Validate the given tables; results and Data Docs go under ``out_dir/gx``.

    Raises :class:`QAError` when no table is given or the label stats come without a label set.
    """
    if cases is None and label_stats is None:
        raise QAError("qa meta: no table to check; give the cases table, the label statistics, or both")
    if label_stats is not None and label_set is None:
        raise QAError("qa meta: checking label statistics needs the label set they were computed with")
    gx = _gx()
    final = QAFolder(Path(out_dir)).gx_dir
    # Great Expectations rewrites its files in place: it works on a copy, which replaces the folder when whole
    with writing_to(final), atomic_directory(final, replace=True) as staged:
        if final.is_dir():
            copy_tree(final, staged)
        try:
            context = gx.get_context(mode="file", context_root_dir=str(staged))
        except Exception as exc:  # noqa: BLE001 - GX raises many kinds for a damaged context
            raise QAError(f"{final}: the Great Expectations folder cannot be read ({type(exc).__name__}: {exc}); "
                          "move it aside and run 'ctcurate qa meta' again (it is rebuilt)") from None
        context.enable_analytics(False)
        context.variables.progress_bars = {"globally": False, "metric_calculations": False}
        runs: list[tuple[str, pd.DataFrame, Any]] = []  # the suites need the context
        if cases is not None:
            runs.append(("cases", cases, cases_suite(cases)))
            runs.append(("patients", _patient_splits(cases), patients_suite()))
        if label_stats is not None and label_set is not None:
            runs.append(("label_stats", label_stats, label_stats_suite(label_set)))
        results, docs = _run_suites(gx, context, runs, data_docs)
        if docs is not None:
            make_offline(docs.parent)  # the CDN scripts, styles and logo of the pages: none fetched
    if docs is not None:
        docs = final / docs.relative_to(staged)
    for r in results:
        log.info("suite %s: %s (%d expectations, %d failed)", r.suite, "passed" if r.success else "FAILED",
                 r.evaluated, len(r.failed))
    return MetaQAResult(results, docs)
