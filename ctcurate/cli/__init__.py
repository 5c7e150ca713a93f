"""The ``ctcurate`` command line (typer). It sits on top of every stage; nothing imports it.

Library code logs through ``logging``; the CLI configures rich output and progress bars and turns
:class:`~curation.errors.CtcurateError` into one red line and exit code 2. Commands live in
:mod:`ctcurate.cli.curate` (curation steps), :mod:`ctcurate.cli.pacs` (``pull``), :mod:`ctcurate.cli.model`
(``ctcurate model ...``), :mod:`ctcurate.cli.annotate` (``presegment``, ``phase``), :mod:`ctcurate.cli.retrain`
(``review``, ``export nnunet``, ``retrain``) and :mod:`ctcurate.cli.qa` (``ctcurate qa ...``).
"""

from __future__ import annotations

from . import annotate, curate, model, pacs, qa, release, retrain  # noqa: F401  (registers the commands)
from ._common import app

__all__ = ["app", "main"]


def main() -> None:
    """Console entry point."""
    app()
