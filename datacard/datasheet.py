"""``ctcurate datasheet``: a Markdown and HTML datasheet whose numbers come from the workspace.

Part 1 follows the seed field list (Dataset Name ... Partitioning Scheme) and the Partitions table
(Subset Name, Subset Description, Site Count, Patient Count, Number Instances, Age, Sex, Demographic,
Criterion, Dataset Availability, Dataset License); part 2 the seven sections of "Datasheets for
Datasets". Each field joins what is computed (:mod:`datacard.facts`) with the steward's free text from
a YAML file (template: :data:`ANSWERS_TEMPLATE`); a field with neither is listed as missing, never
filled in. Figures: the exclusion flow, age histogram and sex per split, structures' presence.
"""

from __future__ import annotations

import contextlib
import difflib
import html
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from matplotlib.figure import Figure

from curation import Workspace
from curation.atomic import atomic_write_bytes, atomic_write_text, copy_file
from curation.errors import CtcurateError, DatasheetError
from curation.workspace.folders import DATASHEET_HTML, DATASHEET_MARKDOWN

from .facts import DatasetFacts, gather_facts, partition_rows, ranges
from .license import spdx_id

__all__ = ["Shipped", "SEED_FIELDS", "PARTITION_COLUMNS", "SECTIONS", "ANSWERS_TEMPLATE", "Datasheet",
           "build_datasheet", "load_answers"]

log = logging.getLogger(__name__)
ANSWERS_TEMPLATE = Path(__file__).parent / "templates" / "answers.yaml"
SEED_FIELDS = ("Dataset Name", "Imaging Details", "File Format", "Resolution", "Burned In PHI", "Labeling",
               "Missing Information", "Relationships Between Instances", "Noise", "External Data",
               "Confidentiality", "Subpopulations", "Re Identification", "Collection Process", "Composition",
               "Number Of Instances", "Representativeness", "Verification", "Motivation", "Purpose",
               "Partitioning Scheme")
PARTITION_COLUMNS = ("Subset Name", "Subset Description", "Site Count", "Patient Count", "Number Instances", "Age",
                     "Sex", "Demographic", "Criterion", "Dataset Availability", "Dataset License")
SECTIONS = ("Motivation", "Composition", "Collection Process", "Preprocessing/Cleaning/Labeling", "Uses",
            "Distribution", "Maintenance")
MISSING = "MISSING"



def _verification(f: DatasetFacts) -> str:
    """The QA statement: findings by severity, and whether they were found on the labels of record."""
    if not f.qa and not f.qa_current:
        return "no QA run recorded"
    counts = ", ".join(f"{k} {v}" for k, v in f.qa.items()) or "none"
    n = len(f.cases)
    on = (f"checked on the labels of record (the labels released) of all {n} cases" if f.qa_current == n else
          f"checked on the labels of record of {f.qa_current} of {n} cases; the others changed since QA ran")
    return f"QA findings by severity: {counts}; {on}"


def load_answers(path: Path | None) -> dict[str, Any]:
    """The steward's answers (the template's shape); an absent file means no answers yet."""
    if path is None or not Path(path).is_file():
        return {}
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        raise DatasheetError(f"{path}: not valid YAML{at} ({getattr(exc, 'problem', None) or 'unreadable'}); start "
                             f"from {ANSWERS_TEMPLATE}") from None
    if not isinstance(data, dict):
        raise DatasheetError(f"{path}: expected a mapping of answers like {ANSWERS_TEMPLATE}")
    _check_answers(data, Path(path))
    return data


def _unknown(keys: Any, known: tuple[str, ...] | list[str], what: str, path: Path) -> None:
    for key in keys:
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}"
            raise DatasheetError(f"{path}: unknown {what} {key!r}, which nothing would read; {hint}")


