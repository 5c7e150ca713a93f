"""Pre-segmentation overhead: ctcurate's ``segment_ct`` vs bare ``nnUNetPredictor.predict_single_npy_array``.

Same model (the small shipped model), same input (the real example CT, 3 mm, which is already the
model's spacing), same threads. ctcurate adds the canonical reorientation, label mapping and carrying
the labels back onto the CT's grid. Each variant runs in its own process (model loaded once, then the
best of ``--repeat`` timed runs) so that peak RSS is its own. Target: <= 1.05x the bare predictor's time.

Usage: ``python bench/bench_presegment.py [--shared-data ../shared/data] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import numpy as np
from annotator.predict import ModelFolder, NnunetModel
from annotator.segment import ModelPart, map_labels, segment_ct
from annotator.small_model import SMALL_MODEL_FOLDER
from curation import load_label_set, read_volume
from curation.orientation import to_canonical

variant, ct_path, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
label_set = load_label_set("total_v2")
folder = ModelFolder.read(SMALL_MODEL_FOLDER)
model = NnunetModel(folder, threads=2)
ct = read_volume(ct_path)
canonical, _ = to_canonical(ct)
image = canonical.array.astype(np.float32)[None]
props = {"spacing": list(canonical.spacing[::-1])}
part = ModelPart(model, map_labels(folder, label_set))
best = float("inf")
for _ in range(repeat):
    start = time.perf_counter()
    if variant == "bare":
        model._predictor.predict_single_npy_array(image, props, None, None, False)
    else:
        segment_ct([part], ct, label_set)
    best = min(best, time.perf_counter() - start)
print(json.dumps({"seconds": best, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ct = args.shared_data / "totalsegmentator" / "example_ct.nii.gz"
    results = {}
    for variant in ("bare", "ctcurate"):
        out = subprocess.run([sys.executable, "-c", CHILD, variant, str(ct), str(args.repeat)], check=True,
                             capture_output=True, text=True).stdout
        results[variant] = json.loads(out.strip().splitlines()[-1])
    bare, ours = results["bare"], results["ctcurate"]
    print(f"example_ct 122 x 101 x 112 at 3 mm, small model, CPU, best of {args.repeat}")
    for label, r in (("bare predict_single_npy_array (baseline)", bare), ("ctcurate segment_ct", ours)):
        print(f"  {label:41s}: {r['seconds']:6.2f} s   peak RSS {r['peak_mib']:6.0f} MiB")
    print(f"  ratio {ours['seconds'] / bare['seconds']:.3f} (target <= 1.05)")


if __name__ == "__main__":
    main()
