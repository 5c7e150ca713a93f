"""``ctcurate release VERSION``: a sealed, checksummed, PHI-scanned release folder in the reference layout.

``WS/releases/VERSION/`` holds per included case ``sNNNN/ct.nrrd`` and ``sNNNN/segmentations/
<structure>.nrrd`` (the case's labels of record: its latest approved revision, else its latest revision),
optionally the isotropic copies, ``meta.csv`` (the TotalSegmentator dataset's columns, semicolon separated:
:mod:`datacard.metacsv`), the split (``splits.json``, ``splits_final.json``), the datasheet (stating what
this release holds), ``croissant.json``, ``LICENSE`` (the full text of the license the answers choose:
:mod:`datacard.license`), ``CHANGELOG.md`` (cases added, removed and moved, label revisions changed,
label-set changes since the previous release), the case folders and the datasheet again as zip parts cut to
a size limit for upload (``archives/``), and ``SHA256SUMS`` (``sha256sum -c`` format) of every file; see
:mod:`datacard.seal`. The answers' creators are checked here already (no placeholder, valid ORCIDs);
a release without them can be built but not published. ``date_published`` (default: the build day, UTC)
is the one value that differs when the same release is built on another day.

Versions follow semantic versioning: a release must be newer than the last, and moving any case to
another split needs a new major version. The build is refused for a case whose labels of record are not
the ones ``qa labels`` checked (another revision, or other content), while QA reports errors (unless
forced, which the datasheet then states) and when the PHI scan finds any identifier of the private catalog
(names, ids, UIDs, dates, institutions) in any file. The folder is built aside, sealed (zip parts read
back, checksums written), the split version it used is frozen, and only then is it renamed into place: a
build killed at any moment leaves no release, and the same build run again gives the same bytes.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from annotator.phase import estimate_phases
from curation import Workspace
from curation.annotation import LabelsOfRecord, RevisionStore, all_labels_of_record
from curation.atomic import atomic_directory, atomic_write_text, copy_file
from curation.cases.casemeta import read_case_metadata
from curation.cases.withdraw import withdrawn_cases
from curation.enums import Severity
from curation.errors import ReleaseError, WorkspaceError
from curation.labels.labelmap import read_seg_nrrd, write_mask_folder
from curation.reasons import reason_label
from curation.workspace import ReleaseFolder

from .croissant import RAI_FIELDS, build_croissant
from .datasheet import Shipped, build_datasheet, load_answers
from .deposit import check_creators
from .facts import present_structures
from .license import release_license
from .metacsv import release_table, study_type
from .phi import phi_token_set, scan_for_phi
from .seal import write_archives, write_checksums
from .split import _semver, freeze_split, included_cases, list_splits

__all__ = ["ReleaseError", "ReleaseResult", "build_release", "scan_for_phi", "phi_token_set"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReleaseResult:
    folder: Path
    cases: int
    archives: list[Path]
    forced_qa: bool


def _labels(ws: Workspace, record: LabelsOfRecord, out: Path) -> str:
    """Write the masks of a case's labels of record into ``out``; return which revision they are."""
    labels, _ = read_seg_nrrd(record.path)
    write_mask_folder(out, labels, ws.label_set())
    return record.describe()


