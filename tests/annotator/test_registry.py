"""Registering models in a workspace: label mapping checked, fingerprint recorded and verified."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from annotator.registry import list_models, load_model_parts, load_model_record, register_model
from ctcurate.cli import app
from curation import Workspace
from curation.errors import ModelError
from tests.cli_runner import CliRunner

from .test_segment import SMALL

runner = CliRunner()


def test_register_list_load_and_refuse_changed_files(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    model = tmp_path / SMALL.name
    shutil.copytree(SMALL, model)
    first = register_model(ws, "small", [model])
    assert first.tag == "small@v1" and first.parts[0].labels["liver"] == 4
    assert len(first.parts[0].checkpoint_sha256["all"]) == 64 and first.nnunetv2 == "2.8.1"
    assert register_model(ws, "small", [model]) == first  # same files: same version
    two_parts = register_model(ws, "small", [model, model])
    assert two_parts.version == 2 and [m.tag for m in list_models(ws)] == ["small@v1", "small@v2"]
    assert load_model_record(ws, "small").version == 2
    parts = load_model_parts(ws, first)
    assert parts[0].mapping == {1: 1, 2: 2, 3: 3, 4: 5, 5: 21}  # model values -> total_v2 indices
    with open(model / "fold_all" / "checkpoint_final.pth", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelError, match="changed since it was registered"):
        load_model_parts(ws, first)
    with pytest.raises(ModelError, match=r"model 'big': not registered .* \(registered: small\)"):
        load_model_record(ws, "big")
    with pytest.raises(ModelError, match="no version 7"):
        load_model_record(ws, "small", 7)
    with pytest.raises(ModelError, match="use letters, digits"):
        register_model(ws, "bad name", [model])


def test_model_cli(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert runner.invoke(app, ["init", str(ws)]).exit_code == 0
    result = runner.invoke(app, ["model", "add", "small", str(SMALL), "-w", str(ws)])
    assert result.exit_code == 0, result.output
    assert "registered small@v1: 1 part(s), 5 labels" in result.output
    assert "small@v1" in runner.invoke(app, ["model", "list", "-w", str(ws)]).output
    result = runner.invoke(app, ["model", "add", "small", str(SMALL), "-w", str(ws), "--map", "liver"])
    assert result.exit_code == 2 and "expected MODEL_LABEL=CLASS" in result.output
    result = runner.invoke(app, ["model", "add", "other", str(tmp_path), "-w", str(ws)])
    assert result.exit_code == 2 and "expected a trained-model folder named <Trainer>__<Plans>__<configuration> or " \
        "a folder holding one; it holds none" in " ".join(result.output.split())


def test_a_checkpoint_that_does_not_load_is_refused_at_registration(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert runner.invoke(app, ["init", str(ws)]).exit_code == 0
    model = tmp_path / SMALL.name
    shutil.copytree(SMALL, model)
    (model / "fold_all" / "checkpoint_final.pth").write_bytes(b"garbage\n")
    result = runner.invoke(app, ["model", "add", "broken", str(model), "-w", str(ws)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert f"model folder {model}: fold_all/checkpoint_final.pth does not load (" in " ".join(result.output.split())
    assert not list(Workspace.open(ws).models_dir.glob("broken/*"))


@pytest.mark.parametrize(("renames", "message"), [
    ({"foo": "liver"}, r"--map foo=liver: the model has no label 'foo' \(its labels: kidney_left, kidney_right, "
                       r"liver, spleen, urinary_bladder\)"),
    ({"liver": "livr"}, r"--map liver=livr: not a class of label set 'total_v2' \(close: liver\); 'ctcurate qa "
                        "labelsets total_v2' lists its classes"),
])
def test_a_label_mapping_that_cannot_hold_is_refused(tmp_path: Path, renames: dict[str, str], message: str) -> None:
    ws = Workspace.create(tmp_path / "ws")
    with pytest.raises(ModelError, match=message):
        register_model(ws, "small", [SMALL], renames=renames)


def test_an_unregistered_model_names_the_one_that_ships(tmp_path: Path) -> None:
    """'presegment small' on a new workspace said to run 'model add small MODEL_FOLDER' without saying where the
    shipped model lies."""
    from annotator.small_model import SMALL_MODEL_FOLDER

    ws = Workspace.create(tmp_path / "ws")
    with pytest.raises(ModelError, match=r"model 'small': not registered in .* \(registered: none\); run 'ctcurate "
                                         r"model add small MODEL_FOLDER' \(the small 5-structure model that ships "
                                         rf"with ctcurate: {SMALL_MODEL_FOLDER.parent}\)"):
        load_model_record(ws, "small")
