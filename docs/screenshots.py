"""Make the README's pictures of the annotator (docs/img/annotator_views, _help, _review.png) from the real case.

The case is the shared ``example_ct`` with TotalSegmentator's v2 map as revision 0, in a throw-away
workspace. Without a screen, run it under Xvfb at the window's size:

``xvfb-run -s "-screen 0 1600x1000x24" python docs/screenshots.py [--shared-data ../shared/data] [--out docs/img]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _workspace(shared: Path, root: Path):  # type: ignore[no-untyped-def]
    from curation import Volume, Workspace, read_volume, write_nrrd
    from curation.annotation.revisions import RevisionStore

    ts = shared / "totalsegmentator"
    ws = Workspace.create(root / "ws")
    ct = read_volume(ts / "example_ct.nii.gz")
    ct = Volume(ct.array.astype(np.int16), ct.spacing, ct.origin, ct.direction)
    write_nrrd(ws.case_dir("s0001") / "ct.nrrd", ct)
    labels = read_volume(ts / "seg_v2_total117" / "example_seg_fast_force_split.nii.gz")
    labels = Volume(np.rint(labels.array).astype(np.uint8), ct.spacing, ct.origin, ct.direction)
    RevisionStore(ws).add("s0001", {"native": labels}, ws.label_set(), author="model:TotalSegmentator",
                          kind="model", parent=None)
    return ws


def _settle(viewer) -> None:  # type: ignore[no-untyped-def]
    from qtpy.QtWidgets import QApplication

    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared-data", type=Path,
                        default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "img")
    args = parser.parse_args(argv)
    from annotator.viewer import open_viewer

    with tempfile.TemporaryDirectory() as tmp:
        ws = _workspace(args.shared_data, Path(tmp))
        viewer, dock = open_viewer(ws, case="s0001", annotator="dr.a")
        dock.select_structure("liver")
        dock.toggle_help()
        _settle(viewer)
        args.out.mkdir(parents=True, exist_ok=True)
        viewer.screenshot(path=str(args.out / "annotator_views.png"), canvas_only=False, flash=False)
        dock.content.grab().save(str(args.out / "annotator_help.png"))  # the whole dock, its help shown
        dock.toggle_help()
        # a correction, done; then a second physician opens it for review
        liver = ws.label_set().by_name("liver").index
        where = np.nonzero(dock.session.labels[:, :, :40] == liver)
        dock.session.apply(where, 0)
        dock.save()
        dock.mark_done()
        viewer.close()
        viewer, dock = open_viewer(ws, annotator="dr.b")
        dock.filter.setCurrentText("awaiting review")
        dock.open_case("s0001")
        dock.select_structure("liver")
        dock.review_comment.setText("left lobe trimmed too far?")
        dock.comment_structure()
        dock.review_comment.setText("liver edge checked")
        _settle(viewer)
        viewer.screenshot(path=str(args.out / "annotator_review.png"), canvas_only=False, flash=False)
        dock.finish()
        viewer.close()
    print(f"wrote {args.out}/annotator_views.png, annotator_help.png and annotator_review.png")  # noqa: T201 (a script)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
