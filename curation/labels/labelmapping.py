"""Mappings between label sets (e.g. TotalSegmentator v1 -> v2), applied to multi-label volumes.

Classes with the same name map to each other (their index may differ: *reordered*); a mapping may
*merge* source classes into a target class of another name; source classes with no target are
*removed* (background); target classes with no source are *added* (absent from mapped maps).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from curation.errors import LabelSetError
from curation.image.volume import Volume

from .labelmap import label_dtype
from .labelset import LabelSet, load_label_set

__all__ = ["LabelMapping", "load_label_mapping"]


@dataclass(frozen=True)
class LabelMapping:
    """How the classes of ``source`` become classes of ``target``."""

    source: LabelSet
    target: LabelSet
    merge: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for src, dst in self.merge.items():
            if src not in self.source:
                raise LabelSetError(f"mapping {self.source.name}->{self.target.name}: merge source {src!r} is not "
                                    f"a class of {self.source.name!r}")
            if dst not in self.target:
                raise LabelSetError(f"mapping {self.source.name}->{self.target.name}: merge target {dst!r} is not "
                                    f"a class of {self.target.name!r}")

    def target_of(self, name: str) -> str | None:
        """The target class a source class maps to, or None when it is removed."""
        if name in self.merge:
            return self.merge[name]
        return name if name in self.target else None

    @property
    def removed(self) -> list[str]:
        return [c.name for c in self.source if self.target_of(c.name) is None]

    @property
    def added(self) -> list[str]:
        reached = {self.target_of(c.name) for c in self.source}
        return [c.name for c in self.target if c.name not in reached]

    @property
    def reordered(self) -> list[tuple[str, int, int]]:
        """(name, source index, target index) of same-named classes whose index changes."""
        out = []
        for c in self.source:
            if c.name in self.target and c.name not in self.merge:
                new = self.target.by_name(c.name).index
                if new != c.index:
                    out.append((c.name, c.index, new))
        return out

    def table(self) -> np.ndarray:
        """Lookup table: ``table[source_index] = target_index`` (0 for removed and unknown values)."""
        table = np.zeros(self.source.max_index + 1, dtype=np.int64)
        target_index = self.target.index_of()
        for c in self.source:
            name = self.target_of(c.name)
            table[c.index] = target_index[name] if name else 0
        return table

    def apply(self, labels: Volume) -> Volume:
        """Map a multi-label volume of the source set to the target set.

        Raises :class:`LabelSetError` for values that are not classes of the source set.
        """
        values = np.asarray(labels.array)
        if values.dtype.kind == "f":
            if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
                raise LabelSetError("label map holds non-integer values; it cannot be mapped")
            values = values.astype(np.int64)
        table = self.table()
        present = np.unique(values)
        known = {0} | {c.index for c in self.source}
        unknown = [int(v) for v in present if int(v) not in known]
        if unknown:
            raise LabelSetError(f"label map holds values {unknown[:10]} that are not classes of "
                                f"{self.source.name!r}; check that it is a {self.source.name} map")
        mapped = table[values].astype(label_dtype(self.target.max_index))
        return Volume(mapped, labels.spacing, labels.origin, labels.direction)


def load_label_mapping(source: str | Path, target: str | Path | None = None) -> LabelMapping:
    """A shipped mapping (``load_label_mapping("total_v1", "total_v2")``) or a mapping file's path.

    A mapping file names ``source`` and ``target`` label sets and a ``[merge]`` table.
    """
    text = str(source)
    if target is not None:
        name = f"{source}_to_{target}.toml"
        ref = resources.files("curation.labels.labelsets").joinpath(name)
        if not ref.is_file():
            raise LabelSetError(f"no shipped mapping from {source!r} to {target!r}; write a mapping file "
                                "(source, target, [merge]) and pass its path")
        origin, data = f"built-in mapping {name}", ref.read_text(encoding="utf-8")
    else:
        path = Path(text)
        if not path.is_file():
            raise LabelSetError(f"label mapping {text!r}: no such file")
        origin, data = str(path), path.read_text(encoding="utf-8")
    try:
        doc = tomllib.loads(data)
        return LabelMapping(load_label_set(doc["source"]), load_label_set(doc["target"]),
                            {str(k): str(v) for k, v in doc.get("merge", {}).items()})
    except tomllib.TOMLDecodeError as exc:
        raise LabelSetError(f"{origin}: not valid TOML ({exc})") from None
    except KeyError as exc:
        raise LabelSetError(f"{origin}: missing key {exc}; a mapping needs source and target") from None
