"""Patient-level train / val / test splits: stratified, seeded, versioned, and frozen once published.

Every included case goes to ``train``, ``val`` or ``test`` (90/5/5 by default). All cases of one patient
(the pseudonymous patient key) go to the same split. Patients are taken in a seeded keyed-hash order
and, stratum by stratum (the combination of the chosen columns, e.g. site, sex, age band), each goes to
the split furthest below its target share of cases in that stratum and overall, so the ratios hold in
every stratum as far as whole patients allow. The same cohort and seed give the same split.

A split is saved as a version (``releasable/splits/v<semver>.json``). Once a version is frozen (a
release published it), every later version keeps every earlier case where it was; a new case of a
known patient follows that patient; new patients are assigned to bring the ratios and strata back
towards the targets. Only a new major version may reshuffle. A run of ``ctcurate split`` that would give the
latest version's assignments with its plan saves no version (a version number or a reshuffle asked for is saved
all the same). The current split is also written to each
``case.json`` (the cases table's ``split`` column), ``releasable/splits/splits.json`` and nnU-Net's
``splits_final.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from annotator.folds import describe_folds, nnunet_folds
from curation import Workspace
from curation.annotation.db import has_annotation_database
from curation.atomic import atomic_create, atomic_write_text
from curation.cases.casemeta import SPLITS, update_case_metadata, write_meta_table
from curation.errors import SplitError

__all__ = ["SplitError", "SplitPlan", "SplitVersion", "assign_splits", "make_split", "split_diff", "load_split",
           "list_splits", "freeze_split", "included_cases", "unfinished_split", "finish_split"]

log = logging.getLogger(__name__)
_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")  # canonical: no leading zeros



@dataclass(frozen=True)
class SplitPlan:
    """Ratios (train, val, test) and the columns to stratify on; valid once built."""

    ratios: tuple[float, float, float] = (0.90, 0.05, 0.05)
    stratify: tuple[str, ...] = ("site", "sex", "age_band")
    seed: int = 0

    def __post_init__(self) -> None:
        ratios = tuple(float(r) for r in self.ratios)
        if len(ratios) != 3 or min(ratios) < 0 or sum(ratios) <= 0:
            raise SplitError(f"ratios {self.ratios}: expected three non-negative numbers for train, val, test")
        object.__setattr__(self, "ratios", tuple(r / sum(ratios) for r in ratios))
        object.__setattr__(self, "stratify", tuple(self.stratify))


@dataclass(frozen=True)
class SplitVersion:
    """One saved version: its assignments (case -> split), patients, plan and whether it is frozen."""

    version: str
    assignments: dict[str, str]
    patients: dict[str, str]
    plan: SplitPlan
    frozen: bool = False
    parent: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def published(self) -> SplitVersion:
        """This version, frozen (as a release publishes it)."""
        return SplitVersion(self.version, self.assignments, self.patients, self.plan, True, self.parent, self.notes)

    def to_json(self) -> str:
        return json.dumps({"version": self.version, "parent": self.parent, "frozen": self.frozen,
                           "ratios": list(self.plan.ratios), "stratify": list(self.plan.stratify),
                           "seed": self.plan.seed, "assignments": dict(sorted(self.assignments.items())),
                           "patients": dict(sorted(self.patients.items())), "notes": self.notes}, indent=1)


def _semver(version: str) -> tuple[int, int, int]:
    match = _SEMVER.match(version)
    if not match:
        raise SplitError(f"version {version!r}: expected semantic versioning MAJOR.MINOR.PATCH without leading "
                         "zeros, e.g. 1.0.0")
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


def _order(key: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def _strata(cases: pd.DataFrame, columns: tuple[str, ...]) -> pd.Series:
    frame = cases.copy()
    if "age_band" in columns and "age_band" not in frame:
        ages = frame["age"] if "age" in frame else pd.Series(float("nan"), index=frame.index)
        frame["age_band"] = (pd.to_numeric(ages, errors="coerce") // 20 * 20).map(
            lambda a: "unknown" if pd.isna(a) else f"{int(a)}-{int(a) + 19}")
    missing = [c for c in columns if c not in frame]
    if missing:
        raise SplitError(f"stratify columns {missing}: not in the cases table (have {', '.join(frame.columns)})")
    if not columns:
        return pd.Series("", index=frame.index)
    values = frame[list(columns)].astype(object)
    values = values.where(values.notna(), "unknown").map(str)  # a fact the headers did not give is a stratum too
    return values.agg("|".join, axis=1)


def assign_splits(cases: pd.DataFrame, plan: SplitPlan, fixed: dict[str, str] | None = None) -> dict[str, str]:
    """Case id -> split for ``cases`` (columns ``case_id``, ``patient_pseudonym`` and the strata columns).

    ``fixed`` holds assignments that must not change (a frozen version's); patients seen there keep
    their split for their new cases too.
    """
    fixed = dict(fixed or {})
    if cases["case_id"].duplicated().any():
        twice = cases["case_id"][cases["case_id"].duplicated()].tolist()[:5]
        raise SplitError(f"cases table: duplicate case ids {twice}")
    strata = _strata(cases, plan.stratify)
    patient_of = dict(zip(cases["case_id"], cases["patient_pseudonym"], strict=True))
    split_of_patient: dict[str, str] = {}
    for case_id, split in fixed.items():
        if split not in SPLITS:
            raise SplitError(f"case {case_id}: split {split!r}, expected one of {', '.join(SPLITS)}")
        patient = patient_of.get(case_id)
        if patient is not None and split_of_patient.setdefault(patient, split) != split:
            raise SplitError(f"patient {patient}: cases in {split_of_patient[patient]} and {split} in the "
                             "frozen split; it cannot be kept as it is: make a new major version")
    out = {c: s for c, s in fixed.items() if c in patient_of}
    overall: Counter[str] = Counter(out.values())
    by_stratum: dict[str, Counter[str]] = defaultdict(Counter)
    stratum_of = dict(zip(cases["case_id"], strata, strict=True))
    for case_id, split in out.items():
        by_stratum[stratum_of[case_id]][split] += 1
    # new cases of known patients follow their patient
    for case_id, patient in patient_of.items():
        if case_id not in out and patient in split_of_patient:
            out[case_id] = split_of_patient[patient]
            overall[out[case_id]] += 1
            by_stratum[stratum_of[case_id]][out[case_id]] += 1
    new_patients: dict[str, list[str]] = defaultdict(list)
    for case_id, patient in sorted(patient_of.items()):  # a patient's stratum: that of its first case id
        if case_id not in out:
            new_patients[patient].append(case_id)
    # stratified systematic allocation: walk the new patients stratum by stratum (strata and patients in
    # seeded hash order) and give each to the split furthest below its share of all cases so far, so every
    # stratum gets its share as the walk passes through it and the overall ratios hold within a patient
    ordered = sorted(new_patients, key=lambda p: (_order(stratum_of[new_patients[p][0]], plan.seed),
                                                  _order(p, plan.seed)))
    assigned = sum(overall.values())
    for patient in ordered:
        members = new_patients[patient]
        n = len(members)
        deficits = [(plan.ratios[i] * (assigned + n) - overall[s], plan.ratios[i], s)
                    for i, s in enumerate(SPLITS) if plan.ratios[i] > 0]
        split = max(deficits)[2]
        for case_id in members:
            out[case_id] = split
            by_stratum[stratum_of[case_id]][split] += 1
        overall[split] += n
        assigned += n
    return out


# -- the workspace's split versions -------------------------------------------------------------------------
def list_splits(ws: Workspace) -> list[SplitVersion]:
    """Saved versions, oldest first (by semantic version)."""
    versions = [load_split(ws, path.stem[1:]) for path in ws.split_files()]
    return sorted(versions, key=lambda v: _semver(v.version))


def load_split(ws: Workspace, version: str) -> SplitVersion:
    path = ws.split_file(version)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        known = ", ".join(v.stem[1:] for v in sorted(ws.split_files())) or "none"
        raise SplitError(f"split version {version}: {path} not found (saved: {known}); run 'ctcurate split'") \
            from None
    plan = SplitPlan(tuple(data["ratios"]), tuple(data["stratify"]), int(data["seed"]))
    return SplitVersion(data["version"], data["assignments"], data["patients"], plan, bool(data["frozen"]),
                        data.get("parent"), data.get("notes", {}))


def included_cases(ws: Workspace) -> pd.DataFrame:
    """The cases table without the cases annotators excluded."""
    from curation.annotation.worklist import CaseStatus, Worklist

    cases = pd.read_parquet(ws.require(ws.meta_table, "convert"))
    if has_annotation_database(ws):
        excluded = {c for c, (status, _) in Worklist(ws).statuses().items() if status is CaseStatus.EXCLUDED}
        cases = cases[~cases["case_id"].isin(excluded)]
    return cases.reset_index(drop=True)


def _same_plan(a: SplitPlan, b: SplitPlan) -> bool:
    """The same plan, ratios compared as numbers (normalised shares read back from JSON may differ in the last
    digit)."""
    return (a.stratify, a.seed) == (b.stratify, b.seed) and all(
        math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12) for x, y in zip(a.ratios, b.ratios, strict=True))


def make_split(ws: Workspace, version: str, plan: SplitPlan | None = None, *, reshuffle: bool = False,
               if_changed: bool = False) -> SplitVersion:
    """Assign the included cases and save ``version``; keeps a frozen earlier version's assignments.

    The plan defaults to the latest version's (or 90/5/5 stratified on site, sex and age band with the
    workspace seed). ``reshuffle`` ignores earlier assignments, which only a new major version may do.
    ``if_changed``: when the cases would get exactly the latest version's assignments with its plan, nothing is
    saved and the latest version is returned (a rerun with nothing changed adds no version; without it, a
    version asked for by number is saved all the same).
    """
    new = _semver(version)
    previous = list_splits(ws)
    latest = previous[-1] if previous else None
    pending = unfinished_split(ws)
    if pending is not None:  # a killed run saved it: the same request finishes it instead of adding a version
        _apply(ws, pending)
        if plan is None or plan == pending.plan:
            log.warning("split %s: saved by an interrupted run; finished it", pending.version)
            return pending
    if latest is not None and latest.version == version and (plan is None or plan == latest.plan) \
            and not reshuffle:
        log.info("split %s: already saved with this plan; nothing to do", version)
        return latest  # the same request again (e.g. after a kill that came once it was done)
    if latest is not None:
        old = _semver(latest.version)
        if new <= old:
            raise SplitError(f"version {version}: must be newer than the latest split {latest.version}")
        if latest.frozen and reshuffle and new[0] == old[0]:
            raise SplitError(f"version {version}: reshuffling the frozen split {latest.version} needs a new major "
                             f"version ({old[0] + 1}.0.0)")
    plan = plan or (latest.plan if latest else SplitPlan(seed=ws.settings.seed))
    cases = included_cases(ws)
    if cases.empty:
        raise SplitError(f"{ws.meta_table}: no included case to split (none converted, or all withdrawn or "
                         "excluded); run 'ctcurate convert', or see 'ctcurate annotate status'")
    frozen = {} if reshuffle or latest is None or not latest.frozen else latest.assignments
    gone = sorted(set(frozen) - set(cases["case_id"]))
    assignments = assign_splits(cases, plan, frozen)
    if if_changed and latest is not None and assignments == latest.assignments and _same_plan(plan, latest.plan):
        log.info("split: unchanged since %s; no version saved", latest.version)
        return latest
    patients = dict(zip(cases["case_id"], cases["patient_pseudonym"], strict=True))
    split = SplitVersion(version, assignments, {c: patients[c] for c in assignments}, plan, False,
                         latest.version if latest else None, {"removed_since_parent": gone})
    try:
        with atomic_create(ws.split_file(version)) as tmp:  # a version is written once, whole
            tmp.write_text(split.to_json(), encoding="utf-8")
    except FileExistsError:
        raise SplitError(f"version {version}: {ws.split_file(version)} exists already; choose a newer version") \
            from None
    _apply(ws, split)
    log.info("split %s: %s", version, dict(Counter(assignments.values())))
    return split


def _apply(ws: Workspace, split: SplitVersion) -> None:
    """Write the split into every case.json and the cases table, splits_final.json, and last splits.json (which
    says that the version is applied)."""
    for case_id in ws.case_ids():
        if ws.case_metadata(case_id).is_file():
            update_case_metadata(ws, case_id, "split", split.assignments.get(case_id))
    write_meta_table(ws)
    folds = nnunet_folds((c for c, s in split.assignments.items() if s == "train"),
                         (c for c, s in split.assignments.items() if s == "val"))
    if folds is None:
        ws.nnunet_split.unlink(missing_ok=True)
        log.warning("split %s: %s", split.version, describe_folds(folds))
    else:
        atomic_write_text(ws.nnunet_split, json.dumps(folds, indent=1))
    atomic_write_text(ws.current_split, split.to_json())


def _applied(ws: Workspace) -> str | None:
    """The version that splits.json says is applied (None before the first split)."""
    try:
        return str(json.loads(ws.current_split.read_text())["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def unfinished_split(ws: Workspace) -> SplitVersion | None:
    """The latest version when a killed ``split`` saved it but did not finish writing it into the cases."""
    versions = list_splits(ws)
    if versions and _applied(ws) != versions[-1].version:
        return versions[-1]
    return None


def finish_split(ws: Workspace) -> SplitVersion | None:
    """Write an unfinished latest version into the cases (see :func:`unfinished_split`); return it, if any."""
    pending = unfinished_split(ws)
    if pending is not None:
        log.warning("split %s was saved but not finished (interrupted run); finishing it", pending.version)
        _apply(ws, pending)
    return pending


def freeze_split(ws: Workspace, version: str) -> SplitVersion:
    """Mark a version published: later versions keep its assignments."""
    frozen = load_split(ws, version).published()
    targets = [ws.split_file(version)] + ([ws.current_split] if _applied(ws) == version else [])
    for target in targets:  # both say frozen; a file that says so already is left as it is
        if target.read_text() != frozen.to_json():
            atomic_write_text(target, frozen.to_json())
    return frozen


def split_diff(ws: Workspace, a: str, b: str) -> dict[str, Any]:
    """Cases added, removed and moved from version ``a`` to ``b``."""
    first, second = load_split(ws, a).assignments, load_split(ws, b).assignments
    return {"added": {c: second[c] for c in sorted(set(second) - set(first))},
            "removed": {c: first[c] for c in sorted(set(first) - set(second))},
            "moved": {c: (first[c], second[c]) for c in sorted(set(first) & set(second)) if first[c] != second[c]}}
