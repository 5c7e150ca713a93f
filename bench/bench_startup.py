"""Start-up of the command line: ``ctcurate --help`` and an argument error, against a bare Python start and a
Python that imports only typer and rich (the command line's own libraries), in the same run.

Each line shows its median start and its ratio to both baselines. Target: under 0.3 s for both. Usage:
``.venv/bin/python bench/bench_startup.py [--runs 15]``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_args import OneLineParser, at_least

BIN = Path(sys.executable).parent
BARE = "python -c pass (baseline)"
LIBS = "python -c 'import typer, rich' (baseline)"
COMMANDS = {
    BARE: [sys.executable, "-c", "pass"],
    LIBS: [sys.executable, "-c", "import typer, rich.console"],
    "ctcurate --help": [str(BIN / "ctcurate"), "--help"],
    "ctcurate qa labels --help": [str(BIN / "ctcurate"), "qa", "labels", "--help"],
    "ctcurate scan --no-such-flag (exit 2)": [str(BIN / "ctcurate"), "scan", "--no-such-flag"],
}


def median_seconds(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = OneLineParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--runs", type=at_least(1), default=15,
                        help="Starts of each command, 1 or more; the median is shown (default 15).")
    args = parser.parse_args()
    if not (BIN / "ctcurate").is_file():
        parser.error(f"{BIN / 'ctcurate'}: not found; run this with the Python of the environment ctcurate is "
                     "installed in, e.g. .venv/bin/python bench/bench_startup.py")
    results = {name: median_seconds(command, args.runs) for name, command in COMMANDS.items()}
    bare, libs = results[BARE], results[LIBS]
    print(f"median of {args.runs} starts each; ratios against the two baselines measured in this run")
    for name, seconds in results.items():
        print(f"{name:45s} {seconds:6.3f} s  ({seconds / bare:5.1f}x a bare Python start, "
              f"{seconds / libs:4.1f}x Python with typer + rich)"
              + ("" if name in (BARE, LIBS) else f"  target 0.3 s: {'met' if seconds < 0.3 else 'MISSED'}"))


if __name__ == "__main__":
    main()
