"""Peak memory of converting one large series, in copies of the volume, against a baseline measured in
the same run: the same process importing everything and loading nothing.

Builds a synthetic 512 x 512 x N CT series (N = 1000 by default) with the demo's phantom, converts it
in a child process (native + 1.5 mm + 3 mm NRRD), and prints ``(peak RSS - baseline RSS) / volume bytes``.
Target: about 2 copies.

Usage: ``.venv/bin/python bench/bench_convert_memory.py [--slices 1000]``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import resource, sys
from curation.cases.convert import ConvertTask, convert_case
from curation.workspace.settings import ConversionSettings
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if sys.argv[1] == "convert":
    paths = tuple(sorted(str(p) for p in __import__("pathlib").Path(sys.argv[2]).iterdir()))
    task = ConvertTask(case_id="s0001", case_dir=sys.argv[3], paths=paths, series={}, site="site01",
                       patient_pseudonym="p0", fingerprint="f", rules_passed=(), conversion=ConversionSettings())
    convert_case(task)
print(baseline, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--slices", type=int, default=1000)
    args = parser.parse_args()
    from ctcurate.demo import DEMO_PATIENTS, write_ct_series

    tmp = Path(tempfile.mkdtemp(prefix="ctcurate-mem-"))
    try:
        study = {"uid": "1.2.3", "date": "20200101", "accession": "A", "description": "CT", "institution": "X"}
        write_ct_series(tmp / "series", DEMO_PATIENTS[0], study, 2, description="big", n_slices=args.slices,
                   spacing=1.0, rows=512, pixel_mm=0.7)
        volume_bytes = 512 * 512 * args.slices * 2
        idle = subprocess.run([sys.executable, "-c", CHILD, "idle"], capture_output=True, text=True, check=True)
        run = subprocess.run([sys.executable, "-c", CHILD, "convert", str(tmp / "series"), str(tmp / "case")],
                             capture_output=True, text=True, check=True)
        base_kib = int(idle.stdout.split()[1])
        peak_kib = int(run.stdout.split()[1])
        copies = (peak_kib - base_kib) * 1024 / volume_bytes
        print(f"volume 512x512x{args.slices} int16 = {volume_bytes / 2**20:.0f} MiB")
        print(f"baseline RSS (imports only) {base_kib / 1024:.0f} MiB, convert peak RSS {peak_kib / 1024:.0f} MiB")
        print(f"peak above baseline = {copies:.2f} copies of the volume (target: about 2)")

    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
