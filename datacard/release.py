"""``ctcurate release VERSION``: a sealed, checksummed, PHI-scanned release folder in the reference layout.

``WS/releases/VERSION/`` holds per included case ``sNNNN/ct.nrrd`` and ``sNNNN/segmentations/
<structure>.nrrd`` (from the latest approved revision, else the latest revision, else the case's own
label files), optionally the isotropic copies, ``meta.csv`` (semicolon separated), the split
(``splits.json``, ``splits_final.json``), the datasheet, ``croissant.json``, ``LICENSE``, ``CHANGELOG.md``
(cases added, removed and moved, label revisions changed, label-set changes since the previous release)
and ``SHA256SUMS`` (``sha256sum -c`` format), and zip archives cut to a size limit for upload.

Versions follow semantic versioning: a release must be newer than the last, and moving any case to
another split needs a new major version. The build is refused while QA reports errors (unless forced,
which the datasheet then states) and when the PHI scan finds any identifier of the private catalog
(names, ids, UIDs, dates, institutions) in any file. The folder is built aside and renamed into place
only when it passed; the split version it used is frozen.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from curation import Workspace
from curation.annotation.revisions import ReviewStatus, RevisionStore
from curation.atomic import atomic_directory, atomic_write_text
from curation.dicom.deid import PHI_COLUMNS
from curation.errors import CtcurateError
from curation.labels.labelmap import list_mask_files, read_seg_nrrd, write_mask_folder

from .croissant import RAI_FIELDS, build_croissant, sha256_of
from .datasheet import build_datasheet, load_answers
from .split import _semver, freeze_split, included_cases, list_splits

__all__ = ["ReleaseError", "ReleaseResult", "build_release", "scan_for_phi", "phi_token_set"]

log = logging.getLogger(__name__)
_TEXT = {".csv", ".json", ".md", ".html", ".txt", ".yaml", ""}


class ReleaseError(CtcurateError):
    """A release that may not be built: version, QA errors, PHI found."""


@dataclass(frozen=True)
class ReleaseResult:
    folder: Path
    cases: int
    archives: list[Path]
    forced_qa: bool


def phi_token_set(ws: Workspace) -> set[str]:
    """Identifying values of every catalogued series (from the private part).

    Whole values of every identifying field (names, ids, UIDs, dates, times, accession numbers,
    institution and station names), and the parts of person names of five letters or more; shorter
    parts and the words of institution names would match ordinary text.
    """
    series = pd.read_parquet(ws.require(ws.series_table, "scan"))
    tokens: set[str] = set()
    for row in series.to_dict("records"):
        for column in PHI_COLUMNS:
            value = row.get(column)
            text = "" if value is None or (isinstance(value, float) and value != value) else str(value).strip()
            if len(text) >= 4 and (not text.isdigit() or len(text) >= 6):
                tokens.add(text)
            if column in ("patient_name", "referring_physician"):
                tokens |= {part for part in re.split(r"[\^ ,]+", text) if len(part) >= 5 and not part.isdigit()}
    return tokens


def scan_for_phi(folder: Path, tokens: set[str]) -> list[tuple[str, str]]:
    """(file, token) for every identifying token found in a text file, an NRRD header or a PNG's text."""
    patterns = [(t, re.compile(rf"(?<![0-9A-Za-z]){re.escape(t)}(?![0-9A-Za-z])", re.IGNORECASE))
                for t in sorted(tokens)]
    hits = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".nrrd":
            with path.open("rb") as handle:
                text = handle.read(1 << 16).split(b"\n\n", 1)[0].decode("latin-1")
        elif path.suffix in _TEXT or path.suffix == ".png":
            text = path.read_bytes().decode("latin-1")
        else:
            continue
        for token, pattern in patterns:
            if pattern.search(text):
                hits.append((path.relative_to(folder).as_posix(), token))
    return hits


