"""Fault injection: every writing stage killed with SIGKILL at five seeded moments, then run again, ends exactly
as a run that was never interrupted: the same files (sha256 of every file; the annotation database compared
row by row without its clock columns), no temporaries, and no process of the killed run alive 10 s later.

The stages run as a chain on the demo: convert -> presegment -> qa labels -> split -> release -> publish (to the
local Zenodo test server); each stage's uninterrupted run is the next one's input. Moments are drawn with a
fixed seed from the file events the uninterrupted run made (see ``tests/faults.py``), plus, where the stage
has them, moments that only exist there: pool workers at work, a worker's half-written case folder, the
inside of a zip part.
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from curation.atomic import TMP_PREFIX
from curation.workspace import Workspace
from tests.faults import REPO, Moment, count_events, differences, interrupt, run_and_kill, tree

SEED = 15
MOMENTS = 5


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ctcurate.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600)


@dataclass
class Stage:
    name: str
    args: Callable[[Path], list[str]]
    extra: list[Moment] = field(default_factory=list)
    prepare: Callable[[Path], None] = lambda root: None
    result: Callable[[Path], dict[str, str]] = tree


@dataclass(frozen=True)
class Reference:
    """A stage's uninterrupted run: its workspace, its file events, its exit code and its result."""

    root: Path
    events: int
    code: int
    result: dict[str, str]


def _moments(stage: Stage, events: int) -> list[Moment]:
    draws = MOMENTS - len(stage.extra)
    picks = random.Random(f"{SEED}:{stage.name}").sample(range(1, events), min(draws, events - 1))
    return [*stage.extra, *(Moment.event(n) for n in sorted(picks))]


def _reference(stage: Stage, source: Path, work: Path) -> Reference:
    root = work / f"{stage.name}-reference"
    shutil.copytree(source, root, symlinks=True)
    stage.prepare(root)
    events, code = count_events(root, stage.args(root), work / f"{stage.name}.events")
    assert code in (0, 1), f"{stage.name}: the uninterrupted run failed (exit {code})"  # 1: QA found errors
    return Reference(root, events, code, stage.result(root))


def _kill_and_rerun(stage: Stage, source: Path, reference: Reference, work: Path) -> None:
    """Run ``stage`` on copies of ``source`` killed at each moment, run it again, and compare with ``reference``."""
    problems = []
    for number, moment in enumerate(_moments(stage, reference.events)):
        root = work / f"{stage.name}-kill{number}"
        shutil.copytree(source, root, symlinks=True)
        stage.prepare(root)
        killed = run_and_kill(root, stage.args(root), moment)
        assert killed.killed, f"{stage.name} at {moment}: the command ended before the moment came"
        if killed.alive_after:
            problems.append(f"{moment}: processes alive 10 s after the kill: {killed.alive_after}")
        again = _run(stage.args(root))
        if again.returncode != reference.code:
            problems.append(f"{moment}: the rerun ended with exit {again.returncode}, the uninterrupted run with "
                            f"{reference.code}: {again.stderr[-500:]}")
        leftovers = [p.relative_to(root).as_posix() for p in root.rglob(f"{TMP_PREFIX}*")]
        if leftovers:
            problems.append(f"{moment}: temporaries left after the rerun: {leftovers[:3]}")
        differ = differences(stage.result(root), reference.result)
        if differ:
            problems.append(f"{moment}: differs from the uninterrupted run: {differ[:6]}")
        shutil.rmtree(root)
    assert problems == [], f"{stage.name}: " + "; ".join(problems)


def _with_model(root: Path) -> None:
    from annotator.registry import register_model
    from annotator.small_model import SMALL_MODEL_FOLDER
    from curation.annotation import RevisionStore

    ws = Workspace.open(root)
    RevisionStore(ws)  # the store's identity is part of every revision file: made once, before the copies
    register_model(ws, "small", [SMALL_MODEL_FOLDER])


CONVERT = Stage("convert", lambda root: ["convert", "-w", str(root), "--workers", "2"],
                extra=[Moment.workers(2), Moment.appears(f"releasable/cases/{TMP_PREFIX}*/ct.nrrd")])
PRESEGMENT = Stage("presegment", lambda root: ["presegment", "small", "-w", str(root), "--workers", "2"],
                   extra=[Moment.workers(2)])
QA_LABELS = Stage("qa-labels", lambda root: ["qa", "labels", str(root), "--workers", "2"], extra=[Moment.workers(2)])
SPLIT = Stage("split", lambda root: ["split", "-w", str(root), "--stratify", "sex"])


