"""splits_final.json is always valid for nnU-Net: one fold when the split has val cases, else nnU-Net's own
five-fold cross-validation over the training cases (checked against nnU-Net's code), else none."""

from __future__ import annotations

import json

import pytest

from annotator.folds import describe_folds, nnunet_folds


def test_without_val_cases_the_folds_are_nnunets_own() -> None:
    crossval = pytest.importorskip("nnunetv2.utilities.crossval_split")
    for n in (2, 3, 5, 7, 12, 57):
        train = [f"s{i:04d}" for i in range(n, 0, -1)]  # any order: the folds are made over the sorted ids
        ours = nnunet_folds(train)
        theirs = crossval.generate_crossval_split(sorted(train), seed=12345, n_splits=min(5, n))
        assert ours == [{"train": [str(c) for c in f["train"]], "val": [str(c) for c in f["val"]]} for f in theirs]
        assert all(f["train"] and f["val"] for f in ours)  # nnU-Net's loader stops on an empty list
        assert sorted(c for f in ours for c in f["val"]) == sorted(train)  # every case validated once
        json.dumps(ours)  # plain lists of strings, as nnU-Net's load_json reads them


def test_a_val_set_is_one_fold_and_too_few_cases_none() -> None:
    assert nnunet_folds(["b", "a", "c"], ["d"]) == [{"train": ["a", "b", "c"], "val": ["d"]}]
    assert nnunet_folds(["a"]) is None and nnunet_folds([], ["d"]) is None
    assert describe_folds(nnunet_folds(["a", "b", "c", "d", "e", "f"])) == (
        "splits_final.json: 5-fold cross-validation over the training cases (the split has no val cases)")
    assert "fewer than two training cases" in describe_folds(None)
