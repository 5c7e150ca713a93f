"""The filter's choice per exam: the reason of a sampled exam that has no series."""

from __future__ import annotations

import pandas as pd

from curation.selection.filter import choose_series
from curation.workspace.settings import ExclusionSettings


def test_a_sampled_exam_without_series_is_unretrieved_only_when_drawn_on_a_pacs() -> None:
    series = pd.DataFrame({"series_key": ["a"], "study_key": ["s1"]})
    verdicts = pd.DataFrame({"series_key": ["a"], "included": [True], "reasons": [""], "primary_reason": [""]})
    sampled = pd.DataFrame({"study_key": ["s1", "s2", "s3"], "patient_key": ["p"] * 3, "rank": [0, 1, 2]})
    exams = choose_series(series, verdicts, sampled, ExclusionSettings(), on_pacs={"s3"})
    assert list(exams["primary_reason"]) == ["", "gone_from_export", "not_retrieved"]
