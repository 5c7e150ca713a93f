"""``python -m curation.cli``."""

from . import main

main()
