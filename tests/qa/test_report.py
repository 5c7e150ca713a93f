"""The report page on real labels: why a case is flagged, missing structures, verdicts first, pictures
centred on a finding's point, and the command that opens a case in the annotator."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from curation import Volume, load_label_set
from qa.cases import CaseFiles, find_cases
from qa.findings import FINDING_COLUMNS, Check, Finding, findings_frame
from qa.report import annotate_command, build_report, finding_order, why_text, workspace_of
from qa.thumbnails import display_planes, marker_positions, thumbnail_view, world_to_index

from .conftest import replace

LS = load_label_set("total_v2")
LIVER, SPLEEN = LS.by_name("liver"), LS.by_name("spleen")
ISLAND = (slice(10, 13), slice(50, 53), slice(20, 23))  # 27 voxels (z, y, x) in the pelvis, far below the liver


def _with_island(v2_map: Volume) -> tuple[Volume, list[float]]:
    """The real map with a 3 x 3 x 3 liver island far from the liver, and the island's centre in LPS mm."""
    labels = v2_map.array.copy()
    labels[ISLAND] = LIVER.index
    centre = v2_map.index_to_world(np.array([21, 51, 11]))[0]  # (i, j, k) = (x, y, z)
    return replace(v2_map, labels), [float(v) for v in centre]


def _row(case: str, check: str, severity: str, message: str, structure: str = "", **values: object) -> dict:
    """A findings row built directly (a check code the Check enum may not have yet, like case.*)."""
    return {"case": case, "structure": structure, "check": check, "family": check.split(".")[0],
            "severity": severity, "message": message, "file": "", "values": json.dumps(values)}


def _section(html: str, case: str) -> str:
    """A case's section of the page: from its heading to the next case's (or the end)."""
    start = html.index(f'<h2 id="{case}">')
    following = html.find('<h2 id="', start + 1)
    return html[start:following if following > 0 else len(html)]


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def test_world_to_index_inverts_index_to_world_on_a_rotated_grid() -> None:
    direction = np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # permuted and flipped axes
    volume = Volume(np.zeros((4, 5, 6), np.uint8), (0.7, 1.3, 2.5), (10.0, -20.0, 5.0), direction)
    ijk = np.array([[0, 0, 0], [5, 4, 3], [2.5, 1, 0.25]])
    assert np.allclose(world_to_index(volume, volume.index_to_world(ijk)), ijk)


def test_view_at_a_far_island_goes_through_it_and_crops_around_it(v2_map: Volume) -> None:
    labels, at_lps = _with_island(v2_map)
    view = thumbnail_view(labels, LIVER, at_lps)
    assert view is not None and view.marked and view.cropped
    assert view.slices == (11, 51, 21)  # (k, j, i): axial, coronal, sagittal slice indices
    island = np.argwhere(_island_mask(labels.array.shape))
    assert len(island) == 27 and all(view.contains(v) for v in island)
    k, j, i = view.slices
    assert k in range(10, 13) and j in range(50, 53) and i in range(20, 23)  # every picture cuts the island
    # zoomed in: 25 mm around the point on each axis at 3 mm voxels, not the 366 x 303 mm slice
    assert [s.stop - s.start for s in view.box] == [19, 19, 19]
    # as drawn (the RAS-stored grid is flipped to radiological display), the marker lies on the island
    planes = display_planes(labels.array == LIVER.index, labels, view)
    for plane, (row, column) in zip(planes, marker_positions(labels, view), strict=True):
        assert plane.shape == (19, 19) and plane[row, column]
        assert plane.sum() == 9  # the island's 3 x 3 cut, and no part of the liver this far down
    # without the point, the picture goes through most of the liver and misses the island
    whole = thumbnail_view(labels, LIVER)
    assert whole is not None and not whole.cropped and not whole.marked and whole.slices[0] >= 69


