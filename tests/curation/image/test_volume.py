from pathlib import Path

import numpy as np
import pytest

from curation.errors import ConversionError
from curation.image.volume import Volume, read_nrrd, resample_isotropic, write_nrrd
from curation.selection.rules import classify_gaps
from curation.workspace.settings import ExclusionSettings


def _volume() -> Volume:
    rng = np.random.default_rng(0)
    direction = np.array([[0, 0, 1], [1, 0, 0], [0, -1, 0]], dtype=float)  # permuted and flipped axes
    return Volume(rng.integers(-1000, 1000, (7, 5, 6), dtype=np.int16), (0.7, 0.8, 2.5), (10.0, -3.0, 5.5), direction)


def test_nrrd_roundtrip_is_exact_and_deterministic(tmp_path: Path) -> None:
    volume = _volume()
    write_nrrd(tmp_path / "a.nrrd", volume)
    write_nrrd(tmp_path / "b.nrrd", volume)
    assert (tmp_path / "a.nrrd").read_bytes() == (tmp_path / "b.nrrd").read_bytes()
    back = read_nrrd(tmp_path / "a.nrrd")
    assert np.array_equal(back.array, volume.array)
    assert np.allclose(back.corners(), volume.corners())


def test_resample_keeps_extent() -> None:
    volume = _volume()
    out = resample_isotropic(volume, 1.5)
    assert np.abs(out.corners() - volume.corners()).max() <= 0.75 + 1e-9
    assert out.array.dtype == np.int16


def test_invalid_volume() -> None:
    with pytest.raises(ConversionError, match="expected a 3-D"):
        Volume(np.zeros((2, 2)), (1, 1, 1), (0, 0, 0), np.eye(3))
    with pytest.raises(ConversionError, match="not orthonormal"):
        Volume(np.zeros((2, 2, 2)), (1, 1, 1), (0, 0, 0), np.ones((3, 3)))
    with pytest.raises(ConversionError, match="positive spacings"):
        Volume(np.zeros((2, 2, 2)), (1, 0, 1), (0, 0, 0), np.eye(3))


def test_read_bad_nrrd(tmp_path: Path) -> None:
    (tmp_path / "x.nrrd").write_bytes(b"not a nrrd")
    with pytest.raises(ConversionError, match="cannot read NRRD"):
        read_nrrd(tmp_path / "x.nrrd")


def test_classify_gaps() -> None:
    c = ExclusionSettings()
    out = classify_gaps([5.0, 5.0, 5.0, 10.0, 0.0, 7.0], c)
    assert out["missing"] == [(3, 1)] and out["duplicate"] == [4] and out["irregular"] == [5]