def _check_answers(data: dict[str, Any], path: Path) -> None:
    """Refuse keys nothing reads (a misspelt ``licence``) and values of the wrong shape (keywords as a string)."""
    template = yaml.safe_load(ANSWERS_TEMPLATE.read_text())
    _unknown(data, list(template), "answer", path)
    for key in ("creators", "keywords", "related_identifiers"):
        if data.get(key) and not isinstance(data[key], list):
            raise DatasheetError(f"{path}: {key} must be a list (one '- ...' line per entry), found "
                                 f"{type(data[key]).__name__} {str(data[key])[:40]!r}")
    if not all(isinstance(k, str) for k in data.get("keywords") or []):
        raise DatasheetError(f"{path}: keywords must be words or phrases (text), found {data['keywords']!r}")
    for key, known in (("fields", [*SEED_FIELDS, "Demographic"]), ("subsets", ["train", "val", "test"]),
                       ("sections", list(SECTIONS))):
        if data.get(key) and not isinstance(data[key], dict):
            raise DatasheetError(f"{path}: {key} must be a mapping like the template's, found "
                                 f"{type(data[key]).__name__}")
        _unknown(data.get(key) or {}, known, key.removesuffix("s"), path)


def _text(value: Any) -> str:
    return str(value).strip() if value else ""


def _frame(sample: dict[str, Any]) -> str:
    """Where the draw came from, for a sample drawn from a PACS query (the PACS's address stays private)."""
    frame = sample.get("frame") or {}
    protocol = {"dicomweb": "DICOMweb", "dimse": "DIMSE (C-FIND, C-GET)"}.get(frame.get("source", ""))
    if protocol is None:
        return ""
    dates = f"study dates {frame.get('date_from') or 'any'} to {frame.get('date_to') or 'any'}"
    narrower = "".join(f", {k.replace('_', ' ')} {frame[k]!r}" for k in ("description", "body_part") if frame.get(k))
    return (f" from the {sample.get('frame_size', '?')} {frame.get('modality', 'CT')} studies a PACS query returned "
            f"({dates}{narrower}; queried and retrieved over {protocol}, series judged from their metadata before "
            "retrieval)")


@dataclass(frozen=True)
class Shipped:
    """What a release holds, which the datasheet states: the CT grids (``native`` and isotropic spacings in mm)."""

    copies_mm: tuple[float, ...] = ()
    release: bool = False  # built for a release, which freezes the split it ships

    def __post_init__(self) -> None:
        object.__setattr__(self, "copies_mm", tuple(sorted(float(s) for s in self.copies_mm)))
        if any(not s > 0 for s in self.copies_mm):
            raise DatasheetError(f"shipped copies {self.copies_mm}: expected spacings in mm above 0")


def _formats(f: DatasetFacts, shipped: Shipped) -> str:
    copies = "".join(f", an isotropic copy at {s:g} mm (sNNNN/ct_{s:g}mm.nrrd)" for s in shipped.copies_mm)
    return (f"NRRD (gzip), int16 Hounsfield units, LPS patient coordinates: per exam the CT on its native grid "
            f"(sNNNN/ct.nrrd){copies}; labels as one binary NRRD mask per structure on the native grid "
            f"(sNNNN/segmentations/<structure>.nrrd, all {len(f.label_set)} structures of the label set, empty "
            "ones included); metadata in meta.csv (semicolon separated, the TotalSegmentator dataset's columns "
            "first); splits in splits.json and nnU-Net's splits_final.json")


def _phases(f: DatasetFacts) -> str:
    """Phases with their evidence: how many exams, DICOM tags naming an agent, the median HU that decided."""
    parts = []
    for phase, e in sorted(f.phases.items(), key=lambda kv: -kv[1]["exams"]):
        hu = ", ".join(f"{name} {value:.0f}" for name, value in list(e["hu"].items())[:4])
        tags = f"DICOM names a contrast agent for {e['tagged']}" if e["tagged"] else "no agent in the DICOM tags"
        if phase == "native" and e["tagged"]:
            tags += ", against the HU"
        parts.append(f"{phase} {e['exams']} ({tags}" + (f"; median HU {hu}" if hu else "") + ")")
    return ("contrast phases estimated from the median HU inside labelled structures, the DICOM contrast tags "
            "as prior: " + "; ".join(parts)) if parts else "contrast phases: not estimated"


