"""``croissant.json``: the release described in Croissant 1.0 (JSON-LD) with the RAI fields, built with mlcroissant.

Every file of the release is a FileObject with its sha256; FileSets group the CT images
(``*/ct*.nrrd``) and the masks (``*/segmentations/*.nrrd``); RecordSets expose the cases table and
the split (case id -> train/val/test) from ``cases.csv``, a comma-separated twin of the reference's
semicolon-separated ``meta.csv`` (Croissant readers expect commas). The Responsible-AI fields take the
datasheet's answers; an unanswered one is left out rather than invented.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from curation.atomic import atomic_write_text, sha256_file
from curation.workspace import ReleaseFolder

__all__ = ["build_croissant", "sha256_of", "RAI_FIELDS"]

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


sha256_of = sha256_file


def build_croissant(release: Path, *, name: str, description: str, version: str, license_: str = "",
                    url: str = "", rai: dict[str, str] | None = None) -> Path:
    """Write ``release/croissant.json`` for a release folder in the reference layout."""
    import mlcroissant as mlc

    folder = ReleaseFolder(Path(release))
    release = folder.root
    meta = pd.read_csv(folder.meta_csv, sep=";")
    # Croissant readers take commas: the records read a comma-separated twin of the reference's meta.csv
    atomic_write_text(folder.cases_csv, meta.to_csv(index=False))
    files = sorted(p for p in release.rglob("*") if p.is_file() and p not in (folder.croissant, folder.checksums))
    distribution: list[Any] = []
    for path in files:
        rel = path.relative_to(release).as_posix()
        fmt = "text/csv" if path.suffix == ".csv" else "application/json" if path.suffix == ".json" else \
            "text/markdown" if path.suffix == ".md" else "application/octet-stream"
        distribution.append(mlc.FileObject(id=rel, name=rel, content_url=rel, encoding_formats=[fmt],
                                           sha256=sha256_of(path), content_size=f"{path.stat().st_size} B"))
    distribution.append(mlc.FileSet(id="ct-images", name="ct-images", encoding_formats=["application/octet-stream"],
                                    includes=["*/ct*.nrrd"], description="CT volumes, NRRD, int16 HU, LPS"))
    distribution.append(mlc.FileSet(id="masks", name="masks", encoding_formats=["application/octet-stream"],
                                    includes=["*/segmentations/*.nrrd"], description="one binary mask per structure"))

    def column(record: str, col: str) -> Any:
        kind = getattr(mlc.DataType, _TYPES.get(meta[col].dtype.kind, "TEXT"))
        return mlc.Field(id=f"{record}/{col}", name=col, data_types=[kind],
                         source=mlc.Source(file_object=folder.cases_csv.name, extract=mlc.Extract(column=col)))

    record_sets = [mlc.RecordSet(id="cases", name="cases", description="one record per CT exam (cases.csv)",
                                 fields=[column("cases", c) for c in meta.columns])]
    if "split" in meta.columns:
        record_sets.append(mlc.RecordSet(id="splits", name="splits", key="splits/case_id",
                                         description="the patient-level train/val/test split",
                                         fields=[column("splits", "case_id"), column("splits", "split")]))
    answers = {k: v for k, v in (rai or {}).items() if v}
    metadata = mlc.Metadata(name=name, description=description, version=version, license=license_ or None,
                            url=url or None, distribution=distribution, record_sets=record_sets,
                            conforms_to="http://mlcommons.org/croissant/1.0", **answers)
    out = folder.croissant
    atomic_write_text(out, json.dumps(metadata.to_json(), indent=1, default=str))
    return out
