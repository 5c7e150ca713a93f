"""nnU-Net's environment is built in one place and restored after in-process calls."""

from __future__ import annotations

import os
from pathlib import Path

from annotator.nnunet_env import NnunetFolders, nnunet_env, nnunet_environment

PROC, RAW = "nnUNet_def_n_proc", "nnUNet_raw"  # nnU-Net's own spelling


def test_env_for_subprocesses_and_in_process_calls(tmp_path: Path, monkeypatch) -> None:
    folders = NnunetFolders.under(tmp_path, processes=2, augmentation_workers=1)
    env = nnunet_env(folders)
    assert env["nnUNet_raw"] == str(tmp_path / "nnUNet_raw") and env["nnUNet_def_n_proc"] == "2"
    assert env["nnUNet_n_proc_DA"] == "1" and env["nnUNet_results"].endswith("nnUNet_results")
    monkeypatch.setenv(PROC, "16")
    monkeypatch.delenv(RAW, raising=False)
    with nnunet_environment(folders):
        assert os.environ.get(PROC) == "2" and os.environ.get(RAW) == str(folders.raw)
    assert os.environ.get(PROC) == "16" and RAW not in os.environ