def _island_mask(shape: tuple[int, ...]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[ISLAND] = True
    return mask


def test_a_tiny_structure_is_shown_cropped_around_it(v2_map: Volume) -> None:
    labels = np.zeros(v2_map.array.shape, np.uint8)
    labels[60, 40, 70] = SPLEEN.index  # one voxel
    view = thumbnail_view(replace(v2_map, labels), SPLEEN)
    assert view is not None and view.cropped and not view.marked
    assert view.slices == (60, 40, 70) and view.contains((60, 40, 70))
    assert all(s.stop - s.start < n for s, n in zip(view.box, labels.shape, strict=True))
    assert thumbnail_view(replace(v2_map, np.zeros_like(labels)), SPLEEN) is None  # nothing to show


def test_why_order_puts_severity_then_verdicts_then_missing_first() -> None:
    rows = [_row("c", Check.INTENSITY.value, "warning", "aorta: HU off", "aorta"),
            _row("c", Check.EXPECTED.value, "warning", "spleen: empty although x lies inside", "spleen"),
            _row("c", "case.shifted", "warning", "labels shifted 6 mm against the CT"),
            _row("c", Check.HOLES.value, "info", "liver: a hole", "liver"),
            _row("c", Check.FAR_ISLAND.value, "error", "liver: 1 island(s) far from the main part", "liver")]
    ordered = [r["check"] for r in sorted(rows, key=finding_order)]
    assert ordered == ["fragmentation.far_island", "case.shifted", "fov.expected", "intensity.range", "holes.enclosed"]
    assert why_text(rows[4]) == "liver: fragmentation.far_island — 1 island(s) far from the main part"
    assert why_text(rows[2]) == "case.shifted — labels shifted 6 mm against the CT"
    long = why_text(_row("c", "overlap.classes", "error", "word " * 60, "liver"), width=40)
    assert long.startswith("liver: overlap.classes — word") and long.endswith("…") and len(long) < 80


@pytest.fixture()
def report_cases(ts: Path, make_case, v2_map: Volume) -> tuple[list[CaseFiles], pd.DataFrame, list[float]]:
    labels, at_lps = _with_island(v2_map)
    array = labels.array.copy()
    array[array == SPLEEN.index] = 0  # s0001 lacks its spleen
    make_case("s0001", ts / "example_ct.nii.gz", multilabel=replace(v2_map, array))
    real = ts / "seg_v2_total117" / "example_seg_fast_force_split.nii.gz"
    make_case("s0002", ts / "example_ct.nii.gz", multilabel=real)
    root = make_case("s0003", ts / "example_ct.nii.gz", multilabel=real).parent
    known = findings_frame([
        Finding("s0001", Check.FAR_ISLAND, "error", "liver: 1 island(s) far from the main part (largest gap 170 mm, "
                "27 voxels); mislabelled voxels or a second structure under this label", "liver",
                values={"far_islands": 1, "island_voxels": 27, "at_lps": at_lps}),
        Finding("s0001", Check.EXPECTED, "warning", "spleen: empty although liver lies wholly inside the field of view",
                "spleen"),
        Finding("s0002", Check.MISSING, "error", "no mask file for 'kidney_left' in segmentations/", "kidney_left"),
        Finding("s0002", Check.LATERALITY, "error", "kidney_right lies to the left of kidney_left", "kidney_right"),
        Finding("s0003", Check.INTENSITY, "warning", "aorta: median 20 HU outside [100, 600]", "aorta"),
        Finding("s0003", Check.EMPTY, "info", "brain: empty (outside the field of view?)", "brain")])
    verdict = _row("s0002", "case.flipped", "error", "labels are flipped left-right against the CT")
    findings = pd.concat([known, pd.DataFrame([verdict], columns=FINDING_COLUMNS)], ignore_index=True)
    return find_cases(root), findings, at_lps


def test_report_page_says_why_marks_missing_and_puts_verdicts_first(tmp_path: Path, report_cases) -> None:
    cases, findings, at_lps = report_cases
    result = build_report(tmp_path / "report", findings, cases, LS)
    html = result.html.read_text()
    table = html[html.index('<table id="cases">'):html.index("</table>", html.index('<table id="cases">'))]
    rows = {m.group(1): m.group(0) for m in re.finditer(r'<tr><td><a href="#(s\d+)">.*?</tr>', table, re.S)}
    assert "liver: fragmentation.far_island — 1 island(s) far from the main part" in rows["s0001"]
    assert "case.flipped — labels are flipped left-right against the CT" in rows["s0002"]  # verdict before errors
    assert "aorta: intensity.range — median 20 HU" in rows["s0003"]
    assert "missing: spleen" in rows["s0001"] and "missing: kidney_left" in rows["s0002"]
    assert "missing:" not in rows["s0003"]
    section = _section(html, "s0002")
    assert 'class="verdict error"' in section
    assert section.index("case verdict:") < section.index("missing: kidney_left") < section.index("kidney_right lies")
    assert section.count("labels are flipped left-right") == 1  # the verdict line only, not again in the list
    assert "missing: spleen" in _section(html, "s0001")
    # the liver picture is centred on the island and large enough to see
    assert 'src="img/s0001__liver.png"' in html and f"at ({at_lps[0]:.1f}, " in html
    width, height = _png_size((tmp_path / "report" / "img" / "s0001__liver.png").read_bytes())
    assert width >= 800 and height >= 300  # three panels of about 260 px
    # a plain folder: no annotate command, the import that brings the labels into a workspace instead
    assert "ctcurate annotate import -w WORKSPACE --case s0001 --file" in html
    assert "Open in the annotator" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # offline: nothing loaded from elsewhere
    records = json.loads(result.json.read_text())
    assert {r["check"] for r in records} >= {"case.flipped"} and len(records) == len(findings)


def test_a_workspace_case_shows_its_annotate_command(tmp_path: Path, report_cases) -> None:
    cases, findings, _ = report_cases
    workspace = tmp_path / "my ws"
    html = build_report(tmp_path / "report", findings, cases, LS, workspace=workspace).html.read_text()
    section = _section(html, "s0001")
    assert f"Open in the annotator: <code>ctcurate annotate &#39;{workspace}&#39; --case s0001</code>" in section
    assert "annotate import" not in html
    assert annotate_command(cases[0], "s0001", workspace) == f"ctcurate annotate '{workspace}' --case s0001"


def test_a_revision_case_is_traced_to_its_workspace(tmp_path: Path) -> None:
    from curation.workspace import SETTINGS_FILE

    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / SETTINGS_FILE).write_text("")
    folder = tmp_path / "ws" / "releasable" / "cases" / "c1"
    revision = CaseFiles("c1", folder, None, None, folder / "labels.nrrd", revision=3, review="approved")
    assert workspace_of(revision) == tmp_path / "ws"
    assert annotate_command(revision, "c1") == f"ctcurate annotate {tmp_path / 'ws'} --case c1"
    plain = CaseFiles("c1", folder, None, None, folder / "labels.nrrd")
    assert workspace_of(plain) is None and annotate_command(plain, "c1") is None
