"""The CLI runner every CLI test uses: a command may fail, but never with a traceback or an uncaught exception."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner as _TyperRunner

__all__ = ["CliRunner"]


class CliRunner(_TyperRunner):
    """typer's test runner that fails the test on any traceback in the output or exception escaping a command."""

    def invoke(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        result = super().invoke(*args, **kwargs)
        escaped = result.exception if not isinstance(result.exception, SystemExit) else None
        assert escaped is None, f"the command raised {type(escaped).__name__}: {escaped}\n{result.output[-2000:]}"
        assert "Traceback (most recent call last)" not in result.output, result.output[-3000:]
        return result