def _release(answers: Path) -> Stage:
    return Stage("release", lambda root: ["release", "1.0.0", "-w", str(root), "--force-qa", "--answers",
                                          str(answers)], extra=[Moment.after(".zip", 2)])


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def filtered(work: Path, demo_export: Path) -> Path:
    """A filtered demo workspace: what 'convert' starts from."""
    from curation.catalog.scan import scan
    from curation.selection.filter import run_filter
    from curation.selection.sample import sample
    from curation.workspace.executor import SerialExecutor

    ws = Workspace.create(work / "filtered")
    scan(ws, [demo_export], executor=SerialExecutor())
    sample(ws, n=0, seed=11)
    run_filter(ws)
    return ws.root


@pytest.fixture(scope="module")
def converted(filtered: Path, work: Path) -> Reference:
    return _reference(CONVERT, filtered, work)


@pytest.fixture(scope="module")
def model_ready(converted: Reference, work: Path) -> Path:
    root = work / "model-ready"
    shutil.copytree(converted.root, root)
    _with_model(root)
    return root


@pytest.fixture(scope="module")
def segmented(model_ready: Path, work: Path) -> Reference:
    return _reference(PRESEGMENT, model_ready, work)


@pytest.fixture(scope="module")
def checked(segmented: Reference, work: Path) -> Reference:
    return _reference(QA_LABELS, segmented.root, work)


@pytest.fixture(scope="module")
def split(checked: Reference, work: Path) -> Reference:
    return _reference(SPLIT, checked.root, work)


@pytest.fixture(scope="module")
def answers(work: Path) -> Path:
    from ctcurate.demo import DEMO_ANSWERS

    path = work / "answers.yaml"
    path.write_text(yaml.safe_dump(DEMO_ANSWERS))
    return path


@pytest.fixture(scope="module")
def released(split: Reference, answers: Path, work: Path) -> Reference:
    return _reference(_release(answers), split.root, work)


def test_convert(filtered: Path, converted: Reference, work: Path) -> None:
    _kill_and_rerun(CONVERT, filtered, converted, work)


def test_presegment(model_ready: Path, segmented: Reference, work: Path) -> None:
    _kill_and_rerun(PRESEGMENT, model_ready, segmented, work)


def test_qa_labels(segmented: Reference, checked: Reference, work: Path) -> None:
    _kill_and_rerun(QA_LABELS, segmented.root, checked, work)


def test_split(checked: Reference, split: Reference, work: Path) -> None:
    _kill_and_rerun(SPLIT, checked.root, split, work)


def test_release(split: Reference, released: Reference, answers: Path, work: Path) -> None:
    _kill_and_rerun(_release(answers), split.root, released, work)


def test_publish(released: Reference, work: Path) -> None:
    from tests.datacard.fake_zenodo import FakeZenodo

    server = FakeZenodo()
    token = work / "token"
    token.write_text(server.token)

    def uploaded(root: Path) -> dict[str, str]:
        state = json.loads(Workspace.open(root).release("1.0.0").zenodo_state.read_text())
        deposition = int(state["deposition_id"])
        return {f"zenodo:{name}": f["checksum"] for name, f in server.files[deposition].items()} | {
            "zenodo:published": str(state.get("published")),
            "zenodo:metadata": json.dumps(server.depositions[deposition]["metadata"], sort_keys=True)} | {
            k: v for k, v in tree(root).items() if not k.endswith(".zenodo.json")}

    stage = Stage("publish", lambda root: ["publish", "1.0.0", "-w", str(root), "--zenodo", "--publish",
                                           "--token-file", str(token), "--url", server.url], result=uploaded)
    try:
        _kill_and_rerun(stage, released.root, _reference(stage, released.root, work), work)
    finally:
        server.close()


def test_ctrl_c_is_one_line_and_the_rerun_finishes(model_ready: Path, segmented: Reference, work: Path) -> None:
    """Ctrl-C in a terminal reaches the command and its pool workers: the workers leave it to the command, which
    stops the pool without waiting and says so in one line (exit 130); the rerun finishes the work."""
    root = work / "interrupted"
    shutil.copytree(model_ready, root)
    # the barrier: while the test holds the annotation database's write lock, no case can be recorded (a worker
    # waits up to 60 s for it), so Ctrl-C reaches the command with every case still to do, however slow the machine
    database = sqlite3.connect(Workspace.open(root).database_file, isolation_level=None)
    try:
        database.execute("BEGIN IMMEDIATE")
        code, output, alive = interrupt(PRESEGMENT.args(root), workers=2)
    finally:
        database.close()
    assert code == 130, output[-2000:]
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output[-2000:]
    assert "interrupted: nothing half-written was kept; run the same command again to finish" in " ".join(
        output.split())
    assert alive == []
    assert _run(PRESEGMENT.args(root)).returncode == segmented.code
    assert differences(tree(root), segmented.result) == []
