"""The release license: SPDX ids checked offline, full texts shipped, any other license's text from a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation.errors import ReleaseError
from datacard.license import SHIPPED, ReleaseLicense, release_license, spdx_id


def test_spdx_ids_are_checked_and_spelled_as_spdx_does() -> None:
    assert spdx_id("cc-by-4.0") == "CC-BY-4.0" and spdx_id(" CC0-1.0 ") == "CC0-1.0"
    with pytest.raises(ReleaseError, match="license 'CC BY 4.0': not a license id of the SPDX list .*did you mean "
                                           "CC-BY-4.0"):
        spdx_id("CC BY 4.0")
    with pytest.raises(ReleaseError, match="'MIT OR Apache-2.0': not a license id .*one license, no expression"):
        spdx_id("MIT OR Apache-2.0")
    with pytest.raises(ReleaseError, match="'GPL-3.0': deprecated in the SPDX list; use GPL-3.0-only or "
                                           "GPL-3.0-or-later"):
        spdx_id("GPL-3.0")


@pytest.mark.parametrize("license_id", SHIPPED)
def test_the_full_text_of_each_shipped_license(license_id: str) -> None:
    chosen = release_license({"license": license_id.lower()})
    assert chosen is not None and chosen.id == license_id and chosen.zenodo_id == license_id.lower()
    assert chosen.url == f"https://spdx.org/licenses/{license_id}.html"
    text = chosen.text
    assert len(text) > 6000 and text.endswith("\n")
    if license_id.startswith("CC-BY"):  # the 4.0 licenses: all eight sections and the closing notice
        assert all(f"Section {n} -- " in text for n in range(1, 9)) and "creativecommons.org." in text
        assert ("NonCommercial" in text) == (license_id == "CC-BY-NC-SA-4.0")
    else:
        assert "Statement of Purpose" in text and "Limitations and Disclaimers" in text


def test_another_license_needs_its_text(tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    with pytest.raises(ReleaseError, match="license ODbL-1.0: ctcurate ships the full text of .* only; add "
                                           "'license_file: <path to the text of ODbL-1.0>'"):
        release_license({"license": "odbl-1.0"}, answers)
    with pytest.raises(ReleaseError, match="license_file odbl.txt: no such file; give the path of the full text"):
        release_license({"license": "ODbL-1.0", "license_file": "odbl.txt"}, answers)
    (tmp_path / "odbl.txt").write_text("https://opendatacommons.org/licenses/odbl/1-0/\n")
    with pytest.raises(ReleaseError, match="license_file odbl.txt holds 46 characters, not the full text of ODbL-1.0"):
        release_license({"license": "ODbL-1.0", "license_file": "odbl.txt"}, answers)
    (tmp_path / "odbl.txt").write_text("ODC Open Database License (ODbL)\n" + "The terms of the license. " * 40)
    chosen = release_license({"license": "ODbL-1.0", "license_file": "odbl.txt"}, answers)
    assert chosen is not None and chosen.text.startswith("ODC Open Database License")
    assert release_license({}) is None
    with pytest.raises(ReleaseError, match="license_file odbl.txt given without 'license'; add the license's SPDX"):
        release_license({"license_file": "odbl.txt"}, answers)
    with pytest.raises(ReleaseError, match="license CC-BY-4.0: ctcurate ships its full text; remove license_file"):
        release_license({"license": "CC-BY-4.0", "license_file": "odbl.txt"}, answers)
    with pytest.raises(ReleaseError, match="license MIT: its text is empty"):
        ReleaseLicense("MIT", "  \n")
