import pandas as pd
import pytest

from curation.errors import SamplingError
from curation.selection.sample import draw, rank_key


def _exams(n: int, offset: int = 0) -> pd.DataFrame:
    return pd.DataFrame({
        "study_key": [f"exam{i:04d}" for i in range(offset, offset + n)],
        "patient_key": [f"pat{i // 2}" for i in range(offset, offset + n)],
        "study_year": [2015 + i % 4 for i in range(offset, offset + n)],
    })


def test_same_seed_same_draw() -> None:
    a = draw(_exams(200), seed=5, n=20)
    b = draw(_exams(200).sample(frac=1, random_state=1), seed=5, n=20)
    assert list(a["study_key"]) == list(b["study_key"])
    assert list(draw(_exams(200), seed=6, n=20)["study_key"]) != list(a["study_key"])


def test_growing_export_keeps_draw_except_higher_ranked_newcomers() -> None:
    old = draw(_exams(200), seed=5, n=20)
    grown = draw(pd.concat([_exams(200), _exams(50, offset=200)]), seed=5, n=20)
    newcomers = set(grown["study_key"]) - set(old["study_key"])
    dropped = set(old["study_key"]) - set(grown["study_key"])
    assert len(newcomers) == len(dropped)
    assert all(k >= "exam0200" for k in newcomers)
    # a newcomer displaces an old member only by ranking higher than it
    if newcomers:
        assert max(rank_key(5, k) for k in newcomers) < min(rank_key(5, k) for k in dropped)
    assert set(old["study_key"]) - dropped <= set(grown["study_key"])


def test_stratified_allocation() -> None:
    drawn = draw(_exams(400), seed=1, n=40, stratify_by="study_year")
    assert drawn["study_year"].value_counts().to_dict() == {2015: 10, 2016: 10, 2017: 10, 2018: 10}
    assert list(drawn["rank"]) == list(range(1, 41))


def test_too_many_requested() -> None:
    with pytest.raises(SamplingError, match="only 10 CT exams"):
        draw(_exams(10), seed=1, n=11)


def test_unknown_stratum_column() -> None:
    with pytest.raises(SamplingError, match="stratify_by 'colour': not a column"):
        draw(_exams(10), seed=1, n=2, stratify_by="colour")


def test_workspace_rerun_repeats_and_redraw_changes(demo_export, filtered_workspace) -> None:
    from curation.selection.sample import sample

    ws = filtered_workspace(demo_export)
    first = sample(ws, n=3, seed=9)
    again = sample(ws)
    assert again.members == first.members and again.seed == 9 and not again.added
    fresh = sample(ws, redraw=True, n=3, seed=10)
    assert fresh.seed == 10
    with pytest.raises(SamplingError, match="lower --n"):
        sample(ws, n=50)


def test_more_exams_than_the_frame_holds() -> None:
    frame = pd.DataFrame({"study_key": ["a", "b"], "patient_key": ["p", "q"]})
    with pytest.raises(SamplingError, match=r"sample of 3 exams requested, but the sampling frame holds only 2 CT "
                                            r"exams; lower --n, or scan more exports \(a PACS: widen the query\)"):
        draw(frame, seed=1, n=3)
