"""The error-injection set (``bench/label_qa_injected.py``): every kind of error injected into the real v1
and v2 maps, in both storage forms, is caught on the structure it touched (or by a case verdict), and the
real maps as delivered show no error. The bench runs more cases per kind and prints the table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "label_qa_injected.py"


@pytest.fixture(scope="module")
def injected():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("label_qa_injected", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_injected_errors_are_caught_and_clean_maps_pass(injected, shared_data: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    status = injected.main(["--shared-data", str(shared_data), "--per-kind", "2", "--seed", "1", "--workers", "2",
                            "--out", str(tmp_path), "--target", "0.95"])
    printed = capsys.readouterr().out
    results = pd.read_csv(tmp_path / "results.csv")
    clean = results[results["kind"] == "clean"]
    assert len(clean) == 10 and clean["caught"].all(), printed  # no error on a real map as delivered
    errors = results[results["kind"] != "clean"]
    assert set(errors["kind"]) == set(injected.KINDS) and set(errors["form"]) == {"masks", "multilabel"}
    assert errors["caught"].mean() >= 0.95, printed
    assert status == 0 and "caught" in printed and "swap" in printed  # the table per kind
