"""``retrain``: nnU-Net plans, preprocesses and trains on the export; the result is the model's next version."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from annotator.registry import load_model_parts, load_model_record
from annotator.retrain import RetrainConfig, _run, shrink_plans
from annotator.segment import segment_ct
from ctcurate.cli import app
from curation import Workspace, read_nrrd
from curation.annotation.revisions import RevisionStore
from curation.errors import ModelError
from tests.cli_runner import CliRunner

from .test_export import _correct, _split

runner = CliRunner()


@pytest.mark.slow
def test_retrain_with_the_shortest_trainer_registers_a_new_version(demo_ws: Workspace) -> None:
    ws = demo_ws
    _split(ws, {"s0001": "train", "s0002": "val", "s0003": "test"})
    for case_id in ("s0001", "s0002"):
        RevisionStore(ws).review(case_id, _correct(ws, case_id), "approved", reviewer="dr.b")
    result = runner.invoke(app, ["retrain", "small", "-w", str(ws.root), "--trainer", "nnUNetTrainer_ctcurateQuick",
                                 "--network", "small", "--grid", "3"])
    assert result.exit_code == 0, result.output
    assert "registered small@v2: trained on 1 case(s), validated on 1" in " ".join(result.output.split())
    record = load_model_record(ws, "small")
    assert record.version == 2
    lineage = record.lineage
    assert lineage["parent"] == "small@v1" and lineage["trained_on"] == {"s0001": 2}
    assert lineage["validated_on"] == {"s0002": 2}  # fold 0's validation case is not trained on
    assert lineage["skipped"] == {"s0003": "no approved revision"}  # the test case was not reviewed
    assert lineage["test_cases"] == {} and lineage["split"] == [{"train": ["s0001"], "val": ["s0002"]}]
    assert lineage["folds"] == ["0"] and lineage["plans"] == "nnUNetPlansSmall"
    logs = ws.root / lineage["logs"]
    assert {p.name for p in logs.iterdir()} == {"plan_and_preprocess.log", "preprocess.log", "train_fold_0.log"}
    train_log = (logs / "train_fold_0.log").read_text()
    assert "Using splits from existing split file" in train_log and "1 training and 1 validation cases" in train_log
    assert "verify_dataset_integrity Done" in (logs / "plan_and_preprocess.log").read_text()
    kept = Path(record.parts[0].path)
    assert kept.parent == ws.models_dir / "small" / "v2" and (kept / "fold_0" / "checkpoint_final.pth").is_file()
    # the new version loads (its trainer is found through nnUNet_extTrainer) and segments a case
    parts = load_model_parts(ws, record)
    assert parts[0].mapping == {i: i for i in range(1, 9)}
    ct = read_nrrd(ws.case_dir("s0003") / "ct.nrrd")
    labels = segment_ct(parts, ct, ws.label_set())[0]
    assert labels.array.shape == ct.array.shape and labels.array.max() <= 8


def test_retrain_settings_and_failures(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="network 'huge': expected one of default, small"):
        RetrainConfig(network="huge")
    with pytest.raises(ModelError, match="fold 'first': expected a number"):
        RetrainConfig(folds=("first",))
    with pytest.raises(ModelError, match="device 'tpu': expected cpu, cuda or mps"):
        RetrainConfig(device="tpu")
    assert RetrainConfig(network="small").plans == "nnUNetPlansSmall"
    log_file = tmp_path / "logs" / "step.log"
    with pytest.raises(ModelError, match=r"python.* failed \(exit 3\); see .*step.log: planning went wrong"):
        _run([sys.executable, "-c", "import sys; print('planning went wrong'); sys.exit(3)"], {}, log_file)
    assert "planning went wrong" in log_file.read_text()


def test_small_plans_keep_the_rest_of_the_plan(tmp_path: Path) -> None:
    from annotator.small_model import SMALL_MODEL_FOLDER

    plans = json.loads((SMALL_MODEL_FOLDER / "plans.json").read_text())
    plans["plans_name"] = "nnUNetPlans"
    (tmp_path / "nnUNetPlans.json").write_text(json.dumps(plans))
    small = json.loads(shrink_plans(tmp_path).read_text())
    config = small["configurations"]["3d_fullres"]
    assert small["plans_name"] == "nnUNetPlansSmall" and config["data_identifier"] == "nnUNetPlansSmall_3d_fullres"
    assert config["architecture"]["arch_kwargs"]["features_per_stage"] == [8, 16, 32, 64]
    assert config["spacing"] == plans["configurations"]["3d_fullres"]["spacing"]
    with pytest.raises(ModelError, match="no configuration '2d' in nnUNetPlans.json"):
        shrink_plans(tmp_path, "2d")
    assert np.isfinite(config["spacing"]).all()
