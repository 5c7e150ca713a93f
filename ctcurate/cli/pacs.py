"""``ctcurate pull``: sample exams straight from a PACS over DICOMweb."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from curation.errors import ConfigError
from curation.workspace.executor import make_executor
from curation.workspace.layout import Workspace
from curation.workspace.settings import PacsSettings

from ._common import WorkspaceOpt, app, console, exit_on_failures, friendly, progress_bars, writes

__all__: list[str] = []


def _secret(settings: PacsSettings) -> str:
    """The password or token: from the file the settings name, else from their environment variable."""
    if settings.auth == "none":
        return ""
    if settings.secret_file:
        try:
            return Path(settings.secret_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{settings.secret_file}: cannot read the PACS secret ({exc.strerror}); check "
                              "--secret-file") from None
    secret = os.environ.get(settings.secret_env, "")
    if not secret:
        raise ConfigError(f"auth {settings.auth}: no secret; set the environment variable {settings.secret_env} "
                          "or pass --secret-file")
    return secret


@app.command()
@friendly(resumes=True)  # described studies and retrieved instances are kept
@writes("pull")
def pull(
    workspace: WorkspaceOpt = Path("."),
    dicomweb: Annotated[str | None, typer.Option("--dicomweb", help="DICOMweb root of the PACS, e.g. "
                                                 "http://pacs:8042/dicom-web (kept in the settings).")] = None,
    dimse: Annotated[str | None, typer.Option("--dimse", help="Or a PACS without DICOMweb: dicom://host:port/AET "
                                              "(C-FIND, C-GET).")] = None,
    aet: Annotated[str | None, typer.Option("--aet", help="Calling AE title over DIMSE (default CTCURATE).")] = None,
    auth: Annotated[str | None, typer.Option(help="none, basic or bearer (DICOMweb).")] = None,
    user: Annotated[str | None, typer.Option("--user", help="User name (basic auth).")] = None,
    secret_env: Annotated[str | None, typer.Option(help="Environment variable holding the password or token "
                                                        "(default CTCURATE_PACS_SECRET).")] = None,
    secret_file: Annotated[Path | None, typer.Option(help="File holding the password or token.")] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="First study date, YYYY-MM-DD.")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Last study date, YYYY-MM-DD.")] = None,
    description: Annotated[str | None, typer.Option(help="Study description, wildcards allowed: '*CHEST*'.")]
    = None,
    body_part: Annotated[str | None, typer.Option(help="Body part of any series, wildcards allowed.")] = None,
    series: Annotated[str | None, typer.Option(help="Retrieve the 'chosen' series per exam or every "
                                                    "'included' one.")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Exams described and series retrieved at once.")] = None,
    retries: Annotated[int | None, typer.Option(help="Retries of a failed request (exponential backoff).")]
    = None,
    n: Annotated[int | None, typer.Option("--n", help="Exams to draw (0 = all).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (default: previous draw's, else settings).")] = None,
    stratify_by: Annotated[str | None, typer.Option(help="study_year or patient_sex.")] = None,
    redraw: Annotated[bool, typer.Option(help="Ignore the previous draw and start afresh.")] = False,
    refresh: Annotated[bool, typer.Option(help="Ask the PACS for the candidate studies again.")] = False,
    retrieve: Annotated[bool, typer.Option(help="Retrieve (--no-retrieve: only query, draw and judge).")] = True,
) -> None:
    """Query a PACS over DICOMweb (or DIMSE), draw exams at random, judge their series from metadata, retrieve
    only the series kept, then scan and filter them; 'ctcurate convert' follows. A rerun fetches only what is
    missing."""
    from curation.pacs.pull import pull as run_pull

    ws = Workspace.open(workspace)
    if dicomweb and dimse:
        raise ConfigError("--dicomweb and --dimse both given: a pull uses one PACS; choose one")
    given: dict[str, Any] = {"url": dicomweb or dimse, "calling_aet": aet, "auth": auth, "username": user,
                             "secret_env": secret_env, "secret_file": str(secret_file) if secret_file else None,
                             "date_from": date_from, "date_to": date_to, "description": description,
                             "body_part": body_part, "series": series, "workers": workers, "retries": retries}
    settings = ws.settings
    pacs = dataclasses.replace(settings.pacs, **{k: v for k, v in given.items() if v is not None})
    if pacs != settings.pacs:
        ws.save_settings(dataclasses.replace(settings, pacs=pacs))
    secret = _secret(pacs)
    with make_executor(ws.settings.executor) as executor, progress_bars("describe (exams)",
                                                                        "retrieve (instances)") as bars:
        result = run_pull(ws, secret, n=n, seed=seed, stratify_by=stratify_by, redraw=redraw, refresh=refresh,
                          retrieve=retrieve, executor=executor, describe_progress=bars[0], progress=bars[1])
    drawn = result.sample
    console.print(f"{result.n_candidates} candidate studies on {pacs.url}; drew {len(drawn.members)} (seed "
                  f"{drawn.seed}); {result.n_described} described from metadata")
    if result.excluded_series:
        table = Table("series excluded before retrieval", "series")
        for reason, count in sorted(result.excluded_series.items()):
            table.add_row(reason, str(count))
        console.print(table)
    console.print(f"{result.n_series_retrieved} of {result.n_series_to_retrieve} series retrieved: "
                  f"{result.n_instances_fetched} instances fetched, {result.n_instances_present} already there "
                  f"({ws.pacs_export_dir})")
    if result.filter:
        console.print(f"{result.filter.n_included_exams} of {result.filter.n_sampled_exams} drawn exams included; "
                      f"next: ctcurate convert -w {ws.root}")
    exit_on_failures(result.failed)
