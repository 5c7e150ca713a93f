"""What the scale rehearsal's alternating pairs say of the aim of 2 workers at least AIM times as fast as 1 (a
paragraph of docs/scale.md, written by :mod:`scale_report`)."""

from __future__ import annotations

__all__ = ["AIM", "aim_text"]

AIM = 1.8  # 2 workers at least this many times as fast as 1, for the stages that run on workers


def aim_text(best: dict[tuple[str, str], float], whole_export: dict[str, float], pair_size: int, n_files: str,
             ceiling: dict[str, float]) -> str:
    """What the pairs (fastest of each, at ``pair_size`` exams) and the scan of the whole export say of the aim:
    2 workers at least AIM times as fast as 1; ``ceiling``: the machine's own 1 -> 2 processes beside each stage."""
    if not best:
        return ""

    def machine(stage: str) -> str:
        return f" (the machine: {ceiling[stage]:.2f}x)" if stage in ceiling else ""

    def x(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or b <= 0 else a / b

    said, met, short = [], [], []
    for stage in ("convert", "qa labels", "presegment"):
        one, thread1, two = (best.get((c, stage)) for c in ("local1", "local1-1thread", "local2"))
        if x(one, two) is None:
            continue
        against = f"{x(one, two):.2f}x against 1 worker"
        if x(thread1, two) is not None:
            against += f", {x(thread1, two):.2f}x against 1 worker with 1 thread"
        said.append(f"{stage} {against}{machine(stage)}")
        if round(x(one, two) or 0, 2) >= AIM:
            met.append(f"{stage} (against 1 worker)")
        elif round(x(thread1, two) or 0, 2) >= AIM:
            met.append(f"{stage} (against 1 worker with 1 thread)")
        else:
            short.append(stage)
    verdict = (f"Met by {', '.join(met) or 'none'}" + (f"; short of it: {', '.join(short)}" if short else "") +
               " (the same code's ratios move between measurements on this machine: see its drift above).")
    limit = ("" if not ceiling else
             f" What this machine gives a second process: a CPU-bound Python loop, run in 1 process and then in 2 at "
             f"once beside each stage's rounds, gave {min(ceiling.values()):.2f}-{max(ceiling.values()):.2f}x (the "
             "fastest of each; the cores this machine is lent are shared with other tenants and its speed drifts "
             "from round to round, so a stage can come out above the loop beside it).")
    text = (f"**The aim: 2 workers at least {AIM:g} times as fast as 1** for the stages that run on workers (against "
            f"1 worker with 1 thread where one worker's library threads already use both cores).{limit} "
            f"At {pair_size} exams: " + "; ".join(said) + ". One worker alone already uses both cores through its "
            "libraries' threads (torch, SimpleITK, BLAS), which is why the 1-thread run is the measure of what the "
            f"second process adds. {verdict}")
    one, two = best.get(("local1", "scan")), best.get(("local2", "scan"))
    if one is None or two is None:
        return text
    fixed1, fixed2 = best.get(("local1", "scan (rerun)")), best.get(("local2", "scan (rerun)"))
    rest = "" if fixed1 is None or fixed2 is None or two <= fixed2 else \
        f", while what is left of it after its fixed cost goes {(one - fixed1) / (two - fixed2):.2f}x as fast"
    text += (f"\n\nScan has no library threads to share: {x(one, two):.2f}x as a command at {pair_size} exams"
             f"{machine('scan')}{rest} "
             "(\"rest\" above). Part of every scan does not shrink with workers: Python's start and imports, the "
             "pool's start, the walk, the catalog (keys and series, built once all headers are in) and writing its "
             "tables. With F that part and R the reading of the headers on one worker, 2 workers make a scan at most "
             f"(F + R) / (F + R / 2) as fast, which reaches {AIM:g} only where F is under R / 8: the larger the "
             "export, the nearer a scan comes to the speed-up of its reading.")
    w1, w2 = whole_export.get("scan-local1"), whole_export.get("scan-local2")
    if w1 is not None and w2 is not None:
        met = "meets the aim" if round(w1 / w2, 2) >= AIM else "falls short of the aim"
        text += (f" On the whole export ({n_files} files, below) the command gets {w1 / w2:.2f}x"
                 f"{machine('scan alone')}: it {met}.")
    slower = [stage for stage in ("scan", "convert", "presegment", "qa labels")
              if (x(best.get(("local1", stage)), best.get(("local2", stage))) or 2) < 1]
    text += ("\n\nOn a machine like this one, keep 2 workers (the default of `ctcurate init`): every stage that "
             f"takes workers ran faster on 2 in the pairs at {pair_size} exams (single runs minutes apart, below, "
             "can say otherwise: the machine's drift)." if not slower else
             f"\n\nSlower on 2 workers than on 1 at {pair_size} exams: {', '.join(slower)}.")
    return text
