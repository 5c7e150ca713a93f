"""Pre-segmentation with the small committed model: Dice against TotalSegmentator's masks on the real
example CT, the same after the CT's axes are flipped and permuted, results overlaying the CT in world space."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from annotator.predict import ModelFolder, NnunetModel
from annotator.segment import ModelPart, map_labels, segment_ct
from annotator.small_model import SMALL_MODEL_FOLDER as SMALL
from curation import Volume, load_label_set, read_volume, resample_isotropic
from curation.errors import ModelError

V2 = load_label_set("total_v2")
LEARNED = ("spleen", "kidney_right", "kidney_left", "liver", "urinary_bladder")


@pytest.fixture(scope="module")
def part() -> ModelPart:
    folder = ModelFolder.read(SMALL)
    return ModelPart(NnunetModel(folder), map_labels(folder, V2))


@pytest.fixture(scope="module")
def truth(ts: Path) -> Volume:
    return read_volume(ts / "seg_v2_total117" / "example_seg_fast_force_split.nii.gz")


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def _on(labels: Volume, grid: Volume) -> np.ndarray:
    ref = grid.to_sitk()
    return sitk.GetArrayFromImage(sitk.Resample(labels.to_sitk(), ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0))


def test_small_model_is_small_and_declares_its_labels() -> None:
    folder = ModelFolder.read(SMALL)
    assert folder.labels == {name: n for n, name in enumerate(LEARNED, 1)}
    assert folder.spacing == (3.0, 3.0, 3.0) and folder.folds == ("all",)
    assert sum(p.stat().st_size for p in SMALL.rglob("*")) < 5_000_000


def test_dice_on_the_real_ct_and_after_flipping_and_permuting_its_axes(ts: Path, part: ModelPart,
                                                                       truth: Volume) -> None:
    ct = read_volume(ts / "example_ct.nii.gz")
    native = segment_ct([part], ct, V2)[0]
    for name in LEARNED:
        k = V2.by_name(name).index
        assert dice(native.array == k, truth.array == k) >= 0.8, name
    image = sitk.Flip(sitk.PermuteAxes(ct.to_sitk(), [2, 0, 1]), [True, False, True])
    image.SetOrigin((12.0, -40.0, 300.0))
    moved = Volume.from_sitk(image)
    result = segment_ct([part], moved, V2)[0]
    assert result.array.shape == moved.array.shape
    truth_moved = Volume(truth.array, truth.spacing, truth.origin, truth.direction)
    # the same world shift applies to the truth: carry it with the CT's own transform
    shifted = sitk.Flip(sitk.PermuteAxes(truth_moved.to_sitk(), [2, 0, 1]), [True, False, True])
    shifted.SetOrigin((12.0, -40.0, 300.0))
    expected = sitk.GetArrayFromImage(shifted)
    for name in LEARNED:
        k = V2.by_name(name).index
        assert dice(result.array == k, expected == k) >= 0.8, name


def test_results_on_the_stored_spacings_overlay_the_ct(ts: Path, part: ModelPart) -> None:
    ct = read_volume(ts / "example_ct.nii.gz")
    grids = [resample_isotropic(ct, 1.5), resample_isotropic(ct, 3.0)]
    native, fine, coarse = segment_ct([part], ct, V2, ready=[grids[1]], grids=grids)
    assert fine.array.shape == grids[0].array.shape and np.allclose(fine.origin, grids[0].origin)
    liver = V2.by_name("liver").index
    for other in (fine, coarse):
        back = _on(other, ct)
        assert dice(back == liver, native.array == liver) > 0.9
    # the liver lies in soft tissue on every grid
    assert np.median(grids[0].array[fine.array == liver]) > 0


def test_two_part_model_merges_with_the_right_names(part: ModelPart, ts: Path) -> None:
    ct = read_volume(ts / "example_ct.nii.gz")
    organs = ModelPart(part.model, {v: k for v, k in part.mapping.items() if V2.by_index(k).name != "urinary_bladder"})
    bladder = ModelPart(part.model, {v: k for v, k in part.mapping.items() if V2.by_index(k).name == "urinary_bladder"})
    merged = segment_ct([organs, bladder], ct, V2)[0]
    whole = segment_ct([part], ct, V2)[0]
    assert np.array_equal(merged.array, whole.array)


def test_a_model_uses_its_workers_share_of_the_cores() -> None:
    import torch

    from curation.workspace.threads import available_cores, limited_threads

    before = torch.get_num_threads()
    try:
        with limited_threads(1):
            NnunetModel(ModelFolder.read(SMALL))
            assert torch.get_num_threads() == 1  # a worker of two on two cores: one thread, not torch's default
        assert torch.get_num_threads() == before
        NnunetModel(ModelFolder.read(SMALL))  # no budget: every core
        assert torch.get_num_threads() == available_cores()
    finally:
        torch.set_num_threads(before)


def test_model_errors(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "notes.md").write_text("")
    with pytest.raises(ModelError, match="notes.md: a file, not a folder; pass the trained-model folder that holds"):
        ModelFolder.read(tmp_path / "notes.md")
    (tmp_path / "notes.md").unlink()
    with pytest.raises(ModelError, match="not found"):
        ModelFolder.read(tmp_path / "nothing")
    bad = tmp_path / "Trainer__Plans__3d_fullres"
    bad.mkdir()
    with pytest.raises(ModelError, match="missing dataset.json, plans.json"):
        ModelFolder.read(bad)
    with pytest.raises(ModelError, match="Trainer__Plans__3d_fullres: missing dataset.json"):
        ModelFolder.read(tmp_path)  # a folder holding one trained-model folder stands for it
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"empty: expected a trained-model folder named <Trainer>__<Plans>__"
                                         r"<configuration> or a folder holding one; it holds none"):
        ModelFolder.read(tmp_path / "empty")
    assert ModelFolder.read(SMALL.parent).path == SMALL
    import shutil

    copy = tmp_path / SMALL.name
    shutil.copytree(SMALL, copy)
    with pytest.raises(ModelError, match=f"it holds 2: Trainer__Plans__3d_fullres, {SMALL.name}; pass one of them"):
        ModelFolder.read(tmp_path)
    with pytest.raises(ModelError, match=f"fold_all: this is one fold of a trained-model folder; pass {copy} "
                                         r"\(and --folds all to use this fold alone\)"):
        ModelFolder.read(copy / "fold_all")
    with pytest.raises(ModelError, match=r"no checkpoint fold_3/checkpoint_final.pth; folds with it: all \(choose "
                                         r"them with --folds\)"):
        ModelFolder.read(copy, folds=("3",))
    with pytest.raises(ModelError, match=r"no checkpoint fold_all/checkpoint_best.pth; folds present: all, none with "
                                         r"checkpoint_best.pth \(nnU-Net writes it when training ends"):
        ModelFolder.read(copy, checkpoint="checkpoint_best.pth")
    plans = (copy / "plans.json").read_text()
    (copy / "plans.json").write_text("{")
    with pytest.raises(ModelError, match=r"plans.json unreadable \(Expecting property name"):
        ModelFolder.read(copy)
    (copy / "plans.json").write_text("{}")
    with pytest.raises(ModelError, match="plans.json has no spacing for configuration '3d_fullres'"):
        ModelFolder.read(copy)
    (copy / "plans.json").write_text(plans)
    (copy / "fold_all" / "checkpoint_final.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="checkpoint does not load"):
        NnunetModel(ModelFolder.read(copy))
    folder = ModelFolder.read(SMALL)
    from ctcurate.demo import DEMO_LABEL_SET
    from curation.labels.labelset import LabelSet

    chest = LabelSet("chest", "1", DEMO_LABEL_SET.classes[:4])  # liver, lungs, spine
    with pytest.raises(ModelError, match=r"labels \['spleen', 'kidney_right', 'kidney_left', 'urinary_bladder'\] "
                                         "are not classes of label set 'chest'"):
        map_labels(folder, chest)
    with caplog.at_level("WARNING", logger="annotator.segment"):
        renamed = map_labels(folder, chest, {"spleen": "liver", "kidney_right": "lung_right",
                                             "kidney_left": "lung_left", "urinary_bladder": "spine"})
    assert renamed == {1: 1, 2: 3, 3: 2, 4: 1, 5: 4}
    assert "labels spleen and liver are merged into class 'liver'" in caplog.text


def test_a_ct_too_large_at_the_model_spacing_is_refused(ts: Path, part: ModelPart) -> None:
    ct = read_volume(ts / "example_ct_sm.nii.gz")
    fine = type(ct)(ct.array, (0.5, 0.5, 0.5), ct.origin, ct.direction)  # would be resampled to 3 mm: fine
    with pytest.raises(ModelError, match=r"would be 0 M voxels at the model's \(3.0, 3.0, 3.0\) mm, over the limit"):
        segment_ct([part], fine, V2, max_voxels=1000)
    with pytest.raises(ModelError, match="no model parts given"):
        segment_ct([], ct, V2)
