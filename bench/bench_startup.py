"""Start-up of the command line: ``ctcurate --help`` and an argument error, against a bare Python start and a
Python that imports only typer and rich (the command line's own libraries), in the same run.

Target: under 0.3 s for both. Usage: ``.venv/bin/python bench/bench_startup.py [--runs 15]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
COMMANDS = {
    "python -c pass (baseline)": [sys.executable, "-c", "pass"],
    "python -c 'import typer, rich' (baseline)": [sys.executable, "-c", "import typer, rich.console"],
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
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--runs", type=int, default=15, help="Starts of each command; the median is shown.")
    args = parser.parse_args()
    if not (BIN / "ctcurate").is_file():
        parser.error(f"{BIN / 'ctcurate'}: not found; run this with the Python of the environment ctcurate is "
                     "installed in, e.g. .venv/bin/python bench/bench_startup.py")
    results = {name: median_seconds(command, args.runs) for name, command in COMMANDS.items()}
    base = results["python -c pass (baseline)"]
    for name, seconds in results.items():
        print(f"{name:45s} {seconds:6.3f} s  ({seconds / base:5.1f}x a bare Python start)"
              + ("" if "baseline" in name else f"  target 0.3 s: {'met' if seconds < 0.3 else 'MISSED'}"))


if __name__ == "__main__":
    main()
