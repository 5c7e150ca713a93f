"""Anatomical knowledge of a label class: where it lies and what it looks like in a normal adult.

Every field is optional and checked when a :class:`~curation.labels.labelset.LabelClass` is built:

- ``levels = [top, bottom]``: the typical craniocaudal span on one continuous scale in vertebral levels
  (C1 = 1 ... C7 = 7, T1 = 8 ... T12 = 19, L1 = 20 ... L5 = 24, S1 = 25, as ``spine_level``); above C1
  the scale goes on below 1 (skull base about 0, vertex about -4), below S1 by the typical height of a
  lumbar level (coccyx and femoral head about 28, lesser trochanter 30, mid-femur 36, knee 44).
  ``top`` is cranial, so ``top < bottom``.
- ``required``: the structure is there in every adult whenever its span is in the field of view
  (false for organs often removed or pathological, sex-specific ones, those that depend on arm
  position or on the in-plane field of view).
- ``pieces``: ``one`` or ``several`` connected pieces in a healthy body; when left out it is derived
  (solid organs, vertebrae, bones and muscles are one piece).
- ``side``: ``right`` or ``left`` for an unpaired structure (laterality ``none``) whose centre lies on
  that side of the body's midline in every normal adult (liver right, spleen left).
- ``relations``: ``{above, below, anterior, posterior, right_of, left_of} = [names]``: this
  structure's centre lies above / below / in front of / behind / to the right / to the left of the
  centre of each named neighbour in every normal adult, by a clear margin (about 15 mm or more).
- ``hu_phase``: typical median HU (mean, spread of about one SD across patients) at about 120 kVp
  for each contrast phase (``native``, ``arterial``, ``portal_venous``, ``late``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from curation.enums import ContrastPhase, parse_enum
from curation.errors import LabelSetError

__all__ = ["LEVEL_RANGE", "RELATIONS", "OPPOSITE", "PHRASES", "RELATION_AXES", "relations_held", "Pieces", "Side",
           "parse_levels", "parse_pieces", "parse_side", "parse_relations", "parse_hu_phase", "check_relations"]

#: the lowest and highest value ``levels`` may take (skull vertex about -4, sole of the foot about 58)
LEVEL_RANGE = (-6.0, 60.0)
#: the relations a class may state, in TOML order, and the relation each one implies for the other class
RELATIONS = ("above", "below", "anterior", "posterior", "right_of", "left_of")
OPPOSITE = {"above": "below", "below": "above", "anterior": "posterior", "posterior": "anterior",
            "right_of": "left_of", "left_of": "right_of"}
#: how each relation reads in a message
PHRASES = {"above": "above", "below": "below", "anterior": "in front of", "posterior": "behind",
           "right_of": "to the right of", "left_of": "to the left of"}
#: relation -> (LPS axis: 0 x, 1 y, 2 z; sign of this class's centre minus the other's when it holds)
RELATION_AXES = {"above": (2, 1), "below": (2, -1), "anterior": (1, -1), "posterior": (1, 1), "right_of": (0, -1),
                 "left_of": (0, 1)}


class Pieces(StrEnum):
    """How many connected pieces a structure is in a healthy body."""

    ONE = "one"
    SEVERAL = "several"


class Side(StrEnum):
    """The side of the body's midline an unpaired structure's centre lies on."""

    RIGHT = "right"
    LEFT = "left"


def _numbers(value: Any, n: int) -> list[float] | None:
    """``value`` as ``n`` finite numbers (not booleans), else ``None``."""
    if not isinstance(value, (list, tuple)) or len(value) != n:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        return None
    return [float(v) for v in value]


def parse_levels(value: Any, what: str) -> tuple[float, float] | None:
    """``[top, bottom]`` as two floats, or ``None``; else :class:`LabelSetError` naming the fix."""
    if value is None:
        return None
    low, high = LEVEL_RANGE
    numbers = _numbers(value, 2)
    if numbers is None:
        raise LabelSetError(f"{what}: levels must be [top, bottom], two numbers on the vertebral-level scale "
                            f"(C1 = 1 ... L5 = 24, S1 = 25), found {value!r}; write e.g. levels = [19.0, 22.5]")
    top, bottom = numbers
    if not top < bottom:
        raise LabelSetError(f"{what}: levels must be [top, bottom] with top < bottom (top is cranial), found "
                            f"[{top}, {bottom}]; swap them or widen the span")
    if top < low or bottom > high:
        raise LabelSetError(f"{what}: levels must lie within {low}..{high} (skull vertex about -4, knee 44), found "
                            f"[{top}, {bottom}]; fix the values")
    return top, bottom


def parse_pieces(value: Pieces | str | None, what: str) -> Pieces | None:
    return None if value is None else parse_enum(Pieces, value, f"{what} pieces", LabelSetError)


def parse_side(value: Side | str | None, what: str, paired: bool) -> Side | None:
    """``right``/``left`` for an unpaired class; a class with a laterality may not have one."""
    if value is None:
        return None
    side = parse_enum(Side, value, f"{what} side", LabelSetError)
    if paired:
        raise LabelSetError(f"{what}: side is for unpaired structures (laterality none), found side = {str(side)!r} "
                            "on a class with a laterality; drop side (laterality already names the side)")
    return side


def parse_relations(value: Mapping[str, Any] | None, what: str, own: str) -> dict[str, tuple[str, ...]]:
    """``{relation: (names...)}`` in :data:`RELATIONS` order, without empty lists."""
    if not value:
        return {}
    if not isinstance(value, Mapping):
        raise LabelSetError(f"{what}: relations must be a table such as {{ above = [\"kidney_left\"] }}, found "
                            f"{value!r}")
    unknown = sorted(set(value) - set(RELATIONS))
    if unknown:
        raise LabelSetError(f"{what}: unknown relation(s) {unknown}; expected some of {', '.join(RELATIONS)}")
    out: dict[str, tuple[str, ...]] = {}
    for key in RELATIONS:
        names = value.get(key)
        if names is None:
            continue
        if isinstance(names, str) or not isinstance(names, Iterable) or \
                not all(isinstance(n, str) and n for n in names):
            raise LabelSetError(f"{what}: relation {key} must be a list of class names, found {names!r}; write "
                                f"e.g. {key} = [\"liver\"]")
        names = tuple(names)
        if own in names:
            raise LabelSetError(f"{what}: relation {key} names the class itself; drop {own!r} from it")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise LabelSetError(f"{what}: relation {key} names {dupes} more than once; name each class once")
        if names:
            out[key] = names
    for key in ("above", "anterior", "right_of"):
        both = sorted(set(out.get(key, ())) & set(out.get(OPPOSITE[key], ())))
        if both:
            raise LabelSetError(f"{what}: {both} named under both {key} and {OPPOSITE[key]}; a centre cannot lie on "
                                "both sides, keep the one that holds")
    return out


def parse_hu_phase(value: Mapping[Any, Any] | None, what: str) -> dict[ContrastPhase, tuple[float, float]]:
    """``{phase: (mean, spread)}`` for every contrast phase, or empty."""
    if not value:
        return {}
    phases = ", ".join(p.value for p in ContrastPhase)
    if not isinstance(value, Mapping):
        raise LabelSetError(f"{what}: hu_phase must be a table {{ {phases} }} of [mean, spread], found {value!r}")
    out: dict[ContrastPhase, tuple[float, float]] = {}
    for key, pair in value.items():
        phase = parse_enum(ContrastPhase, key, f"{what} hu_phase phase", LabelSetError)
        numbers = _numbers(pair, 2)
        if numbers is None or not numbers[1] > 0:
            raise LabelSetError(f"{what}: hu_phase {phase.value} must be [mean, spread] with spread > 0 (HU), found "
                                f"{pair!r}; write e.g. {phase.value} = [42.0, 12.0]")
        out[phase] = (numbers[0], numbers[1])
    missing = [p.value for p in ContrastPhase if p not in out]
    if missing:
        raise LabelSetError(f"{what}: hu_phase must give every phase ({phases}), found no {', '.join(missing)}; add "
                            "them or drop hu_phase")
    return {p: out[p] for p in ContrastPhase}


def check_relations(set_name: str, relations: Mapping[str, Mapping[str, tuple[str, ...]]]) -> None:
    """Set-level checks: every named class exists and no two classes contradict each other."""
    what = f"label set {set_name!r}"
    stated: set[tuple[str, str, str]] = set()
    for name, rel in relations.items():
        for key, others in rel.items():
            for other in others:
                if other not in relations:
                    raise LabelSetError(f"{what}: class {name!r} says it lies {PHRASES[key]} {other!r}, which "
                                        "is not in the set; fix the name or drop it from relations")
                stated.add((name, other, key))
    for name, other, key in sorted(stated):
        if (other, name, key) in stated:  # each above the other
            raise LabelSetError(f"{what}: {name!r} lies {PHRASES[key]} {other!r} and {other!r} lies {PHRASES[key]} "
                                f"{name!r}; they contradict, keep the one that holds")


def relations_held(relations: Mapping[str, Mapping[str, tuple[str, ...]]], centres: Mapping[str, Any]
                   ) -> tuple[int, int]:
    """How many of the stated relations (class -> {relation: neighbours}) hold between the centres given
    (class -> LPS x, y, z in mm), of how many that can be judged (both centres given)."""
    held = judged = 0
    for name, stated in relations.items():
        if name not in centres:
            continue
        for relation, others in stated.items():
            axis, sign = RELATION_AXES[relation]
            for other in others:
                if other in centres:
                    judged += 1
                    held += int(sign * (float(centres[name][axis]) - float(centres[other][axis])) > 0)
    return held, judged
