"""The exclusion flow counts what convert produced: an exam whose conversion failed is not 'included'."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ctcurate.cli import app
from curation.selection.filter import flow_counts
from tests.cli_runner import CliRunner

runner = CliRunner()


def test_a_failed_conversion_is_counted_and_a_repaired_one_is_not(copy_series, filtered_workspace,
                                                                    tmp_path: Path) -> None:
    export = copy_series("dcm_qa_ct/In/Philips/S21570/S2010")
    ws = filtered_workspace(export)
    assert flow_counts(ws)[2] == 1
    files = sorted(p for p in (export / "S2010").iterdir() if p.name != "DIRFILE")
    victim = files[len(files) // 3]
    whole = victim.read_bytes()
    victim.write_bytes(whole[: len(whole) - 4000])  # its pixel data cut short after the filter ran
    out = runner.invoke(app, ["convert", "-w", str(ws.root), "--workers", "1"])
    assert out.exit_code == 1 and "0 converted, 0 already done, 1 failed" in " ".join(out.output.split())
    sampled, excluded, included = flow_counts(ws)
    assert (sampled, excluded, included) == (1, {"conversion failed": 1}, 0)
    assert len(pd.read_csv(ws.meta_csv, sep=";")) == included
    assert ws.flow_figure.with_suffix(".png").stat().st_mtime_ns >= victim.stat().st_mtime_ns  # drawn again
    victim.write_bytes(whole)
    out = runner.invoke(app, ["convert", "-w", str(ws.root), "--workers", "1"])
    assert out.exit_code == 0 and flow_counts(ws) == (1, {}, 1) and not ws.convert_failures_table.exists()
