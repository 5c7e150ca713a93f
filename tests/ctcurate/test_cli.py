from pathlib import Path

import pytest

from ctcurate.cli import app
from curation.workspace import Workspace
from tests.cli_runner import CliRunner

runner = CliRunner()


def test_help_lists_steps() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for step in ("init", "scan", "sample", "filter", "convert", "demo"):
        assert step in result.output


def test_missing_export_is_one_line(tmp_path: Path) -> None:
    assert runner.invoke(app, ["init", str(tmp_path / "ws")]).exit_code == 0
    result = runner.invoke(app, ["scan", str(tmp_path / "nope"), "-w", str(tmp_path / "ws"), "--workers", "1"])
    assert result.exit_code == 2
    assert "export folder not found" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(("command", "message"), [
    (["scan"], "no export folder to scan; pass one, e.g. 'ctcurate scan /path/to/export'"),
    (["convert"], "private/filter/exams.parquet: not found; run 'ctcurate filter' on this workspace first"),
])
def test_a_command_failing_before_its_work_prints_its_error_line_only(tmp_path: Path, command: list[str],
                                                                      message: str) -> None:
    """An empty progress bar ('0/?') was drawn above the error line of a command that had nothing to do."""
    assert runner.invoke(app, ["init", str(tmp_path / "ws")]).exit_code == 0
    result = runner.invoke(app, [*command, "-w", str(tmp_path / "ws"), "--workers", "1"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0].endswith(message), result.output


def test_a_progress_bar_shows_once_there_is_work_and_stays_once_some_is_done(
        capsys: pytest.CaptureFixture[str]) -> None:
    from ctcurate.cli._common import progress_bars

    with pytest.raises(RuntimeError), progress_bars("convert", "other") as (update, _):
        update(0, 3)  # the work is known, nothing done yet: the failure takes the bar with it
        raise RuntimeError("failed before its first item")
    assert capsys.readouterr().out == ""
    with pytest.raises(RuntimeError), progress_bars("convert", "other") as (update, _):
        update(1, 3)
        raise RuntimeError("failed at its second item")
    shown = capsys.readouterr().out
    assert "convert" in shown and "1/3" in shown and "other" not in shown  # a bar never updated is not drawn
    with progress_bars("scan") as (update,):
        update(0, 2)
    assert "0/2" in capsys.readouterr().out  # a command that succeeds with nothing done still shows its bar


def test_init_needs_its_folder_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bare 'ctcurate init' made the current folder a workspace; the folder must be named ('.' too)."""
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 2 and "Missing argument 'workspace'" in result.output
    assert list(tmp_path.iterdir()) == []
    assert runner.invoke(app, ["init", "."]).exit_code == 0 and Workspace.open(tmp_path).settings_path.is_file()


def test_threads_go_to_the_settings_and_a_negative_count_is_refused(tmp_path: Path) -> None:
    assert runner.invoke(app, ["init", str(tmp_path / "ws"), "--threads", "3"]).exit_code == 0
    assert "threads = 3" in (tmp_path / "ws" / "ctcurate.toml").read_text()
    result = runner.invoke(app, ["convert", "-w", str(tmp_path / "ws"), "--threads", "-1"])
    assert result.exit_code == 2
    assert "Invalid value for '--threads': Input should be greater than or equal to 0" in result.output


@pytest.mark.parametrize("command", [["scan", "."], ["convert"], ["presegment", "small"], ["qa", "labels"]])
def test_a_worker_count_below_one_is_refused(tmp_path: Path, command: list[str]) -> None:
    runner.invoke(app, ["init", str(tmp_path / "ws")])
    where = [str(tmp_path / "ws")] if command[0] == "qa" else ["-w", str(tmp_path / "ws")]
    result = runner.invoke(app, [*command, *where, "--workers", "0"])
    assert result.exit_code == 2
    assert "Invalid value for '--workers': Input should be greater than or equal to 1" in result.output


@pytest.mark.parametrize(("option", "value", "least"), [("--workers", "0", 1), ("--n", "-4", 0)])
def test_init_refuses_counts_below_their_least(tmp_path: Path, option: str, value: str, least: int) -> None:
    result = runner.invoke(app, ["init", str(tmp_path / "ws"), option, value])
    assert result.exit_code == 2 and not (tmp_path / "ws").exists()
    assert f"Invalid value for '{option}': Input should be greater than or equal to {least}" in result.output


def test_not_a_workspace(tmp_path: Path) -> None:
    result = runner.invoke(app, ["filter", "-w", str(tmp_path)])
    assert result.exit_code == 2 and "not a ctcurate workspace" in result.output


def test_bad_settings_file(tmp_path: Path) -> None:
    runner.invoke(app, ["init", str(tmp_path / "ws")])
    (tmp_path / "ws" / "ctcurate.toml").write_text("[exclusion]\nmin_slices = -1\n")
    result = runner.invoke(app, ["sample", "-w", str(tmp_path / "ws")])
    assert result.exit_code == 2 and "exclusion.min_slices" in result.output


def test_steps_in_order(tmp_path: Path, demo_export: Path) -> None:
    ws = str(tmp_path / "ws")
    assert runner.invoke(app, ["init", ws, "--seed", "4"]).exit_code == 0
    result = runner.invoke(app, ["filter", "-w", ws])
    assert result.exit_code == 2 and "run 'ctcurate scan'" in result.output
    assert runner.invoke(app, ["scan", str(demo_export), "-w", ws, "--workers", "1"]).exit_code == 0
    assert runner.invoke(app, ["sample", "-w", ws]).exit_code == 0
    result = runner.invoke(app, ["filter", "-w", ws])
    assert result.exit_code == 0 and "3 of 6 sampled exams included" in result.output
    result = runner.invoke(app, ["convert", "-w", ws, "--workers", "1"])
    assert result.exit_code == 0 and "3 converted" in result.output


def test_demo_command(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", str(tmp_path / "demo"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    cases = tmp_path / "demo" / "workspace" / "releasable" / "cases"
    for case in ("s0001", "s0002", "s0003"):
        for name in ("ct.nrrd", "ct_1.5mm.nrrd", "ct_3mm.nrrd", "case.json"):
            assert (cases / case / name).is_file()
    assert (tmp_path / "demo" / "workspace" / "releasable" / "figures" / "exclusion_flow.svg").is_file()
    release = tmp_path / "demo" / "workspace" / "releases" / "1.0.0"  # the demo ends with a release
    assert (release / "SHA256SUMS").is_file() and (release / "s0001" / "segmentations" / "liver.nrrd").is_file()
    sheet = (release / "datasheet" / "datasheet.md").read_text()
    assert "**Noise**: Synthetic phantom images without noise." in sheet and "(forced)" in sheet


def test_python_dash_m_runs_the_command_line() -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "ctcurate", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "qa" in result.stdout, result.stderr


RUN = """
import atexit, ctypes, sys, threading, time
from ctcurate.cli import run
ctypes.CDLL(None).printf(b"native line\\n")  # a C library's output, buffered by C when stdout is a pipe
atexit.register(lambda: print("exit handler ran", flush=False))
started = threading.Event()
def late():
    started.set()
    time.sleep(0.2)
    print("thread finished", flush=False)
threading.Thread(target=late).start()
started.wait()
sys.argv = ["ctcurate", *sys.argv[1:]]
run()
"""


@pytest.mark.parametrize(("args", "code"), [(["--help"], 0), (["scan", "--no-such-flag"], 2)])
def test_the_console_script_ends_as_exit_would(args: list[str], code: int) -> None:
    """``run`` skips the teardown of the command's objects, not what exit does first: threads are waited for, exit
    handlers run, buffered output (Python's and C's) reaches the pipe, and the command's exit code is the
    process's."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # C buffers stdout as it would
    result = subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == code, result.stderr
    assert "thread finished\nexit handler ran\n" in result.stdout and "native line" in result.stdout, result.stdout
    assert ("Usage: ctcurate" in result.stdout) if code == 0 else ("No such option" in result.stderr)


def test_output_to_a_pipe_is_not_cut_to_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables piped to a file had every cell cut to a few letters ('cas…', 'sta…'); long lines wrapped mid-path."""
    import io

    from ctcurate.cli._common import PIPE_WIDTH, _width

    class Pipe(io.StringIO):
        def isatty(self) -> bool:
            return False

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("COLUMNS", raising=False)
    assert _width(Pipe()) == PIPE_WIDTH >= 160 and _width(Terminal()) is None
    monkeypatch.setenv("COLUMNS", "100")  # said by the user: rich takes it
    assert _width(Pipe()) is None
