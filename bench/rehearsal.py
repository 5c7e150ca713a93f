"""The scale rehearsal: every stage of ctcurate on a synthetic PACS export of the reference dataset's size.

It writes a synthetic export (:mod:`synthetic_pacs`, 1,520 exams from 8 sites and 8 exams at full size), then
runs the stages a steward runs, each as the ``ctcurate`` command a user types: init, scan, sample, filter,
convert, presegment (the small model), qa labels, qa meta, split, datasheet and release, plus the annotators'
exclusions of exams whose anatomy is distorted (the one reason no rule can see). It does so at 100, 400 and
1,368 sampled exams, on 1 and 2 workers of the local pool and on a Dask LocalCluster of 2 workers, recording the
wall time and the peak memory (resident set of the command and all its processes) of each stage; then scan
alone on the whole export (1 and 2 workers in alternation), and the per-case costs of the full-size exams.
``docs/scale.md`` gets the results, the growth of each stage from 400 to 1,368 exams, 2 workers against 1, a plot,
and the projection of the reference scale.

Usage: ``.venv/bin/python bench/rehearsal.py [--out DIR] [--sizes 100,400,1368] [--full-size 8] [--doc PAGE] [--quick]
[--report-only]``; ``--quick`` runs sizes 30 and 60 only (a check of the script, about 15 min). Only a run of the
default sizes replaces ``docs/scale.md``; any other writes ``OUT/scale.md``. ``--report-only`` writes the page
again from a run's figures (a stopped run's too); ``--pairs-only`` measures the alternating 1 / 2 worker pairs
and the scan alone again in a finished run's folder (about 30 min). Runs unattended; 70-85 min on 2 cores (85 in
the run of docs/scale.md, on a day the machine ran slow, 4 of them writing the export, with pairs alternated 3
times, each alternation about 8 min; the machine's speed varies from day to day). An export already in ``OUT`` is
reused (with the time its writing took, kept beside it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from alternation import paired, scan_alone  # noqa: E402
from bench_args import OneLineParser, at_least  # noqa: E402
from rehearsal_workspace import ANSWERS, exclude_distorted, rehearsal_facts, subset  # noqa: E402
from scale_report import KEPT_SHARE  # noqa: E402
from stage_runs import CONFIGS, REPO, Measured, machine, read_once, run_stage, save_partial  # noqa: E402
from synthetic_pacs import build_export  # noqa: E402

# stages whose command is run a second time with nothing left to do: its fixed cost (start, tables, reports)
RERUN = {"convert", "presegment", "qa labels"}


def pipeline(size: int, config: str, export: Path, ws: Path, truth: list[dict[str, str]], log: Path,
             scheduler: str | None, stages: set[str]) -> list[Measured]:
    """All stages on one workspace; ``config`` is one of :data:`CONFIGS`."""
    workers = CONFIGS[config] if scheduler is None else ["--scheduler", scheduler]
    out: list[Measured] = []

    def stage(name: str, args: list[str], items: int = 0, allowed: tuple[int, ...] = (0,)) -> None:
        if name not in stages:
            return
        for label in (name, f"{name} (rerun)") if name in RERUN and scheduler is None else (name,):
            seconds, peak = run_stage(args, log, allowed=allowed)
            out.append(Measured(size, config, label, seconds, peak, items))
            save_partial(log.parent, out[-1:])
            print(f"  {size:5d} {config:14s} {label:20s} {seconds:8.1f} s {peak:8.0f} MiB", flush=True)

    shutil.rmtree(ws, ignore_errors=True)
    run_stage(["init", str(ws), "--workers", CONFIGS[config][1], "--seed", "1368"], log)
    w = ["-w", str(ws)]
    n_files = read_once(export)  # each size's scan with its files in the page cache, as in the pairs
    stage("scan", ["scan", str(export), *w, *workers], n_files)
    stage("sample", ["sample", *w, "--n", str(size)], size)
    stage("filter", ["filter", *w], size)
    stage("convert", ["convert", *w, *workers], size)
    if "exclude" in stages:
        start = time.perf_counter()
        n = exclude_distorted(ws, truth)
        out.append(Measured(size, config, "exclude", time.perf_counter() - start, 0.0, n))
        save_partial(log.parent, out[-1:])
    if "presegment" in stages:
        from annotator.small_model import SMALL_MODEL_FOLDER

        run_stage(["model", "add", "small", str(SMALL_MODEL_FOLDER), *w], log)
    stage("presegment", ["presegment", "small", *w, *workers], size)
    stage("qa labels", ["qa", "labels", str(ws), *workers, "--fail-on", "none"], size)
    stage("qa meta", ["qa", "meta", str(ws), "--no-fail-on-failure"], size)
    stage("split", ["split", *w, "--version", "1.0.0"], size)
    if "datasheet" in stages:
        (ws / "datasheet_answers.yaml").write_text(ANSWERS)
    stage("datasheet", ["datasheet", *w], size)
    stage("release", ["release", "1.0.0", *w, "--force-qa", "--copies"], size)
    return out


ALL = {"scan", "sample", "filter", "convert", "exclude", "presegment", "qa labels", "qa meta", "split", "datasheet",
       "release"}
# stages the 1-worker run repeats at the largest size (their 1 vs 2 workers is measured in pairs below)
PARALLEL = {"scan", "sample", "filter", "convert", "exclude"}


def middle_size(sizes: list[int]) -> int:
    """The size the pairs and Dask run at: the middle one, the smaller of the two middle ones of an even count (the
    1-worker run at the largest size stops after convert)."""
    return sorted(sizes)[(len(sizes) - 1) // 2]


def plan(sizes: list[int]) -> list[tuple[int, str, set[str]]]:
    """(size, config, stages), the most telling first: every stage on 2 workers at every size, largest first; on
    1 worker every stage, but at the largest size only those that run on workers; Dask at the middle size."""
    largest, middle = max(sizes), middle_size(sizes)
    runs = [(size, "local2", ALL) for size in sorted(sizes, reverse=True)]
    runs += [(size, "local1", PARALLEL if size == largest and len(sizes) > 1 else ALL)
             for size in sorted(sizes, reverse=True)]
    runs.append((middle, "dask2", ALL))
    return runs


def run_pipeline_plain(export: Path, ws: Path, log: Path, workers: int) -> list[Measured]:
    """The full-size exams through scan .. qa labels on ``workers`` workers (config ``full-size`` for 2)."""
    out: list[Measured] = []
    config = "full-size" if workers == 2 else f"full-size-local{workers}"
    n_cases = sum(1 for _ in export.iterdir())
    shutil.rmtree(ws, ignore_errors=True)
    run_stage(["init", str(ws), "--workers", str(workers)], log)
    w = ["-w", str(ws)]
    from annotator.small_model import SMALL_MODEL_FOLDER

    for name, args in (("scan", ["scan", str(export), *w]), ("sample", ["sample", *w]), ("filter", ["filter", *w]),
                       ("convert", ["convert", *w]), ("model", ["model", "add", "small", str(SMALL_MODEL_FOLDER), *w]),
                       ("presegment", ["presegment", "small", *w]),
                       ("qa labels", ["qa", "labels", str(ws), "--fail-on", "none"])):
        seconds, peak = run_stage(args, log)
        if name != "model":
            out.append(Measured(n_cases, config, name, seconds, peak, n_cases))
            print(f"  {config} {name:12s} {seconds:8.1f} s {peak:8.0f} MiB ({n_cases} cases)", flush=True)
            save_partial(log.parent, out[-1:])
    return out


DEFAULT_SIZES, DEFAULT_FULL_SIZE = (100, 400, 1368), 8
QUICK_SIZES, QUICK_FULL_SIZE = (30, 60), 2
MIN_SIZE = 20  # sampled exams: fewer leave the split's validation and test sets empty


def _sizes(text: str) -> list[int]:
    """``--sizes``: a comma-separated list of sampled-exam counts of at least MIN_SIZE."""
    try:
        sizes = sorted({int(part) for part in text.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected counts separated by commas, like 100,400,1368, found "
                                         f"{text!r}") from None
    if sizes[0] < MIN_SIZE:
        raise argparse.ArgumentTypeError(f"expected each size to be at least {MIN_SIZE} exams, found {sizes[0]}")
    return sizes


def main() -> None:
    parser = OneLineParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--out", type=Path, default=Path("/tmp/ctcurate-rehearsal"),
                        help="Working folder: the export, workspaces, logs, results (default /tmp/ctcurate-rehearsal).")
    parser.add_argument("--sizes", type=_sizes, default=None,
                        help="Sampled exams per run (default 100,400,1368; each at least 20).")
    parser.add_argument("--full-size", type=at_least(0), default=None,
                        help="Exams at full size for per-case costs (default 8; 0: none, and no projection).")
    parser.add_argument("--quick", action="store_true", help="Sizes 30 and 60, 2 full-size exams: a check.")
    parser.add_argument("--doc", type=Path, default=None,
                        help="Page to write (default: the repository's docs/scale.md for a run of the default sizes, "
                             "else OUT/scale.md); its plot goes to img/NAME.png beside it.")
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--pairs-only", action="store_true",
                       help="Measure only the alternating 1 / 2 worker pairs and the scan alone again, on the export "
                            "already in OUT, and write the page again with them in place of the run's earlier ones.")
    again.add_argument("--report-only", action="store_true",
                       help="Write the page again from OUT/results.json, or from the figures of a run that was "
                            "stopped (OUT/partial.jsonl).")
    args = parser.parse_args()
    if args.quick and (args.sizes is not None or args.full_size is not None):
        parser.error("--quick runs sizes 30 and 60 with 2 full-size exams; leave out --sizes and --full-size, or "
                     "--quick")
    _check_paths(parser, args.out, args.doc)
    if args.report_only or args.pairs_only:
        if args.sizes is not None or args.full_size is not None or args.quick:
            parser.error("--report-only and --pairs-only take the sizes of the run in --out; leave out --sizes, "
                         "--full-size and --quick")
        sizes, full = _run_sizes(parser, args.out)
    else:
        sizes = list(QUICK_SIZES if args.quick else args.sizes or DEFAULT_SIZES)
        full = QUICK_FULL_SIZE if args.quick else DEFAULT_FULL_SIZE if args.full_size is None else args.full_size
    if args.doc is None:  # only the run of the published page replaces it
        reference = tuple(sizes) == DEFAULT_SIZES and full == DEFAULT_FULL_SIZE
        args.doc = REPO / "docs" / "scale.md" if reference else args.out / "scale.md"
    try:
        if args.report_only:
            report_again(parser, args.out, args.doc)
        elif args.pairs_only:
            pairs_again(parser, args.out, args.doc, sizes, full)
        else:
            rehearse(args.out, args.doc, sizes, full)
    except KeyboardInterrupt:
        raise SystemExit(f"interrupted; the figures measured so far are in {args.out / 'partial.jsonl'}: write a "
                         f"page from them with --report-only --out {args.out}") from None
    print(f"page written: {args.doc}")


def _check_paths(parser: argparse.ArgumentParser, out: Path, doc: Path | None) -> None:
    """Refuse, before any work, an --out or a --doc that cannot be written where it is meant to go."""
    for path, name, what in ((out, "--out", "a folder"), (doc, "--doc", "a page (a file)")):
        if path is None:
            continue
        if path.exists() and path.is_dir() != (name == "--out"):
            parser.error(f"{name} {path}: expected {what}, found " + ("a folder" if path.is_dir() else "a file"))
        above = next((p for p in path.parents if p.exists()), None)
        if above is not None and not above.is_dir():
            parser.error(f"{name} {path}: {above} is a file, not a folder; choose a path under a folder")


def _run_sizes(parser: argparse.ArgumentParser, out: Path) -> tuple[list[int], int]:
    """The sampled-exam sizes and the full-size exams of the run in ``out`` (its results.json or partial.jsonl)."""
    results = out / "results.json"
    if results.is_file():
        data = json.loads(results.read_text())
        rows = data["results"]
        if "sizes" in data:
            return list(data["sizes"]), int(data["full_size"])
    elif (out / "partial.jsonl").is_file():
        rows = [json.loads(line) for line in (out / "partial.jsonl").read_text().splitlines() if line.strip()]
    else:
        parser.error(f"{out}: no rehearsal there (no results.json or partial.jsonl); run the rehearsal first, or "
                     "pass the --out of one")
    sizes = sorted({r["size"] for r in rows if r["config"] in ("local1", "local2", "dask2")})
    full = max((r["items"] for r in rows if r["config"] == "full-size"), default=0)
    return sizes, full


def rehearse(out: Path, doc: Path, sizes: list[int], full: int) -> None:
    """The whole rehearsal: the export, then every measurement; results.json and the page."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "partial.jsonl").unlink(missing_ok=True)  # the figures of this run only
    log = out / "rehearsal.log"
    started = time.perf_counter()
    results: list[Measured] = []
    n_exams = math.ceil(max(sizes) / KEPT_SHARE)
    source = out / f"pacs-{n_exams}-{full}"
    written = source / "written.json"  # how long writing it took, for a later run that reuses it
    row: Measured | None
    if not (source / "truth.csv").is_file():
        print(f"writing the synthetic export: {n_exams} exams + {full} at full size", flush=True)
        start = time.perf_counter()
        build_export(source, n_exams, seed=0, full_size=full, workers=os.cpu_count() or 2)
        row = Measured(n_exams, "generator", "write export", time.perf_counter() - start, 0.0,
                       int((source / "files.txt").read_text()))
        written.write_text(json.dumps(asdict(row)))
    else:
        print(f"reusing the synthetic export in {source}", flush=True)
        row = Measured(**json.loads(written.read_text())) if written.is_file() else None
    if row is not None:
        results.append(row)
        save_partial(out, [row])
    import csv

    with (source / "truth.csv").open() as handle:
        truth = [row for row in csv.DictReader(handle) if row["full_size"] == "False"]

    results += scan_alone(max(sizes), source / "export", out, log)
    if full:
        for workers in (2, 1):  # per-case costs where the work per case dominates, and 1 vs 2 workers there
            results += run_pipeline_plain(source / "export" / "full", out / f"ws-full-{workers}", log, workers)
    middle = middle_size(sizes)
    print(f"1 and 2 workers in alternation, {middle} exams", flush=True)
    results += paired(middle, subset(source / "export", truth, math.ceil(middle / KEPT_SHARE),
                                     out / f"export-{middle}"), out, log)
    cluster = None
    try:
        for size, config, stages in plan(sizes):
            export = subset(source / "export", truth, math.ceil(size / KEPT_SHARE), out / f"export-{size}")
            scheduler = None
            if config.startswith("dask"):
                from distributed import LocalCluster

                cluster = cluster or LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                                  dashboard_address=None)
                scheduler = cluster.scheduler_address
            print(f"{size} exams, {config}", flush=True)
            results += pipeline(size, config, export, out / f"ws-{size}-{config}", truth, log, scheduler, stages)
    finally:
        if cluster is not None:
            cluster.close()
    total = time.perf_counter() - started
    facts = rehearsal_facts(out / f"ws-{max(sizes)}-local2")
    (out / "results.json").write_text(json.dumps({"results": [asdict(r) for r in results], "facts": facts,
                                                  "total_s": total, "machine": machine(), "sizes": sizes,
                                                  "full_size": full, "warm_scans": True}, indent=1))
    from scale_report import write_report

    write_report(out / "results.json", doc)
    print(f"rehearsal done in {total / 60:.0f} min")


