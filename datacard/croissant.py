"""``croissant.json``: the release described in Croissant 1.0 (JSON-LD) with the RAI fields, built with mlcroissant.

Every file of the release is a FileObject with its sha256 (those of the case folders written directly in the form
mlcroissant writes, so that memory does not grow with mlcroissant's objects); FileSets group the CT images per grid
(``*/ct.nrrd``, ``*/ct_1.5mm.nrrd``...) and the masks (``*/segmentations/*.nrrd``). RecordSets:

- ``cases``: one record per exam from ``meta.csv`` (keyed by ``image_id``). The file is the reference
  dataset's semicolon-separated table and no value holds a comma (:mod:`datacard.metacsv`), so a
  Croissant reader, which reads CSV with commas, sees one column; each field cuts its value out of it
  with a regular expression. There is no second copy of the table.
- ``images`` (and ``images_<grid>`` for each isotropic copy shipped): one record per CT file, with the
  case it belongs to (a reference to ``cases/image_id``) and the file's path in the release.
- ``masks``: one record per mask file, with its case, its structure and its path.

The metadata names the creators, ``citeAs`` (the answers' citation, else one built from creators,
title, year and version), ``datePublished``, ``version`` and the license's URL. The Responsible-AI
fields take the datasheet's answers; an unanswered one is left out rather than invented.
"""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from curation.atomic import atomic_write_text, sha256_file
from curation.workspace import ReleaseFolder

__all__ = ["build_croissant", "sha256_of", "RAI_FIELDS", "cite_as"]

#: Croissant RAI property -> datasheet field or section that answers it
RAI_FIELDS = {
    "data_collection": "Collection Process",
    "data_collection_missing_data": "Missing Information",
    "data_preprocessing_protocol": "Preprocessing/Cleaning/Labeling",
    "data_annotation_protocol": "Labeling",
    "data_biases": "Representativeness",
    "data_use_cases": "Uses",
    "data_limitations": "Noise",
    "personal_sensitive_information": "Confidentiality",
    "data_release_maintenance_plan": "Maintenance",
}
_TYPES = {"i": "INTEGER", "u": "INTEGER", "f": "FLOAT", "b": "BOOL"}
_FORMATS = {".csv": "text/csv", ".json": "application/json", ".md": "text/markdown", ".html": "text/html",
            ".png": "image/png", ".zip": "application/zip", ".txt": "text/plain", "": "text/plain"}
#: NRRD has no registered media type: Croissant takes the format's page, and mlcroissant reads it as bytes
NRRD = ["https://teem.sourceforge.net/nrrd/format.html", "text/plain"]
_CASE = r"([^/]+)"  # a case folder's name, the first part of a path in the release
_BARE = r"^([^/]+)$"  # a case id already cut out: mlcroissant applies the transform again when it joins

sha256_of = sha256_file


def cite_as(name: str, version: str, date: str, creators: list[dict[str, str]], url: str = "") -> str:
    """A BibTeX ``@misc`` entry for the release (Croissant's ``citeAs``)."""
    authors = " and ".join(c["name"] for c in creators) or "{" + name + "}"
    key = re.sub(r"\W+", "", (creators[0]["name"].split(",")[0] if creators else name)).lower() + date[:4]
    lines = [f"@misc{{{key}", f"  title = {{{{{name}}}: version {version}}}", f"  author = {{{authors}}}",
             f"  year = {{{date[:4]}}}", f"  version = {{{version}}}"]
    if url:
        lines.append(f"  url = {{{url}}}")
    return ",\n".join(lines) + "\n}"


def _grids(release: Path, images: list[str]) -> dict[str, str]:
    """FileSet id -> glob for each CT grid shipped: the native ``ct.nrrd`` and each isotropic copy."""
    suffixes = sorted({m.group(1) for p in images if (m := re.fullmatch(r"[^/]+/ct(_[^/]+)?\.nrrd", p))
                       and m.group(1)})
    return {"ct-images": "*/ct.nrrd", **{f"ct-images{s}": f"*/ct{s}.nrrd" for s in suffixes}}


