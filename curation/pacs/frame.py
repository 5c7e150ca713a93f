"""Catalog rows for exams still on a PACS: the sampling frame, and the series of drawn exams from metadata.

Keys are made exactly as for scanned files (:func:`curation.catalog.keys.assign_keys`): a study found by
QIDO-RS and the same study scanned from disk get the same ``study_key``, and a series described by
its WADO-RS metadata gets the ``series_key`` its retrieved files will have (records carry the path
each instance will be saved at). So the same sampling and the same exclusion rules run on the PACS's
answers before pixel data moves, and the normal scan -> filter -> convert takes over after retrieval.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from curation.catalog.grouping import build_catalog
from curation.catalog.keys import assign_keys
from curation.catalog.scan import records_to_frame
from curation.dicom.header import header_from_dataset, new_record
from curation.errors import PacsError, ScanError
from curation.selection.sample import exam_table

from .dicomweb import PacsSource, query_series, series_metadata

__all__ = ["candidate_exams", "describe_study", "remote_series", "PACS_STRATA", "QIDO_ONLY"]

log = logging.getLogger(__name__)
#: exam-table columns a QIDO-RS study answer can fill (stratification before retrieval uses these)
PACS_STRATA = ("study_year", "patient_sex")
QIDO_ONLY = "qido-only.json"  # the 'file' of a series known only by its QIDO-RS answer (never written)
_STUDY_COLUMNS = ("study_uid", "study_date", "study_time", "study_description", "patient_id", "patient_name",
                  "patient_birth_date", "patient_sex", "accession_number")


def _record(row: dict[str, Any], path: str, **facts: Any) -> dict[str, Any]:
    record = new_record(path)
    record.update({k: str(row.get(k) or "") for k in _STUDY_COLUMNS})
    record.update(facts)
    return record


def candidate_exams(studies: pd.DataFrame) -> pd.DataFrame:
    """The sampling frame of a QIDO-RS study table: one row per study, keyed as the catalog keys it.

    Columns are those of :func:`curation.selection.sample.exam_table` plus ``study_uid``; strata other than
    :data:`PACS_STRATA` are unknown before the series are described and stay empty.
    """
    records = [_record({str(k): v for k, v in row.items()}, "", modality="CT", series_uid=f"study:{row['study_uid']}")
               for row in studies.to_dict("records")]
    keyed = assign_keys(records_to_frame(records))
    keyed["study_year"] = pd.to_numeric(keyed["study_date"].str[:4], errors="coerce")
    for column in ("institution_name", "manufacturer", "model", "body_part"):
        keyed[column] = ""
    exams = exam_table(keyed)
    uids = keyed.drop_duplicates("study_key").set_index("study_key")["study_uid"]
    return exams.assign(study_uid=exams["study_key"].map(uids))


def describe_study(source: PacsSource, study: dict[str, Any], export_dir: Path) -> pd.DataFrame:
    """Catalog records of one study's instances, from the PACS's answers alone.

    CT series are described instance by instance from their WADO-RS metadata; other series (SR, RT,
    SEG, ...) by their QIDO-RS answer (one record, no pixel data). Each record's ``path`` is where the
    instance will be saved: ``export_dir/<study UID>/<series UID>/<SOP UID>.dcm``.
    """
    uid = str(study["study_uid"])
    series = query_series(source, uid)
    if series.empty:
        raise ScanError(f"{source.url}: study {uid} has no series on the PACS (deleted since the query?); it is "
                        "left out of this run")
    records: list[dict[str, Any]] = []
    for row in series.to_dict("records"):
        folder = export_dir / uid / str(row["series_uid"])
        announced = int(pd.to_numeric(row["n_instances"], errors="coerce") or 0)
        if row["modality"] != "CT":
            records.append(_record(study, str(folder / QIDO_ONLY), modality=row["modality"],
                                   series_uid=row["series_uid"], series_description=row["series_description"],
                                   body_part=row["body_part"], n_announced=announced, pacs_note="",
                                   detail=f"{row['modality']} series known from its QIDO-RS answer only"))
            continue
        try:
            datasets = series_metadata(source, uid, str(row["series_uid"]))
        except PacsError as exc:
            if not exc.permanent:
                raise
            log.warning("%s", exc)  # the PACS cannot describe it: judged unreadable, never retrieved
            records.append(_record(study, str(folder / QIDO_ONLY), modality="CT", series_uid=row["series_uid"],
                                   series_description=row["series_description"], body_part=row["body_part"],
                                   n_announced=announced, pacs_note=f"the PACS cannot give its metadata ({exc})"))
            continue
        if announced and len(datasets) != announced:
            log.warning("%s: series %s announces %d instances, its metadata holds %d", source.url,
                        row["series_uid"], announced, len(datasets))
        for ds in datasets:
            record = header_from_dataset(ds, str(folder / f"{ds.get('SOPInstanceUID', '')}.dcm"))
            record.update(n_announced=announced, pacs_note="")
            records.append(record)
    return records_to_frame(records)


def remote_series(instances: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(instances with keys, series summary) of described studies, as :func:`curation.catalog.grouping.build_catalog`
    makes them for scanned files.

    A series known only by its QIDO-RS answer counts the instances it announced; one the PACS could not
    describe gets ``pacs_status`` ``unjudged`` (the ``not_retrieved`` rule keeps it out) and the reason.
    """
    files, series = build_catalog(instances)
    series = series.assign(pacs_status="", pacs_detail="")
    if series.empty:
        return files, series
    qido = files[files["path"].str.endswith(QIDO_ONLY)]
    announced = qido.groupby("series_key")["n_announced"].first()
    rows = series["series_key"].isin(announced.index)
    series.loc[rows, "n_files"] = series.loc[rows, "series_key"].map(announced).clip(lower=1).astype(int)
    notes = qido[qido["pacs_note"] != ""].groupby("series_key")["pacs_note"].first()
    rows = series["series_key"].isin(notes.index)
    series.loc[rows, "pacs_status"] = "unjudged"
    series.loc[rows, "pacs_detail"] = series.loc[rows, "series_key"].map(notes)
    return files, series
