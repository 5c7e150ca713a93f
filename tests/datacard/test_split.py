"""Patient-level splits: properties on random cohorts (hypothesis), and versions on the demo workspace."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctcurate.cli import app
from curation import Workspace
from curation.cases.casemeta import case_splits, read_case_metadata
from datacard.split import (
    SplitError,
    SplitPlan,
    assign_splits,
    freeze_split,
    list_splits,
    load_split,
    make_split,
    split_diff,
)
from tests.cli_runner import CliRunner

MAX_CASES = 3  # cases per patient in the generated cohorts


@st.composite
def cohorts(draw: st.DrawFn, min_patients: int = 20, max_patients: int = 300) -> pd.DataFrame:
    n = draw(st.integers(min_patients, max_patients))
    sites = draw(st.integers(1, 8))
    rows = []
    for p in range(n):
        site = f"site{draw(st.integers(1, sites)):02d}"
        sex = draw(st.sampled_from(["F", "M"]))
        age = draw(st.integers(18, 95))
        for k in range(draw(st.integers(1, MAX_CASES))):
            rows.append({"case_id": f"s{len(rows) + 1:05d}", "patient_pseudonym": f"p{p:05d}", "site": site,
                         "sex": sex, "age": age + k})
    return pd.DataFrame(rows)


def _check(cases: pd.DataFrame, split: dict[str, str], plan: SplitPlan, slack: int = 0) -> None:
    assert set(split) == set(cases["case_id"])
    per_patient = cases.assign(split=cases["case_id"].map(split)).groupby("patient_pseudonym")["split"].nunique()
    assert per_patient.max() == 1  # no patient in two splits
    counts = Counter(split.values())
    for ratio, name in zip(plan.ratios, ("train", "val", "test"), strict=True):
        assert abs(counts[name] - ratio * len(cases)) <= MAX_CASES + slack, (name, counts, len(cases))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases=cohorts(), seed=st.integers(0, 2**31), ratios=st.sampled_from([(90, 5, 5), (80, 10, 10), (70, 15, 15)]))
def test_random_cohorts_group_by_patient_hold_ratios_and_repeat(cases: pd.DataFrame, seed: int, ratios) -> None:
    plan = SplitPlan(ratios, ("site", "sex", "age_band"), seed)
    split = assign_splits(cases, plan)
    _check(cases, split, plan)
    assert assign_splits(cases.sample(frac=1, random_state=1), plan) == split  # same seed, any row order


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(old=cohorts(), more=cohorts(1, 60), seed=st.integers(0, 2**31), share=st.floats(0, 1))
def test_adding_cases_to_a_frozen_split_never_moves_an_old_case(old: pd.DataFrame, more: pd.DataFrame, seed: int,
                                                                share: float) -> None:
    plan = SplitPlan((90, 5, 5), ("site", "sex"), seed)
    frozen = assign_splits(old, plan)
    more = more.assign(case_id="n" + more["case_id"])
    known = more["patient_pseudonym"].drop_duplicates().sample(frac=share, random_state=2)
    # some new cases belong to known patients (a follow-up exam), the rest to new patients
    more.loc[more["patient_pseudonym"].isin(known), "patient_pseudonym"] = "p0" + \
        more.loc[more["patient_pseudonym"].isin(known), "patient_pseudonym"].str[-4:]
    grown = pd.concat([old, more], ignore_index=True)
    split = assign_splits(grown, plan, frozen)
    assert all(split[c] == s for c, s in frozen.items())
    forced = int(more["patient_pseudonym"].isin(set(old["patient_pseudonym"])).sum())
    _check(grown, split, plan, slack=forced)


def test_strata_get_their_share() -> None:
    rows = [{"case_id": f"s{i:05d}", "patient_pseudonym": f"p{i:05d}", "site": f"site{i % 2}", "sex": "FM"[i % 3 % 2],
             "age": 20 + i % 60} for i in range(1204)]
    cases = pd.DataFrame(rows)
    plan = SplitPlan((90, 5, 5), ("site",), 1368)
    split = assign_splits(cases, plan)
    counts = Counter(split.values())
    assert abs(counts["train"] - 1083.6) <= 1 and abs(counts["val"] - 60.2) <= 1 and abs(counts["test"] - 60.2) <= 1
    for site, group in cases.groupby("site"):
        share = Counter(split[c] for c in group["case_id"])
        assert abs(share["val"] / len(group) - 0.05) < 0.01, site


def test_plan_and_frozen_errors() -> None:
    with pytest.raises(SplitError, match="ratios \\(1, 2\\): expected three non-negative numbers"):
        SplitPlan((1, 2))
    cases = pd.DataFrame({"case_id": ["a", "b"], "patient_pseudonym": ["p1", "p1"], "site": ["x", "x"]})
    with pytest.raises(SplitError, match="patient p1: cases in train and test in the frozen split"):
        assign_splits(cases, SplitPlan(stratify=("site",)), {"a": "train", "b": "test"})
    with pytest.raises(SplitError, match="stratify columns \\['scanner'\\]: not in the cases table"):
        assign_splits(cases, SplitPlan(stratify=("scanner",)))
    with pytest.raises(SplitError, match="case a: split 'holdout'"):
        assign_splits(cases, SplitPlan(stratify=()), {"a": "holdout"})


@pytest.fixture()
def split_ws(demo_run, tmp_path: Path) -> Workspace:
    target = tmp_path / "ws"
    shutil.copytree(demo_run.workspace, target)
    return Workspace.open(target)


def test_a_split_without_val_cases_gives_nnunet_its_own_cross_validation(split_ws: Workspace) -> None:
    from annotator.folds import nnunet_folds

    split = make_split(split_ws, "1.0.0", SplitPlan((100, 0, 0), ("sex",), 7))
    train = sorted(c for c, s in split.assignments.items() if s == "train")
    folds = json.loads((split_ws.releasable / "splits" / "splits_final.json").read_text())
    assert len(train) == 3 and folds == nnunet_folds(train) and len(folds) == 3
    assert all(fold["train"] and fold["val"] for fold in folds)  # never an empty list for nnU-Net's loader


def test_versions_on_the_demo_workspace(split_ws: Workspace) -> None:
    ws = split_ws
    plan = SplitPlan((34, 33, 33), ("sex",), 7)  # three cases of two patients (one came twice)
    first = make_split(ws, "1.0.0", plan)
    patients = pd.read_parquet(ws.meta_table).set_index("case_id")["patient_pseudonym"]
    assert len(set(patients)) == 2 and len(set(first.assignments.values())) == 2
    assert all(first.assignments[a] == first.assignments[b] for a in patients.index for b in patients.index
               if patients[a] == patients[b])
    assert case_splits(ws) == first.assignments
    assert read_case_metadata(ws, "s0001")["split"] == first.assignments["s0001"]
    folds = (ws.releasable / "splits" / "splits_final.json").read_text()
    assert [c for c, s in first.assignments.items() if s == "val"][0] in folds
    assert make_split(ws, "1.0.0") == first  # the same request again: nothing to do
    with pytest.raises(SplitError, match="version 1.0.0: must be newer than the latest split 1.0.0"):
        make_split(ws, "1.0.0", SplitPlan((80, 10, 10), ("sex",), 7))
    freeze_split(ws, "1.0.0")
    again = make_split(ws, "1.1.0", reshuffle=False)
    assert again.assignments == first.assignments and again.parent == "1.0.0"
    freeze_split(ws, "1.1.0")
    with pytest.raises(SplitError, match="version 1.2.0: reshuffling the frozen split 1.1.0 needs a new major "
                                         "version \\(2.0.0\\)"):
        make_split(ws, "1.2.0", SplitPlan((34, 33, 33), ("sex",), 99), reshuffle=True)
    shuffled = make_split(ws, "2.0.0", SplitPlan((34, 33, 33), ("sex",), 99), reshuffle=True)
    diff = split_diff(ws, "1.0.0", "2.0.0")
    moved = {c for c in first.assignments if first.assignments[c] != shuffled.assignments[c]}
    assert set(diff["moved"]) == moved and diff["added"] == {} and diff["removed"] == {}
    assert [v.version for v in list_splits(ws)] == ["1.0.0", "1.1.0", "2.0.0"]
    with pytest.raises(SplitError, match="split version 9.9.9: .* not found \\(saved: 1.0.0, 1.1.0, 2.0.0\\)"):
        load_split(ws, "9.9.9")
    with pytest.raises(SplitError, match="version 'v3': expected semantic versioning"):
        make_split(ws, "v3")


def test_split_cli(split_ws: Workspace) -> None:
    runner = CliRunner()
    made = runner.invoke(app, ["split", "-w", str(split_ws.root), "--version", "1.0.0", "--ratios", "34,33,33",
                               "--stratify", "sex"])
    assert made.exit_code == 0, made.output
    assert "cases; 2 patients; written to case.json" in " ".join(made.output.split())
    runner.invoke(app, ["split", "-w", str(split_ws.root), "--version", "2.0.0", "--reshuffle", "--seed", "5"])
    diff = runner.invoke(app, ["split", "diff", "1.0.0", "2.0.0", "-w", str(split_ws.root)])
    assert diff.exit_code == 0 and "added 0, removed 0, moved" in " ".join(diff.output.split())
    bad = runner.invoke(app, ["split", "-w", str(split_ws.root), "--version", "3.0.0", "--ratios", "90,10"])
    assert bad.exit_code == 2 and "expected three numbers" in " ".join(bad.output.split())


@pytest.mark.parametrize(("given", "total"), [("50,50,50", "150"), ("0.5,0.5,0.5", "1.5"), ("80,10,5", "95"),
                                               ("9,0.5,0.5", "10")])
def test_ratios_must_add_up_to_100_or_to_1(tmp_path: Path, given: str, total: str) -> None:
    """Shares were normalised whatever they added up to: 50,50,50 made a third each without a word."""
    from ctcurate.cli.release import _ratios

    ws = Workspace.create(tmp_path / "ws")
    out = CliRunner().invoke(app, ["split", "-w", str(ws.root), "--ratios", given])
    assert out.exit_code == 2
    assert out.output.strip() == f"error: --ratios '{given}': the shares add up to {total}; give percentages " \
                                 "adding up to 100 (e.g. 90,5,5) or fractions adding up to 1"
    assert not (ws.releasable / "splits").exists() or not any((ws.releasable / "splits").iterdir())
    assert _ratios("90,5,5") == (90, 5, 5) and _ratios("0.8/0.1/0.1") == (0.8, 0.1, 0.1)
    assert _ratios("33,33,33") == (33, 33, 33) and _ratios("0.333,0.333,0.333") == (0.333, 0.333, 0.333)


def test_cases_without_sex_or_age_are_their_own_stratum() -> None:
    """Real headers often lack sex and age: such cases form the stratum 'unknown' instead of failing."""
    import pandas as pd

    from datacard.split import SplitPlan, assign_splits

    cases = pd.DataFrame({"case_id": [f"s{i:04d}" for i in range(1, 21)],
                          "patient_pseudonym": [f"p{i}" for i in range(1, 21)],
                          "site": ["site01"] * 20, "sex": [None, float("nan"), "F", "M"] * 5,
                          "age": [float("nan")] * 20})
    chosen = assign_splits(cases, SplitPlan((90, 5, 5), ("site", "sex", "age_band"), 1))
    assert sorted(chosen) == list(cases["case_id"]) and set(chosen.values()) <= {"train", "val", "test"}


def test_a_workspace_without_included_cases_is_named_not_split(tmp_path: Path) -> None:
    """Every case withdrawn: the split stopped with 'unexpected ValueError: zip() argument 2 is longer...'."""
    from curation.cases.casemeta import write_meta_table

    ws = Workspace.create(tmp_path / "ws")
    write_meta_table(ws)  # what convert leaves when every case was withdrawn
    out = CliRunner().invoke(app, ["split", "-w", str(ws.root)])
    assert out.exit_code == 2, out.output
    assert " ".join(out.output.split()).startswith(f"error: {ws.meta_table}: no included case to split")
    with pytest.raises(SplitError, match="no included case to split .* run 'ctcurate convert'"):
        make_split(ws, "1.0.0")


def test_a_rerun_with_nothing_changed_saves_no_version(copy_series, filtered_workspace) -> None:
    """'ctcurate split' twice made 1.1.0 with the assignments of 1.0.0 (added 0, removed 0, moved 0)."""
    from curation.cases.convert import convert
    from curation.workspace.executor import SerialExecutor

    ws = filtered_workspace(copy_series("dcm_qa_ct/In/Philips/S21570/S2010"))
    assert convert(ws, executor=SerialExecutor()).converted == ("s0001",)
    runner = CliRunner()

    def split(*args: str) -> str:
        out = runner.invoke(app, ["split", "-w", str(ws.root), *args])
        assert out.exit_code == 0, out.output
        return " ".join(out.output.split())

    assert "split 1.0.0: train 1, val 0, test 0 cases" in split()  # (and a warning: one case, no folds)
    for again in ((), ("--ratios", "90,5,5"), ("--seed", str(ws.settings.seed))):  # the same plan, said or not
        assert split(*again) == ("split unchanged since 1.0.0 (train 1, val 0, test 0 cases): no new version saved; "
                                 "--version 1.1.0 saves one all the same")
    assert [v.version for v in list_splits(ws)] == ["1.0.0"]
    # what asks for a version still makes one: a number, a reshuffle, another plan
    assert "split 1.1.0: train 1" in split("--version", "1.1.0")
    assert "split 2.0.0: train 1" in split("--reshuffle")
    assert "split 2.1.0: train 1" in split("--ratios", "80,10,10")
    assert [v.version for v in list_splits(ws)] == ["1.0.0", "1.1.0", "2.0.0", "2.1.0"]
    assert make_split(ws, "2.2.0", if_changed=True).version == "2.1.0"
    assert make_split(ws, "2.2.0").version == "2.2.0"
