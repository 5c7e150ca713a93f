"""What the scale rehearsal does to its workspaces besides running ``ctcurate`` commands: the subsets of the
export (links to its first exams), the annotators' exclusions of distorted anatomy, the datasheet's answers, and
the facts of its largest run."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

ANSWERS = """license: CC-BY-4.0
availability: made on demand by bench/rehearsal.py
creators:
  - name: Rehearsal, Steward
    affiliation: ctcurate scale rehearsal (synthetic data)
fields:
  Noise: Synthetic phantom images without noise.
  External Data: None.
  Confidentiality: Synthetic patients; no real person is shown.
  Re Identification: Not possible; the patients are invented.
  Representativeness: Drawn from the reference dataset's reported make-up; not a population.
  Motivation: Measure every ctcurate stage at the reference dataset's scale.
  Purpose: Benchmarks.
subsets:
  train: Training set
  val: Validation set
  test: Held-out test set
sections:
  Motivation: Measure ctcurate at scale.
  Uses: Benchmarks of ctcurate only.
  Maintenance: Made anew by each run of the rehearsal.
"""


def subset(export: Path, truth: list[dict[str, str]], n_exams: int, target: Path) -> Path:
    """A folder of links to the first ``n_exams`` exams of the export (the same exams at every size)."""
    if target.is_dir():
        return target
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for exam in truth[:n_exams]:
        study = Path(f"site{int(exam['site']) + 1}") / exam["patient"] / f"ST{int(exam['index']):06d}"
        (tmp / study.parent).mkdir(parents=True, exist_ok=True)
        (tmp / study).symlink_to(export / study)
    tmp.rename(target)
    return target


def exclude_distorted(ws: Path, truth: list[dict[str, str]]) -> int:
    """What the annotators do: exclude the converted cases whose anatomy is distorted by abnormality."""
    import pandas as pd

    from curation.annotation import Worklist
    from curation.workspace import Workspace

    workspace = Workspace.open(ws)
    distorted = {row["study_uid"] for row in truth if row["defect"] == "distorted"}
    linkage = pd.read_parquet(workspace.linkage_table)
    worklist = Worklist(workspace)
    cases = linkage.loc[linkage["study_uid"].isin(distorted), "case_id"].tolist()
    for case_id in cases:
        worklist.set_status(case_id, "excluded", actor="rehearsal", reason="anatomy_distorted")
    return len(cases)


def rehearsal_facts(ws: Path) -> dict[str, Any]:
    """What the largest run produced: sampled, kept, excluded by reason, the split and the datasheet's partitions."""
    import pandas as pd

    from curation.workspace import Workspace

    workspace = Workspace.open(ws)
    exams = pd.read_parquet(workspace.exams_table)
    meta = pd.read_parquet(workspace.meta_table)
    release = workspace.release("1.0.0").root
    released = pd.read_csv(release / "meta.csv", sep=";") if (release / "meta.csv").is_file() else pd.DataFrame()
    datasheet = release / "datasheet" / "datasheet.md"
    partitions = ""
    if datasheet.is_file():
        text = datasheet.read_text()
        at = text.find("### Partitions")
        partitions = text[at: text.find("\n## ", at + 1)] if at >= 0 else ""
    return {
        "sampled": int(len(exams)),
        "kept_by_rules": int(exams["included"].sum()),
        "excluded_by_rule": {str(k): int(v) for k, v in exams.loc[~exams["included"], "primary_reason"]
                             .value_counts().items()},
        "converted": int(len(meta)),
        "released": int(len(released)),
        "split": {str(k): int(v) for k, v in released["split"].value_counts().items()} if "split" in released else {},
        "patients_by_split": {str(k): int(v) for k, v in released.groupby("split")["patient_pseudonym"].nunique()
                              .items()} if {"split", "patient_pseudonym"} <= set(released.columns) else {},
        "sites_by_split": {str(k): int(v) for k, v in released.groupby("split")["institute"].nunique().items()}
        if {"split", "institute"} <= set(released.columns) else {},
        "partitions": partitions,
    }