def build_croissant(release: Path, *, name: str, description: str, version: str, license_url: str = "",
                    url: str = "", rai: dict[str, str] | None = None, creators: list[dict[str, str]] | None = None,
                    date_published: str = "", citation: str = "", keywords: list[str] | None = None) -> Path:
    """Write ``release/croissant.json`` for a release folder in the reference layout.

    ``citation`` (the answers' ``cite_as``, e.g. the paper describing the data) replaces the generated one.
    """
    import mlcroissant as mlc

    folder = ReleaseFolder(Path(release))
    release = folder.root
    meta = pd.read_csv(folder.meta_csv, sep=";", dtype={"image_id": str})
    header = folder.meta_csv.read_text(encoding="utf-8").splitlines()[0]
    files = sorted(p for p in release.rglob("*") if p.is_file() and p not in (folder.croissant, folder.checksums))
    relative = [p.relative_to(release).as_posix() for p in files]
    case_ids = set(meta["image_id"])
    distribution: list[Any] = []
    case_files: list[dict[str, Any]] = []  # 118 and more per case: written directly (see _file_object)
    for path, rel in zip(files, relative, strict=True):
        if rel.split("/", 1)[0] in case_ids:
            case_files.append(_file_object(path, rel))
        else:
            distribution.append(mlc.FileObject(id=rel, name=rel, content_url=rel,
                                               encoding_formats=[_format(path)], sha256=sha256_of(path),
                                               content_size=f"{path.stat().st_size} B"))
    grids = _grids(release, relative)
    for set_id, pattern in grids.items():
        grid = set_id.removeprefix("ct-images").lstrip("_") or "native"
        distribution.append(mlc.FileSet(id=set_id, name=set_id, encoding_formats=NRRD,
                                        includes=[pattern], description=f"CT volumes ({grid} grid), NRRD, int16 HU, "
                                                                        "LPS"))
    distribution.append(mlc.FileSet(id="mask-files", name="mask-files", encoding_formats=NRRD,
                                    includes=["*/segmentations/*.nrrd"], description="one binary mask per structure"))

    def column(index: int, col: str) -> Any:
        # a numeric column with a missing value is text: a missing value is an empty string there
        typed = meta[col].dtype.kind if meta[col].notna().all() else "O"
        kind = getattr(mlc.DataType, _TYPES.get(typed, "TEXT"))
        return mlc.Field(id=f"cases/{col}", name=col, data_types=[kind],
                         source=mlc.Source(file_object=folder.meta_csv.name, extract=mlc.Extract(column=header),
                                           transforms=[mlc.Transform(regex=rf"^(?:[^;]*;){{{index}}}([^;]*)")]))

    # mlcroissant applies a field's transform to the column it reads, so no two fields read the same property
    def from_path(record: str, field: str, file_set: str, prop: str, regex: str, description: str,
                  references: str | None = None) -> Any:
        return mlc.Field(id=f"{record}/{field}", name=field, description=description, data_types=[mlc.DataType.TEXT],
                         references=mlc.Source(field=references) if references else None,
                         source=mlc.Source(file_set=file_set, extract=mlc.Extract(file_property=prop),
                                           transforms=[mlc.Transform(regex=regex)]))

    record_sets = [mlc.RecordSet(id="cases", name="cases", key="cases/image_id",
                                 description="one record per CT exam (meta.csv)",
                                 fields=[column(i, c) for i, c in enumerate(meta.columns)])]
    for set_id, pattern in grids.items():
        record = "images" + set_id.removeprefix("ct-images")
        stem = re.escape(pattern.split("/", 1)[1])
        record_sets.append(mlc.RecordSet(id=record, name=record, key=f"{record}/image_id",
                                         description=f"one record per CT file {pattern}", fields=[
            from_path(record, "image_id", set_id, "fullpath", rf"^(?:.*/)?{_CASE}/{stem}$|{_BARE}", "the case",
                      "cases/image_id"),
            from_path(record, "image", set_id, "filepath", rf"^.*/({_CASE}/{stem})$",
                      "the file's path in the release")]))
    record_sets.append(mlc.RecordSet(id="masks", name="masks", description="one record per structure mask", fields=[
        from_path("masks", "image_id", "mask-files", "fullpath",
                  rf"^(?:.*/)?{_CASE}/segmentations/[^/]+\.nrrd$|{_BARE}", "the case", "cases/image_id"),
        from_path("masks", "structure", "mask-files", "filename", r"^(.+)\.nrrd$", "the structure's name"),
        from_path("masks", "mask", "mask-files", "filepath", rf"^.*/({_CASE}/segmentations/[^/]+\.nrrd)$",
                  "the file's path in the release")]))
    people = creators or []
    citation = citation or cite_as(name, version, date_published, people, url)
    when = datetime.datetime.fromisoformat(date_published) if date_published else None
    given = {k: v for k, v in (rai or {}).items() if v}
    metadata = mlc.Metadata(name=name, description=description, version=version, license=license_url or None,
                            url=url or None, distribution=distribution, record_sets=record_sets,
                            cite_as=citation, date_published=when, keywords=list(keywords or []) or None,
                            creators=[mlc.Person(name=c["name"], url=f"https://orcid.org/{c['orcid']}"
                                                 if c.get("orcid") else None) for c in people] or None,
                            conforms_to="http://mlcommons.org/croissant/1.0", **given)
    doc = metadata.to_json()
    order = {rel: i for i, rel in enumerate(relative)}
    objects = [e for e in doc["distribution"] if e.get("@type") == "cr:FileObject"] + case_files
    doc["distribution"] = sorted(objects, key=lambda e: order[e["@id"]]) + [
        e for e in doc["distribution"] if e.get("@type") != "cr:FileObject"]
    out = folder.croissant
    atomic_write_text(out, json.dumps(doc, indent=1, default=str))
    return out


def _format(path: Path) -> str:
    return _FORMATS.get(path.suffix, "application/octet-stream")


def _file_object(path: Path, rel: str) -> dict[str, Any]:
    """A FileObject's JSON-LD as mlcroissant writes it, made without mlcroissant's object (about 30 KB each: a
    release's case files, 118 and more per case, would take gigabytes at the reference scale)."""
    return {"@type": "cr:FileObject", "@id": rel, "name": rel, "contentSize": f"{path.stat().st_size} B",
            "contentUrl": rel, "encodingFormat": _format(path), "sha256": sha256_of(path)}