def _labels(ws: Workspace, store: RevisionStore, case_id: str, out: Path) -> str:
    """Write the case's masks into ``out``; return where they came from."""
    revision = store.latest_with_status(case_id, ReviewStatus.APPROVED) or store.latest(case_id)
    if revision is not None:
        labels, _ = read_seg_nrrd(store.path(revision))
        write_mask_folder(out, labels, ws.label_set())
        return f"revision {revision.number} ({store.statuses(case_id)[revision.number].value})"
    if ws.segmentation_file(case_id).is_file():
        labels, _ = read_seg_nrrd(ws.segmentation_file(case_id))
        write_mask_folder(out, labels, ws.label_set())
        return "segmentation.seg.nrrd"
    masks = list_mask_files(ws.masks_dir(case_id))
    if masks:
        out.mkdir(parents=True, exist_ok=True)
        for path in masks.values():
            shutil.copy(path, out / path.name)
        return "segmentations/"
    raise ReleaseError(f"case {case_id}: no labels (no revision, no segmentation file); pre-segment or "
                       "exclude the case before a release")


def _changelog(version: str, previous: dict | None, current: dict) -> str:
    lines = [f"# {version}", ""]
    if previous is None:
        return "\n".join(lines + [f"First release: {len(current['cases'])} cases.", ""])
    old, new = previous["cases"], current["cases"]
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    moved = sorted(c for c in set(old) & set(new) if old[c]["split"] != new[c]["split"])
    relabelled = sorted(c for c in set(old) & set(new) if old[c]["labels"] != new[c]["labels"])
    lines += [f"Changes since {previous['version']}:", "", f"- cases added ({len(added)}): {', '.join(added) or '-'}",
              f"- cases removed ({len(removed)}): {', '.join(removed) or '-'}",
              f"- cases moved between splits ({len(moved)}): "
              + (", ".join(f"{c} {old[c]['split']}->{new[c]['split']}" for c in moved) or "-"),
              f"- label revisions changed ({len(relabelled)}): {', '.join(relabelled) or '-'}"]
    if previous.get("label_set") != current["label_set"]:
        lines.append(f"- label set: {previous.get('label_set')} -> {current['label_set']}")
    return "\n".join(lines + [""])


def _archives(folder: Path, limit_mb: float) -> list[Path]:
    """Zip the case folders into parts of at most ``limit_mb`` (a case is never split)."""
    parts: list[list[Path]] = [[]]
    size = 0
    limit = limit_mb * 2**20
    for case in sorted(p for p in folder.iterdir() if p.is_dir() and re.fullmatch(r"s\d+", p.name)):
        case_size = sum(f.stat().st_size for f in case.rglob("*") if f.is_file())
        if parts[-1] and size + case_size > limit:
            parts.append([])
            size = 0
        parts[-1].append(case)
        size += case_size
    out = []
    target = folder.parent / f"{folder.name}-archives"
    target.mkdir(exist_ok=True)
    for n, cases in enumerate(p for p in parts if p):
        path = target / f"{folder.name}-part{n + 1:02d}.zip"
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:  # NRRDs are gzip already
            for case in cases:
                for file in sorted(case.rglob("*")):
                    if file.is_file():
                        archive.write(file, file.relative_to(folder).as_posix())
        out.append(path)
    return out