def pairs_again(parser: argparse.ArgumentParser, out: Path, doc: Path, sizes: list[int], full: int) -> None:
    """The alternating pairs (at the middle size) and the scan alone on the whole export measured again in a
    finished run's folder; its results.json keeps every other figure, these are replaced and dated."""
    results_json = out / "results.json"
    source = out / f"pacs-{math.ceil(max(sizes) / KEPT_SHARE)}-{full}"
    if not results_json.is_file() or not (source / "truth.csv").is_file():
        parser.error(f"{out}: no finished rehearsal there ({results_json.name} and its export {source.name}/ are "
                     "needed); let a rehearsal finish in this folder first (a stopped one: --report-only)")
    import csv

    with (source / "truth.csv").open() as handle:
        truth = [row for row in csv.DictReader(handle) if row["full_size"] == "False"]
    middle = middle_size(sizes)
    log = out / "rehearsal.log"
    (out / "partial.jsonl").unlink(missing_ok=True)  # the figures of this measurement only
    print(f"1 and 2 workers in alternation, {middle} exams", flush=True)
    pairs = paired(middle, subset(source / "export", truth, math.ceil(middle / KEPT_SHARE), out / f"export-{middle}"),
                   out, log)
    pairs += scan_alone(max(sizes), source / "export", out, log)
    data = json.loads(results_json.read_text())
    again = ("pair-", "scan-local", "machine-")
    data["results"] = [r for r in data["results"] if not r["config"].startswith(again)] + [asdict(r) for r in pairs]
    data["pairs_measured"] = time.strftime("%Y-%m-%d %H:%M")
    data["sizes"], data["full_size"] = sizes, full
    results_json.write_text(json.dumps(data, indent=1))
    from scale_report import write_report

    write_report(results_json, doc)


def report_again(parser: argparse.ArgumentParser, out: Path, doc: Path) -> None:
    """The page from a finished run's results.json, else from a stopped run's partial.jsonl (and the largest
    2-worker workspace it reached)."""
    from scale_report import write_report

    finished = out / "results.json"
    if finished.is_file() and math.isfinite(json.loads(finished.read_text()).get("total_s", math.nan)):
        write_report(finished, doc)
        return
    if not (out / "partial.jsonl").is_file():
        parser.error(f"{out / 'partial.jsonl'}: no such file; --report-only needs the --out of a rehearsal "
                     "that ran (stopped or not)")
    rows = [json.loads(line) for line in (out / "partial.jsonl").read_text().splitlines() if line.strip()]
    from curation.workspace import Workspace

    reached = [r["size"] for r in rows if r["config"] == "local2"]
    ws = out / f"ws-{max(reached)}-local2" if reached else None
    facts = rehearsal_facts(ws) if ws is not None and ws.is_dir() and \
        Workspace.open(ws).release("1.0.0").root.is_dir() else {}
    finished.write_text(json.dumps({"results": rows, "facts": facts, "total_s": float("nan"),
                                    "machine": machine()}, indent=1))
    write_report(finished, doc)




if __name__ == "__main__":
    main()
