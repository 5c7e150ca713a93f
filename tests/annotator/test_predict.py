"""The device a model runs on is checked before any case."""

from __future__ import annotations

import pytest

from annotator.predict import check_device
from curation.errors import ModelError


def test_the_cpu_is_always_there() -> None:
    assert check_device("cpu") == "cpu"


@pytest.mark.parametrize("device", ["xyz", "CUDA", "cuda:", "cuda:a", "gpu", ""])
def test_a_device_name_not_of_the_known_forms_is_refused(device: str) -> None:
    with pytest.raises(ModelError, match=r"--device .*: expected cpu, cuda or mps \(cuda:N for the Nth GPU\)"):
        check_device(device)


def test_a_gpu_this_machine_lacks_is_refused_with_the_fix() -> None:
    with pytest.raises(ModelError, match=r"--device cuda:99: this machine has .*CUDA device.*; use --device cpu"):
        check_device("cuda:99")
