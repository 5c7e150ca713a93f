"""Running a ``ctcurate`` command the way the scale rehearsal measures it: wall time, the peak memory of the command
with all its processes, its output in a log; and the figures kept as they come (``partial.jsonl``)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
CTCURATE = str(Path(sys.executable).parent / "ctcurate")

# how each configuration runs the stages that use workers (a Dask run adds its scheduler's address)
CONFIGS = {"local1": ["--workers", "1"], "local2": ["--workers", "2"],
           "local1-1thread": ["--workers", "1", "--threads", "1"], "dask2": ["--workers", "2"],
           "scan-local1": ["--workers", "1"], "scan-local2": ["--workers", "2"]}


@dataclass
class Measured:
    """One stage of one run."""

    size: int
    config: str
    stage: str
    seconds: float
    peak_mib: float
    items: int = 0
    note: str = ""


class PeakMemory:
    """Samples the summed resident memory of a process and all its descendants until stopped."""

    def __init__(self, pid: int, period_s: float = 0.1) -> None:
        self.pid, self.period_s, self.peak = pid, period_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                root = psutil.Process(self.pid)
                total = root.memory_info().rss
                for child in root.children(recursive=True):
                    try:
                        total += child.memory_info().rss
                    except psutil.Error:
                        continue
                self.peak = max(self.peak, total)
            except psutil.Error:
                pass
            self._stop.wait(self.period_s)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / 2**20


def run_stage(args: list[str], log: Path, *, allowed: tuple[int, ...] = (0,)) -> tuple[float, float]:
    """Run ``ctcurate ARGS``; returns (seconds, peak MiB). Its output goes to ``log``; a failure stops the run. What
    earlier steps wrote is on disk first: the kernel writing it back during the run would take a core from it (and
    from a run on 2 workers more than from one on 1, which leaves a core free)."""
    os.sync()
    start = time.perf_counter()
    with log.open("a") as out:
        out.write(f"\n$ ctcurate {' '.join(args)}\n")
        out.flush()
        proc = subprocess.Popen([CTCURATE, *args], stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                env={**os.environ, "COLUMNS": "200"})
        memory = PeakMemory(proc.pid)
        code = proc.wait()
        peak = memory.stop()
    elapsed = time.perf_counter() - start
    if code not in allowed:
        raise SystemExit(f"ctcurate {' '.join(args)} ended with exit code {code}; see {log}")
    return elapsed, peak


def dicom_files(folder: Path) -> Iterator[Path]:
    """The export's files, through the links of a subset's folders (``Path.rglob`` does not follow them)."""
    for parent, _dirs, names in os.walk(folder, followlinks=True):
        for name in names:
            if name.endswith(".dcm"):
                yield Path(parent) / name


def read_once(folder: Path) -> int:
    """Read every file of the export ``folder`` once, so that a scan then finds them in the page cache and measures
    ctcurate, not the disk (what the files left in the cache by earlier runs would otherwise decide); their count."""
    n_files = 0
    for path in dicom_files(folder):
        path.read_bytes()
        n_files += 1
    return n_files


def save_partial(out: Path, new: list[Measured]) -> None:
    """Append the figures just measured, ``new``, to partial.jsonl (the figures survive an interrupted
    rehearsal)."""
    with (out / "partial.jsonl").open("a") as handle:
        handle.writelines(json.dumps(asdict(row)) + "\n" for row in new)


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30),
            "python": platform.python_version(), "system": platform.platform()}


_LOOP = "x = 0\nfor i in range({n}):\n    x += i * i % 7\n"


def cpu_baseline(n: int = 40_000_000) -> tuple[float, float]:
    """What this machine gives a second process: a CPU-bound Python loop run alone, then two at once, each in a
    process of its own; (seconds alone, seconds of the slower of the two). Two processes do twice the work, so
    ``2 * alone / together`` is the machine's own speed-up from 1 to 2 processes, the ceiling of a stage's."""
    command = [sys.executable, "-c", _LOOP.format(n=n)]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    alone = time.perf_counter() - start
    start = time.perf_counter()
    both = [subprocess.Popen(command) for _ in range(2)]
    for proc in both:
        proc.wait()
    return alone, time.perf_counter() - start
