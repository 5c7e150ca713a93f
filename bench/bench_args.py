"""Command-line pieces the bench scripts share: argument errors as one line, whole-number arguments with a least
value."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NoReturn

__all__ = ["OneLineParser", "at_least"]


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block above them)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum`` (anything else: one line saying so)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number of {minimum} or more, found {text!r}")
        return value

    return parse