def _check_qa(ws: Workspace, store: RevisionStore, version: str, cases: list[str],
              records: dict[str, LabelsOfRecord]) -> int:
    """Refuse cases without labels or whose labels of record are not what QA checked; return QA errors."""
    unlabelled = [c for c in cases if c not in records]
    if unlabelled:
        raise ReleaseError(f"release {version}: case(s) {unlabelled[:5]} have no labels (no revision); run "
                           "'ctcurate presegment' or import their labels ('ctcurate annotate import'), or exclude "
                           "them before a release")
    if not ws.qa.checked.is_file() or not ws.qa.findings.is_file():
        raise ReleaseError(f"release {version}: no label QA on record ({ws.qa.checked} missing); run 'ctcurate qa "
                           f"labels {ws.root}' first")
    checked = pd.read_parquet(ws.qa.checked).set_index("case")
    for case_id in cases:
        try:
            store.verify(records[case_id].revision)  # the files to ship are the ones written and checked
        except WorkspaceError as exc:
            raise ReleaseError(f"release {version}: {exc}") from None
    stale = []
    for case_id in cases:
        record = records[case_id]
        row = checked.loc[case_id] if case_id in checked.index else None
        if row is None or pd.isna(row["revision"]) or int(row["revision"]) != record.number \
                or row["sha256"] != record.sha256:
            was = "not checked" if row is None or pd.isna(row["revision"]) else f"QA checked revision " \
                f"{int(row['revision'])}" + (" with other content" if int(row["revision"]) == record.number else "")
            stale.append(f"{case_id} ({record.describe()} of record, {was})")
    if stale:
        raise ReleaseError(f"release {version}: the labels of record differ from what QA checked for "
                           f"{len(stale)} case(s): {'; '.join(stale[:5])}; run 'ctcurate qa labels {ws.root}' "
                           "again, then release")
    findings = pd.read_parquet(ws.qa.findings)
    return int(((findings["severity"] == Severity.ERROR) & findings["case"].isin(set(cases))).sum())


def _changelog(version: str, previous: dict | None, current: dict, withdrawn: dict[str, str] | None = None) -> str:
    lines = [f"# {version}", ""]
    if previous is None:
        return "\n".join(lines + [f"First release: {len(current['cases'])} cases.", ""])
    old, new = previous["cases"], current["cases"]
    gone = withdrawn or {}
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    moved = sorted(c for c in set(old) & set(new) if old[c]["split"] != new[c]["split"])
    relabelled = sorted(c for c in set(old) & set(new)
                        if (old[c].get("revision"), old[c].get("sha256")) != (new[c]["revision"], new[c]["sha256"]))
    lines += [f"Changes since {previous['version']}:", "", f"- cases added ({len(added)}): {', '.join(added) or '-'}",
              f"- cases removed ({len(removed)}): "
              + (", ".join(f"{c} (withdrawn: {gone[c]})" if c in gone else c for c in removed) or "-"),
              f"- cases moved between splits ({len(moved)}): "
              + (", ".join(f"{c} {old[c]['split']}->{new[c]['split']}" for c in moved) or "-"),
              f"- label revisions changed ({len(relabelled)}): {', '.join(relabelled) or '-'}"]
    if previous.get("label_set") != current["label_set"]:
        lines.append(f"- label set: {previous.get('label_set')} -> {current['label_set']}")
    return "\n".join(lines + [""])


_NO_LICENSE = ("No license was chosen for this release: set 'license' (an SPDX id such as CC-BY-4.0) in the "
               "datasheet answers and build a new version. Until then nobody may reuse these data.\n")


def _date_published(given: dict[str, Any], answers: Path | None) -> str:
    """The answers' ``date_published`` (ISO date), else today (UTC)."""
    value = given.get("date_published")
    if not value:
        return datetime.datetime.now(datetime.UTC).date().isoformat()
    try:
        date = datetime.date.fromisoformat(str(value))
    except ValueError:
        raise ReleaseError(f"{answers}: date_published {value!r}: expected an ISO date like 2026-11-30") from None
    if date > datetime.datetime.now(datetime.UTC).date():
        log.warning("%s: date_published %s lies in the future", answers, date)
    return date.isoformat()


