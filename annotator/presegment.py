"""``ctcurate presegment``: run a registered model on every case without a result, as revision 0.

Each case's CT (``ct.nrrd``; the isotropic copy at the model's spacing is used as input when it
exists) is segmented by every model part, the labels are brought back to the CT's grid and to each
copy's grid, and stored as revision 0, authored by the model. Cases run on the curation executor; a
worker loads the model once and keeps it. A case that fails is recorded and the batch goes on; a
rerun skips cases that already have a revision. The contrast phase is estimated from each new
result (:mod:`annotator.phase`) and stored in ``case.json`` and the cases table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from curation import Workspace
from curation.annotation.revisions import RevisionStore
from curation.atomic import WRITE_FAULTS
from curation.cases.casemeta import read_case_metadata, write_meta_table
from curation.errors import CtcurateError, ModelError, ModelLoadError
from curation.image.volume import read_nrrd
from curation.workspace.errorlog import failure_line
from curation.workspace.executor import SerialExecutor

from .phase import estimate_case_phase
from .predict import check_device
from .registry import ModelRecord, load_model_parts, load_model_record
from .segment import ModelPart, segment_ct

__all__ = ["PresegmentResult", "presegment", "presegment_case"]

log = logging.getLogger(__name__)
_LOADED: dict[tuple[str, str, str], list[ModelPart]] = {}  # per worker process: (workspace, model tag, device)


@dataclass
class PresegmentResult:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _parts(ws: Workspace, record: ModelRecord, device: str) -> list[ModelPart]:
    key = (str(ws.root), record.tag, device)
    if key not in _LOADED:
        _LOADED[key] = load_model_parts(ws, record, device=device)
    return _LOADED[key]


def presegment_case(ws: Workspace, case_id: str, record: ModelRecord, *, device: str = "cpu",
                    database_url: str | None = None) -> int:
    """Segment one case and store revision 0; returns the revision number."""
    folder = ws.case_dir(case_id)
    ct_path = folder / ws.ct_name()
    if not ct_path.is_file():
        raise ModelError(f"case {case_id}: no {ct_path.name}; run 'ctcurate convert' for it first")
    ct = read_nrrd(ct_path)
    copies = {}
    for spacing in ws.settings.conversion.spacings_mm:
        path = folder / ws.ct_name(spacing)
        if path.is_file():
            copies[f"{spacing:g}"] = read_nrrd(path)
    label_set = ws.label_set()
    results = segment_ct(_parts(ws, record, device), ct, label_set, ready=list(copies.values()),
                         grids=list(copies.values()))
    labels = {"native": results[0], **dict(zip(copies, results[1:], strict=True))}
    store = RevisionStore(ws, database_url)
    revision = store.add(case_id, labels, label_set, author=f"model:{record.tag}", kind="model", parent=None,
                         comment=f"pre-segmentation by {record.tag} on {device}")
    if ws.case_metadata(case_id).is_file():
        estimate = estimate_case_phase(ws, case_id, labels=labels["native"], ct=ct, revision=revision.number,
                                       database_url=database_url)
        log.info("case %s: contrast phase %s", case_id, estimate.phase)
    else:
        log.warning("case %s: no case.json, so no contrast phase was stored", case_id)
    return revision.number


def _phase_missing(ws: Workspace, cases: list[str], database_url: str | None) -> list[str]:
    """Estimate the phase of cases that have revision 0 but no phase yet; return them."""
    done = []
    for case_id in cases:
        has_metadata = ws.case_metadata(case_id).is_file()
        if has_metadata and "phase_revision" not in read_case_metadata(ws, case_id).get("contrast", {}):
            try:
                estimate_case_phase(ws, case_id, database_url=database_url)
                done.append(case_id)
            except (CtcurateError, OSError, ValueError) as exc:
                log.error("case %s: contrast phase: %s", case_id, exc)
    return done


def _task(args: tuple[str, str, str, int, str, str | None]) -> str:
    root, case_id, name, version, device, url = args
    ws = Workspace.open(root)
    try:
        presegment_case(ws, case_id, load_model_record(ws, name, version), device=device, database_url=url)
        return ""
    except ModelLoadError:
        raise  # the model itself: every case would fail alike
    except CtcurateError as exc:
        return str(exc)
    except OSError as exc:
        if exc.errno in WRITE_FAULTS:  # a full or read-only workspace: every later case would fail the same way
            raise
        return failure_line(exc, ws.error_log, f"presegment {case_id}")
    except (RuntimeError, ValueError, MemoryError) as exc:
        return failure_line(exc, ws.error_log, f"presegment {case_id}")


def presegment(ws: Workspace, model: str, *, version: int | None = None, cases: list[str] | None = None,
               device: str = "cpu", executor: Any = None, database_url: str | None = None,
               progress: Callable[[int, int], None] | None = None) -> PresegmentResult:
    """Pre-segment the named cases (default: every case without a revision)."""
    check_device(device)  # before any case: each would fail alike
    record = load_model_record(ws, model, version)
    store = RevisionStore(ws, database_url)
    all_cases = ws.case_ids()
    unknown = sorted(set(cases or []) - set(all_cases))
    if unknown:
        raise ModelError(f"cases {unknown[:5]} not found in {ws.cases_dir}")
    done_before = store.cases_with_revisions()
    result = PresegmentResult(skipped=[c for c in (cases or all_cases) if c in done_before])
    todo = [c for c in (cases or all_cases) if c not in done_before]
    executor = executor or SerialExecutor()
    tasks = [(str(ws.root), c, record.name, record.version, device, database_url) for c in todo]
    for n, (task, error) in enumerate(executor.imap_unordered(_task, tasks), 1):
        case_id = task[1]
        if error:
            result.failed[case_id] = error
            log.error("case %s: %s", case_id, error)
        else:
            result.done.append(case_id)
        if progress:
            progress(n, len(tasks))
    _phase_missing(ws, result.skipped, database_url)  # a run killed between revision and phase
    if ws.meta_table.is_file():  # the new contrast phases (also when a killed run wrote them but not the table)
        write_meta_table(ws)
    return result
