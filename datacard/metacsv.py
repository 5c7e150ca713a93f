"""The release's ``meta.csv``: the cases table in the TotalSegmentator dataset's columns and conventions.

Scripts written for the reference dataset read ``pd.read_csv("meta.csv", sep=";")`` and use
``image_id``, ``age``, ``gender``, ``institute``, ``study_type``, ``split``, ``manufacturer``,
``scanner_model``, ``kvp``, ``pathology`` and ``pathology_location``; those come first, in that order,
with the reference's conventions (``gender`` m/f, lower-case ``study_type``, ``manufacturer`` and
``scanner_model``), and ctcurate's own columns follow. The mapping (docs/release.md):

============================  ==========================================================================
column                        from
============================  ==========================================================================
image_id                      the case id (``s0001``)
age, gender                   the patient's age in years; sex as ``m`` / ``f`` (``o`` or empty otherwise)
institute                     the site the exam came from
study_type                    ``ct`` and the body regions the case's labels of record cover, from the
                              label set's vertebral levels of the short structures present
                              (``ct thorax-abdomen-pelvis``); ``ct`` alone when the set states no levels
split                         train / val / test
manufacturer, scanner_model   the DICOM Manufacturer and ManufacturerModelName, lower case
kvp                           the DICOM KVP
pathology, pathology_location empty: ctcurate records no diagnosis (columns kept so scripts run)
============================  ==========================================================================

Text values never hold ``;`` or ``,`` (each is replaced by a space), so the file reads the same with
any CSV reader: a comma reader (Croissant's) sees one column, which ``croissant.json`` cuts into fields.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pandas as pd

from curation.labels.labelset import LabelSet

__all__ = ["REFERENCE_COLUMNS", "RENAMED", "release_table", "study_type", "REGIONS"]

#: the TotalSegmentator dataset's meta.csv columns, in its order
REFERENCE_COLUMNS = ("image_id", "age", "gender", "institute", "study_type", "split", "manufacturer", "scanner_model",
                     "kvp", "pathology", "pathology_location")
#: ctcurate's cases-table column -> the reference's name
RENAMED = {"case_id": "image_id", "sex": "gender", "site": "institute", "model": "scanner_model"}
#: body regions on the vertebral-level scale (C1 = 1 ... L5 = 24, S1 = 25): name, first level, last level
REGIONS = (("head", -10.0, 0.5), ("neck", 0.5, 7.5), ("thorax", 7.5, 19.5), ("abdomen", 19.5, 24.5),
           ("pelvis", 24.5, 30.0), ("legs", 30.0, 60.0))
_GENDER = {"M": "m", "F": "f", "O": "o"}
#: a structure spanning at most this many vertebral levels places the scan (see :func:`study_type`)
SHORT_SPAN = 4.0


def study_type(present: Iterable[str], labels: LabelSet) -> str:
    """``ct`` and the regions where the present structures' level spans have their middle.

    Short structures place a scan best (a vertebra, a kidney, the bladder); one spanning several regions
    (the colon, the iliopsoas) shows only that some part of it is in view, so structures spanning more
    than :data:`SHORT_SPAN` levels count only when no short one is present.
    """
    spans = [labels.by_name(n).levels for n in present if n in labels and labels.by_name(n).levels is not None]
    short = [s for s in spans if s is not None and s[1] - s[0] <= SHORT_SPAN]
    regions = set()
    for levels in short or spans:
        assert levels is not None
        middle = (levels[0] + levels[1]) / 2
        regions |= {region for region, top, bottom in REGIONS if top <= middle < bottom}
    covered = [region for region, _, _ in REGIONS if region in regions]
    if {"head", "neck", "thorax", "abdomen", "pelvis"} <= regions:
        return "ct whole body"
    return " ".join(["ct", "-".join(covered)]).strip()


def _text(value: object) -> object:
    if not isinstance(value, str):
        return value
    return re.sub(r"\s+", " ", value.replace(";", " ").replace(",", " ")).strip()


def release_table(cases: pd.DataFrame, study_types: dict[str, str]) -> pd.DataFrame:
    """The cases table (ctcurate's columns) as the release's ``meta.csv`` frame."""
    table = cases.rename(columns=RENAMED).copy()
    table["gender"] = table["gender"].map(lambda s: _GENDER.get(str(s).upper(), "") if isinstance(s, str) else "")
    for column in ("manufacturer", "scanner_model"):
        table[column] = table[column].map(lambda s: s.lower() if isinstance(s, str) else s)
    table["study_type"] = table["image_id"].map(lambda c: study_types.get(c, "ct"))
    if "split" not in table:
        table["split"] = ""
    table["pathology"] = ""
    table["pathology_location"] = ""
    table["age"] = pd.to_numeric(table["age"], errors="coerce").astype("Int64")
    extra = [c for c in table.columns if c not in REFERENCE_COLUMNS]
    table = table[list(REFERENCE_COLUMNS) + extra]
    for column in table.columns:
        if table[column].dtype == object or pd.api.types.is_string_dtype(table[column]):
            table[column] = table[column].map(_text)
    return table.reset_index(drop=True)
