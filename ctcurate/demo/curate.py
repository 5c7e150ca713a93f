"""The curation part of ``ctcurate demo``: build the export, then init, scan (or pull from a local PACS),
sample, filter and convert, and label the cases with the phantom's truth."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from curation.errors import ScanError
from curation.workspace import Workspace

from .export import build_demo_export
from .labels import label_demo_cases

__all__ = ["DemoResult", "run_demo"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoResult:
    """Where the demo put things and what came out."""

    export: Path
    workspace: Path
    n_sampled: int
    n_included: int
    cases: tuple[str, ...]
    cases_dir: Path
    flow_png: Path


def run_demo(folder: str | Path | None = None, *, workers: int = 2, pacs: bool = False,
             on_step: Callable[[str], None] | None = None) -> DemoResult:
    """Build the export and run init, scan, sample, filter and convert; return where things are.

    With ``pacs``, the export is loaded into a local Orthanc (:mod:`curation.pacs.local`) and pulled from it
    over DICOMweb (query, draw, judgement from metadata, retrieval, scan, filter) instead of scanned.
    """
    from curation.cases.convert import convert
    from curation.catalog.scan import scan
    from curation.selection.filter import run_filter
    from curation.selection.sample import sample
    from curation.workspace.executor import make_executor
    from curation.workspace.settings import ExecutorSettings, PacsSettings, SamplingSettings, Settings

    base = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="ctcurate-demo-"))
    step = on_step or (lambda label: log.info(label))
    step("build synthetic export")
    export = build_demo_export(base / "export")
    step("init")
    settings = Settings(name="ctcurate demo", seed=1368, sampling=SamplingSettings(n=0),
                        executor=ExecutorSettings(workers=workers))
    ws = Workspace.create(base / "workspace", settings, exist_ok=True)
    with contextlib.ExitStack() as stack:
        executor = stack.enter_context(make_executor(settings.executor))
        if pacs:
            from curation.pacs.local import LocalOrthanc
            from curation.pacs.pull import pull

            step("local PACS: Orthanc with DICOMweb, loaded with the export")
            server = stack.enter_context(LocalOrthanc())
            server.load(p for p in export.rglob("*") if p.is_file())
            ws.save_settings(replace(ws.settings, pacs=PacsSettings(url=server.dicomweb)))
            step("pull: query, draw, judge from metadata, retrieve, scan, filter")
            flow = pull(ws, executor=executor).filter
            if flow is None:
                raise ScanError(f"{server.dicomweb}: nothing was retrieved from the demo PACS; see the log")
        else:
            step("scan")
            scan(ws, [export], executor=executor)
            step("sample")
            sample(ws)
            step("filter")
            flow = run_filter(ws)
        step("convert")
        result = convert(ws, executor=executor)
    cases = tuple(sorted(result.converted + result.skipped))
    step("label cases")
    label_demo_cases(ws, cases)
    return DemoResult(export=export, workspace=ws.root, n_sampled=flow.n_sampled_exams,
                      n_included=flow.n_included_exams, cases=cases, cases_dir=ws.cases_dir,
                      flow_png=Path(flow.flow_png))
