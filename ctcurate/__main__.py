"""``python -m ctcurate``: the command line."""

from ctcurate.cli import run

run()
