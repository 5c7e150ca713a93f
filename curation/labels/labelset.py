"""Label sets: versioned, named lists of classes shared by every stage.

A :class:`LabelSet` is a list of :class:`LabelClass` (index, name, category, laterality with the
counterpart's name, colour, optional SNOMED CT codes) plus the anatomical facts the label checks use:
the position in the spine (``spine_level``: C1 = 1 ... L5 = 24, S1, sacrum), the rib number, whether
an organ is solid (no enclosed voids), the expected CT intensity (``hu``: low, high, minimum
fraction of voxels in that range), whether a left/right class lies on that side of the body's midline
(``body_side``; false for heart chambers, named for the heart's own sides) and whether it may hold air
(``may_contain_air``: lungs, airways, bowel). The anatomical knowledge of a class (craniocaudal span
``levels``, ``required``, ``pieces``, ``side``, ``relations`` to its neighbours, typical HU per contrast phase
``hu_phase``) is described and checked in :mod:`curation.labels.anatomy`.

Label sets are TOML files. Two ship with ctcurate (``total_v1``: 104 classes, ``total_v2``: 117
classes); :func:`load_label_set` takes one of those names or the path of a user's own file.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curation.atomic import atomic_write_text
from curation.enums import ContrastPhase, parse_enum
from curation.errors import LabelSetError

from .anatomy import (
    OPPOSITE,
    RELATIONS,
    Pieces,
    Side,
    check_relations,
    parse_hu_phase,
    parse_levels,
    parse_pieces,
    parse_relations,
    parse_side,
)

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Category", "Code", "Laterality", "LabelClass", "LabelSet", "builtin_label_sets", "load_label_set"]

log = logging.getLogger(__name__)


class Category(StrEnum):
    """Anatomical category of a class."""

    ORGAN = "organ"
    BONE = "bone"
    MUSCLE = "muscle"
    VESSEL = "vessel"
    OTHER = "other"


class Laterality(StrEnum):
    """Side of the body a class belongs to."""

    LEFT = "left"
    RIGHT = "right"
    NONE = "none"


@dataclass(frozen=True)
class Code:
    """A coded concept such as a SNOMED CT code (``scheme``, ``value``, ``meaning``)."""

    scheme: str
    value: str
    meaning: str

    @classmethod
    def parse(cls, text: str) -> Code:
        """Parse ``"SCT:78961009 Spleen"``."""
        head, _, meaning = text.strip().partition(" ")
        scheme, sep, value = head.partition(":")
        if not sep or not scheme or not value:
            raise LabelSetError(f"code {text!r}: expected 'SCHEME:VALUE meaning', e.g. 'SCT:78961009 Spleen'")
        return cls(scheme, value, meaning.strip())

    def __str__(self) -> str:
        return f"{self.scheme}:{self.value} {self.meaning}".strip()


@dataclass(frozen=True)
class LabelClass:
    """One class of a label set; see the module docstring for the fields."""

    index: int
    name: str
    category: Category | str = Category.OTHER
    laterality: Laterality | str = Laterality.NONE
    counterpart: str | None = None
    color: tuple[int, int, int] = (128, 128, 128)
    snomed: dict[str, Code] = field(default_factory=dict)
    spine_level: int | None = None
    rib: int | None = None
    solid: bool = False
    hu: tuple[float, float, float] | None = None
    body_side: bool = True
    may_contain_air: bool = False
    levels: tuple[float, float] | None = None
    required: bool = False
    pieces: Pieces | str | None = None
    side: Side | str | None = None
    relations: dict[str, tuple[str, ...]] = field(default_factory=dict)
    hu_phase: dict[ContrastPhase, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        what = f"label class {self.name!r}"
        if not isinstance(self.index, int) or not 1 <= self.index <= 65535:
            raise LabelSetError(f"{what}: index must be an integer 1..65535 (0 is background), found {self.index!r}")
        if not self.name or any(c in self.name for c in "/\\ \t") or self.name.startswith("."):
            raise LabelSetError(f"{what}: a name must be non-empty, without spaces or slashes (it names files)")
        object.__setattr__(self, "category", parse_enum(Category, self.category, f"{what} category", LabelSetError))
        side = parse_enum(Laterality, self.laterality, f"{what} laterality", LabelSetError)
        object.__setattr__(self, "laterality", side)
        color = tuple(int(c) for c in self.color)
        if len(color) != 3 or not all(0 <= c <= 255 for c in color):
            raise LabelSetError(f"{what}: colour must be 3 integers 0..255, found {self.color!r}")
        object.__setattr__(self, "color", color)
        if self.hu is not None:
            low, high, fraction = (float(v) for v in self.hu)
            if not (low < high and 0.0 < fraction <= 1.0):
                raise LabelSetError(f"{what}: hu must be [low, high, fraction] with low < high and 0 < fraction <= 1, "
                                    f"found {list(self.hu)}")
            object.__setattr__(self, "hu", (low, high, fraction))
        codes = {k: (v if isinstance(v, Code) else Code.parse(str(v))) for k, v in self.snomed.items()}
        object.__setattr__(self, "snomed", codes)
        if not isinstance(self.required, bool):
            raise LabelSetError(f"{what}: required must be true or false, found {self.required!r}; write "
                                "required = true")
        object.__setattr__(self, "levels", parse_levels(self.levels, what))
        object.__setattr__(self, "pieces", parse_pieces(self.pieces, what))
        object.__setattr__(self, "side", parse_side(self.side, what, side is not Laterality.NONE))
        object.__setattr__(self, "relations", parse_relations(self.relations, what, self.name))
        object.__setattr__(self, "hu_phase", parse_hu_phase(self.hu_phase, what))

    @property
    def one_piece(self) -> bool:
        """Whether the class is one connected piece in a healthy body: ``pieces`` when given, else solid
        organs, vertebrae, bones and muscles."""
        if self.pieces is not None:
            return self.pieces is Pieces.ONE
        return self.solid or self.spine_level is not None or self.category in (Category.BONE, Category.MUSCLE)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "name": self.name, "category": str(self.category),
                               "laterality": str(self.laterality)}
        if self.counterpart:
            out["counterpart"] = self.counterpart
        out["color"] = list(self.color)
        for key in ("spine_level", "rib"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.solid:
            out["solid"] = True
        if not self.body_side:
            out["body_side"] = False
        if self.may_contain_air:
            out["may_contain_air"] = True
        if self.hu is not None:
            out["hu"] = list(self.hu)
        if self.levels is not None:
            out["levels"] = list(self.levels)
        if self.required:
            out["required"] = True
        for key in ("pieces", "side"):
            if getattr(self, key) is not None:
                out[key] = str(getattr(self, key))
        if self.relations:
            out["relations"] = {k: list(v) for k, v in self.relations.items()}
        if self.hu_phase:
            out["hu_phase"] = {str(p): list(v) for p, v in self.hu_phase.items()}
        if self.snomed:
            out["snomed"] = {k: str(v) for k, v in self.snomed.items()}
        return out


@dataclass(frozen=True)
class LabelSet:
    """A named, versioned list of classes; valid once built (unique indices and names, known counterparts)."""

    name: str
    version: str
    classes: tuple[LabelClass, ...]
    title: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        classes = tuple(self.classes)
        object.__setattr__(self, "classes", classes)
        what = f"label set {self.name!r}"
        if not classes:
            raise LabelSetError(f"{what}: has no classes; add at least one [[classes]] entry")
        for attr in ("index", "name"):
            values = [getattr(c, attr) for c in classes]
            dupes = sorted({v for v in values if values.count(v) > 1}, key=str)
            if dupes:
                raise LabelSetError(f"{what}: duplicate class {attr}(s) {dupes}; each {attr} must be unique")
        names = {c.name for c in classes}
        for c in classes:
            if c.counterpart and c.counterpart not in names:
                raise LabelSetError(f"{what}: class {c.name!r} names counterpart {c.counterpart!r}, which is not in "
                                    "the set; fix the name or drop the counterpart")
        check_relations(self.name, {c.name: c.relations for c in classes})

    # lookups -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.classes)

    def __iter__(self) -> Iterator[LabelClass]:
        return iter(self.classes)

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self.classes)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def max_index(self) -> int:
        return max(c.index for c in self.classes)

    def by_name(self, name: str) -> LabelClass:
        for c in self.classes:
            if c.name == name:
                return c
        raise LabelSetError(f"label set {self.name!r}: no class named {name!r}")

    def by_index(self, index: int) -> LabelClass:
        for c in self.classes:
            if c.index == index:
                return c
        raise LabelSetError(f"label set {self.name!r}: no class with index {index}")

    def index_of(self) -> dict[str, int]:
        return {c.name: c.index for c in self.classes}

    def relations_of(self, name: str) -> dict[str, list[str]]:
        """Where ``name``'s centre lies relative to its neighbours: its own relations plus those other
        classes state about it, turned round (spleen left_of stomach gives stomach right_of spleen)."""
        out: dict[str, list[str]] = {k: list(v) for k, v in self.by_name(name).relations.items()}
        for c in self.classes:
            for key, others in c.relations.items():
                if name in others and c.name not in out.setdefault(OPPOSITE[key], []):
                    out[OPPOSITE[key]].append(c.name)
        return {k: out[k] for k in RELATIONS if out.get(k)}

    def neighbours(self, name: str) -> list[str]:
        """The classes a relation ties to ``name`` (in either direction), in set order."""
        related = {n for names in self.relations_of(name).values() for n in names}
        return [c.name for c in self.classes if c.name in related]

    def counts_by_category(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.classes:
            out[str(c.category)] = out.get(str(c.category), 0) + 1
        return out

    def color_table(self) -> np.ndarray:
        """(max_index + 1, 3) uint8 RGB table; row 0 (background) is black."""
        import numpy as np

        table = np.zeros((self.max_index + 1, 3), dtype=np.uint8)
        for c in self.classes:
            table[c.index] = c.color
        return table

    # files ---------------------------------------------------------------------------------------
    def to_toml(self) -> str:
        """The label set in the TOML form :func:`load_label_set` reads (one table per class)."""
        lines = ["# ctcurate label set. Edit a copy to define your own; see docs/labels.md.",
                 f"name = {_toml(self.name)}", f"version = {_toml(self.version)}"]
        if self.title:
            lines.append(f"title = {_toml(self.title)}")
        if self.source:
            lines.append(f"source = {_toml(self.source)}")
        for c in self.classes:
            lines += ["", "[[classes]]"] + [f"{k} = {_toml(v)}" for k, v in c.to_dict().items()]
        return "\n".join(lines) + "\n"

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, self.to_toml())


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def builtin_label_sets() -> list[str]:
    """Names of the label sets that ship with ctcurate."""
    files = resources.files("curation.labels.labelsets").iterdir()
    return sorted(p.name[:-5] for p in files if p.name.endswith(".toml") and "_to_" not in p.name)


def _from_dict(doc: dict[str, Any], origin: str) -> LabelSet:
    for n, c in enumerate(doc.get("classes", []), 1):
        missing = [k for k in ("index", "name") if k not in c]
        if missing:
            raise LabelSetError(f"{origin}: class #{n} has no {' or '.join(missing)}; every class needs index and "
                                "name")
    try:
        classes = tuple(LabelClass(**dict(c)) for c in doc["classes"])
        return LabelSet(name=str(doc["name"]), version=str(doc.get("version", "1")), classes=classes,
                        title=str(doc.get("title", "")), source=str(doc.get("source", "")))
    except KeyError as exc:
        raise LabelSetError(f"{origin}: missing key {exc}; a label set needs name and [[classes]] with index and "
                            "name") from None
    except TypeError as exc:
        raise LabelSetError(f"{origin}: {exc}; see docs/labels.md for the keys a class may have") from None


def load_label_set(name_or_path: str | Path) -> LabelSet:
    """Load a built-in label set by name (``total_v1``, ``total_v2``) or a user's TOML file by path."""
    text = str(name_or_path)
    if text in builtin_label_sets():
        origin = f"built-in label set {text!r}"
        data = resources.files("curation.labels.labelsets").joinpath(f"{text}.toml").read_text(encoding="utf-8")
    else:
        path = Path(text)
        if not path.is_file():
            raise LabelSetError(f"label set {text!r}: not a built-in name ({', '.join(builtin_label_sets())}) and "
                                "no such file; pass one of those names or the path of a TOML label set")
        origin, data = str(path), path.read_text(encoding="utf-8")
    try:
        doc = tomllib.loads(data)
    except tomllib.TOMLDecodeError as exc:
        raise LabelSetError(f"{origin}: not valid TOML ({exc})") from None
    return _from_dict(doc, origin)
