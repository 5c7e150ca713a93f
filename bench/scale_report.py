"""Write docs/scale.md (and its plot) from the scale rehearsal's results.json.

Usage: ``.venv/bin/python bench/scale_report.py RESULTS_JSON [DOC]`` (the rehearsal calls it itself).
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale_aim import aim_text  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SUPERLINEAR = 1.2  # a growth exponent above this, between the two largest sizes, is faster than linear
REFERENCE_CASES = 1204
GPU_SECONDS_PER_CASE = (5.0, 20.0)  # assumed range for one full-size case on one GPU (not measured here)
GPU_PRICE_PER_HOUR = 2.0  # assumed, USD, a cloud GPU
REFERENCE_SIZES = [100, 400, 1368]  # sampled exams of the run that makes docs/scale.md (rehearsal's default)
PER_CASE_STAGES = ("scan", "convert", "presegment", "qa labels")  # the stages that take workers
PROJECTED = ("convert", "presegment", "qa labels")  # their time follows the converted cases: projected per case
KEPT_SHARE = 0.9  # sampled exams per exported exam: the sampling frame is a little larger than the sample


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _growth(points: list[tuple[int, float]]) -> float | None:
    """Exponent k of time ~ size^k between the two largest sizes."""
    points = sorted(p for p in points if p[1] > 0)
    if len(points) < 2:
        return None
    (n1, t1), (n2, t2) = points[-2], points[-1]
    return math.log(t2 / t1) / math.log(n2 / n1) if n2 != n1 else None


def _plot(by: dict[tuple[str, str], list[tuple[int, float]]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5), dpi=100)
    stages = sorted({stage for _config, stage in by})  # ten at most: tab10's colours are all distinct
    colours = {stage: plt.get_cmap("tab10")(i % 10) for i, stage in enumerate(stages)}
    for (config, stage), points in sorted(by.items()):
        if config not in ("local2", "local1") or len(points) < 2 or stage.endswith("(rerun)"):
            continue
        xs, ys = zip(*sorted(points), strict=True)
        ax.plot(xs, ys, marker="o", linestyle="-" if config == "local2" else "--", color=colours[stage],
                label=f"{stage} ({config[-1]} worker{'s' if config[-1] != '1' else ''})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("sampled exams")
    ax.set_ylabel("wall time (s)")
    ax.set_title("ctcurate stages by exams (a straight line of slope 1 is linear growth)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))  # beside the lines, not over them
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def _counts(by_split: dict[str, int] | None) -> str:
    """'train 1083, val 60, test 60' (the splits in that order)."""
    order = {"train": 0, "val": 1, "test": 2}
    items = sorted((by_split or {}).items(), key=lambda kv: (order.get(kv[0], 3), kv[0]))
    return ", ".join(f"{name} {count}" for name, count in items) or "none"


def write_report(results_json: Path, doc: Path) -> None:
    """``results_json``: the rehearsal's results.json, or the partial.jsonl of an interrupted rehearsal."""
    if results_json.suffix == ".jsonl":  # an interrupted run: its figures so far, no totals
        import os

        import psutil

        rows = [json.loads(line) for line in results_json.read_text().splitlines() if line.strip()]
        data = {"results": rows, "facts": {}, "total_s": float("nan"), "machine": {
            "cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30),
            "python": sys.version.split()[0]}}
    else:
        data = json.loads(results_json.read_text())
    results: list[dict[str, Any]] = data["results"]
    facts = data.get("facts", {})
    by: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    peak: dict[tuple[str, str, int], float] = {}
    for r in results:
        if r["config"] in ("local1", "local2", "dask2", "local1-1thread"):
            by[(r["config"], r["stage"])].append((r["size"], r["seconds"]))
            peak[(r["config"], r["stage"], r["size"])] = r["peak_mib"]
    sizes = sorted({r["size"] for r in results if r["config"] == "local2"})
    if not sizes:
        raise SystemExit(f"{results_json}: no stage was measured on 2 workers yet (the run stopped in its first "
                         "minutes); nothing to write a page from: run the rehearsal again")
    # the annotators' exclusions are a step of the script, in its own process (no command, no memory of its own)
    stages = list(dict.fromkeys(r["stage"] for r in results if r["config"] == "local2"
                                and not r["stage"].endswith("(rerun)") and r["stage"] != "exclude"))
    plot = doc.parent / "img" / f"{doc.stem}.png"  # each page its own plot
    presegmented = {(config, n) for (config, stage), pts in by.items() if stage == "presegment" for n, _t in pts}
    checked = {k: [(n, t) for n, t in v if k[1] != "qa labels" or (k[0], n) in presegmented] for k, v in by.items()}
    _plot({k: v for k, v in checked.items() if k[0] in ("local1", "local2") and k[1] in stages}, plot)

    def seconds(config: str, stage: str, size: int) -> float | None:
        return next((t for n, t in by.get((config, stage), []) if n == size), None)

    rows = []
    flagged = []
    for stage in stages:
        row = [stage]
        for size in sizes:
            t = seconds("local2", stage, size)
            row.append("" if t is None else f"{t:.1f} s / {peak.get(('local2', stage, size), 0):.0f} MiB")
        k = _growth(by[("local2", stage)])
        row.append("" if k is None else f"{k:.2f}")
        if k is not None and k > SUPERLINEAR and (seconds("local2", stage, sizes[-1]) or 0) > 5:
            flagged.append(stage)
        rows.append(row)
    growth = _table(["stage (2 workers)", *[f"{n} exams" for n in sizes], "growth exponent"], rows)

    def net(config: str, stage: str, size: int) -> float | None:
        """A stage's time less that of its rerun with nothing to do (start, tables, reports)."""
        whole, fixed = seconds(config, stage, size), seconds(config, f"{stage} (rerun)", size)
        return None if whole is None or fixed is None else whole - fixed

    def ratio(a: float | None, b: float | None) -> str:
        return "" if a is None or b is None or b <= 0 else f"{a / b:.2f}x"

    scaling_rows = []
    for size in sizes:
        for stage in (s for s in stages if s in PER_CASE_STAGES):  # the others take no --workers
            one, two = seconds("local1", stage, size), seconds("local2", stage, size)
            dask = seconds("dask2", stage, size)
            if two is None or (one is None and dask is None):
                continue
            fixed = [seconds(c, f"{stage} (rerun)", size) for c in ("local1", "local2")]
            scaling_rows.append([
                str(size), stage, "" if one is None else f"{one:.1f}", f"{two:.1f}", ratio(one, two),
                "" if None in fixed else f"{fixed[0]:.1f} / {fixed[1]:.1f}",
                ratio(net("local1", stage, size), net("local2", stage, size)),
                "" if dask is None else f"{dask:.1f}" + (f" ({ratio(one, dask)})" if one is not None else "")])
    scaling = _table(["exams", "stage", "1 worker (s)", "2 workers (s)", "speed-up",
                      "rerun, nothing to do: 1 / 2 workers (s)", "speed-up of the per-case part",
                      "Dask, 2 workers (s) (speed-up vs 1 worker)"], scaling_rows)
    paired = _fastest(results, lambda config: config.startswith("pair-"))
    best = {(config.removeprefix("pair-"), stage): r["seconds"] for (config, stage), r in paired.items()}
    pair_size = next((r["size"] for r in paired.values()), 0)
    pair_rows = []
    pair_configs = ("local1", "local1-1thread", "local2")

    def less(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a - b

    for stage in dict.fromkeys(stage for _c, stage in best if not stage.endswith(" (rerun)")):
        one, thread1, two = (best.get((c, stage)) for c in pair_configs)
        fixed = [best.get((c, f"{stage} (rerun)")) for c in pair_configs]
        row = [stage, *("" if t is None else f"{t:.1f}" for t in (one, thread1, two)), ratio(one, two),
               ratio(thread1, two)]
        if any(f is not None for f in fixed):  # runs since the pairs measure their fixed cost too
            rest_two = less(two, fixed[2])
            row += [" / ".join("" if f is None else f"{f:.1f}" for f in fixed),
                    ratio(less(one, fixed[0]), rest_two), ratio(less(thread1, fixed[1]), rest_two)]
        pair_rows.append(row)
    wide = any(len(r) > 6 for r in pair_rows)
    extra = ["nothing to do: 1 / 1 thread / 2 (s)", "rest: 2 vs 1", "rest: 2 vs 1 with 1 thread"] if wide else []
    pairs = _table(["stage", "1 worker (s)", "1 worker, 1 thread (s)", "2 workers (s)", "2 workers vs 1",
                    "2 workers vs 1 with 1 thread", *extra],
                   [r + [""] * (9 - len(r)) if wide else r for r in pair_rows])
    full_by = {(r["config"], r["stage"]): r["seconds"] for r in results if r["config"].startswith("full-size")}
    full_scaling = _table(["stage", "1 worker (s)", "2 workers (s)", "speed-up"], [
        [stage, f"{full_by[('full-size-local1', stage)]:.1f}", f"{full_by[('full-size', stage)]:.1f}",
         ratio(full_by[("full-size-local1", stage)], full_by[("full-size", stage)])]
        for stage in PROJECTED  # (the scan of these few files runs in the command's process on any count)
        if ("full-size-local1", stage) in full_by and ("full-size", stage) in full_by])

    alone = _fastest(results, lambda config: config in ("scan-local1", "scan-local2"))
    scan_rows = []
    for config in ("scan-local1", "scan-local2"):
        if (config, "scan") in alone:
            r, rerun = alone[(config, "scan")], alone.get((config, "scan (rerun)"))
            scan_rows.append([config[-1], str(r["items"]), f"{r['seconds']:.1f}", f"{r['items'] / r['seconds']:.0f}",
                              f"{r['peak_mib']:.0f}", "" if rerun is None else f"{rerun['seconds']:.1f}"])
    scan_alone = _table(["workers", "files", "seconds", "files/s", "peak MiB", "nothing to do (s)"], scan_rows)
    runs = _alternations(results, "scan-local1")
    scan_alone_how = (f"1 and 2 workers in alternation, {runs} times each; the fastest of each" if runs > 1 else
                      "one run each")
    whole_export = {c: alone[(c, "scan")]["seconds"] for c in ("scan-local1", "scan-local2") if (c, "scan") in alone}
    loop = _fastest(results, lambda config: config in ("machine-1", "machine-2"))  # beside each stage's rounds
    ceiling = {stage: 2 * loop[("machine-1", stage)]["seconds"] / loop[("machine-2", stage)]["seconds"]
               for _c, stage in loop if ("machine-1", stage) in loop and ("machine-2", stage) in loop}
    aim = aim_text(best, whole_export, pair_size, f"{int(scan_rows[0][1]):,}" if scan_rows else "", ceiling)

    full = [r for r in results if r["config"] == "full-size"]
    full_rows = [[r["stage"], f"{r['seconds'] / max(r['items'], 1):.1f}", f"{r['peak_mib']:.0f}"] for r in full
                 if r["stage"] in PROJECTED]
    per_case = {r["stage"]: r["seconds"] / max(r["items"], 1) for r in full}
    projection_rows = []
    cpu_total = 0.0
    for stage in PROJECTED:
        if stage in per_case:
            t = per_case[stage] * REFERENCE_CASES
            cpu_total += t if stage != "presegment" else 0
            projection_rows.append([stage, f"{per_case[stage]:.1f}", f"{t / 3600:.1f} h"])
    low, high = (g * REFERENCE_CASES / 3600 for g in GPU_SECONDS_PER_CASE)
    overhead = sum(t for (config, stage), pts in by.items() if config == "local2"
                   and stage in stages and stage not in ("convert", "presegment", "qa labels", "release")
                   for n, t in pts if n == sizes[-1])
    released = seconds("local2", "release", sizes[-1])
    release_line = "" if released is None else (
        f" Release, which copies and hashes every case, took {released / 60:.1f} min for {sizes[-1]} exams on the "
        "small grids; at full size it grows with the bytes it copies and was not measured here, so it is not in the "
        "total.")
    generator = next((r for r in results if r["config"] == "generator"), None)
    written = (f" Writing the export took {_duration(generator['seconds'])} ({generator['items']} files)."
               if generator else "")
    cold = "" if data.get("warm_scans") or "scan" not in flagged else (
        " This run's scans were first scans of files partly out of the page cache, in shares that differ by size "
        "(a rehearsal from this version on reads each size's files once before its scan): scan's exponent here is "
        "the cache's.")
    verdict = (f"Faster than linear (k > {SUPERLINEAR}): {', '.join(flagged)}.{cold}" if flagged else
               f"No stage grows faster than linearly: every stage that takes more than a few seconds has k <= "
               f"{SUPERLINEAR} (1 plus a margin for the machine's drift).")
    cost_low, cost_high = low * GPU_PRICE_PER_HOUR, high * GPU_PRICE_PER_HOUR
    gpu_low, gpu_high = GPU_SECONDS_PER_CASE

    scaling_section = ("The stages that take workers at each size, one run each, in the order of the plan (minutes "
                       "apart; at the largest size the 1-worker run stops after convert: presegment and qa labels on "
                       "1 worker are in the pairs above). Scan reads the exams of the export the sample is drawn "
                       f"from (the size / {KEPT_SHARE:g}: {math.ceil(sizes[-1] / KEPT_SHARE):,} exams for "
                       f"{sizes[-1]:,}), each a first scan into a new workspace, "
                       + ("its files read once just before (in the page cache, as in the pairs: the growth is "
                          "ctcurate's, not the disk's):\n\n" if data.get("warm_scans") else
                          "the runs before it wrote gigabytes, so part of its files are no longer in the page cache, "
                          "which the pairs' rescans find them in; that, and the machine's drift, is why the same scan "
                          "takes longer here than above (and its growth exponent says more of the cache than of "
                          "ctcurate):\n\n")
                       + f"{scaling}\n" if scaling_rows else
                       f"{scaling}\n" if scaling_rows else
                       "(The run of every stage on 1 worker and on Dask at each size was not reached.)\n")
    took = (f"in {data['total_s'] / 60:.0f} minutes" if math.isfinite(data["total_s"]) else
            "in a run stopped before its end (the figures it had measured; a stage it did not reach is left out)")
    with_full = ", plus exams at full size (512 x 512, 360 slices) for per-case costs" if full else \
        " (no exams at full size in this run)"
    full_scaling_section = (f"At full size (512 x 512 x 360), {full[0]['items']} "
                            "cases, one run each, where the work of each case dominates: one worker already keeps "
                            "both cores busy through its libraries' threads (resampling, torch), and the few cases "
                            "are shared out whole between the workers, so what a second worker adds depends on how "
                            f"evenly they divide:\n\n{full_scaling}\n") if full else ""
    projection = (f"""{REFERENCE_CASES} converted cases (the reference dataset's count) at full size, from the per-case
figures above (2 workers of this machine):

{_table(["stage", "seconds per case (CPU)", f"{REFERENCE_CASES} cases"], projection_rows)}

The stages whose time follows the export's files or the catalog, not the converted cases (scan, sample,
filter, QA of the metadata, split, datasheet), took
{overhead / 60:.1f} min together at {sizes[-1]} exams above.{release_line} Without pre-segmentation the reference
scale takes about {(cpu_total + overhead) / 3600:.1f} h on this machine, release aside. Pre-segmentation with the
small model on CPU would take the presegment row; the reference model on a GPU was not measured here (no GPU was
lent to the session that measured this page): at {gpu_low:g}-{gpu_high:g} s per case (an assumption to replace
with a measurement) it takes {low:.1f}-{high:.1f} GPU hours, about {cost_low:.0f}-{cost_high:.0f} USD at
{GPU_PRICE_PER_HOUR:g} USD per GPU hour. Nothing in ctcurate needs a GPU.
""") if full else _NO_FULL + "\n"
    check = "" if sizes == REFERENCE_SIZES else (
        f"\n**A check run** ({', '.join(map(str, sizes))} sampled exams, {full[0]['items'] if full else 0} at full "
        "size), not the reference "
        "run (the repository's docs/scale.md): with few cases each "
        "command's start weighs on its per-case figures and the projection, and a machine busy with other work slows "
        "the 2-worker runs most.\n")
    pair_runs = _alternations(results, "pair-local1")
    pair_times = {1: "once", 2: "twice"}.get(pair_runs, f"{pair_runs} times")
    pairs_when = f" (measured again on {data['pairs_measured']}, `--pairs-only`)" if data.get("pairs_measured") else ""
    per_case_table = _table(["stage", "seconds per case (the command's time / cases, its start included)",
                             "peak MiB"], full_rows) if full else _NO_FULL
    title = "ctcurate at the reference dataset's scale" if not check else \
        f"ctcurate rehearsal at {sizes[-1]} sampled exams (a check)"
    text = f"""# {title}
{check}
Measured by `.venv/bin/python bench/rehearsal.py` (this page is its output; rerun it to refresh the figures) on
{data['machine']['cpus']} CPU cores, {data['machine']['memory_gib']} GiB, Python {data['machine']['python']},
{took}, unattended. The input is a synthetic PACS export made by
`bench/synthetic_pacs.py`: exams from 8 sites with the reference dataset's make-up (ages, sexes, vendors and
models, kVp, contrast phases, slice thicknesses 0.5-5 mm) and its share of exams to exclude, on small pixel grids
(40 x 40, a body 4 times shorter along z) so that the whole export fits on disk{with_full}.{written}

Every stage runs as the `ctcurate` command a user types. Times are wall clock; memory is the peak resident set of
the command with all its worker processes.

## What the rehearsal produced ({sizes[-1]} sampled exams, 2 workers)

{_produced(facts)}

## How each stage grows

![time of each stage by exams](img/{plot.name})

Time / peak memory on 2 workers; the growth exponent k fits time ~ exams^k between the two largest sizes (1 is
linear; small stages are dominated by their start-up and show k < 1).

{growth}

{verdict}

## Two workers against one

Same stages on 1 and 2 workers of the local pool, and on a Dask LocalCluster of 2 single-threaded worker
processes (its workers run outside the command, so their memory is not in the peaks above). Each worker's
libraries (torch, SimpleITK, BLAS) get the machine's cores shared out among the workers (`[executor] threads`,
`--threads`): one worker alone uses every core through its libraries' threads, which pre-segmentation's torch
does, so the run of 1 worker with 1 thread shows what the second process adds. A command's fixed cost (start,
tables, reports) is that of its rerun with nothing left to do; the per-case part is the rest.

This machine's speed drifts over minutes (other tenants of its host; the same stage has taken from 1x to 2x the
time on the same day), so runs far apart in time compare badly. The stages that run on workers are therefore
measured in alternation at {pair_size} exams: 1 worker, 2 workers, 1 worker with 1 thread, each on a fresh copy of
the same workspace (scan reading every file again, `--full`), {pair_times}; the fastest of each{pairs_when}. Where the
command was also run again with nothing left to do, that is its fixed cost (start, imports, tables, the catalog of
a scan, reports), and "rest" compares what is left: the work spread over the workers. A rest can come out above
2x: the rerun does work the first run does not (a rescan asks every file for its size and date, a rerun of
convert or qa labels reads the state of every case), so it overstates the fixed cost a little.

{pairs}

{aim}

{scaling_section}
{full_scaling_section}
## Scan alone on the whole export

Each run reads every file ({scan_alone_how}), all in the page cache; "nothing to do": the same scan again
with no file changed.

{scan_alone}

## Per case at full size (512 x 512 x 360, 2 workers)

{per_case_table}

## Projection: the reference scale

{projection}"""
    doc.write_text(text)


def _produced(facts: dict[str, Any]) -> str:
    """The facts of the largest 2-worker run's dataset, and its Partitions table; a run stopped before its release
    has none."""
    if not facts:
        return ("(Not reached: the run stopped before the release of the largest size on 2 workers, so there is no "
                "dataset to describe.)")
    return f"""- sampled: {facts.get('sampled')}; kept by the rules: {facts.get('kept_by_rules')}; excluded by rule:
  {', '.join(f'{k} {v}' for k, v in facts.get('excluded_by_rule', {}).items()) or 'none'}
- converted: {facts.get('converted')}; released (after the annotators' exclusions of distorted anatomy):
  {facts.get('released')}
- split (cases): {_counts(facts.get('split'))}; patients: {_counts(facts.get('patients_by_split'))}; sites:
  {_counts(facts.get('sites_by_split'))}

{facts.get('partitions', '').strip()}"""


_NO_FULL = "(No exams at full size in this run: no per-case figures, and no projection from them.)"


def _alternations(results: list[dict[str, Any]], config: str) -> int:
    """How many times the runs measured in alternation ran ``config`` (each stage alike; reruns not counted)."""
    stages = Counter(r["stage"] for r in results if r["config"] == config and not r["stage"].endswith(" (rerun)"))
    return max(stages.values(), default=0)


def _fastest(results: list[dict[str, Any]], kept: Callable[[str], bool]) -> dict[tuple[str, str], dict[str, Any]]:
    """The fastest run of each (config, stage) among the results whose config is ``kept`` (runs repeated in
    alternation keep their fastest)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in results:
        key = (r["config"], r["stage"])
        if kept(r["config"]) and (key not in out or r["seconds"] < out[key]["seconds"]):
            out[key] = r
    return out


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Write the scale page from a rehearsal's results.json.")
    parser.add_argument("results", type=Path, help="results.json written by bench/rehearsal.py.")
    parser.add_argument("doc", type=Path, nargs="?", default=REPO / "docs" / "scale.md",
                        help="Page to write (default: the repository's docs/scale.md).")
    args = parser.parse_args()
    if not args.results.is_file():
        parser.error(f"{args.results}: no such file; run bench/rehearsal.py first (it writes OUT/results.json)")
    write_report(args.results, args.doc)


if __name__ == "__main__":
    main()