def build_release(ws: Workspace, version: str, *, answers: Path | None = None, copies: bool = False,
                  force_qa: bool = False, archive_mb: float = 2000.0) -> ReleaseResult:
    """Build, scan and seal ``WS/releases/VERSION``."""
    releases = ws.root / "releases"
    _semver(version)
    earlier = sorted((p.name for p in releases.glob("*") if p.is_dir() and re.fullmatch(r"\d+\.\d+\.\d+", p.name)),
                     key=_semver)
    if (releases / version).exists():
        raise ReleaseError(f"release {version}: {releases / version} exists; releases are never rebuilt, choose "
                           "a new version")
    previous = json.loads((releases / earlier[-1] / "release.json").read_text()) if earlier else None
    if earlier and _semver(version) <= _semver(earlier[-1]):
        raise ReleaseError(f"release {version}: must be newer than the last release {earlier[-1]}")
    splits = list_splits(ws)
    if not splits:
        raise ReleaseError(f"release {version}: no split yet; run 'ctcurate split' first")
    split = splits[-1]
    cases = included_cases(ws)
    errors = 0
    if (ws.qa_dir / "label_findings.parquet").is_file():
        findings = pd.read_parquet(ws.qa_dir / "label_findings.parquet")
        errors = int(((findings["severity"] == "error") & findings["case"].isin(set(cases["case_id"]))).sum())
    if errors and not force_qa:
        raise ReleaseError(f"release {version}: QA reports {errors} error(s) in included cases; fix them (ctcurate "
                           "qa report) or pass --force-qa, which the datasheet will state")
    store = RevisionStore(ws)
    current: dict[str, Any] = {"version": version, "split": split.version, "label_set": f"{ws.label_set().name} "
               f"{ws.label_set().version}", "qa_errors": errors, "forced_qa": bool(errors and force_qa), "cases": {}}
    if previous is not None:
        moved = [c for c, v in previous["cases"].items() if split.assignments.get(c, v["split"]) != v["split"]]
        if moved and _semver(version)[0] == _semver(previous["version"])[0]:
            major = _semver(previous["version"])[0] + 1
            raise ReleaseError(f"release {version}: cases {moved[:5]} move to another split since "
                               f"{previous['version']}; that needs a new major version ({major}.0.0)")
    tokens = phi_token_set(ws)
    with atomic_directory(releases / version) as tmp:
        for case_id in cases["case_id"]:
            folder = ws.case_dir(case_id)
            (tmp / case_id).mkdir()
            shutil.copy(folder / ws.ct_name(), tmp / case_id / "ct.nrrd")
            if copies:
                for spacing in ws.settings.conversion.spacings_mm:
                    if (folder / ws.ct_name(spacing)).is_file():
                        shutil.copy(folder / ws.ct_name(spacing), tmp / case_id / ws.ct_name(spacing))
            source = _labels(ws, store, case_id, tmp / case_id / "segmentations")
            current["cases"][case_id] = {"split": split.assignments.get(case_id, ""), "labels": source}
        meta = cases.copy()
        atomic_write_text(tmp / "meta.csv", meta.to_csv(index=False, sep=";"))
        for name in ("splits.json", "splits_final.json"):
            shutil.copy(ws.releasable / "splits" / name, tmp / name)
        sheet = build_datasheet(ws, answers, tmp / "datasheet")
        if current["forced_qa"]:
            note = f"**This release was built with {errors} QA error(s) outstanding (forced).**\n\n## Part 1: fields"
            for page in (sheet.markdown, sheet.html):
                atomic_write_text(page, page.read_text().replace("## Part 1: fields", note, 1)
                                  .replace("<h2>Part 1: fields</h2>", f"<p><b>{note.splitlines()[0].strip('*')}"
                                           "</b></p><h2>Part 1: fields</h2>", 1))
        given = load_answers(answers)
        license_id = str(given.get("license") or "")
        current["answers"] = {k: given[k] for k in ("license", "creators", "keywords", "related_identifiers")
                              if given.get(k)}
        atomic_write_text(tmp / "LICENSE", (f"{license_id}\n" if license_id else "LICENSE MISSING: set 'license' in "
                                            "the datasheet answers\n"))
        atomic_write_text(tmp / "CHANGELOG.md", _changelog(version, previous, current))
        atomic_write_text(tmp / "release.json", json.dumps(current, indent=1))
        rai_text = {k: sheet.fields.get(v, ("", ""))[1] or sheet.sections.get(v, "") for k, v in RAI_FIELDS.items()}
        build_croissant(tmp, name=sheet.fields["Dataset Name"][0], description=sheet.fields["Composition"][0],
                        version=version, license_=license_id, rai=rai_text)
        hits = scan_for_phi(tmp, tokens)
        if hits:
            shown = "; ".join(f"{f}: {t!r}" for f, t in hits[:5])
            raise ReleaseError(f"release {version}: identifying values found, nothing was released: {shown}; remove "
                               "them at their source (answers file, case metadata) and build again")
        sums = [f"{sha256_of(p)}  {p.relative_to(tmp).as_posix()}" for p in sorted(tmp.rglob("*")) if p.is_file()]
        atomic_write_text(tmp / "SHA256SUMS", "\n".join(sums) + "\n")
    if not split.frozen:
        freeze_split(ws, split.version)
    archives = _archives(releases / version, archive_mb)
    log.info("release %s: %d cases, %d archive(s)", version, len(cases), len(archives))
    return ReleaseResult(releases / version, len(cases), archives, bool(current["forced_qa"]))
