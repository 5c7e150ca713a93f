"""1 worker against 2, measured in alternation: the stages that run on workers, each on a fresh copy of one
workspace, and the scan alone on the whole export; beside each round, the machine's own speed-up from 1 to 2
processes (this machine's speed drifts over minutes, so runs far apart in time compare badly)."""

from __future__ import annotations

import shutil
from pathlib import Path

from stage_runs import CONFIGS, Measured, cpu_baseline, read_once, run_stage, save_partial

# 1 vs 2 workers, measured in alternation on copies of one workspace (this machine's speed drifts over minutes)
PAIRED = ("scan", "convert", "presegment", "qa labels")
PAIR_CONFIGS = ("local1", "local2", "local1-1thread")
ROUNDS = 3  # alternations of the pairs and of the scan alone; the report keeps the fastest of each


def paired(size: int, export: Path, out: Path, log: Path, rounds: int = ROUNDS) -> list[Measured]:
    """Scan (every file read again), convert, presegment and qa labels on 1 worker, 2 workers and 1 worker with one
    thread, alternating, each on a fresh copy of the workspace the stage starts from; ``rounds`` times (the report
    keeps the fastest)."""
    from annotator.small_model import SMALL_MODEL_FOLDER
    from curation.workspace import Workspace

    measured: list[Measured] = []
    base = out / f"ws-pair-{size}"
    shutil.rmtree(base, ignore_errors=True)
    w = ["-w", str(base)]
    for args in (["init", str(base), "--seed", "1368"], ["scan", str(export), *w], ["sample", *w, "--n", str(size)],
                 ["filter", *w]):
        run_stage(args, log)
    commands = {"scan": lambda ws: ["scan", "-w", str(ws), "--full"], "convert": lambda ws: ["convert", "-w", str(ws)],
                "presegment": lambda ws: ["presegment", "small", "-w", str(ws)],
                "qa labels": lambda ws: ["qa", "labels", str(ws), "--fail-on", "none"]}
    for stage in PAIRED:
        if stage == "presegment":
            run_stage(["model", "add", "small", str(SMALL_MODEL_FOLDER), *w], log)
        for turn in range(rounds):
            for config in PAIR_CONFIGS:
                copy = out / "ws-pair-run"
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(base, copy, symlinks=True)
                shutil.rmtree(Workspace.open(copy).qa_dir, ignore_errors=True)
                seconds, peak = run_stage([*commands[stage](copy), *CONFIGS[config]], log)
                measured.append(Measured(size, f"pair-{config}", stage, seconds, peak, size, f"round {turn + 1}"))
                save_partial(out, measured[-1:])
                # the same command again with nothing left to do: its fixed cost (start, tables, catalog, reports)
                again = [*commands[stage](copy), *CONFIGS[config]]
                rerun, peak = run_stage([a for a in again if a != "--full"], log)
                measured.append(Measured(size, f"pair-{config}", f"{stage} (rerun)", rerun, peak, size,
                                         f"round {turn + 1}"))
                save_partial(out, measured[-1:])
                print(f"  {size:5d} pair {config:14s} {stage:12s} {seconds:8.1f} s (nothing to do: {rerun:.1f} s)",
                      flush=True)
            measured += _machine(out, size, stage, turn)
        if stage != "scan":  # the next stage starts from this one's result
            run_stage([*commands[stage](base), "--workers", "2"], log)
    shutil.rmtree(out / "ws-pair-run", ignore_errors=True)
    return measured


def _machine(out: Path, size: int, stage: str, turn: int) -> list[Measured]:
    """The machine's own speed-up from 1 to 2 processes (a CPU-bound loop), measured beside a round of ``stage``."""
    alone, together = cpu_baseline()
    rows = [Measured(size, "machine-1", stage, alone, 0.0, 1, f"round {turn + 1}"),
            Measured(size, "machine-2", stage, together, 0.0, 2, f"round {turn + 1}")]
    save_partial(out, rows)
    print(f"  machine beside {stage}: a CPU-bound loop, 2 processes {2 * alone / together:.2f}x as fast as 1",
          flush=True)
    return rows


def scan_alone(size: int, export: Path, out: Path, log: Path, rounds: int = ROUNDS) -> list[Measured]:
    """Scan of the whole export on 1 and 2 workers, alternating, ``rounds`` times (the report keeps the fastest);
    every run reads every file (a first scan, then ``--full``), all found in the page cache (read once first)."""
    print("scan alone on the whole export, 1 and 2 workers in alternation (read once first: every run finds the "
          "files in the page cache)", flush=True)
    n_files = read_once(export)
    measured: list[Measured] = []
    for config in ("scan-local1", "scan-local2"):
        shutil.rmtree(out / f"ws-scan-{config}", ignore_errors=True)
        run_stage(["init", str(out / f"ws-scan-{config}"), "--seed", "1368"], log)
    for turn in range(rounds):
        for config in ("scan-local1", "scan-local2"):
            ws = out / f"ws-scan-{config}"
            args = ["scan", "-w", str(ws), *CONFIGS[config]]
            seconds, peak = run_stage([*args, str(export)] if turn == 0 else [*args, "--full"], log)
            measured.append(Measured(size, config, "scan", seconds, peak, n_files, f"round {turn + 1}"))
            save_partial(out, measured[-1:])
            rerun, peak = run_stage(args, log)  # nothing changed: its fixed cost (start, catalog, tables)
            measured.append(Measured(size, config, "scan (rerun)", rerun, peak, n_files, f"round {turn + 1}"))
            save_partial(out, measured[-1:])
            print(f"  {config:14s} scan {seconds:8.1f} s ({n_files} files, round {turn + 1}; nothing to do: "
                  f"{rerun:.1f} s)", flush=True)
        measured += _machine(out, size, "scan alone", turn)
    return measured
