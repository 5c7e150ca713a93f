"""``python -m ctcurate.cli``."""

from . import main

main()