def _composition(f: DatasetFacts) -> str:
    c = f.cases
    text = (f"{len(c)} CT exams of {c['patient_pseudonym'].nunique()} patients from {c['site'].nunique()} site(s); "
            f"label set of {len(f.label_set)} structures")
    if f.present:
        counts = sorted(len(v) for v in f.present.values())
        never = [n for n, share in f.presence.items() if share == 0]
        text += (f", of which a median of {int(np.median(counts))} (range {counts[0]}-{counts[-1]}) hold voxels in "
                 f"an exam")
        if never:
            text += f"; empty in every exam ({len(never)}): {', '.join(never[:12])}" + (" ..." if len(never) > 12
                                                                                          else "")
    return text


def _computed(f: DatasetFacts, shipped: Shipped) -> dict[str, str]:
    c = f.cases
    scanner_names = c["manufacturer"].fillna("").astype(str) + " " + c["model"].fillna("").astype(str)
    scanners = {str(k): int(n) for k, n in scanner_names.value_counts().items()}
    excluded = "; ".join(f"{k}: {v}" for k, v in f.excluded.items()) or "none"
    burned = f.excluded.get("burned-in annotation", 0) + f.excluded.get("screenshot / report", 0)
    missing_age, missing_sex = int(c["age"].isna().sum()), int((c["sex"].fillna("") == "").sum())
    patients = c.groupby("patient_pseudonym").size()
    categories = ", ".join(f"{n} {k}" for k, n in f.categories.items())
    method = f.sample.get("method", "")
    return {
        "Imaging Details": f"CT; {len(scanners)} scanner model(s): " + ", ".join(
            f"{k} ({n})" for k, n in scanners.items()) + f"; tube voltage {ranges(c, 'kvp', 'kV')}; "
            f"slice thickness {ranges(c, 'slice_thickness_mm', 'mm')}; " + _phases(f),
        "File Format": _formats(f, shipped),
        "Resolution": f"native in-plane spacing {ranges(c, 'spacing_x_mm', 'mm')}, slice spacing "
                      f"{ranges(c, 'spacing_z_mm', 'mm')}" + "".join(
                          f"; isotropic {s:g} mm copy resampled from the native grid (linear)"
                          for s in shipped.copies_mm),
        "Burned In PHI": f"{burned} exam(s) excluded by the screenshot / burned-in annotation rules; released "
                         "images are re-checked for identifiers before a release is sealed",
        "Labeling": f"label set {f.label_set.name} {f.label_set.version}: {len(f.label_set)} structures "
                    f"({categories}); revisions: " + ", ".join(f"{v} by {k}" for k, v in f.revisions.items())
                    + "; " + ", ".join(f"{k}: {v}" for k, v in f.reviews.items()),
        "Missing Information": f"age missing for {missing_age} case(s), sex for {missing_sex}",
        "Relationships Between Instances": f"{int((patients > 1).sum())} patient(s) have more than one exam; all "
                                           "exams of a patient are in the same split",
        "Subpopulations": "sex: " + ", ".join(f"{k} {int(v)}" for k, v in c["sex"].fillna("unknown").value_counts()
                                              .items()) + f"; age bands of 20 years; {c['site'].nunique()} site(s)",
        "Collection Process": f"{f.sampled} CT exams sampled at random{_frame(f.sample)} ({method}; seed "
                              f"{f.sample.get('seed', '?')}); excluded: {excluded}; {f.included} included",
        "Composition": _composition(f),
        "Number Of Instances": f"{len(c)} exams",
        "Verification": _verification(f),
        "Partitioning Scheme": (f"split version {f.split_version.get('version')}: ratios "
                                f"{'/'.join(f'{r:.0%}' for r in f.split_version.get('ratios', []))}, by patient, "
                                f"stratified on {', '.join(f.split_version.get('stratify', [])) or 'nothing'}, seed "
                                f"{f.split_version.get('seed')}; "
                                + ("frozen: later versions keep these assignments" if f.split_version.get("frozen")
                                   or shipped.release else "not frozen yet (a release freezes it)"))
        if f.split_version else "",
    }


