"""A release without val cases ships nnU-Net's own cross-validation folds, and nnU-Net trains on them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from annotator.retrain import RetrainConfig, retrain
from curation import Workspace
from curation.errors import ModelError
from datacard.release import build_release
from datacard.split import SplitPlan, make_split


@pytest.mark.slow
def test_nnunet_trains_one_epoch_from_the_export_and_the_release_splits_file(demo_run, tmp_path: Path) -> None:
    shutil.copytree(demo_run.workspace, tmp_path / "ws")
    ws = Workspace.open(tmp_path / "ws")
    make_split(ws, "1.0.0", SplitPlan((1, 0, 0), (), 5))  # every case in train: no val set
    (ws.root / "answers.yaml").write_text(yaml.safe_dump({"license": "CC0-1.0"}))
    release = build_release(ws, "1.0.0", answers=ws.root / "answers.yaml", force_qa=True).folder
    folds = json.loads((release / "splits_final.json").read_text())
    cases = sorted(ws.case_ids())
    assert len(folds) == len(cases) and all(f["train"] and f["val"] for f in folds)  # nnU-Net's own CV, no empty
    assert all(sorted(f["train"] + f["val"]) == cases for f in folds)
    config = RetrainConfig(trainer="nnUNetTrainer_ctcurateQuick", network="small", grid="3", fallback="unreviewed",
                           splits=release / "splits_final.json", folds=("1",))
    record = retrain(ws, "from-release", config)
    assert record.lineage["split"] == folds and record.lineage["splits_file"].endswith("1.0.0/splits_final.json")
    assert set(record.lineage["trained_on"]) == set(folds[1]["train"])
    assert set(record.lineage["validated_on"]) == set(folds[1]["val"])
    train_log = (ws.root / record.lineage["logs"] / "train_fold_1.log").read_text()
    train, val = len(folds[1]["train"]), len(folds[1]["val"])
    assert "Using splits from existing split file" in train_log
    assert f"{train} training and {val} validation cases" in train_log and "Training done." in train_log
    assert (Path(record.parts[0].path) / "fold_1" / "checkpoint_final.pth").is_file()
    (tmp_path / "other.json").write_text(json.dumps([{"train": ["s0001", "s9999"], "val": ["s0002"]}]))
    with pytest.raises(ModelError, match="case\\(s\\) \\['s9999'\\] are not among the exported training cases"):
        retrain(ws, "from-release", RetrainConfig(network="small", grid="3", fallback="unreviewed",
                                                  splits=tmp_path / "other.json"))
    with pytest.raises(ModelError, match="fold 7: the split has 3 fold\\(s\\) \\(0-2\\); choose one of them"):
        retrain(ws, "from-release", RetrainConfig(network="small", grid="3", fallback="unreviewed",
                                                  splits=release / "splits_final.json", folds=("7",)))
    with pytest.raises(ModelError, match="--splits .*nothing.json: no such file; give a release's splits_final"):
        RetrainConfig(splits=tmp_path / "nothing.json")
