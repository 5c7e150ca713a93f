"""The small nnU-Net v2 model that ships with ctcurate (tests and demo), and the recipe that trained it.

Five structures (spleen, kidney_right, kidney_left, liver, urinary_bladder) at 3 mm; see
:mod:`annotator.small_model.recipe`.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SMALL_MODEL_FOLDER"]

SMALL_MODEL_FOLDER = Path(__file__).parent / "model" / "nnUNetTrainer__nnUNetPlansSmall__3d_fullres"
