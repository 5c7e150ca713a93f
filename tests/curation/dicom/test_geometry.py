"""Slice geometry: one series alone and many at once give the same stacks; tilt, obliquity and axis measured."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.dicom.geometry import slice_stack, slice_stacks

AXIAL = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
CORONAL = np.array([1.0, 0.0, 0.0, 0.0, 0.0, -1.0])


def test_a_tilted_stack_is_measured_and_sorted_along_its_normal() -> None:
    z = np.array([5.0, 0.0, 10.0, 2.5])
    ipp = np.stack([np.zeros(4), z * np.tan(np.radians(15.0)), z], axis=1)  # origins slide in y as z climbs
    stack = slice_stack(AXIAL, ipp)
    assert stack.order.tolist() == [1, 3, 0, 2]
    assert stack.positions.tolist() == [0.0, 2.5, 5.0, 10.0] and stack.gaps.tolist() == [2.5, 2.5, 5.0]
    assert stack.tilt_deg == pytest.approx(15.0) and stack.obliquity_deg == pytest.approx(0.0)
    assert stack.axis == "axial" and stack.extent_mm == 10.0


def test_parallel_cosines_are_named() -> None:
    with pytest.raises(ValueError, match=r"ImageOrientationPatient \[1.0, 0.0, 0.0, 1.0, 0.0, 0.0\] has parallel"):
        slice_stack(np.array([1.0, 0, 0, 1, 0, 0]), np.zeros((2, 3)))


_series = st.tuples(st.sampled_from([AXIAL, CORONAL, np.array([1.0, 0, 0, 1, 0, 0]), np.full(6, np.nan)]),
                    st.lists(st.tuples(*[st.sampled_from([-7.5, 0.0, 1.25, 2.5, 40.0])] * 3), min_size=0,
                             max_size=6))


@settings(max_examples=200, deadline=None)
@given(st.lists(_series, min_size=1, max_size=5), st.randoms(use_true_random=False))
def test_many_series_at_once_give_what_each_gives_alone(drawn: list, rng) -> None:
    owner = [k for k, (_, slices) in enumerate(drawn) for _ in slices]
    ipp = [p for _, slices in drawn for p in slices]
    mixed = list(range(len(owner)))
    rng.shuffle(mixed)  # the series' slices interleaved
    stacks = slice_stacks(np.array(owner, dtype=int)[mixed], np.array([iop for iop, _ in drawn]),
                          np.array(ipp, dtype=float).reshape(-1, 3)[mixed])
    for k, (iop, _) in enumerate(drawn):
        if not stacks.valid[k]:
            assert np.isnan(iop).any() or np.linalg.norm(np.cross(iop[:3], iop[3:])) < 1e-6
            with pytest.raises(ValueError, match="gives no slice normal"):
                stacks.of(k)
            continue
        own = [i for i in mixed if owner[i] == k]  # the series' slices in the order given
        alone = slice_stack(iop, np.array([ipp[i] for i in own], dtype=float).reshape(-1, 3))
        together = stacks.of(k)
        assert together.order.tolist() == alone.order.tolist()
        np.testing.assert_allclose(together.positions, alone.positions)
        assert together.axis == alone.axis and together.tilt_deg == pytest.approx(alone.tilt_deg, abs=1e-6)
        assert together.obliquity_deg == pytest.approx(alone.obliquity_deg)
