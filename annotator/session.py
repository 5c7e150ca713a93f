"""One annotator's editing session on one case: the data model behind the napari plugin (no Qt here).

Opening a case claims it (read-only, with who and since when, if someone else holds it), loads the
CT and the latest revision, and checks that the labels fit the CT's grid and the label set. The correction
tools write their change through :attr:`CaseSession.writer`, so that the viewer puts it into the same undo
history as brush strokes (napari's ``data_setitem``). :meth:`CaseSession.save` stores the edits as the next
revision (native grid and every isotropic copy's grid), counts the voxels changed per structure against the
parent and the model, adds up active editing time (gaps over :data:`IDLE_SECONDS` do not count) and marks
changed structures ``corrected``; a save with no voxel changed is refused, and a failed one leaves the edits
in memory and the previous revision intact. :meth:`CaseSession.autosave` writes a recovery slot per
annotator, offered again on the next open after a crash. A second physician reviews a done case
(:meth:`CaseSession.review`: the two-person rule) and comments on structures.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curation import Volume, Workspace
from curation.annotation.db import now_iso
from curation.annotation.imports import case_grids
from curation.annotation.revisions import ReviewStatus, Revision, RevisionStore, voxel_changes
from curation.annotation.worklist import EXCLUSION_REASONS, CaseStatus, StructureState, Worklist
from curation.atomic import atomic_write_text
from curation.enums import Severity
from curation.errors import AnnotationError, CtcurateError
from curation.image.volume import read_nrrd
from curation.labels.labelmap import label_dtype, read_seg_nrrd, write_seg_nrrd
from curation.labels.labelset import LabelSet
from curation.selection.filter import redraw_flow

from . import edits

__all__ = ["CaseSession", "StructureRow", "IDLE_SECONDS", "WINDOWS"]

log = logging.getLogger(__name__)
IDLE_SECONDS = 60.0
#: CT window presets: name -> (low, high) HU
WINDOWS = {"soft tissue": (-160.0, 240.0), "bone": (-500.0, 1300.0), "lung": (-1350.0, 150.0)}


@dataclass(frozen=True)
class StructureRow:
    """One line of the structure panel."""

    index: int
    name: str
    color: tuple[int, int, int]
    state: str
    voxels: int
    findings: tuple[str, ...]


def _findings(ws: Workspace, case_id: str) -> dict[str, list[str]]:
    path = ws.qa.findings
    if not path.is_file():
        return {}
    import pandas as pd

    table = pd.read_parquet(path)
    table = table[(table["case"] == case_id) & table["severity"].isin([Severity.ERROR, Severity.WARNING])]
    out: dict[str, list[str]] = {}
    for structure, check in zip(table["structure"], table["check"], strict=True):
        out.setdefault(str(structure), []).append(str(check))
    return out


class CaseSession:
    """An open case: CT, working labels, parent revision, claim, findings and activity."""

    def __init__(self, ws: Workspace, case_id: str, annotator: str, *, database_url: str | None = None,
                 read_only: bool = False, clock: Callable[[], float] = time.monotonic) -> None:
        if not annotator.strip():
            raise AnnotationError("annotator: give your name to open a case")
        self.ws, self.case_id, self.annotator = ws, case_id, annotator
        self._clock = clock
        self.store = RevisionStore(ws, database_url)
        self.worklist = Worklist(ws, database_url)
        self.label_set: LabelSet = ws.label_set()
        self.read_only_reason = "opened read-only" if read_only else ""
        ct_path = ws.case_dir(case_id) / ws.ct_name()
        if not ct_path.is_file():
            raise AnnotationError(f"case {case_id}: {ct_path} not found; run 'ctcurate convert' for it")
        if not read_only:
            try:
                self.worklist.claim(case_id, annotator)
            except AnnotationError as exc:
                self.read_only_reason = str(exc)
        try:
            self.ct = read_nrrd(ct_path)
            latest = self.store.latest(case_id)
            self.parent: int | None = latest.number if latest else None
            if latest is None:
                base = np.zeros(self.ct.array.shape, dtype=label_dtype(self.label_set.max_index))
            else:
                base = self._read(self.store.path(latest), latest.number)
        except CtcurateError:
            self.close()  # a case that cannot be opened is not kept claimed
            raise
        self.base = base
        self.labels = base.copy()
        self.model = base.copy() if latest is not None and latest.number == 0 else None
        self.findings = _findings(ws, case_id)
        #: writes a change (indices, values) into :attr:`labels`; the viewer puts its undo history in between
        self.writer: Callable[[tuple[np.ndarray, ...], np.ndarray], None] = self._write
        self.started = now_iso()
        self.active_seconds = 0.0
        self._last: float | None = None

    @property
    def read_only(self) -> bool:
        return bool(self.read_only_reason)

    def _read(self, path: Path, number: int) -> np.ndarray:
        labels, _ = read_seg_nrrd(path)
        ct = self.ct
        if labels.array.shape != ct.array.shape or not np.allclose(labels.origin, ct.origin, atol=1e-2) \
                or not np.allclose(labels.spacing, ct.spacing, atol=1e-3):
            raise AnnotationError(f"case {self.case_id} revision {number}: geometry.grid: labels {labels.size} at "
                                  f"{np.round(labels.origin, 2).tolist()} do not match the CT {ct.size} at "
                                  f"{np.round(ct.origin, 2).tolist()}; run 'ctcurate qa labels' and fix the file")
        present = np.flatnonzero(np.bincount(labels.array.ravel()))  # one pass; np.unique would sort
        unknown = sorted(set(present.tolist()) - {0} - {c.index for c in self.label_set})
        if unknown:
            raise AnnotationError(f"case {self.case_id} revision {number}: completeness.unknown_value: values "
                                  f"{unknown[:8]} are not classes of label set {self.label_set.name!r}")
        return labels.array.astype(label_dtype(self.label_set.max_index), copy=False)

    # -- geometry ---------------------------------------------------------------------------------------
    @property
    def affine(self) -> np.ndarray:
        """4x4 map from array indices (z, y, x) to LPS world coordinates in (z, y, x) order, for napari."""
        reverse = np.eye(3)[::-1]
        out = np.eye(4)
        out[:3, :3] = reverse @ self.ct.direction @ np.diag(self.ct.spacing) @ reverse
        out[:3, 3] = np.asarray(self.ct.origin)[::-1]
        return out

    def centre_of(self, name: str) -> tuple[float, float, float] | None:
        """World (z, y, x) centre of a structure's voxels, to jump the view there."""
        where = np.argwhere(self.labels == self.label_set.by_name(name).index)
        if not len(where):
            return None
        centre = self.affine @ np.append(where.mean(axis=0), 1.0)
        return (float(centre[0]), float(centre[1]), float(centre[2]))

    # -- structures -------------------------------------------------------------------------------------
    def counts(self) -> np.ndarray:
        """Voxels per label value of the working labels (index = value)."""
        return np.bincount(self.labels.ravel(), minlength=self.label_set.max_index + 1)

    def structure_rows(self, *, hide_empty: bool = False) -> list[StructureRow]:
        """One row per structure of the label set (``hide_empty``: only those with voxels)."""
        counts = self.counts()
        states = self.worklist.structures(self.case_id)
        return [StructureRow(c.index, c.name, c.color, states.get(c.name, StructureState.UNREVIEWED).value,
                             int(counts[c.index]), tuple(self.findings.get(c.name, ()))) for c in self.label_set
                if not hide_empty or counts[c.index]]

    def next_unreviewed(self, current: str | None = None, *, step: int = 1, hide_empty: bool = False
                        ) -> str | None:
        """The next (``step`` 1) or previous (-1) unreviewed structure after ``current``, wrapping round; QA-
        flagged ones are not skipped. None when every structure shown is reviewed."""
        rows = [r for r in self.structure_rows(hide_empty=hide_empty) if r.state == StructureState.UNREVIEWED]
        if not rows:
            return None
        order = [c.name for c in self.label_set]
        position = order.index(current) if current in order else (-1 if step > 0 else len(order))
        ahead = sorted(rows, key=lambda r: ((order.index(r.name) - position) * step) % len(order) or len(order))
        return ahead[0].name

    def set_structure_state(self, name: str, state: StructureState | str) -> None:
        self._writable()
        self.label_set.by_name(name)
        self.worklist.set_structure(self.case_id, name, state, actor=self.annotator)

    def changed(self) -> dict[str, int]:
        """Voxels changed per structure since the parent revision (unsaved edits)."""
        return voxel_changes(self.base, self.labels, self.label_set)

    # -- activity and edits -----------------------------------------------------------------------------
    def note_activity(self) -> None:
        """Count the time since the last edit as active, unless the annotator was idle longer than a minute."""
        now = self._clock()
        if self._last is not None and now - self._last <= IDLE_SECONDS:
            self.active_seconds += now - self._last
        self._last = now

    def _writable(self) -> None:
        if self.read_only:
            raise AnnotationError(f"case {self.case_id} is open read-only: {self.read_only_reason}")

    def _write(self, indices: tuple[np.ndarray, ...], values: np.ndarray) -> None:
        self.labels[indices] = values

    def _edit(self, function: str, name: str, *args: object, **kwargs: object) -> int:
        """Run a tool of :mod:`annotator.edits` on a copy and hand what it changed to :attr:`writer` (one step
        of the undo history)."""
        self._writable()
        work = self.labels.copy()
        getattr(edits, function)(work, self.label_set.by_name(name).index, *args, **kwargs)
        where = np.nonzero(work != self.labels)
        if len(where[0]):
            self.writer(where, work[where])
        self.note_activity()
        return len(where[0])

    def apply(self, indices: Sequence[np.ndarray], value: int) -> int:
        """Set the voxels at ``indices`` to label ``value`` through :attr:`writer`; returns voxels changed."""
        self._writable()
        where = tuple(np.asarray(i) for i in indices)
        differ = self.labels[where] != value
        where = tuple(i[differ] for i in where)
        if len(where[0]):
            self.writer(where, np.full(len(where[0]), value, dtype=self.labels.dtype))
        self.note_activity()
        return len(where[0])

    def remove_islands(self, name: str, min_voxels: int | None = None) -> int:
        return self._edit("remove_islands", name, min_voxels=min_voxels)

    def fill_holes(self, name: str) -> int:
        return self._edit("fill_holes", name)

    def interpolate(self, name: str, first: int, last: int) -> int:
        return self._edit("interpolate_slices", name, first, last)

    def erase_box(self, name: str, box: tuple[tuple[int, int], ...]) -> int:
        return self._edit("erase_box", name, box)

    # -- saving -----------------------------------------------------------------------------------------
    def _grids(self) -> dict[str, Volume]:
        native = Volume(self.labels, self.ct.spacing, self.ct.origin, self.ct.direction)
        return case_grids(self.ws, self.case_id, native)

    def save(self, comment: str = "") -> Revision:
        """Store the edits as the next revision; on failure the edits stay and the message says why."""
        self._writable()
        if not self.changed():
            since = f"revision {self.parent}" if self.parent is not None else "an empty map"
            raise AnnotationError(f"case {self.case_id}: nothing to save: no voxel differs from {since}; edit, or "
                                  "set structure states (they are kept without a save)")
        self.note_activity()
        revision = self.store.add(self.case_id, self._grids(), self.label_set, author=self.annotator, kind="human",
                                  parent=self.parent, comment=comment, started=self.started, ended=now_iso(),
                                  active_seconds=round(self.active_seconds, 1), previous=self.base, model=self.model)
        self.parent, self.base = revision.number, self.labels.copy()
        self.active_seconds, self.started = 0.0, now_iso()
        states = self.worklist.structures(self.case_id)
        for name in revision.changes:  # the store counted them against the parent already
            if states.get(name, StructureState.UNREVIEWED) is StructureState.UNREVIEWED:
                self.worklist.set_structure(self.case_id, name, StructureState.CORRECTED, actor=self.annotator)
        try:
            self.worklist.renew(self.case_id, self.annotator)
        except AnnotationError as exc:
            log.warning("%s", exc)
        self._recovery_path().unlink(missing_ok=True)
        self._recovery_path().with_suffix(".json").unlink(missing_ok=True)
        return revision

    # -- recovery slot ----------------------------------------------------------------------------------
    def _recovery_path(self) -> Path:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", self.annotator)
        return self.store.folder(self.case_id) / f".recovery-{safe}.seg.nrrd"

    def autosave(self) -> Path | None:
        """Write unsaved edits to this annotator's recovery slot (nothing when there are none)."""
        if self.read_only or not self.changed():
            return None
        path = self._recovery_path()
        write_seg_nrrd(path, Volume(self.labels, self.ct.spacing, self.ct.origin, self.ct.direction), self.label_set)
        atomic_write_text(path.with_suffix(".json"), json.dumps({"parent": self.parent, "time": now_iso(),
                                                                 "active_seconds": self.active_seconds}))
        return path

    def discard(self) -> int:
        """Drop the unsaved edits (and this annotator's recovery slot); returns the voxels put back."""
        changed = sum(self.changed().values())
        self.labels[...] = self.base
        self._recovery_path().unlink(missing_ok=True)
        self._recovery_path().with_suffix(".json").unlink(missing_ok=True)
        return changed

    def recovery(self) -> dict[str, object] | None:
        """The recovery slot left by a session that ended without saving, if it still applies."""
        path = self._recovery_path()
        if self.read_only or not path.is_file() or not path.with_suffix(".json").is_file():
            return None
        info: dict[str, object] = json.loads(path.with_suffix(".json").read_text())
        return info if info.get("parent") == self.parent else None

    def restore_recovery(self) -> int:
        """Load the recovery slot into the working labels; returns the voxels it changes."""
        self._writable()
        info = self.recovery()
        if info is None:
            raise AnnotationError(f"case {self.case_id}: no recovery slot for {self.annotator} on the latest revision")
        self.labels[...] = self._read(self._recovery_path(), self.parent if self.parent is not None else -1)
        self.active_seconds = float(info.get("active_seconds") or 0.0)  # type: ignore[arg-type]
        return sum(self.changed().values())

    # -- case status ------------------------------------------------------------------------------------
    def mark_done(self, comment: str = "") -> None:
        self._writable()
        if self.changed():
            raise AnnotationError(f"case {self.case_id}: unsaved edits ({sum(self.changed().values())} voxels); "
                                  "save them first")
        self.worklist.set_status(self.case_id, CaseStatus.DONE, actor=self.annotator, comment=comment)
        self.close()

    def exclude(self, reason: str, comment: str = "") -> None:
        self._writable()
        if reason not in EXCLUSION_REASONS:
            raise AnnotationError(f"case {self.case_id}: exclusion reason {reason!r}: expected one of "
                                  f"{', '.join(EXCLUSION_REASONS)}")
        self.worklist.set_status(self.case_id, CaseStatus.EXCLUDED, actor=self.annotator, reason=reason,
                                 comment=comment)
        self.close()
        if self.ws.exams_table.is_file():
            redraw_flow(self.ws)  # the exclusion flow counts this case under its reason now

    # -- supervision ------------------------------------------------------------------------------------
    def review(self, status: ReviewStatus | str, comment: str = "") -> Revision:
        """A second physician's verdict on a done case's latest revision: approved (the case stays done) or
        rejected (it goes back to the annotators as in progress, with the comment); then the case is closed.
        Nobody approves a revision they wrote (setting ``annotation.self_review`` relaxes that)."""
        self._writable()
        chosen = ReviewStatus.parse(status)
        state, _ = self.worklist.status(self.case_id)
        if state is not CaseStatus.DONE:
            raise AnnotationError(f"case {self.case_id}: is {state.value}, not done; a case is reviewed once its "
                                  "annotator marks it done")
        if self.changed():
            raise AnnotationError(f"case {self.case_id}: unsaved edits ({sum(self.changed().values())} voxels); "
                                  "save them (a new revision, reviewed by someone else) or discard them first")
        if chosen is ReviewStatus.REJECTED and not comment.strip():
            raise AnnotationError(f"case {self.case_id}: a rejection needs a comment saying what to correct")
        revision = self.store.review(self.case_id, None, chosen, reviewer=self.annotator, comment=comment)
        if chosen is ReviewStatus.REJECTED:
            self.worklist.set_status(self.case_id, CaseStatus.IN_PROGRESS, actor=self.annotator, comment=comment)
        self.close()
        return revision

    def comment(self, name: str, text: str) -> None:
        """A comment on one structure (kept with the case's events, shown to whoever opens it next)."""
        self.label_set.by_name(name)
        self.worklist.comment(self.case_id, name, text, actor=self.annotator)

    def comments(self) -> dict[str, list[str]]:
        """Structure -> its comments, "who: text", oldest first."""
        out: dict[str, list[str]] = {}
        for c in self.worklist.comments(self.case_id):
            out.setdefault(c["structure"], []).append(f"{c['actor']}: {c['text']}")
        return out

    def close(self) -> None:
        """Release the claim (unsaved edits stay in the recovery slot if autosaved)."""
        if not self.read_only:
            try:
                self.worklist.release(self.case_id, self.annotator)
            except CtcurateError as exc:  # the database went away: the claim lapses on its own
                log.warning("case %s: could not release the claim (%s)", self.case_id, exc)

