"""The folds of nnU-Net's ``splits_final.json``, one function for the workspace's file, the release's and the export's.

nnU-Net trains fold k on ``splits[k]["train"]`` and validates on ``splits[k]["val"]``; an empty list
stops its data loader ("'a' cannot be empty unless no samples are taken"). So:

- a split with ``val`` cases: one fold, train -> val (nnU-Net validates on the patients the release calls
  validation);
- no ``val`` cases: five-fold cross-validation over the training cases, exactly as nnU-Net makes it itself
  (``generate_crossval_split``: scikit-learn's ``KFold(5, shuffle=True, random_state=12345)`` over the sorted
  case ids; fewer folds when there are fewer than five cases);
- fewer than two training cases: no folds (None), and the caller says so.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["NNUNET_SEED", "nnunet_folds", "describe_folds"]

#: the seed nnU-Net's own cross-validation split uses
NNUNET_SEED = 12345


def nnunet_folds(train: Iterable[str], val: Iterable[str] = (), *, n_splits: int = 5
                 ) -> list[dict[str, list[str]]] | None:
    """The folds for ``splits_final.json`` (see the module's text); every fold has cases to train and to validate."""
    train, val = sorted(train), sorted(val)
    if val:
        return [{"train": train, "val": val}] if train else None
    if len(train) < 2:
        return None
    k = min(n_splits, len(train))
    order = np.arange(len(train))
    np.random.RandomState(NNUNET_SEED).shuffle(order)  # as KFold(shuffle=True, random_state=NNUNET_SEED)
    sizes = np.full(k, len(train) // k)
    sizes[: len(train) % k] += 1
    folds, start = [], 0
    for size in sizes:
        held = np.sort(order[start:start + size])
        start += size
        kept = np.setdiff1d(np.arange(len(train)), held)
        folds.append({"train": [train[i] for i in kept], "val": [train[i] for i in held]})
    return folds


def describe_folds(folds: list[dict[str, list[str]]] | None) -> str:
    """How a splits_final.json was made, for messages."""
    if folds is None:
        return "no splits_final.json (fewer than two training cases: nnU-Net cannot validate)"
    if len(folds) == 1:
        return f"splits_final.json: one fold ({len(folds[0]['train'])} train, {len(folds[0]['val'])} val cases)"
    return f"splits_final.json: {len(folds)}-fold cross-validation over the training cases (the split has no val cases)"