@dataclass(frozen=True)
class Datasheet:
    fields: dict[str, tuple[str, str]]          # field -> (computed, answer)
    partitions: list[dict[str, str]]
    sections: dict[str, str]
    missing: list[str]
    figures: dict[str, str]
    markdown: Path
    html: Path


def _figures(f: DatasetFacts, ws: Workspace, out: Path) -> dict[str, str]:
    figures = {}
    flow = ws.flow_figure.with_suffix(".png")
    if flow.is_file():
        copy_file(flow, out / "exclusion_flow.png")
        figures["Exclusion flow"] = "exclusion_flow.png"
    splits = [s for s in ("train", "val", "test") if (f.cases["split"] == s).any()] or [""]
    fig = Figure(figsize=(9, 3.2))
    (ages, sexes) = fig.subplots(1, 2)
    for s in splits:
        part = f.cases[f.cases["split"] == s] if s else f.cases
        ages.hist(part["age"].dropna(), bins=range(0, 105, 5), alpha=0.6, label=s or "all")
        counts = part["sex"].fillna("unknown").value_counts()
        sexes.bar([f"{s or 'all'} {k}" for k in counts.index], counts.values)
    ages.set_xlabel("age (years)")
    ages.legend()
    sexes.set_ylabel("exams")
    sexes.tick_params(axis="x", rotation=45)
    figures["Age and sex per split"] = _save(fig, out / "age_sex.png")
    if f.presence:
        fig = Figure(figsize=(9, max(2.5, 0.16 * len(f.presence))))
        ax = fig.subplots()
        names = list(f.presence)
        ax.barh(names, [f.presence[n] * 100 for n in names])
        for row, name in enumerate(names):  # an empty structure has no bar: say so
            if f.presence[name] == 0:
                ax.text(0.5, row, "0 %", va="center", fontsize=6, color="#b00")
        ax.set_xlim(0, 100)
        ax.set_xlabel("% of exams whose labels hold the structure")
        ax.tick_params(axis="y", labelsize=6)
        figures["Structures' presence"] = _save(fig, out / "presence.png")
    return figures


def _save(fig: Any, path: Path) -> str:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    atomic_write_bytes(path, buffer.getvalue())
    return path.name


def build_datasheet(ws: Workspace, answers_path: Path | None = None, out: Path | None = None,
                    shipped: Shipped | None = None) -> Datasheet:
    """Compute the facts, join the answers, write ``datasheet.md``, ``datasheet.html`` and the figures.

    ``shipped`` says what the release holds (default: what ``ctcurate release`` ships without ``--copies``).
    """
    answers = load_answers(answers_path)
    facts = gather_facts(ws)
    out = out or ws.datasheet_dir
    out.mkdir(parents=True, exist_ok=True)
    computed = _computed(facts, shipped or Shipped())
    given = answers.get("fields") or {}
    name = _text(answers.get("dataset_name")) or facts.name
    fields = {"Dataset Name": (name, "")}
    for field_name in SEED_FIELDS[1:]:
        fields[field_name] = (computed.get(field_name, ""), _text(given.get(field_name)))
    missing = [f"field: {k}" for k, (a, b) in fields.items() if not a and not b]
    license_, availability = _text(answers.get("license")), _text(answers.get("availability"))
    if license_:  # as SPDX spells it, like LICENSE, croissant.json and release.json (the release refuses a wrong id)
        with contextlib.suppress(CtcurateError):
            license_ = spdx_id(license_)
    subsets = answers.get("subsets") or {}
    split_rule = "by patient, stratified, seeded" if facts.split_version else ""
    partitions = []
    for row in partition_rows(facts):
        description = _text(subsets.get(row["Subset Name"])) or ("all included exams" if row["Subset Name"] == "all"
                                                                  else "")
        partitions.append({"Subset Name": row["Subset Name"], "Subset Description": description or MISSING,
                           "Site Count": row["Site Count"], "Patient Count": row["Patient Count"],
                           "Number Instances": row["Number Instances"], "Age": row["Age"], "Sex": row["Sex"],
                           "Demographic": _text(given.get("Demographic")) or "age and sex as given",
                           "Criterion": split_rule or ("-" if row["Subset Name"] == "all" else MISSING),
                           "Dataset Availability": availability or MISSING, "Dataset License": license_ or MISSING})
    for column in ("Subset Description", "Criterion", "Dataset Availability", "Dataset License"):
        if any(r[column] == MISSING for r in partitions):
            missing.append(f"partitions: {column}")
    sections = {s: _text((answers.get("sections") or {}).get(s)) for s in SECTIONS}
    missing += [f"section: {s}" for s, text in sections.items() if not text]
    figures = _figures(facts, ws, out)
    sheet = Datasheet(fields, partitions, sections, missing, figures, out / DATASHEET_MARKDOWN, out / DATASHEET_HTML)
    atomic_write_text(sheet.markdown, _markdown(sheet, name))
    atomic_write_text(sheet.html, _html(sheet, name))
    log.info("datasheet: %s (%d missing answers)", sheet.markdown, len(missing))
    return sheet


