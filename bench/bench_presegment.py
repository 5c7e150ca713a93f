"""Pre-segmentation overhead: ctcurate's ``segment_ct`` vs bare ``nnUNetPredictor.predict_single_npy_array``.

Same model (the small shipped model), same input (the real example CT, 3 mm, which is already the
model's spacing), same threads. ctcurate adds the canonical reorientation, label mapping and carrying
the labels back onto the CT's grid. Each variant runs in its own process (model loaded once, then the
best of ``--repeat`` timed runs) so that peak RSS is its own. Target: <= 1.05x the bare predictor's time.
A third line times the whole ``presegment_case`` of a workspace case for reference (it also reads the
NRRD files, carries the labels to the 1.5 mm and 3 mm copies, writes three ``.seg.nrrd`` files, the
revision row and the contrast phase: work the bare predictor does not do).

Usage: ``.venv/bin/python bench/bench_presegment.py [--shared-data ../shared/data] [--repeat 3]``.
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
from curation.image.orientation import to_canonical

variant, ct_path, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
label_set = load_label_set("total_v2")
folder = ModelFolder.read(SMALL_MODEL_FOLDER)
model = NnunetModel(folder, threads=2)
ct = read_volume(ct_path)
canonical, _ = to_canonical(ct)
image = canonical.array.astype(np.float32)[None]
props = {"spacing": list(canonical.spacing[::-1])}
part = ModelPart(model, map_labels(folder, label_set))
if variant == "presegment":
    import json as _json, shutil, tempfile
    from pathlib import Path
    from annotator import presegment as pre
    from annotator.registry import load_model_record, register_model
    from curation import Workspace, resample_isotropic, write_nrrd, Volume
    ws = Workspace.create(Path(tempfile.mkdtemp()) / "ws")
    native = Volume(ct.array.astype(np.int16), ct.spacing, ct.origin, ct.direction)
    first = ws.case_dir("s0000")
    write_nrrd(first / "ct.nrrd", native)
    for spacing in (1.5, 3.0):
        write_nrrd(first / ws.ct_name(spacing), resample_isotropic(native, spacing))
    (first / "case.json").write_text(_json.dumps({"contrast": {"agent": "", "route": ""}}))
    for n in range(1, repeat + 1):
        shutil.copytree(first, ws.case_dir(f"s{n:04d}"))
    record = register_model(ws, "small", [SMALL_MODEL_FOLDER])
    pre._LOADED[(str(ws.root), record.tag, "cpu")] = [part]  # the model loaded above, as a worker keeps it
    pre.presegment_case(ws, "s0000", record)  # warm-up, as the other variants' first run
best = float("inf")
for n in range(repeat):
    start = time.perf_counter()
    if variant == "bare":
        model._predictor.predict_single_npy_array(image, props, None, None, False)
    elif variant == "presegment":
        pre.presegment_case(ws, f"s{n + 1:04d}", record)
    else:
        segment_ct([part], ct, label_set)
    best = min(best, time.perf_counter() - start)
print(json.dumps({"seconds": best, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--shared-data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ct = args.shared_data / "totalsegmentator" / "example_ct.nii.gz"
    results = {}
    for variant in ("bare", "ctcurate", "presegment"):
        out = subprocess.run([sys.executable, "-c", CHILD, variant, str(ct), str(args.repeat)], check=True,
                             capture_output=True, text=True).stdout
        results[variant] = json.loads(out.strip().splitlines()[-1])
    bare, ours, case = results["bare"], results["ctcurate"], results["presegment"]
    print(f"example_ct 122 x 101 x 112 at 3 mm, small model, CPU, best of {args.repeat}")
    for label, r in (("bare predict_single_npy_array (baseline)", bare), ("ctcurate segment_ct", ours),
                     ("ctcurate presegment_case (files, 3 grids)", case)):
        print(f"  {label:41s}: {r['seconds']:6.2f} s   peak RSS {r['peak_mib']:6.0f} MiB")
    print(f"  ratio segment_ct / bare {ours['seconds'] / bare['seconds']:.3f} (target <= 1.05); "
          f"whole case / bare {case['seconds'] / bare['seconds']:.3f} (reference)")


if __name__ == "__main__":
    main()
