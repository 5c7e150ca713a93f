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


def test_filter_says_in_one_line_when_no_exam_was_excluded(copy_series, filtered_workspace) -> None:
    """It printed the table of exclusions with no row; the table is for when there are exclusions."""
    import dataclasses

    ws = filtered_workspace(copy_series("dcm_qa_ct/In/Philips/S21570/S2010"))
    out = runner.invoke(app, ["filter", "-w", str(ws.root)])
    assert out.exit_code == 0
    assert out.output.strip() == "no exam was excluded: 1 of 1 sampled exams included; flow diagram: " \
                                 f"{ws.flow_figure.with_suffix('.png')}"
    settings = ws.settings
    ws.save_settings(dataclasses.replace(settings, exclusion=dataclasses.replace(settings.exclusion,
                                                                                 min_slices=10_000)))
    out = runner.invoke(app, ["filter", "-w", str(ws.root)])
    shown = " ".join(out.output.split())
    assert out.exit_code == 0 and "excluded because" in shown and "0 of 1 sampled exams included" in shown
    assert "no exam was excluded" not in shown


def test_the_figure_is_drawn_again_only_when_its_counts_change(tmp_path: Path) -> None:
    """Convert redraws the figure after every run; drawing it (and loading matplotlib) was a second of each."""
    import json

    from curation.selection.flow import draw_flow

    stem = tmp_path / "flow"
    png, svg = draw_flow(10, {"upper/lower extremity": 2}, 8, stem, title="t")
    counts = json.loads(stem.with_suffix(".json").read_text())
    assert counts == {"title": "t", "sampled": 10, "excluded": {"upper/lower extremity": 2}, "included": 8}
    stamps = (png.stat().st_mtime_ns, svg.stat().st_mtime_ns)
    draw_flow(10, {"upper/lower extremity": 2}, 8, stem, title="t")
    assert (png.stat().st_mtime_ns, svg.stat().st_mtime_ns) == stamps  # the same counts: not drawn again
    png_bytes = png.read_bytes()
    draw_flow(10, {"upper/lower extremity": 3}, 7, stem, title="t")
    assert png.read_bytes() != png_bytes and json.loads(stem.with_suffix(".json").read_text())["included"] == 7
    svg.unlink()  # a figure file gone (or never finished): drawn again whatever the counts say
    draw_flow(10, {"upper/lower extremity": 3}, 7, stem, title="t")
    assert svg.is_file()