def _field_text(computed: str, answer: str) -> str:
    """The computed statement, and the steward's words marked as theirs where both exist."""
    if computed and answer:
        return f"{computed}. Steward's note: {answer}"
    return computed or answer or MISSING


def _markdown(sheet: Datasheet, name: str) -> str:
    lines = [f"# Datasheet: {name}", "", "## Part 1: fields", ""]
    for field_name, (computed, answer) in sheet.fields.items():
        lines += [f"**{field_name}**: {_field_text(computed, answer)}", ""]
    lines += ["### Partitions", "", "| " + " | ".join(PARTITION_COLUMNS) + " |",
              "|" + "---|" * len(PARTITION_COLUMNS)]
    lines += ["| " + " | ".join(row[c] for c in PARTITION_COLUMNS) + " |" for row in sheet.partitions]
    lines += ["", "## Part 2: Datasheets for Datasets", ""]
    for section, text in sheet.sections.items():
        lines += [f"### {section}", "", text or MISSING, ""]
    lines += ["## Figures", ""] + [f"![{title}]({file})" for title, file in sheet.figures.items()]
    lines += ["", "## Missing answers", ""] + ([f"- {m}" for m in sheet.missing] or ["none"])
    return "\n".join(lines) + "\n"


def _html(sheet: Datasheet, name: str) -> str:
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Datasheet: {e(name)}</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:auto}td,th{border:1px solid #ccc;"
             "padding:3px}table{border-collapse:collapse}.missing{color:#b00}</style></head><body>",
             f"<h1>Datasheet: {e(name)}</h1><h2>Part 1: fields</h2><dl>"]
    for field_name, (computed, answer) in sheet.fields.items():
        text = _field_text(computed, answer)
        css = " class='missing'" if text == MISSING else ""
        parts.append(f"<dt><b>{e(field_name)}</b></dt><dd{css}>{e(text)}</dd>")
    parts.append("</dl><h3>Partitions</h3><table><tr>" + "".join(f"<th>{e(c)}</th>" for c in PARTITION_COLUMNS)
                 + "</tr>")
    for row in sheet.partitions:
        parts.append("<tr>" + "".join(f"<td>{e(row[c])}</td>" for c in PARTITION_COLUMNS) + "</tr>")
    parts.append("</table><h2>Part 2: Datasheets for Datasets</h2>")
    for section, text in sheet.sections.items():
        parts.append(f"<h3>{e(section)}</h3><p{' class=missing' if not text else ''}>{e(text or MISSING)}</p>")
    parts.append("<h2>Figures</h2>" + "".join(f"<figure><img src='{e(f)}' alt='{e(t)}' style='max-width:100%'>"
                                              f"<figcaption>{e(t)}</figcaption></figure>"
                                              for t, f in sheet.figures.items()))
    parts.append("<h2>Missing answers</h2><ul>" + "".join(f"<li>{e(m)}</li>" for m in sheet.missing) + "</ul>")
    return "".join(parts) + "</body></html>\n"
