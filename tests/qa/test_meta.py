"""Acceptance 5: Great Expectations suites on the cases table and the label statistics; Data Docs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from curation import load_label_set
from curation.errors import QAError
from qa import run_meta_qa


@pytest.fixture(scope="module")
def meta(demo_run) -> pd.DataFrame:
    """The real cases table that convert wrote for the demo export, with a split column added."""
    frame = pd.read_parquet(Path(demo_run.workspace) / "releasable" / "tables" / "meta.parquet")
    patients = sorted(frame["patient_pseudonym"].unique())
    assert len(patients) >= 2
    split = {p: ("train", "test")[n % 2] for n, p in enumerate(patients)}  # whole patients per split
    return frame.assign(split=frame["patient_pseudonym"].map(split))


def test_clean_tables_pass_and_data_docs_are_built(tmp_path: Path, meta: pd.DataFrame, demo_run) -> None:
    stats = pd.read_parquet(Path(demo_run.workspace) / "qa" / "label_stats.parquet")
    label_set = load_label_set(Path(demo_run.workspace) / "labels" / "demo.toml")
    result = run_meta_qa(tmp_path / "qa", cases=meta, label_stats=stats, label_set=label_set)
    assert result.success, [s.failed for s in result.suites]
    assert {s.suite for s in result.suites} == {"cases", "patients", "label_stats"}
    assert result.data_docs is not None and result.data_docs.is_file()
    html = result.data_docs.read_text()
    assert "cases" in html and "label_stats" in html


def test_suites_fail_on_duplicate_id_impossible_age_and_patient_in_two_splits(tmp_path: Path,
                                                                              meta: pd.DataFrame) -> None:
    bad = meta.copy()
    bad.loc[1, "case_id"] = bad.loc[0, "case_id"]
    bad.loc[2, "age"] = 250
    other = bad.index[bad["split"] != bad.loc[0, "split"]][0]
    bad.loc[other, "patient_pseudonym"] = bad.loc[0, "patient_pseudonym"]  # one patient in two splits
    bad.loc[1, "model"] = "Jane^Doe"
    bad.loc[0, "contrast_phase"] = "venous"  # not one of the phases
    bad.loc[0, "contrast_phase_confidence"] = 1.5
    result = run_meta_qa(tmp_path / "qa", cases=bad)
    assert not result.success
    failed = {(s.suite, f["expectation"], f["column"]) for s in result.suites for f in s.failed}
    assert ("cases", "expect_column_values_to_be_unique", "case_id") in failed
    assert ("cases", "expect_column_values_to_be_between", "age") in failed
    assert ("patients", "expect_column_values_to_be_between", "splits") in failed
    assert ("cases", "expect_column_values_to_not_match_regex_list", "model") in failed
    assert ("cases", "expect_column_values_to_be_in_set", "contrast_phase") in failed
    assert ("cases", "expect_column_values_to_be_between", "contrast_phase_confidence") in failed
    ages = next(f for s in result.suites for f in s.failed if f["column"] == "age")
    assert ages["unexpected"] == [250]
    assert (tmp_path / "qa" / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html").is_file()


def test_columns_out_of_order_fail(tmp_path: Path, meta: pd.DataFrame) -> None:
    swapped = meta[[meta.columns[1], meta.columns[0], *meta.columns[2:]]]
    result = run_meta_qa(tmp_path / "qa", cases=swapped, data_docs=False)
    assert not result.success and result.data_docs is None


def test_meta_qa_input_errors(tmp_path: Path) -> None:
    with pytest.raises(QAError, match="no table to check"):
        run_meta_qa(tmp_path)
    with pytest.raises(QAError, match="needs the label set"):
        run_meta_qa(tmp_path, label_stats=pd.DataFrame({"structure": []}))
