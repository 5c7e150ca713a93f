"""Release commands: ``split`` (``split diff``, ``split freeze``), ``datasheet``, ``release``, ``verify``,
``publish``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from curation.errors import ConfigError
from curation.workspace.layout import Workspace

from ._common import WorkspaceOpt, app, console, counted, err_console, friendly, writes

__all__: list[str] = []

split_app = typer.Typer(help="Patient-level train/val/test splits, versioned (ctcurate split; split diff A B).",
                        invoke_without_command=True)
app.add_typer(split_app, name="split")


RATIOS_TOLERANCE = 0.01  # relative: 33,33,33 (99) and 0.333,0.333,0.333 pass; 50,50,50 does not


def _ratios(text: str) -> tuple[float, float, float]:
    """train, val, test shares: percentages adding up to 100 or fractions adding up to 1 (within 1 %)."""
    parts = [p for p in text.replace("/", ",").split(",") if p.strip()]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3:
        raise ConfigError(f"--ratios {text!r}: expected three numbers for train, val, test, e.g. 90,5,5")
    total = sum(values)
    if not any(abs(total - whole) <= RATIOS_TOLERANCE * whole for whole in (100, 1)):
        raise ConfigError(f"--ratios {text!r}: the shares add up to {total:g}; give percentages adding up to 100 "
                          "(e.g. 90,5,5) or fractions adding up to 1")
    return values[0], values[1], values[2]


@split_app.callback()
@friendly
@writes("split")
def split(
    ctx: typer.Context,
    workspace: WorkspaceOpt = Path("."),
    version: Annotated[str | None, typer.Option(help="Version to save (default: the next minor version, "
                                                     "1.0.0 for the first, the next major with --reshuffle).")] = None,
    ratios: Annotated[str | None, typer.Option(help="train,val,test shares: percentages adding up to "
                                                    "100 or fractions adding up to 1 (default 90,5,5 or the last "
                                                    "version's).")] = None,
    stratify: Annotated[str | None, typer.Option(help="Columns to stratify on, comma separated (default "
                                                      "site,sex,age_band).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (default: the workspace's).")] = None,
    reshuffle: Annotated[bool, typer.Option(help="Ignore earlier assignments (a new major version).")] = False,
) -> None:
    """Assign every included case to train / val / test by patient, stratified, seeded; save a version."""
    if ctx.invoked_subcommand is not None:
        return
    from datacard.split import SplitPlan, list_splits, make_split, unfinished_split

    ws = Workspace.open(workspace)
    previous = list_splits(ws)
    base = previous[-1].plan if previous else SplitPlan(seed=ws.settings.seed)
    plan = SplitPlan(_ratios(ratios) if ratios else base.ratios,
                     tuple(c.strip() for c in stratify.split(",") if c.strip()) if stratify is not None
                     else base.stratify, seed if seed is not None else base.seed)
    automatic = version is None and not reshuffle  # a version asked for by number, or a reshuffle, is always saved
    if version is None:
        major, minor, _ = (int(x) for x in previous[-1].version.split(".")) if previous else (0, 0, 0)
        version = "1.0.0" if not previous else (f"{major + 1}.0.0" if reshuffle else f"{major}.{minor + 1}.0")
    pending = unfinished_split(ws)
    made = make_split(ws, version, plan, reshuffle=reshuffle, if_changed=automatic)
    counts = ", ".join(f"{k} {sum(1 for v in made.assignments.values() if v == k)}" for k in ("train", "val", "test"))
    if made.version != version and pending is None:
        console.print(f"split unchanged since {made.version} ({counts} cases): no new version saved; --version "
                      f"{version} saves one all the same")
        return
    finished = " (saved by an interrupted run, now finished)" if made.version != version else ""
    console.print(f"split {made.version}{finished}: {counts} cases; "
                  f"{counted(len(set(made.patients.values())), 'patients')}; written to case.json, the cases "
                  "table, splits.json and splits_final.json")


@split_app.command("diff")
@friendly
def diff(first: Annotated[str, typer.Argument(help="Older version.")],
         second: Annotated[str, typer.Argument(help="Newer version.")],
         workspace: WorkspaceOpt = Path(".")) -> None:
    """Cases added, removed and moved between two split versions."""
    from datacard.split import split_diff

    result = split_diff(Workspace.open(workspace), first, second)
    console.print(f"{first} -> {second}: added {len(result['added'])}, removed {len(result['removed'])}, "
                  f"moved {len(result['moved'])}")
    for case_id, (old, new) in result["moved"].items():
        console.print(f"  moved {case_id}: {old} -> {new}")


@split_app.command("freeze")
@friendly
@writes("split freeze")
def freeze(version: Annotated[str, typer.Argument(help="Version to freeze.")],
           workspace: WorkspaceOpt = Path(".")) -> None:
    """Freeze a version (as a release does): later versions keep its assignments."""
    from datacard.split import freeze_split

    freeze_split(Workspace.open(workspace), version)
    console.print(f"split {version} frozen")


@app.command()
@friendly
@writes("datasheet")
def datasheet(
    workspace: WorkspaceOpt = Path("."),
    answers: Annotated[Path | None, typer.Option(help="YAML of free-text answers (default: "
                                                      "WS/datasheet_answers.yaml when it exists).")] = None,
    template: Annotated[bool, typer.Option(help="Write the answers template to WS/datasheet_answers.yaml "
                                                "(if absent) and stop.")] = False,
) -> None:
    """Write releasable/datasheet/datasheet.md and .html: numbers from the data, free text from the answers."""
    from curation.atomic import copy_file
    from datacard.datasheet import ANSWERS_TEMPLATE, build_datasheet

    ws = Workspace.open(workspace)
    default = ws.answers_file
    if template:
        if default.exists():
            console.print(f"answers: {default} exists already (kept); edit it and run 'ctcurate datasheet' again")
            return
        copy_file(ANSWERS_TEMPLATE, default)
        console.print(f"answers template: {default}; fill it in and run 'ctcurate datasheet' again")
        return
    sheet = build_datasheet(ws, answers or (default if default.is_file() else None))
    console.print(f"datasheet: {sheet.markdown} and {sheet.html.name}; {len(sheet.missing)} answers missing"
                  + (": " + ", ".join(sheet.missing[:6]) + (" ..." if len(sheet.missing) > 6 else "")
                     if sheet.missing else ""))


@app.command()
@friendly
@writes("release")
def release(
    version: Annotated[str, typer.Argument(help="Semantic version, e.g. 1.0.0.")],
    workspace: WorkspaceOpt = Path("."),
    answers: Annotated[Path | None, typer.Option(help="Datasheet answers (default: "
                                                      "WS/datasheet_answers.yaml).")] = None,
    copies: Annotated[bool, typer.Option(help="Also ship the isotropic 1.5 mm / 3 mm copies.")] = False,
    force_qa: Annotated[bool, typer.Option(help="Release despite QA errors (the datasheet says so).")] = False,
    archive_mb: Annotated[float, typer.Option(help="Size limit of each zip archive, MiB.")] = 2000.0,
) -> None:
    """Build WS/releases/VERSION: cases, meta.csv, splits, datasheet, croissant, LICENSE, CHANGELOG, SHA256SUMS."""
    from datacard.release import build_release

    ws = Workspace.open(workspace)
    default = ws.answers_file
    result = build_release(ws, version, answers=answers or (default if default.is_file() else None), copies=copies,
                           force_qa=force_qa, archive_mb=archive_mb)
    console.print(f"release {version}: {counted(result.cases, 'cases')} in {result.folder}; "
                  f"{len(result.archives)} archive(s); PHI scan clean"
                  + ("; QA errors forced" if result.forced_qa else ""))


@app.command()
@friendly
def verify(
    version: Annotated[str, typer.Argument(help="Release version to check, e.g. 1.0.0.")],
    workspace: WorkspaceOpt = Path("."),
) -> None:
    """Re-hash WS/releases/VERSION and its zip parts against SHA256SUMS; exit 1 when anything differs."""
    from datacard.seal import verify_release

    check = verify_release(Workspace.open(workspace).release(version))
    if not check.ok:
        err_console.print(f"[bold red]release {escape(version)} does not verify:[/] {escape(check.summary())}; "
                          "build a new version from the workspace ('ctcurate release'), do not publish this one",
                          highlight=False, soft_wrap=True)
        raise typer.Exit(code=1)
    console.print(f"release {version}: {counted(check.files, 'files')} and their zip parts match SHA256SUMS")


@app.command()
@friendly(resumes=True)  # uploaded files with the same checksum are skipped
@writes("publish")
def publish(
    version: Annotated[str, typer.Argument(help="Release version to upload.")],
    workspace: WorkspaceOpt = Path("."),
    zenodo: Annotated[bool, typer.Option("--zenodo", help="Upload to Zenodo (the only target so far).")] = False,
    sandbox: Annotated[bool, typer.Option(help="Use sandbox.zenodo.org.")] = False,
    publish_: Annotated[bool, typer.Option("--publish", help="Publish the deposition (default: leave a draft).")]
    = False,
    token_file: Annotated[Path | None, typer.Option(help="File holding the Zenodo token (else $ZENODO_TOKEN).")]
    = None,
    url: Annotated[str | None, typer.Option(help="Zenodo base URL (tests, mirrors).", hidden=True)] = None,
) -> None:
    """Upload a release to Zenodo: new deposition or new version, resumable, checksums verified."""
    import os

    from datacard.zenodo import ZENODO, ZENODO_SANDBOX, ZenodoClient, publish_release

    if not zenodo:
        raise ConfigError("publish: choose a target; --zenodo is the one ctcurate knows")
    if token_file is not None and not token_file.is_file():
        raise ConfigError(f"--token-file {token_file}: no such file; write the Zenodo token into a file readable only "
                          "by you (chmod 600), or set ZENODO_TOKEN")
    token = token_file.read_text().strip() if token_file else os.environ.get("ZENODO_TOKEN", "")
    client = ZenodoClient(url or (ZENODO_SANDBOX if sandbox else ZENODO), token)
    result = publish_release(Workspace.open(workspace), version, client, publish=publish_)
    if result.already:
        console.print(f"Zenodo deposition {result.deposition_id}: release {version} is published already, DOI "
                      f"{result.doi}")
        return
    console.print(f"Zenodo deposition {result.deposition_id}: {len(result.uploaded)} uploaded, {len(result.skipped)} "
                  "already there" + (f"; published, DOI {result.doi}" if result.published else "; left as a draft"))
