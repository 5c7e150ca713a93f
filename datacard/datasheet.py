"""``ctcurate datasheet``: a Markdown and HTML datasheet whose numbers come from the workspace.

Part 1 follows the seed field list (Dataset Name ... Partitioning Scheme) and the Partitions table
(Subset Name, Subset Description, Site Count, Patient Count, Number Instances, Age, Sex, Demographic,
Criterion, Dataset Availability, Dataset License); part 2 the seven sections of "Datasheets for
Datasets". Each field joins what is computed (:mod:`datacard.facts`) with the steward's free text from
a YAML file (template: :data:`ANSWERS_TEMPLATE`); a field with neither is listed as missing, never
filled in. Figures: the exclusion flow, age histogram and sex per split, structures' presence.
"""

from __future__ import annotations

import html
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from matplotlib.figure import Figure

from curation import Workspace
from curation.atomic import atomic_write_bytes, atomic_write_text, copy_file
from curation.errors import DatasheetError
from curation.workspace.folders import DATASHEET_HTML, DATASHEET_MARKDOWN

from .facts import DatasetFacts, gather_facts, partition_rows, ranges

__all__ = ["SEED_FIELDS", "PARTITION_COLUMNS", "SECTIONS", "ANSWERS_TEMPLATE", "Datasheet", "build_datasheet",
           "load_answers"]

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
        raise DatasheetError(f"{path}: not valid YAML ({exc}); start from {ANSWERS_TEMPLATE}") from None
    if not isinstance(data, dict):
        raise DatasheetError(f"{path}: expected a mapping of answers like {ANSWERS_TEMPLATE}")
    return data


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


def _computed(f: DatasetFacts) -> dict[str, str]:
    c = f.cases
    scanner_names = c["manufacturer"].fillna("").astype(str) + " " + c["model"].fillna("").astype(str)
    scanners = {str(k): int(n) for k, n in scanner_names.value_counts().items()}
    phases = c["contrast_phase"].fillna("unknown").value_counts()
    excluded = "; ".join(f"{k}: {v}" for k, v in f.excluded.items()) or "none"
    burned = f.excluded.get("burned-in annotation", 0) + f.excluded.get("screenshot / report", 0)
    missing_age, missing_sex = int(c["age"].isna().sum()), int((c["sex"].fillna("") == "").sum())
    patients = c.groupby("patient_pseudonym").size()
    categories = ", ".join(f"{n} {k}" for k, n in f.categories.items())
    method = f.sample.get("method", "")
    return {
        "Imaging Details": f"CT; {len(scanners)} scanner model(s): " + ", ".join(
            f"{k} ({n})" for k, n in scanners.items()) + f"; tube voltage {ranges(c, 'kvp', 'kV')}; "
            f"slice thickness {ranges(c, 'slice_thickness_mm', 'mm')}; contrast phases: "
            + ", ".join(f"{k} {v}" for k, v in phases.items()),
        "File Format": "NRRD (gzip), int16 Hounsfield units, LPS patient coordinates; labels as one NRRD mask per "
                       "structure (segmentations/<structure>.nrrd) and a Slicer .seg.nrrd; metadata in meta.csv "
                       "(semicolon separated)",
        "Resolution": f"native in-plane spacing {ranges(c, 'spacing_x_mm', 'mm')}, slice spacing "
                      f"{ranges(c, 'spacing_z_mm', 'mm')}; isotropic copies resampled from the native grid",
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
        "Composition": f"{len(c)} CT exams of {c['patient_pseudonym'].nunique()} patients from "
                       f"{c['site'].nunique()} site(s); {len(f.label_set)} structures per exam",
        "Number Of Instances": f"{len(c)} exams",
        "Verification": _verification(f),
        "Partitioning Scheme": (f"split version {f.split_version.get('version')}: ratios "
                                f"{'/'.join(f'{r:.0%}' for r in f.split_version.get('ratios', []))}, by patient, "
                                f"stratified on {', '.join(f.split_version.get('stratify', [])) or 'nothing'}, seed "
                                f"{f.split_version.get('seed')}") if f.split_version else "",
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
        ax.set_xlabel("% of exams with the structure")
        ax.tick_params(axis="y", labelsize=6)
        figures["Structures' presence"] = _save(fig, out / "presence.png")
    return figures


def _save(fig: Any, path: Path) -> str:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    atomic_write_bytes(path, buffer.getvalue())
    return path.name


def build_datasheet(ws: Workspace, answers_path: Path | None = None, out: Path | None = None) -> Datasheet:
    """Compute the facts, join the answers, write ``datasheet.md``, ``datasheet.html`` and the figures."""
    answers = load_answers(answers_path)
    facts = gather_facts(ws)
    out = out or ws.datasheet_dir
    out.mkdir(parents=True, exist_ok=True)
    computed = _computed(facts)
    given = answers.get("fields") or {}
    name = _text(answers.get("dataset_name")) or facts.name
    fields = {"Dataset Name": (name, "")}
    for field_name in SEED_FIELDS[1:]:
        fields[field_name] = (computed.get(field_name, ""), _text(given.get(field_name)))
    missing = [f"field: {k}" for k, (a, b) in fields.items() if not a and not b]
    license_, availability = _text(answers.get("license")), _text(answers.get("availability"))
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
    return " ".join(p for p in (computed, answer) if p) or MISSING


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