def build_release(ws: Workspace, version: str, *, answers: Path | None = None, copies: bool = False,
                  force_qa: bool = False, archive_mb: float = 2000.0) -> ReleaseResult:
    """Build, scan and seal ``WS/releases/VERSION``."""
    releases = ws.releases_dir
    _semver(version)
    if not math.isfinite(archive_mb) or archive_mb <= 0:
        raise ReleaseError(f"--archive-mb {archive_mb}: expected a size in MiB above 0 (e.g. 2000)")
    earlier = sorted((p.name for p in releases.glob("*") if p.is_dir() and re.fullmatch(r"\d+\.\d+\.\d+", p.name)),
                     key=_semver)
    if ws.release(version).root.exists():
        raise ReleaseError(f"release {version}: {ws.release(version).root} exists; releases are never rebuilt, choose "
                           "a new version")
    previous = json.loads(ws.release(earlier[-1]).record.read_text()) if earlier else None
    if earlier and _semver(version) <= _semver(earlier[-1]):
        raise ReleaseError(f"release {version}: must be newer than the last release {earlier[-1]}")
    splits = list_splits(ws)
    if not splits:
        raise ReleaseError(f"release {version}: no split yet; run 'ctcurate split' first")
    split = splits[-1]
    cases = included_cases(ws)
    if cases.empty:
        raise ReleaseError(f"release {version}: no included case to release; convert cases (or check why they were "
                           "withdrawn: ctcurate filter) first")
    no_image = [c for c in cases["case_id"] if not (ws.case_dir(c) / ws.ct_name()).is_file()]
    if no_image:
        raise ReleaseError(f"release {version}: {ws.case_dir(no_image[0]) / ws.ct_name()} is missing"
                           + (f" (and in {len(no_image) - 1} other case(s))" if len(no_image) > 1 else "")
                           + "; move that case folder aside and run 'ctcurate convert' to rebuild it, then release")
    store = RevisionStore(ws)
    records = all_labels_of_record(ws, store=store)
    errors = _check_qa(ws, store, version, list(cases["case_id"]), records)
    stale = [c for c in cases["case_id"] if read_case_metadata(ws, c).get("contrast", {}).get("phase_revision")
             != records[c].number]
    if stale:  # the phase and its evidence must come from the labels this release ships
        log.warning("release %s: the contrast phase of %d case(s) was estimated on other labels than those of record "
                    "(e.g. %s); estimating it again", version, len(stale), stale[0])
        estimate_phases(ws, stale)
        cases = included_cases(ws)
    if errors and not force_qa:
        raise ReleaseError(f"release {version}: QA reports {errors} error(s) in included cases; fix them (ctcurate "
                           "qa report) or pass --force-qa, which the datasheet will state")
    current: dict[str, Any] = {"version": version, "split": split.version, "split_frozen": True,
               "label_set": f"{ws.label_set().name} "
               f"{ws.label_set().version}", "qa_errors": errors, "forced_qa": bool(errors and force_qa), "cases": {}}
    if previous is not None:
        moved = [c for c, v in previous["cases"].items() if split.assignments.get(c, v["split"]) != v["split"]]
        if moved and _semver(version)[0] == _semver(previous["version"])[0]:
            major = _semver(previous["version"])[0] + 1
            raise ReleaseError(f"release {version}: cases {moved[:5]} move to another split since "
                               f"{previous['version']}; that needs a new major version ({major}.0.0)")
    given = load_answers(answers)
    chosen = release_license(given, answers)
    creators = check_creators(given["creators"], source=str(answers)) if given.get("creators") else []
    if chosen is None:
        log.warning("release %s: no license in the answers; LICENSE will say that nobody may reuse the data", version)
    if not creators:
        log.warning("release %s: no creators in the answers; it can be built but not published to Zenodo", version)
    published = _date_published(given, answers)
    tokens = phi_token_set(ws)
    with atomic_directory(ws.release(version).root) as tmp:
        staged = ReleaseFolder(tmp, version)
        for case_id in cases["case_id"]:
            folder = ws.case_dir(case_id)
            staged.case_dir(case_id).mkdir()
            copy_file(folder / ws.ct_name(), staged.case_dir(case_id) / ws.ct_name())
            if copies:
                for spacing in ws.settings.conversion.spacings_mm:
                    if (folder / ws.ct_name(spacing)).is_file():
                        copy_file(folder / ws.ct_name(spacing), staged.case_dir(case_id) / ws.ct_name(spacing))
            source = _labels(ws, records[case_id], staged.masks_dir(case_id))
            current["cases"][case_id] = {"split": split.assignments.get(case_id, ""), "labels": source,
                                         "revision": records[case_id].number, "sha256": records[case_id].sha256}
        kinds = {c: study_type(present_structures(records[c].path), ws.label_set()) for c in cases["case_id"]}
        atomic_write_text(staged.meta_csv, release_table(cases, kinds).to_csv(index=False, sep=";"))
        atomic_write_text(staged.split, split.published().to_json())  # frozen by this release
        if ws.nnunet_split.is_file():  # none when the split has fewer than two training cases
            copy_file(ws.nnunet_split, staged.nnunet_split)
        shipped = Shipped(tuple(s for s in ws.settings.conversion.spacings_mm if copies and any(
            (ws.case_dir(c) / ws.ct_name(s)).is_file() for c in cases["case_id"])), release=True)
        sheet = build_datasheet(ws, answers, staged.datasheet_dir, shipped)
        if current["forced_qa"]:
            note = f"**This release was built with {errors} QA error(s) outstanding (forced).**\n\n## Part 1: fields"
            for page in (sheet.markdown, sheet.html):
                atomic_write_text(page, page.read_text().replace("## Part 1: fields", note, 1)
                                  .replace("<h2>Part 1: fields</h2>", f"<p><b>{note.splitlines()[0].strip('*')}"
                                           "</b></p><h2>Part 1: fields</h2>", 1))
        current["answers"] = {k: given[k] for k in ("license", "creators", "keywords", "related_identifiers")
                              if given.get(k)}
        if chosen is not None:
            current["answers"]["license"] = chosen.id
        if creators:
            current["answers"]["creators"] = creators
        current["date_published"] = published
        atomic_write_text(staged.license, chosen.text if chosen is not None else _NO_LICENSE)
        withdrawn = {w.case_id: reason_label(w.reason) for w in withdrawn_cases(ws)}
        atomic_write_text(staged.changelog, _changelog(version, previous, current, withdrawn))
        atomic_write_text(staged.record, json.dumps(current, indent=1))
        archives = write_archives(staged, cases["case_id"], archive_mb)  # read back and compared
        rai_text = {k: sheet.fields.get(v, ("", ""))[1] or sheet.sections.get(v, "") for k, v in RAI_FIELDS.items()}
        build_croissant(tmp, name=sheet.fields["Dataset Name"][0], description=sheet.fields["Composition"][0],
                        version=version, license_url=chosen.url if chosen is not None else "", rai=rai_text,
                        creators=creators, date_published=published, citation=str(given.get("cite_as") or ""),
                        url=str(given.get("url") or ""), keywords=[str(k) for k in given.get("keywords") or []])
        hits = scan_for_phi(tmp, tokens)  # every file but the zip parts, which hold copies of the scanned ones
        if hits:
            shown = "; ".join(f"{f}: {t!r}" for f, t in hits[:5])
            raise ReleaseError(f"release {version}: identifying values found, nothing was released: {shown}; remove "
                               "them at their source (answers file, case metadata) and build again")
        write_checksums(staged)
        # last, with everything sealed: a kill before the rename leaves it frozen and the rerun builds the same
        # release on it; always, so that a kill between the version's file and splits.json is mended
        freeze_split(ws, split.version)
    archives = [ws.release(version).root / p.relative_to(tmp) for p in archives]
    log.info("release %s: %d cases, %d archive(s)", version, len(cases), len(archives))
    return ReleaseResult(ws.release(version).root, len(cases), archives, bool(current["forced_qa"]))
